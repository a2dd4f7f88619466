//! Transfers per second on a cluster replicated on a real 3-node JetStream cluster on 127.0.0.1
//! (started here with `.ci/nats-cluster`): within one partition (spec §10's atomic pair),
//! between two partitions of one node (the saga, docs/cluster.md §4), and between two
//! partitions owned by two nodes (the credit asked of the other node over NATS). One JSON line
//! per run.
//!
//! `cargo run --release -p purse-cluster --example transfers -- [transfers] [callers]`
//! (defaults: 2000 transfers, 64 callers).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use purse_cluster::partition::partition_of;
use purse_cluster::{meta, Node, NodeConfig};
use purse_core::{Action, Amount, Command};
use purse_ledger::jetstream::test_cluster::Cluster;

/// Accounts on each side.
const ACCOUNTS: usize = 200;

/// `ACCOUNTS` account ids in `partition` of two.
fn accounts_in(partition: u32) -> Vec<String> {
    (0..).map(|n| format!("member-{n}")).filter(|id| partition_of(id, 2) == partition).take(ACCOUNTS).collect()
}

/// Runs `count` transfers from `callers` callers, the n-th from `from[n]` to `to[n]` through
/// the source's owner, its request ids `<kind>-<n>`; answers (transfers/s, p50 µs, p99 µs).
async fn drive(kind: &str, count: usize, callers: usize, route: &[(Node, String, String)]) -> (f64, u128, u128) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let (route, kind) = (route.to_vec(), kind.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for n in (caller..count).step_by(callers) {
                let (node, from, to) = &route[n % route.len()];
                let action = Action::Transfer { to_account_id: to.clone(), value: Some(Amount::from_minor(1)) };
                let sent = Instant::now();
                let command = Command::new(&format!("{kind}-{n}"), &format!("o-{kind}-{n}"), from, action);
                node.transfer(command).await.unwrap_or_else(|error| panic!("{kind}-{n}: {error}"));
                latencies.push(sent.elapsed().as_micros());
            }
            latencies
        }));
    }
    common::summary(started, count, tasks).await
}

/// Starts node `name` of cluster `cluster`, serving at most `partitions_max` partitions.
async fn node(cluster: &Cluster, name: &str, node: &str, dir: &Path, partitions_max: Option<u32>) -> Node {
    let mut config = NodeConfig::new(name, node, cluster.servers(), cluster.monitor(), dir.join(node));
    config.ack_timeout = Duration::from_secs(30);
    config.partitions_max = partitions_max;
    let started = Node::start(config).await.unwrap();
    started.wait_for_partitions(partitions_max.unwrap_or(2) as usize, Duration::from_secs(60)).await.unwrap();
    started
}

/// Charges every account of `accounts` through `node`.
async fn charge(node: &Node, accounts: &[String]) {
    for account in accounts {
        let action =
            Action::Charge { real: Amount::from_minor(1_000_000), gift: None, pre: Amount::ZERO, trigger_gift: false };
        node.submit(Command::new(&format!("c-{account}"), &format!("o-c-{account}"), account, action)).await.unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count: usize = args.first().map_or(2_000, |text| text.parse().expect("transfers"));
    let callers: usize = args.get(1).map_or(64, |text| text.parse().expect("callers"));
    let tmp = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tmp"));
    std::fs::create_dir_all(tmp).unwrap();
    let work = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(24400, tmp, &tmp.join("nats-server-bin")).await;
    let context = async_nats::jetstream::new(async_nats::connect(cluster.servers()[0].as_str()).await.unwrap());
    let (zero, one) = (accounts_in(0), accounts_in(1));
    let print = |kind: &str, (rate, p50, p99): (f64, u128, u128)| {
        println!(
            r#"{{"transfers":"{kind}","count":{count},"callers":{callers},"transfers_per_second":{rate:.0},"p50_us":{p50},"p99_us":{p99}}}"#
        );
    };

    // One node, both partitions: within partition 0, then from partition 0 to partition 1.
    meta::init(&context, "xfer1", 2, 3).await.unwrap();
    let alone = node(&cluster, "xfer1", "n1", &work.path().join("xfer1"), None).await;
    charge(&alone, &zero).await;
    charge(&alone, &one).await;
    let within: Vec<_> =
        (0..ACCOUNTS).map(|n| (alone.clone(), zero[n].clone(), zero[(n + 1) % ACCOUNTS].clone())).collect();
    print("within-partition", drive("within", count, callers, &within).await);
    let between: Vec<_> = (0..ACCOUNTS).map(|n| (alone.clone(), zero[n].clone(), one[n].clone())).collect();
    print("between-partitions-one-node", drive("one-node", count, callers, &between).await);
    alone.stop().await.unwrap();

    // Two nodes, one partition each: half the transfers each way, each through its source's owner.
    meta::init(&context, "xfer2", 2, 3).await.unwrap();
    let first = node(&cluster, "xfer2", "n1", &work.path().join("xfer2"), Some(1)).await;
    let second = node(&cluster, "xfer2", "n2", &work.path().join("xfer2"), Some(1)).await;
    let (owner_of_zero, owner_of_one) = if first.owned().await == [0] { (first, second) } else { (second, first) };
    charge(&owner_of_zero, &zero).await;
    charge(&owner_of_one, &one).await;
    let both_ways: Vec<_> = (0..ACCOUNTS)
        .map(|n| match n % 2 {
            0 => (owner_of_zero.clone(), zero[n].clone(), one[n].clone()),
            _ => (owner_of_one.clone(), one[n].clone(), zero[n].clone()),
        })
        .collect();
    print("between-partitions-two-nodes", drive("two-nodes", count, callers, &both_ways).await);
    owner_of_zero.stop().await.unwrap();
    owner_of_one.stop().await.unwrap();
}

//! Durable flows per second of one node serving P partitions of a cluster replicated on a real
//! 3-node JetStream cluster on 127.0.0.1 (started here with `.ci/nats-cluster`), next to the
//! embedded sled ledger under the same load. One JSON line per run.
//!
//! `cargo run --release -p purse-cluster --example throughput -- [flows] [callers] [partitions…]`
//! (defaults: 20000 flows, 256 callers, partitions 1 2 4; each partition count in a cluster of
//! its own name, and an embedded run first).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use purse_cluster::{meta, Node, NodeConfig};
use purse_core::{Action, Amount, Command};
use purse_ledger::jetstream::test_cluster::Cluster;
use purse_ledger::{Ledger, LedgerConfig};

const ACCOUNTS: usize = 10_000;

fn charge(n: usize) -> Command {
    let action = Action::Charge { real: Amount::from_minor(100), gift: None, pre: Amount::ZERO, trigger_gift: false };
    Command::new(&format!("r{n}"), &format!("o{n}"), &format!("member-{}", n % ACCOUNTS), action)
}

/// Runs `flows` charges from `callers` callers through `submit`; (flows/s, p50 µs, p99 µs).
async fn drive<F, Fut>(flows: usize, callers: usize, submit: F) -> (f64, u128, u128)
where
    F: Fn(Command) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let submit = submit.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for n in (caller..flows).step_by(callers) {
                let sent = Instant::now();
                assert!(submit(charge(n)).await, "request r{n} failed");
                latencies.push(sent.elapsed().as_micros());
            }
            latencies
        }));
    }
    common::summary(started, flows, tasks).await
}

/// CPU seconds (user + system) of a process so far, from /proc (clock ticks of 1/100 s).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map_or("", |(_, rest)| rest).split(' ').collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |both| both.iter().filter_map(|tick| tick.parse::<u64>().ok()).sum());
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)] // CPU time, not money
    let seconds = ticks as f64 / 100.0;
    seconds
}

/// CPU seconds of this process and of the cluster's three servers.
fn cpu(cluster: Option<&Cluster>) -> (f64, f64) {
    let servers = cluster.map_or(0.0, |cluster| {
        (1..=3)
            .map(|n| std::fs::read_to_string(cluster.dir.join(format!("n{n}/nats.pid"))).unwrap_or_default())
            .map(|pid| cpu_seconds(pid.trim()))
            .sum()
    });
    (cpu_seconds("self"), servers)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flows: usize = args.first().map_or(20_000, |text| text.parse().expect("flows"));
    let callers: usize = args.get(1).map_or(256, |text| text.parse().expect("callers"));
    let counts: Vec<u32> = if args.len() > 2 {
        args[2..].iter().map(|text| text.parse().expect("partitions")).collect()
    } else {
        vec![1, 2, 4]
    };
    let tmp = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tmp"));
    std::fs::create_dir_all(tmp).unwrap();
    let work = tempfile::tempdir().unwrap();

    let embedded = Ledger::open(LedgerConfig::new(work.path().join("embedded"))).await.unwrap();
    let ledger = embedded.clone();
    let (rate, p50, p99) = drive(flows, callers, move |command| {
        let ledger = ledger.clone();
        async move { ledger.submit(command).await.is_ok() }
    })
    .await;
    println!(
        r#"{{"medium":"sled","partitions":1,"flows":{flows},"callers":{callers},"flows_per_second":{rate:.0},"p50_us":{p50},"p99_us":{p99}}}"#
    );
    embedded.close().await.unwrap();

    let cluster = Cluster::start(24400, tmp, &tmp.join("nats-server-bin")).await;
    let client = async_nats::connect(cluster.servers()[0].as_str()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    for (run, partitions) in counts.into_iter().enumerate() {
        let name = format!("bench{run}p{partitions}");
        meta::init(&context, &name, partitions, 3).await.unwrap();
        let mut config = NodeConfig::new(&name, "n1", cluster.servers(), cluster.monitor(), work.path().join(&name));
        config.ack_timeout = Duration::from_secs(30);
        let node = Arc::new(Node::start(config).await.unwrap());
        node.wait_for_partitions(partitions as usize, Duration::from_secs(60)).await.unwrap();
        let serving = Arc::clone(&node);
        let (node_before, servers_before) = cpu(Some(&cluster));
        let (rate, p50, p99) = drive(flows, callers, move |command| {
            let node = Arc::clone(&serving);
            async move { node.submit(command).await.is_ok() }
        })
        .await;
        let (node_after, servers_after) = cpu(Some(&cluster));
        #[allow(clippy::float_arithmetic)] // CPU time, not money
        let (node_cpu, servers_cpu) = (node_after - node_before, servers_after - servers_before);
        println!(
            r#"{{"medium":"jetstream-r3","partitions":{partitions},"flows":{flows},"callers":{callers},"flows_per_second":{rate:.0},"p50_us":{p50},"p99_us":{p99},"node_cpu_s":{node_cpu:.2},"servers_cpu_s":{servers_cpu:.2}}}"#
        );
        Arc::try_unwrap(node).unwrap().stop().await.unwrap();
        // Catch-up: a fresh directory replays partition 0's stream from its start.
        let stream = purse_cluster::partition::stream_name(&name, 0);
        let options = purse_ledger::jetstream::JetStreamOptions::new(cluster.servers(), &stream, cluster.monitor());
        let journal = tokio::task::spawn_blocking(move || purse_ledger::jetstream::JetStreamJournal::connect(options))
            .await
            .unwrap()
            .unwrap();
        let entries = journal.state().unwrap().last_sequence;
        let opened = Instant::now();
        let replica = Ledger::open_replicated(
            LedgerConfig::new(work.path().join(format!("{name}-fresh"))),
            Arc::new(journal),
            "catch-up",
        )
        .await
        .unwrap();
        let catch_up_ms = opened.elapsed().as_millis();
        replica.close().await.unwrap();
        println!(
            r#"{{"catch_up":{{"partitions":{partitions},"stream_messages":{entries},"fresh_open_ms":{catch_up_ms}}}}}"#
        );
    }
}

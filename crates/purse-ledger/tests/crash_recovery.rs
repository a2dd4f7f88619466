//! Crash safety, in the pattern of sled's tests/test_crash_recovery.rs.
//!
//! The parent starts this same binary as a child that writes under load from many tasks and
//! prints `request_id flow_id` for every acknowledged flow. The parent SIGKILLs it at a random
//! moment, reopens the ledger (which validates the whole log), and checks that every
//! acknowledged flow is there with its request, that `verify` passes, and that retrying each
//! acknowledged request returns the same flow id. Rounds share one data directory, so each
//! round also recovers from all the crashes before it.
//!
//! The child takes a snapshot of its projections every [`CHILD_SNAPSHOT_EVERY_ENTRIES`] entries
//! (far more often than the default), so kills also land while one is being encoded or written;
//! each reopen starts from the newest snapshot that is whole, and `verify` (which also compares
//! that snapshot with the fold of the log) must report no snapshot warning.
//!
//! `PURSE_CRASH_ROUNDS` (default 30: 20 kills under load, 10 early ones) and `PURSE_CRASH_SEED` (default: from the clock, printed)
//! control a run.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use purse_core::{Action, Amount, Command, FlowType};
use purse_ledger::{FlowKey, Ledger, LedgerConfig};

const TASKS: u64 = 32;
const ACCOUNTS: u64 = 8;
/// Two of every three rounds kill under load, so the default gives 20 kills mid-write.
const ROUNDS_DEFAULT: u64 = 30;
/// The child writes a few thousand entries a second: a snapshot every few hundred of them.
const CHILD_SNAPSHOT_EVERY_ENTRIES: u64 = 300;

/// The command a child sends as its `index`-th request of `task` in `round`: a pure function,
/// so the parent can retry exactly what was acknowledged.
/// Every kind of write that moves value or reserves it: charges, deductions, holds resolved by
/// a capture or a release, and transfers between the accounts (two flows that must survive
/// together or not at all).
fn command_for(round: u64, task: u64, index: u64) -> Command {
    let id = format!("r{round}-t{task}-{index}");
    let account = format!("acct-{}", task % ACCOUNTS);
    let hold = format!("r{round}-t{task}-{}", index.saturating_sub(1));
    let action = match index % 8 {
        2 => Action::Deduct { value: Amount::from_minor(100) },
        3 | 5 => Action::Hold { value: Amount::from_minor(50), expire_time: None },
        4 => Action::Capture { src_outer_order_id: hold, value: Some(Amount::from_minor(20)) },
        6 => Action::Release { src_outer_order_id: hold },
        7 => Action::Transfer {
            to_account_id: format!("acct-{}", (task + 1) % ACCOUNTS),
            value: Some(Amount::from_minor(30)),
        },
        _ => Action::Charge {
            real: Amount::from_minor(200),
            gift: None,
            pre: Amount::from_minor(1),
            trigger_gift: false,
        },
    };
    Command::new(&id, &id, &account, action)
}

fn parse_id(request_id: &str) -> (u64, u64, u64) {
    let mut parts = request_id.split('-').map(|part| part[1..].parse::<u64>().ok());
    let round = parts.next().flatten().expect("round");
    let task = parts.next().flatten().expect("task");
    let index = request_id.rsplit('-').next().and_then(|index| index.parse().ok()).expect("index");
    (round, task, index)
}

fn child(dir: &str, round: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut config = LedgerConfig::new(dir);
        config.snapshot_every_entries = CHILD_SNAPSHOT_EVERY_ENTRIES;
        // And each into the cold store, so that kills land inside that too.
        config.cold_after_entries = 0;
        let ledger = Ledger::open(config).await.expect("child opens the ledger");
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                for index in 0.. {
                    let command = command_for(round, task, index);
                    let request_id = command.request_id.clone();
                    if let Ok(flow) = ledger.submit(command).await {
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "{request_id} {}", flow.flow_id).expect("report");
                        out.flush().expect("report");
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("the child runs until killed");
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2], args[3].parse().expect("round"));
        return;
    }
    let (rounds, seed) = common::crash_settings(ROUNDS_DEFAULT);
    println!("crash_recovery: {rounds} rounds, PURSE_CRASH_SEED={seed}");
    let mut random = purse_ledger::bench_support::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut acknowledged_total = 0usize;
    // Flows of each type in the log so far, and the entries counted: each round reads only the
    // entries the rounds before it did not.
    let mut kinds = Kinds::default();
    // Kills that left a snapshot half-written (its `.partial` file).
    let mut kills_during_snapshots = 0;
    for round in 0..rounds {
        let partial_before = partial_snapshots(&path);
        let mut process = Process::new(std::env::current_exe().unwrap())
            .args(["--child", &path, &round.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child");
        let stdout = process.stdout.take().unwrap();
        let (first_sender, first_acknowledgement) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            // A line cut off by the kill has no newline and is not an acknowledgement.
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8(line).expect("utf-8 report");
                let (request_id, flow_id) = line.split_once(' ').expect("request_id flow_id");
                acknowledged.push((request_id.to_owned(), flow_id.parse::<u64>().expect("flow id")));
                if acknowledged.len() == 1 {
                    let _ = first_sender.send(());
                }
            }
            acknowledged
        });
        // Kill under load: wait for the first acknowledgement (the child has opened and is
        // writing), then a random moment later. Every third round kills sooner, often during open.
        if round % 3 != 2 {
            first_acknowledgement.recv_timeout(Duration::from_secs(60)).expect("the child acknowledges a flow");
            std::thread::sleep(Duration::from_millis(random.below(400)));
        } else {
            std::thread::sleep(Duration::from_millis(random.below(300)));
        }
        process.kill().expect("SIGKILL the child");
        process.wait().expect("reap the child");
        if partial_snapshots(&path).iter().any(|name| !partial_before.contains(name)) {
            kills_during_snapshots += 1;
        }
        let acknowledged = reader.join().unwrap();
        acknowledged_total += acknowledged.len();
        runtime.block_on(check_round(&path, round, &acknowledged, &mut kinds));
    }
    assert!(acknowledged_total > 0, "the children acknowledged nothing: the test tested nothing");
    println!(
        "crash_recovery: {acknowledged_total} acknowledged flows survived {rounds} kills, \
         {kills_during_snapshots} of them while a snapshot was being written"
    );
    println!("1 passed, 0 failed");
}

/// The half-written snapshots in the ledger (a kill while one was being written leaves one; its
/// name says the entry it was to cover, so a new one has a new name).
fn partial_snapshots(path: &str) -> Vec<String> {
    let entries = std::fs::read_dir(Path::new(path).join("purse-snapshots")).into_iter().flatten().flatten();
    entries
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".partial"))
        .collect()
}

#[derive(Default)]
struct Kinds {
    counted: u64,
    of_type: std::collections::BTreeMap<&'static str, u64>,
}

async fn check_round(path: &str, round: u64, acknowledged: &[(String, u64)], kinds: &mut Kinds) {
    let ledger = Ledger::open(LedgerConfig::new(path))
        .await
        .unwrap_or_else(|error| panic!("round {round}: reopening after SIGKILL failed: {error}"));
    let report = ledger.verify().await.unwrap_or_else(|error| panic!("round {round}: verify: {error}"));
    assert!(
        !report.warnings.iter().any(|warning| warning.contains("snapshot")),
        "round {round}: a kill left a snapshot that fails its checks: {:?}",
        report.warnings
    );
    let snapshots = ledger.snapshot_stats().await.unwrap();
    for (request_id, flow_id) in acknowledged {
        let flow = ledger
            .flow(FlowKey::Id(*flow_id))
            .await
            .unwrap_or_else(|error| panic!("round {round}: acknowledged flow {flow_id} ({request_id}) lost: {error}"));
        assert_eq!(&flow.request_id, request_id, "round {round}: flow {flow_id}");
        if flow.flow_type == FlowType::TransferOut {
            let flow_in = ledger.flow(FlowKey::Id(flow_id + 1)).await.unwrap_or_else(|error| {
                panic!("round {round}: transfer {flow_id} ({request_id}) lost its TRANSFER_IN: {error}")
            });
            assert_eq!((flow_in.flow_type, &flow_in.request_id), (FlowType::TransferIn, request_id), "round {round}");
        }
        let (id_round, task, index) = parse_id(request_id);
        let retry = ledger.submit(command_for(id_round, task, index)).await.expect("a retry replays");
        assert_eq!(retry.flow_id, *flow_id, "round {round}: retry of {request_id}");
    }
    let after = ledger.verify().await.unwrap();
    assert_eq!(after, report, "round {round}: retries wrote nothing");
    // verify refuses a log that ends between a TRANSFER_OUT and its TRANSFER_IN, or where an IN
    // does not match its OUT; count what the log holds of each kind to show they were written.
    for sequence in kinds.counted + 1..=report.entries {
        if let Ok(flow) = ledger.flow(FlowKey::Id(sequence)).await {
            *kinds.of_type.entry(flow.flow_type.as_str()).or_default() += 1;
        }
    }
    kinds.counted = report.entries;
    let of_type = &kinds.of_type;
    assert_eq!(of_type.get("TRANSFER_OUT"), of_type.get("TRANSFER_IN"), "round {round}: transfers are whole");
    println!(
        "round {round}: {} acknowledged, log holds {} flows ({of_type:?}), opened from the snapshot at {:?}, verify ok",
        acknowledged.len(),
        report.flows,
        snapshots.loaded_from
    );
    ledger.close().await.unwrap();
}

//! Crash safety of large groups: a group is in the log whole or not at all.
//!
//! A group of many flows is written to sled in several batches (`Store::append`), its blocks
//! marked CONTINUES but the last; opening the ledger removes a commit that was cut off. The
//! parent starts this binary as a child that submits all-or-nothing groups of `GROUP` flows,
//! one after another, and prints `group N` once group N is acknowledged. The parent SIGKILLs it
//! at a random moment, reopens, and checks: every acknowledged group is there whole, the log
//! holds whole groups only, `verify` passes, and resubmitting the last group present replays it.
//! Before each reopen the test also loses a random tail of the write-ahead log's unacknowledged
//! frames, as a power loss may (`purse_ledger::crash_support`): a group's frames reach the log
//! in one write, so a SIGKILL alone seldom cuts one. Over all rounds at least one round must have
//! cut a group off mid-write (the reopened ledger reports the entries it dropped), or the test
//! tested nothing.
//!
//! `PURSE_CRASH_ROUNDS` (default 8) and `PURSE_CRASH_SEED` (default: from the clock, printed).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use purse_core::{Action, Amount, Command};
use purse_ledger::{FlowKey, GroupItem, GroupMode, Ledger, LedgerConfig};

/// Flows per group: with the padding below, about 900 blocks, so four sled batches.
const GROUP: u64 = 8_000;
const ROUNDS_DEFAULT: u64 = 8;

fn group(number: u64) -> Vec<Command> {
    (0..GROUP)
        .map(|index| {
            let id = format!("g{number}-{index}");
            let action =
                Action::Charge { real: Amount::from_minor(100), gift: None, pre: Amount::ZERO, trigger_gift: false };
            let mut command = Command::new(&id, &id, &format!("acct-{}", index % 16), action);
            command.ext_info = Some(format!("{{\"padding\":\"{}\"}}", "x".repeat(600)));
            command
        })
        .collect()
}

fn child(dir: &str, first: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let ledger = Ledger::open(LedgerConfig::new(dir)).await.expect("child opens the ledger");
        for number in first.. {
            let outcome = ledger.submit_group(group(number), GroupMode::AllOrNothing).await.expect("a group");
            assert!(outcome.committed, "group {number} was not committed");
            let mut out = std::io::stdout().lock();
            writeln!(out, "group {number}").expect("report");
            out.flush().expect("report");
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2], args[3].parse().expect("first group"));
        return;
    }
    let (rounds, seed) = common::crash_settings(ROUNDS_DEFAULT);
    println!("crash_group: {rounds} rounds, PURSE_CRASH_SEED={seed}");
    let mut random = purse_ledger::bench_support::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut dropped_total = 0;
    let mut acknowledged_total = 0;
    let mut groups = 0;
    // A kill lands mid-write in about a third of rounds: go on past `rounds` (up to three times
    // as many) until one has.
    let mut round = 0;
    while round < rounds || (dropped_total == 0 && round < 3 * rounds) {
        let mut process = Process::new(std::env::current_exe().unwrap())
            .args(["--child", &path, &groups.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child");
        let stdout = process.stdout.take().unwrap();
        let (first_sender, first_acknowledgement) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8(line).expect("utf-8 report");
                let number = line.strip_prefix("group ").and_then(|n| n.parse::<u64>().ok()).expect("group N");
                acknowledged.push(number);
                if acknowledged.len() == 1 {
                    let _ = first_sender.send(());
                }
            }
            acknowledged
        });
        first_acknowledgement.recv_timeout(Duration::from_secs(120)).expect("the child acknowledges a group");
        std::thread::sleep(Duration::from_millis(100 + random.below(1200)));
        process.kill().expect("SIGKILL the child");
        process.wait().expect("reap the child");
        let acknowledged = reader.join().unwrap();
        acknowledged_total += acknowledged.len();
        // A group's frames reach the write-ahead log in one write, so a SIGKILL seldom cuts
        // one; a power loss can (a prefix of an unsynced write lands). Lose, as it may, a
        // tail of what was not acknowledged.
        let acknowledged_flows = acknowledged.last().map_or(groups, |number| number + 1) * GROUP;
        purse_ledger::crash_support::lose_unacknowledged_tail(dir.path(), acknowledged_flows, |count| {
            random.below(count)
        })
        .expect("damage the log's unacknowledged tail");
        let (present, dropped) = runtime.block_on(check_round(&path, round, &acknowledged));
        groups = present;
        dropped_total += dropped;
        round += 1;
    }
    assert!(acknowledged_total > 0, "the children acknowledged nothing");
    assert!(dropped_total > 0, "no kill cut a group off mid-write: the recovery path was not exercised");
    println!("crash_group: {acknowledged_total} acknowledged groups survived {round} kills; {dropped_total} unfinished entries dropped");
    println!("1 passed, 0 failed");
}

/// Checks one round; returns the groups in the log and the unfinished entries the reopen dropped.
async fn check_round(path: &str, round: u64, acknowledged: &[u64]) -> (u64, u64) {
    let ledger = Ledger::open(LedgerConfig::new(path))
        .await
        .unwrap_or_else(|error| panic!("round {round}: reopening after SIGKILL failed: {error}"));
    let dropped = ledger.stats().await.unwrap().unfinished_entries_dropped;
    let report = ledger.verify().await.unwrap_or_else(|error| panic!("round {round}: verify: {error}"));
    assert_eq!(report.flows % GROUP, 0, "round {round}: the log holds part of a group ({} flows)", report.flows);
    let groups = report.flows / GROUP;
    assert!(dropped < GROUP, "round {round}: dropped {dropped} entries, more than a group cut off can leave");
    for number in acknowledged {
        assert!(*number < groups, "round {round}: acknowledged group {number} lost ({groups} groups in the log)");
    }
    for number in [0, groups.saturating_sub(1)] {
        for index in [0, GROUP - 1] {
            let id = format!("g{number}-{index}");
            let flow = ledger.flow(FlowKey::OuterOrderId(id.clone())).await;
            assert!(flow.is_ok(), "round {round}: {id} missing: {flow:?}");
        }
    }
    if groups > 0 {
        let replay = ledger.submit_group(group(groups - 1), GroupMode::AllOrNothing).await.unwrap();
        assert!(replay.items.iter().all(|item| matches!(item, GroupItem::Replayed(_))), "round {round}: replay");
        assert_eq!(ledger.verify().await.unwrap(), report, "round {round}: the replay wrote nothing");
    }
    println!(
        "round {round}: {} acknowledged, log holds {groups} groups, {dropped} unfinished entries dropped",
        acknowledged.len()
    );
    ledger.close().await.unwrap();
    (groups, dropped)
}

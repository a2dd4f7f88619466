//! Crash safety phase by phase: kills aimed at the open, the single commits, a group commit and
//! the close of a process that reopens an existing ledger.
//!
//! The parent starts this same binary as a child that opens the ledger an earlier child wrote,
//! submits `COMMITS` single flows one after another (charges and deducts), then one
//! all-or-nothing group of `GROUP` charges, then closes. It prints `ack <request_id> <flow_id>`
//! for every acknowledged flow (one line with every pair for the group) and `phase <name>` as
//! each phase ends, flushed, as it goes.
//!
//! The first `CALIBRATION_RUNS` children run unkilled (the first creates the ledger) and the
//! parent times each phase; every later round takes the phases in turn as its window and
//! SIGKILLs its child at a moment drawn uniformly over that window: from the child's start for
//! the open, from the moment the child reports the phase before ended for the others, over the
//! phase's calibrated duration. Then it reopens the
//! ledger in-process and checks: it opens, `verify` passes, every acknowledged flow is there
//! under its flow id, retrying each acknowledged request (the group as a group) replays the same
//! flow ids and writes nothing, and the round's group is in the log whole or not at all.
//!
//! `PURSE_CRASH_ROUNDS` (default 48: 12 kills per phase) and `PURSE_CRASH_SEED` (default: from
//! the clock, printed).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use purse_core::{Action, Amount, Command};
use purse_ledger::{FlowKey, GroupItem, GroupMode};

const ROUNDS_DEFAULT: u64 = 48;
/// Single commits per child, each its own fdatasync.
const COMMITS: u64 = 12;
/// Charges in the child's group.
const GROUP: u64 = 16;
const ACCOUNTS: u64 = 4;
/// Unkilled children before the kills: the first creates the ledger, the others are timed.
const CALIBRATION_RUNS: u64 = 4;
/// The child's phases, in order; each ends with a `phase <name>` line.
const PHASES: [&str; 4] = ["open", "commits", "group", "close"];
/// How long a calibration child may take before the test gives up on it (a hang, not a speed).
const CALIBRATION_PATIENCE: Duration = Duration::from_secs(120);

/// The `index`-th single commit of `round`: per account two charges of 2.00 then a deduct of
/// 1.00, so every deduct has the balance it needs.
fn single(round: u64, index: u64) -> Command {
    let id = format!("w{round}-{index}");
    let account = format!("acct-{}", (index / 3) % ACCOUNTS);
    let action = if index % 3 == 2 {
        Action::Deduct { value: Amount::from_minor(100) }
    } else {
        Action::Charge { real: Amount::from_minor(200), gift: None, pre: Amount::ZERO, trigger_gift: false }
    };
    Command::new(&id, &id, &account, action)
}

fn group(round: u64) -> Vec<Command> {
    (0..GROUP)
        .map(|index| {
            let id = format!("g{round}-{index}");
            let action =
                Action::Charge { real: Amount::from_minor(100), gift: None, pre: Amount::ZERO, trigger_gift: false };
            Command::new(&id, &id, &format!("acct-{}", index % ACCOUNTS), action)
        })
        .collect()
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("report");
    out.flush().expect("report");
}

fn child(dir: &str, round: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let ledger = common::reopen(dir.as_ref()).await.expect("child opens the ledger");
        report("phase open");
        for index in 0..COMMITS {
            let command = single(round, index);
            let flow = ledger.submit(command.clone()).await.expect("a single commit");
            report(&format!("ack {} {}", command.request_id, flow.flow_id));
        }
        report("phase commits");
        let commands = group(round);
        let outcome = ledger.submit_group(commands.clone(), GroupMode::AllOrNothing).await.expect("the group");
        assert!(outcome.committed, "the group was not committed: {outcome:?}");
        // One line for the whole group: it is acknowledged whole, and a kill cuts off a line
        // only as a whole.
        let mut line = "ack".to_owned();
        for (command, item) in commands.iter().zip(&outcome.items) {
            match item {
                GroupItem::Written(summary) | GroupItem::Replayed(summary) => {
                    line.push_str(&format!(" {} {}", command.request_id, summary.flow_id));
                }
                GroupItem::Skipped(error) => panic!("{}: skipped: {error}", command.request_id),
                GroupItem::Rejected(error) => panic!("{}: {error}", command.request_id),
            }
        }
        report(&line);
        report("phase group");
        ledger.close().await.expect("close");
        report("phase close");
    });
}

/// What one child said, as the parent heard it.
#[derive(Debug, Default)]
struct Heard {
    acknowledged: Vec<(String, u64)>,
    /// `phase` lines, in order, with when the parent read them (from the child's start).
    phases: Vec<Duration>,
}

struct Running {
    process: Child,
    started: Instant,
    phases: mpsc::Receiver<Duration>,
    reader: std::thread::JoinHandle<Heard>,
}

fn start(path: &str, round: u64) -> Running {
    let mut process = Process::new(std::env::current_exe().unwrap())
        .args(["--child", path, &round.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let started = Instant::now();
    let stdout = process.stdout.take().unwrap();
    let (sender, phases) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut heard = Heard::default();
        // A line cut off by the kill has no newline and says nothing.
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8(line).expect("utf-8 report");
            if line.starts_with("phase ") {
                let at = started.elapsed();
                heard.phases.push(at);
                let _ = sender.send(at);
            } else {
                let words: Vec<&str> = line.strip_prefix("ack ").expect("ack or phase").split(' ').collect();
                for pair in words.chunks(2) {
                    let [request_id, flow_id] = pair else { panic!("ack request_id flow_id: {line}") };
                    heard.acknowledged.push(((*request_id).to_owned(), flow_id.parse().expect("flow id")));
                }
            }
        }
        heard
    });
    Running { process, started, phases, reader }
}

/// Runs a child to its end unkilled; returns what it said.
fn calibrate(path: &str, round: u64) -> Heard {
    let mut running = start(path, round);
    for phase in PHASES {
        if running.phases.recv_timeout(CALIBRATION_PATIENCE).is_err() {
            running.process.kill().expect("SIGKILL the child");
            panic!("calibration child {round} did not finish its {phase} phase");
        }
    }
    let status = running.process.wait().expect("reap the child");
    assert!(status.success(), "calibration child {round}: {status}");
    running.reader.join().unwrap()
}

/// How long each phase takes: the median over the timed runs. The open is timed from the
/// child's start, every other phase from the end of the one before.
fn durations(timed: &[Heard]) -> Vec<Duration> {
    (0..PHASES.len())
        .map(|phase| {
            let mut times: Vec<Duration> = timed
                .iter()
                .map(|heard| heard.phases[phase] - if phase == 0 { Duration::ZERO } else { heard.phases[phase - 1] })
                .collect();
            times.sort();
            times[times.len() / 2]
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2], args[3].parse().expect("round"));
        return;
    }
    let (rounds, seed) = common::crash_settings(ROUNDS_DEFAULT);
    println!("crash_windows: {rounds} rounds, PURSE_CRASH_SEED={seed}");
    let mut random = purse_ledger::bench_support::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let mut timed = Vec::new();
    let mut acknowledged_total = 0;
    for round in 0..CALIBRATION_RUNS {
        let heard = calibrate(&path, round);
        acknowledged_total += heard.acknowledged.len();
        let at = format!("calibration run {round}");
        runtime.block_on(check_round(&path, round, &at, &heard.acknowledged));
        if round > 0 {
            timed.push(heard);
        }
    }
    let durations = durations(&timed);
    for (phase, duration) in PHASES.iter().zip(&durations) {
        println!("window {phase}: {} ms", millis(*duration));
    }

    // Per window: rounds, then where the kill found the child: in each phase, or exited.
    let mut found = vec![[0u64; PHASES.len() + 1]; PHASES.len()];
    for round in CALIBRATION_RUNS..CALIBRATION_RUNS + rounds {
        let window = usize::try_from(round % PHASES.len() as u64).expect("a phase");
        let span = u64::try_from(durations[window].as_micros()).expect("a short window").max(1);
        let delay = Duration::from_micros(random.below(span));
        let mut running = start(&path, round);
        // The window opens where the phase before it ended in this run (the child's start for
        // the open), so a slow start does not push every kill into the open.
        let mut opened = Duration::ZERO;
        for _ in 0..window {
            match running.phases.recv_timeout(CALIBRATION_PATIENCE) {
                Ok(at) => opened = at,
                Err(_) => break,
            }
        }
        std::thread::sleep((opened + delay).saturating_sub(running.started.elapsed()));
        running.process.kill().expect("SIGKILL the child");
        let status = running.process.wait().expect("reap the child");
        let heard = running.reader.join().unwrap();
        let landed = if status.success() { PHASES.len() } else { heard.phases.len().min(PHASES.len() - 1) };
        found[window][landed] += 1;
        acknowledged_total += heard.acknowledged.len();
        let at =
            format!("round {round} (window {}, kill at {} ms, PURSE_CRASH_SEED={seed})", PHASES[window], millis(delay));
        runtime.block_on(check_round(&path, round, &at, &heard.acknowledged));
    }

    for (window, counts) in PHASES.iter().zip(&found) {
        let rounds: u64 = counts.iter().sum();
        let landed: Vec<String> = PHASES
            .iter()
            .chain(["exited"].iter())
            .zip(counts)
            .map(|(phase, count)| format!("{phase} {count}"))
            .collect();
        println!("window {window}: {rounds} kills; found the child in: {}", landed.join(", "));
    }
    let killed: u64 = found.iter().map(|counts| counts[..PHASES.len()].iter().sum::<u64>()).sum();
    assert!(killed > 0, "every child had exited before its kill: the test tested nothing");
    println!("crash_windows: {acknowledged_total} acknowledged flows survived {killed} kills in {rounds} rounds");
    println!("1 passed, 0 failed");
}

/// `duration` in milliseconds with three decimals (no floating point in this code base).
fn millis(duration: Duration) -> String {
    let micros = duration.as_micros();
    format!("{}.{:03}", micros / 1000, micros % 1000)
}

async fn check_round(path: &str, round: u64, at: &str, acknowledged: &[(String, u64)]) {
    let ledger = common::reopen(path.as_ref())
        .await
        .unwrap_or_else(|error| panic!("{at}: reopening after SIGKILL failed: {error}"));
    let report = ledger.verify().await.unwrap_or_else(|error| panic!("{at}: verify: {error}"));
    let mut group_acknowledged = Vec::new();
    for (request_id, flow_id) in acknowledged {
        let flow = ledger
            .flow(FlowKey::Id(*flow_id))
            .await
            .unwrap_or_else(|error| panic!("{at}: acknowledged flow {flow_id} ({request_id}) lost: {error}"));
        assert_eq!(&flow.request_id, request_id, "{at}: flow {flow_id}");
        if request_id.starts_with('g') {
            group_acknowledged.push(*flow_id);
        } else {
            let index = request_id.rsplit('-').next().and_then(|index| index.parse().ok()).expect("index");
            let retry = ledger.submit(single(round, index)).await.expect("a retry replays");
            assert_eq!(retry.flow_id, *flow_id, "{at}: retry of {request_id}");
        }
    }
    let first = ledger.flow(FlowKey::OuterOrderId(format!("g{round}-0"))).await.is_ok();
    let last = ledger.flow(FlowKey::OuterOrderId(format!("g{round}-{}", GROUP - 1))).await.is_ok();
    assert_eq!(first, last, "{at}: the log holds part of the group");
    if !group_acknowledged.is_empty() {
        assert_eq!(group_acknowledged.len() as u64, GROUP, "{at}: part of the group was acknowledged");
        let replay = ledger.submit_group(group(round), GroupMode::AllOrNothing).await.expect("the group replays");
        let replayed: Vec<u64> = replay
            .items
            .iter()
            .map(|item| match item {
                GroupItem::Replayed(summary) => summary.flow_id,
                other => panic!("{at}: the group's retry wrote or refused: {other:?}"),
            })
            .collect();
        assert_eq!(replayed, group_acknowledged, "{at}: the group's retry");
    }
    assert_eq!(ledger.verify().await.unwrap(), report, "{at}: retries wrote nothing");
    ledger.close().await.unwrap();
}

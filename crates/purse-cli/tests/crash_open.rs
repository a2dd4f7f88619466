//! Kills early in a `purse` process's life: the ledger must open again after every one.
//!
//! Each round runs the built binary's `charge` (one small CHARGE, its own request and order id)
//! against one data directory shared by all rounds, SIGKILLs it after a delay drawn uniformly
//! from the round's window, and reaps it. Most kills of the short window land while the process
//! is still opening the ledger, where sled writes and renames its own files; the long window
//! reaches the write, the fdatasync and the close. After every kill `verify` must succeed (the
//! ledger opens, the whole log re-folds), and every `CHECK_EVERY` rounds and at the end every
//! charge that exited 0 before its kill must be in the log with its flow id: a charge that was
//! killed may or may not be there, an acknowledged one must. The first ledger that does not
//! open, or the first acknowledged charge missing, fails the run with its round, delay and seed;
//! the damaged directory is kept for inspection and its path printed.
//!
//! - `PURSE_CRASH_OPEN_ROUNDS` (default 300): rounds in all.
//! - `PURSE_CRASH_OPEN_WINDOWS` (default `0-30,0-300`): kill windows in milliseconds after the
//!   process started, `from-to`, comma-separated; rounds take them in turn. `run` is a window
//!   from 0 to the current length of an unkilled run (the median of the last `verify` runs):
//!   sled's risky step, writing and renaming its snapshot file, comes at a moment that depends
//!   on the build and the machine's load, and past 30 ms in a loaded debug build.
//! - `PURSE_CRASH_OPEN_SNAPSHOT_EVERY` (default 1): every run of the binary gets it as
//!   `PURSE_SNAPSHOT_EVERY_ENTRIES`, so the ledger writes a snapshot of its projections that
//!   often (by default after every charge, off the commit path, and the next open starts from
//!   it). Kills land while a snapshot is being written too; after each, `verify` must pass with
//!   no warning about a snapshot: one is there whole or not at all.
//! - `PURSE_CRASH_SEED` (default: from the clock, printed).
//! - `PURSE_CRASH_OPEN_KEEP_GOING=1`: after a ledger that does not open, count it, keep the
//!   first such directory, go on with a fresh ledger, and fail at the end with the count. For
//!   measuring how often it happens; the default stops at the first.

use std::collections::{BTreeMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use purse_ledger::bench_support::Rng;
use serde_json::Value;

const ROUNDS_DEFAULT: u64 = 300;
const WINDOWS_DEFAULT: &str = "0-30,0-300";
const ACCOUNTS: u64 = 8;
/// Rounds between full checks of the acknowledged charges (about 16 runs of the binary each).
const CHECK_EVERY: u64 = 25;
/// Acknowledged charges retried at the end: each must replay its first flow.
const RETRIES: usize = 8;
const SIGKILL: i32 = 9;
/// Measurements whose median the `run` window uses.
const TIMES_KEPT: usize = 9;

/// Where in a run a window's kills fall.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// `from-to`: milliseconds after the process started.
    Millis(u64, u64),
    /// `run`: from 0 to how long an unkilled run of the binary on this ledger takes now (the
    /// median of the last `verify` runs), so the kills spread over the whole run whatever the
    /// build and the machine's load.
    Run,
}

/// One kill window and what its rounds did.
#[derive(Debug)]
struct Window {
    span: Span,
    rounds: u64,
    /// Kills that found the process still running (it died of SIGKILL).
    landed: u64,
    /// Charges that exited 0 before their kill.
    acknowledged: u64,
    /// Kills that left sled's snapshot file in progress behind, and of those how many left it
    /// empty or cut short (shorter than the last complete one), which the next open may not read.
    left_snapshot: u64,
    left_short: u64,
    /// Kills that left one of purse's snapshots half-written (`purse-snapshots/*.partial`).
    left_purse_snapshot: u64,
    unopenable: u64,
}

impl Window {
    fn parse(text: &str) -> Option<Window> {
        let span = match text.trim() {
            "run" => Span::Run,
            millis => {
                let (from, to) = millis.split_once('-')?;
                let (from, to): (u64, u64) = (from.trim().parse().ok()?, to.trim().parse().ok()?);
                (from < to).then_some(Span::Millis(from, to))?
            }
        };
        Some(Window {
            span,
            rounds: 0,
            landed: 0,
            acknowledged: 0,
            left_snapshot: 0,
            left_short: 0,
            left_purse_snapshot: 0,
            unopenable: 0,
        })
    }

    fn name(&self) -> String {
        match self.span {
            Span::Millis(from, to) => format!("{from}-{to} ms"),
            Span::Run => "run".to_owned(),
        }
    }

    /// Waits until the kill moment drawn from the window.
    fn wait(&self, random: &mut Rng, timing: &Timing) {
        let mut micros = |from: u64, span: u64| Duration::from_micros(from + random.below(span.max(1)));
        match self.span {
            Span::Millis(from, to) => std::thread::sleep(micros(from * 1000, (to - from) * 1000)),
            Span::Run => {
                let run = median(&timing.runs).unwrap_or(Duration::from_millis(50));
                std::thread::sleep(micros(0, u64::try_from(run.as_micros()).expect("a short run")));
            }
        }
    }
}

/// sled's snapshot files in `data`, with their lengths.
fn snapshots(data: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(data) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .map(|entry| (entry.file_name().to_string_lossy().into_owned(), entry.metadata().map_or(0, |meta| meta.len())))
        .filter(|(name, _)| name.starts_with("snap."))
        .collect()
}

/// Whether a kill left one of purse's own snapshots half-written.
fn purse_snapshot_partial(data: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(data.join("purse-snapshots")) else { return false };
    entries.filter_map(Result::ok).any(|entry| entry.file_name().to_string_lossy().ends_with(".partial"))
}

/// How often the binary snapshots: `PURSE_CRASH_OPEN_SNAPSHOT_EVERY`, default every entry.
fn snapshot_every() -> String {
    std::env::var("PURSE_CRASH_OPEN_SNAPSHOT_EVERY").unwrap_or_else(|_| "1".to_owned())
}

struct Settings {
    rounds: u64,
    windows: Vec<Window>,
    seed: u64,
    keep_going: bool,
}

fn settings() -> Settings {
    let rounds =
        std::env::var("PURSE_CRASH_OPEN_ROUNDS").ok().and_then(|text| text.parse().ok()).unwrap_or(ROUNDS_DEFAULT);
    let windows_text = std::env::var("PURSE_CRASH_OPEN_WINDOWS").unwrap_or_else(|_| WINDOWS_DEFAULT.to_owned());
    let windows: Option<Vec<Window>> = windows_text.split(',').map(Window::parse).collect();
    let windows = match windows {
        Some(windows) if !windows.is_empty() => windows,
        _ => fail(&format!("PURSE_CRASH_OPEN_WINDOWS={windows_text:?} is not a list of from-to milliseconds")),
    };
    let seed = std::env::var("PURSE_CRASH_SEED").ok().and_then(|text| text.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_secs() ^ u64::from(elapsed.subsec_nanos()) << 20)
            | 1
    });
    let keep_going = std::env::var("PURSE_CRASH_OPEN_KEEP_GOING").is_ok_and(|text| text == "1");
    Settings { rounds, windows, seed, keep_going }
}

fn fail(message: &str) -> ! {
    eprintln!("crash_open: FAILED: {message}");
    println!("0 passed, 1 failed");
    std::process::exit(1);
}

fn purse(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_purse"));
    command.arg("--data").arg(data).args(args).env_remove("PURSE_DATA");
    command.env("PURSE_SNAPSHOT_EVERY_ENTRIES", snapshot_every());
    command.env("PURSE_COLD_AFTER_ENTRIES", "0");
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn run(data: &Path, args: &[&str]) -> Output {
    purse(data, args).output().expect("run purse")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// The stdout of a run that must succeed, as JSON; `Err` with what it said otherwise.
fn json(output: &Output) -> Result<Value, String> {
    if !output.status.success() {
        return Err(format!("exit {:?}: {}", output.status, text(&output.stderr)));
    }
    serde_json::from_slice(&output.stdout).map_err(|error| format!("stdout is not JSON ({error}): {output:?}"))
}

fn number(value: &Value, key: &str) -> u64 {
    value[key].as_u64().or_else(|| value[key].as_str().and_then(|text| text.parse().ok())).unwrap_or_else(|| {
        fail(&format!("{key} is not a number in {value}"));
    })
}

/// The charge of round `round`: 1.00 to one of `ACCOUNTS` accounts, ids from the round.
fn charge_args(round: u64) -> Vec<String> {
    let account = round % ACCOUNTS;
    ["charge", "--request-id", &format!("r-{round}"), "--outer-order-id", &format!("o-{round}")]
        .into_iter()
        .map(str::to_owned)
        .chain(["--account-id".to_owned(), format!("acc-{account}"), "--real-value".to_owned(), "1".to_owned()])
        .collect()
}

/// A ledger's flows, as `request_id -> (outer_order_id, account_id, flow_id)`, read through the
/// binary: every page of every account's flows. Also checks each account's REAL balance is
/// exactly its charges (all are 1.00) and that the flows add up to `verify`'s count.
fn flows_present(data: &Path) -> Result<BTreeMap<String, (String, String, u64)>, String> {
    let verify = json(&run(data, &["verify"])).map_err(|error| format!("verify: {error}"))?;
    let mut present = BTreeMap::new();
    for account in 0..ACCOUNTS {
        let account_id = format!("acc-{account}");
        let mut count = 0;
        for page_no in 1.. {
            let page_no = page_no.to_string();
            let output =
                run(data, &["flows", "--account-id", &account_id, "--page-size", "5000", "--page-no", &page_no]);
            if !output.status.success() && text(&output.stderr).contains("ACCOUNT_NOT_FOUND") {
                break;
            }
            let page = json(&output).map_err(|error| format!("flows of {account_id}: {error}"))?;
            let flows = page["flows"].as_array().cloned().unwrap_or_default();
            for flow in &flows {
                let request_id = flow["request_id"].as_str().unwrap_or_default().to_owned();
                let entry = (
                    flow["outer_order_id"].as_str().unwrap_or_default().to_owned(),
                    flow["account_id"].as_str().unwrap_or_default().to_owned(),
                    number(flow, "flow_id"),
                );
                if present.insert(request_id.clone(), entry).is_some() {
                    return Err(format!("request {request_id} has two flows"));
                }
            }
            count += flows.len() as u64;
            if flows.is_empty() || count >= number(&page, "total_count") {
                break;
            }
        }
        if count > 0 {
            let view = json(&run(data, &["account", "--account-id", &account_id]))
                .map_err(|error| format!("account {account_id}: {error}"))?;
            let expected = format!("{count}.00");
            if view["real_value"] != expected.as_str() {
                return Err(format!("{account_id} holds {count} charges of 1.00 but its balance is {view}"));
            }
        }
    }
    if present.len() as u64 != number(&verify, "flows") {
        return Err(format!("the accounts list {} flows, verify counts {verify}", present.len()));
    }
    Ok(present)
}

/// Every acknowledged charge (`round -> flow id`) is present, as it was acknowledged.
fn check_acknowledged(data: &Path, acknowledged: &BTreeMap<u64, u64>) -> Result<usize, String> {
    let present = flows_present(data)?;
    for (round, flow_id) in acknowledged {
        let request_id = format!("r-{round}");
        let expected = (format!("o-{round}"), format!("acc-{}", round % ACCOUNTS), *flow_id);
        match present.get(&request_id) {
            Some(found) if *found == expected => {}
            Some(found) => return Err(format!("acknowledged {request_id} {expected:?} is stored as {found:?}")),
            None => return Err(format!("acknowledged {request_id} (flow {flow_id}) is lost")),
        }
    }
    Ok(present.len())
}

/// The last acknowledged charges, sent again: each replays its flow and writes nothing.
fn check_retries(data: &Path, acknowledged: &BTreeMap<u64, u64>) -> Result<(), String> {
    let before = json(&run(data, &["verify"]))?;
    for (round, flow_id) in acknowledged.iter().rev().take(RETRIES) {
        let args = charge_args(*round);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let flow = json(&run(data, &args)).map_err(|error| format!("retry of r-{round}: {error}"))?;
        if number(&flow, "flow_id") != *flow_id {
            return Err(format!("retry of r-{round} answered {flow}, not flow {flow_id}"));
        }
    }
    let after = json(&run(data, &["verify"]))?;
    if after != before {
        return Err(format!("the retries wrote: verify was {before}, is {after}"));
    }
    Ok(())
}

/// What the `run` window adapts to.
#[derive(Debug, Default)]
struct Timing {
    /// How long the last unkilled runs (the `verify` after each round) took.
    runs: VecDeque<Duration>,
}

/// Adds a measurement, keeping the last `TIMES_KEPT`.
fn keep(times: &mut VecDeque<Duration>, time: Duration) {
    times.push_back(time);
    if times.len() > TIMES_KEPT {
        times.pop_front();
    }
}

fn median(times: &VecDeque<Duration>) -> Option<Duration> {
    let mut sorted: Vec<Duration> = times.iter().copied().collect();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied()
}

/// A fresh, empty ledger directory (the parent directory is removed at the end).
fn fresh_ledger(parent: &Path, number: u64) -> PathBuf {
    parent.join(format!("ledger-{number}"))
}

fn main() {
    let Settings { rounds, mut windows, seed, keep_going } = settings();
    let names: Vec<String> = windows.iter().map(Window::name).collect();
    println!(
        "crash_open: {rounds} rounds, windows {}, snapshots every {} entries, PURSE_CRASH_SEED={seed}{}",
        names.join(", "),
        snapshot_every(),
        if keep_going { ", keep going" } else { "" }
    );
    let mut random = Rng::new(seed);
    let parent = tempfile::tempdir().expect("temp dir");
    let mut ledgers = 0;
    let mut data = fresh_ledger(parent.path(), ledgers);
    let mut kept: Option<PathBuf> = None;
    // round -> flow id, for the current ledger.
    let mut acknowledged = BTreeMap::new();
    let mut acknowledged_total = 0;
    let mut unopenable = 0;
    let mut timing = Timing::default();
    for round in 0..rounds {
        let window_index = usize::try_from(round % windows.len() as u64).expect("a window index");
        let window = &mut windows[window_index];
        let args = charge_args(round);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut process = purse(&data, &args).spawn().expect("start purse");
        let started = Instant::now();
        window.wait(&mut random, &timing);
        // Not reaped yet, so even a process that already exited is still there, a zombie: this
        // cannot hit another.
        process.kill().expect("SIGKILL purse");
        let micros = started.elapsed().as_micros();
        let output = process.wait_with_output().expect("reap purse");
        let at = || {
            format!("round {round} (window {}, kill after {micros} µs, PURSE_CRASH_SEED={seed})", names[window_index])
        };
        window.rounds += 1;
        let files = snapshots(&data);
        if let Some((_, length)) = files.iter().find(|(name, _)| name.ends_with(".generating")) {
            window.left_snapshot += 1;
            let complete = files.iter().filter(|(name, _)| !name.ends_with(".generating")).map(|(_, length)| *length);
            if complete.max().is_none_or(|complete| *length < complete) {
                window.left_short += 1;
            }
        }
        if purse_snapshot_partial(&data) {
            window.left_purse_snapshot += 1;
        }
        match output.status.signal() {
            Some(SIGKILL) => window.landed += 1,
            _ if output.status.success() => {
                let flow_id = json(&output).map(|flow| number(&flow, "flow_id")).unwrap_or_else(|error| fail(&error));
                acknowledged.insert(round, flow_id);
                window.acknowledged += 1;
                acknowledged_total += 1;
            }
            _ => fail(&format!("{}: the charge failed on its own before the kill: {output:?}", at())),
        }
        let verify_started = Instant::now();
        let verify = run(&data, &["verify"]);
        keep(&mut timing.runs, verify_started.elapsed());
        // Killed before its first write was made durable: there is no ledger yet (a read creates
        // none and says so), and the next write creates it. That is not a ledger that will not open.
        let not_created = acknowledged.is_empty()
            && !verify.status.success()
            && String::from_utf8_lossy(&verify.stderr).contains("no ledger at");
        let opened = if not_created {
            Ok(())
        } else {
            json(&verify).and_then(|report| {
                let flows = number(&report, "flows");
                if flows < acknowledged.len() as u64 {
                    return Err(format!("verify counts {flows} flows, {} were acknowledged", acknowledged.len()));
                }
                let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
                if warnings.iter().any(|warning| warning.as_str().is_some_and(|text| text.contains("snapshot"))) {
                    return Err(format!("a kill left a snapshot that fails its checks: {warnings:?}"));
                }
                Ok(())
            })
        };
        if let Err(error) = opened {
            let window = &mut windows[window_index];
            window.unopenable += 1;
            unopenable += 1;
            if kept.is_none() {
                let keep = std::env::temp_dir().join(format!("purse-crash-open-{seed}-round-{round}"));
                let _ = std::fs::remove_dir_all(&keep);
                std::fs::rename(&data, &keep).unwrap_or_else(|error| fail(&format!("keeping the ledger: {error}")));
                println!("{}: the ledger no longer opens ({error}); kept at {}", at(), keep.display());
                kept = Some(keep);
            } else {
                println!("{}: the ledger no longer opens ({error})", at());
            }
            if !keep_going {
                fail(&format!("{}: after the SIGKILL the ledger does not open: {error}", at()));
            }
            ledgers += 1;
            data = fresh_ledger(parent.path(), ledgers);
            acknowledged.clear();
            continue;
        }
        if (round + 1) % CHECK_EVERY == 0 || round + 1 == rounds {
            match check_acknowledged(&data, &acknowledged) {
                Ok(present) => println!(
                    "round {round}: {} acknowledged, {present} flows in the ledger, every acknowledged one present",
                    acknowledged.len()
                ),
                Err(error) => fail(&format!("{}: {error}", at())),
            }
        }
    }
    if let Err(error) = check_retries(&data, &acknowledged) {
        fail(&format!("after round {}: {error}", rounds.saturating_sub(1)));
    }
    let landed: u64 = windows.iter().map(|window| window.landed).sum();
    let per_window: Vec<String> = windows
        .iter()
        .map(|window| {
            format!(
                "{}: {} rounds, {} landed, {} acknowledged, {} left a snapshot in progress ({} short), \
                 {} left a purse snapshot half-written, {} unopenable",
                window.name(),
                window.rounds,
                window.landed,
                window.acknowledged,
                window.left_snapshot,
                window.left_short,
                window.left_purse_snapshot,
                window.unopenable
            )
        })
        .collect();
    println!(
        "crash_open: {rounds} rounds, {landed} kills landed before exit, {acknowledged_total} acknowledged, \
         {unopenable} unopenable ledgers; {}",
        per_window.join("; ")
    );
    if unopenable > 0 {
        fail(&format!("{unopenable} of {rounds} kills left a ledger that does not open (PURSE_CRASH_SEED={seed})"));
    }
    // A charge needs longer than the short window: only the kills matter to what this tests.
    assert!(landed > 0, "every charge had exited before its kill: the test tested nothing");
    println!("1 passed, 0 failed");
}

//! `purse bench`: a load generator that drives the embedded [`Ledger`] in-process and prints
//! one JSON report, then checks its own result.
//!
//! The run, in order:
//!
//! 1. open a ledger in a fresh temporary directory (or an empty `--data DIR`), set the ledger
//!    default rules (CUSTOMIZED: 100.00 → 20.00, 500.00 → 150.00);
//! 2. open every account with one CHARGE of 100.00 (not timed);
//! 3. the timed run: `--concurrency` callers in a closed loop (send, await the durable answer,
//!    send the next) share `--flows` requests of the `--mix`, on accounts drawn by
//!    `--distribution`, a `--replay-ratio` share of them retries of an earlier accepted request;
//! 4. the self-check: the sum of every account's balance equals the sum of the `affected` of
//!    every accepted flow (per bucket), every retry came back as its first flow, `verify`
//!    passes and counts exactly the accepted flows;
//! 5. close, measure the files, reopen (timed: the whole log is read back and folded) and
//!    check the balances again.
//!
//! A failed check prints the report with `"passed": false` and exits non-zero, its error naming
//! every failure (`STORAGE` if the ledger answered it, else `CORRUPTION`). A step that fails
//! after the run (closing, reopening) ends the bench with an error that gives the run's own
//! failures first: a disk that filled up during the run is why the reopen fails too.
//!
//! No float arithmetic: rates are integer quotients (`flows · 10⁶ / µs`), ratios are written
//! with two decimals from integers.

mod http;
mod measure;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use purse_core::{ErrorCode, RuleSet, RuleSetText, Scale, Zone};
use purse_ledger::{Ledger, LedgerConfig, WriterStats};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use measure::{directory_bytes, fdatasync_floor, peak_rss_bytes, MachineCpu, ThreadCpu, FSYNC_PROBES};
use purse_wire::error::WireError;
use purse_wire::render::to_text;
use workload::{account_id, Accounts, Caller, Kind, Mix, Plan, Tally};

/// `purse bench`
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Accounts the load spreads over; each is opened by one CHARGE before the timed run.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub accounts: u32,
    /// Requests the callers send in the timed run, retries included.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub flows: u64,
    /// Callers in flight at once, each sending its next request when its last one is answered
    /// (default 1,024; with `--batch`, 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub concurrency: Option<u32>,
    /// Commands per call: 1 sends each through `Ledger::submit`; more, up to 8,189, sends them
    /// through `Ledger::submit_batch`, as a gateway or a bulk load would. Latency is then per call.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=purse_ledger::SUBMIT_BATCH_MAX as u64))]
    pub batch: u64,
    /// Percent of each command: CHARGE with the gift rule, DEDUCT, partial UNDEDUCT of an
    /// earlier DEDUCT or CAPTURE, UNCHARGE of an earlier CHARGE, and (0 unless given) HOLD,
    /// CAPTURE of half of an open hold, RELEASE of one.
    #[arg(long, value_name = "MIX", default_value = "charge=40,deduct=45,undeduct=10,uncharge=5",
          value_parser = Mix::parse)]
    pub mix: Mix,
    /// How accounts are drawn: uniform, or zipf (exponent 1: a few hot accounts).
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    pub distribution: Distribution,
    /// Share of requests that retry an earlier accepted request (same request_id, same
    /// request), 0 to 1.
    #[arg(long, value_name = "RATIO", default_value = "0", value_parser = parse_ratio)]
    pub replay_ratio: u64,
    /// Seed of the callers' random choices: the same seed sends the same requests.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Drive a `purse serve` at this base URL (http://HOST:PORT) over its native API instead of
    /// a ledger in this process: the same workload, one request per call.
    #[arg(long, value_name = "URL", conflicts_with_all = ["batch", "concurrency"])]
    pub http: Option<String>,
    /// The API key `--http` sends (scope write; admin also sets the rules and verifies).
    #[arg(long, value_name = "KEY", env = "PURSE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// With `--http`: keep-alive HTTP/1.1 connections, each a caller sending its next request
    /// when its last one is answered (default 1,024).
    #[arg(long, value_name = "N", requires = "http", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub connections: Option<u32>,
}

/// Callers when none are given: one per connection of a busy service ...
const CALLERS_DEFAULT: u32 = 1024;
/// ... and with `--batch`, a few: each call already carries many commands. With four at batch
/// 8,189 the writer waited for a caller under 1 % of the run (writer_idle_ms, performance.md).
const BATCH_CALLERS_DEFAULT: u32 = 4;

impl BenchArgs {
    /// The callers of the run: `--concurrency`, else the default for `--batch`.
    fn callers(&self) -> u32 {
        self.concurrency.unwrap_or(if self.batch > 1 { BATCH_CALLERS_DEFAULT } else { CALLERS_DEFAULT })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Distribution {
    Uniform,
    Zipf,
}

/// A ratio `0..=1` as parts per million, parsed exactly (no float).
fn parse_ratio(text: &str) -> Result<u64, String> {
    let micro = Scale::new(6).expect("6 decimals is a valid scale");
    let ppm = purse_core::Amount::parse(text, micro).map_err(|error| format!("{error}"))?.minor();
    u64::try_from(ppm).ok().filter(|&ppm| ppm <= 1_000_000).ok_or_else(|| format!("{text:?} is not between 0 and 1"))
}

/// Runs the benchmark. `data` is the directory given with `--data` on the command line, if
/// any: it must be empty or missing, and is kept afterwards. Without it the run uses a fresh
/// temporary directory and removes it.
pub async fn run(
    args: BenchArgs,
    data: Option<PathBuf>,
    scale: Option<Scale>,
    zone: Option<Zone>,
    tuning: crate::args::Tuning,
) -> Result<String, WireError> {
    if let Some(url) = &args.http {
        if let Some(path) = data {
            return Err(WireError::invalid_argument(format!(
                "bench --http drives a server, which holds its own ledger: leave out --data {}",
                path.display()
            )));
        }
        let (report, failure) = http::bench(&args, url, scale, zone).await?;
        return finish(&report, failure);
    }
    let is_temporary = data.is_none();
    let temporary;
    let path = match data {
        Some(path) => {
            check_empty(&path)?;
            path
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("purse-bench-")
                .tempdir()
                .map_err(|io| WireError::System(format!("creating a temporary data directory: {io}")))?;
            temporary.path().to_owned()
        }
    };
    let mut config = LedgerConfig::new(&path);
    config.scale = scale;
    config.zone = zone;
    tuning.apply(&mut config);
    let (report, failure) = bench(&args, config, is_temporary).await?;
    finish(&report, failure)
}

/// The report as printed; with a failed self-check, printed first, then the failure.
fn finish(report: &Value, failure: Option<WireError>) -> Result<String, WireError> {
    let document = to_text(&Exact(report));
    match failure {
        None => Ok(document),
        Some(error) => {
            // The report is the evidence: print it, then fail.
            crate::print(&document)?;
            Err(error)
        }
    }
}

fn check_empty(path: &Path) -> Result<(), WireError> {
    match std::fs::read_dir(path).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(WireError::invalid_argument(format!(
            "purse bench needs an empty or missing data directory, and {} holds files",
            path.display()
        ))),
        Ok(false) => Ok(()),
        Err(io) if io.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(io) => Err(WireError::System(format!("reading {}: {io}", path.display()))),
    }
}

/// The report, and the error to end with if the self-check failed. An error that stops the
/// bench after the timed run starts with the run's own failures (see [`Check::then`]).
async fn bench(
    args: &BenchArgs,
    config: LedgerConfig,
    temporary: bool,
) -> Result<(Value, Option<WireError>), WireError> {
    let ledger = Ledger::open(config.clone()).await?;
    let scale = ledger.scale();
    let rules = RuleSetText {
        gift_valid_days: None,
        deduction_order: None,
        gift_type: Some("CUSTOMIZED".into()),
        full_gift_switch: Some(false),
        tiers: vec![("100.00".into(), "20.00".into()), ("500.00".into(), "150.00".into())],
    };
    let rules = RuleSet::from_text(&rules, scale)?;
    ledger.set_rules(None, rules).await?;

    let account_count = u64::from(args.accounts);
    let plan = Arc::new(Plan {
        scale,
        account_ids: (0..args.accounts as usize).map(account_id).collect(),
        accounts: match args.distribution {
            Distribution::Uniform => Accounts::uniform(account_count),
            Distribution::Zipf => Accounts::zipf(account_count),
        },
        mix: args.mix,
        replay_ppm: args.replay_ratio,
        seed: args.seed,
    });

    // Setup, not timed: every account opened, with the same concurrency.
    let setup_started = Instant::now();
    let mut setup = Tally::default();
    let openers = (args.callers() as usize).min(plan.account_ids.len());
    // Opened in batches of the run's size: with `--batch`, a few callers open 100,000 accounts
    // in seconds instead of minutes of one fsync each.
    let opening_batch = usize::try_from(args.batch).unwrap_or(1);
    let per_opener = plan.account_ids.len().div_ceil(openers);
    let tasks: Vec<_> = (0..openers)
        .map(|opener| {
            let start = opener * per_opener;
            let end = (start + per_opener).min(plan.account_ids.len());
            tokio::spawn(workload::open_accounts(plan.clone(), ledger.clone(), start..end, opening_batch))
        })
        .collect();
    for task in tasks {
        setup.merge(task.await.map_err(|error| WireError::System(format!("an opening task failed: {error}")))?);
    }
    let setup_micros = micros(setup_started);

    // The disk's floor, in the same session, just before the run.
    let floor = fdatasync_floor(&config.path)
        .map_err(|io| WireError::System(format!("measuring fdatasync beside {}: {io}", config.path.display())))?;

    // The timed run.
    let stats_before = ledger.stats().await?;
    let fsyncs_before = ledger.fsyncs().await?;
    let cpu_before = ThreadCpu::now();
    let machine_before = MachineCpu::now();
    let callers = u64::from(args.callers()).min(args.flows);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|number| {
            let requests = args.flows / callers + u64::from(number < args.flows % callers);
            tokio::spawn(Caller::new(plan.clone(), number, requests, args.batch).run(ledger.clone()))
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await.map_err(|error| WireError::System(format!("a caller failed: {error}")))?);
    }
    let run_micros = micros(started).max(1);
    let cpu = ThreadCpu::now().since(&cpu_before);
    let foreign_run = MachineCpu::now().foreign_since(&machine_before);
    // The self-check, on the live ledger, from here on: every failure after the run is
    // reported after what the run itself found.
    let mut check = Check::default();
    check.faults(&setup);
    check.faults(&tally);
    let stats_after = ledger.stats().await.map_err(|error| check.then("reading the writer's counters", error))?;
    let fsyncs = ledger.fsyncs().await.map_err(|error| check.then("counting fsyncs", error))? - fsyncs_before;
    let rss_after_run = peak_rss_bytes();
    drop(plan);

    let expected = add(setup.effect, tally.effect);
    let expected_held = add(setup.held, tally.held);
    let balances = balance_sum(&ledger, args.accounts).await;
    check.balances("after the run", expected, expected_held, &balances);
    let accepted = setup.accepted_total() + tally.accepted_total();
    let verify_started = Instant::now();
    let verified = ledger.verify().await;
    let verify_micros = micros(verify_started);
    let entries = match &verified {
        Ok(report) => {
            if report.flows != accepted {
                check.fail(format!("verify counts {} flows, the callers had {accepted} accepted", report.flows));
            }
            report.entries
        }
        Err(error) => {
            check.ledger_failed("verify failed", error);
            0
        }
    };
    let sled_bytes = ledger.size_on_disk().await.map_err(|error| check.then("measuring sled's files", error))?;
    let snapshots_run =
        ledger.snapshot_stats().await.map_err(|error| check.then("reading the snapshot counters", error))?;
    let close_started = Instant::now();
    ledger.close().await.map_err(|error| check.then("closing the ledger", error))?;
    let close_micros = micros(close_started);
    let disk = directory_bytes(&config.path);
    let snapshot_disk = directory_bytes(&config.path.join("purse-snapshots"));

    // Recovery: open again, which reads and folds the whole log.
    let machine_before = MachineCpu::now();
    let reopen_started = Instant::now();
    let ledger = Ledger::open(config.clone()).await.map_err(|error| check.then("reopening the ledger", error))?;
    let reopen_micros = micros(reopen_started).max(1);
    let machine_reopened = MachineCpu::now();
    let foreign_reopen = machine_reopened.foreign_since(&machine_before);
    let own_cpu_reopen = machine_reopened.own_since(&machine_before);
    let snapshots_reopen =
        ledger.snapshot_stats().await.map_err(|error| check.then("reading the snapshot counters", error))?;
    let balances_reopened = balance_sum(&ledger, args.accounts).await;
    check.balances("after reopening", expected, expected_held, &balances_reopened);
    ledger.close().await.map_err(|error| check.then("closing the reopened ledger", error))?;

    let latencies = Percentiles::new(std::mem::take(&mut tally.latencies_us));
    let batches = stats_after.batches - stats_before.batches;
    let batched_requests = stats_after.requests - stats_before.requests;
    let rejected: u64 = tally.rejected.values().sum();
    let report = json!({
        "workload": {
            "accounts": args.accounts,
            "requests": args.flows,
            "concurrency": args.callers(),
            "batch": args.batch,
            "mix_percent": Kind::ALL.iter().map(|kind| (kind.name().to_owned(), json!(args.mix.0[kind.index()])))
                .collect::<serde_json::Map<_, _>>(),
            "distribution": match args.distribution { Distribution::Uniform => "uniform", Distribution::Zipf => "zipf" },
            "replay_ratio": decimal(args.replay_ratio, 1_000_000, 6),
            "seed": args.seed,
            "data": if temporary { format!("{} (temporary, removed)", config.path.display()) } else { config.path.display().to_string() },
            "durability": "every answer after flush + fdatasync of sled's data file (group commit)",
        },
        "setup": {
            "accounts_opened": setup.accepted_total(),
            "elapsed_ms": setup_micros / 1000,
        },
        "run": run_section(&tally, rejected, args.flows, run_micros),
        "latency_us": latencies.report(),
        "latency_of": if args.batch > 1 { "one call of --batch commands, from send to its durable answers" } else { "one request, from send to its durable answer" },
        "group_commit": group_commit(&stats_before, &stats_after, batches, batched_requests, fsyncs),
        "fsyncs": fsyncs,
        "fdatasync_floor_us": {
            "p50": floor.0,
            "p99": floor.1,
            "probes": FSYNC_PROBES,
            "note": "just before the run: 4 KiB appended to a file beside the ledger, then fdatasync; no durable commit can be faster",
        },
        "cpu_ms": {
            "writer": cpu.writer,
            "syncer": cpu.syncer,
            "callers": cpu.callers,
            "sled": cpu.sled,
            "writer_busy_percent": cpu.writer * 100 / (run_micros / 1000).max(1),
            "note": "CPU time (user + system, 10 ms ticks) of the timed run by thread: the ledger's writer thread, its syncer thread (sled's flush and the fdatasync), the callers' runtime thread(s) (with tokio's blocking pool, where batches are fingerprinted), sled's own threads; writer_busy_percent is the writer's CPU over the run's wall time: the rest it waits (for the disk, or for requests)",
        },
        "disk": {
            "bytes": disk.allocated,
            "bytes_apparent": disk.apparent,
            "sled_size_on_disk": sled_bytes,
            "flows_in_log": accepted,
            "bytes_per_flow": disk.allocated / accepted.max(1),
        },
        "memory": {
            "peak_rss_bytes": peak_rss_bytes(),
            "peak_rss_bytes_after_run": rss_after_run,
            "note": "VmHWM of the process; the overall peak includes verify, which folds a second copy of the projections beside the live one",
        },
        "verify_ms": verify_micros / 1000,
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
            "foreign_cpu_ms_during_run": foreign_run,
            "foreign_cpu_ms_during_reopen": foreign_reopen,
            "note": "CPU time other processes used meanwhile (/proc/stat busy time less this process's): well above 0, the figures were shared with other work",
        },
        "recovery": {
            "entries": entries,
            "reopen_ms": reopen_micros / 1000,
            "entries_per_second": entries * 1_000_000 / reopen_micros,
            "snapshot_loaded_from": snapshots_reopen.loaded_from,
            "entries_folded": snapshots_reopen.entries_folded_on_open,
            "snapshot_load_ms": snapshots_reopen.load_micros / 1000,
            "sled_open_ms": snapshots_reopen.sled_open_micros / 1000,
            "cold_open_ms": snapshots_reopen.cold_open_micros / 1000,
            "cpu_ms": own_cpu_reopen,
            "note": "reopen_ms is the whole of Ledger::open: sled_open_ms (sled's own recovery), cold_open_ms (the cold store's manifest and run indexes, the head), snapshot_load_ms (the newest snapshot read and the log after it folded), and starting the writer; cpu_ms is this process's CPU time meanwhile (every thread, 10 ms ticks)",
        },
        "snapshots": {
            "written_in_run": snapshots_run.written,
            "failed_in_run": snapshots_run.failed,
            "writer_pause_ms_max": snapshots_run.pause_micros_max / 1000,
            "close_ms": close_micros / 1000,
            "bytes_on_disk_after_close": snapshot_disk.allocated,
            "note": "writer_pause_ms_max: the longest the writer stopped to take a snapshot (its copy-on-write copy of the projections; the encoding runs beside it) during the run (and setup); close_ms includes the snapshot a clean close takes when 10,000 or more entries came after the last one",
        },
        "check": check.report(),
    });
    Ok((report, check.failure()))
}

/// The report's `run` section, the same for both modes: what the timed run sent and got.
fn run_section(tally: &Tally, rejected: u64, flows: u64, run_micros: u64) -> Value {
    json!({
        "elapsed_ms": run_micros / 1000,
        "accepted": tally.accepted_total(),
        "flows_per_second": tally.accepted_total() * 1_000_000 / run_micros,
        "requests_per_second": flows * 1_000_000 / run_micros,
        "replayed": tally.replayed,
        "rejected": rejected,
        "rejected_by_code": tally.rejected,
        "by_type": Kind::ALL.iter().map(|kind| {
            let index = kind.index();
            (kind.name().to_uppercase(), json!({ "sent": tally.sent[index], "accepted": tally.accepted[index] }))
        }).collect::<serde_json::Map<_, _>>(),
    })
}

fn group_commit(before: &WriterStats, after: &WriterStats, batches: u64, requests: u64, fsyncs: u64) -> Value {
    json!({
        "batches": batches,
        "batch_size_mean": decimal(requests, batches.max(1), 2),
        "batch_size_max": after.batch_requests_max,
        "commits": after.commits - before.commits,
        "flows_per_fsync": decimal(after.entries_written - before.entries_written, fsyncs.max(1), 2),
        "writer_idle_ms": (after.idle_micros - before.idle_micros) / 1000,
        "writer_durability_wait_ms": (after.durability_wait_micros - before.durability_wait_micros) / 1000,
        "note": "idle: the writer waited for requests; durability wait: for the syncer to take a batch or finish those in flight, or for its own sync. The writer counts batches, requests and the largest batch only: the size is a mean (requests / batches in the timed run), not a p50; the max covers the setup too",
    })
}

/// Marks a string of the report that stands for a decimal number ([`decimal`]). No other string
/// of the report starts with a NUL.
const DECIMAL_MARK: char = '\0';

/// `numerator / denominator` as a JSON number with `decimals` decimals, truncated. A `Value`
/// holds a fraction only as a float (purse leaves serde_json's `arbitrary_precision` off, see
/// the workspace manifest), so the decimal is kept as marked text and [`Exact`] prints it as
/// the number it spells.
fn decimal(numerator: u64, denominator: u64, decimals: u32) -> Value {
    let factor = 10u128.pow(decimals);
    let scaled = u128::from(numerator) * factor / u128::from(denominator.max(1));
    let text = if decimals == 0 {
        scaled.to_string()
    } else {
        format!("{}.{:0width$}", scaled / factor, scaled % factor, width = decimals as usize)
    };
    Value::String(format!("{DECIMAL_MARK}{text}"))
}

/// The report as it is printed: every [`decimal`] as the JSON number it spells, digit for digit.
struct Exact<'a>(&'a Value);

impl Serialize for Exact<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::String(text) => match text.strip_prefix(DECIMAL_MARK) {
                Some(number) => {
                    RawValue::from_string(number.to_owned()).map_err(serde::ser::Error::custom)?.serialize(serializer)
                }
                None => serializer.serialize_str(text),
            },
            Value::Array(items) => serializer.collect_seq(items.iter().map(Exact)),
            Value::Object(members) => serializer.collect_map(members.iter().map(|(key, value)| (key, Exact(value)))),
            other => other.serialize(serializer),
        }
    }
}

fn micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn add(a: [i128; 3], b: [i128; 3]) -> [i128; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// The sums of every account's REAL, GIFT, PRE, and of its held value, in minor units, or why
/// they could not be read.
async fn balance_sum(ledger: &Ledger, accounts: u32) -> Result<([i128; 3], [i128; 3]), String> {
    let wide = |buckets: purse_core::Buckets| {
        [buckets.real.minor().into(), buckets.gift.minor().into(), buckets.pre.minor().into()]
    };
    let (mut sum, mut held) = ([0i128; 3], [0i128; 3]);
    for index in 0..accounts as usize {
        let id = account_id(index);
        let account = ledger.account(&id).await.map_err(|error| format!("reading account {id}: {error}"))?;
        sum = add(sum, wide(account.balance));
        held = add(held, wide(account.held));
    }
    Ok((sum, held))
}

#[derive(Debug, Default)]
struct Check {
    failures: Vec<String>,
    expected: Option<[i128; 3]>,
    found: Option<[i128; 3]>,
    /// The ledger answered `STORAGE` somewhere: the disk failed, not the arithmetic.
    storage: bool,
}

impl Check {
    fn fail(&mut self, message: String) {
        self.failures.push(message);
    }

    fn faults(&mut self, tally: &Tally) {
        if tally.fault_count > 0 {
            self.fail(format!("{} faults, among them: {}", tally.fault_count, tally.faults.join("; ")));
        }
        self.storage |= tally.rejected.contains_key(ErrorCode::Storage.as_str());
    }

    fn ledger_failed(&mut self, what: &str, error: &purse_ledger::Error) {
        self.storage |= error.code() == ErrorCode::Storage;
        self.fail(format!("{what}: {error}"));
    }

    /// The error to end with when `step` fails after the run: what the run found first (a
    /// disk that filled up during the run is usually why the step failed too: a reopen that
    /// cannot write), then the step's own error, whose code it keeps.
    fn then(&self, step: &str, error: impl Into<WireError>) -> WireError {
        let context = if self.failures.is_empty() {
            format!("purse bench: {step} failed")
        } else {
            format!("purse bench: the run failed ({}), then {step} failed", self.failures.join("; "))
        };
        WireError::Context { context, source: Box::new(error.into()) }
    }

    /// The error a failed self-check ends with, naming every failure: `STORAGE` if the disk
    /// failed, else `CORRUPTION` (the ledger disagrees with itself).
    fn failure(&self) -> Option<WireError> {
        if self.passed() {
            return None;
        }
        let message =
            format!("purse bench: the self-check failed: {} (see \"check\" in the report)", self.failures.join("; "));
        Some(WireError::Ledger(if self.storage {
            purse_ledger::Error::Storage(message)
        } else {
            purse_ledger::Error::Corruption(message)
        }))
    }

    /// The accounts' balances and held value against what the accepted flows add up to.
    fn balances(
        &mut self,
        when: &str,
        expected: [i128; 3],
        expected_held: [i128; 3],
        found: &Result<([i128; 3], [i128; 3]), String>,
    ) {
        self.expected = Some(expected);
        match found {
            Ok((found, held)) => {
                self.found = Some(*found);
                if *found != expected {
                    self.fail(format!(
                        "{when}: the accounts hold {found:?} (REAL, GIFT, PRE minor units), the accepted flows add up to {expected:?}"
                    ));
                }
                if *held != expected_held {
                    self.fail(format!(
                        "{when}: the accounts hold {held:?} on hold (REAL, GIFT, PRE minor units), the accepted flows' held changes add up to {expected_held:?}"
                    ));
                }
            }
            Err(message) => self.fail(format!("{when}: {message}")),
        }
    }

    fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn report(&self) -> Value {
        let buckets = |sums: Option<[i128; 3]>| {
            sums.map_or(Value::Null, |[real, gift, pre]| {
                json!({ "real": real.to_string(), "gift": gift.to_string(), "pre": pre.to_string(), "total": (real + gift + pre).to_string() })
            })
        };
        json!({
            "passed": self.passed(),
            "flows_effect_minor": buckets(self.expected),
            "balances_minor": buckets(self.found),
            "failures": self.failures,
        })
    }
}

/// Latency percentiles over every request of the timed run (nearest rank).
#[derive(Debug)]
struct Percentiles(Vec<u64>);

impl Percentiles {
    fn new(mut samples: Vec<u64>) -> Percentiles {
        samples.sort_unstable();
        Percentiles(samples)
    }

    /// The sample at `per_mille`/1000 of the way (nearest rank).
    fn at(&self, per_mille: usize) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = (self.0.len() * per_mille).div_ceil(1000).max(1);
        self.0[rank - 1]
    }

    fn report(&self) -> Value {
        let count = self.0.len() as u64;
        let mean = self.0.iter().map(|&sample| u128::from(sample)).sum::<u128>() / u128::from(count.max(1));
        json!({
            "samples": count,
            "p50": self.at(500),
            "p90": self.at(900),
            "p99": self.at(990),
            "p999": self.at(999),
            "max": self.0.last().copied().unwrap_or(0),
            "mean": u64::try_from(mean).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_compares_balances_and_held_value() {
        let table: [(&str, [i128; 3], [i128; 3], bool); 3] = [
            ("both match", [5, 6, 7], [1, 0, 2], true),
            ("a balance differs", [5, 6, 8], [1, 0, 2], false),
            ("held value differs", [5, 6, 7], [1, 1, 2], false),
        ];
        for (name, balances, held, passes) in table {
            let mut check = Check::default();
            check.balances("after the run", [5, 6, 7], [1, 0, 2], &Ok((balances, held)));
            assert_eq!(check.passed(), passes, "{name}: {:?}", check.failures);
        }
    }

    #[test]
    fn ratios_parse_exactly() {
        assert_eq!(parse_ratio("0"), Ok(0));
        assert_eq!(parse_ratio("0.05"), Ok(50_000));
        assert_eq!(parse_ratio("1"), Ok(1_000_000));
        assert_eq!(parse_ratio(".000001"), Ok(1));
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("0.0000001").is_err());
    }

    #[test]
    fn the_check_fails_on_any_difference() {
        let mut check = Check::default();
        check.balances("after the run", [100, 20, 0], [0; 3], &Ok(([100, 20, 0], [0; 3])));
        assert!(check.passed());
        check.balances("after reopening", [100, 20, 0], [0; 3], &Ok(([100, 21, 0], [0; 3])));
        assert!(!check.passed());
        assert!(check.failures[0].contains("after reopening"), "{:?}", check.failures);
        let mut unreadable = Check::default();
        unreadable.balances("after the run", [0; 3], [0; 3], &Err("reading account acct-000001: gone".into()));
        assert!(!unreadable.passed());
        assert_eq!(unreadable.report()["passed"], json!(false));
    }

    /// What a failed bench says, in order: the run's failures, then the step that failed after
    /// it; and the code of the disk's failure, not of the arithmetic's.
    #[test]
    fn the_runs_failure_comes_first() {
        let disk_full = purse_ledger::Error::Storage("flushing sled: No space left on device".into());
        let reopen = || purse_ledger::Error::Storage("opening sled: No space left on device".into());
        let check = |clean: bool| {
            let mut check = Check::default();
            if !clean {
                check.ledger_failed("verify failed", &disk_full);
            }
            check
        };
        let table: Vec<(WireError, &str, &str)> = vec![
            (
                check(false).then("reopening the ledger", reopen()),
                "STORAGE",
                "purse bench: the run failed (verify failed: storage failure: flushing sled: No space left on \
                 device), then reopening the ledger failed: storage failure: opening sled: No space left on device",
            ),
            (
                check(true).then("reopening the ledger", reopen()),
                "STORAGE",
                "purse bench: reopening the ledger failed: storage failure: opening sled: No space left on device",
            ),
            (
                check(false).failure().expect("a failure"),
                "STORAGE",
                "storage failure: purse bench: the self-check failed: verify failed: storage failure: flushing sled: \
                 No space left on device (see \"check\" in the report)",
            ),
        ];
        for (error, code, message) in table {
            assert_eq!((error.code().as_str(), error.to_string().as_str()), (code, message));
        }
        assert!(check(true).failure().is_none());
        let mut wrong = Check::default();
        wrong.balances("after the run", [1, 0, 0], [0; 3], &Ok(([2, 0, 0], [0; 3])));
        assert_eq!(wrong.failure().expect("a failure").code().as_str(), "CORRUPTION");
    }

    #[test]
    fn decimals_and_percentiles() {
        let shown = |value: Value| serde_json::to_string(&Exact(&value)).unwrap();
        assert_eq!(shown(decimal(7, 2, 2)), "3.50");
        assert_eq!(shown(decimal(1, 3, 2)), "0.33");
        assert_eq!(shown(decimal(50_000, 1_000_000, 6)), "0.050000");
        assert_eq!(shown(decimal(5, 1, 0)), "5");
        assert_eq!(shown(json!({"a": [decimal(1, 4, 2), "text", 1]})), r#"{"a":[0.25,"text",1]}"#);
        let samples = Percentiles::new((1..=1000).rev().collect());
        assert_eq!((samples.at(500), samples.at(990), samples.at(1000)), (500, 990, 1000));
        assert_eq!(Percentiles::new(vec![9]).at(500), 9);
    }
}

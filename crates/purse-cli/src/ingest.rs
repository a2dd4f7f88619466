//! `purse ingest --provider kybio|alsc|zenlayer [OPTIONS] FILE…` (`-` for stdin): provider
//! exports into the ledger through purse-ingest, one report out.
//!
//! Exit codes: 0 when the run is clean (no rejected record, no mismatch; committed, or a dry
//! run), 3 when it finished but found rejected records or mismatches (the report is still on
//! stdout), and 1 or 2 with the usual error document when it could not run at all.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use purse_core::Zone;
use purse_ingest::{AlscUnits, Input, Mode, Options, Progress, Provider};
use purse_ledger::Ledger;

use purse_wire::error::WireError;
use purse_wire::render::to_text;

/// The exit code of a run that finished but found rejected records or mismatches.
pub const EXIT_FINDINGS: u8 = 3;

/// Set once an ingestion has finished with findings. One command runs per process, so this is
/// the one place main learns that a successful answer still deserves exit 3.
static FINDINGS: AtomicBool = AtomicBool::new(false);

/// The exit code of a command whose answer was printed: 3 after an ingestion with findings.
pub fn exit_code() -> ExitCode {
    if FINDINGS.load(Ordering::Relaxed) {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

/// `ingest`
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Whose export the files are.
    #[arg(long, value_enum)]
    pub provider: ProviderArg,
    /// Apply the good records and report the others (default: all or nothing).
    #[arg(long, conflicts_with = "dry_run")]
    pub partial: bool,
    /// Write nothing; report what would happen.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not bring in the opening balance of an account new to the ledger.
    #[arg(long)]
    pub no_opening_balance: bool,
    /// The unit of ALSC amounts: minor (fen, hundredths) or major (yuan).
    #[arg(long, value_enum, default_value_t = UnitsArg::Minor)]
    pub alsc_units: UnitsArg,
    /// Take the ALSC flow type NAME as FLOW_TYPE (CHARGE, DEDUCT, UNDEDUCT, UNCHARGE, IMPORT,
    /// ADJUST, or SKIP to skip its records). Repeat for several names.
    #[arg(long, value_name = "NAME=FLOW_TYPE")]
    pub map_flow_type: Vec<String>,
    /// The zone of KYBIO's and ALSC's `YYYY-MM-DD HH:MM:SS` times.
    #[arg(long, value_name = "OFFSET", default_value = "+08:00", allow_hyphen_values = true)]
    pub provider_time_zone: String,
    /// Export files, or - for stdin.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    Kybio,
    Alsc,
    Zenlayer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnitsArg {
    Minor,
    Major,
}

/// Runs one ingestion and returns the report to print.
pub async fn run(ledger: &Ledger, args: IngestArgs) -> Result<String, WireError> {
    let options = options(&args)?;
    if args.files.iter().filter(|file| file.as_os_str() == "-").count() > 1 {
        return Err(WireError::invalid_argument("stdin (-) can be given once"));
    }
    // Every file is opened before anything is read, so a wrong path changes nothing.
    let inputs = args.files.iter().map(Input::open).collect::<Result<Vec<_>, _>>().map_err(ingest_error)?;
    let total_bytes: Option<u64> = args
        .files
        .iter()
        .map(|file| if file.as_os_str() == "-" { None } else { std::fs::metadata(file).ok().map(|meta| meta.len()) })
        .sum();
    let progress = Bar::new(total_bytes);
    let report = purse_ingest::run(ledger, inputs, options, &progress).await;
    progress.0.finish_and_clear();
    let report = report.map_err(ingest_error)?;
    if !report.clean() {
        FINDINGS.store(true, Ordering::Relaxed);
    }
    Ok(to_text(&report))
}

fn options(args: &IngestArgs) -> Result<Options, WireError> {
    let provider = match args.provider {
        ProviderArg::Kybio => Provider::Kybio,
        ProviderArg::Alsc => Provider::Alsc,
        ProviderArg::Zenlayer => Provider::Zenlayer,
    };
    let mut options = Options::new(provider);
    options.mode = match (args.partial, args.dry_run) {
        (_, true) => Mode::DryRun,
        (true, false) => Mode::Partial,
        (false, false) => Mode::AllOrNothing,
    };
    options.opening_balances = !args.no_opening_balance;
    options.alsc_units = match args.alsc_units {
        UnitsArg::Minor => AlscUnits::Minor,
        UnitsArg::Major => AlscUnits::Major,
    };
    options.provider_zone = Zone::parse(&args.provider_time_zone).ok_or_else(|| {
        WireError::invalid_argument(format!(
            "--provider-time-zone: {:?} is not a UTC offset like +08:00, -05:30 or Z",
            args.provider_time_zone
        ))
    })?;
    for mapping in &args.map_flow_type {
        options.map_flow_type(mapping).map_err(ingest_error)?;
    }
    Ok(options)
}

fn ingest_error(error: purse_ingest::Error) -> WireError {
    match error {
        purse_ingest::Error::Ledger(error) => WireError::Ledger(error),
        other => WireError::Argument { code: other.code(), message: other.to_string() },
    }
}

/// A progress bar on stderr while a terminal watches it; nothing at all otherwise.
struct Bar(ProgressBar);

impl Bar {
    fn new(total_bytes: Option<u64>) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(ProgressBar::hidden());
        }
        let bar = match total_bytes {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("reading {bytes}/{total_bytes} {wide_bar} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} reading {bytes}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        Bar(bar)
    }
}

impl Progress for Bar {
    fn read(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn applying(&self, records: u64, commands: u64) {
        self.0.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.0.set_message(format!("{records} records read; applying {commands} flows"));
        self.0.enable_steady_tick(Duration::from_millis(120));
    }
}

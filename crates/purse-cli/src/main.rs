//! `purse`: the stored-value ledger on the command line (spec §7).
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! Every invocation prints exactly one JSON document: the answer on stdout with exit 0, or
//! `{"error": {"code", "message"}}` on stderr with exit 1 (refused or failed) or 2 (malformed
//! command line). `--help` and `--version` are the only plain-text output.

mod app;
mod args;
mod bench;
mod cluster;
#[cfg(test)]
mod command_tests;
mod ingest;
mod remote;
mod serve;

/// mimalloc, not the system allocator: a server answering thousands of small requests a second
/// spent a fifth of its CPU in glibc's malloc and free (docs/performance.md, "purse serve").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for them, and
/// sled takes a fresh 8 MiB I/O buffer at every flush, so each group commit faulted in and
/// zeroed whole 2 MiB pages for the few hundred KiB it wrote: a profile of the default workload
/// put a tenth of the process's CPU in the kernel's `clear_page`, in bursts of 6-8 ms on the
/// writer. Without them (docs/performance.md, "Huge pages"): p99.9 69 -> 37 ms, peak RSS
/// 937 -> 845 MB. A kernel without the switch only costs that speed, and nothing is printed:
/// stderr carries one JSON document or nothing.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::args::Cli;
use purse_wire::error::{usage_message, WireError};

fn main() -> ExitCode {
    without_huge_pages();
    let (cli, data_given, remote) = match parse() {
        Ok(parsed) => parsed,
        Err(error) if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Asked-for help is an answer, not a failure: clap prints it on stdout. A reader that
            // stops early (`purse --help | head`) is no error worth a JSON document.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => return fail(&WireError::Usage(usage_message(&error))),
    };
    // One command per process: a single-threaded runtime is enough; the ledger does its disk
    // work on its own writer thread. The server serves many connections: all cores.
    let runtime = if matches!(cli.command, args::CliCommand::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(io) => return fail(&WireError::System(format!("starting the async runtime: {io}"))),
    };
    match runtime.block_on(app::run(cli, data_given, remote)).and_then(|document| print(&document)) {
        Ok(()) => ingest::exit_code(),
        Err(error) => fail(&error),
    }
}

/// Parses the command line, and says whether `--data` was written on it (not defaulted, not
/// taken from `PURSE_DATA`), and which server route answers it when a server holds the ledger.
fn parse() -> Result<(Cli, bool, Option<app::Remote>), clap::Error> {
    let matches = Cli::command().try_get_matches()?;
    let data_given = matches.value_source("data") == Some(ValueSource::CommandLine);
    let remote = remote::route(&matches);
    Ok((Cli::from_arg_matches(&matches)?, data_given, remote))
}

fn print(document: &str) -> Result<(), WireError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(document.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|io| WireError::System(format!("writing the answer to stdout: {io}")))
}

fn fail(error: &WireError) -> ExitCode {
    // If stderr is gone too there is no one left to tell; the exit code still says it failed.
    let _ = std::io::stderr().lock().write_all(error.to_json().as_bytes());
    error.exit_code()
}

#[cfg(all(test, target_os = "linux"))]
mod huge_page_tests {
    /// The kernel says the switch took: `THP_enabled` in the process's status goes to 0.
    #[test]
    fn huge_pages_are_off_after_the_switch() {
        let enabled = || {
            let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
            status.lines().find_map(|line| line.strip_prefix("THP_enabled:").map(|value| value.trim().to_string()))
        };
        super::without_huge_pages();
        // Kernels before 6.1 do not report it; the prctl's own answer is then the check.
        match enabled() {
            Some(value) => assert_eq!(value, "0"),
            None => assert!(rustix::thread::transparent_huge_pages_are_disabled().expect("asking the kernel")),
        }
    }
}

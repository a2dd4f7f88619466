//! purse-ingest: reads what KYBIO, ALSC and Zenlayer return, applies it to a purse ledger as
//! provider-authoritative flows, and reconciles every balance the records state.
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! The path of a run:
//!
//! 1. **read** (`json.rs`, `xml.rs`): each input streams through serde visitors or quick-xml
//!    events; every object is flattened to the provider's fields and handed to the provider
//!    (`kybio.rs`, `alsc.rs`, `zenlayer.rs`), which turns it into a [`Record`] or a rejection.
//! 2. **plan** (`plan.rs`): records are put in the providers' time order, each release is matched
//!    to the hold it closes, an opening balance (`Action::Open`, applied by the writer only to an
//!    account that does not exist yet) goes before each account's first record, and each record
//!    becomes a command.
//! 3. **apply**: the whole run is one ledger group ([`Ledger::open_group`]), all-or-nothing by
//!    default; its commands are built and sent a part at a time while the ledger decides.
//! 4. **reconcile** (`reconcile.rs`): each balance a record states is compared with the ledger's
//!    at that point, and everything goes into one [`Report`].
//!
//! ```no_run
//! # async fn example() -> Result<(), purse_ingest::Error> {
//! use purse_ingest::{Input, Options, Provider, Silent};
//! use purse_ledger::{Ledger, LedgerConfig};
//!
//! let ledger = Ledger::open(LedgerConfig::new("./purse-data")).await?;
//! let inputs = vec![Input::open("history-page-1.json")?];
//! let report = purse_ingest::run(&ledger, inputs, Options::new(Provider::Zenlayer), &Silent).await?;
//! println!("{} applied, committed: {}", report.applied, report.committed);
//! ledger.close().await?;
//! # Ok(()) }
//! ```
//!
//! **Architecture Invariant:** ingestion writes only through `submit_group`, so every provider
//! flow passes `purse_core::decide` like any other write; it never touches the log itself.

mod alsc;
mod error;
mod json;
mod kybio;
mod options;
mod plan;
pub mod raw_json;
mod reconcile;
mod record;
mod report;
mod schema;
#[cfg(test)]
mod test_support;
#[doc(hidden)]
pub mod testing;
mod xml;
mod zenlayer;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use purse_ledger::{GroupMode, Ledger};

pub use error::Error;
/// Shared with the server's provider dialects, which read and derive the same things.
pub use kybio::content_id;
pub use options::{AlscUnits, FlowTarget, Mode, Options, Provider};
pub use record::hundredths_amount;
pub use record::{Effect, Item, Record, References, Rejection, Stated, Text};
pub use report::{Mismatch, Rejected, Report, Skipped};

use crate::options::Context;

/// Commands built and sent to the ledger at a time.
const PLAN_PART_COMMANDS: usize = 4096;

/// Bytes read from an input at a time.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// One input: a file, stdin, or any reader, with the name messages give it.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn Read + Send>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Input {
    pub fn new(name: impl Into<String>, reader: impl Read + Send + 'static) -> Input {
        Input { name: name.into(), reader: Box::new(reader) }
    }

    /// Opens a file, or stdin for `-`.
    pub fn open(path: impl AsRef<Path>) -> Result<Input, Error> {
        let path = path.as_ref();
        if path.as_os_str() == "-" {
            return Ok(Input::new("-", std::io::stdin()));
        }
        let name = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|error| Error::Read { path: name.clone(), message: error.to_string() })?;
        Ok(Input::new(name, file))
    }
}

/// Told how a run goes, for a progress display. Every method has a do-nothing default.
pub trait Progress {
    /// `bytes` more bytes of the inputs were read.
    fn read(&self, _bytes: u64) {}
    /// Reading is done: `records` records; the ledger now takes `commands` commands.
    fn applying(&self, _records: u64, _commands: u64) {}
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// Reads `inputs`, applies their records to `ledger` and reconciles them (see the crate docs).
///
/// `Err` means the run could not happen at all (an unreadable input, a bad option, a ledger
/// failure) and nothing was written. A finished run is `Ok` even when records were rejected or
/// balances differ: the report says so, and [`Report::clean`] tells the two apart.
pub async fn run(
    ledger: &Ledger,
    inputs: Vec<Input>,
    options: Options,
    progress: &(dyn Progress + Sync),
) -> Result<Report, Error> {
    let provider = options.provider;
    let mode = options.mode;
    let opening_balances = options.opening_balances;
    let context = Context::new(options, ledger.scale());
    let mut items = read(&context, inputs, progress)?;
    let mut report = Report::new(provider, items.len() as u64);
    report.add_parsed(&items);
    plan::resolve_unsplit(ledger, &items, provider, &mut report).await?;
    plan::match_releases(ledger, &mut items, provider, &mut report).await?;
    let refused_before_ledger = !report.rejected.is_empty();

    // Whether an account is new is the writer's to decide (`Action::Open`): asking here, before
    // the group, would race with anything that opens the account in between.
    let order = plan::order(&items);
    let slots = plan::slots(&items, &order, opening_balances);
    progress.applying(items.len() as u64, slots.len() as u64);
    // Records that never reach the ledger still stop an all-or-nothing run; the rest are
    // then decided as a dry run, so the report says everything that is wrong at once.
    let group_mode = match mode {
        Mode::AllOrNothing if refused_before_ledger => GroupMode::DryRun,
        Mode::AllOrNothing => GroupMode::AllOrNothing,
        Mode::Partial => GroupMode::Partial,
        Mode::DryRun => GroupMode::DryRun,
    };
    report.committed = if slots.is_empty() {
        group_mode != GroupMode::DryRun
    } else {
        // Commands are built a part at a time while the ledger decides the parts before.
        let mut group = ledger.open_group(group_mode).await?;
        for part in slots.chunks(PLAN_PART_COMMANDS) {
            let commands = part
                .iter()
                .map(|slot| plan::command(provider, &mut items, *slot).expect("slots name records that become flows"))
                .collect();
            group.send(commands).await?;
        }
        let outcome = group.finish().await?;
        reconcile::outcome(&items, &slots, &outcome.items, ledger.scale(), &mut report);
        outcome.committed
    };
    report.finish();
    Ok(report)
}

/// Reads `inputs` as `options.provider`'s records at `scale`, touching no ledger: the items a
/// run would see, in input order. Only an input that cannot be read is an `Err`.
pub fn read_items(options: Options, scale: purse_core::Scale, inputs: Vec<Input>) -> Result<Vec<Item>, Error> {
    read(&Context::new(options, scale), inputs, &Silent)
}

/// Reads every input into items, in order. Only an input that cannot be read is an `Err`.
pub(crate) fn read(context: &Context, inputs: Vec<Input>, progress: &dyn Progress) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    for input in inputs {
        let counting = Counting { inner: input.reader, progress };
        read_input(context, &input.name, BufReader::with_capacity(READ_BUFFER_BYTES, counting), &mut items)?;
    }
    Ok(items)
}

/// Reads one input of `context`'s provider, choosing XML or JSON by its first byte.
pub(crate) fn read_input(
    context: &Context,
    name: &str,
    mut reader: impl BufRead,
    out: &mut Vec<Item>,
) -> Result<(), Error> {
    let unreadable = |error: std::io::Error| Error::Read { path: name.to_owned(), message: error.to_string() };
    let rejected = |message: &str| {
        Item::Rejected(Rejection {
            record_id: None,
            error: Error::NotAResponse { path: name.to_owned(), message: message.to_owned() },
        })
    };
    let Some(first) = first_byte(&mut reader).map_err(unreadable)? else {
        out.push(rejected("the input is empty"));
        return Ok(());
    };
    match (context.options.provider, first) {
        (Provider::Alsc, b'<') => xml::read(&alsc::Alsc { context }, name, reader, out),
        (Provider::Alsc, _) => json::read(&alsc::Alsc { context }, name, reader, out),
        (provider, b'<') => {
            out.push(rejected(&format!("this is XML, and {provider} answers JSON")));
            Ok(())
        }
        (Provider::Kybio, _) => json::read(&kybio::Kybio { context }, name, reader, out),
        (Provider::Zenlayer, _) => json::read(&zenlayer::Zenlayer { context }, name, reader, out),
    }
}

/// The first byte that is not whitespace or a UTF-8 byte order mark, left unread; `None` at
/// the end of the input.
fn first_byte(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut start = true;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        if start && buffer.starts_with(BOM) {
            reader.consume(BOM.len());
            start = false;
            continue;
        }
        start = false;
        match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
            Some(at) => {
                let first = buffer[at];
                reader.consume(at);
                return Ok(Some(first));
            }
            None => {
                let length = buffer.len();
                reader.consume(length);
            }
        }
    }
}

/// Tells the progress display how many bytes went by.
struct Counting<'a> {
    inner: Box<dyn Read + Send>,
    progress: &'a dyn Progress,
}

impl Read for Counting<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.progress.read(read as u64);
        Ok(read)
    }
}

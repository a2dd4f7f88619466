//! Snapshots: the projections checkpointed off the commit path, so that opening a ledger folds
//! only the log after the newest one instead of the whole log (about 2 s per million flows).
//!
//! A snapshot is derived data and never trusted on its word. Opening takes the newest snapshot
//! whose version, checksums and decoding hold, whose records agree with one another, and whose
//! covered position is in the log (the block ending there exists with the CRC it records); then
//! it folds the log after it through the fold's usual checks. Any snapshot that fails is skipped
//! with a warning (`verify` reports it) and the next older one tried, then the whole log.
//! `verify` still folds the whole log and compares the newest snapshot with the fold at its
//! position. The file format is `snapshot_format.rs`; the medium is a [`SnapshotStore`].
//!
//! The writer thread owns the projections, so between batches it takes a copy of them that
//! shares their storage until either changes it (`Projections::snapshot_copy`: copy on write);
//! a background thread encodes the copy chunk by chunk, writes and syncs the file and only then
//! makes it visible (rename, directory sync), and removes all but the newest
//! [`SNAPSHOTS_KEPT`]. The writer's pause is the copy (`SnapshotStats::pause_micros_max`); the
//! encoding and the disk's fsync are never on it, except when a clean close waits for its
//! snapshot.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use purse_core::Config;

use crate::block::Block;
use crate::error::Error;
use crate::ledger::{Ledger, LedgerConfig};
use crate::projection::Projections;
use crate::sled_storage::io_error;
use crate::snapshot_format::cold::{self, BloomTail, ColdStore};
use crate::snapshot_format::{self, Covered};
use crate::store::Store;

/// Entries after the newest snapshot that make the writer take the next one. A million entries
/// fold in about 2 s on the development machine, which bounds the open after a crash; taking a
/// snapshot of a million-flow ledger pauses the writer for a fraction of that (performance.md),
/// so even at full speed (about 100,000 flows/s) the pause costs under one percent.
pub const SNAPSHOT_EVERY_ENTRIES_DEFAULT: u64 = 1_000_000;
/// Once the cold store is in use, a snapshot every this many entries at most: each then holds
/// only what changed since the last, and this bounds what memory holds beyond the accounts,
/// what opening after a crash reads and folds (a snapshot of at most about twice this, a tail of
/// at most this), and the writer's pause to encode one.
pub const COLD_SNAPSHOT_EVERY_ENTRIES_MAX: u64 = 256 * 1024;
/// The time after the last snapshot that makes the writer take the next one, if at least
/// [`SNAPSHOT_TAIL_ENTRIES_MIN`] entries came since: a slow ledger still opens fast.
pub const SNAPSHOT_EVERY_DEFAULT: Duration = Duration::from_secs(10 * 60);
/// The fewest entries after the last snapshot for which a snapshot by time or at a clean close
/// is worth it (or `snapshot_every_entries`, if that is lower): 10,000 entries fold in about
/// 20 ms, less than reading a snapshot of any ledger that has them.
pub const SNAPSHOT_TAIL_ENTRIES_MIN: u64 = 10_000;
/// Complete snapshots kept: the newest, and one before it in case the newest is damaged.
pub const SNAPSHOTS_KEPT: usize = 2;
/// Warnings kept at most (the newest), so a disk that keeps failing cannot grow them.
const WARNINGS_MAX: usize = 16;
/// The folder of a sled ledger that holds its snapshots.
pub(crate) const SNAPSHOT_DIR_NAME: &str = "purse-snapshots";

/// Where snapshots are kept. Implementations: [`DirSnapshots`] (files beside the sled ledger)
/// and, for tests, an in-memory one. Snapshots are named by the sequence they cover.
pub(crate) trait SnapshotStore: Send + Sync + std::fmt::Debug {
    /// The complete snapshots, by the sequence each covers, oldest first.
    fn list(&self) -> Result<Vec<u64>, Error>;
    /// Reads the snapshot covering `sequence`.
    fn open(&self, sequence: u64) -> Result<Box<dyn Read + Send>, Error>;
    /// Starts the snapshot covering `sequence`; `list` does not show it until it is committed.
    fn create(&self, sequence: u64) -> Result<Box<dyn SnapshotWriter>, Error>;
    fn remove(&self, sequence: u64) -> Result<(), Error>;
    /// The snapshot's name in messages (its path).
    fn name(&self, sequence: u64) -> String;
}

/// A snapshot being written.
pub(crate) trait SnapshotWriter: Send {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error>;
    /// Makes the snapshot durable, then visible: after a crash it is there whole or not at all.
    fn commit(self: Box<Self>) -> Result<(), Error>;
}

/// Snapshot files in `<ledger>/purse-snapshots/`: `snapshot-<sequence, 20 digits>.purse`, written
/// as `….partial`, fsynced, renamed, and the folder fsynced. Plain files, not sled: sled would
/// hold hundreds of megabytes of snapshot in its own log and page cache, and its flush on every
/// commit would carry them.
#[derive(Debug, Clone)]
pub(crate) struct DirSnapshots {
    dir: PathBuf,
}

const SNAPSHOT_SUFFIX: &str = ".purse";
const PARTIAL_SUFFIX: &str = ".partial";

impl DirSnapshots {
    pub fn new(ledger: &Path) -> DirSnapshots {
        DirSnapshots { dir: ledger.join(SNAPSHOT_DIR_NAME) }
    }

    fn path(&self, sequence: u64, suffix: &str) -> PathBuf {
        self.dir.join(format!("snapshot-{sequence:020}{suffix}"))
    }

    /// Every file name of the folder (none if it does not exist).
    fn names(&self) -> Result<Vec<String>, Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error("listing the snapshots", &error)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| io_error("listing the snapshots", &error))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    std::fs::File::open(path).and_then(|dir| dir.sync_all()).map_err(|error| io_error("syncing a directory", &error))
}

impl SnapshotStore for DirSnapshots {
    fn list(&self) -> Result<Vec<u64>, Error> {
        let mut sequences: Vec<u64> = self
            .names()?
            .iter()
            .filter_map(|name| name.strip_prefix("snapshot-")?.strip_suffix(SNAPSHOT_SUFFIX)?.parse().ok())
            .collect();
        sequences.sort_unstable();
        Ok(sequences)
    }

    fn open(&self, sequence: u64) -> Result<Box<dyn Read + Send>, Error> {
        let file = std::fs::File::open(self.path(sequence, SNAPSHOT_SUFFIX))
            .map_err(|error| io_error("opening a snapshot", &error))?;
        Ok(Box::new(file))
    }

    fn create(&self, sequence: u64) -> Result<Box<dyn SnapshotWriter>, Error> {
        if !self.dir.exists() {
            std::fs::create_dir_all(&self.dir).map_err(|error| io_error("creating the snapshot folder", &error))?;
            if let Some(ledger) = self.dir.parent() {
                sync_dir(ledger)?;
            }
        }
        // Only one snapshot is written at a time: any partial file is a leftover of a crash.
        for name in self.names()?.iter().filter(|name| name.ends_with(PARTIAL_SUFFIX)) {
            std::fs::remove_file(self.dir.join(name))
                .map_err(|error| io_error("removing a partial snapshot", &error))?;
        }
        let partial = self.path(sequence, PARTIAL_SUFFIX);
        let file = std::fs::File::create(&partial).map_err(|error| io_error("creating a snapshot", &error))?;
        Ok(Box::new(FileWriter {
            file,
            partial,
            complete: self.path(sequence, SNAPSHOT_SUFFIX),
            dir: self.dir.clone(),
        }))
    }

    fn remove(&self, sequence: u64) -> Result<(), Error> {
        std::fs::remove_file(self.path(sequence, SNAPSHOT_SUFFIX))
            .map_err(|error| io_error("removing an old snapshot", &error))
    }

    fn name(&self, sequence: u64) -> String {
        self.path(sequence, SNAPSHOT_SUFFIX).display().to_string()
    }
}

struct FileWriter {
    file: std::fs::File,
    partial: PathBuf,
    complete: PathBuf,
    dir: PathBuf,
}

impl SnapshotWriter for FileWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        use std::io::Write;
        self.file.write_all(bytes).map_err(|error| io_error("writing a snapshot", &error))
    }

    fn commit(self: Box<Self>) -> Result<(), Error> {
        self.file.sync_data().map_err(|error| io_error("syncing a snapshot", &error))?;
        drop(self.file);
        std::fs::rename(&self.partial, &self.complete).map_err(|error| io_error("completing a snapshot", &error))?;
        sync_dir(&self.dir)
    }
}

/// What a snapshot covers, as [`Ledger::snapshot`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The last log entry it holds.
    pub sequence: u64,
    /// Its size.
    pub bytes: u64,
}

/// Counters of the snapshots of one open ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// The sequence covered by the snapshot this open started from; `None`: it folded the whole
    /// log (no snapshot, or none passed its checks).
    pub loaded_from: Option<u64>,
    /// Log entries folded when opening (after the snapshot, or all of them).
    pub entries_folded_on_open: u64,
    /// How long opening took to read the snapshot and fold the rest, in microseconds.
    pub load_micros: u64,
    /// How long opening took before that, in microseconds: opening sled (its own recovery),
    /// then the cold store (its manifest and the runs' indexes) and the head.
    pub sled_open_micros: u64,
    pub cold_open_micros: u64,
    /// Snapshots made durable since opening, and those that failed (each a warning).
    pub written: u64,
    pub failed: u64,
    /// The newest snapshot written since opening.
    pub last: Option<SnapshotInfo>,
    /// Snapshots whose thread started since opening (written, failed or in flight).
    pub taken: u64,
    /// The longest and the last pause of the writer for a snapshot (copying its projections), in µs.
    pub pause_micros_max: u64,
    pub pause_micros_last: u64,
    /// Keys written into the cold store since opening.
    pub cold_keys_written: u64,
}

/// What a snapshot's thread did: the file's length, and what filling the cold store from it
/// gave (keys written), if it went there.
type Written = (u64, Option<Result<u64, Error>>);

/// A snapshot whose background write has not been collected yet.
#[derive(Debug)]
struct InFlight {
    /// The log position it covers.
    sequence: u64,
    /// Whether it goes into the cold store.
    cold: bool,
    /// `Projections::bloom_stored` once its fill is in the cold store.
    bloom_stored: Option<usize>,
    thread: JoinHandle<Result<Written, Error>>,
}

#[derive(Debug)]
struct Progress {
    /// The sequence the last snapshot taken (or loaded, or tried) covers: the trigger counts the
    /// entries after it. A failed one counts too, so a full disk is not retried every batch.
    attempted: u64,
    since: Instant,
    in_flight: Option<InFlight>,
    warnings: Vec<String>,
    stats: SnapshotStats,
}

/// The writer's snapshots: when to take one, taking it, and loading the newest on open.
#[derive(Debug)]
pub(crate) struct Snapshotter {
    store: Option<Arc<dyn SnapshotStore>>,
    /// Where the orders, records and references of each snapshot go once it is durable, so
    /// that memory can let go of them (`snapshot_cold.rs`); `None`: memory keeps everything.
    cold: Option<Arc<dyn ColdStore>>,
    /// Entries the log holds before snapshots go into the cold store ([`LedgerConfig::cold_after_entries`]).
    cold_after: u64,
    every_entries: u64,
    every: Duration,
    progress: Mutex<Progress>,
}

impl Snapshotter {
    /// No snapshots at all (a medium without a snapshot store: the simulator's).
    pub fn disabled() -> Snapshotter {
        Snapshotter::over(None, 0, SNAPSHOT_EVERY_DEFAULT)
    }

    /// Snapshots beside the sled ledger of `config`, taken as `config` says.
    pub fn for_ledger(config: &LedgerConfig) -> Snapshotter {
        let store: Arc<dyn SnapshotStore> = Arc::new(DirSnapshots::new(&config.path));
        let mut snapshotter = Snapshotter::over(Some(store), config.snapshot_every_entries, config.snapshot_every);
        snapshotter.cold_after = config.cold_after_entries;
        snapshotter
    }

    pub(crate) fn over(store: Option<Arc<dyn SnapshotStore>>, every_entries: u64, every: Duration) -> Snapshotter {
        let progress = Progress {
            attempted: 0,
            since: Instant::now(),
            in_flight: None,
            warnings: Vec::new(),
            stats: SnapshotStats::default(),
        };
        Snapshotter { store, cold: None, cold_after: 0, every_entries, every, progress: Mutex::new(progress) }
    }

    pub fn cold(&self) -> Option<Arc<dyn ColdStore>> {
        self.cold.clone()
    }

    /// Gives the snapshots a cold store (only with a snapshot store: the cold store is filled
    /// from snapshot files).
    pub fn set_cold(&mut self, cold: Option<Arc<dyn ColdStore>>) {
        if self.store.is_some() {
            self.cold = cold;
        }
    }

    /// Records how long opening sled took, before this ledger's own steps.
    pub fn sled_opened_in(&self, elapsed: Duration) {
        self.progress().stats.sled_open_micros = micros(elapsed);
    }

    /// Records how long opening the cold store and checking the head took.
    pub fn cold_opened_in(&self, elapsed: Duration) {
        self.progress().stats.cold_open_micros = micros(elapsed);
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        // Only the writer thread locks it; a panic while holding it leaves plain counters.
        self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn stats(&self) -> SnapshotStats {
        self.progress().stats
    }

    /// Problems with snapshots that lost nothing: skipped on open, failed to write.
    pub fn warnings(&self) -> Vec<String> {
        self.progress().warnings.clone()
    }

    /// The newest snapshot store, if any.
    pub(crate) fn store(&self) -> Option<&Arc<dyn SnapshotStore>> {
        self.store.as_ref()
    }

    pub(crate) fn warn(&self, warning: String) {
        self.progress().warn(warning);
    }

    /// The hook the writer calls after every batch (`healthy`: its commit succeeded and it is not
    /// poisoned). Takes a snapshot when enough entries or time passed; at a clean close waits
    /// for any snapshot in flight, and takes one more if the tail since is large.
    pub fn after_batch(&self, projections: &mut Projections, healthy: bool, closing: bool) {
        let Some(store) = &self.store else { return };
        let mut progress = self.progress();
        let wait = closing || progress.cold_behind(projections);
        progress.collect(wait, projections);
        if !healthy || progress.in_flight.is_some() {
            return;
        }
        if self.is_due(&progress, projections, closing) {
            progress.take(store, projections, self.cold_after);
            let evicted = progress.collect(closing, projections);
            if closing && evicted {
                // The snapshot held everything memory held; memory now holds what the cold
                // store does not. Another at the same position holds only that, so the next
                // open reads a small file.
                progress.take(store, projections, self.cold_after);
                progress.collect(true, projections);
            }
        }
    }

    /// Waits for the snapshot in flight, if any, and collects it into `projections`. The writer
    /// calls it before it replaces its projections ([`Snapshotter::reload`]): a fill's result
    /// speaks of the projections it was taken from (which of their filter's segments the cold
    /// store now holds) and must never be applied to others.
    pub fn settle(&self, projections: &mut Projections) {
        self.progress().collect(true, projections);
    }

    /// Whether [`Snapshotter::after_batch`] would take a snapshot now: the pipelined writer
    /// first waits for its batches in flight, since a snapshot must cover durable state only.
    pub fn due(&self, projections: &mut Projections, closing: bool) -> bool {
        if self.store.is_none() {
            return false;
        }
        let mut progress = self.progress();
        let wait = closing || progress.cold_behind(projections);
        progress.collect(wait, projections);
        progress.in_flight.is_none() && self.is_due(&progress, projections, closing)
    }

    fn is_due(&self, progress: &Progress, projections: &Projections, closing: bool) -> bool {
        if self.every_entries == 0 {
            return false;
        }
        let tail = projections.state.last_sequence().saturating_sub(progress.attempted);
        let tail_min = SNAPSHOT_TAIL_ENTRIES_MIN.min(self.every_entries);
        let every = if goes_cold(projections, self.cold_after) {
            self.every_entries.min(COLD_SNAPSHOT_EVERY_ENTRIES_MAX)
        } else {
            self.every_entries
        };
        let due = if closing {
            tail >= tail_min
        } else {
            tail >= every || (tail >= tail_min && progress.since.elapsed() >= self.every)
        };
        due && tail > 0
    }

    /// Takes a snapshot now and waits until it is durable ([`Ledger::snapshot`]).
    pub fn take_now(&self, projections: &mut Projections) -> Result<SnapshotInfo, Error> {
        let store =
            self.store.as_ref().ok_or_else(|| Error::InvalidArgument("this ledger keeps no snapshots".into()))?;
        let sequence = projections.state.last_sequence();
        if sequence == 0 {
            return Err(Error::InvalidArgument("an empty ledger has nothing to snapshot".into()));
        }
        let mut progress = self.progress();
        progress.collect(true, projections);
        if let Some(last) = progress.stats.last.filter(|last| last.sequence == sequence) {
            return Ok(last);
        }
        let failed = progress.stats.failed;
        progress.take(store, projections, self.cold_after);
        progress.collect(true, projections);
        match progress.stats.last {
            Some(last) if last.sequence == sequence && progress.stats.failed == failed => Ok(last),
            _ => Err(Error::Storage(progress.warnings.last().cloned().unwrap_or_else(|| "the snapshot failed".into()))),
        }
    }

    /// The projections of the ledger in `store`, from the newest snapshot that passes every
    /// check and the log after it, else from the whole log.
    pub fn load(&self, store: &Store, config: Config, entries_expected: u64) -> Result<Projections, Error> {
        let started = Instant::now();
        let (projections, from) = self.reload(store, config, entries_expected)?;
        let mut progress = self.progress();
        progress.attempted = from.unwrap_or(0);
        progress.stats.loaded_from = from;
        progress.stats.entries_folded_on_open = projections.state.last_sequence() - from.unwrap_or(0);
        progress.stats.load_micros = micros(started.elapsed());
        Ok(projections)
    }

    /// [`Snapshotter::load`] without its counters (a group not committed undoes by this), and
    /// the snapshot it started from.
    pub fn reload(
        &self,
        store: &Store,
        config: Config,
        entries_expected: u64,
    ) -> Result<(Projections, Option<u64>), Error> {
        let cold_in_use = match &self.cold {
            Some(cold) => !cold.is_empty()?,
            None => false,
        };
        if let Some(loaded) = self.load_newest(store, config, cold_in_use) {
            return Ok(loaded);
        }
        if cold_in_use {
            self.forget_cold()?;
        }
        let mut projections = Projections::load(store, config, entries_expected)?;
        if let Some(cold) = &self.cold {
            projections.attach_cold(Arc::clone(cold))?;
        }
        Ok((projections, None))
    }

    /// Empties the cold store before the whole log is folded: its values may be newer than any
    /// snapshot left. The snapshot files go first (each needs the cold store), so a crash in
    /// between leaves a cold store without snapshots, which the next open empties again.
    fn forget_cold(&self) -> Result<(), Error> {
        if let Some(snapshots) = &self.store {
            for sequence in snapshots.list()? {
                snapshots.remove(sequence)?;
            }
        }
        if let Some(cold) = &self.cold {
            cold.clear()?;
            cold.flush()?;
        }
        Ok(())
    }

    fn load_newest(&self, store: &Store, config: Config, cold_in_use: bool) -> Option<(Projections, Option<u64>)> {
        let snapshots = self.store.as_ref()?;
        let sequences = match snapshots.list() {
            Ok(sequences) => sequences,
            Err(error) => {
                self.warn(format!("the snapshots could not be listed ({error}); the whole log was folded instead"));
                return None;
            }
        };
        for (position, sequence) in sequences.iter().enumerate().rev() {
            let loaded =
                read_checked(snapshots.as_ref(), *sequence, store, config).and_then(|(mut projections, cold)| {
                    match (&self.cold, cold) {
                        (Some(store), true) => {
                            projections
                                .attach_cold(Arc::clone(store))
                                .map_err(|error| format!("its cold store cannot be read ({error})"))?;
                            if !projections.cold_used {
                                // No fill of the cold store ever finished (a kill in the first):
                                // memory let go of nothing, so the file holds everything and must
                                // pass every check a whole snapshot does.
                                let requests = projections.requests.len() as u64;
                                let state = &projections.state;
                                snapshot_format::check_index(state, &projections.account_flows, requests, false)
                                    .map_err(|reason| format!("its first cold fill never finished, and {reason}"))?;
                            }
                        }
                        (None, true) => return Err("it needs the cold store, which this ledger has not".into()),
                        (Some(store), false) => projections
                            .attach_cold(Arc::clone(store))
                            .map_err(|error| format!("the cold store cannot be read ({error})"))?,
                        (None, false) => {}
                    }
                    projections
                        .fold_tail(store)
                        .map_err(|error| format!("the log after it does not fold onto it ({error})"))?;
                    Ok(projections)
                });
            match loaded {
                Ok(projections) => return Some((projections, Some(*sequence))),
                Err(reason) => {
                    // The cold store may hold values newer than an older snapshot: only the
                    // newest can stand on it.
                    let older = position > 0 && !cold_in_use;
                    let instead = if older { "an older snapshot" } else { "the whole log" };
                    self.warn(format!(
                        "snapshot {} was not used: {reason}; {instead} was folded instead (a snapshot is derived data: nothing is lost)",
                        snapshots.name(*sequence)
                    ));
                    if !older {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// The snapshot covering `sequence`, decoded and checked, if its position is in `store`'s log.
pub(crate) fn read_checked(
    snapshots: &dyn SnapshotStore,
    sequence: u64,
    store: &Store,
    config: Config,
) -> Result<(Projections, bool), String> {
    let mut opened = open_at_position(snapshots, sequence, store)?;
    snapshot_format::read_body(&mut opened.reader, &opened.header, opened.covered, config)
}

/// A snapshot whose header was read and checked, and whose position is in the log: the rest of
/// it is still to read.
pub(crate) struct Opened {
    pub covered: Covered,
    pub header: [u8; snapshot_format::HEADER_BYTES],
    pub reader: std::io::BufReader<Box<dyn Read + Send>>,
}

/// Opens the snapshot covering `sequence` and checks its header and position.
pub(crate) fn open_at_position(snapshots: &dyn SnapshotStore, sequence: u64, store: &Store) -> Result<Opened, String> {
    let file = snapshots.open(sequence).map_err(|error| error.to_string())?;
    let mut reader = std::io::BufReader::with_capacity(snapshot_format::CHUNK_BYTES_TARGET, file);
    let (covered, header) = snapshot_format::read_header(&mut reader)?;
    if covered.sequence != sequence {
        return Err(format!("its name says entry {sequence} but its header says {}", covered.sequence));
    }
    check_position(store, covered)?;
    Ok(Opened { covered, header, reader })
}

/// Whether the log holds the position a snapshot covers: a block that ends exactly there, with
/// the CRC the snapshot recorded, and not part of an unfinished commit.
fn check_position(store: &Store, covered: Covered) -> Result<(), String> {
    let block =
        store.block_containing(covered.sequence).map_err(|error| format!("the log cannot be read there ({error})"))?;
    let Some((key, bytes)) = block else {
        return Err(format!("the log does not reach entry {}", covered.sequence));
    };
    let block = Block::parse(key, &bytes).map_err(|reason| format!("the log's block there is damaged ({reason})"))?;
    if block.last_sequence() < covered.sequence {
        return Err(format!("the log ends at entry {}, before entry {}", block.last_sequence(), covered.sequence));
    }
    if block.last_sequence() != covered.sequence || block.continues {
        return Err(format!("no finished commit of the log ends at entry {}", covered.sequence));
    }
    if block.checksum != covered.block_checksum {
        return Err(format!("the log's block ending at entry {} is not the one it was taken after", covered.sequence));
    }
    Ok(())
}

impl Progress {
    /// Whether the writer must wait for the cold store: a snapshot is going into it and memory
    /// already holds [`COLD_SNAPSHOT_EVERY_ENTRIES_MAX`] entries more than it covers. Filling the
    /// cold store is slower than a busy writer (sled's inserts, performance.md), and without
    /// this memory would grow with the log again while it falls behind.
    fn cold_behind(&self, projections: &Projections) -> bool {
        self.in_flight.as_ref().is_some_and(|in_flight| {
            in_flight.cold
                && projections.state.last_sequence().saturating_sub(in_flight.sequence)
                    >= COLD_SNAPSHOT_EVERY_ENTRIES_MAX
        })
    }

    fn warn(&mut self, warning: String) {
        if self.warnings.len() == WARNINGS_MAX {
            self.warnings.remove(0);
        }
        self.warnings.push(warning);
    }

    /// Takes a snapshot of `projections`: a copy of them on this thread (cheap: their tables
    /// share what they hold with it until the writer changes it, `Projections::snapshot_copy`),
    /// which a background thread encodes, writes and makes durable; sets `in_flight`, or warns
    /// if it could not start.
    fn take(&mut self, store: &Arc<dyn SnapshotStore>, projections: &Projections, cold_after: u64) {
        let sequence = projections.state.last_sequence();
        self.attempted = sequence;
        self.since = Instant::now();
        let writing = Arc::clone(store);
        let to_cold = goes_cold(projections, cold_after);
        let started = Instant::now();
        // Only the filter's segments that changed since the store last took it: a full one never
        // changes again.
        let cold = projections
            .cold
            .clone()
            .filter(|_| to_cold)
            .map(|cold| (cold, projections.bloom.tail(projections.bloom_stored)));
        let bloom_stored = cold.as_ref().map(|(_, tail)| tail.stored_after());
        let copy = projections.snapshot_copy();
        let pause = micros(started.elapsed());
        self.stats.pause_micros_last = pause;
        self.stats.pause_micros_max = self.stats.pause_micros_max.max(pause);
        let spawned = std::thread::Builder::new().name("purse-snapshot".into()).spawn(move || {
            let mut file = writing.create(sequence)?;
            let bytes = snapshot_format::encode(&copy, to_cold, |piece| file.write(piece))?;
            drop(copy);
            file.commit()?;
            prune(writing.as_ref())?;
            let Some((cold, bloom)) = cold else { return Ok((bytes, None)) };
            Ok((bytes, Some(fill_cold(writing.as_ref(), sequence, cold.as_ref(), &bloom))))
        });
        match spawned {
            Ok(thread) => {
                self.stats.taken += 1;
                self.in_flight = Some(InFlight { sequence, cold: to_cold, bloom_stored, thread });
            }
            Err(error) => self.failed(sequence, &Error::Storage(format!("starting its thread: {error}"))),
        }
    }

    /// Collects the snapshot in flight once its thread is done (`wait`: waits for it). Once the
    /// cold store holds it, lets `projections` drop from memory what it holds.
    /// Returns whether memory let go of anything.
    fn collect(&mut self, wait: bool, projections: &mut Projections) -> bool {
        let Some(in_flight) = self.in_flight.take() else { return false };
        if !wait && !in_flight.thread.is_finished() {
            self.in_flight = Some(in_flight);
            return false;
        }
        let sequence = in_flight.sequence;
        let joined = in_flight.thread.join();
        // The thread dropped its copy: what changed meanwhile goes back into the tables.
        projections.settle();
        match joined {
            Ok(Ok((bytes, cold))) => {
                self.stats.written += 1;
                self.stats.last = Some(SnapshotInfo { sequence, bytes });
                match cold {
                    Some(Ok(keys)) => {
                        self.stats.cold_keys_written += keys;
                        if let Some(stored) = in_flight.bloom_stored {
                            projections.bloom_stored = stored;
                        }
                        projections.evict_through(sequence);
                        return true;
                    }
                    Some(Err(error)) => self.warn(format!(
                        "the snapshot at entry {sequence} did not go into the cold store ({error}); memory keeps it"
                    )),
                    None => {}
                }
            }
            Ok(Err(error)) => self.failed(sequence, &error),
            Err(_) => self.failed(sequence, &Error::Storage("its thread panicked".into())),
        }
        false
    }

    fn failed(&mut self, sequence: u64, error: &Error) {
        self.stats.failed += 1;
        self.warn(format!("a snapshot at entry {sequence} was not written ({error}); the log holds everything"));
    }
}

impl Drop for Snapshotter {
    /// A ledger dropped without a close still finishes the snapshot it was writing.
    fn drop(&mut self) {
        let Some(in_flight) = self.progress().in_flight.take() else { return };
        let _ = in_flight.thread.join();
    }
}

/// Whether a snapshot of `projections` now goes into the cold store: once the ledger holds
/// `cold_after` entries, and from then on for good.
fn goes_cold(projections: &Projections, cold_after: u64) -> bool {
    projections.cold.is_some() && (projections.cold_used || projections.state.last_sequence() >= cold_after)
}

/// Reads the snapshot just committed back (from the page cache) into the cold store.
fn fill_cold(
    snapshots: &dyn SnapshotStore,
    sequence: u64,
    cold: &dyn ColdStore,
    bloom: &BloomTail,
) -> Result<u64, Error> {
    let mut reader = snapshots.open(sequence)?;
    let (_, header) = snapshot_format::read_header(&mut reader)
        .map_err(|reason| Error::Corruption(format!("the snapshot just written reads back damaged: {reason}")))?;
    cold::apply_snapshot(cold, &mut reader, &header, bloom)
}

/// Removes every complete snapshot but the newest [`SNAPSHOTS_KEPT`], once a new one is durable.
fn prune(store: &dyn SnapshotStore) -> Result<(), Error> {
    let sequences = store.list()?;
    let old = sequences.len().saturating_sub(SNAPSHOTS_KEPT);
    sequences[..old].iter().try_for_each(|sequence| store.remove(*sequence))
}

impl Ledger {
    /// Writes a snapshot of the projections now and returns once it is durable: what it covers.
    /// The ledger takes snapshots by itself (`LedgerConfig::snapshot_every_entries`,
    /// `snapshot_every`, and at a clean close); this is for tests and tools. A ledger already
    /// snapshotted at its last entry answers that snapshot again.
    pub async fn snapshot(&self) -> Result<SnapshotInfo, Error> {
        self.query(|writer| writer.snapshots.take_now(&mut writer.projections)).await
    }

    /// Counters of this handle's snapshots: where opening started, the writer's pauses.
    pub async fn snapshot_stats(&self) -> Result<SnapshotStats, Error> {
        self.query(|writer| Ok(writer.snapshots.stats())).await
    }
}

/// `elapsed` in whole microseconds, saturating.
fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;

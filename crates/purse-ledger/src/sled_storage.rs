//! The embedded default medium: sled 0.34.7 in the data directory, plus purse's own files
//! beside it (the head file and the repairs log). The only file that touches sled.
//!
//! Durability: sled 0.34.7's `flush()` ends in `sync_file_range`, which does not make data
//! durable (sled issue #1452). After every flush purse calls `fdatasync` on sled's single data
//! file `<dir>/db`. Blocks are kept small enough that sled never writes a blob file (those are
//! never synced by sled); [`Storage::check_medium`] refuses a ledger that has any.
//!
//! Opening repairs what a crash inside sled's own bookkeeping can leave behind and what sled can
//! rebuild, before and around `sled::open` (see docs/storage-format.md, "Repairs on open"):
//! - `snap.<lsn>.generating`: a snapshot sled was writing when the process died. sled would pick
//!   it as the newest snapshot and refuse to open (sled issues #1527, #1389). Removed.
//! - a `snap.<lsn>` whose checksum fails, or any snapshot when sled refuses to open with a
//!   corruption error: sled's snapshot is a cache of its log, rebuilt by a full scan when absent.
//!   Moved to `purse-quarantine/`, and the open is tried once more.
//! - a `conf` that is not byte for byte the one purse's sled configuration writes (sled writes it
//!   without an fsync, and reports a damaged one as "created using a sled version earlier than
//!   0.29"): rewritten, durably, from purse's fixed configuration.
//!
//! Damage to sled's data file itself is never repaired: purse's block checksums, hash chain and
//! head file refuse it as `CORRUPTION`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::storage::{Bytes, LogReader, Storage, Syncer, HEAD_SLOT_BYTES};

/// sled's page cache. The log is read back mostly at open; queries touch few blocks.
pub(crate) const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// sled's segment size: its default, fixed for every purse ledger (it is recorded in `conf`).
const SLED_SEGMENT_BYTES: usize = 512 * 1024;
/// The `conf` text sled 0.34 writes for [`SLED_SEGMENT_BYTES`] without compression; a CRC-32
/// (little-endian) of it follows in the file.
const SLED_CONF_TEXT: &str = "segment_size: 524288\nuse_compression: false\nversion: 0.34\n";
pub(crate) const HEAD_FILE_NAME: &str = "purse-head";
/// One line per repair made on open (see the module comment).
pub(crate) const REPAIRS_FILE_NAME: &str = "purse-repairs.log";
/// Where snapshots sled cannot use are moved, for inspection; sled never reads it.
const QUARANTINE_DIR_NAME: &str = "purse-quarantine";
/// Lines of the repairs log `repairs_read` returns at most (the newest).
const REPAIRS_LINES_MAX: usize = 1000;
/// The repairs log is not read past this size.
const REPAIRS_FILE_BYTES_MAX: u64 = 1 << 20;

/// How long [`wait_until_released`] waits for sled's threads to let go of the ledger at most.
const RELEASE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until no one holds the lock on the ledger at `path`. After a `sled::Db` is dropped,
/// sled's own background threads keep its data file (and so its lock) open for a moment, and a
/// reopen right after a close was refused as "in use". A clean close waits here, so that when
/// it returns the ledger can be opened again at once.
pub(crate) fn wait_until_released(path: &Path) -> Result<(), Error> {
    use fs2::FileExt;
    let file = match File::open(path.join("db")) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error("opening sled's data file", &error)),
    };
    let started = std::time::Instant::now();
    loop {
        match FileExt::try_lock_exclusive(&file) {
            Ok(()) => return FileExt::unlock(&file).map_err(|error| io_error("unlocking sled's data file", &error)),
            Err(_) if started.elapsed() < RELEASE_WAIT_MAX => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(error) => {
                return Err(Error::Storage(format!(
                    "the ledger was closed, but something still holds the lock on {} after {} s: {error}",
                    path.join("db").display(),
                    RELEASE_WAIT_MAX.as_secs()
                )))
            }
        }
    }
}

/// Log bytes appended since open above which a clean close lets sled write its recovery point
/// again ([`checkpoint`]): about 0.1 s of sled's recovery scan on this project's machine.
pub(crate) const CHECKPOINT_LOGGED_BYTES_MIN: u64 = 32 * 1024 * 1024;

/// Opens sled in `path` once more and closes it: sled 0.34 writes its recovery point (its
/// `snap.*` file, the page table as of the log's end) only while opening, and every open reads
/// the log written since the last one again (`advance_snapshot`; its `snapshot_after_ops` does
/// nothing since 0.31). Done by a clean close after a long session, so that the next open does
/// not pay for the session: 2.4 s after 10M flows (docs/performance.md). A crash skips it; the
/// open after a crash reads what was written since the previous open.
/// A process that opened the ledger in between has paid the scan itself: nothing to do then.
pub(crate) fn checkpoint(path: &Path, cache_bytes: u64) -> Result<(), Error> {
    let db = match open_sled(path, cache_bytes) {
        Ok(db) => db,
        Err(Error::InUse(_)) => return Ok(()),
        Err(error) => return Err(error),
    };
    drop(db);
    wait_until_released(path)
}

/// Runs a sled call, turning its errors and its panics into purse errors that name `what`.
fn guard<T>(what: &str, call: impl FnOnce() -> sled::Result<T>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(sled_error(what, error)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_else(|| "sled panicked".to_owned());
            Err(Error::Corruption(format!("{what}: sled panicked: {message}")))
        }
    }
}

/// A sled error as a purse error: a full disk says so, and that nothing written is lost.
pub(crate) fn sled_error(what: &str, error: sled::Error) -> Error {
    match error {
        sled::Error::Io(io) => io_error(what, &io),
        sled::Error::Corruption { .. } => Error::Corruption(format!("{what}: {error}")),
        other => Error::Storage(format!("{what}: {other}")),
    }
}

/// An I/O error as a purse error, naming `what` failed and keeping the OS's own words.
pub(crate) fn io_error(what: &str, error: &std::io::Error) -> Error {
    if is_disk_full(error) {
        // sled sometimes wraps the OS error in a debug-printed one: name the condition plainly.
        return Error::Storage(format!(
            "{what}: the disk is full (no space left on device); nothing acknowledged is lost: free space and retry"
        ));
    }
    Error::Storage(format!("{what}: {error}"))
}

/// ENOSPC or EDQUOT.
fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(28 | 122)) || error.kind() == std::io::ErrorKind::StorageFull
}

#[derive(Debug)]
pub(crate) struct SledStorage {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    data_file: File,
    head: Option<File>,
    path: PathBuf,
    /// The cold store, opened once (its runs and manifest have one writer); the lock is held
    /// across the open and the import, which remove and write files.
    cold: std::sync::Mutex<Option<std::sync::Arc<dyn crate::snapshot_format::cold::ColdStore>>>,
    /// The size of sled's page cache, and of the cold store's block cache.
    cache_bytes: u64,
    /// Bytes of log blocks appended since open (see [`checkpoint`]).
    logged_bytes: u64,
}

impl SledStorage {
    /// Opens sled in `path`, repairing sled's leftovers first. With `create` a missing or empty
    /// directory becomes a new ledger; a directory holding other files never does. Returns the
    /// repairs made, one sentence each; each is also appended to the repairs log.
    pub fn open(path: &Path, create: bool, cache_bytes: u64) -> Result<(SledStorage, Vec<String>), Error> {
        check_is_ledger(path, create)?;
        std::fs::create_dir_all(path).map_err(|error| io_error("creating the data directory", &error))?;
        let mut repairs = Vec::new();
        remove_unfinished_snapshots(path, &mut repairs)?;
        quarantine_damaged_snapshots(path, &mut repairs)?;
        rewrite_damaged_conf(path, &mut repairs)?;
        let db = match open_sled(path, cache_bytes) {
            Err(Error::Corruption(reason)) if !snapshot_files(path)?.is_empty() => {
                // sled's snapshot is only a cache of its log: without it, sled scans the log.
                let moved = quarantine(path, &snapshot_files(path)?)?;
                repairs.push(format!(
                    "sled refused to open ({reason}); moved its snapshot files {moved} to {QUARANTINE_DIR_NAME}/ \
                     so that sled rebuilds them from its log"
                ));
                open_sled(path, cache_bytes)?
            }
            other => other?,
        };
        let log = guard("opening the log tree", || db.open_tree("log"))?;
        let meta = guard("opening the meta tree", || db.open_tree("meta"))?;
        let data_file = File::open(path.join("db")).map_err(|error| io_error("opening sled's data file", &error))?;
        let head = match OpenOptions::new().read(true).write(true).open(path.join(HEAD_FILE_NAME)) {
            Ok(file) => Some(file),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(io_error("opening the head file", &error)),
        };
        let mut storage = SledStorage {
            db,
            log,
            meta,
            data_file,
            head,
            path: path.to_owned(),
            cold: std::sync::Mutex::new(None),
            cache_bytes,
            logged_bytes: 0,
        };
        for repair in &repairs {
            storage.repairs_append(repair)?;
        }
        Ok((storage, repairs))
    }

    /// The log tree, for readers that merge it with writes not yet applied (`replicated.rs`).
    pub(crate) fn log_tree(&self) -> sled::Tree {
        self.log.clone()
    }

    /// Puts and removes blocks without copying them, one sled write each (`replicated.rs`
    /// applying journal entries). Not atomic and not synced: the journal holds the entry, and
    /// the image's position is written after it (see `replicated.rs`). Not one sled batch,
    /// because every batch makes sled seal and write out its I/O buffer (`pin_log` in sled
    /// 0.34.7's pagecache): several writes and thread hand-offs per commit.
    pub(crate) fn log_apply(&mut self, puts: &[(u64, Bytes)], removes: &[u64]) -> Result<(), Error> {
        for (first_sequence, bytes) in puts {
            self.logged_bytes = self.logged_bytes.saturating_add(bytes.len() as u64);
            guard("applying a journal entry to the log", || {
                self.log.insert(&crate::block::key(*first_sequence)[..], bytes.clone())
            })?;
        }
        for first in removes {
            guard("applying a journal entry to the log", || self.log.remove(&crate::block::key(*first)[..]))?;
        }
        Ok(())
    }

    /// Stores each meta `(key, value)` with a sled write of its own: [`SledStorage::log_apply`]'s
    /// terms.
    pub(crate) fn meta_apply(&mut self, entries: &[(&[u8], &[u8])]) -> Result<(), Error> {
        for (key, value) in entries {
            guard("applying a journal entry to meta", || self.meta.insert(*key, *value))?;
        }
        Ok(())
    }

    /// The merge of `pending` (newest writes, `None` removed) over the log tree: the block
    /// with the greatest first sequence at or below `sequence`.
    pub(crate) fn merged_at_or_before(
        log: &sled::Tree,
        pending: &std::collections::BTreeMap<u64, (u64, Option<Bytes>)>,
        sequence: u64,
    ) -> Result<Option<(u64, Bytes)>, Error> {
        let from_pending = pending
            .range(..=sequence)
            .rev()
            .find_map(|(key, (_, bytes))| bytes.as_ref().map(|bytes| (*key, bytes.clone())));
        let upper = crate::block::key(sequence);
        let mut from_log = None;
        for found in log.range(..=&upper[..]).rev() {
            let (key, bytes) = guard("reading the log", || found)?;
            let key = key_sequence(&key)?;
            if from_pending.as_ref().is_some_and(|(pending_key, _)| key <= *pending_key) {
                break;
            }
            if !pending.contains_key(&key) {
                from_log = Some((key, bytes));
                break;
            }
        }
        Ok(match (from_pending, from_log) {
            (Some(pending), Some(log)) => Some(if log.0 > pending.0 { log } else { pending }),
            (pending, log) => pending.or(log),
        })
    }

    /// The log tree's blocks from `first` on, each read as it goes.
    pub(crate) fn tree_from(log: &sled::Tree, first: u64) -> impl Iterator<Item = Result<(u64, Bytes), Error>> {
        let mut iter = log.range(&crate::block::key(first)[..]..);
        std::iter::from_fn(move || {
            guard("reading the log", || iter.next().transpose())
                .transpose()
                .map(|found| found.and_then(|(key, bytes)| Ok((key_sequence(&key)?, bytes))))
        })
    }

    /// Moves the cold store of a ledger written before the runs (commits c58b86a..this one: the
    /// sled tree `cold`) into one run, then drops the tree. The run is complete and named by the
    /// manifest before the tree goes, so a kill in between leaves both, and the next open, finding
    /// the runs already there, only drops the tree again.
    fn import_cold_tree(&self, cold: &crate::cold_runs::RunCold) -> Result<(), Error> {
        use crate::snapshot_format::cold::ColdStore;
        let has_tree = guard("listing sled's trees", || Ok::<_, sled::Error>(self.db.tree_names()))?
            .iter()
            .any(|name| name.as_ref() == b"cold");
        if !has_tree {
            return Ok(());
        }
        let tree = guard("opening the cold tree", || self.db.open_tree("cold"))?;
        if !tree.is_empty() && cold.is_empty()? {
            cold.import(tree.iter().map(|pair| {
                pair.map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(|error| sled_error("reading the cold tree", error))
            }))?;
        }
        drop(tree);
        guard("dropping the cold tree", || self.db.drop_tree("cold"))?;
        sync_sled(&self.db, &self.data_file)
    }

    fn head_path(&self) -> PathBuf {
        self.path.join(HEAD_FILE_NAME)
    }

    /// The head file, opened with sled; missing in a ledger that has data means its files are
    /// incomplete.
    fn head_file(&self) -> Result<&File, Error> {
        self.head.as_ref().ok_or_else(|| {
            Error::Corruption(format!("{} is missing: the ledger's files are incomplete", self.head_path().display()))
        })
    }
}

/// Files and folders a ledger directory may hold (sled's and purse's own).
fn is_ledger_file(name: &str) -> bool {
    matches!(
        name,
        "db" | "conf"
            | "blobs"
            | HEAD_FILE_NAME
            | REPAIRS_FILE_NAME
            | QUARANTINE_DIR_NAME
            | crate::snapshot::SNAPSHOT_DIR_NAME
            | crate::cold_runs::DIR_NAME
            | crate::wal::DIR_NAME
    ) || name.starts_with("snap.")
        || name == "conf.purse-rewrite"
}

/// Files `purse serve` keeps in a ledger directory (purse-server's `keys.rs` and `local.rs`).
const SERVER_FILES: [&str; 3] = ["keys.json", "keys.json.tmp", "serve.sock"];

/// Refuses a path that is not a ledger: a directory holding only other files (a mistyped
/// `--data` pointing at a project folder must not become a ledger), or, without `create`, a
/// missing or empty one.
fn check_is_ledger(path: &Path, create: bool) -> Result<(), Error> {
    let no_ledger = |why: &str| {
        Error::InvalidArgument(format!("no ledger at {}: {why}; only a write creates a ledger", path.display()))
    };
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return if create { Ok(()) } else { Err(no_ledger("the directory does not exist")) };
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(Error::InvalidArgument(format!("{} is a file, not a ledger directory", path.display())));
        }
        Err(error) => return Err(io_error("listing the data directory", &error)),
    };
    let mut others = Vec::new();
    let mut ledger_files = 0;
    for entry in entries {
        let entry = entry.map_err(|error| io_error("listing the data directory", &error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_ledger_file(&name) {
            ledger_files += 1;
        } else if SERVER_FILES.contains(&name.as_str()) {
            // `purse serve`'s own files beside a ledger (made by `purse keys` perhaps before
            // the ledger itself): neither the ledger's nor a stranger's.
        } else if others.len() < 3 {
            others.push(name);
        }
    }
    if ledger_files == 0 && !others.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} is not a purse ledger: it holds other files ({}, …) and none of a ledger's",
            path.display(),
            others.join(", ")
        )));
    }
    if ledger_files == 0 && !create {
        return Err(no_ledger("the directory is empty"));
    }
    Ok(())
}

fn block_at_or_before(log: &sled::Tree, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
    let upper = crate::block::key(sequence);
    let found = guard("reading the log", || log.range(..=&upper[..]).next_back().transpose())?;
    found.map(|(key, bytes)| Ok((key_sequence(&key)?, bytes))).transpose()
}

/// The log tree, shared: sled's trees may be read from any thread while the writer inserts.
#[derive(Debug)]
struct SledLogReader {
    log: sled::Tree,
}

impl LogReader for SledLogReader {
    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        block_at_or_before(&self.log, sequence)
    }
}

/// sled's flush, then the fdatasync its flush leaves out (see the module documentation).
fn sync_sled(db: &sled::Db, data_file: &File) -> Result<(), Error> {
    guard("flushing sled", || db.flush())?;
    data_file.sync_data().map_err(|error| io_error("fdatasync of sled's data file", &error))
}

/// [`Storage::sync`] of a [`SledStorage`] from the writer's syncer thread: sled's `flush` may run
/// beside inserts, and covers every insert made before it began.
struct SledSyncer {
    db: sled::Db,
    data_file: File,
}

impl Syncer for SledSyncer {
    fn sync(&mut self) -> Result<(), Error> {
        sync_sled(&self.db, &self.data_file)
    }
}

fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db, Error> {
    let config = sled::Config::new().path(path).cache_capacity(cache_bytes).segment_size(SLED_SEGMENT_BYTES);
    guard("opening sled", || config.open()).map_err(|error| match error {
        // Not a failed disk: the ledger is in use. INVALID_ARGUMENT, with the lock named.
        Error::Storage(message) if message.contains("could not acquire lock") => Error::InUse(format!(
            "the ledger at {} is in use: another process (or another handle in this one) holds its lock on {}; \
             purse allows one open handle per ledger",
            path.display(),
            path.join("db").display()
        )),
        other => other,
    })
}

/// sled's snapshot files (`snap.*`), as sled itself lists them.
fn snapshot_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(path).map_err(|error| io_error("listing the data directory", &error))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| io_error("listing the data directory", &error))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && !name.ends_with(".in___motion") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

/// Removes `snap.*.generating`: sled writes a snapshot there and renames it when complete, and
/// deletes older snapshots only after the rename, so such a file is never needed.
fn remove_unfinished_snapshots(path: &Path, repairs: &mut Vec<String>) -> Result<(), Error> {
    for file in snapshot_files(path)? {
        let name = file_name(&file);
        if !name.ends_with(".generating") {
            continue;
        }
        std::fs::remove_file(&file).map_err(|error| io_error(&format!("removing {name}"), &error))?;
        repairs.push(format!("removed {name}, a snapshot sled did not finish writing (its process died or its disk was full; sled issue #1527)"));
    }
    sync_dir(path)
}

/// Moves aside every snapshot if the newest one (the one sled would read) fails sled's own
/// checksum: sled would refuse to open, and rebuilds a snapshot from its log without one.
fn quarantine_damaged_snapshots(path: &Path, repairs: &mut Vec<String>) -> Result<(), Error> {
    let files = snapshot_files(path)?;
    let Some(newest) = files.last() else { return Ok(()) };
    let bytes = std::fs::read(newest).map_err(|error| io_error("reading sled's snapshot", &error))?;
    if snapshot_checksum_holds(&bytes) {
        return Ok(());
    }
    let moved = quarantine(path, &files)?;
    repairs.push(format!(
        "sled's newest snapshot {} fails its checksum; moved {moved} to {QUARANTINE_DIR_NAME}/ so that sled \
         rebuilds it from its log",
        file_name(newest)
    ));
    Ok(())
}

/// sled 0.34's snapshot file: the snapshot, its length (8 bytes) and a CRC-32 (little-endian)
/// of the snapshot bytes.
fn snapshot_checksum_holds(bytes: &[u8]) -> bool {
    let Some(body_length) = bytes.len().checked_sub(12).filter(|length| *length > 0) else { return false };
    let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
    crc32fast::hash(&bytes[..body_length]) == stored
}

/// Moves `files` into the quarantine folder; returns their names, for the repair's line.
fn quarantine(path: &Path, files: &[PathBuf]) -> Result<String, Error> {
    let folder = path.join(QUARANTINE_DIR_NAME);
    std::fs::create_dir_all(&folder).map_err(|error| io_error("creating the quarantine folder", &error))?;
    let mut names = Vec::new();
    for file in files {
        let name = file_name(file);
        let mut target = folder.join(&name);
        let mut copy = 1;
        while target.exists() {
            target = folder.join(format!("{name}.{copy}"));
            copy += 1;
        }
        std::fs::rename(file, &target).map_err(|error| io_error(&format!("moving {name} aside"), &error))?;
        names.push(name);
    }
    sync_dir(path)?;
    Ok(names.join(", "))
}

/// The bytes of `conf` for purse's sled configuration.
fn expected_conf() -> Vec<u8> {
    let mut bytes = SLED_CONF_TEXT.as_bytes().to_vec();
    bytes.extend_from_slice(&crc32fast::hash(SLED_CONF_TEXT.as_bytes()).to_le_bytes());
    bytes
}

/// Rewrites a `conf` that differs from the one purse's configuration gives. A missing one is
/// left to sled (it writes it when it creates a database).
fn rewrite_damaged_conf(path: &Path, repairs: &mut Vec<String>) -> Result<(), Error> {
    let conf = path.join("conf");
    let bytes = match std::fs::read(&conf) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error("reading sled's conf", &error)),
    };
    let expected = expected_conf();
    if bytes == expected {
        return Ok(());
    }
    let temporary = path.join("conf.purse-rewrite");
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temporary)?;
        file.write_all(&expected)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &conf)
    };
    write().map_err(|error| io_error("rewriting sled's conf", &error))?;
    sync_dir(path)?;
    repairs.push(format!(
        "sled's conf ({} bytes) was not the one purse's sled configuration writes; rewrote it",
        bytes.len()
    ));
    Ok(())
}

/// Makes renames and removals in `path` durable.
fn sync_dir(path: &Path) -> Result<(), Error> {
    sync_dir_named(path, "the data directory")
}

/// Makes renames and removals in the folder `path` durable; an error names it as `what`.
pub(crate) fn sync_dir_named(path: &Path, what: &str) -> Result<(), Error> {
    File::open(path).and_then(|dir| dir.sync_all()).map_err(|error| io_error(&format!("syncing {what}"), &error))
}

impl Storage for SledStorage {
    fn meta_get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        guard("reading meta", || self.meta.get(key))
    }

    fn meta_put(&mut self, entries: &[(&[u8], &[u8])]) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            batch.insert(*key, *value);
        }
        guard("writing meta", || self.meta.apply_batch(batch))
    }

    fn log_put(&mut self, blocks: Vec<(u64, Vec<u8>)>) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        // Each block is dropped as it goes into the batch: the commit is held once, not twice.
        for (first_sequence, bytes) in blocks {
            self.logged_bytes = self.logged_bytes.saturating_add(bytes.len() as u64);
            batch.insert(&crate::block::key(first_sequence)[..], bytes);
        }
        guard("appending to the log", || self.log.apply_batch(batch))
    }

    fn log_remove(&mut self, firsts: &[u64]) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for first in firsts {
            batch.remove(&crate::block::key(*first)[..]);
        }
        guard("removing from the log", || self.log.apply_batch(batch))
    }

    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        block_at_or_before(&self.log, sequence)
    }

    fn log_from<'a>(&'a self, first: u64) -> Box<dyn Iterator<Item = Result<(u64, Bytes), Error>> + 'a> {
        Box::new(SledStorage::tree_from(&self.log, first))
    }

    fn sync(&mut self) -> Result<(), Error> {
        sync_sled(&self.db, &self.data_file)
    }

    fn log_reader(&self) -> Result<Option<std::sync::Arc<dyn LogReader>>, Error> {
        Ok(Some(std::sync::Arc::new(SledLogReader { log: self.log.clone() })))
    }

    fn cold(&self) -> Result<Option<std::sync::Arc<dyn crate::snapshot_format::cold::ColdStore>>, Error> {
        let mut opened = self.cold.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cold) = opened.as_ref() {
            return Ok(Some(cold.clone()));
        }
        let cold = crate::cold_runs::RunCold::open(&self.path, self.cache_bytes)?;
        self.import_cold_tree(&cold)?;
        let cold: std::sync::Arc<dyn crate::snapshot_format::cold::ColdStore> = std::sync::Arc::new(cold);
        *opened = Some(cold.clone());
        Ok(Some(cold))
    }

    fn syncer(&self) -> Result<Option<Box<dyn Syncer>>, Error> {
        let data_file =
            self.data_file.try_clone().map_err(|error| io_error("opening sled's data file for the syncer", &error))?;
        Ok(Some(Box::new(SledSyncer { db: self.db.clone(), data_file })))
    }

    fn head_exists(&self) -> Result<bool, Error> {
        // Opened with sled if it was there; only `head_create` makes one.
        Ok(self.head.is_some())
    }

    fn head_create(&mut self) -> Result<(), Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.head_path())
            .map_err(|error| io_error("creating the head file", &error))?;
        self.head = Some(file);
        sync_dir(&self.path)
    }

    fn head_read(&self, slot: usize) -> Result<Option<[u8; HEAD_SLOT_BYTES]>, Error> {
        read_slot(self.head_file()?, slot)
    }

    fn head_write(&mut self, slot: usize, bytes: &[u8; HEAD_SLOT_BYTES]) -> Result<(), Error> {
        let offset = (slot * HEAD_SLOT_BYTES) as u64;
        self.head_file()?.write_all_at(bytes, offset).map_err(|error| io_error("writing the head file", &error))
    }

    fn head_sync(&mut self) -> Result<(), Error> {
        match &self.head {
            Some(file) => file.sync_data().map_err(|error| io_error("fdatasync of the head file", &error)),
            None => Ok(()),
        }
    }

    fn repairs_append(&mut self, line: &str) -> Result<(), Error> {
        let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let one_line = line.replace('\n', " ");
        let append = || -> std::io::Result<()> {
            let mut file = OpenOptions::new().create(true).append(true).open(self.path.join(REPAIRS_FILE_NAME))?;
            writeln!(file, "{seconds} {one_line}")?;
            file.sync_all()
        };
        append().map_err(|error| io_error("writing the repairs log", &error))
    }

    fn repairs_read(&self) -> Result<Vec<String>, Error> {
        let path = self.path.join(REPAIRS_FILE_NAME);
        let text = match File::open(&path) {
            Ok(file) => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::Read::take(file, REPAIRS_FILE_BYTES_MAX), &mut text)
                    .map_err(|error| io_error("reading the repairs log", &error))?;
                text
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error("reading the repairs log", &error)),
        };
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let skip = lines.len().saturating_sub(REPAIRS_LINES_MAX);
        Ok(lines.into_iter().skip(skip).collect())
    }

    fn check_medium(&self) -> Result<(), Error> {
        let blob_files = match std::fs::read_dir(self.path.join("blobs")) {
            Ok(entries) => entries.count(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(io_error("listing sled's blobs", &error)),
        };
        if blob_files > 0 {
            return Err(Error::Storage(format!(
                "sled wrote {blob_files} blob files, which fsync of its data file does not cover"
            )));
        }
        Ok(())
    }

    fn bytes_logged_since_open(&self) -> u64 {
        self.logged_bytes
    }

    fn size_on_disk(&self) -> Result<u64, Error> {
        guard("measuring size", || self.db.size_on_disk())
    }
}

fn read_slot(file: &File, slot: usize) -> Result<Option<[u8; HEAD_SLOT_BYTES]>, Error> {
    let mut bytes = [0u8; HEAD_SLOT_BYTES];
    match file.read_exact_at(&mut bytes, (slot * HEAD_SLOT_BYTES) as u64) {
        Ok(()) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(io_error("reading the head file", &error)),
    }
}

/// The sequence a log key stands for.
fn key_sequence(key: &[u8]) -> Result<u64, Error> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Corruption(format!("a log key of {} bytes is not a sequence", key.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_says_so_and_that_nothing_is_lost() {
        let full = std::io::Error::from_raw_os_error(28);
        let error = sled_error("opening sled", sled::Error::Io(full));
        assert_eq!(error.code(), purse_core::ErrorCode::Storage);
        let message = error.to_string();
        assert!(message.contains("the disk is full") && message.contains("nothing acknowledged is lost"), "{message}");
        let other = io_error("reading", &std::io::Error::from_raw_os_error(5)).to_string();
        assert!(!other.contains("disk is full"), "{other}");
    }

    #[test]
    fn the_expected_conf_is_what_sled_writes() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_sled(dir.path(), SLED_CACHE_BYTES).unwrap());
        assert_eq!(std::fs::read(dir.path().join("conf")).unwrap(), expected_conf());
    }

    /// The log position sled's newest `snap.*` file covers (its name is that position in hex),
    /// 0 before sled wrote one.
    fn recovery_point(path: &Path) -> u64 {
        snapshot_files(path)
            .unwrap()
            .pop()
            .map_or(0, |newest| u64::from_str_radix(file_name(&newest).trim_start_matches("snap."), 16).unwrap())
    }

    #[test]
    fn a_checkpoint_moves_sleds_recovery_point_to_the_end_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _) = SledStorage::open(dir.path(), true, SLED_CACHE_BYTES).unwrap();
        let opened_at = recovery_point(dir.path());
        let blocks: Vec<(u64, Vec<u8>)> =
            (0..250u8).map(|first| (u64::from(first) * 256 + 1, vec![first; 4096])).collect();
        storage.log_put(blocks.clone()).unwrap();
        storage.sync().unwrap();
        assert_eq!(storage.bytes_logged_since_open(), 250 * 4096);
        drop(storage);
        wait_until_released(dir.path()).unwrap();
        assert_eq!(recovery_point(dir.path()), opened_at, "sled writes its recovery point only while opening");

        checkpoint(dir.path(), SLED_CACHE_BYTES).unwrap();
        let moved = recovery_point(dir.path());
        assert!(
            moved >= opened_at + 250 * 4096,
            "recovery point {moved} did not pass the log written after {opened_at}"
        );
        let (storage, _) = SledStorage::open(dir.path(), false, SLED_CACHE_BYTES).unwrap();
        assert_eq!(storage.bytes_logged_since_open(), 0);
        let read: Vec<(u64, Vec<u8>)> =
            storage.log_from(0).map(|block| block.map(|(first, bytes)| (first, bytes.to_vec())).unwrap()).collect();
        assert_eq!(read, blocks, "the log reads back whole after the checkpoint");
        // Held by another handle (another process that opened it meanwhile): it paid the scan.
        checkpoint(dir.path(), SLED_CACHE_BYTES).unwrap();
    }

    #[test]
    fn snapshot_checksums() {
        let mut bytes = b"snapshot body".to_vec();
        bytes.extend_from_slice(&(13u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(b"snapshot body").to_le_bytes());
        assert!(snapshot_checksum_holds(&bytes));
        bytes[2] ^= 1;
        assert!(!snapshot_checksum_holds(&bytes));
        assert!(!snapshot_checksum_holds(&[0; 12]));
        assert!(!snapshot_checksum_holds(&[]));
    }
}

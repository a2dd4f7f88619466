//! The sled side: trees, the durable append, and reads. Nothing above this file touches sled.
//!
//! Durability: sled 0.34.7's `flush()` ends in `sync_file_range`, which does not make data
//! durable (sled issue #1452). After every flush purse calls `fdatasync` on sled's single data
//! file `<dir>/db`, and only then acknowledges. Blocks are kept small enough that sled never
//! writes a blob file (those are never synced by sled); `verify` checks there are none.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use purse_core::{Scale, Zone};

use crate::error::Error;
use crate::head::{Head, HeadFile};

/// sled's page cache. The log is read back mostly at open; queries touch few blocks.
const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Blocks per sled batch at most (about 1.5 MiB). One sled batch of a whole million-record
/// ingestion (200 MB) took 5.5 s and 1.7 GB of memory; in batches of 64 to 1,024 blocks the
/// same writes took 1.3 s and 0.2 GB.
pub(crate) const BATCH_BLOCKS_MAX: usize = 256;
/// The version of the meta layout (the keys below).
const META_VERSION: u8 = 1;
const META_KEY_VERSION: &[u8] = b"version";
const META_KEY_SCALE: &[u8] = b"scale";
const META_KEY_ZONE: &[u8] = b"zone_offset_seconds";

/// Runs a sled call, turning its errors and its panics into purse errors.
fn guard<T>(what: &str, call: impl FnOnce() -> sled::Result<T>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(match Error::from(error) {
            Error::Storage(message) => Error::Storage(format!("{what}: {message}")),
            Error::Corruption(message) => Error::Corruption(format!("{what}: {message}")),
            other => other,
        }),
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

#[derive(Debug)]
pub(crate) struct Store {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    data_file: File,
    /// `None` until [`Store::create_head`] or [`Store::open_head`].
    head: Option<HeadFile>,
    path: PathBuf,
    fsyncs: u64,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(path)
            .map_err(|error| Error::Storage(format!("cannot create the data directory {}: {error}", path.display())))?;
        let config = sled::Config::new().path(path).cache_capacity(SLED_CACHE_BYTES);
        let db = guard("opening sled", || config.open()).map_err(|error| match error {
            Error::Storage(message) if message.contains("could not acquire lock") => Error::Storage(format!(
                "another process has the ledger at {} open; purse allows one process per ledger",
                path.display()
            )),
            other => other,
        })?;
        let log = guard("opening the log tree", || db.open_tree("log"))?;
        let meta = guard("opening the meta tree", || db.open_tree("meta"))?;
        let data_file = File::open(path.join("db"))
            .map_err(|error| Error::Storage(format!("cannot open sled's data file for syncing: {error}")))?;
        Ok(Store { db, log, meta, data_file, head: None, path: path.to_owned(), fsyncs: 0 })
    }

    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    /// The stored scale and zone, or `None` for a ledger that was never written.
    pub fn config(&self) -> Result<Option<(Scale, Zone)>, Error> {
        let version = guard("reading meta", || self.meta.get(META_KEY_VERSION))?;
        let Some(version) = version else {
            if guard("reading the log", || self.log.first())?.is_some() {
                return Err(Error::Corruption("the log has entries but the ledger's meta is missing".into()));
            }
            return Ok(None);
        };
        if version.as_ref() != [META_VERSION] {
            return Err(Error::Corruption(format!("meta version {:?} is not {META_VERSION}", version.as_ref())));
        }
        let scale = guard("reading meta", || self.meta.get(META_KEY_SCALE))?
            .and_then(|bytes| bytes.first().copied())
            .and_then(|decimals| Scale::new(u32::from(decimals)))
            .ok_or_else(|| Error::Corruption("meta scale is missing or invalid".into()))?;
        let zone = guard("reading meta", || self.meta.get(META_KEY_ZONE))?
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
            .and_then(|bytes| Zone::east_seconds(i32::from_be_bytes(bytes)))
            .ok_or_else(|| Error::Corruption("meta zone is missing or invalid".into()))?;
        Ok(Some((scale, zone)))
    }

    /// Stores the scale and zone of a new ledger, durably.
    pub fn write_config(&mut self, scale: Scale, zone: Zone) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        let decimals = u8::try_from(scale.decimals()).expect("SCALE_MAX fits u8");
        batch.insert(META_KEY_SCALE, &[decimals][..]);
        batch.insert(META_KEY_ZONE, &zone.offset_seconds().to_be_bytes()[..]);
        batch.insert(META_KEY_VERSION, &[META_VERSION][..]);
        guard("writing meta", || self.meta.apply_batch(batch))?;
        self.make_durable()
    }

    /// Starts the head file of a new ledger (before its meta, so a crash in between leaves a
    /// ledger that is simply created again).
    pub fn create_head(&mut self) -> Result<(), Error> {
        self.head = Some(HeadFile::open(&self.path, true)?.0);
        Ok(())
    }

    /// For a directory without sled meta: refuses it if a head file records acknowledged
    /// entries, because then sled's files were lost or replaced, not never written.
    pub fn check_no_acknowledged_entries(&self) -> Result<(), Error> {
        match HeadFile::open(&self.path, false) {
            Ok((_, head)) if head.sequence > 0 => Err(Error::Corruption(format!(
                "{} holds no ledger data, but its head file records {} acknowledged entries: sled's files are missing",
                self.path.display(),
                head.sequence
            ))),
            Ok(_) => Ok(()),
            // No head file (or an unreadable one) in a directory with no meta: nothing was ever
            // acknowledged here.
            Err(_) => Ok(()),
        }
    }

    /// Opens the head file of an existing ledger and returns the furthest acknowledged point.
    pub fn open_head(&mut self) -> Result<Head, Error> {
        let (file, head) = HeadFile::open(&self.path, false)?;
        self.head = Some(file);
        Ok(head)
    }

    /// Appends blocks and makes them durable before returning; `head` is then the new end of
    /// the log. Up to [`BATCH_BLOCKS_MAX`] blocks go in one atomic sled batch; a larger commit
    /// takes several, and its blocks but the last are marked CONTINUES, so that if the process
    /// dies between two batches the next open removes the part that landed
    /// ([`Store::drop_unfinished_commit`]). sled recovers a prefix of its writes in order, so a
    /// later batch is never there without the earlier ones.
    pub fn append(&mut self, blocks: Vec<(u64, Vec<u8>)>, head: Head) -> Result<(), Error> {
        self.append_unfinished(blocks)?;
        self.make_durable()?;
        self.head.as_mut().expect("the head file is open before any append").write(head)
    }

    /// Puts blocks into sled in batches of at most [`BATCH_BLOCKS_MAX`], unsynced. Called
    /// alone, for part of a commit that is not finished, every block must be marked CONTINUES:
    /// until [`Store::append`] writes the commit's last block they are removed on open, and
    /// [`Store::remove_unfinished`] removes them if the commit is dropped.
    pub fn append_unfinished(&mut self, blocks: Vec<(u64, Vec<u8>)>) -> Result<(), Error> {
        let mut blocks = blocks.into_iter().peekable();
        while blocks.peek().is_some() {
            let mut batch = sled::Batch::default();
            // Each block is dropped as it goes into the batch: the commit is held once, not twice.
            for (first_sequence, bytes) in blocks.by_ref().take(BATCH_BLOCKS_MAX) {
                batch.insert(&crate::block::key(first_sequence)[..], bytes);
            }
            guard("appending to the log", || self.log.apply_batch(batch))?;
        }
        Ok(())
    }

    /// Removes the blocks [`Store::append_unfinished`] wrote from sequence `first` on, for a
    /// commit that will not be finished. Not synced: until removed they are dropped on open.
    pub fn remove_unfinished(&mut self, first: u64) -> Result<(), Error> {
        let keys = guard("reading the log", || {
            self.log.range(&crate::block::key(first)[..]..).keys().collect::<sled::Result<Vec<_>>>()
        })?;
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.remove(key);
        }
        guard("removing an unfinished commit", || self.log.apply_batch(batch))
    }

    /// Removes the blocks of a commit that did not finish: the log's last blocks, if they are
    /// marked CONTINUES (see [`Store::append`]). Returns how many entries were removed. Such a
    /// commit was never acknowledged; if it reaches back to an acknowledged sequence, the log is
    /// damaged and nothing is removed.
    pub fn drop_unfinished_commit(&mut self, acknowledged: u64) -> Result<u64, Error> {
        let mut unfinished = Vec::new();
        let mut upper: Option<sled::IVec> = None;
        loop {
            let last = match &upper {
                None => guard("reading the log", || self.log.last())?,
                Some(key) => {
                    guard("reading the log", || self.log.range::<&[u8], _>(..key.as_ref()).next_back().transpose())?
                }
            };
            let Some((key, bytes)) = last else { break };
            let Ok(block) = crate::block::Block::parse(&key, &bytes) else {
                // A damaged block is for the fold to report, with its position.
                break;
            };
            if !block.continues {
                break;
            }
            if block.first_sequence <= acknowledged {
                return Err(Error::Corruption(format!(
                    "the log ends in an unfinished commit that reaches back to entry {}, which was acknowledged",
                    block.first_sequence
                )));
            }
            unfinished.push((block.first_sequence, block.last_sequence()));
            upper = Some(key);
        }
        let Some(&(first, _)) = unfinished.last() else { return Ok(0) };
        let last = unfinished[0].1;
        let mut batch = sled::Batch::default();
        for (first_sequence, _) in &unfinished {
            batch.remove(&crate::block::key(*first_sequence)[..]);
        }
        guard("removing an unfinished commit", || self.log.apply_batch(batch))?;
        self.make_durable()?;
        Ok(last - first + 1)
    }

    fn make_durable(&mut self) -> Result<(), Error> {
        guard("flushing sled", || self.db.flush())?;
        self.data_file
            .sync_data()
            .map_err(|error| Error::Storage(format!("fdatasync of sled's data file: {error}")))?;
        self.fsyncs += 1;
        Ok(())
    }

    /// The block holding `sequence`, as `(key, bytes)`, if the log reaches that far.
    pub fn block_containing(&self, sequence: u64) -> Result<Option<(sled::IVec, sled::IVec)>, Error> {
        let upper = crate::block::key(sequence);
        guard("reading the log", || self.log.range(..=&upper[..]).next_back().transpose())
    }

    /// Every block in sequence order.
    pub fn blocks(&self) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), Error>> + '_ {
        let mut iter = self.log.iter();
        std::iter::from_fn(move || guard("reading the log", || iter.next().transpose()).transpose())
    }

    /// Files sled keeps beside its data file that purse's fsync would not cover.
    pub fn unsynced_blob_files(&self) -> Result<usize, Error> {
        match std::fs::read_dir(self.path.join("blobs")) {
            Ok(entries) => Ok(entries.count()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    /// Bytes the data directory takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, Error> {
        guard("measuring size", || self.db.size_on_disk())
    }

    /// Flushes sled and syncs, for a clean close.
    pub fn close(mut self) -> Result<(), Error> {
        self.make_durable()?;
        self.head.as_ref().map_or(Ok(()), HeadFile::sync)
    }
}

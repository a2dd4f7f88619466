//! The store: purse's log logic over a [`Storage`] medium. Blocks, the head, commits of many
//! batches and their removal, the ledger's meta, and the repairs and warnings found on open.
//! Nothing above this file touches the medium.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use purse_core::{Scale, Zone};

use crate::error::Error;
use crate::head::{self, Head};
use crate::storage::{Bytes, Storage};

/// Blocks per atomic write at most (about 1.5 MiB). One sled batch of a whole million-record
/// ingestion (200 MB) took 5.5 s and 1.7 GB of memory; in batches of 64 to 1,024 blocks the
/// same writes took 1.3 s and 0.2 GB.
pub(crate) const BATCH_BLOCKS_MAX: usize = 256;
/// The version of the meta layout (the keys below).
const META_VERSION: u8 = 1;
pub(crate) const META_KEY_VERSION: &[u8] = b"version";
const META_KEY_SCALE: &[u8] = b"scale";
const META_KEY_ZONE: &[u8] = b"zone_offset_seconds";
/// CRC-32 (big-endian) of the version, scale and zone values, concatenated. Without it a
/// flipped bit in the scale or zone opens the ledger as another one: every amount and time
/// rendered differently, and nothing refused. Ledgers created before it have none (unchecked).
const META_KEY_CHECKSUM: &[u8] = b"checksum";

/// The checksum kept under [`META_KEY_CHECKSUM`]. The values have fixed lengths (1, 1, 4), so
/// their concatenation is unambiguous.
fn meta_checksum(version: &[u8], scale: &[u8], zone: &[u8]) -> [u8; 4] {
    let mut hasher = crc32fast::Hasher::new();
    for value in [version, scale, zone] {
        hasher.update(value);
    }
    hasher.finalize().to_be_bytes()
}

#[derive(Debug)]
pub(crate) struct Store {
    storage: Box<dyn Storage>,
    /// Shared with the writer's syncer, which makes commits durable on a thread of its own.
    fsyncs: Arc<AtomicU64>,
    /// Problems found while opening that lost nothing (a damaged head slot).
    warnings: Vec<String>,
}

impl Store {
    /// Opens the sled ledger in `path`; with `create`, a missing or empty directory becomes one.
    #[cfg(test)]
    pub fn open(path: &std::path::Path, create: bool) -> Result<Store, Error> {
        Store::open_with_cache(path, create, crate::sled_storage::SLED_CACHE_BYTES)
    }

    /// [`Store::open`] with sled's page cache of `cache_bytes` (the cache in front of the log
    /// and the cold store).
    pub fn open_with_cache(path: &std::path::Path, create: bool, cache_bytes: u64) -> Result<Store, Error> {
        // The repairs made are in the medium's repairs log, which `verify` reports.
        let storage = crate::replicated::ReplicatedStorage::open_local(path, create, cache_bytes)?;
        Ok(Store::over(Box::new(storage)))
    }

    /// A store over any medium (the simulator's).
    pub fn over(storage: Box<dyn Storage>) -> Store {
        Store { storage, fsyncs: Arc::default(), warnings: Vec::new() }
    }

    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// A syncer of this store's medium for another thread (see [`Storage::syncer`]), counting
    /// its fsyncs with the store's own.
    pub fn syncer(&self) -> Result<Option<StoreSyncer>, Error> {
        Ok(self.storage.syncer()?.map(|syncer| StoreSyncer { syncer, fsyncs: self.fsyncs.clone() }))
    }

    /// A reader of this store's log for other threads (see [`Storage::log_reader`]).
    pub fn log_reader(&self) -> Result<Option<Arc<dyn crate::storage::LogReader>>, Error> {
        self.storage.log_reader()
    }

    /// The cold store of this store's medium (see [`crate::storage::Storage::cold`]).
    pub fn cold(&self) -> Result<Option<Arc<dyn crate::snapshot_format::cold::ColdStore>>, Error> {
        self.storage.cold()
    }

    /// Records `head` as acknowledged, for a commit a syncer made durable. Not synced, like the
    /// head [`Store::append`] writes.
    pub fn write_head(&mut self, head: Head) -> Result<(), Error> {
        head::write(self.storage.as_mut(), head)
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The stored scale and zone, or `None` for a ledger that was never written.
    pub fn config(&self) -> Result<Option<(Scale, Zone)>, Error> {
        let Some(version) = self.storage.meta_get(META_KEY_VERSION)? else {
            if self.storage.log_at_or_before(u64::MAX)?.is_some() {
                return Err(Error::Corruption("the log has entries but the ledger's meta is missing".into()));
            }
            return Ok(None);
        };
        if version.as_ref() != [META_VERSION] {
            return Err(Error::Corruption(format!("meta version {:?} is not {META_VERSION}", version.as_ref())));
        }
        let scale_bytes = self.storage.meta_get(META_KEY_SCALE)?;
        let zone_bytes = self.storage.meta_get(META_KEY_ZONE)?;
        if let Some(stored) = self.storage.meta_get(META_KEY_CHECKSUM)? {
            let computed =
                meta_checksum(&version, scale_bytes.as_deref().unwrap_or(&[]), zone_bytes.as_deref().unwrap_or(&[]));
            if stored.as_ref() != computed {
                return Err(Error::Corruption("the ledger's meta (scale, zone) fails its checksum".into()));
            }
        }
        let scale = scale_bytes
            .and_then(|bytes| bytes.first().copied())
            .and_then(|decimals| Scale::new(u32::from(decimals)))
            .ok_or_else(|| Error::Corruption("meta scale is missing or invalid".into()))?;
        let zone = zone_bytes
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
            .and_then(|bytes| Zone::east_seconds(i32::from_be_bytes(bytes)))
            .ok_or_else(|| Error::Corruption("meta zone is missing or invalid".into()))?;
        Ok(Some((scale, zone)))
    }

    /// Stores the scale and zone of a new ledger, durably.
    pub fn write_config(&mut self, scale: Scale, zone: Zone) -> Result<(), Error> {
        let decimals = u8::try_from(scale.decimals()).expect("SCALE_MAX fits u8");
        let zone = zone.offset_seconds().to_be_bytes();
        let checksum = meta_checksum(&[META_VERSION], &[decimals], &zone);
        let entries: [(&[u8], &[u8]); 4] = [
            (META_KEY_SCALE, &[decimals]),
            (META_KEY_ZONE, &zone),
            (META_KEY_CHECKSUM, &checksum),
            (META_KEY_VERSION, &[META_VERSION]),
        ];
        self.storage.meta_put(&entries)?;
        self.make_durable()
    }

    /// Starts the head of a new ledger (before its meta, so a crash in between leaves a ledger
    /// that is simply created again).
    pub fn create_head(&mut self) -> Result<(), Error> {
        head::create(self.storage.as_mut())
    }

    /// For a directory without meta: refuses it if the head records acknowledged entries,
    /// because then the ledger's data was lost or replaced, not never written.
    pub fn check_no_acknowledged_entries(&self) -> Result<(), Error> {
        if !self.storage.head_exists()? {
            return Ok(());
        }
        match head::read(self.storage.as_ref()) {
            Ok(read) if read.head.sequence > 0 => Err(Error::Corruption(format!(
                "the ledger holds no data, but its head file records {} acknowledged entries: its data files are missing",
                read.head.sequence
            ))),
            // An unreadable head with no meta: nothing was ever acknowledged here.
            Ok(_) | Err(_) => Ok(()),
        }
    }

    /// Reads the head of an existing ledger: the furthest acknowledged point. A damaged slot
    /// becomes a warning (the other slot holds the same point).
    pub fn open_head(&mut self) -> Result<Head, Error> {
        let read = head::read(self.storage.as_ref())?;
        self.warnings.extend(read.warnings);
        Ok(read.head)
    }

    /// Warnings about the head as it is now (for `verify`).
    pub fn head_warnings(&self) -> Result<Vec<String>, Error> {
        Ok(head::read(self.storage.as_ref())?.warnings)
    }

    /// Rewrites both head slots with `head` and syncs them: after a damaged slot was found on
    /// open and the log was checked to reach `head`.
    pub fn repair_head(&mut self, head: Head) -> Result<(), Error> {
        head::write(self.storage.as_mut(), head)?;
        self.storage.head_sync()?;
        let line = format!("rewrote both head slots at entry {} after finding a damaged one", head.sequence);
        self.storage.repairs_append(&line)
    }

    /// Every line of the repairs log.
    pub fn repairs_logged(&self) -> Result<Vec<String>, Error> {
        self.storage.repairs_read()
    }

    /// Appends blocks and makes them durable before returning; `head` is then the new end of
    /// the log. Up to [`BATCH_BLOCKS_MAX`] blocks go in one atomic write; a larger commit
    /// takes several, and its blocks but the last are marked CONTINUES, so that if the process
    /// dies between two writes the next open removes the part that landed
    /// ([`Store::drop_unfinished_commit`]). The medium recovers a prefix of its writes in order,
    /// so a later write is never there without the earlier ones.
    pub fn append(&mut self, blocks: Vec<(u64, Vec<u8>)>, head: Head) -> Result<(), Error> {
        self.append_unfinished(blocks)?;
        self.make_durable()?;
        head::write(self.storage.as_mut(), head)
    }

    /// Puts blocks into the log in writes of at most [`BATCH_BLOCKS_MAX`], unsynced. Called
    /// alone, for part of a commit that is not finished, every block must be marked CONTINUES:
    /// until [`Store::append`] writes the commit's last block they are removed on open, and
    /// [`Store::remove_unfinished`] removes them if the commit is dropped.
    pub fn append_unfinished(&mut self, blocks: Vec<(u64, Vec<u8>)>) -> Result<(), Error> {
        let mut blocks = blocks.into_iter().peekable();
        while blocks.peek().is_some() {
            let batch: Vec<(u64, Vec<u8>)> = blocks.by_ref().take(BATCH_BLOCKS_MAX).collect();
            self.storage.log_put(batch)?;
        }
        Ok(())
    }

    /// Removes the blocks [`Store::append_unfinished`] wrote from sequence `first` on, for a
    /// commit that will not be finished. Not synced: until removed they are dropped on open.
    pub fn remove_unfinished(&mut self, first: u64) -> Result<(), Error> {
        let firsts =
            self.storage.log_from(first).map(|block| block.map(|(key, _)| key)).collect::<Result<Vec<_>, _>>()?;
        if firsts.is_empty() {
            return Ok(());
        }
        self.storage.log_remove(&firsts)
    }

    /// Removes the blocks of a commit that did not finish: the log's last blocks, if they are
    /// marked CONTINUES (see [`Store::append`]). Returns how many entries were removed. Such a
    /// commit was never acknowledged; if it reaches back to an acknowledged sequence, the log is
    /// damaged and nothing is removed.
    pub fn drop_unfinished_commit(&mut self, acknowledged: u64) -> Result<u64, Error> {
        let mut unfinished = Vec::new();
        let mut upper = u64::MAX;
        while let Some((key, bytes)) = self.storage.log_at_or_before(upper)? {
            let Ok(block) = crate::block::Block::parse(key, &bytes) else {
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
            let Some(below) = key.checked_sub(1) else { break };
            upper = below;
        }
        let Some(&(first, _)) = unfinished.last() else { return Ok(0) };
        let last = unfinished[0].1;
        let firsts: Vec<u64> = unfinished.iter().map(|(first_sequence, _)| *first_sequence).collect();
        self.storage.log_remove(&firsts)?;
        self.make_durable()?;
        Ok(last - first + 1)
    }

    fn make_durable(&mut self) -> Result<(), Error> {
        self.storage.sync()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The block holding `sequence`, as `(first sequence, bytes)`, if the log reaches that far.
    pub fn block_containing(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        self.storage.log_at_or_before(sequence)
    }

    /// The blocks whose first sequence is at least `first`, in order (the tail after a snapshot).
    pub fn blocks_from(&self, first: u64) -> impl Iterator<Item = Result<(u64, Bytes), Error>> + '_ {
        self.storage.log_from(first)
    }

    /// Problems of the medium the log's checks cannot see (sled's unsynced blob files).
    pub fn check_medium(&self) -> Result<(), Error> {
        self.storage.check_medium()
    }

    /// Bytes the ledger takes on its medium.
    pub fn size_on_disk(&self) -> Result<u64, Error> {
        self.storage.size_on_disk()
    }

    /// Bytes of log blocks appended since the store opened (see [`Storage::bytes_logged_since_open`]).
    pub fn bytes_logged_since_open(&self) -> u64 {
        self.storage.bytes_logged_since_open()
    }

    /// Makes everything durable, the head included, for a clean close.
    pub fn close(&mut self) -> Result<(), Error> {
        self.make_durable()?;
        self.storage.head_sync()?;
        self.storage.close()
    }
}

/// A [`Syncer`] and the store's fsync count.
pub(crate) struct StoreSyncer {
    syncer: Box<dyn crate::storage::Syncer>,
    fsyncs: Arc<AtomicU64>,
}

impl StoreSyncer {
    pub fn sync(&mut self) -> Result<(), Error> {
        self.syncer.sync()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

//! The storage interface beneath the store: the few operations purse needs of a medium.
//!
//! [`crate::store`] keeps purse's logic (blocks, the head, unfinished commits, repairs) on top
//! of this trait, so the same logic runs over sled on disk ([`crate::sled_storage`]) and over
//! the deterministic simulator's faulty in-memory medium (the `purse-sim` crate).
//!
//! The contract every implementation keeps, and the simulator tests:
//! - writes (`meta_put`, `log_put`, `log_remove`) are each atomic: after a crash one is there
//!   whole or not at all;
//! - after a crash the log and meta hold every write made before the last successful `sync`,
//!   plus a prefix, in order, of the writes made after it (sled recovers its log up to the first
//!   message it cannot read);
//! - the head slots are a separate file: a slot written after the last `head_sync` may or may not
//!   survive a power loss, independently of the other slot;
//! - an error leaves it unknown whether the failed write landed; the writer stops (is poisoned)
//!   and the ledger must be reopened.

use std::fmt::Debug;

use crate::error::Error;

/// Bytes read back from storage. sled's cheap, reference-counted buffer; other media build it
/// from a `Vec<u8>`.
pub type Bytes = sled::IVec;

pub use crate::snapshot_format::cold::ColdStore;

/// The bytes of one head slot (see `head.rs` for the layout).
pub const HEAD_SLOT_BYTES: usize = 32;

/// Makes durable, from a thread of its own, every write made to the medium before each call to
/// [`Syncer::sync`]; what [`Storage::sync`] does, without borrowing the medium.
pub trait Syncer: Send {
    fn sync(&mut self) -> Result<(), Error>;
}

/// Reads the log from any thread, beside the writer: what answers a replayed request without a
/// log read on the writer. It sees every block put so far, synced or not.
pub trait LogReader: Send + Sync + Debug {
    /// The block with the greatest first sequence at or below `sequence`.
    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error>;
}

/// The medium a ledger lives on. See the module documentation for the contract.
pub trait Storage: Send + Sync + Debug {
    /// The value under `key` in the meta tree.
    fn meta_get(&self, key: &[u8]) -> Result<Option<Bytes>, Error>;
    /// Stores every `(key, value)` in the meta tree, atomically. Not synced.
    fn meta_put(&mut self, entries: &[(&[u8], &[u8])]) -> Result<(), Error>;
    /// Inserts blocks, each under its first sequence, atomically. Not synced.
    fn log_put(&mut self, blocks: Vec<(u64, Vec<u8>)>) -> Result<(), Error>;
    /// Removes the blocks under the given first sequences, atomically. Not synced.
    fn log_remove(&mut self, firsts: &[u64]) -> Result<(), Error>;
    /// The block with the greatest first sequence at or below `sequence`.
    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error>;
    /// The blocks whose first sequence is at least `first`, in order.
    fn log_from<'a>(&'a self, first: u64) -> Box<dyn Iterator<Item = Result<(u64, Bytes), Error>> + 'a>;
    /// Makes every write before it durable.
    fn sync(&mut self) -> Result<(), Error>;
    /// A [`Syncer`] for this medium, if it has one: the writer then decides the next batch on
    /// its thread while the syncer makes the last one durable on another. `None` (the default):
    /// every commit is synced on the writer's thread, between batches.
    fn syncer(&self) -> Result<Option<Box<dyn Syncer>>, Error> {
        Ok(None)
    }
    /// A [`LogReader`] for other threads, if the medium has one. `None` (the default): the
    /// writer reads for everyone.
    fn log_reader(&self) -> Result<Option<std::sync::Arc<dyn LogReader>>, Error> {
        Ok(None)
    }
    /// The cold store of this medium (`snapshot_cold.rs`), if it has one. `None` (the default):
    /// memory keeps every order, record and reference.
    fn cold(&self) -> Result<Option<std::sync::Arc<dyn ColdStore>>, Error> {
        Ok(None)
    }

    /// Whether the head file exists.
    fn head_exists(&self) -> Result<bool, Error>;
    /// Creates an empty head file (for a new ledger), replacing any.
    fn head_create(&mut self) -> Result<(), Error>;
    /// The bytes of head slot 0 or 1, `None` if the file is too short to hold it.
    fn head_read(&self, slot: usize) -> Result<Option<[u8; HEAD_SLOT_BYTES]>, Error>;
    /// Writes head slot 0 or 1. Not synced.
    fn head_write(&mut self, slot: usize, bytes: &[u8; HEAD_SLOT_BYTES]) -> Result<(), Error>;
    /// Makes the head file's writes durable.
    fn head_sync(&mut self) -> Result<(), Error>;

    /// Appends one line to the ledger's repairs log, durably.
    fn repairs_append(&mut self, line: &str) -> Result<(), Error>;
    /// Every line of the repairs log, oldest first.
    fn repairs_read(&self) -> Result<Vec<String>, Error>;

    /// Problems of the medium that the log's checks cannot see (sled: blob files its fsync
    /// does not cover). `Ok` when there are none.
    fn check_medium(&self) -> Result<(), Error>;
    /// Bytes the ledger takes on the medium.
    fn size_on_disk(&self) -> Result<u64, Error>;
    /// Bytes of log blocks appended since this handle opened: what the medium's own recovery
    /// would read again after it (sled). 0 on media that recover in constant time.
    fn bytes_logged_since_open(&self) -> u64 {
        0
    }
    /// A clean close, after the last `sync` and `head_sync`: what the medium does so that the
    /// next open has little to read again (the local journal drops what its image covers).
    fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

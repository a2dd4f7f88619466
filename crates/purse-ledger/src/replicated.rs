//! A replicated medium: the writer's [`Storage`] operations journaled into a [`Journal`], with
//! the node's sled directory as an image of the journal (docs/cluster.md §1).
//!
//! Every `meta_put`, `log_put` and `log_remove` becomes one journal entry (a large put several,
//! each at most [`ENTRY_BYTES_MAX`]), appended in the writer's order and at once, without
//! waiting; `sync` (and the pipeline's syncer) waits until the journal has all of them durable.
//! So what the writer acknowledges is exactly what a quorum has: a lost machine loses nothing.
//!
//! **Invariant:** the local log tree holds only entries the journal has made durable, applied
//! in the journal's order, and the meta key [`KEY_POSITION`] names a position the tree has
//! reached (it is written after the entries it covers, and sled recovers a prefix of its writes
//! in order). So the image needs no atomic writes of its own: an entry is applied key by key
//! (a sled batch would make sled write out its buffer every time), and one cut short by a
//! crash is applied again from the journal. Entries appended and not yet durable live in memory (`Pending`) and every read
//! merges them over the tree. Opening replays the journal from that position: entries are
//! whole-key puts and removes, so replaying some twice gives the same tree.
//!
//! A block put split over two entries is safe to cut between them: every block of a commit but
//! its last is marked CONTINUES, so a cut leaves an unfinished commit, which opening drops
//! (a journaled removal) as it does on sled.
//!
//! The local directory is never fsynced on the commit path (the journal is the durable copy);
//! at open it is made to match the journal, then synced once.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Error;
use crate::journal::{Journal, JournalEntry};
use crate::sled_storage::SledStorage;
use crate::storage::{Bytes, ColdStore, LogReader, Storage, Syncer, HEAD_SLOT_BYTES};

/// Bytes of blocks in one journal entry at most. NATS's default `max_payload` is 1 MiB; a sled
/// batch of 256 blocks is about 1.5 MiB, so it often goes as two entries.
pub const ENTRY_BYTES_MAX: usize = 512 * 1024;
/// The journal this directory is an image of (its name), in the local meta tree.
const KEY_JOURNAL: &[u8] = b"journal";
/// The journal position the local tree has reached (u64, big-endian), in the local meta tree.
const KEY_POSITION: &[u8] = b"journal_position";
/// Entries replayed between two records of [`KEY_POSITION`] while catching up at open.
const CATCH_UP_CHECKPOINT_ENTRIES: u64 = 1024;

/// Writes appended and not yet durable in the journal, oldest first, and the newest pending
/// value of every key they touch (`None`: removed), with the position that wrote it.
#[derive(Debug, Default)]
struct Pending {
    entries: VecDeque<(u64, JournalEntry)>,
    keys: BTreeMap<u64, (u64, Option<Bytes>)>,
    /// The position the next append lands at.
    next: u64,
    /// The last position applied to the local image.
    applied: u64,
}

#[derive(Debug)]
struct Shared {
    journal: Arc<dyn Journal>,
    local: Mutex<SledStorage>,
    log: sled::Tree,
    pending: Mutex<Pending>,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct ReplicatedStorage {
    shared: Arc<Shared>,
}

fn locked<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, Error> {
    mutex.lock().map_err(|_| Error::Storage("a thread died holding the replicated medium's lock".into()))
}

/// Applies one durable entry to the local image. Epoch markers change nothing.
fn apply(local: &mut SledStorage, entry: &JournalEntry) -> Result<(), Error> {
    match entry {
        JournalEntry::Meta(entries) => {
            let entries: Vec<(&[u8], &[u8])> =
                entries.iter().map(|(key, value)| (key.as_slice(), value.as_slice())).collect();
            local.meta_apply(&entries)
        }
        JournalEntry::Put(blocks) => local.log_apply(blocks, &[]),
        JournalEntry::Remove(firsts) => local.log_apply(&[], firsts),
        JournalEntry::Epoch(_) => Ok(()),
    }
}

impl ReplicatedStorage {
    /// Opens the node's directory `path` as an image of `journal`: takes the journal over as
    /// `owner` (fencing every earlier writer), then replays what the directory lacks. A new
    /// directory becomes a full copy; one made from another journal, or holding a ledger of its
    /// own, is refused.
    pub fn open(path: &Path, cache_bytes: u64, journal: Arc<dyn Journal>, owner: &str) -> Result<Self, Error> {
        let (local, _repairs) = SledStorage::open(path, true, cache_bytes)?;
        ReplicatedStorage::over(path, local, journal, owner, false)
    }

    /// The embedded default: the ledger directory's own sled as the image of its local
    /// write-ahead log (`wal.rs`), which checkpoints sled in the background. A ledger written
    /// before the log (no journal recorded) is adopted: its sled holds all of it durably.
    pub fn open_local(path: &Path, create: bool, cache_bytes: u64) -> Result<Self, Error> {
        let (local, _repairs) = SledStorage::open(path, create, cache_bytes)?;
        let journal = Arc::new(crate::wal::FileJournal::open(path)?);
        let storage =
            ReplicatedStorage::over(path, local, Arc::clone(&journal) as Arc<dyn Journal>, crate::wal::NAME, true)?;
        let image = storage.local()?.syncer()?.ok_or_else(|| Error::Storage("sled gave no syncer".into()))?;
        journal.image_syncer(image)?;
        Ok(storage)
    }

    fn over(
        path: &Path,
        mut local: SledStorage,
        journal: Arc<dyn Journal>,
        owner: &str,
        adopt: bool,
    ) -> Result<Self, Error> {
        let name = journal.name();
        let own_ledger = || {
            Error::InvalidArgument(format!(
                "{} holds a ledger of its own, not a replica: give a replica its own directory",
                path.display()
            ))
        };
        match local.meta_get(KEY_JOURNAL)? {
            Some(stored) if stored == crate::wal::NAME.as_bytes() && name != crate::wal::NAME => {
                return Err(own_ledger())
            }
            Some(stored) if stored != name.as_bytes() => {
                return Err(Error::InvalidArgument(format!(
                    "{} is a replica of journal {:?}, not of {name:?}",
                    path.display(),
                    String::from_utf8_lossy(&stored)
                )))
            }
            Some(_) => {}
            None => {
                let has_ledger =
                    local.meta_get(crate::store::META_KEY_VERSION)?.is_some() || local.log_from(0).next().is_some();
                if has_ledger && !adopt {
                    return Err(own_ledger());
                }
                local.meta_put(&[(KEY_JOURNAL, name.as_bytes())])?;
            }
        }
        let reached = match local.meta_get(KEY_POSITION)? {
            None => 0,
            Some(bytes) => u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| {
                Error::Corruption(format!("{}: the journal position is {} bytes, not 8", path.display(), bytes.len()))
            })?),
        };
        let marker = journal.take_over(owner)?;
        if marker <= reached {
            return Err(Error::Corruption(format!(
                "journal {name:?} ends at {} but {} holds its entries up to {reached}: the journal lost acknowledged entries",
                marker - 1,
                path.display()
            )));
        }
        journal.read(reached, marker, &mut |position, bytes| {
            apply(&mut local, &JournalEntry::decode(position, bytes)?)?;
            if position % CATCH_UP_CHECKPOINT_ENTRIES == 0 {
                local.meta_apply(&[(KEY_POSITION, &position.to_be_bytes())])?;
            }
            Ok(())
        })?;
        local.meta_apply(&[(KEY_POSITION, &marker.to_be_bytes())])?;
        if !adopt && local.meta_get(crate::store::META_KEY_VERSION)?.is_some() && !local.head_exists()? {
            // A directory made from the journal: the head file is the node's own (nothing
            // acknowledged here yet; the log is checked against the journal instead).
            crate::head::create(&mut local)?;
        }
        local.sync()?;
        let log = local.log_tree();
        let pending = Pending { next: marker + 1, applied: marker, ..Pending::default() };
        let shared = Shared { journal, local: Mutex::new(local), log, pending: Mutex::new(pending) };
        Ok(ReplicatedStorage { shared: Arc::new(shared) })
    }

    fn local(&self) -> Result<MutexGuard<'_, SledStorage>, Error> {
        locked(&self.shared.local)
    }
}

impl Shared {
    /// Appends `entry` to the journal (not waiting) and to what reads merge in.
    fn append(&self, entry: JournalEntry) -> Result<(), Error> {
        let bytes = entry.encode();
        let mut pending = locked(&self.pending)?;
        let position = pending.next;
        match &entry {
            JournalEntry::Put(blocks) => {
                for (first, bytes) in blocks {
                    pending.keys.insert(*first, (position, Some(bytes.clone())));
                }
            }
            JournalEntry::Remove(firsts) => {
                for first in firsts {
                    pending.keys.insert(*first, (position, None));
                }
            }
            JournalEntry::Meta(_) | JournalEntry::Epoch(_) => {}
        }
        pending.entries.push_back((position, entry));
        pending.next += 1;
        // Under the lock: the journal's order is the order of `next`.
        self.journal.append(bytes)
    }

    /// Waits until the journal has every append durable, then applies them to the local image.
    fn sync(&self) -> Result<(), Error> {
        let durable = self.journal.sync()?;
        let mut pending = locked(&self.pending)?;
        let mut local = locked(&self.local)?;
        let mut applied = None;
        while pending.entries.front().is_some_and(|(position, _)| *position <= durable) {
            let (position, entry) = pending.entries.pop_front().expect("checked: there is a front");
            apply(&mut local, &entry)?;
            applied = Some(position);
        }
        if let Some(applied) = applied {
            local.meta_apply(&[(KEY_POSITION, &applied.to_be_bytes())])?;
            pending.keys.retain(|_, (position, _)| *position > applied);
            pending.applied = applied;
            drop(local);
            drop(pending);
            self.journal.applied(applied)?;
        }
        Ok(())
    }

    fn at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        let pending = locked(&self.pending)?;
        SledStorage::merged_at_or_before(&self.log, &pending.keys, sequence)
    }
}

/// The pipeline's syncer over the shared journal.
struct ReplicatedSyncer {
    shared: Arc<Shared>,
}

impl Syncer for ReplicatedSyncer {
    fn sync(&mut self) -> Result<(), Error> {
        self.shared.sync()
    }
}

#[derive(Debug)]
struct ReplicatedReader {
    shared: Arc<Shared>,
}

impl LogReader for ReplicatedReader {
    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        self.shared.at_or_before(sequence)
    }
}

impl Storage for ReplicatedStorage {
    fn meta_get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        {
            let pending = locked(&self.shared.pending)?;
            for (_, entry) in pending.entries.iter().rev() {
                if let JournalEntry::Meta(entries) = entry {
                    if let Some((_, value)) = entries.iter().find(|(stored, _)| stored == key) {
                        return Ok(Some(Bytes::from(value.as_slice())));
                    }
                }
            }
        }
        self.local()?.meta_get(key)
    }

    fn meta_put(&mut self, entries: &[(&[u8], &[u8])]) -> Result<(), Error> {
        let entries = entries.iter().map(|(key, value)| (key.to_vec(), value.to_vec())).collect();
        self.shared.append(JournalEntry::Meta(entries))
    }

    fn log_put(&mut self, blocks: Vec<(u64, Vec<u8>)>) -> Result<(), Error> {
        let mut part = Vec::new();
        let mut part_bytes = 0;
        for (first, bytes) in blocks {
            if !part.is_empty() && part_bytes + bytes.len() > ENTRY_BYTES_MAX {
                self.shared.append(JournalEntry::Put(std::mem::take(&mut part)))?;
                part_bytes = 0;
            }
            part_bytes += bytes.len();
            part.push((first, Bytes::from(bytes)));
        }
        if part.is_empty() {
            return Ok(());
        }
        self.shared.append(JournalEntry::Put(part))
    }

    fn log_remove(&mut self, firsts: &[u64]) -> Result<(), Error> {
        self.shared.append(JournalEntry::Remove(firsts.to_vec()))
    }

    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        self.shared.at_or_before(sequence)
    }

    fn log_from<'a>(&'a self, first: u64) -> Box<dyn Iterator<Item = Result<(u64, Bytes), Error>> + 'a> {
        let pending: Vec<(u64, Option<Bytes>)> = match locked(&self.shared.pending) {
            Ok(pending) => pending.keys.range(first..).map(|(key, (_, bytes))| (*key, bytes.clone())).collect(),
            Err(error) => return Box::new(std::iter::once(Err(error))),
        };
        Box::new(Merged {
            log: SledStorage::tree_from(&self.shared.log, first).peekable(),
            pending: pending.into_iter().peekable(),
        })
    }

    fn sync(&mut self) -> Result<(), Error> {
        self.shared.sync()
    }

    fn syncer(&self) -> Result<Option<Box<dyn Syncer>>, Error> {
        Ok(Some(Box::new(ReplicatedSyncer { shared: Arc::clone(&self.shared) })))
    }

    fn log_reader(&self) -> Result<Option<Arc<dyn LogReader>>, Error> {
        Ok(Some(Arc::new(ReplicatedReader { shared: Arc::clone(&self.shared) })))
    }

    fn cold(&self) -> Result<Option<Arc<dyn ColdStore>>, Error> {
        self.local()?.cold()
    }

    fn head_exists(&self) -> Result<bool, Error> {
        self.local()?.head_exists()
    }
    fn head_create(&mut self) -> Result<(), Error> {
        self.local()?.head_create()
    }
    fn head_read(&self, slot: usize) -> Result<Option<[u8; HEAD_SLOT_BYTES]>, Error> {
        self.local()?.head_read(slot)
    }
    fn head_write(&mut self, slot: usize, bytes: &[u8; HEAD_SLOT_BYTES]) -> Result<(), Error> {
        self.local()?.head_write(slot, bytes)
    }
    fn head_sync(&mut self) -> Result<(), Error> {
        self.local()?.head_sync()
    }
    fn repairs_append(&mut self, line: &str) -> Result<(), Error> {
        self.local()?.repairs_append(line)
    }
    fn repairs_read(&self) -> Result<Vec<String>, Error> {
        self.local()?.repairs_read()
    }
    fn check_medium(&self) -> Result<(), Error> {
        self.local()?.check_medium()
    }
    fn size_on_disk(&self) -> Result<u64, Error> {
        self.local()?.size_on_disk()
    }
    fn bytes_logged_since_open(&self) -> u64 {
        self.local().map_or(0, |local| local.bytes_logged_since_open())
    }
    /// Makes the image durable and lets the journal drop what it covers (`Journal::close`).
    fn close(&mut self) -> Result<(), Error> {
        self.shared.sync()?;
        let applied = locked(&self.shared.pending)?.applied;
        self.local()?.sync()?;
        self.shared.journal.close(applied)
    }
}

/// The log tree's blocks with the pending writes merged over them, in key order.
struct Merged<L: Iterator<Item = Result<(u64, Bytes), Error>>, P: Iterator<Item = (u64, Option<Bytes>)>> {
    log: std::iter::Peekable<L>,
    pending: std::iter::Peekable<P>,
}

impl<L, P> Iterator for Merged<L, P>
where
    L: Iterator<Item = Result<(u64, Bytes), Error>>,
    P: Iterator<Item = (u64, Option<Bytes>)>,
{
    type Item = Result<(u64, Bytes), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let log_key = match self.log.peek() {
                Some(Ok((key, _))) => Some(*key),
                Some(Err(_)) => return self.log.next(),
                None => None,
            };
            let pending_key = self.pending.peek().map(|(key, _)| *key);
            match (log_key, pending_key) {
                (None, None) => return None,
                (Some(_), None) => return self.log.next(),
                (log, Some(pending)) if log.is_none_or(|log| pending <= log) => {
                    if log == Some(pending) {
                        self.log.next();
                    }
                    let (key, bytes) = self.pending.next().expect("peeked");
                    match bytes {
                        Some(bytes) => return Some(Ok((key, bytes))),
                        None => continue,
                    }
                }
                _ => return self.log.next(),
            }
        }
    }
}

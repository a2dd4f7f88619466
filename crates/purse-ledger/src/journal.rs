//! A replicated journal: the log backend beneath a replicated ledger (docs/cluster.md §1).
//!
//! The writer reaches its medium through [`crate::storage::Storage`]: meta puts, block puts
//! and removals, each atomic, made durable by `sync`. A replicated ledger journals exactly
//! those operations, in the order the writer makes them, into a [`Journal`]: an append-only
//! sequence of entries at contiguous positions, where an append lands only right after the
//! entry its writer last saw (compare-and-append). The node's own sled directory is an image
//! of the journal (`replicated.rs`), rebuilt from it at any time. Two journals exist: a
//! JetStream stream (`jetstream.rs`, cargo feature `jetstream`) and [`MemoryJournal`], the same
//! contract in memory, for tests.
//!
//! The contract:
//! - [`Journal::take_over`] makes the caller the journal's one writer: it appends an epoch
//!   marker right after the journal's current end. From then on an append of any earlier writer
//!   expects a position that is taken, and fails: that writer is *fenced*, and what it had not
//!   made durable never exists.
//! - [`Journal::append`] starts appending one entry after the last one this writer appended
//!   (or after its marker) and returns at once; [`Journal::sync`] waits until every append
//!   started is durable (a quorum has it) and returns the position of the last. After a failed
//!   append every later one fails too: the writer must take the journal over again (reopen).
//! - [`Journal::read`] gives the entries between two positions, in order, each exactly as
//!   appended. A position missing below the end is damage, never skipped.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::storage::Bytes;

/// The version of the entry encoding below (its first byte).
pub const ENTRY_VERSION: u8 = 1;

/// One journaled operation of the medium. Variants are only appended; the tag is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalEntry {
    /// Meta tree puts, in one atomic write (the ledger's scale and zone, at creation).
    Meta(Vec<(Vec<u8>, Vec<u8>)>),
    /// Blocks put into the log, each under its first sequence, in one atomic write.
    Put(Vec<(u64, Bytes)>),
    /// Blocks removed from the log (an unfinished commit dropped), in one atomic write.
    Remove(Vec<u64>),
    /// A writer took the journal over; changes nothing in the log. Names the writer.
    Epoch(String),
}

const TAG_META: u8 = 1;
const TAG_PUT: u8 = 2;
const TAG_REMOVE: u8 = 3;
const TAG_EPOCH: u8 = 4;

impl JournalEntry {
    /// `[version][tag][body][CRC-32 of all before it, big-endian]`; lengths and counts are
    /// u32 big-endian, sequences u64 big-endian. The CRC is the entry's own: a flipped bit in a
    /// replica (nats-server #7549) is found here, not folded.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENTRY_VERSION];
        let put_bytes = |out: &mut Vec<u8>, bytes: &[u8]| {
            out.extend_from_slice(&u32::try_from(bytes.len()).expect("an entry part under 4 GiB").to_be_bytes());
            out.extend_from_slice(bytes);
        };
        let put_count = |out: &mut Vec<u8>, count: usize| {
            out.extend_from_slice(&u32::try_from(count).expect("under 4 billion parts").to_be_bytes());
        };
        match self {
            JournalEntry::Meta(entries) => {
                out.push(TAG_META);
                put_count(&mut out, entries.len());
                for (key, value) in entries {
                    put_bytes(&mut out, key);
                    put_bytes(&mut out, value);
                }
            }
            JournalEntry::Put(blocks) => {
                out.push(TAG_PUT);
                put_count(&mut out, blocks.len());
                for (first, bytes) in blocks {
                    out.extend_from_slice(&first.to_be_bytes());
                    put_bytes(&mut out, bytes);
                }
            }
            JournalEntry::Remove(firsts) => {
                out.push(TAG_REMOVE);
                put_count(&mut out, firsts.len());
                for first in firsts {
                    out.extend_from_slice(&first.to_be_bytes());
                }
            }
            JournalEntry::Epoch(owner) => {
                out.push(TAG_EPOCH);
                put_bytes(&mut out, owner.as_bytes());
            }
        }
        let checksum = crc32fast::hash(&out);
        out.extend_from_slice(&checksum.to_be_bytes());
        out
    }

    /// The entry `bytes` encode; `CORRUPTION` naming the position if they are damaged or of an
    /// unknown version.
    pub fn decode(position: u64, bytes: &[u8]) -> Result<JournalEntry, Error> {
        let damaged = |why: &str| Error::Corruption(format!("journal entry {position}: {why}"));
        let Some(body_length) = bytes.len().checked_sub(4) else { return Err(damaged("shorter than its checksum")) };
        let (body, stored) = bytes.split_at(body_length);
        if crc32fast::hash(body).to_be_bytes() != stored {
            return Err(damaged("its checksum does not match its bytes"));
        }
        let mut reader = Reader { bytes: body, at: 0 };
        let version = reader.byte().ok_or_else(|| damaged("empty"))?;
        if version != ENTRY_VERSION {
            return Err(damaged(&format!("entry version {version} is not one this build reads ({ENTRY_VERSION})")));
        }
        let tag = reader.byte().ok_or_else(|| damaged("no kind"))?;
        let entry = match tag {
            TAG_META => {
                let count = reader.u32().ok_or_else(|| damaged("cut short"))?;
                let mut entries = Vec::new();
                for _ in 0..count {
                    let key = reader.bytes().ok_or_else(|| damaged("cut short"))?;
                    let value = reader.bytes().ok_or_else(|| damaged("cut short"))?;
                    entries.push((key, value));
                }
                JournalEntry::Meta(entries)
            }
            TAG_PUT => {
                let count = reader.u32().ok_or_else(|| damaged("cut short"))?;
                let mut blocks = Vec::new();
                for _ in 0..count {
                    let first = reader.u64().ok_or_else(|| damaged("cut short"))?;
                    let bytes = reader.bytes().ok_or_else(|| damaged("cut short"))?;
                    blocks.push((first, Bytes::from(bytes)));
                }
                JournalEntry::Put(blocks)
            }
            TAG_REMOVE => {
                let count = reader.u32().ok_or_else(|| damaged("cut short"))?;
                let mut firsts = Vec::new();
                for _ in 0..count {
                    firsts.push(reader.u64().ok_or_else(|| damaged("cut short"))?);
                }
                JournalEntry::Remove(firsts)
            }
            TAG_EPOCH => {
                let owner = reader.bytes().ok_or_else(|| damaged("cut short"))?;
                JournalEntry::Epoch(String::from_utf8(owner).map_err(|_| damaged("an owner that is not UTF-8"))?)
            }
            other => return Err(damaged(&format!("unknown kind {other}"))),
        };
        if reader.at != body.len() {
            return Err(damaged("bytes after its end"));
        }
        Ok(entry)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(count).filter(|end| *end <= self.bytes.len())?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Some(taken)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|bytes| u32::from_be_bytes(bytes.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|bytes| u64::from_be_bytes(bytes.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let length = usize::try_from(self.u32()?).ok()?;
        self.take(length).map(<[u8]>::to_vec)
    }
}

/// Visits one journal entry: its position and bytes.
pub type Visit<'a> = dyn FnMut(u64, &[u8]) -> Result<(), Error> + 'a;

/// A replicated, compare-and-append sequence of entries (see the module documentation).
pub trait Journal: Send + Sync + Debug {
    /// A name for the journal, recorded in the node's directory: a directory made from one
    /// journal is never opened against another.
    fn name(&self) -> String;
    /// Makes the caller the one writer (appends an epoch marker naming `owner` after the
    /// current end); returns the marker's position. Earlier writers are fenced.
    fn take_over(&self, owner: &str) -> Result<u64, Error>;
    /// Gives the entries at positions `after + 1 ..= until` to `visit`, in order.
    fn read(&self, after: u64, until: u64, visit: &mut Visit<'_>) -> Result<(), Error>;
    /// Starts appending `entry` (encoded) right after this writer's last append; does not wait.
    fn append(&self, entry: Vec<u8>) -> Result<(), Error>;
    /// Waits until every append started is durable; the position of the last one (the marker's
    /// if none was made).
    fn sync(&self) -> Result<u64, Error>;

    /// Gives the journal a way to make its image (the node's sled) durable. A journal that
    /// keeps only what the image may lack (the local write-ahead log, `wal.rs`) checkpoints the
    /// image with it and then drops the entries the checkpoint covers. Default: keeps every
    /// entry, and does not use it.
    fn image_syncer(&self, _image: Box<dyn crate::storage::Syncer>) -> Result<(), Error> {
        Ok(())
    }
    /// The image has applied every entry up to `position` (not yet durably). Default: nothing.
    fn applied(&self, _position: u64) -> Result<(), Error> {
        Ok(())
    }
    /// A clean close: the image holds every entry up to `applied` durably. Default: nothing.
    fn close(&self, _applied: u64) -> Result<(), Error> {
        Ok(())
    }
}

/// A [`Journal`] in memory with the real one's fencing: each handle ([`MemoryJournal::writer`])
/// appends only right after what it last saw. For tests and the simulator.
#[derive(Debug, Clone)]
pub struct MemoryJournal {
    name: String,
    entries: Arc<Mutex<Vec<Vec<u8>>>>,
    /// This handle's writer state: the position its next append must land at, and whether an
    /// append failed (then every later one fails too).
    writer: Arc<Mutex<MemoryWriter>>,
}

#[derive(Debug, Default)]
struct MemoryWriter {
    next: Option<u64>,
    failed: Option<String>,
    last: u64,
}

impl MemoryJournal {
    pub fn new(name: &str) -> MemoryJournal {
        MemoryJournal { name: name.to_owned(), entries: Arc::default(), writer: Arc::default() }
    }

    /// Another writer's handle on the same entries (another node).
    pub fn writer(&self) -> MemoryJournal {
        MemoryJournal { name: self.name.clone(), entries: Arc::clone(&self.entries), writer: Arc::default() }
    }

    /// The entries' count: the journal's end position.
    pub fn end(&self) -> u64 {
        self.entries.lock().expect("journal lock").len() as u64
    }

    /// Every entry, decoded (for tests' checks).
    pub fn decoded(&self) -> Result<Vec<JournalEntry>, Error> {
        let entries = self.entries.lock().expect("journal lock");
        entries.iter().enumerate().map(|(index, bytes)| JournalEntry::decode(index as u64 + 1, bytes)).collect()
    }
}

impl Journal for MemoryJournal {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn take_over(&self, owner: &str) -> Result<u64, Error> {
        let mut entries = self.entries.lock().expect("journal lock");
        entries.push(JournalEntry::Epoch(owner.to_owned()).encode());
        let marker = entries.len() as u64;
        *self.writer.lock().expect("writer lock") = MemoryWriter { next: Some(marker + 1), failed: None, last: marker };
        Ok(marker)
    }

    fn read(&self, after: u64, until: u64, visit: &mut Visit<'_>) -> Result<(), Error> {
        let entries = self.entries.lock().expect("journal lock").clone();
        for position in after + 1..=until {
            let index = usize::try_from(position - 1).expect("a position fits memory");
            let bytes = entries.get(index).ok_or_else(|| {
                Error::Corruption(format!("journal {}: entry {position} is missing below its end", self.name))
            })?;
            visit(position, bytes)?;
        }
        Ok(())
    }

    fn append(&self, entry: Vec<u8>) -> Result<(), Error> {
        let mut writer = self.writer.lock().expect("writer lock");
        if let Some(reason) = &writer.failed {
            return Err(Error::Storage(reason.clone()));
        }
        let Some(next) = writer.next else {
            return Err(Error::Storage("appending to a journal not taken over".into()));
        };
        let mut entries = self.entries.lock().expect("journal lock");
        if entries.len() as u64 + 1 != next {
            let reason = format!(
                "journal {}: fenced: another writer appended at {next} (the journal ends at {}); reopen to take it over",
                self.name,
                entries.len()
            );
            writer.failed = Some(reason.clone());
            return Err(Error::Storage(reason));
        }
        entries.push(entry);
        writer.last = next;
        writer.next = Some(next + 1);
        Ok(())
    }

    fn sync(&self) -> Result<u64, Error> {
        let writer = self.writer.lock().expect("writer lock");
        match &writer.failed {
            Some(reason) => Err(Error::Storage(reason.clone())),
            None => Ok(writer.last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(entry: JournalEntry, bytes: &[u8]) {
        assert_eq!(entry.encode(), bytes, "{entry:?}");
        assert_eq!(JournalEntry::decode(9, bytes).unwrap(), entry);
    }

    /// Fixed bytes: the stored format, not whatever today's encoder makes.
    #[test]
    fn entries_encode_to_their_fixed_bytes_and_back() {
        check(
            JournalEntry::Put(vec![(7, Bytes::from(&b"ab"[..]))]),
            &[1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, b'a', b'b', 0xbe, 0x84, 0xcd, 0xa0],
        );
        check(JournalEntry::Remove(vec![3]), &[1, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0x7f, 0x0c, 0xb1, 0x86]);
        check(JournalEntry::Epoch("n1".into()), &[1, 4, 0, 0, 0, 2, b'n', b'1', 0xf4, 0xe3, 0x69, 0x99]);
        check(
            JournalEntry::Meta(vec![(b"k".to_vec(), b"v".to_vec())]),
            &[1, 1, 0, 0, 0, 1, 0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v', 0x5e, 0x9f, 0xcf, 0x89],
        );
    }

    #[test]
    fn damaged_entries_are_corruption_naming_the_position() {
        let good = JournalEntry::Put(vec![(1, Bytes::from(vec![5; 10]))]).encode();
        let mut flipped = good.clone();
        flipped[12] ^= 4;
        for bytes in [&flipped[..], &good[..3], &[][..]] {
            let error = JournalEntry::decode(42, bytes).unwrap_err();
            assert!(error.to_string().contains("journal entry 42"), "{error}");
            assert_eq!(error.code(), purse_core::ErrorCode::Corruption);
        }
        let mut future = vec![2, 2, 0, 0, 0, 0];
        future.extend_from_slice(&crc32fast::hash(&future).to_be_bytes());
        assert!(JournalEntry::decode(1, &future).unwrap_err().to_string().contains("version 2"));
    }

    #[test]
    fn a_writer_taken_over_is_fenced_and_stays_fenced() {
        let first = MemoryJournal::new("j");
        assert_eq!(first.take_over("a").unwrap(), 1);
        first.append(b"x".to_vec()).unwrap();
        assert_eq!(first.sync().unwrap(), 2);
        let second = first.writer();
        assert_eq!(second.take_over("b").unwrap(), 3);
        let fenced = first.append(b"late".to_vec()).unwrap_err();
        assert!(fenced.to_string().contains("fenced"), "{fenced}");
        assert!(first.sync().is_err());
        second.append(b"y".to_vec()).unwrap();
        assert_eq!(second.sync().unwrap(), 4);
        assert_eq!(first.end(), 4);
        let mut seen = Vec::new();
        first
            .read(1, 4, &mut |position, bytes| {
                seen.push((position, bytes.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.iter().map(|(position, _)| *position).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(first.read(3, 5, &mut |_, _| Ok(())).unwrap_err().to_string().contains("missing"));
    }
}

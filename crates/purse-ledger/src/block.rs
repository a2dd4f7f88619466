//! Blocks: the unit of the log in sled. One sled key holds a block of consecutive entries.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (BLOCK_VERSION = 2; version 1 is read too)
//! 1       2     entry count n, u16 big-endian, 1..=BLOCK_ENTRIES_MAX
//! 3       8     sequence of the first entry, u64 big-endian (also the sled key)
//! 11      4     CRC-32 of the previous block (0 for the first): the hash chain
//! 15      1     flags (version 2 only): bit 0 CONTINUES, the other bits zero
//! 15/16   ...   n × (u32 big-endian length, entry record bytes)
//! end-4   4     CRC-32 of every byte before it
//! ```
//! A block is written whole in one atomic sled batch, so it is never half there; the CRC and
//! the chain catch a damaged, reordered or missing block on read.
//!
//! CONTINUES marks every block of a commit but its last. A large commit (an ingestion group) is
//! written in several sled batches; if the process dies between them, the log ends in blocks
//! that all continue, and opening the ledger removes them (`Store::drop_unfinished_commit`), so
//! a commit is in the log whole or not at all.

use crate::record::{Encoding, EntryRecord};

/// The block format this code writes.
pub(crate) const BLOCK_VERSION: u8 = 2;
/// The first format, without the flags byte: still read.
const BLOCK_VERSION_1: u8 = 1;
/// Flag: the commit this block belongs to goes on in the next block.
const FLAG_CONTINUES: u8 = 1;
/// Entries per block at most.
pub(crate) const BLOCK_ENTRIES_MAX: usize = 256;
/// A block is closed once it reaches this size. Small enough that a full sled leaf (which
/// splits above 16 keys) stays under sled's 128 KiB blob threshold: sled never fsyncs blob
/// files, so purse must never make it write one.
pub(crate) const BLOCK_BYTES_TARGET: usize = 6 * 1024;

const HEADER_BYTES_V1: usize = 15;
const HEADER_BYTES: usize = 16;
const CHECKSUM_BYTES: usize = 4;

/// The sled key of the block whose first entry has `sequence`.
pub(crate) fn key(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

/// Builds blocks from encoded entries, cutting at the size and count limits.
#[derive(Debug)]
pub(crate) struct BlockWriter {
    blocks: Vec<(u64, Vec<u8>)>,
    current: Vec<u8>,
    current_first: u64,
    current_count: usize,
    previous_checksum: u32,
    next_sequence: u64,
}

impl BlockWriter {
    pub fn new(previous_checksum: u32, next_sequence: u64) -> BlockWriter {
        BlockWriter {
            blocks: Vec::new(),
            current: Vec::with_capacity(BLOCK_BYTES_TARGET + 1024),
            current_first: next_sequence,
            current_count: 0,
            previous_checksum,
            next_sequence,
        }
    }

    pub fn push(&mut self, entry: &EntryRecord) {
        assert_eq!(entry.sequence(), self.next_sequence, "blocks hold consecutive entries");
        self.open_block();
        let length_at = self.current.len();
        entry.encode_framed(&mut self.current);
        debug_assert!(self.current.len() > length_at + 4);
        self.current_count += 1;
        self.next_sequence += 1;
    }

    /// Takes the blocks closed so far, all marked CONTINUES, leaving the open one; `None` until
    /// there are `at_least` of them. Lets a large commit go to sled in parts as it is decided.
    pub fn take_closed(&mut self, at_least: usize) -> Option<Vec<(u64, Vec<u8>)>> {
        (self.blocks.len() >= at_least).then(|| std::mem::take(&mut self.blocks))
    }

    /// Whether no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.current_count == 0
    }

    /// Starts a block for the next entry unless the current one has room. A full block is
    /// closed only here, once the next entry exists, so it can be marked CONTINUES.
    fn open_block(&mut self) {
        if self.current_count == BLOCK_ENTRIES_MAX || self.current.len() >= BLOCK_BYTES_TARGET {
            self.close_block(true);
        }
        if self.current_count == 0 {
            self.current.clear();
            self.current.push(BLOCK_VERSION);
            self.current.extend_from_slice(&[0, 0]); // count, patched on close
            self.current.extend_from_slice(&self.next_sequence.to_be_bytes());
            self.current.extend_from_slice(&self.previous_checksum.to_be_bytes());
            self.current.push(0); // flags, patched on close
            self.current_first = self.next_sequence;
        }
    }

    fn close_block(&mut self, continues: bool) {
        if self.current_count == 0 {
            return;
        }
        let count = u16::try_from(self.current_count).expect("BLOCK_ENTRIES_MAX fits u16");
        self.current[1..3].copy_from_slice(&count.to_be_bytes());
        self.current[HEADER_BYTES - 1] = if continues { FLAG_CONTINUES } else { 0 };
        let checksum = crc32fast::hash(&self.current);
        self.current.extend_from_slice(&checksum.to_be_bytes());
        let block = std::mem::replace(&mut self.current, Vec::with_capacity(BLOCK_BYTES_TARGET + 1024));
        self.blocks.push((self.current_first, block));
        self.previous_checksum = checksum;
        self.current_count = 0;
    }

    /// The finished blocks as `(first sequence, bytes)`, and the checksum of the last one.
    /// Every block but the last is marked CONTINUES.
    pub fn finish(mut self) -> (Vec<(u64, Vec<u8>)>, u32) {
        self.close_block(false);
        (self.blocks, self.previous_checksum)
    }
}

/// A block read back and checked, with its entries still encoded.
#[derive(Debug)]
pub(crate) struct Block<'a> {
    pub first_sequence: u64,
    pub previous_checksum: u32,
    pub checksum: u32,
    /// The commit this block belongs to goes on in the next block.
    pub continues: bool,
    encoding: Encoding,
    entries: Vec<&'a [u8]>,
}

impl<'a> Block<'a> {
    /// Checks the version, the checksum and the framing. `key` is the first sequence the log
    /// keeps it under.
    pub fn parse(key: u64, bytes: &'a [u8]) -> Result<Block<'a>, String> {
        if bytes.len() < HEADER_BYTES_V1 + CHECKSUM_BYTES {
            return Err(format!("block of {} bytes is shorter than its header", bytes.len()));
        }
        let (body, checksum_bytes) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        let checksum = u32::from_be_bytes(checksum_bytes.try_into().expect("4 bytes"));
        if crc32fast::hash(body) != checksum {
            return Err("block checksum mismatch".into());
        }
        let (header_bytes, flags, encoding) = match body[0] {
            BLOCK_VERSION_1 => (HEADER_BYTES_V1, 0, Encoding::Fixed),
            BLOCK_VERSION if body.len() >= HEADER_BYTES => (HEADER_BYTES, body[HEADER_BYTES - 1], Encoding::Varint),
            BLOCK_VERSION => return Err(format!("block of {} bytes is shorter than its header", bytes.len())),
            version => {
                return Err(format!("block format version {version} is not {BLOCK_VERSION_1} or {BLOCK_VERSION}"))
            }
        };
        if flags & !FLAG_CONTINUES != 0 {
            return Err(format!("block flags {flags:#04x} have unknown bits"));
        }
        let count = usize::from(u16::from_be_bytes([body[1], body[2]]));
        let first_sequence = u64::from_be_bytes(body[3..11].try_into().expect("8 bytes"));
        let previous_checksum = u32::from_be_bytes(body[11..15].try_into().expect("4 bytes"));
        if key != first_sequence {
            return Err(format!("block keyed {key} says it starts at {first_sequence}"));
        }
        if count == 0 || count > BLOCK_ENTRIES_MAX {
            return Err(format!("block entry count {count} is outside 1..={BLOCK_ENTRIES_MAX}"));
        }
        let mut entries = Vec::with_capacity(count);
        let mut at = header_bytes;
        for index in 0..count {
            let length_bytes =
                body.get(at..at + 4).ok_or_else(|| format!("entry {index} length runs past the block"))?;
            let length = u32::from_be_bytes(length_bytes.try_into().expect("4 bytes")) as usize;
            let entry =
                body.get(at + 4..at + 4 + length).ok_or_else(|| format!("entry {index} runs past the block"))?;
            entries.push(entry);
            at += 4 + length;
        }
        if at != body.len() {
            return Err(format!("{} trailing bytes after the last entry", body.len() - at));
        }
        let continues = flags & FLAG_CONTINUES != 0;
        Ok(Block { first_sequence, previous_checksum, checksum, continues, encoding, entries })
    }

    pub fn last_sequence(&self) -> u64 {
        self.first_sequence + self.entries.len() as u64 - 1
    }

    /// Decodes the entry with `sequence`, checking it says so.
    pub fn entry(&self, sequence: u64) -> Result<EntryRecord<'static>, String> {
        let index = sequence.checked_sub(self.first_sequence).and_then(|index| usize::try_from(index).ok());
        let bytes = index.and_then(|index| self.entries.get(index)).ok_or_else(|| format!("no entry {sequence}"))?;
        let record = EntryRecord::decode(bytes, self.encoding)?;
        if record.sequence() != sequence {
            return Err(format!("entry at {sequence} says it is {}", record.sequence()));
        }
        Ok(record)
    }

    /// Decodes every entry in order.
    pub fn records(&self) -> impl Iterator<Item = Result<EntryRecord<'static>, String>> + '_ {
        (0..self.entries.len() as u64).map(move |offset| self.entry(self.first_sequence + offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RulesRecord;

    fn entry(sequence: u64, padding: usize) -> EntryRecord<'static> {
        EntryRecord::Rules(RulesRecord {
            sequence,
            brand_id: Some("x".repeat(padding)),
            deduction_order: 0,
            gift_type: 0,
            full_gift_switch: false,
            tiers: vec![],
        })
    }

    #[test]
    fn blocks_cut_at_size_and_chain() {
        let mut writer = BlockWriter::new(0, 1);
        for sequence in 1..=40 {
            writer.push(&entry(sequence, 1000));
        }
        let (blocks, last_checksum) = writer.finish();
        assert!(blocks.len() > 1, "1000-byte entries fill a block within a few entries");
        let mut previous = 0;
        let mut next = 1;
        for (first, bytes) in &blocks {
            let block = Block::parse(*first, bytes).unwrap();
            assert_eq!(block.first_sequence, next);
            assert_eq!(block.previous_checksum, previous);
            assert!(bytes.len() < BLOCK_BYTES_TARGET + 1200);
            for record in block.records() {
                assert_eq!(record.unwrap().sequence(), next);
                next += 1;
            }
            previous = block.checksum;
        }
        assert_eq!(next, 41);
        assert_eq!(previous, last_checksum);
    }

    #[test]
    fn every_block_of_a_commit_but_the_last_continues() {
        let mut writer = BlockWriter::new(0, 1);
        for sequence in 1..=40 {
            writer.push(&entry(sequence, 1000));
        }
        let (blocks, _) = writer.finish();
        let continues: Vec<bool> =
            blocks.iter().map(|(first, bytes)| Block::parse(*first, bytes).unwrap().continues).collect();
        assert!(continues.len() > 2);
        assert!(continues[..continues.len() - 1].iter().all(|flag| *flag));
        assert!(!continues[continues.len() - 1]);

        // Taken early, closed blocks all continue; the open one stays for the rest.
        let mut writer = BlockWriter::new(0, 1);
        for sequence in 1..=40 {
            writer.push(&entry(sequence, 1000));
        }
        let early = writer.take_closed(1).unwrap();
        assert!(writer.take_closed(1).is_none());
        assert!(early.iter().all(|(first, bytes)| Block::parse(*first, bytes).unwrap().continues));
        let (rest, _) = writer.finish();
        assert_eq!(rest.len(), 1);
        assert!(!Block::parse(rest[0].0, &rest[0].1).unwrap().continues);
    }

    #[test]
    fn version_1_blocks_are_still_read_and_unknown_flags_are_not() {
        let fixed = bincode::serialize(&entry(7, 3)).unwrap();
        let mut record = u32::try_from(fixed.len()).unwrap().to_be_bytes().to_vec();
        record.extend_from_slice(&fixed);
        let mut version_1 = vec![BLOCK_VERSION_1, 0, 1];
        version_1.extend_from_slice(&7u64.to_be_bytes());
        version_1.extend_from_slice(&99u32.to_be_bytes());
        version_1.extend_from_slice(&record);
        version_1.extend_from_slice(&crc32fast::hash(&version_1).to_be_bytes());
        let block = Block::parse(7, &version_1).unwrap();
        assert_eq!((block.first_sequence, block.previous_checksum, block.continues), (7, 99, false));
        assert_eq!(block.entry(7).unwrap(), entry(7, 3));

        let mut writer = BlockWriter::new(0, 7);
        writer.push(&entry(7, 3));
        let (blocks, _) = writer.finish();
        let mut flagged = blocks[0].1.clone();
        flagged.truncate(flagged.len() - CHECKSUM_BYTES);
        flagged[HEADER_BYTES - 1] = 0x02;
        flagged.extend_from_slice(&crc32fast::hash(&flagged).to_be_bytes());
        assert!(Block::parse(7, &flagged).unwrap_err().contains("unknown bits"));
    }

    #[test]
    fn damage_is_detected() {
        let mut writer = BlockWriter::new(0, 1);
        writer.push(&entry(1, 3));
        writer.push(&entry(2, 3));
        let (blocks, _) = writer.finish();
        let (first, bytes) = &blocks[0];
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x40;
            assert!(Block::parse(*first, &damaged).is_err(), "flip at {position} must be caught");
        }
        assert!(Block::parse(*first, &bytes[..bytes.len() - 1]).is_err(), "truncation");
        assert!(Block::parse(first + 1, bytes).is_err(), "wrong key");
        let block = Block::parse(*first, bytes).unwrap();
        assert!(block.entry(3).is_err());
        assert_eq!(block.last_sequence(), 2);
    }
}

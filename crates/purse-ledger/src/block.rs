//! Blocks: the unit of the log in sled. One sled key holds a block of consecutive entries.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (BLOCK_VERSION)
//! 1       2     entry count n, u16 big-endian, 1..=BLOCK_ENTRIES_MAX
//! 3       8     sequence of the first entry, u64 big-endian (also the sled key)
//! 11      4     CRC-32 of the previous block (0 for the first): the hash chain
//! 15      ...   n × (u32 big-endian length, entry record bytes)
//! end-4   4     CRC-32 of every byte before it
//! ```
//! A block is written whole in one atomic sled batch, so it is never half there; the CRC and
//! the chain catch a damaged, reordered or missing block on read.

use crate::record::EntryRecord;

/// The block format this code writes and reads.
pub(crate) const BLOCK_VERSION: u8 = 1;
/// Entries per block at most.
pub(crate) const BLOCK_ENTRIES_MAX: usize = 256;
/// A block is closed once it reaches this size. Small enough that a full sled leaf (which
/// splits above 16 keys) stays under sled's 128 KiB blob threshold: sled never fsyncs blob
/// files, so purse must never make it write one.
pub(crate) const BLOCK_BYTES_TARGET: usize = 6 * 1024;

const HEADER_BYTES: usize = 15;
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
        self.entry_added();
    }

    /// Appends entries already encoded with [`EntryRecord::encode_framed`], in sequence order
    /// from the next sequence on.
    pub fn push_framed(&mut self, mut framed: &[u8]) {
        while !framed.is_empty() {
            let length = u32::from_be_bytes(framed[..4].try_into().expect("4 bytes")) as usize;
            let (entry, rest) = framed.split_at(4 + length);
            self.open_block();
            self.current.extend_from_slice(entry);
            self.entry_added();
            framed = rest;
        }
    }

    fn open_block(&mut self) {
        if self.current_count == 0 {
            self.current.clear();
            self.current.push(BLOCK_VERSION);
            self.current.extend_from_slice(&[0, 0]); // count, patched on close
            self.current.extend_from_slice(&self.next_sequence.to_be_bytes());
            self.current.extend_from_slice(&self.previous_checksum.to_be_bytes());
            self.current_first = self.next_sequence;
        }
    }

    fn entry_added(&mut self) {
        self.current_count += 1;
        self.next_sequence += 1;
        if self.current_count == BLOCK_ENTRIES_MAX || self.current.len() >= BLOCK_BYTES_TARGET {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        if self.current_count == 0 {
            return;
        }
        let count = u16::try_from(self.current_count).expect("BLOCK_ENTRIES_MAX fits u16");
        self.current[1..3].copy_from_slice(&count.to_be_bytes());
        let checksum = crc32fast::hash(&self.current);
        self.current.extend_from_slice(&checksum.to_be_bytes());
        let block = std::mem::replace(&mut self.current, Vec::with_capacity(BLOCK_BYTES_TARGET + 1024));
        self.blocks.push((self.current_first, block));
        self.previous_checksum = checksum;
        self.current_count = 0;
    }

    /// The finished blocks as `(first sequence, bytes)`, and the checksum of the last one.
    pub fn finish(mut self) -> (Vec<(u64, Vec<u8>)>, u32) {
        self.close_block();
        (self.blocks, self.previous_checksum)
    }
}

/// A block read back and checked, with its entries still encoded.
#[derive(Debug)]
pub(crate) struct Block<'a> {
    pub first_sequence: u64,
    pub previous_checksum: u32,
    pub checksum: u32,
    entries: Vec<&'a [u8]>,
}

impl<'a> Block<'a> {
    /// Checks the version, the checksum and the framing. `key` is the sled key it was under.
    pub fn parse(key: &[u8], bytes: &'a [u8]) -> Result<Block<'a>, String> {
        if bytes.len() < HEADER_BYTES + CHECKSUM_BYTES {
            return Err(format!("block of {} bytes is shorter than its header", bytes.len()));
        }
        let (body, checksum_bytes) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        let checksum = u32::from_be_bytes(checksum_bytes.try_into().expect("4 bytes"));
        if crc32fast::hash(body) != checksum {
            return Err("block checksum mismatch".into());
        }
        if body[0] != BLOCK_VERSION {
            return Err(format!("block format version {} is not {BLOCK_VERSION}", body[0]));
        }
        let count = usize::from(u16::from_be_bytes([body[1], body[2]]));
        let first_sequence = u64::from_be_bytes(body[3..11].try_into().expect("8 bytes"));
        let previous_checksum = u32::from_be_bytes(body[11..15].try_into().expect("4 bytes"));
        if key != first_sequence.to_be_bytes() {
            return Err(format!("block keyed {key:?} says it starts at {first_sequence}"));
        }
        if count == 0 || count > BLOCK_ENTRIES_MAX {
            return Err(format!("block entry count {count} is outside 1..={BLOCK_ENTRIES_MAX}"));
        }
        let mut entries = Vec::with_capacity(count);
        let mut at = HEADER_BYTES;
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
        Ok(Block { first_sequence, previous_checksum, checksum, entries })
    }

    pub fn last_sequence(&self) -> u64 {
        self.first_sequence + self.entries.len() as u64 - 1
    }

    /// Decodes the entry with `sequence`, checking it says so.
    pub fn entry(&self, sequence: u64) -> Result<EntryRecord<'static>, String> {
        let index = sequence.checked_sub(self.first_sequence).and_then(|index| usize::try_from(index).ok());
        let bytes = index.and_then(|index| self.entries.get(index)).ok_or_else(|| format!("no entry {sequence}"))?;
        let record = EntryRecord::decode(bytes)?;
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
            let block = Block::parse(&key(*first), bytes).unwrap();
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
    fn damage_is_detected() {
        let mut writer = BlockWriter::new(0, 1);
        writer.push(&entry(1, 3));
        writer.push(&entry(2, 3));
        let (blocks, _) = writer.finish();
        let (first, bytes) = &blocks[0];
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x40;
            assert!(Block::parse(&key(*first), &damaged).is_err(), "flip at {position} must be caught");
        }
        assert!(Block::parse(&key(*first), &bytes[..bytes.len() - 1]).is_err(), "truncation");
        assert!(Block::parse(&key(first + 1), bytes).is_err(), "wrong key");
        let block = Block::parse(&key(*first), bytes).unwrap();
        assert!(block.entry(3).is_err());
        assert_eq!(block.last_sequence(), 2);
    }
}

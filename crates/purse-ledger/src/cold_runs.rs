//! The cold store in files of sorted runs, as an LSM tree keeps them (issue 13, item 4;
//! docs/storage-format.md, "The cold store's runs").
//!
//! The cold store first lived in a sled tree: three B-tree inserts per flow, about 6 µs of
//! sled's CPU per key, which bound a busy ledger past a million entries to the cold store's
//! rate, and 30M keys at 10M flows that made sled's own recovery and memory grow with the log
//! (performance.md, "Item 4, the cold store: measured"). Here one fill (one snapshot's orders,
//! records and references) becomes one immutable file of pairs sorted by key, written
//! sequentially and synced once:
//!
//! ```text
//! run file   "PURSERUN" | version 1 | block* | index | footer
//! block      pairs u32 BE | (key length u16 BE | value length u32 BE | key | value)*
//!            | (offset of each pair in the block u32 BE)* | CRC-32 u32 BE
//! index      blocks u32 BE | (offset u64 BE | length u32 BE | first key length u16 BE | first key)*
//!            | last key length u16 BE | last key
//! footer     index offset u64 BE | index length u32 BE | pairs u64 BE | index CRC-32 u32 BE | "PURSERUN"
//! MANIFEST   "PURSEMAN" | version 1 | next id u64 BE | runs u32 BE | (id u64 BE | level u8)* | CRC-32 u32 BE
//! ```
//!
//! The manifest names the runs, oldest first; a newer run's value for a key shadows an older
//! one's (nothing is ever deleted but by [`ColdStore::clear`]). A run is named
//! `<id, 16 hex digits>.run`; it is written as `….partial`, synced, renamed and the folder
//! synced before a manifest names it, and the manifest is replaced the same way, so a kill at any
//! instant leaves the previous manifest and its runs, and files no manifest names, which the next
//! open removes. Each fill is level 0; when [`FANOUT`] runs of one level are the newest, they are
//! merged into one of the next level (so a key is rewritten about log_4(fills) times, and a
//! lookup reads one block of each of at most `3 × levels` runs). Only each run's index (one key
//! per [`BLOCK_BYTES`] block) is kept in memory.
//!
//! A manifest or run that cannot be read makes the store *damaged*: every read then fails with
//! [`Error::Corruption`], which makes the snapshot that needs it unusable, and the ledger empties
//! the cold store and folds its log (snapshot.rs, `forget_cold`): the cold store is derived data.
//! Opening reads no block; a block that a read finds damaged makes the store damaged from then
//! on, and a file `DAMAGED` (written and synced before the read fails) tells the next open.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::error::Error;
use crate::sled_storage::io_error;
use crate::snapshot_format::cold::{ColdStore, Pairs};

/// The folder of the runs, in the ledger's directory.
pub(crate) const DIR_NAME: &str = "purse-cold";
const MANIFEST_NAME: &str = "MANIFEST";
/// Written when a read finds a damaged block, so that the next open knows without reading every
/// block; removed by [`ColdStore::clear`].
const DAMAGED_NAME: &str = "DAMAGED";
const RUN_SUFFIX: &str = ".run";
const PARTIAL_SUFFIX: &str = ".partial";
const RUN_MAGIC: &[u8; 8] = b"PURSERUN";
const MANIFEST_MAGIC: &[u8; 8] = b"PURSEMAN";
const FORMAT_VERSION: u8 = 1;
const RUN_HEADER_LEN: usize = 9;
const FOOTER_LEN: usize = 32;
const RUN_HEADER_BYTES: u64 = RUN_HEADER_LEN as u64;
const FOOTER_BYTES: u64 = FOOTER_LEN as u64;
/// A block is written once it holds this many bytes (or more, for one large pair).
pub(crate) const BLOCK_BYTES: usize = 16 * 1024;
/// Runs of one level merged into one of the next.
pub(crate) const FANOUT: usize = 4;
/// The level of a run imported whole from the sled tree of earlier ledgers: above any that
/// merging reaches, so that the fills after it never rewrite it.
const IMPORTED_LEVEL: u8 = 32;

/// One immutable run: its file and its index.
#[derive(Debug)]
struct Run {
    id: u64,
    level: u8,
    file: File,
    blocks: Vec<BlockRef>,
    last_key: Vec<u8>,
    cache: Arc<BlockCache>,
}

/// The checked bytes of recently read blocks, by run id and block number, up to a size in bytes
/// (`LedgerConfig::cache_bytes`); the least recently used goes first. Run ids are never reused,
/// so a merged run's blocks only wait to be evicted.
#[derive(Debug)]
pub(crate) struct BlockCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    /// Each block and the tick of its last use.
    blocks: HashMap<(u64, usize), (Block, u64)>,
    by_use: BTreeMap<u64, (u64, usize)>,
    bytes: usize,
    clock: u64,
}

impl BlockCache {
    pub(crate) fn new(capacity_bytes: u64) -> BlockCache {
        let capacity = usize::try_from(capacity_bytes).unwrap_or(usize::MAX);
        BlockCache { capacity, inner: Mutex::new(CacheInner::default()) }
    }

    fn get(&self, key: (u64, usize)) -> Option<Arc<[u8]>> {
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let clock = inner.clock;
        let (block, used) = inner.blocks.get_mut(&key)?;
        let (block, last) = (Arc::clone(block), std::mem::replace(used, clock));
        inner.by_use.remove(&last);
        inner.by_use.insert(clock, key);
        Some(block)
    }

    fn insert(&self, key: (u64, usize), block: Arc<[u8]>) {
        if block.len() > self.capacity {
            return;
        }
        let mut inner = lock(&self.inner);
        if inner.blocks.contains_key(&key) {
            return;
        }
        while inner.bytes + block.len() > self.capacity {
            let Some((_, oldest)) = inner.by_use.pop_first() else { break };
            if let Some((evicted, _)) = inner.blocks.remove(&oldest) {
                inner.bytes -= evicted.len();
            }
        }
        inner.clock += 1;
        let clock = inner.clock;
        inner.bytes += block.len();
        inner.blocks.insert(key, (block, clock));
        inner.by_use.insert(clock, key);
    }

    /// Bytes held.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        lock(&self.inner).bytes
    }
}

#[derive(Debug)]
struct BlockRef {
    first: Box<[u8]>,
    offset: u64,
    length: u32,
}

fn corrupt(what: &str, path: &Path, why: &str) -> Error {
    Error::Corruption(format!("the cold store's {what} {} is damaged: {why}", path.display()))
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

type Span = std::ops::Range<usize>;
/// Where each pair's key and value are in a block.
type Spans = Vec<(Span, Span)>;
/// A block's checked bytes, shared by the cache and its readers.
type Block = Arc<[u8]>;

/// A block's pair count and where its table of pair offsets starts.
fn block_table(raw: &[u8]) -> Option<(usize, usize)> {
    let count = be_u32(raw, 0)? as usize;
    let table = raw.len().checked_sub(count.checked_mul(4)?)?;
    (table >= 4).then_some((count, table))
}

/// Where the key and the value of pair `index` of a block are (`None` if outside the pairs).
fn pair_at(raw: &[u8], table: usize, index: usize) -> Option<(Span, Span)> {
    let at = be_u32(raw, table + 4 * index)? as usize;
    let key_length = usize::from(be_u16(raw, at)?);
    let value_length = be_u32(raw, at.checked_add(2)?)? as usize;
    let key = at + 6..at + 6 + key_length;
    let value = key.end..key.end.checked_add(value_length)?;
    (at >= 4 && value.end <= table).then_some((key, value))
}

/// The value of `key` in one block's checked bytes, by binary search over its offsets (`None`
/// if the pairs it reads cannot be read).
fn find_in_block(raw: &[u8], key: &[u8]) -> Option<Option<Vec<u8>>> {
    let (count, table) = block_table(raw)?;
    let (mut low, mut high) = (0, count);
    while low < high {
        let middle = low + (high - low) / 2;
        let (found, value) = pair_at(raw, table, middle)?;
        match raw[found].cmp(key) {
            std::cmp::Ordering::Less => low = middle + 1,
            std::cmp::Ordering::Equal => return Some(Some(raw[value].to_vec())),
            std::cmp::Ordering::Greater => high = middle,
        }
    }
    Some(None)
}

/// Where the keys and values of one block's checked bytes are, in order; the pairs must fill
/// the block from its count to its table.
fn block_spans(raw: &[u8]) -> Option<Spans> {
    let (count, table) = block_table(raw)?;
    let mut at = 4;
    let mut spans = Vec::with_capacity(count);
    for index in 0..count {
        let (key, value) = pair_at(raw, table, index)?;
        if key.start != at + 6 {
            return None;
        }
        at = value.end;
        spans.push((key, value));
    }
    (at == table).then_some(spans)
}

impl Run {
    fn path(dir: &Path, id: u64) -> PathBuf {
        dir.join(format!("{id:016x}{RUN_SUFFIX}"))
    }

    fn open(dir: &Path, id: u64, level: u8, cache: &Arc<BlockCache>) -> Result<Run, Error> {
        let path = Run::path(dir, id);
        let file = match File::open(&path) {
            Ok(file) => file,
            // Named by the manifest but gone: the store is damaged, not the disk.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(corrupt("run", &path, "the manifest names it but it is missing"))
            }
            Err(error) => return Err(io_error(&format!("opening {}", path.display()), &error)),
        };
        let size = file.metadata().map_err(|error| io_error("reading a cold run's size", &error))?.len();
        let damaged = |why: &str| corrupt("run", &path, why);
        if size < RUN_HEADER_BYTES + FOOTER_BYTES {
            return Err(damaged("shorter than its header and footer"));
        }
        let mut header = [0u8; RUN_HEADER_LEN];
        file.read_exact_at(&mut header, 0).map_err(|error| io_error("reading a cold run", &error))?;
        if &header[..8] != RUN_MAGIC || header[8] != FORMAT_VERSION {
            return Err(damaged("not a run of format 1"));
        }
        let mut footer = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut footer, size - FOOTER_BYTES).map_err(|error| io_error("reading a cold run", &error))?;
        let index_offset = be_u64(&footer, 0).expect("32 bytes");
        let index_length = be_u32(&footer, 8).expect("32 bytes");
        let pairs = be_u64(&footer, 12).expect("32 bytes");
        let index_crc = be_u32(&footer, 20).expect("32 bytes");
        if &footer[24..] != RUN_MAGIC || index_offset.checked_add(u64::from(index_length)) != Some(size - FOOTER_BYTES)
        {
            return Err(damaged("its footer does not end it"));
        }
        let mut index = vec![0u8; index_length as usize];
        file.read_exact_at(&mut index, index_offset).map_err(|error| io_error("reading a cold run", &error))?;
        if crc32fast::hash(&index) != index_crc {
            return Err(damaged("its index fails its checksum"));
        }
        let (blocks, last_key) =
            parse_index(&index, index_offset).ok_or_else(|| damaged("its index cannot be read"))?;
        if (pairs == 0) != blocks.is_empty() {
            return Err(damaged("its pair count and its blocks disagree"));
        }
        Ok(Run { id, level, file, blocks, last_key, cache: Arc::clone(cache) })
    }

    /// The checked bytes of block `index`, from the cache if `cached` (merges read past it: they
    /// read every block once).
    fn block(&self, index: usize, cached: bool) -> Result<Arc<[u8]>, Error> {
        if cached {
            if let Some(raw) = self.cache.get((self.id, index)) {
                return Ok(raw);
            }
        }
        let block = &self.blocks[index];
        let mut raw = vec![0u8; block.length as usize];
        self.file.read_exact_at(&mut raw, block.offset).map_err(|error| io_error("reading a cold run", &error))?;
        let damaged =
            || Error::Corruption(format!("block {index} of the cold store's run {:016x} is damaged", self.id));
        let body_length = raw.len().checked_sub(4).ok_or_else(damaged)?;
        let stored = be_u32(&raw, body_length).ok_or_else(damaged)?;
        if crc32fast::hash(&raw[..body_length]) != stored {
            return Err(damaged());
        }
        raw.truncate(body_length);
        let raw: Arc<[u8]> = raw.into();
        if cached {
            self.cache.insert((self.id, index), Arc::clone(&raw));
        }
        Ok(raw)
    }

    /// Block `index` and where its pairs are.
    fn decoded(&self, index: usize, cached: bool) -> Result<(Block, Spans), Error> {
        let raw = self.block(index, cached)?;
        let spans = block_spans(&raw).ok_or_else(|| {
            Error::Corruption(format!("block {index} of the cold store's run {:016x} cannot be read", self.id))
        })?;
        Ok((raw, spans))
    }

    /// The block that holds `key` if any does: the last whose first key is at most `key`.
    fn block_of(&self, key: &[u8]) -> Option<usize> {
        self.blocks.partition_point(|block| &*block.first <= key).checked_sub(1)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        if key > self.last_key.as_slice() {
            return Ok(None);
        }
        let Some(index) = self.block_of(key) else { return Ok(None) };
        let raw = self.block(index, true)?;
        find_in_block(&raw, key).ok_or_else(|| {
            Error::Corruption(format!("block {index} of the cold store's run {:016x} cannot be read", self.id))
        })
    }

    /// Its pairs in key order, from the block that may hold `from` on; through the cache if
    /// `cached`.
    fn cursor(self: &Arc<Run>, from: &[u8], cached: bool) -> Cursor {
        let next_block = self.block_of(from).unwrap_or(0);
        Cursor { run: Arc::clone(self), next_block, cached, block: None }
    }
}

type Index = (Vec<BlockRef>, Vec<u8>);

fn parse_index(index: &[u8], data_end: u64) -> Option<Index> {
    let count = be_u32(index, 0)?;
    let mut at = 4;
    let mut blocks = Vec::with_capacity((count as usize).min(index.len() / 14));
    let mut expected_offset = RUN_HEADER_BYTES;
    for _ in 0..count {
        let offset = be_u64(index, at)?;
        let length = be_u32(index, at + 8)?;
        let first_length = usize::from(be_u16(index, at + 12)?);
        let first = index.get(at + 14..at + 14 + first_length)?;
        // Blocks follow each other from the header to the index, keys in order.
        if offset != expected_offset || blocks.last().is_some_and(|last: &BlockRef| &*last.first >= first) {
            return None;
        }
        expected_offset = offset.checked_add(u64::from(length))?;
        blocks.push(BlockRef { first: first.into(), offset, length });
        at += 14 + first_length;
    }
    let last_length = usize::from(be_u16(index, at)?);
    let last = index.get(at + 2..at + 2 + last_length)?;
    (at + 2 + last_length == index.len() && expected_offset == data_end).then(|| (blocks, last.to_vec()))
}

/// A run's pairs in order, a block at a time.
struct Cursor {
    run: Arc<Run>,
    next_block: usize,
    cached: bool,
    /// The block being read and the spans of its pairs not yet returned.
    block: Option<(Block, std::vec::IntoIter<(Span, Span)>)>,
}

impl Iterator for Cursor {
    type Item = Result<(Vec<u8>, Vec<u8>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((raw, spans)) = &mut self.block {
                if let Some((key, value)) = spans.next() {
                    return Some(Ok((raw[key].to_vec(), raw[value].to_vec())));
                }
            }
            if self.next_block >= self.run.blocks.len() {
                return None;
            }
            match self.run.decoded(self.next_block, self.cached) {
                Ok((raw, spans)) => self.block = Some((raw, spans.into_iter())),
                Err(error) => {
                    self.next_block = self.run.blocks.len();
                    return Some(Err(error));
                }
            }
            self.next_block += 1;
        }
    }
}

/// Sorted sources merged into one sorted sequence of distinct keys; of equal keys, the pair of
/// the latest source (the newest run) wins.
struct Merge<I> {
    sources: Vec<I>,
    heads: Vec<Option<(Vec<u8>, Vec<u8>)>>,
    started: bool,
}

impl<I: Iterator<Item = Result<(Vec<u8>, Vec<u8>), Error>>> Merge<I> {
    fn new(sources: Vec<I>) -> Merge<I> {
        let heads = sources.iter().map(|_| None).collect();
        Merge { sources, heads, started: false }
    }

    fn advance(&mut self, source: usize) -> Result<(), Error> {
        self.heads[source] = self.sources[source].next().transpose()?;
        Ok(())
    }
}

impl<I: Iterator<Item = Result<(Vec<u8>, Vec<u8>), Error>>> Iterator for Merge<I> {
    type Item = Result<(Vec<u8>, Vec<u8>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            for source in 0..self.sources.len() {
                if let Err(error) = self.advance(source) {
                    return Some(Err(error));
                }
            }
        }
        let mut newest: Option<usize> = None;
        for (source, head) in self.heads.iter().enumerate() {
            let Some((key, _)) = head else { continue };
            match newest {
                Some(best) if self.heads[best].as_ref().is_some_and(|(least, _)| least < key) => {}
                _ => newest = Some(source),
            }
        }
        let newest = newest?;
        let pair = self.heads[newest].take().expect("a head");
        for source in 0..self.sources.len() {
            let same = source == newest || self.heads[source].as_ref().is_some_and(|(key, _)| *key == pair.0);
            if same {
                if let Err(error) = self.advance(source) {
                    return Some(Err(error));
                }
            }
        }
        Some(Ok(pair))
    }
}

/// A run being written: pairs in strictly increasing key order, a block at a time.
struct RunWriter {
    file: BufWriter<File>,
    partial: PathBuf,
    complete: PathBuf,
    id: u64,
    offset: u64,
    block: Vec<u8>,
    block_pairs: u32,
    /// Where each pair of the block starts.
    block_offsets: Vec<u32>,
    block_first: Vec<u8>,
    blocks: Vec<BlockRef>,
    last_key: Vec<u8>,
    pairs: u64,
}

impl RunWriter {
    fn create(dir: &Path, id: u64) -> Result<RunWriter, Error> {
        let complete = Run::path(dir, id);
        let partial = complete.with_extension(&PARTIAL_SUFFIX[1..]);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)
            .map_err(|error| io_error("creating a cold run", &error))?;
        let mut writer = RunWriter {
            file: BufWriter::with_capacity(4 * BLOCK_BYTES, file),
            partial,
            complete,
            id,
            offset: 0,
            block: Vec::with_capacity(BLOCK_BYTES + 4096),
            block_pairs: 0,
            block_offsets: Vec::new(),
            block_first: Vec::new(),
            blocks: Vec::new(),
            last_key: Vec::new(),
            pairs: 0,
        };
        let mut header = RUN_MAGIC.to_vec();
        header.push(FORMAT_VERSION);
        writer.write(&header)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file.write_all(bytes).map_err(|error| io_error("writing a cold run", &error))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn add(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        if self.pairs > 0 && key <= self.last_key.as_slice() {
            return Err(Error::Corruption(format!(
                "the cold store's run {:016x} was given key {:?} after {:?}: keys must increase",
                self.id,
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(&self.last_key)
            )));
        }
        let (Ok(key_length), Ok(value_length)) = (u16::try_from(key.len()), u32::try_from(value.len())) else {
            return Err(Error::InvalidArgument(format!(
                "a cold pair of {} + {} bytes is too large",
                key.len(),
                value.len()
            )));
        };
        if self.block_pairs == 0 {
            self.block.clear();
            self.block.extend_from_slice(&[0; 4]);
            self.block_offsets.clear();
            self.block_first = key.to_vec();
        }
        self.block_offsets.push(u32::try_from(self.block.len()).expect("a block under 4 GiB"));
        self.block.extend_from_slice(&key_length.to_be_bytes());
        self.block.extend_from_slice(&value_length.to_be_bytes());
        self.block.extend_from_slice(key);
        self.block.extend_from_slice(value);
        self.block_pairs += 1;
        self.pairs += 1;
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        if self.block.len() >= BLOCK_BYTES {
            self.end_block()?;
        }
        Ok(())
    }

    fn end_block(&mut self) -> Result<(), Error> {
        if self.block_pairs == 0 {
            return Ok(());
        }
        self.block[..4].copy_from_slice(&self.block_pairs.to_be_bytes());
        for offset in &self.block_offsets {
            self.block.extend_from_slice(&offset.to_be_bytes());
        }
        let checksum = crc32fast::hash(&self.block);
        self.block.extend_from_slice(&checksum.to_be_bytes());
        let offset = self.offset;
        let length = u32::try_from(self.block.len()).expect("a block of under 4 GiB");
        let block = std::mem::take(&mut self.block);
        self.write(&block)?;
        self.block = block;
        self.blocks.push(BlockRef { first: std::mem::take(&mut self.block_first).into(), offset, length });
        self.block_pairs = 0;
        Ok(())
    }

    /// Writes the index and footer, syncs the file and gives it its name (the caller syncs the
    /// folder).
    fn finish(mut self, level: u8, cache: &Arc<BlockCache>) -> Result<Run, Error> {
        self.end_block()?;
        let index_offset = self.offset;
        let mut index = Vec::with_capacity(8 + self.blocks.len() * 48);
        index.extend_from_slice(&u32::try_from(self.blocks.len()).expect("under 2^32 blocks").to_be_bytes());
        for block in &self.blocks {
            index.extend_from_slice(&block.offset.to_be_bytes());
            index.extend_from_slice(&block.length.to_be_bytes());
            index.extend_from_slice(&u16::try_from(block.first.len()).expect("checked in add").to_be_bytes());
            index.extend_from_slice(&block.first);
        }
        index.extend_from_slice(&u16::try_from(self.last_key.len()).expect("checked in add").to_be_bytes());
        index.extend_from_slice(&self.last_key);
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        footer.extend_from_slice(&index_offset.to_be_bytes());
        footer.extend_from_slice(&u32::try_from(index.len()).expect("an index of under 4 GiB").to_be_bytes());
        footer.extend_from_slice(&self.pairs.to_be_bytes());
        footer.extend_from_slice(&crc32fast::hash(&index).to_be_bytes());
        footer.extend_from_slice(RUN_MAGIC);
        self.write(&index)?;
        self.write(&footer)?;
        let file = self.file.into_inner().map_err(|error| io_error("writing a cold run", error.error()))?;
        file.sync_data().map_err(|error| io_error("syncing a cold run", &error))?;
        drop(file);
        std::fs::rename(&self.partial, &self.complete).map_err(|error| io_error("naming a cold run", &error))?;
        let file = File::open(&self.complete).map_err(|error| io_error("opening a cold run", &error))?;
        Ok(Run { id: self.id, level, file, blocks: self.blocks, last_key: self.last_key, cache: Arc::clone(cache) })
    }
}

/// The next run's id; ids are never reused (a leftover of a kill may still carry an old one).
fn take_id(next_id: &mut u64) -> Result<u64, Error> {
    let id = *next_id;
    *next_id = id.checked_add(1).ok_or_else(|| Error::Corruption("the cold store has used every run id".into()))?;
    Ok(id)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    File::open(path).and_then(|dir| dir.sync_all()).map_err(|error| io_error("syncing the cold store's folder", &error))
}

/// What the manifest names.
#[derive(Debug, Default)]
struct Manifest {
    next_id: u64,
    runs: Vec<(u64, u8)>,
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = MANIFEST_MAGIC.to_vec();
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.next_id.to_be_bytes());
        bytes.extend_from_slice(&u32::try_from(self.runs.len()).expect("under 2^32 runs").to_be_bytes());
        for (id, level) in &self.runs {
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.push(*level);
        }
        let checksum = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&checksum.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Manifest> {
        let body = bytes.get(..bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body) != be_u32(bytes, body.len())? || body.get(..8)? != MANIFEST_MAGIC {
            return None;
        }
        if *body.get(8)? != FORMAT_VERSION {
            return None;
        }
        let next_id = be_u64(body, 9)?;
        let count = be_u32(body, 17)? as usize;
        let mut runs = Vec::with_capacity(count.min(4096));
        for run in 0..count {
            let at = 21 + run * 9;
            runs.push((be_u64(body, at)?, *body.get(at + 8)?));
        }
        (body.len() == 21 + count * 9).then_some(Manifest { next_id, runs })
    }
}

/// The runs as readers see them.
#[derive(Debug, Default)]
struct Runs {
    /// Oldest first.
    runs: Vec<Arc<Run>>,
    /// Why the store cannot be read, if it cannot.
    damaged: Option<String>,
}

/// Bytes of pairs (keys, values and their `Vec` headers) a fill holds in memory at most: past
/// it, they are sorted and written as a spill, a run that no manifest names, and the flush
/// merges the fill's spills into its one run. The first fill of a ledger crossing
/// `cold_after_entries` (2M entries: about 1 GB of pairs) no longer holds all of itself, sorted
/// again beside itself, in memory; a fill of 256k entries (about 80 MB of pairs) spills two or
/// three times: at 128 MiB it did not, and its pairs were the largest part of the process's
/// peak past the threshold (performance.md: 1,007 against 956 MiB at 10M flows).
#[cfg(not(test))]
const PENDING_BYTES_MAX: usize = 32 * 1024 * 1024;
#[cfg(test)]
const PENDING_BYTES_MAX: usize = 64 * 1024;

/// What was put since the last flush.
#[derive(Debug, Default)]
struct Pending {
    pairs: Pairs,
    /// What `pairs` take, as [`PENDING_BYTES_MAX`] counts.
    bytes: usize,
    /// Runs written from earlier parts of this fill, oldest first; unnamed until the flush.
    spills: Vec<Arc<Run>>,
}

/// Sorted pairs from a run or from memory, for a [`Merge`].
type PairSource = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), Error>>>;

/// What one pair takes in memory, as [`PENDING_BYTES_MAX`] counts it.
fn pair_bytes((key, value): &(Vec<u8>, Vec<u8>)) -> usize {
    key.len() + value.len() + 2 * std::mem::size_of::<Vec<u8>>()
}

/// `pairs` sorted by key with one pair per key: of equal keys, the one put last.
fn sorted_distinct(mut pairs: Pairs) -> Pairs {
    // Stable: of equal keys, the one put last is last. Reversed, it is first, and `dedup_by`
    // keeps the first of each run of equal keys; reversed again, the keys ascend. In place: a
    // second vector of a large fill's pairs was 48 bytes a pair more at the peak.
    pairs.sort_by(|left, right| left.0.cmp(&right.0));
    pairs.reverse();
    pairs.dedup_by(|later, kept| later.0 == kept.0);
    pairs.reverse();
    pairs
}

/// The cold store of a ledger directory, in files of sorted runs.
#[derive(Debug)]
pub(crate) struct RunCold {
    dir: PathBuf,
    runs: RwLock<Arc<Runs>>,
    /// Pairs put since the last flush, which writes them as one run.
    pending: Mutex<Pending>,
    /// Held by whatever changes the files (flush, merge, clear); gives the next run's id.
    writing: Mutex<u64>,
    cache: Arc<BlockCache>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunCold {
    /// Opens the store in `<ledger>/purse-cold/` (made by the first flush), removing what a kill
    /// left that no manifest names. A store that cannot be read opens damaged (see the module).
    /// Blocks that lookups and scans read are kept in a cache of `cache_bytes`.
    pub fn open(ledger: &Path, cache_bytes: u64) -> Result<RunCold, Error> {
        let dir = ledger.join(DIR_NAME);
        let cache = Arc::new(BlockCache::new(cache_bytes));
        let (runs, next_id) = match RunCold::read(&dir, &cache) {
            Ok(read) => read,
            Err(Error::Corruption(reason)) => (Runs { runs: Vec::new(), damaged: Some(reason) }, 0),
            Err(error) => return Err(error),
        };
        Ok(RunCold {
            dir,
            runs: RwLock::new(Arc::new(runs)),
            pending: Mutex::new(Pending::default()),
            writing: Mutex::new(next_id),
            cache,
        })
    }

    fn read(dir: &Path, cache: &Arc<BlockCache>) -> Result<(Runs, u64), Error> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((Runs::default(), 0)),
            Err(error) => return Err(io_error("listing the cold store", &error)),
        };
        match std::fs::read(dir.join(DAMAGED_NAME)) {
            Ok(reason) => return Err(Error::Corruption(String::from_utf8_lossy(&reason).into_owned())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error("reading the cold store's damage mark", &error)),
        }
        let manifest_path = dir.join(MANIFEST_NAME);
        let manifest = match std::fs::read(&manifest_path) {
            Ok(bytes) => {
                Manifest::decode(&bytes).ok_or_else(|| corrupt("manifest", &manifest_path, "it cannot be read"))?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(error) => return Err(io_error("reading the cold store's manifest", &error)),
        };
        let mut next_id = manifest.next_id;
        for entry in entries {
            let entry = entry.map_err(|error| io_error("listing the cold store", &error))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == MANIFEST_NAME {
                continue;
            }
            let id = name.strip_suffix(RUN_SUFFIX).and_then(|hex| u64::from_str_radix(hex, 16).ok());
            if let Some(id) = id {
                next_id = next_id.max(id.saturating_add(1));
                if manifest.runs.iter().any(|(listed, _)| *listed == id) {
                    continue;
                }
            }
            // A partial run or manifest, or a run that a kill left before a manifest named it
            // (or after a merge's manifest let go of it).
            std::fs::remove_file(entry.path()).map_err(|error| io_error("removing a cold store leftover", &error))?;
        }
        let runs = manifest
            .runs
            .iter()
            .map(|&(id, level)| Run::open(dir, id, level, cache).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((Runs { runs, damaged: None }, next_id))
    }

    /// What a read found damaged makes the whole store damaged, now and at the next open (see
    /// the module): the mark is written and synced before the error goes back.
    fn read_failed(&self, error: Error) -> Error {
        let Error::Corruption(reason) = &error else { return error };
        let mark = self.dir.join(DAMAGED_NAME);
        let written = File::create(&mark).and_then(|mut file| {
            file.write_all(reason.as_bytes())?;
            file.sync_all()
        });
        if let Err(failed) = written.map_err(|failed| io_error("marking the cold store damaged", &failed)) {
            return failed;
        }
        if let Err(failed) = sync_dir(&self.dir) {
            return failed;
        }
        *self.runs.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(Runs { runs: Vec::new(), damaged: Some(reason.clone()) });
        error
    }

    fn current(&self) -> Result<Arc<Runs>, Error> {
        let runs = Arc::clone(&self.runs.read().unwrap_or_else(PoisonError::into_inner));
        match &runs.damaged {
            Some(reason) => Err(Error::Corruption(reason.clone())),
            None => Ok(runs),
        }
    }

    fn publish(&self, runs: Vec<Arc<Run>>, next_id: u64) -> Result<(), Error> {
        let manifest = Manifest { next_id, runs: runs.iter().map(|run| (run.id, run.level)).collect() };
        let partial = self.dir.join(format!("{MANIFEST_NAME}{PARTIAL_SUFFIX}"));
        let mut file = File::create(&partial).map_err(|error| io_error("writing the cold store's manifest", &error))?;
        file.write_all(&manifest.encode()).map_err(|error| io_error("writing the cold store's manifest", &error))?;
        file.sync_data().map_err(|error| io_error("syncing the cold store's manifest", &error))?;
        std::fs::rename(&partial, self.dir.join(MANIFEST_NAME))
            .map_err(|error| io_error("replacing the cold store's manifest", &error))?;
        sync_dir(&self.dir)?;
        *self.runs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Runs { runs, damaged: None });
        Ok(())
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        if !self.dir.exists() {
            std::fs::create_dir_all(&self.dir).map_err(|error| io_error("creating the cold store's folder", &error))?;
            if let Some(ledger) = self.dir.parent() {
                sync_dir(ledger)?;
            }
        }
        Ok(())
    }

    /// Writes `pairs` (sorted, distinct keys) as a new run of `level` and names it in the
    /// manifest; then merges while [`FANOUT`] runs of one level are the newest.
    fn add_run(
        &self,
        next_id: &mut u64,
        level: u8,
        pairs: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), Error>>,
    ) -> Result<(), Error> {
        self.ensure_dir()?;
        let mut runs = self.current()?.runs.clone();
        let id = take_id(next_id)?;
        let mut writer = RunWriter::create(&self.dir, id)?;
        for pair in pairs {
            let (key, value) = pair?;
            writer.add(&key, &value)?;
        }
        runs.push(Arc::new(writer.finish(level, &self.cache)?));
        sync_dir(&self.dir)?;
        self.publish(runs, *next_id)?;
        self.merge(next_id)
    }

    fn merge(&self, next_id: &mut u64) -> Result<(), Error> {
        loop {
            let runs = self.current()?.runs.clone();
            let Some(newest) = runs.last() else { return Ok(()) };
            let level = newest.level;
            let same = runs.iter().rev().take_while(|run| run.level == level).count();
            if same < FANOUT || level >= IMPORTED_LEVEL - 1 {
                return Ok(());
            }
            let first = runs.len() - same;
            let inputs: Vec<Arc<Run>> = runs[first..].to_vec();
            let id = take_id(next_id)?;
            let mut writer = RunWriter::create(&self.dir, id)?;
            for pair in Merge::new(inputs.iter().map(|run| run.cursor(&[], false)).collect()) {
                let (key, value) = pair?;
                writer.add(&key, &value)?;
            }
            let merged = Arc::new(writer.finish(level + 1, &self.cache)?);
            sync_dir(&self.dir)?;
            let mut next = runs[..first].to_vec();
            next.push(merged);
            self.publish(next, *next_id)?;
            // Readers that still hold an input keep its open file.
            for input in inputs {
                std::fs::remove_file(Run::path(&self.dir, input.id))
                    .map_err(|error| io_error("removing a merged cold run", &error))?;
            }
        }
    }

    /// Writes the sorted pairs of `pairs` as one run that no fill merges into (the import of an
    /// earlier ledger's sled tree).
    pub fn import(&self, pairs: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), Error>>) -> Result<(), Error> {
        let mut next_id = lock(&self.writing);
        self.add_run(&mut next_id, IMPORTED_LEVEL, pairs)
    }

    /// How many runs there are.
    #[cfg(test)]
    pub fn run_count(&self) -> usize {
        self.runs.read().unwrap_or_else(PoisonError::into_inner).runs.len()
    }
}

impl ColdStore for RunCold {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        for run in self.current()?.runs.iter().rev() {
            if let Some(value) = run.get(key).map_err(|error| self.read_failed(error))? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    fn scan(&self, prefix: &[u8]) -> Result<Pairs, Error> {
        let runs = self.current()?;
        let cursors = runs.runs.iter().map(|run| run.cursor(prefix, true)).collect();
        let mut pairs = Vec::new();
        for pair in Merge::new(cursors) {
            let (key, value) = pair.map_err(|error| self.read_failed(error))?;
            if key.starts_with(prefix) {
                pairs.push((key, value));
            } else if key.as_slice() > prefix {
                break;
            }
        }
        Ok(pairs)
    }

    /// Held until [`ColdStore::flush`], which writes everything put since as one run, so every
    /// fill is atomic: in memory, and past [`PENDING_BYTES_MAX`] in spills no manifest names
    /// (which the next open removes after a kill). What is pending is not read.
    fn put(&self, pairs: Pairs) -> Result<(), Error> {
        let mut next_id = lock(&self.writing);
        let mut pending = lock(&self.pending);
        pending.bytes += pairs.iter().map(pair_bytes).sum::<usize>();
        pending.pairs.extend(pairs);
        if pending.bytes < PENDING_BYTES_MAX {
            return Ok(());
        }
        let pairs = sorted_distinct(std::mem::take(&mut pending.pairs));
        pending.bytes = 0;
        self.ensure_dir()?;
        let mut writer = RunWriter::create(&self.dir, take_id(&mut next_id)?)?;
        for (key, value) in pairs {
            writer.add(&key, &value)?;
        }
        pending.spills.push(Arc::new(writer.finish(0, &self.cache)?));
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        let mut next_id = lock(&self.writing);
        let Pending { pairs, spills, .. } = std::mem::take(&mut *lock(&self.pending));
        let pairs = sorted_distinct(pairs);
        if spills.is_empty() {
            if pairs.is_empty() {
                return Ok(());
            }
            return self.add_run(&mut next_id, 0, pairs.into_iter().map(Ok));
        }
        // The spills, oldest first, then what is still in memory, newest: of equal keys the
        // newest source wins, as it would have in one sort.
        let spilled = spills.iter().map(|run| Box::new(run.cursor(&[], false)) as PairSource);
        let sources: Vec<PairSource> =
            spilled.chain(std::iter::once(Box::new(pairs.into_iter().map(Ok)) as PairSource)).collect();
        self.add_run(&mut next_id, 0, Merge::new(sources))?;
        // Named by no manifest now that the merged run is: the next open would remove them too.
        for spill in spills {
            std::fs::remove_file(Run::path(&self.dir, spill.id))
                .map_err(|error| io_error("removing a spill of the cold store", &error))?;
        }
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, Error> {
        let runs = self.runs.read().unwrap_or_else(PoisonError::into_inner);
        Ok(runs.runs.is_empty() && runs.damaged.is_none())
    }

    fn clear(&self) -> Result<(), Error> {
        let next_id = lock(&self.writing);
        // Its spills are files the manifest never named: removed with every other below.
        *lock(&self.pending) = Pending::default();
        if !self.dir.exists() {
            *self.runs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Runs::default());
            return Ok(());
        }
        self.publish(Vec::new(), *next_id)?;
        // The manifest names nothing now: every other file is a leftover.
        let entries = std::fs::read_dir(&self.dir).map_err(|error| io_error("listing the cold store", &error))?;
        for entry in entries {
            let entry = entry.map_err(|error| io_error("listing the cold store", &error))?;
            if entry.file_name() != MANIFEST_NAME {
                std::fs::remove_file(entry.path()).map_err(|error| io_error("emptying the cold store", &error))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (key.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    fn fill(store: &RunCold, pairs: &[(&str, &str)]) {
        store.put(pairs.iter().map(|(key, value)| pair(key, value)).collect()).unwrap();
        store.flush().unwrap();
    }

    fn strings(pairs: Pairs) -> Vec<(String, String)> {
        pairs
            .into_iter()
            .map(|(key, value)| (String::from_utf8(key).unwrap(), String::from_utf8(value).unwrap()))
            .collect()
    }

    /// One case: fills, then what `get` and `scan` answer, also after a reopen.
    fn check(fills: &[&[(&str, &str)]], gets: &[(&str, Option<&str>)], scans: &[(&str, &[(&str, &str)])]) {
        let dir = tempfile::tempdir().unwrap();
        let store = RunCold::open(dir.path(), 1 << 20).unwrap();
        for pairs in fills {
            fill(&store, pairs);
        }
        let reopened = RunCold::open(dir.path(), 1 << 20).unwrap();
        for store in [&store, &reopened] {
            for (key, expected) in gets {
                let found = store.get(key.as_bytes()).unwrap().map(|value| String::from_utf8(value).unwrap());
                assert_eq!(found.as_deref(), *expected, "get {key} after fills {fills:?}");
            }
            for (prefix, expected) in scans {
                let expected: Vec<(String, String)> =
                    expected.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
                assert_eq!(strings(store.scan(prefix.as_bytes()).unwrap()), expected, "scan {prefix} after {fills:?}");
            }
        }
    }

    #[test]
    fn the_block_cache_keeps_the_recently_used_within_its_bytes() {
        let cache = BlockCache::new(10);
        let block = |byte: u8, length: usize| -> Arc<[u8]> { vec![byte; length].into() };
        cache.insert((1, 0), block(1, 4));
        cache.insert((1, 1), block(2, 4));
        assert!(cache.get((1, 0)).is_some());
        // (1, 1) is now the least recently used, and makes room.
        cache.insert((2, 0), block(3, 4));
        assert!(cache.get((1, 1)).is_none());
        assert_eq!(cache.get((1, 0)).as_deref(), Some(&[1u8; 4][..]));
        assert_eq!(cache.get((2, 0)).as_deref(), Some(&[3u8; 4][..]));
        assert_eq!(cache.bytes(), 8);
        // A block larger than the whole cache is not kept, and evicts nothing.
        cache.insert((3, 0), block(4, 11));
        assert!(cache.get((3, 0)).is_none());
        assert_eq!(cache.bytes(), 8);
    }

    #[test]
    fn reads_see_the_newest_value_of_each_key() {
        check(&[], &[("a", None)], &[("", &[])]);
        check(
            &[&[("b", "1"), ("a", "2")]],
            &[("a", Some("2")), ("b", Some("1")), ("c", None), ("", None)],
            &[("", &[("a", "2"), ("b", "1")]), ("b", &[("b", "1")]), ("c", &[])],
        );
        check(
            &[&[("Oa", "old"), ("Ob", "1")], &[("Oa", "new"), ("Rc", "2")], &[("Oa", "newest"), ("Oa", "last put")]],
            &[("Oa", Some("last put")), ("Ob", Some("1")), ("Rc", Some("2"))],
            &[("O", &[("Oa", "last put"), ("Ob", "1")]), ("R", &[("Rc", "2")]), ("Ra", &[])],
        );
    }

    #[test]
    fn fanout_runs_of_one_level_merge_and_keep_every_newest_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunCold::open(dir.path(), 1 << 20).unwrap();
        let mut expected = std::collections::BTreeMap::new();
        let fills = FANOUT * FANOUT + 1;
        for round in 0..fills {
            // Enough pairs for several blocks, half of them rewritten by each fill.
            let pairs: Pairs = (0..2000)
                .map(|n| {
                    let key = format!("F{:06}", n + round * 1000);
                    let value = format!("{round}-{}", "x".repeat(20));
                    expected.insert(key.clone().into_bytes(), value.clone().into_bytes());
                    (key.into_bytes(), value.into_bytes())
                })
                .collect();
            store.put(pairs).unwrap();
            store.flush().unwrap();
        }
        // 17 fills: one run of level 2, one of level 0.
        assert_eq!(store.run_count(), 2);
        let all: Pairs = expected.into_iter().collect();
        assert_eq!(store.scan(b"F").unwrap(), all);
        let reopened = RunCold::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.scan(b"").unwrap(), all);
        assert_eq!(reopened.get(b"F000500").unwrap(), Some(b"0-xxxxxxxxxxxxxxxxxxxx".to_vec()));
        let files = std::fs::read_dir(dir.path().join(DIR_NAME)).unwrap().count();
        assert_eq!(files, 3, "the manifest and two runs: merged inputs are removed");
    }

    #[test]
    fn a_fill_larger_than_memory_holds_spills_and_still_becomes_one_run_of_its_newest_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunCold::open(dir.path(), 1 << 20).unwrap();
        let folder = dir.path().join(DIR_NAME);
        fill(&store, &[("S000000", "before the fill"), ("T", "kept")]);
        let mut expected = std::collections::BTreeMap::from([(b"T".to_vec(), b"kept".to_vec())]);
        // Each put about 40 KiB; every key written by three puts: the last put's value wins,
        // whichever spill or memory each value is in.
        for round in 0..12 {
            let pairs: Pairs = (0..400)
                .map(|n| {
                    let key = format!("S{:06}", n + round * 133);
                    let value = format!("{round}-{}", "v".repeat(80));
                    expected.insert(key.clone().into_bytes(), value.clone().into_bytes());
                    (key.into_bytes(), value.into_bytes())
                })
                .collect();
            store.put(pairs).unwrap();
        }
        let spills = lock(&store.pending).spills.len();
        assert!(spills >= 4, "{spills} spills of a fill of 12 × 40 KiB");
        assert_eq!(store.get(b"S000001").unwrap(), None, "what is pending is not read");
        store.flush().unwrap();
        assert_eq!(store.run_count(), 2, "the first fill's run and this one");
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 3, "the manifest and two runs: no spill is left");
        let all: Pairs = expected.into_iter().collect();
        for store in [&store, &RunCold::open(dir.path(), 1 << 20).unwrap()] {
            assert_eq!(store.scan(b"").unwrap(), all);
        }

        // A fill killed after it spilled: the next open removes its spills, and none of it is read.
        let killed = RunCold::open(dir.path(), 1 << 20).unwrap();
        for round in 0..4 {
            let pairs: Pairs = (0..400).map(|n| pair(&format!("K{round}{n:04}"), &"k".repeat(100))).collect();
            killed.put(pairs).unwrap();
        }
        assert!(!lock(&killed.pending).spills.is_empty());
        drop(killed);
        let reopened = RunCold::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.scan(b"K").unwrap(), Vec::new());
        assert_eq!(reopened.scan(b"").unwrap(), all);
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 3, "the spills of the killed fill are removed");
    }

    #[test]
    fn leftovers_of_a_kill_are_removed_and_damage_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunCold::open(dir.path(), 1 << 20).unwrap();
        fill(&store, &[("Ra", "1")]);
        let folder = dir.path().join(DIR_NAME);
        // A run no manifest names, and a partial one.
        std::fs::write(folder.join(format!("{:016x}{RUN_SUFFIX}", 7)), b"junk").unwrap();
        std::fs::write(folder.join("0000000000000008.partial"), b"junk").unwrap();
        let reopened = RunCold::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.get(b"Ra").unwrap(), Some(b"1".to_vec()));
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 2);
        // The next run's id is past every id seen, so it never reuses a leftover's name.
        fill(&reopened, &[("Rb", "2")]);
        assert!(folder.join(format!("{:016x}{RUN_SUFFIX}", 8)).exists());

        // A flipped byte in a block: the read fails as corruption.
        let run = folder.join(format!("{:016x}{RUN_SUFFIX}", 0));
        let mut bytes = std::fs::read(&run).unwrap();
        bytes[RUN_HEADER_LEN + 8] ^= 0x40;
        std::fs::write(&run, &bytes).unwrap();
        let damaged = RunCold::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(damaged.get(b"Ra"), Err(Error::Corruption(_))));
        // The read marked the whole store damaged, now and for the next open: a key in a sound
        // run is refused too, and the store does not open as empty.
        assert!(matches!(damaged.get(b"Rb"), Err(Error::Corruption(_))));
        assert!(folder.join(DAMAGED_NAME).exists());
        let reopened = RunCold::open(dir.path(), 1 << 20).unwrap();
        assert!(!reopened.is_empty().unwrap());
        assert!(matches!(reopened.get(b"Rb"), Err(Error::Corruption(_))));
        std::fs::remove_file(folder.join(DAMAGED_NAME)).unwrap();
        // A run the manifest names but that is gone: damaged, not an I/O failure.
        std::fs::remove_file(folder.join(format!("{:016x}{RUN_SUFFIX}", 8))).unwrap();
        let missing = RunCold::open(dir.path(), 1 << 20).unwrap();
        let Err(Error::Corruption(reason)) = missing.get(b"Ra") else { panic!("a missing run was not reported") };
        assert!(reason.contains("missing"), "{reason}");
        // A damaged manifest: the store opens, is not empty, and every read says why.
        std::fs::write(folder.join(MANIFEST_NAME), b"PURSEMAN").unwrap();
        let damaged = RunCold::open(dir.path(), 1 << 20).unwrap();
        assert!(!damaged.is_empty().unwrap());
        let Err(Error::Corruption(reason)) = damaged.scan(b"R") else { panic!("a damaged manifest was read") };
        assert!(reason.contains("MANIFEST"), "{reason}");
        // Clearing it leaves an empty store that works, without the damage mark.
        std::fs::write(folder.join(DAMAGED_NAME), b"a block was damaged").unwrap();
        damaged.clear().unwrap();
        assert!(damaged.is_empty().unwrap());
        assert!(!folder.join(DAMAGED_NAME).exists());
        fill(&damaged, &[("Rc", "3")]);
        let reopened = RunCold::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.scan(b"R").unwrap(), vec![(b"Rc".to_vec(), b"3".to_vec())]);
    }
}

//! The cold store: every order, idempotency record and per-account flow reference a snapshot
//! held, on disk, so that memory holds only what changed since (issue 13, docs/ARCHITECTURE.md
//! "Memory bounded by what is live").
//!
//! Keys and values, written only from a committed snapshot file (see [`apply_snapshot`]): after
//! the file of the snapshot at position P is durable, its orders, records and references go into
//! the store (one value per key, replaced), then a Bloom filter of every key, then the store is
//! flushed; only then does the writer drop them from memory. So the store never holds anything
//! newer than the newest snapshot file, and whatever that file holds shadows the store on open: a
//! crash while the store is written loses nothing. A damaged newest snapshot cannot be replaced
//! by an older one (the store may hold values newer than it): the ledger then clears the store
//! and folds the whole log. On disk the store is files of sorted runs (`cold_runs.rs`); ledgers
//! of the commits before them kept it in a sled tree `cold`, which the first open moves into a
//! run.
//!
//! ```text
//! key                                         value (version byte 1 first)
//! 'R' request_id                              fingerprint [32] | flow id u64 BE
//! 'F' len u16 BE | account_id | sequence BE   order_time i64 BE | flow type tag u8
//! 'O' outer_order_id                          bincode (varint) of ColdOrder
//! 'S' segment u32 BE | chunk u32 BE           one segment of the Bloom filter, in chunks
//! 'B' chunk u32 BE                            the whole filter of older ledgers, in chunks
//! ```

use std::collections::HashMap;
use std::fmt::Debug;
use std::io::Read;

use bincode::Options;
use purse_core::{OrderPart, Take, Timestamp};
use purse_idempotency::{Fingerprint, Record};
use serde::{Deserialize, Serialize};

use super::read::{flow_type, takes_of};
#[cfg(test)]
use super::take_record;
use super::{encode_options, options, Item, OrderRecord, TakeRecord, HEADER_BYTES};
use crate::error::Error;
use crate::projection::FlowRef;
use crate::record::array_to_buckets;
#[cfg(test)]
use crate::record::{buckets_to_array, flow_type_tag};

/// The version byte every cold value starts with.
const VALUE_VERSION: u8 = 1;
/// Pairs handed to the store at a time when a snapshot goes into it.
const PAIRS_PER_BATCH: usize = 4096;
/// Bytes per value at most, for an order's value and for the Bloom filter's chunks; a larger one
/// is cut into chunks under keys of their own. Chosen when the store was a sled tree (sled writes
/// a leaf of more than 128 KiB as a blob file, which no fsync covers: see `block.rs`) and kept,
/// because the old tree's values are imported as they are.
const VALUE_BYTES_MAX: usize = 4 * 1024;

const REQUEST: u8 = b'R';
const FLOW: u8 = b'F';
const ORDER: u8 = b'O';
const BLOOM: u8 = b'B';
const BLOOM_SEGMENT: u8 = b'S';
/// Written as the first `B` chunk once the filter is kept by segment, where a whole filter's
/// layout byte would be: a binary that reads only whole filters then finds damage, not a filter
/// that misses every id added since.
const BLOOM_MOVED: u8 = 0xFF;

/// Keys with their values.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The medium of the cold store: files of sorted runs, or memory in tests.
pub trait ColdStore: Send + Sync + Debug {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Every pair whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Pairs, Error>;
    /// Inserts (or replaces) every pair, once [`ColdStore::flush`] has made them durable: the
    /// pairs put between two flushes are all there after a crash, or none of them.
    fn put(&self, pairs: Pairs) -> Result<(), Error>;
    /// Makes every write before it durable.
    fn flush(&self) -> Result<(), Error>;
    fn is_empty(&self) -> Result<bool, Error>;
    /// Removes everything (before a fold of the whole log rebuilds it).
    fn clear(&self) -> Result<(), Error>;
}

/// The cold store in memory (tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemCold {
    pairs: std::sync::Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>,
}

#[cfg(test)]
impl MemCold {
    fn pairs(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<Vec<u8>, Vec<u8>>> {
        self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
impl ColdStore for MemCold {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.pairs().get(key).cloned())
    }

    fn scan(&self, prefix: &[u8]) -> Result<Pairs, Error> {
        let pairs = self.pairs();
        Ok(pairs
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put(&self, pairs: Pairs) -> Result<(), Error> {
        self.pairs().extend(pairs);
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.pairs().is_empty())
    }

    fn clear(&self) -> Result<(), Error> {
        self.pairs().clear();
        Ok(())
    }
}

fn request_key(request_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + request_id.len());
    key.push(REQUEST);
    key.extend_from_slice(request_id.as_bytes());
    key
}

/// The prefix of an order's chunks: ids hold no control characters, so `0` ends the id.
fn order_key(outer_order_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + outer_order_id.len());
    key.push(ORDER);
    key.extend_from_slice(outer_order_id.as_bytes());
    key.push(0);
    key
}

/// An order's value as pairs: chunks of [`VALUE_BYTES_MAX`], numbered.
fn order_pairs(outer_order_id: &str, value: &[u8]) -> Pairs {
    value
        .chunks(VALUE_BYTES_MAX)
        .enumerate()
        .map(|(index, chunk)| {
            let mut key = order_key(outer_order_id);
            key.extend_from_slice(&u16::try_from(index).expect("an order of under 256 MiB").to_be_bytes());
            (key, chunk.to_vec())
        })
        .collect()
}

/// The prefix of every flow reference of `account_id`.
fn account_prefix(account_id: &str) -> Vec<u8> {
    let length = u16::try_from(account_id.len()).expect("ids are at most 64 characters");
    let mut key = Vec::with_capacity(3 + account_id.len() + 8);
    key.push(FLOW);
    key.extend_from_slice(&length.to_be_bytes());
    key.extend_from_slice(account_id.as_bytes());
    key
}

fn corrupt(what: &str, key: &[u8]) -> Error {
    Error::Corruption(format!("the cold store's {what} under {:?} cannot be read", String::from_utf8_lossy(key)))
}

/// An order as the cold store keeps it, with its hold expiry and lot takes.
#[derive(Debug, Serialize, Deserialize)]
struct ColdOrder {
    flow_id: u64,
    flow_type: u8,
    account: u32,
    moved: [i64; 3],
    refunded: [i64; 3],
    reversed_by: u64,
    expire_time: Option<i64>,
    takes: Vec<TakeRecord>,
}

/// An order read from the cold store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColdOrderRead {
    pub flow_id: u64,
    pub flow_type: purse_core::FlowType,
    pub account: u32,
    pub moved: purse_core::Buckets,
    pub refunded: purse_core::Buckets,
    pub reversed_by: Option<u64>,
    pub expire_time: Option<Timestamp>,
    pub takes: Vec<Take>,
}

impl ColdOrderRead {
    pub fn part<'a>(&self, outer_order_id: &'a str) -> OrderPart<'a> {
        OrderPart {
            outer_order_id,
            flow_id: self.flow_id,
            flow_type: self.flow_type,
            account: self.account,
            moved: self.moved,
            refunded: self.refunded,
            reversed_by: self.reversed_by,
        }
    }
}

fn versioned(body: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + body.len());
    value.push(VALUE_VERSION);
    value.extend_from_slice(body);
    value
}

fn body<'a>(what: &str, key: &[u8], value: &'a [u8]) -> Result<&'a [u8], Error> {
    match value.split_first() {
        Some((&VALUE_VERSION, body)) => Ok(body),
        _ => Err(corrupt(what, key)),
    }
}

/// The idempotency record of `request_id`, if the cold store has one.
pub(crate) fn request(cold: &dyn ColdStore, request_id: &str) -> Result<Option<Record>, Error> {
    let key = request_key(request_id);
    let Some(value) = cold.get(&key)? else { return Ok(None) };
    let body = body("idempotency record", &key, &value)?;
    if body.len() != 40 {
        return Err(corrupt("idempotency record", &key));
    }
    let fingerprint = Fingerprint(body[..32].try_into().expect("32 bytes"));
    let flow_id = u64::from_be_bytes(body[32..].try_into().expect("8 bytes"));
    Ok(Some(Record { fingerprint, flow_id }))
}

/// Order `outer_order_id`, if the cold store has it.
pub(crate) fn order(cold: &dyn ColdStore, outer_order_id: &str) -> Result<Option<ColdOrderRead>, Error> {
    let key = order_key(outer_order_id);
    // The chunks one by one (lookups, cheaper in runs than a scan, which starts a cursor in
    // every run), numbered from 0 without a gap, up to the first that completes the order:
    // nothing is ever deleted, so an order whose value shrank (a hold's expiry dropped) past a
    // chunk boundary leaves its older, higher-numbered chunks behind, and those must not be read.
    // A strict prefix of an encoding never decodes completely (the decoder runs out of bytes).
    let mut value = Vec::new();
    let mut chunk_key = key.clone();
    let mut record: Option<ColdOrder> = None;
    for index in 0..=u16::MAX {
        chunk_key.truncate(key.len());
        chunk_key.extend_from_slice(&index.to_be_bytes());
        match cold.get(&chunk_key)? {
            Some(chunk) => value.extend_from_slice(&chunk),
            None if index == 0 => return Ok(None),
            None => break,
        }
        if let Ok(complete) = options().deserialize(body("order", &key, &value)?) {
            record = Some(complete);
            break;
        }
    }
    let record = record.ok_or_else(|| corrupt("order", &key))?;
    Ok(Some(ColdOrderRead {
        flow_id: record.flow_id,
        flow_type: flow_type(record.flow_type).map_err(|_| corrupt("order", &key))?,
        account: record.account,
        moved: array_to_buckets(record.moved),
        refunded: array_to_buckets(record.refunded),
        reversed_by: (record.reversed_by != 0).then_some(record.reversed_by),
        expire_time: record.expire_time.map(Timestamp),
        takes: takes_of(&record.takes).map_err(|_| corrupt("order", &key))?,
    }))
}

/// Every flow reference of `account_id` the cold store has, in order.
pub(crate) fn flow_refs(cold: &dyn ColdStore, account_id: &str) -> Result<Vec<FlowRef>, Error> {
    let prefix = account_prefix(account_id);
    cold.scan(&prefix)?
        .into_iter()
        .map(|(key, value)| {
            let sequence = key.get(prefix.len()..).and_then(|tail| <[u8; 8]>::try_from(tail).ok());
            let body = body("flow reference", &key, &value)?;
            match (sequence, body.len()) {
                (Some(sequence), 9) => Ok(FlowRef {
                    sequence: u64::from_be_bytes(sequence),
                    order_time: Timestamp(i64::from_be_bytes(body[..8].try_into().expect("8 bytes"))),
                    flow_type: flow_type(body[8]).map_err(|_| corrupt("flow reference", &key))?,
                }),
                _ => Err(corrupt("flow reference", &key)),
            }
        })
        .collect()
}

/// Every order id the cold store has (for `verify`).
pub(crate) fn order_ids(cold: &dyn ColdStore) -> Result<Vec<String>, Error> {
    let first = [0u8, 0u8];
    cold.scan(&[ORDER])?
        .into_iter()
        .filter(|(key, _)| key.ends_with(&first))
        .map(|(key, _)| String::from_utf8(key[1..key.len() - 3].to_vec()).map_err(|_| corrupt("order id", &key)))
        .collect()
}

/// Every request id the cold store has, with its record (for `verify`).
pub(crate) fn request_count(cold: &dyn ColdStore) -> Result<u64, Error> {
    Ok(cold.scan(&[REQUEST])?.len() as u64)
}

/// The Bloom filter of the cold store, if it has one, with how many of its first segments the
/// store holds by segment as they are (full ones, which never change again: fills after this
/// open need not write them).
pub(crate) fn bloom(cold: &dyn ColdStore) -> Result<Option<(Bloom, usize)>, Error> {
    if let Some(bloom) = bloom_by_segment(cold)? {
        let stored = bloom.full_segments();
        return Ok(Some((bloom, stored)));
    }
    Ok(whole_bloom(cold)?.map(|bloom| (bloom, 0)))
}

/// The filter kept by segment (`S` keys), if the store has one.
fn bloom_by_segment(cold: &dyn ColdStore) -> Result<Option<Bloom>, Error> {
    let pairs = cold.scan(&[BLOOM_SEGMENT])?;
    if pairs.is_empty() {
        return Ok(None);
    }
    let index = |key: &[u8], at: usize| -> Result<u32, Error> {
        let bytes =
            key.get(at..at + 4).filter(|_| key.len() == 9).ok_or_else(|| corrupt("Bloom filter segment", key))?;
        Ok(u32::from_be_bytes(bytes.try_into().expect("4 bytes")))
    };
    let mut segments = Vec::new();
    let mut bytes = Vec::new();
    let mut last: Option<(u32, u32, Vec<u8>)> = None;
    let finish = |segments: &mut Vec<Segment>, bytes: &mut Vec<u8>, key: &[u8]| -> Result<(), Error> {
        segments.push(Segment::decode_stored(bytes).ok_or_else(|| corrupt("Bloom filter segment", key))?);
        bytes.clear();
        Ok(())
    };
    for (key, value) in &pairs {
        let (segment, chunk) = (index(key, 1)?, index(key, 5)?);
        match &last {
            Some((at, previous, _)) if *at == segment => {
                if chunk != previous + 1 {
                    return Err(corrupt("Bloom filter segment", key));
                }
            }
            other => {
                if let Some((_, _, last_key)) = other {
                    finish(&mut segments, &mut bytes, last_key)?;
                }
                if usize::try_from(segment).ok() != Some(segments.len()) || chunk != 0 {
                    return Err(corrupt("Bloom filter segment", key));
                }
            }
        }
        bytes.extend_from_slice(body("Bloom filter segment", key, value)?);
        last = Some((segment, chunk, key.clone()));
    }
    if let Some((_, _, last_key)) = &last {
        finish(&mut segments, &mut bytes, last_key)?;
    }
    Ok(Some(Bloom { segments }))
}

/// The whole filter of a store written before filters were kept by segment (`B` keys).
fn whole_bloom(cold: &dyn ColdStore) -> Result<Option<Bloom>, Error> {
    let chunks = cold.scan(&[BLOOM])?;
    if chunks.is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    for (index, (key, value)) in chunks.iter().enumerate() {
        if key[1..] != u32::try_from(index).unwrap_or(u32::MAX).to_be_bytes() {
            return Err(corrupt("Bloom filter", key));
        }
        bytes.extend_from_slice(body("Bloom filter", key, value)?);
    }
    match bytes.first() {
        Some(&BLOOM_LAYOUT) => Bloom::decode(&bytes[1..]).map(Some).ok_or_else(|| corrupt("Bloom filter", &[BLOOM])),
        // The first layout (commits 5e806f9..b6a9f40, before the filter was blocked) began
        // with its segment count, whose first byte is 0. Its bits mean something else now, and
        // reading them as blocked would answer "never seen" for ids it holds: build the filter
        // again from the ids the tree itself holds.
        Some(0) => rebuild_bloom(cold).map(Some),
        // The filter is kept by segment, and it had none: no id was ever added (a fill writes
        // the mark and the segments in one run).
        Some(&BLOOM_MOVED) if bytes.len() == 1 => Ok(Some(Bloom::default())),
        _ => Err(corrupt("Bloom filter", &[BLOOM])),
    }
}

/// A filter of every request and order id the tree holds (it is rewritten whole with the
/// next snapshot's fill).
fn rebuild_bloom(cold: &dyn ColdStore) -> Result<Bloom, Error> {
    let mut bloom = Bloom::default();
    for (key, _) in cold.scan(&[REQUEST])? {
        let id = std::str::from_utf8(&key[1..]).map_err(|_| corrupt("request key", &key))?;
        bloom.insert(Kind::Request, id);
    }
    for (key, _) in cold.scan(&[ORDER])? {
        // `O` + id + 0 + u16 chunk: the first chunk names the order once.
        let Some(id) = key.len().checked_sub(3).and_then(|end| key.get(1..end)) else {
            return Err(corrupt("order key", &key));
        };
        if key[key.len() - 2..] == [0, 0] {
            bloom.insert(Kind::Order, std::str::from_utf8(id).map_err(|_| corrupt("order key", &key))?);
        }
    }
    Ok(bloom)
}

/// Puts what the committed snapshot file in `reader` holds of orders, idempotency records and
/// flow references into the cold store, then the segments of the filter that changed since the
/// store last took it (`bloom`), then flushes. Returns how many keys.
pub(crate) fn apply_snapshot(
    cold: &dyn ColdStore,
    reader: &mut (impl Read + Send),
    header: &[u8; HEADER_BYTES],
    bloom: &BloomTail,
) -> Result<u64, Error> {
    let mut pairs = Vec::with_capacity(PAIRS_PER_BATCH);
    let mut written = 0u64;
    let mut orders = HeldOrders::default();
    let mut expiries: HashMap<u64, i64> = HashMap::new();
    let mut takes: HashMap<u64, Vec<TakeRecord>> = HashMap::new();
    let mut failed: Option<Error> = None;
    let mut flush = |pairs: &mut Pairs, failed: &mut Option<Error>| {
        if failed.is_none() && !pairs.is_empty() {
            written += pairs.len() as u64;
            if let Err(error) = cold.put(std::mem::take(pairs)) {
                *failed = Some(error);
            }
        }
    };
    super::read::read_items(reader, header, |item| {
        match item {
            Item::Order(record) => orders.push(&record.outer_order_id, &cold_order(record)),
            Item::HoldExpiry(flow_id, time) => {
                expiries.insert(*flow_id, *time);
            }
            Item::OrderTakes(flow_id, list) => {
                takes.insert(*flow_id, std::mem::take(list));
            }
            Item::Request(request_id, fingerprint, flow_id) => {
                let mut body = fingerprint.to_vec();
                body.extend_from_slice(&flow_id.to_be_bytes());
                pairs.push((request_key(request_id), versioned(&body)));
            }
            Item::AccountFlows(account_id, refs) => {
                let prefix = account_prefix(account_id);
                for &(sequence, order_time, tag) in refs.iter() {
                    let mut key = prefix.clone();
                    key.extend_from_slice(&sequence.to_be_bytes());
                    let mut body = order_time.to_be_bytes().to_vec();
                    body.push(tag);
                    pairs.push((key, versioned(&body)));
                }
            }
            _ => {}
        }
        if pairs.len() >= PAIRS_PER_BATCH {
            flush(&mut pairs, &mut failed);
        }
        Ok(())
    })
    .map_err(|reason| Error::Corruption(format!("the snapshot just written reads back damaged: {reason}")))?;
    for (flow_id, id, body) in orders.iter() {
        let expire_time = expiries.get(&flow_id).copied();
        let order_takes = takes.remove(&flow_id).unwrap_or_default();
        let value = if expire_time.is_none() && order_takes.is_empty() {
            versioned(body)
        } else {
            let mut order: ColdOrder = encode_options().deserialize(body).expect("held just now, as encoded");
            order.expire_time = expire_time;
            order.takes = order_takes;
            versioned(&encode_options().serialize(&order).expect("an order always encodes"))
        };
        pairs.extend(order_pairs(id, &value));
        if pairs.len() >= PAIRS_PER_BATCH {
            flush(&mut pairs, &mut failed);
        }
    }
    flush(&mut pairs, &mut failed);
    if let Some(error) = failed {
        return Err(error);
    }
    // The filter last (the flush below makes the whole fill one run): it names every key above.
    cold.put(bloom.pairs())?;
    cold.flush()?;
    Ok(written)
}

/// A fill's orders until their hold expiries and lot takes, which come later in a snapshot, are
/// read: each one's id and its value encoded without them, back to back in one buffer (about 60
/// bytes an order, against 180 as a `ColdOrder` and its id's `String`).
#[derive(Debug, Default)]
struct HeldOrders {
    bytes: Vec<u8>,
    /// Per order: its flow id, where its id ends and where its value ends in `bytes`.
    orders: Vec<(u64, usize, usize)>,
}

impl HeldOrders {
    fn push(&mut self, id: &str, order: &ColdOrder) {
        self.bytes.extend_from_slice(id.as_bytes());
        let id_end = self.bytes.len();
        encode_options().serialize_into(&mut self.bytes, order).expect("an order always encodes");
        self.orders.push((order.flow_id, id_end, self.bytes.len()));
    }

    /// Each order's flow id, id and encoded value, in the order they were held.
    fn iter(&self) -> impl Iterator<Item = (u64, &str, &[u8])> + '_ {
        let mut start = 0;
        self.orders.iter().map(move |&(flow_id, id_end, end)| {
            let id = std::str::from_utf8(&self.bytes[start..id_end]).expect("held from a str");
            let body = &self.bytes[id_end..end];
            start = end;
            (flow_id, id, body)
        })
    }
}

fn cold_order(record: &OrderRecord<'_>) -> ColdOrder {
    ColdOrder {
        flow_id: record.flow_id,
        flow_type: record.flow_type,
        account: record.account,
        moved: record.moved,
        refunded: record.refunded,
        reversed_by: record.reversed_by,
        expire_time: None,
        takes: Vec::new(),
    }
}

/// Encodes an order as [`order`] reads it (tests).
#[cfg(test)]
pub(crate) fn order_pair(part: OrderPart<'_>, expire_time: Option<Timestamp>, takes: &[Take]) -> (Vec<u8>, Vec<u8>) {
    let order = ColdOrder {
        flow_id: part.flow_id,
        flow_type: flow_type_tag(part.flow_type),
        account: part.account,
        moved: buckets_to_array(&part.moved),
        refunded: buckets_to_array(&part.refunded),
        reversed_by: part.reversed_by.unwrap_or(0),
        expire_time: expire_time.map(|time| time.0),
        takes: takes.iter().map(take_record).collect(),
    };
    let mut pairs = order_pairs(part.outer_order_id, &versioned(&encode_options().serialize(&order).expect("encodes")));
    assert_eq!(pairs.len(), 1, "a small order");
    pairs.remove(0)
}

/// Which kind of key a Bloom filter entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request = REQUEST as isize,
    Order = ORDER as isize,
}

/// Keys the first segment of a [`Bloom`] filter holds; each next one holds twice as many.
#[cfg(not(test))]
const BLOOM_FIRST_KEYS: u64 = 1 << 20;
#[cfg(test)]
const BLOOM_FIRST_KEYS: u64 = 1 << 12;
/// Keys a segment holds at most. Only the last segment changes, and each fill of the cold store
/// writes it again: without a bound it was as large as all the others together (a filter of
/// 10M flows' ids is 39 MB), written again, and held three times over, by every fill.
#[cfg(not(test))]
const BLOOM_SEGMENT_KEYS_MAX: u64 = 1 << 22;
#[cfg(test)]
const BLOOM_SEGMENT_KEYS_MAX: u64 = 1 << 14;
const BLOOM_BITS_PER_KEY: u64 = 10;
const BLOOM_HASHES: u32 = 7;
/// The first byte of a whole stored filter (`B` keys): its layout (blocked). The first layout had
/// none; its first byte was 0 (the high byte of its segment count).
const BLOOM_LAYOUT: u8 = 2;
/// The first byte of a stored segment (`S` keys): blocked bits as in [`BLOOM_LAYOUT`].
const BLOOM_SEGMENT_LAYOUT: u8 = 3;
/// Bits per block: one cache line, which holds all of a key's bits.
const BLOOM_BLOCK_BITS: u64 = 512;
const BLOOM_BLOCK_WORDS: usize = (BLOOM_BLOCK_BITS / 64) as usize;

/// Which request and order ids might be in the cold store: a new id (nearly every command's) is
/// answered from memory, and only the ~1 % the filter cannot rule out cost a read. Blocked (a
/// key's bits all in one 64-byte block, so one cache miss per segment) and grown by segments of
/// doubling size up to [`BLOOM_SEGMENT_KEYS_MAX`], so it never needs the keys again; about 1.3
/// bytes per key. A full segment never changes again: the cold store takes only the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bloom {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    capacity: u64,
    count: u64,
    words: Vec<u64>,
}

/// FNV-1a over the kind and the id: stable across builds, since the filter is stored.
fn hashes(kind: Kind, id: &str) -> (u64, u64) {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(kind as u8).chain(id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 of the first gives the bits inside the block.
    let mut mixed = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (hash, mixed ^ (mixed >> 31))
}

/// The words a segment of `capacity` keys takes: whole blocks.
fn segment_words(capacity: u64) -> Option<u64> {
    let blocks = capacity.checked_mul(BLOOM_BITS_PER_KEY)?.div_ceil(BLOOM_BLOCK_BITS).max(1);
    blocks.checked_mul(BLOOM_BLOCK_WORDS as u64)
}

impl Segment {
    fn new(capacity: u64) -> Segment {
        let words = segment_words(capacity).and_then(|words| usize::try_from(words).ok());
        Segment { capacity, count: 0, words: vec![0; words.expect("a filter that fits memory")] }
    }

    /// The block of a key and the masks of its bits in the block's words.
    fn probes(&self, (block, bits): (u64, u64)) -> (usize, [u64; BLOOM_BLOCK_WORDS]) {
        let blocks = (self.words.len() / BLOOM_BLOCK_WORDS) as u64;
        let start = usize::try_from(block % blocks).expect("a block index fits") * BLOOM_BLOCK_WORDS;
        let mut masks = [0u64; BLOOM_BLOCK_WORDS];
        for i in 0..BLOOM_HASHES {
            let bit = (bits >> (9 * i)) & (BLOOM_BLOCK_BITS - 1);
            masks[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        (start, masks)
    }

    fn contains(&self, hashes: (u64, u64)) -> bool {
        let (start, masks) = self.probes(hashes);
        let block = &self.words[start..start + BLOOM_BLOCK_WORDS];
        block.iter().zip(masks).all(|(word, mask)| word & mask == mask)
    }
}

impl Bloom {
    pub fn insert(&mut self, kind: Kind, id: &str) {
        let full = self.segments.last().is_none_or(|last| last.count >= last.capacity);
        if full {
            let capacity = self
                .segments
                .last()
                .map_or(BLOOM_FIRST_KEYS, |last| (last.capacity * 2).min(BLOOM_SEGMENT_KEYS_MAX.max(last.capacity)));
            self.segments.push(Segment::new(capacity));
        }
        let segment = self.segments.last_mut().expect("pushed above");
        let (start, masks) = segment.probes(hashes(kind, id));
        for (word, mask) in segment.words[start..start + BLOOM_BLOCK_WORDS].iter_mut().zip(masks) {
            *word |= mask;
        }
        segment.count += 1;
    }

    /// `false`: the id was never inserted.
    pub fn may_contain(&self, kind: Kind, id: &str) -> bool {
        let hashes = hashes(kind, id);
        // The newest (largest) segment first: it holds half the keys.
        self.segments.iter().rev().any(|segment| segment.contains(hashes))
    }

    /// Bytes the filter takes in memory.
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(|segment| segment.words.len() * 8).sum()
    }

    /// How many of the first segments are full (they never change again).
    pub fn full_segments(&self) -> usize {
        self.segments.iter().take_while(|segment| segment.is_full()).count()
    }

    /// A copy of the segments from `first` on: what a fill of the cold store writes when the
    /// store holds the ones before as they are.
    pub fn tail(&self, first: usize) -> BloomTail {
        let first = first.min(self.segments.len());
        BloomTail { first, segments: self.segments[first..].to_vec() }
    }

    /// A whole filter as the `B` keys held it (layout [`BLOOM_LAYOUT`]; ledgers before filters
    /// were kept by segment wrote it, and tests write it to stand for them).
    #[cfg(test)]
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(5 + self.bytes() + self.segments.len() * 24);
        bytes.push(BLOOM_LAYOUT);
        bytes.extend_from_slice(&u32::try_from(self.segments.len()).expect("under 2^32 segments").to_be_bytes());
        for segment in &self.segments {
            segment.encode_into(&mut bytes);
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Bloom> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let be = |bytes: &[u8]| u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
        let count = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut segments = Vec::new();
        for _ in 0..count {
            let capacity = be(take(8)?);
            let keys = be(take(8)?);
            let words = usize::try_from(be(take(8)?)).ok()?;
            if Some(words as u64) != segment_words(capacity) || keys > capacity || capacity == 0 {
                return None;
            }
            let body = take(words.checked_mul(8)?)?;
            let words =
                body.chunks_exact(8).map(|word| u64::from_le_bytes(word.try_into().expect("8 bytes"))).collect();
            segments.push(Segment { capacity, count: keys, words });
        }
        rest.is_empty().then_some(Bloom { segments })
    }
}

impl Segment {
    fn is_full(&self) -> bool {
        self.count >= self.capacity
    }

    /// capacity u64 BE | keys u64 BE | words u64 BE | the words, u64 LE each.
    fn encode_into(&self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(&self.capacity.to_be_bytes());
        bytes.extend_from_slice(&self.count.to_be_bytes());
        bytes.extend_from_slice(&(self.words.len() as u64).to_be_bytes());
        for word in &self.words {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
    }

    /// A stored segment: [`BLOOM_SEGMENT_LAYOUT`], then as [`Segment::encode_into`].
    fn encode_stored(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(25 + self.words.len() * 8);
        bytes.push(BLOOM_SEGMENT_LAYOUT);
        self.encode_into(&mut bytes);
        bytes
    }

    fn decode_stored(bytes: &[u8]) -> Option<Segment> {
        let (&layout, rest) = bytes.split_first()?;
        if layout != BLOOM_SEGMENT_LAYOUT {
            return None;
        }
        // The whole filter's layout with a count of one is exactly one segment.
        let mut whole = 1u32.to_be_bytes().to_vec();
        whole.extend_from_slice(rest);
        Bloom::decode(&whole)?.segments.pop()
    }
}

/// The segments of a filter from `first` on, as a fill of the cold store writes them.
#[derive(Debug, Clone)]
pub(crate) struct BloomTail {
    first: usize,
    segments: Vec<Segment>,
}

impl BloomTail {
    /// How many of the filter's first segments the store holds as they are once these are in it.
    pub fn stored_after(&self) -> usize {
        self.first + self.segments.iter().take_while(|segment| segment.is_full()).count()
    }

    /// The `S` pairs of these segments; and over the first `B` chunk [`BLOOM_MOVED`] when they
    /// start at the first segment, so no whole filter an older binary wrote can be read again.
    fn pairs(&self) -> Pairs {
        let mut pairs = Vec::new();
        if self.first == 0 {
            let mut key = vec![BLOOM];
            key.extend_from_slice(&0u32.to_be_bytes());
            pairs.push((key, versioned(&[BLOOM_MOVED])));
        }
        for (offset, segment) in self.segments.iter().enumerate() {
            let index = u32::try_from(self.first + offset).expect("under 2^32 segments");
            for (chunk, bytes) in segment.encode_stored().chunks(VALUE_BYTES_MAX).enumerate() {
                let mut key = vec![BLOOM_SEGMENT];
                key.extend_from_slice(&index.to_be_bytes());
                key.extend_from_slice(&u32::try_from(chunk).expect("under 2^32 chunks").to_be_bytes());
                pairs.push((key, versioned(bytes)));
            }
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bloom_filter_never_forgets_and_rarely_errs() {
        let mut bloom = Bloom::default();
        let keys = 3 * usize::try_from(BLOOM_FIRST_KEYS).unwrap();
        for n in 0..keys {
            bloom.insert(Kind::Request, &format!("r-{n}"));
        }
        assert_eq!(bloom.segments.len(), 2, "grew by a segment of twice the size");
        assert!((0..keys).all(|n| bloom.may_contain(Kind::Request, &format!("r-{n}"))));
        let wrong = (0..10_000).filter(|n| bloom.may_contain(Kind::Request, &format!("x-{n}"))).count();
        assert!(wrong < 300, "{wrong} false positives in 10,000");
        // The kind is part of the key.
        let other = (0..1000).filter(|n| bloom.may_contain(Kind::Order, &format!("r-{n}"))).count();
        assert!(other < 60, "{other}");
        let encoded = bloom.encode();
        assert_eq!(encoded[0], BLOOM_LAYOUT);
        let again = Bloom::decode(&encoded[1..]).unwrap();
        assert_eq!(again, bloom);
        assert_eq!(Bloom::decode(&encoded[1..encoded.len() - 1]), None);
    }

    #[test]
    fn values_read_back_and_damage_is_named() {
        let cold = MemCold::default();
        let part = OrderPart {
            outer_order_id: "o1",
            flow_id: 4,
            flow_type: purse_core::FlowType::Hold,
            account: 2,
            moved: purse_core::Buckets { real: purse_core::Amount::from_minor(5), ..purse_core::Buckets::ZERO },
            refunded: purse_core::Buckets::ZERO,
            reversed_by: Some(9),
        };
        cold.put(vec![order_pair(part, Some(Timestamp(77)), &[])]).unwrap();
        let read = order(&cold, "o1").unwrap().unwrap();
        assert_eq!(read.part("o1"), part);
        assert_eq!(read.expire_time, Some(Timestamp(77)));
        assert_eq!(order(&cold, "o2").unwrap(), None);
        let mut first = order_key("o1");
        first.extend_from_slice(&[0, 0]);
        cold.put(vec![(first, vec![2, 0]), (request_key("r"), versioned(&[1; 39]))]).unwrap();
        let check = |error: Error, what: &str| {
            assert_eq!(error.code(), purse_core::ErrorCode::Corruption);
            assert!(error.to_string().contains(what), "{error}");
        };
        check(order(&cold, "o1").unwrap_err(), "order under \"Oo1\\0\"");
        check(request(&cold, "r").unwrap_err(), "idempotency record");
    }

    /// Nothing is ever deleted: an order written again with fewer chunks (its value shrank past
    /// a chunk boundary) leaves its older higher-numbered chunks in the store, which must not
    /// be read as part of it.
    #[test]
    fn an_order_that_shrank_past_a_chunk_boundary_reads_as_its_newest_value() {
        let cold = MemCold::default();
        let write = |takes: u32| {
            let takes: Vec<Take> = (0..takes)
                .map(|index| Take {
                    bucket: purse_core::Bucket::Gift,
                    key: purse_core::LotKey::new(Some(Timestamp(1_000_000 + i64::from(index))), 1, index).unwrap(),
                    value: purse_core::Amount::from_minor(1),
                })
                .collect();
            let order = ColdOrder {
                flow_id: 4,
                flow_type: flow_type_tag(purse_core::FlowType::Deduct),
                account: 2,
                moved: [0, -i64::from(u32::try_from(takes.len()).unwrap()), 0],
                refunded: [0; 3],
                reversed_by: 0,
                expire_time: None,
                takes: takes.iter().map(take_record).collect(),
            };
            let pairs = order_pairs("o1", &versioned(&encode_options().serialize(&order).unwrap()));
            let chunks = pairs.len();
            cold.put(pairs).unwrap();
            chunks
        };
        assert!(write(1000) >= 3, "the first version spans several chunks");
        assert_eq!(order(&cold, "o1").unwrap().unwrap().takes.len(), 1000);
        assert_eq!(write(300), 1, "the second fits in one");
        assert_eq!(order(&cold, "o1").unwrap().unwrap().takes.len(), 300);
    }

    /// The filter is kept by segment, and a fill writes only the segments that changed since the
    /// store last took it: what the store reads back is the whole filter, every time.
    #[test]
    fn a_fill_writes_only_the_segments_that_changed_and_the_store_reads_the_whole_filter() {
        let cold = MemCold::default();
        let mut filter = Bloom::default();
        let mut added = 0;
        let mut add = |filter: &mut Bloom, keys: usize| {
            for n in added..added + keys {
                filter.insert(Kind::Request, &format!("r-{n}"));
            }
            added += keys;
        };
        let first = usize::try_from(BLOOM_FIRST_KEYS).unwrap();
        let max = usize::try_from(BLOOM_SEGMENT_KEYS_MAX).unwrap();
        add(&mut filter, first + 1);
        let mut stored = 0;
        let mut fills = Vec::new();
        // Past the cap the segments stop doubling.
        while filter.segments.len() < 6 {
            let tail = filter.tail(stored);
            let pairs = tail.pairs();
            fills.push((tail.first, tail.segments.len(), pairs.len()));
            cold.put(pairs).unwrap();
            stored = tail.stored_after();
            let (read, held) = bloom_read(&cold);
            assert_eq!(read, filter, "the store reads back the whole filter");
            assert_eq!(held, filter.full_segments());
            assert_eq!(held, stored);
            add(&mut filter, max / 3);
        }
        let capacities: Vec<u64> = filter.segments.iter().map(|segment| segment.capacity).collect();
        let first = BLOOM_FIRST_KEYS;
        let max = BLOOM_SEGMENT_KEYS_MAX;
        assert_eq!(capacities[..4], [first, 2 * first, 4 * first, max]);
        assert!(capacities[4..].iter().all(|&capacity| capacity == max), "{capacities:?}");
        assert_eq!(fills[0].0, 0, "the first fill writes every segment");
        assert!(fills.iter().skip(1).all(|&(_, segments, _)| segments <= 2), "{fills:?}");
        let last = fills.last().unwrap();
        assert!(last.0 >= 4, "later fills start past the full segments: {fills:?}");
        assert!((0..added).all(|n| filter.may_contain(Kind::Request, &format!("r-{n}"))));
        // A damaged or missing chunk of a segment is damage, not a smaller filter.
        let mut gap = vec![BLOOM_SEGMENT];
        gap.extend_from_slice(&9u32.to_be_bytes());
        gap.extend_from_slice(&0u32.to_be_bytes());
        cold.put(vec![(gap, versioned(&[BLOOM_SEGMENT_LAYOUT]))]).unwrap();
        assert_eq!(bloom(&cold).unwrap_err().code(), purse_core::ErrorCode::Corruption);
    }

    /// A fill before any id was added writes a filter of no segments: it reads back empty.
    #[test]
    fn an_empty_filter_reads_back_empty() {
        let cold = MemCold::default();
        cold.put(Bloom::default().tail(0).pairs()).unwrap();
        assert_eq!(bloom_read(&cold), (Bloom::default(), 0));
    }

    fn bloom_read(cold: &MemCold) -> (Bloom, usize) {
        bloom(cold).unwrap().expect("a filter")
    }

    /// A store whose filter an older binary wrote whole (`B` keys, layout 2) reads it, and the
    /// first fill after writes every segment and marks the whole filter moved, so that it is
    /// never read again, by this binary or by one that only knows whole filters.
    #[test]
    fn a_whole_filter_of_an_older_ledger_is_read_then_replaced_by_segments() {
        let cold = MemCold::default();
        let mut old = Bloom::default();
        for n in 0..3 * BLOOM_FIRST_KEYS {
            old.insert(Kind::Order, &format!("o-{n}"));
        }
        let whole: Pairs = old
            .encode()
            .chunks(VALUE_BYTES_MAX)
            .enumerate()
            .map(|(index, chunk)| {
                let mut key = vec![BLOOM];
                key.extend_from_slice(&u32::try_from(index).unwrap().to_be_bytes());
                (key, versioned(chunk))
            })
            .collect();
        assert!(whole.len() > 1);
        cold.put(whole).unwrap();
        let (mut read, held) = bloom_read(&cold);
        assert_eq!(read, old);
        assert_eq!(held, 0, "none of it is kept by segment yet");
        read.insert(Kind::Order, "new");
        cold.put(read.tail(held).pairs()).unwrap();
        assert_eq!(bloom_read(&cold).0, read);
        assert!(bloom_read(&cold).0.may_contain(Kind::Order, "new"));
        let error = whole_bloom(&cold).unwrap_err();
        assert_eq!(error.code(), purse_core::ErrorCode::Corruption, "the whole filter reads as moved");
    }

    /// A filter of the first layout (no layout byte; its first byte 0) is not read as blocked
    /// bits, which would answer "never seen" for ids it holds: it is built again from the keys.
    #[test]
    fn a_filter_of_the_first_layout_is_rebuilt_from_the_tree() {
        let cold = MemCold::default();
        let mut order = order_key("old-order");
        order.extend_from_slice(&[0, 0]);
        let mut second_chunk = order_key("old-order");
        second_chunk.extend_from_slice(&[0, 1]);
        let first_layout = versioned(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut filter = vec![BLOOM];
        filter.extend_from_slice(&0u32.to_be_bytes());
        cold.put(vec![
            (request_key("old-request"), versioned(&[1; 39])),
            (order, versioned(&[1; 8])),
            (second_chunk, vec![1, 1]),
            (filter, first_layout),
        ])
        .unwrap();
        let (rebuilt, held) = bloom(&cold).unwrap().unwrap();
        assert_eq!(held, 0);
        assert!(rebuilt.may_contain(Kind::Request, "old-request"));
        assert!(rebuilt.may_contain(Kind::Order, "old-order"));
        assert!(!rebuilt.may_contain(Kind::Order, "old-request"), "kinds stay apart");
        // A layout this code does not know is damage, not a guess.
        let mut unknown = vec![BLOOM];
        unknown.extend_from_slice(&0u32.to_be_bytes());
        cold.put(vec![(unknown, versioned(&[9, 0]))]).unwrap();
        assert_eq!(bloom(&cold).unwrap_err().code(), purse_core::ErrorCode::Corruption);
    }
}

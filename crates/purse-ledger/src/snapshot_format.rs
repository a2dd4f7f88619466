//! The snapshot file: the projections at one log position, in versioned records of their own
//! (see docs/storage-format.md, "Snapshots"). Like `record.rs`, the domain types are converted
//! by hand into private mirror records, so the domain can change without changing the disk;
//! enum variants and tags are only ever appended.
//!
//! ```text
//! header   magic "PURSESNP" | version u8 | covered sequence u64 BE | covered block CRC u32 BE
//!          | blocks u64 BE | CRC-32 of the 29 bytes before it, u32 BE              (33 bytes)
//! chunk*   length n u32 BE (1..=CHUNK_BYTES_MAX) | n bytes: the items | CRC-32 of length and items
//! trailer  0 u32 | chunks u64 BE | bytes before the trailer u64 BE | CRC-32 of every byte before it
//! ```
//!
//! The items of a chunk are a bincode sequence (varint, like block format 2: their count, then
//! each record), and the records of all chunks come in a fixed order: `Start`, the accounts, orders, rules, hold expiries, lot takes, expiring holds,
//! requests, per-account flow references, `End`. The encoder emits a chunk as soon as it holds
//! [`CHUNK_BYTES_TARGET`] bytes, so memory stays bounded however large the ledger; the decoder
//! checks each chunk's CRC before it decodes a byte of it and the file's CRC at the end, and
//! builds nothing it has not checked (`StateBuilder` re-checks the domain's cheap invariants).

use std::borrow::Cow;

use bincode::Options;
use purse_core::{Account, AccountStatus, Lot, OrderPart, RulesChange, Take};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::projection::Projections;
use crate::record::{bucket_tag, buckets_to_array, flow_type_tag, EntryRecord};

#[path = "snapshot_cold.rs"]
pub(crate) mod cold;
#[path = "snapshot_compare.rs"]
pub(crate) mod compare;
#[path = "snapshot_read.rs"]
mod read;

pub(crate) use read::{check_index, read_body, read_header};

/// The format version this code writes, and the only one it reads.
pub(crate) const FORMAT_VERSION: u8 = 1;
const MAGIC: [u8; 8] = *b"PURSESNP";
pub(crate) const HEADER_BYTES: usize = 33;
/// A chunk is emitted once it holds this many bytes of items.
pub(crate) const CHUNK_BYTES_TARGET: usize = 1 << 20;
/// The largest chunk written or read: bounds what a damaged length can make a reader allocate.
/// Only an account with hundreds of thousands of lots comes near it (one item is never split).
pub(crate) const CHUNK_BYTES_MAX: usize = 64 << 20;
/// Flow references per `AccountFlows` item at most: one busy account is many items.
const FLOW_REFS_PER_ITEM_MAX: usize = 4096;

const _: () = assert!(CHUNK_BYTES_TARGET < CHUNK_BYTES_MAX && CHUNK_BYTES_MAX < u32::MAX as usize);

/// The log position a snapshot covers: its last entry, that entry's block's CRC and how many
/// blocks the log has up to there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Covered {
    pub sequence: u64,
    pub block_checksum: u32,
    pub blocks: u64,
}

/// One record of a snapshot. Variant order is part of the format: append only.
#[derive(Debug, Serialize, Deserialize)]
enum Item<'a> {
    Start(StartRecord),
    Account(AccountRecord<'a>),
    Order(OrderRecord<'a>),
    /// A rules set, as the log stores a rules change (its sequence 0). Boxed: it is far larger
    /// than the records there are millions of (serde encodes a box as its contents).
    Rules(Box<EntryRecord<'a>>),
    /// `(HOLD flow id, expiry in Unix seconds)`.
    HoldExpiry(u64, i64),
    /// `(flow id, takes)`.
    OrderTakes(u64, Vec<TakeRecord>),
    /// `(expiry, HOLD flow id, its outer order id)`.
    OpenHoldExpiry(i64, u64, Cow<'a, str>),
    /// `(request_id, fingerprint, flow id)`.
    Request(Cow<'a, str>, [u8; 32], u64),
    /// An account's next flow references: `(sequence, order_time, flow type tag)`.
    AccountFlows(Cow<'a, str>, Vec<(u64, i64, u8)>),
    End(Counts),
    /// Right after `Start`: the orders, requests and flow references are only those held in
    /// memory; the cold store (`snapshot_cold.rs`) has the rest.
    Cold,
}

#[derive(Debug, Serialize, Deserialize)]
struct StartRecord {
    scale: u32,
    zone_offset_seconds: i32,
    last_sequence: u64,
    counts: Counts,
}

/// How many of each the snapshot holds: capacity at the start, a completeness check at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
struct Counts {
    accounts: u64,
    orders: u64,
    requests: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccountRecord<'a> {
    account_id: Cow<'a, str>,
    card_id: Option<Cow<'a, str>>,
    brand_id: Option<Cow<'a, str>>,
    balance: [i64; 3],
    held: [i64; 3],
    lifetime: [i64; 3],
    /// 0 ACTIVE, 1 FROZEN, 2 CLOSED.
    status: u8,
    open_holds: u32,
    flow_count: u64,
    lots: Vec<LotRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LotRecord {
    /// 1 GIFT, 2 PRE (as in `record.rs`).
    bucket: u8,
    expire_time: Option<i64>,
    flow_id: u64,
    index: u32,
    value: i64,
    held: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct TakeRecord {
    bucket: u8,
    expire_time: Option<i64>,
    flow_id: u64,
    index: u32,
    value: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct OrderRecord<'a> {
    outer_order_id: Cow<'a, str>,
    flow_id: u64,
    flow_type: u8,
    account: u32,
    moved: [i64; 3],
    refunded: [i64; 3],
    /// 0: none.
    reversed_by: u64,
}

const STATUSES: [AccountStatus; 3] = [AccountStatus::Active, AccountStatus::Frozen, AccountStatus::Closed];

/// How records are decoded: varint, and no record may claim more than a chunk holds.
fn options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(CHUNK_BYTES_MAX as u64)
}

/// How records are encoded: the same bytes as [`options`], without the limit, which made
/// bincode size every record in a pass of its own before writing it (a fifth of the writer's
/// pause). `close_chunk` checks each chunk's size instead.
fn encode_options() -> impl Options {
    bincode::DefaultOptions::new()
}

fn header(covered: Covered) -> [u8; HEADER_BYTES] {
    let mut bytes = [0; HEADER_BYTES];
    bytes[..8].copy_from_slice(&MAGIC);
    bytes[8] = FORMAT_VERSION;
    bytes[9..17].copy_from_slice(&covered.sequence.to_be_bytes());
    bytes[17..21].copy_from_slice(&covered.block_checksum.to_be_bytes());
    bytes[21..29].copy_from_slice(&covered.blocks.to_be_bytes());
    let checksum = crc32fast::hash(&bytes[..29]);
    bytes[29..].copy_from_slice(&checksum.to_be_bytes());
    bytes
}

fn be_u64(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().expect("4 bytes"))
}

fn encoding_failed(error: bincode::Error) -> Error {
    Error::Storage(format!("encoding a snapshot: {error}"))
}

/// Room at the front of the chunk buffer for a chunk's length (4 bytes) and its item count (a
/// varint, at most 9): a chunk is framed in place and handed out as a slice of the buffer, which
/// the next chunk reuses (a copy of each 1 MiB chunk into fresh memory was a tenth of the
/// writer's pause, in page faults and the copy).
const FRAME_ROOM: usize = 13;
/// What a chunk's buffer is made with: the target, the room, its CRC and the largest item that
/// commonly tips it over.
const CHUNK_BUFFER_BYTES: usize = CHUNK_BYTES_TARGET + 64 * 1024;

/// Frames items into chunks and hands each finished piece of the file to `emit`.
struct ChunkWriter<E> {
    emit: E,
    /// [`FRAME_ROOM`] bytes, then the items of the chunk being filled, encoded.
    items: Vec<u8>,
    /// How many.
    count: u64,
    file: crc32fast::Hasher,
    chunks: u64,
    bytes: u64,
}

impl<E: FnMut(&[u8]) -> Result<(), Error>> ChunkWriter<E> {
    fn new(emit: E) -> ChunkWriter<E> {
        let mut items = Vec::with_capacity(CHUNK_BUFFER_BYTES);
        items.resize(FRAME_ROOM, 0);
        ChunkWriter { emit, items, count: 0, file: crc32fast::Hasher::new(), chunks: 0, bytes: 0 }
    }

    fn send(file: &mut crc32fast::Hasher, bytes: &mut u64, emit: &mut E, piece: &[u8]) -> Result<(), Error> {
        file.update(piece);
        *bytes += piece.len() as u64;
        emit(piece)
    }

    fn push(&mut self, item: &Item<'_>) -> Result<(), Error> {
        encode_options().serialize_into(&mut self.items, item).map_err(encoding_failed)?;
        self.pushed()
    }

    /// Appends an item [`raw`] writes: the same bytes as [`ChunkWriter::push`] of it.
    fn push_raw(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        write(&mut self.items);
        self.pushed()
    }

    fn pushed(&mut self) -> Result<(), Error> {
        self.count += 1;
        if self.items.len() - FRAME_ROOM >= CHUNK_BYTES_TARGET {
            self.close_chunk()?;
        }
        Ok(())
    }

    /// Frames the items as one chunk: its length, then the items as a bincode sequence (their
    /// count, then each), which the reader decodes straight from the slice.
    fn close_chunk(&mut self) -> Result<(), Error> {
        if self.count == 0 {
            return Ok(());
        }
        let mut count = Vec::with_capacity(9);
        raw::varint(&mut count, self.count);
        let start = FRAME_ROOM - 4 - count.len();
        let length = self.items.len() - start - 4;
        if length > CHUNK_BYTES_MAX {
            return Err(Error::Storage(format!("a snapshot item of {length} bytes is larger than a chunk may be")));
        }
        self.items[start..start + 4].copy_from_slice(&u32::try_from(length).expect("checked above").to_be_bytes());
        self.items[start + 4..FRAME_ROOM].copy_from_slice(&count);
        let checksum = crc32fast::hash(&self.items[start..]);
        self.items.extend_from_slice(&checksum.to_be_bytes());
        self.count = 0;
        self.chunks += 1;
        Self::send(&mut self.file, &mut self.bytes, &mut self.emit, &self.items[start..])?;
        self.items.truncate(FRAME_ROOM);
        Ok(())
    }

    fn finish(mut self) -> Result<u64, Error> {
        self.close_chunk()?;
        let mut trailer = Vec::with_capacity(24);
        trailer.extend_from_slice(&0u32.to_be_bytes());
        trailer.extend_from_slice(&self.chunks.to_be_bytes());
        trailer.extend_from_slice(&self.bytes.to_be_bytes());
        let mut file = self.file.clone();
        file.update(&trailer);
        trailer.extend_from_slice(&file.finalize().to_be_bytes());
        Self::send(&mut self.file, &mut self.bytes, &mut self.emit, &trailer)?;
        Ok(self.bytes)
    }
}

fn lot_record(lot: &Lot) -> LotRecord {
    LotRecord {
        bucket: bucket_tag(lot.bucket),
        expire_time: lot.key.expire_time().map(|time| time.0),
        flow_id: lot.key.flow_id(),
        index: lot.key.index(),
        value: lot.value.minor(),
        held: lot.held.minor(),
    }
}

fn take_record(take: &Take) -> TakeRecord {
    TakeRecord {
        bucket: bucket_tag(take.bucket),
        expire_time: take.key.expire_time().map(|time| time.0),
        flow_id: take.key.flow_id(),
        index: take.key.index(),
        value: take.value.minor(),
    }
}

fn account_record(account: &Account) -> AccountRecord<'_> {
    AccountRecord {
        account_id: Cow::Borrowed(&account.account_id),
        card_id: account.card_id.as_deref().map(Cow::Borrowed),
        brand_id: account.brand_id.as_deref().map(Cow::Borrowed),
        balance: buckets_to_array(&account.balance),
        held: buckets_to_array(&account.held),
        lifetime: buckets_to_array(&account.lifetime),
        status: u8::try_from(STATUSES.iter().position(|status| *status == account.status).expect("every status"))
            .expect("3 statuses"),
        open_holds: account.open_holds,
        flow_count: account.flow_count,
        lots: account.lots.iter().map(lot_record).collect(),
    }
}

fn order_record(order: OrderPart<'_>) -> OrderRecord<'_> {
    OrderRecord {
        outer_order_id: Cow::Borrowed(order.outer_order_id),
        flow_id: order.flow_id,
        flow_type: flow_type_tag(order.flow_type),
        account: order.account,
        moved: buckets_to_array(&order.moved),
        refunded: buckets_to_array(&order.refunded),
        reversed_by: order.reversed_by.unwrap_or(0),
    }
}

/// Encodes `projections` (at a commit boundary) as a snapshot file, handing it to `emit` piece
/// by piece (the header, then each chunk, then the trailer). Returns the file's length.
/// With `cold`, the snapshot says it goes into the cold store (`Item::Cold`).
pub(crate) fn encode(
    projections: &Projections,
    cold: bool,
    emit: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<u64, Error> {
    let state = &projections.state;
    if state.mid_transfer() {
        return Err(Error::Storage("a snapshot inside a transfer (a bug: snapshots are taken between batches)".into()));
    }
    let covered = Covered {
        sequence: state.last_sequence(),
        block_checksum: projections.last_block_checksum,
        blocks: projections.blocks,
    };
    let mut writer = ChunkWriter::new(emit);
    ChunkWriter::send(&mut writer.file, &mut writer.bytes, &mut writer.emit, &header(covered))?;
    let counts = Counts {
        accounts: state.account_count() as u64,
        orders: state.orders_held() as u64,
        requests: projections.requests.len() as u64,
    };
    let config = state.config();
    writer.push(&Item::Start(StartRecord {
        scale: config.scale.decimals(),
        zone_offset_seconds: config.zone.offset_seconds(),
        last_sequence: state.last_sequence(),
        counts,
    }))?;
    if cold {
        writer.push(&Item::Cold)?;
    }
    for account in state.accounts() {
        writer.push(&Item::Account(account_record(account)))?;
    }
    for order in state.order_parts() {
        writer.push_raw(|out| raw::order(out, &order_record(order)))?;
    }
    for (brand_id, rules) in state.rules_parts() {
        let change = RulesChange { sequence: 0, brand_id: brand_id.map(str::to_owned), rules: rules.clone() };
        writer.push(&Item::Rules(Box::new(EntryRecord::rules(&change))))?;
    }
    for (flow_id, time) in state.hold_expiry_parts() {
        writer.push(&Item::HoldExpiry(flow_id, time.0))?;
    }
    for (flow_id, takes) in state.order_takes_parts() {
        writer.push_raw(|out| raw::order_takes(out, flow_id, takes.iter().map(take_record)))?;
    }
    for (time, flow_id, order_id) in state.open_hold_expiry_parts() {
        writer.push(&Item::OpenHoldExpiry(time.0, flow_id, Cow::Borrowed(order_id)))?;
    }
    for (request_id, record) in projections.requests.iter() {
        writer.push_raw(|out| raw::request(out, request_id, &record.fingerprint.0, record.flow_id))?;
    }
    for (account_id, flows) in &projections.account_flows {
        for part in flows.chunks(FLOW_REFS_PER_ITEM_MAX) {
            let refs = part.iter().map(|flow| (flow.sequence, flow.order_time.0, flow_type_tag(flow.flow_type)));
            writer.push_raw(|out| raw::account_flows(out, account_id, refs))?;
        }
    }
    writer.push(&Item::End(counts))?;
    writer.finish()
}

/// The bytes bincode (varint, as [`encode_options`]) gives the items there are millions of,
/// written directly. Through serde every field, and each of a fingerprint's 32 bytes, was a
/// call of its own, and every lot take list a vector: over half of the writer's pause for a
/// snapshot (a profile, docs/performance.md). The decoder still reads them with bincode, and
/// `tests::raw_items_are_bincode_items` holds the two to the same bytes.
mod raw {
    use super::{OrderRecord, TakeRecord};

    /// bincode's variant indices of the items written here (`Item`'s declaration order).
    pub(super) const ORDER: u64 = 2;
    pub(super) const ORDER_TAKES: u64 = 5;
    pub(super) const REQUEST: u64 = 7;
    pub(super) const ACCOUNT_FLOWS: u64 = 8;

    /// bincode 1.3's varint: one byte below 251, else a marker byte and the value little-endian
    /// in the smallest of 2, 4 or 8 bytes that holds it.
    pub(super) fn varint(out: &mut Vec<u8>, value: u64) {
        if let Some(byte) = u8::try_from(value).ok().filter(|byte| *byte < 251) {
            out.push(byte);
        } else if let Ok(value) = u16::try_from(value) {
            out.push(251);
            out.extend_from_slice(&value.to_le_bytes());
        } else if let Ok(value) = u32::try_from(value) {
            out.push(252);
            out.extend_from_slice(&value.to_le_bytes());
        } else {
            out.push(253);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A signed integer: zigzag, then [`varint`].
    fn signed(out: &mut Vec<u8>, value: i64) {
        varint(out, ((value << 1) ^ (value >> 63)) as u64);
    }

    fn text(out: &mut Vec<u8>, text: &str) {
        varint(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }

    fn amounts(out: &mut Vec<u8>, values: &[i64; 3]) {
        for value in values {
            signed(out, *value);
        }
    }

    pub(super) fn order(out: &mut Vec<u8>, order: &OrderRecord<'_>) {
        varint(out, ORDER);
        text(out, &order.outer_order_id);
        varint(out, order.flow_id);
        out.push(order.flow_type);
        varint(out, u64::from(order.account));
        amounts(out, &order.moved);
        amounts(out, &order.refunded);
        varint(out, order.reversed_by);
    }

    pub(super) fn order_takes(out: &mut Vec<u8>, flow_id: u64, takes: impl ExactSizeIterator<Item = TakeRecord>) {
        varint(out, ORDER_TAKES);
        varint(out, flow_id);
        varint(out, takes.len() as u64);
        for take in takes {
            out.push(take.bucket);
            match take.expire_time {
                None => out.push(0),
                Some(time) => {
                    out.push(1);
                    signed(out, time);
                }
            }
            varint(out, take.flow_id);
            varint(out, u64::from(take.index));
            signed(out, take.value);
        }
    }

    pub(super) fn request(out: &mut Vec<u8>, request_id: &str, fingerprint: &[u8; 32], flow_id: u64) {
        varint(out, REQUEST);
        text(out, request_id);
        out.extend_from_slice(fingerprint);
        varint(out, flow_id);
    }

    pub(super) fn account_flows(
        out: &mut Vec<u8>,
        account_id: &str,
        refs: impl ExactSizeIterator<Item = (u64, i64, u8)>,
    ) {
        varint(out, ACCOUNT_FLOWS);
        text(out, account_id);
        varint(out, refs.len() as u64);
        for (sequence, order_time, flow_type) in refs {
            varint(out, sequence);
            signed(out, order_time);
            out.push(flow_type);
        }
    }
}

#[cfg(test)]
// The test's values wrap into the narrower fields on purpose: any value is as good.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// Values at every edge of the varint's widths and of zigzag.
    const UNSIGNED: [u64; 10] = [0, 1, 250, 251, 0xFFFF, 0x1_0000, 0xFFFF_FFFF, 0x1_0000_0000, u64::MAX - 1, u64::MAX];
    const SIGNED: [i64; 10] = [0, -1, 1, -126, 125, -32_769, 40_000, i32::MIN as i64 - 1, i64::MIN, i64::MAX];

    /// `raw` wrote `raw`; bincode writes `item`: the same bytes, or the case's name.
    fn check(case: &str, item: &Item<'_>, raw: Vec<u8>) {
        let bincode = encode_options().serialize(item).expect("bincode encodes every item");
        assert_eq!(raw, bincode, "{case}: raw bytes differ from bincode's");
    }

    fn take(index: usize) -> TakeRecord {
        TakeRecord {
            bucket: 1 + (index % 2) as u8,
            expire_time: (!index.is_multiple_of(3)).then_some(SIGNED[index % SIGNED.len()]),
            flow_id: UNSIGNED[index % UNSIGNED.len()],
            index: UNSIGNED[(index + 3) % UNSIGNED.len()] as u32,
            value: SIGNED[(index + 5) % SIGNED.len()],
        }
    }

    /// A file of many chunks, each framed in place in the one buffer the one before it used (so
    /// still holding its bytes), reads back item by item, every chunk checked.
    #[test]
    fn chunks_framed_in_one_reused_buffer_read_back() {
        let mut file = Vec::new();
        let emit = |piece: &[u8]| {
            file.extend_from_slice(piece);
            Ok(())
        };
        let mut writer = ChunkWriter::new(emit);
        let header = header(Covered { sequence: 7, block_checksum: 1, blocks: 2 });
        ChunkWriter::send(&mut writer.file, &mut writer.bytes, &mut writer.emit, &header).unwrap();
        let ids: Vec<String> =
            (0..120_000u64).map(|n| format!("request-{n:x}-{}", "p".repeat((n % 40) as usize))).collect();
        for (n, id) in ids.iter().enumerate() {
            writer.push_raw(|out| raw::request(out, id, &[n as u8; 32], n as u64)).unwrap();
        }
        let chunks = writer.chunks;
        writer.finish().unwrap();
        assert!(chunks >= 4, "{chunks} chunks: the test must span several");

        let mut read = Vec::new();
        read::read_items(&mut &file[HEADER_BYTES..], &header, |item| match item {
            Item::Request(id, fingerprint, flow_id) => {
                read.push((id.to_string(), fingerprint[0], *flow_id));
                Ok(())
            }
            other => Err(format!("unexpected {other:?}")),
        })
        .unwrap();
        let wrote: Vec<_> = ids.iter().enumerate().map(|(n, id)| (id.clone(), n as u8, n as u64)).collect();
        assert_eq!(read, wrote);
    }

    #[test]
    fn raw_items_are_bincode_items() {
        let long_id = "x".repeat(70_000);
        let ids = ["", "o-1", "订单-42", long_id.as_str()];
        for (index, (unsigned, signed)) in UNSIGNED.iter().zip(SIGNED).enumerate() {
            let id = ids[index % ids.len()];
            let order = OrderRecord {
                outer_order_id: Cow::Borrowed(id),
                flow_id: *unsigned,
                flow_type: index as u8,
                account: *unsigned as u32,
                moved: [signed, signed.wrapping_add(1).wrapping_neg(), 0],
                refunded: [0, signed, SIGNED[(index + 1) % SIGNED.len()]],
                reversed_by: UNSIGNED[(index + 1) % UNSIGNED.len()],
            };
            let mut out = Vec::new();
            raw::order(&mut out, &order);
            check(&format!("order {index}"), &Item::Order(order), out);

            let mut out = Vec::new();
            raw::order_takes(&mut out, *unsigned, (0..index).map(take));
            check(&format!("takes {index}"), &Item::OrderTakes(*unsigned, (0..index).map(take).collect()), out);

            let fingerprint: [u8; 32] = std::array::from_fn(|byte| (byte * 37 + index) as u8);
            let mut out = Vec::new();
            raw::request(&mut out, id, &fingerprint, *unsigned);
            check(&format!("request {index}"), &Item::Request(Cow::Borrowed(id), fingerprint, *unsigned), out);

            let refs: Vec<(u64, i64, u8)> =
                (0..index * 3).map(|at| (UNSIGNED[at % 10], SIGNED[(at + index) % 10], at as u8)).collect();
            let mut out = Vec::new();
            raw::account_flows(&mut out, id, refs.iter().copied());
            check(&format!("flows {index}"), &Item::AccountFlows(Cow::Borrowed(id), refs), out);
        }
    }
}

//! The snapshot file: the projections at one log position, in versioned records of their own
//! (see docs/storage-format.md, "Snapshots"). Like `record.rs`, the domain types are converted
//! by hand into private mirror records, so the domain can change without changing the disk;
//! enum variants and tags are only ever appended.
//!
//! ```text
//! header   magic "PURSESNP" | version u8 | covered sequence u64 BE | covered block CRC u32 BE
//!          | blocks u64 BE | CRC-32 of the 29 bytes before it, u32 BE              (33 bytes)
//! chunk*   length n u32 BE (1..=CHUNK_BYTES_MAX) | n bytes of items | CRC-32 of length and items
//! trailer  0 u32 | chunks u64 BE | bytes before the trailer u64 BE | CRC-32 of every byte before it
//! ```
//!
//! The items of a chunk are bincode records (varint, like block format 2) back to back, in a
//! fixed order: `Start`, the accounts, orders, rules, hold expiries, lot takes, expiring holds,
//! requests, per-account flow references, `End`. The encoder emits a chunk as soon as it holds
//! [`CHUNK_BYTES_TARGET`] bytes, so memory stays bounded however large the ledger; the decoder
//! checks each chunk's CRC before it decodes a byte of it and the file's CRC at the end, and
//! builds nothing it has not checked (`StateBuilder` re-checks the domain's cheap invariants).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;

use bincode::Options;
use purse_core::{
    Account, AccountStatus, Config, Entry, FlowType, Lot, LotKey, Lots, OrderPart, RulesChange, StateBuilder, Take,
    Timestamp,
};
use purse_idempotency::{Fingerprint, Index, Record};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::projection::{CardIndex, FlowRef, Projections, ENTRIES_RESERVED_MAX};
use crate::record::{
    array_to_buckets, bucket_of_tag, bucket_tag, buckets_to_array, flow_type_of_tag, flow_type_tag, EntryRecord,
};

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
    /// A rules set, as the log stores a rules change (its sequence 0).
    Rules(EntryRecord<'a>),
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

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(CHUNK_BYTES_MAX as u64)
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

/// Reads and checks the header: the magic, then the version (a later format's header may differ
/// after it), then the CRC.
pub(crate) fn read_header(reader: &mut impl Read) -> Result<(Covered, [u8; HEADER_BYTES]), String> {
    let mut bytes = [0; HEADER_BYTES];
    reader.read_exact(&mut bytes).map_err(|error| format!("its header cannot be read ({error})"))?;
    if bytes[..8] != MAGIC {
        return Err("it is not a purse snapshot (wrong magic)".into());
    }
    if bytes[8] != FORMAT_VERSION {
        return Err(format!("its format version {} is not {FORMAT_VERSION}, the only one this purse reads", bytes[8]));
    }
    if crc32fast::hash(&bytes[..29]) != be_u32(&bytes[29..]) {
        return Err("its header fails its checksum".into());
    }
    let covered = Covered {
        sequence: be_u64(&bytes[9..17]),
        block_checksum: be_u32(&bytes[17..21]),
        blocks: be_u64(&bytes[21..29]),
    };
    Ok((covered, bytes))
}

/// An empty chunk: room for its length, then for a little more than its target of items.
fn new_chunk() -> Vec<u8> {
    let mut chunk = Vec::with_capacity(CHUNK_BYTES_TARGET + 64 * 1024);
    chunk.extend_from_slice(&[0; 4]);
    chunk
}

/// Frames items into chunks and hands each finished piece of the file to `emit`.
struct ChunkWriter<E> {
    emit: E,
    /// The chunk being filled: 4 bytes for its length, then its items.
    chunk: Vec<u8>,
    file: crc32fast::Hasher,
    chunks: u64,
    bytes: u64,
}

impl<E: FnMut(Vec<u8>) -> Result<(), Error>> ChunkWriter<E> {
    fn send(&mut self, piece: Vec<u8>) -> Result<(), Error> {
        self.file.update(&piece);
        self.bytes += piece.len() as u64;
        (self.emit)(piece)
    }

    fn push(&mut self, item: &Item<'_>) -> Result<(), Error> {
        options()
            .serialize_into(&mut self.chunk, item)
            .map_err(|error| Error::Storage(format!("encoding a snapshot: {error}")))?;
        if self.chunk.len() - 4 >= CHUNK_BYTES_TARGET {
            self.close_chunk()?;
        }
        Ok(())
    }

    fn close_chunk(&mut self) -> Result<(), Error> {
        let length = self.chunk.len() - 4;
        if length == 0 {
            return Ok(());
        }
        if length > CHUNK_BYTES_MAX {
            return Err(Error::Storage(format!("a snapshot item of {length} bytes is larger than a chunk may be")));
        }
        let mut chunk = std::mem::replace(&mut self.chunk, new_chunk());
        chunk[..4].copy_from_slice(&u32::try_from(length).expect("checked above").to_be_bytes());
        let checksum = crc32fast::hash(&chunk);
        chunk.extend_from_slice(&checksum.to_be_bytes());
        self.chunks += 1;
        self.send(chunk)
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
        self.send(trailer)?;
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
pub(crate) fn encode(projections: &Projections, emit: impl FnMut(Vec<u8>) -> Result<(), Error>) -> Result<u64, Error> {
    let state = &projections.state;
    if state.mid_transfer() {
        return Err(Error::Storage("a snapshot inside a transfer (a bug: snapshots are taken between batches)".into()));
    }
    let covered = Covered {
        sequence: state.last_sequence(),
        block_checksum: projections.last_block_checksum,
        blocks: projections.blocks,
    };
    let mut writer = ChunkWriter { emit, chunk: new_chunk(), file: crc32fast::Hasher::new(), chunks: 0, bytes: 0 };
    writer.send(header(covered).to_vec())?;
    let counts = Counts {
        accounts: state.accounts().count() as u64,
        orders: state.orders().count() as u64,
        requests: projections.requests.len() as u64,
    };
    let config = state.config();
    writer.push(&Item::Start(StartRecord {
        scale: config.scale.decimals(),
        zone_offset_seconds: config.zone.offset_seconds(),
        last_sequence: state.last_sequence(),
        counts,
    }))?;
    for account in state.accounts() {
        writer.push(&Item::Account(account_record(account)))?;
    }
    for order in state.order_parts() {
        writer.push(&Item::Order(order_record(order)))?;
    }
    for (brand_id, rules) in state.rules_parts() {
        let change = RulesChange { sequence: 0, brand_id: brand_id.map(str::to_owned), rules: rules.clone() };
        writer.push(&Item::Rules(EntryRecord::rules(&change)))?;
    }
    for (flow_id, time) in state.hold_expiry_parts() {
        writer.push(&Item::HoldExpiry(flow_id, time.0))?;
    }
    for (flow_id, takes) in state.order_takes_parts() {
        writer.push(&Item::OrderTakes(flow_id, takes.iter().map(take_record).collect()))?;
    }
    for (time, flow_id, order_id) in state.open_hold_expiry_parts() {
        writer.push(&Item::OpenHoldExpiry(time.0, flow_id, Cow::Borrowed(order_id)))?;
    }
    for (request_id, record) in projections.requests.iter() {
        writer.push(&Item::Request(Cow::Borrowed(request_id), record.fingerprint.0, record.flow_id))?;
    }
    for (account_id, flows) in &projections.account_flows {
        for part in flows.chunks(FLOW_REFS_PER_ITEM_MAX) {
            let refs =
                part.iter().map(|flow| (flow.sequence, flow.order_time.0, flow_type_tag(flow.flow_type))).collect();
            writer.push(&Item::AccountFlows(Cow::Borrowed(account_id), refs))?;
        }
    }
    writer.push(&Item::End(counts))?;
    writer.finish()
}

/// Reads the rest of a snapshot whose header [`read_header`] read (and whose position the
/// caller checked against the log) into projections. `Err` says what is wrong; nothing built
/// from a snapshot that fails any check is returned.
pub(crate) fn read_body(
    reader: &mut impl Read,
    header: &[u8; HEADER_BYTES],
    covered: Covered,
    config: Config,
) -> Result<Projections, String> {
    let mut file = crc32fast::Hasher::new();
    file.update(header);
    let mut bytes = HEADER_BYTES as u64;
    let mut chunks = 0u64;
    let mut decoder = Decoder::new(config, covered);
    let mut chunk = Vec::new();
    let cut = |error: std::io::Error| format!("it is cut short or unreadable ({error})");
    loop {
        let mut length = [0; 4];
        reader.read_exact(&mut length).map_err(cut)?;
        let items = be_u32(&length) as usize;
        if items == 0 {
            break;
        }
        if items > CHUNK_BYTES_MAX {
            return Err(format!("chunk {chunks} claims {items} bytes, more than a chunk may hold"));
        }
        chunk.clear();
        chunk.extend_from_slice(&length);
        chunk.resize(items + 4, 0);
        reader.read_exact(&mut chunk[4..]).map_err(cut)?;
        let mut checksum = [0; 4];
        reader.read_exact(&mut checksum).map_err(cut)?;
        if crc32fast::hash(&chunk) != be_u32(&checksum) {
            return Err(format!("chunk {chunks} fails its checksum"));
        }
        file.update(&chunk);
        file.update(&checksum);
        bytes += items as u64 + 8;
        chunks += 1;
        let mut rest = &chunk[4..];
        while !rest.is_empty() {
            let item: Item<'static> =
                options().deserialize_from(&mut rest).map_err(|error| format!("chunk {chunks}: {error}"))?;
            decoder.take(item).map_err(|reason| format!("chunk {chunks}: {reason}"))?;
        }
    }
    let mut trailer = [0; 20];
    reader.read_exact(&mut trailer).map_err(cut)?;
    file.update(&[0; 4]);
    file.update(&trailer[..16]);
    if be_u64(&trailer[..8]) != chunks || be_u64(&trailer[8..16]) != bytes {
        return Err("its trailer does not count the chunks and bytes it has".into());
    }
    if file.finalize() != be_u32(&trailer[16..]) {
        return Err("it fails its checksum".into());
    }
    let mut extra = [0; 1];
    if reader.read(&mut extra).map_err(cut)? != 0 {
        return Err("it has bytes after its trailer".into());
    }
    decoder.finish()
}

/// The position of each kind of item in a snapshot's fixed order.
fn phase(item: &Item<'_>) -> u8 {
    match item {
        Item::Start(_) => 0,
        Item::Account(_) => 1,
        Item::Order(_) => 2,
        Item::Rules(_) => 3,
        Item::HoldExpiry(..) => 4,
        Item::OrderTakes(..) => 5,
        Item::OpenHoldExpiry(..) => 6,
        Item::Request(..) => 7,
        Item::AccountFlows(..) => 8,
        Item::End(_) => 9,
    }
}

type AccountFlows = HashMap<String, Vec<FlowRef>, foldhash::quality::RandomState>;

/// Builds projections from a snapshot's items, in their order, checking as it goes.
struct Decoder {
    config: Config,
    covered: Covered,
    /// The phase of the last item, `None` before the first.
    phase: Option<u8>,
    start: Option<Counts>,
    state: Option<StateBuilder>,
    requests: Index,
    account_flows: AccountFlows,
    last_indexed: Option<String>,
    counts: Counts,
    end: Option<Counts>,
}

fn lot_key(expire_time: Option<i64>, flow_id: u64, index: u32) -> Result<LotKey, String> {
    LotKey::new(expire_time.map(Timestamp), flow_id, index)
        .ok_or_else(|| format!("a lot key of flow {flow_id} out of range"))
}

fn lot_bucket(tag: u8) -> Result<purse_core::Bucket, String> {
    bucket_of_tag(tag).ok_or_else(|| format!("unknown lot bucket tag {tag}"))
}

fn flow_type(tag: u8) -> Result<FlowType, String> {
    flow_type_of_tag(tag).ok_or_else(|| format!("unknown flow type tag {tag}"))
}

fn account_of(record: AccountRecord<'_>) -> Result<Account, String> {
    let lots = record
        .lots
        .into_iter()
        .map(|lot| {
            Ok(Lot {
                bucket: lot_bucket(lot.bucket)?,
                key: lot_key(lot.expire_time, lot.flow_id, lot.index)?,
                value: purse_core::Amount::from_minor(lot.value),
                held: purse_core::Amount::from_minor(lot.held),
            })
        })
        .collect::<Result<Vec<Lot>, String>>()?;
    Ok(Account {
        account_id: record.account_id.into_owned(),
        card_id: record.card_id.map(Cow::into_owned),
        brand_id: record.brand_id.map(Cow::into_owned),
        balance: array_to_buckets(record.balance),
        held: array_to_buckets(record.held),
        lifetime: array_to_buckets(record.lifetime),
        status: *STATUSES
            .get(usize::from(record.status))
            .ok_or_else(|| format!("unknown status tag {}", record.status))?,
        open_holds: record.open_holds,
        flow_count: record.flow_count,
        lots: Lots::from_lots(lots)?,
    })
}

impl Decoder {
    fn new(config: Config, covered: Covered) -> Decoder {
        Decoder {
            config,
            covered,
            phase: None,
            start: None,
            state: None,
            requests: Index::new(),
            account_flows: HashMap::default(),
            last_indexed: None,
            counts: Counts::default(),
            end: None,
        }
    }

    fn take(&mut self, item: Item<'static>) -> Result<(), String> {
        let phase = phase(&item);
        let in_order = match self.phase {
            None => phase == 0,
            Some(9) => false,
            Some(last) => phase >= last && phase != 0,
        };
        if !in_order {
            return Err(format!("a record of kind {phase} after one of kind {:?}: out of order", self.phase));
        }
        self.phase = Some(phase);
        if let Item::Start(start) = item {
            return self.start(start);
        }
        let state = self.state.as_mut().ok_or("no Start record")?;
        match item {
            Item::Start(_) => unreachable!("handled above"),
            Item::Account(record) => {
                state.account(account_of(record)?)?;
                self.counts.accounts += 1;
            }
            Item::Order(record) => {
                state.order(OrderPart {
                    outer_order_id: &record.outer_order_id,
                    flow_id: record.flow_id,
                    flow_type: flow_type(record.flow_type)?,
                    account: record.account,
                    moved: array_to_buckets(record.moved),
                    refunded: array_to_buckets(record.refunded),
                    reversed_by: (record.reversed_by != 0).then_some(record.reversed_by),
                })?;
                self.counts.orders += 1;
            }
            Item::Rules(record) => match record.into_entry()? {
                (Entry::Rules(change), _) => state.rules(change.brand_id, change.rules)?,
                (Entry::Flow(_), _) => return Err("a flow where a rules set belongs".into()),
            },
            Item::HoldExpiry(flow_id, time) => state.hold_expiry(flow_id, Timestamp(time))?,
            Item::OrderTakes(flow_id, takes) => {
                let takes = takes
                    .into_iter()
                    .map(|take| {
                        Ok(Take {
                            bucket: lot_bucket(take.bucket)?,
                            key: lot_key(take.expire_time, take.flow_id, take.index)?,
                            value: purse_core::Amount::from_minor(take.value),
                        })
                    })
                    .collect::<Result<Vec<Take>, String>>()?;
                state.order_takes(flow_id, takes)?;
            }
            Item::OpenHoldExpiry(time, flow_id, order_id) => {
                state.open_hold_expiry(Timestamp(time), flow_id, order_id.into_owned())?
            }
            Item::Request(request_id, fingerprint, flow_id) => {
                if flow_id == 0 || flow_id > self.covered.sequence {
                    return Err(format!("request {request_id:?} names flow {flow_id}, outside the log covered"));
                }
                let record = Record { fingerprint: Fingerprint(fingerprint), flow_id };
                self.requests.insert(&request_id, record).map_err(|error| error.to_string())?;
                self.counts.requests += 1;
            }
            Item::AccountFlows(account_id, refs) => self.index(account_id.into_owned(), refs)?,
            Item::End(counts) => self.end = Some(counts),
        }
        Ok(())
    }

    fn start(&mut self, start: StartRecord) -> Result<(), String> {
        let config = self.config;
        if start.scale != config.scale.decimals() || start.zone_offset_seconds != config.zone.offset_seconds() {
            return Err("it was taken of a ledger with another scale or time zone".into());
        }
        if start.last_sequence != self.covered.sequence {
            return Err(format!(
                "it holds entry {} but its header says {}",
                start.last_sequence, self.covered.sequence
            ));
        }
        let capacity = |count: u64| usize::try_from(count).unwrap_or(0).min(ENTRIES_RESERVED_MAX);
        self.state = Some(StateBuilder::new(config, capacity(start.counts.orders)));
        self.requests = Index::with_capacity(capacity(start.counts.requests));
        self.start = Some(start.counts);
        Ok(())
    }

    /// Adds flow references to an account's index; one account's come in consecutive items.
    fn index(&mut self, account_id: String, refs: Vec<(u64, i64, u8)>) -> Result<(), String> {
        let continues = self.last_indexed.as_deref() == Some(account_id.as_str());
        if !continues && self.account_flows.contains_key(&account_id) {
            return Err(format!("the flows of account {account_id:?} come in two places"));
        }
        let flows = self.account_flows.entry(account_id.clone()).or_default();
        for (sequence, order_time, tag) in refs {
            let after_last = flows.last().is_none_or(|last| last.sequence < sequence);
            if !after_last || sequence == 0 || sequence > self.covered.sequence {
                return Err(format!("account {account_id:?}: flow {sequence} out of order or outside the log covered"));
            }
            flows.push(FlowRef { sequence, order_time: Timestamp(order_time), flow_type: flow_type(tag)? });
        }
        self.last_indexed = Some(account_id);
        Ok(())
    }

    /// The projections, once every record is in and they agree with one another.
    fn finish(self) -> Result<Projections, String> {
        let end = self.end.ok_or("it has no End record")?;
        if Some(end) != self.start || end != self.counts {
            return Err(format!("it counts {end:?} but holds {:?}", self.counts));
        }
        let state = self.state.ok_or("no Start record")?.finish(self.covered.sequence)?;
        if self.account_flows.len() as u64 != self.counts.accounts {
            return Err("the per-account flow index does not cover every account".into());
        }
        let mut recorded = 0u64;
        for (account_id, flows) in &self.account_flows {
            let account =
                state.account(account_id).ok_or_else(|| format!("flows of an unknown account {account_id:?}"))?;
            if account.flow_count != flows.len() as u64 {
                return Err(format!(
                    "account {account_id:?} has {} flows but {} indexed",
                    account.flow_count,
                    flows.len()
                ));
            }
            recorded += flows.iter().filter(|flow| flow.flow_type != FlowType::TransferIn).count() as u64;
        }
        if recorded != self.counts.requests {
            return Err(format!("{} requests recorded for {recorded} flows that have one", self.counts.requests));
        }
        let cards = CardIndex::of(&state);
        Ok(Projections {
            state,
            requests: self.requests,
            account_flows: self.account_flows,
            cards,
            last_block_checksum: self.covered.block_checksum,
            blocks: self.covered.blocks,
        })
    }
}

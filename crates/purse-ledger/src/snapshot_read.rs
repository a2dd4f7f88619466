//! Reading a snapshot file (the layout is in `snapshot_format.rs`): the header, then every
//! chunk checked before a byte of it is decoded, then the trailer, with the projections built
//! from the items as they come and returned only if every check held.
//!
//! Reading, checking and decoding the chunks run on a second thread while this one builds the
//! projections (as `projection::read_log` does for the log): on two cores that nearly halves
//! the open. What the build does not keep of an item (order and request ids, which the tables
//! copy) goes back to the reading thread to be freed there, where it was allocated: freeing it
//! here made the two threads contend on the allocator's lock.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use bincode::Options;
use purse_core::{Account, Config, Entry, FlowType, Lot, LotKey, Lots, OrderPart, StateBuilder, Take, Timestamp};
use purse_idempotency::{Fingerprint, Index, Record};

use super::{
    be_u32, be_u64, options, AccountRecord, Counts, Covered, Item, StartRecord, TakeRecord, CHUNK_BYTES_MAX,
    FORMAT_VERSION, HEADER_BYTES, MAGIC, STATUSES,
};
use crate::projection::{AccountFlows, CardIndex, FlowRef, Projections, ENTRIES_RESERVED_MAX};
use crate::record::{array_to_buckets, bucket_of_tag, flow_type_of_tag, EntryRecord};

/// Decoded chunks waiting for the build at most (each about 1 MiB of items).
const CHUNKS_DECODED_AHEAD_MAX: usize = 4;

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

/// What the reading thread hands the build.
enum Decoded {
    Chunk(Vec<Item<'static>>),
    /// Every chunk and the trailer were read and checked.
    Complete,
    Failed(String),
}

/// Reads the rest of a snapshot whose header [`read_header`] read (and whose position the
/// caller checked against the log) into projections. `Err` says what is wrong; nothing built
/// from a snapshot that fails any check is returned.
pub(crate) fn read_body(
    reader: &mut (impl Read + Send),
    header: &[u8; HEADER_BYTES],
    covered: Covered,
    config: Config,
) -> Result<(Projections, bool), String> {
    let mut decoder = Decoder::new(config, covered);
    read_items(reader, header, |item| decoder.take(item))?;
    decoder.finish()
}

/// Hands every record of the rest of a snapshot to `each`, in order, while a second thread
/// reads, checks and decodes the chunks ahead. `Ok` only once every chunk and the trailer were
/// checked and `each` accepted every record.
pub(super) fn read_items(
    reader: &mut (impl Read + Send),
    header: &[u8; HEADER_BYTES],
    each: impl FnMut(&mut Item<'static>) -> Result<(), String>,
) -> Result<(), String> {
    let (sender, receiver) = sync_channel::<Decoded>(CHUNKS_DECODED_AHEAD_MAX);
    let (recycle, recycled) = channel::<Vec<Item<'static>>>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let outcome = match read_chunks(reader, header, &sender, &recycled) {
                Ok(()) => Decoded::Complete,
                Err(reason) => Decoded::Failed(reason),
            };
            let _ = sender.send(outcome);
            // The build may still send back what it took last.
            drop(sender);
            for items in recycled {
                drop(items);
            }
        });
        let taken = take_all(receiver, &recycle, each);
        drop(recycle);
        taken
    })
}

/// Hands the decoded chunks' records to `each`, until the reader says it checked them all.
fn take_all(
    receiver: Receiver<Decoded>,
    recycle: &std::sync::mpsc::Sender<Vec<Item<'static>>>,
    mut each: impl FnMut(&mut Item<'static>) -> Result<(), String>,
) -> Result<(), String> {
    let mut chunk = 0u64;
    for decoded in receiver {
        match decoded {
            Decoded::Chunk(mut items) => {
                for item in &mut items {
                    each(item).map_err(|reason| format!("chunk {chunk}: {reason}"))?;
                }
                chunk += 1;
                // The reading thread may have finished; then this one frees them.
                let _ = recycle.send(items);
            }
            Decoded::Complete => return Ok(()),
            Decoded::Failed(reason) => return Err(reason),
        }
    }
    Err("the snapshot's reading thread stopped".into())
}

/// Reads, checks and decodes every chunk and the trailer, sending each chunk's items on.
fn read_chunks(
    reader: &mut impl Read,
    header: &[u8; HEADER_BYTES],
    sender: &SyncSender<Decoded>,
    recycled: &Receiver<Vec<Item<'static>>>,
) -> Result<(), String> {
    let mut file = crc32fast::Hasher::new();
    file.update(header);
    let mut bytes = HEADER_BYTES as u64;
    let mut chunks = 0u64;
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
        let decoded: Vec<Item<'static>> =
            options().deserialize(&chunk[4..]).map_err(|error| format!("chunk {chunks}: {error}"))?;
        chunks += 1;
        if sender.send(Decoded::Chunk(decoded)).is_err() {
            return Err("the build stopped".into());
        }
        while let Ok(done) = recycled.try_recv() {
            drop(done);
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
    Ok(())
}

const END_PHASE: u8 = 10;

/// The position of each kind of item in a snapshot's fixed order.
fn phase(item: &Item<'_>) -> u8 {
    match item {
        Item::Start(_) => 0,
        Item::Cold => 1,
        Item::Account(_) => 2,
        Item::Order(_) => 3,
        Item::Rules(_) => 4,
        Item::HoldExpiry(..) => 5,
        Item::OrderTakes(..) => 6,
        Item::OpenHoldExpiry(..) => 7,
        Item::Request(..) => 8,
        Item::AccountFlows(..) => 9,
        Item::End(_) => END_PHASE,
    }
}

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
    /// The snapshot holds only what memory held; the cold store has the rest.
    cold: bool,
}

fn lot_key(expire_time: Option<i64>, flow_id: u64, index: u32) -> Result<LotKey, String> {
    LotKey::new(expire_time.map(Timestamp), flow_id, index)
        .ok_or_else(|| format!("a lot key of flow {flow_id} out of range"))
}

fn lot_bucket(tag: u8) -> Result<purse_core::Bucket, String> {
    bucket_of_tag(tag).ok_or_else(|| format!("unknown lot bucket tag {tag}"))
}

pub(super) fn flow_type(tag: u8) -> Result<FlowType, String> {
    flow_type_of_tag(tag).ok_or_else(|| format!("unknown flow type tag {tag}"))
}

/// The lot takes of a record.
pub(super) fn takes_of(takes: &[TakeRecord]) -> Result<Vec<Take>, String> {
    takes
        .iter()
        .map(|take| {
            Ok(Take {
                bucket: lot_bucket(take.bucket)?,
                key: lot_key(take.expire_time, take.flow_id, take.index)?,
                value: purse_core::Amount::from_minor(take.value),
            })
        })
        .collect()
}

/// The account of `record`, its strings moved out of it.
pub(super) fn account_of(record: &mut AccountRecord<'_>) -> Result<Account, String> {
    let lots = record
        .lots
        .iter()
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
        account_id: std::mem::take(&mut record.account_id).into_owned(),
        card_id: record.card_id.take().map(Cow::into_owned),
        brand_id: record.brand_id.take().map(Cow::into_owned),
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

/// Checks the per-account index and the number of idempotency records against the accounts:
/// every account indexed with as many flows as it has, and one record per flow but the
/// TRANSFER_INs. `partial` (memory's part only, the cold store holding the rest): an account
/// may show fewer, and the records are not counted.
pub(crate) fn check_index(
    state: &purse_core::State,
    account_flows: &AccountFlows,
    requests: u64,
    partial: bool,
) -> Result<(), String> {
    if !partial && account_flows.len() != state.accounts().count() {
        return Err("the per-account flow index does not cover every account".into());
    }
    // Every flow has its own request record except a TRANSFER_IN written with its TRANSFER_OUT;
    // a TRANSFER_IN of a transfer between partitions has its own, and the index does not say
    // which kind it is: the records lie between the two counts.
    let mut recorded = 0u64;
    let mut transfers_in = 0u64;
    for (account_id, flows) in account_flows {
        let account = state.account(account_id).ok_or_else(|| format!("flows of an unknown account {account_id:?}"))?;
        let indexed = flows.len() as u64;
        let fits = account.flow_count == indexed || (partial && account.flow_count > indexed);
        if !fits {
            return Err(format!("account {account_id:?} has {} flows but {indexed} indexed", account.flow_count));
        }
        recorded += flows.iter().filter(|flow| flow.flow_type != FlowType::TransferIn).count() as u64;
        transfers_in += flows.iter().filter(|flow| flow.flow_type == FlowType::TransferIn).count() as u64;
    }
    if !partial && !(recorded..=recorded + transfers_in).contains(&requests) {
        return Err(format!("{requests} requests recorded for {recorded} flows that have one"));
    }
    Ok(())
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
            cold: false,
        }
    }

    /// Takes one item; what it keeps it moves out, the rest stays in `item` to be freed by the
    /// reading thread (see [`read_body`]).
    fn take(&mut self, item: &mut Item<'static>) -> Result<(), String> {
        let phase = phase(item);
        let in_order = match self.phase {
            None => phase == 0,
            Some(END_PHASE) => false,
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
            Item::Rules(record) => match EntryRecord::clone(record).into_entry()? {
                (Entry::Rules(change), _) => state.rules(change.brand_id, change.rules)?,
                (Entry::Flow(_), _) => return Err("a flow where a rules set belongs".into()),
            },
            Item::HoldExpiry(flow_id, time) => state.hold_expiry(*flow_id, Timestamp(*time))?,
            Item::OrderTakes(flow_id, takes) => state.order_takes(*flow_id, takes_of(takes)?)?,
            Item::OpenHoldExpiry(time, flow_id, order_id) => {
                state.open_hold_expiry(Timestamp(*time), *flow_id, order_id.to_string())?
            }
            Item::Request(request_id, fingerprint, flow_id) => {
                let flow_id = *flow_id;
                if flow_id == 0 || flow_id > self.covered.sequence {
                    return Err(format!("request {request_id:?} names flow {flow_id}, outside the log covered"));
                }
                let record = Record { fingerprint: Fingerprint(*fingerprint), flow_id };
                self.requests.insert(request_id, record).map_err(|error| error.to_string())?;
                self.counts.requests += 1;
            }
            Item::AccountFlows(account_id, refs) => self.index(account_id, refs)?,
            Item::End(counts) => self.end = Some(*counts),
            Item::Cold => self.cold = true,
        }
        Ok(())
    }

    fn start(&mut self, start: &StartRecord) -> Result<(), String> {
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
    fn index(&mut self, account_id: &str, refs: &[(u64, i64, u8)]) -> Result<(), String> {
        let continues = self.last_indexed.as_deref() == Some(account_id);
        if !continues && self.account_flows.contains_key(account_id) {
            return Err(format!("the flows of account {account_id:?} come in two places"));
        }
        let flows = Arc::make_mut(self.account_flows.entry(account_id.to_owned()).or_default());
        for &(sequence, order_time, tag) in refs {
            let after_last = flows.last().is_none_or(|last| last.sequence < sequence);
            if !after_last || sequence == 0 || sequence > self.covered.sequence {
                return Err(format!("account {account_id:?}: flow {sequence} out of order or outside the log covered"));
            }
            flows.push(FlowRef { sequence, order_time: Timestamp(order_time), flow_type: flow_type(tag)? });
        }
        if !continues {
            self.last_indexed = Some(account_id.to_owned());
        }
        Ok(())
    }

    /// The projections, once every record is in and they agree with one another, and whether
    /// the snapshot holds only what memory held (the cold store has the rest).
    fn finish(self) -> Result<(Projections, bool), String> {
        let end = self.end.ok_or("it has no End record")?;
        if Some(end) != self.start || end != self.counts {
            return Err(format!("it counts {end:?} but holds {:?}", self.counts));
        }
        let state = self.state.ok_or("no Start record")?.finish(self.covered.sequence)?;
        check_index(&state, &self.account_flows, self.counts.requests, self.cold)?;
        let cards = CardIndex::of(&state);
        let projections = Projections {
            state,
            requests: self.requests,
            account_flows: self.account_flows,
            cards,
            cold: None,
            bloom: Default::default(),
            bloom_stored: 0,
            cold_used: false,
            last_block_checksum: self.covered.block_checksum,
            blocks: self.covered.blocks,
        };
        Ok((projections, self.cold))
    }
}

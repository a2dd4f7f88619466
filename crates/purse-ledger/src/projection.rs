//! Projections: everything the ledger derives from the log, held in memory and rebuilt by
//! folding the log on open. Balances and orders (purse-core's `State`), idempotency records,
//! the per-account flow index used for paging and time windows, and the card index.

use std::collections::HashMap;

use std::sync::Arc;

use purse_core::{Action, Command, Config, Entry, Flow, FlowType, RulesChange, State, StrTable, Timestamp};
use purse_idempotency::{Decision, Fingerprint, Index, Record};

use crate::block::Block;
use crate::error::Error;
use crate::record::EntryRecord;
use crate::snapshot_format::cold::{self, Bloom, ColdStore, Kind};
use crate::store::Store;

/// What the per-account index keeps of each flow: enough to filter without reading the log.
/// Each account's flow references, shared with a clone of the projections until either
/// changes them (`Arc::make_mut`): a snapshot is written from such a clone (`snapshot.rs`).
pub(crate) type AccountFlows = HashMap<String, Arc<Vec<FlowRef>>, foldhash::quality::RandomState>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowRef {
    pub sequence: u64,
    pub order_time: Timestamp,
    pub flow_type: FlowType,
}

/// Entries reserved for up front at most, so a damaged head cannot ask for absurd memory.
pub(crate) const ENTRIES_RESERVED_MAX: usize = 64 * 1024 * 1024;

/// Blocks decoded ahead of the fold at most, bounding memory while opening.
const DECODE_QUEUE_BLOCKS_MAX: usize = 64;

/// A block read, checked and decoded into domain entries, ready to fold.
pub(crate) struct DecodedBlock {
    pub first_sequence: u64,
    pub previous_checksum: u32,
    pub checksum: u32,
    pub entries: Vec<(Entry, Option<Fingerprint>)>,
}

/// Reads every block of the log in order and hands it, decoded, to `fold`. Reading and decoding
/// (checksums, bincode, string allocation) run on a second thread while this one folds: on two
/// cores that nearly halves the time to open. Folded blocks go back to the decoding thread to be
/// freed there: their strings were allocated by it, and glibc frees a chunk under the lock of
/// the arena that allocated it, so freeing them here made the two threads contend on every flow.
pub(crate) fn read_log(store: &Store, fold: impl FnMut(&DecodedBlock) -> Result<(), Error>) -> Result<(), Error> {
    read_log_from(store, 0, fold)
}

/// [`read_log`] from the block that starts at `first` on (the log after a snapshot).
pub(crate) fn read_log_from(
    store: &Store,
    first: u64,
    mut fold: impl FnMut(&DecodedBlock) -> Result<(), Error>,
) -> Result<(), Error> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<DecodedBlock, Error>>(DECODE_QUEUE_BLOCKS_MAX);
    let (recycle, recycled) = std::sync::mpsc::channel::<DecodedBlock>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for block in store.blocks_from(first) {
                let decoded = block.and_then(|(key, bytes)| DecodedBlock::decode(key, &bytes));
                let failed = decoded.is_err();
                if sender.send(decoded).is_err() || failed {
                    return;
                }
                while let Ok(folded) = recycled.try_recv() {
                    drop(folded);
                }
            }
        });
        for block in receiver {
            let block = block?;
            fold(&block)?;
            // The decoding thread may have finished; then this one frees it.
            let _ = recycle.send(block);
        }
        Ok(())
    })
}

impl DecodedBlock {
    /// `CORRUPTION` for this block, saying why.
    pub fn corrupt(&self, reason: String) -> Error {
        Error::Corruption(format!("block at {}: {reason}", self.first_sequence))
    }

    /// Checks that this block comes next in a log folded up to `next_sequence` whose last block
    /// had `last_checksum`: no gap, no reorder, an unbroken hash chain.
    pub fn check_follows(&self, next_sequence: u64, last_checksum: u32) -> Result<(), Error> {
        if self.first_sequence != next_sequence {
            return Err(self.corrupt(format!("expected the block to start at {next_sequence}")));
        }
        if self.previous_checksum != last_checksum {
            return Err(self.corrupt("the hash chain is broken: the previous block is not the one it follows".into()));
        }
        Ok(())
    }

    fn decode(key: u64, bytes: &[u8]) -> Result<DecodedBlock, Error> {
        let block = Block::parse(key, bytes).map_err(|reason| Error::Corruption(format!("log block: {reason}")))?;
        let entries = block
            .records()
            .map(|record| record.and_then(EntryRecord::into_entry))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|reason| Error::Corruption(format!("block at {}: {reason}", block.first_sequence)))?;
        Ok(DecodedBlock {
            first_sequence: block.first_sequence,
            previous_checksum: block.previous_checksum,
            checksum: block.checksum,
            entries,
        })
    }
}

/// `card_id` → the ids of the accounts opened with it, oldest first. Most accounts have a card,
/// so this is built to be small: card ids are the keys of a [`StrTable`] (an arena, 8 bytes of
/// hash table per card), account ids are laid back to back in chunks of their own, and only a
/// card shared by several accounts has a list. A million cards of 15-byte ids, each of one
/// 12-byte account id, take 75 bytes per card; with a `Vec<Box<str>>` per card, 139.
#[derive(Debug, Clone, Default)]
pub(crate) struct CardIndex {
    cards: StrTable<CardAccounts>,
    ids: IdArena,
    /// The second and later accounts of shared cards, by [`CardAccounts::shared`].
    shared: Vec<Vec<IdRef>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CardAccounts {
    first: IdRef,
    /// The card's list in [`CardIndex::shared`], or [`NOT_SHARED`].
    shared: u32,
}

const NOT_SHARED: u32 = u32::MAX;

impl CardIndex {
    pub fn insert(&mut self, card_id: &str, account_id: &str) {
        let id = self.ids.push(account_id);
        let position = match self.cards.insert_new(card_id, CardAccounts { first: id, shared: NOT_SHARED }) {
            Ok(_) => return,
            Err(position) => position,
        };
        let entry = self.cards.value_at_mut(position);
        if entry.shared == NOT_SHARED {
            entry.shared = u32::try_from(self.shared.len()).expect("fewer than 2^32 shared cards");
            self.shared.push(Vec::new());
        }
        self.shared[entry.shared as usize].push(id);
    }

    /// The accounts opened with `card_id`, oldest first; empty for an unknown card.
    pub fn accounts(&self, card_id: &str) -> Vec<&str> {
        let Some(entry) = self.cards.get(card_id) else { return Vec::new() };
        let shared = self.shared.get(entry.shared as usize).map_or(&[][..], Vec::as_slice);
        std::iter::once(&entry.first).chain(shared).map(|id| self.ids.get(*id)).collect()
    }

    /// The index a fold of `state` gives: every account with a card, in the order opened.
    pub fn of(state: &State) -> CardIndex {
        let mut index = CardIndex::default();
        for account in state.accounts() {
            if let Some(card_id) = &account.card_id {
                index.insert(card_id, &account.account_id);
            }
        }
        index
    }
}

/// Two indexes are equal when every card names the same accounts in the same order, however
/// their ids are laid out.
impl PartialEq for CardIndex {
    fn eq(&self, other: &CardIndex) -> bool {
        self.cards.len() == other.cards.len()
            && self.cards.iter().all(|(card_id, _)| self.accounts(card_id) == other.accounts(card_id))
    }
}

impl Eq for CardIndex {}

/// Bytes per chunk of [`IdArena`]: a full chunk is never moved again.
const ID_CHUNK_BYTES: usize = 64 * 1024;

/// Strings laid back to back in chunks that never move, addressed by [`IdRef`].
#[derive(Debug, Clone, Default)]
struct IdArena {
    chunks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdRef {
    chunk: u32,
    start: u32,
    length: u32,
}

impl IdArena {
    fn push(&mut self, text: &str) -> IdRef {
        let fits = self.chunks.last().is_some_and(|chunk| chunk.capacity() - chunk.len() >= text.len());
        if !fits {
            self.chunks.push(String::with_capacity(ID_CHUNK_BYTES.max(text.len())));
        }
        let chunk = self.chunks.last_mut().expect("a chunk was pushed above");
        let start = chunk.len();
        chunk.push_str(text);
        let number = |value: usize| u32::try_from(value).expect("ids and chunks fit u32");
        IdRef { chunk: number(self.chunks.len() - 1), start: number(start), length: number(text.len()) }
    }

    fn get(&self, id: IdRef) -> &str {
        let start = id.start as usize;
        &self.chunks[id.chunk as usize][start..start + id.length as usize]
    }
}

/// What the writer derives from the log. With a cold store attached (`snapshot_cold.rs`), the
/// orders, idempotency records and flow references the last snapshot held may be there instead
/// of in memory: `state`, `requests` and `account_flows` then hold what changed since (and the
/// orders admitted back), and every lookup goes through [`Projections::request`],
/// [`Projections::admit_orders`] and [`Projections::flow_refs`].
#[derive(Debug, Clone)]
pub(crate) struct Projections {
    pub state: State,
    pub requests: Index,
    pub account_flows: AccountFlows,
    pub cold: Option<Arc<dyn ColdStore>>,
    /// Every request and order id ever folded here or held by the cold store (a superset).
    pub bloom: Bloom,
    /// How many of `bloom`'s first segments the cold store holds as they are (full ones): the
    /// next fill writes only the segments after them.
    pub bloom_stored: usize,
    /// Whether memory let go of anything the cold store holds: until then no lookup needs it.
    pub cold_used: bool,
    /// `card_id` → the accounts opened with it, in the order they were opened. The spec does not
    /// make a card unique, so one card may name several accounts.
    pub cards: CardIndex,
    /// The checksum of the last block, which the next block chains to.
    pub last_block_checksum: u32,
    pub blocks: u64,
}

impl Projections {
    pub fn new(config: Config) -> Projections {
        Projections::with_capacity(config, 0)
    }

    /// Projections with room for `entries` log entries without growing.
    pub fn with_capacity(config: Config, entries: usize) -> Projections {
        Projections {
            state: State::with_capacity(config, entries),
            requests: Index::with_capacity(entries),
            account_flows: HashMap::default(),
            cards: CardIndex::default(),
            cold: None,
            bloom: Bloom::default(),
            bloom_stored: 0,
            cold_used: false,
            last_block_checksum: 0,
            blocks: 0,
        }
    }

    /// What a snapshot of these projections holds, as a copy a snapshot's thread encodes while
    /// the writer goes on. Cheap: the tables share their chunks and shards with these until
    /// either changes one (copy on write: `purse_core::StrTable`, the state's flow maps, the
    /// per-account references), and have no index: the copy is iterated, never looked up in
    /// (`State::unindexed_copy`). The Bloom filter and the card index, which no snapshot holds,
    /// are left out; so is the cold store, which the copy never reads.
    pub fn snapshot_copy(&self) -> Projections {
        Projections {
            state: self.state.unindexed_copy(),
            requests: self.requests.unindexed_copy(),
            account_flows: self.account_flows.clone(),
            cold: None,
            bloom: Bloom::default(),
            bloom_stored: 0,
            cold_used: self.cold_used,
            cards: CardIndex::default(),
            last_block_checksum: self.last_block_checksum,
            blocks: self.blocks,
        }
    }

    /// Moves what the writer changed while a snapshot's copy shared the tables back into them,
    /// once the copy is gone (`State::settle`).
    pub fn settle(&mut self) {
        self.state.settle();
        self.requests.settle();
    }

    /// Attaches the cold store: its Bloom filter replaces this one, and every id held in memory
    /// joins it (a snapshot's, which the stored filter may predate).
    pub fn attach_cold(&mut self, cold: Arc<dyn ColdStore>) -> Result<(), Error> {
        self.bloom_stored = 0;
        if let Some((stored, held)) = cold::bloom(cold.as_ref())? {
            self.bloom = stored;
            self.bloom_stored = held;
            self.cold_used = true;
        }
        for (request_id, _) in self.requests.iter() {
            self.bloom.insert(Kind::Request, request_id);
        }
        for (order_id, _) in self.state.orders() {
            self.bloom.insert(Kind::Order, order_id);
        }
        self.cold = Some(cold);
        Ok(())
    }

    /// The record of `request_id`: in memory, else in the cold store.
    pub fn request(&self, request_id: &str) -> Result<Option<Record>, Error> {
        if let Some(record) = self.requests.get(request_id) {
            return Ok(Some(*record));
        }
        match &self.cold {
            Some(cold) if self.cold_used && self.bloom.may_contain(Kind::Request, request_id) => {
                cold::request(cold.as_ref(), request_id)
            }
            _ => Ok(None),
        }
    }

    /// The idempotency decision for a command (see [`purse_idempotency::decide`]).
    pub fn check_request(&self, request_id: &str, fingerprint: &Fingerprint) -> Result<Decision, Error> {
        Ok(purse_idempotency::decide(self.request(request_id)?.as_ref(), fingerprint))
    }

    /// Brings every order of `ids` the cold store has and memory does not back into the state,
    /// so that the state answers for each exactly as if it held every order.
    pub fn admit_orders<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
        let Some(cold) = self.cold.as_ref().filter(|_| self.cold_used) else { return Ok(()) };
        for id in ids {
            if self.state.holds_order(id) || !self.bloom.may_contain(Kind::Order, id) {
                continue;
            }
            if let Some(order) = cold::order(cold.as_ref(), id)? {
                self.state.admit_order(order.part(id), order.expire_time, order.takes).map_err(|reason| {
                    Error::Corruption(format!("the cold store's order {id:?} does not fit the state: {reason}"))
                })?;
            }
        }
        Ok(())
    }

    /// [`Projections::admit_orders`] for the orders a command names.
    pub fn admit_for_command(&mut self, command: &Command) -> Result<(), Error> {
        let source = match &command.action {
            Action::Undeduct { original_outer_order_id: id, .. } => Some(id.as_str()),
            Action::Uncharge { src_outer_order_id: id }
            | Action::Capture { src_outer_order_id: id, .. }
            | Action::Release { src_outer_order_id: id }
            | Action::ExpireHold { src_outer_order_id: id, .. }
            | Action::TransferSettle { src_outer_order_id: id, .. }
            | Action::TransferAbort { src_outer_order_id: id } => Some(id.as_str()),
            _ => None,
        };
        self.admit_orders(std::iter::once(command.outer_order_id.as_str()).chain(source))
    }

    /// [`Projections::admit_orders`] for the orders a flow names, and (folding the log onto a
    /// snapshot) the check that its request is not one the cold store holds for another flow.
    fn admit_for_flow(&mut self, flow: &Flow) -> Result<(), Error> {
        if self.cold.is_none() {
            return Ok(());
        }
        if !flow.shares_request() && self.requests.get(&flow.request_id).is_none() {
            if let Some(record) = self.request(&flow.request_id)? {
                return Err(Error::Corruption(format!(
                    "flow {}: request_id {:?} already has flow {} in the cold store",
                    flow.flow_id, flow.request_id, record.flow_id
                )));
            }
        }
        self.admit_orders(std::iter::once(flow.outer_order_id.as_str()).chain(flow.source_order_id.as_deref()))
    }

    /// The flow references of `account_id`, in order: the cold store's, then memory's. `None`
    /// for an account the ledger does not have.
    pub fn flow_refs(&self, account_id: &str) -> Result<Option<Vec<FlowRef>>, Error> {
        if self.state.account(account_id).is_none() {
            return Ok(None);
        }
        // Until the cold store is in use (memory let go of something), memory holds every
        // reference: no need to ask the tree, as `request` and `admit_orders` do not either.
        let mut refs = match self.cold.as_ref().filter(|_| self.cold_used) {
            Some(cold) => cold::flow_refs(cold.as_ref(), account_id)?,
            None => Vec::new(),
        };
        let last = refs.last().map_or(0, |last| last.sequence);
        // After a crash while the cold store was written, both may hold the same references.
        let held = self.account_flows.get(account_id).map_or(&[][..], |refs| refs.as_slice());
        refs.extend(held.iter().filter(|reference| reference.sequence > last));
        Ok(Some(refs))
    }

    /// Drops from memory what the cold store now holds as of entry `through`: the orders no
    /// later flow changed (but open HOLDs), the records and references up to it.
    pub fn evict_through(&mut self, through: u64) {
        self.cold_used = true;
        self.state.evict_orders(through);
        let kept = self.requests.iter().filter(|(_, record)| record.flow_id > through).count();
        if kept < self.requests.len() {
            let mut requests = Index::with_capacity(kept);
            for (request_id, record) in self.requests.iter().filter(|(_, record)| record.flow_id > through) {
                requests.insert(request_id, *record).expect("ids of one index are unique");
            }
            self.requests = requests;
        }
        self.account_flows.retain(|_, refs| {
            if refs.iter().any(|reference| reference.sequence <= through) {
                Arc::make_mut(refs).retain(|reference| reference.sequence > through);
            }
            !refs.is_empty()
        });
    }

    /// Folds one flow, the writer's or the log's. On error nothing changed: the core's `apply`
    /// checks before it mutates, and the other projections follow only after it succeeded.
    pub fn fold_flow(&mut self, flow: &Flow, fingerprint: Fingerprint) -> Result<(), String> {
        // A TRANSFER_IN is written under its TRANSFER_OUT's request: the record names the OUT,
        // and `apply` checks the IN is that OUT's own.
        let recorded = !flow.shares_request();
        if let Some(record) = self.requests.get(&flow.request_id).filter(|_| recorded) {
            return Err(format!(
                "flow {}: request_id {:?} already has flow {}",
                flow.flow_id, flow.request_id, record.flow_id
            ));
        }
        if !recorded && self.requests.get(&flow.request_id) != Some(&Record { fingerprint, flow_id: flow.flow_id - 1 })
        {
            return Err(format!("flow {}: a TRANSFER_IN whose request is not its TRANSFER_OUT's", flow.flow_id));
        }
        // Only a flow of these types from a zero balance can open an account: the lookup is
        // skipped for every other flow, most CHARGEs included.
        let opens =
            flow.flow_type.opens_account() && flow.before.is_zero() && self.state.account(&flow.account_id).is_none();
        purse_core::apply(&mut self.state, flow).map_err(|error| error.to_string())?;
        if opens {
            // The card is the account's, fixed by the flow that opened it (spec §2).
            if let Some(card_id) = self.state.account(&flow.account_id).and_then(|account| account.card_id.as_deref()) {
                self.cards.insert(card_id, &flow.account_id);
            }
        }
        if recorded {
            self.requests
                .insert(&flow.request_id, Record { fingerprint, flow_id: flow.flow_id })
                .expect("checked above: the request_id is new");
            self.bloom.insert(Kind::Request, &flow.request_id);
            self.bloom.insert(Kind::Order, &flow.outer_order_id);
        }
        let reference = FlowRef { sequence: flow.flow_id, order_time: flow.order_time, flow_type: flow.flow_type };
        match self.account_flows.get_mut(&flow.account_id) {
            Some(flows) => Arc::make_mut(flows).push(reference),
            None => {
                self.account_flows.insert(flow.account_id.clone(), Arc::new(vec![reference]));
            }
        }
        Ok(())
    }

    fn fold_entry(&mut self, entry: &Entry, fingerprint: Option<Fingerprint>) -> Result<(), String> {
        match (entry, fingerprint) {
            (Entry::Flow(flow), Some(fingerprint)) => self.fold_flow(flow, fingerprint),
            (Entry::Flow(flow), None) => Err(format!("flow {} has no request fingerprint", flow.flow_id)),
            (Entry::Rules(change), _) => self.fold_rules(change),
        }
    }

    pub fn fold_rules(&mut self, change: &RulesChange) -> Result<(), String> {
        purse_core::apply_rules(&mut self.state, change).map_err(|error| error.to_string())
    }

    /// Folds the whole log from `store`, validating every block (checksum, chain, sequence)
    /// and every entry (the core's invariants, including each stored before-balance).
    pub fn load(store: &Store, config: Config, entries_expected: u64) -> Result<Projections, Error> {
        let capacity = usize::try_from(entries_expected).unwrap_or(0).min(ENTRIES_RESERVED_MAX);
        let mut projections = Projections::with_capacity(config, capacity);
        read_log(store, |block| projections.fold_block(block))?;
        if projections.state.mid_transfer() {
            return Err(Error::Corruption("the log ends between a TRANSFER_OUT and its TRANSFER_IN".into()));
        }
        Ok(projections)
    }

    /// Folds the log after what these projections hold (those of a snapshot), with the same
    /// checks as [`Projections::load`]: the first block must start right after them and chain to
    /// their last block.
    pub fn fold_tail(&mut self, store: &Store) -> Result<(), Error> {
        read_log_from(store, self.state.next_sequence(), |block| self.fold_block(block))?;
        if self.state.mid_transfer() {
            return Err(Error::Corruption("the log ends between a TRANSFER_OUT and its TRANSFER_IN".into()));
        }
        Ok(())
    }

    fn fold_block(&mut self, block: &DecodedBlock) -> Result<(), Error> {
        block.check_follows(self.state.next_sequence(), self.last_block_checksum)?;
        let corrupt = |reason: String| block.corrupt(reason);
        for (entry, fingerprint) in &block.entries {
            if let Entry::Flow(flow) = entry {
                self.admit_for_flow(flow)?;
            }
            self.fold_entry(entry, *fingerprint).map_err(corrupt)?;
        }
        self.last_block_checksum = block.checksum;
        self.blocks += 1;
        Ok(())
    }
}

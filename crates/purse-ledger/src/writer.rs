//! The writer: the one thread that owns the store and the projections.
//!
//! Callers queue requests on a bounded channel. The writer takes every request waiting (up to
//! `batch_commands_max`), decides them in order against the in-memory state, writes all the
//! accepted entries in one atomic sled batch, makes it durable, and only then answers every
//! caller of that batch. A rejected command is answered with its error and writes nothing.
//! Queries queued in the batch run after its commit, so they see only durable data.

use std::time::{SystemTime, UNIX_EPOCH};

use purse_core::{
    decide, decide_rules, Buckets, Command, Context, Decision as CoreDecision, Flow, FlowType, RuleSet, RulesChange,
    Timestamp,
};
use purse_idempotency::{Decision, Fingerprint};
use tokio::sync::{mpsc, oneshot};

use crate::block::{Block, BlockWriter};
use crate::error::Error;
use crate::head::Head;
use crate::projection::Projections;
use crate::record::EntryRecord;
use crate::snapshot::Snapshotter;
use crate::store::{Store, BATCH_BLOCKS_MAX};

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A read, run on the writer thread between batches. It sends its own answer.
pub(crate) type Query = Box<dyn FnOnce(&Writer) + Send>;

pub(crate) enum Request {
    /// Answered with the flow; the caller's task renders it, off the writer thread.
    Submit {
        command: Box<Command>,
        fingerprint: Fingerprint,
        reply: Reply<Box<CoreDecision>>,
    },
    /// A group whose commands arrive in parts on `parts` (see [`crate::GroupSender`]).
    Group {
        parts: mpsc::Receiver<GroupPart>,
        mode: GroupMode,
        reply: Reply<GroupOutcome>,
    },
    SetRules {
        brand_id: Option<String>,
        rules: RuleSet,
        reply: Reply<RuleSet>,
    },
    Query(Query),
    Close {
        reply: Reply<()>,
    },
}

/// How a group of commands is written (see [`crate::Ledger::submit_group`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMode {
    /// Every command is written, or none is: one rejection discards the whole group.
    AllOrNothing,
    /// The accepted commands are written; the rejected ones are reported.
    Partial,
    /// Nothing is written; the outcome says what would happen.
    DryRun,
}

/// What became of one command of a group. Compact on purpose: an ingestion group may hold a
/// million commands, and the caller needs ids and balances, not rendered details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupItem {
    /// A new flow (written if the group was committed).
    Written(FlowSummary),
    /// The request was a retry: the flow written for it before.
    Replayed(FlowSummary),
    /// The command had nothing to do (an opening balance for an account that exists,
    /// [`purse_core::Error::is_skip`]): nothing written, and the group goes on as if it had not
    /// been sent; an all-or-nothing group still commits.
    Skipped(purse_core::Error),
    Rejected(Error),
}

/// A flow's id and the balances around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSummary {
    pub flow_id: u64,
    pub before: purse_core::Buckets,
    pub after: purse_core::Buckets,
}

impl FlowSummary {
    fn of(flow: &Flow) -> Result<FlowSummary, Error> {
        let after = flow.after().ok_or_else(|| Error::Corruption(format!("flow {} overflows", flow.flow_id)))?;
        Ok(FlowSummary { flow_id: flow.flow_id, before: flow.before, after })
    }
}

/// The answer to [`crate::Ledger::submit_group`]: one item per command, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOutcome {
    /// Whether the group's new flows are durable in the log.
    pub committed: bool,
    pub items: Vec<GroupItem>,
}

/// What a group's sender passes to the writer.
pub(crate) enum GroupPart {
    /// The next commands, in order, each with its request fingerprint.
    Commands(Vec<(Command, Fingerprint)>),
    /// No more commands: decide whether to commit.
    End,
}

/// A group, decided but not yet answered: its items, where a replay still needs its summary.
struct Decided {
    /// A [`GroupItem::Replayed`] here holds only the flow id until the answer.
    items: Vec<GroupItem>,
    /// The positions of the replays in `items`.
    replays: Vec<usize>,
}

/// What a batch owes a caller once its commit is durable.
enum Pending {
    Written(Reply<Box<CoreDecision>>, Box<CoreDecision>),
    /// A refusal, answered as the commit's failure if the commit fails.
    Refused(Reply<Box<CoreDecision>>, Error),
    Replayed(Reply<Box<CoreDecision>>, u64),
    Group(Reply<GroupOutcome>, Decided, bool),
    Rules(Reply<RuleSet>, RuleSet),
    Query(Query),
    Close(Reply<()>),
}

/// Counters of the commit path, for `purse bench` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub batches: u64,
    pub commits: u64,
    pub entries_written: u64,
    pub requests: u64,
    pub batch_requests_max: u64,
    /// Entries of an unfinished commit (a group cut off by a crash) removed when the ledger
    /// opened; never acknowledged.
    pub unfinished_entries_dropped: u64,
    /// The longest the writer took over one batch (deciding, committing with its fsync and
    /// answering), in microseconds: the longest any other request waited behind one.
    pub batch_micros_max: u64,
}

/// Where the writer reads the time of a batch: the wall clock, or the simulator's.
pub(crate) type Clock = Box<dyn Fn() -> Timestamp + Send>;

pub(crate) struct Writer {
    store: Store,
    clock: Clock,
    pub(crate) projections: Projections,
    /// Set after a failed commit: the in-memory state is ahead of the disk, so nothing more
    /// may be answered until the ledger is reopened and rebuilt from the log.
    poisoned: Option<String>,
    pub(crate) stats: WriterStats,
    /// When to checkpoint the projections, and the checkpoints being written (snapshot.rs).
    pub(crate) snapshots: Snapshotter,
}

impl Writer {
    pub fn new(store: Store, projections: Projections) -> Writer {
        Writer {
            store,
            clock: Box::new(now),
            projections,
            poisoned: None,
            stats: WriterStats::default(),
            snapshots: Snapshotter::disabled(),
        }
    }

    /// Replaces the clock (the simulator's time).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves requests until a `Close` or until every handle is dropped.
    pub fn run(mut self, mut receiver: mpsc::Receiver<Request>, batch_commands_max: usize) {
        let mut batch = Vec::with_capacity(batch_commands_max);
        // A group always runs in a batch of its own: undoing a group that is not committed
        // refolds the durable log, which must not lose other requests' uncommitted flows.
        let mut carried: Option<Request> = None;
        loop {
            let Some(first) = carried.take().or_else(|| receiver.blocking_recv()) else {
                break;
            };
            let alone = matches!(first, Request::Group { .. });
            batch.push(first);
            while !alone && batch.len() < batch_commands_max {
                match receiver.try_recv() {
                    Ok(request @ Request::Group { .. }) => {
                        carried = Some(request);
                        break;
                    }
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            let closed = self.process(&mut batch);
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.stats.batch_micros_max = self.stats.batch_micros_max.max(micros);
            if closed {
                return;
            }
        }
        // Every handle is gone without a close: still leave the store flushed and synced.
        let _ = self.store.close();
    }

    /// Decides, commits and answers one batch. Returns whether the ledger was closed.
    pub(crate) fn process(&mut self, batch: &mut Vec<Request>) -> bool {
        self.stats.batches += 1;
        self.stats.requests += batch.len() as u64;
        self.stats.batch_requests_max = self.stats.batch_requests_max.max(batch.len() as u64);
        let now = (self.clock)();
        let mut blocks = BlockWriter::new(self.projections.last_block_checksum, self.projections.state.next_sequence());
        let mut pending = Vec::with_capacity(batch.len());
        let mut entries = 0u64;
        for request in batch.drain(..) {
            match request {
                Request::Submit { command, fingerprint, reply } => {
                    match self.submit(&command, fingerprint, now, &mut blocks) {
                        Ok(Some(decided)) => {
                            entries += entries_of(&decided);
                            pending.push(Pending::Written(reply, Box::new(decided)));
                        }
                        Ok(None) => {
                            let flow_id = self
                                .projections
                                .requests
                                .get(&command.request_id)
                                .expect("a replay has a record")
                                .flow_id;
                            pending.push(Pending::Replayed(reply, flow_id));
                        }
                        // Answered after the commit: the refusal may rest on a flow of this batch
                        // (a DUPLICATE_ORDER of an order written just before it), and if the commit
                        // fails that flow never existed.
                        Err(error) => pending.push(Pending::Refused(reply, error)),
                    }
                }
                Request::Group { parts, mode, reply } => match self.submit_group(parts, mode, now, &mut blocks) {
                    Ok((decided, committed, written)) => {
                        entries += written;
                        pending.push(Pending::Group(reply, decided, committed));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                },
                Request::SetRules { brand_id, rules, reply } => match self.set_rules(brand_id, rules, now, &mut blocks)
                {
                    Ok(change) => {
                        entries += 1;
                        pending.push(Pending::Rules(reply, change.rules));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                },
                Request::Query(query) => pending.push(Pending::Query(query)),
                Request::Close { reply } => pending.push(Pending::Close(reply)),
            }
        }
        let commit = self.commit(blocks, entries);
        let healthy = commit.is_ok() && self.poisoned.is_none();
        let closing = self.answer(pending, commit);
        // After the answers, so no caller of this batch waits for a snapshot.
        self.snapshots.after_batch(&self.projections, healthy, closing);
        closing
    }

    /// Decides one command and records its entry. `Ok(None)` is a replay of an earlier request.
    fn submit(
        &mut self,
        command: &Command,
        fingerprint: Fingerprint,
        now: Timestamp,
        blocks: &mut BlockWriter,
    ) -> Result<Option<CoreDecision>, Error> {
        let decided = self.decide_and_fold(command, fingerprint, now)?;
        if let Some(decided) = &decided {
            blocks.push(&EntryRecord::flow(&decided.flow, &fingerprint));
            if let Some(flow_in) = &decided.transfer_in {
                // In the same batch as its TRANSFER_OUT, so in the same atomic commit.
                blocks.push(&EntryRecord::flow(flow_in, &fingerprint));
            }
        }
        Ok(decided)
    }

    /// Decides one command against the projections and folds it in (both flows of a transfer).
    /// `Ok(None)` is a replay.
    fn decide_and_fold(
        &mut self,
        command: &Command,
        fingerprint: Fingerprint,
        now: Timestamp,
    ) -> Result<Option<CoreDecision>, Error> {
        self.check_not_poisoned()?;
        match self.projections.requests.check(&command.request_id, &fingerprint) {
            Decision::Fresh => {}
            Decision::Replay { .. } => return Ok(None),
            Decision::Conflict { flow_id } => {
                // spec §13: a malformed argument is named before the conflict. A replay skips
                // this: its arguments were accepted once (and a check against `now`, such as a
                // hold's expiry, must not turn a retry into another answer).
                let context = Context { sequence: self.projections.state.next_sequence(), now };
                purse_core::check_arguments(command, &context)?;
                return Err(
                    purse_idempotency::Error::Conflict { request_id: command.request_id.clone(), flow_id }.into()
                );
            }
        }
        let context = Context { sequence: self.projections.state.next_sequence(), now };
        let decided = decide(&self.projections.state, command, &context)?;
        let fold = |projections: &mut Projections, flow: &Flow| {
            projections
                .fold_flow(flow, fingerprint)
                .map_err(|reason| Error::Corruption(format!("a decided flow did not fold (a bug): {reason}")))
        };
        fold(&mut self.projections, &decided.flow)?;
        if let Some(flow_in) = &decided.transfer_in {
            if let Err(error) = fold(&mut self.projections, flow_in) {
                // The TRANSFER_OUT is folded but not its pair: the state is not one the log can
                // reach. Nothing more may be answered from it.
                self.poisoned = Some(error.to_string());
                return Err(error);
            }
        }
        Ok(Some(decided))
    }

    /// Decides a group in order. Returns what became of each command, whether the group's new
    /// flows go into this batch's commit, and how many they are. Each command is dropped once
    /// decided and each new flow kept only as a summary and its entry in `blocks`, which go to
    /// sled unfinished ([`Store::append_unfinished`]) every [`BATCH_BLOCKS_MAX`] blocks while
    /// the group may still commit: a group of a million records holds a few hundred bytes per
    /// record, and sled writes while the rest is decided. A group runs in a batch of its own:
    /// `blocks` holds nothing else, and is emptied (and sled's part removed) when the group is
    /// not committed. The commands arrive in parts while the first are decided; a sender that
    /// goes away without [`GroupPart::End`] abandons the group (nothing is committed, and the
    /// answer is an error nobody reads). `Err` is a storage failure: the ledger is then poisoned.
    fn submit_group(
        &mut self,
        mut parts: mpsc::Receiver<GroupPart>,
        mode: GroupMode,
        now: Timestamp,
        blocks: &mut BlockWriter,
    ) -> Result<(Decided, bool, u64), Error> {
        debug_assert!(blocks.is_empty(), "a group runs in a batch of its own");
        let mut written = 0u64;
        let mut decided = Decided { items: Vec::new(), replays: Vec::new() };
        let mut rejected = false;
        let first_sequence = self.projections.state.next_sequence();
        let mut unfinished_written = false;
        let mut ended = false;
        let commands = std::iter::from_fn(|| match parts.blocking_recv() {
            Some(GroupPart::Commands(commands)) => Some(commands),
            Some(GroupPart::End) => {
                ended = true;
                None
            }
            None => None,
        })
        .flatten();
        for (command, fingerprint) in commands {
            let may_commit = match mode {
                GroupMode::AllOrNothing => !rejected,
                GroupMode::Partial => true,
                GroupMode::DryRun => false,
            };
            if let Some(closed) = blocks.take_closed(if may_commit { BATCH_BLOCKS_MAX } else { usize::MAX }) {
                // Counted now; if the group is not committed, the refold below recounts.
                self.projections.blocks += closed.len() as u64;
                if let Err(error) = self.store.append_unfinished(closed) {
                    self.poisoned = Some(format!("writing part of a group: {error}"));
                    *blocks = BlockWriter::new(self.projections.last_block_checksum, first_sequence);
                    return Err(error);
                }
                unfinished_written = true;
            }
            match self.submit(&command, fingerprint, now, blocks) {
                Ok(Some(flow)) => {
                    written += entries_of(&flow);
                    decided
                        .items
                        .push(FlowSummary::of(&flow.flow).map_or_else(GroupItem::Rejected, GroupItem::Written));
                }
                Ok(None) => {
                    let flow_id =
                        self.projections.requests.get(&command.request_id).expect("a replay has a record").flow_id;
                    decided.replays.push(decided.items.len());
                    let unresolved = FlowSummary { flow_id, before: Buckets::ZERO, after: Buckets::ZERO };
                    decided.items.push(GroupItem::Replayed(unresolved));
                }
                Err(Error::Rejected(skip)) if skip.is_skip() => decided.items.push(GroupItem::Skipped(skip)),
                Err(error) => {
                    rejected = true;
                    decided.items.push(GroupItem::Rejected(error));
                }
            }
        }
        let commit = match mode {
            _ if !ended => false,
            GroupMode::AllOrNothing => !rejected,
            GroupMode::Partial => true,
            GroupMode::DryRun => false,
        };
        if commit {
            return Ok((decided, true, written));
        }
        if unfinished_written {
            if let Err(error) = self.store.remove_unfinished(first_sequence) {
                self.poisoned = Some(format!("removing part of a group that was not committed: {error}"));
            }
        }
        // Undo by refolding the durable log: a failed or dry group pays the cost of a reopen,
        // and the path that commits never copies the projections.
        if written > 0 && self.poisoned.is_none() {
            let config = self.projections.state.config();
            let sequence = self.projections.state.last_sequence() - written;
            match Projections::load(&self.store, config, sequence) {
                Ok(projections) => self.projections = projections,
                Err(error) => self.poisoned = Some(format!("restoring after a group that was not committed: {error}")),
            }
        }
        *blocks = BlockWriter::new(self.projections.last_block_checksum, self.projections.state.next_sequence());
        if !ended {
            return Err(Error::InvalidArgument(
                "the group's sender went away before finishing it; nothing was written".into(),
            ));
        }
        Ok((decided, false, 0))
    }

    fn set_rules(
        &mut self,
        brand_id: Option<String>,
        rules: RuleSet,
        now: Timestamp,
        blocks: &mut BlockWriter,
    ) -> Result<RulesChange, Error> {
        self.check_not_poisoned()?;
        let context = Context { sequence: self.projections.state.next_sequence(), now };
        let change = decide_rules(brand_id.as_deref(), rules, &context)?;
        self.projections
            .fold_rules(&change)
            .map_err(|reason| Error::Corruption(format!("a decided rules change did not fold (a bug): {reason}")))?;
        blocks.push(&EntryRecord::rules(&change));
        Ok(change)
    }

    fn commit(&mut self, blocks: BlockWriter, entries: u64) -> Result<(), Error> {
        let (blocks, last_checksum) = blocks.finish();
        if blocks.is_empty() {
            return Ok(());
        }
        let head = Head { sequence: self.projections.state.last_sequence(), block_checksum: last_checksum };
        let block_count = blocks.len() as u64;
        match self.store.append(blocks, head) {
            Ok(()) => {
                self.projections.last_block_checksum = last_checksum;
                self.projections.blocks += block_count;
                self.stats.commits += 1;
                self.stats.entries_written += entries;
                Ok(())
            }
            Err(error) => {
                self.poisoned = Some(error.to_string());
                Err(error)
            }
        }
    }

    fn answer(&mut self, pending: Vec<Pending>, commit: Result<(), Error>) -> bool {
        let mut closing = false;
        for item in pending {
            match item {
                Pending::Written(reply, flow) => {
                    let _ = reply.send(commit.clone().map(|()| flow));
                }
                Pending::Refused(reply, error) => {
                    let _ = reply.send(Err(commit.clone().err().unwrap_or(error)));
                }
                Pending::Replayed(reply, flow_id) => {
                    let _ = reply.send(commit.clone().and_then(|()| self.read_decided(flow_id)).map(Box::new));
                }
                Pending::Group(reply, decided, committed) => {
                    let _ = reply.send(self.group_outcome(decided, committed, &commit));
                }
                Pending::Rules(reply, rules) => {
                    let _ = reply.send(commit.clone().map(|()| rules));
                }
                Pending::Query(query) => query(self),
                Pending::Close(reply) => {
                    closing = true;
                    // A clean close makes everything durable, the head included, and says if it
                    // could not; a poisoned writer has nothing more to make durable.
                    let closed = self.check_not_poisoned().and_then(|()| self.store.close());
                    let _ = reply.send(closed);
                }
            }
        }
        closing
    }

    fn group_outcome(
        &self,
        decided: Decided,
        committed: bool,
        commit: &Result<(), Error>,
    ) -> Result<GroupOutcome, Error> {
        if committed {
            commit.clone()?;
        }
        let Decided { mut items, replays } = decided;
        if replays.is_empty() {
            return Ok(GroupOutcome { committed, items });
        }
        // A replay of a flow this group wrote answers from here (an uncommitted group's flows
        // are not in the log); any other from the log. Written ids increase along the group.
        let written: Vec<FlowSummary> = items
            .iter()
            .filter_map(|item| match item {
                GroupItem::Written(summary) => Some(*summary),
                _ => None,
            })
            .collect();
        for position in replays {
            let GroupItem::Replayed(unresolved) = items[position] else { unreachable!("replays name replays") };
            let summary = match written.binary_search_by_key(&unresolved.flow_id, |summary| summary.flow_id) {
                Ok(found) => Ok(written[found]),
                Err(_) => self.read_flow(unresolved.flow_id).and_then(|flow| FlowSummary::of(&flow)),
            };
            items[position] = summary.map_or_else(GroupItem::Rejected, GroupItem::Replayed);
        }
        Ok(GroupOutcome { committed, items })
    }

    pub fn check_not_poisoned(&self) -> Result<(), Error> {
        match &self.poisoned {
            Some(reason) => {
                Err(Error::Storage(format!("the ledger stopped after a failed write ({reason}); reopen it")))
            }
            None => Ok(()),
        }
    }

    /// Reads the flow with `sequence` back from the log.
    pub fn read_flow(&self, sequence: u64) -> Result<Flow, Error> {
        let not_found = || Error::NotFound(format!("no flow has flow_id {sequence}"));
        if sequence == 0 || sequence > self.projections.state.last_sequence() {
            return Err(not_found());
        }
        let (key, bytes) = self.store.block_containing(sequence)?.ok_or_else(not_found)?;
        let block = Block::parse(key, &bytes).map_err(|reason| Error::Corruption(format!("log block: {reason}")))?;
        if sequence > block.last_sequence() {
            return Err(Error::Corruption(format!("flow {sequence} is missing from the log")));
        }
        match block.entry(sequence).and_then(EntryRecord::into_entry).map_err(Error::Corruption)? {
            (purse_core::Entry::Flow(flow), _) => Ok(flow),
            (purse_core::Entry::Rules(_), _) => {
                Err(Error::NotFound(format!("{sequence} is a rules change, not a flow")))
            }
        }
    }

    /// What the command whose first flow is `flow_id` wrote: that flow, and a transfer's
    /// TRANSFER_IN right after it.
    pub fn read_decided(&self, flow_id: u64) -> Result<CoreDecision, Error> {
        let flow = self.read_flow(flow_id)?;
        let transfer_in = match flow.flow_type {
            FlowType::TransferOut => Some(Box::new(self.read_flow(flow_id + 1)?)),
            _ => None,
        };
        Ok(CoreDecision { flow, transfer_in })
    }
}

/// Log entries a decided command takes: two for a transfer.
fn entries_of(decided: &CoreDecision) -> u64 {
    1 + u64::from(decided.transfer_in.is_some())
}

/// The wall clock, read once per batch: the only place purse reads it (unless a simulator
/// replaced it, see [`Writer::set_clock`]).
fn now() -> Timestamp {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))
}

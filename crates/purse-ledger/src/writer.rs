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
use crate::pipeline::{Answer, Job, Pipeline};
use crate::projection::Projections;
use crate::record::EntryRecord;
use crate::snapshot::Snapshotter;
use crate::storage::LogReader;
use crate::store::{Store, BATCH_BLOCKS_MAX};

pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// A command's answer as the writer sends it: boxed for `submit`'s reply, unboxed inside a
/// batch's list (no allocation per command).
#[derive(Debug)]
pub(crate) enum Answered<D = Box<CoreDecision>> {
    /// Its flows.
    Decided(D),
    /// A replay, when callers read the log themselves ([`Writer::set_replays_read_by_callers`]):
    /// only its first flow's id, which the caller's own [`LogReader`] turns into the flows, so
    /// that a retry costs the writer no log read.
    Replayed(u64),
}

impl Answered {
    /// The flows, for a caller that has no [`LogReader`] (so the writer read them).
    pub fn decided(self) -> Result<Box<CoreDecision>, Error> {
        match self {
            Answered::Decided(decided) => Ok(decided),
            Answered::Replayed(flow_id) => Err(Error::Corruption(format!(
                "replay of flow {flow_id} answered by id to a caller without a log reader"
            ))),
        }
    }
}

/// A read, run on the writer thread between batches. It sends its own answer.
pub(crate) type Query = Box<dyn FnOnce(&mut Writer) + Send>;

pub(crate) enum Request {
    /// Answered with the flow; the caller's task renders it, off the writer thread.
    Submit {
        command: Box<Command>,
        fingerprint: Fingerprint,
        reply: Reply<Answered>,
    },
    /// Independent commands, each decided and answered on its own (see
    /// [`crate::Ledger::submit_batch`]), all in this batch's commit.
    Batch {
        commands: Vec<(Command, Fingerprint)>,
        reply: Reply<Vec<Result<Answered<CoreDecision>, Error>>>,
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

/// The answer to one command of [`crate::Ledger::submit_batch`]: its flows (both of a
/// transfer), or why it was refused.
pub type BatchItem = Result<CoreDecision, Error>;

/// One command of a batch request, decided but not yet answered.
// Nearly every slot is `Written`: boxing it would cost an allocation per command.
#[allow(clippy::large_enum_variant)]
enum Slot {
    Written(CoreDecision),
    /// Answered as the commit's failure if the commit fails.
    Refused(Error),
    Replayed(u64),
}

/// What a batch owes a caller once its commit is durable.
enum Pending {
    Written(Reply<Answered>, Box<CoreDecision>),
    /// A refusal, answered as the commit's failure if the commit fails.
    Refused(Reply<Answered>, Error),
    Replayed(Reply<Answered>, u64),
    Batch(Reply<Vec<Result<Answered<CoreDecision>, Error>>>, Vec<Slot>),
    Group(Reply<GroupOutcome>, Decided, bool),
    Rules(Reply<RuleSet>, RuleSet),
    Query(Query),
    Close(Reply<()>),
}

/// Counters of the commit path, for `purse bench` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Orders, idempotency records and flow references held in memory when asked (the rest is
    /// in the cold store; see docs/ARCHITECTURE.md), and the Bloom filter's bytes.
    pub orders_in_memory: u64,
    pub requests_in_memory: u64,
    pub flow_refs_in_memory: u64,
    pub bloom_bytes: u64,
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
    /// Microseconds the writer waited for requests (nothing queued).
    pub idle_micros: u64,
    /// Microseconds the writer waited on durability: for the syncer to take a batch (the
    /// pipeline full) or to finish the batches in flight, or for its own commit's sync.
    pub durability_wait_micros: u64,
    /// Replays whose flows the writer read from the log itself: only on media without a
    /// [`LogReader`] (and for groups); otherwise the caller reads them.
    pub replays_read_on_writer: u64,
    /// Batches handed to the syncer (the pipelined commit); the others were synced on the writer.
    pub batches_pipelined: u64,
}

/// Batches of fewer commands are synced on the writer (unless batches are in flight): measured on
/// two cores (docs/performance.md), handing small batches to the syncer made the default workload
/// of 1,024 single-command callers 5–15 % slower (smaller group commits, more fsyncs, one more
/// thread on the cores), while batches of thousands of commands, whose deciding takes longer
/// than their sync, are where the overlap can pay.
pub(crate) const PIPELINE_COMMANDS_MIN: u64 = 2048;

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
    /// The syncer, when the medium has one (see `pipeline.rs`); `None`: every commit is synced
    /// on this thread (the simulator's synchronous ledger, media without a syncer).
    pipeline: Option<Pipeline>,
    /// See [`Writer::set_replays_read_by_callers`].
    replays_read_by_callers: bool,
    /// When to checkpoint the projections, and the checkpoints being written (snapshot.rs).
    pub(crate) snapshots: Snapshotter,
}

/// What deciding one command came to.
enum Outcome {
    /// New flows, folded, to be written and answered after the commit (boxed: a decision is
    /// large, a replay one number).
    New(Box<CoreDecision>),
    /// A replay of an earlier request: its first flow.
    Replay { flow_id: u64 },
}

impl Writer {
    pub fn new(store: Store, projections: Projections) -> Writer {
        Writer {
            store,
            clock: Box::new(now),
            projections,
            poisoned: None,
            stats: WriterStats::default(),
            pipeline: None,
            replays_read_by_callers: false,
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
        // Without a syncer (or if it cannot start) every commit is synced here, as before.
        self.pipeline = self.store.syncer().ok().flatten().and_then(|syncer| Pipeline::start(syncer).ok());
        let mut batch = Vec::with_capacity(batch_commands_max);
        // A group always runs in a batch of its own: undoing a group that is not committed
        // refolds the durable log, which must not lose other requests' uncommitted flows.
        let mut carried: Option<Request> = None;
        loop {
            let waiting = std::time::Instant::now();
            let Some(first) = carried.take().or_else(|| receiver.blocking_recv()) else {
                break;
            };
            self.stats.idle_micros += elapsed_micros(waiting);
            let alone = matches!(first, Request::Group { .. });
            // Counted in commands: a batch request counts as many as it holds, and is never split.
            let mut commands = first.commands();
            batch.push(first);
            while !alone && commands < batch_commands_max {
                match receiver.try_recv() {
                    Ok(request @ Request::Group { .. }) => {
                        carried = Some(request);
                        break;
                    }
                    Ok(request) => {
                        commands += request.commands();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            let closed = self.process_with(&mut batch, &|| !receiver.is_empty());
            self.stats.batch_micros_max = self.stats.batch_micros_max.max(elapsed_micros(started));
            if closed {
                return;
            }
        }
        // Every handle is gone without a close: still leave the store flushed and synced.
        self.settle(true);
        let _ = self.store.close();
    }

    /// Decides, commits and answers one batch. Returns whether the ledger was closed.
    pub(crate) fn process(&mut self, batch: &mut Vec<Request>) -> bool {
        self.process_with(batch, &|| false)
    }

    /// [`Writer::process`]; `more_waiting` says whether requests came in meanwhile. With nothing
    /// in flight, the batch is synced here if none did (without a next batch to decide, the hop
    /// to the syncer only adds to the latency: a lone caller's) or if it is smaller than
    /// [`PIPELINE_COMMANDS_MIN`].
    fn process_with(&mut self, batch: &mut Vec<Request>, more_waiting: &dyn Fn() -> bool) -> bool {
        let commands = batch.iter().map(Request::commands).sum::<usize>() as u64;
        self.stats.batches += 1;
        self.stats.requests += commands;
        self.stats.batch_requests_max = self.stats.batch_requests_max.max(commands);
        // Record what the syncer made durable meanwhile (the head), or that it failed.
        self.settle(false);
        let now = (self.clock)();
        let mut blocks = BlockWriter::new(self.projections.last_block_checksum, self.projections.state.next_sequence());
        let mut pending = Vec::with_capacity(batch.len());
        let mut entries = 0u64;
        for request in batch.drain(..) {
            match request {
                Request::Submit { command, fingerprint, reply } => {
                    match self.submit(&command, fingerprint, now, &mut blocks) {
                        Ok(Outcome::New(decided)) => {
                            entries += entries_of(&decided);
                            pending.push(Pending::Written(reply, decided));
                        }
                        Ok(Outcome::Replay { flow_id }) => pending.push(Pending::Replayed(reply, flow_id)),
                        // Answered after the commit: the refusal may rest on a flow of this batch
                        // (a DUPLICATE_ORDER of an order written just before it), and if the commit
                        // fails that flow never existed.
                        Err(error) => pending.push(Pending::Refused(reply, error)),
                    }
                }
                Request::Batch { commands, reply } => {
                    let slots = commands
                        .into_iter()
                        .map(|(command, fingerprint)| match self.submit(&command, fingerprint, now, &mut blocks) {
                            Ok(Outcome::New(decided)) => {
                                entries += entries_of(&decided);
                                Slot::Written(*decided)
                            }
                            Ok(Outcome::Replay { flow_id }) => Slot::Replayed(flow_id),
                            Err(error) => Slot::Refused(error),
                        })
                        .collect();
                    pending.push(Pending::Batch(reply, slots));
                }
                Request::Group { parts, mode, reply } => {
                    // A group not committed refolds the log: every batch before it durable first.
                    self.settle(true);
                    match self.submit_group(parts, mode, now, &mut blocks) {
                        Ok((decided, committed, written)) => {
                            entries += written;
                            pending.push(Pending::Group(reply, decided, committed));
                        }
                        Err(error) => {
                            let _ = reply.send(Err(error));
                        }
                    }
                }
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
        let in_flight = self.pipeline.as_ref().map_or(0, Pipeline::in_flight);
        let alone = in_flight == 0 && !more_waiting();
        let small = in_flight == 0 && commands < PIPELINE_COMMANDS_MIN;
        if self.pipeline.is_some() && !alone && !small && !pending.iter().any(Pending::reads_projections) {
            self.hand_over(blocks, entries, pending);
            if self.snapshots.due(&mut self.projections, false) {
                // A snapshot covers durable state only: the batches in flight first.
                self.settle(true);
                self.snapshots.after_batch(&mut self.projections, self.poisoned.is_none(), false);
            }
            return false;
        }
        // Queries read the projections, close ends the ledger: all of it durable first. A lone
        // batch is synced here too.
        let waiting = std::time::Instant::now();
        self.settle(true);
        let commit = self.commit(blocks, entries);
        self.stats.durability_wait_micros += elapsed_micros(waiting);
        let healthy = commit.is_ok() && self.poisoned.is_none();
        let closing = self.answer(pending, commit);
        // After the answers, so no caller of this batch waits for a snapshot.
        self.snapshots.after_batch(&mut self.projections, healthy, closing);
        closing
    }

    /// Puts the batch's blocks into the log unsynced and hands its answers to the syncer, which
    /// sends them once the blocks are durable (see `pipeline.rs`).
    fn hand_over(&mut self, blocks: BlockWriter, entries: u64, pending: Vec<Pending>) {
        self.stats.batches_pipelined += 1;
        let (blocks, last_checksum) = blocks.finish();
        let in_flight = self.pipeline.as_ref().map_or(0, Pipeline::in_flight);
        if blocks.is_empty() && in_flight == 0 {
            // Nothing new and nothing in flight: every answer rests on durable state already.
            self.answer(pending, Ok(()));
            return;
        }
        let wrote = !blocks.is_empty();
        if wrote {
            let block_count = blocks.len() as u64;
            if let Err(error) = self.store.append_unfinished(blocks) {
                self.poisoned = Some(error.to_string());
                self.answer(pending, Err(error));
                return;
            }
            self.projections.last_block_checksum = last_checksum;
            self.projections.blocks += block_count;
            self.stats.commits += 1;
            self.stats.entries_written += entries;
        }
        let head = Head {
            sequence: self.projections.state.last_sequence(),
            block_checksum: self.projections.last_block_checksum,
        };
        // A replay reads its flow now: the blocks of this batch are in sled, and may be its own.
        let answers = pending
            .into_iter()
            .map(|item| self.resolve(item).unwrap_or_else(|_| unreachable!("checked: the batch holds only answers")))
            .collect();
        let waiting = std::time::Instant::now();
        let job = Job { head, wrote, answers };
        if let Err(error) = self.pipeline.as_mut().expect("handing over needs a pipeline").hand_over(job) {
            self.poisoned.get_or_insert_with(|| error.to_string());
        }
        self.stats.durability_wait_micros += elapsed_micros(waiting);
    }

    /// Takes note of what the syncer finished: records the furthest durable head, or poisons the
    /// writer after a failed sync. With `wait`, first waits until nothing is in flight.
    fn settle(&mut self, wait: bool) {
        let Some(pipeline) = &mut self.pipeline else { return };
        let settled = if wait { pipeline.drain() } else { pipeline.settled() };
        if let Some(reason) = settled.failed {
            self.poisoned.get_or_insert(reason);
        } else if let Some(head) = settled.head {
            if let Err(error) = self.store.write_head(head) {
                self.poisoned.get_or_insert_with(|| format!("recording the head: {error}"));
            }
        }
    }

    /// A replay's answer: its id for a caller that reads the log itself, else its flows read here.
    fn replayed<D: From<CoreDecision>>(&mut self, flow_id: u64) -> Result<Answered<D>, Error> {
        if self.replays_read_by_callers {
            return Ok(Answered::Replayed(flow_id));
        }
        self.stats.replays_read_on_writer += 1;
        self.read_decided(flow_id).map(|decided| Answered::Decided(D::from(decided)))
    }

    /// The flow a replayed request was first answered with.
    /// Decides one command and records its entry, or names the first flow of the earlier
    /// request it replays.
    fn submit(
        &mut self,
        command: &Command,
        fingerprint: Fingerprint,
        now: Timestamp,
        blocks: &mut BlockWriter,
    ) -> Result<Outcome, Error> {
        let decided = self.decide_and_fold(command, fingerprint, now)?;
        if let Outcome::New(decided) = &decided {
            blocks.push(&EntryRecord::flow(&decided.flow, &fingerprint));
            if let Some(flow_in) = &decided.transfer_in {
                // In the same batch as its TRANSFER_OUT, so in the same atomic commit.
                blocks.push(&EntryRecord::flow(flow_in, &fingerprint));
            }
        }
        Ok(decided)
    }

    /// Decides one command against the projections and folds it in (both flows of a transfer).
    /// A replay carries the flow id its record names, read once (from memory or the cold
    /// store), so answering it needs no second read that could fail.
    fn decide_and_fold(
        &mut self,
        command: &Command,
        fingerprint: Fingerprint,
        now: Timestamp,
    ) -> Result<Outcome, Error> {
        self.check_not_poisoned()?;
        match self.projections.check_request(&command.request_id, &fingerprint)? {
            Decision::Fresh => {}
            Decision::Replay { flow_id } => return Ok(Outcome::Replay { flow_id }),
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
        self.projections.admit_for_command(command)?;
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
        Ok(Outcome::New(Box::new(decided)))
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
                Ok(Outcome::New(flow)) => {
                    written += entries_of(&flow);
                    decided
                        .items
                        .push(FlowSummary::of(&flow.flow).map_or_else(GroupItem::Rejected, GroupItem::Written));
                }
                Ok(Outcome::Replay { flow_id }) => {
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
            // A fill still running would otherwise finish into the reloaded projections.
            self.snapshots.settle(&mut self.projections);
            match self.snapshots.reload(&self.store, config, sequence) {
                Ok((projections, _)) => self.projections = projections,
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
            match self.resolve(item) {
                Ok(answer) => answer.send(&commit),
                Err(Pending::Group(reply, decided, committed)) => {
                    let _ = reply.send(self.group_outcome(decided, committed, &commit));
                }
                Err(Pending::Query(query)) => query(self),
                Err(Pending::Close(reply)) => {
                    closing = true;
                    // A clean close makes everything durable, the head included, and says if it
                    // could not; a poisoned writer has nothing more to make durable.
                    let closed = self.check_not_poisoned().and_then(|()| self.store.close());
                    let _ = reply.send(closed);
                }
                Err(_) => unreachable!("resolve answers every other kind"),
            }
        }
        closing
    }

    /// What a caller gets once the commit is durable, for all but what runs on the writer
    /// (groups, queries, close), which come back as they were. A replay reads its flow from the
    /// log, so it must come after the batch's blocks are in sled.
    fn resolve(&mut self, item: Pending) -> Result<Answer, Pending> {
        Ok(match item {
            Pending::Written(reply, decided) => Answer::Flow(reply, Ok(Answered::Decided(decided))),
            Pending::Refused(reply, error) => Answer::Flow(reply, Err(error)),
            Pending::Replayed(reply, flow_id) => Answer::Flow(reply, self.replayed(flow_id)),
            Pending::Batch(reply, slots) => {
                let items = slots
                    .into_iter()
                    .map(|slot| match slot {
                        Slot::Written(decided) => Ok(Answered::Decided(decided)),
                        Slot::Refused(error) => Err(error),
                        Slot::Replayed(flow_id) => self.replayed(flow_id),
                    })
                    .collect();
                Answer::Batch(reply, items)
            }
            Pending::Rules(reply, rules) => Answer::Rules(reply, rules),
            other @ (Pending::Group(..) | Pending::Query(_) | Pending::Close(_)) => return Err(other),
        })
    }

    fn group_outcome(
        &mut self,
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
                Err(_) => {
                    self.stats.replays_read_on_writer += 1;
                    self.read_flow(unresolved.flow_id).and_then(|flow| FlowSummary::of(&flow))
                }
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
        if sequence == 0 || sequence > self.projections.state.last_sequence() {
            return Err(Error::NotFound(format!("no flow has flow_id {sequence}")));
        }
        flow_in(self.store.block_containing(sequence)?, sequence)
    }

    /// What the command whose first flow is `flow_id` wrote: that flow, and a transfer's
    /// TRANSFER_IN right after it.
    pub fn read_decided(&self, flow_id: u64) -> Result<CoreDecision, Error> {
        decided_from(|sequence| self.read_flow(sequence), flow_id)
    }

    /// Whether callers read their replays' flows themselves, through a [`LogReader`] of their
    /// own (see [`Answered::Replayed`]).
    pub fn set_replays_read_by_callers(&mut self, yes: bool) {
        self.replays_read_by_callers = yes;
    }
}

/// The flow with `sequence` in `found`, the block at or before it.
pub(crate) fn flow_in(found: Option<(u64, crate::storage::Bytes)>, sequence: u64) -> Result<Flow, Error> {
    let (key, bytes) = found.ok_or_else(|| Error::NotFound(format!("no flow has flow_id {sequence}")))?;
    let block = Block::parse(key, &bytes).map_err(|reason| Error::Corruption(format!("log block: {reason}")))?;
    if sequence > block.last_sequence() {
        return Err(Error::Corruption(format!("flow {sequence} is missing from the log")));
    }
    match block.entry(sequence).and_then(EntryRecord::into_entry).map_err(Error::Corruption)? {
        (purse_core::Entry::Flow(flow), _) => Ok(flow),
        (purse_core::Entry::Rules(_), _) => Err(Error::NotFound(format!("{sequence} is a rules change, not a flow"))),
    }
}

/// A command's flows from its first flow's id: that flow, and a transfer's TRANSFER_IN right
/// after it, each read by `read`.
pub(crate) fn decided_from(read: impl Fn(u64) -> Result<Flow, Error>, flow_id: u64) -> Result<CoreDecision, Error> {
    let flow = read(flow_id)?;
    let transfer_in = match flow.flow_type {
        FlowType::TransferOut => Some(Box::new(read(flow_id + 1)?)),
        _ => None,
    };
    Ok(CoreDecision { flow, transfer_in })
}

/// Reads a replay's flows through a [`LogReader`], off the writer.
pub(crate) fn read_decided_with(reader: &dyn LogReader, flow_id: u64) -> Result<CoreDecision, Error> {
    decided_from(|sequence| flow_in(reader.log_at_or_before(sequence)?, sequence), flow_id)
}

impl Pending {
    /// Whether this must run on the writer against durable projections: a query reads them, a
    /// close ends the ledger, a group's outcome may read the log.
    fn reads_projections(&self) -> bool {
        matches!(self, Pending::Group(..) | Pending::Query(_) | Pending::Close(_))
    }
}

impl Request {
    /// The commands this request carries, as the writer counts them against a batch's limit.
    fn commands(&self) -> usize {
        match self {
            Request::Batch { commands, .. } => commands.len().max(1),
            _ => 1,
        }
    }
}

fn elapsed_micros(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
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

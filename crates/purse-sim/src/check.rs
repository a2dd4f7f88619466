//! The checker: every batch mirrored in the plain reference model, in the writer's order, and
//! every answer and every reopened ledger compared with it.
//!
//! The mirror keeps what is *known*: the model after every acknowledged entry, the next
//! sequence, and the first flow written per request id (a retry with the same command must
//! replay it, a transfer's both flows; with another command it is IDEMPOTENCY_CONFLICT). A
//! batch whose commit failed is *tentative*: its decisions are kept aside until the restart
//! shows which prefix of them the log holds, and only then adopted. A transfer is two entries
//! (TRANSFER_OUT, then TRANSFER_IN) that are one unit: in the log both or neither.

use std::collections::BTreeMap;

use purse_core::{Action, Command, Decision as Answer, DeductionOrder, Flow, FlowType, GiftRule, RuleSet};
use purse_ledger::sim_support::{SimAnswer, SimRequest, SyncLedger};
use purse_ledger::{Error, GroupItem, GroupMode, GroupOutcome};
use purse_proptests::model::{self, DeductOrder, Kind, Model, Parts, Rules};

use crate::rng::Rng;

const STORAGE: &str = "STORAGE";
const CONFLICT: &str = "IDEMPOTENCY_CONFLICT";
/// Older flows read back at each reopen, besides every flow since the last one.
const SAMPLED_FLOWS: usize = 16;

/// What the ledger must agree with: the acknowledged state.
#[derive(Debug, Clone, Default)]
struct Known {
    model: Model,
    next_sequence: u64,
    /// The first flow written per request id (a transfer's TRANSFER_OUT), with the command
    /// that wrote it.
    requests: BTreeMap<String, (Command, u64)>,
}

/// What one flow must be, as the model decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    flow_type: FlowType,
    account_id: String,
    /// A transfer's other account.
    counterparty: Option<String>,
    before: Parts,
    affected: Parts,
    held: Parts,
}

/// An entry a commit decided.
#[derive(Debug, Clone)]
enum Entry {
    /// A command's flow (a transfer's TRANSFER_OUT), decided at `now`.
    Flow {
        command: Box<Command>,
        shape: Shape,
        now: i64,
    },
    /// A transfer's TRANSFER_IN: the entry right after its TRANSFER_OUT, never without it.
    TransferIn {
        command: Box<Command>,
        shape: Shape,
    },
    Rules {
        brand_id: Option<String>,
        rules: RuleSet,
    },
}

#[derive(Debug, Clone)]
struct Tentative {
    sequence: u64,
    entry: Entry,
    /// The group the entry belongs to: a group is in the log whole or not at all.
    group: Option<usize>,
}

/// What the log must hold at a sequence.
#[derive(Debug, Clone)]
enum Recorded {
    /// `flow`: as first answered or read back; it must read the same ever after.
    Flow {
        command: Box<Command>,
        shape: Shape,
        flow: Option<Box<Flow>>,
    },
    Rules,
}

/// What one request (or one command of a group) must get.
#[derive(Debug, Clone)]
enum Expected {
    /// The command's flow, and a transfer's TRANSFER_IN at the next sequence.
    Written {
        sequence: u64,
        first: Box<Shape>,
        second: Option<Box<Shape>>,
    },
    /// A retry: the first answer again, from this flow (a transfer's: and the one after it).
    Replayed {
        flow_id: u64,
        transfer: bool,
    },
    Rejected(&'static str),
    /// Nothing to do (an EXPIRE with nothing expired): a group skips it, a request of its own
    /// is refused with INVALID_ARGUMENT; nothing is written either way.
    Skipped,
}

/// Counts of the answers seen, for the run's summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub written: u64,
    pub replayed: u64,
    pub conflicts: u64,
    pub rejected: u64,
    pub indeterminate: u64,
    pub groups_committed: u64,
    pub groups_dropped: u64,
    pub adopted: u64,
    pub reopens: u64,
    /// Flows in the log (acknowledged or adopted), per flow type, in [`FlowType::ALL`] order.
    pub flows: [u64; FlowType::ALL.len()],
    /// Definitive refusals per error code (conflicts included).
    pub refused: BTreeMap<&'static str, u64>,
    /// spec §11 in the log: CHARGEs and IMPORTs written with a lot expiry given, the sweep's
    /// RELEASEs, and the sweep's EXPIREs that had nothing to take.
    pub expiring_credits: u64,
    pub sweep_releases: u64,
    pub expires_skipped: u64,
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        self.written += other.written;
        self.replayed += other.replayed;
        self.conflicts += other.conflicts;
        self.rejected += other.rejected;
        self.indeterminate += other.indeterminate;
        self.groups_committed += other.groups_committed;
        self.groups_dropped += other.groups_dropped;
        self.adopted += other.adopted;
        self.reopens += other.reopens;
        for (mine, theirs) in self.flows.iter_mut().zip(other.flows) {
            *mine += theirs;
        }
        for (code, count) in &other.refused {
            *self.refused.entry(code).or_default() += count;
        }
        self.expiring_credits += other.expiring_credits;
        self.sweep_releases += other.sweep_releases;
        self.expires_skipped += other.expires_skipped;
    }

    /// `expiry: …`, spec §11's coverage: credits with an expiry, the sweep's flows, CLEARs.
    pub fn expiry_line(&self) -> String {
        format!(
            "expiry: credits with an expiry={} EXPIRE={} EXPIRE skipped={} sweep RELEASE={} CLEAR={}",
            self.expiring_credits,
            self.flows_of(FlowType::Expire),
            self.expires_skipped,
            self.sweep_releases,
            self.flows_of(FlowType::Clear)
        )
    }

    /// How many flows of `flow_type` the log took.
    pub fn flows_of(&self, flow_type: FlowType) -> u64 {
        self.flows[flow_index(flow_type)]
    }

    /// The flow types no command wrote.
    pub fn never_written(&self) -> Vec<FlowType> {
        FlowType::ALL.into_iter().filter(|flow_type| self.flows_of(*flow_type) == 0).collect()
    }

    /// `flows: CHARGE=12 … TRANSFER_IN=3; refused: ACCOUNT_CLOSED=2 …`, the commands' coverage.
    pub fn line(&self) -> String {
        let flows: Vec<String> = FlowType::ALL
            .iter()
            .map(|flow_type| format!("{}={}", flow_type.as_str(), self.flows_of(*flow_type)))
            .collect();
        let refused: Vec<String> = self.refused.iter().map(|(code, count)| format!("{code}={count}")).collect();
        format!("flows: {}; refused: {}", flows.join(" "), refused.join(" "))
    }

    fn refuse(&mut self, code: &'static str) {
        if code == CONFLICT {
            self.conflicts += 1;
        } else {
            self.rejected += 1;
        }
        *self.refused.entry(code).or_default() += 1;
    }
}

fn flow_index(flow_type: FlowType) -> usize {
    FlowType::ALL.iter().position(|known| *known == flow_type).expect("every flow type is in ALL")
}

/// The flow type of the model's kind, by its spec name.
fn flow_type(kind: Kind) -> FlowType {
    FlowType::ALL.into_iter().find(|flow_type| flow_type.as_str() == kind.name()).expect("the same names")
}

#[derive(Debug, Default)]
pub struct Mirror {
    known: Known,
    /// Every acknowledged or adopted entry, by sequence.
    log: BTreeMap<u64, Recorded>,
    tentative: Vec<Tentative>,
    /// Flows answered in the writer batch being checked, until they are recorded.
    answered: BTreeMap<u64, Box<Flow>>,
    groups: usize,
    /// The log was read back up to here at the last reopen.
    checked_up_to: u64,
    /// The first definitive answer per request id: a flow id, or a rejection code.
    first_answers: BTreeMap<String, Result<u64, &'static str>>,
    pub tally: Tally,
}

/// The requests of a batch that got no definitive answer, and whether a commit failed.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub indeterminate: Vec<usize>,
    pub failed: bool,
}

impl Mirror {
    pub fn new() -> Mirror {
        Mirror { known: Known { next_sequence: 1, ..Known::default() }, ..Mirror::default() }
    }

    /// Mirrors one `SyncLedger::batch` and checks its answers. It splits the requests into the
    /// writer's batches as `SyncLedger` does: a group alone, the requests between groups
    /// together; `times` holds the time each of those batches read from the clock.
    pub fn batch(
        &mut self,
        requests: &[SimRequest],
        answers: &[SimAnswer],
        times: &[i64],
    ) -> Result<BatchOutcome, String> {
        if requests.len() != answers.len() {
            return Err(format!("{} requests got {} answers", requests.len(), answers.len()));
        }
        let mut segments = Vec::new();
        let mut start = 0;
        while start < requests.len() {
            let alone = matches!(requests[start], SimRequest::Group(..));
            let end = if alone {
                start + 1
            } else {
                (start..requests.len())
                    .find(|&i| matches!(requests[i], SimRequest::Group(..)))
                    .unwrap_or(requests.len())
            };
            segments.push(start..end);
            start = end;
        }
        if segments.len() != times.len() {
            return Err(format!("{} writer batches read the clock {} times", segments.len(), times.len()));
        }
        let mut outcome = BatchOutcome::default();
        for (segment, &now) in segments.into_iter().zip(times) {
            if outcome.failed {
                // The writer is poisoned: it refuses everything without deciding.
                for index in segment {
                    expect_refused(&answers[index])
                        .map_err(|why| format!("request {index} after a failed commit: {why}"))?;
                    outcome.indeterminate.push(index);
                }
                continue;
            }
            let failed = answers[segment.clone()].iter().any(has_storage_error);
            let mut work = if failed { self.known.clone() } else { std::mem::take(&mut self.known) };
            let mut entries = Vec::new();
            let mut checked: Result<(), String> = Ok(());
            for index in segment {
                match self.request(&mut work, &mut entries, &requests[index], &answers[index], failed, now) {
                    Ok(true) => outcome.indeterminate.push(index),
                    Ok(false) => {}
                    Err(why) => {
                        checked = Err(format!("request {index} ({}): {why}", describe(&requests[index])));
                        break;
                    }
                }
            }
            if failed {
                if entries.is_empty() {
                    checked = checked.and(Err("a storage error in a writer batch that wrote nothing".into()));
                }
                self.tentative = entries;
                outcome.failed = true;
            } else {
                for entry in entries {
                    self.record(entry);
                }
                self.known = work;
            }
            self.answered.clear();
            checked?;
        }
        Ok(outcome)
    }

    /// Mirrors and checks one request. `Ok(true)`: the answer was not definitive.
    fn request(
        &mut self,
        work: &mut Known,
        entries: &mut Vec<Tentative>,
        request: &SimRequest,
        answer: &SimAnswer,
        failed: bool,
        now: i64,
    ) -> Result<bool, String> {
        match (request, answer) {
            (SimRequest::Submit(command), SimAnswer::Submit(got)) => {
                let expected = decide(work, entries, command, None, now);
                self.submit(command, &expected, got, failed, entries)
            }
            (SimRequest::SetRules(brand_id, rules), SimAnswer::Rules(got)) => {
                let sequence = work.next_sequence;
                work.next_sequence += 1;
                work.model.set_rules(brand_id.as_deref(), model_rules(rules));
                let entry = Entry::Rules { brand_id: brand_id.clone(), rules: rules.clone() };
                entries.push(Tentative { sequence, entry, group: None });
                match got {
                    Err(error) if failed && error.code().as_str() == STORAGE => Ok(true),
                    Ok(answered) if !failed && answered == rules => Ok(false),
                    other => Err(format!("rules change {sequence}: got {other:?}")),
                }
            }
            (SimRequest::Group(commands, mode), SimAnswer::Group(got)) => {
                self.groups += 1;
                self.group(work, entries, commands, *mode, got, failed, now)
            }
            _ => Err(format!("the answer {answer:?} is not of the request's kind")),
        }
    }

    fn submit(
        &mut self,
        command: &Command,
        expected: &Expected,
        got: &Result<Box<Answer>, Error>,
        failed: bool,
        entries: &[Tentative],
    ) -> Result<bool, String> {
        match (expected, got) {
            // A refusal, too, is answered after its batch's commit, as the commit's failure when it
            // fails (it may rest on a flow of that batch): the request is retried like a write.
            (
                Expected::Written { .. } | Expected::Replayed { .. } | Expected::Rejected(_) | Expected::Skipped,
                Err(error),
            ) if failed && code(error) == STORAGE => {
                self.tally.indeterminate += 1;
                Ok(true)
            }
            (Expected::Written { sequence, first, second }, Ok(answer)) if !failed => {
                check_flow(&answer.flow, *sequence, command, first)?;
                match (second, &answer.transfer_in) {
                    (None, None) => {}
                    (Some(shape), Some(flow)) => check_flow(flow, sequence + 1, command, shape)?,
                    (shape, flow) => return Err(format!("expected the TRANSFER_IN {shape:?}, got {flow:?}")),
                }
                self.tally.written += 1;
                self.first_answers.entry(command.request_id.clone()).or_insert(Ok(*sequence));
                self.answered.insert(*sequence, Box::new(answer.flow.clone()));
                if let Some(flow) = &answer.transfer_in {
                    self.answered.insert(sequence + 1, flow.clone());
                }
                Ok(false)
            }
            (Expected::Replayed { flow_id, transfer }, Ok(answer)) if !failed => {
                self.check_replay(*flow_id, *transfer, answer, entries)?;
                self.tally.replayed += 1;
                Ok(false)
            }
            (Expected::Rejected(wanted), Err(error)) if code(error) == *wanted => {
                self.tally.refuse(wanted);
                self.first_answers.entry(command.request_id.clone()).or_insert(Err(wanted));
                Ok(false)
            }
            (Expected::Skipped, Err(Error::Rejected(error))) if error.is_skip() => {
                self.tally.expires_skipped += 1;
                Ok(false)
            }
            _ => Err(format!("expected {expected:?}, got {}", show(got))),
        }
    }

    /// A replay must return the first answer: the same flows, as acknowledged (a transfer's
    /// both, never only its TRANSFER_OUT).
    fn check_replay(&self, flow_id: u64, transfer: bool, answer: &Answer, entries: &[Tentative]) -> Result<(), String> {
        if answer.flow.flow_id != flow_id {
            return Err(format!(
                "a retry replayed flow {} instead of the first answer, flow {flow_id}",
                answer.flow.flow_id
            ));
        }
        if transfer != answer.transfer_in.is_some() {
            return Err(format!(
                "a retry of flow {flow_id} replayed {} flows, the first answer had {}",
                1 + usize::from(answer.transfer_in.is_some()),
                1 + usize::from(transfer)
            ));
        }
        let flows = std::iter::once((flow_id, &answer.flow))
            .chain(answer.transfer_in.iter().map(|flow| (flow_id + 1, &**flow)));
        for (sequence, flow) in flows {
            let (command, shape, first) = match self.log.get(&sequence) {
                Some(Recorded::Flow { command, shape, flow }) => (command, shape, flow.as_ref()),
                Some(Recorded::Rules) => return Err(format!("a retry replayed rules change {sequence} as {flow:?}")),
                // A flow of this writer batch, answered just before.
                None => match entries.iter().find(|entry| entry.sequence == sequence).map(|entry| &entry.entry) {
                    Some(Entry::Flow { command, shape, .. } | Entry::TransferIn { command, shape }) => {
                        (command, shape, self.answered.get(&sequence))
                    }
                    _ => return Err(format!("a retry replayed flow {sequence}, which was never decided")),
                },
            };
            check_flow(flow, sequence, command, shape).map_err(|why| format!("a retry: {why}"))?;
            if let Some(first) = first.filter(|first| ***first != *flow) {
                return Err(format!("a retry replayed flow {sequence} as {flow:?}, first answered as {first:?}"));
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn group(
        &mut self,
        work: &mut Known,
        entries: &mut Vec<Tentative>,
        commands: &[Command],
        mode: GroupMode,
        got: &Result<GroupOutcome, Error>,
        failed: bool,
        now: i64,
    ) -> Result<bool, String> {
        let group = Some(self.groups);
        // Decided on a copy unless the ledger says it committed the group: the model's changes
        // of a group that is not committed are thrown away, and copying the model costs.
        let ledger_committed = got.as_ref().map_or(true, |outcome| outcome.committed);
        let mut trial = if ledger_committed { std::mem::take(work) } else { work.clone() };
        let mut trial_entries = Vec::new();
        let expected: Vec<Expected> =
            commands.iter().map(|command| decide(&mut trial, &mut trial_entries, command, group, now)).collect();
        let rejected = expected.iter().any(|item| matches!(item, Expected::Rejected(_)));
        let committed = match mode {
            GroupMode::AllOrNothing => !rejected,
            GroupMode::Partial => true,
            GroupMode::DryRun => false,
        };
        if ledger_committed {
            *work = trial;
            entries.append(&mut trial_entries);
        }
        let outcome = match got {
            Err(error) if failed && committed && code(error) == STORAGE => {
                self.tally.indeterminate += 1;
                return Ok(true);
            }
            Ok(outcome) if outcome.committed == committed && (!failed || !committed) => outcome,
            other => return Err(format!("expected a group committed={committed}, got {other:?}")),
        };
        if outcome.items.len() != expected.len() {
            return Err(format!("{} commands, {} items", expected.len(), outcome.items.len()));
        }
        for (position, (item, wanted)) in outcome.items.iter().zip(&expected).enumerate() {
            self.group_item(item, wanted).map_err(|why| format!("group item {position}: {why}"))?;
            match wanted {
                Expected::Rejected(code) => self.tally.refuse(code),
                Expected::Skipped => self.tally.expires_skipped += 1,
                _ => {}
            }
        }
        if committed {
            self.tally.groups_committed += 1;
        } else {
            self.tally.groups_dropped += 1;
        }
        Ok(false)
    }

    /// A group item names a transfer by its TRANSFER_OUT; its TRANSFER_IN is read back at the
    /// next reopen.
    fn group_item(&self, item: &GroupItem, wanted: &Expected) -> Result<(), String> {
        let fits = match (item, wanted) {
            (GroupItem::Written(summary), Expected::Written { sequence, first, .. }) => {
                summary.flow_id == *sequence
                    && parts(&summary.before) == first.before
                    && parts(&summary.after) == add(first.before, first.affected)
            }
            (GroupItem::Replayed(summary), Expected::Replayed { flow_id, .. }) => summary.flow_id == *flow_id,
            (GroupItem::Rejected(error), Expected::Rejected(wanted)) => code(error) == *wanted,
            (GroupItem::Skipped(error), Expected::Skipped) => error.is_skip(),
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(format!("expected {wanted:?}, got {item:?}"))
        }
    }

    /// An entry is acknowledged: the log must hold it from now on.
    fn record(&mut self, tentative: Tentative) {
        let recorded = match tentative.entry {
            Entry::Flow { command, shape, .. } | Entry::TransferIn { command, shape } => {
                self.tally.flows[flow_index(shape.flow_type)] += 1;
                let credit = matches!(shape.flow_type, FlowType::Charge | FlowType::Import);
                if credit && (command.gift_expire_time.is_some() || command.pre_expire_time.is_some()) {
                    self.tally.expiring_credits += 1;
                }
                if matches!(command.action, Action::ExpireHold { .. }) {
                    self.tally.sweep_releases += 1;
                }
                Recorded::Flow { command, shape, flow: self.answered.remove(&tentative.sequence) }
            }
            Entry::Rules { .. } => Recorded::Rules,
        };
        self.log.insert(tentative.sequence, recorded);
    }
}

impl Mirror {
    /// After a reopen: the log holds every acknowledged entry unchanged, then exactly a prefix of
    /// the failed commit's decisions (never part of a group, never a transfer's TRANSFER_OUT
    /// without its TRANSFER_IN), which is adopted; `verify` passes and the accounts are the
    /// model's.
    pub fn reopened(&mut self, ledger: &SyncLedger, rng: &mut Rng) -> Result<(), String> {
        self.tally.reopens += 1;
        let last = ledger.last_sequence();
        let acknowledged = self.known.next_sequence - 1;
        if last < acknowledged {
            return Err(format!("the log ends at {last}, but entries up to {acknowledged} were acknowledged"));
        }
        let surviving = usize::try_from(last - acknowledged).expect("small");
        if surviving > self.tentative.len() {
            return Err(format!(
                "the log ends at {last}: {surviving} entries after the acknowledged {acknowledged}, but only {} were decided",
                self.tentative.len()
            ));
        }
        let tentative = std::mem::take(&mut self.tentative);
        if let (Some(kept), Some(lost)) = (surviving.checked_sub(1).map(|i| &tentative[i]), tentative.get(surviving)) {
            if kept.group.is_some() && kept.group == lost.group {
                return Err(format!(
                    "the log ends at {last}, inside a group that goes on to {}",
                    tentative.last().map_or(0, |t| t.sequence)
                ));
            }
            if let Entry::TransferIn { command, .. } = &lost.entry {
                return Err(format!(
                    "the log ends at {last}, with the TRANSFER_OUT of {} but not its TRANSFER_IN",
                    command.request_id
                ));
            }
        }
        let mut kept = tentative.into_iter().take(surviving).peekable();
        while let Some(entry) = kept.next() {
            let pair = kept.peek().and_then(|next| match &next.entry {
                Entry::TransferIn { shape, .. } => Some(shape.clone()),
                _ => None,
            });
            self.adopt(entry, pair)?;
        }
        self.check_log(ledger, rng)?;
        let report = ledger.verify().map_err(|error| format!("verify failed: {error}"))?;
        if report.entries != last {
            return Err(format!("verify counted {} entries, the log ends at {last}", report.entries));
        }
        self.check_balances(ledger)
    }

    /// Takes a decision of a failed commit that the log turned out to hold into the known state.
    /// A transfer is taken whole with its TRANSFER_OUT (`pair`: its TRANSFER_IN, the next entry).
    fn adopt(&mut self, tentative: Tentative, pair: Option<Shape>) -> Result<(), String> {
        match &tentative.entry {
            Entry::Flow { command, shape, now } => {
                let before = self.known.model.account(&command.account_id).map(|account| account.balance);
                let again = self.known.model.execute(command, *now);
                let fits = again.as_ref().is_ok_and(|outcome| {
                    before.unwrap_or_default() == shape.before
                        && outcome.affected == shape.affected
                        && outcome.held == shape.held
                        && outcome.transfer_in.as_ref().map(|side| (side.account_id.as_str(), side.affected))
                            == pair.as_ref().map(|side| (side.account_id.as_str(), side.affected))
                });
                if !fits {
                    return Err(format!(
                        "adopting entry {}: the model now says {again:?} from {before:?}, decided {shape:?} with {pair:?}",
                        tentative.sequence
                    ));
                }
                self.known
                    .requests
                    .entry(command.request_id.clone())
                    .or_insert(((**command).clone(), tentative.sequence));
                self.first_answers.entry(command.request_id.clone()).or_insert(Ok(tentative.sequence));
            }
            // Folded into the model with its TRANSFER_OUT, just before.
            Entry::TransferIn { .. } => {}
            Entry::Rules { brand_id, rules } => self.known.model.set_rules(brand_id.as_deref(), model_rules(rules)),
        }
        self.known.next_sequence = tentative.sequence + 1;
        self.tally.adopted += 1;
        self.record(tentative);
        Ok(())
    }

    /// Reads back every entry since the last reopen and a sample of older ones.
    fn check_log(&mut self, ledger: &SyncLedger, rng: &mut Rng) -> Result<(), String> {
        let last = ledger.last_sequence();
        let mut sequences: Vec<u64> = (self.checked_up_to + 1..=last).collect();
        if self.checked_up_to > 0 {
            sequences.extend((0..SAMPLED_FLOWS).map(|_| rng.below(self.checked_up_to) + 1));
        }
        for sequence in sequences {
            let recorded = self.log.get(&sequence).ok_or_else(|| format!("entry {sequence} was never decided"))?;
            check_entry(ledger, sequence, recorded)?;
            // Read once, it must read the same at every later reopen.
            if let Recorded::Flow { flow: stored @ None, .. } = self.log.get_mut(&sequence).expect("found above") {
                *stored = ledger.flow(sequence).ok().map(Box::new);
            }
        }
        self.checked_up_to = last;
        Ok(())
    }

    /// Every account equals the model's exactly (balance, held value, status, open holds, lots), no
    /// bucket has less than is held in it, and the held value over all accounts is what the
    /// model's open holds reserve.
    pub fn check_balances(&self, ledger: &SyncLedger) -> Result<(), String> {
        let ledger_accounts: Vec<View> = ledger
            .accounts()
            .into_iter()
            .map(|account| View {
                account_id: account.account_id,
                balance: parts(&account.balance),
                held: parts(&account.held),
                status: account.status.as_str(),
                open_holds: account.open_holds,
                lots: account
                    .lots
                    .iter()
                    .map(|lot| {
                        let expiry = lot.key.expire_time().map(|time| time.0);
                        (lot.bucket.as_str(), lot.value.minor(), lot.held.minor(), expiry)
                    })
                    .collect(),
            })
            .collect();
        let model_accounts: Vec<View> = self
            .known
            .model
            .accounts()
            .map(|(account_id, state)| View {
                account_id: account_id.clone(),
                balance: state.balance,
                held: state.held,
                status: state.status.name(),
                open_holds: state.open_holds,
                lots: state
                    .lots()
                    .iter()
                    .map(|lot| (lot.bucket.name(), lot.value, lot.held, lot.expire_time))
                    .collect(),
            })
            .collect();
        if ledger_accounts != model_accounts {
            return Err(format!("accounts differ:\n  ledger: {ledger_accounts:?}\n  model:  {model_accounts:?}"));
        }
        let mut held = [0i128; 3];
        for account in &ledger_accounts {
            let balance = account.balance.to_array();
            let reserved = account.held.to_array();
            if balance.iter().zip(&reserved).any(|(balance, reserved)| balance < reserved || *reserved < 0) {
                return Err(format!("{}: a bucket has less available than nothing: {account:?}", account.account_id));
            }
            for (sum, part) in held.iter_mut().zip(reserved) {
                *sum += i128::from(part);
            }
        }
        if held != self.known.model.open_hold_parts() {
            return Err(format!(
                "the accounts hold {held:?}, the open holds reserve {:?}",
                self.known.model.open_hold_parts()
            ));
        }
        if ledger.last_sequence() + 1 != self.known.next_sequence {
            return Err(format!(
                "the ledger is at {}, the model at {}",
                ledger.last_sequence(),
                self.known.next_sequence - 1
            ));
        }
        Ok(())
    }

    pub fn acknowledged(&self) -> u64 {
        self.known.next_sequence - 1
    }

    pub fn requests_answered(&self) -> usize {
        self.first_answers.len()
    }
}

/// An account as both sides can tell it.
#[derive(Debug, PartialEq, Eq)]
struct View {
    account_id: String,
    balance: Parts,
    held: Parts,
    status: &'static str,
    open_holds: u32,
    /// spec §11: (bucket, value, held, expiry) of every lot with value, in spending order.
    lots: Vec<(&'static str, i64, i64, Option<i64>)>,
}

/// Decides one command as the writer must: a retry replays or conflicts, anything else is the
/// model's decision (a transfer's: two entries).
fn decide(
    work: &mut Known,
    entries: &mut Vec<Tentative>,
    command: &Command,
    group: Option<usize>,
    now: i64,
) -> Expected {
    if let Some((first, flow_id)) = work.requests.get(&command.request_id) {
        return if first == command {
            Expected::Replayed { flow_id: *flow_id, transfer: matches!(first.action, Action::Transfer { .. }) }
        } else {
            // spec §13: the command's own arguments and amounts before the conflict.
            Expected::Rejected(work.model.arguments(command, now).err().unwrap_or(CONFLICT))
        };
    }
    let balance =
        |account_id: &str| work.model.account(account_id).map_or_else(Parts::default, |account| account.balance);
    let before = balance(&command.account_id);
    let destination_before = match &command.action {
        Action::Transfer { to_account_id, .. } => balance(to_account_id),
        _ => Parts::default(),
    };
    match work.model.execute(command, now) {
        Ok(outcome) => {
            let first = Shape {
                flow_type: flow_type(Kind::of(&command.action)),
                account_id: command.account_id.clone(),
                counterparty: outcome.transfer_in.as_ref().map(|side| side.account_id.clone()),
                before,
                affected: outcome.affected,
                held: outcome.held,
            };
            let second = outcome.transfer_in.map(|side| Shape {
                flow_type: FlowType::TransferIn,
                account_id: side.account_id,
                counterparty: Some(command.account_id.clone()),
                before: destination_before,
                affected: side.affected,
                held: Parts::default(),
            });
            let sequence = work.next_sequence;
            work.next_sequence += 1 + u64::from(second.is_some());
            work.requests.insert(command.request_id.clone(), (command.clone(), sequence));
            let boxed = Box::new(command.clone());
            entries.push(Tentative {
                sequence,
                entry: Entry::Flow { command: boxed.clone(), shape: first.clone(), now },
                group,
            });
            if let Some(shape) = &second {
                let entry = Entry::TransferIn { command: boxed, shape: shape.clone() };
                entries.push(Tentative { sequence: sequence + 1, entry, group });
            }
            Expected::Written { sequence, first: Box::new(first), second: second.map(Box::new) }
        }
        Err(model::SKIP) => Expected::Skipped,
        Err(code) => Expected::Rejected(code),
    }
}

/// `flow` is the flow `shape` says, at `sequence`, written under `command`'s request and order.
fn check_flow(flow: &Flow, sequence: u64, command: &Command, shape: &Shape) -> Result<(), String> {
    let same = flow.flow_id == sequence
        && flow.flow_type == shape.flow_type
        && flow.request_id == command.request_id
        && flow.outer_order_id == command.outer_order_id
        && flow.account_id == shape.account_id
        && flow.counterparty == shape.counterparty
        && parts(&flow.before) == shape.before
        && parts(&flow.affected) == shape.affected
        && parts(&flow.held) == shape.held;
    if same {
        Ok(())
    } else {
        Err(format!("expected flow {sequence} of {} as {shape:?}, got {flow:?}", command.request_id))
    }
}

fn check_entry(ledger: &SyncLedger, sequence: u64, recorded: &Recorded) -> Result<(), String> {
    let read = ledger.flow(sequence);
    match (recorded, &read) {
        (Recorded::Rules, Err(Error::NotFound(message))) if message.contains("rules change") => Ok(()),
        (Recorded::Flow { command, shape, flow }, Ok(got)) => {
            check_flow(got, sequence, command, shape).map_err(|why| format!("read back: {why}"))?;
            match flow {
                Some(first) if **first != *got => {
                    Err(format!("entry {sequence} reads back as {got:?}, first answered or read as {first:?}"))
                }
                _ => Ok(()),
            }
        }
        _ => Err(format!("entry {sequence} reads back as {}, not as acknowledged: {recorded:?}", show(&read))),
    }
}

/// After a failed commit the writer refuses every request with a storage error.
fn expect_refused(answer: &SimAnswer) -> Result<(), String> {
    let refused = match answer {
        SimAnswer::Submit(Err(error)) => code(error) == STORAGE,
        SimAnswer::Rules(Err(error)) => code(error) == STORAGE,
        SimAnswer::Group(Err(error)) => code(error) == STORAGE,
        SimAnswer::Group(Ok(outcome)) => {
            outcome.items.iter().all(|item| matches!(item, GroupItem::Rejected(error) if code(error) == STORAGE))
        }
        _ => false,
    };
    if refused {
        Ok(())
    } else {
        Err(format!("expected a storage error, got {answer:?}"))
    }
}

fn has_storage_error(answer: &SimAnswer) -> bool {
    match answer {
        SimAnswer::Submit(Err(error)) | SimAnswer::Rules(Err(error)) | SimAnswer::Group(Err(error)) => {
            code(error) == STORAGE
        }
        SimAnswer::Group(Ok(outcome)) => {
            outcome.items.iter().any(|item| matches!(item, GroupItem::Rejected(error) if code(error) == STORAGE))
        }
        _ => false,
    }
}

fn code(error: &Error) -> &'static str {
    error.code().as_str()
}

fn show(got: &Result<impl std::fmt::Debug, Error>) -> String {
    match got {
        Ok(value) => format!("{value:?}"),
        Err(error) => format!("{} ({error})", code(error)),
    }
}

pub fn describe(request: &SimRequest) -> String {
    match request {
        SimRequest::Submit(command) => format!("{} {:?}", command.request_id, command.action),
        SimRequest::Group(commands, mode) => format!("group of {} ({mode:?})", commands.len()),
        SimRequest::SetRules(brand_id, _) => format!("rules of {brand_id:?}"),
    }
}

fn parts(buckets: &purse_core::Buckets) -> Parts {
    Parts::new(buckets.real.minor(), buckets.gift.minor(), buckets.pre.minor())
}

fn add(left: Parts, right: Parts) -> Parts {
    Parts::new(left.real + right.real, left.gift + right.gift, left.pre + right.pre)
}

/// purse-core's rule set as the model's (plain minor units and basis points).
fn model_rules(rules: &RuleSet) -> Rules {
    let order = match rules.deduction_order {
        DeductionOrder::Percent => DeductOrder::Percent,
        DeductionOrder::RealBeforeGift => DeductOrder::RealFirst,
        DeductionOrder::GiftBeforeReal => DeductOrder::GiftFirst,
    };
    let tiers = |tiers: &[purse_core::Tier]| -> Vec<(i64, i64)> {
        tiers.iter().map(|tier| (tier.real_value.minor(), tier.gift.raw())).collect()
    };
    let gift = match &rules.gift_rule {
        GiftRule::None => model::GiftRule::None,
        GiftRule::Customized { full_gift_switch, tiers: given } => {
            model::GiftRule::Customized { full: *full_gift_switch, tiers: tiers(given) }
        }
        GiftRule::Proportional { tiers: given } => model::GiftRule::Proportional { tiers: tiers(given) },
    };
    Rules { order, gift, gift_valid_days: rules.gift_valid_days }
}

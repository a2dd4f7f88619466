//! The checker: every batch mirrored in the plain reference model, in the writer's order, and
//! every answer and every reopened ledger compared with it.
//!
//! The mirror keeps what is *known*: the model after every acknowledged entry, the next
//! sequence, and the first flow written per request id (a retry with the same command must
//! replay it; with another command it is IDEMPOTENCY_CONFLICT). A batch whose commit failed
//! is *tentative*: its decisions are kept aside until the restart shows which prefix of them
//! the log holds, and only then adopted.

use std::collections::BTreeMap;

use purse_core::{Command, DeductionOrder, Flow, GiftRule, RuleSet, TierGift};
use purse_ledger::sim_support::{SimAnswer, SimRequest, SyncLedger};
use purse_ledger::{Error, GroupItem, GroupMode, GroupOutcome};
use purse_proptests::model::{self, DeductOrder, Model, Parts, Rules};

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
    /// The first flow written per request id, with the command that wrote it.
    requests: BTreeMap<String, (Command, u64)>,
}

/// An entry a commit decided.
#[derive(Debug, Clone)]
enum Decision {
    Flow { command: Box<Command>, before: Parts, affected: Parts },
    Rules { brand_id: Option<String>, rules: RuleSet },
}

#[derive(Debug, Clone)]
struct Tentative {
    sequence: u64,
    decision: Decision,
    /// The group the entry belongs to: a group is in the log whole or not at all.
    group: Option<usize>,
}

/// What the log must hold at a sequence.
#[derive(Debug, Clone)]
enum Recorded {
    Flow { command: Box<Command>, before: Parts, affected: Parts, flow: Option<Box<Flow>> },
    Rules,
}

/// What one request (or one command of a group) must get.
#[derive(Debug, Clone)]
enum Expected {
    Written { sequence: u64, before: Parts, affected: Parts },
    Replayed(u64),
    Rejected(&'static str),
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
}

#[derive(Debug, Default)]
pub struct Mirror {
    known: Known,
    /// Every acknowledged or adopted entry, by sequence.
    log: BTreeMap<u64, Recorded>,
    tentative: Vec<Tentative>,
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
    /// writer's batches as `SyncLedger` does: a group alone, the requests between groups together.
    pub fn batch(&mut self, requests: &[SimRequest], answers: &[SimAnswer], now: i64) -> Result<BatchOutcome, String> {
        if requests.len() != answers.len() {
            return Err(format!("{} requests got {} answers", requests.len(), answers.len()));
        }
        let mut outcome = BatchOutcome::default();
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
            let segment = start..end;
            start = end;
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
                self.submit(command, &expected, got, failed)
            }
            (SimRequest::SetRules(brand_id, rules), SimAnswer::Rules(got)) => {
                let sequence = work.next_sequence;
                work.next_sequence += 1;
                work.model.set_rules(brand_id.as_deref(), model_rules(rules));
                let decision = Decision::Rules { brand_id: brand_id.clone(), rules: rules.clone() };
                entries.push(Tentative { sequence, decision, group: None });
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
        got: &Result<Box<Flow>, Error>,
        failed: bool,
    ) -> Result<bool, String> {
        match (expected, got) {
            // A refusal, too, is answered after its batch's commit, as the commit's failure when it
            // fails (it may rest on a flow of that batch): the request is retried like a write.
            (Expected::Written { .. } | Expected::Replayed(_) | Expected::Rejected(_), Err(error))
                if failed && code(error) == STORAGE =>
            {
                self.tally.indeterminate += 1;
                Ok(true)
            }
            (Expected::Written { sequence, before, affected }, Ok(flow)) if !failed => {
                let same = flow.flow_id == *sequence
                    && parts(&flow.before) == *before
                    && parts(&flow.affected) == *affected
                    && flow.request_id == command.request_id
                    && flow.outer_order_id == command.outer_order_id
                    && flow.account_id == command.account_id;
                if !same {
                    return Err(format!("expected flow {sequence} of {affected:?} from {before:?}, got {flow:?}"));
                }
                self.tally.written += 1;
                self.first_answers.entry(command.request_id.clone()).or_insert(Ok(*sequence));
                if let Some(Recorded::Flow { flow: stored, .. }) = self.log.get_mut(sequence) {
                    *stored = Some(flow.clone());
                }
                Ok(false)
            }
            (Expected::Replayed(flow_id), Ok(flow)) if !failed => {
                self.check_replay(*flow_id, flow)?;
                self.tally.replayed += 1;
                Ok(false)
            }
            (Expected::Rejected(wanted), Err(error)) if code(error) == *wanted => {
                if *wanted == CONFLICT {
                    self.tally.conflicts += 1;
                } else {
                    self.tally.rejected += 1;
                }
                self.first_answers.entry(command.request_id.clone()).or_insert(Err(wanted));
                Ok(false)
            }
            _ => Err(format!("expected {expected:?}, got {}", show(got))),
        }
    }

    /// A replay must return the first answer: the same flow, as acknowledged.
    fn check_replay(&self, flow_id: u64, flow: &Flow) -> Result<(), String> {
        if flow.flow_id != flow_id {
            return Err(format!("a retry replayed flow {} instead of the first answer, flow {flow_id}", flow.flow_id));
        }
        match self.log.get(&flow_id) {
            Some(Recorded::Flow { flow: Some(first), .. }) if **first != *flow => {
                Err(format!("a retry replayed flow {flow_id} as {flow:?}, first answered as {first:?}"))
            }
            _ => Ok(()),
        }
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
        }
        if committed {
            self.tally.groups_committed += 1;
        } else {
            self.tally.groups_dropped += 1;
        }
        Ok(false)
    }

    fn group_item(&self, item: &GroupItem, wanted: &Expected) -> Result<(), String> {
        let fits = match (item, wanted) {
            (GroupItem::Written(summary), Expected::Written { sequence, before, affected }) => {
                summary.flow_id == *sequence
                    && parts(&summary.before) == *before
                    && parts(&summary.after) == add(*before, *affected)
            }
            (GroupItem::Replayed(summary), Expected::Replayed(flow_id)) => summary.flow_id == *flow_id,
            (GroupItem::Rejected(error), Expected::Rejected(wanted)) => code(error) == *wanted,
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(format!("expected {wanted:?}, got {item:?}"))
        }
    }

    /// An entry is acknowledged: the log must hold it from now on.
    fn record(&mut self, entry: Tentative) {
        let recorded = match entry.decision {
            Decision::Flow { command, before, affected } => Recorded::Flow { command, before, affected, flow: None },
            Decision::Rules { .. } => Recorded::Rules,
        };
        self.log.insert(entry.sequence, recorded);
    }
}

impl Mirror {
    /// After a reopen: the log holds every acknowledged entry unchanged, then exactly a prefix of
    /// the failed commit's decisions (never part of a group), which is adopted; `verify` passes
    /// and the balances are the model's.
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
        }
        for entry in tentative.into_iter().take(surviving) {
            self.adopt(entry)?;
        }
        self.check_log(ledger, rng)?;
        let report = ledger.verify().map_err(|error| format!("verify failed: {error}"))?;
        if report.entries != last {
            return Err(format!("verify counted {} entries, the log ends at {last}", report.entries));
        }
        self.check_balances(ledger)
    }

    /// Takes a decision of a failed commit that the log turned out to hold into the known state.
    fn adopt(&mut self, entry: Tentative) -> Result<(), String> {
        let now = i64::MAX; // Imports dated in the future are refused at any time the sim uses.
        match &entry.decision {
            Decision::Flow { command, affected, .. } => {
                let again = self.known.model.execute(command, now).map(|outcome| outcome.affected);
                if again != Ok(*affected) {
                    return Err(format!("adopting entry {}: the model now says {again:?}", entry.sequence));
                }
                self.known.requests.entry(command.request_id.clone()).or_insert(((**command).clone(), entry.sequence));
                self.first_answers.entry(command.request_id.clone()).or_insert(Ok(entry.sequence));
            }
            Decision::Rules { brand_id, rules } => self.known.model.set_rules(brand_id.as_deref(), model_rules(rules)),
        }
        self.known.next_sequence = entry.sequence + 1;
        self.tally.adopted += 1;
        self.record(entry);
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

    /// Every balance equals the model's, exactly.
    pub fn check_balances(&self, ledger: &SyncLedger) -> Result<(), String> {
        let ledger_balances: Vec<(String, Parts)> =
            ledger.balances().into_iter().map(|(account, balance)| (account, parts(&balance))).collect();
        let model_balances: Vec<(String, Parts)> =
            self.known.model.accounts().map(|(account, state)| (account.clone(), state.balance)).collect();
        if ledger_balances != model_balances {
            return Err(format!("balances differ:\n  ledger: {ledger_balances:?}\n  model:  {model_balances:?}"));
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

/// Decides one command as the writer must: a retry replays or conflicts, anything else is the
/// model's decision.
fn decide(
    work: &mut Known,
    entries: &mut Vec<Tentative>,
    command: &Command,
    group: Option<usize>,
    now: i64,
) -> Expected {
    if let Some((first, flow_id)) = work.requests.get(&command.request_id) {
        return if first == command { Expected::Replayed(*flow_id) } else { Expected::Rejected(CONFLICT) };
    }
    let before = work.model.account(&command.account_id).map_or_else(Parts::default, |account| account.balance);
    match work.model.execute(command, now) {
        Ok(outcome) => {
            // The workload sends no transfers (their second flow has no place here yet).
            debug_assert!(outcome.transfer_in.is_none(), "the simulator's workload sends no transfers");
            let affected = outcome.affected;
            let sequence = work.next_sequence;
            work.next_sequence += 1;
            work.requests.insert(command.request_id.clone(), (command.clone(), sequence));
            let decision = Decision::Flow { command: Box::new(command.clone()), before, affected };
            entries.push(Tentative { sequence, decision, group });
            Expected::Written { sequence, before, affected }
        }
        Err(code) => Expected::Rejected(code),
    }
}

fn check_entry(ledger: &SyncLedger, sequence: u64, recorded: &Recorded) -> Result<(), String> {
    let read = ledger.flow(sequence);
    match (recorded, &read) {
        (Recorded::Rules, Err(Error::NotFound(message))) if message.contains("rules change") => Ok(()),
        (Recorded::Flow { command, before, affected, flow }, Ok(got)) => {
            let same = got.flow_id == sequence
                && got.request_id == command.request_id
                && got.outer_order_id == command.outer_order_id
                && got.account_id == command.account_id
                && parts(&got.before) == *before
                && parts(&got.affected) == *affected
                && flow.as_ref().is_none_or(|first| **first == *got);
            if same {
                Ok(())
            } else {
                Err(format!("entry {sequence} reads back as {got:?}, not as acknowledged: {recorded:?}"))
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
        tiers
            .iter()
            .map(|tier| {
                let gift = match tier.gift {
                    TierGift::Amount(amount) => amount.minor(),
                    TierGift::BasisPoints(points) => points,
                };
                (tier.real_value.minor(), gift)
            })
            .collect()
    };
    let gift = match &rules.gift_rule {
        GiftRule::None => model::GiftRule::None,
        GiftRule::Customized { full_gift_switch, tiers: given } => {
            model::GiftRule::Customized { full: *full_gift_switch, tiers: tiers(given) }
        }
        GiftRule::Proportional { tiers: given } => model::GiftRule::Proportional { tiers: tiers(given) },
    };
    Rules { order, gift }
}

//! What the callers send: the command mix, the account distribution, and the closed loop each
//! caller runs (send, await the durable answer, record, send the next).
//!
//! Every number here is an integer: shares are percent or parts per million, the Zipf
//! distribution is a table of integer weights, amounts are minor units.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use purse_core::{Action, Amount, Command, ErrorCode, FlowDetail, Scale};
use purse_ledger::bench_support::Rng;
use purse_ledger::Ledger;

/// The command kinds the workload sends, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// CHARGE with `trigger_gift`: the gift comes from the ledger's rule.
    Charge,
    Deduct,
    /// UNDEDUCT of half of what is left of an earlier accepted DEDUCT (all of it when 1 minor unit is left).
    Undeduct,
    /// UNCHARGE of the caller's most recent accepted, not yet reversed CHARGE.
    Uncharge,
    /// HOLD of an amount like a DEDUCT's (an authorization).
    Hold,
    /// CAPTURE of half (rounded down, at least 1 minor unit) of one of the caller's open holds;
    /// an UNDEDUCT may later refund it like a DEDUCT.
    Capture,
    /// RELEASE of one of the caller's open holds.
    Release,
}

/// How many kinds there are: the length of every per-kind array.
pub const KINDS: usize = 7;

impl Kind {
    pub const ALL: [Kind; KINDS] =
        [Kind::Charge, Kind::Deduct, Kind::Undeduct, Kind::Uncharge, Kind::Hold, Kind::Capture, Kind::Release];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Charge => "charge",
            Kind::Deduct => "deduct",
            Kind::Undeduct => "undeduct",
            Kind::Uncharge => "uncharge",
            Kind::Hold => "hold",
            Kind::Capture => "capture",
            Kind::Release => "release",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Percent of each kind, adding up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix(pub [u32; KINDS]);

impl Mix {
    /// `charge=40,deduct=45,undeduct=10,uncharge=5`, with `hold`, `capture`, `release` too; a
    /// kind left out is 0; the shares add up to 100.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut shares = [0u32; KINDS];
        let mut seen = [false; KINDS];
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (name, share) = part.split_once('=').ok_or_else(|| format!("{part:?} is not KIND=PERCENT"))?;
            let kind =
                Kind::ALL.into_iter().find(|kind| kind.name().eq_ignore_ascii_case(name.trim())).ok_or_else(|| {
                    format!("{name:?} is not one of charge, deduct, undeduct, uncharge, hold, capture, release")
                })?;
            if std::mem::replace(&mut seen[kind.index()], true) {
                return Err(format!("{} is given twice", kind.name()));
            }
            shares[kind.index()] =
                share.trim().trim_end_matches('%').parse().map_err(|_| format!("{share:?} is not a whole percent"))?;
        }
        let total: u32 = shares.iter().sum();
        if total != 100 {
            return Err(format!("the shares add up to {total}, not 100"));
        }
        Ok(Mix(shares))
    }

    fn pick(&self, roll: u32) -> Kind {
        let mut bound = 0;
        for kind in Kind::ALL {
            bound += self.0[kind.index()];
            if roll < bound {
                return kind;
            }
        }
        Kind::Deduct
    }
}

/// How accounts are drawn.
#[derive(Debug)]
pub enum Accounts {
    Uniform {
        count: u64,
    },
    /// Zipf with exponent 1: account `i` (from 0) is drawn with weight `1/(i+1)`, so the
    /// hottest account gets `1/H(n)` of the traffic (about 10 % of 10,000 accounts).
    /// Cumulative integer weights, searched by bisection.
    Zipf {
        cumulative: Vec<u64>,
    },
}

impl Accounts {
    pub fn uniform(count: u64) -> Accounts {
        Accounts::Uniform { count }
    }

    pub fn zipf(count: u64) -> Accounts {
        // 2^40 / (i+1) summed over ≤ 2^32 accounts stays far below u64::MAX (≤ 2^40 · 23).
        const UNIT: u64 = 1 << 40;
        let mut total = 0u64;
        let cumulative = (1..=count)
            .map(|rank| {
                total += UNIT / rank;
                total
            })
            .collect();
        Accounts::Zipf { cumulative }
    }

    pub fn pick(&self, rng: &mut Rng) -> usize {
        match self {
            Accounts::Uniform { count } => usize::try_from(rng.below(*count)).expect("an account index fits usize"),
            Accounts::Zipf { cumulative } => {
                let total = *cumulative.last().expect("at least one account");
                let roll = rng.below(total);
                cumulative.partition_point(|&bound| bound <= roll)
            }
        }
    }
}

/// The account id of account number `index`.
pub fn account_id(index: usize) -> String {
    format!("acct-{index:06}")
}

/// What every caller shares. How the requests travel is not part of it: the in-process run
/// hands [`Caller::run`] the ledger, `bench --http` sends each over HTTP ([`super::http`]).
#[derive(Debug)]
pub struct Plan {
    pub scale: Scale,
    pub account_ids: Vec<String>,
    pub accounts: Accounts,
    pub mix: Mix,
    /// Parts per million of requests that retry an earlier accepted request.
    pub replay_ppm: u64,
    pub seed: u64,
}

/// CHARGE amounts drawn from (minor units): around and across the rule's tiers (100.00, 500.00).
const CHARGE_REAL_MINOR: [i64; 5] = [5_000, 10_000, 20_000, 50_000, 100_000];
/// DEDUCT amounts: 1.00 to 60.00.
const DEDUCT_MINOR_MIN: i64 = 100;
const DEDUCT_MINOR_SPAN: u64 = 5_901;
/// Accepted requests each caller remembers as candidates for a retry.
const REPLAY_CANDIDATES: usize = 64;
/// Orders each caller remembers at most of each kind it may refund or resolve later, so that
/// the bench's own memory does not grow with the run (its RSS is the ledger's figure). Past it a
/// new DEDUCT or HOLD takes a random slot, so the ones kept stay a sample of the whole run (old
/// orders, in the cold store by then, are still refunded); the oldest half of the CHARGEs goes,
/// since an UNCHARGE takes the newest.
const ORDER_CANDIDATES_MAX: usize = 32 * 1024;

/// What one caller saw. Merged over all callers at the end.
#[derive(Debug, Default)]
pub struct Tally {
    /// Microseconds from send to answer, one per request.
    pub latencies_us: Vec<u64>,
    /// Fresh requests sent, by [`Kind`].
    pub sent: [u64; KINDS],
    /// Of those, accepted (a new durable flow), by [`Kind`].
    pub accepted: [u64; KINDS],
    /// Retries answered with the first answer's flow.
    pub replayed: u64,
    /// Rejected requests (fresh or retries) by error code.
    pub rejected: BTreeMap<&'static str, u64>,
    /// The sum of `affected` (REAL, GIFT, PRE, minor units) over the accepted flows.
    pub effect: [i128; 3],
    /// The sum of `held` (the change of held value) over the accepted flows.
    pub held: [i128; 3],
    /// Anything that breaks the self-check: a retry answered with another flow, an answer
    /// whose amounts do not parse. At most a few are kept, with the count.
    pub faults: Vec<String>,
    pub fault_count: u64,
}

impl Tally {
    pub fn accepted_total(&self) -> u64 {
        self.accepted.iter().sum()
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for index in 0..KINDS {
            self.sent[index] += other.sent[index];
            self.accepted[index] += other.accepted[index];
        }
        self.replayed += other.replayed;
        for (code, count) in other.rejected {
            *self.rejected.entry(code).or_default() += count;
        }
        for (sum, part) in self.effect.iter_mut().zip(other.effect) {
            *sum += part;
        }
        for (sum, part) in self.held.iter_mut().zip(other.held) {
            *sum += part;
        }
        self.fault_count += other.fault_count;
        self.faults.extend(other.faults);
        self.faults.truncate(FAULTS_KEPT);
    }

    fn fault(&mut self, message: String) {
        self.fault_count += 1;
        if self.faults.len() < FAULTS_KEPT {
            self.faults.push(message);
        }
    }

    fn reject(&mut self, code: ErrorCode) {
        *self.rejected.entry(code.as_str()).or_default() += 1;
    }

    /// What the caller takes from an answer: from its spec §5 text view (read back, so a view
    /// that does not parse is a fault), or, with `--batch`, from the typed flow.
    fn seen(&mut self, answer: &Answered, scale: Scale) -> Option<Seen> {
        match answer {
            Answered::Rendered(detail) => {
                let Ok(flow_id) = detail.flow_id.parse() else {
                    self.fault(format!("flow_id {:?} does not parse", detail.flow_id));
                    return None;
                };
                let affected = self.parts(detail, "affected", &detail.affected_property_list, scale)?;
                let held = self.parts(detail, "held", &detail.held_property_list, scale)?;
                Some(Seen { flow_id, affected, held })
            }
            Answered::Typed(flow) => {
                let minor =
                    |buckets: purse_core::Buckets| [buckets.real.minor(), buckets.gift.minor(), buckets.pre.minor()];
                Some(Seen { flow_id: flow.flow_id, affected: minor(flow.affected), held: minor(flow.held) })
            }
        }
    }

    /// Adds an accepted flow's `affected` to the effect and its `held` to the held sum; returns
    /// its affected REAL+GIFT+PRE sum.
    fn add_effect(&mut self, seen: &Seen) -> Option<i64> {
        for (sum, part) in self.effect.iter_mut().zip(seen.affected) {
            *sum += i128::from(part);
        }
        for (sum, part) in self.held.iter_mut().zip(seen.held) {
            *sum += i128::from(part);
        }
        seen.affected.iter().try_fold(0i64, |sum, part| sum.checked_add(*part))
    }

    /// REAL, GIFT, PRE of one property list, in minor units.
    fn parts(
        &mut self,
        detail: &FlowDetail,
        what: &str,
        list: &[(&'static str, String)],
        scale: Scale,
    ) -> Option<[i64; 3]> {
        let mut parts = [0i64; 3];
        for (bucket, name) in ["REAL", "GIFT", "PRE"].into_iter().enumerate() {
            let text = list.iter().find(|(property, _)| *property == name).map(|(_, v)| v);
            match text.map(|text| Amount::parse(text, scale)) {
                Some(Ok(amount)) => parts[bucket] = amount.minor(),
                _ => {
                    self.fault(format!("flow {}: {what} {name} is missing or does not parse", detail.flow_id));
                    return None;
                }
            }
        }
        Some(parts)
    }
}

const FAULTS_KEPT: usize = 8;

/// A refusal as the caller sees it, whichever way the request travelled: the ledger's own
/// error in process, the server's error object over HTTP.
pub trait Refusal: std::fmt::Display {
    fn code(&self) -> ErrorCode;
}

impl Refusal for purse_ledger::Error {
    fn code(&self) -> ErrorCode {
        purse_ledger::Error::code(self)
    }
}

/// An accepted answer as the caller got it.
pub enum Answered {
    /// The spec §5 view, rendered inside the timed span as a caller answering in JSON would.
    Rendered(FlowDetail),
    /// The typed flow of `Ledger::submit_batch`, as an embedding gateway or bulk load uses it.
    Typed(purse_core::Flow),
}

/// What the self-check keeps of an accepted flow: its id, and its changes in minor units.
pub struct Seen {
    flow_id: u64,
    affected: [i64; 3],
    held: [i64; 3],
}

/// An accepted DEDUCT a later UNDEDUCT may refund.
#[derive(Debug)]
struct Refundable {
    order: String,
    account: usize,
    /// Minor units not yet refunded.
    left: i64,
}

/// What a request sent expects of its answer.
// Built and taken one at a time on the caller's stack; boxing would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Expected {
    /// A retry: its first answer's flow id.
    Retry {
        flow_id: u64,
    },
    Fresh(Fresh),
}

/// A fresh request, for recording its answer.
pub struct Fresh {
    kind: Kind,
    order_id: String,
    account: usize,
    /// The command, if it may be retried later.
    kept: Option<Command>,
}

/// One caller's closed loop.
/// Pushes `item` while `list` is below [`ORDER_CANDIDATES_MAX`], else puts it in a random slot.
fn remember<T>(list: &mut Vec<T>, item: T, rng: &mut Rng) {
    if list.len() < ORDER_CANDIDATES_MAX {
        list.push(item);
    } else {
        let slot = rng.index(list.len());
        list[slot] = item;
    }
}

pub struct Caller {
    plan: Arc<Plan>,
    number: u64,
    requests: u64,
    /// Commands per call: 1 sends each through `Ledger::submit`, more through `submit_batch`.
    batch: u64,
    rng: Rng,
    next_id: u64,
    deducts: Vec<Refundable>,
    charges: Vec<(String, usize)>,
    /// Open holds: order id, account, minor units held.
    holds: Vec<(String, usize, i64)>,
    recent: Vec<(Command, u64)>,
    tally: Tally,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("number", &self.number).field("requests", &self.requests).finish()
    }
}

impl Caller {
    pub fn new(plan: Arc<Plan>, number: u64, requests: u64, batch: u64) -> Caller {
        let rng = Rng::new(plan.seed ^ number.wrapping_mul(0xA24B_AED4_963E_E407));
        let capacity = usize::try_from(requests).unwrap_or(0);
        Caller {
            plan,
            number,
            requests,
            batch: batch.max(1),
            rng,
            next_id: 0,
            deducts: Vec::new(),
            charges: Vec::new(),
            holds: Vec::new(),
            recent: Vec::new(),
            tally: Tally { latencies_us: Vec::with_capacity(capacity), ..Tally::default() },
        }
    }

    /// Requests this caller sends.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// What the caller saw, once it is done.
    pub fn into_tally(self) -> Tally {
        self.tally
    }

    pub async fn run(mut self, ledger: Ledger) -> Tally {
        if self.batch == 1 {
            // One command a call: nothing gathered in lists (every allocation here is one more
            // the writer's thread frees across malloc arenas).
            for _ in 0..self.requests {
                let (command, expected) = self.next();
                let started = Instant::now();
                // Rendered as a caller that answers in JSON would, inside the timed span, as always.
                let answer = ledger.submit(command).await.and_then(|flow| ledger.detail(&flow)).map(Answered::Rendered);
                self.record_latency(started);
                self.take(expected, answer);
            }
            return self.tally;
        }
        let mut left = self.requests;
        while left > 0 {
            let count = left.min(self.batch);
            left -= count;
            let (commands, expected): (Vec<Command>, Vec<Expected>) = (0..count).map(|_| self.next()).unzip();
            let started = Instant::now();
            let answers = batch_answers(&ledger, commands).await;
            self.record_latency(started);
            for (expected, answer) in expected.into_iter().zip(answers) {
                self.take(expected, answer);
            }
        }
        self.tally
    }

    /// The next request: a retry of an earlier accepted one, or a fresh one of the mix.
    pub fn next(&mut self) -> (Command, Expected) {
        let replay =
            self.plan.replay_ppm > 0 && !self.recent.is_empty() && self.rng.below(1_000_000) < self.plan.replay_ppm;
        if replay {
            let index = self.rng.index(self.recent.len());
            let (command, flow_id) = self.recent[index].clone();
            (command, Expected::Retry { flow_id })
        } else {
            self.fresh()
        }
    }

    /// Records what the ledger answered to a request built by [`Caller::next`].
    pub fn take<E: Refusal>(&mut self, expected: Expected, answer: Result<Answered, E>) {
        match expected {
            Expected::Retry { flow_id } => self.take_retry(flow_id, answer),
            Expected::Fresh(fresh) => self.take_fresh(fresh, answer),
        }
    }

    /// A retry must come back as the same flow.
    fn take_retry<E: Refusal>(&mut self, flow_id: u64, answer: Result<Answered, E>) {
        match answer.map(|answer| self.tally.seen(&answer, self.plan.scale)) {
            Ok(Some(seen)) if seen.flow_id == flow_id => self.tally.replayed += 1,
            Ok(Some(seen)) => {
                self.tally.fault(format!("a retry of flow {flow_id} was answered with flow {}", seen.flow_id))
            }
            Ok(None) => {}
            Err(error) => {
                self.tally.reject(error.code());
                self.tally.fault(format!("a retry of flow {flow_id} was refused: {error}"));
            }
        }
    }

    /// A fresh request of the mix. What it refunds, reverses or resolves is taken off the
    /// caller's lists now, whatever the answer: several requests of one batch are built before
    /// any is answered, and none may pick the same hold or the same refund twice.
    fn fresh(&mut self) -> (Command, Expected) {
        let mut kind = self.plan.mix.pick(u32::try_from(self.rng.below(100)).expect("below 100"));
        // A refund needs something to refund: without one the caller sends the forward command.
        if kind == Kind::Undeduct && self.deducts.is_empty() {
            kind = Kind::Deduct;
        }
        if kind == Kind::Uncharge && self.charges.is_empty() {
            kind = Kind::Charge;
        }
        if matches!(kind, Kind::Capture | Kind::Release) && self.holds.is_empty() {
            kind = Kind::Hold;
        }
        let id = self.next_id;
        self.next_id += 1;
        let request_id = format!("r{}.{id}", self.number);
        let order_id = format!("o{}.{id}", self.number);
        let (account, action) = match kind {
            Kind::Charge => {
                let real = CHARGE_REAL_MINOR[self.rng.index(CHARGE_REAL_MINOR.len())];
                let action = Action::Charge {
                    real: Amount::from_minor(real),
                    gift: None,
                    pre: Amount::ZERO,
                    trigger_gift: true,
                };
                (self.plan.accounts.pick(&mut self.rng), action)
            }
            Kind::Deduct => {
                let value = DEDUCT_MINOR_MIN + i64::try_from(self.rng.below(DEDUCT_MINOR_SPAN)).expect("small");
                (self.plan.accounts.pick(&mut self.rng), Action::Deduct { value: Amount::from_minor(value) })
            }
            Kind::Undeduct => {
                let index = self.rng.index(self.deducts.len());
                let original = &mut self.deducts[index];
                let value = if original.left >= 2 { original.left / 2 } else { original.left };
                original.left -= value;
                let action = Action::Undeduct {
                    original_outer_order_id: original.order.clone(),
                    value: Some(Amount::from_minor(value)),
                };
                let account = original.account;
                if original.left <= 0 {
                    self.deducts.swap_remove(index);
                }
                (account, action)
            }
            Kind::Uncharge => {
                let (src, account) = self.charges.pop().expect("checked non-empty");
                (account, Action::Uncharge { src_outer_order_id: src })
            }
            Kind::Hold => {
                let value = DEDUCT_MINOR_MIN + i64::try_from(self.rng.below(DEDUCT_MINOR_SPAN)).expect("small");
                let action = Action::Hold { value: Amount::from_minor(value), expire_time: None };
                (self.plan.accounts.pick(&mut self.rng), action)
            }
            Kind::Capture | Kind::Release => {
                // Resolved once whatever the answer: a refused capture is not retried as another.
                let index = self.rng.index(self.holds.len());
                let (src, account, held) = self.holds.swap_remove(index);
                let action = if kind == Kind::Capture {
                    Action::Capture { src_outer_order_id: src, value: Some(Amount::from_minor((held / 2).max(1))) }
                } else {
                    Action::Release { src_outer_order_id: src }
                };
                (account, action)
            }
        };
        let command = Command::new(&request_id, &order_id, &self.plan.account_ids[account], action);
        let kept = (self.plan.replay_ppm > 0).then(|| command.clone());
        self.tally.sent[kind.index()] += 1;
        (command, Expected::Fresh(Fresh { kind, order_id, account, kept }))
    }

    fn take_fresh<E: Refusal>(&mut self, fresh: Fresh, answer: Result<Answered, E>) {
        let Fresh { kind, order_id, account, kept } = fresh;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.tally.reject(error.code());
                if matches!(error.code(), ErrorCode::Storage | ErrorCode::Corruption) {
                    // The ledger failed, not the request: the check fails and says why.
                    self.tally.fault(format!("{} {order_id} failed: {error}", kind.name()));
                }
                return;
            }
        };
        self.tally.accepted[kind.index()] += 1;
        let Some(seen) = self.tally.seen(&answer, self.plan.scale) else { return };
        let Some(order_value) = self.tally.add_effect(&seen) else { return };
        match kind {
            Kind::Charge => {
                if self.charges.len() >= ORDER_CANDIDATES_MAX {
                    self.charges.drain(..ORDER_CANDIDATES_MAX / 2);
                }
                self.charges.push((order_id, account));
            }
            Kind::Deduct | Kind::Capture => {
                let refundable = Refundable { order: order_id, account, left: -order_value };
                remember(&mut self.deducts, refundable, &mut self.rng);
            }
            Kind::Hold => remember(&mut self.holds, (order_id, account, seen.held.iter().sum()), &mut self.rng),
            Kind::Undeduct | Kind::Uncharge | Kind::Release => {}
        }
        if let Some(command) = kept {
            if self.recent.len() < REPLAY_CANDIDATES {
                self.recent.push((command, seen.flow_id));
            } else {
                let slot = self.rng.index(REPLAY_CANDIDATES);
                self.recent[slot] = (command, seen.flow_id);
            }
        }
    }

    pub fn record_latency(&mut self, started: Instant) {
        self.tally.latencies_us.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
}

/// `commands` through `Ledger::submit_batch`: one answer per command, the batch's own error
/// for each if the call itself failed.
async fn batch_answers(ledger: &Ledger, commands: Vec<Command>) -> Vec<Result<Answered, purse_ledger::Error>> {
    let count = commands.len();
    match ledger.submit_batch(commands).await {
        Ok(items) => items.into_iter().map(|item| item.map(|decided| Answered::Typed(decided.flow))).collect(),
        Err(error) => (0..count).map(|_| Err(error.clone())).collect(),
    }
}

/// The CHARGE of 100.00 (the rule adds 20.00) that opens account number `index` before the
/// timed run, so that its DEDUCTs find accounts.
pub fn opening(plan: &Plan, index: usize) -> Command {
    let id = format!("open.{index}");
    let action = Action::Charge { real: Amount::from_minor(10_000), gift: None, pre: Amount::ZERO, trigger_gift: true };
    Command::new(&id, &id, &plan.account_ids[index], action)
}

impl Tally {
    /// Records the answer to the [`opening`] of account number `index`: every opening must be
    /// accepted.
    pub fn take_opening<E: Refusal>(&mut self, plan: &Plan, index: usize, answer: Result<Answered, E>) {
        self.sent[Kind::Charge.index()] += 1;
        match answer {
            Ok(answer) => {
                self.accepted[Kind::Charge.index()] += 1;
                if let Some(seen) = self.seen(&answer, plan.scale) {
                    self.add_effect(&seen);
                }
            }
            Err(error) => {
                self.reject(error.code());
                self.fault(format!("opening {} failed: {error}", plan.account_ids[index]));
            }
        }
    }
}

/// Opens accounts `range` with their [`opening`], `batch` commands per call. Returns what was
/// accepted.
pub async fn open_accounts(plan: Arc<Plan>, ledger: Ledger, range: std::ops::Range<usize>, batch: usize) -> Tally {
    let mut tally = Tally::default();
    let indexes: Vec<usize> = range.collect();
    for chunk in indexes.chunks(batch.max(1)) {
        let commands: Vec<Command> = chunk.iter().map(|&index| opening(&plan, index)).collect();
        for (&index, answer) in chunk.iter().zip(batch_answers(&ledger, commands).await) {
            tally.take_opening(&plan, index, answer);
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_picks_by_percent() {
        let mix = Mix::parse("charge=40,deduct=45,undeduct=10,uncharge=5").unwrap();
        assert_eq!(mix.0, [40, 45, 10, 5, 0, 0, 0]);
        assert_eq!(mix.pick(0), Kind::Charge);
        assert_eq!(mix.pick(39), Kind::Charge);
        assert_eq!(mix.pick(40), Kind::Deduct);
        assert_eq!(mix.pick(85), Kind::Undeduct);
        assert_eq!(mix.pick(99), Kind::Uncharge);
        assert_eq!(Mix::parse("charge=100").unwrap().0, [100, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Mix::parse("Deduct=50%, charge=50%").unwrap().0, [50, 50, 0, 0, 0, 0, 0]);
        let holds = Mix::parse("charge=40,deduct=30,hold=15,capture=10,release=5").unwrap();
        assert_eq!(holds.0, [40, 30, 0, 0, 15, 10, 5]);
        assert_eq!((holds.pick(70), holds.pick(85), holds.pick(95)), (Kind::Hold, Kind::Capture, Kind::Release));
        for bad in ["charge=40", "charge=50,charge=50", "refund=100", "charge", "charge=x"] {
            assert!(Mix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zipf_is_hot_at_the_head_and_covers_the_tail() {
        let accounts = Accounts::zipf(10_000);
        let mut rng = Rng::new(7);
        let mut counts = vec![0u32; 10_000];
        for _ in 0..200_000 {
            counts[accounts.pick(&mut rng)] += 1;
        }
        // 1/H(10000) ≈ 10.2 % to the first, half that to the second.
        assert!((19_000..22_000).contains(&counts[0]), "{}", counts[0]);
        assert!((9_000..11_500).contains(&counts[1]), "{}", counts[1]);
        assert!(counts[5_000..].iter().any(|&count| count > 0));
        let uniform = Accounts::uniform(3);
        assert!((0..100).all(|_| uniform.pick(&mut rng) < 3));
    }
}

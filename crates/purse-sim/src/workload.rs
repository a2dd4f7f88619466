//! The workload: what the simulated clients send, drawn from the seed.
//!
//! Several clients write to a few accounts (so their commands contend), with every command
//! type (spec §2, §8–§10: holds with and without an expiry near the simulated clock, whole and
//! partial captures of open, resolved, unknown and expired holds, releases, freezes and
//! unfreezes, closes, transfers with and without a value to existing and new accounts), rules
//! changes, groups, retries of earlier requests (the same command: a replay), conflicting
//! retries (the same request id, another command) and order ids used twice. Now and then an
//! account is closed out: its holds released, everything moved to another account, and closed.
//! Expiry (spec §11): CHARGEs and IMPORTs with gift and pre expiries seconds ahead of the
//! clock (or already past: refused), rules with `gift_valid_days`, CLEARs, and sweeps (the
//! RELEASE of each hold expired at the sweep's time, then an EXPIRE of every account) as a
//! group or one request at a time, now and then days ahead.
//! A request answered with a storage error is indeterminate: it is sent again, unchanged, after
//! the restart, until it gets a definitive answer.

use purse_core::{
    Action, Amount, ClearBuckets, Command, DeductionOrder, GiftRule, RuleSet, Tier, TierGift, Timestamp, Zone,
    BASIS_POINTS_ONE,
};
use purse_ledger::sim_support::SimRequest;
use purse_ledger::GroupMode;

use crate::rng::Rng;

/// The simulated time a run starts at (2023-11-14), in seconds.
pub const START: i64 = 1_700_000_000;
/// Requests remembered for retries at most (a random one is replaced beyond it).
const HISTORY_MAX: usize = 256;
/// Holds remembered for captures and releases at most.
const HOLDS_MAX: usize = 64;
/// Accounts written to at most (a transfer opens new ones only below it).
const ACCOUNTS_MAX: usize = 8;
const BRANDS: [Option<&str>; 3] = [None, Some("brand-a"), Some("brand-b")];

#[derive(Debug, Clone)]
struct Account {
    id: String,
    card: Option<String>,
    brand: Option<String>,
}

/// A HOLD sent: what CAPTURE and RELEASE refer to (whether or not it was written).
#[derive(Debug, Clone)]
struct Hold {
    order_id: String,
    account_id: String,
    /// A CAPTURE or RELEASE of it was sent (it may have been refused).
    resolved: bool,
    /// Seconds; what the sweep goes by.
    expire_time: Option<i64>,
}

#[derive(Debug)]
pub struct Workload {
    rng: Rng,
    clients: usize,
    accounts: Vec<Account>,
    /// Accounts closed out: written to now and then, to be refused as ACCOUNT_CLOSED.
    retired: Vec<Account>,
    /// Accounts made so far (the next one's number).
    made: usize,
    /// Requests sent so far, per client.
    sent: Vec<u64>,
    /// Order ids of CHARGEs and of consumptions (DEDUCTs and CAPTUREs) sent, with their
    /// accounts: what UNCHARGE and UNDEDUCT refer to (whether or not they were written).
    charges: Vec<(String, String)>,
    deducts: Vec<(String, String)>,
    holds: Vec<Hold>,
    history: Vec<SimRequest>,
    /// Requests answered with a storage error, to send again.
    outstanding: Vec<SimRequest>,
    /// The simulated time the current batch is sent at.
    now: i64,
}

impl Workload {
    pub fn new(mut rng: Rng) -> Workload {
        let clients = usize::try_from(rng.between(4, 16)).expect("small");
        let account_count = usize::try_from(rng.between(2, 6)).expect("small");
        let accounts = (0..account_count).map(account).collect();
        Workload {
            rng,
            clients,
            accounts,
            retired: Vec::new(),
            made: account_count,
            sent: vec![0; clients],
            charges: Vec::new(),
            deducts: Vec::new(),
            holds: Vec::new(),
            history: Vec::new(),
            outstanding: Vec::new(),
            now: START,
        }
    }

    pub fn clients(&self) -> usize {
        self.clients
    }

    /// The next batch, sent at simulated time `now`: every outstanding request first, then up
    /// to one new request per client (a close-out counts as one).
    pub fn batch(&mut self, now: i64) -> Vec<SimRequest> {
        self.now = now;
        let mut batch = std::mem::take(&mut self.outstanding);
        let count = self.rng.index(self.clients) + 1;
        for _ in 0..count {
            self.requests(&mut batch);
        }
        batch
    }

    /// Only the requests still waiting for a definitive answer.
    pub fn retries(&mut self) -> Vec<SimRequest> {
        std::mem::take(&mut self.outstanding)
    }

    pub fn has_outstanding(&self) -> bool {
        !self.outstanding.is_empty()
    }

    /// `request` got no definitive answer: it is sent again in the next batch.
    pub fn unanswered(&mut self, request: SimRequest) {
        self.outstanding.push(request);
    }

    fn remember(&mut self, request: &SimRequest) {
        if self.history.len() < HISTORY_MAX {
            self.history.push(request.clone());
        } else {
            let slot = self.rng.index(HISTORY_MAX);
            self.history[slot] = request.clone();
        }
    }

    /// One client's next request (a close-out: several, in order), appended to `batch`.
    fn requests(&mut self, batch: &mut Vec<SimRequest>) {
        let roll = self.rng.below(100);
        let request = match roll {
            0..=4 if !self.history.is_empty() => {
                batch.push(self.retry());
                return;
            }
            5..=8 => match self.conflicting() {
                Some(request) => {
                    batch.push(request);
                    return;
                }
                None => SimRequest::Submit(Box::new(self.command())),
            },
            9..=11 => {
                batch.push(SimRequest::SetRules(self.brand(), self.rules()));
                return;
            }
            12..=17 => self.group(),
            20..=21 => {
                for request in self.sweep() {
                    self.remember(&request);
                    batch.push(request);
                }
                return;
            }
            18..=19 => {
                for request in self.close_out() {
                    self.remember(&request);
                    batch.push(request);
                }
                return;
            }
            _ => SimRequest::Submit(Box::new(self.command())),
        };
        self.remember(&request);
        batch.push(request);
    }

    /// An earlier request, sent again unchanged.
    fn retry(&mut self) -> SimRequest {
        self.history[self.rng.index(self.history.len())].clone()
    }

    /// An earlier request id with another command (another order id, or for a CHARGE or IMPORT
    /// now and then only another gift expiry): must be IDEMPOTENCY_CONFLICT if the first one was
    /// written.
    fn conflicting(&mut self) -> Option<SimRequest> {
        let submits: Vec<&Command> = self
            .history
            .iter()
            .filter_map(|request| match request {
                SimRequest::Submit(command) => Some(command.as_ref()),
                _ => None,
            })
            .collect();
        let mut command = (*submits.get(self.rng.index(submits.len().max(1)))?).clone();
        let credit = matches!(command.action, Action::Charge { .. } | Action::Import { .. });
        if credit && self.rng.chance(300) {
            // Only a lot expiry differs (spec §11): the fingerprint must tell them apart.
            command.gift_expire_time = match command.gift_expire_time {
                Some(_) => None,
                None => Some(Timestamp(self.now + 30)),
            };
        } else {
            command.outer_order_id = self.fresh_ids().1;
        }
        Some(SimRequest::Submit(Box::new(command)))
    }

    /// A new request id and order id, from a random client.
    fn fresh_ids(&mut self) -> (String, String) {
        let client = self.rng.index(self.clients);
        self.sent[client] += 1;
        let number = self.sent[client];
        (format!("c{client}-r{number}"), format!("c{client}-o{number}"))
    }

    fn group(&mut self) -> SimRequest {
        let size = self.rng.between(2, 8);
        let mut commands: Vec<Command> = (0..size).map(|_| self.command()).collect();
        if self.rng.chance(200) {
            // A retry inside a group: a replay, or a conflict the group must report.
            if let Some(SimRequest::Submit(command)) = self.rng.pick(&self.history).cloned() {
                commands.push(*command);
            }
        }
        SimRequest::Group(commands, self.mode())
    }

    fn mode(&mut self) -> GroupMode {
        match self.rng.below(10) {
            0 => GroupMode::DryRun,
            1..=5 => GroupMode::AllOrNothing,
            _ => GroupMode::Partial,
        }
    }

    /// Empties an account and closes it: (maybe an UNFREEZE,) a RELEASE of each of its holds
    /// not yet resolved, a TRANSFER of everything to another account of its brand (a new one
    /// if there is none), and a CLOSE; one after the other or as one group. The account is
    /// retired from the workload's targets, closed or not.
    fn close_out(&mut self) -> Vec<SimRequest> {
        if self.accounts.len() < 2 {
            return vec![SimRequest::Submit(Box::new(self.command()))];
        }
        let source = self.accounts.remove(self.rng.index(self.accounts.len()));
        let destination = match self.accounts.iter().filter(|account| account.brand == source.brand).count() {
            0 => self.new_account(source.brand.clone()),
            same => {
                let index = self.rng.index(same);
                self.accounts
                    .iter()
                    .filter(|account| account.brand == source.brand)
                    .nth(index)
                    .cloned()
                    .expect("counted")
            }
        };
        let mut actions = Vec::new();
        if self.rng.chance(300) {
            actions.push(Action::Unfreeze);
        }
        for hold in self.holds.iter_mut().filter(|hold| hold.account_id == source.id && !hold.resolved) {
            hold.resolved = true;
            actions.push(Action::Release { src_outer_order_id: hold.order_id.clone() });
        }
        actions.push(Action::Transfer { to_account_id: destination.id.clone(), value: None });
        actions.push(Action::Close);
        let commands: Vec<Command> = actions
            .into_iter()
            .map(|action| {
                let (request_id, order_id) = self.fresh_ids();
                let mut command = Command::new(&request_id, &order_id, &source.id, action);
                command.remark = Some("account closed out".into());
                if matches!(command.action, Action::Transfer { .. }) {
                    command.card_id.clone_from(&destination.card);
                }
                command
            })
            .collect();
        self.retired.push(source);
        if self.accounts.len() < 2 {
            let brand = BRANDS[self.made % BRANDS.len()].map(str::to_owned);
            self.new_account(brand);
        }
        if self.rng.coin() {
            commands.into_iter().map(|command| SimRequest::Submit(Box::new(command))).collect()
        } else {
            vec![SimRequest::Group(commands, self.mode())]
        }
    }

    /// A new account to write to, of `brand` (the brand a transfer would open it with).
    fn new_account(&mut self, brand: Option<String>) -> Account {
        let mut made = account(self.made);
        self.made += 1;
        made.brand = brand;
        self.accounts.push(made.clone());
        made
    }

    fn brand(&mut self) -> Option<String> {
        self.rng.pick(&BRANDS).copied().flatten().map(str::to_owned)
    }

    /// The account a command is for: now and then a retired one.
    fn target(&mut self) -> Account {
        if !self.retired.is_empty() && self.rng.chance(50) {
            return self.retired[self.rng.index(self.retired.len())].clone();
        }
        self.accounts[self.rng.index(self.accounts.len())].clone()
    }

    /// The account an order was sent for, mostly; else any target (INVALID_ARGUMENT if the
    /// order was written, on another account).
    fn owner(&mut self, account_id: Option<&str>) -> Account {
        match account_id {
            Some(id) if !self.rng.chance(100) => {
                let known = self.accounts.iter().chain(&self.retired).find(|account| account.id == id);
                known.cloned().unwrap_or_else(|| self.target())
            }
            _ => self.target(),
        }
    }

    /// A fresh command of a random type.
    fn command(&mut self) -> Command {
        let (request_id, order_id) = self.fresh_ids();
        let roll = self.rng.below(100);
        let (action, account, card) = match roll {
            0..=19 => (self.charge(), self.target(), None),
            20..=35 => (Action::Deduct { value: self.amount(1, 30_000) }, self.target(), None),
            36..=41 => {
                let (action, owner) = self.undeduct();
                (action, self.owner(owner.as_deref()), None)
            }
            42..=45 => {
                let (action, owner) = self.uncharge();
                (action, self.owner(owner.as_deref()), None)
            }
            46..=52 => (
                Action::Import {
                    real: self.amount(0, 20_000),
                    gift: self.amount(0, 5_000),
                    pre: self.amount(0, 5_000),
                },
                self.target(),
                None,
            ),
            53..=58 => (
                Action::Adjust {
                    real: self.amount(-5_000, 5_000),
                    gift: self.amount(-2_000, 2_000),
                    pre: self.amount(-1_000, 1_000),
                },
                self.target(),
                None,
            ),
            59..=68 => (self.hold(), self.target(), None),
            69..=78 => {
                let (action, owner) = self.capture();
                (action, self.owner(owner.as_deref()), None)
            }
            79..=83 => {
                let (action, owner) = self.release();
                (action, self.owner(owner.as_deref()), None)
            }
            // Rarer than UNFREEZE, so that an account is frozen about a quarter of the time.
            84 => (Action::Freeze, self.target(), None),
            85..=87 => (Action::Unfreeze, self.target(), None),
            88..=89 => (Action::Close, self.target(), None),
            90..=91 => (self.clear(), self.target(), None),
            _ => {
                let source = self.target();
                let (action, card) = self.transfer(&source);
                (action, source, card)
            }
        };
        let mut command = Command::new(&request_id, &order_id, &account.id, action);
        self.dress(&mut command, &account);
        if let Some(card) = card {
            command.card_id = card;
        }
        let order = (command.outer_order_id.clone(), account.id.clone());
        match &command.action {
            Action::Charge { .. } => self.charges.push(order),
            Action::Deduct { .. } | Action::Capture { .. } => self.deducts.push(order),
            Action::Hold { expire_time, .. } => {
                let expire_time = expire_time.map(|time| time.0);
                let hold = Hold { order_id: order.0, account_id: order.1, resolved: false, expire_time };
                if self.holds.len() < HOLDS_MAX {
                    self.holds.push(hold);
                } else {
                    let slot = self.rng.index(HOLDS_MAX);
                    self.holds[slot] = hold;
                }
            }
            _ => {}
        }
        command
    }

    /// The account's references, the remark an ADJUST or a status change needs, a business
    /// date, and now and then a defect (a wrong brand, a missing remark, an order id used
    /// before).
    fn dress(&mut self, command: &mut Command, account: &Account) {
        let opens = matches!(command.action, Action::Charge { .. } | Action::Import { .. });
        if opens || self.rng.chance(300) {
            command.card_id.clone_from(&account.card);
            command.brand_id.clone_from(&account.brand);
        }
        if self.rng.chance(20) {
            command.brand_id = Some("brand-wrong".into());
        }
        let remarked = matches!(
            command.action,
            Action::Adjust { .. } | Action::Freeze | Action::Unfreeze | Action::Close | Action::Clear { .. }
        );
        if remarked && !self.rng.chance(50) {
            command.remark = Some(
                match command.action {
                    Action::Adjust { .. } => "operator correction",
                    Action::Freeze => "card reported lost",
                    Action::Unfreeze => "card found",
                    Action::Clear { .. } => "promotion ended",
                    _ => "customer left",
                }
                .into(),
            );
        }
        if matches!(command.action, Action::Import { .. }) {
            command.biz_date = match self.rng.below(10) {
                0..=5 => Some(Timestamp(START - self.rng.between(0, 86_400 * 365))),
                // Far in the future: INVALID_ARGUMENT whatever the simulated time.
                6 => Some(Timestamp(START + 86_400 * 365 * 100)),
                _ => None,
            };
        }
        if opens {
            // spec §11: seconds ahead of the clock, so that sweeps meet them; now and then at or
            // before the order_time (refused), or for a bucket the command does not credit.
            command.gift_expire_time = self.expiry(400);
            command.pre_expire_time = self.expiry(150);
        } else if self.rng.chance(5) {
            command.gift_expire_time = self.expiry(1000);
        }
        if self.rng.chance(30) {
            if let Some((order_id, _)) = self.rng.pick(&self.charges).cloned() {
                command.outer_order_id = order_id;
            }
        }
    }

    /// A lot expiry given with `per_mille` chance: mostly 1 to 40 seconds ahead.
    fn expiry(&mut self, per_mille: u64) -> Option<Timestamp> {
        if !self.rng.chance(per_mille) {
            return None;
        }
        Some(Timestamp(match self.rng.below(10) {
            0 => self.now - self.rng.between(0, 3),
            _ => self.now + self.rng.between(1, 40),
        }))
    }

    /// spec §11 CLEAR of GIFT, PRE or both.
    fn clear(&mut self) -> Action {
        let buckets = [ClearBuckets::Gift, ClearBuckets::Pre, ClearBuckets::All][self.rng.index(3)];
        Action::Clear { buckets }
    }

    /// The sweep at a time near the clock (now and then days ahead, past every
    /// `gift_valid_days`): the RELEASE of each hold sent with an expiry at or before it, then an
    /// EXPIRE of every account written to; as one group (mostly Partial: a hold captured since
    /// is refused, the rest goes on) or one request each.
    fn sweep(&mut self) -> Vec<SimRequest> {
        let time = match self.rng.below(10) {
            0 => self.now + 86_400 * self.rng.between(1, 3),
            1..=2 => self.now - self.rng.between(1, 10),
            _ => self.now,
        };
        let time = Timestamp(time);
        let zone = Zone::CHINA;
        let mut commands: Vec<Command> = Vec::new();
        // Holds resolved since are left out, but for one now and then (ALREADY_REVERSED).
        let stale = self.rng.chance(100);
        for hold in self.holds.iter_mut() {
            if hold.expire_time.is_some_and(|expire| expire <= time.0) && (!hold.resolved || stale) {
                hold.resolved = true;
                commands.push(Command::expire_hold(&hold.account_id, &hold.order_id, time, zone));
            }
        }
        // Retired accounts are mostly closed (ACCOUNT_CLOSED): only now and then.
        let retired = if self.rng.chance(100) { self.retired.as_slice() } else { &[] };
        for account in self.accounts.iter().chain(retired) {
            commands.push(Command::expire(&account.id, time, zone));
        }
        if self.rng.chance(300) {
            commands.into_iter().map(|command| SimRequest::Submit(Box::new(command))).collect()
        } else {
            let mode = if self.rng.chance(200) { self.mode() } else { GroupMode::Partial };
            vec![SimRequest::Group(commands, mode)]
        }
    }

    fn charge(&mut self) -> Action {
        let real = self.amount(0, 50_000);
        let pre = if self.rng.chance(300) { self.amount(0, 10_000) } else { Amount::ZERO };
        match self.rng.below(20) {
            0..=7 => Action::Charge { real, gift: None, pre, trigger_gift: true },
            8..=12 => Action::Charge { real, gift: Some(self.amount(0, 5_000)), pre, trigger_gift: false },
            13 => Action::Charge { real, gift: Some(self.amount(0, 100)), pre, trigger_gift: true },
            14 => Action::Charge {
                real: Amount::from_minor(-self.rng.between(1, 100)),
                gift: None,
                pre,
                trigger_gift: false,
            },
            15 => Action::Charge {
                real: Amount::from_minor(i64::MAX - self.rng.between(0, 10)),
                gift: None,
                pre,
                trigger_gift: false,
            },
            _ => Action::Charge { real, gift: None, pre, trigger_gift: false },
        }
    }

    /// An UNDEDUCT of a DEDUCT or CAPTURE sent (or of no order), and the account it was for.
    fn undeduct(&mut self) -> (Action, Option<String>) {
        let (original, owner) = match self.rng.pick(&self.deducts).cloned() {
            Some((order_id, account_id)) if !self.rng.chance(50) => (order_id, Some(account_id)),
            _ => ("no-such-order".to_owned(), None),
        };
        let value = if self.rng.coin() { None } else { Some(self.amount(1, 10_000)) };
        (Action::Undeduct { original_outer_order_id: original, value }, owner)
    }

    fn uncharge(&mut self) -> (Action, Option<String>) {
        let (source, owner) = match self.rng.pick(&self.charges).cloned() {
            Some((order_id, account_id)) if !self.rng.chance(50) => (order_id, Some(account_id)),
            _ => ("no-such-order".to_owned(), None),
        };
        (Action::Uncharge { src_outer_order_id: source }, owner)
    }

    /// A HOLD: without expiry, expiring within seconds of the simulated clock (so that some
    /// captures come too late), a day on, or at or before now (INVALID_ARGUMENT).
    fn hold(&mut self) -> Action {
        let value = self.amount(1, 20_000);
        let expire_time = match self.rng.below(20) {
            0..=8 => None,
            9..=14 => Some(Timestamp(self.now + self.rng.between(1, 20))),
            15..=18 => Some(Timestamp(self.now + 86_400)),
            _ => Some(Timestamp(self.now - self.rng.between(0, 3))),
        };
        Action::Hold { value, expire_time }
    }

    /// The order a CAPTURE or RELEASE names: mostly a hold not yet resolved, else one already
    /// resolved, an unknown one, or an order that is not a hold.
    fn hold_reference(&mut self) -> (String, Option<String>) {
        let open: Vec<usize> = (0..self.holds.len()).filter(|&index| !self.holds[index].resolved).collect();
        match self.rng.below(20) {
            0..=13 if !open.is_empty() => {
                let index = open[self.rng.index(open.len())];
                // Marked resolved most of the time; a refused capture leaves it open.
                if !self.rng.chance(200) {
                    self.holds[index].resolved = true;
                }
                let hold = &self.holds[index];
                (hold.order_id.clone(), Some(hold.account_id.clone()))
            }
            0..=16 if !self.holds.is_empty() => {
                let hold = &self.holds[self.rng.index(self.holds.len())];
                (hold.order_id.clone(), Some(hold.account_id.clone()))
            }
            17..=18 => ("no-such-hold".to_owned(), None),
            _ => match self.rng.pick(&self.deducts).cloned() {
                Some((order_id, account_id)) => (order_id, Some(account_id)),
                None => ("no-such-hold".to_owned(), None),
            },
        }
    }

    /// A CAPTURE, whole or of part of the hold (more than it holds: INVALID_AMOUNT).
    fn capture(&mut self) -> (Action, Option<String>) {
        let (source, owner) = self.hold_reference();
        let value = match self.rng.below(10) {
            0..=4 => None,
            5..=8 => Some(self.amount(1, 10_000)),
            _ => Some(self.amount(10_000, 30_000)),
        };
        (Action::Capture { src_outer_order_id: source, value }, owner)
    }

    fn release(&mut self) -> (Action, Option<String>) {
        let (source, owner) = self.hold_reference();
        (Action::Release { src_outer_order_id: source }, owner)
    }

    /// A TRANSFER from `source`, with a value or of everything available, mostly to an account
    /// of its brand, else to a new account, one of another brand, a retired one or itself; and
    /// the card_id it names (the destination's, a new card for a new account).
    fn transfer(&mut self, source: &Account) -> (Action, Option<Option<String>>) {
        let value = if self.rng.chance(300) { None } else { Some(self.amount(1, 30_000)) };
        let same_brand: Vec<Account> = self
            .accounts
            .iter()
            .filter(|account| account.brand == source.brand && account.id != source.id)
            .cloned()
            .collect();
        let roll = self.rng.below(20);
        let destination = match roll {
            0..=10 if !same_brand.is_empty() => same_brand[self.rng.index(same_brand.len())].clone(),
            0..=14 if self.accounts.len() < ACCOUNTS_MAX => self.new_account(source.brand.clone()),
            15 if !self.retired.is_empty() => self.retired[self.rng.index(self.retired.len())].clone(),
            16 => source.clone(),
            _ => self.accounts[self.rng.index(self.accounts.len())].clone(),
        };
        let card = match self.rng.below(10) {
            0..=5 => Some(destination.card.clone()),
            6 => Some(Some("card-wrong".to_owned())),
            _ => None,
        };
        (Action::Transfer { to_account_id: destination.id, value }, card)
    }

    fn amount(&mut self, low: i64, high: i64) -> Amount {
        Amount::from_minor(self.rng.between(low, high))
    }

    fn rules(&mut self) -> RuleSet {
        let deduction_order = match self.rng.below(3) {
            0 => DeductionOrder::Percent,
            1 => DeductionOrder::RealBeforeGift,
            _ => DeductionOrder::GiftBeforeReal,
        };
        let tier_count = self.rng.between(1, 3);
        let tier = |rng: &mut Rng, index: i64, proportional: bool| Tier {
            real_value: Amount::from_minor(index * 10_000 + rng.between(1, 9_999)),
            gift: if proportional {
                TierGift::BasisPoints(rng.between(0, BASIS_POINTS_ONE / 2))
            } else {
                TierGift::Amount(Amount::from_minor(rng.between(0, 3_000)))
            },
        };
        let gift_rule = match self.rng.below(3) {
            0 => GiftRule::None,
            1 => GiftRule::Customized {
                full_gift_switch: self.rng.coin(),
                tiers: (0..tier_count).map(|index| tier(&mut self.rng, index, false)).collect(),
            },
            _ => GiftRule::Proportional {
                tiers: (0..tier_count).map(|index| tier(&mut self.rng, index, true)).collect(),
            },
        };
        let gift_valid_days =
            if self.rng.chance(300) { Some(u32::try_from(self.rng.between(1, 2)).expect("small")) } else { None };
        RuleSet { deduction_order, gift_rule, gift_valid_days }
    }
}

/// The `index`th account the workload makes: every other one with a card, brands in turn.
fn account(index: usize) -> Account {
    Account {
        id: format!("acct-{index}"),
        card: index.is_multiple_of(2).then(|| format!("card-{index}")),
        brand: BRANDS[index % BRANDS.len()].map(str::to_owned),
    }
}

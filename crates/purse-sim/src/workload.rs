//! The workload: what the simulated clients send, drawn from the seed.
//!
//! Several clients write to a few accounts (so their commands contend), with every command
//! type, rules changes, groups, retries of earlier requests (the same command: a replay),
//! conflicting retries (the same request id, another command) and order ids used twice. A
//! request answered with a storage error is indeterminate: it is sent again, unchanged, after
//! the restart, until it gets a definitive answer.

use purse_core::{
    Action, Amount, Command, DeductionOrder, GiftRule, RuleSet, Tier, TierGift, Timestamp, BASIS_POINTS_ONE,
};
use purse_ledger::sim_support::SimRequest;
use purse_ledger::GroupMode;

use crate::rng::Rng;

/// The simulated time a run starts at (2023-11-14), in seconds.
pub const START: i64 = 1_700_000_000;
/// Requests remembered for retries at most (a random one is replaced beyond it).
const HISTORY_MAX: usize = 256;
const BRANDS: [Option<&str>; 3] = [None, Some("brand-a"), Some("brand-b")];

#[derive(Debug, Clone)]
struct Account {
    id: String,
    card: Option<String>,
    brand: Option<String>,
}

#[derive(Debug)]
pub struct Workload {
    rng: Rng,
    clients: usize,
    accounts: Vec<Account>,
    /// Requests sent so far, per client.
    sent: Vec<u64>,
    /// Order ids of CHARGEs and DEDUCTs sent, with their accounts: what UNCHARGE and UNDEDUCT
    /// refer to (whether or not they were written).
    charges: Vec<(String, String)>,
    deducts: Vec<(String, String)>,
    history: Vec<SimRequest>,
    /// Requests answered with a storage error, to send again.
    outstanding: Vec<SimRequest>,
}

impl Workload {
    pub fn new(mut rng: Rng) -> Workload {
        let clients = usize::try_from(rng.between(4, 16)).expect("small");
        let account_count = rng.between(2, 6);
        let accounts = (0..account_count)
            .map(|index| {
                let index = usize::try_from(index).expect("small");
                Account {
                    id: format!("acct-{index}"),
                    card: (index % 2 == 0).then(|| format!("card-{index}")),
                    brand: BRANDS[index % BRANDS.len()].map(str::to_owned),
                }
            })
            .collect();
        Workload {
            rng,
            clients,
            accounts,
            sent: vec![0; clients],
            charges: Vec::new(),
            deducts: Vec::new(),
            history: Vec::new(),
            outstanding: Vec::new(),
        }
    }

    pub fn clients(&self) -> usize {
        self.clients
    }

    /// The next batch, sent at simulated time `_now`: every outstanding request first, then up
    /// to one new request per client.
    pub fn batch(&mut self, _now: i64) -> Vec<SimRequest> {
        let mut batch = std::mem::take(&mut self.outstanding);
        let count = self.rng.index(self.clients) + 1;
        for _ in 0..count {
            let request = self.request();
            batch.push(request);
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

    fn request(&mut self) -> SimRequest {
        let roll = self.rng.below(100);
        let request = match roll {
            0..=4 if !self.history.is_empty() => return self.retry(),
            5..=8 => match self.conflicting() {
                Some(request) => return request,
                None => SimRequest::Submit(Box::new(self.command())),
            },
            9..=11 => return SimRequest::SetRules(self.brand(), self.rules()),
            12..=17 => self.group(),
            _ => SimRequest::Submit(Box::new(self.command())),
        };
        self.remember(&request);
        request
    }

    /// An earlier request, sent again unchanged.
    fn retry(&mut self) -> SimRequest {
        self.history[self.rng.index(self.history.len())].clone()
    }

    /// An earlier request id with another command: must be IDEMPOTENCY_CONFLICT if the first
    /// one was written.
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
        let fresh = self.fresh_ids().1;
        command.outer_order_id = fresh;
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
        let mode = match self.rng.below(10) {
            0 => GroupMode::DryRun,
            1..=5 => GroupMode::AllOrNothing,
            _ => GroupMode::Partial,
        };
        SimRequest::Group(commands, mode)
    }

    fn brand(&mut self) -> Option<String> {
        self.rng.pick(&BRANDS).copied().flatten().map(str::to_owned)
    }

    /// A fresh command of a random type.
    fn command(&mut self) -> Command {
        let (request_id, order_id) = self.fresh_ids();
        let account = self.accounts[self.rng.index(self.accounts.len())].clone();
        let roll = self.rng.below(100);
        let action = match roll {
            0..=29 => self.charge(),
            30..=54 => Action::Deduct { value: self.amount(1, 30_000) },
            55..=64 => self.undeduct(),
            65..=71 => self.uncharge(),
            72..=81 => {
                Action::Import { real: self.amount(0, 20_000), gift: self.amount(0, 5_000), pre: self.amount(0, 5_000) }
            }
            _ => Action::Adjust {
                real: self.amount(-5_000, 5_000),
                gift: self.amount(-2_000, 2_000),
                pre: self.amount(-1_000, 1_000),
            },
        };
        let mut command = Command::new(&request_id, &order_id, &account.id, action);
        self.dress(&mut command, &account);
        match &command.action {
            Action::Charge { .. } => self.charges.push((command.outer_order_id.clone(), account.id.clone())),
            Action::Deduct { .. } => self.deducts.push((command.outer_order_id.clone(), account.id.clone())),
            _ => {}
        }
        command
    }

    /// The account's references, the remark an ADJUST needs, a business date, and now and then
    /// a defect (a wrong brand, a missing remark, an order id used before).
    fn dress(&mut self, command: &mut Command, account: &Account) {
        let opens = matches!(command.action, Action::Charge { .. } | Action::Import { .. });
        if opens || self.rng.chance(300) {
            command.card_id.clone_from(&account.card);
            command.brand_id.clone_from(&account.brand);
        }
        if self.rng.chance(20) {
            command.brand_id = Some("brand-wrong".into());
        }
        if matches!(command.action, Action::Adjust { .. }) && !self.rng.chance(50) {
            command.remark = Some("operator correction".into());
        }
        if matches!(command.action, Action::Import { .. }) {
            command.biz_date = match self.rng.below(10) {
                0..=5 => Some(Timestamp(START - self.rng.between(0, 86_400 * 365))),
                // Far in the future: INVALID_ARGUMENT whatever the simulated time.
                6 => Some(Timestamp(START + 86_400 * 365 * 100)),
                _ => None,
            };
        }
        if self.rng.chance(30) {
            if let Some((order_id, _)) = self.rng.pick(&self.charges).cloned() {
                command.outer_order_id = order_id;
            }
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

    fn undeduct(&mut self) -> Action {
        let original = match self.rng.pick(&self.deducts).cloned() {
            Some((order_id, _)) if !self.rng.chance(50) => order_id,
            _ => "no-such-order".to_owned(),
        };
        let value = if self.rng.coin() { None } else { Some(self.amount(1, 10_000)) };
        Action::Undeduct { original_outer_order_id: original, value }
    }

    fn uncharge(&mut self) -> Action {
        let source = match self.rng.pick(&self.charges).cloned() {
            Some((order_id, _)) if !self.rng.chance(50) => order_id,
            _ => "no-such-order".to_owned(),
        };
        Action::Uncharge { src_outer_order_id: source }
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
        RuleSet { deduction_order, gift_rule }
    }
}

//! Model-based state-machine test: random sequences of commands, rules changes and expiry
//! sweeps run against purse-core (`decide` + `apply`) and against the reference model; every
//! result, balance, lot (spec §11) and invariant is compared after every step. Every few steps
//! the log is folded again, whole and one account at a time (`State::for_one_account`, how
//! spec §12's history views fold), and must give the live state.
//!
//! `PROPTEST_CASES` sets the number of cases (default 1000). Failure seeds are saved in
//! `proptest-regressions/state_machine.txt` and replayed first on every run.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestRunner};
use purse_core::{
    apply, apply_rules, decide, decide_rules, Account, Action, Buckets, Config, Context, Decision, Entry, Error, Flow,
    FlowType, State, Timestamp,
};
use purse_proptests::model::{Kind, Model, Outcome, Parts};
use support::{describe, Resolver, Step, START};
/// How often (in steps) the whole log is folded again and compared with the live state.
const REPLAY_EVERY: usize = 4;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(1000)
}

fn parts(buckets: &Buckets) -> Parts {
    Parts::new(buckets.real.minor(), buckets.gift.minor(), buckets.pre.minor())
}

fn show_core(result: &Result<Decision, Error>) -> String {
    match result {
        Ok(Decision { flow, transfer_in }) => {
            let mut text =
                format!("Ok(affected {:?} held {:?}", parts(&flow.affected).to_array(), parts(&flow.held).to_array());
            if let Some(flow_in) = transfer_in {
                text.push_str(&format!(" -> {} {:?}", flow_in.account_id, parts(&flow_in.affected).to_array()));
            }
            text + ")"
        }
        Err(error) => format!("Err({}: {error})", core_code(error)),
    }
}

/// purse-core's answer as the model names it: the code, or `SKIP` for a command that had
/// nothing to do (`Error::is_skip`).
fn core_code(error: &Error) -> &'static str {
    if error.is_skip() {
        purse_proptests::model::SKIP
    } else {
        error.code().as_str()
    }
}

fn show_model(result: &Result<Outcome, &str>) -> String {
    match result {
        Ok(outcome) => {
            let mut text = format!("Ok(affected {:?} held {:?}", outcome.affected.to_array(), outcome.held.to_array());
            if let Some(flow_in) = &outcome.transfer_in {
                text.push_str(&format!(" -> {} {:?}", flow_in.account_id, flow_in.affected.to_array()));
            }
            text + ")"
        }
        Err(code) => format!("Err({code})"),
    }
}

/// Both sides of the test and what has been done so far.
struct Harness {
    state: State,
    model: Model,
    log: Vec<Entry>,
    resolver: Resolver,
    /// Per bucket, the sum of every accepted flow's `affected`.
    flowed: [i128; 3],
    /// Every step so far, resolved, with its outcome: the reproduction of a failure.
    transcript: Vec<String>,
    /// Every account purse-core has closed, as it stood when it closed: it must never change.
    closed: std::collections::BTreeMap<String, Account>,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            state: State::new(Config::default()),
            model: Model::new(),
            log: Vec::new(),
            resolver: Resolver::default(),
            flowed: [0; 3],
            transcript: Vec::new(),
            closed: std::collections::BTreeMap::new(),
        }
    }

    fn fail(&self, index: usize, what: String) -> String {
        let mut message = format!("step {index}: {what}\n--- steps so far (amounts in minor units) ---\n");
        for (number, line) in self.transcript.iter().enumerate() {
            message.push_str(&format!("{number:>3}: {line}\n"));
        }
        message
    }

    fn run(&mut self, index: usize, step: &Step) -> Result<(), String> {
        let now = Timestamp(START + 60 * i64::try_from(index).unwrap_or(0));
        let context = Context { sequence: self.state.next_sequence(), now };
        if let Step::Rules(rules) = step {
            let change = decide_rules(rules.brand_id(), rules.core_rules(), &context)
                .map_err(|error| self.fail(index, format!("decide_rules refused generated rules: {error}")))?;
            apply_rules(&mut self.state, &change).map_err(|error| self.fail(index, format!("apply_rules: {error}")))?;
            self.model.set_rules(rules.brand_id(), rules.model_rules());
            self.log.push(Entry::Rules(change));
            self.transcript.push(format!(
                "RULES brand={:?} {:?} {:?} gift_valid_days={:?}",
                rules.brand_id(),
                rules.order,
                rules.gift,
                rules.valid_days
            ));
            return Ok(());
        }
        if let Step::Sweep { time, extra } = step {
            let (time, commands) = self.resolver.sweep(&self.model, *time, *extra, now);
            // What the ledger's sweep will release: purse-core's list, as a set, is the model's.
            let mut core_holds = self.state.expired_holds(time);
            let mut model_holds = self.model.expired_open_holds(time.0);
            core_holds.sort();
            model_holds.sort();
            if core_holds != model_holds {
                return Err(self.fail(
                    index,
                    format!("expired holds at {}: purse-core {core_holds:?}, model {model_holds:?}", time.0),
                ));
            }
            self.transcript.push(format!("SWEEP at {}: {} commands", time.0, commands.len()));
            // spec §11: the sweep's ids make a second sweep at one TIME write nothing, so only an
            // account whose EXPIRE id at TIME is new is sure to be swept clean (see below).
            let fresh: Vec<String> = self
                .model
                .accounts()
                .map(|(id, _)| id.clone())
                .filter(|id| self.model.order(&purse_core::sweep_id(time, purse_core::Zone::CHINA, id)).is_none())
                .collect();
            for command in commands {
                self.run_command(index, command, now)?;
            }
            self.check_swept(time, &fresh).map_err(|why| self.fail(index, format!("after the sweep: {why}")))?;
        } else {
            let command = self.resolver.command(&self.model, step, now);
            self.run_command(index, command, now)?;
        }
        if index % REPLAY_EVERY == REPLAY_EVERY - 1 {
            self.check_replay().map_err(|why| self.fail(index, why))?;
        }
        Ok(())
    }

    /// Runs one command against both sides and compares everything after it.
    fn run_command(&mut self, index: usize, command: purse_core::Command, now: Timestamp) -> Result<(), String> {
        let context = Context { sequence: self.state.next_sequence(), now };
        let line = describe(&command);
        let before = self.state.clone();
        let core = decide(&self.state, &command, &context);
        let model = self.model.execute(&command, now.0);
        self.transcript.push(format!("{line}  => {}", show_core(&core)));
        tally(&command, &core);
        let mismatch = |this: &Harness, why: &str| {
            this.fail(
                index,
                format!(
                    "{why}\n  command:    {line}\n  purse-core: {}\n  model:      {}",
                    show_core(&core),
                    show_model(&model)
                ),
            )
        };
        match (&core, &model) {
            (Ok(decision), Ok(outcome)) => {
                let flow = &decision.flow;
                if (parts(&flow.affected), parts(&flow.held)) != (outcome.affected, outcome.held) {
                    return Err(mismatch(
                        self,
                        "purse-core and the model change the buckets or held value differently",
                    ));
                }
                match (&decision.transfer_in, &outcome.transfer_in) {
                    (None, None) => {}
                    (Some(flow_in), Some(model_in)) => {
                        if flow_in.account_id != model_in.account_id || parts(&flow_in.affected) != model_in.affected {
                            return Err(mismatch(self, "purse-core and the model credit the destination differently"));
                        }
                        let opened = self.state.account(&flow_in.account_id).is_none();
                        if opened != model_in.opened {
                            return Err(mismatch(self, "purse-core and the model differ on opening the destination"));
                        }
                    }
                    _ => return Err(mismatch(self, "one side writes a TRANSFER_IN, the other not")),
                }
                self.check_flow(flow, &command, now).map_err(|why| mismatch(self, &why))?;
                let flows: Vec<Flow> = decision.clone().into_flows().collect();
                for (position, flow) in flows.iter().enumerate() {
                    if position == 1 {
                        self.check_transfer_in(&flows[0], flow, &command, &before)
                            .map_err(|why| mismatch(self, &why))?;
                    }
                    apply(&mut self.state, flow)
                        .map_err(|error| mismatch(self, &format!("a decided flow must apply: {error}")))?;
                    let after = self.state.account(&flow.account_id).map(|account| account.balance);
                    if after != flow.after() {
                        return Err(mismatch(self, &format!("balance after apply {after:?} is not flow.after()")));
                    }
                    for (sum, change) in self.flowed.iter_mut().zip(parts(&flow.affected).to_array()) {
                        *sum += i128::from(change);
                    }
                    self.log.push(Entry::Flow(flow.clone()));
                }
                if self.state.mid_transfer() {
                    return Err(mismatch(self, "the state is left inside a transfer"));
                }
            }
            (Err(error), Err(code)) => {
                if core_code(error) != *code {
                    return Err(mismatch(self, "purse-core and the model reject with different codes"));
                }
                if self.state != before {
                    return Err(mismatch(self, "a rejected command changed the state"));
                }
            }
            _ => return Err(mismatch(self, "one side accepts what the other rejects")),
        }
        self.check_invariants().map_err(|why| mismatch(self, &format!("after the step: {why}")))?;
        Ok(())
    }

    /// spec §13: a sweep at `time` leaves no unheld value in lots expired at `time`, on either
    /// side, in the accounts `fresh` (those the sweep's EXPIRE id at `time` was new for).
    fn check_swept(&self, time: Timestamp, fresh: &[String]) -> Result<(), String> {
        for id in fresh {
            if let Some(account) = self.state.account(id) {
                if let Some(lot) =
                    account.lots.iter().find(|lot| lot.key.expired_at(time) && lot.available().is_positive())
                {
                    return Err(format!("purse-core's account {id:?} keeps unheld expired value: {lot:?}"));
                }
            }
            if let Some(account) = self.model.account(id) {
                let expired =
                    |lot: &&purse_proptests::model::lots::ModelLot| lot.expired_at(time.0) && lot.available() > 0;
                if let Some(lot) = account.lots().iter().find(expired) {
                    return Err(format!("the model's account {id:?} keeps unheld expired value: {lot:?}"));
                }
            }
        }
        Ok(())
    }

    /// What the flow says besides `affected`: identity, sequence, before/after, time.
    fn check_flow(&self, flow: &Flow, command: &purse_core::Command, now: Timestamp) -> Result<(), String> {
        let kind = Kind::of(&command.action);
        let account = self.state.account(&command.account_id);
        let before = account.map_or(Buckets::ZERO, |account| account.balance);
        let model_account = self.model.account(&command.account_id).ok_or("the model has no account after a write")?;
        let source = match &command.action {
            Action::Undeduct { original_outer_order_id: id, .. }
            | Action::Uncharge { src_outer_order_id: id }
            | Action::Capture { src_outer_order_id: id, .. }
            | Action::Release { src_outer_order_id: id }
            | Action::ExpireHold { src_outer_order_id: id, .. } => Some(id.clone()),
            _ => None,
        };
        let expire_time = match &command.action {
            Action::Hold { expire_time, .. } => *expire_time,
            _ => None,
        };
        let counterparty = match &command.action {
            Action::Transfer { to_account_id, .. } => Some(to_account_id.clone()),
            _ => None,
        };
        let checks = [
            (flow.flow_id == self.state.next_sequence(), "flow_id is the next sequence"),
            (flow.flow_type.as_str() == kind.name(), "flow_type is the command's"),
            (flow.outer_order_id == command.outer_order_id, "outer_order_id is the command's"),
            (flow.request_id == command.request_id, "request_id is the command's"),
            (flow.account_id == command.account_id, "account_id is the command's"),
            (flow.card_id == model_account.card_id, "card_id is the account's (fixed when it opened)"),
            (flow.brand_id == model_account.brand_id, "brand_id is the account's (fixed when it opened)"),
            (flow.source_order_id == source, "source_order_id is the referenced order"),
            (flow.expire_time == expire_time, "expire_time is the HOLD's, none for any other flow"),
            (flow.counterparty == counterparty, "counterparty is a transfer's destination"),
            (flow.order_time == command.biz_date.unwrap_or(now), "order_time is biz_date, else now"),
            (flow.before == before, "flow.before is the account's balance before"),
            (flow.remark == command.remark && flow.ext_info == command.ext_info, "remark and ext_info kept"),
            (flow.shop_id == command.shop_id && flow.operator_id == command.operator_id, "shop and operator kept"),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(format!("flow check failed: {what}; flow = {flow:?}"));
        }
        let after = flow.after().ok_or("flow.after() overflows")?;
        let expected = [before.real, before.gift, before.pre]
            .iter()
            .zip(parts(&flow.affected).to_array())
            .map(|(held, change)| held.minor().checked_add(change))
            .collect::<Vec<_>>();
        if expected != [Some(after.real.minor()), Some(after.gift.minor()), Some(after.pre.minor())] {
            return Err(format!("flow.after() {after:?} is not before + affected"));
        }
        Ok(())
    }

    /// spec §10: a TRANSFER_IN right after its TRANSFER_OUT, under the command's ids, crediting
    /// the destination bucket for bucket; `before` is the state before the command.
    fn check_transfer_in(
        &self,
        out: &Flow,
        flow: &Flow,
        command: &purse_core::Command,
        before: &State,
    ) -> Result<(), String> {
        let destination = before.account(&flow.account_id);
        let model_account =
            self.model.account(&flow.account_id).ok_or("the model has no destination after a transfer")?;
        let checks = [
            (flow.flow_id == out.flow_id + 1, "TRANSFER_IN's flow_id follows the TRANSFER_OUT's"),
            (flow.flow_type == FlowType::TransferIn, "the second flow is a TRANSFER_IN"),
            (flow.request_id == command.request_id, "TRANSFER_IN under the command's request_id"),
            (flow.outer_order_id == command.outer_order_id, "TRANSFER_IN under the command's outer_order_id"),
            (out.affected.checked_neg() == Some(flow.affected), "TRANSFER_IN adds what TRANSFER_OUT took"),
            (flow.held.is_zero(), "TRANSFER_IN holds nothing"),
            (flow.source_order_id.is_none() && out.source_order_id.is_none(), "transfer flows have no src order"),
            (flow.counterparty.as_deref() == Some(out.account_id.as_str()), "TRANSFER_IN names its source"),
            (flow.order_time == out.order_time, "both flows at one order_time"),
            (
                flow.before == destination.map_or(Buckets::ZERO, |account| account.balance),
                "before is the destination's",
            ),
            (flow.card_id == model_account.card_id, "card_id is the destination's (or the command's, new)"),
            (flow.brand_id == model_account.brand_id, "brand_id is the destination's (or the source's, new)"),
        ];
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(format!("transfer check failed: {what}; flow = {flow:?}"));
        }
        Ok(())
    }

    /// After every step: no bucket negative or below what is held in it, TOTAL the sum, each
    /// account as the model has it (balance, held, lifetime, card, brand, status, open holds),
    /// value neither made nor lost, held value exactly the open holds' parts, every order as the
    /// model has it, and no closed account changed since it closed.
    fn check_invariants(&mut self) -> Result<(), String> {
        let mut balances = [0i128; 3];
        let mut held_sum = [0i128; 3];
        let mut count = 0;
        for account in self.state.accounts() {
            count += 1;
            let id = &account.account_id;
            let (balance, held) = (account.balance, account.held);
            if let Some(bucket) = balance.negative_bucket() {
                return Err(format!("account {id:?} has a negative {bucket}: {balance:?}"));
            }
            if let Some(bucket) = held.negative_bucket() {
                return Err(format!("account {id:?} has negative held value in {bucket}: {held:?}"));
            }
            let available = balance.checked_sub(&held).ok_or_else(|| format!("account {id:?}: available overflows"))?;
            if available.negative_bucket().is_some() || account.available() != available {
                return Err(format!("account {id:?} holds more than it owns: balance {balance:?}, held {held:?}"));
            }
            let sum = parts(&balance).total();
            let total = balance.properties().map(|list| i128::from(list[3].1.minor()));
            if total != Some(sum) || balance.total().map(|total| i128::from(total.minor())) != Some(sum) {
                return Err(format!("account {id:?}: TOTAL is not REAL+GIFT+PRE"));
            }
            for (slot, value) in balances.iter_mut().zip(parts(&balance).to_array()) {
                *slot += i128::from(value);
            }
            for (slot, value) in held_sum.iter_mut().zip(parts(&held).to_array()) {
                *slot += i128::from(value);
            }
            let model = self.model.account(id).ok_or_else(|| format!("account {id:?} is unknown to the model"))?;
            let core = (
                parts(&account.balance),
                parts(&account.held),
                parts(&account.lifetime),
                &account.card_id,
                &account.brand_id,
                account.status.as_str(),
                account.open_holds,
            );
            let expected = (
                model.balance,
                model.held,
                model.lifetime,
                &model.card_id,
                &model.brand_id,
                model.status.name(),
                model.open_holds,
            );
            if core != expected {
                return Err(format!(
                    "account {id:?}: purse-core (balance, held, lifetime, card, brand, status, open holds) {core:?}, \
                     model {expected:?}"
                ));
            }
            check_lots(account, model)?;
            match self.closed.get(id) {
                Some(closed) if closed != account => {
                    return Err(format!("closed account {id:?} changed: was {closed:?}, is {account:?}"));
                }
                None if account.status == purse_core::AccountStatus::Closed => {
                    self.closed.insert(id.clone(), account.clone());
                }
                _ => {}
            }
        }
        self.state.check_lots().map_err(|why| format!("State::check_lots: {why}"))?;
        if count != self.model.accounts().count() {
            return Err(format!("purse-core has {count} accounts, the model {}", self.model.accounts().count()));
        }
        if balances != self.flowed {
            return Err(format!("sum of balances {balances:?} is not the sum of accepted flows {:?}", self.flowed));
        }
        let mut open_holds = [0i128; 3];
        let mut orders = 0;
        for (id, order) in self.state.orders() {
            orders += 1;
            let model = self.model.order(id).ok_or_else(|| format!("order {id:?} is unknown to the model"))?;
            if order.flow_type.as_str() != model.kind.name() || order.account_id != model.account_id {
                return Err(format!("order {id:?}: purse-core {order:?}, model {model:?}"));
            }
            let (moved, refunded) = (parts(&order.moved), parts(&order.refunded));
            let same = match order.flow_type {
                FlowType::Deduct | FlowType::Capture => {
                    let within = moved
                        .to_array()
                        .iter()
                        .zip(refunded.to_array())
                        .all(|(moved, refunded)| (0..=*moved).contains(&refunded));
                    if !within {
                        return Err(format!(
                            "{} {id:?}: refunds {refunded:?} exceed what it took {moved:?}",
                            order.flow_type
                        ));
                    }
                    (moved, refunded) == (model.moved, model.refunded)
                }
                FlowType::Charge => moved == model.moved && order.reversed_by.is_some() == model.reversed,
                FlowType::Hold => {
                    if order.reversed_by.is_none() {
                        for (slot, part) in open_holds.iter_mut().zip(moved.to_array()) {
                            *slot += i128::from(part);
                        }
                    }
                    moved == model.moved
                        && order.reversed_by.is_some() == model.reversed
                        && order.expire_time.map(|time| time.0) == model.expire_time
                }
                FlowType::TransferOut => moved == model.moved,
                _ => true,
            };
            if !same {
                return Err(format!("{} {id:?}: purse-core {order:?}, model {model:?}", order.flow_type));
            }
        }
        if orders != self.model.order_ids().len() {
            return Err(format!("purse-core has {orders} orders, the model {}", self.model.order_ids().len()));
        }
        let model_open = self.model.open_hold_parts();
        if held_sum != open_holds || open_holds != model_open {
            return Err(format!(
                "held value {held_sum:?} over all accounts, open holds' parts {open_holds:?} in purse-core, \
                 {model_open:?} in the model: all three must agree"
            ));
        }
        let model_held = self.model.accounts().fold([0i128; 3], |mut sum, (_, account)| {
            for (slot, part) in sum.iter_mut().zip(account.held.to_array()) {
                *slot += i128::from(part);
            }
            sum
        });
        if model_held != model_open {
            return Err(format!("the model holds {model_held:?} over its accounts, its open holds {model_open:?}"));
        }
        Ok(())
    }

    /// Folding the log from empty gives exactly the live state.
    fn check_replay(&self) -> Result<(), String> {
        let mut replayed = State::new(self.state.config());
        for entry in &self.log {
            replayed
                .apply_entry(entry)
                .map_err(|error| format!("replaying the log: entry {} refused: {error}", entry.sequence()))?;
        }
        if replayed != self.state {
            return Err(format!("the fold of the log differs from the live state:\n{replayed:#?}\n{:#?}", self.state));
        }
        self.check_one_account_folds()
    }

    /// spec §12's history views fold one account's flows alone: for every account, its flows
    /// in log order folded into `State::for_one_account` give exactly the account of the full
    /// fold, and every order of it the same order and the same lot takes.
    fn check_one_account_folds(&self) -> Result<(), String> {
        for account in self.state.accounts() {
            let id = &account.account_id;
            let mut alone = State::for_one_account(self.state.config());
            for entry in &self.log {
                if let Entry::Flow(flow) = entry {
                    if flow.account_id == *id {
                        alone.apply_entry(entry).map_err(|error| {
                            format!("folding account {id:?} alone: flow {} refused: {error}", flow.flow_id)
                        })?;
                    }
                }
            }
            if alone.account(id) != Some(account) {
                return Err(format!(
                    "account {id:?} folded alone differs from the full fold:\n  alone: {:?}\n  full:  {account:?}",
                    alone.account(id)
                ));
            }
            for (order_id, order) in alone.orders() {
                let full = self.state.order(order_id);
                if full != Some(order) || self.state.order_takes(order.flow_id) != alone.order_takes(order.flow_id) {
                    return Err(format!(
                        "order {order_id:?} of account {id:?} folded alone: {order:?} taking {:?}; full fold: {full:?} \
                         taking {:?}",
                        alone.order_takes(order.flow_id),
                        self.state.order_takes(order.flow_id)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// spec §11: the account's lots (bucket, value, held, expiry) in spending order and its
/// `expiring` list are the model's; on both sides GIFT's and PRE's lots add up to the bucket and its held value, and no
/// lot is empty, negative or more held than it has.
fn check_lots(account: &Account, model: &purse_proptests::model::ModelAccount) -> Result<(), String> {
    let id = &account.account_id;
    let core: Vec<(&str, i64, i64, Option<i64>)> = account
        .lots
        .iter()
        .map(|lot| (lot.bucket.as_str(), lot.value.minor(), lot.held.minor(), lot.key.expire_time().map(|time| time.0)))
        .collect();
    let expected: Vec<(&str, i64, i64, Option<i64>)> =
        model.lots().iter().map(|lot| (lot.bucket.name(), lot.value, lot.held, lot.expire_time)).collect();
    if core != expected {
        return Err(format!(
            "account {id:?} lots (bucket, value, held, expiry):\n  purse-core {core:?}\n  model      {expected:?}"
        ));
    }
    let core_expiring: Vec<(&str, i64, i64)> =
        account.lots.expiring().iter().map(|(bucket, value, time)| (bucket.as_str(), value.minor(), time.0)).collect();
    let model_expiring: Vec<(&str, i64, i64)> =
        model.expiring().iter().map(|(bucket, value, time)| (bucket.name(), *value, *time)).collect();
    if core_expiring != model_expiring {
        return Err(format!(
            "account {id:?} expiring:\n  purse-core {core_expiring:?}\n  model      {model_expiring:?}"
        ));
    }
    for (bucket, balance, held) in
        [("GIFT", account.balance.gift, account.held.gift), ("PRE", account.balance.pre, account.held.pre)]
    {
        let lots = core.iter().filter(|lot| lot.0 == bucket);
        let (value, reserved) = lots
            .fold((0i128, 0i128), |(value, reserved), lot| (value + i128::from(lot.1), reserved + i128::from(lot.2)));
        if (value, reserved) != (i128::from(balance.minor()), i128::from(held.minor())) {
            return Err(format!(
                "account {id:?}: {bucket} lots hold {value} ({reserved} held), the bucket {balance:?} ({held:?} held)"
            ));
        }
    }
    if let Some(lot) = core.iter().find(|lot| lot.1 <= 0 || lot.2 < 0 || lot.2 > lot.1) {
        return Err(format!("account {id:?} has a lot {lot:?} (bucket, value, held, expiry)"));
    }
    Ok(())
}

/// How often each command type met each outcome over a run: proof the generator reaches the
/// interesting paths (checked in `purse_core_agrees_with_the_model`; printed with
/// `PURSE_PROPTEST_STATS=1 … -- --nocapture`).
static TALLY: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn tally(command: &purse_core::Command, core: &Result<Decision, Error>) {
    let outcome = core.as_ref().map_or_else(core_code, |_| "ok");
    let mut tally = TALLY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let name = match command.action {
        Action::ExpireHold { .. } => "RELEASE(sweep)",
        _ => Kind::of(&command.action).name(),
    };
    *tally.entry(format!("{name:<14} {outcome}")).or_default() += 1;
    if let (Ok(decision), true) = (core, command.gift_expire_time.is_some() || command.pre_expire_time.is_some()) {
        let expiring = decision.flow.lots.iter().filter(|lot| lot.expire_time.is_some()).count();
        *tally
            .entry(format!("{:<14} ok with {expiring} expiring lot(s)", decision.flow.flow_type.as_str()))
            .or_default() += 1;
    }
    if let Ok(Decision { transfer_in: Some(flow_in), .. }) = core {
        *tally.entry(format!("{:<12} ok", flow_in.flow_type.as_str())).or_default() += 1;
    }
}

/// The error codes a run of at least [`COVERAGE_CASES_MIN`] cases must reach (and every
/// command type must succeed at least once).
const CODES_EXPECTED: [&str; 11] = [
    "INVALID_ARGUMENT",
    "INVALID_AMOUNT",
    "INSUFFICIENT_BALANCE",
    "ACCOUNT_NOT_FOUND",
    "ORDER_NOT_FOUND",
    "DUPLICATE_ORDER",
    "REFUND_EXCEEDS_ORIGINAL",
    "ALREADY_REVERSED",
    "HOLD_EXPIRED",
    "ACCOUNT_FROZEN",
    "ACCOUNT_CLOSED",
];
/// Every flow type (`Kind::ALL` is purse-core's `FlowType::ALL` by name, checked below).
const KINDS_EXPECTED: [Kind; 16] = Kind::ALL;
const COVERAGE_CASES_MIN: u32 = 200;
/// The spec §11 paths a run of at least [`COVERAGE_CASES_MIN`] cases must reach, as tally keys
/// (type, then outcome).
const LOT_PATHS_EXPECTED: [&str; 6] = [
    "CHARGE ok with 2 expiring lot(s)",
    "IMPORT ok with 1 expiring lot(s)",
    "EXPIRE SKIP",
    "EXPIRE ACCOUNT_NOT_FOUND",
    "RELEASE(sweep) ok",
    "RELEASE(sweep) INVALID_ARGUMENT",
];

fn run_case(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut harness = Harness::new();
    for (index, step) in steps.iter().enumerate() {
        harness.run(index, step).map_err(TestCaseError::fail)?;
    }
    harness.check_replay().map_err(|why| TestCaseError::fail(harness.fail(steps.len(), why)))
}

fn config(file: &'static str) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::with_cases(cases())
    }
}

/// The step strategy is a deep tree of combinators: debug builds need more than a test
/// thread's default stack to build and shrink it.
const STRATEGY_STACK_BYTES: usize = 64 * 1024 * 1024;

#[test]
fn purse_core_agrees_with_the_model() {
    std::thread::Builder::new()
        .stack_size(STRATEGY_STACK_BYTES)
        .spawn(run_state_machine)
        .expect("spawn the property thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

fn run_state_machine() {
    let mut runner = TestRunner::new(config("proptest-regressions/state_machine.txt"));
    let result = runner.run(&support::steps(), |steps| run_case(&steps));
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let tally = TALLY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if std::env::var_os("PURSE_PROPTEST_STATS").is_some() {
        for (key, count) in tally.iter() {
            eprintln!("{key:<40} {count:>8}");
        }
    }
    if cases() >= COVERAGE_CASES_MIN {
        for code in CODES_EXPECTED {
            let reached = tally.keys().any(|key| key.ends_with(&format!(" {code}")));
            assert!(reached, "no command in {} cases was refused with {code}: the generator misses a path", cases());
        }
        for path in LOT_PATHS_EXPECTED {
            let reached = tally.keys().any(|key| key.split_whitespace().collect::<Vec<_>>().join(" ") == path);
            assert!(reached, "no command in {} cases took the path {path:?}: the generator misses it", cases());
        }
        let names: Vec<&str> = KINDS_EXPECTED.iter().map(|kind| kind.name()).collect();
        let core_names: Vec<&str> = FlowType::ALL.iter().map(|flow_type| flow_type.as_str()).collect();
        assert_eq!(names, core_names, "the model's flow types are purse-core's");
        for kind in names {
            let reached = tally.keys().any(|key| key.split_whitespace().collect::<Vec<_>>() == [kind, "ok"]);
            assert!(reached, "no {kind} succeeded in {} cases: the generator misses a path", cases());
        }
    }
}

proptest! {
    #![proptest_config(config("proptest-regressions/state_machine.txt"))]

    #[test]
    fn refund_series_agree_with_the_model(steps in support::refund_series()) {
        run_case(&steps)?;
    }
}

/// A disagreement the random test found, pinned as a plain test (spec §1, §6): the ADJUST
/// would leave PRE at -0.01 while TOTAL stays 92233720368547758.07, inside the `i64` range, so
/// the one broken rule is "no bucket is ever negative": `INSUFFICIENT_BALANCE`. purse-core
/// summed REAL + GIFT first, overflowed on that partial sum and reported `INVALID_AMOUNT`;
/// fixed by checking for a negative bucket before the TOTAL's range.
#[test]
fn negative_bucket_with_large_total_is_insufficient_balance() {
    use purse_core::{Amount, Command};
    let mut state = State::new(Config::default());
    let mut model = Model::new();
    let now = Timestamp(START);
    let charge = Command::new("r-1", "o-1", "a", {
        Action::Charge { real: Amount::ZERO, gift: None, pre: Amount::from_minor(1), trigger_gift: false }
    });
    let flow = decide(&state, &charge, &Context { sequence: 1, now }).expect("charge 0.01 PRE").flow;
    apply(&mut state, &flow).expect("a decided flow applies");
    assert_eq!(model.execute(&charge, now.0).map(|outcome| outcome.affected), Ok(Parts::new(0, 0, 1)));
    let mut adjust = Command::new("r-2", "o-2", "a", {
        Action::Adjust { real: Amount::from_minor(1), gift: Amount::from_minor(i64::MAX), pre: Amount::from_minor(-2) }
    });
    adjust.remark = Some("correction".to_owned());
    let core = decide(&state, &adjust, &Context { sequence: 2, now });
    let model = model.execute(&adjust, now.0);
    assert_eq!(model.as_ref().err(), Some(&"INSUFFICIENT_BALANCE"));
    assert_eq!(
        core.as_ref().map_err(|error| error.code().as_str()).err(),
        Some("INSUFFICIENT_BALANCE"),
        "{}\n  purse-core: {}\n  model:      {}",
        describe(&adjust),
        show_core(&core),
        show_model(&model)
    );
}

/// Runs `commands` one a minute against purse-core and the model, asserting that both give the
/// same answer (`ok` or the code) to each, and that the answers are `expected`; returns both
/// sides after them.
fn agree(commands: &[purse_core::Command], expected: &[&str]) -> (State, Model) {
    let mut state = State::new(Config::default());
    let mut model = Model::new();
    for (index, (command, expected)) in commands.iter().zip(expected).enumerate() {
        let now = Timestamp(START + 60 * i64::try_from(index).unwrap_or(0));
        let core = decide(&state, command, &Context { sequence: state.next_sequence(), now });
        let model_result = model.execute(command, now.0);
        let core_code = core.as_ref().map_or_else(core_code, |_| "ok");
        let model_code = model_result.as_ref().map_or_else(|code| *code, |_| "ok");
        let context = format!(
            "step {index}: {}\n  purse-core: {}\n  model:      {}",
            describe(command),
            show_core(&core),
            show_model(&model_result)
        );
        assert_eq!((core_code, model_code), (*expected, *expected), "{context}");
        if let Ok(decision) = core {
            for flow in decision.into_flows() {
                apply(&mut state, &flow).unwrap_or_else(|error| panic!("{context}: {error}"));
            }
        }
    }
    (state, model)
}

/// Disagreements the random test found, pinned as plain tests (spec §10 "either side", §13
/// "status (ACCOUNT_CLOSED, then ACCOUNT_FROZEN)" right after the account's existence):
/// purse-core checked a transfer's destination status only after the source's FROZEN and its
/// card and brand, so a frozen source sending to a closed account answered ACCOUNT_FROZEN, and a
/// brand_id mismatch hid a frozen destination.
#[test]
fn a_transfer_checks_both_sides_status_closed_first() {
    use purse_core::{Amount, Command};
    let charge = |order: &str, account: &str, brand: Option<&str>| {
        let mut command = Command::new(&format!("r-{order}"), order, account, {
            Action::Charge { real: Amount::ZERO, gift: None, pre: Amount::from_minor(1), trigger_gift: false }
        });
        command.brand_id = brand.map(str::to_owned);
        command
    };
    let status = |order: &str, account: &str, action: Action| {
        let mut command = Command::new(&format!("r-{order}"), order, account, action);
        command.remark = Some("correction".to_owned());
        command
    };
    let transfer = |order: &str, from: &str, to: &str, brand: Option<&str>| {
        let mut command = Command::new(
            &format!("r-{order}"),
            order,
            from,
            Action::Transfer { to_account_id: to.to_owned(), value: None },
        );
        command.brand_id = brand.map(str::to_owned);
        command
    };
    agree(
        &[
            charge("o1", "a", None),
            transfer("o2", "a", "n2", None),
            status("o3", "a", Action::Close),
            status("o4", "n2", Action::Freeze),
            transfer("o5", "n2", "a", None),
        ],
        &["ok", "ok", "ok", "ok", "ACCOUNT_CLOSED"],
    );
    agree(
        &[
            charge("o1", "f", Some("B1")),
            charge("o2", "g", Some("B1")),
            status("o3", "g", Action::Freeze),
            transfer("o4", "f", "g", Some("B2")),
        ],
        &["ok", "ok", "ok", "ACCOUNT_FROZEN"],
    );
}

/// A disagreement the random test found (spec §11 lots): purse-core decides a provider's
/// UNCHARGE (ingestion, its effect as the record gives it) but cannot fold it. `fold.rs`
/// `check_lots` asks every UNCHARGE for its source order, to take its CHARGE's own lots first,
/// and a provider's flow names none, so `apply` refuses the decided flow ("lots: no source
/// order"). A recorded UNCHARGE names no CHARGE: it takes from the soonest-expiring lots like
/// any other debit (here it takes only REAL). Until purse-core is fixed the random test sends
/// no recorded UNCHARGE (see `support/resolve.rs`).
#[test]
fn a_recorded_uncharge_folds() {
    use purse_core::{Amount, Buckets, Command, Source};
    let charge = Command::new("r-o1", "o1", "a", {
        Action::Charge { real: Amount::from_minor(96), gift: None, pre: Amount::ZERO, trigger_gift: false }
    });
    let recorded = Command::new(
        "r-o2",
        "o2",
        "a",
        Action::Recorded {
            flow_type: FlowType::Uncharge,
            affected: Buckets::from_minor(-1, 0, 0),
            source: Source { provider: "zenlayer".to_owned(), record_id: "refund-1".to_owned() },
        },
    );
    agree(&[charge, recorded], &["ok", "ok"]);
}

/// A point of the spec the random test met (§11 against §13), not a purse-core fault: the
/// sweep's ids make a second sweep at one TIME write nothing (§11), so value that is expired at
/// TIME but unheld only after the first sweep (a hold without expiry released, a refund into an
/// expired lot) stays until a sweep at a later TIME, although §13 says "a sweep at TIME leaves
/// no unheld value in lots expired at TIME". Both sides agree; `check_swept` holds the sweep
/// to §13 only where its EXPIRE id was new.
#[test]
fn a_second_sweep_at_one_time_leaves_value_expired_since() {
    use purse_core::{Amount, Command, Zone};
    let expiry = Timestamp(START + 600);
    let mut charge = Command::new("r-o1", "o1", "a", {
        Action::Charge {
            real: Amount::ZERO,
            gift: Some(Amount::from_minor(10)),
            pre: Amount::ZERO,
            trigger_gift: false,
        }
    });
    charge.gift_expire_time = Some(expiry);
    let hold = Command::new("r-o2", "o2", "a", Action::Hold { value: Amount::from_minor(4), expire_time: None });
    let release = Command::new("r-o3", "o3", "a", Action::Release { src_outer_order_id: "o2".to_owned() });
    let sweep = Command::expire("a", expiry, Zone::CHINA);
    let (state, model) =
        agree(&[charge, hold, sweep.clone(), release, sweep], &["ok", "ok", "ok", "ok", "DUPLICATE_ORDER"]);
    let lot = state.account("a").and_then(|account| account.lots.iter().next().copied()).expect("a lot is left");
    assert_eq!((lot.value.minor(), lot.held.minor(), lot.key.expired_at(expiry)), (4, 0, true));
    let model_lot = model.account("a").map(|account| account.lots()).unwrap_or_default();
    assert_eq!(
        model_lot.iter().map(|lot| (lot.value, lot.held, lot.expired_at(expiry.0))).collect::<Vec<_>>(),
        [(4, 0, true)]
    );
}

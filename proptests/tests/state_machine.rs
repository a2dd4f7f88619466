//! Model-based state-machine test: random sequences of commands and rules changes run against
//! purse-core (`decide` + `apply`) and against the reference model; every result, balance and
//! invariant is compared after every step.
//!
//! `PROPTEST_CASES` sets the number of cases (default 1000). Failure seeds are saved in
//! `proptest-regressions/state_machine.txt` and replayed first on every run.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestRunner};
use purse_core::{
    apply, apply_rules, decide, decide_rules, Buckets, Config, Context, Entry, Error, Flow, FlowType, State, Timestamp,
};
use purse_proptests::model::{Kind, Model, Parts};
use support::{describe, Resolver, Step};

/// The business time of step 0; each step is a minute later.
const START: i64 = 1_800_000_000;
/// How often (in steps) the whole log is folded again and compared with the live state.
const REPLAY_EVERY: usize = 16;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(1000)
}

fn parts(buckets: &Buckets) -> Parts {
    Parts::new(buckets.real.minor(), buckets.gift.minor(), buckets.pre.minor())
}

fn show_core(result: &Result<Flow, Error>) -> String {
    match result {
        Ok(flow) => format!("Ok(affected {:?})", parts(&flow.affected).to_array()),
        Err(error) => format!("Err({}: {error})", error.code().as_str()),
    }
}

fn show_model(result: &Result<Parts, &str>) -> String {
    match result {
        Ok(affected) => format!("Ok(affected {:?})", affected.to_array()),
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
            self.transcript.push(format!("RULES brand={:?} {:?} {:?}", rules.brand_id(), rules.order, rules.gift));
            return Ok(());
        }
        let command = self.resolver.command(&self.model, step, now);
        let line = describe(&command);
        let before = self.state.clone();
        let core = decide(&self.state, &command, &context).map(|decision| decision.flow);
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
            (Ok(flow), Ok(affected)) => {
                if parts(&flow.affected) != *affected {
                    return Err(mismatch(self, "purse-core and the model affect the buckets differently"));
                }
                self.check_flow(flow, &command, now).map_err(|why| mismatch(self, &why))?;
                apply(&mut self.state, flow)
                    .map_err(|error| mismatch(self, &format!("a decided flow must apply: {error}")))?;
                let after = self.state.account(&command.account_id).map(|account| account.balance);
                if after != flow.after() {
                    return Err(mismatch(self, &format!("balance after apply {after:?} is not flow.after()")));
                }
                for (sum, change) in self.flowed.iter_mut().zip(parts(&flow.affected).to_array()) {
                    *sum += i128::from(change);
                }
                self.log.push(Entry::Flow(flow.clone()));
            }
            (Err(error), Err(code)) => {
                if error.code().as_str() != *code {
                    return Err(mismatch(self, "purse-core and the model reject with different codes"));
                }
                if self.state != before {
                    return Err(mismatch(self, "a rejected command changed the state"));
                }
            }
            _ => return Err(mismatch(self, "one side accepts what the other rejects")),
        }
        self.check_invariants().map_err(|why| mismatch(self, &format!("after the step: {why}")))?;
        if index % REPLAY_EVERY == REPLAY_EVERY - 1 {
            self.check_replay().map_err(|why| self.fail(index, why))?;
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
            purse_core::Action::Undeduct { original_outer_order_id, .. } => Some(original_outer_order_id.clone()),
            purse_core::Action::Uncharge { src_outer_order_id } => Some(src_outer_order_id.clone()),
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

    fn check_invariants(&self) -> Result<(), String> {
        let mut held = [0i128; 3];
        let mut count = 0;
        for account in self.state.accounts() {
            count += 1;
            let balance = account.balance;
            if let Some(bucket) = balance.negative_bucket() {
                return Err(format!("account {:?} has a negative {bucket}: {balance:?}", account.account_id));
            }
            let sum = parts(&balance).total();
            let total = balance.properties().map(|list| i128::from(list[3].1.minor()));
            if total != Some(sum) || balance.total().map(|total| i128::from(total.minor())) != Some(sum) {
                return Err(format!("account {:?}: TOTAL is not REAL+GIFT+PRE", account.account_id));
            }
            for (slot, value) in held.iter_mut().zip(parts(&balance).to_array()) {
                *slot += i128::from(value);
            }
            let model = self
                .model
                .account(&account.account_id)
                .ok_or_else(|| format!("account {:?} is unknown to the model", account.account_id))?;
            let core = (parts(&account.balance), parts(&account.lifetime), &account.card_id, &account.brand_id);
            let expected = (model.balance, model.lifetime, &model.card_id, &model.brand_id);
            if core != expected {
                return Err(format!(
                    "account {:?}: purse-core (balance, lifetime, card, brand) {core:?}, model {expected:?}",
                    account.account_id
                ));
            }
        }
        if count != self.model.accounts().count() {
            return Err(format!("purse-core has {count} accounts, the model {}", self.model.accounts().count()));
        }
        if held != self.flowed {
            return Err(format!("sum of balances {held:?} is not the sum of accepted flows {:?}", self.flowed));
        }
        let mut orders = 0;
        for (id, order) in self.state.orders() {
            orders += 1;
            let model = self.model.order(id).ok_or_else(|| format!("order {id:?} is unknown to the model"))?;
            if order.flow_type.as_str() != model.kind.name() || order.account_id != model.account_id {
                return Err(format!("order {id:?}: purse-core {order:?}, model {model:?}"));
            }
            match order.flow_type {
                FlowType::Deduct => {
                    let (moved, refunded) = (parts(&order.moved), parts(&order.refunded));
                    let within = moved
                        .to_array()
                        .iter()
                        .zip(refunded.to_array())
                        .all(|(moved, refunded)| (0..=*moved).contains(&refunded));
                    if !within {
                        return Err(format!("DEDUCT {id:?}: refunds {refunded:?} exceed what it took {moved:?}"));
                    }
                    if (moved, refunded) != (model.moved, model.refunded) {
                        return Err(format!("DEDUCT {id:?}: purse-core {order:?}, model {model:?}"));
                    }
                }
                FlowType::Charge
                    if parts(&order.moved) != model.moved || order.reversed_by.is_some() != model.reversed =>
                {
                    return Err(format!("CHARGE {id:?}: purse-core {order:?}, model {model:?}"));
                }
                _ => {}
            }
        }
        if orders != self.model.order_ids().len() {
            return Err(format!("purse-core has {orders} orders, the model {}", self.model.order_ids().len()));
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
        Ok(())
    }
}

/// How often each command type met each outcome over a run: proof the generator reaches the
/// interesting paths (checked in `purse_core_agrees_with_the_model`; printed with
/// `PURSE_PROPTEST_STATS=1 … -- --nocapture`).
static TALLY: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn tally(command: &purse_core::Command, core: &Result<Flow, Error>) {
    let outcome = core.as_ref().map_or_else(|error| error.code().as_str(), |_| "ok");
    let key = format!("{:<9} {outcome}", Kind::of(&command.action).name());
    *TALLY.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_default() += 1;
}

/// The error codes a run of at least [`COVERAGE_CASES_MIN`] cases must reach (and every
/// command type must succeed at least once).
const CODES_EXPECTED: [&str; 8] = [
    "INVALID_ARGUMENT",
    "INVALID_AMOUNT",
    "INSUFFICIENT_BALANCE",
    "ACCOUNT_NOT_FOUND",
    "ORDER_NOT_FOUND",
    "DUPLICATE_ORDER",
    "REFUND_EXCEEDS_ORIGINAL",
    "ALREADY_REVERSED",
];
const KINDS_EXPECTED: [&str; 6] = ["CHARGE", "DEDUCT", "UNDEDUCT", "UNCHARGE", "IMPORT", "ADJUST"];
const COVERAGE_CASES_MIN: u32 = 200;

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
    let result = runner.run(&prop::collection::vec(support::step(), 1..60), |steps| run_case(&steps));
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
        for kind in KINDS_EXPECTED {
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
    use purse_core::{Action, Amount, Command};
    let mut state = State::new(Config::default());
    let mut model = Model::new();
    let now = Timestamp(START);
    let charge = Command::new("r-1", "o-1", "a", {
        Action::Charge { real: Amount::ZERO, gift: None, pre: Amount::from_minor(1), trigger_gift: false }
    });
    let flow = decide(&state, &charge, &Context { sequence: 1, now }).expect("charge 0.01 PRE").flow;
    apply(&mut state, &flow).expect("a decided flow applies");
    assert_eq!(model.execute(&charge, now.0), Ok(Parts::new(0, 0, 1)));
    let mut adjust = Command::new("r-2", "o-2", "a", {
        Action::Adjust { real: Amount::from_minor(1), gift: Amount::from_minor(i64::MAX), pre: Amount::from_minor(-2) }
    });
    adjust.remark = Some("correction".to_owned());
    let core = decide(&state, &adjust, &Context { sequence: 2, now }).map(|decision| decision.flow);
    let model = model.execute(&adjust, now.0);
    assert_eq!(model, Err("INSUFFICIENT_BALANCE"));
    assert_eq!(
        core.as_ref().map_err(|error| error.code().as_str()).err(),
        Some("INSUFFICIENT_BALANCE"),
        "{}\n  purse-core: {}\n  model:      {}",
        describe(&adjust),
        show_core(&core),
        show_model(&model)
    );
}

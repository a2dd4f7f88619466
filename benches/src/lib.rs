//! Shared workload of purse's criterion benches (`benches/benches/*.rs`).
//!
//! [`generate`] builds a deterministic history the way `purse bench` does: every account
//! opened by a CHARGE, then a mix of 40 % CHARGE with the gift rule, 45 % DEDUCT, 10 % partial
//! UNDEDUCT of an earlier DEDUCT and 5 % UNCHARGE of an earlier CHARGE, decided and folded
//! with purse-core as it goes, so every command it returns is accepted in that order.

use purse_core::{
    apply, apply_rules, decide, decide_rules, Action, Amount, Command, Config, Context, Entry, RuleSet, RuleSetText,
    State, Timestamp,
};
use purse_idempotency::Fingerprint;
use purse_ledger::bench_support::Rng;

/// A fixed clock: 2026-11-23 00:00:00 UTC.
pub const NOW: Timestamp = Timestamp(1_795_392_000);

/// The rules every bench ledger runs with (the spec §4 example): CUSTOMIZED, 100.00 → 20.00,
/// 500.00 → 150.00, deduction PERCENT_DEDUCT.
pub fn rules() -> RuleSet {
    let text = RuleSetText {
        gift_valid_days: None,
        deduction_order: None,
        gift_type: Some("CUSTOMIZED".into()),
        full_gift_switch: Some(false),
        tiers: vec![("100.00".into(), "20.00".into()), ("500.00".into(), "150.00".into())],
    };
    RuleSet::from_text(&text, Config::default().scale).expect("valid rules")
}

/// A fresh state with [`rules`] as the ledger default (log sequence 1).
pub fn state_with_rules() -> State {
    let mut state = State::new(Config::default());
    let change = decide_rules(None, rules(), &context(&state)).expect("rules decide");
    apply_rules(&mut state, &change).expect("rules apply");
    state
}

/// The context of the next entry of `state`.
pub fn context(state: &State) -> Context {
    Context { sequence: state.next_sequence(), now: NOW }
}

/// Decides and folds `command`; panics if it is refused (bench inputs are built to pass).
pub fn decide_apply(state: &mut State, command: &Command) -> purse_core::Flow {
    let flow = decide(state, command, &context(state)).unwrap_or_else(|error| panic!("{command:?}: {error}")).flow;
    apply(state, &flow).expect("a decided flow folds");
    flow
}

/// The account id of account number `index`.
pub fn account_id(index: usize) -> String {
    format!("acct-{index:06}")
}

/// What [`generate`] built.
#[derive(Debug)]
pub struct History {
    /// Every accepted command, in log order (the rules change is not a command).
    pub commands: Vec<Command>,
    /// The log: the rules change, then one flow per command.
    pub entries: Vec<Entry>,
    /// The request fingerprint of each flow entry (`entries[1..]`).
    pub fingerprints: Vec<Fingerprint>,
    /// The state after the whole log.
    pub state: State,
}

/// A history of `accounts` account openings and then `flows` mixed flows (rejected commands
/// are skipped and do not count). `prefix` keeps the ids of two histories apart.
pub fn generate(accounts: usize, flows: usize, prefix: &str) -> History {
    let mut state = state_with_rules();
    let mut rng = Rng::new(0x5eed);
    let mut history =
        History { commands: Vec::new(), entries: Vec::new(), fingerprints: Vec::new(), state: State::default() };
    let mut deducts: Vec<(String, usize, i64)> = Vec::new();
    let mut charges: Vec<(String, usize)> = Vec::new();
    let accept = |state: &mut State, history: &mut History, command: Command| -> Option<purse_core::Flow> {
        let flow = decide(state, &command, &context(state)).ok()?.flow;
        apply(state, &flow).expect("a decided flow folds");
        history.fingerprints.push(purse_idempotency::fingerprint(&command));
        history.commands.push(command);
        history.entries.push(Entry::Flow(flow.clone()));
        Some(flow)
    };
    let charge = |real: i64| Action::Charge {
        real: Amount::from_minor(real),
        gift: None,
        pre: Amount::ZERO,
        trigger_gift: true,
    };
    for index in 0..accounts {
        let id = format!("{prefix}open.{index}");
        accept(&mut state, &mut history, Command::new(&id, &id, &account_id(index), charge(10_000)));
    }
    let mut written = 0;
    let mut serial = 0u64;
    while written < flows {
        serial += 1;
        let request_id = format!("{prefix}r.{serial}");
        let order_id = format!("{prefix}o.{serial}");
        let roll = rng.below(100);
        let (kind, account, action) = if roll < 40 || (roll >= 95 && charges.is_empty()) {
            let real = [5_000, 10_000, 20_000, 50_000, 100_000][rng.index(5)];
            (0, rng.index(accounts), charge(real))
        } else if roll < 85 || deducts.is_empty() {
            let value = 100 + i64::try_from(rng.below(5_901)).expect("small");
            (1, rng.index(accounts), Action::Deduct { value: Amount::from_minor(value) })
        } else if roll < 95 {
            let (order, account, left) = &deducts[rng.index(deducts.len())];
            let value = if *left >= 2 { left / 2 } else { *left };
            let action =
                Action::Undeduct { original_outer_order_id: order.clone(), value: Some(Amount::from_minor(value)) };
            (2, *account, action)
        } else {
            let (order, account) = charges.pop().expect("checked non-empty");
            (3, account, Action::Uncharge { src_outer_order_id: order })
        };
        let command = Command::new(&request_id, &order_id, &account_id(account), action);
        let Some(flow) = accept(&mut state, &mut history, command) else { continue };
        written += 1;
        match kind {
            0 => charges.push((order_id, account)),
            1 => deducts.push((order_id, account, -flow.affected.total().expect("in range").minor())),
            2 => {
                let source = flow.source_order_id.as_deref().expect("an UNDEDUCT has its DEDUCT");
                let position = deducts.iter().position(|(order, _, _)| order == source).expect("known DEDUCT");
                deducts[position].2 -= flow.affected.total().expect("in range").minor();
                if deducts[position].2 <= 0 {
                    deducts.swap_remove(position);
                }
            }
            _ => {}
        }
    }
    let rules = decide_rules(None, rules(), &Context { sequence: 1, now: NOW }).expect("rules decide");
    history.entries.insert(0, Entry::Rules(rules));
    history.state = state;
    history
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_folds_back_to_its_state() {
        let history = generate(20, 500, "");
        assert_eq!(history.commands.len(), 520);
        assert_eq!(history.entries.len(), 521);
        let mut state = State::new(Config::default());
        for entry in &history.entries {
            state.apply_entry(entry).unwrap();
        }
        assert_eq!(state, history.state);
    }
}

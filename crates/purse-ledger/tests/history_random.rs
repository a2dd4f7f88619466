//! spec §12 against the fold, on a random workload: for every account and every log position,
//! `account_as_of(Entry(n))` is the account in the fold of the log's first n entries, and
//! `account_as_of(Time(t))` is the account after its last flow (in log order) with order_time
//! ≤ t. Order times are drawn out of log order on purpose (backdated flows), and the workload
//! mixes expiring credits, holds, captures, refunds, transfers, CLEARs and sweeps.
//!
//! It also checks `statement` over several windows against the flows themselves, and
//! `liability` (now and at times) against the sum over the fold's accounts.
//!
//! `PURSE_HISTORY_SEED` replays a run; the seed is printed first.

mod common;

use common::{money, open, seed};
use purse_core::{apply, apply_rules, Action, Amount, Buckets, ClearBuckets, Command, Flow, RuleSet, State, Timestamp};
use purse_ledger::bench_support::Rng;
use purse_ledger::{AccountView, AsOf, Ledger, LiabilityAt, SweepScope};

const ACCOUNTS: [&str; 5] = ["a", "b", "c", "d", "e"];
const COMMANDS: usize = 260;
/// 2026-10-01 00:00:00 +08:00: every time of the workload is this plus up to 40 days.
const BASE: i64 = 1_790_784_000;
const DAY: i64 = 86_400;

struct Reference {
    /// `states[n]`: the fold after log entry n.
    states: Vec<State>,
    /// Every flow written, in log order: (account, sequence, order_time).
    flows: Vec<(String, u64, Timestamp)>,
    /// The same flows whole, in log order.
    whole: Vec<Flow>,
}

impl Reference {
    fn fold(&mut self, flows: &[Flow]) {
        for flow in flows {
            let mut state = self.states.last().expect("the empty state").clone();
            apply(&mut state, flow).expect("a written flow folds");
            assert_eq!(state.last_sequence(), flow.flow_id);
            self.states.push(state);
            self.flows.push((flow.account_id.clone(), flow.flow_id, flow.order_time));
            self.whole.push(flow.clone());
        }
    }
}

fn command(rng: &mut Rng, step: usize, orders: &[(String, String, &'static str)]) -> Command {
    let account = ACCOUNTS[rng.index(ACCOUNTS.len())];
    let id = format!("o{step}");
    let amount = |rng: &mut Rng, most: u64| money(&format!("{}.{:02}", rng.below(most), rng.below(100)));
    let order_of = |rng: &mut Rng, kind: &str| {
        let matching: Vec<&(String, String, &str)> = orders.iter().filter(|order| order.2 == kind).collect();
        (!matching.is_empty()).then(|| matching[rng.index(matching.len())].clone())
    };
    let at = |rng: &mut Rng| Timestamp(BASE + i64::try_from(rng.below(40 * 24)).unwrap() * 3600);
    let mut command = match rng.below(12) {
        0..=2 => {
            let action = Action::Charge {
                real: amount(rng, 100),
                gift: Some(amount(rng, 20)),
                pre: amount(rng, 10),
                trigger_gift: false,
            };
            let mut command = Command::new(&id, &id, account, action);
            if rng.below(2) == 0 {
                command.gift_expire_time =
                    Some(Timestamp(BASE + 41 * DAY + i64::try_from(rng.below(3)).unwrap() * DAY));
            }
            command
        }
        3 | 4 => Command::new(&id, &id, account, Action::Deduct { value: amount(rng, 60) }),
        5 => match order_of(rng, "deduct") {
            Some((account, order, _)) => {
                let value = (rng.below(2) == 0).then(|| amount(rng, 10));
                Command::new(&id, &id, &account, Action::Undeduct { original_outer_order_id: order, value })
            }
            None => Command::new(&id, &id, account, Action::Deduct { value: amount(rng, 5) }),
        },
        6 => Command::new(&id, &id, account, Action::Hold { value: amount(rng, 30), expire_time: None }),
        7 => match order_of(rng, "hold") {
            Some((account, order, _)) if rng.below(2) == 0 => {
                Command::new(&id, &id, &account, Action::Capture { src_outer_order_id: order, value: None })
            }
            Some((account, order, _)) => {
                Command::new(&id, &id, &account, Action::Release { src_outer_order_id: order })
            }
            None => Command::new(&id, &id, account, Action::Hold { value: amount(rng, 5), expire_time: None }),
        },
        8 => {
            let to = ACCOUNTS[rng.index(ACCOUNTS.len())];
            let value = (rng.below(3) != 0).then(|| amount(rng, 20));
            Command::new(&id, &id, account, Action::Transfer { to_account_id: to.to_owned(), value })
        }
        9 => {
            let mut command = Command::new(
                &id,
                &id,
                account,
                Action::Adjust { real: Amount::ZERO, gift: amount(rng, 5), pre: Amount::ZERO },
            );
            command.remark = Some("fix".into());
            command
        }
        10 => {
            let buckets = [ClearBuckets::Gift, ClearBuckets::Pre, ClearBuckets::All][rng.index(3)];
            let mut command = Command::new(&id, &id, account, Action::Clear { buckets });
            command.remark = Some("promo over".into());
            command
        }
        _ => {
            // A marker for a sweep, turned into `Ledger::expire` by the caller.
            let mut command = Command::new("sweep", "sweep", account, Action::Freeze);
            command.biz_date = Some(Timestamp(BASE + 41 * DAY + i64::try_from(rng.below(4)).unwrap() * DAY));
            return command;
        }
    };
    command.biz_date = Some(at(rng));
    command
}

async fn run(ledger: &Ledger, rng: &mut Rng, reference: &mut Reference) {
    let rules = RuleSet { gift_valid_days: Some(20), ..RuleSet::default() };
    ledger.set_rules(None, rules.clone()).await.unwrap();
    let mut state = reference.states[0].clone();
    apply_rules(&mut state, &purse_core::RulesChange { sequence: 1, brand_id: None, rules }).unwrap();
    reference.states.push(state);
    let mut orders: Vec<(String, String, &'static str)> = Vec::new();
    for step in 0..COMMANDS {
        let command = command(rng, step, &orders);
        let kind = match &command.action {
            Action::Deduct { .. } => "deduct",
            Action::Hold { .. } => "hold",
            _ => "",
        };
        let (account, order) = (command.account_id.clone(), command.outer_order_id.clone());
        let flows = if command.request_id == "sweep" {
            let now = command.biz_date.unwrap();
            let scope = if rng.below(2) == 0 { SweepScope::All } else { SweepScope::Account(account.clone()) };
            match ledger.expire(now, scope).await {
                Ok(flows) => flows,
                Err(error) => {
                    assert_eq!(error.code().as_str(), "ACCOUNT_NOT_FOUND", "{error}");
                    Vec::new()
                }
            }
        } else if matches!(command.action, Action::Transfer { .. }) {
            match ledger.transfer(command).await {
                Ok(transfer) => vec![transfer.out, transfer.transfer_in],
                Err(_) => Vec::new(),
            }
        } else {
            match ledger.submit(command).await {
                Ok(flow) => vec![flow],
                Err(_) => Vec::new(),
            }
        };
        if !flows.is_empty() && !kind.is_empty() {
            orders.push((account, order, kind));
        }
        reference.fold(&flows);
    }
}

#[tokio::test]
async fn history_views_agree_with_the_fold_at_every_point() {
    let seed = seed("PURSE_HISTORY_SEED");
    println!("PURSE_HISTORY_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let mut rng = Rng::new(seed);
    let mut reference = Reference { states: vec![State::default()], flows: Vec::new(), whole: Vec::new() };
    run(&ledger, &mut rng, &mut reference).await;
    let last = reference.states.len() - 1;
    assert!(reference.flows.len() > COMMANDS / 3, "seed {seed}: the workload wrote {} flows", reference.flows.len());
    assert!(reference.states[last].check_lots().is_ok());
    let mut kinds = std::collections::BTreeMap::new();
    for entry in 1..=last {
        let flow = ledger.flow(purse_ledger::FlowKey::Id(entry as u64)).await;
        if let Ok(flow) = flow {
            *kinds.entry(flow.flow_type.as_str()).or_insert(0) += 1;
        }
    }
    println!("flows by type: {kinds:?}");
    for kind in ["CHARGE", "DEDUCT", "HOLD", "TRANSFER_IN", "EXPIRE"] {
        assert!(kinds.contains_key(kind), "seed {seed}: the workload wrote no {kind}: {kinds:?}");
    }

    for account in ACCOUNTS {
        for entry in 0..=last {
            let expected = reference.states[entry].account(account).map(AccountView::of);
            let got = ledger.account_as_of(account, AsOf::Entry(entry as u64)).await;
            match (expected, got) {
                (Some(expected), Ok(got)) => assert_eq!(got, expected, "seed {seed}: {account} after entry {entry}"),
                (None, Err(error)) => assert_eq!(error.code().as_str(), "ACCOUNT_NOT_FOUND", "seed {seed}"),
                (expected, got) => panic!("seed {seed}: {account} after entry {entry}: {expected:?} vs {got:?}"),
            }
        }
        for hours in (0..45 * 24).step_by(17) {
            let time = Timestamp(BASE + hours * 3600);
            let last_flow = reference
                .flows
                .iter()
                .rfind(|(owner, _, order_time)| owner == account && *order_time <= time)
                .map(|(_, sequence, _)| *sequence);
            let expected = last_flow.and_then(|sequence| {
                reference.states[usize::try_from(sequence).unwrap()].account(account).map(AccountView::of)
            });
            let got = ledger.account_as_of(account, AsOf::Time(time)).await.ok();
            assert_eq!(got, expected, "seed {seed}: {account} at {time:?}");
        }
    }
    check_statements(&ledger, &reference, seed).await;
    check_liability(&ledger, &reference, seed).await;
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

/// spec §12–§13 statements, worked out from the flows themselves, for windows over the workload.
async fn check_statements(ledger: &Ledger, reference: &Reference, seed: u64) {
    for account in ACCOUNTS {
        let own: Vec<&Flow> = reference.whole.iter().filter(|flow| flow.account_id == account).collect();
        for (start_day, end_day) in [(0, 45), (3, 9), (10, 30), (20, 21), (38, 45)] {
            let (start, end) = (Timestamp(BASE + start_day * DAY), Timestamp(BASE + end_day * DAY));
            let got = ledger.statement(account, start, end).await;
            if own.is_empty() {
                assert_eq!(got.unwrap_err().code().as_str(), "ACCOUNT_NOT_FOUND", "seed {seed}");
                continue;
            }
            let got = got.unwrap();
            let closing =
                own.iter().rev().find(|flow| flow.order_time < end).map_or(Buckets::ZERO, |flow| flow.after().unwrap());
            let window: Vec<&&Flow> =
                own.iter().filter(|flow| start <= flow.order_time && flow.order_time < end).collect();
            let mut opening = closing;
            for flow in &window {
                opening = opening.checked_sub(&flow.affected).unwrap();
            }
            let what = format!("seed {seed}: statement of {account} over days {start_day}..{end_day}");
            assert_eq!((got.opening, got.closing, got.flows_count), (opening, closing, window.len() as u64), "{what}");
            let mut sums: Vec<(purse_core::FlowType, u64, Buckets)> = Vec::new();
            for flow in &window {
                match sums.iter_mut().find(|(flow_type, _, _)| *flow_type == flow.flow_type) {
                    Some((_, count, affected)) => {
                        *count += 1;
                        *affected = affected.checked_add(&flow.affected).unwrap();
                    }
                    None => sums.push((flow.flow_type, 1, flow.affected)),
                }
            }
            sums.sort_by_key(|(flow_type, _, _)| *flow_type);
            let got_sums: Vec<(purse_core::FlowType, u64, Buckets)> =
                got.by_flow_type.iter().map(|sum| (sum.flow_type, sum.count, sum.affected)).collect();
            assert_eq!(got_sums, sums, "{what}");
        }
    }
}

/// `liability` now equals the sum over the accounts of the fold, and `liability --at` the sum
/// over the accounts as of that time.
async fn check_liability(ledger: &Ledger, reference: &Reference, seed: u64) {
    let sum = |accounts: Vec<purse_core::Account>| {
        let mut total = (0u64, 0i128, 0i128);
        for account in accounts {
            total.0 += 1;
            total.1 += i128::from(account.balance.total().unwrap().minor());
            total.2 += i128::from(account.held.total().unwrap().minor());
        }
        total
    };
    let now = ledger.liability(LiabilityAt::Now(Timestamp(BASE))).await.unwrap();
    let last = reference.states.last().unwrap();
    let got = (now.total.accounts, now.total.balance.total(), now.total.held.total());
    assert_eq!(got, sum(last.accounts().cloned().collect()), "seed {seed}: liability now");
    for day in [0, 5, 17, 33, 44] {
        let time = Timestamp(BASE + day * DAY);
        let at = ledger.liability(LiabilityAt::Time(time)).await.unwrap();
        let accounts = ACCOUNTS
            .iter()
            .filter_map(|account| {
                let last_flow =
                    reference.flows.iter().rfind(|(owner, _, order_time)| owner == account && *order_time <= time)?;
                reference.states[usize::try_from(last_flow.1).unwrap()].account(account).cloned()
            })
            .collect();
        let got = (at.total.accounts, at.total.balance.total(), at.total.held.total());
        assert_eq!(got, sum(accounts), "seed {seed}: liability at day {day}");
    }
}

/// The two points the random test found in the first statement code, pinned with exact figures:
/// a flow dated after the window but before the closing flow in log order is not in the window,
/// and with such backdating the opening (closing − the window's affected) may be negative.
#[tokio::test]
async fn a_statement_with_flows_dated_after_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let at = |day: i64| Some(Timestamp(BASE + day * DAY));
    let mut charge = Command::new(
        "c",
        "c",
        "a",
        Action::Charge { real: Amount::ZERO, gift: None, pre: money("10"), trigger_gift: false },
    );
    charge.biz_date = at(5);
    let mut deduct = Command::new("d", "d", "a", Action::Deduct { value: money("10") });
    deduct.biz_date = at(40);
    let mut adjust =
        Command::new("j", "j", "a", Action::Adjust { real: money("1"), gift: Amount::ZERO, pre: Amount::ZERO });
    adjust.biz_date = at(1);
    adjust.remark = Some("till".into());
    for command in [charge, deduct, adjust] {
        ledger.submit(command).await.unwrap();
    }
    let statement = ledger.statement("a", Timestamp(BASE + 3 * DAY), Timestamp(BASE + 9 * DAY)).await.unwrap();
    assert_eq!(statement.closing, Buckets::from_minor(100, 0, 0), "after the ADJUST, the last flow dated before day 9");
    assert_eq!(statement.flows_count, 1, "the CHARGE of day 5 only: the DEDUCT of day 40 is not in [3, 9)");
    assert_eq!(statement.opening, Buckets::from_minor(100, 0, -1000));
    assert!(statement.backdated);
    ledger.close().await.unwrap();
}

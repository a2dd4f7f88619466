//! The worked rules of spec §2–§4 as tables.
//!
//! Each row is a command in a small text form and what must come of it: the flow's signed
//! `affected` as `REAL GIFT PRE`, or an error code. Rows run in order against one state, so a
//! table reads as a session: `check(rules, &[(command, expect), …])`.
//!
//! Command form: `TYPE account order [key=value]… [trigger]`, keys `real gift pre value src
//! req card brand remark time expire to`. `src` is the refunded DEDUCT (UNDEDUCT) or reversed CHARGE
//! (UNCHARGE); `req` defaults to `r-<order>`.

use crate::{
    apply, apply_rules, decide, decide_rules, Action, Amount, Buckets, Command, Context, RuleSet, RuleSetText, Scale,
    State, Timestamp, Zone,
};

pub(crate) const NOW: Timestamp = Timestamp(1_800_000_000);

pub(crate) fn money(text: &str) -> Amount {
    Amount::parse(text, Scale::CNY).unwrap_or_else(|error| panic!("test amount {text}: {error}"))
}

pub(crate) fn parse_command(text: &str) -> Command {
    let mut words = text.split_whitespace();
    let kind = words.next().expect("a flow type");
    let account = words.next().expect("an account");
    let order = words.next().expect("an order id");
    let mut fields = std::collections::HashMap::new();
    let mut trigger = false;
    for word in words {
        match word.split_once('=') {
            Some((key, value)) => {
                fields.insert(key, value);
            }
            None if word == "trigger" => trigger = true,
            None => panic!("unknown word {word:?} in {text:?}"),
        }
    }
    let amount = |key: &str| fields.get(key).map(|value| money(value));
    let zero = |key: &str| amount(key).unwrap_or(Amount::ZERO);
    let source = || fields.get("src").expect("src=").to_string();
    let action = match kind {
        "charge" => {
            Action::Charge { real: zero("real"), gift: amount("gift"), pre: zero("pre"), trigger_gift: trigger }
        }
        "deduct" => Action::Deduct { value: zero("value") },
        "undeduct" => Action::Undeduct { original_outer_order_id: source(), value: amount("value") },
        "uncharge" => Action::Uncharge { src_outer_order_id: source() },
        "import" => Action::Import { real: zero("real"), gift: zero("gift"), pre: zero("pre") },
        "open" => Action::Open { real: zero("real"), gift: zero("gift"), pre: zero("pre") },
        "adjust" => Action::Adjust { real: zero("real"), gift: zero("gift"), pre: zero("pre") },
        "hold" => Action::Hold { value: zero("value"), expire_time: fields.get("expire").map(|value| time(value)) },
        "capture" => Action::Capture { src_outer_order_id: source(), value: amount("value") },
        "release" => Action::Release { src_outer_order_id: source() },
        "freeze" => Action::Freeze,
        "unfreeze" => Action::Unfreeze,
        "close" => Action::Close,
        "transfer" => {
            Action::Transfer { to_account_id: fields.get("to").expect("to=").to_string(), value: amount("value") }
        }
        "clear" => Action::Clear {
            buckets: crate::ClearBuckets::parse(fields.get("bucket").expect("bucket=")).expect("GIFT, PRE or ALL"),
        },
        // The sweep's commands carry their own ids: `expire ACCOUNT - now=T`.
        "expire" => return Command::expire(account, time(fields.get("now").expect("now=")), Zone::CHINA),
        "expirehold" => {
            return Command::expire_hold(account, &source(), time(fields.get("now").expect("now=")), Zone::CHINA)
        }
        other => panic!("unknown command {other:?}"),
    };
    let request = fields.get("req").map_or_else(|| format!("r-{order}"), |req| req.to_string());
    let mut command = Command::new(&request, order, account, action);
    command.card_id = fields.get("card").map(|value| value.to_string());
    command.brand_id = fields.get("brand").map(|value| value.to_string());
    command.remark = fields.get("remark").map(|value| value.replace('_', " "));
    command.biz_date = fields.get("time").map(|value| time(value));
    command.gift_expire_time = fields.get("gift_expire").map(|value| time(value));
    command.pre_expire_time = fields.get("pre_expire").map(|value| time(value));
    command
}

/// `2026-12-01T09:00:00` in the China zone.
pub(crate) fn time(text: &str) -> Timestamp {
    Zone::CHINA.parse_local(&text.replace('T', " ")).unwrap_or_else(|| panic!("test time {text}"))
}

pub(crate) fn format_affected(buckets: &Buckets) -> String {
    let scale = Scale::CNY;
    format!("{} {} {}", buckets.real.format(scale), buckets.gift.format(scale), buckets.pre.format(scale))
}

/// Runs `rows` in order on a state with `rules` as the ledger default (and, if `brand` rules
/// are given, for brand `B`), asserting each outcome, and that a rejection changes nothing.
fn check_with(rules: Option<RuleSet>, brand_rules: Option<RuleSet>, rows: &[(&str, &str)]) -> State {
    let mut state = State::default();
    for (brand, rules) in [(None, rules), (Some("B"), brand_rules)] {
        if let Some(rules) = rules {
            let context = Context { sequence: state.next_sequence(), now: NOW };
            apply_rules(&mut state, &decide_rules(brand, rules, &context).unwrap()).unwrap();
        }
    }
    for (text, expect) in rows {
        let command = parse_command(text);
        let context = Context { sequence: state.next_sequence(), now: NOW };
        let before = state.clone();
        match decide(&state, &command, &context).map(|decision| decision.flow) {
            Ok(flow) => {
                assert_eq!(format_affected(&flow.affected), *expect, "{text}");
                apply(&mut state, &flow).unwrap_or_else(|error| panic!("{text}: decided flow must apply: {error}"));
            }
            Err(error) if error.is_skip() => {
                assert_eq!("SKIP", *expect, "{text}: {error}");
                assert_eq!(state, before, "{text}: a skip must change nothing");
            }
            Err(error) => {
                assert_eq!(error.code().as_str(), *expect, "{text}: {error}");
                assert_eq!(state, before, "{text}: a rejection must change nothing");
            }
        }
    }
    state
}

fn check(rules: Option<RuleSet>, rows: &[(&str, &str)]) -> State {
    check_with(rules, None, rows)
}

/// A rule set as its JSON fields: (deduction_order, gift_type, full_gift_switch, tiers).
type RulesRow<'a> = (&'a str, Option<&'a str>, Option<bool>, &'a [(&'a str, &'a str)]);

fn rules(row: RulesRow<'_>) -> RuleSet {
    let (order, gift_type, switch, tiers) = row;
    let text = RuleSetText {
        gift_valid_days: None,
        deduction_order: Some(order.to_owned()),
        gift_type: gift_type.map(str::to_owned),
        full_gift_switch: switch,
        tiers: tiers.iter().map(|(real, gift)| ((*real).to_owned(), (*gift).to_owned())).collect(),
    };
    RuleSet::from_text(&text, Scale::CNY).unwrap()
}

const TIERS: &[(&str, &str)] = &[("100.00", "20.00"), ("500.00", "150.00")];

#[test]
fn charge_gifts_from_customized_tiers() {
    let one = rules(("PERCENT_DEDUCT", Some("CUSTOMIZED"), Some(false), TIERS));
    check(
        Some(one),
        &[
            ("charge a o1 real=100.00 trigger", "100.00 20.00 0.00"),
            ("charge a o2 real=300.00 trigger", "300.00 20.00 0.00"),
            ("charge a o3 real=99.99 trigger", "99.99 0.00 0.00"),
            ("charge a o4 real=600 trigger", "600.00 150.00 0.00"),
            ("charge a o5 real=100 gift=5 trigger", "INVALID_ARGUMENT"),
            ("charge a o6 real=100 gift=5", "100.00 5.00 0.00"),
            ("charge a o7 real=10 pre=3", "10.00 0.00 3.00"),
        ],
    );
    let full = rules(("PERCENT_DEDUCT", Some("CUSTOMIZED"), Some(true), TIERS));
    check(
        Some(full),
        &[
            ("charge a o1 real=300.00 trigger", "300.00 60.00 0.00"),
            ("charge a o2 real=1000 trigger", "1000.00 300.00 0.00"),
        ],
    );
}

#[test]
fn charge_gifts_proportional_half_up() {
    let proportional = rules(("PERCENT_DEDUCT", Some("PROPORTIONAL"), None, &[("0.01", "1000")]));
    check(
        Some(proportional),
        &[
            ("charge a o1 real=123.45 trigger", "123.45 12.35 0.00"),
            ("charge a o2 real=0.04 trigger", "0.04 0.00 0.00"),
        ],
    );
}

#[test]
fn brand_rules_override_the_default() {
    let default = rules(("PERCENT_DEDUCT", Some("CUSTOMIZED"), Some(false), TIERS));
    let brand = rules(("REAL_BEFORE_GIFT_DEDUCT", Some("PROPORTIONAL"), None, &[("1", "5500")]));
    check_with(
        Some(default),
        Some(brand),
        &[
            ("charge plain o1 real=100 trigger", "100.00 20.00 0.00"),
            ("charge branded o2 real=100 trigger brand=B", "100.00 55.00 0.00"),
            ("deduct branded o3 value=120", "-100.00 -20.00 0.00"),
            ("charge branded o4 real=1 brand=OTHER", "INVALID_ARGUMENT"),
        ],
    );
}

#[test]
fn charge_amount_rules() {
    check(
        None,
        &[
            ("charge a o1", "INVALID_AMOUNT"),
            ("charge a o1 real=-1", "INVALID_AMOUNT"),
            ("charge a o1 gift=-0.01 real=5", "INVALID_AMOUNT"),
            ("charge a o1 real=0 trigger", "INVALID_AMOUNT"),
            ("charge a o1 gift=1", "0.00 1.00 0.00"),
            ("charge a o2 real=92233720368547758.07", "INVALID_AMOUNT"),
        ],
    );
}

#[test]
fn deduct_orders() {
    let percent = &[
        ("charge a o1 real=66.67 gift=33.33", "66.67 33.33 0.00"),
        ("deduct a o2 value=10.00", "-6.67 -3.33 0.00"),
        ("deduct a o3 value=90.01", "INSUFFICIENT_BALANCE"),
        ("deduct a o3 value=0", "INVALID_AMOUNT"),
        ("deduct a o3 value=-5", "INVALID_AMOUNT"),
        ("deduct nobody o3 value=1", "ACCOUNT_NOT_FOUND"),
        ("charge a o3 pre=5", "0.00 0.00 5.00"),
        ("deduct a o4 value=6", "-0.67 -0.33 -5.00"),
        ("deduct a o5 value=89.00", "-59.33 -29.67 0.00"),
    ];
    check(None, percent);
    let real_first = rules(("REAL_BEFORE_GIFT_DEDUCT", None, None, &[]));
    check(
        Some(real_first),
        &[
            ("charge a o1 real=100 gift=20 pre=1", "100.00 20.00 1.00"),
            ("deduct a o2 value=111", "-100.00 -10.00 -1.00"),
        ],
    );
    let gift_first = rules(("GIFT_BEFORE_REAL_DEDUCT", None, None, &[]));
    check(
        Some(gift_first),
        &[("charge a o1 real=100 gift=20", "100.00 20.00 0.00"), ("deduct a o2 value=30", "-10.00 -20.00 0.00")],
    );
}

#[test]
fn undeduct_partial_and_full() {
    check(
        None,
        &[
            ("charge a c1 real=66.67 gift=33.33 pre=10", "66.67 33.33 10.00"),
            ("deduct a d1 value=60.00", "-33.33 -16.67 -10.00"),
            // v=10 of T0=60 (R0 33.33, G0 16.67, P0 10): gift = half_up(10·16.67/60) = 2.78,
            // pre = half_up(10·10/60) = 1.67, real = 10 − 2.78 − 1.67 = 5.55.
            ("undeduct a u1 src=d1 value=10", "5.55 2.78 1.67"),
            ("undeduct a u2 src=d1 value=50.01", "REFUND_EXCEEDS_ORIGINAL"),
            ("undeduct a u2 src=d1 value=0", "INVALID_AMOUNT"),
            ("undeduct a u2 src=nope value=1", "ORDER_NOT_FOUND"),
            ("undeduct a u2 src=c1 value=1", "INVALID_ARGUMENT"),
            // 1.00: gift half_up(1·16.67/60) = 0.28, pre half_up(1·10/60) = 0.17, real 0.55
            ("undeduct a u2 src=d1 value=1", "0.55 0.28 0.17"),
            // the completing refund gives back exactly each bucket's rest
            ("undeduct a u3 src=d1", "27.23 13.61 8.16"),
            ("undeduct a u4 src=d1", "REFUND_EXCEEDS_ORIGINAL"),
            ("undeduct a u4 src=d1 value=0.01", "REFUND_EXCEEDS_ORIGINAL"),
        ],
    );
}

#[test]
fn undeduct_moves_excess_when_real_rest_is_short() {
    // Refund gift first via rounding: the 0.01 refunds drain REAL's rest, then the split
    // must move what REAL cannot take to GIFT and PRE.
    check(
        None,
        &[
            ("charge a c1 real=0.01 gift=0.01 pre=0.01", "0.01 0.01 0.01"),
            ("deduct a d1 value=0.03", "-0.01 -0.01 -0.01"),
            // half_up(0.01·1/3) = 0 for gift and pre, so REAL takes it.
            ("undeduct a u1 src=d1 value=0.01", "0.01 0.00 0.00"),
            // REAL's rest is 0: the 0.01 REAL would take moves to GIFT.
            ("undeduct a u2 src=d1 value=0.01", "0.00 0.01 0.00"),
            ("undeduct a u3 src=d1 value=0.01", "0.00 0.00 0.01"),
        ],
    );
}

#[test]
fn undeduct_of_another_account() {
    check(
        None,
        &[
            ("charge a c1 real=10", "10.00 0.00 0.00"),
            ("charge b c2 real=10", "10.00 0.00 0.00"),
            ("deduct a d1 value=5", "-5.00 0.00 0.00"),
            ("undeduct b u1 src=d1", "INVALID_ARGUMENT"),
            ("undeduct nobody u1 src=d1", "ACCOUNT_NOT_FOUND"),
        ],
    );
}

#[test]
fn uncharge_reverses_once() {
    let state = check(
        Some(rules(("PERCENT_DEDUCT", Some("CUSTOMIZED"), Some(false), TIERS))),
        &[
            ("charge a c1 real=100 trigger", "100.00 20.00 0.00"),
            ("charge a c2 real=50", "50.00 0.00 0.00"),
            ("uncharge a x1 src=c1", "-100.00 -20.00 0.00"),
            ("uncharge a x2 src=c1", "ALREADY_REVERSED"),
            ("uncharge a x2 src=nope", "ORDER_NOT_FOUND"),
            ("deduct a d1 value=10", "-10.00 0.00 0.00"),
            ("uncharge a x2 src=d1", "INVALID_ARGUMENT"),
            // only 40.00 REAL left of the 50.00 charged
            ("uncharge a x2 src=c2", "INSUFFICIENT_BALANCE"),
            ("charge a c3 real=10", "10.00 0.00 0.00"),
            ("uncharge a x2 src=c2", "-50.00 0.00 0.00"),
        ],
    );
    let account = state.account("a").unwrap();
    assert_eq!(account.balance, Buckets::ZERO);
    // lifetime: 100+50+10 REAL and 20 GIFT charged; 100 REAL, 20 GIFT, then 50 REAL taken back
    assert_eq!(account.lifetime, Buckets::new(money("10"), Amount::ZERO, Amount::ZERO));
}

#[test]
fn import_and_adjust() {
    let state = check(
        None,
        &[
            ("import a i1 real=50 gift=5 pre=1", "50.00 5.00 1.00"),
            ("import b i2", "0.00 0.00 0.00"),
            ("import a i3 real=-1", "INVALID_AMOUNT"),
            ("import a i3 real=1 time=2099-01-01T00:00:00", "INVALID_ARGUMENT"),
            ("import a i3 real=1 time=2020-01-01T00:00:00", "1.00 0.00 0.00"),
            ("adjust a j1 real=-1", "INVALID_ARGUMENT"),
            ("adjust a j1 real=-1 remark=___", "INVALID_ARGUMENT"),
            ("adjust a j1 remark=nothing", "INVALID_AMOUNT"),
            ("adjust a j1 real=-51.01 remark=typo", "INSUFFICIENT_BALANCE"),
            ("adjust a j1 real=-1 gift=2 remark=typo", "-1.00 2.00 0.00"),
            ("adjust nobody j2 real=1 remark=x", "ACCOUNT_NOT_FOUND"),
        ],
    );
    let account = state.account("a").unwrap();
    assert_eq!(account.balance, Buckets::new(money("50"), money("7"), money("1")));
    assert_eq!(account.lifetime, Buckets::new(money("51"), money("5"), money("1")), "ADJUST is not in lifetime totals");
}

#[test]
fn an_opening_balance_only_opens_a_new_account() {
    let state = check(
        None,
        &[
            ("open a o1 real=50 gift=5 pre=1 time=2020-01-01T00:00:00", "50.00 5.00 1.00"),
            // the account exists now: a second opening balance has nothing to do, whatever its ids
            ("open a o2 real=50", "SKIP"),
            ("charge b c1 real=1", "1.00 0.00 0.00"),
            ("open b o3 real=9", "SKIP"),
            // checked like an IMPORT before the account is looked at
            ("open c o4 real=-1", "INVALID_AMOUNT"),
            ("open c o4 real=1 time=2099-01-01T00:00:00", "INVALID_ARGUMENT"),
            ("open c o1 real=1", "DUPLICATE_ORDER"),
            ("open c o4", "0.00 0.00 0.00"),
        ],
    );
    let account = state.account("a").unwrap();
    assert_eq!(account.balance, Buckets::new(money("50"), money("5"), money("1")));
    assert_eq!(account.lifetime, account.balance, "an opening balance counts in the lifetime totals like an IMPORT");
    assert_eq!(state.order("o1").unwrap().flow_type, crate::FlowType::Import, "an opening balance is an IMPORT flow");
    assert!(state.order("o2").is_none() && state.order("o3").is_none(), "a skipped opening balance leaves no order");
    assert_eq!(state.account("b").unwrap().balance, Buckets::new(money("1"), Amount::ZERO, Amount::ZERO));
}

#[test]
fn order_ids_are_unique_and_arguments_checked() {
    let long_account = "x".repeat(65);
    let long_request = "r".repeat(129);
    let rows = [
        ("charge a o1 real=1".to_owned(), "1.00 0.00 0.00"),
        ("charge a o1 real=1 req=other".to_owned(), "DUPLICATE_ORDER"),
        ("deduct a o1 value=1 req=other".to_owned(), "DUPLICATE_ORDER"),
        (format!("charge {long_account} o2 real=1"), "INVALID_ARGUMENT"),
        (format!("charge a o2 real=1 req={long_request}"), "INVALID_ARGUMENT"),
        ("charge a o2 real=1 card=C".to_owned(), "INVALID_ARGUMENT"),
        ("charge c o2 real=1 card=C brand=B".to_owned(), "1.00 0.00 0.00"),
        ("charge c o3 real=1 card=C".to_owned(), "1.00 0.00 0.00"),
        ("charge c o4 real=1 card=D".to_owned(), "INVALID_ARGUMENT"),
    ];
    let rows: Vec<(&str, &str)> = rows.iter().map(|(command, expect)| (command.as_str(), *expect)).collect();
    let state = check(None, &rows);
    let account = state.account("c").unwrap();
    assert_eq!((account.card_id.as_deref(), account.brand_id.as_deref()), (Some("C"), Some("B")));
}

#[test]
fn business_time_defaults_to_now() {
    let mut state = State::default();
    let context = Context { sequence: 1, now: NOW };
    let flow = decide(&state, &parse_command("charge a o1 real=1"), &context).unwrap().flow;
    assert_eq!(flow.order_time, NOW);
    apply(&mut state, &flow).unwrap();
    let flow = decide(
        &state,
        &parse_command("deduct a o2 value=1 time=2019-08-01T15:14:31"),
        &Context { sequence: 2, now: NOW },
    )
    .unwrap()
    .flow;
    assert_eq!(Zone::CHINA.format_local(flow.order_time), "2019-08-01 15:14:31");
}

#[test]
fn apply_rejects_a_contradicting_log() {
    let mut state = State::default();
    let context = Context { sequence: 1, now: NOW };
    let flow = decide(&state, &parse_command("charge a o1 real=10"), &context).unwrap().flow;
    apply(&mut state, &flow).unwrap();
    let deduct =
        decide(&state, &parse_command("deduct a o2 value=4"), &Context { sequence: 2, now: NOW }).unwrap().flow;
    let cases: Vec<(&str, crate::Flow)> = vec![
        ("gap", crate::Flow { flow_id: 3, ..deduct.clone() }),
        ("replayed", crate::Flow { flow_id: 1, ..deduct.clone() }),
        ("wrong before", crate::Flow { before: Buckets::from_minor(999, 0, 0), ..deduct.clone() }),
        ("overdraft", crate::Flow { affected: Buckets::from_minor(-1001, 0, 0), ..deduct.clone() }),
        ("reused order", crate::Flow { outer_order_id: "o1".into(), ..deduct.clone() }),
        ("deduct adding", crate::Flow { affected: Buckets::from_minor(1, 0, 0), ..deduct.clone() }),
        ("unknown account", crate::Flow { account_id: "zz".into(), ..deduct.clone() }),
    ];
    for (name, bad) in cases {
        let before = state.clone();
        assert!(apply(&mut state, &bad).is_err(), "{name} must be refused");
        assert_eq!(state, before, "{name}: a refused flow changes nothing");
    }
    apply(&mut state, &deduct).unwrap();
}

#[test]
fn recorded_flows_keep_the_providers_change() {
    use crate::{FlowType, Source};
    let mut state = State::default();
    let recorded = |order: &str, flow_type: FlowType, affected: Buckets| {
        let source = Source { provider: "alsc".into(), record_id: order.into() };
        Command::new(&format!("r-{order}"), order, "a", Action::Recorded { flow_type, affected, source })
    };
    let rows: Vec<(Command, Result<Buckets, &str>)> = vec![
        (recorded("d0", FlowType::Deduct, Buckets::from_minor(-1, 0, 0)), Err("ACCOUNT_NOT_FOUND")),
        (
            recorded("c1", FlowType::Charge, Buckets::from_minor(10_000, 2_000, 0)),
            Ok(Buckets::from_minor(10_000, 2_000, 0)),
        ),
        // the provider's own split, not purse's PERCENT_DEDUCT (which would give 8.33 / 1.67)
        (recorded("d1", FlowType::Deduct, Buckets::from_minor(-500, -500, 0)), Ok(Buckets::from_minor(-500, -500, 0))),
        (recorded("d2", FlowType::Deduct, Buckets::from_minor(-1, 1, 0)), Err("INVALID_AMOUNT")),
        (recorded("d2", FlowType::Charge, Buckets::ZERO), Err("INVALID_AMOUNT")),
        (recorded("d2", FlowType::Deduct, Buckets::from_minor(0, -1_501, 0)), Err("INSUFFICIENT_BALANCE")),
        (recorded("d2", FlowType::Adjust, Buckets::from_minor(5, -5, 0)), Ok(Buckets::from_minor(5, -5, 0))),
        // purse's own refund of the provider's DEDUCT splits by that DEDUCT's parts
        (
            Command::new("r-u1", "u1", "a", Action::Undeduct { original_outer_order_id: "d1".into(), value: None }),
            Ok(Buckets::from_minor(500, 500, 0)),
        ),
        // and its recharge refund of the provider's CHARGE takes back exactly what it added
        (recorded("c2", FlowType::Charge, Buckets::from_minor(100, 0, 0)), Ok(Buckets::from_minor(100, 0, 0))),
        (
            Command::new("r-x1", "x1", "a", Action::Uncharge { src_outer_order_id: "c2".into() }),
            Ok(Buckets::from_minor(-100, 0, 0)),
        ),
    ];
    for (command, expect) in rows {
        let context = Context { sequence: state.next_sequence(), now: NOW };
        let got = decide(&state, &command, &context).map(|decision| decision.flow);
        match (&got, expect) {
            (Ok(flow), Ok(affected)) => {
                assert_eq!(flow.affected, affected, "{command:?}");
                if let Action::Recorded { source, .. } = &command.action {
                    assert_eq!(flow.source.as_ref(), Some(source));
                }
                apply(&mut state, flow).unwrap();
            }
            (Err(error), Err(code)) => assert_eq!(error.code().as_str(), code, "{command:?}: {error}"),
            (got, expect) => panic!("{command:?}: got {got:?}, expected {expect:?}"),
        }
    }
    let account = state.account("a").unwrap();
    assert_eq!(account.balance, Buckets::from_minor(10_005, 1_995, 0));
    assert_eq!(account.lifetime, Buckets::from_minor(10_000, 2_000, 0));
}

/// Ids are checked in characters, not bytes, and refuse control characters, ASCII or not: the
/// ASCII fast path of `check_text` must answer exactly as decoding would.
#[test]
fn ids_are_counted_in_characters_and_refuse_control_characters() {
    let long = |unit: &str, count: usize| unit.repeat(count);
    let table: Vec<(String, bool)> = vec![
        (String::new(), false),
        ("a".into(), true),
        (long("a", crate::REQUEST_ID_CHARS_MAX), true),
        (long("a", crate::REQUEST_ID_CHARS_MAX + 1), false),
        // Two bytes a character: as many characters are allowed, twice the bytes.
        (long("é", crate::REQUEST_ID_CHARS_MAX), true),
        (long("é", crate::REQUEST_ID_CHARS_MAX + 1), false),
        ("a\tb".into(), false),
        ("a\u{0}".into(), false),
        ("a\u{1f}".into(), false),
        ("a\u{7f}".into(), false),
        ("a~".into(), true),
        ("é\u{85}".into(), false),
        ("é\u{9f}".into(), false),
        ("é\u{a0}".into(), true),
    ];
    let context = Context { sequence: 1, now: NOW };
    for (request_id, accepted) in table {
        let command = Command::new(&request_id, "o-1", "alice", Action::Deduct { value: money("1") });
        let answer = crate::check_arguments(&command, &context);
        assert_eq!(answer.is_ok(), accepted, "{request_id:?}: {answer:?}");
        if let Err(error) = answer {
            assert_eq!(error.code(), crate::ErrorCode::InvalidArgument, "{request_id:?}");
        }
    }
}

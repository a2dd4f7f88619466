//! spec §11 as tables: expiry lots, the sweep and CLEAR, with exact numbers.
//!
//! Each row is a command in the text form of `tests.rs`, what it must decide (`affected` as
//! `REAL GIFT PRE`, `SKIP`, or an error code) and the lots of the command's account afterwards:
//! `BUCKET value[/held]@expiry` in spending order, `never` for a lot without expiry. Rows run in
//! order against one state; a rejection must change nothing, and after every row the lots of
//! every account add up to its GIFT and PRE balances and held values.

use crate::tests::{format_affected, parse_command, time, NOW};
use crate::{apply, apply_rules, decide, decide_rules, Bucket, Context, RuleSet, Scale, State, Zone};

fn lots_of(state: &State, account_id: &str) -> String {
    let Some(account) = state.account(account_id) else { return "-".into() };
    let lots: Vec<String> = account
        .lots
        .iter()
        .map(|lot| {
            let held = if lot.held.is_zero() { String::new() } else { format!("/{}", lot.held.format(Scale::CNY)) };
            let expiry = lot.key.expire_time().map_or("never".to_owned(), |time| {
                Zone::CHINA.format_local(time).replace(' ', "T").trim_end_matches(":00:00").to_owned()
            });
            format!("{} {}{held}@{expiry}", lot.bucket, lot.value.format(Scale::CNY))
        })
        .collect();
    if lots.is_empty() {
        "none".into()
    } else {
        lots.join(", ")
    }
}

fn check_lots_add_up(state: &State, text: &str) {
    for account in state.accounts() {
        let (value, held) = account.lots.totals().expect("in range");
        for bucket in [Bucket::Gift, Bucket::Pre] {
            assert_eq!(value.get(bucket), account.balance.get(bucket), "{text}: {bucket} lots of {account:?}");
            assert_eq!(held.get(bucket), account.held.get(bucket), "{text}: {bucket} held lots of {account:?}");
        }
        assert!(account.lots.iter().all(|lot| lot.held <= lot.value && lot.value.is_positive()), "{text}");
    }
}

fn check(rules: Option<RuleSet>, rows: &[(&str, &str, &str)]) -> State {
    let mut state = State::default();
    if let Some(rules) = rules {
        let context = Context { sequence: state.next_sequence(), now: NOW };
        apply_rules(&mut state, &decide_rules(None, rules, &context).unwrap()).unwrap();
    }
    for (text, expect, lots) in rows {
        let command = parse_command(text);
        let context = Context { sequence: state.next_sequence(), now: NOW };
        let before = state.clone();
        match decide(&state, &command, &context) {
            Ok(decision) => {
                let got = match &decision.transfer_in {
                    None => format_affected(&decision.flow.affected),
                    Some(flow_in) => {
                        format!(
                            "{} -> {}",
                            format_affected(&decision.flow.affected),
                            format_affected(&flow_in.affected)
                        )
                    }
                };
                assert_eq!(got, *expect, "{text}");
                for flow in decision.into_flows() {
                    apply(&mut state, &flow).unwrap_or_else(|error| panic!("{text}: decided flow must apply: {error}"));
                }
            }
            Err(error) => {
                let got = if error.is_skip() { "SKIP" } else { error.code().as_str() };
                assert_eq!(got, *expect, "{text}: {error}");
                assert_eq!(state, before, "{text}: a rejection must change nothing");
            }
        }
        check_lots_add_up(&state, text);
        assert_eq!(lots_of(&state, &command.account_id), *lots, "{text}: lots");
    }
    state
}

#[test]
fn a_deduct_takes_the_soonest_expiring_gift_first() {
    check(
        None,
        &[
            (
                "charge a c1 real=100 gift=10 gift_expire=2027-03-01T00:00:00",
                "100.00 10.00 0.00",
                "GIFT 10.00@2027-03-01T00",
            ),
            (
                "charge a c2 real=100 gift=20 gift_expire=2027-02-01T00:00:00",
                "100.00 20.00 0.00",
                "GIFT 20.00@2027-02-01T00, GIFT 10.00@2027-03-01T00",
            ),
            (
                "charge a c3 real=0 gift=5",
                "0.00 5.00 0.00",
                "GIFT 20.00@2027-02-01T00, GIFT 10.00@2027-03-01T00, GIFT 5.00@never",
            ),
            // 35.00 of REAL 200 / GIFT 35 under PERCENT_DEDUCT: GIFT half_up(35·35/235) = 5.21.
            // It comes out of the February lot, the soonest to expire.
            (
                "deduct a d1 value=35",
                "-29.79 -5.21 0.00",
                "GIFT 14.79@2027-02-01T00, GIFT 10.00@2027-03-01T00, GIFT 5.00@never",
            ),
            // All that is left: the February lot, then March, then the lot without expiry.
            ("deduct a d2 value=200", "-170.21 -29.79 0.00", "none"),
        ],
    );
}

#[test]
fn a_partial_undeduct_refills_the_lots_it_came_from_last_taken_first() {
    check(
        Some(RuleSet { deduction_order: crate::DeductionOrder::GiftBeforeReal, ..RuleSet::default() }),
        &[
            (
                "charge a c1 real=50 gift=10 gift_expire=2027-02-01T00:00:00",
                "50.00 10.00 0.00",
                "GIFT 10.00@2027-02-01T00",
            ),
            (
                "charge a c2 real=0 gift=10 gift_expire=2027-03-01T00:00:00",
                "0.00 10.00 0.00",
                "GIFT 10.00@2027-02-01T00, GIFT 10.00@2027-03-01T00",
            ),
            ("deduct a d1 value=30", "-10.00 -20.00 0.00", "none"),
            // Half of it back: GIFT half_up(15·20/30) = 10.00, given to the March lot first (taken last).
            ("undeduct a u1 src=d1 value=15", "5.00 10.00 0.00", "GIFT 10.00@2027-03-01T00"),
            ("undeduct a u2 src=d1 value=3", "1.00 2.00 0.00", "GIFT 2.00@2027-02-01T00, GIFT 10.00@2027-03-01T00"),
            // The rest: exactly what is left of each bucket, into the February lot it came from.
            ("undeduct a u3 src=d1", "4.00 8.00 0.00", "GIFT 10.00@2027-02-01T00, GIFT 10.00@2027-03-01T00"),
        ],
    );
}

#[test]
fn a_held_lot_survives_the_sweep_and_expires_at_the_next_once_released() {
    check(
        None,
        &[
            (
                "charge a c1 real=0 gift=30 gift_expire=2027-02-01T00:00:00 time=2027-01-10T00:00:00",
                "0.00 30.00 0.00",
                "GIFT 30.00@2027-02-01T00",
            ),
            ("hold a h1 value=12 time=2027-01-20T00:00:00", "0.00 0.00 0.00", "GIFT 30.00/12.00@2027-02-01T00"),
            ("expire a - now=2027-02-01T00:00:00", "0.00 -18.00 0.00", "GIFT 12.00/12.00@2027-02-01T00"),
            // Its ids are taken: the ledger answers the same sweep again as a replay, before decide.
            ("expire a - now=2027-02-01T00:00:00", "DUPLICATE_ORDER", "GIFT 12.00/12.00@2027-02-01T00"),
            ("expire a - now=2027-02-01T00:00:01", "SKIP", "GIFT 12.00/12.00@2027-02-01T00"),
            ("release a rl1 src=h1 time=2027-02-02T00:00:00", "0.00 0.00 0.00", "GIFT 12.00@2027-02-01T00"),
            // Released past its expiry, it stays spendable until a sweep expires it (spec §13).
            ("expire a - now=2027-02-03T00:00:00", "0.00 -12.00 0.00", "none"),
        ],
    );
}

#[test]
fn the_sweep_releases_expired_holds_and_takes_only_what_expired() {
    check(
        None,
        &[
            (
                "charge a c1 real=10 gift=5 pre=8 gift_expire=2027-02-01T00:00:00 pre_expire=2027-03-01T00:00:00 time=2027-01-10T00:00:00",
                "10.00 5.00 8.00",
                "GIFT 5.00@2027-02-01T00, PRE 8.00@2027-03-01T00",
            ),
            (
                "hold a h1 value=10 expire=2027-01-31T00:00:00 time=2027-01-20T00:00:00",
                "0.00 0.00 0.00",
                "GIFT 5.00/0.67@2027-02-01T00, PRE 8.00/8.00@2027-03-01T00",
            ),
            ("expirehold a - src=h1 now=2027-01-30T00:00:00", "INVALID_ARGUMENT", "GIFT 5.00/0.67@2027-02-01T00, PRE 8.00/8.00@2027-03-01T00"),
            ("expirehold a - src=h1 now=2027-02-01T00:00:00", "0.00 0.00 0.00", "GIFT 5.00@2027-02-01T00, PRE 8.00@2027-03-01T00"),
            ("expire a - now=2027-02-01T00:00:00", "0.00 -5.00 0.00", "PRE 8.00@2027-03-01T00"),
            ("capture a cp1 src=h1 time=2027-02-01T01:00:00", "ALREADY_REVERSED", "PRE 8.00@2027-03-01T00"),
        ],
    );
}

#[test]
fn a_transfer_moves_lots_with_their_expiry() {
    let state = check(
        Some(RuleSet { deduction_order: crate::DeductionOrder::GiftBeforeReal, ..RuleSet::default() }),
        &[
            (
                "charge a c1 real=10 gift=6 gift_expire=2027-02-01T00:00:00",
                "10.00 6.00 0.00",
                "GIFT 6.00@2027-02-01T00",
            ),
            (
                "charge a c2 real=0 gift=4 pre=3 pre_expire=2027-04-01T00:00:00",
                "0.00 4.00 3.00",
                "GIFT 6.00@2027-02-01T00, GIFT 4.00@never, PRE 3.00@2027-04-01T00",
            ),
            ("charge b c3 real=1 gift=1 gift_expire=2027-03-01T00:00:00", "1.00 1.00 0.00", "GIFT 1.00@2027-03-01T00"),
            // PRE 3 first, then GIFT before REAL: 8 of GIFT, the February lot before the lot without expiry.
            ("transfer a t1 to=b value=11", "0.00 -8.00 -3.00 -> 0.00 8.00 3.00", "GIFT 2.00@never"),
        ],
    );
    assert_eq!(
        lots_of(&state, "b"),
        "GIFT 6.00@2027-02-01T00, GIFT 1.00@2027-03-01T00, GIFT 2.00@never, PRE 3.00@2027-04-01T00"
    );
}

#[test]
fn gift_valid_days_from_the_rules_and_expiry_arguments() {
    let rules = RuleSet { gift_valid_days: Some(30), ..RuleSet::default() };
    check(
        Some(rules),
        &[
            // 30 × 24 h after 2027-01-10 12:00.
            ("charge a c1 real=10 gift=2 time=2027-01-10T12:00:00", "10.00 2.00 0.00", "GIFT 2.00@2027-02-09T12"),
            // A given gift_expire_time wins over the rule.
            (
                "charge a c2 real=0 gift=1 gift_expire=2027-05-01T00:00:00",
                "0.00 1.00 0.00",
                "GIFT 2.00@2027-02-09T12, GIFT 1.00@2027-05-01T00",
            ),
            // IMPORT gets no rule-made expiry; an ADJUST's credit never expires.
            (
                "import a i1 gift=3",
                "0.00 3.00 0.00",
                "GIFT 2.00@2027-02-09T12, GIFT 1.00@2027-05-01T00, GIFT 3.00@never",
            ),
            (
                "adjust a j1 pre=1 remark=fix",
                "0.00 0.00 1.00",
                "GIFT 2.00@2027-02-09T12, GIFT 1.00@2027-05-01T00, GIFT 3.00@never, PRE 1.00@never",
            ),
            (
                "charge a c3 real=1 gift_expire=2027-05-01T00:00:00",
                "INVALID_ARGUMENT",
                "GIFT 2.00@2027-02-09T12, GIFT 1.00@2027-05-01T00, GIFT 3.00@never, PRE 1.00@never",
            ),
            // An expiry already past at the flow's own time is taken as given (a migrated bonus
            // that has expired): it is the soonest lot, and the next sweep takes it.
            (
                "charge a c4 real=1 gift=1 gift_expire=2027-01-01T00:00:00",
                "1.00 1.00 0.00",
                "GIFT 1.00@2027-01-01T00, GIFT 2.00@2027-02-09T12, GIFT 1.00@2027-05-01T00, GIFT 3.00@never, PRE 1.00@never",
            ),
            (
                "deduct a d1 value=1 pre_expire=2027-05-01T00:00:00",
                "INVALID_ARGUMENT",
                "GIFT 1.00@2027-01-01T00, GIFT 2.00@2027-02-09T12, GIFT 1.00@2027-05-01T00, GIFT 3.00@never, PRE 1.00@never",
            ),
            (
                "expire a - now=2027-01-15T00:00:00",
                "0.00 -1.00 0.00",
                "GIFT 2.00@2027-02-09T12, GIFT 1.00@2027-05-01T00, GIFT 3.00@never, PRE 1.00@never",
            ),
        ],
    );
}

#[test]
fn an_uncharge_takes_its_own_lots_first() {
    check(
        None,
        &[
            ("charge a c1 real=0 gift=5 gift_expire=2027-02-01T00:00:00", "0.00 5.00 0.00", "GIFT 5.00@2027-02-01T00"),
            ("charge a c2 real=0 gift=5", "0.00 5.00 0.00", "GIFT 5.00@2027-02-01T00, GIFT 5.00@never"),
            ("deduct a d1 value=7", "0.00 -7.00 0.00", "GIFT 3.00@never"),
            (
                "charge a c3 real=0 gift=4 gift_expire=2027-03-01T00:00:00",
                "0.00 4.00 0.00",
                "GIFT 4.00@2027-03-01T00, GIFT 3.00@never",
            ),
            // c2's own lot has 3 left; the other 2 come from the soonest-expiring lot.
            ("uncharge a u1 src=c2", "0.00 -5.00 0.00", "GIFT 2.00@2027-03-01T00"),
        ],
    );
}

#[test]
fn clear_takes_all_available_in_the_named_buckets() {
    check(
        None,
        &[
            ("charge a c1 real=10 gift=5 pre=2", "10.00 5.00 2.00", "GIFT 5.00@never, PRE 2.00@never"),
            ("hold a h1 value=3", "0.00 0.00 0.00", "GIFT 5.00/0.33@never, PRE 2.00/2.00@never"),
            ("clear a k0 bucket=GIFT", "INVALID_ARGUMENT", "GIFT 5.00/0.33@never, PRE 2.00/2.00@never"),
            (
                "clear a k1 bucket=GIFT remark=promo_ended",
                "0.00 -4.67 0.00",
                "GIFT 0.33/0.33@never, PRE 2.00/2.00@never",
            ),
            (
                "clear a k2 bucket=PRE remark=promo_ended",
                "INVALID_ARGUMENT",
                "GIFT 0.33/0.33@never, PRE 2.00/2.00@never",
            ),
            ("release a r1 src=h1", "0.00 0.00 0.00", "GIFT 0.33@never, PRE 2.00@never"),
            ("clear a k3 bucket=ALL remark=promo_ended", "0.00 -0.33 -2.00", "none"),
            ("freeze a f1 remark=lost", "0.00 0.00 0.00", "none"),
            ("clear a k4 bucket=ALL remark=again", "ACCOUNT_FROZEN", "none"),
        ],
    );
}

#[test]
fn the_sweep_ids_are_fixed_and_reserved() {
    let now = time("2027-02-01T00:00:00");
    let command = crate::Command::expire("a", now, Zone::CHINA);
    assert_eq!(command.request_id, "expire:2027-02-01 00:00:00:a");
    assert_eq!(command.outer_order_id, command.request_id);
    assert_eq!(command.remark.as_deref(), Some("EXPIRED"));
    let state = State::default();
    let context = Context { sequence: 1, now: NOW };
    let mut forged = command.clone();
    forged.request_id = "other".into();
    assert_eq!(decide(&state, &forged, &context).unwrap_err().code().as_str(), "INVALID_ARGUMENT");
    let mut unremarked = command.clone();
    unremarked.remark = Some("tidy up".into());
    assert_eq!(decide(&state, &unremarked, &context).unwrap_err().code().as_str(), "INVALID_ARGUMENT");
    let taken = parse_command("charge a expire:x real=1");
    assert_eq!(decide(&state, &taken, &context).unwrap_err().code().as_str(), "INVALID_ARGUMENT");
    assert_eq!(decide(&state, &command, &context).unwrap_err().code().as_str(), "ACCOUNT_NOT_FOUND");
}

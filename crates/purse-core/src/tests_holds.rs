//! spec §8–§10 as tables: holds, account status and transfers, with exact numbers.
//!
//! Each row is a command in the text form of `tests.rs` and what must come of it: for one flow
//! `affected | held` (each `REAL GIFT PRE`), for a transfer `out -> in` (the two `affected`), or
//! an error code. Rows run in order against one state; a rejection must change nothing, and
//! every decided flow must fold.

use crate::tests::{format_affected, parse_command, NOW};
use crate::{apply, AccountStatus, Amount, Buckets, Context, State};

fn check(rows: &[(&str, &str)]) -> State {
    let mut state = State::default();
    for (text, expect) in rows {
        let command = parse_command(text);
        let context = Context { sequence: state.next_sequence(), now: NOW };
        let before = state.clone();
        match crate::decide(&state, &command, &context) {
            Ok(decision) => {
                let flow = &decision.flow;
                let got = match &decision.transfer_in {
                    None => format!("{} | {}", format_affected(&flow.affected), format_affected(&flow.held)),
                    Some(flow_in) => {
                        assert_eq!(flow_in.flow_id, flow.flow_id + 1, "{text}: consecutive ids");
                        assert_eq!(
                            (&flow_in.request_id, &flow_in.outer_order_id),
                            (&flow.request_id, &flow.outer_order_id),
                            "{text}: both under the command's ids"
                        );
                        format!("{} -> {}", format_affected(&flow.affected), format_affected(&flow_in.affected))
                    }
                };
                assert_eq!(got, *expect, "{text}");
                for flow in decision.into_flows() {
                    apply(&mut state, &flow).unwrap_or_else(|error| panic!("{text}: decided flow must apply: {error}"));
                }
                assert!(!state.mid_transfer(), "{text}");
            }
            Err(error) => {
                assert_eq!(error.code().as_str(), *expect, "{text}: {error}");
                assert_eq!(state, before, "{text}: a rejection must change nothing");
            }
        }
        for account in state.accounts() {
            let available = account.balance.checked_sub(&account.held).expect("in range");
            assert!(available.negative_bucket().is_none(), "{text}: {account:?} holds more than it owns");
            assert!(account.held.negative_bucket().is_none(), "{text}: {account:?}");
        }
    }
    state
}

const ZERO: &str = "0.00 0.00 0.00";

#[test]
fn a_hold_reserves_like_a_deduct_and_a_capture_spends_like_a_partial_refund() {
    let state = check(&[
        ("charge a c1 real=60 gift=40", "60.00 40.00 0.00 | 0.00 0.00 0.00"),
        // 100.00 on REAL 60 / GIFT 40 under PERCENT_DEDUCT holds REAL 60 / GIFT 40.
        ("hold a h1 value=100", "0.00 0.00 0.00 | 60.00 40.00 0.00"),
        ("deduct a d1 value=0.01", "INSUFFICIENT_BALANCE"),
        ("hold a h2 value=0.01", "INSUFFICIENT_BALANCE"),
        // A capture of 30.00 spends REAL 18 / GIFT 12 and frees the whole hold.
        ("capture a k1 src=h1 value=30", "-18.00 -12.00 0.00 | -60.00 -40.00 0.00"),
        ("capture a k2 src=h1", "ALREADY_REVERSED"),
        ("release a x1 src=h1", "ALREADY_REVERSED"),
        // An UNDEDUCT of 10.00 of that capture gives back REAL 6 / GIFT 4.
        ("undeduct a u1 src=k1 value=10", "6.00 4.00 0.00 | 0.00 0.00 0.00"),
        ("undeduct a u2 src=k1 value=20.01", "REFUND_EXCEEDS_ORIGINAL"),
        ("undeduct a u2 src=k1", "12.00 8.00 0.00 | 0.00 0.00 0.00"),
        ("undeduct a u3 src=h1", "INVALID_ARGUMENT"),
        ("deduct a d2 value=70", "-42.00 -28.00 0.00 | 0.00 0.00 0.00"),
    ]);
    let account = state.account("a").unwrap();
    assert_eq!(
        (account.balance, account.held, account.open_holds),
        (Buckets::from_minor(1800, 1200, 0), Buckets::ZERO, 0)
    );
}

#[test]
fn holds_take_pre_first_and_limit_every_debit_to_what_is_available() {
    check(&[
        ("charge b c2 real=10 pre=5", "10.00 0.00 5.00 | 0.00 0.00 0.00"),
        ("hold b h2 value=8", "0.00 0.00 0.00 | 3.00 0.00 5.00"),
        ("hold b h3 value=3", "0.00 0.00 0.00 | 3.00 0.00 0.00"),
        ("hold b h4 value=4.01", "INSUFFICIENT_BALANCE"),
        ("capture b k3 src=h2 value=8.01", "INVALID_AMOUNT"),
        ("capture b k3 src=c2", "INVALID_ARGUMENT"),
        ("capture b k3 src=nowhere", "ORDER_NOT_FOUND"),
        ("capture b k3 src=h2 value=0", "INVALID_AMOUNT"),
        ("charge q c3 real=1", "1.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("release q r0 src=h2", "INVALID_ARGUMENT"),
        // UNCHARGE and a negative ADJUST are limited by what is available, not by the balance.
        ("uncharge b x2 src=c2", "INSUFFICIENT_BALANCE"),
        ("adjust b a1 real=-4.01 remark=short", "INSUFFICIENT_BALANCE"),
        ("adjust b a1 real=-4 remark=short", "-4.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("release b r1 src=h2", "0.00 0.00 0.00 | -3.00 0.00 -5.00"),
        ("capture b k4 src=h3", "-3.00 0.00 0.00 | -3.00 0.00 0.00"),
        ("deduct b d3 value=8", "-3.00 0.00 -5.00 | 0.00 0.00 0.00"),
    ]);
}

#[test]
fn an_expired_hold_can_only_be_released() {
    check(&[
        ("charge c c4 real=10", "10.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("hold c h5 value=4 time=2026-12-01T00:00:00 expire=2026-12-01T00:00:00", "INVALID_ARGUMENT"),
        ("hold c h5 value=4 time=2026-12-01T00:00:00 expire=2026-11-30T00:00:00", "INVALID_ARGUMENT"),
        ("hold c h5 value=4 time=2026-12-01T00:00:00 expire=2027-01-01T00:00:00", "0.00 0.00 0.00 | 4.00 0.00 0.00"),
        ("capture c k5 src=h5 time=2027-01-01T00:00:00", "HOLD_EXPIRED"),
        // The expiry check comes before the amount check.
        ("capture c k5 src=h5 value=5 time=2027-01-02T00:00:00", "HOLD_EXPIRED"),
        ("capture c k5 src=h5 value=1 time=2026-12-31T23:59:59", "-1.00 0.00 0.00 | -4.00 0.00 0.00"),
        ("hold c h6 value=2 time=2026-12-01T00:00:00 expire=2026-12-02T00:00:00", "0.00 0.00 0.00 | 2.00 0.00 0.00"),
        ("release c r2 src=h6 time=2027-02-01T00:00:00", "0.00 0.00 0.00 | -2.00 0.00 0.00"),
    ]);
}

#[test]
fn status_accepts_and_refuses_by_the_table() {
    let state = check(&[
        ("charge d c5 real=50", "50.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("deduct d d4 value=10", "-10.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("charge d c6 real=5", "5.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("hold d h7 value=2", "0.00 0.00 0.00 | 2.00 0.00 0.00"),
        ("freeze d f1", "INVALID_ARGUMENT"),
        ("freeze d f1 remark=lost_card", &format!("{ZERO} | {ZERO}")),
        ("freeze d f2 remark=again", "INVALID_ARGUMENT"),
        ("deduct d d5 value=1", "ACCOUNT_FROZEN"),
        ("charge d c7 real=1", "ACCOUNT_FROZEN"),
        ("hold d h8 value=1", "ACCOUNT_FROZEN"),
        ("capture d k6 src=h7", "ACCOUNT_FROZEN"),
        ("uncharge d x3 src=c6", "ACCOUNT_FROZEN"),
        ("import d i1 real=1", "ACCOUNT_FROZEN"),
        ("transfer d t0 to=e value=1", "ACCOUNT_FROZEN"),
        // Accepted while frozen: UNDEDUCT, RELEASE, ADJUST, UNFREEZE, CLOSE.
        ("undeduct d u4 src=d4 value=1", "1.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("release d r3 src=h7", &format!("{ZERO} | -2.00 0.00 0.00")),
        ("adjust d a2 real=-1 remark=fix", "-1.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("unfreeze d u5 remark=found", &format!("{ZERO} | {ZERO}")),
        ("unfreeze d u6 remark=again", "INVALID_ARGUMENT"),
        ("hold d h9 value=1", "0.00 0.00 0.00 | 1.00 0.00 0.00"),
        ("close d z1", "INVALID_ARGUMENT"),
        ("close d z1 remark=bye", "INVALID_ARGUMENT"),
        ("release d r4 src=h9", &format!("{ZERO} | -1.00 0.00 0.00")),
        ("deduct d d6 value=45", "-45.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("close d z1 remark=bye", &format!("{ZERO} | {ZERO}")),
        ("charge d c8 real=1", "ACCOUNT_CLOSED"),
        ("unfreeze d u7 remark=x", "ACCOUNT_CLOSED"),
        ("freeze d f3 remark=x", "ACCOUNT_CLOSED"),
        ("close d z2 remark=x", "ACCOUNT_CLOSED"),
        // A consumption on a closed account can no longer be refunded.
        ("undeduct d u8 src=d4 value=1", "ACCOUNT_CLOSED"),
        ("deduct nobody d7 value=1", "ACCOUNT_NOT_FOUND"),
        ("freeze nobody f4 remark=x", "ACCOUNT_NOT_FOUND"),
    ]);
    assert_eq!(state.account("d").unwrap().status, AccountStatus::Closed);
}

#[test]
fn a_transfer_moves_bucket_for_bucket_from_what_is_available() {
    let state = check(&[
        ("charge s c9 real=60 gift=40 pre=10 card=S-1", "60.00 40.00 10.00 | 0.00 0.00 0.00"),
        ("transfer s t1 to=s value=1", "INVALID_ARGUMENT"),
        ("transfer s t1 to=t value=110.01", "INSUFFICIENT_BALANCE"),
        ("transfer s t1 to=t value=0", "INVALID_AMOUNT"),
        // PRE first, then the DEDUCT split: 20.00 over REAL 60 / GIFT 40.
        ("transfer s t1 to=t value=30 card=T-1", "-12.00 -8.00 -10.00 -> 12.00 8.00 10.00"),
        ("hold s h10 value=50", "0.00 0.00 0.00 | 30.00 20.00 0.00"),
        // No value: everything available (80.00 less the 50.00 held).
        ("transfer s t2 to=t", "-18.00 -12.00 0.00 -> 18.00 12.00 0.00"),
        ("transfer s t3 to=t", "INSUFFICIENT_BALANCE"),
        ("charge u c10 real=1 brand=B", "1.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("transfer t t4 to=u value=1", "INVALID_ARGUMENT"),
        ("transfer t t4 to=t value=1", "INVALID_ARGUMENT"),
        ("transfer t t4 to=s value=1 card=other", "INVALID_ARGUMENT"),
        ("freeze s f5 remark=x", &format!("{ZERO} | {ZERO}")),
        ("transfer t t4 to=s value=1", "ACCOUNT_FROZEN"),
        ("transfer t t4 to=v value=1", "0.00 0.00 -1.00 -> 0.00 0.00 1.00"),
        ("transfer t t4 to=v value=1", "DUPLICATE_ORDER"),
    ]);
    let t = state.account("t").unwrap();
    assert_eq!(t.card_id.as_deref(), Some("T-1"), "a new destination takes the command's card");
    assert_eq!(t.lifetime, Buckets::ZERO, "transfers are not counted in lifetime totals");
    assert_eq!(state.account("s").unwrap().lifetime, Buckets::from_minor(6000, 4000, 1000));
    assert_eq!(state.order("t1").map(|order| order.flow_type), Some(crate::FlowType::TransferOut));
    let total = |id: &str| state.account(id).unwrap().balance.total().unwrap();
    assert_eq!(
        Amount::from_minor(total("s").minor() + total("t").minor() + total("v").minor()),
        Amount::from_minor(11_000),
        "a transfer creates and loses nothing"
    );
}

#[test]
fn apply_refuses_flows_that_break_the_new_invariants() {
    let state = check(&[
        ("charge a c1 real=60 gift=40", "60.00 40.00 0.00 | 0.00 0.00 0.00"),
        ("hold a h1 value=50", "0.00 0.00 0.00 | 30.00 20.00 0.00"),
    ]);
    let decide = |text: &str| {
        let context = Context { sequence: state.next_sequence(), now: NOW };
        crate::decide(&state, &parse_command(text), &context).unwrap()
    };
    let capture = decide("capture a k1 src=h1 value=10").flow;
    let release = decide("release a r1 src=h1").flow;
    let transfer = decide("transfer a t1 to=b value=5");
    let deduct = decide("deduct a d1 value=50").flow;
    let cases: Vec<(&str, crate::Flow)> = vec![
        ("capture beyond the hold", crate::Flow { affected: Buckets::from_minor(-3100, 0, 0), ..capture.clone() }),
        ("capture frees less than held", crate::Flow { held: Buckets::from_minor(-3000, 0, 0), ..capture.clone() }),
        ("release that spends", crate::Flow { affected: Buckets::from_minor(-100, 0, 0), ..release.clone() }),
        ("held above the balance", crate::Flow { held: Buckets::from_minor(7000, 0, 0), ..release.clone() }),
        ("a deduct of held value", crate::Flow { affected: Buckets::from_minor(-3100, -1900, 0), ..deduct.clone() }),
        ("a deduct that holds", crate::Flow { held: Buckets::from_minor(1, 0, 0), ..deduct.clone() }),
        ("a transfer in without its out", (*transfer.transfer_in.clone().unwrap()).clone()),
        ("a transfer without its other account", crate::Flow { counterparty: None, ..transfer.flow.clone() }),
    ];
    for (what, flow) in cases {
        let mut folded = state.clone();
        assert!(apply(&mut folded, &flow).is_err(), "{what} must not fold");
        assert_eq!(folded, state, "{what}: nothing changed");
    }
    // A TRANSFER_OUT must be followed by its own TRANSFER_IN, nothing else.
    let mut folded = state.clone();
    apply(&mut folded, &transfer.flow).unwrap();
    let mut other_in = (*transfer.transfer_in.clone().unwrap()).clone();
    other_in.affected = Buckets::from_minor(1, 0, 0);
    assert!(apply(&mut folded.clone(), &other_in).is_err(), "a TRANSFER_IN of another amount");
    assert!(
        apply(&mut folded.clone(), &crate::Flow { flow_id: 4, ..deduct.clone() }).is_err(),
        "another flow in between"
    );
    assert!(folded.mid_transfer());
    apply(&mut folded, &transfer.transfer_in.unwrap()).unwrap();
    assert!(!folded.mid_transfer());
}

#[test]
fn a_transfer_checks_the_status_of_both_sides_closed_first_and_before_card_and_brand() {
    check(&[
        ("charge f c1 real=10 brand=B", "10.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("charge g c2 real=10 brand=B", "10.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("charge h c3 real=1 brand=B", "1.00 0.00 0.00 | 0.00 0.00 0.00"),
        ("transfer h t1 to=g", "-1.00 0.00 0.00 -> 1.00 0.00 0.00"),
        ("close h z1 remark=merged", &format!("{ZERO} | {ZERO}")),
        ("freeze g f1 remark=dispute", &format!("{ZERO} | {ZERO}")),
        // A frozen destination is a status fault: it comes before the source's brand mismatch.
        ("transfer f t2 to=g value=1 brand=other", "ACCOUNT_FROZEN"),
        ("transfer f t2 to=h value=1 brand=other", "ACCOUNT_CLOSED"),
        ("freeze f f2 remark=dispute", &format!("{ZERO} | {ZERO}")),
        // Source FROZEN, destination CLOSED: ACCOUNT_CLOSED comes first, whichever side.
        ("transfer f t2 to=h value=1", "ACCOUNT_CLOSED"),
        ("transfer f t2 to=g value=1", "ACCOUNT_FROZEN"),
        ("transfer h t2 to=f value=1", "ACCOUNT_CLOSED"),
    ]);
}

//! A transfer between partitions (docs/cluster.md §4) as the pure domain sees it: two states
//! standing for two partitions, the source's transfer hold, the destination's TRANSFER_IN of
//! what it holds (lots with their expiries), then the source's settle or abort. At every step
//! the value is counted once: on the source (owned, held), then on both sides only while the
//! hold is open and the credit has landed, then on the destination alone.

use crate::tests::NOW;
use crate::{
    apply, transfer_hold_credit, Action, Amount, Buckets, Command, Context, ErrorCode, Flow, FlowType, State, Timestamp,
};

fn money(minor: i64) -> Amount {
    Amount::from_minor(minor)
}

/// Decides `command` on `state` and folds it; the flow, or the error's code.
fn step(state: &mut State, command: &Command) -> Result<Flow, ErrorCode> {
    let context = Context { sequence: state.next_sequence(), now: NOW };
    let before = state.clone();
    match crate::decide(state, command, &context) {
        Ok(decision) => {
            assert!(decision.transfer_in.is_none(), "each step writes one flow");
            apply(state, &decision.flow).unwrap_or_else(|error| panic!("{command:?}: must fold: {error}"));
            Ok(decision.flow)
        }
        Err(error) => {
            assert_eq!(*state, before, "a refusal changes nothing");
            Err(error.code())
        }
    }
}

fn charge(request: &str, account: &str, real: i64, gift: i64, gift_expiry: Option<Timestamp>) -> Command {
    let action = Action::Charge { real: money(real), gift: Some(money(gift)), pre: Amount::ZERO, trigger_gift: false };
    let mut command = Command::new(request, &format!("o-{request}"), account, action);
    command.gift_expire_time = gift_expiry;
    command
}

fn hold_command(value: Option<i64>) -> Command {
    let action = Action::TransferHold { to_account_id: "b".into(), value: value.map(money) };
    Command::new("t1", "t1:transfer-hold", "a", action)
}

/// The destination's credit, made only from the source's state (what recovery does too).
fn credit_command(source: &State) -> Command {
    let (hold, lots) = transfer_hold_credit(source, "t1:transfer-hold").expect("the transfer hold");
    let action = Action::TransferCredit {
        from_account_id: "a".into(),
        hold_outer_order_id: "t1:transfer-hold".into(),
        parts: hold.moved,
        lots,
        brand_id: source.account("a").and_then(|account| account.brand_id.clone()),
    };
    Command::new("t1", "t1", "b", action)
}

fn settle() -> Command {
    let action = Action::TransferSettle { src_outer_order_id: "t1:transfer-hold".into(), to_account_id: "b".into() };
    Command::new("t1:settle", "t1", "a", action)
}

fn abort() -> Command {
    Command::new(
        "t1:abort",
        "t1:transfer-abort",
        "a",
        Action::TransferAbort { src_outer_order_id: "t1:transfer-hold".into() },
    )
}

fn owned(state: &State, account: &str) -> Buckets {
    state.account(account).map_or(Buckets::ZERO, |account| account.balance)
}

fn held(state: &State, account: &str) -> Buckets {
    state.account(account).map_or(Buckets::ZERO, |account| account.held)
}

#[test]
fn a_transfer_across_partitions_holds_credits_then_settles() {
    let expiry = Timestamp(NOW.0 + 86_400);
    let (mut source, mut destination) = (State::default(), State::default());
    step(&mut source, &charge("c1", "a", 6_000, 4_000, Some(expiry))).unwrap();
    let hold = step(&mut source, &hold_command(Some(5_000))).unwrap();
    assert_eq!((hold.flow_type, hold.counterparty.as_deref(), hold.expire_time), (FlowType::Hold, Some("b"), None));
    assert_eq!(hold.held, Buckets::new(money(3_000), money(2_000), Amount::ZERO), "split like a DEDUCT");
    // Only the transfer closes its hold.
    let capture = Action::Capture { src_outer_order_id: "t1:transfer-hold".into(), value: None };
    assert_eq!(step(&mut source, &Command::new("k", "ok", "a", capture)).unwrap_err(), ErrorCode::InvalidArgument);
    let release = Action::Release { src_outer_order_id: "t1:transfer-hold".into() };
    assert_eq!(step(&mut source, &Command::new("r", "or", "a", release)).unwrap_err(), ErrorCode::InvalidArgument);

    let credit = step(&mut destination, &credit_command(&source)).unwrap();
    assert_eq!(credit.flow_type, FlowType::TransferIn);
    assert_eq!(credit.affected, hold.held);
    assert_eq!(credit.source_order_id.as_deref(), Some("t1:transfer-hold"));
    assert_eq!(credit.counterparty.as_deref(), Some("a"));
    assert_eq!(credit.lots.len(), 1, "the GIFT moves with its expiry");
    assert_eq!((credit.lots[0].value, credit.lots[0].expire_time), (money(2_000), Some(expiry)));
    // In transit: the value is the source's held value and the destination's balance.
    assert_eq!(owned(&destination, "b"), hold.held);
    assert_eq!(held(&source, "a"), hold.held);
    assert_eq!(destination.account("b").unwrap().lifetime, Buckets::ZERO, "a transfer counts in no lifetime total");

    let out = step(&mut source, &settle()).unwrap();
    assert_eq!(out.flow_type, FlowType::TransferOut);
    assert_eq!(out.affected, hold.held.checked_neg().unwrap());
    assert_eq!(out.held, hold.held.checked_neg().unwrap());
    assert_eq!(owned(&source, "a"), Buckets::new(money(3_000), money(2_000), Amount::ZERO));
    assert_eq!(held(&source, "a"), Buckets::ZERO);
    assert_eq!(source.account("a").unwrap().open_holds, 0);
    assert_eq!(step(&mut source, &settle()).unwrap_err(), ErrorCode::DuplicateOrder, "its order id is taken");
    let again = Command { outer_order_id: "t1-again".into(), ..settle() };
    assert_eq!(step(&mut source, &again).unwrap_err(), ErrorCode::AlreadyReversed);
    assert_eq!(step(&mut source, &abort()).unwrap_err(), ErrorCode::AlreadyReversed);
    // The destination's lot expires as the source's would have.
    assert_eq!(destination.account("b").unwrap().lots.expirable(expiry).gift, money(2_000));
}

#[test]
fn an_abort_gives_the_held_value_back() {
    let (mut source, mut destination) = (State::default(), State::default());
    step(&mut source, &charge("c1", "a", 1_000, 0, None)).unwrap();
    step(&mut destination, &charge("c2", "b", 1, 0, None)).unwrap();
    let freeze = Action::Freeze;
    let mut frozen = Command::new("f", "of", "b", freeze);
    frozen.remark = Some("lost card".into());
    step(&mut destination, &frozen).unwrap();
    let hold = step(&mut source, &hold_command(None)).unwrap();
    assert_eq!(hold.held, Buckets::new(money(1_000), Amount::ZERO, Amount::ZERO), "no value: all available");
    assert_eq!(step(&mut destination, &credit_command(&source)).unwrap_err(), ErrorCode::AccountFrozen);
    let release = step(&mut source, &abort()).unwrap();
    assert_eq!((release.flow_type, release.affected), (FlowType::Release, Buckets::ZERO));
    assert_eq!(held(&source, "a"), Buckets::ZERO);
    assert_eq!(owned(&source, "a"), Buckets::new(money(1_000), Amount::ZERO, Amount::ZERO));
    assert_eq!(
        step(&mut source, &Command { request_id: "t1:settle2".into(), ..settle() }).unwrap_err(),
        ErrorCode::AlreadyReversed
    );
}

#[test]
fn a_frozen_source_still_settles_and_the_ids_are_checked() {
    let (mut source, mut destination) = (State::default(), State::default());
    step(&mut source, &charge("c1", "a", 1_000, 0, None)).unwrap();
    step(&mut source, &hold_command(Some(400))).unwrap();
    step(&mut destination, &credit_command(&source)).unwrap();
    let mut frozen = Command::new("f", "of", "a", Action::Freeze);
    frozen.remark = Some("dispute".into());
    step(&mut source, &frozen).unwrap();
    // The value has arrived: settling is not a new debit of the frozen card.
    step(&mut source, &settle()).unwrap();
    assert_eq!(owned(&source, "a"), Buckets::new(money(600), Amount::ZERO, Amount::ZERO));

    // A plain HOLD may not take a transfer hold's name; a transfer hold must have one.
    let plain = Action::Hold { value: money(1), expire_time: None };
    let mut other = State::default();
    step(&mut other, &charge("c1", "a", 1_000, 0, None)).unwrap();
    assert_eq!(
        step(&mut other, &Command::new("h", "x:transfer-hold", "a", plain)).unwrap_err(),
        ErrorCode::InvalidArgument
    );
    let unnamed = Command { outer_order_id: "t1".into(), ..hold_command(Some(1)) };
    assert_eq!(step(&mut other, &unnamed).unwrap_err(), ErrorCode::InvalidArgument);
    let to_itself =
        Command::new("t", "t:transfer-hold", "a", Action::TransferHold { to_account_id: "a".into(), value: None });
    assert_eq!(step(&mut other, &to_itself).unwrap_err(), ErrorCode::InvalidArgument);
    assert_eq!(step(&mut other, &hold_command(Some(1_001))).unwrap_err(), ErrorCode::InsufficientBalance);
    // A settle of a plain hold, or of an unknown one, is refused.
    let plain = Action::Hold { value: money(1), expire_time: None };
    step(&mut other, &Command::new("h", "plain", "a", plain)).unwrap();
    let wrong = Action::TransferSettle { src_outer_order_id: "plain".into(), to_account_id: "b".into() };
    assert_eq!(step(&mut other, &Command::new("s", "os", "a", wrong)).unwrap_err(), ErrorCode::InvalidArgument);
    assert_eq!(step(&mut other, &settle()).unwrap_err(), ErrorCode::OrderNotFound);
    // A credit's lots must add up to its GIFT and PRE.
    let bad = Action::TransferCredit {
        from_account_id: "a".into(),
        hold_outer_order_id: "t1:transfer-hold".into(),
        parts: Buckets::new(Amount::ZERO, money(10), Amount::ZERO),
        lots: vec![crate::LotCredit { bucket: crate::Bucket::Gift, value: money(9), expire_time: Some(NOW) }],
        brand_id: None,
    };
    assert_eq!(step(&mut State::default(), &Command::new("t", "t", "b", bad)).unwrap_err(), ErrorCode::InvalidAmount);
}

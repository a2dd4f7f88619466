//! The expiry sweep and point-in-time views through the ledger (spec §11–§12): ids, replays,
//! bounded groups, durability across a reopen, and history folded per account.

mod common;

use common::{money, open, reopen};
use purse_core::{Action, Amount, Command, FlowType, Timestamp, Zone};
use purse_ledger::{AsOf, SweepScope, SWEEP_GROUP_ACCOUNTS};

fn time(text: &str) -> Timestamp {
    Zone::CHINA.parse_local(text).unwrap()
}

/// A CHARGE of REAL 10 and `gift` GIFT expiring at `expire`, at `at`.
fn charge_expiring(order: &str, account: &str, gift: &str, expire: &str, at: &str) -> Command {
    let action = Action::Charge { real: money("10"), gift: Some(money(gift)), pre: Amount::ZERO, trigger_gift: false };
    let mut command = Command::new(&format!("r-{order}"), order, account, action);
    command.gift_expire_time = Some(time(expire));
    command.biz_date = Some(time(at));
    command
}

#[tokio::test]
async fn a_sweep_expires_once_and_keeps_held_value_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge_expiring("c1", "a", "30", "2027-02-01 00:00:00", "2027-01-10 00:00:00")).await.unwrap();
    ledger.submit(charge_expiring("c2", "b", "5", "2027-03-01 00:00:00", "2027-01-10 00:00:00")).await.unwrap();
    let mut hold = Command::new("r-h1", "h1", "a", Action::Hold { value: money("25"), expire_time: None });
    hold.biz_date = Some(time("2027-01-20 00:00:00"));
    // 25 of REAL 10 / GIFT 30 under PERCENT_DEDUCT: GIFT half_up(25·30/40) = 18.75 held.
    assert_eq!(ledger.submit(hold).await.unwrap().held.gift, money("18.75"));

    let now = time("2027-02-01 00:00:00");
    let flows = ledger.expire(now, SweepScope::All).await.unwrap();
    let summary: Vec<(FlowType, &str, &str, i64)> = flows
        .iter()
        .map(|flow| (flow.flow_type, flow.account_id.as_str(), flow.request_id.as_str(), flow.affected.gift.minor()))
        .collect();
    assert_eq!(summary, [(FlowType::Expire, "a", "expire:2027-02-01 00:00:00:a", -1125)]);
    assert_eq!(flows[0].outer_order_id, flows[0].request_id);
    assert_eq!(flows[0].order_time, now);
    assert_eq!(flows[0].remark.as_deref(), Some("EXPIRED"));
    // The same sweep again writes nothing.
    assert!(ledger.expire(now, SweepScope::All).await.unwrap().is_empty());
    let view = ledger.account("a").await.unwrap();
    assert_eq!((view.balance.gift, view.held.gift), (money("18.75"), money("18.75")));
    assert_eq!(view.expiring.len(), 1);
    assert_eq!((view.expiring[0].value, view.expiring[0].expire_time), (money("18.75"), now));

    let release = Command::new("r-rl", "rl", "a", Action::Release { src_outer_order_id: "h1".into() });
    ledger.submit(release).await.unwrap();
    let later = time("2027-02-02 00:00:00");
    let flows = ledger.expire(later, SweepScope::Account("a".into())).await.unwrap();
    assert_eq!(flows.iter().map(|flow| flow.affected.gift.minor()).collect::<Vec<_>>(), [-1875]);
    let unknown = ledger.expire(later, SweepScope::Account("nobody".into())).await.unwrap_err();
    assert_eq!(unknown.code().as_str(), "ACCOUNT_NOT_FOUND");
    // b's lot expires in March: the sweeps left it alone.
    assert_eq!(ledger.account("b").await.unwrap().balance.gift, money("5"));
    assert!(ledger.verify().await.unwrap().entries > 0);
    ledger.close().await.unwrap();

    // Durable, and still a replay after a reopen.
    let ledger = reopen(dir.path()).await.unwrap();
    assert!(ledger.expire(now, SweepScope::All).await.unwrap().is_empty());
    assert_eq!(ledger.account("a").await.unwrap().balance.gift, Amount::ZERO);
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn the_sweep_releases_expired_holds_first_and_commits_in_bounded_groups() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let accounts = SWEEP_GROUP_ACCOUNTS * 2 + 3;
    let commands: Vec<Command> = (0..accounts)
        .map(|index| {
            charge_expiring(
                &format!("c{index}"),
                &format!("acct-{index:05}"),
                "2",
                "2027-02-01 00:00:00",
                "2027-01-10 00:00:00",
            )
        })
        .collect();
    ledger.submit_group(commands, purse_ledger::GroupMode::AllOrNothing).await.unwrap();
    let mut hold = Command::new(
        "r-h",
        "h",
        "acct-00000",
        Action::Hold { value: money("12"), expire_time: Some(time("2027-01-31 00:00:00")) },
    );
    hold.biz_date = Some(time("2027-01-20 00:00:00"));
    ledger.submit(hold).await.unwrap();
    let commits_before = ledger.stats().await.unwrap().commits;

    let flows = ledger.expire(time("2027-02-01 00:00:00"), SweepScope::All).await.unwrap();
    assert_eq!(flows.len(), accounts + 1);
    assert_eq!((flows[0].flow_type, flows[0].source_order_id.as_deref()), (FlowType::Release, Some("h")));
    assert_eq!(flows[0].request_id, "expire:2027-02-01 00:00:00:h");
    // After the release all of acct-00000's GIFT is unheld, and expires with the others'.
    assert!(flows[1..].iter().all(|flow| flow.flow_type == FlowType::Expire && flow.affected.gift == money("-2")));
    let commits = ledger.stats().await.unwrap().commits - commits_before;
    assert_eq!(commits, 3, "{accounts} accounts in groups of {SWEEP_GROUP_ACCOUNTS}");
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn an_account_as_of_an_entry_or_a_time_is_its_own_flows_folded() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge_expiring("c1", "a", "4", "2027-02-01 00:00:00", "2027-01-10 00:00:00")).await.unwrap(); // 1
    ledger.submit(charge_expiring("c2", "b", "1", "2027-02-01 00:00:00", "2027-01-11 00:00:00")).await.unwrap(); // 2
    let mut transfer =
        Command::new("r-t", "t", "a", Action::Transfer { to_account_id: "b".into(), value: Some(money("7")) });
    transfer.biz_date = Some(time("2027-01-12 00:00:00"));
    ledger.transfer(transfer).await.unwrap(); // 3, 4
    let mut deduct = Command::new("r-d", "d", "b", Action::Deduct { value: money("3") });
    deduct.biz_date = Some(time("2027-01-13 00:00:00"));
    ledger.submit(deduct).await.unwrap(); // 5
    ledger.expire(time("2027-02-01 00:00:00"), SweepScope::All).await.unwrap(); // 6, 7

    let b_now = ledger.account("b").await.unwrap();
    assert_eq!(ledger.account_as_of("b", AsOf::Entry(7)).await.unwrap(), b_now);
    let b_after_transfer = ledger.account_as_of("b", AsOf::Entry(4)).await.unwrap();
    // 7 of REAL 10 / GIFT 4 under PERCENT_DEDUCT: GIFT half_up(7·4/14) = 2 moved, expiring in February.
    assert_eq!((b_after_transfer.balance.real, b_after_transfer.balance.gift), (money("15"), money("3")));
    assert_eq!(b_after_transfer.expiring.iter().map(|lot| lot.value.minor()).sum::<i64>(), 300);
    assert_eq!(
        ledger.account_as_of("b", AsOf::Entry(5)).await.unwrap(),
        ledger.account_as_of("b", AsOf::Time(time("2027-01-13 00:00:00"))).await.unwrap()
    );
    assert_eq!(
        ledger.account_as_of("b", AsOf::Time(time("2027-01-11 12:00:00"))).await.unwrap().balance.total(),
        Some(money("11"))
    );
    let code = |result: Result<_, purse_ledger::Error>| result.unwrap_err().code().as_str();
    assert_eq!(code(ledger.account_as_of("b", AsOf::Entry(1)).await), "ACCOUNT_NOT_FOUND");
    assert_eq!(code(ledger.account_as_of("b", AsOf::Time(time("2027-01-01 00:00:00"))).await), "ACCOUNT_NOT_FOUND");
    assert_eq!(code(ledger.account_as_of("b", AsOf::Entry(99)).await), "INVALID_ARGUMENT");
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn an_account_with_more_expired_holds_than_a_commit_holds_spans_several() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge_expiring("c", "a", "1", "2027-02-01 00:00:00", "2027-01-10 00:00:00")).await.unwrap();
    let import = Action::Import { real: money("100"), gift: Amount::ZERO, pre: Amount::ZERO };
    ledger.submit(Command::new("r-i", "i", "a", import)).await.unwrap();
    let holds = purse_ledger::SWEEP_GROUP_COMMANDS + 10;
    let commands: Vec<Command> = (0..holds)
        .map(|index| {
            let expire_time = Some(time("2027-01-31 00:00:00"));
            let mut hold = Command::new(
                &format!("r-h{index}"),
                &format!("h{index}"),
                "a",
                Action::Hold { value: money("0.01"), expire_time },
            );
            hold.biz_date = Some(time("2027-01-20 00:00:00"));
            hold
        })
        .collect();
    assert!(ledger.submit_group(commands, purse_ledger::GroupMode::AllOrNothing).await.unwrap().committed);
    let commits_before = ledger.stats().await.unwrap().commits;
    let flows = ledger.expire(time("2027-02-01 00:00:00"), SweepScope::All).await.unwrap();
    assert_eq!(flows.len(), holds + 1);
    assert!(flows[..holds].iter().all(|flow| flow.flow_type == FlowType::Release));
    // Every hold released first: the EXPIRE takes the whole GIFT 1.00, none of it held any more.
    assert_eq!((flows[holds].flow_type, flows[holds].affected.gift), (FlowType::Expire, money("-1")));
    assert_eq!(ledger.stats().await.unwrap().commits - commits_before, 2, "bounded by SWEEP_GROUP_COMMANDS");
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

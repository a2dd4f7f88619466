//! History and reports over one small ledger whose log is, by sequence:
//!
//! | seq | account | what | order_time |
//! |---|---|---|---|
//! | 1 | a | CHARGE 100.00 | 1000 |
//! | 2 | b (brand B, card C1) | CHARGE 50.00 | 1000 |
//! | 3 | — | rules change | — |
//! | 4 | a | DEDUCT 30.00 | 2000 |
//! | 5 | c (card C1) | IMPORT 10.00 | 500 |
//! | 6 | a | CHARGE 20.00 | 3000 |
//! | 7 | a | ADJUST +5.00 (backdated) | 1500 |
use super::*;
use crate::ledger::LedgerConfig;
use crate::writer::GroupMode;
use purse_core::{Action, Amount, Command, ErrorCode, RuleSet};

fn at(mut command: Command, time: i64) -> Command {
    command.biz_date = Some(Timestamp(time));
    command
}

fn charge(id: &str, account: &str, real: i64, time: i64) -> Command {
    let action = Action::Charge { real: Amount::from_minor(real), gift: None, pre: Amount::ZERO, trigger_gift: false };
    at(Command::new(id, id, account, action), time)
}

/// The one assertion of every table: the value expected, or the error code.
fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: Result<T, Error>, expect: Result<T, ErrorCode>) {
    match (got, expect) {
        (Ok(got), Ok(expect)) => assert_eq!(got, expect, "{what}"),
        (Err(error), Err(code)) => assert_eq!(error.code(), code, "{what}: {error}"),
        (got, expect) => panic!("{what}: got {got:?}, expected {expect:?}"),
    }
}

async fn ledger(dir: &std::path::Path) -> Ledger {
    let ledger = Ledger::open(LedgerConfig::new(dir)).await.unwrap();
    let mut b = charge("r2", "b", 5_000, 1000);
    b.brand_id = Some("B".into());
    b.card_id = Some("C1".into());
    ledger.submit_group(vec![charge("r1", "a", 10_000, 1000), b], GroupMode::AllOrNothing).await.unwrap();
    ledger.set_rules(None, RuleSet::default()).await.unwrap();
    let deduct = at(Command::new("r4", "r4", "a", Action::Deduct { value: Amount::from_minor(3_000) }), 2000);
    let import = Action::Import { real: Amount::from_minor(1_000), gift: Amount::ZERO, pre: Amount::ZERO };
    let mut import = at(Command::new("r5", "r5", "c", import), 500);
    import.card_id = Some("C1".into());
    let adjust = Action::Adjust { real: Amount::ZERO, gift: Amount::from_minor(500), pre: Amount::ZERO };
    let mut adjust = at(Command::new("r7", "r7", "a", adjust), 1500);
    adjust.remark = Some("late correction".into());
    let outcome = ledger
        .submit_group(vec![deduct, import, charge("r6", "a", 2_000, 3000), adjust], GroupMode::AllOrNothing)
        .await
        .unwrap();
    assert!(outcome.committed, "{outcome:?}");
    ledger
}

#[tokio::test]
async fn export_pages_skip_rules_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger(dir.path()).await;
    let all = ExportFilter::default();
    let types = |flow_types: &[FlowType]| ExportFilter { flow_types: flow_types.to_vec(), ..ExportFilter::default() };
    let window = |start, end| ExportFilter { start_time: start, end_time: end, ..ExportFilter::default() };
    // (what, after, entries_max, filter, the flow ids and next page expected)
    type Case = (&'static str, u64, u32, ExportFilter, Result<(Vec<u64>, Option<u64>), ErrorCode>);
    let cases: Vec<Case> = vec![
        ("everything", 0, 100, all.clone(), Ok((vec![1, 2, 4, 5, 6, 7], None))),
        ("a page ending on the rules change", 0, 3, all.clone(), Ok((vec![1, 2], Some(3)))),
        ("the next page", 3, 3, all.clone(), Ok((vec![4, 5, 6], Some(6)))),
        ("the last page", 6, 3, all.clone(), Ok((vec![7], None))),
        ("past the end", 7, 3, all.clone(), Ok((vec![], None))),
        ("one entry: the rules change", 2, 1, all.clone(), Ok((vec![], Some(3)))),
        ("charges only", 0, 100, types(&[FlowType::Charge]), Ok((vec![1, 2, 6], None))),
        ("two types", 0, 100, types(&[FlowType::Import, FlowType::Adjust]), Ok((vec![5, 7], None))),
        ("[1000, 2000)", 0, 100, window(Some(Timestamp(1000)), Some(Timestamp(2000))), Ok((vec![1, 2, 7], None))),
        ("from 2000", 0, 100, window(Some(Timestamp(2000)), None), Ok((vec![4, 6], None))),
        ("before 1000", 0, 100, window(None, Some(Timestamp(1000))), Ok((vec![5], None))),
        ("through 4", 0, 100, ExportFilter { through_sequence: Some(4), ..all.clone() }, Ok((vec![1, 2, 4], None))),
        ("no entries", 0, 0, all.clone(), Err(ErrorCode::InvalidArgument)),
        ("too many entries", 0, EXPORT_PAGE_ENTRIES_MAX + 1, all.clone(), Err(ErrorCode::InvalidArgument)),
        ("start after end", 0, 10, window(Some(Timestamp(2)), Some(Timestamp(1))), Err(ErrorCode::InvalidArgument)),
    ];
    for (what, after, entries_max, filter, expect) in cases {
        let got = ledger.export_page(after, entries_max, &filter).await;
        let got = got.map(|page| (page.flows.iter().map(|flow| flow.flow_id).collect(), page.next));
        check(what, got, expect);
    }
    // The stream stops at the end it started with, whatever is written meanwhile.
    let mut stream = ledger.export(all).await.unwrap();
    ledger.submit(charge("r8", "d", 100, 4000)).await.unwrap();
    let mut ids = Vec::new();
    while let Some(flows) = stream.next_page().await.unwrap() {
        ids.extend(flows.iter().map(|flow| flow.flow_id));
    }
    assert_eq!(ids, [1, 2, 4, 5, 6, 7]);
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn statements_over_windows() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger(dir.path()).await;
    let buckets = Buckets::from_minor;
    // (opening, closing, [(type, count)], flows_count, backdated)
    type Summary = (Buckets, Buckets, Vec<(FlowType, u64)>, u64, bool);
    let summary = |opening, closing, types: Vec<(FlowType, u64)>, backdated| {
        let count = types.iter().map(|(_, count)| count).sum();
        Ok((opening, closing, types, count, backdated))
    };
    let cases: Vec<(&str, i64, i64, Result<Summary, ErrorCode>)> = vec![
        // Before anything: all zero.
        ("a", 0, 1000, summary(Buckets::ZERO, Buckets::ZERO, vec![], false)),
        // Only the first charge is before 1500: nothing backdated yet.
        ("a", 1000, 1500, summary(buckets(0, 0, 0), buckets(10_000, 0, 0), vec![(FlowType::Charge, 1)], false)),
        // Closing after the backdated ADJUST (log position 7): opening = closing − Σ affected.
        (
            "a",
            1000,
            4000,
            summary(
                buckets(0, 0, 0),
                buckets(9_000, 500, 0),
                vec![(FlowType::Charge, 2), (FlowType::Deduct, 1), (FlowType::Adjust, 1)],
                true,
            ),
        ),
        // [2000, 4000): the DEDUCT and the second CHARGE; the ADJUST at 1500 is outside, but it is
        // in the closing balance, so the opening holds it (not the balance after flow 1).
        (
            "a",
            2000,
            4000,
            summary(
                buckets(10_000, 500, 0),
                buckets(9_000, 500, 0),
                vec![(FlowType::Charge, 1), (FlowType::Deduct, 1)],
                true,
            ),
        ),
        ("c", 0, 600, summary(buckets(0, 0, 0), buckets(1_000, 0, 0), vec![(FlowType::Import, 1)], false)),
        ("c", 600, 700, summary(buckets(1_000, 0, 0), buckets(1_000, 0, 0), vec![], false)),
        ("a", 10, 10, Err(ErrorCode::InvalidArgument)),
        ("a", 10, 5, Err(ErrorCode::InvalidArgument)),
        ("nobody", 0, 10, Err(ErrorCode::AccountNotFound)),
    ];
    for (account, start, end, expect) in cases {
        let got = ledger.statement(account, Timestamp(start), Timestamp(end)).await.map(|statement| {
            let types = statement.by_flow_type.iter().map(|sum| (sum.flow_type, sum.count)).collect();
            (statement.opening, statement.closing, types, statement.flows_count, statement.backdated)
        });
        check(&format!("{account} [{start}, {end})"), got, expect);
    }
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn accounts_cards_and_liability() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger(dir.path()).await;
    let query = |brand_id: Option<&str>, status, page_no, page_size| AccountQuery {
        brand_id: brand_id.map(str::to_owned),
        status,
        page_no,
        page_size,
    };
    // (query, total_count and the page's account ids)
    type Case = (AccountQuery, Result<(u64, Vec<&'static str>), ErrorCode>);
    let cases: Vec<Case> = vec![
        (query(None, None, 1, 20), Ok((3, vec!["a", "b", "c"]))),
        (query(None, None, 1, 2), Ok((3, vec!["a", "b"]))),
        (query(None, None, 2, 2), Ok((3, vec!["c"]))),
        (query(None, None, 3, 2), Ok((3, vec![]))),
        (query(Some("B"), None, 1, 20), Ok((1, vec!["b"]))),
        (query(None, Some(AccountStatus::Frozen), 1, 20), Ok((0, vec![]))),
        (query(None, Some(AccountStatus::Active), 1, 1), Ok((3, vec!["a"]))),
        (query(None, None, 0, 20), Err(ErrorCode::InvalidArgument)),
        (query(None, None, 1, 0), Err(ErrorCode::InvalidArgument)),
        (query(None, None, 1, PAGE_SIZE_MAX + 1), Err(ErrorCode::InvalidArgument)),
    ];
    for (query, expect) in cases {
        let got = ledger.accounts(query.clone()).await;
        let got = got
            .as_ref()
            .map(|page| (page.total_count, page.accounts.iter().map(|account| account.account_id.as_str()).collect()));
        check(&format!("{query:?}"), got.map_err(Clone::clone), expect);
    }
    let card = |card: &'static str| {
        let ledger = ledger.clone();
        async move {
            let views = ledger.accounts_by_card(card).await.unwrap();
            views.into_iter().map(|view| view.account_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(card("C1").await, ["b", "c"]);
    assert_eq!(card("C2").await, Vec::<String>::new());
    let liability = ledger.liability(crate::LiabilityAt::Now(purse_core::Timestamp(0))).await.unwrap();
    let wide = |real, gift| crate::WideBuckets { real, gift, pre: 0 };
    let sum = |accounts, real, gift| crate::LiabilitySum {
        accounts,
        balance: wide(real, gift),
        held: wide(0, 0),
        ..crate::LiabilitySum::default()
    };
    assert_eq!(liability.total, sum(3, 15_000, 500));
    let brands: Vec<(Option<&str>, crate::LiabilitySum)> =
        liability.by_brand.iter().map(|brand| (brand.brand_id.as_deref(), brand.sum)).collect();
    assert_eq!(brands, [(None, sum(2, 10_000, 500)), (Some("B"), sum(1, 5_000, 0))]);
    // The card index and the liability pass verify, and survive a reopen.
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.unwrap();
    assert_eq!(ledger.accounts_by_card("C1").await.unwrap().len(), 2);
    ledger.close().await.unwrap();
}

#[test]
fn card_index_lists_every_account_of_a_card_in_order() {
    let build = |pairs: &[(&str, &str)]| {
        let mut index = crate::projection::CardIndex::default();
        for (card, account) in pairs {
            index.insert(card, account);
        }
        index
    };
    let pairs = [("K1", "a"), ("K2", "b"), ("K1", "c"), ("K1", "d"), ("K3", "e"), ("K3", "f")];
    let index = build(&pairs);
    for (card, accounts) in [("K1", vec!["a", "c", "d"]), ("K2", vec!["b"]), ("K3", vec!["e", "f"]), ("K4", vec![])] {
        assert_eq!(index.accounts(card), accounts, "{card}");
    }
    assert_eq!(index, build(&pairs));
    assert_ne!(index, build(&pairs[..5]), "one account fewer");
    let mut reordered = pairs;
    reordered.swap(2, 3);
    assert_ne!(index, build(&reordered), "the same accounts in another order");
}

#[tokio::test]
async fn every_page_of_accounts_is_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.unwrap();
    // 50 accounts opened out of order (37 is prime to 50, so i·37 mod 50 visits each once).
    let commands = (0..50).map(|i| format!("acct-{:02}", i * 37 % 50)).map(|id| charge(&id, &id, 100, 1000)).collect();
    ledger.submit_group(commands, GroupMode::AllOrNothing).await.unwrap();
    let sorted: Vec<String> = (0..50).map(|i| format!("acct-{i:02}")).collect();
    for page_size in [1, 7, 49, 50, 51] {
        let mut listed = Vec::new();
        for page_no in 1..=(50 / page_size + 2) {
            let query = AccountQuery { page_no, page_size, ..AccountQuery::default() };
            let page = ledger.accounts(query).await.unwrap();
            assert_eq!(page.total_count, 50);
            listed.extend(page.accounts.into_iter().map(|account| account.account_id));
        }
        check(&format!("pages of {page_size}"), Ok(listed), Ok(sorted.clone()));
    }
    ledger.close().await.unwrap();
}

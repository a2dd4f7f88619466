//! Whole runs against a real ledger in a temporary directory: every mapping row through the
//! ledger, opening balances, reconciliation, the three modes, and re-ingestion.

use purse_core::{Action, Buckets, Command, FlowType, Scale};
use purse_ingest::{Input, Mode, Options, Provider, Report, Silent};
use purse_ledger::{FlowQuery, Ledger, LedgerConfig};
use tempfile::TempDir;

struct Fixture {
    _dir: TempDir,
    ledger: Ledger,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.expect("open");
        Fixture { _dir: dir, ledger }
    }

    async fn ingest(&self, options: &Options, files: &[&str]) -> Report {
        let inputs = files
            .iter()
            .enumerate()
            .map(|(index, text)| Input::new(format!("file-{index}"), std::io::Cursor::new(text.as_bytes().to_vec())))
            .collect();
        purse_ingest::run(&self.ledger, inputs, options.clone(), &Silent).await.expect("the run finishes")
    }

    /// REAL/GIFT/PRE of an account as text, or the error code.
    async fn balance(&self, account: &str) -> String {
        match self.ledger.account(account).await {
            Ok(view) => text(&view.balance),
            Err(error) => error.code().to_string(),
        }
    }

    async fn flow_types(&self, account: &str) -> Vec<String> {
        let mut query = FlowQuery::new(account);
        query.page_size = 100;
        let page = self.ledger.flows(query).await.expect("flows");
        let detail = |flow| self.ledger.detail(flow).expect("a flow of the log renders");
        page.flows.iter().map(detail).map(|flow| format!("{} {}", flow.flow_type, flow.order_value)).collect()
    }
}

fn text(buckets: &Buckets) -> String {
    let scale = Scale::CNY;
    format!("{}/{}/{}", buckets.real.format(scale), buckets.gift.format(scale), buckets.pre.format(scale))
}

fn options(provider: Provider) -> Options {
    Options::new(provider)
}

fn with_mode(provider: Provider, mode: Mode) -> Options {
    let mut options = Options::new(provider);
    options.mode = mode;
    options
}

/// `(applied, duplicates, opening_balances, skipped, rejected, mismatches, committed)`.
fn counts(report: &Report) -> (u64, u64, u64, usize, usize, usize, bool) {
    (
        report.applied,
        report.duplicates,
        report.opening_balances,
        report.skipped.len(),
        report.rejected.len(),
        report.mismatches.len(),
        report.committed,
    )
}

fn zenlayer_page(records: &[(&str, &str, &str, &str, &str)]) -> String {
    let records: Vec<String> = records
        .iter()
        .map(|(id, kind, amount, state, time)| {
            format!(
                r#"{{"transactionType":"{kind}","amount":{amount},"paymentMethod":"BALANCE","state":"{state}","transactionTime":"{time}","accountUid":"z-1","transactionId":"{id}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"requestId":"R","response":{{"requestId":"R","totalCount":{},"dataSet":[{}]}}}}"#,
        records.len(),
        records.join(",")
    )
}

const ZENLAYER_ALL_TYPES: &[(&str, &str, &str, &str, &str)] = &[
    ("1", "RECHARGE", "100", "PAY_SUCCESS", "2023-08-01T00:00:00Z"),
    ("2", "DEDUCTION", "30", "PAY_SUCCESS", "2023-08-02T00:00:00Z"),
    ("3", "ORDER_REFUND", "10", "PAY_SUCCESS", "2023-08-03T00:00:00Z"),
    ("4", "REFUND", "20", "PAY_SUCCESS", "2023-08-04T00:00:00Z"),
    ("5", "DERATE", "5.5", "PAY_SUCCESS", "2023-08-05T00:00:00Z"),
    ("6", "ORDER_FROZEN", "10", "PAY_SUCCESS", "2023-08-06T00:00:00Z"),
    ("7", "ORDER_UNFROZEN", "10", "PAY_SUCCESS", "2023-08-06T00:00:01Z"),
    ("8", "NS_SYNC", "1", "PAY_SUCCESS", "2023-08-06T00:00:02Z"),
    ("9", "RECHARGE", "1000", "PAYING", "2023-08-07T00:00:00Z"),
    ("10", "RECHARGE", "1000", "PAY_FAILED", "2023-08-07T00:00:01Z"),
];

#[tokio::test]
async fn zenlayer_every_mapping_row_through_the_ledger() {
    let fixture = Fixture::new().await;
    let page = zenlayer_page(ZENLAYER_ALL_TYPES);
    let report = fixture.ingest(&options(Provider::Zenlayer), &[&page]).await;
    assert_eq!(counts(&report), (7, 0, 0, 3, 0, 0, true), "{report:#?}");
    assert_eq!(fixture.balance("z-1").await, "65.50/0.00/0.00");
    assert_eq!(
        fixture.flow_types("z-1").await,
        [
            "CHARGE 100.00",
            "DEDUCT -30.00",
            "UNDEDUCT 10.00",
            "UNCHARGE -20.00",
            "ADJUST 5.50",
            "HOLD 0.00",
            "RELEASE 0.00"
        ]
    );
    let release = fixture.ledger.flow(purse_ledger::FlowKey::OuterOrderId("zenlayer:7".into())).await.unwrap();
    assert_eq!(release.source_order_id.as_deref(), Some("zenlayer:6"));
    let reasons: Vec<&str> = report.skipped.iter().map(|skipped| skipped.reason.as_str()).collect();
    assert!(reasons[0].starts_with("NS_SYNC is an external sync"), "{reasons:?}");
    assert!(reasons[2].starts_with("state PAY_FAILED"), "{reasons:?}");
    let flow = fixture.ledger.flow(purse_ledger::FlowKey::OuterOrderId("zenlayer:5".into())).await.unwrap();
    let flow = fixture.ledger.detail(&flow).unwrap();
    assert_eq!(flow.request_id, "zenlayer:5");
    assert_eq!(flow.order_time, "2023-08-05 08:00:00");
    assert_eq!(flow.ext_info.as_deref(), Some(r#"{"payment_method":"BALANCE"}"#));

    // The same page again adds nothing: every flow comes back as a duplicate.
    let again = fixture.ingest(&options(Provider::Zenlayer), &[&page]).await;
    assert_eq!(counts(&again), (0, 7, 0, 3, 0, 0, true), "{again:#?}");
    assert_eq!(fixture.balance("z-1").await, "65.50/0.00/0.00");
    assert_eq!(fixture.flow_types("z-1").await.len(), 7);
    fixture.ledger.verify().await.expect("the log verifies");
}

#[tokio::test]
async fn all_or_nothing_partial_and_dry_run() {
    let records: &[(&str, &str, &str, &str, &str)] = &[
        ("1", "RECHARGE", "100", "PAY_SUCCESS", "2023-08-01T00:00:00Z"),
        ("2", "DEDUCTION", "30.005", "PAY_SUCCESS", "2023-08-02T00:00:00Z"),
        ("3", "DEDUCTION", "500", "PAY_SUCCESS", "2023-08-03T00:00:00Z"),
        ("4", "DEDUCTION", "40", "PAY_SUCCESS", "2023-08-04T00:00:00Z"),
    ];
    let page = zenlayer_page(records);
    let fixture = Fixture::new().await;
    for mode in [Mode::AllOrNothing, Mode::DryRun] {
        let report = fixture.ingest(&with_mode(Provider::Zenlayer, mode), &[&page]).await;
        // The bad amount never reaches the ledger; the overdraft is refused by it.
        assert_eq!(counts(&report), (2, 0, 0, 0, 2, 0, false), "{mode:?} {report:#?}");
        let rejected: Vec<(u64, &str)> =
            report.rejected.iter().map(|rejected| (rejected.index, rejected.code)).collect();
        assert_eq!(rejected, [(1, "INVALID_AMOUNT"), (2, "INSUFFICIENT_BALANCE")]);
        assert!(report.rejected[1].message.contains("holds 100.00 in REAL, DEDUCT needs 500.00"), "{report:#?}");
        assert_eq!(fixture.balance("z-1").await, "ACCOUNT_NOT_FOUND", "{mode:?} wrote nothing");
    }
    let report = fixture.ingest(&with_mode(Provider::Zenlayer, Mode::Partial), &[&page]).await;
    assert_eq!(counts(&report), (2, 0, 0, 0, 2, 0, true), "{report:#?}");
    assert_eq!(fixture.balance("z-1").await, "60.00/0.00/0.00");
    // A clean dry run is not committed, and writes nothing.
    let clean = zenlayer_page(&[("9", "RECHARGE", "1", "PAY_SUCCESS", "2023-08-09T00:00:00Z")]);
    let report = fixture.ingest(&with_mode(Provider::Zenlayer, Mode::DryRun), &[&clean]).await;
    assert_eq!(counts(&report), (1, 0, 0, 0, 0, 0, false));
    assert!(report.clean());
    assert_eq!(fixture.balance("z-1").await, "60.00/0.00/0.00");
    fixture.ledger.verify().await.expect("the log verifies");
}

fn kybio_record(uid: &str, account: &str, recharge: &str, gift: &str, time: &str, after: &str) -> String {
    format!(
        r#"{{"uid":"{uid}","rechargeStoreAppId":"A","rechargeStoreAccount":"s","customerUid":"{account}","rechargeMoney":{recharge},"giftMoney":{gift},"datetime":"{time}","payMethod":"Cash","customerMoneyAfterRecharge":{after}}}"#
    )
}

fn kybio_page(records: &[String]) -> String {
    format!(
        r#"{{"status":"success","messages":[],"errorCode":null,"data":{{"result":[{}],"pageSize":100}}}}"#,
        records.join(",")
    )
}

#[tokio::test]
async fn kybio_opening_balance_order_and_reconciliation() {
    // Newest first, as a log may list them; 150.00 was there before the first recharge, and
    // 40.00 was spent between the second and the third (the log does not show spending).
    let page = kybio_page(&[
        kybio_record("3", "k-1", "10", "0", "2021-03-03 10:00:00", "310"),
        kybio_record("2", "k-1", "100", "20", "2021-03-02 10:00:00", "340"),
        kybio_record("1", "k-1", "50", "20", "2021-03-01 10:00:00", "220"),
    ]);
    let fixture = Fixture::new().await;
    let report = fixture.ingest(&options(Provider::Kybio), &[&page]).await;
    assert_eq!(counts(&report), (3, 0, 1, 0, 0, 1, true), "{report:#?}");
    let mismatch = &report.mismatches[0];
    assert_eq!(
        (mismatch.index, mismatch.account_id.as_str(), mismatch.balance, mismatch.bucket),
        (0, "k-1", "after", "TOTAL")
    );
    assert_eq!((mismatch.provider.as_str(), mismatch.ledger.as_str()), ("310.00", "350.00"));
    assert_eq!(fixture.balance("k-1").await, "310.00/40.00/0.00");
    assert_eq!(fixture.flow_types("k-1").await, ["IMPORT 150.00", "CHARGE 70.00", "CHARGE 120.00", "CHARGE 10.00"]);
    // Again: nothing new, the same mismatch, no second opening balance.
    let again = fixture.ingest(&options(Provider::Kybio), &[&page]).await;
    assert_eq!(counts(&again), (0, 3, 0, 0, 0, 1, true), "{again:#?}");

    // Without opening balances the first record already disagrees.
    let fixture = Fixture::new().await;
    let mut no_opening = options(Provider::Kybio);
    no_opening.opening_balances = false;
    let report = fixture.ingest(&no_opening, &[&page]).await;
    assert_eq!(counts(&report), (3, 0, 0, 0, 0, 3, true), "{report:#?}");
}

#[tokio::test]
async fn kybio_same_record_twice_and_changed_record() {
    let fixture = Fixture::new().await;
    let seed = include_str!("fixtures/kybio-queryCustomerRechargeLog.json");
    let report = fixture.ingest(&options(Provider::Kybio), &[seed]).await;
    assert_eq!(counts(&report), (1, 1, 0, 0, 0, 0, true), "{report:#?}");
    // The same uid with other content is a conflict, never a silent overwrite.
    let first = kybio_page(&[kybio_record("7", "k-2", "10", "0", "2021-03-01 10:00:00", "10")]);
    let changed = kybio_page(&[kybio_record("7", "k-2", "11", "0", "2021-03-01 10:00:00", "11")]);
    fixture.ingest(&options(Provider::Kybio), &[&first]).await;
    let report = fixture.ingest(&options(Provider::Kybio), &[&changed]).await;
    assert_eq!(report.rejected.len(), 1, "{report:#?}");
    assert_eq!(report.rejected[0].code, "IDEMPOTENCY_CONFLICT");
    assert_eq!(fixture.balance("k-2").await, "10.00/0.00/0.00");
}

#[tokio::test]
async fn future_opening_balance_is_reported() {
    let fixture = Fixture::new().await;
    let page = kybio_page(&[kybio_record("1", "k-3", "10", "0", "2999-01-01 00:00:00", "50")]);
    let report = fixture.ingest(&options(Provider::Kybio), &[&page]).await;
    assert!(!report.committed);
    assert_eq!(report.rejected.len(), 1, "{report:#?}");
    assert_eq!(report.rejected[0].code, "INVALID_ARGUMENT");
    assert!(report.rejected[0]
        .message
        .starts_with("opening balance IMPORT: IMPORT order_time must not be in the future"));
}

fn alsc_flow(flow_id: &str, flow_type: &str, time: &str, lists: &str, extra: &str) -> String {
    format!(
        r#"{{"result":{{"biz_success":true,"result":{{"account_id":"a-1","card_id":"card-1","flow_id":"{flow_id}","flow_type":"{flow_type}","order_time":"{time}"{lists}{extra}}}}}}}"#
    )
}

fn lists(before: [i64; 3], after: [i64; 3]) -> String {
    let list = |values: [i64; 3]| {
        format!(
            r#"[{{"type":"REAL","value":{}}},{{"type":"GIFT","value":{}}},{{"type":"PRE","value":{}}},{{"type":"TOTAL","value":{}}}]"#,
            values[0],
            values[1],
            values[2],
            values[0] + values[1] + values[2]
        )
    };
    format!(r#","before_property_list":{},"after_property_list":{}"#, list(before), list(after))
}

#[tokio::test]
async fn alsc_flows_opening_rows_and_mismatches() {
    let fixture = Fixture::new().await;
    let details = [
        alsc_flow(
            "f1",
            "CHARGE",
            "2024-01-01 10:00:00",
            &lists([5000, 1000, 0], [15000, 3000, 0]),
            r#","order_value":12000"#,
        ),
        alsc_flow(
            "f2",
            "DEDUCT",
            "2024-01-02 10:00:00",
            &lists([15000, 3000, 0], [13000, 2500, 0]),
            r#","current_value":15500"#,
        ),
        alsc_flow("f3", "CONSUME", "2024-01-03 10:00:00", &lists([13000, 2500, 0], [12000, 2500, 0]), ""),
    ]
    .join("\n");
    let report = fixture.ingest(&options(Provider::Alsc), &[&details]).await;
    assert_eq!(counts(&report), (2, 0, 1, 0, 1, 0, false), "{report:#?}");
    assert!(report.rejected[0].message.contains("unknown flow_type \"CONSUME\""), "{report:#?}");
    assert_eq!(fixture.balance("a-1").await, "ACCOUNT_NOT_FOUND");

    let mut mapped = options(Provider::Alsc);
    mapped.map_flow_type("CONSUME=DEDUCT").unwrap();
    let report = fixture.ingest(&mapped, &[&details]).await;
    assert_eq!(counts(&report), (3, 0, 1, 0, 0, 0, true), "{report:#?}");
    assert_eq!(fixture.balance("a-1").await, "120.00/25.00/0.00");
    assert_eq!(fixture.flow_types("a-1").await, ["IMPORT 60.00", "CHARGE 120.00", "DEDUCT -25.00", "DEDUCT -10.00"]);
    let account = fixture.ledger.account("a-1").await.unwrap();
    assert_eq!(account.card_id.as_deref(), Some("card-1"));

    // Listing rows: one with its flow in the ledger (a duplicate, reconciled), one without.
    let rows = r#"{"alibaba_alsc_crm_recharge_accountflows_get_response":{"result":{"biz_success":true,"result":{"total_count":2,"flows":{"recharge_account_flow_open_info":[
        {"account_id":"a-1","flow_id":"f2","flow_type":"DEDUCT","order_time":"2024-01-02 10:00:00","order_value":-2500,"current_value":15000},
        {"account_id":"a-1","flow_id":"f9","flow_type":"DEDUCT","order_time":"2024-01-09 10:00:00","order_value":-100,"current_value":14400}]}}}}}"#;
    let report = fixture.ingest(&options(Provider::Alsc), &[rows]).await;
    // The row it cannot apply stops the (all-or-nothing) run, with nothing to write anyway.
    assert_eq!(counts(&report), (0, 1, 0, 0, 1, 1, false), "{report:#?}");
    assert_eq!((report.mismatches[0].provider.as_str(), report.mismatches[0].ledger.as_str()), ("150.00", "155.00"));
    assert!(report.rejected[0].message.contains("ingest its flowdetail.get response instead"), "{report:#?}");
    // With their details in the same run, rows are skipped.
    let report = fixture.ingest(&mapped, &[&details, rows]).await;
    assert_eq!(counts(&report), (0, 3, 0, 1, 1, 0, false), "{report:#?}");

    // A record whose before disagrees with the ledger, and one for another card.
    let later = [
        alsc_flow("f4", "ADJUST", "2024-02-01 10:00:00", &lists([12000, 2000, 0], [12000, 2000, 500]), ""),
        alsc_flow("f5", "CHARGE", "2024-02-02 10:00:00", &lists([12000, 2500, 500], [12100, 2500, 500]), "")
            .replace("card-1", "card-2"),
    ]
    .join("\n");
    let report = fixture.ingest(&with_mode(Provider::Alsc, Mode::Partial), &[&later]).await;
    // f4 states a balance before it, but a-1 is no longer new: the writer skips that opening.
    assert_eq!(counts(&report), (1, 0, 0, 1, 1, 4, true), "{report:#?}");
    assert!(report.skipped[0].reason.starts_with("opening balance: account \"a-1\" already exists"), "{report:#?}");
    let mismatches: Vec<(&str, &str, &str, &str)> = report
        .mismatches
        .iter()
        .map(|mismatch| (mismatch.balance, mismatch.bucket, mismatch.provider.as_str(), mismatch.ledger.as_str()))
        .collect();
    assert_eq!(
        mismatches,
        [
            ("before", "GIFT", "20.00", "25.00"),
            ("before", "TOTAL", "140.00", "145.00"),
            ("after", "GIFT", "20.00", "25.00"),
            ("after", "TOTAL", "145.00", "150.00")
        ]
    );
    assert_eq!(report.rejected[0].code, "INVALID_ARGUMENT");
    assert!(report.rejected[0].message.contains("card_id"), "{report:#?}");

    // A change whose signs do not fit its type is refused by the ledger, by name.
    let wrong_sign = alsc_flow(
        "f6",
        "CHARGE",
        "2024-02-03 10:00:00",
        "",
        r#","affected_property_list":[{"type":"REAL","value":-100}]"#,
    );
    let report = fixture.ingest(&options(Provider::Alsc), &[&wrong_sign]).await;
    assert_eq!(counts(&report), (0, 0, 0, 0, 1, 0, false), "{report:#?}");
    assert_eq!(report.rejected[0].code, "INVALID_AMOUNT");
    assert!(report.rejected[0].message.contains("a CHARGE or UNDEDUCT must add"), "{report:#?}");
    fixture.ledger.verify().await.expect("the log verifies");
}

#[tokio::test]
async fn unreadable_input_stops_an_all_or_nothing_run() {
    let fixture = Fixture::new().await;
    let good = zenlayer_page(&[("1", "RECHARGE", "100", "PAY_SUCCESS", "2023-08-01T00:00:00Z")]);
    let report = fixture.ingest(&options(Provider::Zenlayer), &[&good, "{\"requestId\": "]).await;
    assert_eq!(counts(&report), (1, 0, 0, 0, 1, 0, false), "{report:#?}");
    assert_eq!(report.records, 2);
    assert!(report.rejected[0].message.starts_with("file-1: not valid JSON"), "{report:#?}");
    assert_eq!(fixture.balance("z-1").await, "ACCOUNT_NOT_FOUND");
}

const ZENLAYER_HOLDS: &str = include_str!("fixtures/zenlayer-holds.json");
const HOLDER: &str = "7c1d2e3f-0a9b-4c8d-9e7f-6a5b4c3d2e1f";

/// One Zenlayer record of the holds fixture's account.
fn holder_page(records: &[(&str, &str, &str, &str)]) -> String {
    let records: Vec<(&str, &str, &str, &str, &str)> =
        records.iter().map(|(id, kind, amount, time)| (*id, *kind, *amount, "PAY_SUCCESS", *time)).collect();
    zenlayer_page(&records).replace("z-1", HOLDER)
}

#[tokio::test]
async fn zenlayer_holds_match_their_releases_by_account_and_amount() {
    let fixture = Fixture::new().await;
    let report = fixture.ingest(&options(Provider::Zenlayer), &[ZENLAYER_HOLDS]).await;
    assert_eq!(counts(&report), (6, 0, 0, 0, 0, 0, true), "{report:#?}");
    let flows = fixture.flow_types(HOLDER).await;
    assert_eq!(flows, ["CHARGE 100.00", "HOLD 0.00", "HOLD 0.00", "RELEASE 0.00", "DEDUCT -30.00", "HOLD 0.00"]);
    // Of two open holds of 30.00, a release closes the earlier one.
    let release = fixture.ledger.flow(purse_ledger::FlowKey::OuterOrderId("zenlayer:10000000900004".into()));
    assert_eq!(release.await.unwrap().source_order_id.as_deref(), Some("zenlayer:10000000900002"));
    let account = fixture.ledger.account(HOLDER).await.unwrap();
    assert_eq!((text(&account.balance), text(&account.held)), ("70.00/0.00/0.00".into(), "50.00/0.00/0.00".into()));

    // A later page: its release finds the hold an earlier run placed; one with no hold of its
    // amount open is rejected with the reason, and stops the all-or-nothing run.
    let unmatched = holder_page(&[
        ("10000000900007", "ORDER_UNFROZEN", "30", "2023-09-06T01:00:00Z"),
        ("10000000900008", "ORDER_UNFROZEN", "99", "2023-09-06T02:00:00Z"),
    ]);
    let report = fixture.ingest(&options(Provider::Zenlayer), &[&unmatched]).await;
    assert_eq!(counts(&report), (1, 0, 0, 0, 1, 0, false), "{report:#?}");
    assert_eq!((report.rejected[0].index, report.rejected[0].code), (1, "ORDER_NOT_FOUND"));
    assert!(report.rejected[0].message.contains("releases 99.00 on account"), "{report:#?}");
    assert_eq!(text(&fixture.ledger.account(HOLDER).await.unwrap().held), "50.00/0.00/0.00");

    let later = holder_page(&[("10000000900007", "ORDER_UNFROZEN", "30", "2023-09-06T01:00:00Z")]);
    let report = fixture.ingest(&options(Provider::Zenlayer), &[&later]).await;
    assert_eq!(counts(&report), (1, 0, 0, 0, 0, 0, true), "{report:#?}");
    let release = fixture.ledger.flow(purse_ledger::FlowKey::OuterOrderId("zenlayer:10000000900007".into()));
    assert_eq!(release.await.unwrap().source_order_id.as_deref(), Some("zenlayer:10000000900003"));
    assert_eq!(text(&fixture.ledger.account(HOLDER).await.unwrap().held), "20.00/0.00/0.00");

    // Both again, alone or together: every record is a duplicate, its release the same one.
    let later: &str = &later;
    for files in [&[later][..], &[ZENLAYER_HOLDS, later][..], &[ZENLAYER_HOLDS][..]] {
        let report = fixture.ingest(&options(Provider::Zenlayer), files).await;
        assert_eq!(counts(&report), (0, report.records, 0, 0, 0, 0, true), "{report:#?}");
    }
    assert_eq!(text(&fixture.ledger.account(HOLDER).await.unwrap().held), "20.00/0.00/0.00");
    fixture.ledger.verify().await.expect("the log verifies");
}

#[tokio::test]
async fn alsc_flows_keep_the_order_id_they_state() {
    let fixture = Fixture::new().await;
    let order = |id: &str| format!(r#","outer_order_id":"{id}""#);
    let details = [
        alsc_flow("g1", "CHARGE", "2024-03-01 10:00:00", &lists([0, 0, 0], [10000, 0, 0]), &order("M-100")),
        alsc_flow("g2", "DEDUCT", "2024-03-02 10:00:00", &lists([10000, 0, 0], [7000, 0, 0]), &order("M-101")),
        alsc_flow("g3", "DEDUCT", "2024-03-03 10:00:00", &lists([7000, 0, 0], [6000, 0, 0]), ""),
    ]
    .join("\n");
    let report = fixture.ingest(&options(Provider::Alsc), &[&details]).await;
    assert_eq!(counts(&report), (3, 0, 0, 0, 0, 0, true), "{report:#?}");
    let flow = |id: &str| fixture.ledger.flow(purse_ledger::FlowKey::OuterOrderId(id.into()));
    let deduct = flow("M-101").await.unwrap();
    assert_eq!((deduct.flow_type, deduct.request_id.as_str()), (FlowType::Deduct, "alsc:g2"));
    assert_eq!(flow("alsc:g3").await.unwrap().flow_type, FlowType::Deduct, "no order id stated: the record's own");
    assert!(flow("alsc:g2").await.is_err(), "a stated order id replaces the record's own");

    // Another record under an order id the ledger has: DUPLICATE_ORDER, and nothing written.
    let clash = alsc_flow("g4", "DEDUCT", "2024-03-04 10:00:00", &lists([6000, 0, 0], [5000, 0, 0]), &order("M-100"));
    let report = fixture.ingest(&options(Provider::Alsc), &[&clash]).await;
    // (its before-balance would open a-1, which exists: that opening balance is skipped)
    assert_eq!(counts(&report), (0, 0, 0, 1, 1, 0, false), "{report:#?}");
    assert_eq!(report.rejected[0].code, "DUPLICATE_ORDER", "{report:#?}");

    // The same records again are duplicates; purse's own refund refers to the merchant's order.
    let again = fixture.ingest(&options(Provider::Alsc), &[&details]).await;
    assert_eq!(counts(&again), (0, 3, 0, 0, 0, 0, true), "{again:#?}");
    let refund =
        Command::new("u-1", "R-101", "a-1", Action::Undeduct { original_outer_order_id: "M-101".into(), value: None });
    let refund = fixture.ledger.submit(refund).await.unwrap();
    let view = fixture.ledger.detail(&refund).unwrap();
    assert_eq!((view.order_value.as_str(), refund.source_order_id.as_deref()), ("30.00", Some("M-101")));
    fixture.ledger.verify().await.expect("the log verifies");
}

//! Zenlayer pages as the API returns them, through the one check helper.

use crate::options::Provider;
use crate::test_support::{check, options};

fn zenlayer(text: &str, expect: &[&str]) {
    check(&options(Provider::Zenlayer), text, expect);
}

fn page(records: &[String]) -> String {
    format!(
        r#"{{"requestId":"T1","response":{{"requestId":"T1","totalCount":{},"dataSet":[{}]}}}}"#,
        records.len(),
        records.join(",")
    )
}

fn record(kind: &str, amount: &str, state: &str) -> String {
    format!(
        r#"{{"transactionType":"{kind}","amount":{amount},"paymentMethod":"BALANCE","state":"{state}","transactionTime":"2023-08-15T09:47:01Z","accountUid":"acc-1","transactionId":"100"}}"#
    )
}

const EXT: &str = r#"ext={"payment_method":"BALANCE"}"#;

#[test]
fn seed_page() {
    zenlayer(
        include_str!("../tests/fixtures/zenlayer-DescribeRechargeRefundHistory.json"),
        &["10000000893685 cccbf4c0-12ab-417a-95ba-0bf8e60a55d1 2023-08-15 17:47:01 UNDEDUCT(39.05/0.00/0.00) \
           ext={\"payment_method\":\"REFUND\"}"],
    );
}

#[test]
fn every_mapping_row() {
    let at = "100 acc-1 2023-08-15 17:47:01";
    let table: &[(&str, &str, &str, String)] = &[
        ("RECHARGE", "39.05", "PAY_SUCCESS", format!("{at} CHARGE(39.05/0.00/0.00) {EXT}")),
        ("REFUND", "39.05", "PAY_SUCCESS", format!("{at} UNCHARGE(-39.05/0.00/0.00) {EXT}")),
        ("DEDUCTION", "\"12\"", "PAY_SUCCESS", format!("{at} DEDUCT(-12.00/0.00/0.00) {EXT}")),
        ("ORDER_REFUND", "1e1", "PAY_SUCCESS", format!("{at} UNDEDUCT(10.00/0.00/0.00) {EXT}")),
        (
            "DERATE",
            "5",
            "PAY_SUCCESS",
            format!("{at} ADJUST(5.00/0.00/0.00) remark=Zenlayer DERATE: a credit granted {EXT}"),
        ),
        ("ORDER_FROZEN", "5", "PAY_SUCCESS", format!("{at} HOLD(5.00) {EXT}")),
        // the hold it releases is found when the run is planned, not while reading
        ("ORDER_UNFROZEN", "5", "PAY_SUCCESS", format!("{at} RELEASE(5.00 of ?) {EXT}")),
        ("ORDER_FROZEN", "0", "PAY_SUCCESS", "rejected INVALID_ARGUMENT (100): field amount: must be positive".into()),
        (
            "ORDER_UNFROZEN",
            "-5",
            "PAY_SUCCESS",
            "rejected INVALID_ARGUMENT (100): field amount: must be positive".into(),
        ),
        ("ORDER_FROZEN", "5", "PAYING", format!("{at} SKIP(state PAYING: only PAY_SUCCESS moves money) {EXT}")),
        (
            "NS_SYNC",
            "5",
            "PAY_SUCCESS",
            format!(
                "{at} SKIP(NS_SYNC is an external sync whose effect on the balance Zenlayer does not document) {EXT}"
            ),
        ),
        ("RECHARGE", "5", "PAYING", format!("{at} SKIP(state PAYING: only PAY_SUCCESS moves money) {EXT}")),
        ("DEDUCTION", "5", "PAY_FAILED", format!("{at} SKIP(state PAY_FAILED: only PAY_SUCCESS moves money) {EXT}")),
        // A record that moves no money is not held to the money rules.
        ("RECHARGE", "-5", "PAY_FAILED", format!("{at} SKIP(state PAY_FAILED: only PAY_SUCCESS moves money) {EXT}")),
        (
            "RECHARGE",
            "39.055",
            "PAY_SUCCESS",
            "rejected INVALID_AMOUNT (100): field amount: \"39.055\" has more than 2 decimals".into(),
        ),
        ("RECHARGE", "0", "PAY_SUCCESS", "rejected INVALID_ARGUMENT (100): field amount: must be positive".into()),
        ("REFUND", "-1", "PAY_SUCCESS", "rejected INVALID_ARGUMENT (100): field amount: must be positive".into()),
        ("RECHARGE", "null", "PAY_SUCCESS", "rejected INVALID_ARGUMENT (100): missing field amount".into()),
        (
            "TRANSFER",
            "5",
            "PAY_SUCCESS",
            "rejected INVALID_ARGUMENT (100): unknown transactionType \"TRANSFER\"".into(),
        ),
        ("RECHARGE", "5", "PAY_REFUNDED", "rejected INVALID_ARGUMENT (100): unknown state \"PAY_REFUNDED\"".into()),
    ];
    for (kind, amount, state, expect) in table {
        zenlayer(&page(&[record(kind, amount, state)]), &[expect]);
    }
}

#[test]
fn fields_and_times() {
    let base = record("RECHARGE", "1", "PAY_SUCCESS");
    let table: &[(&str, &str, &str)] = &[
        ("2023-08-15T09:47:01Z", "2023-08-15T01:47:01Z", "2023-08-15 09:47:01"),
        ("2023-08-15T09:47:01Z", "2023-08-15T09:47:01.999Z", "2023-08-15 17:47:01"),
        ("2023-08-15T09:47:01Z", "2023-08-15T09:47:01+08:00", "2023-08-15 09:47:01"),
    ];
    for (from, to, shown) in table {
        zenlayer(&page(&[base.replace(from, to)]), &[&format!("100 acc-1 {shown} CHARGE(1.00/0.00/0.00) {EXT}")]);
    }
    let charge = format!("100 acc-1 2023-08-15 17:47:01 CHARGE(1.00/0.00/0.00) {EXT}");
    let table: &[(&str, &str, &str)] = &[
        ("2023-08-15T09:47:01Z", "2023-08-15 09:47:01", "rejected INVALID_ARGUMENT (100): field transactionTime"),
        (r#""accountUid":"acc-1","#, "", "rejected INVALID_ARGUMENT (100): missing field accountUid"),
        (r#""state":"PAY_SUCCESS","#, "", "rejected INVALID_ARGUMENT (100): missing field state"),
        (r#""transactionId":"100""#, r#""transactionId":100"#, &charge),
        (r#""transactionId":"100""#, r#""transactionId":"""#, "rejected INVALID_ARGUMENT: missing field transactionId"),
    ];
    for (from, to, expect) in table {
        zenlayer(&page(&[base.replace(from, to)]), &[expect]);
    }
}

#[test]
fn pages_and_errors() {
    let first = page(&[record("RECHARGE", "1", "PAY_SUCCESS")]);
    let second = page(&[record("DEDUCTION", "1", "PAY_SUCCESS").replace("\"100\"", "\"101\"")]);
    let charge = format!("100 acc-1 2023-08-15 17:47:01 CHARGE(1.00/0.00/0.00) {EXT}");
    let deduct = "101 acc-1 2023-08-15 17:47:01 DEDUCT(-1.00/0.00/0.00) ext={\"payment_method\":\"BALANCE\"}";
    zenlayer(&format!("{first}\n{second}\n"), &[&charge, deduct]);
    zenlayer(&format!("[{first},\n{second}]"), &[&charge, deduct]);
    zenlayer(&format!("{first}{second}"), &[&charge, deduct]);
    zenlayer(r#"{"requestId":"T2","response":{"requestId":"T2","totalCount":0,"dataSet":[]}}"#, &[]);
    zenlayer(
        r#"{"requestId":"T3","code":"AUTH_FAILED","message":"signature mismatch"}"#,
        &["rejected INVALID_ARGUMENT: Zenlayer answered with an error instead of records: AUTH_FAILED \"signature mismatch\" (requestId T3)"],
    );
    zenlayer(r#"{"requestId":"T4"}"#, &["rejected INVALID_ARGUMENT: document 1 is not a Zenlayer"]);
}

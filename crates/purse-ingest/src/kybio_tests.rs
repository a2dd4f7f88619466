//! KYBIO responses as the API returns them, through the one check helper.

use crate::options::Provider;
use crate::test_support::{check, options};

const SEED: &str = include_str!("../tests/fixtures/kybio-queryCustomerRechargeLog.json");

fn kybio(text: &str, expect: &[&str]) {
    check(&options(Provider::Kybio), text, expect);
}

#[test]
fn seed_page() {
    let items = crate::test_support::items(&options(Provider::Kybio), SEED);
    let lines: Vec<String> = items.iter().map(crate::test_support::describe).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], lines[1], "the same record twice has the same content id");
    let id = lines[0].split(' ').next().unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 39, "{id}");
    assert_eq!(
        lines[0].strip_prefix(id).unwrap(),
        " 677793671220529313 2016-10-28 11:14:03 CHARGE(100.00/0.00/0.00) after[TOTAL=100.00] opening[0.00/0.00/0.00] \
         ext={\"pay_method\":\"Cash\",\"store_account\":\"adasun4\"}"
    );
}

#[test]
fn records_and_envelopes() {
    // queryAllRechargeLogs: data.result, with uid; numbers and numeric strings; a gift.
    kybio(
        r#"{"status":"success","messages":[],"errorCode":null,"data":{"postBackParameter":{"parameterType":"LAST_RESULT_MAX_ID","parameterValue":"288"},"result":[
            {"uid":287,"rechargeStoreAppId":"A1","rechargeStoreAccount":"s1","customerUid":677793671220529313,"rechargeMoney":200.5,"giftMoney":"20","datetime":"2021-03-01 09:00:00","payMethod":"Wxpay","customerMoneyAfterRecharge":"350.50"},
            {"uid":"288","customerUid":"9","rechargeMoney":"1e2","giftMoney":0,"datetime":"2021-03-01 10:00:00"}
        ],"pageSize":100}}"#,
        &[
            "287 677793671220529313 2021-03-01 09:00:00 CHARGE(200.50/20.00/0.00) after[TOTAL=350.50] opening[130.00/0.00/0.00] \
             ext={\"pay_method\":\"Wxpay\",\"store_account\":\"s1\"}",
            "288 9 2021-03-01 10:00:00 CHARGE(100.00/0.00/0.00)",
        ],
    );
    // The API tables capitalise some names.
    kybio(
        r#"{"Status":"SUCCESS","Data":[{"uid":1,"customerUid":"7","rechargeMoney":1,"giftMoney":0,"Datetime":"2021-03-01 10:00:00"}]}"#,
        &["1 7 2021-03-01 10:00:00 CHARGE(1.00/0.00/0.00)"],
    );
    kybio(
        r#"{"status":"error","messages":["customerUid is invalid","retry later"],"errorCode":1032,"data":null}"#,
        &["rejected INVALID_ARGUMENT: KYBIO answered status \"error\" (errorCode 1032: customerUid is invalid; retry later)"],
    );
    kybio(
        r#"{"status":"error","errorCode":1,"data":[{"uid":5,"customerUid":"7","rechargeMoney":1,"giftMoney":0,"datetime":"2021-03-01 10:00:00"}]}"#,
        &["rejected INVALID_ARGUMENT (5): its records are not confirmed"],
    );
    // Empty pages are fine: no records, no rejection.
    kybio(r#"{"status":"success","data":[]}"#, &[]);
}

#[test]
fn bad_records() {
    let record = |fields: &str| format!(r#"{{"status":"success","data":[{{{fields}}}]}}"#);
    let base = r#""uid":1,"customerUid":"7","datetime":"2021-03-01 10:00:00""#;
    let table: &[(&str, &str)] = &[
        (r#""rechargeMoney":1,"giftMoney":0"#, "1 7 2021-03-01 10:00:00 CHARGE(1.00/0.00/0.00)"),
        (r#""giftMoney":0"#, "rejected INVALID_ARGUMENT (1): missing field rechargeMoney"),
        (r#""rechargeMoney":null,"giftMoney":0"#, "rejected INVALID_ARGUMENT (1): missing field rechargeMoney"),
        (r#""rechargeMoney":1"#, "rejected INVALID_ARGUMENT (1): missing field giftMoney"),
        (
            r#""rechargeMoney":1.005,"giftMoney":0"#,
            "rejected INVALID_AMOUNT (1): field rechargeMoney: \"1.005\" has more than 2 decimals",
        ),
        (r#""rechargeMoney":"1,00","giftMoney":0"#, "rejected INVALID_AMOUNT (1): is not a decimal number"),
        (
            r#""rechargeMoney":{"a":1},"giftMoney":0"#,
            "rejected INVALID_ARGUMENT (1): field rechargeMoney: is an object",
        ),
        (r#""rechargeMoney":[1],"giftMoney":0"#, "rejected INVALID_ARGUMENT (1): field rechargeMoney: is an array"),
        (
            r#""rechargeMoney":1,"giftMoney":0,"customerMoneyAfterRecharge":0.5"#,
            "rejected INVALID_AMOUNT (1): customerMoneyAfterRecharge 0.50 is less than rechargeMoney + giftMoney 1.00",
        ),
        (
            r#""rechargeMoney":1,"giftMoney":0,"datetime":"2021-03-01T10:00:00Z""#,
            "rejected INVALID_ARGUMENT (1): field datetime",
        ),
    ];
    for (fields, expect) in table {
        kybio(&record(&format!("{base},{fields}")), &[expect]);
    }
    kybio(&record(r#""uid":1,"rechargeMoney":1,"giftMoney":0,"datetime":"2021-03-01 10:00:00""#), &[]);
}

#[test]
fn inputs_that_are_not_kybio() {
    kybio("", &["rejected INVALID_ARGUMENT: the input is empty"]);
    kybio(" \n\t", &["rejected INVALID_ARGUMENT: the input is empty"]);
    kybio("<a/>", &["rejected INVALID_ARGUMENT: this is XML, and kybio answers JSON"]);
    kybio(
        include_str!("../tests/fixtures/zenlayer-DescribeRechargeRefundHistory.json"),
        &["rejected INVALID_ARGUMENT: document 1 is not a KYBIO response"],
    );
    kybio("[1, 2]", &["rejected INVALID_ARGUMENT: document 1 is not a KYBIO response"]);
    // A truncated page keeps what came before the break and stops there.
    kybio(
        r#"{"status":"success","data":[{"uid":1,"customerUid":"7","rechargeMoney":1,"giftMoney":0,"datetime":"2021-03-01 10:00:00"},{"uid":2,"#,
        &[
            "1 7 2021-03-01 10:00:00 CHARGE(1.00/0.00/0.00)",
            "rejected INVALID_ARGUMENT: not valid JSON (EOF while parsing",
        ],
    );
    kybio(
        "{\"status\":\"success\"} x",
        &["rejected INVALID_ARGUMENT: not valid JSON (expected value at line 1 column 22)"],
    );
    // Several responses: JSON lines, an array, a byte order mark.
    let line = r#"{"status":"success","data":[{"uid":1,"customerUid":"7","rechargeMoney":1,"giftMoney":0,"datetime":"2021-03-01 10:00:00"}]}"#;
    let one = "1 7 2021-03-01 10:00:00 CHARGE(1.00/0.00/0.00)";
    kybio(&format!("{line}\n{line}\n"), &[one, one]);
    kybio(&format!("[{line},{line}]"), &[one, one]);
    kybio(&format!("\u{feff}{line}"), &[one]);

    // Errors name the line of the whole input, on the fast path (one document per line) and in
    // a pretty-printed document alike.
    kybio(
        &format!("{line}\n{line}\n{{\"status\": x}}\n"),
        &[one, one, "rejected INVALID_ARGUMENT: not valid JSON (expected value at line 3 column 12)"],
    );
    kybio(
        &format!("{line}\n{{\n  \"status\": \"success\",\n  \"data\": [,]\n}}\n"),
        &[one, "rejected INVALID_ARGUMENT: not valid JSON (expected value at line 4 column 12)"],
    );
}

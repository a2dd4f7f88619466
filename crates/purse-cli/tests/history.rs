//! History and reports through the built binary (spec §12): `export` in both formats, parsed
//! back; `statement`, backdated or not; `accounts`; `account --card-id`; `liability`.

#[path = "support/purse.rs"]
mod purse;

use purse::Purse;
use serde_json::{json, Value};

/// Reads of `export` this file's tests share.
trait Exports {
    fn export_jsonl(&self, options: &str) -> Vec<Value>;
    fn flow_ids(&self, options: &str) -> Vec<String>;
}

impl Exports for Purse {
    /// `export …` as JSON lines, each parsed.
    fn export_jsonl(&self, options: &str) -> Vec<Value> {
        let text = self.ok_text(&format!("export {options}"));
        assert!(text.is_empty() || text.ends_with('\n'), "{text}");
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))).collect()
    }

    fn flow_ids(&self, options: &str) -> Vec<String> {
        self.export_jsonl(options).iter().map(|flow| flow["flow_id"].as_str().unwrap().to_owned()).collect()
    }
}

const REMARK: &str = "first, \"quoted\"\nsecond line";
const EXT_INFO: &str = r#"{"note": "say \"hi\"", "n": [1, 2]}"#;

/// The log, by position: 1 CHARGE alice, 2 DEDUCT alice, 3 rules change, 4 CHARGE bob,
/// 5 IMPORT carol (2025), 6 CHARGE alice.
fn ledger() -> Purse {
    let purse = Purse::new();
    purse.ok(&format!(
        "charge --request-id r1 --outer-order-id c-1 --account-id alice --card-id K1 --brand-id b1 \
         --real-value 100 --biz-date '2026-01-01 10:00:00' --remark '{REMARK}' --ext-info '{EXT_INFO}'"
    ));
    purse.ok("deduct --request-id r2 --outer-order-id d-1 --account-id alice --shop-id s1 --value 30 \
         --biz-date '2026-01-02 10:00:00'");
    let rules = purse.dir.path().join("rules.json");
    std::fs::write(&rules, "{}").unwrap();
    purse.ok(&format!("rules set --brand-id b1 '{}'", rules.display()));
    purse.ok("charge --request-id r4 --outer-order-id c-2 --account-id bob --card-id K1 --brand-id b2 \
         --real-value 50 --biz-date '2026-01-03 10:00:00'");
    purse.ok("import --request-id r5 --outer-order-id i-1 --account-id carol --card-id K2 --brand-id b1 \
         --real-value 10 --order-time '2025-06-01 00:00:00'");
    purse.ok("charge --request-id r6 --outer-order-id c-3 --account-id alice --real-value 20 \
         --biz-date '2026-01-05 10:00:00'");
    purse
}

/// RFC 4180 records of `text` (quoted fields, doubled quotes, CRLF ends); an empty unquoted
/// field is `None`.
fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), None::<String>);
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '"' => {
                let quoted = field.get_or_insert_with(String::new);
                loop {
                    match chars.next().expect("a quoted field ends") {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            quoted.push('"');
                        }
                        '"' => break,
                        other => quoted.push(other),
                    }
                }
            }
            ',' => row.push(field.take()),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR only before LF outside quotes");
                row.push(field.take());
                rows.push(std::mem::take(&mut row));
            }
            '\n' => panic!("a bare LF ends a record: {text:?}"),
            other => field.get_or_insert_with(String::new).push(other),
        }
    }
    assert!(row.is_empty() && field.is_none(), "the last record has its CRLF");
    rows
}

const SCALARS: [&str; 15] = [
    "flow_id",
    "flow_type",
    "account_id",
    "card_id",
    "brand_id",
    "shop_id",
    "operator",
    "request_id",
    "outer_order_id",
    "order_time",
    "order_value",
    "current_value",
    "remark",
    "ext_info",
    "src_outer_order_id",
];

/// What the CSV row of `flow` must hold: its scalars, then its affected and after amounts.
fn csv_row_of(flow: &Value) -> Vec<Option<String>> {
    let mut row: Vec<Option<String>> = SCALARS.iter().map(|name| flow[name].as_str().map(str::to_owned)).collect();
    for list in ["affected_property_list", "after_property_list"] {
        row.extend(flow[list].as_array().unwrap().iter().map(|entry| entry["value"].as_str().map(str::to_owned)));
    }
    row
}

#[test]
fn export_is_every_flow_in_log_order_in_both_formats() {
    let purse = ledger();
    let flows = purse.export_jsonl("");
    let ids: Vec<&str> = flows.iter().map(|flow| flow["flow_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "4", "5", "6"], "the rules change at 3 is no flow");
    for flow in &flows {
        let shown = purse.ok(&format!("flow --flow-id {}", flow["flow_id"].as_str().unwrap()));
        assert_eq!(flow, &shown, "a line is exactly what `flow` prints");
    }
    assert_eq!(flows[0]["remark"], REMARK);
    assert_eq!(flows[0]["ext_info"], EXT_INFO);
    assert_eq!(purse.ok_text("export --format jsonl"), purse.ok_text("export"), "jsonl is the default");

    let csv = purse.ok_text("export --format csv");
    let rows = parse_csv(&csv);
    let header: Vec<String> = rows[0].iter().map(|name| name.clone().unwrap()).collect();
    let mut expected_header: Vec<&str> = SCALARS.to_vec();
    expected_header.extend([
        "real_affected",
        "gift_affected",
        "pre_affected",
        "total_affected",
        "real_after",
        "gift_after",
        "pre_after",
        "total_after",
    ]);
    assert_eq!(header, expected_header);
    assert_eq!(rows.len(), 1 + flows.len());
    for (row, flow) in rows[1..].iter().zip(&flows) {
        assert_eq!(row, &csv_row_of(flow), "{flow}");
    }
    // The exact text of the first rows: quoting, doubled quotes, null as an empty field.
    let first_row = "1,CHARGE,alice,K1,b1,,,r1,c-1,2026-01-01 10:00:00,100.00,100.00,\
        \"first, \"\"quoted\"\"\nsecond line\",\"{\"\"note\"\": \"\"say \\\"\"hi\\\"\"\"\", \"\"n\"\": [1, 2]}\",,\
        100.00,0.00,0.00,100.00,100.00,0.00,0.00,100.00\r\n";
    assert!(csv.starts_with(&format!("{}\r\n{first_row}", expected_header.join(","))), "{csv}");
}

#[test]
fn export_filters_by_type_and_window() {
    let purse = ledger();
    let cases = [
        ("--flow-type CHARGE", vec!["1", "4", "6"]),
        ("--flow-type import --flow-type DEDUCT", vec!["2", "5"]),
        ("--flow-type IMPORT,DEDUCT", vec!["2", "5"]),
        // [start, end): the CHARGE at exactly the end is left out.
        ("--start-time '2026-01-02 00:00:00' --end-time '2026-01-05 10:00:00'", vec!["2", "4"]),
        ("--end-time '2026-01-01 00:00:00'", vec!["5"]),
        ("--start-time '2026-01-03 10:00:00' --flow-type CHARGE", vec!["4", "6"]),
        ("--flow-type HOLD", vec![]),
    ];
    for (options, expect) in cases {
        assert_eq!(purse.flow_ids(options), expect, "{options}");
        let csv = purse.ok_text(&format!("export --format csv {options}"));
        let ids: Vec<String> = parse_csv(&csv)[1..].iter().map(|row| row[0].clone().unwrap()).collect();
        assert_eq!(ids, expect, "csv {options}");
    }
    let refusals = [
        ("export --flow-type REFUND", "INVALID_ARGUMENT", 1, "--flow-type"),
        ("export --start-time yesterday", "INVALID_ARGUMENT", 1, "--start-time"),
        (
            "export --start-time '2026-01-02 00:00:00' --end-time '2026-01-01 00:00:00'",
            "INVALID_ARGUMENT",
            1,
            "start_time",
        ),
        ("export --format xml", "INVALID_ARGUMENT", 2, "--format"),
    ];
    for (line, code, exit, names) in refusals {
        let message = purse.fails(line, code, exit);
        assert!(message.contains(names), "{line}: {message}");
    }
}

/// `[REAL, GIFT, PRE, TOTAL]` of a property list, checking the names' order.
fn values(list: &Value) -> Vec<&str> {
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|entry| entry["type"].as_str().unwrap()).collect();
    assert_eq!(names, ["REAL", "GIFT", "PRE", "TOTAL"], "{list}");
    list.as_array().unwrap().iter().map(|entry| entry["value"].as_str().unwrap()).collect()
}

#[test]
fn statements_with_and_without_backdated_flows() {
    let purse = ledger();
    let window = "statement --account-id alice --start-time '2026-01-02 00:00:00' --end-time '2026-01-06 00:00:00'";
    let statement = purse.ok(window);
    assert_eq!(statement["account_id"], "alice");
    assert_eq!(statement["start_time"], "2026-01-02 00:00:00");
    assert_eq!(statement["end_time"], "2026-01-06 00:00:00");
    assert_eq!(values(&statement["opening"]), ["100.00", "0.00", "0.00", "100.00"]);
    assert_eq!(values(&statement["closing"]), ["90.00", "0.00", "0.00", "90.00"]);
    let types: Vec<&String> = statement["by_flow_type"].as_object().unwrap().keys().collect();
    assert_eq!(types, ["CHARGE", "DEDUCT"]);
    assert_eq!(statement["by_flow_type"]["CHARGE"]["count"], 1);
    assert_eq!(values(&statement["by_flow_type"]["CHARGE"]["affected"]), ["20.00", "0.00", "0.00", "20.00"]);
    assert_eq!(statement["by_flow_type"]["DEDUCT"]["count"], 1);
    assert_eq!(values(&statement["by_flow_type"]["DEDUCT"]["affected"]), ["-30.00", "0.00", "0.00", "-30.00"]);
    assert_eq!((&statement["flows_count"], &statement["backdated"]), (&json!(2), &json!(false)));

    // An IMPORT written now with an order_time before all of alice's flows: the closing
    // balance (after her last flow in log order before the end) holds it, the window does not,
    // so the opening does: 95 − (−10) = 105, not the 100 left after her last flow before the start.
    purse.ok("import --request-id r7 --outer-order-id i-2 --account-id alice --real-value 5 \
         --order-time '2025-12-01 00:00:00'");
    let statement = purse.ok(window);
    assert_eq!(values(&statement["opening"]), ["105.00", "0.00", "0.00", "105.00"]);
    assert_eq!(values(&statement["closing"]), ["95.00", "0.00", "0.00", "95.00"]);
    assert_eq!((&statement["flows_count"], &statement["backdated"]), (&json!(2), &json!(true)));

    // A window before the account's first flow: all zero, nothing backdated.
    let empty =
        purse.ok("statement --account-id bob --start-time '2020-01-01 00:00:00' --end-time '2021-01-01 00:00:00'");
    assert_eq!(values(&empty["opening"]), ["0.00", "0.00", "0.00", "0.00"]);
    assert_eq!(values(&empty["closing"]), ["0.00", "0.00", "0.00", "0.00"]);
    assert_eq!(
        (&empty["by_flow_type"], &empty["flows_count"], &empty["backdated"]),
        (&json!({}), &json!(0), &json!(false))
    );

    let refusals = [
        (
            "--account-id alice --start-time '2026-01-02 00:00:00' --end-time '2026-01-02 00:00:00'",
            "INVALID_ARGUMENT",
            1,
            "--start-time",
        ),
        (
            "--account-id alice --start-time '2026-01-03 00:00:00' --end-time '2026-01-02 00:00:00'",
            "INVALID_ARGUMENT",
            1,
            "--end-time",
        ),
        (
            "--account-id nobody --start-time '2026-01-01 00:00:00' --end-time '2026-01-02 00:00:00'",
            "ACCOUNT_NOT_FOUND",
            1,
            "nobody",
        ),
        (
            "--account-id alice --start-time 2026-01-01 --end-time '2026-01-02 00:00:00'",
            "INVALID_ARGUMENT",
            1,
            "--start-time",
        ),
        ("--account-id alice --start-time '2026-01-01 00:00:00'", "INVALID_ARGUMENT", 2, "--end-time"),
    ];
    for (options, code, exit, names) in refusals {
        let message = purse.fails(&format!("statement {options}"), code, exit);
        assert!(message.contains(names), "{options}: {message}");
    }
}

fn ids(page: &Value) -> Vec<&str> {
    page["accounts"].as_array().unwrap().iter().map(|account| account["account_id"].as_str().unwrap()).collect()
}

#[test]
fn accounts_by_page_brand_status_and_card() {
    let purse = ledger();
    purse.ok("freeze --request-id r7 --outer-order-id f-1 --account-id bob --remark 'lost card'");
    let cases = [
        ("", 3, vec!["alice", "bob", "carol"]),
        ("--page-size 2", 3, vec!["alice", "bob"]),
        ("--page-size 2 --page-no 2", 3, vec!["carol"]),
        ("--page-size 2 --page-no 3", 3, vec![]),
        ("--brand-id b1", 2, vec!["alice", "carol"]),
        ("--brand-id b9", 0, vec![]),
        ("--status FROZEN", 1, vec!["bob"]),
        ("--status active --brand-id b1 --page-size 1 --page-no 2", 2, vec!["carol"]),
    ];
    for (options, total, expect) in cases {
        let page = purse.ok(&format!("accounts {options}"));
        assert_eq!((page["total_count"].as_u64().unwrap(), ids(&page)), (total, expect), "{options}");
    }
    let page = purse.ok("accounts --page-size 5000");
    assert_eq!((&page["page_no"], &page["page_size"]), (&json!(1), &json!(5000)));
    for account in page["accounts"].as_array().unwrap() {
        let shown = purse.ok(&format!("account --account-id {}", account["account_id"].as_str().unwrap()));
        assert_eq!(account, &shown, "each entry is what `account` prints");
    }

    assert_eq!(purse.ok("account --card-id K2"), purse.ok("account --account-id carol"));
    let message = purse.fails("account --card-id K1", "INVALID_ARGUMENT", 1);
    assert!(message.contains("2 accounts (\"alice\", \"bob\")"), "{message}");
    let message = purse.fails("account --card-id K9", "ACCOUNT_NOT_FOUND", 1);
    assert!(message.contains("K9"), "{message}");
    let refusals = [
        ("account --card-id K2 --account-id carol", 2, "--card-id"),
        ("account", 2, "--account-id"),
        ("accounts --status OPEN", 1, "--status"),
        ("accounts --page-no 0", 2, "--page-no"),
        ("accounts --page-size 0", 2, "--page-size"),
        ("accounts --page-size 5001", 2, "--page-size"),
    ];
    for (line, exit, names) in refusals {
        let message = purse.fails(line, "INVALID_ARGUMENT", exit);
        assert!(message.contains(names), "{line}: {message}");
    }
    assert_eq!(purse.ok("verify")["ok"], true, "the card index passes verify");
}

#[test]
fn liability_is_the_sum_of_the_accounts() {
    let purse = ledger();
    purse.ok("hold --request-id r7 --outer-order-id h-1 --account-id bob --value 12.50");
    purse.ok("charge --request-id r8 --outer-order-id c-4 --account-id dave --real-value 1 --pre-value 0.25");
    let mut liability = purse.ok("liability");
    // Without --at: now, and the expiring windows count from the wall clock (checked below).
    assert_eq!(liability["at"], Value::Null);
    let nothing = json!({"gift_value": "0.00", "pre_value": "0.00"});
    for brand in liability["by_brand"].as_array_mut().unwrap() {
        let brand = brand.as_object_mut().unwrap();
        assert_eq!(brand.remove("expiring").unwrap()["within_90_days"], nothing, "{brand:?}");
        assert!(brand.remove("accounts").unwrap().as_u64().is_some());
    }
    let expiring = liability["total"].as_object_mut().unwrap().remove("expiring").unwrap();
    assert_eq!((&expiring["within_7_days"], &expiring["expired_unswept"]), (&nothing, &nothing));
    liability.as_object_mut().unwrap().remove("at");
    let sum = |real: &str, pre: &str, held: &str, total: &str| json!({"real_value": real, "gift_value": "0.00", "pre_value": pre, "held_value": held, "total_value": total});
    let with_brand = |brand: Value, sum: Value| {
        let mut entry = json!({"brand_id": brand});
        entry.as_object_mut().unwrap().extend(sum.as_object().unwrap().clone());
        entry
    };
    let expect = json!({
        "accounts": 4,
        "total": sum("151.00", "0.25", "12.50", "151.25"),
        "by_brand": [
            with_brand(Value::Null, sum("1.00", "0.25", "0.00", "1.25")),
            with_brand(json!("b1"), sum("100.00", "0.00", "0.00", "100.00")),
            with_brand(json!("b2"), sum("50.00", "0.00", "12.50", "50.00")),
        ],
    });
    assert_eq!(liability, expect);
    // The same, summed here from `accounts`, in minor units.
    let page = purse.ok("accounts --page-size 5000");
    let minor = |text: &str| -> i64 { text.replace('.', "").parse().unwrap() };
    let field = |name: &str| -> i64 {
        page["accounts"].as_array().unwrap().iter().map(|account| minor(account[name].as_str().unwrap())).sum()
    };
    assert_eq!(page["total_count"], liability["accounts"]);
    assert_eq!(field("real_value"), minor(liability["total"]["real_value"].as_str().unwrap()));
    assert_eq!(field("pre_value"), minor(liability["total"]["pre_value"].as_str().unwrap()));
    assert_eq!(field("held_total_value"), minor(liability["total"]["held_value"].as_str().unwrap()));
    assert_eq!(field("total_value"), minor(liability["total"]["total_value"].as_str().unwrap()));
    assert_eq!(purse.ok("verify")["ok"], true, "the liability passes verify");
}

#[test]
fn liability_at_a_time_and_what_will_expire() {
    let purse = Purse::new();
    purse.ok("charge --request-id r1 --outer-order-id c1 --account-id a --brand-id b1 --real-value 10 --gift-value 3 \
        --gift-expire-time '2026-10-05 00:00:00' --biz-date '2026-10-01 00:00:00'");
    purse.ok("charge --request-id r2 --outer-order-id c2 --account-id a --pre-value 4 \
        --pre-expire-time '2026-10-25 00:00:00' --biz-date '2026-10-02 00:00:00'");
    purse.ok("charge --request-id r3 --outer-order-id c3 --account-id b --gift-value 5 \
        --gift-expire-time '2026-12-20 00:00:00' --biz-date '2026-10-03 00:00:00'");
    purse.ok("deduct --request-id r4 --outer-order-id d1 --account-id a --value 4 --biz-date '2026-10-10 00:00:00'");
    let windows = |liability: &Value, which: &str| {
        let expiring = &liability["total"]["expiring"];
        [
            &expiring["within_7_days"],
            &expiring["within_30_days"],
            &expiring["within_90_days"],
            &expiring["expired_unswept"],
        ]
        .map(|sum| format!("{}/{}", sum["gift_value"].as_str().unwrap(), sum["pre_value"].as_str().unwrap()))
        .join(" ")
            + &format!(" {which}")
    };
    // On 10-02: a's gift lot (3) expires within 7 days, its PRE (4) within 30, b has nothing yet.
    let early = purse.ok("liability --at '2026-10-02 12:00:00'");
    assert_eq!(early["at"], "2026-10-02 12:00:00");
    assert_eq!((early["accounts"].as_u64(), early["total"]["total_value"].as_str()), (Some(1), Some("17.00")));
    assert_eq!(windows(&early, "early"), "3.00/0.00 3.00/4.00 3.00/4.00 0.00/0.00 early");
    // On 10-20: the deduct took PRE 4 first; a's gift is past its expiry, not swept; b's is 61 days off.
    let late = purse.ok("liability --at '2026-10-20 00:00:00'");
    assert_eq!((late["accounts"].as_u64(), late["total"]["total_value"].as_str()), (Some(2), Some("18.00")));
    assert_eq!(windows(&late, "late"), "0.00/0.00 0.00/0.00 5.00/0.00 3.00/0.00 late");
    let brands: Vec<(Value, Value)> = late["by_brand"]
        .as_array()
        .unwrap()
        .iter()
        .map(|brand| (brand["brand_id"].clone(), brand["accounts"].clone()))
        .collect();
    assert_eq!(brands, [(Value::Null, json!(1)), (json!("b1"), json!(1))]);
    // Before anything: nothing owed.
    let none = purse.ok("liability --at '2026-09-01 00:00:00'");
    assert_eq!((none["accounts"].as_u64(), none["total"]["total_value"].as_str()), (Some(0), Some("0.00")));
    purse.fails("liability --at yesterday", "INVALID_ARGUMENT", 1);
    // After a sweep at 10-20, now: the expired gift is gone; the liability at 10-20 is as it was.
    purse.ok("expire --now '2026-10-20 00:00:00'");
    assert_eq!(purse.ok("liability")["total"]["gift_value"], "5.00");
    assert_eq!(purse.ok("liability --at '2026-10-19 23:59:59'")["total"]["gift_value"], "8.00");
}

//! The built `purse` binary against a fresh data directory: what a shell script would see.

#[path = "support/purse.rs"]
mod purse;

use purse::{words, Purse};
use serde_json::{json, Value};
use std::process::Command;

/// `[REAL, GIFT, PRE, TOTAL]` of a property list, checking the order of the names.
fn values(flow: &Value, list: &str) -> [String; 4] {
    let entries = flow[list].as_array().unwrap_or_else(|| panic!("{list} missing in {flow}"));
    let names: Vec<&str> = entries.iter().map(|entry| entry["type"].as_str().unwrap()).collect();
    assert_eq!(names, ["REAL", "GIFT", "PRE", "TOTAL"], "{flow}");
    let value = |index: usize| entries[index]["value"].as_str().unwrap().to_owned();
    [value(0), value(1), value(2), value(3)]
}

fn check_flow(flow: &Value, flow_type: &str, affected: [&str; 4], after: [&str; 4]) {
    assert_eq!(flow["flow_type"], flow_type, "{flow}");
    assert_eq!(values(flow, "affected_property_list"), affected.map(str::to_owned), "{flow}");
    assert_eq!(values(flow, "after_property_list"), after.map(str::to_owned), "{flow}");
    assert_eq!(flow["order_value"], affected[3], "{flow}");
    assert_eq!(flow["current_value"], after[3], "{flow}");
}

const RULES: &str = r#"{"deduction_order": "PERCENT_DEDUCT", "gift_type": "CUSTOMIZED",
    "tiers": [{"real_value": 100, "gift_value": "20.00"}]}"#;

const CHARGE: &str = "charge --request-id r-1 --outer-order-id c-1 --account-id alice --brand-id b1 \
    --real-value 100 --trigger-gift --biz-date '2026-11-23 09:30:00' --ext-info '{\"till\": 3}'";
const DEDUCT: &str = "deduct --request-id r-2 --outer-order-id d-1 --account-id alice --value 60";
const PARTIAL_REFUND: &str =
    "undeduct --request-id r-3 --outer-order-id d-1 --new-outer-order-id u-1 --account-id alice --value 30";

#[test]
fn a_day_at_the_counter() {
    let purse = Purse::new();
    set_brand_rules(&purse);
    let (charge_text, refund_text) = charge_spend_and_give_back(&purse);
    replays_and_conflicts(&purse, &charge_text, &refund_text);
    queries_see_the_same_flows(&purse, &charge_text, &refund_text);
    let verify = purse.ok("verify");
    assert_eq!(verify["ok"], true, "{verify}");
}

fn set_brand_rules(purse: &Purse) {
    let path = purse.dir.path().join("rules.json");
    std::fs::write(&path, RULES).unwrap();
    let rules = purse.ok(&format!("rules set --brand-id b1 '{}'", path.display()));
    let expect = json!({"deduction_order": "PERCENT_DEDUCT", "gift_type": "CUSTOMIZED",
        "full_gift_switch": false, "tiers": [{"real_value": "100.00", "gift_value": "20.00"}], "gift_valid_days": null});
    assert_eq!(rules, expect);
    assert_eq!(purse.ok("rules get --brand-id b1"), expect);
}

/// Returns the exact stdout of the charge and of the partial refund.
fn charge_spend_and_give_back(purse: &Purse) -> (String, String) {
    let charge_text = purse.ok_text(CHARGE);
    let charge: Value = serde_json::from_str(&charge_text).unwrap();
    check_flow(&charge, "CHARGE", ["100.00", "20.00", "0.00", "120.00"], ["100.00", "20.00", "0.00", "120.00"]);
    assert_eq!(charge["order_time"], "2026-11-23 09:30:00");
    assert_eq!(charge["ext_info"], r#"{"till": 3}"#);
    assert_eq!(charge["card_id"], Value::Null);

    // 60 of 120 split in proportion: GIFT 60·20/120 = 10, REAL 50.
    let deduct = purse.ok(DEDUCT);
    check_flow(&deduct, "DEDUCT", ["-50.00", "-10.00", "0.00", "-60.00"], ["50.00", "10.00", "0.00", "60.00"]);

    // A partial refund of 30 splits like the deduction: GIFT 5, REAL 25. Then the rest.
    let refund_text = purse.ok_text(PARTIAL_REFUND);
    let refund: Value = serde_json::from_str(&refund_text).unwrap();
    check_flow(&refund, "UNDEDUCT", ["25.00", "5.00", "0.00", "30.00"], ["75.00", "15.00", "0.00", "90.00"]);
    assert_eq!(refund["outer_order_id"], "u-1");
    let rest = purse.ok("undeduct --request-id r-4 --outer-order-id d-1 --new-outer-order-id u-2 --account-id alice");
    check_flow(&rest, "UNDEDUCT", ["25.00", "5.00", "0.00", "30.00"], ["100.00", "20.00", "0.00", "120.00"]);
    let too_much = "undeduct --request-id r-5 --outer-order-id d-1 --new-outer-order-id u-3 --account-id alice \
        --value 0.01";
    purse.fails(too_much, "REFUND_EXCEEDS_ORIGINAL", 1);

    let uncharge =
        purse.ok("uncharge --request-id r-6 --outer-order-id x-1 --src-outer-order-id c-1 --account-id alice");
    check_flow(&uncharge, "UNCHARGE", ["-100.00", "-20.00", "0.00", "-120.00"], ["0.00", "0.00", "0.00", "0.00"]);

    // Overdraft: refused with the error document on stderr, nothing on stdout, nothing written.
    let overdraft = "deduct --request-id r-7 --outer-order-id d-2 --account-id alice --value 0.01";
    let message = purse.fails(overdraft, "INSUFFICIENT_BALANCE", 1);
    assert!(message.contains("alice"), "{message}");
    (charge_text, refund_text)
}

fn replays_and_conflicts(purse: &Purse, charge_text: &str, refund_text: &str) {
    // Replays answer byte for byte, even after the account moved on.
    assert_eq!(purse.ok_text(CHARGE), charge_text);
    assert_eq!(purse.ok_text(PARTIAL_REFUND), refund_text);
    purse.fails(&DEDUCT.replace("--value 60", "--value 61"), "IDEMPOTENCY_CONFLICT", 1);
    purse.fails("deduct --request-id r-8 --outer-order-id d-1 --account-id alice --value 1", "DUPLICATE_ORDER", 1);
}

fn queries_see_the_same_flows(purse: &Purse, charge_text: &str, refund_text: &str) {
    assert_eq!(purse.ok_text("flow --outer-order-id u-1"), refund_text);
    let charge: Value = serde_json::from_str(charge_text).unwrap();
    assert_eq!(purse.ok_text(&format!("flow --flow-id {}", charge["flow_id"].as_str().unwrap())), charge_text);
    let account = purse.ok("account --account-id alice");
    let expect = json!({"account_id": "alice", "card_id": null, "brand_id": "b1", "real_value": "0.00",
        "gift_value": "0.00", "pre_value": "0.00", "total_value": "0.00", "real_value_total": "0.00",
        "gift_value_total": "0.00", "pre_value_total": "0.00", "status": "ACTIVE", "held_real_value": "0.00",
        "held_gift_value": "0.00", "held_pre_value": "0.00", "held_total_value": "0.00",
        "available_total_value": "0.00", "expiring": []});
    assert_eq!(account, expect);
    let page = purse.ok("flows --account-id alice");
    assert_eq!(page["total_count"], 5);
    let types: Vec<&str> =
        page["flows"].as_array().unwrap().iter().map(|flow| flow["flow_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["CHARGE", "DEDUCT", "UNDEDUCT", "UNDEDUCT", "UNCHARGE"]);
    let refunds = purse.ok("flows --account-id alice --flow-type UNDEDUCT --page-size 1 --page-no 2");
    assert_eq!(
        [&refunds["total_count"], &refunds["page_no"], &refunds["page_size"]],
        [&json!(2), &json!(2), &json!(1)]
    );
    assert_eq!(refunds["flows"][0]["outer_order_id"], "u-2");
}

#[test]
fn import_and_adjust_take_signed_and_past_values() {
    let purse = Purse::new();
    let import = purse
        .ok("import --request-id i --outer-order-id i-1 --account-id bob --real-value 10 --pre-value 2.5 \
         --order-time '2019-08-01 15:14:31'");
    check_flow(&import, "IMPORT", ["10.00", "0.00", "2.50", "12.50"], ["10.00", "0.00", "2.50", "12.50"]);
    assert_eq!(import["order_time"], "2019-08-01 15:14:31");
    let adjust = purse
        .ok("adjust --request-id a --outer-order-id a-1 --account-id bob --real-value -5 --pre-value -0.50 \
         --remark '-5: till count was short'");
    check_flow(&adjust, "ADJUST", ["-5.00", "0.00", "-0.50", "-5.50"], ["5.00", "0.00", "2.00", "7.00"]);
    assert_eq!(adjust["remark"], "-5: till count was short");
    purse.fails("adjust --request-id b --outer-order-id a-2 --account-id bob --real-value 1", "INVALID_ARGUMENT", 1);
}

#[test]
fn errors_are_json_on_stderr() {
    let purse = Purse::new();
    let charge = "charge --request-id r --outer-order-id c --account-id a --real-value";
    let message = purse.fails(&format!("{charge} 0.001"), "INVALID_AMOUNT", 1);
    assert_eq!(message, "--real-value: \"0.001\" has more than 2 decimals");
    let table: &[(&str, &str, i32)] = &[
        ("charge --request-id r --outer-order-id c --account-id a --real-value 1e99", "INVALID_AMOUNT", 1),
        ("charge --request-id r --outer-order-id c --account-id a --real-value 0", "INVALID_AMOUNT", 1),
        ("charge --request-id r --outer-order-id c --account-id a --real-value 1 --ext-info {", "INVALID_ARGUMENT", 1),
        ("deduct --request-id r --outer-order-id c --account-id nobody --value 1", "ACCOUNT_NOT_FOUND", 1),
        ("account --account-id nobody", "ACCOUNT_NOT_FOUND", 1),
        ("flow --outer-order-id nothing", "ORDER_NOT_FOUND", 1),
        ("flows --account-id a --flow-type REFUND", "INVALID_ARGUMENT", 1),
        // Malformed command lines: clap's reason in the same document, exit 2.
        ("flows --account-id a --page-size 5001", "INVALID_ARGUMENT", 2),
        ("deduct --request-id r --oops", "INVALID_ARGUMENT", 2),
        ("refund", "INVALID_ARGUMENT", 2),
        ("rules", "INVALID_ARGUMENT", 2),
        ("--time-zone +8 verify", "INVALID_ARGUMENT", 2),
    ];
    for (line, code, exit) in table {
        purse.fails(line, code, *exit);
    }
}

#[test]
fn bad_rules_files_are_refused() {
    let purse = Purse::new();
    let path = purse.dir.path().join("bad-rules.json");
    let table: &[(&str, &str, &str)] = &[
        (r#"{"gift_typ": "CUSTOMIZED"}"#, "INVALID_ARGUMENT", "gift_typ"),
        (
            r#"{"gift_type": "CUSTOMIZED", "tiers": [{"real_value": 100.001, "gift_value": 1}]}"#,
            "INVALID_AMOUNT",
            "100.001",
        ),
        (r#"{"deduction_order": "SIDEWAYS"}"#, "INVALID_ARGUMENT", "SIDEWAYS"),
        ("{", "INVALID_ARGUMENT", "not valid JSON"),
    ];
    for (json, code, fragment) in table {
        std::fs::write(&path, json).unwrap();
        let message = purse.fails(&format!("rules set '{}'", path.display()), code, 1);
        assert!(message.contains(fragment), "{json}: {message}");
    }
    purse.fails("rules set /nonexistent/purse/rules.json", "INVALID_ARGUMENT", 1);
}

#[test]
fn help_and_version_are_plain_and_succeed() {
    let purse = Purse::new();
    for line in ["--help", "charge --help", "--version"] {
        let output = purse.run(line);
        assert!(output.status.success(), "{line}: {output:?}");
        assert!(!output.stdout.is_empty(), "{line}");
    }
}

#[test]
fn data_dir_from_env_and_a_new_ledgers_units() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("yen");
    let run = |line: &str| {
        Command::new(env!("CARGO_BIN_EXE_purse"))
            .env("PURSE_DATA", &data)
            .args(words(line))
            .output()
            .expect("run purse")
    };
    let created = run("--scale 0 --time-zone -05:00 charge --request-id r --outer-order-id c --account-id a \
        --real-value 15 --biz-date '2026-01-01 00:00:00'");
    assert!(created.status.success(), "{created:?}");
    let flow: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(flow["current_value"], "15");
    assert_eq!(flow["order_time"], "2026-01-01 00:00:00");
    assert!(data.is_dir(), "PURSE_DATA was not used");
    // Later invocations keep the ledger's own scale without being told.
    let refused = run("deduct --request-id r2 --outer-order-id d --account-id a --value 1.5");
    assert_eq!(refused.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(error["error"]["code"], "INVALID_AMOUNT");
}

//! spec §11–§12 through the binary: expiring credits, the sweep, CLEAR and the account as it
//! stood, as a shell script would see them.

#[path = "support/purse.rs"]
mod purse;

use purse::Purse;
use serde_json::{json, Value};

fn gift_after(flow: &Value) -> &str {
    flow["after_property_list"][1]["value"].as_str().unwrap()
}

#[test]
fn a_card_programs_month_of_expiry() {
    let purse = Purse::new();
    let rules = purse.dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"gift_type": "CUSTOMIZED", "tiers": [{"real_value": "100", "gift_value": "10"}], "gift_valid_days": 30}"#,
    )
    .unwrap();
    assert_eq!(purse.ok(&format!("rules set '{}'", rules.display()))["gift_valid_days"], 30);
    purse.fails(&format!("rules set '{}'", write(&purse, r#"{"gift_valid_days": 0}"#)), "INVALID_ARGUMENT", 1);
    purse.fails(&format!("rules set '{}'", write(&purse, r#"{"gift_valid_days": 1.5}"#)), "INVALID_ARGUMENT", 1);

    // The rule's gift expires 30 days after the charge; the PRE given here on 2027-01-20.
    let charge = purse.ok("charge --request-id r1 --outer-order-id c1 --account-id m --real-value 100 --trigger-gift \
        --pre-value 5 --pre-expire-time '2027-01-20 00:00:00' --biz-date '2026-12-01 10:00:00'");
    assert_eq!(gift_after(&charge), "10.00");
    purse.ok(
        "charge --request-id r2 --outer-order-id c2 --account-id m --gift-value 4 --biz-date '2026-12-05 10:00:00' \
        --gift-expire-time '2027-06-01 00:00:00'",
    );
    let account = purse.ok("account --account-id m");
    assert_eq!(
        account["expiring"],
        json!([
            {"bucket": "GIFT", "value": "10.00", "expire_time": "2026-12-31 10:00:00"},
            {"bucket": "PRE", "value": "5.00", "expire_time": "2027-01-20 00:00:00"},
            {"bucket": "GIFT", "value": "4.00", "expire_time": "2027-06-01 00:00:00"},
        ])
    );

    // The sweep on the 31st takes the first gift, once.
    let swept = purse.ok("expire --now '2026-12-31 10:00:00'");
    let flows = swept["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "{swept}");
    assert_eq!(flows[0]["flow_type"], "EXPIRE");
    assert_eq!(flows[0]["request_id"], "expire:2026-12-31 10:00:00:m");
    assert_eq!(flows[0]["outer_order_id"], "expire:2026-12-31 10:00:00:m");
    assert_eq!(flows[0]["remark"], "EXPIRED");
    assert_eq!(flows[0]["order_time"], "2026-12-31 10:00:00");
    assert_eq!(flows[0]["affected_property_list"][1]["value"], "-10.00");
    assert_eq!(purse.ok("expire --now '2026-12-31 10:00:00'"), json!({"flows": []}));
    assert_eq!(purse.ok("expire --now '2026-12-31 10:00:00' --account-id m"), json!({"flows": []}));
    purse.fails("expire --now '2026-12-31 10:00:00' --account-id nobody", "ACCOUNT_NOT_FOUND", 1);
    purse.fails("expire --now tomorrow", "INVALID_ARGUMENT", 1);
    purse.fails(
        "charge --request-id r9 --outer-order-id expire:x --account-id m --real-value 1",
        "INVALID_ARGUMENT",
        1,
    );

    // As it stood: after entry 2 (the rules took entry 1), and on 2026-12-02.
    let then = purse.ok("account --account-id m --as-of-flow-id 2");
    assert_eq!((then["gift_value"].as_str(), then["total_value"].as_str()), (Some("10.00"), Some("115.00")));
    assert_eq!(purse.ok("account --account-id m --at '2026-12-02 00:00:00'"), then);
    assert_eq!(purse.ok("account --account-id m --at '2027-01-01 00:00:00'"), purse.ok("account --account-id m"));
    purse.fails("account --account-id m --at '2026-11-30 00:00:00'", "ACCOUNT_NOT_FOUND", 1);
    purse.fails("account --account-id m --as-of-flow-id 99", "INVALID_ARGUMENT", 1);

    // CLEAR: REAL never; GIFT with a remark; then nothing is left to clear.
    purse.fails(
        "clear --request-id k0 --outer-order-id k0 --account-id m --bucket REAL --remark x",
        "INVALID_ARGUMENT",
        1,
    );
    purse.fails("clear --request-id k1 --outer-order-id k1 --account-id m --bucket GIFT", "INVALID_ARGUMENT", 1);
    let clear =
        purse.ok("clear --request-id k2 --outer-order-id k2 --account-id m --bucket gift --remark 'promo over'");
    assert_eq!((clear["flow_type"].as_str(), gift_after(&clear)), (Some("CLEAR"), "0.00"));
    purse.fails(
        "clear --request-id k3 --outer-order-id k3 --account-id m --bucket GIFT --remark again",
        "INVALID_ARGUMENT",
        1,
    );
    assert_eq!(
        purse.ok("account --account-id m")["expiring"],
        json!([{"bucket": "PRE", "value": "5.00", "expire_time": "2027-01-20 00:00:00"}])
    );
    assert_eq!(purse.ok("verify")["ok"], true);
}

#[test]
fn a_sweep_on_a_missing_ledger_creates_nothing() {
    let purse = Purse::new();
    purse.fails("expire --now '2026-12-31 10:00:00'", "INVALID_ARGUMENT", 1);
    assert!(!purse.data().exists());
}

fn write(purse: &Purse, text: &str) -> String {
    let path = purse.dir.path().join(format!("rules-{}.json", text.len()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

//! Golden documents: key order, `null`s and amount text are part of the contract.

use purse_core::{Buckets, Flow, FlowDetail, FlowType, RuleSet, RuleSetText, Scale, Zone};
use purse_ledger::{AccountView, FlowPage, VerifyReport, WideBuckets};

use super::{to_text, AccountJson, FlowJson, FlowPageJson, LiabilityJson, RulesJson, StatementJson, VerifyJson};

fn check(name: &str, got: String, expect: &str) {
    assert_eq!(got, expect, "{name}: got\n{got}");
}

fn deduct_detail() -> FlowDetail {
    let flow = Flow {
        lots: Vec::new(),
        flow_id: 7,
        flow_type: FlowType::Deduct,
        request_id: "r-7".into(),
        outer_order_id: "o-7".into(),
        account_id: "acct".into(),
        card_id: Some("card".into()),
        brand_id: None,
        shop_id: None,
        operator_id: Some("op".into()),
        source_order_id: None,
        order_time: Zone::CHINA.parse_local("2026-11-23 12:00:00").unwrap(),
        before: Buckets::from_minor(6667, 3333, 0),
        affected: Buckets::from_minor(-667, -333, 0),
        held: Buckets::ZERO,
        expire_time: None,
        counterparty: None,
        remark: None,
        ext_info: Some("{\"a\": 1.50}".into()),
        source: None,
    };
    flow.detail(Scale::CNY, Zone::CHINA).unwrap()
}

const DEDUCT_JSON: &str = r#"{
  "flow_id": "7",
  "flow_type": "DEDUCT",
  "account_id": "acct",
  "card_id": "card",
  "brand_id": null,
  "shop_id": null,
  "operator": "op",
  "request_id": "r-7",
  "outer_order_id": "o-7",
  "order_time": "2026-11-23 12:00:00",
  "order_value": "-10.00",
  "current_value": "90.00",
  "affected_property_list": [
    {
      "type": "REAL",
      "value": "-6.67"
    },
    {
      "type": "GIFT",
      "value": "-3.33"
    },
    {
      "type": "PRE",
      "value": "0.00"
    },
    {
      "type": "TOTAL",
      "value": "-10.00"
    }
  ],
  "before_property_list": [
    {
      "type": "REAL",
      "value": "66.67"
    },
    {
      "type": "GIFT",
      "value": "33.33"
    },
    {
      "type": "PRE",
      "value": "0.00"
    },
    {
      "type": "TOTAL",
      "value": "100.00"
    }
  ],
  "after_property_list": [
    {
      "type": "REAL",
      "value": "60.00"
    },
    {
      "type": "GIFT",
      "value": "30.00"
    },
    {
      "type": "PRE",
      "value": "0.00"
    },
    {
      "type": "TOTAL",
      "value": "90.00"
    }
  ],
  "remark": null,
  "ext_info": "{\"a\": 1.50}",
  "held_property_list": [
    {
      "type": "REAL",
      "value": "0.00"
    },
    {
      "type": "GIFT",
      "value": "0.00"
    },
    {
      "type": "PRE",
      "value": "0.00"
    },
    {
      "type": "TOTAL",
      "value": "0.00"
    }
  ],
  "src_outer_order_id": null
}
"#;

#[test]
fn flow_detail_golden() {
    let detail = deduct_detail();
    check("flow detail", to_text(&FlowJson::new(&detail)), DEDUCT_JSON);
}

#[test]
fn flow_page_wraps_details() {
    let details = [deduct_detail()];
    let page = FlowPage { total_count: 41, page_no: 3, page_size: 20, flows: vec![] };
    let got = to_text(&FlowPageJson::new(&page, &details));
    let indented: String = DEDUCT_JSON.trim_end().lines().map(|line| format!("    {line}\n")).collect();
    let expect = format!(
        "{{\n  \"total_count\": 41,\n  \"page_no\": 3,\n  \"page_size\": 20,\n  \"flows\": [\n{}  ]\n}}\n",
        indented
    );
    check("flow page", got, &expect);
    let empty = FlowPage { total_count: 0, page_no: 1, page_size: 20, flows: vec![] };
    let expect = "{\n  \"total_count\": 0,\n  \"page_no\": 1,\n  \"page_size\": 20,\n  \"flows\": []\n}\n";
    check("empty page", to_text(&FlowPageJson::new(&empty, &[])), expect);
}

#[test]
fn account_documents() {
    let opened = AccountView {
        account_id: "acct".into(),
        card_id: Some("card".into()),
        brand_id: None,
        balance: Buckets::from_minor(6_000, 3_000, 5),
        held: Buckets::from_minor(1_000, 0, 5),
        lifetime: Buckets::from_minor(10_000, 5_000, 5),
        status: purse_core::AccountStatus::Frozen,
        expiring: vec![purse_ledger::Expiring {
            bucket: purse_core::Bucket::Gift,
            value: purse_core::Amount::from_minor(1_250),
            expire_time: Zone::CHINA.parse_local("2027-02-01 00:00:00").unwrap(),
        }],
    };
    let expect = r#"{
  "account_id": "acct",
  "card_id": "card",
  "brand_id": null,
  "real_value": "60.00",
  "gift_value": "30.00",
  "pre_value": "0.05",
  "total_value": "90.05",
  "real_value_total": "100.00",
  "gift_value_total": "50.00",
  "pre_value_total": "0.05",
  "status": "FROZEN",
  "held_real_value": "10.00",
  "held_gift_value": "0.00",
  "held_pre_value": "0.05",
  "held_total_value": "10.05",
  "available_total_value": "80.00",
  "expiring": [
    {
      "bucket": "GIFT",
      "value": "12.50",
      "expire_time": "2027-02-01 00:00:00"
    }
  ]
}
"#;
    check("account at scale 2", to_text(&AccountJson::new(&opened, Scale::CNY, Zone::CHINA)), expect);
    let yen = Scale::new(0).unwrap();
    let got = to_text(&AccountJson::new(&opened, yen, Zone::CHINA));
    assert!(got.contains("\"total_value\": \"9005\""), "{got}");
}

fn rules(text: RuleSetText) -> RuleSet {
    RuleSet::from_text(&text, Scale::CNY).unwrap()
}

#[test]
fn rules_documents() {
    let customized = RuleSetText {
        gift_valid_days: None,
        deduction_order: Some("REAL_BEFORE_GIFT_DEDUCT".into()),
        gift_type: Some("CUSTOMIZED".into()),
        full_gift_switch: Some(true),
        tiers: vec![("500".into(), "150".into()), ("100".into(), "20.5".into())],
    };
    let proportional = RuleSetText {
        gift_valid_days: Some(30),
        gift_type: Some("PROPORTIONAL".into()),
        tiers: vec![("100".into(), "1000".into())],
        ..RuleSetText::default()
    };
    let table: &[(&str, RuleSet, &str)] = &[
        (
            "defaults",
            RuleSet::default(),
            "{\n  \"deduction_order\": \"PERCENT_DEDUCT\",\n  \"gift_type\": null,\n  \"full_gift_switch\": null,\n  \"tiers\": [],\n  \"gift_valid_days\": null\n}\n",
        ),
        (
            "customized, tiers ascending",
            rules(customized),
            r#"{
  "deduction_order": "REAL_BEFORE_GIFT_DEDUCT",
  "gift_type": "CUSTOMIZED",
  "full_gift_switch": true,
  "tiers": [
    {
      "real_value": "100.00",
      "gift_value": "20.50"
    },
    {
      "real_value": "500.00",
      "gift_value": "150.00"
    }
  ],
  "gift_valid_days": null
}
"#,
        ),
        (
            "proportional, basis points as text",
            rules(proportional),
            r#"{
  "deduction_order": "PERCENT_DEDUCT",
  "gift_type": "PROPORTIONAL",
  "full_gift_switch": false,
  "tiers": [
    {
      "real_value": "100.00",
      "gift_value": "1000"
    }
  ],
  "gift_valid_days": 30
}
"#,
        ),
    ];
    for (name, rules, expect) in table {
        check(name, to_text(&RulesJson::new(rules, Scale::CNY)), expect);
    }
}

#[test]
fn verify_document() {
    let report = VerifyReport {
        entries: 12,
        flows: 10,
        accounts: 3,
        blocks: 2,
        repairs: vec!["1 removed snap.1.generating".into()],
        warnings: vec![],
    };
    let expect = "{\n  \"ok\": true,\n  \"entries\": 12,\n  \"flows\": 10,\n  \"accounts\": 3,\n  \"blocks\": 2,\n  \
                  \"repairs\": [\n    \"1 removed snap.1.generating\"\n  ],\n  \"warnings\": []\n}\n";
    check("verify", to_text(&VerifyJson::new(&report)), expect);
}

/// The history documents' key order, compact: `by_flow_type` keeps the ledger's type order
/// (CHARGE before ADJUST, which an alphabetical map would swap).
#[test]
fn history_documents() {
    use purse_core::Timestamp;
    use purse_ledger::{BrandLiability, FlowTypeSum, Liability, LiabilitySum, Statement};
    let start = Zone::CHINA.parse_local("2026-01-01 00:00:00").unwrap();
    let statement = Statement {
        account_id: "acct".into(),
        start_time: start,
        end_time: Timestamp(start.0 + 86_400),
        opening: Buckets::from_minor(1_000, 0, 0),
        closing: Buckets::from_minor(1_500, 0, 5),
        by_flow_type: vec![
            FlowTypeSum { flow_type: FlowType::Charge, count: 2, affected: Buckets::from_minor(600, 0, 0) },
            FlowTypeSum { flow_type: FlowType::Adjust, count: 1, affected: Buckets::from_minor(-100, 0, 5) },
        ],
        flows_count: 3,
        backdated: true,
    };
    let list = |real: &str, gift: &str, pre: &str, total: &str| {
        format!(
            r#"[{{"type":"REAL","value":"{real}"}},{{"type":"GIFT","value":"{gift}"}},{{"type":"PRE","value":"{pre}"}},{{"type":"TOTAL","value":"{total}"}}]"#
        )
    };
    let expect = format!(
        r#"{{"account_id":"acct","start_time":"2026-01-01 00:00:00","end_time":"2026-01-02 00:00:00","opening":{},"closing":{},"by_flow_type":{{"CHARGE":{{"count":2,"affected":{}}},"ADJUST":{{"count":1,"affected":{}}}}},"flows_count":3,"backdated":true}}"#,
        list("10.00", "0.00", "0.00", "10.00"),
        list("15.00", "0.00", "0.05", "15.05"),
        list("6.00", "0.00", "0.00", "6.00"),
        list("-1.00", "0.00", "0.05", "-0.95"),
    );
    let got = serde_json::to_string(&StatementJson::new(&statement, Scale::CNY, Zone::CHINA)).unwrap();
    check("statement", got, &expect);

    let wide = |real, gift| WideBuckets { real, gift, pre: 0 };
    let sum = |accounts, real, held| LiabilitySum {
        accounts,
        balance: wide(real, 50),
        held: wide(held, 0),
        expiring: [wide(0, 10), wide(0, 30), wide(0, 50)],
        expired_unswept: WideBuckets::default(),
    };
    // A ledger's total may pass what one amount holds: sums are wide.
    let beyond_i64 = i128::from(i64::MAX) + 1;
    let liability = Liability {
        at: None,
        windows_from: Zone::CHINA.parse_local("2026-12-01 00:00:00").unwrap(),
        total: sum(3, beyond_i64, 700),
        by_brand: vec![
            BrandLiability { brand_id: None, sum: sum(1, 1_000, 0) },
            BrandLiability { brand_id: Some("b1".into()), sum: sum(2, beyond_i64 - 1_000, 700) },
        ],
    };
    let windows = r#""expiring":{"from":"2026-12-01 00:00:00","within_7_days":{"gift_value":"0.10","pre_value":"0.00"},"within_30_days":{"gift_value":"0.30","pre_value":"0.00"},"within_90_days":{"gift_value":"0.50","pre_value":"0.00"},"expired_unswept":{"gift_value":"0.00","pre_value":"0.00"}}"#;
    let expect = format!(
        r#"{{"at":null,"accounts":3,"total":{{"real_value":"92233720368547758.08","gift_value":"0.50","pre_value":"0.00","held_value":"7.00","total_value":"92233720368547758.58",{windows}}},"by_brand":[{{"brand_id":null,"accounts":1,"real_value":"10.00","gift_value":"0.50","pre_value":"0.00","held_value":"0.00","total_value":"10.50",{windows}}},{{"brand_id":"b1","accounts":2,"real_value":"92233720368547748.08","gift_value":"0.50","pre_value":"0.00","held_value":"7.00","total_value":"92233720368547748.58",{windows}}}]}}"#
    );
    let got = serde_json::to_string(&LiabilityJson::new(&liability, Scale::CNY, Zone::CHINA)).unwrap();
    check("liability", got, &expect);
}

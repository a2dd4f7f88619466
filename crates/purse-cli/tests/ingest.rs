//! `purse ingest` as a shell script sees it: the sample exports in examples/ingest, the report,
//! the exit codes, re-ingestion, and all-or-nothing runs that leave the ledger as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

const PROVIDERS: [&str; 3] = ["kybio", "alsc", "zenlayer"];

/// Every account of the samples.
const ACCOUNTS: &[&str] = &[
    "7001",
    "7002",
    "7003",
    "677793671220529313",
    "2088000100",
    "2088000200",
    "2088000300",
    "cccbf4c0-12ab-417a-95ba-0bf8e60a55d1",
    "5d0e7a3b-4c1f-4e8a-9b2d-7f6a1c3e9d40",
    "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
];

struct Purse {
    dir: TempDir,
}

impl Purse {
    fn new() -> Purse {
        Purse { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_purse"));
        command.arg("--data").arg(self.dir.path().join("ledger")).env_remove("PURSE_DATA");
        command
    }

    fn run(&self, args: &[&str], files: &[PathBuf]) -> Output {
        self.command().args(args).args(files).output().expect("run purse")
    }

    /// `purse ingest`, which must finish (exit 0 or 3) with one report on stdout and nothing on
    /// stderr (no progress bar without a terminal).
    fn ingest(&self, args: &[&str], files: &[PathBuf], exit: i32) -> Value {
        let output = self.run(&[&["ingest"], args].concat(), files);
        assert_eq!(output.status.code(), Some(exit), "{args:?} {files:?}: {output:?}");
        assert!(output.stderr.is_empty(), "{args:?}: wrote to stderr: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout).expect("stdout is UTF-8");
        let report: Value = serde_json::from_str(&text).expect("stdout is one JSON document");
        check_shape(&text, &report);
        report
    }

    /// What `verify` and `account` say about every sample account: the ledger's visible state.
    fn state(&self) -> String {
        let mut state = String::new();
        let verify = self.run(&["verify"], &[]);
        assert!(verify.status.success(), "{verify:?}");
        state += &String::from_utf8_lossy(&verify.stdout);
        for account in ACCOUNTS {
            let output = self.run(&["account", "--account-id", account], &[]);
            state += &String::from_utf8_lossy(&output.stdout);
            state += &String::from_utf8_lossy(&output.stderr);
        }
        state
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write a test input");
        path
    }
}

fn examples(provider: &str) -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/ingest").join(provider);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&folder).expect("examples/ingest exists").map(|entry| entry.expect("entry").path()).collect();
    files.sort();
    assert!(!files.is_empty(), "{folder:?} holds samples");
    files
}

/// The report's keys, in the issue's order, and the keys of each entry.
fn check_shape(text: &str, report: &Value) {
    const KEYS: [&str; 9] = [
        "provider",
        "records",
        "applied",
        "duplicates",
        "opening_balances",
        "skipped",
        "rejected",
        "mismatches",
        "committed",
    ];
    assert_eq!(report.as_object().expect("an object").len(), KEYS.len(), "{text}");
    // serde_json's Value sorts keys; the printed order is checked on the text.
    let at: Vec<usize> = KEYS
        .iter()
        .map(|key| text.find(&format!("\n  \"{key}\":")).unwrap_or_else(|| panic!("{key}: {text}")))
        .collect();
    assert!(at.windows(2).all(|pair| pair[0] < pair[1]), "keys out of order: {text}");
    for count in ["records", "applied", "duplicates", "opening_balances"] {
        assert!(report[count].is_u64(), "{count}: {report}");
    }
    assert!(report["committed"].is_boolean());
    let entry_keys = |list: &str, expected: &[&str]| {
        for entry in report[list].as_array().expect("a list") {
            let mut keys: Vec<&str> = entry.as_object().expect("an object").keys().map(String::as_str).collect();
            let mut expected = expected.to_vec();
            keys.sort_unstable();
            expected.sort_unstable();
            assert_eq!(keys, expected, "{list}: {entry}");
            assert!(entry["index"].as_u64().expect("index") < report["records"].as_u64().unwrap());
        }
    };
    entry_keys("skipped", &["index", "record_id", "reason"]);
    entry_keys("rejected", &["index", "record_id", "code", "message"]);
    entry_keys("mismatches", &["index", "record_id", "account_id", "balance", "bucket", "provider", "ledger"]);
}

fn counts(report: &Value) -> [u64; 4] {
    ["records", "applied", "duplicates", "opening_balances"].map(|key| report[key].as_u64().expect(key))
}

#[test]
fn samples_report_exit_codes_and_reingestion() {
    let purse = Purse::new();
    // [records, applied, duplicates, opening balances], skipped, mismatches, exit.
    let expected: [([u64; 4], usize, usize, i32); 3] =
        [([9, 9, 0, 1], 0, 1, 3), ([11, 8, 0, 1], 3, 0, 0), ([13, 10, 0, 0], 3, 0, 0)];
    for (provider, (counted, skipped, mismatches, exit)) in PROVIDERS.into_iter().zip(expected) {
        let report = purse.ingest(&["--provider", provider], &examples(provider), exit);
        assert_eq!(report["provider"], provider);
        assert_eq!(counts(&report), counted, "{provider}: {report}");
        assert_eq!(report["skipped"].as_array().unwrap().len(), skipped, "{provider}: {report}");
        assert_eq!(report["rejected"], serde_json::json!([]), "{provider}: {report}");
        assert_eq!(report["mismatches"].as_array().unwrap().len(), mismatches, "{provider}: {report}");
        assert_eq!(report["committed"], true);
    }
    // The deliberate KYBIO mismatch: 61.60 spent between two recharges, not in the recharge log.
    let kybio = purse.ingest(&["--provider", "kybio"], &examples("kybio"), 3);
    let mismatch = &kybio["mismatches"][0];
    assert_eq!(mismatch["account_id"], "677793671220529313");
    assert_eq!(
        (&mismatch["bucket"], &mismatch["provider"], &mismatch["ledger"]),
        (&"TOTAL".into(), &"268.40".into(), &"330.00".into())
    );

    // Everything again: nothing is added, and the ledger looks exactly as before.
    let before = purse.state();
    for (provider, applied) in PROVIDERS.into_iter().zip([9, 8, 10]) {
        let exit = if provider == "kybio" { 3 } else { 0 };
        let report = purse.ingest(&["--provider", provider], &examples(provider), exit);
        assert_eq!(report["applied"], 0, "{provider}: {report}");
        assert_eq!(report["duplicates"], applied, "{provider}: {report}");
        assert_eq!(report["opening_balances"], 0, "{provider}: {report}");
    }
    assert_eq!(purse.state(), before);
    assert!(before.contains("\"total_value\": \"376.55\""), "{before}");
}

#[test]
fn a_bad_record_leaves_the_ledger_unchanged() {
    let purse = Purse::new();
    purse.ingest(&["--provider", "zenlayer"], &examples("zenlayer"), 0);
    let before = purse.state();
    let bad = purse.write(
        "bad.json",
        r#"{"requestId":"X","response":{"requestId":"X","totalCount":3,"dataSet":[
            {"transactionType":"RECHARGE","amount":10,"paymentMethod":"CREDIT_CARD","state":"PAY_SUCCESS","transactionTime":"2023-09-01T00:00:00Z","accountUid":"cccbf4c0-12ab-417a-95ba-0bf8e60a55d1","transactionId":"20000000000001"},
            {"transactionType":"DEDUCTION","amount":1.001,"paymentMethod":"BALANCE","state":"PAY_SUCCESS","transactionTime":"2023-09-02T00:00:00Z","accountUid":"cccbf4c0-12ab-417a-95ba-0bf8e60a55d1","transactionId":"20000000000002"},
            {"transactionType":"DEDUCTION","amount":9999,"paymentMethod":"BALANCE","state":"PAY_SUCCESS","transactionTime":"2023-09-03T00:00:00Z","accountUid":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","transactionId":"20000000000003"}]}}"#,
    );
    for mode in [&[][..], &["--dry-run"][..]] {
        let report = purse.ingest(&[&["--provider", "zenlayer"], mode].concat(), std::slice::from_ref(&bad), 3);
        assert_eq!(report["committed"], false, "{report}");
        assert_eq!(report["applied"], 1, "{report}");
        let rejected: Vec<(u64, &str)> = report["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| (entry["index"].as_u64().unwrap(), entry["code"].as_str().unwrap()))
            .collect();
        assert_eq!(rejected, [(1, "INVALID_AMOUNT"), (2, "INSUFFICIENT_BALANCE")], "{report}");
        assert_eq!(purse.state(), before, "{mode:?} changed the ledger");
    }
    let report = purse.ingest(&["--provider", "zenlayer", "--partial"], &[bad], 3);
    assert_eq!((&report["committed"], &report["applied"]), (&true.into(), &1.into()), "{report}");
    assert!(purse.state().contains("\"total_value\": \"386.55\""));
}

#[test]
fn stdin_and_options() {
    let purse = Purse::new();
    let page = std::fs::read(&examples("zenlayer")[0]).unwrap();
    let mut child = purse
        .command()
        .args(["ingest", "--provider", "zenlayer", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn purse");
    child.stdin.take().unwrap().write_all(&page).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(counts(&report), [8, 7, 0, 0]);

    // ALSC amounts in yuan, and a flow type mapped by the user.
    let flow = purse.write(
        "yuan.json",
        r#"{"result":{"biz_success":true,"result":{"account_id":"y-1","flow_id":"1","flow_type":"RECHARGE_GIFT","order_time":"2024-01-01 00:00:00","affected_property_list":[{"type":"GIFT","value":"12.50"}]}}}"#,
    );
    let report = purse.ingest(&["--provider", "alsc", "--alsc-units", "major"], std::slice::from_ref(&flow), 3);
    assert!(report["rejected"][0]["message"].as_str().unwrap().contains("unknown flow_type \"RECHARGE_GIFT\""));
    let report = purse.ingest(
        &["--provider", "alsc", "--alsc-units", "major", "--map-flow-type", "RECHARGE_GIFT=CHARGE"],
        &[flow],
        0,
    );
    assert_eq!(report["applied"], 1);
    let account = purse.run(&["account", "--account-id", "y-1"], &[]);
    assert!(String::from_utf8_lossy(&account.stdout).contains("\"gift_value\": \"12.50\""));
}

/// A field of the one JSON document a successful command prints.
fn printed(output: &Output, field: &str) -> Value {
    assert!(output.status.success(), "{output:?}");
    let document: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    document[field].clone()
}

#[test]
fn zenlayer_holds_show_on_the_account() {
    let purse = Purse::new();
    let holds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../purse-ingest/tests/fixtures/zenlayer-holds.json");
    let report = purse.ingest(&["--provider", "zenlayer"], std::slice::from_ref(&holds), 0);
    assert_eq!(counts(&report), [6, 6, 0, 0], "{report}");
    assert_eq!(report["skipped"], serde_json::json!([]), "no freeze or unfreeze is skipped: {report}");
    let account = purse.run(&["account", "--account-id", "7c1d2e3f-0a9b-4c8d-9e7f-6a5b4c3d2e1f"], &[]);
    let view = |field: &str| printed(&account, field);
    assert_eq!(view("total_value"), "70.00");
    assert_eq!((view("held_real_value"), view("held_total_value")), ("50.00".into(), "50.00".into()));
    assert_eq!(view("available_total_value"), "20.00");
    let release = purse.run(&["flow", "--outer-order-id", "zenlayer:10000000900004"], &[]);
    assert_eq!(printed(&release, "flow_type"), "RELEASE");
    assert_eq!(printed(&release, "src_outer_order_id"), "zenlayer:10000000900002");
    assert!(purse.run(&["verify"], &[]).status.success());
    let again = purse.ingest(&["--provider", "zenlayer"], &[holds], 0);
    assert_eq!(counts(&again), [6, 0, 6, 0], "{again}");
}

#[test]
fn alsc_orders_are_found_and_refunded_by_the_merchants_order_id() {
    let purse = Purse::new();
    let flow = |flow_id: &str, flow_type: &str, order: &str, before: i64, after: i64| {
        format!(
            r#"{{"result":{{"biz_success":true,"result":{{"account_id":"m-1","flow_id":"{flow_id}","flow_type":"{flow_type}","order_time":"2024-03-01 10:00:00","outer_order_id":"{order}","before_property_list":[{{"type":"REAL","value":{before}}}],"after_property_list":[{{"type":"REAL","value":{after}}}]}}}}}}"#
        )
    };
    let file = purse.write(
        "migrated.jsonl",
        &[flow("71", "CHARGE", "M-100", 0, 10000), flow("72", "DEDUCT", "M-101", 10000, 7000)].join("\n"),
    );
    let report = purse.ingest(&["--provider", "alsc"], &[file], 0);
    assert_eq!(counts(&report), [2, 2, 0, 0], "{report}");
    let found = purse.run(&["flow", "--outer-order-id", "M-101"], &[]);
    assert_eq!((printed(&found, "flow_type"), printed(&found, "request_id")), ("DEDUCT".into(), "alsc:72".into()));
    let write = |args: &[&str]| purse.run(&[args, &["--account-id", "m-1"]].concat(), &[]);
    let refund =
        write(&["undeduct", "--request-id", "u-1", "--outer-order-id", "M-101", "--new-outer-order-id", "R-1"]);
    assert_eq!(
        (printed(&refund, "order_value"), printed(&refund, "src_outer_order_id")),
        ("30.00".into(), "M-101".into())
    );
    let reversal =
        write(&["uncharge", "--request-id", "u-2", "--outer-order-id", "R-2", "--src-outer-order-id", "M-100"]);
    assert_eq!(printed(&reversal, "order_value"), "-100.00");
    assert_eq!(printed(&purse.run(&["account", "--account-id", "m-1"], &[]), "total_value"), "0.00");
    assert!(purse.run(&["verify"], &[]).status.success());
}

#[test]
fn runs_that_cannot_start() {
    let purse = Purse::new();
    let missing = purse.dir.path().join("missing.json");
    // (arguments, exit, code)
    let table: &[(&[&str], i32, &str)] = &[
        (&["ingest", "--provider", "zenlayer"], 2, "INVALID_ARGUMENT"),
        (&["ingest", "--provider", "paypal", "x.json"], 2, "INVALID_ARGUMENT"),
        (&["ingest", "--provider", "zenlayer", "--partial", "--dry-run", "x.json"], 2, "INVALID_ARGUMENT"),
        (&["ingest", "--provider", "zenlayer", missing.to_str().unwrap()], 1, "INVALID_ARGUMENT"),
        (&["ingest", "--provider", "zenlayer", "--map-flow-type", "A=CHARGE", "-"], 1, "INVALID_ARGUMENT"),
        (&["ingest", "--provider", "alsc", "--map-flow-type", "A=REFUND", "-"], 1, "INVALID_ARGUMENT"),
        (&["ingest", "--provider", "kybio", "--provider-time-zone", "+8", "-"], 1, "INVALID_ARGUMENT"),
        (&["ingest", "--provider", "kybio", "-", "-"], 1, "INVALID_ARGUMENT"),
    ];
    for (args, exit, code) in table {
        let output = purse.command().args(*args).stdin(Stdio::null()).output().expect("run purse");
        assert_eq!(output.status.code(), Some(*exit), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
        let error: Value = serde_json::from_slice(&output.stderr).expect("stderr is one JSON document");
        assert_eq!(error["error"]["code"], *code, "{args:?}: {error}");
    }
    // Nothing was written by any of them.
    let output = purse.run(&["account", "--account-id", "7001"], &[]);
    assert_eq!(output.status.code(), Some(1));
}

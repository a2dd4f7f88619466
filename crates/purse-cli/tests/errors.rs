//! Bad input through the built `purse` binary: every spec §6 code a user can cause, each as one
//! JSON document on stderr with nothing on stdout, and a refused command leaves the ledger as it
//! was.
//!
//! "As it was" is checked logically, through the binary (sled rewrites its files on every open,
//! so raw bytes would differ): [`dump`] is `verify`, every `flow --flow-id N`, every account,
//! its flows and the rules. A full dump takes ~25 runs of the binary, too slow to repeat after
//! each of ~90 cases, so after each case `verify` (which replays the whole log and checks every
//! projection) must answer exactly as before, and the full dump is compared once all cases ran.
//! The log is append-only, so a case that wrote anything shows up in `verify`'s entry count.

#[path = "support/files.rs"]
mod files;
#[path = "support/words.rs"]
mod support;

use files::copy_dir;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// A remark stored in some flows, so the corruption test can find their bytes in sled's file.
const MARKER: &str = "MARKER-5e1f0c";

const RULES: &str = r#"{"deduction_order": "PERCENT_DEDUCT", "gift_type": "CUSTOMIZED", "full_gift_switch": false,
    "tiers": [{"real_value": "100.00", "gift_value": "20.00"}, {"real_value": "500.00", "gift_value": "150.00"}]}"#;

/// The prepared ledger. alice: c-1 300 + gift 20 (the 100 → 20 tier, no full gift), c-2 100 + 20,
/// c-3 PRE 50; d-1 takes 200 (PRE 50, then REAL 136.36 GIFT 13.64), u-1 gives 50 back (REAL 34.09
/// GIFT 3.41 PRE 12.50), x-1 reverses c-2, d-3 is refunded in full: REAL 197.73 GIFT 9.77 PRE
/// 12.50 = 220.00. bob spent all of c-4 (110.00). carol: imported 20 + PRE 5, adjusted by -5.
const SETUP: &[&str] = &[
    "rules set {dir}/rules.json",
    "charge --request-id s-1 --outer-order-id c-1 --account-id alice --card-id card-a --brand-id b1 \
     --real-value 300 --trigger-gift --remark {marker}-1",
    "charge --request-id s-2 --outer-order-id c-2 --account-id alice --real-value 100 --trigger-gift",
    "charge --request-id s-3 --outer-order-id c-3 --account-id alice --pre-value 50 --remark {marker}-3",
    "deduct --request-id s-4 --outer-order-id d-1 --account-id alice --value 200",
    "undeduct --request-id s-5 --outer-order-id d-1 --new-outer-order-id u-1 --account-id alice --value 50",
    "uncharge --request-id s-6 --outer-order-id x-1 --src-outer-order-id c-2 --account-id alice",
    "deduct --request-id s-7 --outer-order-id d-3 --account-id alice --value 10",
    "undeduct --request-id s-8 --outer-order-id d-3 --new-outer-order-id u-2 --account-id alice",
    "charge --request-id s-9 --outer-order-id c-4 --account-id bob --real-value 100 --gift-value 10 \
     --remark {marker}-9",
    "deduct --request-id s-10 --outer-order-id d-2 --account-id bob --value 110",
    "import --request-id s-11 --outer-order-id i-1 --account-id carol --real-value 20 --pre-value 5 \
     --order-time '2019-08-01 15:14:31'",
    "adjust --request-id s-12 --outer-order-id a-1 --account-id carol --real-value -5 --remark 'till short'",
    // dave: 50.00, h-1 holds 20.00 until February, h-2 held 5.00 and was captured for 2.00:
    // balance 48.00, held 20.00, available 28.00.
    "charge --request-id s-13 --outer-order-id c-5 --account-id dave --real-value 50",
    "hold --request-id s-14 --outer-order-id h-1 --account-id dave --value 20 --biz-date '2026-01-01 00:00:00' \
     --expire-time '2026-02-01 00:00:00'",
    "hold --request-id s-15 --outer-order-id h-2 --account-id dave --value 5",
    "capture --request-id s-16 --outer-order-id k-1 --src-outer-order-id h-2 --account-id dave --value 2",
    // erin is frozen, frank closed.
    "charge --request-id s-17 --outer-order-id c-6 --account-id erin --real-value 10",
    "freeze --request-id s-18 --outer-order-id f-1 --account-id erin --remark 'lost card'",
    "charge --request-id s-19 --outer-order-id c-7 --account-id frank --real-value 1",
    "deduct --request-id s-20 --outer-order-id d-4 --account-id frank --value 1",
    "close --request-id s-21 --outer-order-id z-1 --account-id frank --remark 'moved away'",
];

const ACCOUNTS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "nobody"];

/// `(code, exit status, command line)`. In the line `{new}` is a fresh request and order id,
/// `{refund}` the same for UNDEDUCT, `{dir}` the test's directory (outside the ledger, holding
/// the rules files), `{deep_json}` arrays nested 2000 deep (4000 bytes: within ext_info's 4096,
/// so only the nesting is wrong).
const CASES: &[(&str, i32, &str)] = &[
    // Malformed command lines: clap refuses them, same JSON document, exit 2.
    // Holds, status and transfers (spec §8–§10).
    ("HOLD_EXPIRED", 1, "capture {new} --src-outer-order-id h-1 --account-id dave --biz-date '2026-02-01 00:00:00'"),
    (
        "HOLD_EXPIRED",
        1,
        "capture {new} --src-outer-order-id h-1 --account-id dave --value 1 --biz-date '2026-03-01 00:00:00'",
    ),
    (
        "INVALID_AMOUNT",
        1,
        "capture {new} --src-outer-order-id h-1 --account-id dave --value 20.01 --biz-date '2026-01-15 00:00:00'",
    ),
    ("INVALID_AMOUNT", 1, "hold {new} --account-id dave --value 0"),
    ("INVALID_AMOUNT", 1, "hold {new} --account-id dave --value 1.001"),
    ("INSUFFICIENT_BALANCE", 1, "hold {new} --account-id dave --value 28.01"),
    ("INSUFFICIENT_BALANCE", 1, "deduct {new} --account-id dave --value 28.01"),
    ("INSUFFICIENT_BALANCE", 1, "transfer {new} --account-id dave --to-account-id bob --value 28.01"),
    ("INSUFFICIENT_BALANCE", 1, "uncharge {new} --src-outer-order-id c-5 --account-id dave"),
    ("ALREADY_REVERSED", 1, "capture {new} --src-outer-order-id h-2 --account-id dave"),
    ("ALREADY_REVERSED", 1, "release {new} --src-outer-order-id h-2 --account-id dave"),
    ("ORDER_NOT_FOUND", 1, "release {new} --src-outer-order-id h-9 --account-id dave"),
    ("INVALID_ARGUMENT", 1, "release {new} --src-outer-order-id c-5 --account-id dave"),
    ("INVALID_ARGUMENT", 1, "release {new} --src-outer-order-id h-1 --account-id alice"),
    (
        "INVALID_ARGUMENT",
        1,
        "hold {new} --account-id dave --value 1 --biz-date '2026-01-01 00:00:00' --expire-time '2025-12-31 00:00:00'",
    ),
    ("INVALID_ARGUMENT", 1, "hold {new} --account-id dave --value 1 --expire-time 'next week'"),
    ("INVALID_ARGUMENT", 1, "close {new} --account-id dave --remark 'not yet'"),
    ("INVALID_ARGUMENT", 1, "close {new} --account-id dave"),
    ("INVALID_ARGUMENT", 1, "freeze {new} --account-id erin --remark again"),
    ("INVALID_ARGUMENT", 1, "unfreeze {new} --account-id dave --remark 'not frozen'"),
    ("INVALID_ARGUMENT", 1, "freeze {new} --account-id dave --remark ''"),
    ("INVALID_ARGUMENT", 1, "transfer {new} --account-id dave --to-account-id dave --value 1"),
    ("INVALID_ARGUMENT", 1, "transfer {new} --account-id dave --to-account-id alice --value 1"),
    ("ACCOUNT_FROZEN", 1, "deduct {new} --account-id erin --value 1"),
    ("ACCOUNT_FROZEN", 1, "hold {new} --account-id erin --value 1"),
    ("ACCOUNT_FROZEN", 1, "charge {new} --account-id erin --real-value 1"),
    ("ACCOUNT_FROZEN", 1, "transfer {new} --account-id erin --to-account-id dave --value 1"),
    ("ACCOUNT_FROZEN", 1, "transfer {new} --account-id dave --to-account-id erin --value 1"),
    ("ACCOUNT_CLOSED", 1, "charge {new} --account-id frank --real-value 1"),
    ("ACCOUNT_CLOSED", 1, "unfreeze {new} --account-id frank --remark x"),
    ("ACCOUNT_CLOSED", 1, "undeduct {refund} --outer-order-id d-4 --account-id frank"),
    ("ACCOUNT_CLOSED", 1, "transfer {new} --account-id dave --to-account-id frank --value 1"),
    ("ACCOUNT_NOT_FOUND", 1, "hold {new} --account-id nobody --value 1"),
    ("ACCOUNT_NOT_FOUND", 1, "freeze {new} --account-id nobody --remark x"),
    ("INVALID_ARGUMENT", 2, "hold {new} --account-id dave"),
    ("INVALID_ARGUMENT", 2, "capture {new} --account-id dave"),
    ("INVALID_ARGUMENT", 2, "transfer {new} --account-id dave --value 1"),
    ("INVALID_ARGUMENT", 2, "deduct {new} --account-id alice --value 1 --bogus"),
    ("INVALID_ARGUMENT", 2, "deduct {new} --account-id alice"),
    ("INVALID_ARGUMENT", 2, "charge --request-id r --account-id alice --real-value 1"),
    ("INVALID_ARGUMENT", 2, "charge {new} --account-id alice --real-value 1 --trigger-gift maybe"),
    // A forgotten amount swallows the next option as its value; the word after it is then stray.
    ("INVALID_ARGUMENT", 2, "deduct {new} --account-id alice --value --remark x"),
    ("INVALID_ARGUMENT", 2, "flows --account-id alice --page-size 5001"),
    ("INVALID_ARGUMENT", 2, "flows --account-id alice --page-size 0"),
    ("INVALID_ARGUMENT", 2, "flows --account-id alice --page-no -1"),
    ("INVALID_ARGUMENT", 2, "flow --flow-id abc"),
    ("INVALID_ARGUMENT", 2, "flow --flow-id 2 --outer-order-id c-1"),
    ("INVALID_ARGUMENT", 2, "flow"),
    ("INVALID_ARGUMENT", 2, "refund --account-id alice"),
    ("INVALID_ARGUMENT", 2, "rules"),
    ("INVALID_ARGUMENT", 2, ""),
    ("INVALID_ARGUMENT", 2, "--time-zone +8 verify"),
    ("INVALID_ARGUMENT", 2, "import {new} --account-id carol --real-value 1 --order-time x --biz-date y"),
    // Options clap accepts but purse cannot use.
    ("INVALID_ARGUMENT", 1, "flows --account-id alice --flow-type REFUND"),
    ("INVALID_ARGUMENT", 1, "flows --account-id alice --start-time 2026-01-01"),
    ("INVALID_ARGUMENT", 1, "flows --account-id bob --start-time '2026-01-02 00:00:00' --end-time {new_year}"),
    ("INVALID_ARGUMENT", 1, "deduct {new} --account-id {long_account} --value 1"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id {long_account} --real-value 1"),
    ("INVALID_ARGUMENT", 1, "charge --request-id {long_request} --outer-order-id o --account-id bob --real-value 1"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id '' --real-value 1"),
    ("INVALID_ARGUMENT", 1, "charge --request-id '' --outer-order-id o --account-id alice --real-value 1"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 300 --trigger-gift --gift-value 5"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 300 --trigger-gift --gift-value 0"),
    ("INVALID_ARGUMENT", 1, "adjust {new} --account-id alice --real-value 1"),
    ("INVALID_ARGUMENT", 1, "adjust {new} --account-id alice --real-value 1 --remark '   '"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 1 --biz-date 2026-13-01"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 1 --biz-date '2026-02-30 10:00:00'"),
    ("INVALID_ARGUMENT", 1, "import {new} --account-id alice --real-value 1 --order-time '2999-01-01 00:00:00'"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 1 --ext-info '{\"a\": '"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 1 --ext-info not-json"),
    // ext_info must be strict JSON: no lone surrogate, no nesting over 64 levels, no key twice.
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 1 --ext-info '\"\\ud800\"'"),
    ("INVALID_ARGUMENT", 1, "deduct {new} --account-id alice --value 1 --ext-info '{\"a\": \"\\udc00\"}'"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --real-value 1 --ext-info {deep_json}"),
    ("INVALID_ARGUMENT", 1, "deduct {new} --account-id alice --value 1 --ext-info '{\"a\": 1, \"a\": 2}'"),
    ("INVALID_ARGUMENT", 1, "deduct {new} --account-id alice --card-id card-b --value 1"),
    ("INVALID_ARGUMENT", 1, "charge {new} --account-id alice --brand-id b2 --real-value 1"),
    ("INVALID_ARGUMENT", 1, "undeduct {refund} --outer-order-id c-1 --account-id alice --value 1"),
    ("INVALID_ARGUMENT", 1, "undeduct {refund} --outer-order-id d-2 --account-id alice --value 1"),
    ("INVALID_ARGUMENT", 1, "uncharge {new} --src-outer-order-id d-1 --account-id alice"),
    ("INVALID_ARGUMENT", 1, "uncharge {new} --src-outer-order-id i-1 --account-id carol"),
    ("INVALID_ARGUMENT", 1, "uncharge {new} --src-outer-order-id c-4 --account-id alice"),
    ("INVALID_ARGUMENT", 1, "--scale 3 verify"),
    ("INVALID_ARGUMENT", 1, "--time-zone +09:00 account --account-id alice"),
    ("INVALID_ARGUMENT", 1, "rules set {dir}/no-such-rules.json"),
    ("INVALID_ARGUMENT", 1, "rules set {dir}/bad-key.json"),
    ("INVALID_ARGUMENT", 1, "rules set --brand-id b1 {dir}/bad-order.json"),
    ("INVALID_ARGUMENT", 1, "rules set {dir}/duplicate-key.json"),
    ("INVALID_ARGUMENT", 1, "rules set --brand-id b1 {dir}/duplicate-tier-key.json"),
    // Amounts: exact at the ledger's scale (2), positive where they must be, within i64.
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 0.001"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value -1"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 1e30"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value abc"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value NaN"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value Infinity"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 1.500"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 1,000"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value ' 1'"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 0x10"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value ''"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 0"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 0 --gift-value 0 --pre-value 0"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 1 --pre-value -0.01"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 92233720368547758.08"),
    ("INVALID_AMOUNT", 1, "charge {new} --account-id alice --real-value 92233720368547758.07"),
    ("INVALID_AMOUNT", 1, "deduct {new} --account-id alice --value 0"),
    ("INVALID_AMOUNT", 1, "deduct {new} --account-id alice --value -5"),
    ("INVALID_AMOUNT", 1, "deduct {new} --account-id alice --remark x --value --shop-id"),
    ("INVALID_AMOUNT", 1, "undeduct {refund} --outer-order-id d-1 --account-id alice --value 0"),
    ("INVALID_AMOUNT", 1, "import {new} --account-id alice --gift-value -1"),
    ("INVALID_AMOUNT", 1, "adjust {new} --account-id alice --real-value 0 --remark nothing"),
    ("INVALID_AMOUNT", 1, "rules set {dir}/bad-tier.json"),
    // Balances: no bucket goes negative.
    ("INSUFFICIENT_BALANCE", 1, "deduct {new} --account-id alice --value 220.01"),
    ("INSUFFICIENT_BALANCE", 1, "deduct {new} --account-id bob --value 0.01"),
    ("INSUFFICIENT_BALANCE", 1, "uncharge {new} --src-outer-order-id c-4 --account-id bob"),
    ("INSUFFICIENT_BALANCE", 1, "uncharge {new} --src-outer-order-id c-3 --account-id alice"),
    ("INSUFFICIENT_BALANCE", 1, "adjust {new} --account-id carol --pre-value -5.01 --remark oops"),
    // Unknown accounts.
    ("ACCOUNT_NOT_FOUND", 1, "deduct {new} --account-id nobody --value 1"),
    ("ACCOUNT_NOT_FOUND", 1, "adjust {new} --account-id nobody --real-value 1 --remark fix"),
    ("ACCOUNT_NOT_FOUND", 1, "undeduct {refund} --outer-order-id d-1 --account-id nobody"),
    ("ACCOUNT_NOT_FOUND", 1, "uncharge {new} --src-outer-order-id c-1 --account-id nobody"),
    ("ACCOUNT_NOT_FOUND", 1, "account --account-id nobody"),
    ("ACCOUNT_NOT_FOUND", 1, "flows --account-id nobody"),
    // Unknown orders and flows.
    ("ORDER_NOT_FOUND", 1, "undeduct {refund} --outer-order-id d-404 --account-id alice"),
    ("ORDER_NOT_FOUND", 1, "uncharge {new} --src-outer-order-id c-404 --account-id alice"),
    ("ORDER_NOT_FOUND", 1, "flow --outer-order-id c-404"),
    ("ORDER_NOT_FOUND", 1, "flow --flow-id 999"),
    ("ORDER_NOT_FOUND", 1, "flow --flow-id 0"),
    ("ORDER_NOT_FOUND", 1, "flow --flow-id 1"),
    // Orders and requests already used.
    ("DUPLICATE_ORDER", 1, "deduct --request-id r --outer-order-id c-1 --account-id alice --value 1"),
    ("DUPLICATE_ORDER", 1, "undeduct --request-id r --outer-order-id d-1 --new-outer-order-id u-1 --account-id alice"),
    // The same request_id with another request: SETUP has s-10 as
    // "deduct --request-id s-10 --outer-order-id d-2 --account-id bob --value 110".
    ("IDEMPOTENCY_CONFLICT", 1, "deduct --request-id s-10 --outer-order-id d-2 --account-id bob --value 111"),
    (
        "IDEMPOTENCY_CONFLICT",
        1,
        "deduct --request-id s-10 --outer-order-id d-2 --account-id bob --value 110 --remark x",
    ),
    ("IDEMPOTENCY_CONFLICT", 1, "deduct --request-id s-10 --outer-order-id d-9 --account-id bob --value 110"),
    ("IDEMPOTENCY_CONFLICT", 1, "charge --request-id s-4 --outer-order-id c-9 --account-id alice --real-value 200"),
    // Refunds beyond the original, reversals twice.
    ("REFUND_EXCEEDS_ORIGINAL", 1, "undeduct {refund} --outer-order-id d-1 --account-id alice --value 150.01"),
    ("REFUND_EXCEEDS_ORIGINAL", 1, "undeduct {refund} --outer-order-id d-3 --account-id alice --value 0.01"),
    ("REFUND_EXCEEDS_ORIGINAL", 1, "undeduct {refund} --outer-order-id d-3 --account-id alice"),
    ("ALREADY_REVERSED", 1, "uncharge {new} --src-outer-order-id c-2 --account-id alice"),
];

/// The command line `text` split on spaces outside single quotes, with the placeholders filled.
fn words(text: &str, dir: &Path) -> Vec<String> {
    let text = text
        .replace("{new}", "--request-id r --outer-order-id o")
        .replace("{refund}", "--request-id r --new-outer-order-id o")
        .replace("{dir}", &dir.display().to_string())
        .replace("{marker}", MARKER)
        .replace("{new_year}", "'2026-01-01 00:00:00'")
        .replace("{long_account}", &"a".repeat(65))
        .replace("{long_request}", &"r".repeat(129))
        .replace("{deep_json}", &format!("{}{}", "[".repeat(2000), "]".repeat(2000)));
    support::words(&text)
}

fn purse(data: &Path, args: &[String]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_purse"));
    command.arg("--data").arg(data).args(args).env_remove("PURSE_DATA");
    command
}

fn run(data: &Path, dir: &Path, line: &str) -> Output {
    purse(data, &words(line, dir)).output().expect("run purse")
}

fn ok(data: &Path, dir: &Path, line: &str) -> String {
    let output = run(data, dir, line);
    assert!(output.status.success() && output.stderr.is_empty(), "{line}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The one assertion every refused command gets: exit status, empty stdout, and stderr exactly
/// one `{"error": {"code", "message"}}` document with `code` and a non-empty message.
fn check_output(line: &str, output: &Output, code: &str, exit: i32) {
    assert_eq!(output.status.code(), Some(exit), "{line}: {output:?}");
    assert!(output.stdout.is_empty(), "{line}: wrote to stdout: {output:?}");
    let mut documents = serde_json::Deserializer::from_slice(&output.stderr).into_iter::<Value>();
    let document = match documents.next() {
        Some(Ok(document)) => document,
        other => panic!("{line}: stderr is not a JSON document ({other:?}): {output:?}"),
    };
    assert!(documents.next().is_none(), "{line}: more than one document on stderr: {output:?}");
    let keys = |value: &Value| value.as_object().map(|object| object.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&document), Some(vec!["error".to_owned()]), "{line}: {document}");
    assert_eq!(keys(&document["error"]), Some(vec!["code".to_owned(), "message".to_owned()]), "{line}: {document}");
    assert_eq!(document["error"]["code"], code, "{line}: {document}");
    let message = document["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.trim().is_empty(), "{line}: no message: {document}");
}

fn check(data: &Path, dir: &Path, line: &str, code: &str, exit: i32) {
    check_output(line, &run(data, dir, line), code, exit);
}

/// The ledger as the binary shows it: `verify`, every entry by flow id (rules entries and the
/// one past the end answer ORDER_NOT_FOUND), every account with its flows, the rules.
fn dump(data: &Path) -> String {
    let show = |line: String| {
        let output = purse(data, &words(&line, data)).output().expect("run purse");
        let [stdout, stderr] =
            [&output.stdout, &output.stderr].map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        format!("$ {line}\n{:?}\n{stdout}{stderr}", output.status.code())
    };
    let verify = ok(data, data, "verify");
    let entries = serde_json::from_str::<Value>(&verify).unwrap()["entries"].as_u64().expect("entries");
    let mut text = format!("$ verify\n{verify}");
    for flow_id in 1..=entries + 1 {
        text += &show(format!("flow --flow-id {flow_id}"));
    }
    for account in ACCOUNTS {
        text += &show(format!("account --account-id {account}"));
        text += &show(format!("flows --account-id {account} --page-size 5000"));
    }
    text += &show("rules get".to_owned());
    text + &show("rules get --brand-id b1".to_owned())
}

/// The prepared ledger, built once: `(directory holding ledger/ and the rules files, its dump)`.
fn template() -> &'static (TempDir, String) {
    static TEMPLATE: OnceLock<(TempDir, String)> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = [
            ("rules.json", RULES),
            ("bad-key.json", r#"{"gift_type": "CUSTOMIZED", "full_gift_swich": true}"#),
            ("bad-order.json", r#"{"deduction_order": "SIDEWAYS"}"#),
            ("bad-tier.json", r#"{"gift_type": "CUSTOMIZED", "tiers": [{"real_value": 100.001, "gift_value": 1}]}"#),
            // Both would be valid rules if the last value won.
            (
                "duplicate-key.json",
                r#"{"gift_type": "PROPORTIONAL", "gift_type": "CUSTOMIZED", "tiers": [{"real_value": "100.00", "gift_value": "20.00"}]}"#,
            ),
            (
                "duplicate-tier-key.json",
                r#"{"gift_type": "CUSTOMIZED", "tiers": [{"real_value": "100.00", "gift_value": "5.00", "gift_value": "20.00"}]}"#,
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let data = dir.path().join("ledger");
        for line in SETUP {
            ok(&data, dir.path(), line);
        }
        let dump = dump(&data);
        assert!(dump.contains("\"total_value\": \"220.00\""), "alice's balance is not the expected one: {dump}");
        (dir, dump)
    })
}

/// A fresh copy of the prepared ledger (sled's files copied while no process has it open).
fn prepared() -> (TempDir, PathBuf) {
    let (template, _) = template();
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(template.path(), dir.path());
    let data = dir.path().join("ledger");
    (dir, data)
}

#[test]
fn every_refusal_is_one_json_error_and_changes_nothing() {
    let (dir, data) = prepared();
    let reference = &template().1;
    assert_eq!(&dump(&data), reference, "the copy differs from the prepared ledger");
    let verify = ok(&data, &data, "verify");
    let mut seen = std::collections::BTreeSet::new();
    for (code, exit, line) in CASES {
        check(&data, dir.path(), line, code, *exit);
        assert_eq!(ok(&data, &data, "verify"), verify, "{line}: the ledger changed");
        seen.insert(*code);
    }
    assert_eq!(&dump(&data), reference, "some case changed the ledger");
    // A rejected command leaves no idempotency record: the same request may succeed later.
    let retry = "deduct --request-id r --outer-order-id o --account-id alice --value 220";
    let flow: Value = serde_json::from_str(&ok(&data, dir.path(), retry)).unwrap();
    assert_eq!(flow["current_value"], "0.00", "{flow}");
    let codes = [
        "INVALID_ARGUMENT",
        "INVALID_AMOUNT",
        "INSUFFICIENT_BALANCE",
        "ACCOUNT_NOT_FOUND",
        "ORDER_NOT_FOUND",
        "DUPLICATE_ORDER",
        "IDEMPOTENCY_CONFLICT",
        "REFUND_EXCEEDS_ORIGINAL",
        "ALREADY_REVERSED",
        "HOLD_EXPIRED",
        "ACCOUNT_FROZEN",
        "ACCOUNT_CLOSED",
    ];
    assert_eq!(seen, codes.into_iter().collect(), "the table no longer covers every code");
}

#[test]
fn invalid_argument_when_the_data_path_is_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "keep me").unwrap();
    let charge = "charge --request-id r --outer-order-id o --account-id alice --real-value 1";
    for data in [file.clone(), file.join("ledger")] {
        for line in ["verify", charge] {
            let output = purse(&data, &words(line, dir.path())).output().expect("run purse");
            check_output(&format!("--data {} {line}", data.display()), &output, "INVALID_ARGUMENT", 1);
        }
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

/// Only a write creates a ledger. A read on a path that holds none (missing, empty) is
/// INVALID_ARGUMENT and creates nothing; no command turns a folder of other files into a ledger.
#[test]
fn a_path_without_a_ledger_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reads = ["verify", "account --account-id alice", "flows --account-id alice", "flow --flow-id 1", "rules get"];
    let missing = dir.path().join("mistyped");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for data in [&missing, &empty] {
        for line in reads {
            let output = purse(data, &words(line, dir.path())).output().expect("run purse");
            check_output(&format!("--data {} {line}", data.display()), &output, "INVALID_ARGUMENT", 1);
            let message = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(message.contains("no ledger at"), "{line}: {message}");
        }
    }
    assert!(!missing.exists(), "a read created the mistyped directory");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "a read wrote into the empty directory");
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("Cargo.toml"), "[package]").unwrap();
    let charge = "charge --request-id r --outer-order-id o --account-id alice --real-value 1";
    for line in ["verify", charge] {
        let output = purse(&project, &words(line, dir.path())).output().expect("run purse");
        check_output(&format!("--data project {line}"), &output, "INVALID_ARGUMENT", 1);
        assert!(String::from_utf8_lossy(&output.stderr).contains("is not a purse ledger"), "{line}");
    }
    assert_eq!(std::fs::read_dir(&project).unwrap().count(), 1, "nothing was added to the project folder");
    // A write to a missing path creates the ledger, and reads then find it.
    assert!(purse(&missing, &words(charge, dir.path())).output().unwrap().status.success());
    assert!(purse(&missing, &words("verify", dir.path())).output().unwrap().status.success());
}

/// sled locks its files: while one `purse` has the ledger open, another is told the ledger is in
/// use (INVALID_ARGUMENT naming the lock: nothing failed). The holder is `rules set -`, which
/// opens the ledger and then waits for the rules on stdin.
#[test]
fn invalid_argument_while_another_process_holds_the_ledger() {
    let (dir, data) = prepared();
    let spawn_holder = || {
        let args = words("rules set -", dir.path());
        purse(&data, &args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let mut holder = spawn_holder();
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = "account --account-id alice";
    let locked = loop {
        assert!(Instant::now() < deadline, "no refusal while another process held the ledger");
        // Our own probe may have held the lock when the holder opened: then start it again.
        if holder.try_wait().unwrap().is_some() {
            holder = spawn_holder();
        }
        let output = run(&data, dir.path(), line);
        if !output.status.success() {
            break output;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    check_output(line, &locked, "INVALID_ARGUMENT", 1);
    assert!(String::from_utf8_lossy(&locked.stderr).contains("is in use"), "the message names the lock");
    let write = "deduct --request-id r --outer-order-id o --account-id alice --value 1";
    let output = run(&data, dir.path(), write);
    // The holder cannot have let go yet: it still waits for its stdin.
    assert!(holder.try_wait().unwrap().is_none(), "the holder ended early");
    check_output(write, &output, "INVALID_ARGUMENT", 1);
    // Let the holder go with rules that are refused: it writes nothing either.
    holder.stdin.take().unwrap().write_all(b"{\"gift_type\": 7}").unwrap();
    let holder = holder.wait_with_output().unwrap();
    check_output("rules set - (the holder)", &holder, "INVALID_ARGUMENT", 1);
    assert_eq!(&dump(&data), &template().1);
}

/// A missing head file: every command is CORRUPTION, creates nothing, and once the file is back
/// the ledger is whole again.
#[test]
fn corruption_when_the_head_file_is_missing() {
    let (dir, data) = prepared();
    let head = data.join("purse-head");
    let aside = dir.path().join("purse-head.aside");
    std::fs::rename(&head, &aside).unwrap();
    for line in [
        "verify",
        "account --account-id alice",
        "flow --flow-id 2",
        "charge --request-id r --outer-order-id o --account-id alice --real-value 1",
        "deduct --request-id r --outer-order-id o --account-id alice --value 1",
    ] {
        check(&data, dir.path(), line, "CORRUPTION", 1);
        assert!(!head.exists(), "{line}: a new head file was made over a damaged ledger");
    }
    std::fs::rename(&aside, &head).unwrap();
    assert_eq!(&dump(&data), &template().1);
}

/// One flipped bit in every stored copy of the marked remarks in sled's data file.
#[test]
fn corruption_when_sleds_file_is_damaged() {
    let (dir, data) = prepared();
    let mut bytes = std::fs::read(data.join("db")).unwrap();
    let offsets: Vec<usize> = bytes
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, window)| *window == MARKER.as_bytes())
        .map(|(at, _)| at)
        .collect();
    assert!(!offsets.is_empty(), "no marked remark found in sled's data file");
    for at in offsets {
        bytes[at + 2] ^= 0x01;
    }
    std::fs::write(data.join("db"), &bytes).unwrap();
    for line in
        ["verify", "account --account-id bob", "deduct --request-id r --outer-order-id o --account-id bob --value 1"]
    {
        check(&data, dir.path(), line, "CORRUPTION", 1);
    }
}

/// spec §3: acknowledged flows survive. With sled's `db` and `snap.*` files gone, the head file
/// still records what was acknowledged, so the ledger must not reopen as a new, empty one.
#[test]
fn corruption_when_sleds_files_are_gone() {
    let (dir, data) = prepared();
    for entry in std::fs::read_dir(&data).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "db" || name.starts_with("snap.") {
            std::fs::remove_file(data.join(name)).unwrap();
        }
    }
    check(&data, dir.path(), "verify", "CORRUPTION", 1);
}

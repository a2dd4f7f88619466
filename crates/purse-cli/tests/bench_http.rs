//! `purse bench --http` against the built binary's `purse serve` on a real port: the run passes
//! its own check, its report says how it went, and the ledger the server leaves behind holds
//! exactly the flows the bench counted.

#[path = "support/purse.rs"]
mod purse;
#[path = "support/serve.rs"]
mod serve;

use std::process::{Command, Output};

use purse::Purse;
use serde_json::Value;
use serve::Server;

fn bench(url: &str, key: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_purse"))
        .args(["bench", "--http", url, "--connections", "16"])
        .args(extra)
        .env("PURSE_API_KEY", key)
        .env_remove("PURSE_DATA")
        .output()
        .expect("run purse bench --http")
}

/// Minor units (scale 2) of a decimal text such as "-12.30".
fn minor(text: &str) -> i128 {
    let (units, cents) = text.trim_start_matches('-').split_once('.').expect("two decimals");
    let magnitude = units.parse::<i128>().unwrap() * 100 + cents.parse::<i128>().unwrap();
    if text.starts_with('-') {
        -magnitude
    } else {
        magnitude
    }
}

/// Every command kind, retries among them, over 16 connections: the check passes, every
/// request is accounted for, the percentiles are ordered, and after SIGTERM `purse verify`
/// counts exactly the flows the bench had accepted, holding what the bench's check summed.
#[test]
fn a_run_over_http_passes_its_check_and_the_ledger_agrees() {
    let purse = Purse::new();
    let key = purse.ok("keys add --scope write --name bench")["key"].as_str().expect("a key").to_owned();
    let server = Server::start(&purse, &[]);
    let flows = 3000;
    let output = bench(
        &server.url,
        &key,
        &[
            "--accounts",
            "40",
            "--flows",
            &flows.to_string(),
            "--mix",
            "charge=30,deduct=25,undeduct=10,uncharge=5,hold=15,capture=10,release=5",
            "--replay-ratio",
            "0.1",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON report");
    assert_eq!(report["check"]["passed"], true, "{report}");
    assert_eq!(report["check"]["failures"], serde_json::json!([]), "{report}");
    assert_eq!(report["setup"]["accounts_opened"], 40, "{report}");
    assert_eq!(
        (report["workload"]["connections"].as_u64(), report["http"]["connections"].as_u64()),
        (Some(16), Some(16))
    );

    let run = &report["run"];
    let count = |value: &Value| value.as_u64().unwrap_or_else(|| panic!("not a count: {value} in {report}"));
    let (accepted, replayed, rejected) = (count(&run["accepted"]), count(&run["replayed"]), count(&run["rejected"]));
    assert_eq!(accepted + replayed + rejected, flows, "every request answered: {run}");
    assert!(replayed > 0 && accepted > flows / 2, "{run}");
    for kind in ["CHARGE", "DEDUCT", "UNDEDUCT", "UNCHARGE", "HOLD", "CAPTURE", "RELEASE"] {
        assert!(count(&run["by_type"][kind]["accepted"]) > 0, "no {kind} accepted: {run}");
    }
    // Refusals are the ledger's answers to what the mix asks (a DEDUCT larger than the
    // balance), never a body the server could not read.
    for (code, _) in run["rejected_by_code"].as_object().expect("by code") {
        assert!(["INSUFFICIENT_BALANCE", "REFUND_EXCEEDS_ORIGINAL"].contains(&code.as_str()), "{code} in {run}");
    }
    let http = &report["http"];
    assert_eq!(count(&http["requests"]), flows, "{http}");
    assert_eq!(count(&http["by_status"]["200"]), accepted + replayed, "{http}");
    assert_eq!(count(&http["resent"]), 0, "{http}");

    let latency = &report["latency_us"];
    assert_eq!(count(&latency["samples"]), flows, "{latency}");
    let ranks: Vec<u64> = ["p50", "p90", "p99", "p999", "max"].iter().map(|rank| count(&latency[*rank])).collect();
    assert!(ranks[0] > 0 && ranks.windows(2).all(|pair| pair[0] <= pair[1]), "{latency}");
    assert!(count(&run["flows_per_second"]) > 0, "{run}");

    let balances = report["check"]["balances_minor"]["total"].as_str().expect("balances").parse::<i128>().unwrap();
    let (status, _, _) = server.terminate();
    assert!(status.success(), "purse serve exited with {status}");
    let verified = purse.ok("verify");
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(count(&verified["flows"]), 40 + accepted, "the ledger's flows against the bench's: {verified}");
    let liability = purse.ok("liability");
    let total = minor(liability["total"]["total_value"].as_str().expect("total_value"));
    assert_eq!(total, balances, "what the ledger owes against the accounts the bench summed: {liability}");
}

/// A key that may only read: the bench stops at its first write with INVALID_ARGUMENT and says
/// which key it needs, before any timed run.
#[test]
fn a_key_that_may_not_write_stops_the_bench() {
    let purse = Purse::new();
    let key = purse.ok("keys add --scope read")["key"].as_str().expect("a key").to_owned();
    let server = Server::start(&purse, &[]);
    let output = bench(&server.url, &key, &["--accounts", "4", "--flows", "10"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let error: Value = serde_json::from_slice(&output.stderr).expect("stderr is one JSON document");
    assert_eq!(error["error"]["code"], "INVALID_ARGUMENT", "{error}");
    let message = error["error"]["message"].as_str().expect("a message");
    assert!(message.contains("403") && message.contains("--scope write"), "{message}");
    let (status, _, _) = server.terminate();
    assert!(status.success(), "purse serve exited with {status}");
}

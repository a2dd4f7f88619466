//! `purse bench` when the disk fills up during its run: the run's own failure must reach the
//! user, not only whatever failed after it.

use std::process::Command;

use serde_json::Value;

/// A disk full after 300 KiB: under `ulimit -f` every write past the limit fails with EFBIG
/// ("File too large") as writes to a full disk fail with ENOSPC. SIGXFSZ, which would kill the
/// process instead, is ignored, and an ignored signal stays ignored across `exec`. sled fills
/// its file during the run, so the writer stops after a failed write; reopening afterwards may
/// fail too (sled writes when it opens) or not: either way the error must start with the run's
/// failure.
#[test]
fn a_disk_full_during_the_run_is_reported_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("ledger");
    let script =
        r#"trap '' XFSZ; ulimit -f 300; exec "$0" --data "$1" bench --accounts 20 --flows 20000 --concurrency 8"#;
    let output = Command::new("bash")
        .args(["-c", script])
        .arg(env!("CARGO_BIN_EXE_purse"))
        .arg(&data)
        .env_remove("PURSE_DATA")
        .output()
        .expect("run bash");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let error: Value = serde_json::from_slice(&output.stderr).expect("stderr is one JSON document");
    assert_eq!(error["error"]["code"], "STORAGE", "{error}");
    let message = error["error"]["message"].as_str().expect("a message");
    let run_failure = message.find("the ledger stopped after a failed write").unwrap_or_else(|| {
        panic!("the run's failure is missing from {message:?}");
    });
    assert!(message.contains("File too large"), "{message}");
    if let Some(reopen) = message.find("then reopening the ledger failed") {
        assert!(run_failure < reopen, "the reopen error comes before the run's: {message}");
    }
}

/// `purse bench --batch`: every command kind, retries among them, through `submit_batch` from a
/// few callers; its self-check (balances against the accepted flows, every retry answered with
/// its first flow, `verify`, the reopen) passes, and the report says how it ran.
#[test]
fn a_batched_run_passes_its_own_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_purse"))
        .arg("--data")
        .arg(dir.path().join("ledger"))
        .args(["bench", "--accounts", "40", "--flows", "6000", "--batch", "500"])
        .args(["--mix", "charge=30,deduct=25,undeduct=10,uncharge=5,hold=15,capture=10,release=5"])
        .args(["--replay-ratio", "0.1"])
        .env_remove("PURSE_DATA")
        .output()
        .expect("run purse bench");
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON report");
    assert_eq!(report["check"]["passed"], true, "{report}");
    assert_eq!(
        (report["workload"]["batch"].as_u64(), report["workload"]["concurrency"].as_u64()),
        (Some(500), Some(4))
    );
    let run = &report["run"];
    assert!(run["replayed"].as_u64().expect("replayed") > 300, "{run}");
    for kind in ["CHARGE", "DEDUCT", "UNDEDUCT", "UNCHARGE", "HOLD", "CAPTURE", "RELEASE"] {
        assert!(run["by_type"][kind]["accepted"].as_u64().expect("a count") > 0, "{kind}: {run}");
    }
    // 6,000 requests in calls of 500 from 4 callers: 12 calls, each one latency sample.
    assert_eq!(report["latency_us"]["samples"], 12, "{report}");
}

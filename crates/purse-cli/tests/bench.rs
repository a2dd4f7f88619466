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

//! Ledgers written by earlier versions keep opening and answering the same. `fixtures/` holds
//! real ledger directories, bytes as an earlier version wrote them (never regenerated: each
//! folder's `make.sh` says how it was made), and `expected.jsonl`, what that version answered to
//! each read. This test opens a copy with today's binary and checks every answer still says the
//! same: each field the old answer had must be there with the same value (fields added since are
//! allowed), and `verify` must pass. Then it takes a snapshot of the copy (today's format) and
//! checks every answer again, now read from the snapshot.

#[path = "support/files.rs"]
mod files;

use std::path::Path;

use files::copy_dir;
use std::process::Command;

use serde_json::Value;

/// `expected` ⊆ `actual`: every object key of `expected` present with a matching value, arrays
/// element by element and of the same length, everything else equal.
fn contains(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, value) in expected {
                let got = actual.get(key).ok_or_else(|| format!("{at}.{key} is missing"))?;
                contains(got, value, &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(actual), Value::Array(expected)) if actual.len() == expected.len() => actual
            .iter()
            .zip(expected)
            .enumerate()
            .try_for_each(|(index, (got, value))| contains(got, value, &format!("{at}[{index}]"))),
        _ if actual == expected => Ok(()),
        _ => Err(format!("{at}: {actual} is not {expected}")),
    }
}

fn purse(data: &Path, args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_purse")).arg("--data").arg(data).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

fn check(fixture: &str, entries: u64, reads_min: usize) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(fixture);
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&folder.join("ledger"), copy.path());
    let expected = std::fs::read_to_string(folder.join("expected.jsonl")).unwrap();
    // First by a full fold (the fixture has no snapshot), then from a snapshot of it taken now:
    // the same answers.
    for from_snapshot in [false, true] {
        let mut reads = 0;
        for line in expected.lines() {
            let read: Value = serde_json::from_str(line).unwrap();
            let args: Vec<&str> = read["args"].as_array().unwrap().iter().map(|arg| arg.as_str().unwrap()).collect();
            let actual = purse(copy.path(), &args);
            if let Err(difference) = contains(&actual, &read["output"], "") {
                panic!("{fixture} (from a snapshot: {from_snapshot}): {args:?} answers differently: {difference}");
            }
            reads += 1;
        }
        assert!(reads >= reads_min, "{fixture}: the fixture holds its reads ({reads})");
        let verify = purse(copy.path(), &["verify"]);
        assert_eq!(verify["entries"], entries, "{fixture}: {verify}");
        assert_eq!(verify["repairs"], Value::Array(vec![]), "{fixture}: opening it needed no repair");
        assert_eq!(verify["warnings"], Value::Array(vec![]), "{fixture}: {verify}");
        if !from_snapshot {
            assert!(!copy.path().join("purse-snapshots").exists(), "{fixture}: reads took no snapshot");
            assert_eq!(purse(copy.path(), &["snapshot"])["sequence"], entries, "{fixture}");
        }
    }
}

#[test]
fn a_block_format_2_ledger_opens_and_answers_as_it_did() {
    check("block-format-2", 40, 41);
}

/// Expiry lots (record version 3), `gift_valid_days` rules, sweeps, CLEAR, a transfer of
/// expiring lots, holds; with point-in-time reads.
#[test]
fn a_record_version_3_ledger_opens_and_answers_as_it_did() {
    check("record-version-3", 18, 27);
}

/// A ledger of commit 40370ad whose every snapshot went into the cold store when it was the
/// sled tree `cold`: its orders, request ids and flow references were in that tree only. The
/// first open moves the tree into a run (`purse-cold/`); every answer is the same before and
/// after, a replay of an old request is still answered with its flow, and an UNDEDUCT of a
/// DEDUCT the tree held still works.
#[test]
fn a_ledger_with_the_sled_cold_tree_opens_and_answers_as_it_did() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cold-tree");
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&folder.join("ledger"), copy.path());
    assert!(!copy.path().join("purse-cold").exists());
    let expected = std::fs::read_to_string(folder.join("expected.jsonl")).unwrap();
    for round in ["the first open, which imports the tree", "a later open, from the run"] {
        let mut reads = 0;
        for line in expected.lines() {
            let read: Value = serde_json::from_str(line).unwrap();
            let args: Vec<&str> = read["args"].as_array().unwrap().iter().map(|arg| arg.as_str().unwrap()).collect();
            if let Err(difference) = contains(&purse(copy.path(), &args), &read["output"], "") {
                panic!("cold-tree ({round}): {args:?} answers differently: {difference}");
            }
            reads += 1;
        }
        assert_eq!(reads, 18, "{round}");
        assert!(copy.path().join("purse-cold/MANIFEST").exists(), "{round}: the tree became a run");
        let verify = purse(copy.path(), &["verify"]);
        assert_eq!(verify["entries"], 9, "{round}: {verify}");
        assert_eq!(verify["warnings"], Value::Array(vec![]), "{round}: {verify}");
    }
    // A replay of the first charge: its record was only in the tree.
    let replay = purse(copy.path(), &replay_args());
    assert_eq!(replay["flow_id"], "1", "{replay}");
    let refund = purse(
        copy.path(),
        &[
            "undeduct",
            "--request-id",
            "ct-u1",
            "--outer-order-id",
            "CT-D1",
            "--new-outer-order-id",
            "CT-U1",
            "--account-id",
            "acct-1",
            "--value",
            "12",
        ],
    );
    assert_eq!(refund["flow_type"], "UNDEDUCT", "{refund}");
    assert_eq!(purse(copy.path(), &["verify"])["entries"], 10);
    // A snapshot now fills the cold store once more: it writes the Bloom filter by segment over
    // the tree's whole filter (docs/storage-format.md, `S` keys). Every id is still found.
    let snapshot = purse_env(copy.path(), &["snapshot"], ("PURSE_COLD_AFTER_ENTRIES", "0"));
    assert_eq!(snapshot["sequence"], 10, "{snapshot}");
    // Balances and totals moved with the UNDEDUCT; every flow the fixture wrote reads the same.
    let mut flows = 0;
    for line in expected.lines() {
        let read: Value = serde_json::from_str(line).unwrap();
        let args: Vec<&str> = read["args"].as_array().unwrap().iter().map(|arg| arg.as_str().unwrap()).collect();
        if args[0] == "flow" {
            let actual = purse(copy.path(), &args);
            contains(&actual, &read["output"], "").unwrap_or_else(|difference| panic!("{args:?}: {difference}"));
            flows += 1;
        }
    }
    assert!(flows >= 9, "{flows} flows read");
    let again = purse(copy.path(), &replay_args());
    assert_eq!(again["flow_id"], "1", "after the fill: {again}");
    let verify = purse(copy.path(), &["verify"]);
    assert_eq!(verify["entries"], 10, "{verify}");
    assert_eq!(verify["warnings"], Value::Array(vec![]), "{verify}");
}

fn replay_args() -> Vec<&'static str> {
    vec![
        "charge",
        "--request-id",
        "ct-c1",
        "--outer-order-id",
        "CT-C1",
        "--account-id",
        "acct-1",
        "--real-value",
        "10",
        "--gift-value",
        "1",
        "--biz-date",
        "2026-11-01 09:00:00",
    ]
}

fn purse_env(data: &Path, args: &[&str], (key, value): (&str, &str)) -> Value {
    let output =
        Command::new(env!("CARGO_BIN_EXE_purse")).env(key, value).arg("--data").arg(data).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

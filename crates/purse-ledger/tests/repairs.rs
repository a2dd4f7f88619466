//! What a crash inside sled's own bookkeeping, or damage to files sled can rebuild, leaves
//! behind is repaired on open, logged, and reported by `verify`; the ledger then answers exactly
//! as before. Real damage to the log is still refused (see `corruption.rs`).

mod common;

use std::path::Path;

use common::{charge, deduct, open};
use purse_core::ErrorCode;
use purse_ledger::FlowKey;

/// A closed ledger with a few flows on three accounts, opened twice so that sled has written a
/// snapshot file.
async fn prepared(path: &Path) {
    let ledger = open(path).await;
    for index in 0..30 {
        ledger
            .submit(charge(&format!("r{index}"), &format!("o{index}"), &format!("a{}", index % 3), "10"))
            .await
            .unwrap();
    }
    ledger.submit(deduct("d1", "d1", "a1", "4.50")).await.unwrap();
    ledger.close().await.unwrap();
    open(path).await.close().await.unwrap();
    assert!(!snapshots(path).is_empty(), "sled wrote a snapshot");
}

fn snapshots(path: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|file| file.file_name().unwrap().to_string_lossy().starts_with("snap."))
        .collect();
    files.sort();
    files
}

/// What the ledger answers: every flow, every account's balance, and verify's counts.
async fn answers(path: &Path) -> Result<(String, Vec<String>), ErrorCode> {
    let ledger =
        purse_ledger::Ledger::open(purse_ledger::LedgerConfig::new(path)).await.map_err(|error| error.code())?;
    let report = ledger.verify().await.map_err(|error| error.code())?;
    let mut out = format!("{} {} {} {}\n", report.entries, report.flows, report.accounts, report.blocks);
    for sequence in 1..=report.entries {
        out.push_str(&format!("{:?}\n", ledger.flow(FlowKey::Id(sequence)).await.map_err(|error| error.code())));
    }
    for account in ["a0", "a1", "a2"] {
        out.push_str(&format!("{:?}\n", ledger.account(account).await.map(|view| view.balance)));
    }
    ledger.close().await.map_err(|error| error.code())?;
    Ok((out, report.repairs.into_iter().chain(report.warnings).collect()))
}

fn flip(file: &Path, at: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}

type Damage = fn(&Path);

/// `(what, damage, a word the repair or warning must contain)`.
const CASES: &[(&str, Damage, &str)] = &[
    (
        "an unfinished snapshot (garbage)",
        |dir| std::fs::write(dir.join("snap.00000000FFFFFFFF.generating"), [7u8; 40]).unwrap(),
        ".generating",
    ),
    (
        "an unfinished snapshot (a cut-off copy of the real one)",
        |dir| {
            let real = snapshots(dir).pop().unwrap();
            let bytes = std::fs::read(&real).unwrap();
            let name = format!("{}.generating", real.file_name().unwrap().to_string_lossy());
            std::fs::write(dir.join(name), &bytes[..bytes.len() / 2]).unwrap();
        },
        ".generating",
    ),
    (
        "an empty unfinished snapshot",
        |dir| std::fs::write(dir.join("snap.0000000000000FFF.generating"), []).unwrap(),
        ".generating",
    ),
    (
        "a damaged snapshot",
        |dir| {
            let real = snapshots(dir).pop().unwrap();
            flip(&real, 20);
        },
        "checksum",
    ),
    (
        "a truncated snapshot",
        |dir| {
            let real = snapshots(dir).pop().unwrap();
            let bytes = std::fs::read(&real).unwrap();
            std::fs::write(&real, &bytes[..5]).unwrap();
        },
        "checksum",
    ),
    (
        "a snapshot whose checksum holds but whose contents sled cannot read",
        |dir| {
            let real = snapshots(dir).pop().unwrap();
            let body = [0xEEu8; 64];
            let mut bytes = body.to_vec();
            bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&crc32fast_hash(&body).to_le_bytes());
            std::fs::write(&real, bytes).unwrap();
        },
        "refused to open",
    ),
    ("a damaged conf", |dir| flip(&dir.join("conf"), 3), "conf"),
    ("a damaged conf checksum", |dir| flip(&dir.join("conf"), 60), "conf"),
    (
        "a cut-off conf",
        |dir| {
            let bytes = std::fs::read(dir.join("conf")).unwrap();
            std::fs::write(dir.join("conf"), &bytes[..20]).unwrap();
        },
        "conf",
    ),
    ("a damaged head slot 0", |dir| flip(&dir.join("purse-head"), 4), "head slot 0"),
    ("a damaged head slot 1", |dir| flip(&dir.join("purse-head"), 32 + 10), "head slot 1"),
];

/// CRC-32 (IEEE), as sled's snapshot files use; written out here so the test does not share
/// the code it checks.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[tokio::test]
async fn repairable_leftovers_are_repaired_reported_and_change_no_answer() {
    let pristine = tempfile::tempdir().unwrap();
    prepared(pristine.path()).await;
    let (expected, repairs) = answers(pristine.path()).await.unwrap();
    assert!(repairs.is_empty(), "a clean ledger reports no repair: {repairs:?}");
    for (what, damage, word) in CASES {
        let copy = tempfile::tempdir().unwrap();
        common::copy_dir(pristine.path(), copy.path());
        damage(copy.path());
        let Ok((got, reported)) = answers(copy.path()).await.map_err(|code| eprintln!("FAIL {what}: {code:?}")) else {
            continue;
        };
        assert_eq!(got, expected, "{what}: the answers changed");
        assert!(
            reported.iter().any(|line| line.contains(word)),
            "{what}: nothing reported with {word:?}: {reported:?}"
        );
        // Repaired once: the next open finds nothing more to repair or warn about.
        let (again, reported_again) = answers(copy.path()).await.unwrap();
        assert_eq!(again, expected, "{what}: second open");
        let new: Vec<_> = reported_again.iter().filter(|line| !reported.contains(line)).collect();
        assert!(new.is_empty(), "{what}: the second open repaired again: {new:?}");
        let warnings_now = purse_ledger::Ledger::open(purse_ledger::LedgerConfig::new(copy.path())).await.unwrap();
        let report = warnings_now.verify().await.unwrap();
        assert!(report.warnings.is_empty(), "{what}: still warned after the repair: {:?}", report.warnings);
        warnings_now.close().await.unwrap();
    }
}

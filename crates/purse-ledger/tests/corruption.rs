//! A damaged log is reported as CORRUPTION on open, never a panic or a silent partial state.

mod common;

use common::{charge, open};
use purse_core::ErrorCode;
use purse_ledger::{Ledger, LedgerConfig};

const MARKER: &str = "MARKER-7f3a9c";

async fn write_marked_ledger(path: &std::path::Path, flows: usize) {
    let ledger = open(path).await;
    for index in 0..flows {
        let mut command = charge(&format!("r{index}"), &format!("o{index}"), &format!("a{}", index % 7), "1.00");
        command.remark = Some(format!("{MARKER}-{index:06}"));
        ledger.submit(command).await.unwrap();
    }
    ledger.close().await.unwrap();
}

/// Every offset in sled's data file where a marked remark is stored.
fn marker_offsets(path: &std::path::Path) -> Vec<usize> {
    let bytes = std::fs::read(path.join("db")).unwrap();
    bytes
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, window)| *window == MARKER.as_bytes())
        .map(|(at, _)| at)
        .collect()
}

#[tokio::test]
async fn a_flipped_byte_in_a_flow_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_marked_ledger(dir.path(), 200).await;
    let offsets = marker_offsets(dir.path());
    assert!(!offsets.is_empty(), "the remarks are stored in sled's data file");
    let mut failures = 0;
    // Damage each copy sled holds of some flow, then reopen.
    for &at in offsets.iter().step_by((offsets.len() / 5).max(1)) {
        let copy = tempfile::tempdir().unwrap();
        common::copy_dir(dir.path(), copy.path());
        let mut bytes = std::fs::read(copy.path().join("db")).unwrap();
        bytes[at + 2] ^= 0x01;
        std::fs::write(copy.path().join("db"), &bytes).unwrap();
        match Ledger::open(LedgerConfig::new(copy.path())).await {
            Err(error) => {
                assert_eq!(error.code(), ErrorCode::Corruption, "offset {at}: {error}");
                failures += 1;
            }
            Ok(ledger) => {
                // sled may hold an older, superseded copy of the page there: then the ledger
                // must still be whole and equal to what was written.
                let report = ledger.verify().await.unwrap_or_else(|error| panic!("offset {at}: {error}"));
                assert_eq!(report.flows, 200, "offset {at}: a damaged ledger opened with flows missing");
                ledger.close().await.unwrap();
            }
        }
    }
    println!("{failures} of the damaged copies were refused as CORRUPTION");
    assert!(failures > 0, "no damage was detected at all");
}

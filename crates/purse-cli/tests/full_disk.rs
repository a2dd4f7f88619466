//! A full disk: every command fails with `STORAGE` and a message that says the disk is full and
//! that nothing acknowledged is lost (sled writes when it opens, so reads fail too), a group cut
//! off by it reports that cause, and once space is freed the ledger opens with every
//! acknowledged flow. Needs a small filesystem of its own: the test mounts a tmpfs, which takes
//! root (CI runs as root); elsewhere it says it did not run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(bytes: u64) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap().keep();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Mount(dir))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn purse(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_purse")).arg("--data").arg(data).args(args).output().unwrap()
}

fn charge(data: &Path, index: usize) -> Output {
    let (request, order) = (format!("r{index}"), format!("o{index}"));
    purse(
        data,
        &["charge", "--request-id", &request, "--outer-order-id", &order, "--account-id", "a", "--real-value", "1"],
    )
}

/// The error document of a failed run: (code, message).
fn error_of(output: &Output) -> (String, String) {
    assert!(!output.status.success(), "expected a failure, got {}", String::from_utf8_lossy(&output.stdout));
    let document: Value = serde_json::from_slice(&output.stderr).expect("a JSON error document");
    let text = |field: &str| document["error"][field].as_str().unwrap_or_default().to_owned();
    (text("code"), text("message"))
}

/// Fills the filesystem holding `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    // The last partial chunk, byte by byte.
    while std::io::Write::write_all(&mut file, &[0]).is_ok() {}
    filler
}

fn check_disk_full(what: &str, output: &Output) {
    let (code, message) = error_of(output);
    assert_eq!(code, "STORAGE", "{what}: {message}");
    assert!(message.contains("the disk is full"), "{what}: the message does not say the disk is full: {message}");
    assert!(message.contains("nothing acknowledged is lost"), "{what}: {message}");
}

#[test]
fn a_full_disk_is_named_and_loses_nothing() {
    let running_as_root = Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout == b"0\n");
    let Some(mount) = Mount::new(4 << 20) else {
        assert!(!running_as_root, "running as root, but a tmpfs could not be mounted");
        eprintln!("full_disk: not run: mounting a tmpfs needs root");
        return;
    };
    let data = mount.0.join("ledger");
    for index in 0..3 {
        assert!(charge(&data, index).status.success());
    }
    let filler = fill(&mount.0);
    check_disk_full("a read", &purse(&data, &["account", "--account-id", "a"]));
    check_disk_full("a write", &charge(&data, 3));
    std::fs::remove_file(&filler).unwrap();

    // A group of many writes (20,000 Zenlayer records, some 3.6 MB of log): room to open the
    // ledger, not to finish the group.
    let outside = tempfile::tempdir().unwrap();
    let records = outside.path().join("history.json");
    let data_set: Vec<String> = (0..20_000)
        .map(|index| {
            format!(
                "{{\"transactionType\":\"RECHARGE\",\"amount\":1.00,\"paymentMethod\":\"CREDIT_CARD\",\
                 \"state\":\"PAY_SUCCESS\",\"transactionTime\":\"2023-01-01T00:00:00Z\",\
                 \"accountUid\":\"u-{}\",\"transactionId\":\"{}\"}}",
                index % 50,
                10_000_000 + index
            )
        })
        .collect();
    let page = format!(
        "{{\"requestId\":\"T-1\",\"response\":{{\"requestId\":\"T-1\",\"totalCount\":20000,\"dataSet\":[{}]}}}}",
        data_set.join(",")
    );
    std::fs::write(&records, page).unwrap();
    let filler = fill(&mount.0);
    let full = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&filler).unwrap().set_len(full - (600 << 10)).unwrap();
    let ingest = purse(&data, &["ingest", "--provider", "zenlayer", records.to_str().unwrap()]);
    check_disk_full("a group cut off by the full disk", &ingest);
    std::fs::remove_file(&filler).unwrap();

    let verify = purse(&data, &["verify"]);
    assert!(verify.status.success(), "after freeing space: {}", String::from_utf8_lossy(&verify.stderr));
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    let entries = report["entries"].as_u64().unwrap();
    assert_eq!(entries, 3, "only the three acknowledged charges are there: {report}");
    let account: Value = serde_json::from_slice(&purse(&data, &["account", "--account-id", "a"]).stdout).unwrap();
    assert_eq!(account["real_value"], "3.00", "{account}");
}

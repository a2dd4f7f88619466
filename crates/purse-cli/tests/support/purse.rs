//! `Purse`: one data directory and the way to run the built binary on it, shared by the CLI's
//! tests (included with `#[path]`; not a test target of its own).
#![allow(dead_code)]

#[path = "words.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
pub use support::words;
use tempfile::TempDir;

/// One data directory and the way to run `purse` on it.
pub struct Purse {
    pub dir: TempDir,
}

impl Purse {
    pub fn new() -> Purse {
        Purse { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The ledger, in a folder of its own: the test's files (rules) sit beside it.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }

    /// Runs `purse --data DIR` with the words of `line` (see [`words`]).
    pub fn run(&self, line: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_purse"))
            .arg("--data")
            .arg(self.data())
            .args(words(line))
            .env_remove("PURSE_DATA")
            .output()
            .expect("run purse")
    }

    /// Runs a command that must succeed; returns its exact stdout.
    pub fn ok_text(&self, line: &str) -> String {
        let output = self.run(line);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{line}: failed: {stderr}");
        assert!(stderr.is_empty(), "{line}: wrote to stderr: {stderr}");
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    pub fn ok(&self, line: &str) -> Value {
        let text = self.ok_text(line);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{line}: {error} in {text}"))
    }

    /// Runs a command that must fail with `code` and `exit`; returns the error message.
    pub fn fails(&self, line: &str, code: &str, exit: i32) -> String {
        let output = self.run(line);
        assert_eq!(output.status.code(), Some(exit), "{line}: {output:?}");
        assert!(output.stdout.is_empty(), "{line}: wrote to stdout on failure: {output:?}");
        let error: Value = serde_json::from_slice(&output.stderr).expect("stderr is one JSON document");
        assert_eq!(error["error"]["code"], code, "{line}: {error}");
        let message = error["error"]["message"].as_str().expect("message is a string");
        assert!(!message.is_empty(), "{line}: empty message");
        message.to_owned()
    }
}

//! `Server`: the built binary's `purse serve` on 127.0.0.1:0 over a `Purse` data directory,
//! shared by the CLI's server tests (included with `#[path]`; not a test target of its own).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::purse::Purse;

/// A running `purse serve`.
pub struct Server {
    child: Child,
    pub address: String,
    pub url: String,
}

impl Server {
    pub fn start(purse: &Purse, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_purse"))
            .arg("--data")
            .arg(purse.data())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("PURSE_DATA")
            .env("PURSE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start purse serve");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("first line");
        let first: Value = serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line:?}"));
        let address = first["listen"].as_str().expect("listen").to_owned();
        let url = first["url"].as_str().expect("url").to_owned();
        Server { child, address, url }
    }

    /// SIGTERM, then the exit status and how long the server took to go.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration, String) {
        let signalled = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let deadline = signalled + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let mut rest = String::new();
                if let Some(stdout) = self.child.stdout.as_mut() {
                    let _ = stdout.read_to_string(&mut rest);
                }
                return (status, signalled.elapsed(), rest);
            }
            assert!(Instant::now() < deadline, "the server did not exit within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

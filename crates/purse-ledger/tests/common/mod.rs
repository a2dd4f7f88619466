//! Helpers shared by the ledger's integration tests.
#![allow(dead_code)]

use purse_core::{Action, Amount, Command, Scale};
use purse_ledger::{Ledger, LedgerConfig};

pub fn money(text: &str) -> Amount {
    Amount::parse(text, Scale::CNY).unwrap()
}

pub fn charge(request: &str, order: &str, account: &str, real: &str) -> Command {
    Command::new(
        request,
        order,
        account,
        Action::Charge { real: money(real), gift: None, pre: Amount::ZERO, trigger_gift: false },
    )
}

pub fn deduct(request: &str, order: &str, account: &str, value: &str) -> Command {
    Command::new(request, order, account, Action::Deduct { value: money(value) })
}

pub async fn open(path: &std::path::Path) -> Ledger {
    Ledger::open(LedgerConfig::new(path)).await.expect("open ledger")
}

/// Opens the ledger again. A clean close waits until sled has let go of its lock, so this needs
/// no retry: a refusal here is a bug.
pub async fn reopen(path: &std::path::Path) -> Result<Ledger, purse_ledger::Error> {
    Ledger::open(LedgerConfig::new(path)).await
}

/// A logical dump of everything a ledger holds: every log entry, account and rule, as text.
/// sled rewrites its files freely, so "byte-identical" is checked on this instead.
pub async fn dump(ledger: &Ledger, accounts: &[&str]) -> String {
    let mut out = String::new();
    let report = ledger.verify().await.expect("verify");
    out.push_str(&format!("{report:?}\n"));
    for sequence in 1..=report.entries {
        match ledger.flow(purse_ledger::FlowKey::Id(sequence)).await {
            Ok(flow) => out.push_str(&format!("{flow:?}\n")),
            Err(error) => out.push_str(&format!("{sequence}: {}\n", error.code())),
        }
    }
    for account in accounts {
        out.push_str(&format!("{:?}\n", ledger.account(account).await.map_err(|error| error.code())));
    }
    out.push_str(&format!("{:?}\n", ledger.rules(None).await.expect("rules")));
    out
}

/// A crash test's rounds and seed: `PURSE_CRASH_ROUNDS` (default `default_rounds`) and
/// `PURSE_CRASH_SEED` (default: from the clock).
pub fn crash_settings(default_rounds: u64) -> (u64, u64) {
    let rounds = std::env::var("PURSE_CRASH_ROUNDS").ok().and_then(|text| text.parse().ok()).unwrap_or(default_rounds);
    (rounds, seed("PURSE_CRASH_SEED"))
}

/// A random test's seed: the environment variable `name`, or from the clock.
pub fn seed(name: &str) -> u64 {
    std::env::var(name).ok().and_then(|text| text.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_secs() ^ u64::from(elapsed.subsec_nanos()) << 20)
            | 1
    })
}

/// Copies the directory `from` into `to` (created), folders included: a ledger to damage or
/// replay without touching the original.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

//! The expiry sweep over many accounts (spec §11, docs/performance.md "The expiry sweep"):
//! `cargo run --release -p purse-benches --bin sweep -- [ACCOUNTS]` (default 100,000).
//!
//! Makes a fresh ledger in a temporary directory where every account holds a GIFT lot that
//! expires at one instant and one account in ten also an open hold that expires then; reopens
//! it (so the writer's counters start at zero), sweeps at that instant, and prints one line of
//! JSON: the sweep's wall time, the flows it wrote, its commits, and the writer's longest batch
//! (the longest any other request would have waited). Then it sweeps again and reports that
//! the second sweep wrote nothing.

use std::time::Instant;

use purse_core::{Action, Amount, Command, Timestamp, Zone};
use purse_ledger::{GroupMode, Ledger, LedgerConfig, SweepScope};

const CHUNK: usize = 4096;

#[tokio::main]
async fn main() {
    let accounts: usize = std::env::args().nth(1).map_or(100_000, |text| text.parse().expect("ACCOUNTS is a number"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let zone = Zone::CHINA;
    let at = |text: &str| zone.parse_local(text).expect("a time");
    let (charged, expiry) = (at("2027-01-10 00:00:00"), at("2027-02-01 00:00:00"));
    let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.expect("open");
    let build = Instant::now();
    for start in (0..accounts).step_by(CHUNK) {
        let mut commands = Vec::with_capacity(CHUNK * 2);
        for index in start..(start + CHUNK).min(accounts) {
            commands.push(charge(index, charged, expiry));
            if index % 10 == 0 {
                commands.push(hold(index, charged, expiry));
            }
        }
        ledger.submit_group(commands, GroupMode::AllOrNothing).await.expect("setup group");
    }
    let build_seconds = build.elapsed().as_secs_f64();
    ledger.close().await.expect("close");

    let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.expect("reopen");
    let before = ledger.stats().await.expect("stats");
    let started = Instant::now();
    let flows = ledger.expire(expiry, SweepScope::All).await.expect("sweep");
    let seconds = started.elapsed().as_secs_f64();
    let after = ledger.stats().await.expect("stats");
    let again = ledger.expire(expiry, SweepScope::All).await.expect("second sweep");
    ledger.verify().await.expect("verify");
    ledger.close().await.expect("close");
    println!(
        "{{\"accounts\": {accounts}, \"setup_seconds\": {build_seconds:.1}, \"sweep_seconds\": {seconds:.2}, \
         \"flows_written\": {}, \"commits\": {}, \"writer_longest_batch_ms\": {}.{}, \"second_sweep_flows\": {}}}",
        flows.len(),
        after.commits - before.commits,
        after.batch_micros_max / 1000,
        after.batch_micros_max % 1000 / 100,
        again.len()
    );
}

fn charge(index: usize, at: Timestamp, expiry: Timestamp) -> Command {
    let action = Action::Charge {
        real: Amount::from_minor(10_000),
        gift: Some(Amount::from_minor(2_000)),
        pre: Amount::ZERO,
        trigger_gift: false,
    };
    let mut command = Command::new(&format!("c-{index}"), &format!("c-{index}"), &format!("acct-{index:07}"), action);
    command.biz_date = Some(at);
    command.gift_expire_time = Some(expiry);
    command
}

fn hold(index: usize, at: Timestamp, expiry: Timestamp) -> Command {
    let action = Action::Hold { value: Amount::from_minor(3_000), expire_time: Some(expiry) };
    let mut command = Command::new(&format!("h-{index}"), &format!("h-{index}"), &format!("acct-{index:07}"), action);
    command.biz_date = Some(at);
    command
}

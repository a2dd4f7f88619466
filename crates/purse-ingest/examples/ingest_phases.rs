//! Times the phases of one ingestion, for docs/ingest.md ("Performance"):
//!
//! ```text
//! cargo run --release -p purse-ingest --example ingest_phases -- zenlayer /tmp/zenlayer.jsonl /tmp/fresh-ledger
//! ```
//!
//! Prints the seconds spent reading (parse and map every record, no ledger), then the seconds of
//! a whole run (read, plan, one all-or-nothing group, reconcile) into the given data directory.

use std::time::Instant;

use purse_ingest::{Input, Options, Provider, Silent};
use purse_ledger::{Ledger, LedgerConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [provider, file, data] = arguments.as_slice() else {
        return Err("usage: ingest_phases PROVIDER FILE DATA_DIR".into());
    };
    let provider = Provider::parse(provider).ok_or("provider is kybio, alsc or zenlayer")?;
    let started = Instant::now();
    let items = purse_ingest::read_items(Options::new(provider), purse_core::Scale::CNY, vec![Input::open(file)?])?;
    let read = started.elapsed();
    println!("read: {} items in {read:.2?} ({}/s)", items.len(), per_second(items.len() as u64, read));
    drop(items);
    let ledger = Ledger::open(LedgerConfig::new(data)).await?;
    let started = Instant::now();
    let report = purse_ingest::run(&ledger, vec![Input::open(file)?], Options::new(provider), &Silent).await?;
    let whole = started.elapsed();
    println!(
        "run: {} records ({} applied, {} skipped, {} rejected) in {whole:.2?} ({}/s), committed {}",
        report.records,
        report.applied,
        report.skipped.len(),
        report.rejected.len(),
        per_second(report.records, whole),
        report.committed
    );
    let started = Instant::now();
    drop(report);
    ledger.close().await?;
    println!("close: {:.2?}", started.elapsed());
    Ok(())
}

/// Records per second, in integers (the workspace denies float arithmetic).
fn per_second(records: u64, elapsed: std::time::Duration) -> u128 {
    u128::from(records) * 1_000_000 / elapsed.as_micros().max(1)
}

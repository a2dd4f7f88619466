//! Writes a generated Zenlayer `DescribeRechargeRefundHistory` export (JSON lines, pages of
//! 5000) to stdout, for the throughput measurement in docs/ingest.md:
//!
//! ```text
//! cargo run --release -p purse-ingest --example zenlayer_history -- 1000000 2000 > /tmp/zenlayer.jsonl
//! ```

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let records = arguments.next().and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    let accounts = arguments.next().and_then(|text| text.parse().ok()).unwrap_or(2_000);
    let mut out = BufWriter::new(std::io::stdout().lock());
    purse_ingest::testing::zenlayer_history(records, accounts, 5_000, &mut out)?;
    out.flush()
}

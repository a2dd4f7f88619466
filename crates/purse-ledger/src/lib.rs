//! purse-ledger: the durable purse ledger.
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! An append-only log of flows in sled, one writer thread that group-commits every command
//! durably (flush + fdatasync) before answering, projections (balances, orders, idempotency
//! records, per-account and card indexes) folded from the log in memory and rebuilt on open, and the
//! async [`Ledger`] handle.
//!
//! **Architecture Invariant:** only `store.rs` touches sled, and only the writer thread
//! touches the store and the projections. Every write goes through `purse_core::decide`.
//!
//! ```no_run
//! # async fn example() -> Result<(), purse_ledger::Error> {
//! use purse_core::{Action, Amount, Command};
//! use purse_ledger::{Ledger, LedgerConfig};
//!
//! let ledger = Ledger::open(LedgerConfig::new("./purse-data")).await?;
//! let charge = Command::new("req-1", "order-1", "alice", Action::Charge {
//!     real: Amount::from_minor(10_000), gift: None, pre: Amount::ZERO, trigger_gift: false,
//! });
//! let flow = ledger.submit(charge).await?;
//! assert_eq!(flow.after().and_then(|after| after.total()), Some(Amount::from_minor(10_000)));
//! assert_eq!(ledger.detail(&flow)?.current_value, "100.00"); // the spec §5 view
//! ledger.close().await?;
//! # Ok(()) }
//! ```

/// The README's library example, compiled as a doctest so that it keeps compiling.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc(hidden)]
pub mod bench_support;
mod block;
mod cold_runs;
mod error;
mod head;
mod history;
#[cfg(feature = "jetstream")]
pub mod jetstream;
pub mod journal;
mod ledger;
mod liability;
mod pages;
mod pipeline;
mod point_in_time;
mod projection;
mod record;
mod replicated;
#[doc(hidden)]
pub mod sim_support;
mod sled_storage;
mod snapshot;
mod snapshot_format;
pub mod storage;
mod store;
mod sweep;
#[cfg(test)]
mod test_storage;
mod verify;
mod wal;
/// Crash tests' tools (a power loss's damage to the write-ahead log).
pub mod crash_support {
    pub use crate::wal::lose_unacknowledged_tail;
}
mod writer;

pub use error::Error;
pub use history::{
    AccountPage, AccountQuery, ExportFilter, ExportPage, ExportStream, FlowTypeSum, Statement, EXPORT_PAGE_ENTRIES_MAX,
};
pub use ledger::{
    AccountView, Expiring, FlowKey, FlowPage, FlowQuery, GroupSender, Ledger, LedgerConfig, Transfer, TransferHold,
    VerifyReport, BATCH_COMMANDS_MAX_DEFAULT, CACHE_BYTES_DEFAULT, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX,
    QUEUE_COMMANDS_MAX_DEFAULT, SUBMIT_BATCH_MAX,
};
pub use liability::{BrandLiability, Liability, LiabilityAt, LiabilitySum, WideBuckets, EXPIRY_WINDOWS_DAYS};
pub use point_in_time::AsOf;
pub use record::{flow_from_bytes, flow_to_bytes, FLOW_BYTES_FORMAT};
pub use snapshot::{
    SnapshotInfo, SnapshotStats, COLD_SNAPSHOT_EVERY_ENTRIES_MAX, SNAPSHOTS_KEPT, SNAPSHOT_EVERY_DEFAULT,
    SNAPSHOT_EVERY_ENTRIES_DEFAULT, SNAPSHOT_TAIL_ENTRIES_MIN,
};
pub use sweep::{SweepScope, SWEEP_GROUP_ACCOUNTS, SWEEP_GROUP_COMMANDS};
pub use writer::{BatchItem, FlowSummary, GroupItem, GroupMode, GroupOutcome, WriterStats};

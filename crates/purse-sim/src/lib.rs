//! purse-sim: a deterministic simulator of purse, in the spirit of TigerBeetle's VOPR and
//! FoundationDB's simulation testing.
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! One seed decides everything: the clients' workload ([`workload`]), the faults of the
//! in-memory disk ([`disk`], [`fault`]), when the process crashes or the power fails, and
//! which bit flips at rest. The real writer, store and projections run synchronously over that
//! disk ([`purse_ledger::sim_support::SyncLedger`]); every answer and every reopened ledger is
//! checked against the plain reference model of `purse-proptests` ([`check`]). A failure names
//! its seed, and the same seed replays it exactly.

pub mod check;
pub mod disk;
pub mod fault;
pub mod rng;
pub mod sim;
pub mod workload;

pub use check::Tally;
pub use disk::{Breakage, CrashKind, SimDisk, SimStorage};
pub use fault::{Coverage, Fault, Faults};
pub use sim::{run, Failure, Options, Run};

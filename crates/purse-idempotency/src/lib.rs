//! purse-idempotency: the idempotency rules of spec §3, as storage-agnostic logic.
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! Every write carries a `request_id`, chosen by the caller. The ledger keeps one [`Record`] per
//! `request_id`: the [`Fingerprint`] of the command that used it, and the id of the flow that
//! command wrote. When a command comes in, [`decide`] (or [`Index::check`]) says what to do:
//!
//! - [`Decision::Fresh`]: the `request_id` is new; decide and write the command as usual, and
//!   write its record in the same atomic write as its flow;
//! - [`Decision::Replay`]: the same request was already accepted; answer with the flow recorded
//!   for it and write nothing;
//! - [`Decision::Conflict`]: the `request_id` was used for a different request; refuse with
//!   [`Error::Conflict`] (`IDEMPOTENCY_CONFLICT`) and write nothing.
//!
//! A rejected command writes nothing, so it leaves no record: a retry may succeed later.
//!
//! **Architecture Invariant:** nothing here does I/O or knows of sled, tokio or serde. The ledger
//! stores [`Record`]s in its own format and rebuilds its [`Index`] from the log on open.
//!
//! ```
//! use purse_core::{Action, Amount, Command};
//! use purse_idempotency::{fingerprint, Decision, Index, Record};
//!
//! let deduct = |request_id: &str, minor: i64| {
//!     Command::new(request_id, "order-1", "alice", Action::Deduct { value: Amount::from_minor(minor) })
//! };
//! let mut index = Index::new();
//! let first = deduct("req-1", 500);
//! assert_eq!(index.check(&first.request_id, &fingerprint(&first)), Decision::Fresh);
//! index.insert("req-1", Record { fingerprint: fingerprint(&first), flow_id: 7 }).unwrap();
//!
//! // A retry of the same request replays flow 7; a different request under the same id conflicts.
//! assert_eq!(index.check("req-1", &fingerprint(&deduct("req-1", 500))), Decision::Replay { flow_id: 7 });
//! assert_eq!(index.check("req-1", &fingerprint(&deduct("req-1", 600))), Decision::Conflict { flow_id: 7 });
//! ```

mod error;
mod fingerprint;
mod index;
mod record;

pub use error::Error;
pub use fingerprint::{fingerprint, Fingerprint, FINGERPRINT_BYTES, FINGERPRINT_FORMAT_VERSION};
pub use index::Index;
pub use record::{decide, Decision, Record};

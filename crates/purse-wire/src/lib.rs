//! purse-wire: the text edge of purse, shared by the `purse` command line and `purse serve`.
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! - [`args`]: every command's options as text, one struct per command (clap derives them for
//!   the command line; the server fills them from JSON bodies).
//! - [`command`]: from those options to the core's `Command` and the ledger's queries, at the
//!   ledger's scale and time zone.
//! - [`render`]: the JSON documents of spec §4, §5, §7 and §12, key order fixed by the code.
//! - [`export`]: spec §12's export lines, JSON lines or CSV.
//! - [`strict_json`], [`rules_file`]: strict JSON texts (`ext_info`) and rules documents.
//! - [`error`]: the one error of this edge, mapped onto the closed codes of spec §6.
//!
//! **Architecture Invariant:** nothing here decides anything about money: only text is checked
//! (syntax, precision, time formats); every business rule is `purse_core::decide`'s.

pub mod args;
pub mod command;
pub mod error;
pub mod export;
pub mod render;
pub mod rules_file;
pub mod strict_json;

pub use error::WireError;

//! The report of a run: one JSON document, its fields in the order the issue lists them.

use purse_core::ErrorCode;
use serde::Serialize;

use crate::error::Error;
use crate::options::Provider;
use crate::record::{Effect, Item};

/// What a run did, record by record where it matters.
///
/// `index` is a record's position in the run's input: 0-based, over all inputs in the order
/// given. An input that stops being readable takes one index for the rest of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub provider: &'static str,
    /// Records read, including those that could not be read and inputs that stopped early.
    pub records: u64,
    /// Records the ledger accepted as new flows. They are in the ledger only if `committed`.
    pub applied: u64,
    /// Records the ledger already held (from an earlier run, or twice in this one).
    pub duplicates: u64,
    /// Opening balances (IMPORT flows) the ledger accepted in this run (in the ledger only if
    /// `committed`). One the writer skipped because the account already existed is in `skipped`.
    pub opening_balances: u64,
    pub skipped: Vec<Skipped>,
    pub rejected: Vec<Rejected>,
    pub mismatches: Vec<Mismatch>,
    /// Whether the run's new flows are durable in the ledger.
    pub committed: bool,
}

/// A record that moves no money, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub index: u64,
    pub record_id: Option<String>,
    pub reason: String,
}

/// A record that was refused, before the ledger or by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub index: u64,
    pub record_id: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// A balance a record states that differs from the ledger's at that point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub index: u64,
    pub record_id: String,
    pub account_id: String,
    /// `before` or `after` the record.
    pub balance: &'static str,
    /// `REAL`, `GIFT`, `PRE` or `TOTAL`.
    pub bucket: &'static str,
    /// What the provider says, at the ledger's scale.
    pub provider: String,
    /// What the ledger holds.
    pub ledger: String,
}

impl Report {
    pub(crate) fn new(provider: Provider, records: u64) -> Report {
        Report {
            provider: provider.as_str(),
            records,
            applied: 0,
            duplicates: 0,
            opening_balances: 0,
            skipped: Vec::new(),
            rejected: Vec::new(),
            mismatches: Vec::new(),
            committed: false,
        }
    }

    /// No record was rejected and every stated balance matched: exit 0 on the command line.
    pub fn clean(&self) -> bool {
        self.rejected.is_empty() && self.mismatches.is_empty()
    }

    /// What reading alone decided: unreadable records and records that move no money.
    pub(crate) fn add_parsed(&mut self, items: &[Item]) {
        for (index, item) in items.iter().enumerate() {
            match item {
                Item::Rejected(rejection) => {
                    self.reject_error(index, rejection.record_id.as_deref(), &rejection.error, "");
                }
                Item::Record(record) => {
                    if let Effect::Skip { reason } = &record.effect {
                        self.skip(index, Some(&record.record_id), reason);
                    }
                }
            }
        }
    }

    pub(crate) fn skip(&mut self, index: usize, record_id: Option<&str>, reason: &str) {
        self.skipped.push(Skipped {
            index: index as u64,
            record_id: record_id.map(str::to_owned),
            reason: reason.into(),
        });
    }

    pub(crate) fn reject(&mut self, index: usize, record_id: Option<&str>, code: ErrorCode, message: String) {
        self.rejected.push(Rejected {
            index: index as u64,
            record_id: record_id.map(str::to_owned),
            code: code.as_str(),
            message,
        });
    }

    pub(crate) fn reject_error(&mut self, index: usize, record_id: Option<&str>, error: &Error, prefix: &str) {
        self.reject(index, record_id, error.code(), format!("{prefix}{error}"));
    }

    /// Puts every list in index order (records rejected by the ledger come after those
    /// rejected while reading, but belong among them).
    pub(crate) fn finish(&mut self) {
        self.skipped.sort_by_key(|skipped| skipped.index);
        self.rejected.sort_by_key(|rejected| rejected.index);
        self.mismatches.sort_by_key(|mismatch| mismatch.index);
    }
}

//! The in-memory index of every recorded `request_id`.

use purse_core::StrTable;

use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::record::{decide, Decision, Record};

/// Every `request_id` the ledger has recorded, with its [`Record`].
///
/// The ledger keeps one `Index`, rebuilt from the log on open (one [`Index::insert`] per flow)
/// and extended by each accepted write after its atomic write succeeded. It holds no I/O and is
/// never the source of truth: the log is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// A compact table (no allocation per id, 8 index bytes per record): a million-flow ledger
    /// keeps a million of these.
    records: StrTable<Record>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// A copy to iterate over, sharing this index's storage until either changes it, that
    /// answers no lookup ([`purse_core::StrTable::unindexed_copy`]): what a snapshot encodes.
    pub fn unindexed_copy(&self) -> Index {
        Index { records: self.records.unindexed_copy() }
    }

    /// Moves what changed while a copy shared the storage back into it, once the copy is gone
    /// ([`purse_core::StrTable::settle`]).
    pub fn settle(&mut self) {
        self.records.settle();
    }

    /// An empty index with room for `records` records without growing.
    pub fn with_capacity(records: usize) -> Index {
        Index { records: StrTable::with_capacity(records) }
    }

    /// The decision for a command with `request_id` and `fingerprint` (see [`decide`]).
    pub fn check(&self, request_id: &str, fingerprint: &Fingerprint) -> Decision {
        decide(self.records.get(request_id), fingerprint)
    }

    /// Records `request_id` as used by `record`.
    ///
    /// Every `request_id` is recorded once. A second insert is refused with
    /// [`Error::DuplicateRecord`] (`CORRUPTION`) and leaves the index unchanged, whatever the
    /// record: with a different record the log would hold two flows for one request, and even
    /// the identical record means the same flow was fed in twice, which a correct rebuild or
    /// write never does. Callers check first ([`Index::check`]) and insert only on
    /// [`Decision::Fresh`].
    pub fn insert(&mut self, request_id: &str, record: Record) -> Result<(), Error> {
        match self.records.insert_new(request_id, record) {
            Ok(_) => Ok(()),
            Err(existing) => Err(Error::DuplicateRecord {
                flow_id: self.records.value_at(existing).flow_id,
                request_id: request_id.to_owned(),
            }),
        }
    }

    /// The record of `request_id`, if it has one.
    pub fn get(&self, request_id: &str) -> Option<&Record> {
        self.records.get(request_id)
    }

    /// How many `request_id`s are recorded.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no `request_id` is recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every `request_id` with its record, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Record)> + '_ {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(byte: u8, flow_id: u64) -> Record {
        Record { fingerprint: Fingerprint([byte; 32]), flow_id }
    }

    #[test]
    fn check_follows_inserts() {
        let mut index = Index::new();
        assert!(index.is_empty());
        assert_eq!(index.check("r1", &Fingerprint([1; 32])), Decision::Fresh);

        index.insert("r1", record(1, 7)).unwrap();
        index.insert("r2", record(2, 8)).unwrap();

        let check = |request_id: &str, byte: u8, expected: Decision| {
            assert_eq!(index.check(request_id, &Fingerprint([byte; 32])), expected, "{request_id} {byte}");
        };
        check("r1", 1, Decision::Replay { flow_id: 7 });
        check("r1", 2, Decision::Conflict { flow_id: 7 });
        check("r2", 2, Decision::Replay { flow_id: 8 });
        check("r2", 1, Decision::Conflict { flow_id: 8 });
        check("r3", 1, Decision::Fresh);
        // Keys are exact: no trimming or case folding.
        check("R1", 1, Decision::Fresh);
        check("r1 ", 1, Decision::Fresh);

        assert_eq!(index.len(), 2);
        assert!(!index.is_empty());
        assert_eq!(index.get("r1"), Some(&record(1, 7)));
        assert_eq!(index.get("r3"), None);
        let mut all: Vec<(&str, &Record)> = index.iter().collect();
        all.sort_by_key(|(request_id, _)| *request_id);
        assert_eq!(all, [("r1", &record(1, 7)), ("r2", &record(2, 8))]);
    }

    #[test]
    fn second_insert_is_refused_and_changes_nothing() {
        let duplicate = |flow_id| Err(Error::DuplicateRecord { request_id: "r1".into(), flow_id });
        let check = |second: Record| {
            let mut index = Index::new();
            index.insert("r1", record(1, 7)).unwrap();
            assert_eq!(index.insert("r1", second), duplicate(7), "{second:?}");
            assert_eq!(index.len(), 1);
            assert_eq!(index.get("r1"), Some(&record(1, 7)), "{second:?} must not replace the first record");
        };
        check(record(1, 7)); // identical
        check(record(1, 9)); // same request, another flow
        check(record(2, 7)); // another request, same flow
        check(record(2, 9)); // both different
    }
}

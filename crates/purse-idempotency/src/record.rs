//! What is kept per `request_id`, and the decision a new command gets against it.

use crate::fingerprint::Fingerprint;

/// What the ledger keeps per `request_id`: which request used it, and which flow that request
/// wrote.
///
/// The response itself is not kept. A replay re-renders it from the flow `flow_id`, and flows are
/// immutable in the log, so the replayed response is byte for byte the first one (spec §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record {
    /// The [`fingerprint`](crate::fingerprint()) of the command that used the `request_id`.
    pub fingerprint: Fingerprint,
    /// The flow that command wrote.
    pub flow_id: u64,
}

/// What to do with a command, given the record of its `request_id` (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The `request_id` has no record: decide the command and write it with a new record.
    Fresh,
    /// The same request was already accepted as flow `flow_id`: answer with that flow again and
    /// write nothing.
    Replay {
        /// The flow the first acceptance wrote.
        flow_id: u64,
    },
    /// The `request_id` was used by flow `flow_id` for a different request: refuse with
    /// [`Error::Conflict`](crate::Error::Conflict) and write nothing.
    Conflict {
        /// The flow the `request_id` is recorded for.
        flow_id: u64,
    },
}

/// The decision for a command with `fingerprint` whose `request_id` has the record `existing`.
pub fn decide(existing: Option<&Record>, fingerprint: &Fingerprint) -> Decision {
    match existing {
        None => Decision::Fresh,
        Some(record) if record.fingerprint == *fingerprint => Decision::Replay { flow_id: record.flow_id },
        Some(record) => Decision::Conflict { flow_id: record.flow_id },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_replay_conflict() {
        let ours = Fingerprint([1; 32]);
        // Differs from `ours` in the last byte only: the comparison must cover every byte.
        let mut theirs_bytes = [1; 32];
        theirs_bytes[31] = 2;
        let theirs = Fingerprint(theirs_bytes);
        let record = Record { fingerprint: ours, flow_id: 7 };

        let check = |existing: Option<&Record>, fingerprint: &Fingerprint, expected: Decision| {
            assert_eq!(decide(existing, fingerprint), expected, "{existing:?} vs {fingerprint}");
        };
        check(None, &ours, Decision::Fresh);
        check(Some(&record), &ours, Decision::Replay { flow_id: 7 });
        check(Some(&record), &theirs, Decision::Conflict { flow_id: 7 });
    }
}

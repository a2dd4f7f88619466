//! Node to node: the steps of a transfer between partitions that run on the destination's
//! owner when that is another node (docs/cluster.md §4), as NATS request and reply.
//!
//! Every node answers on its own subject, `PURSE.<cluster>.peer.<node>`; the coordinator (the
//! source's owner) finds the destination's owner through its lease and asks it. Two requests:
//! - `Credit`: step 2, the TRANSFER_IN derived from the HOLD flow sent (the destination's owner
//!   derives the command exactly as the coordinator would: [`crate::node`]'s `credit_command`);
//! - `Order`: the destination's flow of an order (a settled transfer's TRANSFER_IN, on retry).
//!
//! A node answers requests at once, side by side, but the credits of one transfer one at a time,
//! in the order they arrive: a credit sent before a later attempt of the same transfer is
//! decided before it, so a refusal the coordinator acts on (giving the hold back) is never
//! followed by an earlier credit applied late. Flows travel in
//! the log's own entry format ([`purse_ledger::flow_to_bytes`]); the rest is JSON.

use purse_core::{Amount, Bucket, Buckets, ErrorCode, Flow, LotCredit, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// The subject node `node` of cluster `cluster` answers on.
pub(crate) fn subject(cluster: &str, node: &str) -> String {
    format!("PURSE.{cluster}.peer.{node}")
}

/// What one node asks another.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PeerRequest {
    /// Step 2 of the transfer whose HOLD is `hold` (flow bytes), holding `parts` and `lots`.
    Credit { hold: Vec<u8>, parts: [i64; 3], lots: Vec<LotWire> },
    /// The flow of order `outer_order_id` in `account_id`'s partition.
    Order { account_id: String, outer_order_id: String },
}

/// The answer: a flow, or the error the other node met (its code and words).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PeerReply {
    Flow(Vec<u8>),
    Error { code: String, message: String },
}

/// One lot of a transfer hold.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LotWire {
    bucket: String,
    value: i64,
    expire_time: Option<i64>,
}

pub(crate) fn parts_to_wire(parts: &Buckets) -> [i64; 3] {
    [parts.real.minor(), parts.gift.minor(), parts.pre.minor()]
}

pub(crate) fn parts_of_wire(parts: [i64; 3]) -> Buckets {
    Buckets::from_minor(parts[0], parts[1], parts[2])
}

pub(crate) fn lots_to_wire(lots: &[LotCredit]) -> Vec<LotWire> {
    lots.iter()
        .map(|lot| LotWire {
            bucket: lot.bucket.as_str().to_owned(),
            value: lot.value.minor(),
            expire_time: lot.expire_time.map(|time| time.0),
        })
        .collect()
}

pub(crate) fn lots_of_wire(lots: Vec<LotWire>) -> Result<Vec<LotCredit>, ClusterError> {
    lots.into_iter()
        .map(|lot| {
            let bucket = Bucket::ALL.into_iter().find(|bucket| bucket.as_str() == lot.bucket).ok_or_else(|| {
                ClusterError::InvalidArgument(format!("a peer sent a lot of bucket {:?}", lot.bucket))
            })?;
            Ok(LotCredit { bucket, value: Amount::from_minor(lot.value), expire_time: lot.expire_time.map(Timestamp) })
        })
        .collect()
}

impl PeerReply {
    pub(crate) fn of(outcome: Result<Flow, ClusterError>) -> PeerReply {
        match outcome {
            Ok(flow) => PeerReply::Flow(purse_ledger::flow_to_bytes(&flow)),
            Err(error) => PeerReply::Error { code: error.code().as_str().to_owned(), message: error.to_string() },
        }
    }

    /// The flow, or the other node's error with its code (`STORAGE` for a code this version
    /// does not know: retried, never taken for a refusal).
    pub(crate) fn into_flow(self, node: &str) -> Result<Flow, ClusterError> {
        match self {
            PeerReply::Flow(bytes) => Ok(purse_ledger::flow_from_bytes(&bytes)?),
            PeerReply::Error { code, message } => {
                let code =
                    ErrorCode::ALL.into_iter().find(|known| known.as_str() == code).unwrap_or(ErrorCode::Storage);
                Err(ClusterError::Peer { node: node.to_owned(), code, message })
            }
        }
    }
}

//! The cluster's errors: the ledger's own, and what routing and NATS add. Every one maps to a
//! closed code of spec §6 through `code()`.

use purse_core::ErrorCode;

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The partition's ledger answered this.
    #[error(transparent)]
    Ledger(#[from] purse_ledger::Error),
    /// This node does not own the account's partition; `owner` is the node that holds its lease
    /// (if any), to retry there. `STORAGE`: nothing was written, and a retry elsewhere is safe.
    #[error("partition {partition}{} is not served here: {}", account_part(account), owner_part(owner.as_ref()))]
    NotOwner { partition: u32, account: String, owner: Option<crate::lease::Holder> },
    /// A transfer between partitions that its destination refused, as recorded when the hold
    /// was given back: the retry of a refused transfer gets the first refusal again.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// NATS (JetStream, its KV buckets) failed; the cause's own words kept.
    #[error("NATS: {0}")]
    Nats(String),
    /// A cluster argument is wrong (a name, a partition count, a missing cluster).
    #[error("{0}")]
    InvalidArgument(String),
    /// Another node answered this (a step of a transfer run on the destination's owner).
    #[error("node {node}: {message}")]
    Peer { node: String, code: ErrorCode, message: String },
}

impl ClusterError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ClusterError::Ledger(error) => error.code(),
            ClusterError::Refused { code, .. } | ClusterError::Peer { code, .. } => *code,
            ClusterError::NotOwner { .. } | ClusterError::Nats(_) => ErrorCode::Storage,
            ClusterError::InvalidArgument(_) => ErrorCode::InvalidArgument,
        }
    }
}

pub(crate) fn nats(what: &str, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats(format!("{what}: {error}"))
}

fn account_part(account: &str) -> String {
    if account.is_empty() {
        String::new()
    } else {
        format!(" (account {account:?})")
    }
}

fn owner_part(owner: Option<&crate::lease::Holder>) -> String {
    match owner {
        None => "no node owns it yet; retry shortly".to_owned(),
        Some(crate::lease::Holder { node, address: Some(address) }) => format!("node {node} at {address} owns it"),
        Some(crate::lease::Holder { node, address: None }) => format!("node {node} owns it"),
    }
}

//! The ledger's one error type. Every variant maps to a closed code of spec §6.

use purse_core::ErrorCode;

/// Why a ledger operation failed. `code()` gives the spec §6 code; `Display` the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command was refused by the domain rules; nothing was written.
    #[error(transparent)]
    Rejected(#[from] purse_core::Error),
    /// The request_id was used before for a different request; nothing was written.
    #[error(transparent)]
    Idempotency(#[from] purse_idempotency::Error),
    /// A query or configuration argument is wrong (page size, unknown flow id form, …).
    #[error("{0}")]
    InvalidArgument(String),
    /// Nothing is stored under the flow id or order id asked for.
    #[error("{0}")]
    NotFound(String),
    /// An account asked for does not exist.
    #[error("account {0:?} does not exist")]
    AccountNotFound(String),
    /// The disk or sled failed. The ledger refuses further writes until it is reopened.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The stored log contradicts itself or cannot be read back.
    #[error("the ledger's data is damaged: {0}")]
    Corruption(String),
    /// Another process (or handle) has the ledger open; `INVALID_ARGUMENT`. Its own variant
    /// so that a caller can tell it apart: the CLI then asks the `purse serve` holding it.
    #[error("{0}")]
    InUse(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Rejected(error) => error.code(),
            Error::Idempotency(error) => error.code(),
            Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::NotFound(_) => ErrorCode::OrderNotFound,
            Error::AccountNotFound(_) => ErrorCode::AccountNotFound,
            Error::Storage(_) => ErrorCode::Storage,
            Error::Corruption(_) => ErrorCode::Corruption,
            Error::InUse(_) => ErrorCode::InvalidArgument,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(error: sled::Error) -> Error {
        match error {
            sled::Error::Corruption { .. } => Error::Corruption(error.to_string()),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::Storage(error.to_string())
    }
}

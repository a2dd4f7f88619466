//! The one error type of ingestion, mapped onto the closed codes of spec §6.
//!
//! Two kinds of failure travel in it. A *record* failure (a missing field, a bad amount, an
//! unknown type, a record that contradicts itself) rejects that record and is reported with its
//! index; the run goes on. A *run* failure (an input that cannot be read, a bad option, a ledger
//! that cannot be reached) stops the run before anything is written.

use purse_core::{AmountError, ErrorCode};

/// Why a record, or a whole run, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input could not be opened or read (a run failure).
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    /// An option makes no sense (a run failure): a bad `--map-flow-type`, say.
    #[error("{message}")]
    Option { message: String },
    /// The bytes of an input are not the format they should be. Reading stops at this point
    /// of that input; what came before it stands.
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    /// A well-formed document that is not this provider's response at all.
    #[error("{path}: {message}")]
    NotAResponse { path: String, message: String },
    /// The provider answered with an error instead of records, or disowned the records it sent.
    #[error("{message}")]
    ProviderError { message: String },
    #[error("missing field {field}")]
    MissingField { field: &'static str },
    #[error("field {field}: {message}")]
    InvalidField { field: &'static str, message: String },
    #[error("field {field}: {source}")]
    Amount { field: &'static str, source: AmountError },
    /// A type name this adapter does not know. Never guessed: the user may map it.
    #[error("unknown {field} {name:?}{hint}")]
    UnknownType { field: &'static str, name: String, hint: &'static str },
    /// The record's own amounts disagree (order_value is not the sum of the changes, …).
    #[error("the record contradicts itself: {message}")]
    Inconsistent { message: String },
    /// A record refers to an order nothing known holds: a Zenlayer `ORDER_UNFROZEN` with no open
    /// hold it could release.
    #[error("{message}")]
    Unmatched { message: String },
    /// The ledger refused or failed; its code passes through.
    #[error(transparent)]
    Ledger(#[from] purse_ledger::Error),
}

impl Error {
    /// The spec §6 code reported for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Amount { .. } | Error::Inconsistent { .. } => ErrorCode::InvalidAmount,
            Error::Ledger(error) => error.code(),
            Error::Unmatched { .. } => ErrorCode::OrderNotFound,
            Error::Read { .. }
            | Error::Option { .. }
            | Error::Syntax { .. }
            | Error::NotAResponse { .. }
            | Error::ProviderError { .. }
            | Error::MissingField { .. }
            | Error::InvalidField { .. }
            | Error::UnknownType { .. } => ErrorCode::InvalidArgument,
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::InvalidField { field, message: message.into() }
    }

    pub(crate) fn inconsistent(message: impl Into<String>) -> Error {
        Error::Inconsistent { message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let table: &[(Error, ErrorCode)] = &[
            (Error::MissingField { field: "amount" }, ErrorCode::InvalidArgument),
            (
                Error::Amount {
                    field: "amount",
                    source: AmountError::TooPrecise { text: "1.001".into(), decimals: 2 },
                },
                ErrorCode::InvalidAmount,
            ),
            (Error::inconsistent("x"), ErrorCode::InvalidAmount),
            (Error::UnknownType { field: "flow_type", name: "X".into(), hint: "" }, ErrorCode::InvalidArgument),
            (Error::Ledger(purse_ledger::Error::AccountNotFound("a".into())), ErrorCode::AccountNotFound),
            (Error::Unmatched { message: "x".into() }, ErrorCode::OrderNotFound),
        ];
        for (error, code) in table {
            assert_eq!(error.code(), *code, "{error}");
        }
        assert_eq!(
            Error::Amount { field: "amount", source: AmountError::TooPrecise { text: "1.001".into(), decimals: 2 } }
                .to_string(),
            "field amount: \"1.001\" has more than 2 decimals"
        );
    }
}

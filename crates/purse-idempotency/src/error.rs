//! The crate's one error enum, mapped onto the closed set of [`ErrorCode`]s.

use purse_core::ErrorCode;

/// Why an idempotency check or record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `request_id` is already recorded for a different request. Nothing was written; the
    /// caller must pick a new `request_id` for a new request.
    #[error(
        "request_id {request_id:?} was already used by flow {flow_id} for a different request; \
         use a new request_id for a new request"
    )]
    Conflict {
        /// The reused idempotency key.
        request_id: String,
        /// The flow the key is recorded for.
        flow_id: u64,
    },
    /// A second record for a `request_id` that already has one: the log holds two flows for one
    /// request, which no correct write produces. Reported as corruption.
    #[error(
        "request_id {request_id:?} is already recorded for flow {flow_id}; \
         the log holds a second flow for the same request and is corrupt"
    )]
    DuplicateRecord {
        /// The idempotency key recorded twice.
        request_id: String,
        /// The flow the key was already recorded for.
        flow_id: u64,
    },
}

impl Error {
    /// The spec §6 code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Conflict { .. } => ErrorCode::IdempotencyConflict,
            Error::DuplicateRecord { .. } => ErrorCode::Corruption,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let check = |error: Error, code: ErrorCode, message: &str| {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.to_string(), message);
        };
        check(
            Error::Conflict { request_id: "r1".into(), flow_id: 7 },
            ErrorCode::IdempotencyConflict,
            "request_id \"r1\" was already used by flow 7 for a different request; \
             use a new request_id for a new request",
        );
        check(
            Error::DuplicateRecord { request_id: "r1".into(), flow_id: 7 },
            ErrorCode::Corruption,
            "request_id \"r1\" is already recorded for flow 7; \
             the log holds a second flow for the same request and is corrupt",
        );
    }
}

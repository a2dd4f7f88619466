//! The one error of the HTTP edge: a spec §6 code, an HTTP status, and a message a person can
//! act on, answered as the spec's error object `{"error": {"code", "message"}}`.
//!
//! The status of a ledger code is fixed ([`status_of`], the table in docs/server.md). Failures
//! of the transport itself (no or wrong credentials, a body too large, a wrong content type, an
//! unknown route, the server shutting down) keep the closed code set: they are
//! `INVALID_ARGUMENT` (or `STORAGE` when the server cannot serve), and their HTTP status says
//! which it was.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use purse_core::ErrorCode;
use purse_wire::WireError;

/// Why a request was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

/// The HTTP status of each spec §6 code; docs/server.md has the same table.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidArgument | ErrorCode::InvalidAmount => StatusCode::BAD_REQUEST,
        ErrorCode::AccountNotFound | ErrorCode::OrderNotFound => StatusCode::NOT_FOUND,
        ErrorCode::DuplicateOrder | ErrorCode::IdempotencyConflict | ErrorCode::AlreadyReversed => StatusCode::CONFLICT,
        ErrorCode::InsufficientBalance
        | ErrorCode::RefundExceedsOriginal
        | ErrorCode::HoldExpired
        | ErrorCode::AccountFrozen
        | ErrorCode::AccountClosed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Storage => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Corruption => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// A ledger-level refusal or failure, with the status of its code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { status: status_of(code), code, message: message.into() }
    }

    /// `INVALID_ARGUMENT` (400) about the request itself.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidArgument, message)
    }

    /// A transport-level refusal: `status` says what; the code stays in the closed set.
    pub fn transport(status: StatusCode, message: impl Into<String>) -> ApiError {
        let code = if status.is_server_error() { ErrorCode::Storage } else { ErrorCode::InvalidArgument };
        ApiError { status, code, message: message.into() }
    }

    /// No credentials, or credentials the server does not know (401).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::transport(StatusCode::UNAUTHORIZED, message)
    }

    /// Known credentials whose scope does not allow the route (403).
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::transport(StatusCode::FORBIDDEN, message)
    }

    /// The error document, compact, with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string(&purse_wire::error::ErrorDocument::new(self.code, &self.message))
            .unwrap_or_else(|_| {
                "{\"error\":{\"code\":\"STORAGE\",\"message\":\"rendering the error failed\"}}".to_owned()
            });
        text.push('\n');
        text
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<purse_ledger::Error> for ApiError {
    fn from(error: purse_ledger::Error) -> ApiError {
        ApiError::new(error.code(), error.to_string())
    }
}

impl From<purse_core::Error> for ApiError {
    fn from(error: purse_core::Error) -> ApiError {
        ApiError::new(error.code(), error.to_string())
    }
}

impl From<WireError> for ApiError {
    fn from(error: WireError) -> ApiError {
        ApiError::new(error.code(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.to_json()).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json; charset=utf-8"),
        );
        // What went wrong, for the access log and the metrics (the body is already text).
        response.extensions_mut().insert(ErrorCodeTag(self.code));
        response
    }
}

/// The spec §6 code of an error response, for the metrics layer.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCodeTag(pub ErrorCode);

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: ErrorCode, status: u16) {
        assert_eq!(status_of(code).as_u16(), status, "{code:?}");
    }

    #[test]
    fn every_code_has_its_status() {
        let table = [
            (ErrorCode::InvalidArgument, 400),
            (ErrorCode::InvalidAmount, 400),
            (ErrorCode::AccountNotFound, 404),
            (ErrorCode::OrderNotFound, 404),
            (ErrorCode::DuplicateOrder, 409),
            (ErrorCode::IdempotencyConflict, 409),
            (ErrorCode::AlreadyReversed, 409),
            (ErrorCode::InsufficientBalance, 422),
            (ErrorCode::RefundExceedsOriginal, 422),
            (ErrorCode::HoldExpired, 422),
            (ErrorCode::AccountFrozen, 422),
            (ErrorCode::AccountClosed, 422),
            (ErrorCode::Storage, 503),
            (ErrorCode::Corruption, 500),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len(), "a new code needs its status");
        for (code, status) in table {
            check(code, status);
        }
    }

    #[test]
    fn error_document() {
        let error = ApiError::new(ErrorCode::AccountNotFound, "account \"a\" does not exist");
        assert_eq!(
            error.to_json(),
            "{\"error\":{\"code\":\"ACCOUNT_NOT_FOUND\",\"message\":\"account \\\"a\\\" does not exist\"}}\n"
        );
        assert_eq!(ApiError::unauthorized("no key").status.as_u16(), 401);
        assert_eq!(ApiError::unauthorized("no key").code, ErrorCode::InvalidArgument);
        assert_eq!(ApiError::transport(StatusCode::SERVICE_UNAVAILABLE, "closing").code, ErrorCode::Storage);
    }
}

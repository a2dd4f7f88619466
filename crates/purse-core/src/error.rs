//! The closed set of error codes (spec §6) and the domain's own error enum.

use std::fmt;

/// Every code purse ever reports. Closed: callers may match on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    InvalidArgument,
    InvalidAmount,
    InsufficientBalance,
    AccountNotFound,
    OrderNotFound,
    DuplicateOrder,
    IdempotencyConflict,
    RefundExceedsOriginal,
    AlreadyReversed,
    Storage,
    Corruption,
    HoldExpired,
    AccountFrozen,
    AccountClosed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidAmount,
        ErrorCode::InsufficientBalance,
        ErrorCode::AccountNotFound,
        ErrorCode::OrderNotFound,
        ErrorCode::DuplicateOrder,
        ErrorCode::IdempotencyConflict,
        ErrorCode::RefundExceedsOriginal,
        ErrorCode::AlreadyReversed,
        ErrorCode::Storage,
        ErrorCode::Corruption,
        ErrorCode::HoldExpired,
        ErrorCode::AccountFrozen,
        ErrorCode::AccountClosed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::InvalidAmount => "INVALID_AMOUNT",
            ErrorCode::InsufficientBalance => "INSUFFICIENT_BALANCE",
            ErrorCode::AccountNotFound => "ACCOUNT_NOT_FOUND",
            ErrorCode::OrderNotFound => "ORDER_NOT_FOUND",
            ErrorCode::DuplicateOrder => "DUPLICATE_ORDER",
            ErrorCode::IdempotencyConflict => "IDEMPOTENCY_CONFLICT",
            ErrorCode::RefundExceedsOriginal => "REFUND_EXCEEDS_ORIGINAL",
            ErrorCode::AlreadyReversed => "ALREADY_REVERSED",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::Corruption => "CORRUPTION",
            ErrorCode::HoldExpired => "HOLD_EXPIRED",
            ErrorCode::AccountFrozen => "ACCOUNT_FROZEN",
            ErrorCode::AccountClosed => "ACCOUNT_CLOSED",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why `decide` refused a command. Each variant carries what a person needs to act on it;
/// the message is built once, at decide time, with amounts at the ledger's scale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{message}")]
    InvalidArgument { message: String },
    #[error("{message}")]
    InvalidAmount { message: String },
    #[error("{message}")]
    InsufficientBalance { message: String },
    #[error("account {account_id:?} does not exist")]
    AccountNotFound { account_id: String },
    #[error("order {outer_order_id:?} does not exist")]
    OrderNotFound { outer_order_id: String },
    #[error("outer_order_id {outer_order_id:?} is already used by flow {flow_id}")]
    DuplicateOrder { outer_order_id: String, flow_id: u64 },
    #[error("{message}")]
    RefundExceedsOriginal { message: String },
    #[error("order {outer_order_id:?} was already reversed or resolved by flow {flow_id}")]
    AlreadyReversed { outer_order_id: String, flow_id: u64 },
    #[error("{message}")]
    HoldExpired { message: String },
    #[error("account {account_id:?} is frozen: only UNDEDUCT, RELEASE, ADJUST, UNFREEZE, CLOSE and the expiry sweep are accepted")]
    AccountFrozen { account_id: String },
    #[error("account {account_id:?} is closed: it accepts no more writes")]
    AccountClosed { account_id: String },
    /// An opening balance ([`crate::Action::Open`]) for an account that exists: there is nothing
    /// to do. Alone it is refused like an argument error; in a ledger group it is skipped, and
    /// does not fail an all-or-nothing group ([`Error::is_skip`]).
    #[error("account {account_id:?} already exists: an opening balance applies only to an account new to the ledger, so none was written")]
    AlreadyOpen { account_id: String },
    /// The sweep's EXPIRE of an account with no unheld value in lots expired at its time: there
    /// is nothing to do, and a sweep's group skips it like [`Error::AlreadyOpen`].
    #[error("account {account_id:?} has nothing expired to take")]
    NothingToExpire { account_id: String },
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Error::InvalidAmount { .. } => ErrorCode::InvalidAmount,
            Error::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            Error::AccountNotFound { .. } => ErrorCode::AccountNotFound,
            Error::OrderNotFound { .. } => ErrorCode::OrderNotFound,
            Error::DuplicateOrder { .. } => ErrorCode::DuplicateOrder,
            Error::RefundExceedsOriginal { .. } => ErrorCode::RefundExceedsOriginal,
            Error::AlreadyReversed { .. } => ErrorCode::AlreadyReversed,
            Error::HoldExpired { .. } => ErrorCode::HoldExpired,
            Error::AccountFrozen { .. } => ErrorCode::AccountFrozen,
            Error::AccountClosed { .. } => ErrorCode::AccountClosed,
            Error::AlreadyOpen { .. } | Error::NothingToExpire { .. } => ErrorCode::InvalidArgument,
        }
    }

    /// Whether the command had nothing to do rather than being wrong: a group reports it as
    /// skipped and goes on as if it had not been sent.
    pub fn is_skip(&self) -> bool {
        matches!(self, Error::AlreadyOpen { .. } | Error::NothingToExpire { .. })
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Error {
        Error::InvalidArgument { message: message.into() }
    }

    pub(crate) fn invalid_amount(message: impl Into<String>) -> Error {
        Error::InvalidAmount { message: message.into() }
    }
}

/// A flow that cannot be folded onto a state: the log contradicts itself. Only a damaged or
/// forged log produces this; flows from [`crate::decide`] always apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flow {sequence} cannot be applied: {reason}")]
pub struct FoldError {
    pub sequence: u64,
    pub reason: String,
}

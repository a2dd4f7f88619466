//! Write commands (spec §2): what a caller asks for, already parsed into exact types.
//!
//! Parsing text into these (amounts, times, JSON) happens at the edge (CLI, ingest, ledger
//! handle); `decide` then checks every rule that needs no text.

use crate::money::Amount;
use crate::time::Timestamp;

/// Longest `request_id`, in characters (spec §3).
pub const REQUEST_ID_CHARS_MAX: usize = 128;
/// Longest `account_id`, in characters (spec §2).
pub const ACCOUNT_ID_CHARS_MAX: usize = 64;
/// Longest `outer_order_id` (and the order ids it references), in characters.
pub const ORDER_ID_CHARS_MAX: usize = 128;
/// Longest `card_id`, `brand_id`, `shop_id`, `operator_id`, in characters.
pub const REFERENCE_ID_CHARS_MAX: usize = 64;
/// Longest `remark`, in characters.
pub const REMARK_CHARS_MAX: usize = 512;
/// Longest `ext_info`, in bytes.
pub const EXT_INFO_BYTES_MAX: usize = 4096;
/// Longest provider name of a [`Source`], in characters.
pub const PROVIDER_CHARS_MAX: usize = 32;
/// Longest provider record id of a [`Source`], in characters.
pub const RECORD_ID_CHARS_MAX: usize = 128;

/// One write command: the fields every write carries, and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The idempotency key, chosen by the caller.
    pub request_id: String,
    /// The order id the new flow is written under, unique over the ledger.
    /// For UNDEDUCT this is the `new_outer_order_id`; the refunded order is in [`Action::Undeduct`].
    pub outer_order_id: String,
    pub account_id: String,
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    pub shop_id: Option<String>,
    pub operator_id: Option<String>,
    /// Business time; `None` means the `now` of the [`crate::Context`].
    pub biz_date: Option<Timestamp>,
    pub remark: Option<String>,
    /// A JSON text, kept byte for byte as given (validated as JSON at the edge).
    pub ext_info: Option<String>,
    /// When the GIFT this CHARGE or IMPORT credits expires (spec §11). For a CHARGE without
    /// one, the brand's `gift_valid_days` decides.
    pub gift_expire_time: Option<Timestamp>,
    /// When the PRE this CHARGE or IMPORT credits expires.
    pub pre_expire_time: Option<Timestamp>,
    pub action: Action,
}

/// What a command does. One variant per flow type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Recharge. With `trigger_gift`, GIFT comes from the brand's rule and `gift` must be `None`.
    Charge { real: Amount, gift: Option<Amount>, pre: Amount, trigger_gift: bool },
    /// Consume `value`: PRE first, then REAL and GIFT by the deduction order.
    Deduct { value: Amount },
    /// Give back `value` (default: all that is left) of the DEDUCT `original_outer_order_id`.
    Undeduct { original_outer_order_id: String, value: Option<Amount> },
    /// Take back exactly what the CHARGE `src_outer_order_id` added.
    Uncharge { src_outer_order_id: String },
    /// Opening balance migrated from another system.
    Import { real: Amount, gift: Amount, pre: Amount },
    /// Signed operator correction; the command's `remark` is required.
    Adjust { real: Amount, gift: Amount, pre: Amount },
    /// A flow whose effect a provider's record decided (ingestion): its per-bucket change is
    /// kept as given, never recomputed by a rule. Only the signs of its type are checked:
    /// CHARGE, IMPORT, UNDEDUCT add; DEDUCT, UNCHARGE take; ADJUST may do either.
    Recorded { flow_type: crate::FlowType, affected: crate::Buckets, source: Source },
    /// Reserve `value` for a purchase not yet final, split like a DEDUCT of it against the
    /// available buckets; a CAPTURE at or after `expire_time` is refused (spec §8).
    Hold { value: Amount, expire_time: Option<Timestamp> },
    /// Close the HOLD `src_outer_order_id` and spend `value` of it (default: all of it).
    Capture { src_outer_order_id: String, value: Option<Amount> },
    /// Close the HOLD `src_outer_order_id` without spending it.
    Release { src_outer_order_id: String },
    /// Block the account (spec §9); the command's `remark` is required.
    Freeze,
    /// Unblock a frozen account; `remark` required.
    Unfreeze,
    /// Close the account for good; it must hold nothing and no open hold. `remark` required.
    Close,
    /// Move `value` (default: everything available) from this account to `to_account_id`,
    /// bucket for bucket, as a TRANSFER_OUT and a TRANSFER_IN written together (spec §10).
    Transfer { to_account_id: String, value: Option<Amount> },
    /// An opening balance for an account new to the ledger: an IMPORT flow if the account does
    /// not exist yet, and nothing at all if it does (`decide` answers [`crate::Error::AlreadyOpen`],
    /// which a group reports as skipped). Decided against the writer's state, so an account
    /// opened by anything else first never gets a second opening balance.
    Open { real: Amount, gift: Amount, pre: Amount },
    /// Take all that is available in `buckets` (spec §11 CLEAR); the command's `remark` is required.
    Clear { buckets: ClearBuckets },
    /// The sweep of one account at `now` (spec §11): an EXPIRE of the unheld value of its lots
    /// expired at `now`. Made by [`Command::expire`], whose ids it must carry. Nothing to expire
    /// is [`crate::Error::NothingToExpire`], which a group skips.
    Expire { now: Timestamp },
    /// The sweep's RELEASE of the HOLD `src_outer_order_id`, expired at `now`. Made by
    /// [`Command::expire_hold`].
    ExpireHold { src_outer_order_id: String, now: Timestamp },
    /// A transfer between partitions, step 1 (docs/cluster.md §4), on the source: a HOLD of
    /// `value` (default: all available) split like a DEDUCT, naming `to_account_id`, under an
    /// order id ending in [`TRANSFER_HOLD_SUFFIX`]. Only the transfer closes it
    /// ([`Action::TransferSettle`] or [`Action::TransferAbort`]); it never expires.
    TransferHold { to_account_id: String, value: Option<Amount> },
    /// Step 2, on the destination: a TRANSFER_IN of `parts`, with the `lots` they move (their
    /// expiries), from `from_account_id`'s transfer hold `hold_outer_order_id` in another
    /// partition. A new destination is opened with `brand_id` (the source's); an existing one
    /// must have it.
    TransferCredit {
        from_account_id: String,
        hold_outer_order_id: String,
        parts: crate::Buckets,
        lots: Vec<crate::LotCredit>,
        brand_id: Option<String>,
    },
    /// Step 3, on the source, once the destination has the value: the TRANSFER_OUT that closes
    /// the transfer hold `src_outer_order_id` and takes what it held (also on a FROZEN account:
    /// the value has already arrived).
    TransferSettle { src_outer_order_id: String, to_account_id: String },
    /// Step 3 when the destination refused: a RELEASE of the transfer hold.
    TransferAbort { src_outer_order_id: String },
}

/// The end of a transfer hold's order id: `<the transfer's outer_order_id>:transfer-hold`. A
/// hold of that name is a transfer's, which no CAPTURE, RELEASE or sweep may close.
pub const TRANSFER_HOLD_SUFFIX: &str = ":transfer-hold";

/// Whether `outer_order_id` names a transfer hold ([`Action::TransferHold`]).
pub fn is_transfer_hold(outer_order_id: &str) -> bool {
    outer_order_id.ends_with(TRANSFER_HOLD_SUFFIX)
}

/// The buckets a CLEAR takes from. REAL is not among them: principal leaves by UNCHARGE or
/// ADJUST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClearBuckets {
    Gift,
    Pre,
    /// GIFT and PRE.
    All,
}

impl ClearBuckets {
    pub fn parse(text: &str) -> Option<ClearBuckets> {
        match text {
            "GIFT" => Some(ClearBuckets::Gift),
            "PRE" => Some(ClearBuckets::Pre),
            "ALL" => Some(ClearBuckets::All),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ClearBuckets::Gift => "GIFT",
            ClearBuckets::Pre => "PRE",
            ClearBuckets::All => "ALL",
        }
    }

    pub fn includes(self, bucket: crate::Bucket) -> bool {
        matches!(
            (self, bucket),
            (ClearBuckets::Gift | ClearBuckets::All, crate::Bucket::Gift)
                | (ClearBuckets::Pre | ClearBuckets::All, crate::Bucket::Pre)
        )
    }
}

/// The prefix of the ids the expiry sweep writes under; other commands may not use it.
pub const SWEEP_ID_PREFIX: &str = "expire:";

/// The sweep's deterministic id for `subject` (an account id, or a hold's order id) at `now`:
/// `expire:<TIME>:<subject>` with TIME as the ledger's zone writes it (spec §11).
pub fn sweep_id(now: Timestamp, zone: crate::Zone, subject: &str) -> String {
    format!("{SWEEP_ID_PREFIX}{}:{subject}", zone.format_local(now))
}

/// The remark of every flow the sweep writes.
pub const EXPIRED_REMARK: &str = "EXPIRED";

/// Where a provider-authoritative flow came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// `kybio`, `alsc`, `zenlayer`, …
    pub provider: String,
    /// The provider's own id of the record.
    pub record_id: String,
}

impl Action {
    pub fn flow_type(&self) -> crate::FlowType {
        use crate::FlowType;
        match self {
            Action::Charge { .. } => FlowType::Charge,
            Action::Deduct { .. } => FlowType::Deduct,
            Action::Undeduct { .. } => FlowType::Undeduct,
            Action::Uncharge { .. } => FlowType::Uncharge,
            Action::Import { .. } | Action::Open { .. } => FlowType::Import,
            Action::Adjust { .. } => FlowType::Adjust,
            Action::Recorded { flow_type, .. } => *flow_type,
            Action::Hold { .. } => FlowType::Hold,
            Action::Capture { .. } => FlowType::Capture,
            Action::Release { .. } => FlowType::Release,
            Action::Freeze => FlowType::Freeze,
            Action::Unfreeze => FlowType::Unfreeze,
            Action::Close => FlowType::Close,
            Action::Transfer { .. } => FlowType::TransferOut,
            Action::Clear { .. } => FlowType::Clear,
            Action::Expire { .. } => FlowType::Expire,
            Action::ExpireHold { .. } => FlowType::Release,
            Action::TransferHold { .. } => FlowType::Hold,
            Action::TransferCredit { .. } => FlowType::TransferIn,
            Action::TransferSettle { .. } => FlowType::TransferOut,
            Action::TransferAbort { .. } => FlowType::Release,
        }
    }
}

impl Command {
    /// A command with only the required fields set; the optional ones are `None`.
    pub fn new(request_id: &str, outer_order_id: &str, account_id: &str, action: Action) -> Command {
        Command {
            request_id: request_id.to_owned(),
            outer_order_id: outer_order_id.to_owned(),
            account_id: account_id.to_owned(),
            card_id: None,
            brand_id: None,
            shop_id: None,
            operator_id: None,
            biz_date: None,
            remark: None,
            ext_info: None,
            gift_expire_time: None,
            pre_expire_time: None,
            action,
        }
    }

    /// The sweep's EXPIRE of `account_id` at `now`, under its deterministic ids.
    pub fn expire(account_id: &str, now: Timestamp, zone: crate::Zone) -> Command {
        let id = sweep_id(now, zone, account_id);
        let mut command = Command::new(&id, &id, account_id, Action::Expire { now });
        command.biz_date = Some(now);
        command.remark = Some(EXPIRED_REMARK.to_owned());
        command
    }

    /// The sweep's RELEASE of the HOLD `hold` of `account_id`, expired at `now`.
    pub fn expire_hold(account_id: &str, hold: &str, now: Timestamp, zone: crate::Zone) -> Command {
        let id = sweep_id(now, zone, hold);
        let action = Action::ExpireHold { src_outer_order_id: hold.to_owned(), now };
        let mut command = Command::new(&id, &id, account_id, action);
        command.biz_date = Some(now);
        command.remark = Some(EXPIRED_REMARK.to_owned());
        command
    }
}

//! The fingerprint of a command: SHA-256 over a canonical, hand-written encoding.
//!
//! # The encoding (format version 1)
//!
//! One [`FINGERPRINT_FORMAT_VERSION`] byte, then every field of the [`Command`] except
//! `request_id` (the key the fingerprint is stored under), in this fixed order, each as a field
//! tag byte followed by its value:
//!
//! | tag | field              | tag | field (of the action)       |
//! |-----|--------------------|-----|-----------------------------|
//! | 1   | `outer_order_id`   | 11  | `real`                      |
//! | 2   | `account_id`       | 12  | `gift`                      |
//! | 3   | `card_id`          | 13  | `pre`                       |
//! | 4   | `brand_id`         | 14  | `trigger_gift`              |
//! | 5   | `shop_id`          | 15  | `value`                     |
//! | 6   | `operator_id`      | 16  | `original_outer_order_id`   |
//! | 7   | `biz_date`         | 17  | `src_outer_order_id`        |
//! | 8   | `remark`           | 18  | `flow_type` (of `Recorded`) |
//! | 9   | `ext_info`         | 19  | `affected` (of `Recorded`)  |
//! | 10  | `action`           | 20  | `source.provider`           |
//! |     |                    | 21  | `source.record_id`          |
//! |     |                    | 22  | `expire_time` (of `Hold`)   |
//! |     |                    | 23  | `to_account_id`             |
//! | 24  | `gift_expire_time` | 26  | `buckets` (of `Clear`)      |
//! | 25  | `pre_expire_time`  | 27  | `now` (of the sweep's)      |
//!
//! Tags 24 and 25 (spec §11) are written, each followed by its timestamp, only when the field is
//! given, between `ext_info` and `action`: a command without them encodes exactly as before.
//!
//! Values:
//!
//! - a string: its UTF-8 length in bytes as a big-endian `u32`, then the bytes. (A string of
//!   `u32::MAX` bytes or more, far beyond every limit of spec §2, is written as `u32::MAX`
//!   followed by its length as a big-endian `u64`, so the encoding stays total and unambiguous.)
//!   `ext_info` is hashed byte for byte as given: JSON texts that differ only in spacing differ;
//! - an `Option`: a presence byte, `0` for `None` or `1` for `Some`, then the value if present;
//! - an [`Amount`]: its minor units as a big-endian `i64`;
//! - a [`Timestamp`]: its seconds as a big-endian `i64`;
//! - a `bool`: one byte, `0` or `1`;
//! - the `action`: its variant tag byte (`Charge` 0, `Deduct` 1, `Undeduct` 2, `Uncharge` 3,
//!   `Import` 4, `Adjust` 5, `Recorded` 6, and since spec §8–§10 `Hold` 7, `Capture` 8,
//!   `Release` 9, `Freeze` 10, `Unfreeze` 11, `Close` 12, `Transfer` 13, then `Open` 14, and since
//!   spec §11 `Clear` 15 (its buckets one byte: GIFT 0, PRE 1, ALL 2), `Expire` 16, `ExpireHold` 17),
//!   then that variant's fields, each tagged, in declaration order (`Freeze`, `Unfreeze` and
//!   `Close` have none). Adding those variants changed no byte of the encoding of the earlier
//!   ones: `Open` (an opening balance) is not an `Import` with a flag but a variant of its own,
//!   so every `Import` keeps its fingerprint. A `Recorded` flow type is one byte (CHARGE 0, DEDUCT 1, UNDEDUCT 2,
//!   UNCHARGE 3, IMPORT 4, ADJUST 5) and its `affected` three amounts (REAL, GIFT, PRE).
//!
//! Every value is fixed-width or length-prefixed and the order is fixed, so the encoding can be
//! read back unambiguously: two different commands (ignoring `request_id`) never share one.
//!
//! **The encoding is frozen.** Fingerprints are stored in the log; changing how a command is
//! encoded would make every retry of an already-accepted request after an upgrade a
//! `IDEMPOTENCY_CONFLICT` instead of a replay. The tests pin exact fingerprints of fixed commands.
//! A new `Command` or `Action` field needs a new tag (and, if old commands must keep their
//! fingerprints, an encoding that writes nothing when the field has its old implied value).

use std::fmt;

use purse_core::{Action, Amount, ClearBuckets, Command, FlowType, Timestamp};
use sha2::{Digest, Sha256};

/// Length of a [`Fingerprint`], in bytes (SHA-256).
pub const FINGERPRINT_BYTES: usize = 32;

/// The version byte the canonical encoding starts with. Frozen: see the module documentation.
pub const FINGERPRINT_FORMAT_VERSION: u8 = 1;

/// Field tags of the canonical encoding. Frozen.
mod tag {
    pub const OUTER_ORDER_ID: u8 = 1;
    pub const ACCOUNT_ID: u8 = 2;
    pub const CARD_ID: u8 = 3;
    pub const BRAND_ID: u8 = 4;
    pub const SHOP_ID: u8 = 5;
    pub const OPERATOR_ID: u8 = 6;
    pub const BIZ_DATE: u8 = 7;
    pub const REMARK: u8 = 8;
    pub const EXT_INFO: u8 = 9;
    pub const ACTION: u8 = 10;
    pub const REAL: u8 = 11;
    pub const GIFT: u8 = 12;
    pub const PRE: u8 = 13;
    pub const TRIGGER_GIFT: u8 = 14;
    pub const VALUE: u8 = 15;
    pub const ORIGINAL_OUTER_ORDER_ID: u8 = 16;
    pub const SRC_OUTER_ORDER_ID: u8 = 17;
    pub const FLOW_TYPE: u8 = 18;
    pub const AFFECTED: u8 = 19;
    pub const PROVIDER: u8 = 20;
    pub const RECORD_ID: u8 = 21;
    pub const EXPIRE_TIME: u8 = 22;
    pub const TO_ACCOUNT_ID: u8 = 23;
    pub const GIFT_EXPIRE_TIME: u8 = 24;
    pub const PRE_EXPIRE_TIME: u8 = 25;
    pub const BUCKETS: u8 = 26;
    pub const NOW: u8 = 27;
    pub const FROM_ACCOUNT_ID: u8 = 28;
    pub const LOTS: u8 = 29;
}

/// Action variant tags of the canonical encoding. Frozen.
mod variant {
    pub const CHARGE: u8 = 0;
    pub const DEDUCT: u8 = 1;
    pub const UNDEDUCT: u8 = 2;
    pub const UNCHARGE: u8 = 3;
    pub const IMPORT: u8 = 4;
    pub const ADJUST: u8 = 5;
    pub const RECORDED: u8 = 6;
    pub const HOLD: u8 = 7;
    pub const CAPTURE: u8 = 8;
    pub const RELEASE: u8 = 9;
    pub const FREEZE: u8 = 10;
    pub const UNFREEZE: u8 = 11;
    pub const CLOSE: u8 = 12;
    pub const TRANSFER: u8 = 13;
    pub const OPEN: u8 = 14;
    pub const CLEAR: u8 = 15;
    pub const EXPIRE: u8 = 16;
    pub const EXPIRE_HOLD: u8 = 17;
    pub const TRANSFER_HOLD: u8 = 18;
    pub const TRANSFER_CREDIT: u8 = 19;
    pub const TRANSFER_SETTLE: u8 = 20;
    pub const TRANSFER_ABORT: u8 = 21;
}

/// The byte of each flow type inside a `Recorded` action. Frozen, like the tags.
fn flow_type_byte(flow_type: FlowType) -> u8 {
    match flow_type {
        FlowType::Charge => 0,
        FlowType::Deduct => 1,
        FlowType::Undeduct => 2,
        FlowType::Uncharge => 3,
        FlowType::Import => 4,
        FlowType::Adjust => 5,
        // A provider's record never states these (`FlowType::may_be_recorded`); `decide`
        // refuses such a command, but its fingerprint must still be total.
        FlowType::Hold => 6,
        FlowType::Capture => 7,
        FlowType::Release => 8,
        FlowType::Freeze => 9,
        FlowType::Unfreeze => 10,
        FlowType::Close => 11,
        FlowType::TransferOut => 12,
        FlowType::TransferIn => 13,
        FlowType::Expire => 14,
        FlowType::Clear => 15,
    }
}

/// Presence bytes of an `Option`.
const ABSENT: u8 = 0;
const PRESENT: u8 = 1;

/// A string length at or above this is written as this marker followed by a `u64` length.
const LONG_LENGTH_MARKER: u32 = u32::MAX;

/// A stable hash of a command's request: equal for equal commands whatever their `request_id`,
/// different for different ones. See [`fingerprint()`].
///
/// Shown (`Display`, `Debug`) as 64 lowercase hex digits. Stored by the ledger as its
/// [`FINGERPRINT_BYTES`] raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; FINGERPRINT_BYTES]);

impl Fingerprint {
    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; FINGERPRINT_BYTES] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The fingerprint of `command`: SHA-256 of its canonical encoding (module documentation).
/// `request_id` is not part of it.
pub fn fingerprint(command: &Command) -> Fingerprint {
    Fingerprint(Sha256::digest(encode(command)).into())
}

/// The canonical encoding of `command` (module documentation).
fn encode(command: &Command) -> Vec<u8> {
    // Destructured without `..`: a new field does not compile until it is given a place here.
    let Command {
        request_id: _,
        outer_order_id,
        account_id,
        card_id,
        brand_id,
        shop_id,
        operator_id,
        biz_date,
        remark,
        ext_info,
        gift_expire_time,
        pre_expire_time,
        action,
    } = command;

    let mut out = Encoder(vec![FINGERPRINT_FORMAT_VERSION]);
    out.string(tag::OUTER_ORDER_ID, outer_order_id);
    out.string(tag::ACCOUNT_ID, account_id);
    out.optional_string(tag::CARD_ID, card_id.as_deref());
    out.optional_string(tag::BRAND_ID, brand_id.as_deref());
    out.optional_string(tag::SHOP_ID, shop_id.as_deref());
    out.optional_string(tag::OPERATOR_ID, operator_id.as_deref());
    out.optional_timestamp(tag::BIZ_DATE, *biz_date);
    out.optional_string(tag::REMARK, remark.as_deref());
    out.optional_string(tag::EXT_INFO, ext_info.as_deref());
    // Since spec §11, and written only when given: every earlier command keeps its fingerprint.
    for (field, time) in [(tag::GIFT_EXPIRE_TIME, gift_expire_time), (tag::PRE_EXPIRE_TIME, pre_expire_time)] {
        if let Some(time) = time {
            out.byte(field);
            out.0.extend_from_slice(&time.0.to_be_bytes());
        }
    }
    out.byte(tag::ACTION);
    match action {
        Action::Charge { real, gift, pre, trigger_gift } => {
            out.byte(variant::CHARGE);
            out.amount(tag::REAL, *real);
            out.optional_amount(tag::GIFT, *gift);
            out.amount(tag::PRE, *pre);
            out.bool(tag::TRIGGER_GIFT, *trigger_gift);
        }
        Action::Deduct { value } => {
            out.byte(variant::DEDUCT);
            out.amount(tag::VALUE, *value);
        }
        Action::Undeduct { original_outer_order_id, value } => {
            out.byte(variant::UNDEDUCT);
            out.string(tag::ORIGINAL_OUTER_ORDER_ID, original_outer_order_id);
            out.optional_amount(tag::VALUE, *value);
        }
        Action::Uncharge { src_outer_order_id } => {
            out.byte(variant::UNCHARGE);
            out.string(tag::SRC_OUTER_ORDER_ID, src_outer_order_id);
        }
        Action::Import { real, gift, pre } => {
            out.byte(variant::IMPORT);
            out.buckets(*real, *gift, *pre);
        }
        Action::Adjust { real, gift, pre } => {
            out.byte(variant::ADJUST);
            out.buckets(*real, *gift, *pre);
        }
        Action::Recorded { flow_type, affected, source } => {
            out.byte(variant::RECORDED);
            out.byte(tag::FLOW_TYPE);
            out.byte(flow_type_byte(*flow_type));
            out.byte(tag::AFFECTED);
            out.buckets(affected.real, affected.gift, affected.pre);
            out.string(tag::PROVIDER, &source.provider);
            out.string(tag::RECORD_ID, &source.record_id);
        }
        Action::Hold { value, expire_time } => {
            out.byte(variant::HOLD);
            out.amount(tag::VALUE, *value);
            out.optional_timestamp(tag::EXPIRE_TIME, *expire_time);
        }
        Action::Capture { src_outer_order_id, value } => {
            out.byte(variant::CAPTURE);
            out.string(tag::SRC_OUTER_ORDER_ID, src_outer_order_id);
            out.optional_amount(tag::VALUE, *value);
        }
        Action::Release { src_outer_order_id } => {
            out.byte(variant::RELEASE);
            out.string(tag::SRC_OUTER_ORDER_ID, src_outer_order_id);
        }
        Action::Freeze => out.byte(variant::FREEZE),
        Action::Unfreeze => out.byte(variant::UNFREEZE),
        Action::Close => out.byte(variant::CLOSE),
        Action::Transfer { to_account_id, value } => {
            out.byte(variant::TRANSFER);
            out.string(tag::TO_ACCOUNT_ID, to_account_id);
            out.optional_amount(tag::VALUE, *value);
        }
        Action::Open { real, gift, pre } => {
            out.byte(variant::OPEN);
            out.buckets(*real, *gift, *pre);
        }
        Action::Clear { buckets } => {
            out.byte(variant::CLEAR);
            out.byte(tag::BUCKETS);
            out.byte(match buckets {
                ClearBuckets::Gift => 0,
                ClearBuckets::Pre => 1,
                ClearBuckets::All => 2,
            });
        }
        Action::Expire { now } => {
            out.byte(variant::EXPIRE);
            out.byte(tag::NOW);
            out.0.extend_from_slice(&now.0.to_be_bytes());
        }
        Action::ExpireHold { src_outer_order_id, now } => {
            out.byte(variant::EXPIRE_HOLD);
            out.string(tag::SRC_OUTER_ORDER_ID, src_outer_order_id);
            out.byte(tag::NOW);
            out.0.extend_from_slice(&now.0.to_be_bytes());
        }
        Action::TransferHold { to_account_id, value } => {
            out.byte(variant::TRANSFER_HOLD);
            out.string(tag::TO_ACCOUNT_ID, to_account_id);
            out.optional_amount(tag::VALUE, *value);
        }
        Action::TransferCredit { from_account_id, hold_outer_order_id, parts, lots, brand_id } => {
            out.byte(variant::TRANSFER_CREDIT);
            out.string(tag::FROM_ACCOUNT_ID, from_account_id);
            out.string(tag::SRC_OUTER_ORDER_ID, hold_outer_order_id);
            out.buckets(parts.real, parts.gift, parts.pre);
            out.byte(tag::LOTS);
            out.length(lots.len());
            for lot in lots {
                out.byte(match lot.bucket {
                    purse_core::Bucket::Real => 0,
                    purse_core::Bucket::Gift => 1,
                    purse_core::Bucket::Pre => 2,
                });
                out.amount(tag::VALUE, lot.value);
                out.optional_timestamp(tag::EXPIRE_TIME, lot.expire_time);
            }
            out.optional_string(tag::BRAND_ID, brand_id.as_deref());
        }
        Action::TransferSettle { src_outer_order_id, to_account_id } => {
            out.byte(variant::TRANSFER_SETTLE);
            out.string(tag::SRC_OUTER_ORDER_ID, src_outer_order_id);
            out.string(tag::TO_ACCOUNT_ID, to_account_id);
        }
        Action::TransferAbort { src_outer_order_id } => {
            out.byte(variant::TRANSFER_ABORT);
            out.string(tag::SRC_OUTER_ORDER_ID, src_outer_order_id);
        }
    }
    out.0
}

/// Appends canonical values to a byte buffer.
struct Encoder(Vec<u8>);

impl Encoder {
    fn byte(&mut self, byte: u8) {
        self.0.push(byte);
    }

    fn length(&mut self, length: usize) {
        match u32::try_from(length) {
            Ok(short) if short < LONG_LENGTH_MARKER => self.0.extend_from_slice(&short.to_be_bytes()),
            _ => {
                self.0.extend_from_slice(&LONG_LENGTH_MARKER.to_be_bytes());
                // usize is at most 64 bits on every target Rust supports.
                let long = u64::try_from(length).unwrap_or(u64::MAX);
                self.0.extend_from_slice(&long.to_be_bytes());
            }
        }
    }

    fn string_value(&mut self, text: &str) {
        self.length(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn string(&mut self, tag: u8, text: &str) {
        self.byte(tag);
        self.string_value(text);
    }

    fn optional_string(&mut self, tag: u8, text: Option<&str>) {
        self.byte(tag);
        if let Some(text) = text {
            self.byte(PRESENT);
            self.string_value(text);
        } else {
            self.byte(ABSENT);
        }
    }

    fn amount(&mut self, tag: u8, amount: Amount) {
        self.byte(tag);
        self.0.extend_from_slice(&amount.minor().to_be_bytes());
    }

    fn optional_amount(&mut self, tag: u8, amount: Option<Amount>) {
        self.byte(tag);
        if let Some(amount) = amount {
            self.byte(PRESENT);
            self.0.extend_from_slice(&amount.minor().to_be_bytes());
        } else {
            self.byte(ABSENT);
        }
    }

    fn optional_timestamp(&mut self, tag: u8, timestamp: Option<Timestamp>) {
        self.byte(tag);
        if let Some(Timestamp(seconds)) = timestamp {
            self.byte(PRESENT);
            self.0.extend_from_slice(&seconds.to_be_bytes());
        } else {
            self.byte(ABSENT);
        }
    }

    fn bool(&mut self, tag: u8, value: bool) {
        self.byte(tag);
        self.byte(u8::from(value));
    }

    fn buckets(&mut self, real: Amount, gift: Amount, pre: Amount) {
        self.amount(tag::REAL, real);
        self.amount(tag::GIFT, gift);
        self.amount(tag::PRE, pre);
    }
}

#[cfg(test)]
mod tests;

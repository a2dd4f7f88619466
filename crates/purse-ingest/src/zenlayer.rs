//! Zenlayer `DescribeRechargeRefundHistory`: `{"requestId", "response": {"totalCount",
//! "dataSet": [record…]}}`, one page per document, as many pages as given.
//!
//! Only `PAY_SUCCESS` moves money. The five money types map onto REAL; `ORDER_FROZEN` is a HOLD
//! and `ORDER_UNFROZEN` the RELEASE of one (planning matches the two, `plan::match_releases`);
//! `NS_SYNC` is skipped with the reason. Amounts are positive major units; the sign comes from
//! the type.

use purse_core::{Amount, Buckets, FlowType, Timestamp};

use crate::error::Error;
use crate::options::Context;
use crate::record::{
    clip, ext_info, major_amount, optional, required, Effect, Item, Record, References, Rejection, Stated,
};
use crate::schema::{Object, Schema};

const TRANSACTION_ID: usize = 0;
const TRANSACTION_TYPE: usize = 1;
const AMOUNT: usize = 2;
const STATE: usize = 3;
const TRANSACTION_TIME: usize = 4;
const ACCOUNT_UID: usize = 5;
const PAYMENT_METHOD: usize = 6;
const CODE: usize = 7;
const MESSAGE: usize = 8;
const REQUEST_ID: usize = 9;

/// What a `transactionType` does in purse.
enum Kind {
    /// A flow of this type on REAL; `true` when it adds.
    Flow(FlowType, bool),
    /// `ORDER_FROZEN`: a hold placed.
    Freeze,
    /// `ORDER_UNFROZEN`: a hold released.
    Unfreeze,
    /// Moves no money in purse, for this reason.
    Skip(&'static str),
}

fn kind(name: &str) -> Option<Kind> {
    Some(match name {
        "RECHARGE" => Kind::Flow(FlowType::Charge, true),
        "REFUND" => Kind::Flow(FlowType::Uncharge, false),
        "DEDUCTION" => Kind::Flow(FlowType::Deduct, false),
        "ORDER_REFUND" => Kind::Flow(FlowType::Undeduct, true),
        "DERATE" => Kind::Flow(FlowType::Adjust, true),
        "ORDER_FROZEN" => Kind::Freeze,
        "ORDER_UNFROZEN" => Kind::Unfreeze,
        "NS_SYNC" => Kind::Skip("NS_SYNC is an external sync whose effect on the balance Zenlayer does not document"),
        _ => return None,
    })
}

/// The Zenlayer schema.
#[derive(Debug)]
pub(crate) struct Zenlayer<'a> {
    pub context: &'a Context,
}

impl Schema for Zenlayer<'_> {
    fn field(&self, key: &str) -> Option<usize> {
        Some(match key {
            "transactionId" => TRANSACTION_ID,
            "transactionType" => TRANSACTION_TYPE,
            "amount" => AMOUNT,
            "state" => STATE,
            "transactionTime" => TRANSACTION_TIME,
            "accountUid" => ACCOUNT_UID,
            "paymentMethod" => PAYMENT_METHOD,
            "code" => CODE,
            "message" => MESSAGE,
            "requestId" => REQUEST_ID,
            _ => return None,
        })
    }

    fn marker(&self, key: &str) -> bool {
        matches!(key, "dataSet" | "transactionId")
    }

    fn finish(&self, object: Object, out: &mut Vec<Item>, _children: usize) {
        let fields = &object.fields;
        if fields[TRANSACTION_ID].is_some() {
            let record_id = optional("transactionId", &fields[TRANSACTION_ID]).ok().flatten().map(str::to_owned);
            out.push(match self.record(&object) {
                Ok(record) => Item::Record(record),
                Err(error) => Item::Rejected(Rejection { record_id, error }),
            });
        } else if fields[CODE].is_some() && fields[MESSAGE].is_some() {
            let text = |slot: usize| fields[slot].as_ref().and_then(|text| text.as_str()).map(clip);
            let message = format!(
                "Zenlayer answered with an error instead of records: {} {:?} (requestId {})",
                text(CODE).unwrap_or_default(),
                text(MESSAGE).unwrap_or_default(),
                text(REQUEST_ID).unwrap_or_else(|| "unknown".into())
            );
            out.push(Item::Rejected(Rejection { record_id: None, error: Error::ProviderError { message } }));
        }
    }

    fn expected(&self) -> &'static str {
        "a Zenlayer DescribeRechargeRefundHistory response (no dataSet)"
    }
}

impl Zenlayer<'_> {
    fn record(&self, object: &Object) -> Result<Record, Error> {
        let fields = &object.fields;
        let record_id = required("transactionId", &fields[TRANSACTION_ID])?.to_owned();
        let account_id = required("accountUid", &fields[ACCOUNT_UID])?.to_owned();
        let type_name = required("transactionType", &fields[TRANSACTION_TYPE])?;
        let kind = kind(type_name).ok_or_else(|| Error::UnknownType {
            field: "transactionType",
            name: clip(type_name),
            hint: ": Zenlayer documents RECHARGE, REFUND, DEDUCTION, ORDER_REFUND, DERATE, ORDER_FROZEN, ORDER_UNFROZEN, NS_SYNC",
        })?;
        let state = required("state", &fields[STATE])?;
        let time = utc_time(required("transactionTime", &fields[TRANSACTION_TIME])?)?;
        let payment_method = optional("paymentMethod", &fields[PAYMENT_METHOD])?;
        let effect = match (state, kind) {
            ("PAYING" | "PAY_FAILED", _) => {
                Effect::Skip { reason: format!("state {state}: only PAY_SUCCESS moves money") }
            }
            ("PAY_SUCCESS", Kind::Skip(reason)) => Effect::Skip { reason: reason.to_owned() },
            ("PAY_SUCCESS", Kind::Flow(flow_type, adds)) => {
                let amount = self.amount(object)?;
                let real = if adds { amount } else { amount.checked_neg().unwrap_or(Amount::ZERO) };
                Effect::Flow { flow_type, affected: Buckets::new(real, Amount::ZERO, Amount::ZERO) }
            }
            ("PAY_SUCCESS", Kind::Freeze) => Effect::Hold { value: self.amount(object)? },
            ("PAY_SUCCESS", Kind::Unfreeze) => Effect::Release { value: self.amount(object)?, hold: None },
            (other, _) => {
                return Err(Error::UnknownType {
                    field: "state",
                    name: clip(other),
                    hint: ": Zenlayer documents PAYING, PAY_FAILED, PAY_SUCCESS",
                })
            }
        };
        let references = (type_name == "DERATE").then(|| {
            Box::new(References { remark: Some("Zenlayer DERATE: a credit granted".into()), ..References::default() })
        });
        Ok(Record {
            // The transactionId is the record id, kept as the flow's source; only the method is extra.
            ext_info: ext_info(&[("payment_method", payment_method)]),
            record_id,
            account_id,
            time,
            effect,
            before: Stated::default(),
            after: Stated::default(),
            opening: None,
            references,
        })
    }
}

impl Zenlayer<'_> {
    /// The record's `amount`, which must be positive: the sign comes from the type.
    fn amount(&self, object: &Object) -> Result<Amount, Error> {
        let amount = major_amount("amount", required("amount", &object.fields[AMOUNT])?, self.context.scale)?;
        if !amount.is_positive() {
            return Err(Error::invalid("amount", "must be positive: the sign comes from transactionType"));
        }
        Ok(amount)
    }
}

/// `2023-08-15T09:47:01Z` (any RFC 3339 offset). A fraction of a second is dropped: business
/// times are whole seconds.
fn utc_time(text: &str) -> Result<Timestamp, Error> {
    chrono::DateTime::parse_from_rfc3339(text).map(|time| Timestamp(time.timestamp())).map_err(|_| {
        Error::invalid("transactionTime", format!("{:?} is not an ISO-8601 time like 2023-08-15T09:47:01Z", clip(text)))
    })
}

#[cfg(test)]
#[path = "zenlayer_tests.rs"]
mod tests;

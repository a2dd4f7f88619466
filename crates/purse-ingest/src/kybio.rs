//! KYBIO (Pospal open API) recharge logs: `queryCustomerRechargeLog` answers
//! `{"status", "messages", "errorCode", "data": [record…]}`; `queryAllRechargeLogs` answers
//! `{…, "data": {"postBackParameter", "result": [record…], "pageSize"}}` with a `uid` per record.
//!
//! A record is one CHARGE: REAL = `rechargeMoney`, GIFT = `giftMoney` (major units).
//! `customerMoneyAfterRecharge` is the one running balance KYBIO keeps (no bucket split): it is
//! reconciled as TOTAL, and what it implies before the record (after − recharge − gift) is the
//! opening balance of an account new to the ledger, brought in as REAL.

use purse_core::{Amount, Buckets, FlowType};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::options::Context;
use crate::record::{
    clip, ext_info, local_time, major_amount, optional, required, Effect, Item, Record, Rejection, Stated,
};
use crate::schema::{Object, Schema};

const CUSTOMER_UID: usize = 0;
const RECHARGE_MONEY: usize = 1;
const GIFT_MONEY: usize = 2;
const DATETIME: usize = 3;
const MONEY_AFTER: usize = 4;
const UID: usize = 5;
const STORE_APP_ID: usize = 6;
const STORE_ACCOUNT: usize = 7;
const PAY_METHOD: usize = 8;
const STATUS: usize = 9;
const MESSAGES: usize = 10;
const ERROR_CODE: usize = 11;

/// Field names as the examples write them. The API tables capitalise some (`Status`, `Data`,
/// `Datetime`), so keys match without regard to ASCII case.
const FIELDS: [&str; 12] = [
    "customerUid",
    "rechargeMoney",
    "giftMoney",
    "datetime",
    "customerMoneyAfterRecharge",
    "uid",
    "rechargeStoreAppId",
    "rechargeStoreAccount",
    "payMethod",
    "status",
    "messages",
    "errorCode",
];

/// The KYBIO schema.
#[derive(Debug)]
pub(crate) struct Kybio<'a> {
    pub context: &'a Context,
}

impl Schema for Kybio<'_> {
    fn field(&self, key: &str) -> Option<usize> {
        FIELDS.iter().position(|name| name.eq_ignore_ascii_case(key))
    }

    fn marker(&self, key: &str) -> bool {
        key.eq_ignore_ascii_case("status") || key.eq_ignore_ascii_case("customerUid")
    }

    fn finish(&self, object: Object, out: &mut Vec<Item>, children: usize) {
        let fields = &object.fields;
        if fields[CUSTOMER_UID].is_some() {
            let record_id = optional("uid", &fields[UID]).ok().flatten().map(str::to_owned);
            out.push(match self.record(&object) {
                Ok(record) => Item::Record(record),
                Err(error) => Item::Rejected(Rejection { record_id, error }),
            });
            return;
        }
        let Some(status) = &fields[STATUS] else { return };
        if status.as_str().is_some_and(|status| status.eq_ignore_ascii_case("success")) {
            return;
        }
        let text = |slot: usize| fields[slot].as_ref().and_then(|text| text.as_str()).map(clip);
        let message = format!(
            "KYBIO answered status {:?} (errorCode {}: {})",
            text(STATUS).unwrap_or_default(),
            text(ERROR_CODE).unwrap_or_else(|| "none".into()),
            text(MESSAGES).unwrap_or_else(|| "no message".into())
        );
        crate::schema::disown(out, children, &message);
    }

    fn expected(&self) -> &'static str {
        "a KYBIO response (no status, no customerUid)"
    }
}

impl Kybio<'_> {
    fn record(&self, object: &Object) -> Result<Record, Error> {
        let fields = &object.fields;
        let scale = self.context.scale;
        let account_id = required("customerUid", &fields[CUSTOMER_UID])?.to_owned();
        let datetime = required("datetime", &fields[DATETIME])?;
        let time = local_time("datetime", datetime, self.context.zone())?;
        let recharge = major_amount("rechargeMoney", required("rechargeMoney", &fields[RECHARGE_MONEY])?, scale)?;
        let gift = major_amount("giftMoney", required("giftMoney", &fields[GIFT_MONEY])?, scale)?;
        let after = optional("customerMoneyAfterRecharge", &fields[MONEY_AFTER])?
            .map(|text| major_amount("customerMoneyAfterRecharge", text, scale))
            .transpose()?;
        let store_app_id = optional("rechargeStoreAppId", &fields[STORE_APP_ID])?;
        let uid = optional("uid", &fields[UID])?;
        let added =
            recharge.checked_add(gift).ok_or_else(|| Error::inconsistent("rechargeMoney + giftMoney overflows"))?;
        let opening = match after {
            Some(after) => {
                let before = after.checked_sub(added).filter(|before| !before.is_negative()).ok_or_else(|| {
                    Error::inconsistent(format!(
                        "customerMoneyAfterRecharge {} is less than rechargeMoney + giftMoney {}",
                        after.format(scale),
                        added.format(scale)
                    ))
                })?;
                Some(Buckets::new(before, Amount::ZERO, Amount::ZERO))
            }
            None => None,
        };
        let record_id = match uid {
            Some(uid) => uid.to_owned(),
            // KYBIO has no idempotency key and may deliver a record twice: the same content is
            // the same record.
            None => content_id(&[
                &account_id,
                datetime,
                &recharge.format(scale),
                &gift.format(scale),
                &after.map(|after| after.format(scale)).unwrap_or_default(),
                store_app_id.unwrap_or_default(),
            ]),
        };
        Ok(Record {
            ext_info: ext_info(&[
                ("pay_method", optional("payMethod", &fields[PAY_METHOD])?),
                ("store_account", optional("rechargeStoreAccount", &fields[STORE_ACCOUNT])?),
            ]),
            record_id,
            account_id,
            time,
            effect: Effect::Flow { flow_type: FlowType::Charge, affected: Buckets::new(recharge, gift, Amount::ZERO) },
            before: Stated::default(),
            after: Stated { total: after, ..Stated::default() },
            opening,
            references: None,
        })
    }
}

/// `sha256:` and the first 128 bits, in hex, of SHA-256 over the fields, each length-prefixed
/// so that no two different field lists hash the same text.
pub fn content_id<T: AsRef<[u8]>>(parts: &[T]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        let part = part.as_ref();
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_id_is_stable_and_distinguishes_fields() {
        let id = content_id(&["677793671220529313", "2016-10-28 11:14:03", "100.00", "0.00", "100.00", "87EB"]);
        assert_eq!(id, content_id(&["677793671220529313", "2016-10-28 11:14:03", "100.00", "0.00", "100.00", "87EB"]));
        assert_eq!(id.len(), "sha256:".len() + 32);
        assert_ne!(id, content_id(&["677793671220529313", "2016-10-28 11:14:03", "100.00", "0.00", "100.0", "087EB"]));
    }
}

#[cfg(test)]
#[path = "kybio_tests.rs"]
mod reader_tests;

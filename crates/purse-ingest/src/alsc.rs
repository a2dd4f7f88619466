//! ALSC (Alibaba local-life CRM on TOP): `alibaba.alsc.crm.recharge.account.flowdetail.get`
//! responses, in XML and in both JSON forms (list wrappers, and `simplify=true` plain arrays),
//! and `…recharge.accountflows.get` pages. The format readers find every object with a
//! `flow_id`, wherever the envelope puts it; this module maps one to a flow.
//!
//! A flow keeps ALSC's `flow_type` (a purse type of the same name, or what
//! `--map-flow-type` says; any other name is rejected, never guessed). Its change per bucket is
//! after − before, checked against `affected_property_list` and `order_value`; where the
//! balance lists do not give a bucket, the affected list does (a bucket it leaves out did not
//! change). A record whose amounts disagree is rejected: its real change is unknown.

use purse_core::{Amount, Bucket, Buckets, FlowType, Property};

use crate::error::Error;
use crate::options::{AlscUnits, Context, FlowTarget};
use crate::record::{
    clip, hundredths_amount, local_time, major_amount, optional, optional_owned, required, Effect, Item, Record,
    References, Rejection, Stated, Text,
};
use crate::schema::{List, Object, Schema};

const FLOW_ID: usize = 0;
const FLOW_TYPE: usize = 1;
const ACCOUNT_ID: usize = 2;
const ORDER_TIME: usize = 3;
const ORDER_VALUE: usize = 4;
const CURRENT_VALUE: usize = 5;
const CARD_ID: usize = 6;
const BRAND_ID: usize = 7;
const SHOP_ID: usize = 8;
const OPERATOR: usize = 9;
const REMARK: usize = 10;
const OUTER_ORDER_ID: usize = 11;
const BIZ_SUCCESS: usize = 12;
const RESULT_CODE: usize = 13;
const RESULT_DESC: usize = 14;
const CODE: usize = 15;
const MSG: usize = 16;
const SUB_CODE: usize = 17;
const SUB_MSG: usize = 18;

const FIELDS: [&str; 19] = [
    "flow_id",
    "flow_type",
    "account_id",
    "order_time",
    "order_value",
    "current_value",
    "card_id",
    "brand_id",
    "shop_id",
    "operator",
    "remark",
    "outer_order_id",
    "biz_success",
    "result_code",
    "result_desc",
    "code",
    "msg",
    "sub_code",
    "sub_msg",
];

const AFFECTED: usize = 0;
const BEFORE: usize = 1;
const AFTER: usize = 2;
const LISTS: [&str; 3] = ["affected_property_list", "before_property_list", "after_property_list"];

/// The ALSC schema.
#[derive(Debug)]
pub(crate) struct Alsc<'a> {
    pub context: &'a Context,
}

impl Schema for Alsc<'_> {
    fn field(&self, key: &str) -> Option<usize> {
        FIELDS.iter().position(|name| *name == key)
    }

    fn list(&self, key: &str) -> Option<usize> {
        LISTS.iter().position(|name| *name == key)
    }

    fn marker(&self, key: &str) -> bool {
        key.ends_with("_response") || key == "biz_success" || key == "flow_id"
    }

    fn finish(&self, object: Object, out: &mut Vec<Item>, children: usize) {
        let fields = &object.fields;
        let text = |slot: usize| fields[slot].as_ref().and_then(Text::as_str).map(clip).unwrap_or_default();
        if fields[FLOW_ID].is_some() {
            let record_id = optional("flow_id", &fields[FLOW_ID]).ok().flatten().map(str::to_owned);
            out.push(match self.record(&object) {
                Ok(record) => Item::Record(record),
                Err(error) => Item::Rejected(Rejection { record_id, error }),
            });
        } else if fields[SUB_CODE].is_some() || (fields[CODE].is_some() && fields[MSG].is_some()) {
            let message = format!(
                "ALSC answered with an error instead of a flow: {} {:?} ({}: {:?})",
                text(CODE),
                text(MSG),
                text(SUB_CODE),
                text(SUB_MSG)
            );
            crate::schema::disown(out, children, &message);
        } else if fields[BIZ_SUCCESS].as_ref().and_then(Text::as_bool) == Some(false) {
            let message = format!(
                "ALSC answered biz_success=false (result_code {:?}, result_desc {:?})",
                text(RESULT_CODE),
                text(RESULT_DESC)
            );
            crate::schema::disown(out, children, &message);
        }
    }

    fn expected(&self) -> &'static str {
        "an ALSC response (no *_response, biz_success or flow_id)"
    }
}

impl Alsc<'_> {
    fn record(&self, object: &Object) -> Result<Record, Error> {
        let fields = &object.fields;
        let record_id = required("flow_id", &fields[FLOW_ID])?.to_owned();
        let account_id = required("account_id", &fields[ACCOUNT_ID])?.to_owned();
        let type_name = required("flow_type", &fields[FLOW_TYPE])?;
        let target = self.flow_target(type_name)?;
        let time = local_time("order_time", required("order_time", &fields[ORDER_TIME])?, self.context.zone())?;
        let affected = self.stated("affected_property_list", &object.lists[AFFECTED])?;
        let before = self.stated("before_property_list", &object.lists[BEFORE])?;
        let mut after = self.stated("after_property_list", &object.lists[AFTER])?;
        let order_value = self.amount("order_value", &fields[ORDER_VALUE])?;
        if let Some(current) = self.amount("current_value", &fields[CURRENT_VALUE])? {
            let total = after.get_or_insert_with(Stated::default).slot(Property::Total);
            match *total {
                Some(total) if total != current => {
                    return Err(Error::inconsistent(format!(
                        "current_value {} differs from after_property_list TOTAL {}",
                        self.show(current),
                        self.show(total)
                    )))
                }
                _ => *total = Some(current),
            }
        }
        let effect = match target {
            FlowTarget::Skip => Effect::Skip { reason: format!("flow_type {type_name} is mapped to SKIP") },
            FlowTarget::Flow(flow_type) => match self.changes(affected, before, after, order_value)? {
                Some(affected) => Effect::Flow { flow_type, affected },
                None => Effect::Unsplit { order_value },
            },
        };
        let references = References {
            card_id: optional_owned("card_id", &fields[CARD_ID])?,
            brand_id: optional_owned("brand_id", &fields[BRAND_ID])?,
            shop_id: optional_owned("shop_id", &fields[SHOP_ID])?,
            operator_id: optional_owned("operator", &fields[OPERATOR])?,
            remark: optional_owned("remark", &fields[REMARK])?,
            // The merchant's order id stays the flow's: `flow --outer-order-id` finds it, and a
            // later UNDEDUCT or UNCHARGE refers to it.
            order_id: optional_owned("outer_order_id", &fields[OUTER_ORDER_ID])?,
        };
        Ok(Record {
            ext_info: None,
            record_id,
            account_id,
            time,
            effect,
            opening: before.and_then(opening),
            before: before.unwrap_or_default(),
            after: after.unwrap_or_default(),
            references: (references != References::default()).then(|| Box::new(references)),
        })
    }

    /// The user's mapping first, then a purse type of the same name; anything else is unknown.
    fn flow_target(&self, name: &str) -> Result<FlowTarget, Error> {
        if let Some(target) = self.context.options.flow_types.get(name) {
            return Ok(*target);
        }
        FlowType::parse(name).map(FlowTarget::Flow).ok_or_else(|| Error::UnknownType {
            field: "flow_type",
            name: clip(name),
            hint: ": map it with --map-flow-type NAME=FLOW_TYPE (or NAME=SKIP) if you know what it is",
        })
    }

    fn amount(&self, field: &'static str, text: &Option<Text>) -> Result<Option<Amount>, Error> {
        optional(field, text)?.map(|text| self.parse(field, text)).transpose()
    }

    fn parse(&self, field: &'static str, text: &str) -> Result<Amount, Error> {
        match self.context.options.alsc_units {
            AlscUnits::Minor => hundredths_amount(field, text, self.context.scale),
            AlscUnits::Major => major_amount(field, text, self.context.scale),
        }
    }

    fn show(&self, amount: Amount) -> String {
        amount.format(self.context.scale)
    }

    /// A property list as a [`Stated`] balance; an empty or absent list is `None`.
    fn stated(&self, field: &'static str, list: &Option<List>) -> Result<Option<Stated>, Error> {
        let entries = match list {
            None => return Ok(None),
            Some(Err(why)) => return Err(Error::invalid(field, *why)),
            Some(Ok(entries)) if entries.is_empty() => return Ok(None),
            Some(Ok(entries)) => entries,
        };
        let mut stated = Stated::default();
        for (kind, value) in entries {
            let kind = kind.as_str().ok_or_else(|| Error::invalid(field, "an entry's type is not text"))?;
            let property = Property::ALL.into_iter().find(|property| property.as_str() == kind).ok_or_else(|| {
                Error::UnknownType {
                    field: "property type",
                    name: clip(kind),
                    hint: ": expected REAL, GIFT, PRE or TOTAL",
                }
            })?;
            let value =
                value.as_str().ok_or_else(|| Error::invalid(field, format!("the {kind} value is not a number")))?;
            let value = self.parse(field, value)?;
            if stated.slot(property).replace(value).is_some() {
                return Err(Error::invalid(field, format!("{kind} appears twice")));
            }
        }
        if let (Some(real), Some(gift), Some(pre), Some(total)) = (stated.real, stated.gift, stated.pre, stated.total) {
            let sum = Buckets::new(real, gift, pre).total();
            if sum != Some(total) {
                return Err(Error::inconsistent(format!(
                    "{field}: TOTAL {} is not REAL + GIFT + PRE",
                    self.show(total)
                )));
            }
        }
        Ok(Some(stated))
    }

    /// The signed change per bucket, or `None` when the record gives no property list at all
    /// (an `accountflows.get` row).
    fn changes(
        &self,
        affected: Option<Stated>,
        before: Option<Stated>,
        after: Option<Stated>,
        order_value: Option<Amount>,
    ) -> Result<Option<Buckets>, Error> {
        let split = |list: Option<Stated>| {
            list.is_some_and(|list| Bucket::ALL.iter().any(|bucket| list.get(property(*bucket)).is_some()))
        };
        if affected.is_none() && !split(before) && !split(after) {
            return Ok(None);
        }
        let overflow = || Error::inconsistent("the amounts leave the range of signed 64-bit minor units");
        let mut change = Buckets::ZERO;
        for bucket in Bucket::ALL {
            let property = property(bucket);
            let stated = |list: Option<Stated>| list.and_then(|list| list.get(property));
            let given = stated(affected);
            let delta = match (stated(before), stated(after)) {
                (Some(before), Some(after)) => {
                    let delta = after.checked_sub(before).ok_or_else(overflow)?;
                    if given.is_some_and(|given| given != delta) {
                        return Err(Error::inconsistent(format!(
                            "{bucket}: after − before is {}, affected_property_list says {}",
                            self.show(delta),
                            given.map_or_else(String::new, |given| self.show(given))
                        )));
                    }
                    delta
                }
                // The affected list names every bucket that changed.
                _ if affected.is_some() => given.unwrap_or(Amount::ZERO),
                (None, None) => Amount::ZERO,
                _ => {
                    return Err(Error::inconsistent(format!(
                        "{bucket} is in only one of before_property_list and after_property_list, \
                         and there is no affected_property_list: its change is unknown"
                    )))
                }
            };
            *bucket_mut(&mut change, bucket) = delta;
        }
        let sum = change.total().ok_or_else(overflow)?;
        let check = |what: &str, stated: Option<Amount>| match stated {
            Some(stated) if stated != sum => Err(Error::inconsistent(format!(
                "{what} {} is not the sum of the changes per bucket, {}",
                self.show(stated),
                self.show(sum)
            ))),
            _ => Ok(()),
        };
        check("order_value", order_value)?;
        check("affected_property_list TOTAL", affected.and_then(|affected| affected.total))?;
        let total_change = match (before.and_then(|before| before.total), after.and_then(|after| after.total)) {
            (Some(before), Some(after)) => Some(after.checked_sub(before).ok_or_else(overflow)?),
            _ => None,
        };
        check("TOTAL after − before", total_change)?;
        Ok(Some(change))
    }
}

/// The opening balance a before-list gives: its buckets (absent ones zero), or, when it names
/// only TOTAL, that TOTAL as REAL (there is no split to keep).
fn opening(before: Stated) -> Option<Buckets> {
    let zero = Amount::ZERO;
    if before.real.is_some() || before.gift.is_some() || before.pre.is_some() {
        Some(Buckets::new(before.real.unwrap_or(zero), before.gift.unwrap_or(zero), before.pre.unwrap_or(zero)))
    } else {
        before.total.map(|total| Buckets::new(total, zero, zero))
    }
}

fn property(bucket: Bucket) -> Property {
    match bucket {
        Bucket::Real => Property::Real,
        Bucket::Gift => Property::Gift,
        Bucket::Pre => Property::Pre,
    }
}

fn bucket_mut(buckets: &mut Buckets, bucket: Bucket) -> &mut Amount {
    match bucket {
        Bucket::Real => &mut buckets.real,
        Bucket::Gift => &mut buckets.gift,
        Bucket::Pre => &mut buckets.pre,
    }
}

#[cfg(test)]
#[path = "alsc_tests.rs"]
mod tests;

//! The provider-neutral record: what one provider record says, already in purse's exact types.
//!
//! Each provider module turns its raw fields ([`Text`]) into a [`Record`] or a [`Rejection`];
//! everything after that (ordering, opening balances, the ledger, reconciliation) is the same
//! for every provider.

use purse_core::{Amount, Buckets, FlowType, Property, Scale, Timestamp, Zone};

use crate::error::Error;

/// One input item: a record, or why a record (or the rest of an input) could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Record(Record),
    Rejected(Rejection),
}

/// A record that never reaches the ledger, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The provider's id of the record, when it could be read.
    pub record_id: Option<String>,
    pub error: Error,
}

/// What one provider record asks of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The provider's own id of the record (KYBIO records without `uid`: a content hash).
    pub record_id: String,
    pub account_id: String,
    /// The business time the provider gives the record.
    pub time: Timestamp,
    pub effect: Effect,
    /// Balances the record states just before and just after itself, for reconciliation.
    pub before: Stated,
    pub after: Stated,
    /// The account's balance just before this record as the provider knows it, per bucket:
    /// what an opening IMPORT brings in when the account is new to the ledger.
    pub opening: Option<Buckets>,
    /// Card, brand, shop, operator, remark and order id, where the provider has them (ALSC).
    pub references: Option<Box<References>>,
    /// `{"payment_method": …}` and the like, kept on the flow as its `ext_info`.
    pub ext_info: Option<String>,
}

/// What a record does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A provider-authoritative flow: this change per bucket, exactly.
    Flow { flow_type: FlowType, affected: Buckets },
    /// Moves no money (a failed payment, a hold, a type mapped to SKIP).
    Skip { reason: String },
    /// A listing row (ALSC `accountflows.get`) that gives only the signed total, not the split.
    Unsplit { order_value: Option<Amount> },
    /// A hold placed (Zenlayer `ORDER_FROZEN`): a HOLD of `value`, split by purse like a DEDUCT.
    Hold { value: Amount },
    /// A hold released (Zenlayer `ORDER_UNFROZEN`): a RELEASE of the HOLD whose order id planning
    /// finds for it (`hold`: `None` until then), matched by account and `value`.
    Release { value: Amount, hold: Option<Box<str>> },
}

impl Effect {
    /// Whether the record becomes a command of the ledger group.
    pub fn is_command(&self) -> bool {
        matches!(self, Effect::Flow { .. } | Effect::Hold { .. } | Effect::Release { .. })
    }
}

/// The optional reference fields of a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    pub shop_id: Option<String>,
    pub operator_id: Option<String>,
    pub remark: Option<String>,
    /// The business order id the provider states for the record (ALSC `outer_order_id`): the
    /// flow's own `outer_order_id` in the ledger. `None`: the flow is written under
    /// `"<provider>:<record id>"`.
    pub order_id: Option<String>,
}

/// A balance as a record states it: any of the three buckets and TOTAL, each possibly absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stated {
    pub real: Option<Amount>,
    pub gift: Option<Amount>,
    pub pre: Option<Amount>,
    pub total: Option<Amount>,
}

impl Stated {
    pub fn get(&self, property: Property) -> Option<Amount> {
        match property {
            Property::Real => self.real,
            Property::Gift => self.gift,
            Property::Pre => self.pre,
            Property::Total => self.total,
        }
    }

    pub(crate) fn slot(&mut self, property: Property) -> &mut Option<Amount> {
        match property {
            Property::Real => &mut self.real,
            Property::Gift => &mut self.gift,
            Property::Pre => &mut self.pre,
            Property::Total => &mut self.total,
        }
    }

    pub fn is_empty(&self) -> bool {
        Property::ALL.iter().all(|property| self.get(*property).is_none())
    }
}

/// One scalar field as the provider wrote it. Numbers keep their exact text (JSON fields are
/// read as their source text, see `json.rs`), so an amount never passes through a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Str(String),
    Num(String),
    Bool(bool),
    Null,
    /// An array of scalars, joined with "; " (KYBIO `messages`).
    Array(String),
    /// Something that is no scalar: "an object", "an array of objects", …
    Other(&'static str),
}

impl Text {
    /// The text of a string or number; `None` for anything else.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Text::Str(text) | Text::Num(text) | Text::Array(text) => Some(text),
            _ => None,
        }
    }

    /// `true`/`false`, written as a JSON boolean or as text (XML).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Text::Bool(value) => Some(*value),
            Text::Str(text) if text.eq_ignore_ascii_case("true") => Some(true),
            Text::Str(text) if text.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Text::Str(_) => "a string",
            Text::Num(_) => "a number",
            Text::Bool(_) => "a boolean",
            Text::Null => "null",
            Text::Array(_) => "an array",
            Text::Other(kind) => kind,
        }
    }
}

/// A field that must be there, as text (a string or a number).
pub(crate) fn required<'a>(field: &'static str, value: &'a Option<Text>) -> Result<&'a str, Error> {
    optional(field, value)?.ok_or(Error::MissingField { field })
}

/// A field that may be left out (or `null`), as text.
pub(crate) fn optional<'a>(field: &'static str, value: &'a Option<Text>) -> Result<Option<&'a str>, Error> {
    match value {
        None | Some(Text::Null) => Ok(None),
        Some(Text::Str(text) | Text::Num(text)) if text.is_empty() => Ok(None),
        Some(Text::Str(text) | Text::Num(text)) => Ok(Some(text)),
        Some(other) => Err(Error::invalid(field, format!("is {}, expected text or a number", other.kind()))),
    }
}

/// An optional field kept as an owned string.
pub(crate) fn optional_owned(field: &'static str, value: &Option<Text>) -> Result<Option<String>, Error> {
    Ok(optional(field, value)?.map(str::to_owned))
}

/// An amount in major units (yuan, dollars) at the ledger's scale, exactly.
pub(crate) fn major_amount(field: &'static str, text: &str, scale: Scale) -> Result<Amount, Error> {
    Amount::parse(text, scale).map_err(|source| Error::Amount { field, source })
}

/// An amount in hundredths of the major unit (fen, ALSC's default), which must be whole.
pub fn hundredths_amount(field: &'static str, text: &str, scale: Scale) -> Result<Amount, Error> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Error::invalid(field, format!("{:?} is not a whole number of fen", clip(text))));
    }
    // Write it as a decimal in major units and let the core parse it at the ledger's scale:
    // 12345 fen is "123.45"; trailing zeros are dropped so that "1.00" fits scale 0.
    let padded = format!("{digits:0>3}");
    let (whole, fraction) = padded.split_at(padded.len() - 2);
    let fraction = fraction.trim_end_matches('0');
    let sign = if text.starts_with('-') { "-" } else { "" };
    let major = if fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") };
    Amount::parse(&major, scale).map_err(|source| Error::Amount { field, source })
}

/// `YYYY-MM-DD HH:MM:SS` in the provider's zone.
pub(crate) fn local_time(field: &'static str, text: &str, zone: Zone) -> Result<Timestamp, Error> {
    zone.parse_local(text)
        .ok_or_else(|| Error::invalid(field, format!("{:?} is not a time like 2019-08-01 15:14:31", clip(text))))
}

/// Messages quote provider text; keep a hostile megabyte out of them.
pub(crate) fn clip(text: &str) -> String {
    const CLIP_CHARS_MAX: usize = 80;
    if text.chars().count() <= CLIP_CHARS_MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(CLIP_CHARS_MAX).collect();
        format!("{head}…")
    }
}

/// A small JSON object of the given string fields, absent ones left out: the flow's `ext_info`.
/// Written by hand: it runs once per record, and a `serde_json::Map` costs several allocations.
pub(crate) fn ext_info(fields: &[(&str, Option<&str>)]) -> Option<String> {
    let mut text = String::new();
    for (key, value) in fields {
        let Some(value) = value else { continue };
        text.push(if text.is_empty() { '{' } else { ',' });
        push_json_string(&mut text, key);
        text.push(':');
        push_json_string(&mut text, value);
    }
    if text.is_empty() {
        return None;
    }
    text.push('}');
    Some(text)
}

fn push_json_string(text: &mut String, value: &str) {
    text.push('"');
    for character in value.chars() {
        match character {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                text.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => text.push(other),
        }
    }
    text.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_hundredths(text: &str, decimals: u32, expect: Result<i64, &str>) {
        let scale = Scale::new(decimals).unwrap();
        let got = hundredths_amount("value", text, scale).map(Amount::minor).map_err(|error| error.to_string());
        match (got, expect) {
            (Ok(minor), Ok(expected)) => assert_eq!(minor, expected, "{text} at scale {decimals}"),
            (Err(message), Err(needle)) => assert!(message.contains(needle), "{text}: {message}"),
            (got, expect) => panic!("{text} at scale {decimals}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn hundredths_table() {
        check_hundredths("200", 2, Ok(200));
        check_hundredths("-90", 2, Ok(-90));
        check_hundredths("5", 2, Ok(5));
        check_hundredths("0", 2, Ok(0));
        check_hundredths("12345", 3, Ok(123_450));
        check_hundredths("1200", 0, Ok(12));
        check_hundredths("1250", 0, Err("more than 0 decimals"));
        check_hundredths("1.5", 2, Err("not a whole number of fen"));
        check_hundredths("", 2, Err("not a whole number"));
        check_hundredths("-", 2, Err("not a whole number"));
        check_hundredths("1e2", 2, Err("not a whole number"));
        check_hundredths("99999999999999999999", 2, Err("not a whole number"));
        check_hundredths("9223372036854775807", 2, Ok(i64::MAX));
    }

    #[test]
    fn optional_fields() {
        assert_eq!(optional("x", &None), Ok(None));
        assert_eq!(optional("x", &Some(Text::Null)), Ok(None));
        assert_eq!(optional("x", &Some(Text::Str(String::new()))), Ok(None));
        assert_eq!(optional("x", &Some(Text::Num("1.5".into()))), Ok(Some("1.5")));
        assert_eq!(
            required("x", &Some(Text::Other("an object"))).unwrap_err().to_string(),
            "field x: is an object, expected text or a number"
        );
        assert_eq!(required("x", &None).unwrap_err().to_string(), "missing field x");
    }

    #[test]
    fn ext_info_is_json() {
        assert_eq!(ext_info(&[("a", Some("1")), ("b", None)]).as_deref(), Some("{\"a\":\"1\"}"));
        assert_eq!(ext_info(&[("a", None)]), None);
        for value in ["plain", "quote \" and \\ backslash", "line\nbreak\ttab\u{1}", "微信 \u{7f}"] {
            let text = ext_info(&[("k", Some(value)), ("l", Some("2"))]).unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed["k"], value, "{text}");
            assert_eq!(parsed["l"], "2");
        }
    }
}

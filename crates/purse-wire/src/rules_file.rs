//! The rules JSON of spec §4, read from a file or stdin into the core's [`RuleSetText`].
//!
//! Amounts may be JSON strings or JSON numbers. Every value is read as its exact source text
//! (serde_json's `RawValue`), so a number keeps the text it was written with (`20.10` stays
//! `20.10`, never a float), and the core parses that text at the ledger's scale like any other.
//! Unknown keys are refused rather than ignored: a misspelt `full_gift_swich` must not silently
//! mean "no full gift"; so are duplicate keys, lone surrogate escapes and nesting deeper than
//! [`strict_json::JSON_DEPTH_MAX`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use purse_core::RuleSetText;
use serde_json::value::RawValue;

use crate::error::WireError;
use crate::strict_json::{self, JsonError};

/// An object's members, each value as its exact text. Keys are unique (the strict check saw to
/// that) and in sorted order, so the first unknown key named is the same on every run.
type Object<'a> = BTreeMap<String, &'a RawValue>;

/// What a JSON value is, by the first byte of its text (serde_json has checked the syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool(bool),
    Number,
    String,
    Array,
    Object,
}

fn kind(value: &RawValue) -> Kind {
    match value.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't') => Kind::Bool(true),
        Some(b'f') => Kind::Bool(false),
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// A rules file larger than this is refused before parsing: 64 tiers fit in a few KiB.
pub const RULES_FILE_BYTES_MAX: u64 = 1 << 20;

const RULE_KEYS: [&str; 5] = ["deduction_order", "gift_type", "full_gift_switch", "tiers", "gift_valid_days"];
const TIER_KEYS: [&str; 2] = ["real_value", "gift_value"];

/// Reads `path` (or stdin for `-`) as UTF-8 text.
pub fn read(path: &Path) -> Result<String, WireError> {
    let unreadable = |error: std::io::Error| {
        WireError::invalid_argument(format!("cannot read rules file {}: {error}", path.display()))
    };
    let mut bytes = Vec::new();
    // Read one byte past the limit so an oversized file is detected without reading all of it.
    let limit = RULES_FILE_BYTES_MAX + 1;
    if path.as_os_str() == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes).map_err(unreadable)?;
    } else {
        std::fs::File::open(path).and_then(|file| file.take(limit).read_to_end(&mut bytes)).map_err(unreadable)?;
    }
    if bytes.len() as u64 > RULES_FILE_BYTES_MAX {
        return Err(WireError::invalid_argument(format!(
            "rules file {} is larger than {RULES_FILE_BYTES_MAX} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| WireError::invalid_argument(format!("rules file {} is not UTF-8 text", path.display())))
}

/// Parses the rules JSON. Missing and `null` keys are both "left out" (the core's default).
/// The text must be strict JSON ([`strict_json`]) first: a duplicate key would otherwise
/// silently keep its last value.
pub fn parse(text: &str) -> Result<RuleSetText, WireError> {
    let not_json = |error| WireError::invalid_argument(format!("rules: not valid JSON: {error}"));
    strict_json::check(text).map_err(|error| match error {
        JsonError::Syntax(error) => not_json(error),
        JsonError::Refused(message) => WireError::invalid_argument(format!("rules: {message}")),
    })?;
    let root: &RawValue = serde_json::from_str(text).map_err(not_json)?;
    if kind(root) != Kind::Object {
        return Err(WireError::invalid_argument("rules: the document must be a JSON object"));
    }
    let object: Object<'_> = serde_json::from_str(root.get()).map_err(not_json)?;
    check_keys("rules", &object, &RULE_KEYS)?;
    let tiers = match object.get("tiers") {
        None => Vec::new(),
        Some(tiers) => match kind(tiers) {
            Kind::Null => Vec::new(),
            Kind::Array => serde_json::from_str::<Vec<&RawValue>>(tiers.get())
                .map_err(not_json)?
                .into_iter()
                .enumerate()
                .map(|(index, tier)| parse_tier(index, tier))
                .collect::<Result<_, _>>()?,
            _ => return Err(WireError::invalid_argument("rules: tiers must be an array")),
        },
    };
    let gift_valid_days = match object.get("gift_valid_days") {
        None => None,
        Some(value) if kind(value) == Kind::Null => None,
        // A whole number of days; the core checks its range.
        Some(value) => Some(value.get().parse::<u32>().map_err(|_| {
            WireError::invalid_argument(format!(
                "rules: gift_valid_days must be a whole number of days, got {}",
                value.get()
            ))
        })?),
    };
    Ok(RuleSetText {
        gift_valid_days,
        deduction_order: string(&object, "deduction_order")?,
        gift_type: string(&object, "gift_type")?,
        full_gift_switch: match object.get("full_gift_switch").map(|value| kind(value)) {
            None | Some(Kind::Null) => None,
            Some(Kind::Bool(switch)) => Some(switch),
            Some(_) => return Err(WireError::invalid_argument("rules: full_gift_switch must be true or false")),
        },
        tiers,
    })
}

fn parse_tier(index: usize, tier: &RawValue) -> Result<(String, String), WireError> {
    if kind(tier) != Kind::Object {
        return Err(WireError::invalid_argument(format!(
            "rules: tiers[{index}] must be an object with real_value and gift_value"
        )));
    }
    let object: Object<'_> = serde_json::from_str(tier.get())
        .map_err(|error| WireError::invalid_argument(format!("rules: not valid JSON: {error}")))?;
    let place = format!("tiers[{index}]");
    check_keys(&place, &object, &TIER_KEYS)?;
    Ok((amount_text(&place, &object, "real_value")?, amount_text(&place, &object, "gift_value")?))
}

/// A tier amount as exact text: a JSON string decoded, a JSON number as written.
fn amount_text(place: &str, object: &Object<'_>, key: &str) -> Result<String, WireError> {
    let value = object.get(key).copied();
    match value.map(kind) {
        Some(Kind::String) => decoded(value),
        Some(Kind::Number) => Ok(value.map(|value| value.get().to_owned()).unwrap_or_default()),
        None | Some(Kind::Null) => Err(WireError::invalid_argument(format!("rules: {place}.{key} is required"))),
        Some(_) => Err(WireError::invalid_argument(format!("rules: {place}.{key} must be a number or a string"))),
    }
}

fn string(object: &Object<'_>, key: &str) -> Result<Option<String>, WireError> {
    let value = object.get(key).copied();
    match value.map(kind) {
        None | Some(Kind::Null) => Ok(None),
        Some(Kind::String) => decoded(value).map(Some),
        Some(_) => Err(WireError::invalid_argument(format!("rules: {key} must be a string"))),
    }
}

/// A JSON string's text, its escapes decoded.
fn decoded(value: Option<&RawValue>) -> Result<String, WireError> {
    serde_json::from_str(value.map_or("null", RawValue::get))
        .map_err(|error| WireError::invalid_argument(format!("rules: not valid JSON: {error}")))
}

fn check_keys(place: &str, object: &Object<'_>, known: &[&str]) -> Result<(), WireError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => {
            Err(WireError::invalid_argument(format!("{place}: unknown field {key:?} (known: {})", known.join(", "))))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(
        deduction_order: Option<&str>,
        gift_type: Option<&str>,
        full_gift_switch: Option<bool>,
        tiers: &[(&str, &str)],
    ) -> RuleSetText {
        RuleSetText {
            gift_valid_days: None,
            deduction_order: deduction_order.map(str::to_owned),
            gift_type: gift_type.map(str::to_owned),
            full_gift_switch,
            tiers: tiers.iter().map(|(real, gift)| ((*real).to_owned(), (*gift).to_owned())).collect(),
        }
    }

    fn check(json: &str, expect: Result<RuleSetText, &str>) {
        match (parse(json), expect) {
            (Ok(got), Ok(expect)) => assert_eq!(got, expect, "{json}"),
            (Err(error), Err(fragment)) => {
                assert_eq!(error.code().as_str(), "INVALID_ARGUMENT", "{json}: {error}");
                assert!(error.to_string().contains(fragment), "{json}: {error} lacks {fragment:?}");
            }
            (got, expect) => panic!("{json}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn rules_json_table() {
        let deep = format!(r#"{{"gift_type": {}"CUSTOMIZED"{}}}"#, "[".repeat(64), "]".repeat(64));
        let table: &[(&str, Result<RuleSetText, &str>)] = &[
            ("{}", Ok(RuleSetText::default())),
            (
                r#"{"deduction_order": null, "gift_type": null, "full_gift_switch": null, "tiers": null}"#,
                Ok(RuleSetText::default()),
            ),
            (
                r#"{"deduction_order": "PERCENT_DEDUCT", "gift_type": "CUSTOMIZED", "full_gift_switch": false,
                   "tiers": [{"real_value": "100.00", "gift_value": "20.00"}, {"real_value": "500.00", "gift_value": "150.00"}]}"#,
                Ok(text(
                    Some("PERCENT_DEDUCT"),
                    Some("CUSTOMIZED"),
                    Some(false),
                    &[("100.00", "20.00"), ("500.00", "150.00")],
                )),
            ),
            // Numbers keep their exact decimal text, exponents as written: no float ever sees them.
            (
                r#"{"gift_type": "CUSTOMIZED", "tiers": [{"real_value": 100.10, "gift_value": 0.1}, {"real_value": 1.5e2, "gift_value": 12345678901234567.89}]}"#,
                Ok(text(None, Some("CUSTOMIZED"), None, &[("100.10", "0.1"), ("1.5e2", "12345678901234567.89")])),
            ),
            (
                r#"{"tiers": [{"real_value": 1E+2, "gift_value": -0}, {"real_value": 1e400, "gift_value": "2\u0030.10"}]}"#,
                Ok(text(None, None, None, &[("1E+2", "-0"), ("1e400", "20.10")])),
            ),
            (
                r#"{"gift_type": "PROPORTIONAL", "tiers": [{"real_value": 100, "gift_value": 5500}]}"#,
                Ok(text(None, Some("PROPORTIONAL"), None, &[("100", "5500")])),
            ),
            // Values are handed on as text; their meaning is the core's to judge.
            (r#"{"deduction_order": "SIDEWAYS"}"#, Ok(text(Some("SIDEWAYS"), None, None, &[]))),
            (r#"{"full_gift_swich": true}"#, Err("rules: unknown field \"full_gift_swich\"")),
            (
                r#"{"tiers": [{"real_value": "1", "gift_value": "1", "extra": 1}]}"#,
                Err("tiers[0]: unknown field \"extra\""),
            ),
            (r#"{"tiers": [{"real_value": "1"}]}"#, Err("tiers[0].gift_value is required")),
            (
                r#"{"tiers": [{"real_value": true, "gift_value": "1"}]}"#,
                Err("tiers[0].real_value must be a number or a string"),
            ),
            (r#"{"tiers": ["100"]}"#, Err("tiers[0] must be an object")),
            (r#"{"tiers": {"real_value": "1"}}"#, Err("tiers must be an array")),
            (r#"{"full_gift_switch": "yes"}"#, Err("full_gift_switch must be true or false")),
            (r#"{"gift_type": 1}"#, Err("gift_type must be a string")),
            // Strict JSON: a duplicate key would otherwise silently keep its last value.
            (
                r#"{"gift_type": "CUSTOMIZED", "gift_type": "PROPORTIONAL", "tiers": [{"real_value": 100, "gift_value": 1}]}"#,
                Err("rules: duplicate key \"gift_type\" at line 1 column"),
            ),
            (
                r#"{"gift_type": "CUSTOMIZED", "tiers": [{"real_value": 100, "gift_value": 1},
                   {"real_value": 200, "gift_value": 5, "gift_value": 50}]}"#,
                Err("rules: duplicate key \"gift_value\" in tiers[1] at line 2 column"),
            ),
            (r#"{"gift_type": "CUSTOMIZED\ud800"}"#, Err("rules: lone surrogate escape \\ud800 at line 1 column 26")),
            (&deep, Err("rules: nesting deeper than the maximum of 64 levels")),
            ("[]", Err("must be a JSON object")),
            ("{\"tiers\": [", Err("not valid JSON")),
            ("", Err("not valid JSON")),
        ];
        for (json, expect) in table {
            check(json, expect.clone());
        }
    }

    #[test]
    fn unreadable_files_are_invalid_arguments() {
        let error = read(Path::new("/nonexistent/purse/rules.json")).unwrap_err();
        assert_eq!(error.code().as_str(), "INVALID_ARGUMENT");
        assert!(error.to_string().contains("cannot read rules file /nonexistent/purse/rules.json"), "{error}");
    }
}

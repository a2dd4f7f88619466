//! The strict JSON check every JSON text purse takes from a caller passes: `--ext-info` and
//! rules files.
//!
//! serde_json alone accepts three things other JSON readers refuse or read differently, and
//! this check refuses them:
//!
//! - a lone surrogate escape (`"\ud800"`): no Unicode character, so a reader in another language
//!   refuses the text or replaces the escape. serde_json itself refuses one in a string it
//!   decodes, but not in a value it only skips, and names it poorly; [`lone_surrogate`] finds
//!   it first and says what it is.
//! - nesting deeper than [`JSON_DEPTH_MAX`]: serde_json skips a value of any depth, while many
//!   readers stop at a fixed depth (serde_json's own parser into a value at 128).
//! - a key twice in one object: readers keep the first, the last, or refuse, so the same text
//!   would mean different things to different readers. purse refuses it.
//!
//! The text is only checked, never rewritten: callers keep it as written.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting of arrays and objects accepted (the top-level array or object is level
/// 1). A rules file needs 3 levels and `ext_info` is at most 4 KiB of caller metadata: 64 is
/// far above any real document, half of serde_json's own recursion limit, and within what
/// common readers of stored JSON handle, so `ext_info` stays readable wherever it is sent.
pub const JSON_DEPTH_MAX: usize = 64;

/// With `arbitrary_precision` (on in this workspace) serde_json hands a number that is not a
/// 64-bit integer to a visitor as a one-entry map under this key, its exact text as the value.
/// Such a map is no nesting.
const NUMBER_KEY: &str = "$serde_json::private::Number";

/// Why a text was refused.
#[derive(Debug)]
pub enum JsonError {
    /// Not JSON: serde_json's reason, with its line and column.
    Syntax(serde_json::Error),
    /// JSON purse refuses: a lone surrogate, nesting too deep, a duplicate key (the message
    /// says which, where).
    Refused(String),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax(error) => write!(f, "{error}"),
            JsonError::Refused(message) => f.write_str(message),
        }
    }
}

/// Checks that `text` is one JSON value without lone surrogates, deeper nesting than
/// [`JSON_DEPTH_MAX`] or duplicate keys.
pub fn check(text: &str) -> Result<(), JsonError> {
    if let Some(message) = lone_surrogate(text) {
        return Err(JsonError::Refused(message));
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let walked =
        Walk { depth: 0, place: &Place::Root }.deserialize(&mut deserializer).and_then(|()| deserializer.end());
    walked.map_err(|error| {
        // The visitor's own refusals are serde_json's "data" errors; everything else is syntax.
        if error.is_data() {
            JsonError::Refused(error.to_string())
        } else {
            JsonError::Syntax(error)
        }
    })
}

/// The first `\uXXXX` escape of a surrogate not paired as UTF-16 wants it (a leading one
/// D800–DBFF directly followed by a trailing one DC00–DFFF), as a message with its place.
/// A backslash can only stand inside a JSON string, so the raw text is scanned; what is not
/// JSON at all is left to serde_json.
fn lone_surrogate(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let escape_at = |at: usize| -> Option<u16> {
        let hex = bytes.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' || !hex[2..].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'\\' {
            at += 1;
            continue;
        }
        let Some(unit) = escape_at(at) else {
            at += 2; // `\"`, `\\`, … (or a broken escape, serde_json's to report)
            continue;
        };
        let paired = (0xD800..=0xDBFF).contains(&unit)
            && escape_at(at + 6).is_some_and(|next| (0xDC00..=0xDFFF).contains(&next));
        if paired {
            at += 12;
        } else if (0xD800..=0xDFFF).contains(&unit) {
            let (line, column) = line_column(text, at);
            return Some(format!(
                "lone surrogate escape {} at line {line} column {column} (a \\uD800-\\uDBFF escape must be \
                 followed by a \\uDC00-\\uDFFF one)",
                &text[at..at + 6]
            ));
        } else {
            at += 6;
        }
    }
    None
}

/// serde_json's way of placing an error: line from 1, byte column from 1.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let column = at - before.iter().rposition(|&byte| byte == b'\n').map_or(0, |newline| newline + 1) + 1;
    (line, column)
}

/// Where a value stands in the document, for messages: `tiers[0]`, `a.b`.
#[derive(Debug)]
enum Place<'a> {
    Root,
    Key(&'a Place<'a>, &'a str),
    Index(&'a Place<'a>, usize),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Root => Ok(()),
            Place::Key(Place::Root, key) => f.write_str(key),
            Place::Key(parent, key) => write!(f, "{parent}.{key}"),
            Place::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// One value to check, at `depth` levels of arrays and objects inside the document.
#[derive(Debug)]
struct Walk<'a> {
    depth: usize,
    place: &'a Place<'a>,
}

impl Walk<'_> {
    fn enter<E: serde::de::Error>(&self, depth: usize) -> Result<(), E> {
        if depth > JSON_DEPTH_MAX {
            return Err(E::custom(format_args!("nesting deeper than the maximum of {JSON_DEPTH_MAX} levels")));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    /// An integer that fits in 64 bits; any other number arrives as a map (see [`NUMBER_KEY`]),
    /// never as a float.
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    /// serde_json has already decoded the string, refusing a lone surrogate in it.
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        self.enter(depth)?;
        let mut index = 0;
        loop {
            let place = Place::Index(self.place, index);
            if seq.next_element_seed(Walk { depth, place: &place })?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut key = map.next_key::<String>()?;
        let mut keys = HashSet::new();
        if key.as_deref() == Some(NUMBER_KEY) {
            // A number is this key and its text, nothing more. Anything else under the key is
            // an object of the caller's, checked like any other.
            let _text: String = map.next_value()?;
            key = map.next_key()?;
            if key.is_none() {
                return Ok(());
            }
            keys.insert(NUMBER_KEY.to_owned());
        }
        let depth = self.depth + 1;
        self.enter(depth)?;
        while let Some(name) = key {
            if keys.contains(&name) {
                return Err(duplicate(self.place, &name));
            }
            let place = Place::Key(self.place, &name);
            map.next_value_seed(Walk { depth, place: &place })?;
            keys.insert(name);
            key = map.next_key()?;
        }
        Ok(())
    }
}

fn duplicate<E: serde::de::Error>(object: &Place<'_>, key: &str) -> E {
    match object {
        Place::Root => E::custom(format_args!("duplicate key {key:?}")),
        object => E::custom(format_args!("duplicate key {key:?} in {object}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a text should come to: accepted, or a syntax error or a refusal whose message
    /// holds the fragment.
    #[derive(Debug)]
    enum Expect<'a> {
        Accepted,
        Syntax(&'a str),
        Refused(&'a str),
    }
    use Expect::{Accepted, Refused, Syntax};

    fn check_text(text: &str, expect: &Expect<'_>) {
        match (check(text), expect) {
            (Ok(()), Accepted) => {}
            (Err(error @ JsonError::Syntax(_)), Syntax(fragment))
            | (Err(error @ JsonError::Refused(_)), Refused(fragment)) => {
                assert!(error.to_string().contains(fragment), "{text:.80}: {error} lacks {fragment:?}");
            }
            (got, expect) => panic!("{text:.80}: got {got:?}, expected {expect:?}"),
        }
    }

    fn nested(open: &str, depth: usize, inner: &str, close: &str) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn strict_json_table() {
        let max = JSON_DEPTH_MAX;
        let too_deep = format!("nesting deeper than the maximum of {max} levels");
        let table: Vec<(String, Expect<'_>)> = vec![
            ("{}".into(), Accepted),
            (r#"{"a": [1, -2.50, 1e400, 12345678901234567890123, true, null, "x"]}"#.into(), Accepted),
            (r#""\ud83d\ude00 \u00e9 \\ud800 \"\\""#.into(), Accepted),
            (r#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#.into(), Accepted),
            (nested("[", max, "", "]"), Accepted),
            // Numbers, empty objects and strings at the deepest level are no deeper nesting.
            (nested("[", max, "-0.5", "]"), Accepted),
            (nested("[", max - 1, r#"{"a": 1.5}"#, "]"), Accepted),
            (nested("[", max - 1, "{}", "]"), Accepted),
            (nested(r#"{"a": "#, max, "0", "}"), Accepted),
            (nested("[", max + 1, "", "]"), Refused(&too_deep)),
            (nested("[", max, "{}", "]"), Refused(&too_deep)),
            (nested(r#"{"a": "#, max + 1, "0", "}"), Refused(&too_deep)),
            (nested("[", 2000, "", "]"), Refused(&too_deep)),
            (nested("[", 100_000, "", "]"), Refused(&too_deep)),
            (r#""\ud800""#.into(), Refused(r"lone surrogate escape \ud800 at line 1 column 2")),
            (r#"{"a": "\uDC00"}"#.into(), Refused(r"lone surrogate escape \uDC00 at line 1 column 8")),
            ("{\n \"\\ud800x\": 1}".into(), Refused(r"lone surrogate escape \ud800 at line 2 column 3")),
            (r#"["\ud800\u0041"]"#.into(), Refused(r"lone surrogate escape \ud800")),
            (r#"["\ude00\ud83d"]"#.into(), Refused(r"lone surrogate escape \ude00")),
            (r#"["\\\ud800"]"#.into(), Refused(r"lone surrogate escape \ud800")),
            (r#"{"a": 1, "b": 2, "a": 3}"#.into(), Refused("duplicate key \"a\" at line 1 column")),
            (r#"{"a": 1, "\u0061": 2}"#.into(), Refused("duplicate key \"a\"")),
            (r#"{"t": [{"x": 1}, {"x": 1, "x": 2}]}"#.into(), Refused("duplicate key \"x\" in t[1]")),
            (r#"{"a": {"b": {"c": 1, "c": 1}}}"#.into(), Refused("duplicate key \"c\" in a.b")),
            ("".into(), Syntax("EOF while parsing")),
            ("{bad".into(), Syntax("key must be a string")),
            ("{} {}".into(), Syntax("trailing characters")),
            (r#"["\x"]"#.into(), Syntax("invalid escape")),
            // serde_json's key for numbers, written by a caller: a one-string object is taken for the
            // number it stands for, anything more is an object and checked as one.
            (r#"{"$serde_json::private::Number": "1"}"#.into(), Accepted),
            (
                r#"{"$serde_json::private::Number": "1", "$serde_json::private::Number": "2"}"#.into(),
                Refused("duplicate key"),
            ),
            (r#"{"$serde_json::private::Number": [1]}"#.into(), Refused("invalid type")),
        ];
        for (text, expect) in table {
            check_text(&text, &expect);
        }
    }
}

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
//!
//! serde_json reads the whole text once, checking its syntax, and hands each value on as its
//! exact text (`RawValue`, from serde_json's additive `raw_value` feature); each array and
//! object is then read again from its own text, one level at a time. So no number is ever read
//! as one (a float, or out of range like `1e400`): numbers are any caller's business.

use std::collections::HashSet;
use std::fmt;

use serde_json::value::RawValue;

/// The deepest nesting of arrays and objects accepted (the top-level array or object is level
/// 1). A rules file needs 3 levels and `ext_info` is at most 4 KiB of caller metadata: 64 is
/// far above any real document, half of serde_json's own recursion limit, and within what
/// common readers of stored JSON handle, so `ext_info` stays readable wherever it is sent.
pub const JSON_DEPTH_MAX: usize = 64;

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
/// [`JSON_DEPTH_MAX`] or duplicate keys. Text that is not JSON at all is reported as such first.
pub fn check(text: &str) -> Result<(), JsonError> {
    if let Some(message) = lone_surrogate(text) {
        return Err(JsonError::Refused(message));
    }
    let root: &RawValue = serde_json::from_str(text).map_err(JsonError::Syntax)?;
    walk(text, root, 0, &Place::Root)
}

/// Checks one value of `text` (its array or object at `depth` levels inside the document).
fn walk(text: &str, value: &RawValue, depth: usize, place: &Place<'_>) -> Result<(), JsonError> {
    let raw = value.get();
    let too_deep = || {
        let at = position(text, offset(text, raw) + 1);
        JsonError::Refused(format!("nesting deeper than the maximum of {JSON_DEPTH_MAX} levels at {at}"))
    };
    match raw.as_bytes().first() {
        Some(b'[') => {
            if depth + 1 > JSON_DEPTH_MAX {
                return Err(too_deep());
            }
            let elements: Vec<&RawValue> = serde_json::from_str(raw).map_err(JsonError::Syntax)?;
            for (index, element) in elements.into_iter().enumerate() {
                walk(text, element, depth + 1, &Place::Index(place, index))?;
            }
        }
        Some(b'{') => {
            if depth + 1 > JSON_DEPTH_MAX {
                return Err(too_deep());
            }
            let members: Members<'_> = serde_json::from_str(raw).map_err(JsonError::Syntax)?;
            let mut keys = HashSet::new();
            for (key, value) in &members.0 {
                if !keys.insert(key.as_str()) {
                    return Err(duplicate(text, place, key, value));
                }
                walk(text, value, depth + 1, &Place::Key(place, key))?;
            }
        }
        // A string, number, `true`, `false` or `null`: serde_json has checked it.
        _ => {}
    }
    Ok(())
}

pub use purse_ingest::raw_json::Members;

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

/// Where `part`, a value serde_json handed on as text, begins in `text` (it lies inside it).
fn offset(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize).min(text.len())
}

/// serde_json's words for the place just before byte `at`: "line 2 column 5", the column
/// counting the bytes of the line before `at`.
fn position(text: &str, at: usize) -> String {
    let (line, column) = line_column(text, at);
    format!("line {line} column {}", column - 1)
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

/// A key met twice, placed at the colon after its second occurrence (where serde_json stands
/// once it has read the key).
fn duplicate(text: &str, object: &Place<'_>, key: &str, value: &RawValue) -> JsonError {
    let before = text[..offset(text, value.get())].trim_end_matches([' ', '\t', '\n', '\r']);
    let at = position(text, before.len().saturating_sub(1));
    JsonError::Refused(match object {
        Place::Root => format!("duplicate key {key:?} at {at}"),
        object => format!("duplicate key {key:?} in {object} at {at}"),
    })
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
            // Numbers are never read as numbers: none is too large, too precise or a float.
            (r#"[1e400, -1e-400, 0.1e1, 1E+3, 123456789012345678901234567890.123456789]"#.into(), Accepted),
            // The key serde_json's `arbitrary_precision` gives numbers is only a key here, like any
            // other: purse does not turn that feature on.
            (r#"{"$serde_json::private::Number": "1"}"#.into(), Accepted),
            (
                r#"{"$serde_json::private::Number": "1", "$serde_json::private::Number": "2"}"#.into(),
                Refused("duplicate key"),
            ),
            (r#"{"$serde_json::private::Number": [1]}"#.into(), Accepted),
            // Syntax is checked over the whole text before anything else.
            (r#"{"a": 1, "a": 2, "b": [1,}"#.into(), Syntax("expected value at line 1 column 26")),
        ];
        for (text, expect) in table {
            check_text(&text, &expect);
        }
    }
}

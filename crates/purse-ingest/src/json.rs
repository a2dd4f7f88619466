//! The streaming JSON reader: serde visitors over `serde_json`'s reader, never a `Value` tree.
//!
//! An input is a sequence of documents: one response, a JSON array of responses, or responses
//! one after another (JSON lines). Each object is read into an [`Object`] holding only the
//! provider's fields and handed to [`Schema::finish`]; nested values under other keys are
//! walked the same way. Memory is the current path of objects plus the items found so far.
//!
//! The values a provider reads (its fields and property lists) are taken as their exact source
//! text ([`TextSeed`], [`ListSeed`]), so a number reaches a provider as the digits it was
//! written with. Everything else is only walked past: serde_json reads a number there as it
//! would for any caller and [`Walk`] drops it unseen.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::raw_json::Members;

use crate::error::Error;
use crate::record::{Item, Rejection, Text};
use crate::schema::{List, Object, Property, Schema};

/// The longest line read whole for the fast path (a Zenlayer page of 5000 records is ~1 MiB).
/// A longer line is streamed like any other input.
pub(crate) const LINE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Reads every document of `reader` and appends its items to `out`. A syntax error stops this
/// input with a rejection; only a failure to read the bytes at all is an `Err`.
///
/// Documents that each sit on one line (JSON lines, a one-line response) are parsed from the
/// line in memory, which is several times faster than serde_json's byte-by-byte reader; at the
/// first line that does not hold whole documents, the rest of the input (that line included)
/// streams through the reader instead.
pub(crate) fn read<S: Schema>(
    schema: &S,
    path: &str,
    mut reader: impl BufRead,
    out: &mut Vec<Item>,
) -> Result<(), Error> {
    let unreadable = |error: std::io::Error| Error::Read { path: path.to_owned(), message: error.to_string() };
    let mut position = Position { line: 0, document: 0 };
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader).take(LINE_BYTES_MAX).read_until(b'\n', &mut line).map_err(unreadable)?;
        if read == 0 {
            return Ok(());
        }
        let start = (out.len(), position);
        let whole_line = line.last() == Some(&b'\n') || read < usize::try_from(LINE_BYTES_MAX).unwrap_or(usize::MAX);
        let parsed = if whole_line {
            documents(schema, path, &mut serde_json::Deserializer::from_slice(&line), &mut position, out)?
        } else {
            Documents::Incomplete(None)
        };
        match parsed {
            Documents::Complete => position.line += 1,
            Documents::Stopped => return Ok(()),
            Documents::Incomplete(_) => {
                out.truncate(start.0);
                position = start.1;
                let rest = std::io::Cursor::new(std::mem::take(&mut line)).chain(reader);
                let mut streaming = serde_json::Deserializer::from_reader(rest);
                if let Documents::Incomplete(error) = documents(schema, path, &mut streaming, &mut position, out)? {
                    out.push(syntax(path, &error, position));
                }
                return Ok(());
            }
        }
    }
}

/// Where a reader stands: lines before the current one, documents read so far.
#[derive(Debug, Clone, Copy)]
struct Position {
    line: usize,
    document: u64,
}

/// How a run of documents ended.
enum Documents {
    /// At the end of the input, between documents.
    Complete,
    /// At the end of the input, inside a document (or at the end of a line that is too long).
    Incomplete(Option<serde_json::Error>),
    /// At a syntax error (reported).
    Stopped,
}

/// Reads documents until the end of `deserializer`'s input.
fn documents<'de, R: serde_json::de::Read<'de>, S: Schema>(
    schema: &S,
    path: &str,
    deserializer: &mut serde_json::Deserializer<R>,
    position: &mut Position,
    out: &mut Vec<Item>,
) -> Result<Documents, Error> {
    loop {
        let flags = Flags::default();
        let start = out.len();
        match (Walk { schema, out: &mut *out, flags: &flags }).deserialize(&mut *deserializer) {
            Ok(()) => {
                position.document += 1;
                if out.len() == start && !flags.marker.get() {
                    out.push(rejected(Error::NotAResponse {
                        path: path.to_owned(),
                        message: format!("document {} is not {}", position.document, schema.expected()),
                    }));
                }
            }
            Err(error) if error.is_io() => {
                return Err(Error::Read { path: path.to_owned(), message: error.to_string() });
            }
            Err(error) if error.is_eof() && !flags.started.get() => return Ok(Documents::Complete),
            Err(error) if error.is_eof() => return Ok(Documents::Incomplete(Some(error))),
            Err(error) => {
                out.push(syntax(path, &Some(error), *position));
                return Ok(Documents::Stopped);
            }
        }
    }
}

/// A syntax error, placed in the whole input (serde_json counts lines from the start of what it
/// was given, which may be one line of it).
fn syntax(path: &str, error: &Option<serde_json::Error>, position: Position) -> Item {
    let described = match error {
        Some(error) => {
            let message = error.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            format!("{message} at line {} column {}", position.line + error.line(), error.column())
        }
        None => "the input ends inside a document".to_owned(),
    };
    rejected(Error::Syntax {
        path: path.to_owned(),
        message: format!("not valid JSON ({described}); the rest of this input is not read"),
    })
}

fn rejected(error: Error) -> Item {
    Item::Rejected(Rejection { record_id: None, error })
}

/// Whether the current document has begun (so an end of input is a truncation, not the end)
/// and whether it named anything of this provider's.
#[derive(Debug, Default)]
struct Flags {
    started: Cell<bool>,
    marker: Cell<bool>,
}

/// Walks any value; objects go to the schema.
struct Walk<'a, S> {
    schema: &'a S,
    out: &'a mut Vec<Item>,
    flags: &'a Flags,
}

impl<'de, S: Schema> DeserializeSeed<'de> for Walk<'_, S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: Schema> Visitor<'de> for Walk<'_, S> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.flags.started.set(true);
        let children = self.out.len();
        let mut object = Object::default();
        while let Some(key) = map.next_key_seed(KeySeed { schema: self.schema, flags: self.flags })? {
            match key {
                Key::Field(slot) => object.fields[slot] = Some(map.next_value_seed(TextSeed)?),
                Key::List(slot) => object.lists[slot] = map.next_value_seed(ListSeed)?,
                Key::Other => {
                    map.next_value_seed(Walk { schema: self.schema, out: &mut *self.out, flags: self.flags })?
                }
            }
        }
        self.schema.finish(object, self.out, children);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.flags.started.set(true);
        while seq.next_element_seed(Walk { schema: self.schema, out: &mut *self.out, flags: self.flags })?.is_some() {}
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.flags.started.set(true);
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.flags.started.set(true);
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.flags.started.set(true);
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.flags.started.set(true);
        Ok(())
    }

    /// A number that is no 64-bit integer, in a place no provider reads: serde_json's own
    /// reading of it, dropped unseen. Amounts never come this way ([`TextSeed`]).
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.flags.started.set(true);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.flags.started.set(true);
        Ok(())
    }
}

/// What a key is to the provider.
enum Key {
    Field(usize),
    List(usize),
    Other,
}

/// Classifies a key without allocating it.
struct KeySeed<'a, S> {
    schema: &'a S,
    flags: &'a Flags,
}

impl<'de, S: Schema> DeserializeSeed<'de> for KeySeed<'_, S> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, S: Schema> Visitor<'de> for KeySeed<'_, S> {
    type Value = Key;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        if self.schema.marker(key) {
            self.flags.marker.set(true);
        }
        Ok(match (self.schema.field(key), self.schema.list(key)) {
            (Some(slot), _) => Key::Field(slot),
            (None, Some(slot)) => Key::List(slot),
            (None, None) => Key::Other,
        })
    }
}

/// Reads a field as [`Text`], from the value's exact source text: a number keeps the digits the
/// provider wrote (`20.10` stays `20.10`), so an amount never passes through a float.
///
/// The text comes from serde_json's `raw_value` feature (`RawValue`), which only adds that
/// type. (Not `arbitrary_precision`: Cargo unifies features, so that one would change how
/// numbers deserialize in every application that embeds purse.) A field is one scalar, or
/// rarely a short array (KYBIO `messages`), so holding its text costs no more than the string
/// it is anyway.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text, D::Error> {
        let raw = String::from(Box::<str>::from(Box::<RawValue>::deserialize(deserializer)?));
        text_owned(raw).map_err(relocate)
    }
}

/// Arrays nested deeper than this inside one field are not read (each level reads its own text
/// again): no provider nests arrays in a field at all.
const FIELD_ARRAYS_DEPTH_MAX: usize = 16;

/// [`text`] of a field's whole text, reusing its allocation for the common cases.
fn text_owned(mut raw: String) -> Result<Text, serde_json::Error> {
    match raw.as_bytes().first() {
        // serde_json checked the string when it read the value: with no escape, its text between
        // the quotes is the string.
        Some(b'"') if !raw.contains('\\') => {
            raw.pop();
            raw.remove(0);
            Ok(Text::Str(raw))
        }
        Some(b'-' | b'0'..=b'9') => Ok(Text::Num(raw)),
        _ => text(&raw, 0),
    }
}

/// What a value's text is, by its first byte (serde_json has checked the syntax and trimmed
/// the whitespace): a number as written, a string decoded, the scalars of an array joined.
fn text(raw: &str, depth: usize) -> Result<Text, serde_json::Error> {
    Ok(match raw.as_bytes().first() {
        Some(b'"') => Text::Str(serde_json::from_str(raw)?),
        Some(b'-' | b'0'..=b'9') => Text::Num(raw.to_owned()),
        Some(b't') => Text::Bool(true),
        Some(b'f') => Text::Bool(false),
        Some(b'n') => Text::Null,
        Some(b'[') if depth >= FIELD_ARRAYS_DEPTH_MAX => Text::Other("an array nested too deep"),
        Some(b'[') => {
            let mut parts = Vec::new();
            let mut other = None;
            for element in serde_json::from_str::<Vec<&RawValue>>(raw)? {
                match text(element.get(), depth + 1)? {
                    Text::Str(part) | Text::Num(part) | Text::Array(part) => parts.push(part),
                    Text::Null | Text::Bool(_) => {}
                    Text::Other(kind) => other = other.or(Some(kind)),
                }
            }
            match other {
                None => Text::Array(parts.join("; ")),
                Some(deep @ "an array nested too deep") => Text::Other(deep),
                Some(_) => Text::Other("an array of objects"),
            }
        }
        _ => Text::Other("an object"),
    })
}

/// An error in a value's own text (a lone surrogate escape in a string), handed back to the
/// deserializer of the whole input without the place serde_json counted from the value's
/// start, so that it is placed in the input (just after the value) like any other.
fn relocate<E: serde::de::Error>(error: serde_json::Error) -> E {
    let message = error.to_string();
    E::custom(message.split(" at line ").next().unwrap_or(&message))
}

/// A property list in any of TOP's shapes: a plain array (`simplify=true`), or an object
/// holding the array under the item type's name (`{"recharge_account_property_open_info": […]}`).
/// `null` counts as absent. Read from its text like a field (a list is a few entries), so its
/// numbers keep their digits too.
struct ListSeed;

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Option<List>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<List>, D::Error> {
        list(Box::<RawValue>::deserialize(deserializer)?.get()).map_err(relocate)
    }
}

fn list(raw: &str) -> Result<Option<List>, serde_json::Error> {
    let mut list: List = Ok(Vec::new());
    match raw.as_bytes().first() {
        Some(b'n') => return Ok(None),
        Some(b'[') => {
            for entry in serde_json::from_str::<Vec<&RawValue>>(raw)? {
                push(&mut list, property(entry.get())?);
            }
        }
        // The wrapper's one key names the item type; its value is the array (or one item).
        Some(b'{') => {
            for (_, entries) in serde_json::from_str::<Members<'_>>(raw)?.0 {
                for entry in wrapped(entries.get())? {
                    push(&mut list, entry);
                }
            }
        }
        Some(b'"') => list = Err("a string, not a list"),
        Some(b't' | b'f') => list = Err("a boolean, not a list"),
        _ => list = Err("a number, not a list"),
    }
    Ok(Some(list))
}

fn push(list: &mut List, entry: Result<Property, &'static str>) {
    match (list.as_mut(), entry) {
        (Ok(entries), Ok(entry)) => entries.push(entry),
        (Ok(_), Err(why)) => *list = Err(why),
        (Err(_), _) => {}
    }
}

/// The value under a list wrapper's key: an array of entries, or a single entry.
fn wrapped(raw: &str) -> Result<Vec<Result<Property, &'static str>>, serde_json::Error> {
    Ok(match raw.as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(raw)?
            .iter()
            .map(|entry| property(entry.get()))
            .collect::<Result<_, _>>()?,
        Some(b'{') => vec![property(raw)?],
        Some(b'n') => Vec::new(),
        Some(b'"') => vec![Err("a string where property entries belong")],
        Some(b't' | b'f') => vec![Err("a boolean where property entries belong")],
        _ => vec![Err("a number where property entries belong")],
    })
}

/// One `{"type": "REAL", "value": 200}` entry.
fn property(raw: &str) -> Result<Result<Property, &'static str>, serde_json::Error> {
    Ok(match raw.as_bytes().first() {
        Some(b'{') => {
            let (mut kind, mut value) = (None, None);
            for (key, member) in serde_json::from_str::<Members<'_>>(raw)?.0 {
                match key.as_str() {
                    "type" => kind = Some(text(member.get(), 0)?),
                    "value" => value = Some(text(member.get(), 0)?),
                    _ => {}
                }
            }
            match (kind, value) {
                (Some(kind), Some(value)) => Ok((kind, value)),
                _ => Err("a property entry without both type and value"),
            }
        }
        Some(b'[') => Err("an array where a property entry belongs"),
        Some(b'"') => Err("a string where a property entry belongs"),
        Some(b't' | b'f') => Err("a boolean where a property entry belongs"),
        Some(b'n') => Err("null where a property entry belongs"),
        _ => Err("a number where a property entry belongs"),
    })
}

//! The streaming JSON reader: serde visitors over `serde_json`'s reader, never a `Value` tree.
//!
//! An input is a sequence of documents: one response, a JSON array of responses, or responses
//! one after another (JSON lines). Each object is read into an [`Object`] holding only the
//! provider's fields and handed to [`Schema::finish`]; nested values under other keys are
//! walked the same way. Memory is the current path of objects plus the items found so far.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::Error;
use crate::record::{Item, Rejection, Text};
use crate::schema::{List, Object, Property, Schema};

/// serde_json's name for a number kept as text (`arbitrary_precision`): such a number reaches a
/// visitor as a one-entry map under this key.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

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
                // A number outside any field the provider reads: nothing to keep.
                Key::Number => return map.next_value::<IgnoredAny>().map(|_| ()),
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
    Number,
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
        if key == NUMBER_TOKEN {
            return Ok(Key::Number);
        }
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

/// Reads a scalar field as [`Text`]; anything else is consumed and described.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Text, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Text;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a scalar")
    }

    fn visit_str<E>(self, text: &str) -> Result<Text, E> {
        Ok(Text::Str(text.to_owned()))
    }

    fn visit_string<E>(self, text: String) -> Result<Text, E> {
        Ok(Text::Str(text))
    }

    fn visit_bool<E>(self, value: bool) -> Result<Text, E> {
        Ok(Text::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Text, E> {
        Ok(Text::Num(value.to_string()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Text, E> {
        Ok(Text::Num(value.to_string()))
    }

    // Unreachable with `arbitrary_precision` (numbers come as text); kept so a float can never
    // be mistaken for anything but what it is. Its text is still parsed exactly, or refused.
    fn visit_f64<E>(self, value: f64) -> Result<Text, E> {
        Ok(Text::Num(value.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Text, E> {
        Ok(Text::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
        let mut first = true;
        let mut number = None;
        while let Some(key) = map.next_key::<KeyText>()? {
            if first && key.0 == NUMBER_TOKEN {
                number = Some(map.next_value::<String>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            first = false;
        }
        Ok(number.map_or(Text::Other("an object"), Text::Num))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
        let mut parts = Vec::new();
        let mut scalars = true;
        while let Some(element) = seq.next_element_seed(TextSeed)? {
            match element.as_str() {
                Some(text) => parts.push(text.to_owned()),
                None => scalars &= matches!(element, Text::Null | Text::Bool(_)),
            }
        }
        Ok(if scalars { Text::Array(parts.join("; ")) } else { Text::Other("an array of objects") })
    }
}

/// A key kept as text (only for the rare objects where a number might hide).
struct KeyText(String);

impl<'de> serde::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeyText, D::Error> {
        String::deserialize(deserializer).map(KeyText)
    }
}

/// A property list in any of TOP's shapes: a plain array (`simplify=true`), or an object
/// holding the array under the item type's name (`{"recharge_account_property_open_info": […]}`).
/// `null` counts as absent.
struct ListSeed;

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Option<List>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<List>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Option<List>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a property list")
    }

    fn visit_unit<E>(self) -> Result<Option<List>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<List>, A::Error> {
        let mut list: List = Ok(Vec::new());
        while let Some(entry) = seq.next_element_seed(PropertySeed)? {
            push(&mut list, entry);
        }
        Ok(Some(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<List>, A::Error> {
        let mut list: List = Ok(Vec::new());
        while let Some(key) = map.next_key::<KeyText>()? {
            if key.0 == NUMBER_TOKEN {
                map.next_value::<IgnoredAny>()?;
                list = Err("a number, not a list");
                continue;
            }
            // The wrapper's one key names the item type; its value is the array (or one item).
            for entry in map.next_value::<WrappedEntries>()?.0 {
                push(&mut list, entry);
            }
        }
        Ok(Some(list))
    }

    fn visit_str<E>(self, _: &str) -> Result<Option<List>, E> {
        Ok(Some(Err("a string, not a list")))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<List>, E> {
        Ok(Some(Err("a boolean, not a list")))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Option<List>, E> {
        Ok(Some(Err("a number, not a list")))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Option<List>, E> {
        Ok(Some(Err("a number, not a list")))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Option<List>, E> {
        Ok(Some(Err("a number, not a list")))
    }
}

fn push(list: &mut List, entry: Result<Property, &'static str>) {
    match (list.as_mut(), entry) {
        (Ok(entries), Ok(entry)) => entries.push(entry),
        (Ok(_), Err(why)) => *list = Err(why),
        (Err(_), _) => {}
    }
}

/// The value under a list wrapper's key: an array of entries, or a single entry.
struct WrappedEntries(Vec<Result<Property, &'static str>>);

impl<'de> Deserialize<'de> for WrappedEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WrappedEntries, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = WrappedEntries;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("property entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WrappedEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = seq.next_element_seed(PropertySeed)? {
                    entries.push(entry);
                }
                Ok(WrappedEntries(entries))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<WrappedEntries, A::Error> {
                Ok(WrappedEntries(vec![PropertySeed.visit_map(map)?]))
            }
            fn visit_unit<E>(self) -> Result<WrappedEntries, E> {
                Ok(WrappedEntries(Vec::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<WrappedEntries, E> {
                Ok(WrappedEntries(vec![Err("a string where property entries belong")]))
            }
            fn visit_bool<E>(self, _: bool) -> Result<WrappedEntries, E> {
                Ok(WrappedEntries(vec![Err("a boolean where property entries belong")]))
            }
            fn visit_i64<E>(self, _: i64) -> Result<WrappedEntries, E> {
                Ok(WrappedEntries(vec![Err("a number where property entries belong")]))
            }
            fn visit_u64<E>(self, _: u64) -> Result<WrappedEntries, E> {
                Ok(WrappedEntries(vec![Err("a number where property entries belong")]))
            }
            fn visit_f64<E>(self, _: f64) -> Result<WrappedEntries, E> {
                Ok(WrappedEntries(vec![Err("a number where property entries belong")]))
            }
        }
        deserializer.deserialize_any(Entries)
    }
}

/// One `{"type": "REAL", "value": 200}` entry.
struct PropertySeed;

impl<'de> DeserializeSeed<'de> for PropertySeed {
    type Value = Result<Property, &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PropertySeed {
    type Value = Result<Property, &'static str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a property entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut kind, mut value, mut number) = (None, None, false);
        while let Some(key) = map.next_key::<KeyText>()? {
            match key.0.as_str() {
                "type" => kind = Some(map.next_value_seed(TextSeed)?),
                "value" => value = Some(map.next_value_seed(TextSeed)?),
                NUMBER_TOKEN => {
                    number = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match (kind, value) {
            _ if number => Err("a number where a property entry belongs"),
            (Some(kind), Some(value)) => Ok((kind, value)),
            _ => Err("a property entry without both type and value"),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array where a property entry belongs"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err("a string where a property entry belongs"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean where a property entry belongs"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number where a property entry belongs"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number where a property entry belongs"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number where a property entry belongs"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err("null where a property entry belongs"))
    }
}

//! The streaming XML reader (TOP's default format), on quick-xml's event reader.
//!
//! It reads the same [`Object`]s as the JSON reader: an element with child elements is an
//! object, an element with only text is a scalar field of its parent, and an element the
//! schema names as a property list holds `<type>`/`<value>` entries under any item name. A stack
//! of open elements is all it keeps, bounded by [`DEPTH_MAX`]; leaf text by [`TEXT_BYTES_MAX`].

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::Error;
use crate::record::{Item, Rejection, Text};
use crate::schema::{List, Object, Schema};

/// Elements nested deeper than this are refused (serde_json's own limit is 128 too).
pub(crate) const DEPTH_MAX: usize = 128;
/// The longest text one element may hold. A remark is at most 512 characters, ext_info 4 KiB.
pub(crate) const TEXT_BYTES_MAX: usize = 64 * 1024;

/// One open element.
enum Frame {
    /// An object or a scalar field: which one is known when it closes.
    Node(Box<Node>),
    /// A property list.
    List { slot: usize, list: List },
    /// One entry of a property list.
    Entry { kind: Option<Text>, value: Option<Text> },
    /// `<type>` or `<value>` of an entry (or another child, ignored).
    Leaf { part: Part, text: Text },
    /// Anything under a leaf: walked past.
    Skip,
}

struct Node {
    field: Option<usize>,
    object: Object,
    /// `out.len()` when the element opened: the items after it were found inside it.
    children: usize,
    elements: bool,
    text: Text,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Kind,
    Value,
    Ignored,
}

/// Reads every root element of `reader` and appends its items to `out`. Malformed XML stops
/// this input with a rejection; only a failure to read the bytes at all is an `Err`.
pub(crate) fn read<S: Schema>(schema: &S, path: &str, reader: impl BufRead, out: &mut Vec<Item>) -> Result<(), Error> {
    let mut reader = Reader::from_reader(reader);
    reader.config_mut().trim_text(false);
    let mut state = State { schema, stack: Vec::new(), documents: 0, document_start: 0, marker: false };
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let event = match reader.read_event_into(&mut buffer) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(error)) => {
                return Err(Error::Read { path: path.to_owned(), message: error.to_string() });
            }
            Err(error) => {
                let at = reader.error_position();
                out.push(syntax(path, format!("not valid XML at byte {at} ({error})")));
                return Ok(());
            }
        };
        let step = match event {
            Event::Start(start) => state.open(&start, out),
            Event::Empty(start) => state.open(&start, out).and_then(|()| state.close(out, path)),
            Event::End(_) => state.close(out, path),
            Event::Text(text) => text.xml10_content().map_err(|error| error.to_string()).map(|text| state.text(&text)),
            Event::CData(data) => data.decode().map_err(|error| error.to_string()).map(|text| state.text(&text)),
            Event::GeneralRef(reference) => general_ref(&reference).map(|text| state.text(&text)),
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => Ok(()),
        };
        if let Err(message) = step {
            let at = reader.buffer_position();
            out.push(syntax(path, format!("not valid XML at byte {at} ({message})")));
            return Ok(());
        }
    }
    if !state.stack.is_empty() {
        out.push(syntax(path, "the XML ends inside an element".to_owned()));
    } else if state.documents == 0 {
        out.push(Item::Rejected(Rejection {
            record_id: None,
            error: Error::NotAResponse { path: path.to_owned(), message: "the input holds no XML element".into() },
        }));
    }
    Ok(())
}

fn syntax(path: &str, message: String) -> Item {
    Item::Rejected(Rejection {
        record_id: None,
        error: Error::Syntax {
            path: path.to_owned(),
            message: format!("{message}; the rest of this input is not read"),
        },
    })
}

/// `&amp;` and the other predefined entities, and character references.
fn general_ref(reference: &quick_xml::events::BytesRef<'_>) -> Result<String, String> {
    if let Some(character) = reference.resolve_char_ref().map_err(|error| error.to_string())? {
        return Ok(character.to_string());
    }
    let name = reference.decode().map_err(|error| error.to_string())?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| format!("unknown entity &{name};"))
}

struct State<'a, S> {
    schema: &'a S,
    stack: Vec<Frame>,
    documents: u64,
    document_start: usize,
    marker: bool,
}

impl<S: Schema> State<'_, S> {
    fn open(&mut self, start: &BytesStart<'_>, out: &[Item]) -> Result<(), String> {
        if self.stack.len() >= DEPTH_MAX {
            return Err(format!("elements nested deeper than {DEPTH_MAX}"));
        }
        let local = start.local_name();
        let name = std::str::from_utf8(local.as_ref()).map_err(|_| "an element name that is not UTF-8".to_owned())?;
        if self.stack.is_empty() {
            self.documents += 1;
            self.document_start = out.len();
            self.marker = false;
        }
        if self.schema.marker(name) {
            self.marker = true;
        }
        let frame = match self.stack.last_mut() {
            Some(Frame::List { .. }) => Frame::Entry { kind: None, value: None },
            Some(Frame::Entry { .. }) => {
                let part = match name {
                    "type" => Part::Kind,
                    "value" => Part::Value,
                    _ => Part::Ignored,
                };
                Frame::Leaf { part, text: Text::Str(String::new()) }
            }
            Some(Frame::Leaf { text, .. }) => {
                *text = Text::Other("an element with children");
                Frame::Skip
            }
            Some(Frame::Skip) => Frame::Skip,
            parent => {
                if let Some(Frame::Node(node)) = parent {
                    node.elements = true;
                }
                match (self.schema.field(name), self.schema.list(name)) {
                    (None, Some(slot)) => Frame::List { slot, list: Ok(Vec::new()) },
                    (field, _) => Frame::Node(Box::new(Node {
                        field,
                        object: Object::default(),
                        children: out.len(),
                        elements: false,
                        text: Text::Str(String::new()),
                    })),
                }
            }
        };
        self.stack.push(frame);
        Ok(())
    }

    fn text(&mut self, content: &str) {
        let text = match self.stack.last_mut() {
            Some(Frame::Node(node)) => &mut node.text,
            Some(Frame::Leaf { text, .. }) => text,
            _ => return,
        };
        if let Text::Str(buffer) = text {
            if buffer.len() + content.len() > TEXT_BYTES_MAX {
                *text = Text::Other("text longer than 64 KiB");
            } else {
                buffer.push_str(content);
            }
        }
    }

    fn close(&mut self, out: &mut Vec<Item>, path: &str) -> Result<(), String> {
        let frame = self.stack.pop().ok_or("an end tag without its start")?;
        let parent = self.stack.last_mut();
        match (frame, parent) {
            (Frame::Node(node), parent) => {
                let Node { field, object, children, elements, text } = *node;
                let value = if elements {
                    self.schema.finish(object, out, children);
                    Text::Other("an element with children")
                } else {
                    trimmed(text)
                };
                if let (Some(slot), Some(Frame::Node(parent))) = (field, parent) {
                    parent.object.fields[slot] = Some(value);
                }
            }
            (Frame::List { slot, list }, Some(Frame::Node(parent))) => parent.object.lists[slot] = Some(list),
            (Frame::Entry { kind, value }, Some(Frame::List { list, .. })) => match (kind, value) {
                (Some(kind), Some(value)) => {
                    if let Ok(entries) = list {
                        entries.push((kind, value));
                    }
                }
                _ => *list = Err("a property entry without both type and value"),
            },
            (Frame::Leaf { part, text }, Some(Frame::Entry { kind, value })) => match part {
                Part::Kind => *kind = Some(trimmed(text)),
                Part::Value => *value = Some(trimmed(text)),
                Part::Ignored => {}
            },
            _ => {}
        }
        if self.stack.is_empty() && out.len() == self.document_start && !self.marker {
            out.push(Item::Rejected(Rejection {
                record_id: None,
                error: Error::NotAResponse {
                    path: path.to_owned(),
                    message: format!("document {} is not {}", self.documents, self.schema.expected()),
                },
            }));
        }
        Ok(())
    }
}

/// Leaf text without the indentation around it; `<remark/>` is an empty string (absent).
fn trimmed(text: Text) -> Text {
    match text {
        Text::Str(text) => {
            let trimmed = text.trim();
            if trimmed.len() == text.len() {
                Text::Str(text)
            } else {
                Text::Str(trimmed.to_owned())
            }
        }
        other => other,
    }
}

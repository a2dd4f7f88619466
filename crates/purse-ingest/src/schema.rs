//! What the format readers (JSON, XML) hand to a provider: one object at a time, flattened to
//! the fields that provider reads.
//!
//! The readers walk any nesting (envelopes, pages, list wrappers, arrays of responses) without
//! knowing the provider. At the end of every object they call [`Schema::finish`], which decides
//! whether that object is a record, an error envelope, or just a container. So the three JSON
//! shapes of TOP (wrapped lists, `simplify=true` plain arrays, and the XML) and the providers'
//! paging envelopes all come down to the same records, and nothing but the current path of
//! objects is ever held in memory.

use crate::record::{Item, Text};

/// The most scalar fields one provider reads from an object.
pub(crate) const FIELDS_MAX: usize = 20;
/// The most property lists one provider reads from an object (ALSC: affected, before, after).
pub(crate) const LISTS_MAX: usize = 3;

/// One `{"type": …, "value": …}` entry of a property list, as written.
pub(crate) type Property = (Text, Text);

/// A property list, or what was wrong with its shape.
pub(crate) type List = Result<Vec<Property>, &'static str>;

/// The fields of one object that the provider reads; everything else was walked past.
#[derive(Debug, Default)]
pub(crate) struct Object {
    pub fields: [Option<Text>; FIELDS_MAX],
    pub lists: [Option<List>; LISTS_MAX],
}

/// How one provider reads objects.
pub(crate) trait Schema {
    /// The slot of a scalar field this provider reads, by its key.
    fn field(&self, key: &str) -> Option<usize>;

    /// The slot of a property list, by its key (only ALSC has them).
    fn list(&self, _key: &str) -> Option<usize> {
        None
    }

    /// Whether a key shows that a document is this provider's response.
    fn marker(&self, key: &str) -> bool;

    /// Called when an object ends. `out[children..]` holds the items found inside it; the
    /// schema appends the object's own item (a record, an error) or rewrites its children
    /// (an envelope that says its records failed).
    fn finish(&self, object: Object, out: &mut Vec<Item>, children: usize);

    /// What a document must contain, for the message when it contains none of it.
    fn expected(&self) -> &'static str;
}

/// An envelope that says its request failed: the records inside it are not the provider's word,
/// so each becomes a rejection carrying `message`; with none inside, the envelope itself is one.
pub(crate) fn disown(out: &mut Vec<Item>, children: usize, message: &str) {
    use crate::error::Error;
    use crate::record::Rejection;
    if out.len() == children {
        out.push(Item::Rejected(Rejection {
            record_id: None,
            error: Error::ProviderError { message: message.to_owned() },
        }));
        return;
    }
    for item in &mut out[children..] {
        if let Item::Record(record) = item {
            let record_id = Some(std::mem::take(&mut record.record_id));
            let error = Error::ProviderError { message: format!("{message}: its records are not confirmed") };
            *item = Item::Rejected(Rejection { record_id, error });
        }
    }
}

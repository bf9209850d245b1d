//! A lean walk over the elements of a raw BSON document.
//!
//! Reading the history is most of what a start with nothing to apply costs, and the `bson`
//! crate's element iterator parses and validates every value it passes, wanted or not. This
//! walk only measures each element to step over it; a caller parses the values it wants
//! with [`value`], whenever it reads them. Every length is checked against the document's bytes, so a
//! malformed document is an error, never a panic or a read out of bounds.

use mongodb::bson::raw::{RawBsonRef, RawDocument};
use mongodb::bson::DateTime;

/// The elements of `doc`, in order.
pub(crate) fn elements(doc: &RawDocument) -> Elements<'_> {
    let bytes = doc.as_bytes();
    Elements {
        // The length prefix, then the elements, then the terminating 0 (which `RawDocument`
        // has checked is there).
        rest: bytes.get(4..bytes.len().saturating_sub(1)).unwrap_or(&[]),
    }
}

/// A walk over the elements of a document; see [`elements`].
pub(crate) struct Elements<'a> {
    rest: &'a [u8],
}

/// One element of a document: its key and its value's bytes, unparsed.
pub(crate) struct Element<'a> {
    /// The field name's bytes, not checked to be UTF-8.
    key: &'a [u8],
    kind: u8,
    value: &'a [u8],
}

impl<'a> Elements<'a> {
    /// The next element, with the tag `known` gives its name; `None` after the last one or
    /// after an error.
    ///
    /// `known` is handed the bytes that start with the element's name and returns a tag and
    /// the name's length when it recognises the name there. The walk then trusts that length
    /// (after checking the 0 that ends the name) instead of searching for the name's end,
    /// the costly part of stepping over a field with a long name.
    #[inline]
    pub(crate) fn next_named<T>(
        &mut self,
        known: impl FnOnce(&[u8]) -> Option<(T, usize)>,
    ) -> Option<Result<(Option<T>, Element<'a>), String>> {
        let (&kind, after_kind) = self.rest.split_first()?;
        let (tag, key_end) = match known(after_kind) {
            Some((tag, len)) if after_kind.get(len) == Some(&0) => (Some(tag), len),
            _ => match after_kind.iter().position(|&b| b == 0) {
                Some(end) => (None, end),
                None => {
                    // Nothing after a malformed element can be trusted.
                    self.rest = &[];
                    return Some(Err("the document ends inside a field name".to_owned()));
                }
            },
        };
        let (key, after_key) = (&after_kind[..key_end], &after_kind[key_end + 1..]);
        let Some(size) = value_size(kind, after_key) else {
            self.rest = &[];
            return Some(Err(format!(
                "field `{}` is truncated",
                String::from_utf8_lossy(key)
            )));
        };
        let (value, rest) = after_key.split_at(size);
        self.rest = rest;
        Some(Ok((tag, Element { key, kind, value })))
    }
}

/// The size of a value of BSON type `kind` at the start of `bytes`, if it fits in them.
#[inline]
fn value_size(kind: u8, bytes: &[u8]) -> Option<usize> {
    let length = || -> Option<usize> {
        let prefix: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        usize::try_from(i32::from_le_bytes(prefix)).ok()
    };
    let size = match kind {
        // double, date, timestamp, int64
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        // string, JavaScript code, symbol: length, bytes, 0
        0x02 | 0x0D | 0x0E => 4 + length().filter(|&n| n >= 1)?,
        // document, array, code with scope: their length includes itself
        0x03 | 0x04 | 0x0F => length().filter(|&n| n >= 5)?,
        // binary: length, subtype, bytes
        0x05 => 5 + length()?,
        // undefined, null, min key, max key
        0x06 | 0x0A | 0xFF | 0x7F => 0,
        0x07 => 12,
        0x08 => 1,
        0x10 => 4,
        0x13 => 16,
        // regular expression: pattern and options, two C strings
        0x0B => {
            let pattern = bytes.iter().position(|&b| b == 0)? + 1;
            pattern + bytes[pattern..].iter().position(|&b| b == 0)? + 1
        }
        // DBPointer: a string, then an ObjectId
        0x0C => 4 + length().filter(|&n| n >= 1)? + 12,
        _ => return None,
    };
    (size <= bytes.len()).then_some(size)
}

impl<'a> Element<'a> {
    /// The BSON type byte.
    pub(crate) fn kind(&self) -> u8 {
        self.kind
    }

    /// The value's bytes, unparsed.
    pub(crate) fn value_bytes(&self) -> &'a [u8] {
        self.value
    }

    /// The field name's bytes: comparing them with a name costs no UTF-8 check.
    pub(crate) fn key_bytes(&self) -> &'a [u8] {
        self.key
    }
}

/// The BSON type byte of a string.
pub(crate) const STRING: u8 = 0x02;

/// The text of a string value whose bytes (see [`Element::value_bytes`]) are `bytes`, not
/// checked to be UTF-8. `key` names the field in the error.
#[inline]
pub(crate) fn string_bytes<'a>(key: &[u8], bytes: &'a [u8]) -> Result<&'a [u8], String> {
    // Length prefix, the text, 0.
    bytes
        .get(4..)
        .and_then(|rest| rest.strip_suffix(&[0]))
        .ok_or_else(|| format!("field `{}` cannot be read", String::from_utf8_lossy(key)))
}

/// The error for a string value of the field `key` that is not valid UTF-8.
pub(crate) fn not_utf8(key: &[u8]) -> String {
    format!(
        "field `{}` is not valid UTF-8",
        String::from_utf8_lossy(key)
    )
}

/// The value of the element of `doc` named `key`, of BSON type `kind`, whose bytes are
/// `bytes`: parses what [`Elements`] measured.
pub(crate) fn value<'a>(
    doc: &'a RawDocument,
    key: &[u8],
    kind: u8,
    bytes: &'a [u8],
) -> Result<RawBsonRef<'a>, String> {
    let name = || String::from_utf8_lossy(key);
    let malformed = || format!("field `{}` cannot be read", name());
    let word = || -> Result<[u8; 8], String> { bytes.try_into().map_err(|_| malformed()) };
    Ok(match kind {
        STRING => RawBsonRef::String(
            std::str::from_utf8(string_bytes(key, bytes)?).map_err(|_| not_utf8(key))?,
        ),
        0x09 => RawBsonRef::DateTime(DateTime::from_millis(i64::from_le_bytes(word()?))),
        0x12 => RawBsonRef::Int64(i64::from_le_bytes(word()?)),
        0x01 => RawBsonRef::Double(f64::from_le_bytes(word()?)),
        0x10 => {
            let word: [u8; 4] = bytes.try_into().map_err(|_| malformed())?;
            RawBsonRef::Int32(i32::from_le_bytes(word))
        }
        0x08 => match bytes {
            [0] => RawBsonRef::Boolean(false),
            [1] => RawBsonRef::Boolean(true),
            _ => return Err(malformed()),
        },
        0x0A => RawBsonRef::Null,
        0x03 => RawBsonRef::Document(
            RawDocument::from_bytes(bytes).map_err(|e| format!("{}: {e}", malformed()))?,
        ),
        // Types the documents read here do not hold where they are valid: parsed by the
        // `bson` crate, which knows them all, to name them in an error.
        _ => doc
            .get(std::str::from_utf8(key).map_err(|_| "a field name is not valid UTF-8")?)
            .map_err(|e| format!("{}: {e}", malformed()))?
            .ok_or_else(malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;
    use mongodb::bson::{doc, Binary, Bson, RawDocumentBuf, Regex, Timestamp};

    fn parse<'a>(doc: &'a RawDocument, element: &Element<'a>) -> Result<RawBsonRef<'a>, String> {
        value(
            doc,
            element.key_bytes(),
            element.kind(),
            element.value_bytes(),
        )
    }

    /// Every element, as the `bson` crate reads it.
    fn expected(doc: &RawDocument) -> Vec<(String, Bson)> {
        doc.iter()
            .map(|element| {
                let (key, value) = element.unwrap();
                (key.to_owned(), value.to_raw_bson().try_into().unwrap())
            })
            .collect()
    }

    /// Every element the walk yields, recognising no name.
    fn all(doc: &RawDocument) -> Vec<Result<Element<'_>, String>> {
        let mut walk = elements(doc);
        std::iter::from_fn(|| walk.next_named(|_| None::<((), usize)>))
            .map(|element| element.map(|(_, element)| element))
            .collect()
    }

    fn walked(doc: &RawDocument) -> Vec<(String, Bson)> {
        all(doc)
            .into_iter()
            .map(|element| {
                let element = element.unwrap();
                let value = parse(doc, &element).unwrap();
                let key = std::str::from_utf8(element.key_bytes()).unwrap().to_owned();
                (key, value.to_raw_bson().try_into().unwrap())
            })
            .collect()
    }

    #[test]
    fn the_walk_reads_every_type_as_the_bson_crate_does() {
        let doc = doc! {
            "double": 1.5,
            "string": "héllo",
            "empty": "",
            "document": { "a": 1, "b": [1, "two"] },
            "array": [1, { "c": null }],
            "binary": Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "undefined": Bson::Undefined,
            "id": ObjectId::new(),
            "true": true,
            "false": false,
            "date": DateTime::from_millis(1_700_000_000_123),
            "null": null,
            "regex": Regex { pattern: "^a.*".into(), options: "i".into() },
            "code": Bson::JavaScriptCode("f()".into()),
            "int32": -7,
            "timestamp": Timestamp { time: 5, increment: 6 },
            "int64": 1_i64 << 40,
            "min": Bson::MinKey,
            "max": Bson::MaxKey,
            "last": "end",
        };
        let raw = RawDocumentBuf::from_document(&doc).unwrap();
        assert_eq!(walked(&raw), expected(&raw));
    }

    #[test]
    fn a_recognised_name_is_trusted_only_where_it_ends_the_name() {
        let raw = RawDocumentBuf::from_document(&doc! { "ab": 1, "abc": 2 }).unwrap();
        // A closure that takes every name for `ab`, two bytes long.
        let claim_ab = |bytes: &[u8]| bytes.starts_with(b"ab").then_some(("ab", 2));
        let mut walk = elements(&raw);
        let (tag, first) = walk.next_named(claim_ab).unwrap().unwrap();
        assert_eq!((tag, first.key_bytes()), (Some("ab"), &b"ab"[..]));
        // `abc` starts with `ab`, but no 0 follows it there: the walk finds the name's end.
        let (tag, second) = walk.next_named(claim_ab).unwrap().unwrap();
        assert_eq!((tag, second.key_bytes()), (None, &b"abc"[..]));
        assert_eq!(second.value_bytes(), 2_i32.to_le_bytes());
        assert!(walk.next_named(claim_ab).is_none());
    }

    #[test]
    fn a_truncated_or_ill_formed_document_is_an_error() {
        // A string whose length prefix runs past the end of the document.
        let mut bytes = RawDocumentBuf::from_document(&doc! { "s": "abc", "n": 1 })
            .unwrap()
            .into_bytes();
        // Layout: 4 length bytes, 0x02, "s", 0, then the string's length prefix.
        bytes[7] = 100;
        let doc = RawDocument::from_bytes(&bytes).unwrap();
        let walk = all(doc);
        assert_eq!(walk.len(), 1, "the walk stops at a malformed element");
        assert_eq!(walk[0].as_ref().err().unwrap(), "field `s` is truncated");

        // A string value that is not valid UTF-8.
        let mut bytes = RawDocumentBuf::from_document(&doc! { "s": "abc" })
            .unwrap()
            .into_bytes();
        bytes[11] = 0xFF;
        let doc = RawDocument::from_bytes(&bytes).unwrap();
        let element = all(doc).remove(0).unwrap();
        assert_eq!(
            parse(doc, &element).unwrap_err(),
            "field `s` is not valid UTF-8"
        );
    }
}

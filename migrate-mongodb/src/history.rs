//! The history collection's document format (Mongock 5's `mongockChangeLog`).
//!
//! Writes `$set` only the fields below, so fields other tools added to a document survive an
//! update. Reads tolerate rows written by mongobee and Mongock 3, which lack `state`, `type`
//! and `executionMillis`.

use std::time::SystemTime;

use migrate_core::{EntryType, HistoryEntry, PlanningEntry, State};
use mongodb::bson::raw::{RawBsonRef, RawDocument};
use mongodb::bson::spec::ElementType;
use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::error::Error;
use crate::raw;

pub(crate) const EXECUTION_ID: &str = "executionId";
pub(crate) const CHANGE_ID: &str = "changeId";
pub(crate) const AUTHOR: &str = "author";
const TIMESTAMP: &str = "timestamp";
const STATE: &str = "state";
const TYPE: &str = "type";
const CHANGE_LOG_CLASS: &str = "changeLogClass";
const CHANGE_SET_METHOD: &str = "changeSetMethod";
const METADATA: &str = "metadata";
const EXECUTION_MILLIS: &str = "executionMillis";
const EXECUTION_HOSTNAME: &str = "executionHostname";
const ERROR_TRACE: &str = "errorTrace";
const SYSTEM_CHANGE: &str = "systemChange";
const CHECKSUM: &str = "checksum";

/// Where [`decode`] keeps the value of each field it reads, by the field's name (the
/// constants above, spelled as bytes so a name is matched without a UTF-8 check).
#[inline(always)]
fn field_slot(name: &[u8]) -> Option<usize> {
    // By length first: most names are told apart without comparing their bytes.
    match name.len() {
        4 => (name == b"type").then_some(5),
        5 => (name == b"state").then_some(4),
        6 => (name == b"author").then_some(2),
        8 => match name {
            b"changeId" => Some(1),
            b"metadata" => Some(8),
            b"checksum" => Some(13),
            _ => None,
        },
        9 => (name == b"timestamp").then_some(3),
        10 => (name == b"errorTrace").then_some(11),
        11 => (name == b"executionId").then_some(0),
        12 => (name == b"systemChange").then_some(12),
        14 => (name == b"changeLogClass").then_some(6),
        15 => match name {
            b"changeSetMethod" => Some(7),
            b"executionMillis" => Some(9),
            _ => None,
        },
        17 => (name == b"executionHostname").then_some(10),
        _ => None,
    }
}

/// The slot and length of the field name that `bytes` start with, if it is one of
/// [`field_slot`]'s: tells the names apart by their first byte and compares at most four,
/// instead of searching `bytes` for the end of the name.
#[inline(always)]
fn known_field(bytes: &[u8]) -> Option<(usize, usize)> {
    // Each comparison is with a constant, and so is the slot `field_slot` gives its name:
    // both compile to a few word compares.
    #[inline(always)]
    fn named(bytes: &[u8], name: &str) -> Option<(usize, usize)> {
        if bytes.starts_with(name.as_bytes()) && bytes.get(name.len()) == Some(&0) {
            Some((field_slot(name.as_bytes())?, name.len()))
        } else {
            None
        }
    }
    match bytes.first()? {
        b'c' => named(bytes, CHANGE_ID)
            .or_else(|| named(bytes, CHANGE_LOG_CLASS))
            .or_else(|| named(bytes, CHECKSUM))
            .or_else(|| named(bytes, CHANGE_SET_METHOD)),
        b'e' => named(bytes, EXECUTION_ID)
            .or_else(|| named(bytes, EXECUTION_MILLIS))
            .or_else(|| named(bytes, EXECUTION_HOSTNAME))
            .or_else(|| named(bytes, ERROR_TRACE)),
        b'a' => named(bytes, AUTHOR),
        b't' => named(bytes, TIMESTAMP).or_else(|| named(bytes, TYPE)),
        b's' => named(bytes, STATE).or_else(|| named(bytes, SYSTEM_CHANGE)),
        b'm' => named(bytes, METADATA),
        _ => None,
    }
}

/// Checksums an entry held before `accept_checksums` replaced them, oldest first. Not a
/// Mongock field; Mongock ignores it.
const PREVIOUS_CHECKSUMS: &str = "previousChecksums";

/// The keys of the history's unique index, in order.
pub(crate) const INDEX_KEYS: &str = "{ executionId: 1, author: 1, changeId: 1 }";

pub(crate) fn index_keys() -> Document {
    doc! { EXECUTION_ID: 1, AUTHOR: 1, CHANGE_ID: 1 }
}

/// The key of an entry: `executionId`, `author`, `changeId`.
pub(crate) fn key(entry: &HistoryEntry<Document>) -> Document {
    doc! {
        EXECUTION_ID: &entry.execution_id,
        AUTHOR: &entry.author,
        CHANGE_ID: &entry.change_id,
    }
}

/// Matches the stored entry with `entry`'s key while it holds `entry`'s checksum.
pub(crate) fn checksum_filter(entry: &HistoryEntry<Document>) -> Document {
    let mut filter = key(entry);
    filter.insert(CHECKSUM, entry.checksum.as_deref());
    filter
}

/// Sets the checksum to `checksum`, appending the replaced one to `previousChecksums`.
pub(crate) fn replace_checksum(entry: &HistoryEntry<Document>, checksum: &str) -> Document {
    let mut update = doc! { "$set": { CHECKSUM: checksum } };
    if let Some(old) = entry.checksum.as_deref() {
        update.insert("$push", doc! { PREVIOUS_CHECKSUMS: old });
    }
    update
}

/// Matches the stored entry with `entry`'s key and state.
pub(crate) fn recorded_filter(entry: &HistoryEntry<Document>) -> Document {
    let mut filter = key(entry);
    filter.insert(STATE, entry.state.as_str());
    filter
}

/// The `$set` update of an entry: every field Mongock writes, plus `checksum` when known.
pub(crate) fn update(entry: &HistoryEntry<Document>) -> Document {
    doc! { "$set": document(entry) }
}

/// The stored document of an entry: every field Mongock writes, plus `checksum` when known.
pub(crate) fn document(entry: &HistoryEntry<Document>) -> Document {
    let mut fields = doc! {
        EXECUTION_ID: &entry.execution_id,
        CHANGE_ID: &entry.change_id,
        AUTHOR: &entry.author,
        TIMESTAMP: DateTime::from_system_time(entry.timestamp),
        STATE: entry.state.as_str(),
        TYPE: entry.entry_type.as_str(),
        CHANGE_LOG_CLASS: &entry.change_log_class,
        CHANGE_SET_METHOD: &entry.change_set_method,
        METADATA: entry.metadata.clone().map_or(Bson::Null, Bson::Document),
        EXECUTION_MILLIS: entry.execution_millis,
        EXECUTION_HOSTNAME: &entry.execution_hostname,
        ERROR_TRACE: entry.error_trace.as_deref().map_or(Bson::Null, |t| Bson::String(t.to_owned())),
        SYSTEM_CHANGE: entry.system_change,
    };
    if let Some(checksum) = &entry.checksum {
        fields.insert(CHECKSUM, checksum);
    }
    fields
}

/// The slots of the fields planning reads (see [`field_slot`]), as a mask for
/// [`Fields::scan`].
const PLANNING_SLOTS: u16 = 0b11_0000_0111_1110;

/// Every slot of [`field_slot`].
const ALL_SLOTS: u16 = (1 << SLOTS) - 1;

/// Reads one stored document, straight from its raw bytes, defaulting what older formats
/// lack.
pub(crate) fn decode(doc: &RawDocument, namespace: &str) -> Result<HistoryEntry<Document>, Error> {
    let corrupt = corrupt(doc, namespace);
    let fields = Fields::scan(doc, ALL_SLOTS).map_err(&corrupt)?;
    let planning = planning_fields(&fields, &corrupt)?;
    let text = |field: &str| -> Result<String, Error> {
        Ok(fields
            .string(field)
            .map_err(&corrupt)?
            .unwrap_or_default()
            .to_owned())
    };
    let metadata = match fields.get(METADATA).map_err(&corrupt)? {
        None => None,
        Some(RawBsonRef::Document(metadata)) => Some(
            Document::try_from(metadata).map_err(|e| corrupt(format!("field `metadata`: {e}")))?,
        ),
        Some(other) => {
            return Err(corrupt(format!(
                "field `metadata` is {}, expected a document or null",
                type_name(&other)
            )))
        }
    };
    let PlanningEntry {
        change_id,
        author,
        timestamp,
        state,
        entry_type,
        change_log_class,
        system_change,
        checksum,
    } = planning;
    Ok(HistoryEntry {
        execution_id: text(EXECUTION_ID)?,
        change_id: change_id.to_owned(),
        author: author.to_owned(),
        timestamp,
        state,
        entry_type,
        change_log_class: change_log_class.to_owned(),
        change_set_method: text(CHANGE_SET_METHOD)?,
        metadata,
        execution_millis: fields
            .integer(EXECUTION_MILLIS)
            .map_err(&corrupt)?
            .unwrap_or(-1),
        execution_hostname: text(EXECUTION_HOSTNAME)?,
        error_trace: fields
            .string(ERROR_TRACE)
            .map_err(&corrupt)?
            .map(str::to_owned),
        system_change,
        checksum: checksum.map(str::to_owned),
    })
}

/// Reads what planning needs of one stored document (see
/// `Store::read_history_for_planning`): the other fields are neither parsed nor kept.
pub(crate) fn decode_for_planning<'a>(
    doc: &'a RawDocument,
    namespace: &str,
) -> Result<PlanningEntry<'a>, Error> {
    let corrupt = corrupt(doc, namespace);
    let fields = Fields::scan(doc, PLANNING_SLOTS).map_err(&corrupt)?;
    planning_fields(&fields, &corrupt)
}

/// The error for `doc`, corrupt for `reason`.
pub(crate) fn corrupt<'a>(
    doc: &'a RawDocument,
    namespace: &'a str,
) -> impl Fn(String) -> Error + 'a {
    move |reason| Error::CorruptHistory {
        namespace: namespace.to_owned(),
        id: document_id(doc),
        reason,
    }
}

fn planning_fields<'a>(
    fields: &Fields<'a>,
    corrupt: &impl Fn(String) -> Error,
) -> Result<PlanningEntry<'a>, Error> {
    let state = match fields.string_bytes(STATE).map_err(corrupt)? {
        None => State::Executed,
        Some(bytes) => State::parse(bytes).ok_or_else(|| {
            corrupt(format!(
                "field `state` is `{}`, expected one of EXECUTED, FAILED, ROLLED_BACK, \
                 ROLLBACK_FAILED, IGNORED",
                String::from_utf8_lossy(bytes)
            ))
        })?,
    };
    let entry_type = match fields.string_bytes(TYPE).map_err(corrupt)? {
        None => EntryType::Execution,
        Some(bytes) => EntryType::parse(bytes).ok_or_else(|| {
            corrupt(format!(
                "field `type` is `{}`, expected EXECUTION or BEFORE_EXECUTION",
                String::from_utf8_lossy(bytes)
            ))
        })?,
    };
    Ok(PlanningEntry {
        change_id: fields.required_string(CHANGE_ID).map_err(corrupt)?,
        author: fields.required_string(AUTHOR).map_err(corrupt)?,
        timestamp: fields
            .date(TIMESTAMP)
            .map_err(corrupt)?
            .unwrap_or(SystemTime::UNIX_EPOCH),
        state,
        entry_type,
        change_log_class: fields
            .string(CHANGE_LOG_CLASS)
            .map_err(corrupt)?
            .unwrap_or_default(),
        system_change: fields
            .boolean(SYSTEM_CHANGE)
            .map_err(corrupt)?
            .unwrap_or(false),
        checksum: fields.string(CHECKSUM).map_err(corrupt)?,
    })
}

/// The document's `_id` as text, for error messages.
pub(crate) fn document_id(doc: &RawDocument) -> String {
    match doc.get("_id") {
        Ok(Some(RawBsonRef::ObjectId(id))) => format!("ObjectId(\"{id}\")"),
        Ok(Some(RawBsonRef::String(id))) => format!("\"{id}\""),
        Ok(Some(other)) => match other.to_raw_bson().try_into() {
            Ok(value) => Bson::to_string(&value),
            Err(_) => "<unreadable>".to_owned(),
        },
        Ok(None) => "<missing>".to_owned(),
        Err(_) => "<unreadable>".to_owned(),
    }
}

/// Typed access to optional fields of a raw document: a missing or null field is `None`; a
/// field of another type is an error that names it.
pub(crate) struct Fields<'a> {
    doc: &'a RawDocument,
    /// The fields [`Fields::scan`] read, with their values: looked up here, not in `doc`.
    scanned: Option<Scanned<'a>>,
}

/// The fields of a fixed set of slots, found in one pass over a document.
struct Scanned<'a> {
    /// The slots (bits, see [`field_slot`]) the pass looked for.
    slots: u16,
    /// The type and bytes of each field found, by slot; parsed when read.
    values: [Option<(u8, &'a [u8])>; SLOTS],
}

/// How many slots [`field_slot`] gives out.
const SLOTS: usize = 14;

impl<'a> Fields<'a> {
    /// Fields looked up in `doc` one by one.
    pub(crate) fn new(doc: &'a RawDocument) -> Self {
        Fields { doc, scanned: None }
    }

    /// Finds the fields whose slots (see [`field_slot`]) are set in `slots` in one pass over
    /// `doc`: the cheap way to read most fields of a document. A document whose elements
    /// cannot be walked is an error; a value is parsed, and checked, when it is read.
    fn scan(doc: &'a RawDocument, slots: u16) -> Result<Self, String> {
        let mut values = [None; SLOTS];
        let mut elements = raw::elements(doc);
        while let Some(element) = elements.next_named(known_field) {
            let (known, element) = element?;
            // `known_field` recognises the names quickly; `field_slot` has the last word.
            let Some(index) = known.or_else(|| field_slot(element.key_bytes())) else {
                continue;
            };
            // The first occurrence wins, as with a lookup.
            if slots & (1 << index) != 0 && values[index].is_none() {
                values[index] = Some((element.kind(), element.value_bytes()));
            }
        }
        Ok(Fields {
            doc,
            scanned: Some(Scanned { slots, values }),
        })
    }

    /// What the scan found of `field`: `None` when `field` was not scanned for.
    #[inline(always)]
    fn scanned(&self, field: &str) -> Option<Option<(u8, &'a [u8])>> {
        let scanned = self.scanned.as_ref()?;
        let index = field_slot(field.as_bytes())?;
        (scanned.slots & (1 << index) != 0).then_some(scanned.values[index])
    }

    #[inline]
    fn get(&self, field: &str) -> Result<Option<RawBsonRef<'a>>, String> {
        let value = match self.scanned(field) {
            Some(None) => None,
            Some(Some((kind, bytes))) => Some(raw::value(self.doc, field.as_bytes(), kind, bytes)?),
            None => self.lookup(field)?,
        };
        Ok(value.filter(|v| !matches!(v, RawBsonRef::Null)))
    }

    fn lookup(&self, field: &str) -> Result<Option<RawBsonRef<'a>>, String> {
        self.doc
            .get(field)
            .map_err(|e| format!("field `{field}` cannot be read: {e}"))
    }

    #[inline]
    pub(crate) fn string(&self, field: &str) -> Result<Option<&'a str>, String> {
        let Some(bytes) = self.string_bytes(field)? else {
            return Ok(None);
        };
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| raw::not_utf8(field.as_bytes()))
    }

    /// A string field's bytes, not checked to be UTF-8: for values compared with known
    /// strings. Inlined, so that the slot of a constant `field` is found at compile time.
    #[inline(always)]
    fn string_bytes(&self, field: &str) -> Result<Option<&'a [u8]>, String> {
        if let Some(Some((raw::STRING, bytes))) = self.scanned(field) {
            return raw::string_bytes(field.as_bytes(), bytes).map(Some);
        }
        match self.get(field)? {
            None => Ok(None),
            Some(RawBsonRef::String(s)) => Ok(Some(s.as_bytes())),
            Some(other) => Err(wrong_type(field, &other, "a string")),
        }
    }

    #[inline]
    pub(crate) fn required_string(&self, field: &str) -> Result<&'a str, String> {
        self.string(field)?
            .ok_or_else(|| format!("required field `{field}` is missing"))
    }

    #[inline]
    pub(crate) fn date(&self, field: &str) -> Result<Option<SystemTime>, String> {
        match self.get(field)? {
            None => Ok(None),
            Some(RawBsonRef::DateTime(date)) => Ok(Some(date.to_system_time())),
            Some(other) => Err(wrong_type(field, &other, "a date")),
        }
    }

    fn integer(&self, field: &str) -> Result<Option<i64>, String> {
        match self.get(field)? {
            None => Ok(None),
            Some(RawBsonRef::Int64(n)) => Ok(Some(n)),
            Some(RawBsonRef::Int32(n)) => Ok(Some(i64::from(n))),
            Some(RawBsonRef::Double(n)) if n.fract() == 0.0 => Ok(Some(n as i64)),
            Some(other) => Err(wrong_type(field, &other, "an integer")),
        }
    }

    #[inline]
    fn boolean(&self, field: &str) -> Result<Option<bool>, String> {
        match self.get(field)? {
            None => Ok(None),
            Some(RawBsonRef::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(wrong_type(field, &other, "a boolean")),
        }
    }
}

fn wrong_type(field: &str, value: &RawBsonRef<'_>, expected: &str) -> String {
    format!(
        "field `{field}` is {}, expected {expected}",
        type_name(value)
    )
}

fn type_name(value: &RawBsonRef<'_>) -> &'static str {
    match value.element_type() {
        ElementType::Double => "a double",
        ElementType::String => "a string",
        ElementType::Array => "an array",
        ElementType::EmbeddedDocument => "a document",
        ElementType::Boolean => "a boolean",
        ElementType::Null => "null",
        ElementType::Int32 => "an int32",
        ElementType::Int64 => "an int64",
        ElementType::DateTime => "a date",
        ElementType::ObjectId => "an ObjectId",
        ElementType::Timestamp => "a timestamp",
        ElementType::Binary => "binary data",
        ElementType::Decimal128 => "a decimal128",
        _ => "a value of another BSON type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(doc: &Document) -> mongodb::bson::RawDocumentBuf {
        mongodb::bson::RawDocumentBuf::from_document(doc).unwrap()
    }

    fn sample() -> HistoryEntry<Document> {
        HistoryEntry {
            execution_id: "e1".into(),
            change_id: "c1".into(),
            author: "a".into(),
            timestamp: DateTime::from_millis(1_700_000_000_000).to_system_time(),
            state: State::RolledBack,
            entry_type: EntryType::BeforeExecution,
            change_log_class: "app::C1".into(),
            change_set_method: "before".into(),
            metadata: Some(doc! { "by": "ci" }),
            execution_millis: -1,
            execution_hostname: "host-svc".into(),
            error_trace: Some("{}".into()),
            system_change: false,
            checksum: Some("abc".into()),
        }
    }

    #[test]
    fn an_entry_survives_encoding_and_decoding() {
        let entry = sample();
        let set = update(&entry).get_document("$set").unwrap().clone();
        let mut stored = doc! { "_id": 1 };
        stored.extend(set);
        assert_eq!(decode(&raw(&stored), "db.h").unwrap(), entry);
    }

    #[test]
    fn planning_reads_what_plans_need_and_leaves_the_rest_empty() {
        let entry = sample();
        let mut stored = doc! { "_id": 1 };
        stored.extend(update(&entry).get_document("$set").unwrap().clone());
        let stored = raw(&stored);
        let lean = decode_for_planning(&stored, "db.h").unwrap();
        assert_eq!(lean, PlanningEntry::from(&entry));
    }

    #[test]
    fn a_mongobee_row_reads_as_executed() {
        let row = doc! {
            "_id": 7,
            "changeId": "c",
            "author": "a",
            "timestamp": DateTime::from_millis(5),
            "changeLogClass": "com.example.Log",
            "changeSetMethod": "m",
        };
        let entry = decode(&raw(&row), "db.h").unwrap();
        assert_eq!(entry.state, State::Executed);
        assert_eq!(entry.entry_type, EntryType::Execution);
        assert_eq!(entry.execution_millis, -1);
        assert_eq!(entry.metadata, None);
    }

    #[test]
    fn a_missing_or_ill_typed_required_field_names_the_document() {
        let missing = decode(&raw(&doc! { "_id": "x", "author": "a" }), "db.h").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "history document `_id: \"x\"` in `db.h` is corrupt: required field `changeId` is missing"
        );
        let wrong = decode(
            &raw(&doc! { "_id": 3, "changeId": "c", "author": 5 }),
            "db.h",
        )
        .unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "history document `_id: 3` in `db.h` is corrupt: field `author` is an int32, expected a string"
        );
    }

    #[test]
    fn every_field_has_its_own_slot() {
        let names = [
            EXECUTION_ID,
            CHANGE_ID,
            AUTHOR,
            TIMESTAMP,
            STATE,
            TYPE,
            CHANGE_LOG_CLASS,
            CHANGE_SET_METHOD,
            METADATA,
            EXECUTION_MILLIS,
            EXECUTION_HOSTNAME,
            ERROR_TRACE,
            SYSTEM_CHANGE,
            CHECKSUM,
        ];
        for (slot, name) in names.iter().enumerate() {
            assert_eq!(field_slot(name.as_bytes()), Some(slot), "{name}");
        }
        assert_eq!(names.len(), SLOTS);
        for (slot, name) in names.iter().enumerate() {
            let mut bytes = name.as_bytes().to_vec();
            assert_eq!(known_field(&bytes), None, "{name} without its 0");
            bytes.extend_from_slice(b"\0rest");
            assert_eq!(known_field(&bytes), Some((slot, name.len())), "{name}");
            // A longer name that starts with a known one is not that one.
            bytes.insert(name.len(), b'x');
            assert_eq!(known_field(&bytes), None, "{name}x");
        }
        let planning = [CHANGE_ID, AUTHOR, TIMESTAMP, STATE, TYPE, CHANGE_LOG_CLASS]
            .into_iter()
            .chain([SYSTEM_CHANGE, CHECKSUM])
            .map(|name| 1 << field_slot(name.as_bytes()).unwrap())
            .fold(0, |mask, bit| mask | bit);
        assert_eq!(planning, PLANNING_SLOTS);
        assert_eq!(field_slot(b"_id"), None);
    }

    #[test]
    fn a_repeated_field_reads_as_its_first_occurrence() {
        let mut row = raw(&doc! { "_id": 1, "changeId": "c", "author": "a", "state": "FAILED" });
        row.append("state", "EXECUTED");
        row.append("changeId", "d");
        let entry = decode(&row, "db.h").unwrap();
        assert_eq!(entry.state, State::Failed);
        assert_eq!(entry.change_id, "c");
    }

    #[test]
    fn an_unknown_state_is_an_error() {
        let err = decode(
            &raw(&doc! { "_id": 1, "changeId": "c", "author": "a", "state": "DONE" }),
            "db.h",
        )
        .unwrap_err();
        assert!(err.to_string().contains("field `state` is `DONE`"), "{err}");
    }
}

//! Reading an earlier tool's history (mongobee's or Mongock 3's `dbchangelog`) for the import
//! of [`LegacyMigration`], with the field names it configures. The collection is only read.

use migrate_core::{LegacyFields, LegacyMigration, LegacyRow};
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};

use crate::error::Error;
use crate::history::{self, Fields};

/// The metadata Mongock records on every imported row.
fn metadata(doc: &Document, fields: &LegacyFields) -> Document {
    let mut metadata = doc! { "migration-type": "legacy" };
    if let Some(original) = fields.metadata.as_deref().and_then(|f| doc.get(f)) {
        if !matches!(original, Bson::Null) {
            metadata.insert("original-metadata", original.clone());
        }
    }
    metadata
}

/// The projection of the fields an import reads (`_id` comes along for error messages).
pub(crate) fn projection(fields: &LegacyFields) -> Document {
    let mut projection = Document::new();
    let names = [
        Some(&fields.change_id),
        Some(&fields.author),
        Some(&fields.timestamp),
        Some(&fields.change_log_class),
        Some(&fields.change_set_method),
        fields.metadata.as_ref(),
    ];
    for name in names.into_iter().flatten() {
        projection.insert(name.as_str(), 1);
    }
    projection
}

/// Reads one row of the earlier history; `namespace` names its collection in errors.
pub(crate) fn decode(
    doc: &Document,
    legacy: &LegacyMigration,
    namespace: &str,
) -> Result<LegacyRow<Document>, Error> {
    let names = legacy.fields();
    let raw = RawDocumentBuf::from_document(doc).map_err(|e| Error::CorruptHistory {
        namespace: namespace.to_owned(),
        id: "<unreadable>".to_owned(),
        reason: e.to_string(),
    })?;
    let fields = Fields::new(&raw);
    let corrupt = history::corrupt(&raw, namespace);
    let text = |field: &str| -> Result<String, Error> {
        Ok(fields
            .string(field)
            .map_err(&corrupt)?
            .unwrap_or_default()
            .to_owned())
    };
    let mut row = LegacyRow::new(
        fields.required_string(&names.change_id).map_err(&corrupt)?,
        fields.required_string(&names.author).map_err(&corrupt)?,
    );
    row.timestamp = fields.date(&names.timestamp).map_err(&corrupt)?;
    row.change_log_class = text(&names.change_log_class)?;
    row.change_set_method = text(&names.change_set_method)?;
    row.metadata = Some(metadata(doc, names));
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::DateTime;

    #[test]
    fn a_mongobee_row_reads_with_the_default_names() {
        let row = doc! {
            "_id": 1,
            "changeId": "c1",
            "author": "java",
            "timestamp": DateTime::from_millis(1_500_000_000_000),
            "changeLogClass": "com.example.Log",
            "changeSetMethod": "m",
        };
        let read = decode(&row, &LegacyMigration::new("dbchangelog"), "db.dbchangelog").unwrap();
        assert_eq!(read.change_id, "c1");
        assert_eq!(read.author, "java");
        assert_eq!(
            read.timestamp,
            Some(DateTime::from_millis(1_500_000_000_000).to_system_time())
        );
        assert_eq!(read.change_log_class, "com.example.Log");
        assert_eq!(read.change_set_method, "m");
        assert_eq!(read.metadata, Some(doc! { "migration-type": "legacy" }));
    }

    #[test]
    fn mapped_names_and_original_metadata_are_read() {
        let legacy = LegacyMigration::new("versions")
            .change_id_field("version")
            .author_field("by")
            .metadata_field("notes");
        let row = doc! { "_id": "v1", "version": "1.0", "by": "ops", "notes": { "ticket": 7 } };
        let read = decode(&row, &legacy, "db.versions").unwrap();
        assert_eq!(
            (read.change_id.as_str(), read.author.as_str()),
            ("1.0", "ops")
        );
        assert_eq!(read.timestamp, None);
        assert_eq!(read.change_log_class, "");
        assert_eq!(
            read.metadata,
            Some(doc! { "migration-type": "legacy", "original-metadata": { "ticket": 7 } })
        );
        assert_eq!(
            projection(legacy.fields()),
            doc! { "version": 1, "by": 1, "timestamp": 1, "changeLogClass": 1, "changeSetMethod": 1, "notes": 1 }
        );
    }

    #[test]
    fn a_row_without_a_change_id_names_its_document() {
        let row = doc! { "_id": 3, "author": "java" };
        let error =
            decode(&row, &LegacyMigration::new("dbchangelog"), "db.dbchangelog").unwrap_err();
        assert_eq!(
            error.to_string(),
            "history document `_id: 3` in `db.dbchangelog` is corrupt: required field \
             `changeId` is missing"
        );
    }
}

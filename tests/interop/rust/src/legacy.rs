//! `migrate-interop seed-legacy`: the history a mongobee-era service leaves in `dbchangelog`,
//! for both sides' legacy migration to import. Rows as mongobee writes them: `changeId`,
//! `author`, `timestamp`, `changeLogClass`, `changeSetMethod` (and an `ObjectId` `_id`); no `state`, no `executionId`,
//! no `type`.
//!
//! Two change sets that no longer exist in either service, and `interop-legacy-1`, which both
//! services still have (`LegacyChangeLog`): imported, it must not run again, while
//! `interop-legacy-2`, not in the earlier history, must.

use mongodb::bson::{doc, DateTime, Document};
use mongodb::Database;

use crate::BoxError;

pub(crate) async fn seed(db: &Database) -> Result<(), BoxError> {
    let row = |change_id: &str, author: &str, class: &str, method: &str, millis| {
        doc! {
            "changeId": change_id,
            "author": author,
            "timestamp": DateTime::from_millis(millis),
            "changeLogClass": class,
            "changeSetMethod": method,
        }
    };
    let rows: Vec<Document> = vec![
        row(
            "mongobee-init",
            "mongobee-team",
            "com.example.mongobee.InitialChangeLog",
            "init",
            1_400_000_000_000,
        ),
        row(
            "mongobee-indexes",
            "mongobee-team",
            "com.example.mongobee.InitialChangeLog",
            "createIndexes",
            1_450_000_000_123,
        ),
        row(
            "interop-legacy-1",
            "interop-legacy",
            "io.migrate.interop.units.LegacyChangeLog",
            "first",
            1_500_000_000_456,
        ),
    ];
    db.collection::<Document>("dbchangelog")
        .insert_many(rows)
        .await?;
    Ok(())
}

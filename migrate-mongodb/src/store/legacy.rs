//! Reading an earlier tool's history on a [`MongoStore`], for the import of
//! [`LegacyMigration`].

use migrate_core::{LegacyMigration, LegacyRow};
use mongodb::bson::{doc, Document};

use super::{check_collection_name, MongoStore, HISTORY_BATCH_SIZE};
use crate::error::Error;

impl MongoStore {
    /// Every row of `legacy`'s collection, in natural order. Only reads it.
    pub(super) async fn read_legacy(
        &self,
        legacy: &LegacyMigration,
    ) -> Result<Vec<LegacyRow<Document>>, Error> {
        let origin = legacy.origin();
        check_collection_name(origin)?;
        if origin == self.change_log_collection {
            return Err(Error::InvalidCollectionName {
                name: origin.to_owned(),
                reason: "it is the history collection, which earlier history is imported into",
            });
        }
        let namespace = format!("{}.{origin}", self.db.name());
        let read = |e| Error::driver("reading the earlier history", namespace.clone(), e);
        let mut cursor = self
            .collection(origin)
            .find(doc! {})
            .projection(crate::legacy::projection(legacy.fields()))
            .batch_size(HISTORY_BATCH_SIZE)
            .await
            .map_err(read)?;
        let mut rows = Vec::new();
        while cursor.advance().await.map_err(read)? {
            let doc = cursor.deserialize_current().map_err(read)?;
            rows.push(crate::legacy::decode(&doc, legacy, &namespace)?);
        }
        Ok(rows)
    }
}

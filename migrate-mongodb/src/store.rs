//! [`MongoStore`]: the [`Store`] over a MongoDB database.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use migrate_core::{
    BoxError, Dependencies, HistoryEntry, IntoStore, LegacyMigration, LegacyRow, LockInfo,
    PlanningHistory, Store,
};
use mongodb::bson::{doc, Bson, Document, RawDocument, RawDocumentBuf, Timestamp};
use mongodb::options::{CollectionOptions, IndexOptions, ReadConcern, WriteConcern};
use mongodb::{ClientSession, Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use crate::error::{self, Error};
use crate::topology::{self, Topology};
use crate::{history, lock};

mod legacy;
mod locking;
mod transactions;

/// The batch size of the history read. MongoDB also caps a reply at 16 MiB, so a history is
/// read in one round trip while it has at most this many entries and their projected
/// documents fit in 16 MiB (tens of thousands of entries); beyond that the driver fetches
/// the rest with further `getMore` round trips.
const HISTORY_BATCH_SIZE: u32 = 100_000;

/// `NamespaceNotFound`: `listIndexes` on a collection that does not exist.
const NAMESPACE_NOT_FOUND: i32 = 26;
/// `MaxTimeMSExpired`: an operation ran out of its time limit.
const MAX_TIME_EXPIRED: i32 = 50;
/// `WriteConflict`.
const WRITE_CONFLICT: i32 = 112;
/// `NoSuchTransaction`: the server no longer knows the transaction (it aborted it).
const NO_SUCH_TRANSACTION: i32 = 251;
/// `TransactionExceededLifetimeLimitSeconds`.
const TRANSACTION_EXCEEDED_LIFETIME: i32 = 290;

/// The MongoDB [`Store`]: Mongock 5's history and lock collections in one database, sessions
/// and transactions through the driver.
///
/// Building one does no I/O. `Runner::new(&db)` builds it for you; build it yourself to change
/// the collection names, index creation, or the read or write concern:
///
/// ```no_run
/// # async fn demo(db: mongodb::Database) -> Result<(), migrate_core::Error> {
/// use migrate_mongodb::MongoStore;
/// use mongodb::options::WriteConcern;
///
/// let store = MongoStore::new(&db)
///     .change_log_collection("schemaHistory")
///     .lock_collection("schemaLock")
///     .write_concern(WriteConcern::nodes(1));
/// migrate_core::Runner::new(store).run().await?;
/// # Ok(())
/// # }
/// ```
///
/// What it does with the database:
///
/// - **History** (default `mongockChangeLog`): one document per step per run with Mongock 5's
///   field names; an entry is inserted when its step is first recorded and updated on
///   `{executionId, author, changeId}` with `$set` of these fields only when its state
///   changes, so fields other tools added are kept. The whole history is read with
///   one `find` in batches of 100,000 entries (one round trip while the reply fits MongoDB's
///   16 MiB cap: tens of thousands of entries); mongobee and Mongock 3 rows without `state`,
///   `type` or `executionMillis` read as executed executions that took −1 ms.
/// - **Lock** (default `mongockLock`): one document `{key: "DEFAULT_KEY", status:
///   "LOCK_HELD", owner, expiresAt}`.
/// - **Indexes**: unique `{executionId: 1, author: 1, changeId: 1}` on the history and unique
///   `{key: 1}` on the lock, created before the first run that has something to do; with
///   index creation off they are verified instead.
/// - **Transactions**: available when the server's `hello` reply shows a replica set member or
///   a mongos (asked once per store). Transactions use the store's read and write concerns.
///   On MongoDB 8.0 and later the fence on the lock and the history entries of a transaction
///   go in one `bulkWrite` command, its last write; on older servers the fence is a write of
///   its own, the transaction's first.
#[derive(Clone)]
pub struct MongoStore {
    db: Database,
    change_log_collection: String,
    lock_collection: String,
    index_creation: bool,
    transaction_lifetime: Duration,
    read_concern: ReadConcern,
    write_concern: WriteConcern,
    topology: Arc<OnceCell<Topology>>,
    /// Each open transaction's session (by id) with the session's operation time when the
    /// transaction started, to tell whether a command has run in it since.
    open_transactions: Arc<Mutex<HashMap<String, Option<Timestamp>>>>,
    /// The session of the history writes outside transactions, started by the first: an
    /// implicit session per write costs a task of the driver's each.
    own_session: Arc<tokio::sync::Mutex<Option<ClientSession>>>,
}

impl MongoStore {
    /// A store over `db` with Mongock's collection names and majority read and write
    /// concerns. Does no I/O.
    pub fn new(db: &Database) -> Self {
        MongoStore {
            db: db.clone(),
            change_log_collection: "mongockChangeLog".into(),
            lock_collection: "mongockLock".into(),
            index_creation: true,
            transaction_lifetime: Duration::from_secs(60),
            read_concern: ReadConcern::majority(),
            write_concern: WriteConcern::majority(),
            topology: Arc::new(OnceCell::new()),
            open_transactions: Arc::default(),
            own_session: Arc::default(),
        }
    }

    /// Name of the history collection. Default: `"mongockChangeLog"`.
    pub fn change_log_collection(mut self, name: impl Into<String>) -> Self {
        self.change_log_collection = name.into();
        self
    }

    /// Name of the lock collection. Default: `"mongockLock"`.
    pub fn lock_collection(mut self, name: impl Into<String>) -> Self {
        self.lock_collection = name.into();
        self
    }

    /// Whether the store creates its indexes; when `false` they must already exist (they are
    /// verified before the first run that has something to do). Default: `true`.
    pub fn index_creation(mut self, create: bool) -> Self {
        self.index_creation = create;
        self
    }

    /// The server's `transactionLifetimeLimitSeconds`: a transactional unit aborted after
    /// running this long fails at once with an error that says so, instead of being retried.
    /// Default: 60 s, MongoDB's default.
    pub fn transaction_lifetime(mut self, lifetime: Duration) -> Self {
        self.transaction_lifetime = lifetime;
        self
    }

    /// The read concern of history and lock reads and of transactions. Default: majority.
    pub fn read_concern(mut self, read_concern: ReadConcern) -> Self {
        self.read_concern = read_concern;
        self
    }

    /// The write concern of history and lock writes, index creation and transactions.
    /// Default: majority.
    pub fn write_concern(mut self, write_concern: WriteConcern) -> Self {
        self.write_concern = write_concern;
        self
    }

    /// The database the store works in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn collection(&self, name: &str) -> Collection<Document> {
        self.db.collection_with_options(
            name,
            CollectionOptions::builder()
                .read_concern(self.read_concern.clone())
                .write_concern(self.write_concern.clone())
                .build(),
        )
    }

    /// Reads every history entry in one `find`: whole documents, each handed to `visit`
    /// straight from the reply's bytes (a projection costs the server more than the few
    /// fields it would leave out).
    async fn read_entries(
        &self,
        mut visit: impl FnMut(&RawDocument, &str) -> Result<(), Error>,
    ) -> Result<(), BoxError> {
        let namespace = self.history_namespace();
        let failed = |e| Error::command("find", namespace.clone(), e);
        let mut cursor = self
            .raw_collection(&self.change_log_collection)
            .find(doc! {})
            .batch_size(HISTORY_BATCH_SIZE)
            .await
            .map_err(failed)?;
        while cursor.advance().await.map_err(failed)? {
            visit(cursor.current(), &namespace)?;
        }
        Ok(())
    }

    /// `name` read as raw documents, decoded without building a `Document` first.
    fn raw_collection(&self, name: &str) -> Collection<RawDocumentBuf> {
        self.collection(name).clone_with_type()
    }

    fn history(&self) -> Collection<Document> {
        self.collection(&self.change_log_collection)
    }

    fn lock(&self) -> Collection<Document> {
        self.collection(&self.lock_collection)
    }

    fn history_namespace(&self) -> String {
        format!("{}.{}", self.db.name(), self.change_log_collection)
    }

    fn lock_namespace(&self) -> String {
        format!("{}.{}", self.db.name(), self.lock_collection)
    }

    async fn topology(&self) -> Result<&Topology, Error> {
        self.topology
            .get_or_try_init(|| topology::detect(&self.db))
            .await
    }

    async fn ensure_index(
        &self,
        collection: Collection<Document>,
        keys: Document,
        namespace: String,
    ) -> Result<(), Error> {
        let index = IndexModel::builder()
            .keys(keys)
            .options(IndexOptions::builder().unique(true).build())
            .build();
        collection
            .create_index(index)
            .await
            .map_err(|e| Error::command("createIndexes", namespace, e))?;
        Ok(())
    }

    async fn verify_index(
        &self,
        collection: Collection<Document>,
        keys: Document,
        described: &'static str,
        namespace: String,
    ) -> Result<(), Error> {
        let mut cursor = match collection.list_indexes().await {
            Ok(cursor) => cursor,
            Err(e) if error::code(&e) == Some(NAMESPACE_NOT_FOUND) => {
                return Err(Error::MissingIndex {
                    namespace,
                    keys: described,
                })
            }
            Err(e) => return Err(Error::command("listIndexes", namespace, e)),
        };
        loop {
            match cursor.advance().await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(Error::command("listIndexes", namespace, e)),
            }
            let index = cursor
                .deserialize_current()
                .map_err(|e| Error::command("listIndexes", namespace.clone(), e))?;
            let unique = index.options.as_ref().and_then(|o| o.unique) == Some(true);
            if unique && same_keys(&index.keys, &keys) {
                return Ok(());
            }
        }
        Err(Error::MissingIndex {
            namespace,
            keys: described,
        })
    }

    /// Reads the lock document, if there is one: who holds the lock and until when.
    pub async fn inspect_lock(&self) -> Result<Option<LockInfo>, Error> {
        let found = self
            .raw_collection(&self.lock_collection)
            .find_one(lock::key_filter())
            .await
            .map_err(|e| Error::command("find", self.lock_namespace(), e))?;
        found
            .map(|doc| lock::decode(&doc, &self.lock_namespace()))
            .transpose()
    }

    /// Deletes the lock whoever holds it. A runner that still works under it finds the lock
    /// lost at its next refresh or fence; use this only for a holder that is gone.
    pub async fn force_release_lock(&self) -> Result<(), Error> {
        self.lock()
            .delete_many(lock::key_filter())
            .await
            .map_err(|e| Error::command("delete", self.lock_namespace(), e))?;
        Ok(())
    }
}

/// Whether two index key documents name the same fields, in the same order, ascending.
/// Servers and other drivers store `1` as an int32, int64 or double.
fn same_keys(found: &Document, wanted: &Document) -> bool {
    let ascending = |v: &Bson| match v {
        Bson::Int32(n) => *n == 1,
        Bson::Int64(n) => *n == 1,
        Bson::Double(n) => *n == 1.0,
        _ => false,
    };
    found.len() == wanted.len()
        && found
            .iter()
            .zip(wanted.iter())
            .all(|((a, va), (b, _))| a == b && ascending(va))
}

fn check_collection_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.contains('$') {
        "it contains `$`"
    } else if name.contains('\0') {
        "it contains a NUL character"
    } else if name.starts_with("system.") {
        "names starting with `system.` are reserved"
    } else {
        return Ok(());
    };
    Err(Error::InvalidCollectionName {
        name: name.to_owned(),
        reason,
    })
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.db.name())
            .field("change_log_collection", &self.change_log_collection)
            .field("lock_collection", &self.lock_collection)
            .field("index_creation", &self.index_creation)
            .field("read_concern", &self.read_concern)
            .field("write_concern", &self.write_concern)
            .field("transactions", &self.topology.get().map(|t| t.transactions))
            .finish()
    }
}

impl Store for MongoStore {
    type Session = ClientSession;
    type Metadata = Document;

    fn check_settings(&self) -> Result<(), BoxError> {
        check_collection_name(&self.change_log_collection)?;
        check_collection_name(&self.lock_collection)?;
        if self.change_log_collection == self.lock_collection {
            return Err(Error::SameCollections {
                name: self.change_log_collection.clone(),
            }
            .into());
        }
        Ok(())
    }

    async fn read_history(&self) -> Result<Vec<HistoryEntry<Document>>, BoxError> {
        let mut entries = Vec::new();
        self.read_entries(|doc, namespace| {
            entries.push(history::decode(doc, namespace)?);
            Ok(())
        })
        .await?;
        Ok(entries)
    }

    async fn read_history_for_planning(&self) -> Result<PlanningHistory, BoxError> {
        let mut entries = PlanningHistory::new();
        self.read_entries(|doc, namespace| {
            entries.push(history::decode_for_planning(doc, namespace)?);
            Ok(())
        })
        .await?;
        Ok(entries)
    }

    async fn prepare(&self) -> Result<(), BoxError> {
        if self.index_creation {
            self.ensure_index(
                self.history(),
                history::index_keys(),
                self.history_namespace(),
            )
            .await?;
            self.ensure_index(self.lock(), lock::index_keys(), self.lock_namespace())
                .await?;
        } else {
            self.verify_index(
                self.history(),
                history::index_keys(),
                history::INDEX_KEYS,
                self.history_namespace(),
            )
            .await?;
            self.verify_index(
                self.lock(),
                lock::index_keys(),
                lock::INDEX_KEYS,
                self.lock_namespace(),
            )
            .await?;
        }
        Ok(())
    }

    fn provide(&self, deps: &mut Dependencies) {
        deps.insert(self.db.clone());
        deps.insert(self.db.client().clone());
    }

    async fn write_entry(
        &self,
        entry: &HistoryEntry<Document>,
        session: Option<&mut ClientSession>,
    ) -> Result<(), BoxError> {
        // An entry is inserted when its step is first recorded, and updated only when the
        // step's state changes (a failure rolled back, outside any transaction).
        let history = self.history();
        let document = history::document(entry);
        let failed = |command, e| Error::command(command, self.history_namespace(), e);
        let Some(session) = session else {
            let mut own = self.own_session.lock().await;
            let session = match &mut *own {
                Some(session) => session,
                None => own.insert(self.start_session().await?),
            };
            return match history.insert_one(&document).session(&mut *session).await {
                Ok(_) => Ok(()),
                Err(e) if error::is_duplicate_key(&e) => {
                    history
                        .update_one(history::key(entry), history::update(entry))
                        .session(session)
                        .await
                        .map_err(|e| failed("update", e))?;
                    Ok(())
                }
                Err(e) => Err(failed("insert", e).into()),
            };
        };
        history
            .insert_one(&document)
            .session(session)
            .await
            .map_err(|e| failed("insert", e))?;
        Ok(())
    }

    async fn is_recorded(&self, entry: &HistoryEntry<Document>) -> Result<bool, BoxError> {
        let found = self
            .history()
            .find_one(history::recorded_filter(entry))
            .projection(doc! { "_id": 1 })
            .await
            .map_err(|e| Error::command("find", self.history_namespace(), e))?;
        Ok(found.is_some())
    }

    async fn replace_checksum(
        &self,
        entry: &HistoryEntry<Document>,
        checksum: &str,
    ) -> Result<bool, BoxError> {
        let result = self
            .history()
            .update_one(
                history::checksum_filter(entry),
                history::replace_checksum(entry, checksum),
            )
            .await
            .map_err(|e| Error::command("update", self.history_namespace(), e))?;
        Ok(result.matched_count > 0)
    }

    async fn insert_entries(
        &self,
        entries: &[HistoryEntry<Document>],
        session: Option<&mut ClientSession>,
    ) -> Result<(), BoxError> {
        if entries.is_empty() {
            return Ok(());
        }
        let history = self.history();
        let action = history.insert_many(entries.iter().map(history::document));
        let result = match session {
            Some(session) => action.session(session).await,
            None => action.await,
        };
        result.map_err(|e| Error::command("insert", self.history_namespace(), e))?;
        Ok(())
    }

    async fn read_legacy_history(
        &self,
        legacy: &LegacyMigration,
    ) -> Result<Vec<LegacyRow<Document>>, BoxError> {
        self.read_legacy(legacy).await.map_err(Into::into)
    }

    async fn start_session(&self) -> Result<ClientSession, BoxError> {
        let session = self
            .db
            .client()
            .start_session()
            .await
            .map_err(|e| Error::command("startSession", self.db.name(), e))?;
        Ok(session)
    }

    /// Dropping a session costs a task of the driver's, so on a server without transactions,
    /// where no unit can leave one open, a session serves every unit of a run. With
    /// transactions each unit gets a new one: whether a command has run in a transaction is
    /// read from its session's operation time (see
    /// [`fence_and_record`](migrate_core::TransactionStore::fence_and_record)), and a reused
    /// session reports the time of its last commit, which a command in the next transaction
    /// can report too.
    async fn reuse_session(&self, session: ClientSession) -> Option<ClientSession> {
        let topology = self.topology.get()?;
        (!topology.transactions).then_some(session)
    }
}

impl IntoStore<MongoStore> for &Database {
    fn into_store(self) -> MongoStore {
        MongoStore::new(self)
    }
}

impl IntoStore<MongoStore> for Database {
    fn into_store(self) -> MongoStore {
        MongoStore::new(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_match_whatever_numeric_type_stores_them() {
        let wanted = history::index_keys();
        assert!(same_keys(
            &doc! { "executionId": 1.0, "author": 1_i64, "changeId": 1 },
            &wanted
        ));
        assert!(!same_keys(
            &doc! { "author": 1, "executionId": 1, "changeId": 1 },
            &wanted
        ));
        assert!(!same_keys(&doc! { "executionId": 1, "author": 1 }, &wanted));
        assert!(!same_keys(
            &doc! { "executionId": 1, "author": 1, "changeId": -1 },
            &wanted
        ));
    }

    #[test]
    fn reserved_collection_names_are_rejected() {
        assert!(check_collection_name("mongockChangeLog").is_ok());
        assert!(check_collection_name("").is_err());
        assert!(check_collection_name("a$b").is_err());
        assert!(check_collection_name("system.users").is_err());
    }
}

//! Changing a large collection in resumable batches, from a change unit that does not run in
//! a transaction.
//!
//! One transaction cannot hold a change to millions of documents: the server aborts it after
//! its transaction lifetime (60 s by default). [`BatchUpdate`] changes a collection a batch at
//! a time instead, checks between batches that the run still holds the lock, reports
//! progress, and picks up where it stopped when a killed run starts again, without changing
//! any document twice:
//!
//! - **By filter** ([`BatchUpdate::new`]): the update makes the filter false for every
//!   document it changes (`{ emailLower: { $exists: false } }` with an update that sets
//!   `emailLower`), so whatever a crash interrupted, a rerun sees only the documents still to
//!   do. Works on every server.
//! - **By checkpoint** ([`BatchUpdate::checkpointed`]): for changes that make no filter false
//!   (`$inc`), documents are taken in `_id` order (ids of any type, in the order the server
//!   sorts them), and each batch's update and the checkpoint
//!   that records its last `_id` commit in one transaction. Needs a server with transactions.
//!
//! ```no_run
//! use migrate_core::RunContext;
//! use migrate_mongodb::batch::BatchUpdate;
//! use mongodb::bson::{doc, Document};
//! use mongodb::Database;
//!
//! # async fn execute(db: &Database, context: &RunContext) -> Result<(), migrate_core::Error> {
//! let users = db.collection::<Document>("users");
//! let report = BatchUpdate::new(
//!     &users,
//!     doc! { "emailLower": { "$exists": false } },
//!     vec![doc! { "$set": { "emailLower": { "$toLower": "$email" } } }],
//! )
//! .batch_size(2_000)
//! .run(context)
//! .await?;
//! println!("{} documents changed in {} batches", report.changed, report.batches);
//! # Ok(())
//! # }
//! ```

use std::time::{Duration, Instant};

use migrate_core::{Error as RunError, Progress, RunContext};
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::options::UpdateModifications;
use mongodb::{ClientSession, Collection};

use crate::error::Error;

mod checkpoint;

pub use checkpoint::{stored_checkpoints, LeftOver, StoredCheckpoint};

/// The collection checkpoints are kept in, beside the collection being changed.
pub const CHECKPOINT_COLLECTION: &str = "migrateBatchCheckpoints";

/// The default number of documents per batch.
pub const DEFAULT_BATCH_SIZE: usize = 1_000;

type ProgressCallback = Box<dyn Fn(&Progress) + Send + Sync>;

/// A change applied to a collection in batches; see the [module docs](self).
#[must_use = "a batch update does nothing until `.run(context).await`"]
pub struct BatchUpdate {
    collection: Collection<Document>,
    filter: Document,
    update: UpdateModifications,
    batch_size: usize,
    checkpoint: Option<Option<String>>,
    on_progress: Option<ProgressCallback>,
}

/// What a [`BatchUpdate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Documents changed by this run.
    pub changed: u64,
    /// Batches this run applied.
    pub batches: u64,
    /// Whether the run resumed from a checkpoint an earlier run left.
    pub resumed: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl BatchUpdate {
    /// Changes every document of `collection` that matches `filter` with `update` (an update
    /// document or an aggregation pipeline). `update` must make `filter` false for each
    /// document it changes: that is what makes a rerun skip finished work.
    pub fn new(
        collection: &Collection<Document>,
        filter: Document,
        update: impl Into<UpdateModifications>,
    ) -> Self {
        BatchUpdate {
            collection: collection.clone(),
            filter,
            update: update.into(),
            batch_size: DEFAULT_BATCH_SIZE,
            checkpoint: None,
            on_progress: None,
        }
    }

    /// Walks the matching documents in `_id` order and records the last `_id` of each batch in
    /// a checkpoint (in [`CHECKPOINT_COLLECTION`]), committed in one transaction with the
    /// batch's update: for changes that do not make the filter false. Needs a server with
    /// transactions.
    ///
    /// When the work is done the checkpoint is marked complete, and it is deleted once the
    /// unit is recorded in the history ([`RunContext::after_recorded`]): a run stopped in
    /// between leaves a complete checkpoint, and the rerun changes nothing. The checkpoint
    /// names the run that last moved it; one that outlived its cleanup (the process stopped
    /// after the record) is recognised by that run's entry in the history
    /// ([`RunContext::recorded_by`]), so a unit undone and applied again starts over. A
    /// `run_always` unit running again ([`RunContext::runs_again`]) resumes from a checkpoint
    /// an earlier run left unfinished and starts over from a complete one. If the
    /// unit fails, its checkpoint stays and the next run resumes from it: a checkpointed
    /// change is resumed, not undone, so the unit's `#[rollback_execution]` should leave the
    /// batches' work alone (a rollback that undid it would have the rerun skip what the
    /// checkpoint records as done). Each batch advances the checkpoint only from the `_id` it
    /// started at, so a run that lost the lock while paused cannot commit a batch that
    /// another run has already committed.
    pub fn checkpointed(mut self) -> Self {
        self.checkpoint.get_or_insert(None);
        self
    }

    /// Names the checkpoint. By default it is the running unit's id and the collection's
    /// namespace (`<unit id>:<db>.<collection>`), with the step's attribute between them for
    /// a step other than `#[execution]` (`<unit id>:rollback_execution:<db>.<collection>`),
    /// so that a rollback never resumes from its execution's checkpoint. Needed only when one
    /// step changes one collection in two passes.
    pub fn checkpoint_name(mut self, name: impl Into<String>) -> Self {
        self.checkpoint = Some(Some(name.into()));
        self
    }

    /// Documents per batch (each batch is one update command). Default:
    /// [`DEFAULT_BATCH_SIZE`].
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Called after every batch, besides the run's own progress callbacks.
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Box::new(f));
        self
    }

    /// Applies the change, batch after batch, checking before each one that the run still
    /// holds the lock.
    pub async fn run(self, context: &RunContext) -> Result<BatchReport, RunError> {
        let namespace = namespace(&self.collection);
        let started = Instant::now();
        let total = self
            .collection
            .count_documents(self.filter.clone())
            .await
            .map_err(|e| {
                store_error(Error::driver(
                    "counting the documents to change",
                    namespace.clone(),
                    e,
                ))
            })?;
        let mut walk = Walk {
            update: &self,
            context,
            namespace,
            started,
            total,
            done_before: 0,
            changed: 0,
            walked: 0,
            batches: 0,
        };
        let resumed = match &self.checkpoint {
            None => {
                walk.by_filter().await?;
                false
            }
            Some(name) => {
                let name = match name {
                    Some(name) => name.clone(),
                    None => checkpoint::default_name(context, &walk.namespace),
                };
                walk.by_checkpoint(&name).await?
            }
        };
        Ok(BatchReport {
            changed: walk.changed,
            batches: walk.batches,
            resumed,
            elapsed: started.elapsed(),
        })
    }
}

/// One run of a [`BatchUpdate`].
struct Walk<'a> {
    update: &'a BatchUpdate,
    context: &'a RunContext,
    namespace: String,
    started: Instant,
    total: u64,
    /// Documents earlier runs walked (from the checkpoint).
    done_before: u64,
    /// Documents this run changed.
    changed: u64,
    /// Documents this run's batches matched, changed or not.
    walked: u64,
    batches: u64,
}

impl Walk<'_> {
    /// Batches of documents that still match the filter, in `_id` order from where the last
    /// batch ended (from the start after a restart: done documents no longer match).
    async fn by_filter(&mut self) -> Result<(), RunError> {
        let mut after: Option<Bson> = None;
        loop {
            self.context.ensure_lock_held().await?;
            let Some((first, last)) = self.next_ids(after.as_ref(), None).await? else {
                return Ok(());
            };
            let selected = self.within(doc! { "$gte": first, "$lte": last.clone() });
            let result = self
                .update
                .collection
                .update_many(selected, self.update.update.clone())
                .await
                .map_err(|e| self.failed("changing a batch", e))?;
            self.batch_done(result.modified_count, result.matched_count);
            after = Some(last);
        }
    }

    /// The first and last `_id` of the next batch: the first `batch_size` matching documents
    /// after `after`, in `_id` order. Only the ids are fetched.
    ///
    /// A batch's ids are all of one [type bracket](bracket), since a range condition on `_id`
    /// matches only values of its operand's bracket. After the last id of a bracket, the walk
    /// goes on with the first id of the next bracket that has matching documents.
    async fn next_ids(
        &self,
        after: Option<&Bson>,
        mut session: Option<&mut ClientSession>,
    ) -> Result<Option<(Bson, Bson)>, RunError> {
        let batch_size = self.update.batch_size;
        let Some(after) = after else {
            return self
                .ids(self.update.filter.clone(), batch_size, session)
                .await;
        };
        let same_type = self.within(doc! { "$gt": after.clone() });
        if let Some(bounds) = self
            .ids(same_type, batch_size, session.as_deref_mut())
            .await?
        {
            return Ok(Some(bounds));
        }
        let later: Vec<i32> = TYPE_ORDER[bracket(after) + 1..]
            .iter()
            .flat_map(|codes| codes.iter().copied())
            .collect();
        if later.is_empty() {
            return Ok(None);
        }
        let later_type = self.within(doc! { "$type": later });
        let Some((next, _)) = self.ids(later_type, 1, session.as_deref_mut()).await? else {
            return Ok(None);
        };
        self.ids(self.within(doc! { "$gte": next }), batch_size, session)
            .await
    }

    /// The first and last of the first `limit` ids that `filter` matches, in `_id` order,
    /// cut where the ids change type bracket.
    async fn ids(
        &self,
        filter: Document,
        limit: usize,
        session: Option<&mut ClientSession>,
    ) -> Result<Option<(Bson, Bson)>, RunError> {
        let raw = self.update.collection.clone_with_type::<RawDocumentBuf>();
        let find = raw
            .find(filter)
            .sort(doc! { "_id": 1 })
            .projection(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .batch_size(u32::try_from(limit).unwrap_or(u32::MAX));
        let mut bounds: Option<(Bson, Bson)> = None;
        let failed = |e| self.failed("selecting a batch", e);
        match session {
            Some(session) => {
                let mut cursor = find.session(&mut *session).await.map_err(failed)?;
                while let Some(doc) = cursor.next(&mut *session).await {
                    self.extend(&mut bounds, &doc.map_err(failed)?)?;
                }
            }
            None => {
                let mut cursor = find.await.map_err(failed)?;
                while cursor.advance().await.map_err(failed)? {
                    self.extend(&mut bounds, &cursor.deserialize_current().map_err(failed)?)?;
                }
            }
        }
        Ok(bounds)
    }

    /// The filter, narrowed to the `_id`s that `range` (a condition on `_id`) admits: the
    /// range first, as a plain field, so that every server plans an `_id` index scan.
    fn within(&self, range: Document) -> Document {
        let filter = &self.update.filter;
        if filter.contains_key("_id") {
            return doc! { "$and": [filter.clone(), { "_id": range }] };
        }
        let mut selected = doc! { "_id": range };
        selected.extend(filter.clone());
        selected
    }

    /// Widens `bounds` with the `_id` of `doc` if it is of the same type bracket as the first
    /// (ids arrive in ascending order, so the rest of the batch is of later brackets).
    fn extend(
        &self,
        bounds: &mut Option<(Bson, Bson)>,
        doc: &RawDocumentBuf,
    ) -> Result<(), RunError> {
        let id: Bson = doc
            .get("_id")
            .ok()
            .flatten()
            .and_then(|id| id.to_raw_bson().try_into().ok())
            .ok_or_else(|| {
                RunError::store(
                    format!("selecting a batch in `{}`", self.namespace),
                    "a selected document has no readable `_id`",
                )
            })?;
        match bounds {
            Some((first, last)) if bracket(&id) == bracket(first) => *last = id,
            Some(_) => {}
            None => *bounds = Some((id.clone(), id)),
        }
        Ok(())
    }

    /// Counts a batch that changed `changed` of the `walked` documents it matched: progress
    /// counts the documents walked, as the total counts those the filter matched.
    fn batch_done(&mut self, changed: u64, walked: u64) {
        self.changed += changed;
        self.walked += walked;
        self.batches += 1;
        let progress = Progress {
            done: self.done_before + self.walked,
            total: Some(self.total),
            done_now: self.walked,
            elapsed: self.started.elapsed(),
        };
        if let Some(f) = &self.update.on_progress {
            f(&progress);
        }
        self.context.report_progress(&progress);
    }

    fn failed(&self, operation: &'static str, e: mongodb::error::Error) -> RunError {
        store_error(Error::driver(operation, self.namespace.clone(), e))
    }
}

/// The `$type` codes of each type bracket, in the order MongoDB sorts them. The server
/// compares values of different brackets by their bracket alone, and a range condition
/// (`$gt`, `$lte`, ...) matches only values of its operand's bracket.
const TYPE_ORDER: [&[i32]; 16] = [
    &[-1],            // MinKey
    &[6, 10],         // undefined, null
    &[1, 16, 18, 19], // double, int, long, decimal
    &[2, 14],         // string, symbol
    &[3],             // document
    &[4],             // array
    &[5],             // binary
    &[7],             // ObjectId
    &[8],             // boolean
    &[9],             // date
    &[17],            // timestamp
    &[11],            // regular expression
    &[12],            // DBPointer
    &[13],            // JavaScript code
    &[15],            // JavaScript code with scope
    &[127],           // MaxKey
];

/// The position of `value`'s type bracket in [`TYPE_ORDER`].
fn bracket(value: &Bson) -> usize {
    match value {
        Bson::MinKey => 0,
        Bson::Undefined | Bson::Null => 1,
        Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) => 2,
        Bson::String(_) | Bson::Symbol(_) => 3,
        Bson::Document(_) => 4,
        Bson::Array(_) => 5,
        Bson::Binary(_) => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Timestamp(_) => 10,
        Bson::RegularExpression(_) => 11,
        Bson::DbPointer(_) => 12,
        Bson::JavaScriptCode(_) => 13,
        Bson::JavaScriptCodeWithScope(_) => 14,
        Bson::MaxKey => 15,
    }
}

fn store_error(error: Error) -> RunError {
    RunError::store("changing documents in batches", error)
}

fn namespace<T: Send + Sync>(collection: &Collection<T>) -> String {
    let ns = collection.namespace();
    format!("{}.{}", ns.db, ns.coll)
}

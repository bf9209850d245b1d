//! The checkpointed walk: each batch's update and the checkpoint that records its last `_id`
//! commit in one transaction, and the checkpoint is marked complete when the work is done.

use migrate_core::{Error as RunError, HistoryEntry, RunContext, Status, Step};
use mongodb::bson::{doc, Bson, Document};
use mongodb::{ClientSession, Collection, Database};

use super::{store_error, Walk, CHECKPOINT_COLLECTION};
use crate::error::{self, Error};

/// A checkpoint as kept in [`CHECKPOINT_COLLECTION`]: where a checkpointed
/// [`BatchUpdate`](super::BatchUpdate) stands, for operators (`migrate status` lists them).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct StoredCheckpoint {
    /// Its name ([`checkpoint_name`](super::BatchUpdate::checkpoint_name)), the document's
    /// `_id`.
    pub name: String,
    /// The collection its batches change, `database.collection`.
    pub namespace: Option<String>,
    /// The last `_id` of the last batch committed.
    pub last_id: Option<Bson>,
    /// Documents changed by every run so far.
    pub done: u64,
    /// Documents the batches of every run so far matched, changed or not: what progress
    /// counts against the documents the filter matched (`done` for checkpoints written
    /// before it was kept).
    pub walked: u64,
    /// Whether the work is done and the checkpoint waits for its unit to be recorded. One
    /// that stays complete outlived its cleanup (the process stopped after the record).
    pub complete: bool,
    /// The run (`executionId`) that last moved it.
    pub execution_id: Option<String>,
    /// The change unit whose step moved it (`changeId`).
    pub change_id: Option<String>,
    /// The step that moved it.
    pub step: Option<Step>,
}

impl StoredCheckpoint {
    fn from_document(stored: &Document) -> Self {
        let count = |field| {
            stored
                .get_i64(field)
                .ok()
                .and_then(|n| u64::try_from(n).ok())
        };
        StoredCheckpoint {
            name: match stored.get("_id") {
                Some(Bson::String(name)) => name.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            },
            namespace: stored.get_str("namespace").ok().map(str::to_owned),
            last_id: stored.get("lastId").cloned(),
            done: count("done").unwrap_or(0),
            walked: count("walked").or_else(|| count("done")).unwrap_or(0),
            complete: stored.get_bool("complete").unwrap_or(false),
            execution_id: stored.get_str("executionId").ok().map(str::to_owned),
            change_id: stored.get_str("changeId").ok().map(str::to_owned),
            step: stored.get_str("step").ok().and_then(Step::from_attribute),
        }
    }

    /// Why nothing resumes from this checkpoint any more, if nothing does: `history`
    /// records the step that moved it as done by the run that moved it last, or it is
    /// complete and its unit runs again (`status` is what the next run does with each unit).
    /// Such a checkpoint outlived its cleanup (the process stopped after the work was done);
    /// the step deletes it when it runs again, and an operator can delete it.
    ///
    /// `None` for a checkpoint a step resumes from, and for one that does not say its run,
    /// unit and step (those written before checkpoints recorded them).
    pub fn left_over<M>(&self, history: &[HistoryEntry<M>], status: &Status) -> Option<LeftOver> {
        let (Some(run), Some(id), Some(step)) = (&self.execution_id, &self.change_id, self.step)
        else {
            return None;
        };
        if history
            .iter()
            .any(|entry| entry.execution_id == *run && entry.records_done(id, step))
        {
            Some(LeftOver::Recorded)
        } else if self.complete && status.unit(id).is_some_and(|unit| unit.runs_again) {
            Some(LeftOver::RunsAgain)
        } else {
            None
        }
    }
}

/// Why nothing resumes from a [`StoredCheckpoint`] any more
/// ([`StoredCheckpoint::left_over`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeftOver {
    /// The history records the step that moved it as done by the run that moved it last.
    Recorded,
    /// It is complete and its unit is a `run_always` unit already applied: the next run does
    /// the unit's work again from the start (a rerun is not recorded, so the history cannot
    /// say whether the run that completed it succeeded).
    RunsAgain,
}

/// The checkpoints kept in `db`, by name. A checkpoint is kept in the database of the
/// collection its batches change.
pub async fn stored_checkpoints(db: &Database) -> Result<Vec<StoredCheckpoint>, Error> {
    let checkpoints = db.collection::<Document>(CHECKPOINT_COLLECTION);
    let failed = |e| Error::command("find", format!("{}.{CHECKPOINT_COLLECTION}", db.name()), e);
    let mut cursor = checkpoints
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .map_err(failed)?;
    let mut stored = Vec::new();
    while cursor.advance().await.map_err(failed)? {
        let document = cursor.deserialize_current().map_err(failed)?;
        stored.push(StoredCheckpoint::from_document(&document));
    }
    Ok(stored)
}

impl Walk<'_> {
    /// Batches in `_id` order after the checkpoint, each committed with the checkpoint in one
    /// transaction. Returns whether it resumed from an earlier run's checkpoint.
    pub(super) async fn by_checkpoint(&mut self, name: &str) -> Result<bool, RunError> {
        let db = self
            .update
            .collection
            .client()
            .database(&self.update.collection.namespace().db);
        let topology = crate::topology::detect(&db).await.map_err(store_error)?;
        if !topology.transactions {
            return Err(store_error(Error::CheckpointNeedsTransactions {
                namespace: self.namespace.clone(),
                reason: topology.reason,
            }));
        }
        let checkpoints = db.collection::<Document>(CHECKPOINT_COLLECTION);
        let stored = match self.read_checkpoint(&checkpoints, name).await? {
            Some(stored) if stored.accounted_for(self.context) => {
                self.forget(&checkpoints, name, &stored).await?;
                None
            }
            stored => stored,
        };
        let resumed = stored.is_some();
        let mut checkpoint = stored.unwrap_or_default();
        self.done_before = checkpoint.walked;
        let client = self.update.collection.client().clone();
        let mut session = client
            .start_session()
            .await
            .map_err(|e| self.failed("starting a session", e))?;
        while !checkpoint.complete {
            self.context.ensure_lock_held().await?;
            let after = checkpoint.last_id.take();
            let next = self.next_ids(after.as_ref(), Some(&mut session)).await?;
            let advanced = match next {
                Some((first, last)) => {
                    let selected = self.within(doc! { "$gte": first, "$lte": last.clone() });
                    let batch = Batch {
                        checkpoints: &checkpoints,
                        name,
                        after: after.as_ref(),
                        last: &last,
                    };
                    match self.commit_batch(&mut session, batch, selected).await? {
                        Some((changed, walked)) => {
                            self.batch_done(changed, walked);
                            checkpoint.last_id = Some(last);
                            true
                        }
                        None => false,
                    }
                }
                None => {
                    let complete = self.complete(&checkpoints, name, after.as_ref()).await?;
                    checkpoint.last_id = after;
                    checkpoint.complete = complete;
                    complete
                }
            };
            if !advanced {
                // Another run moved the checkpoint since this one read it: a run that lost
                // the lock committed late, or this run did. Go on from where it stands now.
                tracing::warn!(
                    checkpoint = name,
                    "the batch checkpoint moved under this run; reading it again"
                );
                checkpoint = self
                    .read_checkpoint(&checkpoints, name)
                    .await?
                    .ok_or_else(|| {
                        RunError::store(
                            format!("changing `{}` in batches", self.namespace),
                            format!(
                                "the batch checkpoint `{name}` was removed while this run used it"
                            ),
                        )
                    })?;
                self.done_before = checkpoint.walked.saturating_sub(self.walked);
            }
        }
        let name = name.to_owned();
        let namespace = self.namespace.clone();
        self.context.after_recorded(async move {
            checkpoints
                .delete_one(doc! { "_id": &name, "complete": true })
                .await
                .map_err(|e| Error::driver("deleting the batch checkpoint", namespace, e))?;
            Ok(())
        });
        Ok(resumed)
    }

    /// Deletes the checkpoint `name` whose work is already accounted for (see
    /// [`StoredCheckpoint::accounted_for`]): the step running now starts from the beginning.
    async fn forget(
        &self,
        checkpoints: &Collection<Document>,
        name: &str,
        stale: &StoredCheckpoint,
    ) -> Result<(), RunError> {
        tracing::info!(
            checkpoint = name,
            execution_id = stale.execution_id.as_deref().unwrap_or_default(),
            "the batch checkpoint belongs to an earlier run's finished step; starting over"
        );
        checkpoints
            .delete_one(doc! { "_id": name, "executionId": stale.execution_id.as_deref() })
            .await
            .map_err(|e| self.failed("deleting a batch checkpoint left behind", e))?;
        Ok(())
    }

    /// The checkpoint `name`, if there is one.
    async fn read_checkpoint(
        &self,
        checkpoints: &Collection<Document>,
        name: &str,
    ) -> Result<Option<StoredCheckpoint>, RunError> {
        let stored = checkpoints
            .find_one(doc! { "_id": name })
            .await
            .map_err(|e| self.failed("reading the batch checkpoint", e))?;
        Ok(stored.map(|c| StoredCheckpoint::from_document(&c)))
    }

    /// `fields`, with what every write of the checkpoint records: the collection, and the
    /// run, unit and step that moved it.
    fn stamped(&self, mut fields: Document) -> Document {
        fields.insert("namespace", &self.namespace);
        fields.insert("executionId", self.context.execution_id());
        fields.insert("changeId", self.context.unit_id());
        fields.insert("step", self.context.step().map(Step::attribute));
        fields
    }

    /// Marks the checkpoint complete if it still ends at `after`. Returns `false` if it
    /// moved.
    async fn complete(
        &self,
        checkpoints: &Collection<Document>,
        name: &str,
        after: Option<&Bson>,
    ) -> Result<bool, RunError> {
        let result = checkpoints
            .update_one(
                checkpoint_filter(name, after),
                doc! { "$set": self.stamped(doc! { "complete": true }) },
            )
            .upsert(after.is_none())
            .await;
        advanced(result).map_err(|e| self.failed("completing the batch checkpoint", e))
    }

    /// Applies one batch and advances the checkpoint from `batch.after` in one transaction,
    /// retrying transient failures for the run's retry deadline (longer, by default, than the
    /// 60 s a server keeps a transaction that a stopped run left open on these documents).
    /// Returns the documents changed and those matched, or `None` (and changes nothing) if
    /// the checkpoint no longer ends at `batch.after`.
    async fn commit_batch(
        &self,
        session: &mut ClientSession,
        batch: Batch<'_>,
        selected: Document,
    ) -> Result<Option<(u64, u64)>, RunError> {
        let mut backoff = self.context.backoff();
        loop {
            let attempt = async {
                session.start_transaction().await?;
                let result = self
                    .update
                    .collection
                    .update_many(selected.clone(), self.update.update.clone())
                    .session(&mut *session)
                    .await?;
                let moved = batch
                    .checkpoints
                    .update_one(
                        checkpoint_filter(batch.name, batch.after),
                        doc! {
                            "$set": self.stamped(doc! { "lastId": batch.last.clone() }),
                            "$inc": {
                                "done": i64::try_from(result.modified_count).unwrap_or(i64::MAX),
                                "walked": i64::try_from(result.matched_count).unwrap_or(i64::MAX),
                            },
                        },
                    )
                    // The first batch creates the checkpoint; later ones find it.
                    .upsert(batch.after.is_none())
                    .session(&mut *session)
                    .await;
                if !advanced(moved)? {
                    return Ok(None);
                }
                session.commit_transaction().await?;
                Ok::<_, mongodb::error::Error>(Some((result.modified_count, result.matched_count)))
            }
            .await;
            match attempt {
                Ok(Some(counts)) => return Ok(Some(counts)),
                Ok(None) => {
                    let _ = session.abort_transaction().await;
                    return Ok(None);
                }
                Err(e) => {
                    let _ = session.abort_transaction().await;
                    let transient = e.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
                        || e.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT);
                    if transient && backoff.wait().await {
                        tracing::info!(error = %error::DriverError::from(e), "transient error in a batch; retried it");
                        continue;
                    }
                    return Err(self.failed("changing a batch and its checkpoint", e));
                }
            }
        }
    }
}

impl StoredCheckpoint {
    /// Whether this checkpoint describes work already accounted for, which the step running
    /// now must not resume from: the run that last moved it recorded the step (it stopped
    /// after the record, before the cleanup), or it is complete and an earlier run of a
    /// `run_always` unit that runs again left it (its reruns are not recorded, so one that
    /// succeeded cannot be told from one that stopped after the walk; running the work
    /// again is what a `run_always` unit does).
    fn accounted_for(&self, context: &RunContext) -> bool {
        let Some(run) = self.execution_id.as_deref() else {
            return false;
        };
        context.recorded_by().iter().any(|recorded| recorded == run)
            || (context.runs_again() && self.complete && context.execution_id() != Some(run))
    }
}

/// One batch's move of the checkpoint `name` from `after` to `last`.
struct Batch<'a> {
    checkpoints: &'a Collection<Document>,
    name: &'a str,
    after: Option<&'a Bson>,
    last: &'a Bson,
}

/// Whether an update with [`checkpoint_filter`] moved the checkpoint: `false` when it
/// matched nothing or, as the first batch's upsert, met a checkpoint already there.
fn advanced(
    result: mongodb::error::Result<mongodb::results::UpdateResult>,
) -> mongodb::error::Result<bool> {
    match result {
        Ok(result) => Ok(result.matched_count > 0 || result.upserted_id.is_some()),
        Err(e) if error::is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The checkpoint `name` as long as it still ends at `after` (or does not exist yet).
fn checkpoint_filter(name: &str, after: Option<&Bson>) -> Document {
    match after {
        Some(after) => doc! { "_id": name, "lastId": { "$eq": after.clone() } },
        None => doc! { "_id": name, "lastId": { "$exists": false } },
    }
}

/// The checkpoint's name unless the update names it: see
/// [`BatchUpdate::checkpoint_name`](super::BatchUpdate::checkpoint_name).
pub(super) fn default_name(context: &RunContext, namespace: &str) -> String {
    let unit = context.unit_id().unwrap_or("batch");
    match context.step() {
        None | Some(Step::Execution) => format!("{unit}:{namespace}"),
        Some(step) => format!("{unit}:{}:{namespace}", step.attribute()),
    }
}

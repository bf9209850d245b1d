//! Transactions on a [`MongoStore`]: sessions, the fence on the lock, commits, and ending a
//! session whose transaction a client can no longer abort.

use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};
use std::time::Duration;

use migrate_core::{
    BoxError, BoxFuture, Error as CoreError, HistoryEntry, LockClaim, Report, Runner, Store,
    TransactionStore,
};
use mongodb::bson::{doc, Document, Timestamp};
use mongodb::options::{InsertOneModel, UpdateOneModel, WriteModel};
use mongodb::ClientSession;

use super::{MongoStore, NO_SUCH_TRANSACTION, TRANSACTION_EXCEEDED_LIFETIME, WRITE_CONFLICT};
use crate::error::{self, Error};
use crate::{history, lock};

impl TransactionStore for MongoStore {
    // Compiles the runner over this store here, once, rather than in each application.
    fn run_runner(runner: Runner<Self>) -> BoxFuture<'static, Result<Report, CoreError>> {
        Box::pin(runner.run_here())
    }

    async fn supports_transactions(&self) -> Result<bool, BoxError> {
        Ok(self.topology().await?.transactions)
    }

    fn transactions_unsupported_reason(&self) -> String {
        match self.topology.get() {
            Some(topology) if !topology.transactions => format!(
                "{}, so run it as a (single-node) replica set or leave `transactional` unset",
                topology.reason
            ),
            _ => "the server cannot run transactions".to_owned(),
        }
    }

    async fn start_transaction(&self, session: &mut ClientSession) -> Result<(), BoxError> {
        self.open_transactions()
            .insert(session_key(session), session.operation_time());
        session
            .start_transaction()
            .read_concern(self.read_concern.clone())
            .write_concern(self.write_concern.clone())
            .await
            .map_err(|e| Error::command("startTransaction", self.db.name(), e))?;
        Ok(())
    }

    async fn fence_lock(
        &self,
        session: &mut ClientSession,
        claim: &LockClaim,
    ) -> Result<bool, BoxError> {
        let result = self
            .lock()
            .update_one(lock::owner_filter(&claim.owner), lock::extend_update(claim))
            .session(session)
            .await
            .map_err(|e| Error::command("update", self.lock_namespace(), e))?;
        Ok(result.matched_count > 0)
    }

    fn combines_fence_and_record(&self) -> bool {
        self.topology.get().is_some_and(|t| t.bulk_write)
    }

    async fn fence_and_record(
        &self,
        session: &mut ClientSession,
        claim: &LockClaim,
        entries: &[HistoryEntry<Document>],
    ) -> Result<bool, BoxError> {
        // The first command of a transaction carries its read concern, which `bulkWrite`
        // does not take everywhere: a transaction in which nothing has run yet fences with
        // an `update` of its own.
        let started_at = self.open_transactions().remove(&session_key(session));
        let first_command = started_at.is_none_or(|at| at == session.operation_time());
        if !self.combines_fence_and_record() || first_command {
            if !self.fence_lock(session, claim).await? {
                return Ok(false);
            }
            for entry in entries {
                self.write_entry(entry, Some(&mut *session)).await?;
            }
            return Ok(true);
        }
        let fence = UpdateOneModel::builder()
            .namespace(self.lock().namespace())
            .filter(lock::owner_filter(&claim.owner))
            .update(lock::extend_update(claim))
            .build();
        let history = self.history().namespace();
        let inserts = entries.iter().map(|entry| {
            WriteModel::from(
                InsertOneModel::builder()
                    .namespace(history.clone())
                    .document(history::document(entry))
                    .build(),
            )
        });
        let models: Vec<WriteModel> = std::iter::once(WriteModel::from(fence))
            .chain(inserts)
            .collect();
        let result = self
            .db
            .client()
            .bulk_write(models)
            .session(session)
            .await
            .map_err(|e| Error::command("bulkWrite", self.db.name(), e))?;
        Ok(result.matched_count > 0)
    }

    async fn commit_transaction(&self, session: &mut ClientSession) -> Result<(), BoxError> {
        self.open_transactions().remove(&session_key(session));
        session
            .commit_transaction()
            .await
            .map_err(|e| Error::command("commitTransaction", self.db.name(), e))?;
        Ok(())
    }

    async fn abort_transaction(&self, session: &mut ClientSession) -> Result<(), BoxError> {
        self.open_transactions().remove(&session_key(session));
        session
            .abort_transaction()
            .await
            .map_err(|e| Error::command("abortTransaction", self.db.name(), e))?;
        Ok(())
    }

    fn is_transient(&self, error: &BoxError) -> bool {
        // A write conflict aborts the transaction and is always worth a retry. Servers label
        // it, except inside a `bulkWrite`'s write errors, where some report it bare.
        error::has_label(&**error, mongodb::error::TRANSIENT_TRANSACTION_ERROR)
            || error::has_code(&**error, &[WRITE_CONFLICT])
    }

    fn is_unknown_commit_result(&self, error: &BoxError) -> bool {
        error::has_label(&**error, mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT)
    }

    async fn end_session(&self, session: ClientSession) {
        self.open_transactions().remove(&session_key(&session));
        // `killSessions` aborts the session's open transaction at once; without it the server
        // would keep it, and the documents it wrote, until its transaction lifetime passes.
        let kill = doc! { "killSessions": [session.id().clone()] };
        if let Err(error) = self.db.client().database("admin").run_command(kill).await {
            tracing::debug!(error = %error::DriverError::from(error), "killSessions failed");
        }
    }

    fn transaction_lifetime(&self) -> Duration {
        self.transaction_lifetime
    }

    fn is_transaction_gone(&self, error: &BoxError) -> bool {
        error::has_code(
            &**error,
            &[NO_SUCH_TRANSACTION, TRANSACTION_EXCEEDED_LIFETIME],
        )
    }
}

impl MongoStore {
    fn open_transactions(&self) -> MutexGuard<'_, HashMap<String, Option<Timestamp>>> {
        self.open_transactions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's id, as a map key.
fn session_key(session: &ClientSession) -> String {
    session.id().to_string()
}

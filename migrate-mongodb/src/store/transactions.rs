//! Transactions on a [`MongoStore`]: sessions, the fence on the lock, commits, and ending a
//! session whose transaction a client can no longer abort.

use std::time::Duration;

use migrate_core::{BoxError, LockClaim, TransactionStore};
use mongodb::bson::doc;
use mongodb::ClientSession;

use super::{MongoStore, NO_SUCH_TRANSACTION, TRANSACTION_EXCEEDED_LIFETIME};
use crate::error::{self, Error};
use crate::lock;

impl TransactionStore for MongoStore {
    async fn supports_transactions(&self) -> Result<bool, BoxError> {
        Ok(self.topology().await?.transactions)
    }

    fn transactions_unsupported_reason(&self) -> String {
        match self.topology.get() {
            Some(topology) if !topology.transactions => topology.reason.clone(),
            _ => "the server cannot run transactions".to_owned(),
        }
    }

    async fn start_transaction(&self, session: &mut ClientSession) -> Result<(), BoxError> {
        session
            .start_transaction()
            .read_concern(self.read_concern.clone())
            .write_concern(self.write_concern.clone())
            .await
            .map_err(|e| Error::driver("starting a transaction", self.db.name(), e))?;
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
            .map_err(|e| Error::driver("fencing the lock", self.lock_namespace(), e))?;
        Ok(result.matched_count > 0)
    }

    async fn commit_transaction(&self, session: &mut ClientSession) -> Result<(), BoxError> {
        session
            .commit_transaction()
            .await
            .map_err(|e| Error::driver("committing a transaction", self.db.name(), e))?;
        Ok(())
    }

    async fn abort_transaction(&self, session: &mut ClientSession) -> Result<(), BoxError> {
        session
            .abort_transaction()
            .await
            .map_err(|e| Error::driver("aborting a transaction", self.db.name(), e))?;
        Ok(())
    }

    fn is_transient(&self, error: &BoxError) -> bool {
        error::has_label(&**error, mongodb::error::TRANSIENT_TRANSACTION_ERROR)
    }

    fn is_unknown_commit_result(&self, error: &BoxError) -> bool {
        error::has_label(&**error, mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT)
    }

    async fn end_session(&self, session: ClientSession) {
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

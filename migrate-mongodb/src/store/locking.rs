//! The lock on a [`MongoStore`]: acquisition that waits a bounded time for an open
//! transaction, refresh and release.

use std::time::{Duration, SystemTime};

use migrate_core::{BoxError, LockAttempt, LockClaim, LockInfo, LockStore};
use mongodb::bson::doc;

use super::{MongoStore, MAX_TIME_EXPIRED, WRITE_CONFLICT};
use crate::error::{self, Error};
use crate::lock;

impl LockStore for MongoStore {
    async fn acquire_lock(
        &self,
        claim: &LockClaim,
        max_wait: Duration,
    ) -> Result<LockAttempt, BoxError> {
        // `findAndModify` because it takes a time limit: a write to a document that an open
        // transaction has written waits for that transaction to end.
        let result = self
            .lock()
            .find_one_and_update(
                lock::acquire_filter(claim, SystemTime::now()),
                lock::acquire_update(claim),
            )
            .upsert(true)
            .max_time(max_wait)
            .projection(doc! { "_id": 1 })
            .await;
        match result {
            Ok(_) => Ok(LockAttempt::Acquired),
            // The filter did not match, so the upsert tried to insert a second document with
            // the same key: another owner holds an unexpired lease.
            Err(e) if error::is_duplicate_key(&e) => {
                Ok(LockAttempt::HeldBy(self.inspect_lock().await?))
            }
            Err(e) if matches!(error::code(&e), Some(MAX_TIME_EXPIRED | WRITE_CONFLICT)) => {
                Ok(LockAttempt::InTransaction)
            }
            Err(e) => Err(Error::command("findAndModify", self.lock_namespace(), e).into()),
        }
    }

    async fn refresh_lock(&self, claim: &LockClaim) -> Result<bool, BoxError> {
        let result = self
            .lock()
            .update_one(lock::owner_filter(&claim.owner), lock::extend_update(claim))
            .await
            .map_err(|e| Error::command("update", self.lock_namespace(), e))?;
        Ok(result.matched_count > 0)
    }

    async fn read_lock(&self) -> Result<Option<LockInfo>, BoxError> {
        Ok(self.inspect_lock().await?)
    }

    async fn remove_lock(&self, held: &LockInfo) -> Result<bool, BoxError> {
        let result = self
            .lock()
            .delete_one(lock::exact_filter(held))
            .await
            .map_err(|e| Error::command("delete", self.lock_namespace(), e))?;
        Ok(result.deleted_count > 0)
    }

    async fn release_lock(&self, owner: &str) -> Result<(), BoxError> {
        self.lock()
            .delete_one(lock::owner_filter(owner))
            .await
            .map_err(|e| Error::command("delete", self.lock_namespace(), e))?;
        Ok(())
    }
}

//! The sessions a run's units get: the one the last unit left reusable, or a new one.

use std::sync::{MutexGuard, PoisonError};

use super::Execution;
use crate::error::Error;
use crate::store::{LockStore, TransactionStore};

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// The session the last unit left reusable, or a new one.
    pub(super) async fn session(&self) -> Result<S::Session, Error> {
        if let Some(session) = self.spare().take() {
            return Ok(session);
        }
        self.store
            .start_session()
            .await
            .map_err(|e| Error::store("starting a session", e))
    }

    /// Keeps `session`, which a unit finished with successfully, for the next unit if the
    /// store can ready it for one.
    pub(super) async fn reuse(&self, session: S::Session) {
        let session = self.store.reuse_session(session).await;
        *self.spare() = session;
    }

    fn spare(&self) -> MutexGuard<'_, Option<S::Session>> {
        self.spare_session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

//! One fenced transaction around the executions of one or more units, used by both the
//! per-unit and the per-run strategy: retries of transient failures, the fence on the lock,
//! the history entries, the commit and the abort.

use std::time::{Duration, Instant};

use super::{lock_lost, Execution};
use crate::error::Error;
use crate::history::EntryType;
use crate::plan::{Decision, PlannedUnit};
use crate::store::{LockStore, TransactionStore};
use crate::unit::{BoxError, ChangeUnitInstance};

/// How often a transaction that fails with a transient error is tried in all.
const TRANSACTION_ATTEMPTS: usize = 5;

/// A transaction that did not commit.
pub(super) enum TransactionFailure {
    /// It failed for good, attributed to the unit at `index` (the last one when the fence,
    /// the history write or the commit failed). Nothing it wrote is left.
    Failed { index: usize, error: BoxError },
    /// The run must stop (lock lost, store unusable).
    Fatal(Error),
}

impl From<Error> for TransactionFailure {
    fn from(error: Error) -> Self {
        TransactionFailure::Fatal(error)
    }
}

/// Which unit an attempt failed at, and why.
type AttemptFailure = (usize, BoxError);

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// Runs the `#[execution]` of every unit of `units` (at least one), in order, in one
    /// transaction that also fences the lock and writes their history entries, retrying
    /// transient failures. `elapsed[i]` receives the time unit `i`'s execution took.
    pub(super) async fn execute_in_transaction(
        &self,
        units: &[(&PlannedUnit, &dyn ChangeUnitInstance)],
        session: &mut S::Session,
        elapsed: &mut [Duration],
    ) -> Result<(), TransactionFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Err((index, error)) = self.attempt(units, session, elapsed).await? else {
                return Ok(());
            };
            let planned = units[index].0;
            if self.lease.is_lost() {
                return Err(lock_lost(planned).into());
            }
            if self.store.is_transient(&error) && attempt < TRANSACTION_ATTEMPTS {
                tracing::info!(id = planned.unit.id(), attempt, %error, "transient transaction error; retrying");
                continue;
            }
            return Err(TransactionFailure::Failed { index, error });
        }
    }

    /// One attempt: start, every execution, fence, history entries, commit. The transaction
    /// is aborted on any failure before the commit.
    async fn attempt(
        &self,
        units: &[(&PlannedUnit, &dyn ChangeUnitInstance)],
        session: &mut S::Session,
        elapsed: &mut [Duration],
    ) -> Result<Result<(), AttemptFailure>, Error> {
        self.store
            .start_transaction(session)
            .await
            .map_err(|e| Error::store("starting a transaction", e))?;
        let mut entries = Vec::with_capacity(units.len());
        for (index, &(planned, instance)) in units.iter().enumerate() {
            let started = Instant::now();
            if let Err(error) = self.execution(planned, instance, session).await {
                self.abort(session).await;
                return Ok(Err((index, error)));
            }
            elapsed[index] = started.elapsed();
            if planned.decision == Decision::Run {
                entries.push(
                    self.record
                        .executed(planned, EntryType::Execution, elapsed[index]),
                );
            }
        }
        let last = units.len() - 1;
        match self.store.fence_lock(session, &self.lease.claim()).await {
            Ok(true) => {}
            Ok(false) => {
                self.abort(session).await;
                self.lease.mark_lost();
                return Err(lock_lost(units[last].0));
            }
            Err(error) => {
                self.abort(session).await;
                return Ok(Err((last, error)));
            }
        }
        for entry in &entries {
            if let Err(error) = self.store.write_entry(entry, Some(session)).await {
                self.abort(session).await;
                return Ok(Err((last, error)));
            }
        }
        Ok(self.commit(session).await.map_err(|error| (last, error)))
    }

    /// Commits, retrying while the outcome is unknown; aborts when the commit fails.
    async fn commit(&self, session: &mut S::Session) -> Result<(), BoxError> {
        let mut commits = 0;
        loop {
            commits += 1;
            match self.store.commit_transaction(session).await {
                Ok(()) => return Ok(()),
                Err(error)
                    if self.store.is_unknown_commit_result(&error)
                        && commits < TRANSACTION_ATTEMPTS =>
                {
                    tracing::info!(%error, "commit result unknown; retrying the commit");
                }
                Err(error) => {
                    self.abort(session).await;
                    return Err(error);
                }
            }
        }
    }

    async fn abort(&self, session: &mut S::Session) {
        if let Err(error) = self.store.abort_transaction(session).await {
            tracing::debug!(%error, "aborting the transaction failed");
        }
    }
}

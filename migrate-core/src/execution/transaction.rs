//! One fenced transaction around the executions of one or more units, used by both the
//! per-unit and the per-run strategy: the fence on the lock, the history entries, the commit,
//! settling a commit whose outcome is unknown, the abort, and retries of transient failures.
//!
//! The fence extends the lease on the lock document inside the transaction. From the fence
//! on, the document is written by the transaction, so no other runner can take the lock over
//! until it ends (their writes wait for it), and a takeover that happened before makes the
//! fence fail. Where the store sends the fence and the history entries in one round trip, the
//! fence is the transaction's last write (see `fences_last`); otherwise it is its first, and
//! a transaction that outlives a third of the lease extends it again before committing. The
//! background refresh is held off meanwhile, so it cannot conflict with the fence.

use std::time::{Duration, Instant, SystemTime};

use super::{lock_lost, Execution};
use crate::error::{Chain, Error, TransactionTooLong};
use crate::history::{EntryType, HistoryEntry, State};
use crate::plan::PlannedUnit;
use crate::retry::Backoff;
use crate::store::{LockStore, TransactionStore};
use crate::unit::{BoxError, ChangeUnitInstance, Step};

/// How often a commit whose outcome is unknown is retried before the runner reads back
/// whether it committed.
const COMMIT_RETRIES: u32 = 2;

/// A transaction that did not commit.
pub(super) enum TransactionFailure {
    /// It failed for good, attributed to the unit at `index` (the last one when the history
    /// write or the commit failed). Nothing it wrote is left.
    Failed { index: usize, error: BoxError },
    /// The run must stop (lock lost, store unusable, commit outcome unknown).
    Fatal(Error),
}

impl From<Error> for TransactionFailure {
    fn from(error: Error) -> Self {
        TransactionFailure::Fatal(error)
    }
}

/// What a transaction does to its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Work {
    /// Runs `#[execution]` and records it EXECUTED (a `run_always` rerun is not recorded).
    Apply,
    /// Runs `#[rollback_execution]` and records it ROLLED_BACK.
    Undo,
}

/// Which unit an attempt failed at, and why.
type AttemptFailure = (usize, BoxError);

/// Why a commit did not succeed.
enum CommitFailure {
    /// The commit failed; whether to retry depends on the error.
    Failed(BoxError),
    /// The outcome was unknown and reading back showed it did not commit: safe to retry.
    NotCommitted(BoxError),
}

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// Does `work` to every unit of `units` (at least one), in order, in one transaction
    /// that also fences the lock and writes their history entries, retrying transient
    /// failures with backoff until the retry deadline. `elapsed[i]` receives the time unit
    /// `i`'s step took.
    pub(super) async fn execute_in_transaction(
        &self,
        work: Work,
        units: &[(&PlannedUnit, &dyn ChangeUnitInstance)],
        session: &mut S::Session,
        elapsed: &mut [Duration],
    ) -> Result<(), TransactionFailure> {
        let mut backoff = Backoff::new(self.retry_deadline);
        loop {
            let started = Instant::now();
            let attempt = self.attempt(work, units, session, elapsed).await?;
            let (index, error, retryable) = match attempt {
                Ok(()) => return Ok(()),
                Err(AttemptError::Failed((index, error))) => {
                    let retryable = self.store.is_transient(&error);
                    (index, error, retryable)
                }
                Err(AttemptError::NotCommitted((index, error))) => (index, error, true),
            };
            let planned = units[index].0;
            if self.lease.is_lost() {
                return Err(lock_lost(planned, "while running").into());
            }
            let lifetime = self.store.transaction_lifetime();
            if self.store.is_transaction_gone(&error) && started.elapsed() >= lifetime * 9 / 10 {
                tracing::error!(id = planned.unit.id(), elapsed = ?started.elapsed(), ?lifetime, "the transaction outlived the server's transaction lifetime");
                let too_long = TransactionTooLong {
                    elapsed: started.elapsed(),
                    lifetime,
                };
                return Err(TransactionFailure::Failed {
                    index,
                    error: Box::new(too_long),
                });
            }
            if retryable {
                if let Some(delay) = backoff.next_delay() {
                    tracing::info!(
                        id = planned.unit.id(),
                        retry = backoff.retries(),
                        ?delay,
                        error = %Chain(&*error),
                        "transient transaction error; retrying the change unit"
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
                tracing::warn!(id = planned.unit.id(), deadline = ?self.retry_deadline, "transient errors lasted past the retry deadline");
            }
            return Err(TransactionFailure::Failed { index, error });
        }
    }

    /// One attempt: start, fence, every execution, history entries, commit. The transaction
    /// is aborted (or its session ended) on any failure.
    async fn attempt(
        &self,
        work: Work,
        units: &[(&PlannedUnit, &dyn ChangeUnitInstance)],
        session: &mut S::Session,
        elapsed: &mut [Duration],
    ) -> Result<Result<(), AttemptError>, Error> {
        let last = units.len() - 1;
        let fence_last = self.fences_last();
        if fence_last
            && !self
                .lease
                .still_held_for(self.lease.lease() * 9 / 10)
                .await?
        {
            return Err(lock_lost(units[0].0, "before running"));
        }
        let _no_refresh = self.lease.hold_refresh().await;
        self.store.start_transaction(session).await.map_err(|e| {
            let of = match units {
                [(planned, _)] => format!("`{}`", planned.unit.id()),
                _ => format!("the run's {} units", units.len()),
            };
            Error::store(format!("opening the transaction of {of}"), e)
        })?;
        let mut fenced = None;
        if !fence_last {
            match self.fence(session, units[0].0).await? {
                Ok(expires_at) => fenced = Some((expires_at, Instant::now())),
                Err(error) => return Ok(Err(AttemptError::Failed((0, error)))),
            }
        }
        let mut entries = Vec::with_capacity(units.len());
        for (index, &(planned, instance)) in units.iter().enumerate() {
            let started = Instant::now();
            let step = match work {
                Work::Apply => Step::Execution,
                Work::Undo => Step::RollbackExecution,
            };
            if let Err(error) = self.required_step(planned, instance, step, session).await {
                self.abort(session).await?;
                return Ok(Err(AttemptError::Failed((index, error))));
            }
            elapsed[index] = started.elapsed();
            let state = match work {
                Work::Apply if self.records(planned) => State::Executed,
                Work::Apply => continue,
                Work::Undo => State::RolledBack,
            };
            entries.push(self.record.completed(
                planned,
                EntryType::Execution,
                state,
                elapsed[index],
            ));
        }
        let recorded = match fenced {
            // The fence and the entries in one round trip, as the transaction's last writes.
            None => {
                self.fence_and_record(session, units[last].0, &entries)
                    .await?
            }
            Some((expires_at, fenced_at)) => {
                let mut expires_at = expires_at;
                if fenced_at.elapsed() > self.lease.lease() / 3 {
                    // Committed as it is, the lease would end soon after the commit.
                    match self.fence(session, units[last].0).await? {
                        Ok(extended) => expires_at = extended,
                        Err(error) => return Ok(Err(AttemptError::Failed((last, error)))),
                    }
                }
                match self.write_entries(session, &entries).await? {
                    Ok(()) => Ok(expires_at),
                    Err(error) => Err(error),
                }
            }
        };
        let expires_at = match recorded {
            Ok(expires_at) => expires_at,
            Err(error) => return Ok(Err(AttemptError::Failed((last, error)))),
        };
        match self.commit(session, entries.last(), units[last].0).await? {
            Ok(()) => {
                self.lease.confirm(expires_at);
                Ok(Ok(()))
            }
            Err(CommitFailure::Failed(error)) => Ok(Err(AttemptError::Failed((last, error)))),
            Err(CommitFailure::NotCommitted(error)) => {
                Ok(Err(AttemptError::NotCommitted((last, error))))
            }
        }
    }

    /// Whether transactions fence the lock at their end, together with their history
    /// entries, instead of with a write of their own at their start.
    ///
    /// Fencing last saves a round trip per transaction. A takeover before the fence makes it
    /// fail, so nothing commits; after it, the lock document is the transaction's until it
    /// ends. Before the fence, though, nothing holds the lock document, so the lease must
    /// outlast the transaction: the runner fences last only when the lease is at least the
    /// server's transaction lifetime, and extends it before each transaction when less than
    /// nine tenths of it is left.
    fn fences_last(&self) -> bool {
        self.store.combines_fence_and_record()
            && self.lease.lease() >= self.store.transaction_lifetime()
    }

    /// The fence and the history entries together: the lease's new expiry, or the write's
    /// error (the transaction is then aborted). A takeover is [`Error::LockLost`].
    async fn fence_and_record(
        &self,
        session: &mut S::Session,
        planned: &PlannedUnit,
        entries: &[HistoryEntry<S::Metadata>],
    ) -> Result<Result<SystemTime, BoxError>, Error> {
        let claim = self.lease.claim();
        match self.store.fence_and_record(session, &claim, entries).await {
            Ok(true) => Ok(Ok(claim.expires_at)),
            Ok(false) => Err(self.taken_over(session, planned).await?),
            Err(error) => {
                self.abort(session).await?;
                Ok(Err(error))
            }
        }
    }

    /// Writes `entries` in the transaction; on failure aborts it.
    async fn write_entries(
        &self,
        session: &mut S::Session,
        entries: &[HistoryEntry<S::Metadata>],
    ) -> Result<Result<(), BoxError>, Error> {
        for entry in entries {
            if let Err(error) = self.store.write_entry(entry, Some(&mut *session)).await {
                self.abort(session).await?;
                return Ok(Err(error));
            }
        }
        Ok(Ok(()))
    }

    /// Aborts after a fence found the lock taken over, and returns the run's error.
    async fn taken_over(
        &self,
        session: &mut S::Session,
        planned: &PlannedUnit,
    ) -> Result<Error, Error> {
        self.abort(session).await?;
        self.lease.mark_lost();
        tracing::error!(
            id = planned.unit.id(),
            "migration lock was taken over by another runner"
        );
        Ok(lock_lost(planned, "at the transaction fence of"))
    }

    /// Writes the fence: the lease's new expiry, or the write's error (the transaction is
    /// then aborted). A takeover is [`Error::LockLost`].
    async fn fence(
        &self,
        session: &mut S::Session,
        planned: &PlannedUnit,
    ) -> Result<Result<SystemTime, BoxError>, Error> {
        let claim = self.lease.claim();
        match self.store.fence_lock(session, &claim).await {
            Ok(true) => Ok(Ok(claim.expires_at)),
            Ok(false) => Err(self.taken_over(session, planned).await?),
            Err(error) => {
                self.abort(session).await?;
                Ok(Err(error))
            }
        }
    }

    /// Commits. A commit whose outcome is unknown is retried as the driver specifies, then
    /// settled by reading back whether `entry` committed: never guessed. After a failed
    /// commit the session is ended, so the server aborts whatever is left open.
    async fn commit(
        &self,
        session: &mut S::Session,
        entry: Option<&HistoryEntry<S::Metadata>>,
        planned: &PlannedUnit,
    ) -> Result<Result<(), CommitFailure>, Error> {
        let mut backoff = Backoff::new(self.retry_deadline);
        loop {
            let error = match self.store.commit_transaction(session).await {
                Ok(()) => return Ok(Ok(())),
                Err(error) => error,
            };
            if !self.store.is_unknown_commit_result(&error) {
                self.end_session(session).await?;
                return Ok(Err(CommitFailure::Failed(error)));
            }
            if backoff.retries() < COMMIT_RETRIES && backoff.wait().await {
                tracing::info!(id = planned.unit.id(), error = %Chain(&*error), "the commit's outcome is unknown; retrying the commit");
                continue;
            }
            // Ending the session first settles the outcome: whatever has not committed by
            // now never will.
            self.end_session(session).await?;
            let unknown = |source: BoxError| Error::CommitOutcomeUnknown {
                unit_id: planned.unit.id().to_owned(),
                source,
            };
            let Some(entry) = entry else {
                return Err(unknown(error));
            };
            return match self.store.is_recorded(entry).await {
                Ok(true) => {
                    tracing::info!(
                        id = planned.unit.id(),
                        "the commit's outcome was unknown; its history entry shows it committed"
                    );
                    Ok(Ok(()))
                }
                Ok(false) => {
                    tracing::info!(id = planned.unit.id(), "the commit's outcome was unknown; its history entry shows it did not commit");
                    Ok(Err(CommitFailure::NotCommitted(error)))
                }
                Err(read) => {
                    tracing::error!(id = planned.unit.id(), error = %Chain(&*read), "reading back the commit's outcome failed");
                    Err(unknown(error))
                }
            };
        }
    }

    /// Aborts the transaction; when that fails, ends the session so the server aborts it.
    async fn abort(&self, session: &mut S::Session) -> Result<(), Error> {
        if let Err(error) = self.store.abort_transaction(session).await {
            tracing::debug!(error = %Chain(&*error), "aborting the transaction failed; ending its session");
            self.end_session(session).await?;
        }
        Ok(())
    }

    /// Ends `session` on the server and puts a new one in its place.
    async fn end_session(&self, session: &mut S::Session) -> Result<(), Error> {
        let fresh = self.session().await?;
        let old = std::mem::replace(session, fresh);
        self.store.end_session(old).await;
        Ok(())
    }
}

/// How one attempt failed.
enum AttemptError {
    Failed(AttemptFailure),
    NotCommitted(AttemptFailure),
}

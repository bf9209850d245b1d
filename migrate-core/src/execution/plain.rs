//! A unit's execution without a transaction: recorded right after it, rolled back by its
//! `#[rollback_execution]` when it fails or when recording it fails.

use std::time::Instant;

use super::{record_error, Execution, Failure, StepError};
use crate::error::{Chain, Error, NotRecorded};
use crate::history::{EntryType, HistoryEntry};
use crate::plan::PlannedUnit;
use crate::retry::Backoff;
use crate::store::{LockStore, TransactionStore};
use crate::unit::{BoxError, ChangeUnitInstance, Step};

/// How often a failed history write outside a transaction is retried.
const RECORD_RETRIES: u32 = 3;

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// Runs the execution without a transaction; on failure runs `#[rollback_execution]`.
    ///
    /// When the execution succeeded but recording it fails (after retries), the unit is rolled
    /// back too, so that a rerun starts clean.
    pub(super) async fn execute_plain(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
        record: bool,
    ) -> Result<(), StepError> {
        let started = Instant::now();
        // `recordable`: whether the store accepted writes a moment ago.
        let (error, recordable) = match self.execution(planned, instance, session).await {
            Ok(()) if !record => return Ok(()),
            Ok(()) => {
                let entry = self
                    .record
                    .executed(planned, EntryType::Execution, started.elapsed());
                match self.record_executed(planned, &entry).await? {
                    Ok(()) => return Ok(()),
                    // Nothing can undo it: its changes stay, unrecorded, and the next run
                    // applies it again.
                    Err(error) if !planned.unit.has_rollback() => {
                        return Err(StepError::Fatal(record_error(&entry, error)))
                    }
                    Err(error) => (Box::new(NotRecorded { source: error }) as BoxError, false),
                }
            }
            Err(error) => (error, true),
        };
        let message = Chain(&*error).to_string();
        if recordable {
            self.record_failed(planned, &message).await?;
        }
        let mut failure = Failure::new(Step::Execution, error);
        if !planned.unit.has_rollback() {
            // Change sets and system units have no rollback: the failure stays FAILED, and
            // whatever the execution wrote stays too.
            failure.rolled_back = false;
            return Err(StepError::Failed(failure));
        }
        let rollback = self
            .roll_back(planned, instance, Step::RollbackExecution, session)
            .await
            .unwrap_or(Ok(()));
        let recorded = self
            .record_rollback(planned, EntryType::Execution, &message, &rollback)
            .await;
        match recorded {
            Err(error) if !recordable => {
                tracing::warn!(id = planned.unit.id(), error = %Chain(&error), "the rollback ran but could not be recorded either");
            }
            recorded => recorded?,
        }
        if let Err(error) = rollback {
            failure.rollback_failed(Step::RollbackExecution, error);
        }
        Err(StepError::Failed(failure))
    }

    /// Records a successful execution outside a transaction, retrying failed writes (the
    /// write is an idempotent upsert) until the retry deadline, then reading back whether one
    /// of them landed. `Ok(Err(_))`: it is not recorded.
    async fn record_executed(
        &self,
        planned: &PlannedUnit,
        entry: &HistoryEntry<S::Metadata>,
    ) -> Result<Result<(), BoxError>, Error> {
        let mut backoff = Backoff::new(self.retry_deadline);
        loop {
            self.guard(planned, "before recording").await?;
            let error = match self.store.write_entry(entry, None).await {
                Ok(()) => return Ok(Ok(())),
                Err(error) => error,
            };
            if backoff.retries() < RECORD_RETRIES && backoff.wait().await {
                tracing::warn!(id = planned.unit.id(), error = %Chain(&*error), "recording the change unit failed; retrying");
                continue;
            }
            return match self.store.is_recorded(entry).await {
                Ok(true) => Ok(Ok(())),
                Ok(false) | Err(_) => {
                    tracing::error!(id = planned.unit.id(), error = %Chain(&*error), "recording the change unit failed; rolling it back");
                    Ok(Err(error))
                }
            };
        }
    }
}

//! The run with the lock held: the locked re-read, then each pending unit in order, its
//! before-step, its execution and the rollbacks of a failure, each step recorded.

mod per_run;
mod plain;
mod record;
mod session;
mod step;
mod transaction;
mod undo;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::context::RunContext;
use crate::error::{Chain, Error, ExecutionError};
use crate::event::{Event, Listeners};
use crate::history::{EntryType, HistoryEntry, State};
use crate::inject::Dependencies;
use crate::lock::Lease;
use crate::plan::{Decision, Plan, PlanInput, PlannedUnit};
use crate::report::{Outcome, SkipReason, UnitReport};
use crate::runner::TransactionStrategy;
use crate::store::{LockStore, TransactionStore};
use crate::unit::{BoxError, ChangeUnitInstance, Step};

use record::error_trace;
use record::Recorded;
pub(crate) use record::RunRecord;
use transaction::{TransactionFailure, Work};
pub(crate) use undo::undo_targets;

/// One run with the lock held.
pub(crate) struct Execution<'r, S: TransactionStore + LockStore> {
    pub(crate) store: &'r S,
    pub(crate) lease: &'r Lease<S>,
    /// The run's handle for its units; knows which unit runs.
    pub(crate) context: &'r RunContext,
    pub(crate) deps: &'r Dependencies,
    pub(crate) record: RunRecord<'r, S::Metadata>,
    /// Whether pending transactional units run in transactions.
    pub(crate) transactions: bool,
    pub(crate) strategy: TransactionStrategy,
    pub(crate) track_ignored: bool,
    /// How long transient failures are retried.
    pub(crate) retry_deadline: Duration,
    /// The session the last unit finished with, for the next one; see
    /// [`Store::reuse_session`](crate::store::Store::reuse_session).
    pub(crate) spare_session: Mutex<Option<S::Session>>,
    /// Which runs recorded each step, once the history is read under the lock.
    pub(crate) recorded: OnceLock<Recorded>,
}

/// A step that failed, with what its rollbacks did.
pub(crate) struct Failure {
    step: Step,
    error: BoxError,
    rollback_errors: Vec<(Step, BoxError)>,
    rolled_back: bool,
}

impl Failure {
    /// `step` failed with `error`; nothing has been rolled back yet.
    fn new(step: Step, error: BoxError) -> Self {
        Failure {
            step,
            error,
            rollback_errors: Vec::new(),
            rolled_back: true,
        }
    }

    /// A rollback step failed too: the unit's changes are not fully undone.
    fn rollback_failed(&mut self, step: Step, error: BoxError) {
        self.rolled_back = false;
        self.rollback_errors.push((step, error));
    }

    /// The run's error for this failure of `planned`.
    fn into_error(self, planned: &PlannedUnit) -> Error {
        Error::Execution(Box::new(ExecutionError {
            unit_id: planned.unit.id().to_owned(),
            step: self.step,
            source: self.error,
            rollback_errors: self.rollback_errors,
            rolled_back: self.rolled_back,
            unit: planned.unit,
        }))
    }
}

/// Why a unit did not complete: its own failure (recorded, rolled back), or an error that
/// stops the run (store, lock).
pub(crate) enum StepError {
    Failed(Failure),
    Fatal(Error),
}

impl From<Error> for StepError {
    fn from(error: Error) -> Self {
        StepError::Fatal(error)
    }
}

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// Re-reads the history under the lock and runs every unit that is still pending.
    pub(crate) async fn run(
        &self,
        input: &PlanInput<'_>,
        listeners: &Listeners,
    ) -> Result<Vec<UnitReport>, Error> {
        let history = self
            .store
            .read_history()
            .await
            .map_err(|e| Error::store("reading the migration history", e))?;
        let plan = Plan::new(input, &history)?;
        let _ = self.recorded.set(Recorded::new(&history));
        // Another runner may have rolled units back since the first read.
        plan.check_dependencies(&[self.deps])?;
        let pending: Vec<&str> = plan.pending().map(|p| p.unit.id()).collect();
        listeners.emit(&Event::Started {
            execution_id: self.record.execution_id,
            pending: &pending,
        });
        if self.track_ignored {
            self.record_ignored(&plan).await?;
        }
        if self.transactions && self.strategy == TransactionStrategy::PerRun {
            return self.run_in_one_transaction(&plan, listeners).await;
        }
        let mut reports = Vec::with_capacity(plan.units().len());
        for planned in plan.units() {
            if !planned.is_pending() {
                reports.push(UnitReport::planned(planned));
                continue;
            }
            self.check_lease(planned).await?;
            unit_started(listeners, planned);
            let started = Instant::now();
            let span = tracing::info_span!("change_unit", id = planned.unit.id(), author = %planned.author);
            self.context.set_unit(Some(planned.unit.id()));
            let outcome = self.run_unit(planned).instrument(span).await;
            self.context.set_unit(None);
            // Dropped unless the unit succeeded: what they clean up is kept for a rerun.
            let cleanups = self.context.take_cleanups();
            let elapsed = Some(started.elapsed());
            match outcome {
                Ok(()) => {
                    crate::context::run_cleanups(Some(planned.unit.id()), cleanups).await;
                    let outcome = match planned.decision {
                        Decision::RunAgain => Outcome::ExecutedAgain,
                        _ => Outcome::Executed,
                    };
                    tracing::info!(
                        id = planned.unit.id(),
                        author = %planned.author,
                        ms = started.elapsed().as_millis() as u64,
                        again = planned.decision == Decision::RunAgain,
                        "change unit applied"
                    );
                    let report = UnitReport::new(planned, outcome, elapsed);
                    listeners.emit(&Event::UnitFinished(&report));
                    reports.push(report);
                }
                Err(StepError::Fatal(error)) => return Err(error),
                Err(StepError::Failed(failure)) => {
                    let rolled_back = failure.rolled_back;
                    let error = failure.into_error(planned);
                    let message = Chain(&error).to_string();
                    let outcome = Outcome::Failed {
                        error: message.clone(),
                        rolled_back,
                    };
                    let report = UnitReport::new(planned, outcome, elapsed);
                    listeners.emit(&Event::UnitFinished(&report));
                    if planned.unit.fail_fast() {
                        return Err(error);
                    }
                    tracing::warn!(id = planned.unit.id(), error = %message, "change unit failed; fail_fast is off, continuing");
                    reports.push(report);
                }
            }
        }
        Ok(reports)
    }

    /// Whether a success of `planned` is recorded: see [`Recorded::records`].
    fn records(&self, planned: &PlannedUnit) -> bool {
        self.recorded
            .get()
            .map_or(planned.decision == Decision::Run, |recorded| {
                recorded.records(planned)
            })
    }

    async fn check_lease(&self, planned: &PlannedUnit) -> Result<(), Error> {
        self.guard(planned, "before running").await
    }

    async fn record_ignored(&self, plan: &Plan) -> Result<(), Error> {
        for planned in plan.units() {
            if matches!(
                planned.decision,
                Decision::Skip(SkipReason::Profile | SkipReason::SystemVersion { .. })
            ) {
                let entry = self
                    .record
                    .entry(planned, EntryType::Execution, State::Ignored, None);
                self.write(planned, &entry).await?;
            }
        }
        Ok(())
    }

    /// Runs one unit: before-step, execution, history entries, rollbacks on failure. The
    /// session of a unit that succeeded serves the next one.
    async fn run_unit(&self, planned: &PlannedUnit) -> Result<(), StepError> {
        let instance = planned
            .unit
            .instantiate(self.deps)
            .map_err(|error| StepError::Failed(Failure::new(Step::Execution, error)))?;
        let mut session = self.session().await?;
        self.run_steps(planned, &*instance, &mut session).await?;
        self.reuse(session).await;
        Ok(())
    }

    async fn run_steps(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
    ) -> Result<(), StepError> {
        let unit = planned.unit;
        let record = self.records(planned);

        let before_ran = self.run_before(planned, instance, session, record).await?;
        let result = if self.transactions && unit.transactional() {
            self.execute_transactional(planned, instance, session).await
        } else {
            self.execute_plain(planned, instance, session, record).await
        };
        match result {
            Err(StepError::Failed(mut failure)) if before_ran => {
                self.rollback_before(planned, instance, session, &mut failure)
                    .await?;
                Err(StepError::Failed(failure))
            }
            result => result,
        }
    }

    /// Runs the before-step, if any; on failure records it and rolls it back. `Ok(true)` when
    /// a before-step ran.
    async fn run_before(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
        record: bool,
    ) -> Result<bool, StepError> {
        let started = Instant::now();
        let Some(result) = self
            .step(planned, instance, Step::BeforeExecution, session)
            .await
        else {
            return Ok(false);
        };
        match result {
            Ok(()) => {
                if record {
                    let entry = self.record.executed(
                        planned,
                        EntryType::BeforeExecution,
                        started.elapsed(),
                    );
                    self.write(planned, &entry).await?;
                }
                Ok(true)
            }
            Err(error) => {
                let entry = self.record.entry(
                    planned,
                    EntryType::BeforeExecution,
                    State::Failed,
                    Some(error_trace(&Chain(&*error).to_string(), None)),
                );
                self.write(planned, &entry).await?;
                let mut failure = Failure::new(Step::BeforeExecution, error);
                self.rollback_before(planned, instance, session, &mut failure)
                    .await?;
                Err(StepError::Failed(failure))
            }
        }
    }

    /// Runs `#[rollback_before_execution]` and records the before entry's new state.
    async fn rollback_before(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
        failure: &mut Failure,
    ) -> Result<(), Error> {
        let Some(result) = self
            .roll_back(planned, instance, Step::RollbackBeforeExecution, session)
            .await
        else {
            return Ok(());
        };
        let execution_trace = if failure.step == Step::BeforeExecution {
            Chain(&*failure.error).to_string()
        } else {
            format!(
                "rolled back after `#[execution]` failed: {}",
                Chain(&*failure.error)
            )
        };
        self.record_rollback(
            planned,
            EntryType::BeforeExecution,
            &execution_trace,
            &result,
        )
        .await?;
        if let Err(rollback) = result {
            failure.rollback_failed(Step::RollbackBeforeExecution, rollback);
        }
        Ok(())
    }

    /// Runs the execution and its history entry in one fenced transaction; a failure is
    /// recorded as FAILED (the transaction undid the unit's writes).
    async fn execute_transactional(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
    ) -> Result<(), StepError> {
        warn_if_sessionless(planned);
        let mut elapsed = [Duration::ZERO];
        match self
            .execute_in_transaction(Work::Apply, &[(planned, instance)], session, &mut elapsed)
            .await
        {
            Ok(()) => Ok(()),
            Err(TransactionFailure::Fatal(error)) => Err(StepError::Fatal(error)),
            Err(TransactionFailure::Failed { error, .. }) => {
                let message = Chain(&*error).to_string();
                self.record_failed(planned, &message).await?;
                Err(StepError::Failed(Failure::new(Step::Execution, error)))
            }
        }
    }

    /// Records the execution of `planned` as FAILED with `message` as its trace.
    async fn record_failed(&self, planned: &PlannedUnit, message: &str) -> Result<(), Error> {
        let entry = self.record.entry(
            planned,
            EntryType::Execution,
            State::Failed,
            Some(error_trace(message, None)),
        );
        self.write(planned, &entry).await
    }

    /// Runs a rollback step of a unit that failed. The failed steps' cleanups are dropped
    /// first: what they would clean up is kept for a rerun.
    async fn roll_back(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        step: Step,
        session: &mut S::Session,
    ) -> Option<Result<(), BoxError>> {
        drop(self.context.take_cleanups());
        self.step(planned, instance, step, session).await
    }

    /// Records the outcome of a rollback step: ROLLED_BACK, then the rollback's cleanups; or
    /// ROLLBACK_FAILED with both errors in the trace.
    async fn record_rollback(
        &self,
        planned: &PlannedUnit,
        entry_type: EntryType,
        execution_trace: &str,
        rollback: &Result<(), BoxError>,
    ) -> Result<(), Error> {
        let (state, rollback_trace) = match rollback {
            Ok(()) => (State::RolledBack, None),
            Err(e) => (State::RollbackFailed, Some(Chain(&**e).to_string())),
        };
        let entry = self.record.entry(
            planned,
            entry_type,
            state,
            Some(error_trace(execution_trace, rollback_trace.as_deref())),
        );
        let cleanups = self.context.take_cleanups();
        self.write(planned, &entry).await?;
        if rollback.is_ok() {
            crate::context::run_cleanups(Some(planned.unit.id()), cleanups).await;
        }
        Ok(())
    }

    /// Writes `entry` outside any transaction, once this runner has made sure it still holds
    /// the lock.
    async fn write(
        &self,
        planned: &PlannedUnit,
        entry: &HistoryEntry<S::Metadata>,
    ) -> Result<(), Error> {
        self.guard(planned, "before recording").await?;
        self.store
            .write_entry(entry, None)
            .await
            .map_err(|e| record_error(entry, e))
    }

    /// Fails with [`Error::LockLost`] unless this runner still holds the lock.
    async fn guard(&self, planned: &PlannedUnit, during: &'static str) -> Result<(), Error> {
        if self.lease.still_held().await? {
            Ok(())
        } else {
            Err(lock_lost(planned, during))
        }
    }
}

/// The run's error for a history write that failed.
fn record_error<M>(entry: &HistoryEntry<M>, source: BoxError) -> Error {
    Error::store(
        format!(
            "recording `{}` as {} in the history",
            entry.change_id, entry.state
        ),
        source,
    )
}

/// Tells the unit callbacks that `planned` starts.
fn unit_started(listeners: &Listeners, planned: &PlannedUnit) {
    listeners.emit(&Event::UnitStarted {
        id: planned.unit.id(),
        author: &planned.author,
        order: planned.unit.order(),
    });
}

/// Warns that a unit runs in a transaction that its writes escape.
fn warn_if_sessionless(planned: &PlannedUnit) {
    if !planned.unit.execution_takes_session() {
        tracing::warn!(
            id = planned.unit.id(),
            method = planned.unit.execution_method(),
            "the change unit runs in a transaction, but its `#[execution]` method takes no session: its writes escape the transaction"
        );
    }
}

fn lock_lost(planned: &PlannedUnit, during: &'static str) -> Error {
    Error::LockLost {
        unit_id: Some(planned.unit.id().to_owned()),
        during,
    }
}

//! Undoing applied units on request, newest first: `#[rollback_execution]` (in a fenced
//! transaction where the store has one), then `#[rollback_before_execution]`, each recorded
//! ROLLED_BACK so the unit is pending again.

use std::time::{Duration, Instant};

use tracing::Instrument;

use super::transaction::{TransactionFailure, Work};
use super::{Execution, Recorded};
use crate::error::{Chain, Error, ExecutionError};
use crate::event::{Event, Listeners};
use crate::history::{EntryType, ExecutedSet, HistoryEntry, State, BEFORE_SUFFIX};
use crate::plan::{Plan, PlannedUnit};
use crate::report::{Outcome, UnitReport};
use crate::store::{LockStore, TransactionStore};
use crate::unit::{BoxError, Step};

/// An applied unit to undo.
pub(crate) struct UndoTarget {
    pub(crate) planned: PlannedUnit,
    /// Whether its `#[before_execution]` is recorded as executed.
    pub(crate) before_applied: bool,
}

/// The applied units ordered at or after `target` (every applied unit for `None`), newest
/// first. Fails before anything is undone when `target` is not a unit of the binary or when
/// a unit to undo has no rollback code.
pub(crate) fn undo_targets<M>(
    plan: &Plan,
    history: &[HistoryEntry<M>],
    target: Option<&str>,
) -> Result<Vec<UndoTarget>, Error> {
    let executed = ExecutedSet::from_entries(history);
    let start = match target {
        Some(id) => plan
            .units()
            .iter()
            .position(|p| p.unit.id() == id)
            .ok_or_else(|| Error::UnknownChangeUnit { id: id.to_owned() })?,
        None => 0,
    };
    let targets: Vec<UndoTarget> = plan.units()[start..]
        .iter()
        .rev()
        .filter(|p| executed.is_executed(p.unit.id(), &p.author))
        .map(|p| UndoTarget {
            before_applied: executed
                .is_executed(&format!("{}{BEFORE_SUFFIX}", p.unit.id()), &p.author),
            planned: p.clone(),
        })
        .collect();
    let no_rollback: Vec<String> = targets
        .iter()
        .filter(|t| !t.planned.unit.can_undo())
        .map(|t| t.planned.unit.id().to_owned())
        .collect();
    if !no_rollback.is_empty() {
        return Err(Error::NoRollback { units: no_rollback });
    }
    Ok(targets)
}

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// Undoes `targets`, chosen from `history` (read under the lock), in the order given;
    /// stops at the first failure, which is recorded ROLLBACK_FAILED.
    pub(crate) async fn undo(
        &self,
        targets: &[UndoTarget],
        history: &[HistoryEntry<S::Metadata>],
        listeners: &Listeners,
    ) -> Result<Vec<UnitReport>, Error> {
        let _ = self.recorded.set(Recorded::new(history));
        let mut reports = Vec::with_capacity(targets.len());
        for target in targets {
            let planned = &target.planned;
            self.guard(planned, "before undoing").await?;
            super::unit_started(listeners, planned);
            let started = Instant::now();
            let span = tracing::info_span!("undo_change_unit", id = planned.unit.id(), author = %planned.author);
            self.context.set_unit(Some(planned.unit.id()));
            let undone = self.undo_unit(target).instrument(span).await;
            self.context.set_unit(None);
            let cleanups = self.context.take_cleanups();
            undone?;
            crate::context::run_cleanups(Some(planned.unit.id()), cleanups).await;
            tracing::info!(
                id = planned.unit.id(),
                author = %planned.author,
                ms = started.elapsed().as_millis() as u64,
                "change unit undone"
            );
            let report = UnitReport::new(planned, Outcome::RolledBack, Some(started.elapsed()));
            listeners.emit(&Event::UnitFinished(&report));
            reports.push(report);
        }
        Ok(reports)
    }

    async fn undo_unit(&self, target: &UndoTarget) -> Result<(), Error> {
        let planned = &target.planned;
        let unit = planned.unit;
        let instance = unit
            .instantiate(self.deps)
            .map_err(|e| undo_error(planned, Step::RollbackExecution, e))?;
        let mut session = self.session().await?;
        if self.transactions && unit.transactional() {
            let mut elapsed = [Duration::ZERO];
            let result = self
                .execute_in_transaction(
                    Work::Undo,
                    &[(planned, &*instance)],
                    &mut session,
                    &mut elapsed,
                )
                .await;
            match result {
                Ok(()) => {}
                Err(TransactionFailure::Fatal(error)) => return Err(error),
                Err(TransactionFailure::Failed { error, .. }) => {
                    return Err(self
                        .undo_failed(
                            planned,
                            EntryType::Execution,
                            Step::RollbackExecution,
                            error,
                        )
                        .await);
                }
            }
        } else {
            let started = Instant::now();
            let result = self
                .required_step(planned, &*instance, Step::RollbackExecution, &mut session)
                .await;
            self.record_undo_step(planned, EntryType::Execution, started, result)
                .await?;
        }
        if target.before_applied {
            let started = Instant::now();
            if let Some(result) = self
                .step(
                    planned,
                    &*instance,
                    Step::RollbackBeforeExecution,
                    &mut session,
                )
                .await
            {
                self.record_undo_step(planned, EntryType::BeforeExecution, started, result)
                    .await?;
            }
        }
        self.reuse(session).await;
        Ok(())
    }

    /// Records a rollback step that ran outside a transaction: ROLLED_BACK, or
    /// ROLLBACK_FAILED and the run's error.
    async fn record_undo_step(
        &self,
        planned: &PlannedUnit,
        entry_type: EntryType,
        started: Instant,
        result: Result<(), BoxError>,
    ) -> Result<(), Error> {
        let step = match entry_type {
            EntryType::Execution => Step::RollbackExecution,
            EntryType::BeforeExecution => Step::RollbackBeforeExecution,
        };
        match result {
            Ok(()) => {
                let entry = self.record.completed(
                    planned,
                    entry_type,
                    State::RolledBack,
                    started.elapsed(),
                );
                self.write(planned, &entry).await
            }
            Err(error) => Err(self.undo_failed(planned, entry_type, step, error).await),
        }
    }

    /// Records a failed rollback step as ROLLBACK_FAILED (the unit stays applied) and returns
    /// the run's error for it.
    async fn undo_failed(
        &self,
        planned: &PlannedUnit,
        entry_type: EntryType,
        step: Step,
        error: BoxError,
    ) -> Error {
        let trace = undo_trace(&Chain(&*error).to_string());
        let entry = self
            .record
            .entry(planned, entry_type, State::RollbackFailed, Some(trace));
        if let Err(record) = self.write(planned, &entry).await {
            tracing::warn!(id = planned.unit.id(), error = %Chain(&record), "the failed undo could not be recorded");
        }
        undo_error(planned, step, error)
    }
}

/// The `errorTrace` of a failed undo.
fn undo_trace(rollback: &str) -> String {
    super::record::error_trace("undo requested", Some(rollback))
}

fn undo_error(planned: &PlannedUnit, step: Step, source: BoxError) -> Error {
    Error::Execution(Box::new(ExecutionError {
        unit_id: planned.unit.id().to_owned(),
        unit: planned.unit,
        step,
        source,
        rollback_errors: Vec::new(),
        rolled_back: false,
    }))
}

//! [`TransactionStrategy::PerRun`](crate::TransactionStrategy::PerRun): every before-step
//! first, then every execution of the run in one transaction.

use std::time::{Duration, Instant};

use super::transaction::{TransactionFailure, Work};
use super::{Execution, Failure, StepError};
use crate::error::Error;
use crate::event::{Event, Listeners};
use crate::plan::{Decision, Plan, PlannedUnit};
use crate::report::{Outcome, UnitReport};
use crate::store::{LockStore, TransactionStore};
use crate::unit::{ChangeUnitInstance, Step};

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// Runs the before-steps of every pending unit, then all their executions in one
    /// transaction. A failure anywhere rolls back every before-step that ran, newest first.
    pub(super) async fn run_in_one_transaction(
        &self,
        plan: &Plan,
        listeners: &Listeners,
    ) -> Result<Vec<UnitReport>, Error> {
        let pending: Vec<&PlannedUnit> = plan.pending().collect();
        let mut instances = Vec::with_capacity(pending.len());
        let mut session = self.session().await?;
        let mut befores: Vec<usize> = Vec::new();
        let mut before_timings = vec![Duration::ZERO; pending.len()];
        for (index, planned) in pending.iter().enumerate() {
            self.check_lease(planned).await?;
            super::unit_started(listeners, planned);
            let instance = planned
                .unit
                .instantiate(self.deps)
                .map_err(|error| Failure::new(Step::Execution, error).into_error(planned))?;
            let started = Instant::now();
            let record = self.records(planned);
            match self
                .run_before(planned, &*instance, &mut session, record)
                .await
            {
                Ok(true) => befores.push(index),
                Ok(false) => {}
                Err(StepError::Fatal(error)) => return Err(error),
                Err(StepError::Failed(failure)) => {
                    return Err(self
                        .unwind_befores(
                            &pending,
                            &befores,
                            &instances,
                            &mut session,
                            failure,
                            index,
                        )
                        .await)
                }
            }
            before_timings[index] = started.elapsed();
            instances.push(instance);
        }

        let units: Vec<(&PlannedUnit, &dyn ChangeUnitInstance)> = pending
            .iter()
            .zip(&instances)
            .map(|(planned, instance)| (*planned, &**instance))
            .collect();
        pending
            .iter()
            .for_each(|planned| super::warn_if_sessionless(planned));
        let mut timings = vec![Duration::ZERO; pending.len()];
        match self
            .execute_in_transaction(Work::Apply, &units, &mut session, &mut timings)
            .await
        {
            Ok(()) => {}
            Err(TransactionFailure::Fatal(error)) => return Err(error),
            Err(TransactionFailure::Failed { index, error }) => {
                let message = crate::error::Chain(&*error).to_string();
                self.record_failed(pending[index], &message).await?;
                let failure = Failure::new(Step::Execution, error);
                return Err(self
                    .unwind_befores(&pending, &befores, &instances, &mut session, failure, index)
                    .await);
            }
        }

        let mut timings = timings.into_iter().zip(before_timings).map(|(a, b)| a + b);
        let reports: Vec<UnitReport> = plan
            .units()
            .iter()
            .map(|planned| match planned.decision {
                Decision::Skip(_) => UnitReport::planned(planned),
                Decision::Run => UnitReport::new(planned, Outcome::Executed, timings.next()),
                Decision::RunAgain => {
                    UnitReport::new(planned, Outcome::ExecutedAgain, timings.next())
                }
            })
            .collect();
        for report in reports.iter().filter(|r| r.elapsed.is_some()) {
            listeners.emit(&Event::UnitFinished(report));
        }
        crate::context::run_cleanups(None, self.context.take_cleanups()).await;
        Ok(reports)
    }

    /// Rolls back the completed before-steps (`befores`, indexes into `pending`) newest
    /// first, and builds the run's error for the failure of `pending[failed]`.
    async fn unwind_befores(
        &self,
        pending: &[&PlannedUnit],
        befores: &[usize],
        instances: &[Box<dyn ChangeUnitInstance>],
        session: &mut S::Session,
        mut failure: Failure,
        failed: usize,
    ) -> Error {
        for &index in befores.iter().rev() {
            if let Err(error) = self
                .rollback_before(pending[index], &*instances[index], session, &mut failure)
                .await
            {
                return error;
            }
        }
        failure.into_error(pending[failed])
    }
}

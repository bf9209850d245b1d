//! Calling one step of a unit: injecting its parameters and turning a panic into an error.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Execution;
use crate::plan::{Decision, PlannedUnit};
use crate::store::{LockStore, TransactionStore};
use crate::unit::{BoxError, ChangeUnitInstance, Step, StepContext};

impl<S: TransactionStore + LockStore> Execution<'_, S> {
    /// Runs one step of a unit, turning a panic into an error. `None` when the unit has no
    /// such step.
    pub(super) async fn step(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        step: Step,
        session: &mut S::Session,
    ) -> Option<Result<(), BoxError>> {
        // What the unit's helpers read from the context: its id (a run in one transaction
        // sets no unit before its steps), the step, and the runs that recorded the step.
        let recorded_by = self
            .recorded
            .get()
            .map(|recorded| recorded.by(planned, step))
            .unwrap_or_default();
        let runs_again = planned.decision == Decision::RunAgain;
        self.context
            .set_step(planned.unit.id(), step, recorded_by, runs_again);
        let cx = StepContext::new(
            planned.unit.id(),
            self.deps,
            Some(session as &mut (dyn Any + Send)),
        );
        // The step function resolves the method's parameters before returning its future.
        let future =
            match std::panic::catch_unwind(AssertUnwindSafe(|| instance.run_step(step, cx))) {
                Ok(future) => future?,
                Err(panic) => return Some(Err(panicked(&*panic))),
            };
        tracing::debug!(step = step.attribute(), "running step");
        Some(match CatchUnwind(future).await {
            Ok(result) => result,
            Err(panic) => Err(panicked(&*panic)),
        })
    }

    /// Runs the `#[execution]` step, which every unit has.
    pub(super) async fn execution(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
    ) -> Result<(), BoxError> {
        self.required_step(planned, instance, Step::Execution, session)
            .await
    }

    /// Runs a step every unit has (`#[execution]`, `#[rollback_execution]`).
    pub(super) async fn required_step(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        step: Step,
        session: &mut S::Session,
    ) -> Result<(), BoxError> {
        self.step(planned, instance, step, session)
            .await
            .unwrap_or_else(|| {
                Err(format!(
                    "change unit `{}` has no `#[{}]` method",
                    planned.unit.id(),
                    step.attribute()
                )
                .into())
            })
    }
}

fn panicked(panic: &(dyn Any + Send)) -> BoxError {
    format!("panicked: {}", panic_message(panic)).into()
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload")
}

/// Polls a future, catching a panic raised while polling it.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

//! Function change units: `#[change_unit(...)]` on an `async fn`. The function is the unit's
//! execution; its rollback is another function named in the attribute, or none. Every unit
//! of this form runs through the one non-generic [`FunctionUnit`], so a unit generates a step
//! function for its execution and, when it has one, a call of [`rollback`] for its rollback.

use std::future::Future;

use super::{
    inject, list_sites, step_failed, step_future, succeeded, Checksum, CodeResult, Requirements,
    StepTable, UnitAttributes, UnitCall, UnitCode,
};
use crate::inject::{Inject, Requirement};
use crate::unit::{BoxError, BoxFuture, ChangeUnit, ChangeUnitInstance, Step, StepContext};

/// What a step function returns: the step's future, or `None` for a step the unit lacks.
pub type StepOutput<'a> = Option<BoxFuture<'a, Result<(), BoxError>>>;

/// What a function unit's execution step returns: the function's future, or why its
/// parameters could not be resolved.
pub type StepResult<'a> = Result<BoxFuture<'a, Result<(), BoxError>>, BoxError>;

/// The step function a function unit's macro generates for its execution: resolves the
/// parameters, then calls the function.
pub type FunctionStep = for<'a> fn(StepContext<'a>) -> StepResult<'a>;

/// The step function a function unit's macro generates for its rollback, which hands the
/// call to [`rollback`]: one generic call for both running the rollback and listing its
/// injection sites, so that a function that cannot be a rollback is one compile error.
pub type RollbackStep = for<'a, 'l> fn(RollbackCall<'a, 'l>) -> StepOutput<'a>;

/// A request to a function unit's rollback step.
pub enum RollbackCall<'a, 'l> {
    /// Run the rollback function.
    Run(StepContext<'a>),
    /// Add the function's injection sites to the list.
    Sites(&'l mut Vec<(Requirement, &'static str)>),
}

/// The registered descriptor of a function unit whose tokens (the function's and the
/// rollback's path) hash to `checksum`.
pub const fn function_unit(
    unit: UnitAttributes,
    checksum: u64,
    execution_takes_session: bool,
    has_rollback: bool,
    code: UnitCode,
) -> ChangeUnit {
    let steps = StepTable {
        execution_takes_session,
        rollback_does_nothing: !has_rollback,
        checksum: Checksum::of([checksum, 0, 0, 0, 0]),
    };
    ChangeUnit::new(unit, steps, code, false)
}

/// Adds a function unit's injection sites to `list`: its execution's, then its rollback's.
fn list_function_sites(
    list: &mut Vec<(Requirement, &'static str)>,
    execution: Requirements,
    rollback: Option<RollbackStep>,
) {
    list_sites(list, &[], &[], execution, &[], &[]);
    if let Some(rollback) = rollback {
        rollback(RollbackCall::Sites(list));
    }
}

/// Answers `call` for a function unit: the function `name` at `type_path` in `file`, whose
/// parameters have the injection sites `sites`, run by `execution` and undone by `rollback`.
///
/// Not generic: every function unit's generated code is one call of it, with the unit's
/// names as constants of that code.
pub fn function_code(
    call: UnitCall<'_, '_>,
    (type_path, file, name): (&'static str, &'static str, &'static str),
    sites: Requirements,
    execution: FunctionStep,
    rollback: Option<RollbackStep>,
) -> CodeResult {
    match call {
        UnitCall::Names(names) => names.set(type_path, file, name, None),
        UnitCall::Sites(list) => list_function_sites(list, sites, rollback),
        UnitCall::Instantiate(_, unit) => {
            *unit = Some(Box::new(FunctionUnit {
                execution,
                rollback,
            }));
        }
    }
    Ok(())
}

struct FunctionUnit {
    execution: FunctionStep,
    rollback: Option<RollbackStep>,
}

impl ChangeUnitInstance for FunctionUnit {
    fn run_step<'a>(&'a self, step: Step, cx: StepContext<'a>) -> StepOutput<'a> {
        match step {
            Step::Execution => match (self.execution)(cx) {
                Ok(future) => Some(future),
                Err(error) => step_failed(error),
            },
            Step::RollbackExecution => match self.rollback {
                Some(rollback) => rollback(RollbackCall::Run(cx)),
                None => succeeded(),
            },
            Step::BeforeExecution | Step::RollbackBeforeExecution => None,
        }
    }
}

/// A function a function unit names as its rollback (`rollback = path`): an `async fn` whose
/// parameters (up to four) are all owned injectable values such as `Database`, `Client`,
/// `Dep<T>` or `Option<..>` of those, returning `Result<(), E>` with `E: Into<BoxError>`.
///
/// The unit's macro sees only the function's path, so the parameters are resolved through
/// this trait rather than by the macro; `Args` is inferred.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the rollback of a function change unit",
    label = "not an `async fn` whose parameters are all owned injectable values",
    note = "a rollback function is an `async fn(..) -> Result<(), E>` taking up to four values such as `Database`, `Client`, `Dep<T>` or `Option<..>` of those; for references or the session, write the unit as a struct"
)]
pub trait RollbackFn<Args>: Copy + Send + Sync + 'static {
    /// Resolves the parameters from `cx` and calls the function; `name` describes the
    /// function in error messages.
    fn call<'a>(self, cx: StepContext<'a>, name: &'static str) -> StepOutput<'a>;

    /// The function's injection sites, each described as `site`.
    fn sites(site: &'static str) -> Vec<(Requirement, &'static str)>;
}

/// Answers `call` for the rollback function `f` of a function unit, described as `name` in
/// messages; see [`RollbackFn`].
pub fn rollback<'a, F: RollbackFn<Args>, Args>(
    f: F,
    call: RollbackCall<'a, '_>,
    name: &'static str,
) -> StepOutput<'a> {
    match call {
        RollbackCall::Run(cx) => f.call(cx, name),
        RollbackCall::Sites(list) => {
            list.extend(F::sites(name));
            None
        }
    }
}

macro_rules! rollback_fn {
    ($(($arg:ident, $marker:ident)),*) => {
        impl<F, Fut, E, $($arg, $marker),*> RollbackFn<($(($arg, $marker),)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Copy + Send + Sync + 'static,
            Fut: Future<Output = Result<(), E>> + Send + 'static,
            E: Into<BoxError> + 'static,
            $($arg: for<'d> Inject<'d, $marker>,)*
        {
            #[allow(unused_variables, non_snake_case)]
            fn call<'a>(self, cx: StepContext<'a>, name: &'static str) -> StepOutput<'a> {
                $(
                    let $arg = match inject::<$arg, $marker>(cx.deps(), cx.unit_id(), name) {
                        Ok(value) => value,
                        Err(error) => return step_failed(error),
                    };
                )*
                step_future(Box::pin(self($($arg),*)))
            }

            #[allow(unused_variables)]
            fn sites(site: &'static str) -> Vec<(Requirement, &'static str)> {
                vec![$((<$arg as Inject<'static, $marker>>::requirement(), site)),*]
            }
        }
    };
}

rollback_fn!();
rollback_fn!((A1, M1));
rollback_fn!((A1, M1), (A2, M2));
rollback_fn!((A1, M1), (A2, M2), (A3, M3));
rollback_fn!((A1, M1), (A2, M2), (A3, M3), (A4, M4));

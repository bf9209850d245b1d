//! The runner: configuration and the run state machine.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use crate::error::{Error, ExecutionError, MissingDependency};
use crate::history::{error_trace, EntryType, HistoryEntry, State, BEFORE_SUFFIX};
use crate::ids;
use crate::inject::Dependencies;
use crate::lock::{self, Lease, LockTiming};
use crate::plan::{Decision, Plan, PlanInput, PlannedUnit};
use crate::registry;
use crate::report::{Event, Outcome, Report, RunStatus, SkipReason, UnitReport};
use crate::store::{IntoStore, Store, StoreSettings};
use crate::unit::{BoxError, ChangeUnit, ChangeUnitInstance, Step, StepContext, DEFAULT_AUTHOR};
use crate::version::{Version, VersionWindow};

/// How executions are grouped into transactions when the store supports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionStrategy {
    /// One transaction per change unit: its execution and its history entry commit together.
    #[default]
    PerChangeUnit,
    /// One transaction for every pending execution of the run. Before-steps run first,
    /// outside it; a failure aborts every execution of the run.
    PerRun,
}

/// The smallest lock lease a runner accepts.
pub const MIN_LOCK_LEASE: Duration = Duration::from_secs(3);
/// The smallest pause between two lock attempts.
pub const MIN_LOCK_TRY_FREQUENCY: Duration = Duration::from_millis(500);
/// How often a transaction that fails with a transient error is tried in all.
const TRANSACTION_ATTEMPTS: usize = 5;

type Listener = Box<dyn Fn(&Event<'_>) + Send + Sync>;

/// Configures and runs the change units against a [`Store`].
///
/// Every setter documents its default, which is Mongock's.
#[must_use = "a runner does nothing until `.run().await`"]
pub struct Runner<S: Store> {
    store: S,
    settings: StoreSettings,
    enabled: bool,
    timing: LockTiming,
    fail_if_locked: bool,
    track_ignored: bool,
    allow_unknown_history: bool,
    versions: (String, Option<String>),
    service_identifier: Option<String>,
    metadata: Option<S::Metadata>,
    transactional: Option<bool>,
    strategy: TransactionStrategy,
    default_author: String,
    profiles: Vec<String>,
    deps: Dependencies,
    units: Option<Vec<&'static ChangeUnit>>,
    listeners: Vec<(EventKind, Listener)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Started,
    Succeeded,
    Failed,
}

impl<S: Store> fmt::Debug for Runner<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("settings", &self.settings)
            .field("enabled", &self.enabled)
            .field("timing", &self.timing)
            .field("fail_if_locked", &self.fail_if_locked)
            .field("track_ignored", &self.track_ignored)
            .field("allow_unknown_history", &self.allow_unknown_history)
            .field("versions", &self.versions)
            .field("transactional", &self.transactional)
            .field("strategy", &self.strategy)
            .field("profiles", &self.profiles)
            .field("dependencies", &self.deps)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Runner<S> {
    /// A runner over `store` (or anything that converts into one, such as `&Database` for the
    /// MongoDB store), with every option at its default.
    pub fn new(store: impl IntoStore<S>) -> Self {
        Runner {
            store: store.into_store(),
            settings: StoreSettings::default(),
            enabled: true,
            timing: LockTiming {
                lease: Duration::from_secs(60),
                quit_trying_after: Duration::from_secs(180),
                try_frequency: Duration::from_secs(1),
            },
            fail_if_locked: true,
            track_ignored: false,
            allow_unknown_history: false,
            versions: ("0".into(), None),
            service_identifier: None,
            metadata: None,
            transactional: None,
            strategy: TransactionStrategy::default(),
            default_author: DEFAULT_AUTHOR.into(),
            profiles: vec!["default".into()],
            deps: Dependencies::new(),
            units: None,
            listeners: Vec::new(),
        }
    }

    /// Whether the run does anything at all. Default: `true`.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Name of the history collection. Default: `"mongockChangeLog"`.
    pub fn change_log_collection(mut self, name: impl Into<String>) -> Self {
        self.settings.change_log_collection = name.into();
        self
    }

    /// Name of the lock collection. Default: `"mongockLock"`.
    pub fn lock_collection(mut self, name: impl Into<String>) -> Self {
        self.settings.lock_collection = name.into();
        self
    }

    /// Whether the store creates its indexes; when off they must exist. Default: `true`.
    pub fn index_creation(mut self, create: bool) -> Self {
        self.settings.index_creation = create;
        self
    }

    /// How long the lock is held without a refresh. Default: 60 s; at least 3 s.
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.timing.lease = lease;
        self
    }

    /// How long to keep trying while another runner holds the lock. Default: 3 min.
    pub fn lock_quit_trying_after(mut self, wait: Duration) -> Self {
        self.timing.quit_trying_after = wait;
        self
    }

    /// Pause between two lock attempts (never past the holder's expiry). Default: 1 s; at
    /// least 500 ms.
    pub fn lock_try_frequency(mut self, every: Duration) -> Self {
        self.timing.try_frequency = every;
        self
    }

    /// Whether an unavailable lock is an error; when `false` the run warns and returns a
    /// report with [`RunStatus::LockUnavailable`]. Default: `true`.
    pub fn fail_if_locked(mut self, fail: bool) -> Self {
        self.fail_if_locked = fail;
        self
    }

    /// Whether units skipped by system version or profile are recorded as `IGNORED`.
    /// Default: `false`.
    pub fn track_ignored(mut self, track: bool) -> Self {
        self.track_ignored = track;
        self
    }

    /// Whether history entries of Rust units that this binary does not contain are accepted.
    ///
    /// By default they fail the run with [`Error::UnknownHistory`]: the usual cause is a units
    /// crate the linker dropped, whose pending units would otherwise be skipped silently. Turn
    /// this on once units have been deleted from the code on purpose. Entries written by other
    /// runtimes (Java class names) are always accepted. Default: `false`.
    pub fn allow_unknown_history(mut self, allow: bool) -> Self {
        self.allow_unknown_history = allow;
        self
    }

    /// Runs only units with `start <= system_version < end` (Maven version order).
    /// Default: `"0"` to unbounded.
    pub fn system_versions(mut self, start: impl Into<String>, end: impl Into<String>) -> Self {
        self.versions = (start.into(), Some(end.into()));
        self
    }

    /// Runs only units with `system_version >= start`. Default: `"0"`.
    pub fn system_version_start(mut self, start: impl Into<String>) -> Self {
        self.versions.0 = start.into();
        self
    }

    /// Appended to the host name in `executionHostname`. Default: none.
    pub fn service_identifier(mut self, id: impl Into<String>) -> Self {
        self.service_identifier = Some(id.into());
        self
    }

    /// Recorded with every history entry of the run. Default: none.
    pub fn metadata(mut self, metadata: S::Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Forces transactions on (an error where the store cannot run them) or off. Default:
    /// on when the store supports them.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = Some(transactional);
        self
    }

    /// How executions are grouped into transactions. Default:
    /// [`TransactionStrategy::PerChangeUnit`].
    pub fn transaction_strategy(mut self, strategy: TransactionStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Author of units that do not name one. Default: `"default-author"`.
    pub fn default_author(mut self, author: impl Into<String>) -> Self {
        self.default_author = author.into();
        self
    }

    /// The active profiles. Default: `["default"]`.
    pub fn profiles<I, P>(mut self, profiles: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.profiles = profiles.into_iter().map(Into::into).collect();
        self
    }

    /// Registers a value that units receive as `Dep<T>`, `&T` or `Option<..>` of those.
    pub fn dependency<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.deps.insert(value);
        self
    }

    /// Runs these units instead of every unit registered in the binary.
    pub fn units(mut self, units: impl IntoIterator<Item = &'static ChangeUnit>) -> Self {
        self.units = Some(units.into_iter().collect());
        self
    }

    /// Called once the lock is held, before the first pending unit runs.
    pub fn on_started(mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.push((EventKind::Started, Box::new(f)));
        self
    }

    /// Called when the run succeeds.
    pub fn on_success(mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.push((EventKind::Succeeded, Box::new(f)));
        self
    }

    /// Called when the run fails.
    pub fn on_failure(mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.push((EventKind::Failed, Box::new(f)));
        self
    }

    /// The store, for store-specific settings.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Computes what a run would do, without taking the lock or running anything.
    pub async fn plan(mut self) -> Result<Plan, Error> {
        let (checked, history) = self.load().await?;
        Plan::new(&checked.input(&self), &history)
    }

    /// Validates the options and units, configures the store and reads the history.
    async fn load(&mut self) -> Result<(Checked, Vec<HistoryEntry<S::Metadata>>), Error> {
        let checked = self.check()?;
        self.store
            .configure(&self.settings)
            .map_err(|e| Error::store("configuring the store", e))?;
        let history = self
            .store
            .read_history()
            .await
            .map_err(|e| Error::store("reading the migration history", e))?;
        Ok((checked, history))
    }

    /// Runs every pending unit and returns what happened.
    ///
    /// When nothing is pending this reads the history once and returns, without taking the
    /// lock. Otherwise it takes the lock, re-reads the history, checks every dependency, runs
    /// the pending units in order and releases the lock on every path.
    pub async fn run(self) -> Result<Report, Error> {
        let started = Instant::now();
        let execution_id = ids::execution_id();
        if !self.enabled {
            tracing::info!("migrations are disabled; nothing to do");
            return Ok(Report {
                execution_id,
                status: RunStatus::Disabled,
                units: Vec::new(),
                elapsed: started.elapsed(),
            });
        }
        let mut runner = self;
        let listeners = std::mem::take(&mut runner.listeners);
        let emit = |kind: EventKind, event: Event<'_>| {
            for (k, listener) in &listeners {
                if *k == kind {
                    listener(&event);
                }
            }
        };
        let result = runner.run_inner(&execution_id, started, &emit).await;
        match &result {
            Ok(report) => emit(EventKind::Succeeded, Event::Succeeded(report)),
            Err(error) => emit(EventKind::Failed, Event::Failed(error)),
        }
        result
    }

    fn check(&self) -> Result<Checked, Error> {
        if self.timing.lease < MIN_LOCK_LEASE {
            return Err(Error::InvalidConfig {
                option: "lock_lease",
                reason: format!("{:?} is below the minimum of 3 s", self.timing.lease),
            });
        }
        if self.timing.try_frequency < MIN_LOCK_TRY_FREQUENCY {
            return Err(Error::InvalidConfig {
                option: "lock_try_frequency",
                reason: format!(
                    "{:?} is below the minimum of 500 ms",
                    self.timing.try_frequency
                ),
            });
        }
        if self.settings.change_log_collection.is_empty()
            || self.settings.lock_collection.is_empty()
        {
            return Err(Error::InvalidConfig {
                option: "change_log_collection",
                reason: "collection names must not be empty".into(),
            });
        }
        if self.settings.change_log_collection == self.settings.lock_collection {
            return Err(Error::InvalidConfig {
                option: "lock_collection",
                reason: format!(
                    "the lock and history collections must differ (both are `{}`)",
                    self.settings.lock_collection
                ),
            });
        }
        let parse = |text: &str| {
            Version::parse(text).map_err(|e| Error::InvalidConfig {
                option: "system_versions",
                reason: e.to_string(),
            })
        };
        let start = parse(&self.versions.0)?;
        let end = self.versions.1.as_deref().map(parse).transpose()?;
        let units = match &self.units {
            Some(units) => units.clone(),
            None => registry::registered().iter().collect(),
        };
        registry::validate(&units, &self.default_author)?;
        Ok(Checked {
            units,
            window: VersionWindow::new(start, end),
        })
    }

    async fn run_inner(
        mut self,
        execution_id: &str,
        started: Instant,
        emit: &(dyn Fn(EventKind, Event<'_>) + Sync),
    ) -> Result<Report, Error> {
        let (checked, history) = self.load().await?;
        if !self.allow_unknown_history {
            check_unknown_history(&checked.units, &history)?;
        }
        let plan = Plan::new(&checked.input(&self), &history)?;
        if !plan.has_pending() {
            tracing::info!("no pending change units");
            return Ok(report_of(
                &plan,
                execution_id,
                RunStatus::Completed,
                started,
            ));
        }

        let mut deps = std::mem::take(&mut self.deps);
        self.store.provide(&mut deps);
        preflight(&plan, &deps)?;
        self.store
            .prepare()
            .await
            .map_err(|e| Error::store("preparing the history and lock collections", e))?;
        let transactions = self.transactions_enabled(&plan).await?;

        let store = Arc::new(self.store);
        let owner = ids::lock_owner();
        let Some(lease) = lock::acquire(&store, &owner, self.timing, self.fail_if_locked).await?
        else {
            return Ok(report_of(
                &plan,
                execution_id,
                RunStatus::LockUnavailable,
                started,
            ));
        };

        let execution = Execution {
            store: &store,
            lease: &lease,
            deps: &deps,
            execution_id,
            hostname: ids::hostname(self.service_identifier.as_deref()),
            metadata: self.metadata.clone(),
            transactions,
            strategy: self.strategy,
        };
        let input = checked.input_parts(&self.profiles, &self.default_author);
        let result = execution.run(&input, self.track_ignored, emit).await;
        let released = lease.release().await;
        let units = result?;
        if let Err(error) = released {
            tracing::warn!(%error, "the migration lock could not be released; it expires with its lease");
        }
        Ok(Report {
            execution_id: execution_id.to_owned(),
            status: RunStatus::Completed,
            units,
            elapsed: started.elapsed(),
        })
    }

    async fn transactions_enabled(&self, plan: &Plan) -> Result<bool, Error> {
        let wanted = plan.pending().any(|p| p.unit.transactional());
        match self.transactional {
            Some(false) => Ok(false),
            None if !wanted => Ok(false),
            forced => {
                let supported = self
                    .store
                    .supports_transactions()
                    .await
                    .map_err(|e| Error::store("detecting transaction support", e))?;
                if forced == Some(true) && !supported {
                    return Err(Error::TransactionsUnsupported {
                        reason: self.store.transactions_unsupported_reason(),
                    });
                }
                Ok(supported && wanted)
            }
        }
    }
}

struct Checked {
    units: Vec<&'static ChangeUnit>,
    window: VersionWindow,
}

impl Checked {
    fn input<'a, S: Store>(&'a self, runner: &'a Runner<S>) -> PlanInput<'a> {
        self.input_parts(&runner.profiles, &runner.default_author)
    }

    fn input_parts<'a>(&'a self, profiles: &'a [String], default_author: &'a str) -> PlanInput<'a> {
        PlanInput {
            units: &self.units,
            window: &self.window,
            profiles,
            default_author,
        }
    }
}

/// The report of a plan before anything ran: pending units are `NotRun`.
fn report_of(plan: &Plan, execution_id: &str, status: RunStatus, started: Instant) -> Report {
    Report {
        execution_id: execution_id.to_owned(),
        status,
        units: plan
            .units()
            .iter()
            .map(|p| unit_report(p, planned_outcome(&p.decision), None))
            .collect(),
        elapsed: started.elapsed(),
    }
}

fn planned_outcome(decision: &Decision) -> Outcome {
    match decision {
        Decision::Skip(reason) => Outcome::Skipped(reason.clone()),
        Decision::Run | Decision::RunAgain => Outcome::NotRun,
    }
}

fn unit_report(p: &PlannedUnit, outcome: Outcome, elapsed: Option<Duration>) -> UnitReport {
    UnitReport {
        id: p.unit.id().to_owned(),
        author: p.author.clone(),
        order: p.unit.order().to_owned(),
        outcome,
        elapsed,
    }
}

/// Fails when the history records units of Rust code (type paths with `::`) that are not in
/// the binary: the usual sign of a units crate the linker dropped. Entries written by other
/// runtimes (Java class names) are left alone.
fn check_unknown_history<M>(
    units: &[&'static ChangeUnit],
    history: &[HistoryEntry<M>],
) -> Result<(), Error> {
    let known: HashSet<&str> = units.iter().map(|u| u.id()).collect();
    let mut unknown: Vec<String> = history
        .iter()
        .filter(|e| e.state == State::Executed && e.change_log_class.contains("::"))
        .filter(|e| {
            let id = e
                .change_id
                .strip_suffix(BEFORE_SUFFIX)
                .unwrap_or(&e.change_id);
            !known.contains(id) && !known.contains(e.change_id.as_str())
        })
        .map(|e| format!("`{}` ({})", e.change_id, e.change_log_class))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    unknown.dedup();
    Err(Error::UnknownHistory { ids: unknown })
}

/// Checks every pending unit's injection sites against the dependency map.
fn preflight(plan: &Plan, deps: &Dependencies) -> Result<(), Error> {
    let missing: Vec<MissingDependency> = plan
        .pending()
        .flat_map(|p| {
            p.unit
                .requirements()
                .into_iter()
                .filter(|(req, _)| !req.optional && !req.session && !deps.contains(req.type_id))
                .map(|(req, site)| MissingDependency {
                    unit_id: p.unit.id().to_owned(),
                    type_name: req.type_name,
                    site,
                })
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingDependencies(missing))
    }
}

/// One run with the lock held.
struct Execution<'r, S: Store> {
    store: &'r Arc<S>,
    lease: &'r Lease<S>,
    deps: &'r Dependencies,
    execution_id: &'r str,
    hostname: String,
    metadata: Option<S::Metadata>,
    transactions: bool,
    strategy: TransactionStrategy,
}

/// A step that failed, with what its rollbacks did.
struct Failure {
    step: Step,
    error: BoxError,
    rollback_errors: Vec<(Step, BoxError)>,
    rolled_back: bool,
}

enum UnitError {
    Failed(Failure),
    Fatal(Error),
}

impl From<Error> for UnitError {
    fn from(error: Error) -> Self {
        UnitError::Fatal(error)
    }
}

impl<S: Store> Execution<'_, S> {
    async fn run(
        &self,
        input: &PlanInput<'_>,
        track_ignored: bool,
        emit: &(dyn Fn(EventKind, Event<'_>) + Sync),
    ) -> Result<Vec<UnitReport>, Error> {
        let history = self
            .store
            .read_history()
            .await
            .map_err(|e| Error::store("reading the migration history", e))?;
        let plan = Plan::new(input, &history)?;
        // Another runner may have rolled units back since the first read.
        preflight(&plan, self.deps)?;
        let pending: Vec<&str> = plan.pending().map(|p| p.unit.id()).collect();
        emit(
            EventKind::Started,
            Event::Started {
                execution_id: self.execution_id,
                pending: &pending,
            },
        );
        if track_ignored {
            self.record_ignored(&plan).await?;
        }
        if self.transactions && self.strategy == TransactionStrategy::PerRun {
            return self.run_in_one_transaction(&plan).await;
        }
        let mut reports = Vec::with_capacity(plan.units().len());
        for planned in plan.units() {
            if !planned.is_pending() {
                reports.push(unit_report(
                    planned,
                    planned_outcome(&planned.decision),
                    None,
                ));
                continue;
            }
            self.check_lease(planned)?;
            let started = Instant::now();
            let span = tracing::info_span!("change_unit", id = planned.unit.id(), author = %planned.author);
            let outcome = self.run_unit(planned).instrument(span).await;
            let elapsed = Some(started.elapsed());
            match outcome {
                Ok(()) => {
                    let outcome = match planned.decision {
                        Decision::RunAgain => Outcome::ExecutedAgain,
                        _ => Outcome::Executed,
                    };
                    reports.push(unit_report(planned, outcome, elapsed));
                }
                Err(UnitError::Fatal(error)) => return Err(error),
                Err(UnitError::Failed(failure)) if planned.unit.fail_fast() => {
                    return Err(execution_error(planned, failure));
                }
                Err(UnitError::Failed(failure)) => {
                    let rolled_back = failure.rolled_back;
                    let error = execution_error(planned, failure).to_string();
                    tracing::warn!(id = planned.unit.id(), %error, "change unit failed; fail_fast is off, continuing");
                    reports.push(unit_report(
                        planned,
                        Outcome::Failed { error, rolled_back },
                        elapsed,
                    ));
                }
            }
        }
        Ok(reports)
    }

    fn check_lease(&self, planned: &PlannedUnit) -> Result<(), Error> {
        if self.lease.is_lost() {
            return Err(Error::LockLost {
                unit_id: Some(planned.unit.id().to_owned()),
            });
        }
        Ok(())
    }

    async fn record_ignored(&self, plan: &Plan) -> Result<(), Error> {
        for planned in plan.units() {
            if matches!(
                planned.decision,
                Decision::Skip(SkipReason::Profile | SkipReason::SystemVersion { .. })
            ) {
                let entry = self.entry(planned, EntryType::Execution, State::Ignored, None, None);
                self.write(&entry, None).await?;
            }
        }
        Ok(())
    }

    /// Runs one unit: before-step, execution, history entries, rollbacks on failure.
    async fn run_unit(&self, planned: &PlannedUnit) -> Result<(), UnitError> {
        let unit = planned.unit;
        let instance = unit.instantiate(self.deps).map_err(|error| {
            UnitError::Failed(Failure {
                step: Step::Execution,
                error,
                rollback_errors: Vec::new(),
                rolled_back: true,
            })
        })?;
        let mut session = self.session().await?;
        let record = planned.decision == Decision::Run;

        let before_ran = self
            .run_before(planned, &*instance, &mut session, record)
            .await?;
        let result = if self.transactions && unit.transactional() {
            self.execute_in_transaction(planned, &*instance, &mut session, record)
                .await
        } else {
            self.execute_plain(planned, &*instance, &mut session, record)
                .await
        };
        match result {
            Ok(()) => Ok(()),
            Err(UnitError::Failed(mut failure)) => {
                if before_ran {
                    self.rollback_before(planned, &*instance, &mut session, &mut failure)
                        .await?;
                }
                Err(UnitError::Failed(failure))
            }
            Err(fatal) => Err(fatal),
        }
    }

    /// Runs the before-step, if any; on failure records it and rolls it back.
    async fn run_before(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
        record: bool,
    ) -> Result<bool, UnitError> {
        let started = Instant::now();
        let Some(result) = self
            .step(planned.unit, instance, Step::BeforeExecution, session)
            .await
        else {
            return Ok(false);
        };
        match result {
            Ok(()) => {
                if record {
                    let entry = self.entry(
                        planned,
                        EntryType::BeforeExecution,
                        State::Executed,
                        Some(started.elapsed()),
                        None,
                    );
                    self.write(&entry, None).await?;
                }
                Ok(true)
            }
            Err(error) => {
                let trace = error.to_string();
                let entry = self.entry(
                    planned,
                    EntryType::BeforeExecution,
                    State::Failed,
                    None,
                    Some(error_trace(&trace, None)),
                );
                self.write(&entry, None).await?;
                let mut failure = Failure {
                    step: Step::BeforeExecution,
                    error,
                    rollback_errors: Vec::new(),
                    rolled_back: true,
                };
                self.rollback_before(planned, instance, session, &mut failure)
                    .await?;
                Err(UnitError::Failed(failure))
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
            .step(
                planned.unit,
                instance,
                Step::RollbackBeforeExecution,
                session,
            )
            .await
        else {
            return Ok(());
        };
        let before_failed = failure.step == Step::BeforeExecution;
        let (state, trace) = match &result {
            Ok(()) => (State::RolledBack, None),
            Err(rollback) => (State::RollbackFailed, Some(rollback.to_string())),
        };
        let execution_trace = if before_failed {
            failure.error.to_string()
        } else {
            format!("rolled back after `#[execution]` failed: {}", failure.error)
        };
        let entry = self.entry(
            planned,
            EntryType::BeforeExecution,
            state,
            None,
            Some(error_trace(&execution_trace, trace.as_deref())),
        );
        self.write(&entry, None).await?;
        if let Err(rollback) = result {
            failure.rolled_back = false;
            failure
                .rollback_errors
                .push((Step::RollbackBeforeExecution, rollback));
        }
        Ok(())
    }

    /// Runs the execution without a transaction; on failure runs `#[rollback_execution]`.
    async fn execute_plain(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
        record: bool,
    ) -> Result<(), UnitError> {
        let started = Instant::now();
        let result = self
            .step(planned.unit, instance, Step::Execution, session)
            .await
            .unwrap_or_else(|| Err(missing_step(planned.unit, Step::Execution)));
        let error = match result {
            Ok(()) => {
                if record {
                    let entry = self.entry(
                        planned,
                        EntryType::Execution,
                        State::Executed,
                        Some(started.elapsed()),
                        None,
                    );
                    self.write(&entry, None).await?;
                }
                return Ok(());
            }
            Err(error) => error,
        };
        let message = error.to_string();
        let failed = self.entry(
            planned,
            EntryType::Execution,
            State::Failed,
            None,
            Some(error_trace(&message, None)),
        );
        self.write(&failed, None).await?;
        let mut failure = Failure {
            step: Step::Execution,
            error,
            rollback_errors: Vec::new(),
            rolled_back: true,
        };
        let rollback = self
            .step(planned.unit, instance, Step::RollbackExecution, session)
            .await
            .unwrap_or(Ok(()));
        let (state, rollback_trace) = match &rollback {
            Ok(()) => (State::RolledBack, None),
            Err(e) => (State::RollbackFailed, Some(e.to_string())),
        };
        let entry = self.entry(
            planned,
            EntryType::Execution,
            state,
            None,
            Some(error_trace(&message, rollback_trace.as_deref())),
        );
        self.write(&entry, None).await?;
        if let Err(e) = rollback {
            failure.rolled_back = false;
            failure.rollback_errors.push((Step::RollbackExecution, e));
        }
        Err(UnitError::Failed(failure))
    }

    /// Runs the execution and its history entry in one fenced transaction, retrying
    /// transient failures.
    async fn execute_in_transaction(
        &self,
        planned: &PlannedUnit,
        instance: &dyn ChangeUnitInstance,
        session: &mut S::Session,
        record: bool,
    ) -> Result<(), UnitError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            self.store
                .start_transaction(session)
                .await
                .map_err(|e| Error::store("starting a transaction", e))?;
            let result = self
                .step(planned.unit, instance, Step::Execution, session)
                .await
                .unwrap_or_else(|| Err(missing_step(planned.unit, Step::Execution)));
            let error = match result {
                Ok(()) => {
                    let entry = record.then(|| {
                        self.entry(
                            planned,
                            EntryType::Execution,
                            State::Executed,
                            Some(started.elapsed()),
                            None,
                        )
                    });
                    match self.commit(planned, session, entry.as_ref()).await {
                        Ok(()) => return Ok(()),
                        Err(CommitError::Fatal(error)) => return Err(UnitError::Fatal(error)),
                        Err(CommitError::Failed(error)) => error,
                    }
                }
                Err(error) => {
                    if let Err(abort) = self.store.abort_transaction(session).await {
                        tracing::warn!(error = %abort, "aborting the transaction failed");
                    }
                    error
                }
            };
            if self.lease.is_lost() {
                return Err(UnitError::Fatal(Error::LockLost {
                    unit_id: Some(planned.unit.id().to_owned()),
                }));
            }
            if self.store.is_transient(&error) && attempt < TRANSACTION_ATTEMPTS {
                tracing::info!(id = planned.unit.id(), attempt, %error, "transient transaction error; retrying the change unit");
                continue;
            }
            let message = error.to_string();
            let failed = self.entry(
                planned,
                EntryType::Execution,
                State::Failed,
                None,
                Some(error_trace(&message, None)),
            );
            self.write(&failed, None).await?;
            return Err(UnitError::Failed(Failure {
                step: Step::Execution,
                error,
                rollback_errors: Vec::new(),
                rolled_back: true,
            }));
        }
    }

    /// Fences the lock, writes the entry and commits. The transaction is aborted on any
    /// failure before the commit.
    async fn commit(
        &self,
        planned: &PlannedUnit,
        session: &mut S::Session,
        entry: Option<&HistoryEntry<S::Metadata>>,
    ) -> Result<(), CommitError> {
        let fenced = self.store.fence_lock(session, &self.lease.claim()).await;
        let writes = match fenced {
            Ok(true) => match entry {
                Some(entry) => self.store.write_entry(entry, Some(session)).await,
                None => Ok(()),
            },
            Ok(false) => {
                self.abort(session).await;
                self.lease.mark_lost();
                return Err(CommitError::Fatal(Error::LockLost {
                    unit_id: Some(planned.unit.id().to_owned()),
                }));
            }
            Err(error) => Err(error),
        };
        if let Err(error) = writes {
            self.abort(session).await;
            return Err(CommitError::Failed(error));
        }
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
                    return Err(CommitError::Failed(error));
                }
            }
        }
    }

    async fn abort(&self, session: &mut S::Session) {
        if let Err(error) = self.store.abort_transaction(session).await {
            tracing::debug!(%error, "aborting the transaction failed");
        }
    }

    /// Every before-step first, then every execution in one transaction.
    async fn run_in_one_transaction(&self, plan: &Plan) -> Result<Vec<UnitReport>, Error> {
        let pending: Vec<&PlannedUnit> = plan.pending().collect();
        let mut instances = Vec::with_capacity(pending.len());
        let mut session = self.session().await?;
        let mut befores: Vec<(&PlannedUnit, usize)> = Vec::new();
        let mut timings = vec![Duration::ZERO; pending.len()];
        for (index, planned) in pending.iter().enumerate() {
            self.check_lease(planned)?;
            let instance = planned.unit.instantiate(self.deps).map_err(|error| {
                execution_error(
                    planned,
                    Failure {
                        step: Step::Execution,
                        error,
                        rollback_errors: Vec::new(),
                        rolled_back: true,
                    },
                )
            })?;
            let started = Instant::now();
            let record = planned.decision == Decision::Run;
            match self
                .run_before(planned, &*instance, &mut session, record)
                .await
            {
                Ok(true) => befores.push((planned, index)),
                Ok(false) => {}
                Err(UnitError::Fatal(error)) => return Err(error),
                Err(UnitError::Failed(failure)) => {
                    return Err(self
                        .unwind_befores(planned, &befores, &instances, &mut session, failure)
                        .await)
                }
            }
            timings[index] += started.elapsed();
            instances.push(instance);
        }

        let mut attempt = 0;
        let failure = 'retry: loop {
            attempt += 1;
            self.store
                .start_transaction(&mut session)
                .await
                .map_err(|e| Error::store("starting a transaction", e))?;
            let mut entries = Vec::new();
            for (index, planned) in pending.iter().enumerate() {
                let started = Instant::now();
                let result = self
                    .step(
                        planned.unit,
                        &*instances[index],
                        Step::Execution,
                        &mut session,
                    )
                    .await
                    .unwrap_or_else(|| Err(missing_step(planned.unit, Step::Execution)));
                if let Err(error) = result {
                    self.abort(&mut session).await;
                    if self.store.is_transient(&error) && attempt < TRANSACTION_ATTEMPTS {
                        continue 'retry;
                    }
                    break 'retry Some((index, error));
                }
                let elapsed = started.elapsed();
                timings[index] += elapsed;
                if planned.decision == Decision::Run {
                    entries.push(self.entry(
                        planned,
                        EntryType::Execution,
                        State::Executed,
                        Some(elapsed),
                        None,
                    ));
                }
            }
            let mut written = Ok(());
            for entry in &entries {
                written = self.store.write_entry(entry, Some(&mut session)).await;
                if written.is_err() {
                    break;
                }
            }
            let last = pending.last().expect("a run has pending units");
            let committed = match written {
                Ok(()) => match self.commit(last, &mut session, None).await {
                    Ok(()) => Ok(()),
                    Err(CommitError::Fatal(error)) => return Err(error),
                    Err(CommitError::Failed(error)) => Err(error),
                },
                Err(error) => {
                    self.abort(&mut session).await;
                    Err(error)
                }
            };
            match committed {
                Ok(()) => break None,
                Err(error) if self.store.is_transient(&error) && attempt < TRANSACTION_ATTEMPTS => {
                    continue;
                }
                Err(error) => break Some((pending.len() - 1, error)),
            }
        };

        if let Some((index, error)) = failure {
            let planned = pending[index];
            let entry = self.entry(
                planned,
                EntryType::Execution,
                State::Failed,
                None,
                Some(error_trace(&error.to_string(), None)),
            );
            self.write(&entry, None).await?;
            let failure = Failure {
                step: Step::Execution,
                error,
                rollback_errors: Vec::new(),
                rolled_back: true,
            };
            return Err(self
                .unwind_befores(planned, &befores, &instances, &mut session, failure)
                .await);
        }

        let mut timings = timings.into_iter();
        Ok(plan
            .units()
            .iter()
            .map(|planned| match planned.decision {
                Decision::Skip(ref reason) => {
                    unit_report(planned, Outcome::Skipped(reason.clone()), None)
                }
                Decision::Run => unit_report(planned, Outcome::Executed, timings.next()),
                Decision::RunAgain => unit_report(planned, Outcome::ExecutedAgain, timings.next()),
            })
            .collect())
    }

    /// Rolls back completed before-steps in reverse order and builds the run's error for
    /// `failed`.
    async fn unwind_befores(
        &self,
        failed: &PlannedUnit,
        befores: &[(&PlannedUnit, usize)],
        instances: &[Box<dyn ChangeUnitInstance>],
        session: &mut S::Session,
        mut failure: Failure,
    ) -> Error {
        for (planned, index) in befores.iter().rev() {
            if let Err(error) = self
                .rollback_before(planned, &*instances[*index], session, &mut failure)
                .await
            {
                return error;
            }
        }
        execution_error(failed, failure)
    }

    async fn session(&self) -> Result<S::Session, Error> {
        self.store
            .start_session()
            .await
            .map_err(|e| Error::store("starting a session", e))
    }

    /// Runs one step of a unit, turning a panic into an error. `None` when the unit has no
    /// such step.
    async fn step(
        &self,
        unit: &ChangeUnit,
        instance: &dyn ChangeUnitInstance,
        step: Step,
        session: &mut S::Session,
    ) -> Option<Result<(), BoxError>> {
        let cx = StepContext::new(unit.id(), self.deps, Some(session as &mut (dyn Any + Send)));
        let future = instance.run_step(step, cx)?;
        tracing::debug!(step = step.attribute(), "running step");
        Some(match CatchUnwind(future).await {
            Ok(result) => result,
            Err(panic) => Err(format!("panicked: {}", panic_message(&*panic)).into()),
        })
    }

    fn entry(
        &self,
        planned: &PlannedUnit,
        entry_type: EntryType,
        state: State,
        elapsed: Option<Duration>,
        error_trace: Option<String>,
    ) -> HistoryEntry<S::Metadata> {
        let unit = planned.unit;
        let (change_id, method) = match entry_type {
            EntryType::Execution => (unit.id().to_owned(), unit.execution_method()),
            EntryType::BeforeExecution => (
                format!("{}{BEFORE_SUFFIX}", unit.id()),
                unit.before_method().unwrap_or_default(),
            ),
        };
        HistoryEntry {
            execution_id: self.execution_id.to_owned(),
            change_id,
            author: planned.author.clone(),
            timestamp: SystemTime::now(),
            state,
            entry_type,
            change_log_class: unit.type_path().to_owned(),
            change_set_method: method.to_owned(),
            metadata: self.metadata.clone(),
            execution_millis: match (state, elapsed) {
                (State::Executed, Some(elapsed)) => {
                    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
                }
                _ => -1,
            },
            execution_hostname: self.hostname.clone(),
            error_trace,
            system_change: false,
            checksum: Some(unit.checksum()),
        }
    }

    async fn write(
        &self,
        entry: &HistoryEntry<S::Metadata>,
        session: Option<&mut S::Session>,
    ) -> Result<(), Error> {
        self.store.write_entry(entry, session).await.map_err(|e| {
            Error::store(
                format!(
                    "recording `{}` as {} in the history",
                    entry.change_id, entry.state
                ),
                e,
            )
        })
    }
}

enum CommitError {
    Failed(BoxError),
    Fatal(Error),
}

fn execution_error(planned: &PlannedUnit, failure: Failure) -> Error {
    Error::Execution(Box::new(ExecutionError {
        unit_id: planned.unit.id().to_owned(),
        step: failure.step,
        source: failure.error,
        rollback_errors: failure.rollback_errors,
        rolled_back: failure.rolled_back,
    }))
}

fn missing_step(unit: &ChangeUnit, step: Step) -> BoxError {
    format!(
        "change unit `{}` has no `#[{}]` method",
        unit.id(),
        step.attribute()
    )
    .into()
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

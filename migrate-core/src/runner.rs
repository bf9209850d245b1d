//! The runner: its builder, the dry run, and a run up to the point where the lock is taken.

mod operations;
mod options;
mod transactions;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::context::{Progress, ProgressListener, RunContext};
use crate::drift::{self, ChecksumPolicy};
use crate::error::Error;
use crate::event::{Event, Listeners};
use crate::execution::{Execution, RunRecord};
use crate::ids;
use crate::inject::Dependencies;
use crate::legacy::{Importer, LegacyMigration};
use crate::lock;
use crate::plan::{check_unknown_history, Plan, PlanInput};
use crate::report::{Report, RunStatus, UnitReport};
use crate::store::{IntoStore, LockStore, Store, TransactionStore};
use crate::unit::ChangeUnit;

use options::Options;
pub use options::{MIN_LOCK_LEASE, MIN_LOCK_TRY_FREQUENCY};
use transactions::{check_strategy, transactions_enabled};

/// How executions are grouped into transactions when the store supports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionStrategy {
    /// One transaction per change unit: its execution and its history entry commit together.
    #[default]
    PerChangeUnit,
    /// One transaction for every pending execution of the run. Before-steps run first,
    /// outside it; a failure aborts every execution of the run. A run with a pending unit
    /// that sets `transactional = false` is refused before anything runs
    /// ([`Error::InvalidConfig`]): its writes would be left in place when the transaction
    /// aborts.
    PerRun,
}

/// Configures and runs the change units against a [`Store`].
///
/// Every setter documents its default, which is Mongock's. The store's own settings
/// (collection names, index creation) are set on the store.
#[must_use = "a runner does nothing until `.run().await`"]
pub struct Runner<S: Store> {
    store: S,
    options: Options,
    metadata: Option<S::Metadata>,
    deps: Dependencies,
    listeners: Listeners,
    progress: Vec<ProgressListener>,
}

impl<S: Store> fmt::Debug for Runner<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("options", &self.options)
            .field("metadata", &self.metadata)
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
            options: Options::default(),
            metadata: None,
            deps: Dependencies::new(),
            listeners: Listeners::default(),
            progress: Vec::new(),
        }
    }

    /// Whether the run does anything at all. Default: `true`.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.options.enabled = enabled;
        self
    }

    /// How long the lock is held without a refresh. Default: 60 s; at least 3 s.
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.options.timing.lease = lease;
        self
    }

    /// How long to keep trying while another runner holds the lock. Default: 3 min.
    pub fn lock_quit_trying_after(mut self, wait: Duration) -> Self {
        self.options.timing.quit_trying_after = wait;
        self
    }

    /// Pause between two lock attempts (never past the holder's expiry). Default: 1 s; at
    /// least 500 ms.
    pub fn lock_try_frequency(mut self, every: Duration) -> Self {
        self.options.timing.try_frequency = every;
        self
    }

    /// How long transient failures (write conflicts, a failover, a lost connection) are
    /// retried, with exponential backoff and jitter, before the unit fails. Other errors fail
    /// at once. Default: 2 min.
    pub fn retry_deadline(mut self, deadline: Duration) -> Self {
        self.options.retry_deadline = deadline;
        self
    }

    /// Whether an unavailable lock is an error; when `false` the run warns and returns a
    /// report with [`RunStatus::LockUnavailable`]. Default: `true`.
    pub fn fail_if_locked(mut self, fail: bool) -> Self {
        self.options.fail_if_locked = fail;
        self
    }

    /// Whether units skipped by system version or profile are recorded as `IGNORED`.
    /// Default: `false`.
    pub fn track_ignored(mut self, track: bool) -> Self {
        self.options.track_ignored = track;
        self
    }

    /// Whether history entries of Rust units that this binary does not contain are accepted.
    ///
    /// By default they fail the run with [`Error::UnknownHistory`]: the usual cause is a units
    /// crate the linker dropped, whose pending units would otherwise be skipped silently. Turn
    /// this on once units have been deleted from the code on purpose. Entries written by other
    /// runtimes (Java class names) are always accepted. Default: `false`.
    pub fn allow_unknown_history(mut self, allow: bool) -> Self {
        self.options.allow_unknown_history = allow;
        self
    }

    /// Runs only units with `start <= system_version < end` (Maven version order).
    /// Default: `"0"` to unbounded. A start that is not below the end leaves no unit in the
    /// window: the run fails with [`Error::InvalidConfig`] before it reads anything.
    pub fn system_versions(mut self, start: impl Into<String>, end: impl Into<String>) -> Self {
        self.options.versions = (start.into(), Some(end.into()));
        self
    }

    /// Runs only units with `system_version >= start`. Default: `"0"`.
    pub fn system_version_start(mut self, start: impl Into<String>) -> Self {
        self.options.versions.0 = start.into();
        self
    }

    /// Appended to the host name in `executionHostname`. Default: none.
    pub fn service_identifier(mut self, id: impl Into<String>) -> Self {
        self.options.service_identifier = Some(id.into());
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
        self.options.transactional = Some(transactional);
        self
    }

    /// How executions are grouped into transactions. Default:
    /// [`TransactionStrategy::PerChangeUnit`].
    pub fn transaction_strategy(mut self, strategy: TransactionStrategy) -> Self {
        self.options.strategy = strategy;
        self
    }

    /// Author of units that do not name one. Default: `"default-author"`. An empty or
    /// whitespace-only author fails the run with [`Error::InvalidConfig`].
    pub fn default_author(mut self, author: impl Into<String>) -> Self {
        self.options.default_author = author.into();
        self
    }

    /// The active profiles. Default: `["default"]`.
    pub fn profiles<I, P>(mut self, profiles: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.options.profiles = profiles.into_iter().map(Into::into).collect();
        self
    }

    /// What a run does about applied units whose code changed since they ran. Default:
    /// [`ChecksumPolicy::Warn`].
    pub fn checksum_policy(mut self, policy: ChecksumPolicy) -> Self {
        self.options.checksum_policy = policy;
        self
    }

    /// Registers a value that units receive as `Dep<T>`, `&T` or `Option<..>` of those.
    pub fn dependency<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.deps.insert(value);
        self
    }

    /// Imports an earlier tool's history (mongobee's or Mongock 3's `dbchangelog`) before
    /// anything else runs, so that the changes it records count as applied: Mongock 5's
    /// legacy migration, recorded as its system change `mongock-legacy-migration`. Runs once
    /// unless [`LegacyMigration::run_always`] is set; never writes to the earlier history.
    /// Default: no import.
    pub fn legacy_migration(mut self, legacy: LegacyMigration) -> Self {
        self.options.legacy = Some(legacy);
        self
    }

    /// Runs these units instead of every unit registered in the binary. An empty list fails
    /// the run with [`Error::InvalidConfig`].
    pub fn units(mut self, units: impl IntoIterator<Item = &'static ChangeUnit>) -> Self {
        self.options.units = Some(units.into_iter().collect());
        self
    }

    /// Called once the lock is held, before the first pending unit runs.
    pub fn on_started(mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.on_started(f);
        self
    }

    /// Called when the run succeeds.
    pub fn on_success(mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.on_success(f);
        self
    }

    /// Called with every progress report of a long unit (see
    /// [`RunContext::report_progress`]).
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress.push(Box::new(f));
        self
    }

    /// Called when the run fails.
    pub fn on_failure(mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.on_failure(f);
        self
    }

    /// Called with [`Event::UnitStarted`] before each unit of a run or an undo, and with
    /// [`Event::UnitFinished`] when it is done: a progress display, per-unit metrics.
    pub fn on_unit(mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.on_unit(f);
        self
    }
}

impl<S: TransactionStore + LockStore> Runner<S> {
    /// Runs every pending unit and returns what happened.
    ///
    /// When nothing is pending this reads the history once and returns, without taking the
    /// lock. Otherwise it takes the lock, re-reads the history, checks every dependency, runs
    /// the pending units in order and releases the lock on every path.
    pub async fn run(self) -> Result<Report, Error> {
        S::run_runner(self).await
    }

    /// The body of [`run`](Self::run), for [`TransactionStore::run_runner`].
    #[doc(hidden)]
    pub async fn run_here(mut self) -> Result<Report, Error> {
        let started = Instant::now();
        let execution_id = ids::execution_id();
        if !self.options.enabled {
            tracing::info!("migrations are disabled; nothing to do");
            return Ok(Report::empty(execution_id, RunStatus::Disabled, started));
        }
        let listeners = std::mem::take(&mut self.listeners);
        let span = tracing::info_span!("migrate_run", execution_id = %execution_id);
        let result = self
            .run_enabled(execution_id, started, &listeners)
            .instrument(span.clone())
            .await;
        let _span = span.enter();
        match &result {
            Ok(report) => {
                tracing::info!(
                    applied = report.executed().len(),
                    skipped = report.skipped().count(),
                    ms = report.elapsed.as_millis() as u64,
                    status = crate::text::run_status_text(report.status),
                    "migration run finished"
                );
                listeners.emit(&Event::Succeeded(report));
            }
            Err(error) => {
                tracing::error!(error = %crate::error::Chain(error), "migration run failed");
                listeners.emit(&Event::Failed(error));
            }
        }
        result
    }

    /// The unlocked first read; when something is pending, the checks, the lock and the
    /// locked execution.
    async fn run_enabled(
        self,
        execution_id: String,
        started: Instant,
        listeners: &Listeners,
    ) -> Result<Report, Error> {
        let Runner {
            store,
            options,
            metadata,
            mut deps,
            progress,
            ..
        } = self;
        let input = options.check()?;
        store
            .check_settings()
            .map_err(|e| Error::store("checking the store settings", e))?;
        let history = store
            .read_history_for_planning()
            .await
            .map_err(|e| Error::store("reading the migration history", e))?;
        let plan = Plan::new(&input, history.rows())?;
        if !options.allow_unknown_history {
            check_unknown_history(&plan, history.rows())?;
        }
        drift::enforce(&plan, options.checksum_policy)?;
        if !plan.has_pending() {
            tracing::info!("no pending change units");
            return Ok(Report::before_running(
                &plan,
                execution_id,
                RunStatus::Completed,
                started,
            ));
        }

        let context = provide(&store, &mut deps, progress, options.retry_deadline);
        plan.check_dependencies(&[&deps])?;
        store
            .prepare()
            .await
            .map_err(|e| Error::store("preparing the history and lock collections", e))?;
        let transactions = transactions_enabled(&store, options.transactional, &plan).await?;
        check_strategy(options.strategy, transactions, &plan)?;

        let store = Arc::new(store);
        if let Some(legacy) = &options.legacy {
            deps.insert(Importer::new(store.clone(), legacy.clone(), &execution_id));
        }
        let owner = ids::lock_owner();
        let Some(lease) =
            lock::acquire(&store, &owner, options.timing, options.fail_if_locked).await?
        else {
            return Ok(Report::before_running(
                &plan,
                execution_id,
                RunStatus::LockUnavailable,
                started,
            ));
        };

        context.attach(lease.check(), &execution_id);
        let execution = execution(
            &*store,
            (&lease, &context),
            &deps,
            &execution_id,
            &options,
            metadata,
            transactions,
        );
        let system_first = plan.pending().any(|p| p.unit.is_system());
        let result = run_locked(&execution, &input, system_first, listeners).await;
        let released = lease.release().await;
        let units = result?;
        if let Err(error) = released {
            tracing::warn!(error = %crate::error::Chain(&error), "the migration lock could not be released; it expires with its lease");
        }
        Ok(Report {
            execution_id,
            status: RunStatus::Completed,
            units,
            elapsed: started.elapsed(),
        })
    }
}

/// The locked part of a run or an undo, under `lease`.
fn execution<'r, S: TransactionStore + LockStore>(
    store: &'r S,
    (lease, context): (&'r lock::Lease<S>, &'r RunContext),
    deps: &'r Dependencies,
    execution_id: &'r str,
    options: &Options,
    metadata: Option<S::Metadata>,
    transactions: bool,
) -> Execution<'r, S> {
    Execution {
        store,
        lease,
        context,
        deps,
        record: RunRecord {
            execution_id,
            hostname: ids::hostname(options.service_identifier.as_deref()),
            metadata,
        },
        transactions,
        strategy: options.strategy,
        track_ignored: options.track_ignored,
        retry_deadline: options.retry_deadline,
        spare_session: Default::default(),
        recorded: Default::default(),
    }
}

/// Runs the pending units with the lock held. Pending system units (the import of earlier
/// history) run first, on their own: what they record decides what else is pending, so the
/// rest is planned from a history read after them.
async fn run_locked<S: TransactionStore + LockStore>(
    execution: &Execution<'_, S>,
    input: &PlanInput<'_>,
    system_first: bool,
    listeners: &Listeners,
) -> Result<Vec<UnitReport>, Error> {
    if !system_first {
        return execution.run(input, listeners).await;
    }
    let (system, rest) = input.split_system();
    let mut reports = execution.run(&system, &Listeners::default()).await?;
    reports.extend(execution.run(&rest, listeners).await?);
    Ok(reports)
}

/// Adds the store's injectables and the run's [`RunContext`] to `deps`; returns the context.
fn provide<S: Store>(
    store: &S,
    deps: &mut Dependencies,
    progress: Vec<ProgressListener>,
    retry_deadline: Duration,
) -> RunContext {
    store.provide(deps);
    let context = RunContext::new(progress, retry_deadline);
    deps.insert(context.clone());
    context
}

/// Checks the store's settings and reads the whole history.
async fn read_history<S: Store>(
    store: &S,
) -> Result<Vec<crate::history::HistoryEntry<S::Metadata>>, Error> {
    store
        .check_settings()
        .map_err(|e| Error::store("checking the store settings", e))?;
    store
        .read_history()
        .await
        .map_err(|e| Error::store("reading the migration history", e))
}

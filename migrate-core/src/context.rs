//! What a run hands its units besides their dependencies: a check that the run still holds
//! the lock, a way to report progress, and work deferred until a unit is recorded.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Chain, Error};
use crate::retry::Backoff;
use crate::unit::{BoxError, BoxFuture, Step};

/// The run's own handle for its units, injected as `&RunContext` (or `Dep<RunContext>`).
///
/// A long unit that does not run in a transaction (a backfill in batches, say) checks with
/// [`ensure_lock_held`](Self::ensure_lock_held) between batches that no other runner took the
/// lock over, and reports how far it got with [`report_progress`](Self::report_progress).
/// Bookkeeping that must outlive a crash until the unit is recorded (a checkpoint, say) is
/// removed with [`after_recorded`](Self::after_recorded).
#[derive(Clone)]
pub struct RunContext {
    inner: Arc<Inner>,
}

struct Inner {
    lease: OnceLock<Box<dyn LeaseCheck>>,
    execution_id: OnceLock<String>,
    running: Mutex<Running>,
    listeners: Vec<ProgressListener>,
    retry_deadline: Duration,
    last_log: Mutex<Option<Instant>>,
    after_recorded: Mutex<Vec<Cleanup>>,
}

/// What the run is running now, as far as its units' helpers need to know.
#[derive(Default)]
struct Running {
    unit: Option<&'static str>,
    step: Option<Step>,
    /// The runs that recorded the step's outcome.
    recorded_by: Arc<[String]>,
    /// Whether the unit is a `run_always` unit running again, unrecorded.
    runs_again: bool,
}

/// Work a unit deferred until it is recorded; see [`RunContext::after_recorded`].
pub(crate) type Cleanup = BoxFuture<'static, Result<(), BoxError>>;

pub(crate) type ProgressListener = Box<dyn Fn(&Progress) + Send + Sync>;

/// Whether the run still holds the lock; implemented over the run's lease.
pub(crate) trait LeaseCheck: Send + Sync {
    /// `true` while the run holds the lock, extending the lease when it runs low.
    fn still_held(&self) -> BoxFuture<'_, Result<bool, Error>>;
}

/// How often progress is logged at most (the callbacks see every report).
const LOG_EVERY: Duration = Duration::from_secs(5);

impl RunContext {
    /// A context whose progress reports go to `listeners`, for a run that retries transient
    /// failures for `retry_deadline`; the lease is attached once the lock is held.
    pub(crate) fn new(listeners: Vec<ProgressListener>, retry_deadline: Duration) -> Self {
        RunContext {
            inner: Arc::new(Inner {
                lease: OnceLock::new(),
                execution_id: OnceLock::new(),
                running: Mutex::new(Running::default()),
                listeners,
                retry_deadline,
                last_log: Mutex::new(None),
                after_recorded: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Attaches the run's lease and id, once the lock is held.
    pub(crate) fn attach(&self, lease: Box<dyn LeaseCheck>, execution_id: &str) {
        // A context is attached to the one lease and id of its run.
        let _ = self.inner.lease.set(lease);
        let _ = self.inner.execution_id.set(execution_id.to_owned());
    }

    /// Sets the unit running now, before any of its steps; `None` between units.
    pub(crate) fn set_unit(&self, unit: Option<&'static str>) {
        *self.running() = Running {
            unit,
            ..Running::default()
        };
    }

    /// Sets the unit and the step running now, with the runs that recorded that step's
    /// outcome and whether the unit runs again unrecorded.
    pub(crate) fn set_step(
        &self,
        unit: &'static str,
        step: Step,
        recorded_by: Arc<[String]>,
        runs_again: bool,
    ) {
        *self.running() = Running {
            unit: Some(unit),
            step: Some(step),
            recorded_by,
            runs_again,
        };
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `cleanup` once the running step has succeeded and its outcome is in the history,
    /// so that state the unit keeps for a rerun (a batch checkpoint) is not removed before
    /// the history says the rerun will not happen. A `run_always` unit that ran before is not
    /// recorded again: its cleanups run when it succeeds. A rollback's cleanups run once it
    /// is recorded ROLLED_BACK, also when it undoes a failed execution. If the step fails, or
    /// the process stops first, `cleanup` is dropped without running. A cleanup that fails is
    /// logged as a warning; the recorded outcome stands.
    pub fn after_recorded<F>(&self, cleanup: F)
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.cleanups().push(Box::pin(cleanup));
    }

    /// Takes the cleanups registered so far: the runner runs them with
    /// [`run_cleanups`] once the outcome they wait for is recorded, or drops them.
    pub(crate) fn take_cleanups(&self) -> Vec<Cleanup> {
        std::mem::take(&mut *self.cleanups())
    }

    fn cleanups(&self) -> std::sync::MutexGuard<'_, Vec<Cleanup>> {
        self.inner
            .after_recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Pauses for a unit that retries its own transient errors (a batch meeting a
    /// transaction that a stopped run left open, say): the runner's own backoff, under the
    /// run's [`retry_deadline`](crate::Runner::retry_deadline) from now.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.inner.retry_deadline)
    }

    /// The id of the unit running now.
    pub fn unit_id(&self) -> Option<&'static str> {
        self.running().unit
    }

    /// The id of this run, recorded as `executionId` with every history entry it writes;
    /// `None` until the run holds the lock.
    pub fn execution_id(&self) -> Option<&str> {
        self.inner.execution_id.get().map(String::as_str)
    }

    /// The ids of the runs whose history entries record the running step as done: EXECUTED
    /// for `#[execution]` and `#[before_execution]`, ROLLED_BACK for the rollbacks, as the
    /// history read under the lock has them. Empty the first time a step runs; not empty
    /// when the unit was undone and runs again, or fails again after a rollback. State that
    /// a step keeps for a rerun (a batch checkpoint) and that one of these runs left behind
    /// belongs to an outcome the history already records, not to the step running now.
    pub fn recorded_by(&self) -> Arc<[String]> {
        self.running().recorded_by.clone()
    }

    /// Whether the unit running now is a `run_always` unit that ran before and runs again:
    /// the history records its first run only, so nothing records whether an earlier rerun
    /// succeeded. State that such a rerun kept and marked finished (a complete batch
    /// checkpoint) may belong to a rerun that succeeded, and must not stand in for this
    /// one's work.
    pub fn runs_again(&self) -> bool {
        self.running().runs_again
    }

    /// The step of the unit running now: a helper that keeps state per unit (a batch
    /// checkpoint) keeps it per step too, so that a rollback does not pick up its
    /// execution's state.
    pub fn step(&self) -> Option<Step> {
        self.running().step
    }

    /// Fails with [`Error::LockLost`] unless this run still holds the lock, extending the
    /// lease when it runs low. The lease is also refreshed in the background; this check is
    /// what stops a unit whose runner was paused past its lease before it writes again.
    pub async fn ensure_lock_held(&self) -> Result<(), Error> {
        let lost = || Error::LockLost {
            unit_id: self.unit_id().map(str::to_owned),
            during: "between batches of",
        };
        match self.inner.lease.get() {
            Some(lease) if lease.still_held().await? => Ok(()),
            Some(_) => Err(lost()),
            None => Err(Error::InvalidConfig {
                option: "RunContext",
                reason: "the lock is checked only while a run holds it".into(),
            }),
        }
    }

    /// Reports the progress of the running unit to the runner's
    /// [`on_progress`](crate::Runner::on_progress) callbacks, and logs it (at most every few
    /// seconds, and when the work is done).
    pub fn report_progress(&self, progress: &Progress) {
        for listener in &self.inner.listeners {
            listener(progress);
        }
        let now = Instant::now();
        let mut last = self
            .inner
            .last_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let finished = progress.total.is_some_and(|total| progress.done >= total);
        if finished || last.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            *last = Some(now);
            tracing::info!(
                id = self.unit_id().unwrap_or_default(),
                done = progress.done,
                total = progress.total,
                per_second = progress.rate().round() as u64,
                eta_s = progress.eta().map(|eta| eta.as_secs()),
                "{progress}"
            );
        }
    }
}

/// Runs the cleanups of unit `id` (of every unit of a run in one transaction when `None`),
/// taken with [`RunContext::take_cleanups`], in the order they were registered; a failure is
/// logged and the rest still run.
pub(crate) async fn run_cleanups(id: Option<&str>, cleanups: Vec<Cleanup>) {
    for cleanup in cleanups {
        if let Err(error) = cleanup.await {
            tracing::warn!(
                id = id.unwrap_or_default(),
                error = %Chain(&*error),
                "a cleanup after the change unit was recorded failed; the recorded outcome stands"
            );
        }
    }
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("unit", &self.unit_id())
            .field("lock_attached", &self.inner.lease.get().is_some())
            .finish_non_exhaustive()
    }
}

/// How far a long unit got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Items done so far (in this run and, for resumed work, before it).
    pub done: u64,
    /// Items in all, when known.
    pub total: Option<u64>,
    /// Items done in this run.
    pub done_now: u64,
    /// Time spent in this run.
    pub elapsed: Duration,
}

impl Progress {
    /// Items per second in this run.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.done_now as f64 / secs
        } else {
            0.0
        }
    }

    /// The time left at the current rate, when the total is known and the rate is not zero.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.total?.saturating_sub(self.done);
        let rate = self.rate();
        (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.total {
            Some(total) => write!(f, "{}/{total}", self.done)?,
            None => write!(f, "{}", self.done)?,
        }
        write!(f, " at {:.0}/s", self.rate())?;
        if let Some(eta) = self.eta() {
            write!(f, ", about {} s left", eta.as_secs())?;
        }
        Ok(())
    }
}

//! What a run did: the report it returns.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use crate::plan::{Decision, Plan, PlannedUnit};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunStatus {
    /// Every pending unit ran (or nothing was pending).
    Completed,
    /// The runner is disabled; nothing was read or run.
    Disabled,
    /// Another runner held the lock and `fail_if_locked(false)` was set; nothing ran.
    LockUnavailable,
}

/// Why a unit did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The history says it already ran.
    AlreadyExecuted,
    /// Its system version is outside the runner's window.
    SystemVersion {
        /// The unit's version.
        version: String,
    },
    /// Its profiles do not match the active profiles.
    Profile,
    /// It is ordered after the unit a run was asked to stop at.
    AfterTarget {
        /// The id the run stops after.
        target: String,
    },
}

/// What happened to one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It ran and was recorded.
    Executed,
    /// A `run_always` unit that had run before ran again (not recorded again).
    ExecutedAgain,
    /// It did not run.
    Skipped(SkipReason),
    /// It failed (a unit without `fail_fast` lets the run go on).
    Failed {
        /// The error message, with any rollback error.
        error: String,
        /// Whether its changes were undone.
        rolled_back: bool,
    },
    /// It was pending but did not run (the run stopped first).
    NotRun,
    /// It was undone: its rollback methods ran and the history records it as rolled back,
    /// so it is pending again.
    RolledBack,
}

/// One unit in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitReport {
    /// The unit id.
    pub id: &'static str,
    /// The author the unit ran as.
    pub author: Cow<'static, str>,
    /// Its order key.
    pub order: &'static str,
    /// What happened.
    pub outcome: Outcome,
    /// How long its steps took, when it ran.
    pub elapsed: Option<Duration>,
}

impl UnitReport {
    pub(crate) fn new(planned: &PlannedUnit, outcome: Outcome, elapsed: Option<Duration>) -> Self {
        UnitReport {
            id: planned.unit.id(),
            author: planned.author.clone(),
            order: planned.unit.order(),
            outcome,
            elapsed,
        }
    }

    /// A unit that did not run: skipped, or pending when the run stopped first.
    pub(crate) fn planned(planned: &PlannedUnit) -> Self {
        let outcome = match &planned.decision {
            Decision::Skip(reason) => Outcome::Skipped(reason.clone()),
            Decision::Run | Decision::RunAgain => Outcome::NotRun,
        };
        UnitReport::new(planned, outcome, None)
    }
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The run's execution id, as recorded in the history.
    pub execution_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Every unit in order, including skipped ones.
    pub units: Vec<UnitReport>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl Report {
    /// The report of a run that stopped before running anything: pending units are
    /// [`Outcome::NotRun`].
    pub(crate) fn before_running(
        plan: &Plan,
        execution_id: String,
        status: RunStatus,
        started: Instant,
    ) -> Self {
        Report {
            execution_id,
            status,
            units: plan.units().iter().map(UnitReport::planned).collect(),
            elapsed: started.elapsed(),
        }
    }

    /// The report of a run that had nothing to look at: no units.
    pub(crate) fn empty(execution_id: String, status: RunStatus, started: Instant) -> Self {
        Report {
            execution_id,
            status,
            units: Vec::new(),
            elapsed: started.elapsed(),
        }
    }

    /// The ids of units that ran in this run (recorded or `run_always` reruns).
    pub fn executed(&self) -> Vec<&str> {
        self.units
            .iter()
            .filter(|u| matches!(u.outcome, Outcome::Executed | Outcome::ExecutedAgain))
            .map(|u| u.id)
            .collect()
    }

    /// The units that did not run, with the reason.
    pub fn skipped(&self) -> impl Iterator<Item = (&str, &SkipReason)> {
        self.units.iter().filter_map(|u| match &u.outcome {
            Outcome::Skipped(reason) => Some((u.id, reason)),
            _ => None,
        })
    }

    /// The unit entry for `id`.
    pub fn unit(&self, id: &str) -> Option<&UnitReport> {
        self.units.iter().find(|u| u.id == id)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run {} ({} in {} ms)",
            self.execution_id,
            crate::text::run_status_text(self.status),
            self.elapsed.as_millis()
        )?;
        for unit in &self.units {
            let outcome = match &unit.outcome {
                Outcome::Executed => "executed".to_owned(),
                Outcome::ExecutedAgain => "executed again (run_always)".to_owned(),
                Outcome::Skipped(SkipReason::AlreadyExecuted) => "already executed".to_owned(),
                Outcome::Skipped(SkipReason::SystemVersion { version }) => {
                    format!("skipped: system version {version} outside the window")
                }
                Outcome::Skipped(SkipReason::Profile) => {
                    "skipped: not selected by the active profiles".to_owned()
                }
                Outcome::Skipped(SkipReason::AfterTarget { target }) => {
                    format!("not run: ordered after `{target}`")
                }
                Outcome::Failed { error, rolled_back } => {
                    format!("failed (rolled back: {rolled_back}): {error}")
                }
                Outcome::NotRun => "not run".to_owned(),
                Outcome::RolledBack => "rolled back".to_owned(),
            };
            write!(f, "  {:<8} {:<32} {outcome}", unit.order, unit.id)?;
            if let Some(elapsed) = unit.elapsed {
                write!(f, " in {} ms", elapsed.as_millis())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

//! What a run did: the report it returns and the events it emits.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

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
}

/// One unit in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitReport {
    /// The unit id.
    pub id: String,
    /// The author the unit ran as.
    pub author: String,
    /// Its order key.
    pub order: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long its steps took, when it ran.
    pub elapsed: Option<Duration>,
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
    /// The ids of units that ran in this run (recorded or `run_always` reruns).
    pub fn executed(&self) -> Vec<&str> {
        self.units
            .iter()
            .filter(|u| matches!(u.outcome, Outcome::Executed | Outcome::ExecutedAgain))
            .map(|u| u.id.as_str())
            .collect()
    }

    /// The units that did not run, with the reason.
    pub fn skipped(&self) -> impl Iterator<Item = (&str, &SkipReason)> {
        self.units.iter().filter_map(|u| match &u.outcome {
            Outcome::Skipped(reason) => Some((u.id.as_str(), reason)),
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
            "run {} ({:?}, {:?})",
            self.execution_id, self.status, self.elapsed
        )?;
        for unit in &self.units {
            let outcome = match &unit.outcome {
                Outcome::Executed => "executed".to_owned(),
                Outcome::ExecutedAgain => "executed again (run_always)".to_owned(),
                Outcome::Skipped(SkipReason::AlreadyExecuted) => "already executed".to_owned(),
                Outcome::Skipped(SkipReason::SystemVersion { version }) => {
                    format!("skipped: system version {version} outside the window")
                }
                Outcome::Skipped(SkipReason::Profile) => "skipped: profile not active".to_owned(),
                Outcome::Failed { error, rolled_back } => {
                    format!("failed (rolled back: {rolled_back}): {error}")
                }
                Outcome::NotRun => "not run".to_owned(),
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

/// A run's lifecycle event, passed to the callbacks of
/// [`Runner::on_started`](crate::Runner::on_started) and friends.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The lock is held and pending units are about to run.
    Started {
        /// The run's execution id.
        execution_id: &'a str,
        /// The ids of the pending units, in order.
        pending: &'a [&'a str],
    },
    /// The run finished.
    Succeeded(&'a Report),
    /// The run failed.
    Failed(&'a Error),
}

//! The error type of the core runner.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::ids::format_utc;
use crate::unit::{BoxError, ChangeUnit, Step};

/// Everything that can stop a run.
///
/// Every message names the change unit, option or document involved. Errors raised before a
/// unit runs (configuration, registry, dependencies, lock) leave the database untouched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No change unit is registered in this binary.
    #[error(
        "no change units are registered in this binary; if they live in a library crate, \
         reference it from the application (for example `use my_migrations as _;`), \
         otherwise the linker drops it"
    )]
    NoChangeUnits,

    /// Two units share an id and author.
    #[error("change unit `{id}` by `{author}` is declared twice: by `{first}` and by `{second}`")]
    DuplicateChangeUnit {
        /// The shared id.
        id: String,
        /// The shared author.
        author: String,
        /// The first declaration: its type, or `Type::method` for a change set.
        first: String,
        /// The second declaration, named the same way.
        second: String,
    },

    /// A unit's id is the history id of another unit's `#[before_execution]` step
    /// (`<id>_before`), by the same author: the history could not tell them apart.
    #[error(
        "change unit `{id}` by `{author}` (`{unit}`) has the id that the history gives the \
         `#[before_execution]` step of change unit `{before_of}` (`{before_of_type}`); rename \
         one of them"
    )]
    BeforeStepIdClash {
        /// The clashing id, `<before_of>_before`.
        id: String,
        /// The author both units run as.
        author: String,
        /// The type declaring the unit `id`.
        unit: &'static str,
        /// The id of the unit with the before-step.
        before_of: String,
        /// The type declaring the unit with the before-step.
        before_of_type: &'static str,
    },

    /// A unit declaration is invalid at run time (for example an invalid system version).
    #[error("change unit `{id}`: invalid `{field}`: {reason}")]
    InvalidChangeUnit {
        /// The unit id.
        id: String,
        /// The attribute key.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A runner option is invalid.
    #[error("invalid runner option `{option}`: {reason}")]
    InvalidConfig {
        /// The option (builder method) name.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// Pending units need dependencies that are not registered. Nothing ran.
    #[error("{}", MissingList(.0))]
    MissingDependencies(Vec<MissingDependency>),

    /// The history names units by this crate's code that the binary does not contain.
    #[error(
        "the history records change units this binary does not contain: {}; if they live in a \
         library crate, reference it from the application (`use my_migrations as _;`); if they \
         were deleted on purpose, set `Runner::allow_unknown_history(true)`",
        .ids.join(", ")
    )]
    UnknownHistory {
        /// The `changeId`s, as `` `id` by `author` (type path) ``.
        ids: Vec<String>,
    },

    /// An operation names a change unit that this binary does not contain.
    #[error("no change unit `{id}` in this binary")]
    UnknownChangeUnit {
        /// The id asked for.
        id: String,
    },

    /// Applied units changed since they ran, and the checksum policy is strict. Nothing ran.
    #[error(
        "change units changed since they ran: {}; revert the edits, or record the new code \
         with `Runner::accept_checksums` once it is reviewed",
        .units.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
    )]
    ChecksumDrift {
        /// The ids of the changed units.
        units: Vec<String>,
    },

    /// Units to undo have no rollback code. Nothing was undone.
    #[error(
        "cannot undo {}: they have no rollback code (their `#[rollback_execution]` does nothing, \
         or they are change sets), so undoing would only mark the changes as pending while they \
         stay in the database; nothing was undone",
        .units.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
    )]
    NoRollback {
        /// The ids of the units without rollback code.
        units: Vec<String>,
    },

    /// Transactions were requested but the store cannot run them.
    #[error("transactions were requested with `transactional(true)`, but {reason}")]
    TransactionsUnsupported {
        /// Why the store cannot run transactions.
        reason: String,
    },

    /// Another runner held the lock for longer than `lock_quit_trying_after`.
    #[error("the migration lock is held by {} and could not be acquired in time", match .expires_at { Some(t) => format!("`{owner}` until {}", DisplayTime(*t)), None => owner.clone() })]
    Locked {
        /// The holder: its owner id when `expires_at` is known, else who holds it in words
        /// (`another runner`, or an open transaction of a runner that stopped inside it).
        owner: String,
        /// When the holder's lease ends, when known.
        expires_at: Option<SystemTime>,
    },

    /// The lock was lost during the run. Nothing was committed or recorded after the loss was
    /// found.
    #[error("the migration lock was lost {during}{}; the run stopped and recorded nothing more", match .unit_id { Some(id) => format!(" change unit `{id}`"), None => String::new() })]
    LockLost {
        /// The unit the run stopped at, if any.
        unit_id: Option<String>,
        /// Where the loss was found: `"before running"`, `"before recording"`, `"at the
        /// transaction fence of"`, ...
        during: &'static str,
    },

    /// The commit of a unit's transaction returned no outcome, and reading back its history
    /// entry did not settle it either. Nothing more was written; the next run sees whether it
    /// committed.
    #[error("the outcome of committing change unit `{unit_id}` is unknown; the run stopped")]
    CommitOutcomeUnknown {
        /// The unit.
        unit_id: String,
        /// The commit's last error.
        #[source]
        source: BoxError,
    },

    /// A change unit failed.
    #[error(transparent)]
    Execution(Box<ExecutionError>),

    /// The store failed.
    #[error("{operation} failed")]
    Store {
        /// What the runner was doing.
        operation: String,
        /// The store's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Wraps a store error with what the runner was doing.
    pub fn store(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Store {
            operation: operation.into(),
            source: source.into(),
        }
    }

    /// The execution failure, if this is one.
    pub fn as_execution(&self) -> Option<&ExecutionError> {
        match self {
            Error::Execution(e) => Some(e),
            _ => None,
        }
    }
}

/// A dependency a pending unit needs and the runner does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDependency {
    /// The unit id.
    pub unit_id: String,
    /// The missing type.
    pub type_name: &'static str,
    /// The injection site (field or parameter).
    pub site: &'static str,
}

struct MissingList<'a>(&'a [MissingDependency]);

impl fmt::Display for MissingList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "missing dependencies, nothing ran:")?;
        for m in self.0 {
            write!(
                f,
                "\n  change unit `{}` needs `{}` for {}",
                m.unit_id, m.type_name, m.site
            )?;
        }
        write!(f, "\nregister them with `Runner::dependency(value)`")
    }
}

/// A change unit failed; carries the step's error and any rollback errors.
#[derive(Debug)]
pub struct ExecutionError {
    /// The unit id.
    pub unit_id: String,
    /// The step that failed.
    pub step: Step,
    /// The step's error.
    pub source: BoxError,
    /// Rollback steps that failed too, in the order they ran.
    pub rollback_errors: Vec<(Step, BoxError)>,
    /// Whether every rollback the unit defines ran successfully (or the transaction was
    /// aborted). Always `false` for a change set that ran without a transaction: nothing
    /// undoes it.
    pub rolled_back: bool,
    /// The unit: a change unit, a change set or a system unit.
    pub unit: &'static ChangeUnit,
}

impl fmt::Display for ExecutionError {
    /// The failed step is the [`source`](std::error::Error::source); rollback errors are not
    /// in the source chain, so the message carries them, before the words the source
    /// explains: "change unit `x`: `#[rollback_execution]` failed (why) after it failed in
    /// `#[execution]`".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.unit.is_system() {
            "system change"
        } else if self.unit.is_change_set() {
            "change set"
        } else {
            "change unit"
        };
        write!(f, "{kind} `{}`", self.unit_id)?;
        for (i, (step, error)) in self.rollback_errors.iter().enumerate() {
            let joint = if i == 0 { ": " } else { " and " };
            write!(
                f,
                "{joint}`#[{}]` failed ({})",
                step.attribute(),
                Chain(&**error)
            )?;
        }
        if !self.rollback_errors.is_empty() {
            write!(f, " after it")?;
        }
        write!(f, " failed")?;
        if self.unit.is_change_set() {
            write!(
                f,
                " in `#[change_set]` method `{}`",
                self.unit.execution_method()
            )?;
        } else if !self.unit.is_system() {
            write!(f, " in `#[{}]`", self.step.attribute())?;
        }
        Ok(())
    }
}

/// A transactional unit ran longer than the server lets a transaction live, and the server
/// aborted it. Retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "its transaction ran for {} s, past the server's transaction lifetime of {} s, and the \
     server aborted it; split the unit into shorter ones, or make it `transactional = false` \
     with an idempotent body that can resume where it stopped",
    .elapsed.as_secs(),
    .lifetime.as_secs()
)]
pub struct TransactionTooLong {
    /// How long the attempt ran.
    pub elapsed: Duration,
    /// The server's transaction lifetime.
    pub lifetime: Duration,
}

/// Recording a step that had executed failed; its rollback methods ran so that a rerun starts
/// clean (the "artificial transaction" of a server without transactions).
#[derive(Debug, thiserror::Error)]
#[error(
    "its changes were applied but could not be recorded in the history, so they were rolled back"
)]
pub struct NotRecorded {
    /// The history write's error.
    #[source]
    pub source: BoxError,
}

/// Displays an error followed by its `source()` chain, `: `-separated: for logs and history
/// traces, where there is no reporter to walk the chain.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    /// Each error's message, without the raw server replies of driver errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |error: &dyn std::error::Error| {
            crate::text::without_raw_replies(&error.to_string()).into_owned()
        };
        f.write_str(&text(self.0))?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {}", text(error))?;
            source = error.source();
        }
        Ok(())
    }
}

impl std::error::Error for ExecutionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Formats a `SystemTime` as the `unlock` output does: `2026-11-22T02:47:36.038 UTC`.
pub(crate) struct DisplayTime(pub(crate) SystemTime);

impl fmt::Display for DisplayTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} UTC", format_utc(self.0))
    }
}

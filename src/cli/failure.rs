//! Why a command did not succeed, and the exit code it maps to.

use std::error::Error as StdError;
use std::fmt;

use mongodb::Database;

use super::human;
use crate::__private::without_raw_replies;
use crate::Error;

/// The process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    Ok = 0,
    Failed = 1,
    Usage = 2,
    Locked = 3,
    NotUpToDate = 4,
}

impl Exit {
    /// How serious the code is, to combine the codes of several databases: usage, then a
    /// failure, then a held lock, then a database not up to date.
    pub(super) fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::NotUpToDate => 1,
            Exit::Locked => 2,
            Exit::Failed => 3,
            Exit::Usage => 4,
        }
    }
}

/// Why a command did not succeed: the error and the exit code it maps to.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) exit: Exit,
    pub(super) error: Box<dyn StdError + Send + Sync>,
    /// For a `run` or an `undo` that failed partway: the units it finished before it
    /// stopped, and the one it stopped at.
    pub(super) units: Option<Vec<human::Finished>>,
}

impl Failure {
    pub(super) fn new(exit: Exit, error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Failure {
            exit,
            error: error.into(),
            units: None,
        }
    }

    pub(super) fn usage(message: impl Into<String>) -> Self {
        Failure::new(Exit::Usage, Message(message.into()))
    }

    /// The failure of a `run` or an `undo` that `tracker` followed, with the units it
    /// finished (the one that failed among them).
    pub(super) fn tracked(error: Error, tracker: Option<&human::Tracker>) -> Self {
        Failure {
            units: tracker.map(human::Tracker::units),
            ..Failure::from(error)
        }
    }

    /// What kind of failure it is: `"usage"`, `"locked"`, `"checksum_drift"`, `"not_run"`
    /// or `"failed"`.
    pub(super) fn kind(&self) -> &'static str {
        match self.exit {
            _ if self.error.is::<NotStarted>() => "not_run",
            Exit::Usage => "usage",
            Exit::Locked => "locked",
            Exit::NotUpToDate => "checksum_drift",
            Exit::Ok | Exit::Failed => "failed",
        }
    }

    /// The messages of the error's causes, outermost first, without the raw server replies
    /// the driver's errors print.
    pub(super) fn causes(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::successors(self.error.source(), |e| (*e).source())
            .map(|e| without_raw_replies(&e.to_string()).into_owned())
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let exit = match &error {
            Error::Locked { .. } => Exit::Locked,
            Error::ChecksumDrift { .. } => Exit::NotUpToDate,
            Error::UnknownChangeUnit { .. } => Exit::Usage,
            _ => Exit::Failed,
        };
        let error: Box<dyn StdError + Send + Sync> = match error {
            // The runner's advice names its method; here the command does it.
            Error::ChecksumDrift { units } => Box::new(Message(format!(
                "change units changed since they ran: {}; revert the edits, or record the new \
                 code with `accept-checksums` once it is reviewed",
                units
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            error if CorruptLock::in_chain(&error).is_some() => Box::new(CorruptLockHint(error)),
            error => Box::new(error),
        };
        Failure {
            exit,
            error,
            units: None,
        }
    }
}

/// A problem the command line itself finds: a missing URI or database, an unconfirmed undo.
#[derive(Debug)]
pub(super) struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// A lock document that the store cannot read, which keeps every runner out until it is
/// deleted.
#[derive(Debug)]
pub(super) struct CorruptLock {
    /// The lock collection, `database.collection`.
    pub(super) namespace: String,
    /// The document's `_id`, as the store renders it.
    pub(super) id: String,
    /// What is wrong with it.
    pub(super) problem: String,
}

impl CorruptLock {
    /// The corrupt lock document that `error` (or one of its causes) is about.
    pub(super) fn in_chain(error: &(dyn StdError + 'static)) -> Option<Self> {
        std::iter::successors(Some(error), |e| (*e).source()).find_map(|e| {
            match e.downcast_ref::<crate::MongoStoreError>()? {
                crate::MongoStoreError::CorruptLock {
                    namespace,
                    id,
                    reason,
                    ..
                } => Some(CorruptLock {
                    namespace: namespace.clone(),
                    id: id.clone(),
                    problem: reason.clone(),
                }),
                _ => None,
            }
        })
    }

    /// Deletes the lock of the store's collection in `db`, whatever its document holds.
    pub(super) async fn delete(&self, db: &Database) -> Result<(), Error> {
        // The error names the collection the runner's store was configured with.
        let collection = self
            .namespace
            .split_once('.')
            .map_or(self.namespace.as_str(), |(_, collection)| collection);
        crate::MongoStore::new(db)
            .lock_collection(collection)
            .force_release_lock()
            .await
            .map_err(|e| Error::store("deleting the corrupt lock document", e))
    }
}

impl fmt::Display for CorruptLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deleted the corrupt lock document `_id: {}` in `{}` ({})",
            self.id, self.namespace, self.problem
        )
    }
}

/// An error about a corrupt lock document, with the way out.
#[derive(Debug)]
pub(super) struct CorruptLockHint(Error);

impl fmt::Display for CorruptLockHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; `unlock --force` deletes the corrupt lock document",
            self.0
        )
    }
}

impl StdError for CorruptLockHint {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// A database of `--databases` that was not started because another failed first.
#[derive(Debug)]
pub(super) struct NotStarted;

impl fmt::Display for NotStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not started: another database failed first and `--fail-fast` was given")
    }
}

impl StdError for NotStarted {}

/// An invalid `--uri`.
#[derive(Debug)]
pub(super) struct InvalidUri(pub(super) mongodb::error::Error);

impl fmt::Display for InvalidUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MongoDB connection string")
    }
}

impl StdError for InvalidUri {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

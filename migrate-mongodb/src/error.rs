//! The error type of the MongoDB store.

use std::error::Error as StdError;
use std::fmt;

use mongodb::error::{BulkWriteError, ErrorKind, WriteError, WriteFailure};

/// Everything the MongoDB store can fail with.
///
/// Messages name the collection (as `database.collection`) and, for unreadable documents,
/// the document's `_id`. Where the caller says what an operation was for, the error names
/// only the command that failed ([`Error::Command`]): the runner wraps the store's errors in
/// [`migrate_core::Error::Store`], which says what it was doing, and
/// [`stored_checkpoints`](crate::batch::stored_checkpoints) does one thing. The errors of a
/// batch walk, which reach the unit as they are, say which part of the walk failed
/// ([`Error::Driver`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command of the store's own failed (network, server error, timeout).
    #[error("`{command}` on `{namespace}` failed")]
    Command {
        /// The command, as the server names it, e.g. `"find"` or `"commitTransaction"`.
        command: &'static str,
        /// The collection (`database.collection`), or the database for commands.
        namespace: String,
        /// The driver's error.
        #[source]
        source: DriverError,
    },

    /// A driver operation of a batch helper failed (network, server error, timeout).
    #[error("{operation} on `{namespace}` failed")]
    Driver {
        /// What the helper was doing, e.g. `"counting the documents to change"`.
        operation: &'static str,
        /// The collection (`database.collection`), or the database for commands.
        namespace: String,
        /// The driver's error.
        #[source]
        source: DriverError,
    },

    /// A history document cannot be read as a history entry.
    #[error("history document `_id: {id}` in `{namespace}` is corrupt: {reason}")]
    CorruptHistory {
        /// The history collection (`database.collection`).
        namespace: String,
        /// The document's `_id`, rendered as extended JSON-like text.
        id: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The lock document cannot be read.
    #[error("lock document `_id: {id}` in `{namespace}` is corrupt: {reason}")]
    CorruptLock {
        /// The lock collection (`database.collection`).
        namespace: String,
        /// The document's `_id`.
        id: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Index creation is off and a required unique index does not exist.
    #[error(
        "`{namespace}` has no unique index on {keys}; create it (unique) or leave index \
         creation on (`index_creation(true)`)"
    )]
    MissingIndex {
        /// The collection (`database.collection`).
        namespace: String,
        /// The index keys, e.g. `{ executionId: 1, author: 1, changeId: 1 }`.
        keys: &'static str,
    },

    /// A configured collection name cannot be used.
    #[error("invalid collection name `{name}`: {reason}")]
    InvalidCollectionName {
        /// The name as configured.
        name: String,
        /// Why MongoDB would reject it.
        reason: &'static str,
    },

    /// A checkpointed batch update needs transactions, which the server cannot run.
    #[error(
        "checkpointed batches on `{namespace}` commit each batch with its checkpoint in a \
         transaction, but {reason}; run the server as a (single-node) replica set, or use a \
         filter that the change makes false instead"
    )]
    CheckpointNeedsTransactions {
        /// The collection being changed (`database.collection`).
        namespace: String,
        /// Why the server runs no transactions.
        reason: String,
    },

    /// The history and the lock were configured to share one collection.
    #[error("the history and lock collections must differ (both are `{name}`)")]
    SameCollections {
        /// The shared name.
        name: String,
    },
}

impl Error {
    pub(crate) fn driver(
        operation: &'static str,
        namespace: impl Into<String>,
        source: mongodb::error::Error,
    ) -> Self {
        Error::Driver {
            operation,
            namespace: namespace.into(),
            source: DriverError(Box::new(source)),
        }
    }

    pub(crate) fn command(
        command: &'static str,
        namespace: impl Into<String>,
        source: mongodb::error::Error,
    ) -> Self {
        Error::Command {
            command,
            namespace: namespace.into(),
            source: DriverError(Box::new(source)),
        }
    }

    /// The driver error behind this error, if any.
    pub fn driver_error(&self) -> Option<&mongodb::error::Error> {
        match self {
            Error::Command { source, .. } | Error::Driver { source, .. } => Some(source.get()),
            _ => None,
        }
    }
}

/// A driver error, displayed as what the server or the network said: code, name, message
/// and labels, without the driver's dump of the raw server reply.
#[derive(Debug)]
pub struct DriverError(Box<mongodb::error::Error>);

impl DriverError {
    /// The driver's error, for inspecting its kind and labels.
    pub fn get(&self) -> &mongodb::error::Error {
        &self.0
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0.kind {
            ErrorKind::Command(e) => write!(
                f,
                "server error {} ({}): {}",
                e.code, e.code_name, e.message
            )?,
            ErrorKind::Write(WriteFailure::WriteError(e)) => match &e.code_name {
                Some(name) => write!(f, "write error {} ({name}): {}", e.code, e.message)?,
                None => write!(f, "write error {}: {}", e.code, e.message)?,
            },
            ErrorKind::Write(WriteFailure::WriteConcernError(e)) => write!(
                f,
                "write concern error {} ({}): {}",
                e.code, e.code_name, e.message
            )?,
            ErrorKind::BulkWrite(e) => match first_write_error(e) {
                Some((index, error)) => {
                    write!(f, "write error {}", error.code)?;
                    if let Some(name) = &error.code_name {
                        write!(f, " ({name})")?;
                    }
                    write!(f, " in write {index} of a bulk write: {}", error.message)?;
                    if e.write_errors.len() > 1 {
                        write!(f, " (and {} more)", e.write_errors.len() - 1)?;
                    }
                }
                None => match e.write_concern_errors.first() {
                    Some(e) => write!(
                        f,
                        "write concern error {} ({}) in a bulk write: {}",
                        e.code, e.code_name, e.message
                    )?,
                    None => write!(f, "a bulk write failed")?,
                },
            },
            kind => write!(f, "{kind}")?,
        }
        let mut labels: Vec<&String> = self.0.labels().iter().collect();
        if !labels.is_empty() {
            labels.sort();
            write!(f, " [")?;
            for (i, label) in labels.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{label}")?;
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

impl StdError for DriverError {}

impl From<mongodb::error::Error> for DriverError {
    fn from(error: mongodb::error::Error) -> Self {
        DriverError(Box::new(error))
    }
}

/// Whether `error` is a duplicate key error (code 11000).
pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        _ => false,
    }
}

/// The first write error of a bulk write, by the index of its write.
fn first_write_error(error: &BulkWriteError) -> Option<(usize, &WriteError)> {
    error
        .write_errors
        .iter()
        .min_by_key(|(index, _)| **index)
        .map(|(index, error)| (*index, error))
}

/// The server error code of `error`, if it carries one: for a bulk write, that of its first
/// write error (a write in a transaction stops the rest), else its first write concern
/// error.
pub(crate) fn code(error: &mongodb::error::Error) -> Option<i32> {
    match &*error.kind {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        ErrorKind::BulkWrite(e) => first_write_error(e)
            .map(|(_, e)| e.code)
            .or_else(|| e.write_concern_errors.first().map(|e| e.code)),
        _ => None,
    }
}

/// Whether some error in the chain of `error` carries the driver error label `label`.
///
/// Walks the `source()` chain looking for the driver's error (directly, boxed, or inside this
/// crate's [`Error`]). Errors that hide their source, as `anyhow::Error` does once converted
/// into a boxed error, are matched by the label as the driver's message prints it
/// (`labels: {"TransientTransactionError"}`).
pub(crate) fn has_label(error: &(dyn StdError + 'static), label: &str) -> bool {
    let quoted = format!("\"{label}\"");
    let mut current = Some(error);
    while let Some(e) = current {
        let labelled = match as_driver_error(e) {
            Some(driver) => driver.contains_label(label),
            None => e.to_string().contains(&quoted),
        };
        if labelled {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether some driver error in the chain of `error` carries one of the server `codes`.
///
/// Errors that hide their source, as `anyhow::Error` does once converted into a boxed error,
/// are matched by the code as the driver's message prints it (`Error code 251 (`).
pub(crate) fn has_code(error: &(dyn StdError + 'static), codes: &[i32]) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        let coded = match as_driver_error(e) {
            Some(driver) => code(driver).is_some_and(|c| codes.contains(&c)),
            None => {
                let text = e.to_string();
                codes
                    .iter()
                    .any(|c| text.contains(&format!("Error code {c} (")))
            }
        };
        if coded {
            return true;
        }
        current = e.source();
    }
    false
}

fn as_driver_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a mongodb::error::Error> {
    e.downcast_ref::<mongodb::error::Error>()
        .or_else(|| e.downcast_ref::<Box<mongodb::error::Error>>().map(|b| &**b))
        .or_else(|| e.downcast_ref::<DriverError>().map(DriverError::get))
        .or_else(|| e.downcast_ref::<Error>().and_then(Error::driver_error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, from_document};

    fn bulk_write_error(write_errors: &[(usize, i32, &str)]) -> mongodb::error::Error {
        let mut error = BulkWriteError::default();
        for &(index, code, message) in write_errors {
            let write_error: WriteError = from_document(doc! {
                "code": code,
                "codeName": "WriteConflict",
                "errmsg": message,
            })
            .unwrap();
            error.write_errors.insert(index, write_error);
        }
        ErrorKind::BulkWrite(error).into()
    }

    #[test]
    fn a_bulk_write_error_shows_its_first_write_error_and_its_code() {
        let error = bulk_write_error(&[(3, 11000, "later"), (1, 112, "Write conflict")]);
        assert_eq!(
            DriverError::from(error.clone()).to_string(),
            "write error 112 (WriteConflict) in write 1 of a bulk write: Write conflict \
             (and 1 more)"
        );
        assert_eq!(code(&error), Some(112));
        let wrapped = Error::command("bulkWrite", "db", error);
        assert!(has_code(&wrapped, &[112]));
        assert!(!has_code(&wrapped, &[11000]), "the first write's code only");
    }
}

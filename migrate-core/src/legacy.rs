//! Importing an earlier tool's history (mongobee, Mongock 3), as Mongock 5's "legacy
//! migration" does: a system unit, first in the run, that copies every earlier row into the
//! history as executed, so that the change sets those rows name are not run again.
//!
//! The unit is decided like any other, from the history read every run already makes: its
//! own history row marks the import done, so a start-up with nothing pending still costs one
//! read. It runs under the lock and, where the store runs transactions, in one transaction
//! with its own row.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use crate::__private::{Checksum, StepTable, TextParts, UnitAttributes, UnitCall, UnitText};
use crate::error::Error;
use crate::history::{EntryType, ExecutedSet, HistoryEntry, State};
use crate::inject::Dep;
use crate::store::Store;
use crate::unit::{BoxError, BoxFuture, ChangeUnit, ChangeUnitInstance, Step, StepContext};

/// The id of the import's own history row: Mongock's, so that Mongock and this runner sharing
/// one history import once between them.
pub const LEGACY_MIGRATION_ID: &str = "mongock-legacy-migration";
/// The author of the import's own history row (Mongock's).
pub const LEGACY_MIGRATION_AUTHOR: &str = "mongock";

/// Where an earlier history is and how its rows name their fields: the option of
/// [`Runner::legacy_migration`](crate::Runner::legacy_migration).
///
/// ```
/// use migrate_core::LegacyMigration;
///
/// // mongobee's and Mongock 3's collection, with their field names.
/// let mongobee = LegacyMigration::new("dbchangelog").expected_count(42);
/// // Another tool's, with fields of its own.
/// let other = LegacyMigration::new("schema_versions")
///     .change_id_field("version")
///     .author_field("installed_by")
///     .timestamp_field("installed_on");
/// # let _ = (mongobee, other);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMigration {
    origin: String,
    fields: LegacyFields,
    expected_count: Option<u64>,
    run_always: bool,
}

/// The field names of an earlier history's rows. The defaults are mongobee's and Mongock 3's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegacyFields {
    /// The change id (required in every row). Default: `changeId`.
    pub change_id: String,
    /// The author (required in every row). Default: `author`.
    pub author: String,
    /// When the change ran; rows without one are imported as of the import. Default:
    /// `timestamp`.
    pub timestamp: String,
    /// The class or type that held the change. Default: `changeLogClass`.
    pub change_log_class: String,
    /// The method that made the change. Default: `changeSetMethod`.
    pub change_set_method: String,
    /// A field kept as the imported row's original metadata. Default: none.
    pub metadata: Option<String>,
}

impl Default for LegacyFields {
    fn default() -> Self {
        LegacyFields {
            change_id: "changeId".into(),
            author: "author".into(),
            timestamp: "timestamp".into(),
            change_log_class: "changeLogClass".into(),
            change_set_method: "changeSetMethod".into(),
            metadata: None,
        }
    }
}

impl LegacyMigration {
    /// Imports the rows of the collection `origin` (mongobee's and Mongock 3's is
    /// `dbchangelog`), with mongobee's field names, once, whatever their number.
    pub fn new(origin: impl Into<String>) -> Self {
        LegacyMigration {
            origin: origin.into(),
            fields: LegacyFields::default(),
            expected_count: None,
            run_always: false,
        }
    }

    /// The field holding the change id. Default: `changeId`.
    pub fn change_id_field(mut self, name: impl Into<String>) -> Self {
        self.fields.change_id = name.into();
        self
    }

    /// The field holding the author. Default: `author`.
    pub fn author_field(mut self, name: impl Into<String>) -> Self {
        self.fields.author = name.into();
        self
    }

    /// The field holding when the change ran. Default: `timestamp`.
    pub fn timestamp_field(mut self, name: impl Into<String>) -> Self {
        self.fields.timestamp = name.into();
        self
    }

    /// The field holding the class or type of the change. Default: `changeLogClass`.
    pub fn change_log_class_field(mut self, name: impl Into<String>) -> Self {
        self.fields.change_log_class = name.into();
        self
    }

    /// The field holding the method of the change. Default: `changeSetMethod`.
    pub fn change_set_method_field(mut self, name: impl Into<String>) -> Self {
        self.fields.change_set_method = name.into();
        self
    }

    /// A field to keep as each imported row's original metadata. Default: none.
    pub fn metadata_field(mut self, name: impl Into<String>) -> Self {
        self.fields.metadata = Some(name.into());
        self
    }

    /// Fails the import, before anything is written, unless the earlier history has exactly
    /// `count` rows. Default: any number.
    pub fn expected_count(mut self, count: u64) -> Self {
        self.expected_count = Some(count);
        self
    }

    /// Imports on every run (rows already imported are never imported twice), instead of
    /// once. Every start-up then takes the lock. Default: `false`.
    pub fn run_always(mut self, run_always: bool) -> Self {
        self.run_always = run_always;
        self
    }

    /// The collection the earlier history is in.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The field names of its rows.
    pub fn fields(&self) -> &LegacyFields {
        &self.fields
    }

    /// The number of rows it must have, if one was set.
    pub fn expected(&self) -> Option<u64> {
        self.expected_count
    }

    /// Checks that the origin and the required field names are set.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let invalid = |reason: &str| Error::InvalidConfig {
            option: "legacy_migration",
            reason: reason.to_owned(),
        };
        if self.origin.trim().is_empty() {
            return Err(invalid(
                "the name of the earlier history's collection is empty",
            ));
        }
        if self.fields.change_id.is_empty() || self.fields.author.is_empty() {
            return Err(invalid(
                "the change id and author field names must not be empty",
            ));
        }
        Ok(())
    }

    /// The import's system unit.
    pub(crate) fn unit(&self) -> &'static ChangeUnit {
        if self.run_always {
            &RUN_ALWAYS
        } else {
            &RUN_ONCE
        }
    }
}

/// One row of an earlier history, as a store read it. `M` is the store's metadata type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LegacyRow<M> {
    /// The change id.
    pub change_id: String,
    /// The author.
    pub author: String,
    /// When the change ran, if the row says.
    pub timestamp: Option<SystemTime>,
    /// The class or type of the change (empty when the row has none).
    pub change_log_class: String,
    /// The method of the change (empty when the row has none).
    pub change_set_method: String,
    /// What the imported row records as its metadata.
    pub metadata: Option<M>,
}

impl<M> LegacyRow<M> {
    /// A row with its change id and author; the other fields empty.
    pub fn new(change_id: impl Into<String>, author: impl Into<String>) -> Self {
        LegacyRow {
            change_id: change_id.into(),
            author: author.into(),
            timestamp: None,
            change_log_class: String::new(),
            change_set_method: String::new(),
            metadata: None,
        }
    }
}

/// The earlier history does not have the number of rows
/// [`LegacyMigration::expected_count`] set. Nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{origin}` has {found} rows, but {expected} were expected; nothing was imported")]
pub struct LegacyCountMismatch {
    /// The collection of the earlier history.
    pub origin: String,
    /// The rows expected.
    pub expected: u64,
    /// The rows found.
    pub found: u64,
}

// ---------------------------------------------------------------------------------------------
// The system unit, in Mongock's two forms: once, and on every run.
// ---------------------------------------------------------------------------------------------

const fn unit(run_always: bool) -> ChangeUnit {
    let unit = UnitAttributes {
        text: UnitText::Parts(&TEXT),
        run_always,
        transactional: true,
        fail_fast: true,
        extra: None,
        line: line!(),
    };
    let steps = StepTable {
        execution_takes_session: true,
        rollback_does_nothing: true,
        checksum: Checksum::fixed(0),
    };
    ChangeUnit::new(unit, steps, code, true)
}

const TEXT: TextParts = TextParts {
    id: LEGACY_MIGRATION_ID,
    order: "",
    author: Some(LEGACY_MIGRATION_AUTHOR),
    system_version: "0",
};

static RUN_ONCE: ChangeUnit = unit(false);
static RUN_ALWAYS: ChangeUnit = unit(true);

/// The system unit's code (see [`UnitCall`]).
fn code(call: UnitCall<'_, '_>) -> Result<(), BoxError> {
    match call {
        UnitCall::Names(names) => names.set("migrate::LegacyMigration", file!(), "import", None),
        UnitCall::Sites(_) => {}
        UnitCall::Instantiate(deps, unit) => {
            let importer = deps.get_dep::<Importer>().ok_or_else(|| -> BoxError {
                "the import of earlier history runs only with `Runner::legacy_migration`".into()
            })?;
            *unit = Some(Box::new(ImportUnit { importer }));
        }
    }
    Ok(())
}

struct ImportUnit {
    importer: Dep<Importer>,
}

impl ChangeUnitInstance for ImportUnit {
    fn run_step<'a>(
        &'a self,
        step: Step,
        mut cx: StepContext<'a>,
    ) -> Option<BoxFuture<'a, Result<(), BoxError>>> {
        if step != Step::Execution {
            return None;
        }
        Some(Box::pin(async move {
            let session = cx.take_any_session()?;
            self.importer.0.import(session).await
        }))
    }
}

/// The import of one run, over the run's store, for the system unit to run: inserted into
/// the run's dependencies, where no change unit can name it.
pub(crate) struct Importer(Arc<dyn Import>);

impl Importer {
    pub(crate) fn new<S: Store>(
        store: Arc<S>,
        legacy: LegacyMigration,
        execution_id: &str,
    ) -> Self {
        Importer(Arc::new(StoreImport {
            store,
            legacy,
            execution_id: format!("legacy_migration-{execution_id}"),
        }))
    }
}

trait Import: Send + Sync {
    fn import<'a>(
        &'a self,
        session: &'a mut (dyn Any + Send),
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

struct StoreImport<S> {
    store: Arc<S>,
    legacy: LegacyMigration,
    execution_id: String,
}

impl<S: Store> Import for StoreImport<S> {
    fn import<'a>(
        &'a self,
        session: &'a mut (dyn Any + Send),
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let session = session
                .downcast_mut::<S::Session>()
                .ok_or("the import of earlier history got another store's session")?;
            let rows = self.store.read_legacy_history(&self.legacy).await?;
            let found = rows.len() as u64;
            if let Some(expected) = self.legacy.expected_count.filter(|e| *e != found) {
                return Err(LegacyCountMismatch {
                    origin: self.legacy.origin.clone(),
                    expected,
                    found,
                }
                .into());
            }
            let history = self.store.read_history().await?;
            let entries = self.entries(rows, &history);
            tracing::info!(
                origin = %self.legacy.origin,
                found,
                imported = entries.len(),
                "importing earlier history"
            );
            self.store.insert_entries(&entries, Some(session)).await
        })
    }
}

impl<S: Store> StoreImport<S> {
    /// The entries to write for `rows`: one per (change id, author) that `history` does not
    /// already count as executed. A change that `history` holds in another state is imported
    /// as of now, so that it is the newest (as Mongock does).
    fn entries(
        &self,
        rows: Vec<LegacyRow<S::Metadata>>,
        history: &[HistoryEntry<S::Metadata>],
    ) -> Vec<HistoryEntry<S::Metadata>> {
        let executed = ExecutedSet::from_entries(history);
        let present: HashSet<(&str, &str)> = history
            .iter()
            .map(|e| (e.change_id.as_str(), e.author.as_str()))
            .collect();
        let mut seen = HashSet::new();
        let now = SystemTime::now();
        rows.into_iter()
            .filter(|row| !executed.is_executed(&row.change_id, &row.author))
            .filter(|row| seen.insert((row.change_id.clone(), row.author.clone())))
            .map(|row| {
                let timestamp = if present.contains(&(row.change_id.as_str(), row.author.as_str()))
                {
                    now
                } else {
                    row.timestamp.unwrap_or(now)
                };
                HistoryEntry {
                    execution_id: self.execution_id.clone(),
                    change_id: row.change_id,
                    author: row.author,
                    timestamp,
                    state: State::Executed,
                    entry_type: EntryType::Execution,
                    change_log_class: row.change_log_class,
                    change_set_method: row.change_set_method,
                    metadata: row.metadata,
                    execution_millis: -1,
                    execution_hostname: "unknown".into(),
                    error_trace: None,
                    system_change: false,
                    checksum: None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::memory::MemoryStore;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn recorded(change_id: &str, state: State) -> HistoryEntry<String> {
        HistoryEntry {
            execution_id: "earlier".into(),
            change_id: change_id.into(),
            author: "java".into(),
            timestamp: at(100),
            state,
            entry_type: EntryType::Execution,
            change_log_class: String::new(),
            change_set_method: String::new(),
            metadata: None,
            execution_millis: -1,
            execution_hostname: String::new(),
            error_trace: None,
            system_change: false,
            checksum: None,
        }
    }

    fn row(change_id: &str, secs: u64) -> LegacyRow<String> {
        let mut row = LegacyRow::new(change_id, "java");
        row.timestamp = Some(at(secs));
        row
    }

    #[test]
    fn rows_already_executed_or_repeated_are_left_out_and_failed_ones_become_newest() {
        let import = StoreImport {
            store: Arc::new(MemoryStore::new()),
            legacy: LegacyMigration::new("dbchangelog"),
            execution_id: "legacy_migration-run".into(),
        };
        let history = [
            recorded("done", State::Executed),
            recorded("failed-here", State::Failed),
        ];
        let rows = vec![
            row("done", 1),
            row("failed-here", 2),
            row("new", 3),
            row("new", 4),
        ];

        let entries = import.entries(rows, &history);

        let ids: Vec<&str> = entries.iter().map(|e| e.change_id.as_str()).collect();
        assert_eq!(ids, ["failed-here", "new"]);
        assert!(
            entries[0].timestamp > at(100),
            "newer than the FAILED row, so that it decides"
        );
        assert_eq!(entries[1].timestamp, at(3), "the first of repeated rows");
        for entry in &entries {
            assert_eq!(entry.execution_id, "legacy_migration-run");
            assert_eq!(entry.state, State::Executed);
            assert_eq!(entry.execution_millis, -1);
            assert!(!entry.system_change);
        }
    }

    #[test]
    fn an_origin_or_required_field_name_must_be_set() {
        assert!(LegacyMigration::new("dbchangelog").check().is_ok());
        let empty = LegacyMigration::new(" ").check().unwrap_err();
        assert_eq!(
            empty.to_string(),
            "invalid runner option `legacy_migration`: the name of the earlier history's \
             collection is empty"
        );
        assert!(LegacyMigration::new("dbchangelog")
            .author_field("")
            .check()
            .is_err());
    }
}

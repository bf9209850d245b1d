//! The history model: one entry per step per run, in Mongock's vocabulary.

use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::Hash;
use std::time::SystemTime;

use crate::hash::{self, FxHashMap};
use crate::unit::Step;

mod planning;

pub use planning::{PlanningEntries, PlanningEntry, PlanningHistory};

/// The state of one recorded step (`state` in the history collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The step completed.
    Executed,
    /// The step failed.
    Failed,
    /// The step completed and was later undone.
    RolledBack,
    /// The step failed and undoing it failed too.
    RollbackFailed,
    /// The unit was skipped and the runner tracks ignored units.
    Ignored,
}

impl State {
    /// The stored string (`"EXECUTED"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Executed => "EXECUTED",
            State::Failed => "FAILED",
            State::RolledBack => "ROLLED_BACK",
            State::RollbackFailed => "ROLLBACK_FAILED",
            State::Ignored => "IGNORED",
        }
    }

    /// Parses a stored string, given as text or as its bytes (a store reading raw documents
    /// need not check them for UTF-8 first).
    pub fn parse(s: impl AsRef<[u8]>) -> Option<Self> {
        Some(match s.as_ref() {
            b"EXECUTED" => State::Executed,
            b"FAILED" => State::Failed,
            b"ROLLED_BACK" => State::RolledBack,
            b"ROLLBACK_FAILED" => State::RollbackFailed,
            b"IGNORED" => State::Ignored,
            _ => return None,
        })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which method an entry records (`type` in the history collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// The `#[execution]` method; `changeId` is the unit id.
    Execution,
    /// The `#[before_execution]` method; `changeId` is `<id>_before`.
    BeforeExecution,
}

impl EntryType {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Execution => "EXECUTION",
            EntryType::BeforeExecution => "BEFORE_EXECUTION",
        }
    }

    /// Parses a stored string, given as text or as its bytes.
    pub fn parse(s: impl AsRef<[u8]>) -> Option<Self> {
        match s.as_ref() {
            b"EXECUTION" => Some(EntryType::Execution),
            b"BEFORE_EXECUTION" => Some(EntryType::BeforeExecution),
            _ => None,
        }
    }
}

/// One history entry. `M` is the store's metadata type.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry<M = ()> {
    /// One id per run.
    pub execution_id: String,
    /// The unit id, or `<id>_before` for a before-step.
    pub change_id: String,
    /// The unit author.
    pub author: String,
    /// When the step ended.
    pub timestamp: SystemTime,
    /// The outcome.
    pub state: State,
    /// Which method ran.
    pub entry_type: EntryType,
    /// The unit's type path (`changeLogClass`).
    pub change_log_class: String,
    /// The method name (`changeSetMethod`).
    pub change_set_method: String,
    /// The runner's metadata.
    pub metadata: Option<M>,
    /// Duration in milliseconds, or −1 when the step did not execute.
    pub execution_millis: i64,
    /// Host name and service identifier of the runner.
    pub execution_hostname: String,
    /// The JSON error trace of a failed step.
    pub error_trace: Option<String>,
    /// Whether the unit is a system change.
    pub system_change: bool,
    /// Checksum of the unit's source, if recorded.
    pub checksum: Option<String>,
}

impl<M> HistoryEntry<M> {
    /// Whether this entry records `step` of the unit `id` as done: EXECUTED for the execution
    /// and the before-execution, ROLLED_BACK for their rollbacks.
    pub fn records_done(&self, id: &str, step: Step) -> bool {
        let (entry_type, state) = recorded_as(step);
        self.entry_type == entry_type
            && self.state == state
            && self.change_id == change_id(id, entry_type)
    }

    /// Whether this entry records a failure: FAILED, ROLLBACK_FAILED, or ROLLED_BACK with an
    /// error (the rollback of a failed step; an undo records none).
    pub fn records_failure(&self) -> bool {
        match self.state {
            State::Failed | State::RollbackFailed => true,
            State::RolledBack => self.error_trace.is_some(),
            State::Executed | State::Ignored => false,
        }
    }
}

/// The type and the state of the entry that records `step` as done.
pub(crate) fn recorded_as(step: Step) -> (EntryType, State) {
    match step {
        Step::BeforeExecution => (EntryType::BeforeExecution, State::Executed),
        Step::Execution => (EntryType::Execution, State::Executed),
        Step::RollbackExecution => (EntryType::Execution, State::RolledBack),
        Step::RollbackBeforeExecution => (EntryType::BeforeExecution, State::RolledBack),
    }
}

/// The `changeId` of the unit `id`'s entries of type `entry_type`.
pub(crate) fn change_id(id: &str, entry_type: EntryType) -> String {
    match entry_type {
        EntryType::Execution => id.to_owned(),
        EntryType::BeforeExecution => format!("{id}{BEFORE_SUFFIX}"),
    }
}

/// A recorded step, as planning sees it: a `&HistoryEntry`, or a row of a
/// [`PlanningHistory`], both cheap to copy and borrowing their strings from the history read.
pub(crate) trait Recorded<'h>: Copy {
    fn change_id(self) -> &'h str;
    fn author(self) -> &'h str;
    fn timestamp(self) -> SystemTime;
    fn state(self) -> State;
    fn entry_type(self) -> EntryType;
    fn change_log_class(self) -> &'h str;
    fn system_change(self) -> bool;
    fn checksum(self) -> Option<&'h str>;
}

impl<'h, M> Recorded<'h> for &'h HistoryEntry<M> {
    fn change_id(self) -> &'h str {
        &self.change_id
    }
    fn author(self) -> &'h str {
        &self.author
    }
    fn timestamp(self) -> SystemTime {
        self.timestamp
    }
    fn state(self) -> State {
        self.state
    }
    fn entry_type(self) -> EntryType {
        self.entry_type
    }
    fn change_log_class(self) -> &'h str {
        &self.change_log_class
    }
    fn system_change(self) -> bool {
        self.system_change
    }
    fn checksum(self) -> Option<&'h str> {
        self.checksum.as_deref()
    }
}

/// The suffix of a before-step's `changeId`.
pub(crate) const BEFORE_SUFFIX: &str = "_before";

/// The newest of `entries` (by timestamp) for every (changeId, author).
pub(crate) fn newest_by_key<'h, E: Recorded<'h>>(
    entries: impl Iterator<Item = E>,
) -> FxHashMap<(&'h str, &'h str), E> {
    newest_by(entries, |entry| (entry.change_id(), entry.author()))
}

/// The newest of `entries` (by timestamp) for every key `key` gives them.
fn newest_by<'h, E: Recorded<'h>, K: Eq + Hash>(
    entries: impl Iterator<Item = E>,
    key: impl Fn(&E) -> K,
) -> FxHashMap<K, E> {
    // At most one key per entry; usually about that many.
    let (fewest, most) = entries.size_hint();
    let mut newest: FxHashMap<K, E> = hash::map_with_capacity(most.unwrap_or(fewest));
    for entry in entries {
        // One hash and probe per entry; of two entries with one timestamp, the later wins.
        match newest.entry(key(&entry)) {
            Entry::Occupied(mut seen) => {
                if seen.get().timestamp() <= entry.timestamp() {
                    seen.insert(entry);
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(entry);
            }
        }
    }
    newest
}

/// The latest effective entry of every (changeId, author) pair in a history.
///
/// Entries in IGNORED, FAILED or ROLLBACK_FAILED state do not change whether a step counts as
/// executed; of the others, the newest by timestamp decides, so a later ROLLED_BACK makes the
/// step pending again. Keyed by bytes, so that a unit's id is looked up without a UTF-8 check
/// (`ChangeUnit::id_bytes`).
#[derive(Debug)]
pub(crate) struct ExecutedSet<'h, E> {
    latest: FxHashMap<(&'h [u8], &'h [u8]), E>,
}

impl<'h, E: Recorded<'h>> ExecutedSet<'h, E> {
    /// Builds the set from stored entries.
    pub(crate) fn from_entries(entries: impl IntoIterator<Item = E>) -> Self {
        let effective = entries.into_iter().filter(|entry| {
            !matches!(
                entry.state(),
                State::Ignored | State::Failed | State::RollbackFailed
            )
        });
        ExecutedSet {
            latest: newest_by(effective, |entry| {
                (entry.change_id().as_bytes(), entry.author().as_bytes())
            }),
        }
    }

    /// Whether `change_id` by `author` currently counts as executed.
    pub(crate) fn is_executed(&self, change_id: &str, author: &str) -> bool {
        self.executed(change_id, author).is_some()
    }

    /// The entry that makes `change_id` by `author` count as executed, if it does.
    pub(crate) fn executed(&self, change_id: &str, author: &str) -> Option<E> {
        self.executed_bytes(change_id.as_bytes(), author.as_bytes())
    }

    /// [`executed`](Self::executed), for an id and author as bytes.
    pub(crate) fn executed_bytes(&self, change_id: &[u8], author: &[u8]) -> Option<E> {
        self.latest
            .get(&(change_id, author))
            .copied()
            .filter(|entry| entry.state() == State::Executed)
    }

    /// Every entry that makes its (changeId, author) count as executed, in no order.
    pub(crate) fn applied(&self) -> impl Iterator<Item = E> + '_ {
        self.latest
            .values()
            .copied()
            .filter(|entry| entry.state() == State::Executed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn states_and_types_parse_from_text_or_bytes() {
        let states = [
            State::Executed,
            State::Failed,
            State::RolledBack,
            State::RollbackFailed,
            State::Ignored,
        ];
        for state in states {
            assert_eq!(State::parse(state.as_str()), Some(state));
            assert_eq!(State::parse(state.as_str().as_bytes()), Some(state));
        }
        for entry_type in [EntryType::Execution, EntryType::BeforeExecution] {
            assert_eq!(EntryType::parse(entry_type.as_str()), Some(entry_type));
            assert_eq!(
                EntryType::parse(entry_type.as_str().as_bytes()),
                Some(entry_type)
            );
        }
        assert_eq!(State::parse("executed"), None);
        assert_eq!(State::parse(b"EXECUTION"), None);
        assert_eq!(EntryType::parse(b"EXECUTED"), None);
    }

    fn entry(id: &str, secs: u64, state: State) -> HistoryEntry {
        HistoryEntry {
            execution_id: format!("run-{secs}"),
            change_id: id.into(),
            author: "a".into(),
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            state,
            entry_type: EntryType::Execution,
            change_log_class: "T".into(),
            change_set_method: "execute".into(),
            metadata: None,
            execution_millis: 1,
            execution_hostname: "h".into(),
            error_trace: None,
            system_change: false,
            checksum: None,
        }
    }

    #[test]
    fn an_entry_records_a_step_done_by_its_type_and_state() {
        let executed = entry("u", 1, State::Executed);
        let rolled_back = entry("u", 2, State::RolledBack);
        let before = HistoryEntry {
            change_id: format!("u{BEFORE_SUFFIX}"),
            entry_type: EntryType::BeforeExecution,
            ..entry("u", 3, State::Executed)
        };
        let failed = entry("u", 4, State::Failed);
        let done = |e: &HistoryEntry| -> Vec<Step> {
            Step::ALL
                .into_iter()
                .filter(|&step| e.records_done("u", step))
                .collect()
        };
        assert_eq!(done(&executed), [Step::Execution]);
        assert_eq!(done(&rolled_back), [Step::RollbackExecution]);
        assert_eq!(done(&before), [Step::BeforeExecution]);
        assert_eq!(done(&failed), []);
        assert!(!executed.records_done("v", Step::Execution), "another unit");
    }

    #[test]
    fn newest_effective_state_decides() {
        let history = [
            entry("x", 1, State::Executed),
            entry("x", 2, State::RolledBack),
            entry("y", 1, State::RolledBack),
            entry("y", 2, State::Executed),
            entry("z", 1, State::Executed),
            entry("z", 2, State::Failed),
            entry("w", 1, State::Ignored),
        ];
        let set = ExecutedSet::from_entries(&history);
        assert!(
            !set.is_executed("x", "a"),
            "a later rollback makes x pending"
        );
        assert!(set.is_executed("y", "a"), "a later execution wins");
        assert!(set.is_executed("z", "a"), "failed entries do not count");
        assert!(!set.is_executed("w", "a"), "ignored entries do not count");
        assert!(!set.is_executed("x", "b"), "author is part of the key");
    }
}

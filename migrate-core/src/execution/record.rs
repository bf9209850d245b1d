//! The history entries a run writes, built as pure functions of what happened.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::history::{self, EntryType, HistoryEntry, State, BEFORE_SUFFIX};
use crate::plan::{Decision, PlannedUnit};
use crate::unit::Step;

/// What every entry of one run shares.
pub(crate) struct RunRecord<'r, M> {
    pub(crate) execution_id: &'r str,
    pub(crate) hostname: String,
    pub(crate) metadata: Option<M>,
}

impl<M: Clone> RunRecord<'_, M> {
    /// A step that executed in `elapsed`.
    pub(crate) fn executed(
        &self,
        planned: &PlannedUnit,
        entry_type: EntryType,
        elapsed: Duration,
    ) -> HistoryEntry<M> {
        self.completed(planned, entry_type, State::Executed, elapsed)
    }

    /// A step that completed in `elapsed`, ending in `state` (EXECUTED, or ROLLED_BACK for
    /// an undo).
    pub(crate) fn completed(
        &self,
        planned: &PlannedUnit,
        entry_type: EntryType,
        state: State,
        elapsed: Duration,
    ) -> HistoryEntry<M> {
        let mut entry = self.entry(planned, entry_type, state, None);
        entry.execution_millis = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        entry
    }

    /// A step that ended in `state` without executing (failed, rolled back, ignored), with
    /// its JSON error trace if there is one.
    pub(crate) fn entry(
        &self,
        planned: &PlannedUnit,
        entry_type: EntryType,
        state: State,
        error_trace: Option<String>,
    ) -> HistoryEntry<M> {
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
            author: planned.author.clone().into_owned(),
            timestamp: SystemTime::now(),
            state,
            entry_type,
            change_log_class: unit.type_path().to_owned(),
            change_set_method: method.to_owned(),
            // Mongock records its system changes without the run's metadata.
            metadata: if unit.is_system() {
                None
            } else {
                self.metadata.clone()
            },
            execution_millis: -1,
            execution_hostname: self.hostname.clone(),
            error_trace,
            system_change: unit.is_system(),
            checksum: Some(unit.checksum()),
        }
    }
}

/// Builds the JSON `errorTrace` of a failed step, with the rollback error if there was one.
/// Compact, as Mongock writes it (Gson's `toJson`): `{"execution-error":"..."}`.
pub(crate) fn error_trace(execution: &str, rollback: Option<&str>) -> String {
    let mut out = String::from("{\"execution-error\":");
    push_json_string(&mut out, execution);
    if let Some(rollback) = rollback {
        out.push_str(",\"rollback-error\":");
        push_json_string(&mut out, rollback);
    }
    out.push('}');
    out
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::error_trace;

    #[test]
    fn error_trace_is_compact_json_with_both_errors_as_mongock_writes_it() {
        assert_eq!(
            error_trace("bad \"quote\"\n", Some("undo")),
            r#"{"execution-error":"bad \"quote\"\n","rollback-error":"undo"}"#
        );
        assert_eq!(error_trace("x", None), r#"{"execution-error":"x"}"#);
    }
}

/// The runs that recorded each step as done (EXECUTED, or ROLLED_BACK for the rollbacks),
/// from the history read under the lock; see [`RunContext::recorded_by`].
///
/// [`RunContext::recorded_by`]: crate::RunContext::recorded_by
#[derive(Default)]
pub(crate) struct Recorded {
    runs: HashMap<(String, String, EntryType, State), Vec<String>>,
    /// The (changeId, author) of every unit whose newest execution entry records a failure.
    failed_last: HashSet<(String, String)>,
}

impl Recorded {
    pub(crate) fn new<M>(history: &[HistoryEntry<M>]) -> Self {
        let failed_last = history::newest_by_key(
            history
                .iter()
                .filter(|e| e.entry_type == EntryType::Execution && e.state != State::Ignored),
        )
        .into_iter()
        .filter(|(_, entry)| entry.records_failure())
        .map(|((id, author), _)| (id.to_owned(), author.to_owned()))
        .collect();
        let mut runs: HashMap<_, Vec<String>> = HashMap::new();
        for entry in history {
            if matches!(entry.state, State::Executed | State::RolledBack) {
                let key = (
                    entry.change_id.clone(),
                    entry.author.clone(),
                    entry.entry_type,
                    entry.state,
                );
                runs.entry(key)
                    .or_default()
                    .push(entry.execution_id.clone());
            }
        }
        Recorded { runs, failed_last }
    }

    /// Whether the run records `planned` when it succeeds: on its first run, and when it
    /// runs again (`run_always`) after its last run failed, so that the history says it
    /// recovered.
    pub(crate) fn records(&self, planned: &PlannedUnit) -> bool {
        match planned.decision {
            Decision::Run => true,
            Decision::RunAgain => self
                .failed_last
                .contains(&(planned.unit.id().to_owned(), planned.author.to_string())),
            Decision::Skip(_) => false,
        }
    }

    /// The runs that recorded `step` of `planned` as done.
    pub(crate) fn by(&self, planned: &PlannedUnit, step: Step) -> Arc<[String]> {
        let (entry_type, state) = history::recorded_as(step);
        let change_id = history::change_id(planned.unit.id(), entry_type);
        let key = (change_id, planned.author.to_string(), entry_type, state);
        self.runs
            .get(&key)
            .map_or_else(Arc::default, |runs| runs.as_slice().into())
    }
}

//! The state of every unit as the history records it: what `Runner::status` returns.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::SystemTime;

use crate::drift::Drift;
use crate::history::{newest_by_key, EntryType, ExecutedSet, HistoryEntry, State};
use crate::ids::format_utc;
use crate::plan::{unknown_applied, Decision, KnownUnits, Plan};
use crate::report::SkipReason;
use crate::text::{skip_text, write_table};
use crate::unit::ChangeUnit;
use crate::validate::order_inversions;

/// Every unit of the binary with its recorded state, and the history rows of units the binary
/// does not contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Every unit in execution order.
    pub units: Vec<UnitStatus>,
    /// History rows whose unit (id and author) is not in this binary (deleted units, other
    /// services, other runtimes), newest row per (changeId, author), oldest first. Those with
    /// [`blocks_run`](UnknownEntry::blocks_run) set make a run refuse to start.
    pub unknown: Vec<UnknownEntry>,
}

/// One unit in a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    /// The unit id.
    pub id: String,
    /// The author it runs as.
    pub author: String,
    /// Its order key.
    pub order: String,
    /// What the history says about it.
    pub state: UnitState,
    /// Whether the next run applies it.
    pub pending: bool,
    /// Whether the next run applies it again: a `run_always` unit that is already applied.
    pub runs_again: bool,
    /// Whether it runs on every run.
    pub run_always: bool,
    /// Set when its code changed since it ran.
    pub drift: Option<Drift>,
    /// Whether it is pending while a unit ordered after it is applied: it will run after
    /// units that were meant to follow it.
    pub out_of_order: bool,
    /// The first three units that run after this one although their numeric orders are
    /// smaller than its own (ids, in run order): orders compare as text, so `"10"` runs
    /// before `"9"`. Empty unless numeric orders of different widths are mixed; pad them to
    /// one width.
    pub runs_before_smaller_orders: Vec<String>,
    /// How many units run after this one although their numeric orders are smaller.
    pub runs_before_smaller_count: usize,
}

/// The recorded state of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnitState {
    /// Never recorded: it has not run.
    Pending,
    /// Applied.
    Executed {
        /// When its execution ended.
        at: SystemTime,
        /// The host that ran it (`executionHostname`).
        host: String,
        /// How long its execution took, in milliseconds.
        millis: i64,
    },
    /// Its last run failed and it has not been applied since, or, for a `run_always` unit,
    /// the newest recorded rerun failed (the next run runs it again); its changes were undone
    /// by the transaction or its rollback methods unless `rollback_failed`.
    Failed {
        /// When it failed.
        at: SystemTime,
        /// The recorded error trace, if any.
        error: Option<String>,
        /// Whether undoing its changes failed too (`ROLLBACK_FAILED`).
        rollback_failed: bool,
    },
    /// It was applied, then undone.
    RolledBack {
        /// When it was undone.
        at: SystemTime,
    },
    /// The runner's filters leave it out (profile, system version).
    Skipped(SkipReason),
}

/// A history row whose unit is not in the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEntry {
    /// `changeId`.
    pub id: String,
    /// `author`.
    pub author: String,
    /// `changeLogClass`: a Rust type path, or a Java class name.
    pub change_log_class: String,
    /// The row's state.
    pub state: State,
    /// When it was written.
    pub at: SystemTime,
    /// Whether this row makes a run refuse to start with
    /// [`Error::UnknownHistory`](crate::Error::UnknownHistory): it records a step of Rust code
    /// that is still applied, and the runner does not allow unknown history. Rows of other
    /// runtimes (Java class names), system changes and units undone before they were deleted
    /// never block.
    pub blocks_run: bool,
}

impl Status {
    /// Builds the status of `plan`'s units from `history`; `allow_unknown_history` is the
    /// runner's option.
    pub(crate) fn new<M>(
        plan: &Plan,
        history: &[HistoryEntry<M>],
        allow_unknown_history: bool,
    ) -> Self {
        let executed = ExecutedSet::from_entries(history);
        let newest = newest_by_key(history.iter().filter(|entry| {
            entry.entry_type == EntryType::Execution && entry.state != State::Ignored
        }));
        let ordered: Vec<_> = plan.units().iter().map(|p| p.unit).collect();
        // Keyed by the unit's address: ids are unique only together with the author.
        let mut inversions: HashMap<*const ChangeUnit, (Vec<String>, usize)> =
            order_inversions(&ordered)
                .into_iter()
                .map(|inversion| {
                    let late = inversion.shown.iter().map(|u| u.id().to_owned()).collect();
                    (std::ptr::from_ref(inversion.early), (late, inversion.count))
                })
                .collect();
        let last_applied = plan
            .units()
            .iter()
            .rposition(|p| executed.is_executed(p.unit.id(), &p.author));
        let units = plan
            .units()
            .iter()
            .enumerate()
            .map(|(position, planned)| {
                let id = planned.unit.id();
                let newest_row = newest.get(&(id, &planned.author));
                let state = match (executed.executed(id, &planned.author), newest_row) {
                    // A `run_always` unit runs again on every run; after its first execution
                    // only its failures, and the first success after one, are recorded. So
                    // its newest row is its state when that row is a failure.
                    (Some(entry), Some(row))
                        if planned.unit.run_always()
                            && row.timestamp > entry.timestamp
                            && row.records_failure() =>
                    {
                        UnitState::Failed {
                            at: row.timestamp,
                            error: row.error_trace.clone(),
                            rollback_failed: row.state == State::RollbackFailed,
                        }
                    }
                    (Some(entry), _) => UnitState::Executed {
                        at: entry.timestamp,
                        host: entry.execution_hostname.clone(),
                        millis: entry.execution_millis,
                    },
                    (None, _) => match (newest_row, &planned.decision) {
                        // An undo records no error; the rollback of a failed execution
                        // records the failure, so that unit failed.
                        (Some(entry), _)
                            if entry.state == State::RolledBack && entry.error_trace.is_none() =>
                        {
                            UnitState::RolledBack {
                                at: entry.timestamp,
                            }
                        }
                        (Some(entry), _) if entry.records_failure() => UnitState::Failed {
                            at: entry.timestamp,
                            error: entry.error_trace.clone(),
                            rollback_failed: entry.state == State::RollbackFailed,
                        },
                        (_, Decision::Skip(reason)) => UnitState::Skipped(reason.clone()),
                        _ => UnitState::Pending,
                    },
                };
                let pending = planned.decision == Decision::Run;
                let (runs_before_smaller_orders, runs_before_smaller_count) = inversions
                    .remove(&std::ptr::from_ref(planned.unit))
                    .unwrap_or_default();
                UnitStatus {
                    id: id.to_owned(),
                    author: planned.author.clone().into_owned(),
                    order: planned.unit.order().to_owned(),
                    state,
                    pending,
                    runs_again: planned.decision == Decision::RunAgain,
                    run_always: planned.unit.run_always(),
                    drift: planned.drift.clone(),
                    out_of_order: pending && last_applied.is_some_and(|last| position < last),
                    runs_before_smaller_orders,
                    runs_before_smaller_count,
                }
            })
            .collect();
        Status {
            units,
            unknown: unknown_entries(plan, history, allow_unknown_history),
        }
    }

    /// The units the next run applies.
    pub fn pending(&self) -> impl Iterator<Item = &UnitStatus> {
        self.units.iter().filter(|u| u.pending)
    }

    /// The applied units whose code changed since they ran.
    pub fn drifted(&self) -> impl Iterator<Item = &UnitStatus> {
        self.units.iter().filter(|u| u.drift.is_some())
    }

    /// The history rows that make a run refuse to start (see [`UnknownEntry::blocks_run`]).
    pub fn blocking(&self) -> impl Iterator<Item = &UnknownEntry> {
        self.unknown.iter().filter(|e| e.blocks_run)
    }

    /// The units whose numeric order is larger than that of a unit that runs after them (see
    /// [`UnitStatus::runs_before_smaller_orders`]).
    pub fn misordered(&self) -> impl Iterator<Item = &UnitStatus> {
        self.units
            .iter()
            .filter(|u| !u.runs_before_smaller_orders.is_empty())
    }

    /// Whether the database is up to date with the binary: nothing pending, nothing drifted,
    /// and no history that makes a run refuse to start ([`blocking`](Self::blocking)), so
    /// that a deploy gate (`migrate status --check`) does not pass a release whose run then
    /// fails at start-up.
    pub fn is_up_to_date(&self) -> bool {
        self.pending().next().is_none()
            && self.drifted().next().is_none()
            && self.blocking().next().is_none()
    }

    /// The unit `id`.
    pub fn unit(&self, id: &str) -> Option<&UnitStatus> {
        self.units.iter().find(|u| u.id == id)
    }
}

/// The newest row of every (changeId, author) whose unit (id and author) `plan` does not
/// contain, each marked when it makes a run refuse to start.
fn unknown_entries<M>(
    plan: &Plan,
    history: &[HistoryEntry<M>],
    allow_unknown_history: bool,
) -> Vec<UnknownEntry> {
    let known = KnownUnits::new(plan);
    let blocking: HashSet<(&str, &str)> = if allow_unknown_history {
        HashSet::new()
    } else {
        unknown_applied(plan, history)
            .into_iter()
            .map(|e| (e.change_id.as_str(), e.author.as_str()))
            .collect()
    };
    let newest = newest_by_key(
        history
            .iter()
            .filter(|e| !known.contains(&e.change_id, e.entry_type, &e.author)),
    );
    let mut unknown: Vec<UnknownEntry> = newest
        .into_values()
        .map(|e| UnknownEntry {
            id: e.change_id.clone(),
            author: e.author.clone(),
            change_log_class: e.change_log_class.clone(),
            state: e.state,
            at: e.timestamp,
            blocks_run: blocking.contains(&(e.change_id.as_str(), e.author.as_str())),
        })
        .collect();
    unknown.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    unknown
}

impl UnitState {
    /// A short lower-case label: `pending`, `executed`, `failed`, `rolled back`, `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            UnitState::Pending => "pending",
            UnitState::Executed { .. } => "executed",
            UnitState::Failed {
                rollback_failed: false,
                ..
            } => "failed",
            UnitState::Failed { .. } => "rollback failed",
            UnitState::RolledBack { .. } => "rolled back",
            UnitState::Skipped(_) => "skipped",
        }
    }

    /// When the state was recorded, if it was.
    pub fn at(&self) -> Option<SystemTime> {
        match self {
            UnitState::Executed { at, .. }
            | UnitState::Failed { at, .. }
            | UnitState::RolledBack { at } => Some(*at),
            UnitState::Pending | UnitState::Skipped(_) => None,
        }
    }
}

impl UnitStatus {
    /// What the status table shows after the state: host and duration, the skip reason,
    /// drift, order problems.
    pub fn detail(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        match &self.state {
            UnitState::Executed { host, millis, .. } => {
                parts.push(format!("{millis} ms on {host}"));
            }
            UnitState::Skipped(reason) => parts.push(skip_text(reason)),
            UnitState::Failed { .. } if self.pending => parts.push("runs again".into()),
            UnitState::RolledBack { .. } if self.pending => parts.push("runs again".into()),
            _ => {}
        }
        if self.run_always {
            parts.push("runs always".into());
        }
        if let Some(drift) = &self.drift {
            parts.push(format!(
                "code changed since it ran (checksum {} -> {})",
                drift.recorded, drift.current
            ));
        }
        if self.out_of_order {
            parts.push("ordered before an applied unit".into());
        }
        if !self.runs_before_smaller_orders.is_empty() {
            let mut units = self
                .runs_before_smaller_orders
                .iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let more = self
                .runs_before_smaller_count
                .saturating_sub(self.runs_before_smaller_orders.len());
            if more > 0 {
                units.push_str(&format!(" and {more} more"));
            }
            parts.push(format!(
                "runs before {units} although its order is larger (pad orders to one width)"
            ));
        }
        parts.join("; ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows = vec![vec![
            "ORDER".to_owned(),
            "ID".to_owned(),
            "AUTHOR".to_owned(),
            "STATE".to_owned(),
            "AT (UTC)".to_owned(),
            "DETAIL".to_owned(),
        ]];
        for unit in &self.units {
            rows.push(vec![
                unit.order.clone(),
                unit.id.clone(),
                unit.author.clone(),
                unit.state.label().to_owned(),
                unit.state.at().map(format_utc).unwrap_or_default(),
                unit.detail(),
            ]);
        }
        write_table(f, &rows)?;
        if !self.unknown.is_empty() {
            writeln!(f, "\nin the history, not in this binary:")?;
            let mut rows = vec![vec![
                "ID".to_owned(),
                "AUTHOR".to_owned(),
                "STATE".to_owned(),
                "AT (UTC)".to_owned(),
                "BLOCKS RUN".to_owned(),
                "CLASS".to_owned(),
            ]];
            for entry in &self.unknown {
                rows.push(vec![
                    entry.id.clone(),
                    entry.author.clone(),
                    entry.state.as_str().to_owned(),
                    format_utc(entry.at),
                    if entry.blocks_run { "yes" } else { "no" }.to_owned(),
                    entry.change_log_class.clone(),
                ]);
            }
            write_table(f, &rows)?;
            let blocking = self.blocking().count();
            if blocking > 0 {
                writeln!(
                    f,
                    "a run refuses to start: {blocking} of these record applied change units of \
                     Rust code; if they live in a library crate, reference it from the \
                     application (`use my_migrations as _;`); if they were deleted on purpose, \
                     set `allow_unknown_history(true)`"
                )?;
            }
        }
        let pending = self.pending().count();
        let drifted = self.drifted().count();
        write!(
            f,
            "\n{} units: {} applied, {pending} pending",
            self.units.len(),
            self.units
                .iter()
                .filter(|u| matches!(u.state, UnitState::Executed { .. }))
                .count(),
        )?;
        if drifted > 0 {
            write!(f, ", {drifted} changed since they ran")?;
        }
        writeln!(f)
    }
}

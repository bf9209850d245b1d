//! The database as `migrate-interop state` prints it (see `tests/interop/rust/src/state.rs`).

use std::collections::BTreeMap;

use crate::Result;

/// One application counter of `interop_counters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Counter {
    pub(super) n: i64,
    /// Who applied it, in order: `java` or `rust` per application.
    pub(super) by: Vec<String>,
}

/// One history document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    /// `rust` when its `changeLogClass` is a Rust path, else `java`.
    pub(super) writer: String,
    pub(super) change_id: String,
    pub(super) author: String,
    pub(super) state: String,
    pub(super) kind: String,
    pub(super) execution_id: String,
    /// Milliseconds since the epoch.
    pub(super) timestamp: String,
    pub(super) change_log_class: String,
    pub(super) change_set_method: String,
    pub(super) system_change: String,
    /// Relaxed extended JSON.
    pub(super) metadata: String,
    pub(super) execution_millis: String,
    pub(super) execution_hostname: String,
    /// `name:type,...` in the document's order.
    pub(super) fields: String,
    pub(super) error_trace: Option<String>,
}

/// The lock document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lock {
    pub(super) owner: String,
    pub(super) status: String,
    /// Milliseconds until `expiresAt` when it was read.
    pub(super) expires_in: i64,
    pub(super) fields: String,
}

#[derive(Debug, Clone, Default)]
pub(super) struct State {
    pub(super) counters: BTreeMap<String, Counter>,
    pub(super) rows: Vec<Row>,
    pub(super) locks: Vec<Lock>,
    /// `<collection> <name> <options>`, in `listIndexes` order.
    pub(super) indexes: Vec<String>,
    /// The rows of `dbchangelog`, the earlier history.
    pub(super) origin_rows: usize,
}

impl State {
    pub(super) fn parse(text: &str) -> Result<State> {
        let mut state = State::default();
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let wrong = || format!("`migrate-interop state` printed an unexpected line: {line:?}");
            match fields.as_slice() {
                ["counter", step, n, by] => {
                    let counter = Counter {
                        n: n.parse().map_err(|_| wrong())?,
                        by: by
                            .split(',')
                            .filter(|b| !b.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    };
                    state.counters.insert((*step).to_owned(), counter);
                }
                ["row", writer, change_id, author, row_state, kind, execution_id, timestamp, change_log_class, change_set_method, system_change, metadata, execution_millis, execution_hostname, fields] =>
                {
                    state.rows.push(Row {
                        writer: (*writer).to_owned(),
                        change_id: (*change_id).to_owned(),
                        author: (*author).to_owned(),
                        state: (*row_state).to_owned(),
                        kind: (*kind).to_owned(),
                        execution_id: (*execution_id).to_owned(),
                        timestamp: (*timestamp).to_owned(),
                        change_log_class: (*change_log_class).to_owned(),
                        change_set_method: (*change_set_method).to_owned(),
                        system_change: (*system_change).to_owned(),
                        metadata: (*metadata).to_owned(),
                        execution_millis: (*execution_millis).to_owned(),
                        execution_hostname: (*execution_hostname).to_owned(),
                        fields: (*fields).to_owned(),
                        error_trace: None,
                    });
                }
                ["origin", n] => state.origin_rows = n.parse().map_err(|_| wrong())?,
                ["trace", change_id, row_state, trace] => {
                    let row = state
                        .rows
                        .iter_mut()
                        .rev()
                        .find(|r| r.change_id == *change_id && r.state == *row_state)
                        .ok_or_else(wrong)?;
                    row.error_trace = Some((*trace).to_owned());
                }
                ["lock", owner, status, expires_in, fields] => state.locks.push(Lock {
                    owner: (*owner).to_owned(),
                    status: (*status).to_owned(),
                    expires_in: expires_in.parse().map_err(|_| wrong())?,
                    fields: (*fields).to_owned(),
                }),
                ["index", collection, name, options] => {
                    state.indexes.push(format!("{collection} {name} {options}"))
                }
                _ => return Err(wrong()),
            }
        }
        Ok(state)
    }

    /// How many times `step` was applied (0 when it never was).
    pub(super) fn applied(&self, step: &str) -> i64 {
        self.counters.get(step).map_or(0, |c| c.n)
    }

    /// The rows of `change_id`.
    pub(super) fn rows_of<'s>(&'s self, change_id: &'s str) -> impl Iterator<Item = &'s Row> {
        self.rows.iter().filter(move |r| r.change_id == change_id)
    }

    /// The `EXECUTED` rows of `change_id`.
    pub(super) fn executed_rows(&self, change_id: &str) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.change_id == change_id && r.state == "EXECUTED")
            .collect()
    }
}

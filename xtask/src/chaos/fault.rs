//! The faults of the `failpoints` scenario and how each is aimed at one command.
//!
//! `failCommand` matches commands by name only, and the runner sends several commands of the
//! same name (an `update` to the lock, to a unit's data, to the history). So a fault is aimed
//! from a probe: a fault-free run of the service that lists every command it sends
//! (`CHAOS_TRACE_COMMANDS`) between the markers of its units. The aim picks one command of
//! that list; the fault then names its command and skips the commands of the same name sent
//! before it. Whatever commands the store uses, the fault hits the one aimed at, and the
//! trial checks that it did.

use super::TargetMode;

/// One fault: a `failCommand` fail point for the service.
pub(super) struct Fault {
    pub(super) name: &'static str,
    /// Commit faults need transactions.
    pub(super) replica_set_only: bool,
    aim: Aim,
    /// How many fail in a row; `None`: every one until the fault is turned off.
    times: Option<u32>,
    effect: Effect,
}

/// Which command of the probe's list a fault hits first.
#[derive(Clone, Copy)]
enum Aim {
    /// The first write to the lock collection: taking the lock.
    LockAcquisition,
    /// The `n`th read of the history collection (1: the unlocked read, 2: the re-read under
    /// the lock).
    HistoryRead(usize),
    /// The first write to the history collection after `chaos-03` finished: its entry.
    HistoryWriteOfChaos03,
    /// The first `commitTransaction`.
    Commit,
}

/// What the failing command does.
#[derive(Clone, Copy)]
enum Effect {
    /// Fails with this code, and this label instead of the server's own.
    Error(i32, Option<&'static str>),
    /// The server drops the connection.
    CloseConnection,
    /// The command runs, and the reply carries a write concern error with this code.
    WriteConcernError(i32),
}

/// A non-transient server error (OperationFailed).
const OPERATION_FAILED: Effect = Effect::Error(96, None);

const HISTORY: &str = "mongockChangeLog";
const LOCK: &str = "mongockLock";
const WRITES: [&str; 4] = ["update", "findAndModify", "insert", "delete"];
const READS: [&str; 2] = ["find", "aggregate"];

pub(super) const FAULTS: &[Fault] = &[
    Fault {
        name: "commit_transient",
        replica_set_only: true,
        aim: Aim::Commit,
        times: Some(1),
        effect: Effect::Error(112, Some("TransientTransactionError")),
    },
    Fault {
        name: "commit_unknown_result",
        replica_set_only: true,
        aim: Aim::Commit,
        times: Some(1),
        effect: Effect::Error(50, Some("UnknownTransactionCommitResult")),
    },
    Fault {
        name: "commit_write_concern",
        replica_set_only: true,
        aim: Aim::Commit,
        times: None,
        effect: Effect::WriteConcernError(64),
    },
    Fault {
        name: "history_write_error",
        replica_set_only: false,
        aim: Aim::HistoryWriteOfChaos03,
        times: Some(1),
        effect: OPERATION_FAILED,
    },
    Fault {
        name: "history_write_close",
        replica_set_only: false,
        aim: Aim::HistoryWriteOfChaos03,
        times: Some(1),
        effect: Effect::CloseConnection,
    },
    Fault {
        name: "history_read_error",
        replica_set_only: false,
        aim: Aim::HistoryRead(1),
        times: Some(1),
        effect: OPERATION_FAILED,
    },
    Fault {
        name: "history_reread_error",
        replica_set_only: false,
        aim: Aim::HistoryRead(2),
        times: Some(1),
        effect: OPERATION_FAILED,
    },
    Fault {
        name: "lock_acquire_error",
        replica_set_only: false,
        aim: Aim::LockAcquisition,
        times: Some(1),
        effect: OPERATION_FAILED,
    },
    Fault {
        name: "lock_acquire_close",
        replica_set_only: false,
        aim: Aim::LockAcquisition,
        times: Some(1),
        effect: Effect::CloseConnection,
    },
];

/// A fault aimed at one command of a probe.
pub(super) struct Aimed {
    /// The `migrate-chaos fault` options.
    pub(super) options: Vec<String>,
    /// The command hit, as the service reports it: `update on mongockChangeLog`.
    pub(super) target: String,
}

/// A command the probe saw, or one of its unit markers.
enum Seen<'a> {
    Command { name: &'a str, collection: &'a str },
    Marker(&'a str),
}

fn seen(line: &str) -> Seen<'_> {
    match line.strip_prefix("chaos: command started: ") {
        Some(command) => {
            let (name, collection) = command.split_once(" on ").unwrap_or((command, ""));
            Seen::Command { name, collection }
        }
        None => Seen::Marker(line),
    }
}

impl Fault {
    /// Aims the fault at its command in `probe` (the probe's output lines). `None` when the
    /// probe sent no such command.
    pub(super) fn aim(&self, probe: &[String]) -> Option<Aimed> {
        let lines: Vec<Seen<'_>> = probe.iter().map(|l| seen(l)).collect();
        let is = |line: &Seen<'_>, names: &[&str], in_collection: &str| {
            matches!(line, Seen::Command { name, collection }
                if names.contains(name) && (in_collection.is_empty() || *collection == in_collection))
        };
        let at = match self.aim {
            Aim::LockAcquisition => lines.iter().position(|l| is(l, &WRITES, LOCK)),
            Aim::HistoryRead(n) => lines
                .iter()
                .enumerate()
                .filter(|(_, l)| is(l, &READS, HISTORY))
                .nth(n - 1)
                .map(|(i, _)| i),
            Aim::HistoryWriteOfChaos03 => {
                let finished = lines
                    .iter()
                    .position(|l| matches!(l, Seen::Marker("chaos: chaos-03 finished")))?;
                lines
                    .iter()
                    .skip(finished)
                    .position(|l| is(l, &WRITES, HISTORY))
                    .map(|i| finished + i)
            }
            Aim::Commit => lines.iter().position(|l| is(l, &["commitTransaction"], "")),
        }?;
        let Seen::Command { name, collection } = lines[at] else {
            return None;
        };
        let skip = lines[..at]
            .iter()
            .filter(|l| matches!(l, Seen::Command { name: n, .. } if *n == name))
            .count();
        let mut options = vec![
            "--command".to_owned(),
            name.to_owned(),
            "--skip".to_owned(),
            skip.to_string(),
        ];
        match self.times {
            Some(times) => options.extend(["--times".to_owned(), times.to_string()]),
            None => options.push("--always-on".to_owned()),
        }
        match self.effect {
            Effect::Error(code, label) => {
                options.extend(["--error-code".to_owned(), code.to_string()]);
                if let Some(label) = label {
                    options.extend(["--label".to_owned(), label.to_owned()]);
                }
            }
            Effect::CloseConnection => options.push("--close-connection".to_owned()),
            Effect::WriteConcernError(code) => {
                options.extend(["--write-concern-error".to_owned(), code.to_string()]);
            }
        }
        let target = if collection.is_empty() {
            name.to_owned()
        } else {
            format!("{name} on {collection}")
        };
        Some(Aimed { options, target })
    }

    /// Whether the fault applies to a server in `mode`.
    pub(super) fn applies_to(&self, mode: TargetMode) -> bool {
        !self.replica_set_only || mode == TargetMode::ReplicaSet
    }
}

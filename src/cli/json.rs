//! The `--json` objects; their shapes are documented in the module docs of `cli`.

use std::time::{Duration, SystemTime};

use mongodb::bson::{Bson, DateTime, Document};
use serde_json::{json, Map, Value};

use super::failure::{CorruptLock, Exit, Failure};
use super::out::outln;
use super::{Done, Entry};
use crate::batch::{LeftOver, StoredCheckpoint};
use crate::{
    AcceptedChecksum, Decision, Drift, HistoryEntry, Outcome, Plan, ReleaseReason, Report,
    RunStatus, Severity, SkipReason, Status, Step, Unlock, Validation,
};

/// Prints `value` on one line of standard output.
pub(super) fn print(value: &Value) {
    outln!("{value}");
}

fn time(at: SystemTime) -> Value {
    DateTime::from_system_time(at)
        .try_to_rfc3339_string()
        .map_or(Value::Null, Value::String)
}

/// A time read from a history row, or `None` for a row without it: the store reads a
/// missing `timestamp` as the Unix epoch, a time no history row was written at.
pub(super) fn recorded_at(at: SystemTime) -> Option<SystemTime> {
    (at != SystemTime::UNIX_EPOCH).then_some(at)
}

/// A time read from a history row, or `null`.
fn recorded_time(at: SystemTime) -> Value {
    recorded_at(at).map_or(Value::Null, time)
}

/// A text field of a history row, or `null` for one it leaves out (read as empty).
fn recorded_text(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_owned())
    }
}

/// The message of an `errorTrace`, which holds JSON as Mongock writes it:
/// `{"execution-error":"...","rollback-error":"..."}`; another text is the message itself.
fn error_message(trace: &str) -> String {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(trace) else {
        return trace.to_owned();
    };
    match (
        fields.get("execution-error").and_then(Value::as_str),
        fields.get("rollback-error").and_then(Value::as_str),
    ) {
        (Some(execution), Some(rollback)) => format!("{execution}; rollback failed: {rollback}"),
        (Some(execution), None) => execution.to_owned(),
        (None, Some(rollback)) => format!("rollback failed: {rollback}"),
        (None, None) => trace.to_owned(),
    }
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

fn drift(drift: Option<&Drift>) -> Value {
    drift.map_or(
        Value::Null,
        |d| json!({ "recorded": d.recorded, "current": d.current }),
    )
}

fn skip(reason: &SkipReason) -> Value {
    match reason {
        SkipReason::AlreadyExecuted => json!({ "reason": "already_executed" }),
        SkipReason::Profile => json!({ "reason": "profile" }),
        SkipReason::SystemVersion { version } => {
            json!({ "reason": "system_version", "version": version })
        }
        SkipReason::AfterTarget { target } => {
            json!({ "reason": "after_target", "target": target })
        }
        other => json!({ "reason": format!("{other:?}").to_lowercase() }),
    }
}

pub(super) fn status(
    status: &Status,
    checkpoints: &[(StoredCheckpoint, Option<LeftOver>)],
    history: &[HistoryEntry<Document>],
) -> Value {
    use crate::{EntryType, UnitState};
    let units: Vec<Value> = status
        .units
        .iter()
        .map(|u| {
            let (host, millis, error, skip_reason) = match &u.state {
                UnitState::Executed { host, millis, .. } => (
                    recorded_text(host),
                    if *millis >= 0 {
                        json!(millis)
                    } else {
                        Value::Null
                    },
                    Value::Null,
                    Value::Null,
                ),
                UnitState::Failed { at, error, .. } => {
                    // The row the status read the failure from holds its host and duration.
                    let row = history.iter().find(|e| {
                        e.change_id == u.id
                            && e.author == u.author
                            && e.entry_type == EntryType::Execution
                            && e.timestamp == *at
                            && e.error_trace == *error
                    });
                    (
                        row.map_or(Value::Null, |e| recorded_text(&e.execution_hostname)),
                        row.filter(|e| e.execution_millis >= 0)
                            .map_or(Value::Null, |e| json!(e.execution_millis)),
                        error.as_deref().map(error_message).into(),
                        Value::Null,
                    )
                }
                UnitState::Skipped(reason) => (Value::Null, Value::Null, Value::Null, skip(reason)),
                _ => (Value::Null, Value::Null, Value::Null, Value::Null),
            };
            json!({
                "id": u.id,
                "author": u.author,
                "order": u.order,
                "state": u.state.label().replace(' ', "_"),
                "at": u.state.at().map_or(Value::Null, recorded_time),
                "host": host,
                "millis": millis,
                "error": error,
                "skip_reason": skip_reason,
                "pending": u.pending,
                "run_always": u.run_always,
                "runs_again": u.runs_again,
                "out_of_order": u.out_of_order,
                "drift": drift(u.drift.as_ref()),
            })
        })
        .collect();
    let unknown: Vec<Value> = status
        .unknown
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "author": e.author,
                "class": e.change_log_class,
                "state": e.state.as_str(),
                "at": recorded_time(e.at),
                "blocks_run": e.blocks_run,
            })
        })
        .collect();
    let checkpoints: Vec<Value> = checkpoints
        .iter()
        .map(|(c, left_over)| {
            json!({
                "name": c.name,
                "namespace": c.namespace,
                "last_id": c.last_id.clone().map(Bson::into_relaxed_extjson),
                "done": c.done,
                "complete": c.complete,
                "execution_id": c.execution_id,
                "change_id": c.change_id,
                "step": c.step.map(Step::attribute),
                "left_over": left_over.is_some(),
            })
        })
        .collect();
    json!({
        "command": "status",
        "up_to_date": status.is_up_to_date(),
        "units": units,
        "unknown": unknown,
        "checkpoints": checkpoints,
    })
}

/// The plan, as `plan` prints it, or `run --dry-run` with `command` `"run"`.
pub(super) fn plan(plan: &Plan, command: &str) -> Value {
    let units: Vec<Value> = plan
        .units()
        .iter()
        .map(|p| {
            let (action, skip_reason) = match &p.decision {
                Decision::Run => ("run", Value::Null),
                Decision::RunAgain => ("run_again", Value::Null),
                Decision::Skip(reason) => ("skip", skip(reason)),
            };
            json!({
                "id": p.unit.id(),
                "author": p.author,
                "order": p.unit.order(),
                "action": action,
                "skip_reason": skip_reason,
                "drift": drift(p.drift.as_ref()),
            })
        })
        .collect();
    let mut value = json!({
        "command": command,
        "pending": plan.pending().count(),
        "units": units,
    });
    if command == "run" {
        value["dry_run"] = Value::Bool(true);
    }
    value
}

/// One unit of a run's or an undo's report.
fn unit(
    id: &str,
    author: &str,
    order: &str,
    outcome: &Outcome,
    elapsed: Option<Duration>,
) -> Value {
    let (outcome, skip_reason, error, rolled_back) = match outcome {
        Outcome::Executed => ("executed", Value::Null, Value::Null, Value::Null),
        Outcome::ExecutedAgain => ("executed_again", Value::Null, Value::Null, Value::Null),
        Outcome::Skipped(reason) => ("skipped", skip(reason), Value::Null, Value::Null),
        Outcome::Failed { error, rolled_back } => {
            ("failed", Value::Null, json!(error), json!(rolled_back))
        }
        Outcome::RolledBack => ("rolled_back", Value::Null, Value::Null, Value::Null),
        _ => ("not_run", Value::Null, Value::Null, Value::Null),
    };
    json!({
        "id": id,
        "author": author,
        "order": order,
        "outcome": outcome,
        "skip_reason": skip_reason,
        "error": error,
        "rolled_back": rolled_back,
        "elapsed_ms": elapsed.map(millis),
    })
}

/// The report of `run` or `undo`.
pub(super) fn report(report: &Report, command: &str) -> Value {
    let units: Vec<Value> = report
        .units
        .iter()
        .map(|u| unit(u.id, &u.author, u.order, &u.outcome, u.elapsed))
        .collect();
    let status = match report.status {
        RunStatus::Completed => "completed",
        RunStatus::Disabled => "disabled",
        _ => "lock_unavailable",
    };
    json!({
        "command": command,
        "dry_run": false,
        "execution_id": report.execution_id,
        "status": status,
        "elapsed_ms": millis(report.elapsed),
        "units": units,
    })
}

pub(super) fn history(history: &[HistoryEntry<Document>]) -> Value {
    let entries: Vec<Value> = history
        .iter()
        .map(|e| {
            json!({
                "executionId": recorded_text(&e.execution_id),
                "changeId": e.change_id,
                "author": e.author,
                "timestamp": recorded_time(e.timestamp),
                "state": e.state.as_str(),
                "type": e.entry_type.as_str(),
                "changeLogClass": e.change_log_class,
                "changeSetMethod": e.change_set_method,
                "executionMillis": e.execution_millis,
                "executionHostname": recorded_text(&e.execution_hostname),
                "errorTrace": e.error_trace,
                "systemChange": e.system_change,
                "checksum": e.checksum,
                "metadata": e.metadata.clone().map_or(Value::Null, |m| Bson::Document(m).into_relaxed_extjson()),
            })
        })
        .collect();
    json!({ "command": "history", "entries": entries })
}

pub(super) fn unlock(unlock: &Unlock) -> Value {
    let (lock, owner, expires_at, reason) = match unlock {
        Unlock::Released {
            owner,
            expires_at,
            reason,
        } => {
            let reason = match reason {
                ReleaseReason::Expired => "expired",
                ReleaseReason::OwnedByThisProcess => "owned_by_this_process",
                ReleaseReason::Forced => "forced",
            };
            ("released", json!(owner), time(*expires_at), json!(reason))
        }
        Unlock::HeldBy { owner, expires_at } => {
            ("held", json!(owner), time(*expires_at), Value::Null)
        }
        _ => ("free", Value::Null, Value::Null, Value::Null),
    };
    json!({
        "command": "unlock",
        "lock": lock,
        "owner": owner,
        "expires_at": expires_at,
        "reason": reason,
        "corrupt": null,
    })
}

/// `unlock --force` that deleted a lock document it could not read.
fn corrupt_lock_deleted(corrupt: &CorruptLock) -> Value {
    json!({
        "command": "unlock",
        "lock": "released",
        "owner": null,
        "expires_at": null,
        "reason": "corrupt",
        "corrupt": {
            "id": corrupt.id,
            "namespace": corrupt.namespace,
            "problem": corrupt.problem,
        },
    })
}

pub(super) fn validation(validation: &Validation) -> Value {
    let findings: Vec<Value> = validation
        .findings
        .iter()
        .map(|f| {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            json!({ "severity": severity, "unit": f.unit, "message": f.message })
        })
        .collect();
    json!({
        "command": "validate",
        "valid": validation.is_valid(),
        "units": validation.units,
        "findings": findings,
    })
}

pub(super) fn accepted(accepted: &[AcceptedChecksum]) -> Value {
    let accepted: Vec<Value> = accepted
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "author": a.author,
                "recorded": a.drift.recorded,
                "current": a.drift.current,
            })
        })
        .collect();
    json!({ "command": "accept-checksums", "accepted": accepted })
}

/// The object printed in place of `command`'s when it fails.
pub(super) fn failure(command: &str, failure: &Failure) -> Value {
    let causes: Vec<String> = failure.causes().collect();
    let mut value = json!({
        "command": command,
        "exit_code": failure.exit as u8,
        "error": {
            "kind": failure.kind(),
            "message": failure.error.to_string(),
            "causes": causes,
        },
    });
    if let Some(units) = &failure.units {
        let units: Vec<Value> = units
            .iter()
            .map(|u| unit(&u.id, &u.author, &u.order, &u.outcome, u.elapsed))
            .collect();
        value["units"] = Value::Array(units);
    }
    value
}

/// The object of a command in one database.
pub(super) fn done(done: &Done) -> Value {
    match done {
        Done::Status {
            status: s,
            checkpoints,
            history,
            ..
        } => status(s, checkpoints, history),
        Done::Plan { plan: p, command } => plan(p, command),
        Done::History { entries, .. } => history(entries),
        Done::Report { report: r, command } => report(r, command),
        Done::Unlock(u) => unlock(u),
        Done::CorruptLockDeleted(c) => corrupt_lock_deleted(c),
        Done::Validation(v) => validation(v),
        Done::Accepted(a) => accepted(a),
    }
}

/// The object of a command run with `--databases`: each database's own object (or failure
/// object) with its name and exit code, and the combined exit code.
pub(super) fn databases(command: &str, entries: &[Entry], exit: Exit) -> Value {
    let databases: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut object = Map::new();
            object.insert("database".into(), json!(entry.database));
            object.insert("exit_code".into(), json!(entry.exit() as u8));
            if let Value::Object(fields) = match &entry.result {
                Ok(d) => done(d),
                Err(f) => failure(command, f),
            } {
                object.extend(fields);
            }
            Value::Object(object)
        })
        .collect();
    json!({
        "command": command,
        "exit_code": exit as u8,
        "databases": databases,
    })
}

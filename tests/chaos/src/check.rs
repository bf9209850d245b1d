//! What the database must look like after a trial.

use std::collections::BTreeMap;
use std::str::FromStr;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Database;

use crate::units::{COUNTERS, INSERTS, UNIT_IDS};
use crate::BoxError;

const HISTORY: &str = "mongockChangeLog";
const LOCK: &str = "mongockLock";

/// What a trial promises about the units' effects. Every expectation also requires the lock
/// document to be gone (released) and at most one `EXECUTED` execution row per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expectation {
    /// Converged, each unit applied exactly once: one `EXECUTED` row, counter 1 and one
    /// inserted document per unit.
    Exact,
    /// Converged, each unit applied at least once: one `EXECUTED` row, counter and inserted
    /// documents at least 1. What a standalone server (no transactions) promises when a
    /// process dies or stalls in the middle of a unit.
    AtLeastOnce,
    /// Not necessarily converged, but the history tells the truth: a unit with an `EXECUTED`
    /// row was applied exactly once, a unit without one not at all (a failed run left nothing
    /// behind that the next run would apply again).
    Consistent,
}

impl FromStr for Expectation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(Expectation::Exact),
            "at-least-once" => Ok(Expectation::AtLeastOnce),
            "consistent" => Ok(Expectation::Consistent),
            other => Err(format!(
                "unknown expectation `{other}`: exact, at-least-once or consistent"
            )),
        }
    }
}

/// Checks `db` against `expectation` and returns every violation, one line each.
pub(crate) async fn check(
    db: &Database,
    expectation: Expectation,
) -> Result<Vec<String>, BoxError> {
    let mut executed: BTreeMap<String, usize> = BTreeMap::new();
    for row in documents(db, HISTORY, doc! {}).await? {
        let state = row.get_str("state").unwrap_or("EXECUTED");
        let kind = row.get_str("type").unwrap_or("EXECUTION");
        if state == "EXECUTED" && kind == "EXECUTION" {
            let id = row.get_str("changeId").unwrap_or("<no changeId>");
            *executed.entry(id.to_owned()).or_default() += 1;
        }
    }
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    for counter in documents(db, COUNTERS, doc! {}).await? {
        let id = counter.get_str("_id").unwrap_or("<no _id>").to_owned();
        let n = match counter.get("n") {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            other => return Err(format!("counter `{id}` has n = {other:?}").into()),
        };
        counters.insert(id, n);
    }

    // (unit id, what is wrong), grouped by what is wrong when reported.
    let mut wrong: Vec<(&str, String)> = Vec::new();
    for id in UNIT_IDS {
        let rows = executed.remove(id).unwrap_or(0);
        let counter = counters.get(id).copied().unwrap_or(0);
        let inserted = db
            .collection::<Document>(INSERTS)
            .count_documents(doc! { "unit": id })
            .await?;
        let inserted = i64::try_from(inserted)?;
        let (want_rows, counter_ok, want_effects): (usize, bool, String) = match expectation {
            Expectation::Exact => (1, counter == 1 && inserted == 1, "1".into()),
            Expectation::AtLeastOnce => (1, counter >= 1 && inserted >= 1, "at least 1".into()),
            Expectation::Consistent => {
                let want = rows.min(1) as i64;
                (
                    rows.min(1),
                    counter == want && inserted == want,
                    format!("{want}, as its {rows} EXECUTED rows say"),
                )
            }
        };
        if rows != want_rows {
            wrong.push((
                id,
                format!("{rows} EXECUTED history rows, want {want_rows}"),
            ));
        }
        if !counter_ok {
            wrong.push((
                id,
                format!(
                    "applied {counter} times ({inserted} documents inserted), want {want_effects}"
                ),
            ));
        }
    }
    let mut violations: Vec<String> = Vec::new();
    let mut reported: Vec<&str> = Vec::new();
    for (_, what) in &wrong {
        if reported.contains(&what.as_str()) {
            continue;
        }
        reported.push(what);
        let ids: Vec<&str> = wrong
            .iter()
            .filter(|(_, w)| w == what)
            .map(|(id, _)| *id)
            .collect();
        violations.push(format!("{}: {what}", ids.join(", ")));
    }
    for (id, rows) in executed {
        violations.push(format!(
            "{id}: {rows} EXECUTED history rows of an unknown unit"
        ));
    }
    for lock in documents(db, LOCK, doc! {}).await? {
        violations.push(format!(
            "the lock is not released: {}",
            lock.get_str("owner").unwrap_or("<no owner>")
        ));
    }
    Ok(violations)
}

async fn documents(
    db: &Database,
    collection: &str,
    filter: Document,
) -> Result<Vec<Document>, BoxError> {
    let mut cursor = db.collection::<Document>(collection).find(filter).await?;
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(cursor.deserialize_current()?);
    }
    Ok(out)
}

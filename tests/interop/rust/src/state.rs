//! `migrate-interop state`: the database as the harness checks it, one line per fact, fields
//! separated by tabs:
//!
//! ```text
//! counter  <step>      <n>         <who applied it, comma-separated>
//! row      <writer>    <changeId>  <author>  <state>  <type>  <executionId>  <timestamp>
//!          <changeLogClass>  <changeSetMethod>  <systemChange>  <metadata>  <executionMillis>
//!          <executionHostname>  <fields>
//! lock     <owner>     <status>    <ms until it expires>      <fields>
//! index    <collection> <name>     <options>
//! trace    <changeId>  <state>     <errorTrace>
//! origin   <rows in dbchangelog>
//! ```
//!
//! `<writer>` is `rust` for a `changeLogClass` that is a Rust path, `java` otherwise. `<fields>`
//! lists every field of the document in order as `name:type`, so the harness can compare
//! what each side writes field by field; `<timestamp>` is in milliseconds since the epoch and
//! `<metadata>` is relaxed extended JSON. `<options>` is every option of the index but its
//! version, with the BSON type of each key's value.

use std::time::SystemTime;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Database;

use crate::units::COUNTERS;
use crate::BoxError;

const HISTORY: &str = "mongockChangeLog";
const LOCK: &str = "mongockLock";

pub(crate) async fn print(db: &Database) -> Result<(), BoxError> {
    for counter in documents(db, COUNTERS).await? {
        let by: Vec<&str> = counter
            .get_array("by")
            .map(|by| by.iter().filter_map(Bson::as_str).collect())
            .unwrap_or_default();
        println!(
            "counter\t{}\t{}\t{}",
            text(counter.get("_id")),
            text(counter.get("n")),
            by.join(",")
        );
    }
    for row in documents(db, HISTORY).await? {
        let class = row.get_str("changeLogClass").unwrap_or_default();
        let writer = if class.contains("::") { "rust" } else { "java" };
        let text_of = |names: &[&str]| -> Vec<String> {
            names.iter().map(|name| text(row.get(*name))).collect()
        };
        let mut columns = text_of(&[
            "changeId",
            "author",
            "state",
            "type",
            "executionId",
            "timestamp",
            "changeLogClass",
            "changeSetMethod",
            "systemChange",
        ]);
        columns.push(json(row.get("metadata")));
        columns.extend(text_of(&["executionMillis", "executionHostname"]));
        columns.push(fields(&row));
        println!("row\t{writer}\t{}", columns.join("\t"));
        if let Ok(trace) = row.get_str("errorTrace") {
            println!(
                "trace\t{}\t{}\t{}",
                text(row.get("changeId")),
                text(row.get("state")),
                trace.replace(['\n', '\t'], " ")
            );
        }
    }
    println!("origin\t{}", documents(db, "dbchangelog").await?.len());
    for lock in documents(db, LOCK).await? {
        let expires_in = match lock.get("expiresAt") {
            Some(Bson::DateTime(at)) => {
                let now = mongodb::bson::DateTime::from_system_time(SystemTime::now());
                (at.timestamp_millis() - now.timestamp_millis()).to_string()
            }
            other => format!("<{}>", type_name(other)),
        };
        println!(
            "lock\t{}\t{}\t{expires_in}\t{}",
            text(lock.get("owner")),
            text(lock.get("status")),
            fields(&lock)
        );
    }
    for collection in [HISTORY, LOCK] {
        for index in indexes(db, collection).await? {
            let name = text(index.get("name"));
            let options: Vec<String> = index
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "v" | "name" | "ns"))
                .map(|(k, v)| match v {
                    Bson::Document(keys) => format!("{k}={}", typed_keys(keys)),
                    other => format!("{k}={}", text(Some(other))),
                })
                .collect();
            println!("index\t{collection}\t{name}\t{}", options.join(" "));
        }
    }
    Ok(())
}

async fn documents(db: &Database, collection: &str) -> Result<Vec<Document>, BoxError> {
    let mut cursor = db
        .collection::<Document>(collection)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await?;
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(cursor.deserialize_current()?);
    }
    Ok(out)
}

/// The collection's indexes as `listIndexes` returns them; none when it does not exist.
async fn indexes(db: &Database, collection: &str) -> Result<Vec<Document>, BoxError> {
    let names = db.list_collection_names().await?;
    if !names.iter().any(|n| n == collection) {
        return Ok(Vec::new());
    }
    let mut cursor = db
        .run_cursor_command(doc! { "listIndexes": collection })
        .await?;
    let mut out = Vec::new();
    while cursor.advance().await? {
        out.push(cursor.deserialize_current()?);
    }
    Ok(out)
}

/// `{executionId:1:int32,author:1:int32}`.
fn typed_keys(keys: &Document) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|(k, v)| format!("{k}:{}:{}", text(Some(v)), type_name(Some(v))))
        .collect();
    format!("{{{}}}", keys.join(","))
}

/// `executionId:string,changeId:string,...` in the document's order, `_id` left out.
fn fields(doc: &Document) -> String {
    doc.iter()
        .filter(|(k, _)| k.as_str() != "_id")
        .map(|(k, v)| format!("{k}:{}", type_name(Some(v))))
        .collect::<Vec<_>>()
        .join(",")
}

fn text(value: Option<&Bson>) -> String {
    match value {
        None => "<missing>".to_owned(),
        Some(Bson::String(s)) => s.clone(),
        Some(Bson::Int32(n)) => n.to_string(),
        Some(Bson::Int64(n)) => n.to_string(),
        Some(Bson::Double(n)) => n.to_string(),
        Some(Bson::Boolean(b)) => b.to_string(),
        Some(Bson::Null) => "null".to_owned(),
        Some(Bson::DateTime(at)) => at.timestamp_millis().to_string(),
        Some(other) => other.to_string(),
    }
}

/// The value as relaxed extended JSON, on one line.
fn json(value: Option<&Bson>) -> String {
    match value {
        None => "<missing>".to_owned(),
        Some(value) => value.clone().into_relaxed_extjson().to_string(),
    }
}

fn type_name(value: Option<&Bson>) -> &'static str {
    match value {
        None => "missing",
        Some(Bson::String(_)) => "string",
        Some(Bson::Int32(_)) => "int32",
        Some(Bson::Int64(_)) => "int64",
        Some(Bson::Double(_)) => "double",
        Some(Bson::Boolean(_)) => "bool",
        Some(Bson::Null) => "null",
        Some(Bson::DateTime(_)) => "date",
        Some(Bson::Document(_)) => "document",
        Some(Bson::Array(_)) => "array",
        Some(Bson::ObjectId(_)) => "objectId",
        Some(Bson::Timestamp(_)) => "timestamp",
        Some(_) => "other",
    }
}

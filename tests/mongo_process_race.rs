//! Two processes of one service start at once against one database: each unit is applied
//! exactly once, and the process that loses the lock finds nothing pending.
//!
//! The parent test starts this test binary twice more, running only `race_child`.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use migrate::{change_unit, execution, rollback_execution, DescribeUnit, Runner};
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Database};
use support::{test_db, Mode};

const CHILD_URI: &str = "MIGRATE_RACE_URI";
const CHILD_DB: &str = "MIGRATE_RACE_DB";

/// Counts its own executions in `counters`, slowly enough for the processes to overlap.
#[change_unit(id = "race-first", order = "001")]
struct RaceFirst {
    db: Database,
}

impl RaceFirst {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        count(&self.db, session, "race-first").await
    }

    #[rollback_execution]
    async fn rollback(&self) -> mongodb::error::Result<()> {
        Ok(())
    }
}

#[change_unit(id = "race-second", order = "002")]
struct RaceSecond {
    db: Database,
}

impl RaceSecond {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        count(&self.db, session, "race-second").await
    }

    #[rollback_execution]
    async fn rollback(&self) -> mongodb::error::Result<()> {
        Ok(())
    }
}

async fn count(db: &Database, session: &mut ClientSession, id: &str) -> mongodb::error::Result<()> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    db.collection::<Document>("counters")
        .update_one(doc! { "_id": id }, doc! { "$inc": { "runs": 1 } })
        .upsert(true)
        .session(session)
        .await?;
    Ok(())
}

/// One "service instance": runs the units and prints what it applied.
#[tokio::test]
#[ignore = "started as a child process by the race tests"]
async fn race_child() {
    let uri = std::env::var(CHILD_URI).expect("run by the race tests, which set the server URI");
    let name = std::env::var(CHILD_DB).expect("run by the race tests, which set the database");
    let db = mongodb::Client::with_uri_str(&uri)
        .await
        .unwrap()
        .database(&name);
    let report = Runner::new(&db)
        .units([RaceFirst::change_unit(), RaceSecond::change_unit()])
        .lock_try_frequency(Duration::from_millis(500))
        .run()
        .await
        .expect("the run succeeds in every process");
    println!("RACE-EXECUTED [{}]", report.executed().join(","));
}

fn start_child(uri: &str, db: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "race_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD_URI, uri)
        .env(CHILD_DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the child process")
}

fn executed(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RACE-EXECUTED "))
        .unwrap_or_else(|| panic!("no report in the child's output:\n{stdout}"))
        .to_owned()
}

async fn two_processes_race(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let children = [
        start_child(&t.uri, t.db.name()),
        start_child(&t.uri, t.db.name()),
    ];
    let mut reports: Vec<String> = children
        .into_iter()
        .map(|child| executed(&child.wait_with_output().unwrap()))
        .collect();
    reports.sort();
    assert_eq!(
        reports,
        ["[]", "[race-first,race-second]"],
        "one process applies everything, the other finds nothing pending"
    );

    let counters = t.documents("counters").await;
    assert_eq!(counters.len(), 2);
    for counter in &counters {
        assert_eq!(counter.get_i32("runs").unwrap(), 1, "{counter}");
    }
    let history = t.history().await;
    assert_eq!(history.len(), 2, "one EXECUTED entry per unit");
    assert!(history.iter().all(|e| e.get_str("state") == Ok("EXECUTED")));
    assert!(
        t.documents("mongockLock").await.is_empty(),
        "the lock is released"
    );
    t.finish().await;
}

#[tokio::test]
async fn two_processes_apply_each_unit_exactly_once_on_a_replica_set() {
    two_processes_race(Mode::ReplicaSet, "race_rs").await;
}

#[tokio::test]
async fn two_processes_apply_each_unit_exactly_once_on_a_standalone_server() {
    two_processes_race(Mode::Standalone, "race_sa").await;
}

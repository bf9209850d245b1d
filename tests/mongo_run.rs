//! Whole runs against a real server, in both modes: the transactional path on a replica set
//! and the rollback-method path on a standalone server. One behaviour per test.

mod support;

use std::time::{Duration, Instant};

use migrate::{
    before_execution, change_unit, execution, rollback_before_execution, rollback_execution,
    ChangeUnit, Dep, DescribeUnit, Error, Outcome, Runner, SkipReason,
};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::{Client, ClientSession, Database};
use support::recorder::Recorder;
use support::{assert_mongock_shape, test_db, transactional_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

fn unit<T: DescribeUnit>() -> &'static ChangeUnit {
    T::change_unit()
}

fn runner(t: &TestDb, probe: &Recorder) -> Runner {
    Runner::new(&t.db).dependency(probe.clone())
}

async fn insert(
    db: &Database,
    collection: &str,
    doc: Document,
    session: &mut ClientSession,
) -> Result {
    db.collection::<Document>(collection)
        .insert_one(doc)
        .session(session)
        .await?;
    Ok(())
}

async fn count(t: &TestDb, collection: &str, filter: Document) -> u64 {
    t.collection(collection)
        .count_documents(filter)
        .await
        .unwrap()
}

fn history_of<'a>(history: &'a [Document], change_id: &str) -> Vec<&'a Document> {
    history
        .iter()
        .filter(|d| d.get_str("changeId") == Ok(change_id))
        .collect()
}

// ---------------------------------------------------------------- units

/// Twenty small units that each insert one document with the session.
macro_rules! insert_units {
    ($($name:ident = $id:literal, $order:literal;)*) => {$(
        #[change_unit(id = $id, order = $order, author = "budget")]
        struct $name {
            db: Database,
        }

        impl $name {
            #[execution]
            async fn execute(&self, session: &mut ClientSession) -> Result {
                insert(&self.db, "things", doc! { "unit": $id }, session).await
            }

            #[rollback_execution]
            async fn rollback(&self) -> Result {
                Ok(())
            }
        }
    )*};
}

insert_units! {
    Insert01 = "insert-01", "b01"; Insert02 = "insert-02", "b02"; Insert03 = "insert-03", "b03";
    Insert04 = "insert-04", "b04"; Insert05 = "insert-05", "b05"; Insert06 = "insert-06", "b06";
    Insert07 = "insert-07", "b07"; Insert08 = "insert-08", "b08"; Insert09 = "insert-09", "b09";
    Insert10 = "insert-10", "b10"; Insert11 = "insert-11", "b11"; Insert12 = "insert-12", "b12";
    Insert13 = "insert-13", "b13"; Insert14 = "insert-14", "b14"; Insert15 = "insert-15", "b15";
    Insert16 = "insert-16", "b16"; Insert17 = "insert-17", "b17"; Insert18 = "insert-18", "b18";
    Insert19 = "insert-19", "b19"; Insert20 = "insert-20", "b20";
}

fn insert_units() -> Vec<&'static ChangeUnit> {
    vec![
        unit::<Insert01>(),
        unit::<Insert02>(),
        unit::<Insert03>(),
        unit::<Insert04>(),
        unit::<Insert05>(),
        unit::<Insert06>(),
        unit::<Insert07>(),
        unit::<Insert08>(),
        unit::<Insert09>(),
        unit::<Insert10>(),
        unit::<Insert11>(),
        unit::<Insert12>(),
        unit::<Insert13>(),
        unit::<Insert14>(),
        unit::<Insert15>(),
        unit::<Insert16>(),
        unit::<Insert17>(),
        unit::<Insert18>(),
        unit::<Insert19>(),
        unit::<Insert20>(),
    ]
}

/// A unit with every step, to see every kind of history entry.
#[change_unit(id = "shape", order = "s01", author = "platform")]
struct Shape {
    db: Database,
    client: Client,
}

impl Shape {
    #[before_execution]
    async fn create_collection(&self) -> Result {
        self.db.create_collection("shapes").await?;
        Ok(())
    }

    #[rollback_before_execution]
    async fn drop_collection(&self) -> Result {
        self.db.collection::<Document>("shapes").drop().await?;
        Ok(())
    }

    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        // Through the injected client, to use every injectable handle.
        let db = self.client.database(self.db.name());
        insert(&db, "shapes", doc! { "kind": "circle" }, session).await
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Writes outside the transaction in its before-step and inside it in its execution, then
/// fails.
#[change_unit(id = "failing", order = "f01", author = "platform")]
struct Failing {
    db: Database,
    probe: Dep<Recorder>,
}

impl Failing {
    #[before_execution]
    async fn mark(&self) -> Result {
        self.probe.push("before_execution");
        self.db
            .collection::<Document>("marks")
            .insert_one(doc! { "_id": "before" })
            .await?;
        Ok(())
    }

    #[rollback_before_execution]
    async fn unmark(&self) -> Result {
        self.probe.push("rollback_before_execution");
        self.db
            .collection::<Document>("marks")
            .delete_one(doc! { "_id": "before" })
            .await?;
        Ok(())
    }

    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        self.probe.push("execution");
        insert(
            &self.db,
            "partial",
            doc! { "_id": "written-before-failing" },
            session,
        )
        .await?;
        anyhow::bail!("boom after a write")
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.probe.push("rollback_execution");
        self.db
            .collection::<Document>("partial")
            .delete_one(doc! { "_id": "written-before-failing" })
            .await?;
        Ok(())
    }
}

/// Counts its attempts; a fail point makes the first one fail with a transient error.
#[change_unit(id = "flaky", order = "r01", author = "platform")]
struct Flaky {
    db: Database,
    probe: Dep<Recorder>,
}

impl Flaky {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        let attempt = self.probe.attempt();
        insert(
            &self.db,
            "flaky",
            doc! { "attempt": attempt as i64 },
            session,
        )
        .await
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Lets another runner take the lock over in its before-step, before its transaction starts.
#[change_unit(id = "robbed", order = "t01", author = "platform")]
struct Robbed {
    db: Database,
    probe: Dep<Recorder>,
}

impl Robbed {
    #[before_execution]
    async fn steal_the_lock(&self) -> Result {
        support::take_lock_over(&self.db).await?;
        Ok(())
    }

    #[rollback_before_execution]
    async fn rollback_before(&self) -> Result {
        self.probe.push("rollback_before_execution");
        Ok(())
    }

    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        let attempt = self.probe.attempt();
        insert(
            &self.db,
            "robbed",
            doc! { "attempt": attempt as i64 },
            session,
        )
        .await
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.probe.push("rollback_execution");
        Ok(())
    }
}

/// Never registered.
struct Unregistered;

#[change_unit(id = "harmless", order = "m01", author = "platform")]
struct Harmless {
    probe: Dep<Recorder>,
}

impl Harmless {
    #[execution]
    async fn execute(&self) -> Result {
        self.probe.push("harmless");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

#[change_unit(id = "needy", order = "m02", author = "platform")]
struct Needy {
    _missing: Dep<Unregistered>,
}

impl Needy {
    #[execution]
    async fn execute(&self) -> Result {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Increments a counter per unit, so a unit applied twice shows.
macro_rules! counter_units {
    ($($name:ident = $id:literal;)*) => {$(
        #[change_unit(id = $id, order = $id, author = "race")]
        struct $name {
            db: Database,
        }

        impl $name {
            #[execution]
            async fn execute(&self, session: &mut ClientSession) -> Result {
                self.db
                    .collection::<Document>("counters")
                    .update_one(doc! { "_id": $id }, doc! { "$inc": { "n": 1 } })
                    .upsert(true)
                    .session(session)
                    .await?;
                // Long enough for the other runner to find the lock held.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self) -> Result {
                Ok(())
            }
        }
    )*};
}

counter_units! {
    Count1 = "c1"; Count2 = "c2"; Count3 = "c3"; Count4 = "c4"; Count5 = "c5";
}

fn counter_units() -> Vec<&'static ChangeUnit> {
    vec![
        unit::<Count1>(),
        unit::<Count2>(),
        unit::<Count3>(),
        unit::<Count4>(),
        unit::<Count5>(),
    ]
}

/// Already applied by a Java service using mongobee: must not run.
#[change_unit(id = "legacy-a", order = "l01", author = "java")]
struct LegacyA {
    probe: Dep<Recorder>,
}

impl LegacyA {
    #[execution]
    async fn execute(&self) -> Result {
        self.probe.push("legacy-a");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

#[change_unit(id = "after-legacy", order = "l02", author = "java")]
struct AfterLegacy {
    probe: Dep<Recorder>,
}

impl AfterLegacy {
    #[execution]
    async fn execute(&self) -> Result {
        self.probe.push("after-legacy");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

// ---------------------------------------------------------------- history format

async fn history_has_mongock_shape(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let probe = Recorder::default();
    runner(&t, &probe)
        .units([unit::<Shape>()])
        .metadata(doc! { "deployed_by": "ci" })
        .service_identifier("svc")
        .run()
        .await
        .unwrap();

    let history = t.history().await;
    assert_eq!(history.len(), 2, "{history:?}");
    for entry in &history {
        assert_mongock_shape(entry);
        assert_eq!(entry.get_str("state").unwrap(), "EXECUTED");
        assert_eq!(entry.get_str("author").unwrap(), "platform");
        assert_eq!(
            entry.get_document("metadata").unwrap(),
            &doc! { "deployed_by": "ci" }
        );
        assert!(entry
            .get_str("executionHostname")
            .unwrap()
            .ends_with("-svc"));
        assert_eq!(entry.get("errorTrace"), Some(&Bson::Null));
        assert!(!entry.get_bool("systemChange").unwrap());
        assert!(entry.get_i64("executionMillis").unwrap() >= 0);
        assert!(entry.get_str("changeLogClass").unwrap().ends_with("Shape"));
    }
    let before = &history_of(&history, "shape_before")[0];
    assert_eq!(before.get_str("type").unwrap(), "BEFORE_EXECUTION");
    assert_eq!(
        before.get_str("changeSetMethod").unwrap(),
        "create_collection"
    );
    let execution = &history_of(&history, "shape")[0];
    assert_eq!(execution.get_str("type").unwrap(), "EXECUTION");
    assert_eq!(execution.get_str("changeSetMethod").unwrap(), "execute");
    assert_eq!(
        before.get_str("executionId").unwrap(),
        execution.get_str("executionId").unwrap()
    );
    assert_eq!(count(&t, "shapes", doc! {}).await, 1);
    t.finish().await;
}

#[tokio::test]
async fn history_has_mongock_field_names_and_types_in_a_replica_set() {
    history_has_mongock_shape(Mode::ReplicaSet, "shape_rs").await;
}

#[tokio::test]
async fn history_has_mongock_field_names_and_types_on_a_standalone_server() {
    history_has_mongock_shape(Mode::Standalone, "shape_standalone").await;
}

#[tokio::test]
async fn legacy_rows_count_as_executed_and_new_rows_use_mongock_shape() {
    let t = test_db(Mode::ReplicaSet, "legacy_rows").await;
    let mongobee = doc! {
        "_id": "mongobee-row",
        "changeId": "legacy-a",
        "author": "java",
        "timestamp": DateTime::from_millis(1_500_000_000_000),
        "changeLogClass": "com.example.changelogs.LegacyChangelog",
        "changeSetMethod": "legacyA",
    };
    t.collection("mongockChangeLog")
        .insert_one(mongobee.clone())
        .await
        .unwrap();
    let probe = Recorder::default();

    let report = runner(&t, &probe)
        .units([unit::<LegacyA>(), unit::<AfterLegacy>()])
        .run()
        .await
        .unwrap();

    assert_eq!(probe.lines(), ["after-legacy"]);
    assert_eq!(report.executed(), ["after-legacy"]);
    assert!(matches!(
        report.unit("legacy-a").unwrap().outcome,
        Outcome::Skipped(SkipReason::AlreadyExecuted)
    ));
    let history = t.history().await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], mongobee, "the legacy row is left as it was");
    assert_mongock_shape(&history[1]);
    assert_eq!(history[1].get_str("changeId").unwrap(), "after-legacy");
    assert_eq!(history[1].get_str("state").unwrap(), "EXECUTED");
    t.finish().await;
}

// ---------------------------------------------------------------- failures

#[tokio::test]
async fn transactional_failure_aborts_its_writes_and_rolls_back_the_before_step() {
    let Some(t) = transactional_db("tx_failure").await else {
        return;
    };
    let probe = Recorder::default();

    let error = runner(&t, &probe)
        .units([unit::<Failing>()])
        .run()
        .await
        .unwrap_err();

    let execution = error.as_execution().expect("an execution error");
    assert_eq!(execution.unit_id, "failing");
    assert!(execution.rolled_back);
    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(message.contains("boom after a write"), "{message}");
    assert_eq!(
        probe.lines(),
        ["before_execution", "execution", "rollback_before_execution"],
        "the transaction is aborted instead of running `#[rollback_execution]`"
    );
    assert_eq!(count(&t, "partial", doc! {}).await, 0, "no partial writes");
    assert_eq!(
        count(&t, "marks", doc! {}).await,
        0,
        "the before-step was undone"
    );

    let history = t.history().await;
    let execution = history_of(&history, "failing");
    assert_eq!(execution.len(), 1);
    assert_eq!(execution[0].get_str("state").unwrap(), "FAILED");
    assert!(execution[0]
        .get_str("errorTrace")
        .unwrap()
        .contains("boom after a write"));
    let before = history_of(&history, "failing_before");
    assert_eq!(before.len(), 1, "updated in place: {history:?}");
    assert_eq!(before[0].get_str("state").unwrap(), "ROLLED_BACK");
    assert_eq!(
        t.documents("mongockLock").await.len(),
        0,
        "the lock is released"
    );
    t.finish().await;
}

#[tokio::test]
async fn standalone_failure_runs_rollback_execution_and_records_rolled_back_in_place() {
    let t = test_db(Mode::Standalone, "standalone_failure").await;
    let probe = Recorder::default();

    // On a server with transactions (MONGODB_URI), turn them off to take the same path.
    let error = runner(&t, &probe)
        .units([unit::<Failing>()])
        .transactional(false)
        .run()
        .await
        .unwrap_err();

    let execution = error.as_execution().expect("an execution error");
    assert_eq!(execution.unit_id, "failing");
    assert!(execution.rolled_back);
    assert_eq!(
        probe.lines(),
        [
            "before_execution",
            "execution",
            "rollback_execution",
            "rollback_before_execution"
        ]
    );
    assert_eq!(
        count(&t, "partial", doc! {}).await,
        0,
        "rollback_execution undid the write"
    );
    assert_eq!(count(&t, "marks", doc! {}).await, 0);

    let history = t.history().await;
    assert_eq!(history.len(), 2, "one document per step: {history:?}");
    let execution = history_of(&history, "failing");
    assert_eq!(execution.len(), 1, "FAILED became ROLLED_BACK in place");
    assert_eq!(execution[0].get_str("state").unwrap(), "ROLLED_BACK");
    assert_eq!(execution[0].get_str("type").unwrap(), "EXECUTION");
    assert_eq!(execution[0].get_i64("executionMillis").unwrap(), -1);
    let trace = execution[0].get_str("errorTrace").unwrap();
    assert!(
        trace.starts_with("{\"execution-error\":\"") && trace.contains("boom"),
        "{trace}"
    );
    let before = history_of(&history, "failing_before");
    assert_eq!(before[0].get_str("state").unwrap(), "ROLLED_BACK");
    assert_eq!(
        execution[0].get_str("executionId").unwrap(),
        before[0].get_str("executionId").unwrap()
    );
    t.finish().await;
}

#[tokio::test]
async fn forced_transactions_on_a_standalone_server_fail_before_anything_runs() {
    let t = test_db(Mode::Standalone, "forced_tx_standalone").await;
    let probe = Recorder::default();

    let result = runner(&t, &probe)
        .units([unit::<Harmless>()])
        .transactional(true)
        .run()
        .await;

    if t.transactions {
        // MONGODB_URI names a server that runs transactions: forcing them is fine there.
        result.expect("transactions are available");
        return t.finish().await;
    }
    let error = result.unwrap_err();
    let Error::TransactionsUnsupported { reason } = &error else {
        panic!("expected TransactionsUnsupported, got {error:?}");
    };
    assert!(reason.contains("standalone"), "{reason}");
    assert!(
        reason.ends_with("or leave `transactional` unset"),
        "{reason}"
    );
    assert!(
        error
            .to_string()
            .starts_with("transactions were requested with `transactional(true)`"),
        "{error}"
    );
    assert!(probe.lines().is_empty(), "nothing ran");
    assert!(t.history().await.is_empty());
    assert!(
        t.documents("mongockLock").await.is_empty(),
        "the lock was never taken"
    );
    t.finish().await;
}

#[tokio::test]
async fn missing_dependency_is_reported_before_anything_runs() {
    let t = test_db(Mode::ReplicaSet, "missing_dependency").await;
    let probe = Recorder::default();

    let error = runner(&t, &probe)
        .units([unit::<Harmless>(), unit::<Needy>()])
        .run()
        .await
        .unwrap_err();

    let Error::MissingDependencies(missing) = &error else {
        panic!("expected MissingDependencies, got {error:?}");
    };
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].unit_id, "needy");
    assert!(
        missing[0].type_name.ends_with("Unregistered"),
        "{missing:?}"
    );
    assert!(
        probe.lines().is_empty(),
        "`harmless` comes first but did not run"
    );
    assert!(t.history().await.is_empty());
    assert!(t.documents("mongockLock").await.is_empty());
    t.finish().await;
}

// ---------------------------------------------------------------- transactions

/// `failCommand` is one fail point per server, so tests that configure it take turns: a test
/// running in parallel would otherwise replace another's configuration before it fires.
static FAIL_POINT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn fail_next(t: &TestDb, command: &str) {
    t.client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": {
                "failCommands": [command],
                "appName": t.app_name(),
                "errorCode": 112,
                "errorLabels": ["TransientTransactionError"],
            },
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "configureFailPoint failed; the test server must run with \
                 `--enable-test-commands`: {e}"
            )
        });
}

async fn transient_error_is_retried(command: &str, name: &str) {
    let Some(t) = transactional_db(name).await else {
        return;
    };
    let _turn = FAIL_POINT.lock().await;
    let probe = Recorder::default();
    fail_next(&t, command).await;

    let report = runner(&t, &probe)
        .units([unit::<Flaky>()])
        .run()
        .await
        .unwrap();

    assert_eq!(report.executed(), ["flaky"]);
    assert_eq!(
        probe.attempts(),
        2,
        "the unit ran again after the transient error"
    );
    let written = t.documents("flaky").await;
    assert_eq!(
        written.len(),
        1,
        "only the retried attempt committed: {written:?}"
    );
    assert_eq!(written[0].get_i64("attempt").unwrap(), 2);
    let history = t.history().await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].get_str("state").unwrap(), "EXECUTED");
    t.finish().await;
}

#[tokio::test]
async fn transient_error_in_a_unit_retries_the_transaction() {
    transient_error_is_retried("insert", "transient_unit").await;
}

#[tokio::test]
async fn transient_error_at_commit_retries_the_transaction() {
    transient_error_is_retried("commitTransaction", "transient_commit").await;
}

#[tokio::test]
async fn unknown_commit_result_retries_only_the_commit() {
    let Some(t) = transactional_db("unknown_commit").await else {
        return;
    };
    let _turn = FAIL_POINT.lock().await;
    let probe = Recorder::default();
    t.client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": {
                "failCommands": ["commitTransaction"],
                "appName": t.app_name(),
                "errorCode": 50,
                "errorLabels": ["UnknownTransactionCommitResult"],
            },
        })
        .await
        .expect("configureFailPoint (the server needs `--enable-test-commands`)");

    let report = runner(&t, &probe)
        .units([unit::<Flaky>()])
        .run()
        .await
        .unwrap();

    assert_eq!(report.executed(), ["flaky"]);
    assert_eq!(probe.attempts(), 1, "the unit itself ran once");
    assert_eq!(t.commands.count_of("commitTransaction"), 2);
    assert_eq!(count(&t, "flaky", doc! {}).await, 1);
    t.finish().await;
}

#[tokio::test]
async fn the_fence_stops_a_unit_whose_lock_was_taken_over() {
    let Some(t) = transactional_db("fenced_commit").await else {
        return;
    };
    let probe = Recorder::default();

    let error = runner(&t, &probe)
        .units([unit::<Robbed>()])
        .run()
        .await
        .unwrap_err();

    assert!(
        matches!(
            &error,
            Error::LockLost { unit_id: Some(id), during: "at the transaction fence of" }
                if id == "robbed"
        ),
        "{error:?}"
    );
    // Where the fence is the transaction's first write the execution never runs; where it is
    // its last (with the history entry, MongoDB 8.0) the execution runs once and is aborted.
    assert!(probe.attempts() <= 1, "{} attempts", probe.attempts());
    assert_eq!(count(&t, "robbed", doc! {}).await, 0, "nothing committed");
    let history = t.history().await;
    assert!(
        history
            .iter()
            .all(|e| e.get_str("changeId") != Ok("robbed")),
        "nothing recorded for the execution after the loss: {history:?}"
    );
    let lock = t.documents("mongockLock").await;
    assert_eq!(lock.len(), 1);
    assert_eq!(
        lock[0].get_str("owner").unwrap(),
        "thief",
        "the new holder keeps the lock"
    );
    t.finish().await;
}

// ---------------------------------------------------------------- command budget

async fn nothing_pending_sends_one_command(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let probe = Recorder::default();
    runner(&t, &probe)
        .units(insert_units())
        .run()
        .await
        .unwrap();
    assert_eq!(count(&t, "things", doc! {}).await, 20);
    t.commands.clear();

    let report = runner(&t, &probe)
        .units(insert_units())
        .run()
        .await
        .unwrap();

    assert!(report.executed().is_empty());
    assert_eq!(
        t.commands.names(),
        ["find"],
        "one history read, nothing else"
    );
    eprintln!("{name}: a run with 20 units and nothing pending sent 1 command");
    t.finish().await;
}

#[tokio::test]
async fn a_run_with_nothing_pending_sends_one_command_in_a_replica_set() {
    nothing_pending_sends_one_command(Mode::ReplicaSet, "nothing_pending_rs").await;
}

#[tokio::test]
async fn a_run_with_nothing_pending_sends_one_command_on_a_standalone_server() {
    nothing_pending_sends_one_command(Mode::Standalone, "nothing_pending_standalone").await;
}

#[tokio::test]
async fn a_corrupt_history_document_stops_a_run_with_nothing_pending_and_names_its_id() {
    let t = test_db(Mode::ReplicaSet, "corrupt_history_noop").await;
    let probe = Recorder::default();
    runner(&t, &probe)
        .units(insert_units())
        .run()
        .await
        .unwrap();
    t.collection("mongockChangeLog")
        .insert_one(doc! {
            "_id": "bad-row",
            "changeId": "insert-01",
            "author": "budget",
            "timestamp": DateTime::now(),
            "state": 5,
        })
        .await
        .unwrap();

    let error = runner(&t, &probe)
        .units(insert_units())
        .run()
        .await
        .unwrap_err();

    let chain = format!("{:#}", anyhow::Error::from(error));
    assert!(
        chain.contains("`_id: \"bad-row\"`") && chain.contains("field `state` is an int32"),
        "{chain}"
    );
    t.finish().await;
}

async fn applying_units_stays_within_budget(mode: Mode, name: &str) {
    const UNITS: usize = 5;
    let t = test_db(mode, name).await;
    let probe = Recorder::default();

    runner(&t, &probe)
        .units(insert_units().into_iter().take(UNITS))
        .run()
        .await
        .unwrap();

    let names = t.commands.names();
    let hello = t.db.run_command(doc! { "hello": 1 }).await.unwrap();
    // MongoDB 8.0 (wire version 25) writes the fence and the history entry in one `bulkWrite`.
    let bulk_write = hello.get_i32("maxWireVersion").unwrap_or(0) >= 25;
    // Per unit, besides its own insert: the history insert on a standalone server; in a
    // transaction the fence and the history entry (one `bulkWrite`, or an update and an
    // insert), and the commit.
    let per_unit = match (t.transactions, bulk_write) {
        (false, _) => 1,
        (true, true) => 2,
        (true, false) => 3,
    };
    let budget = 8 + UNITS * (per_unit + 1);
    eprintln!(
        "{name}: applying {UNITS} units sent {} commands (budget {budget}): {names:?}",
        names.len()
    );
    assert!(names.len() <= budget, "{} commands: {names:?}", names.len());
    assert_eq!(
        t.commands.count_of("update"),
        0,
        "entries are inserted: {names:?}"
    );
    if t.transactions {
        assert_eq!(t.commands.count_of("commitTransaction"), UNITS);
        if bulk_write {
            assert_eq!(t.commands.count_of("bulkWrite"), UNITS, "{names:?}");
            assert_eq!(
                t.commands.count_of("insert"),
                UNITS,
                "the units' own: {names:?}"
            );
        }
    } else {
        assert_eq!(t.commands.count_of("commitTransaction"), 0);
        assert_eq!(t.commands.count_of("insert"), 2 * UNITS, "{names:?}");
    }
    t.finish().await;
}

#[tokio::test]
async fn a_run_applying_units_stays_within_its_command_budget_in_a_replica_set() {
    applying_units_stays_within_budget(Mode::ReplicaSet, "budget_rs").await;
}

#[tokio::test]
async fn a_run_applying_units_stays_within_its_command_budget_on_a_standalone_server() {
    applying_units_stays_within_budget(Mode::Standalone, "budget_standalone").await;
}

// ---------------------------------------------------------------- concurrency

async fn racing_runners_apply_each_unit_once(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (_client, db, _log) = t.other_client().await;
        runs.push(tokio::spawn(async move {
            Runner::new(&db)
                .units(counter_units())
                .lock_try_frequency(Duration::from_millis(500))
                .run()
                .await
        }));
    }
    let mut executed = Vec::new();
    for run in runs {
        let report = run.await.unwrap().unwrap();
        executed.push(report.executed().len());
    }

    executed.sort_unstable();
    assert_eq!(
        executed,
        [0, 5],
        "one runner applies everything, the other nothing"
    );
    let counters = t.documents("counters").await;
    assert_eq!(counters.len(), 5);
    assert!(
        counters.iter().all(|c| c.get_i32("n") == Ok(1)),
        "each unit applied exactly once: {counters:?}"
    );
    let history = t.history().await;
    assert_eq!(history.len(), 5, "{history:?}");
    assert!(
        t.documents("mongockLock").await.is_empty(),
        "both released the lock"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_runners_apply_each_unit_once_in_a_replica_set() {
    racing_runners_apply_each_unit_once(Mode::ReplicaSet, "race_rs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_runners_apply_each_unit_once_on_a_standalone_server() {
    racing_runners_apply_each_unit_once(Mode::Standalone, "race_standalone").await;
}

// ---------------------------------------------------------------- connection

#[tokio::test]
async fn an_unreachable_server_fails_fast_with_a_clear_error() {
    // Nothing listens on port 1; the short server selection timeout bounds the wait.
    let client = mongodb::Client::with_uri_str(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1000&connectTimeoutMS=500",
    )
    .await
    .unwrap();
    let started = Instant::now();

    let error = Runner::new(client.database("unreachable"))
        .units([unit::<Harmless>()])
        .run()
        .await
        .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.to_string(), "reading the migration history failed");
    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(
        message.starts_with(
            "reading the migration history failed: \
             `find` on `unreachable.mongockChangeLog` failed: "
        ),
        "{message}"
    );
    assert!(
        !message.contains("RawDocumentBuf"),
        "no raw server reply: {message}"
    );
    assert!(message.contains("Server selection timeout"), "{message}");
}

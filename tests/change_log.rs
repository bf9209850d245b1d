//! The legacy model against a real server, in both modes: `#[change_log]` structs whose
//! `#[change_set]` methods run among change units, each recorded in Mongock's shape.

mod support;

use migrate::{
    change_log, change_set, change_unit, execution, rollback_execution, ChangeUnit, Dep,
    DescribeChangeLog, DescribeUnit, Outcome, Runner, SkipReason, Step,
};
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Database};
use support::recorder::Recorder;
use support::{assert_mongock_shape, test_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

fn runner(t: &TestDb, probe: &Recorder) -> Runner {
    Runner::new(&t.db).dependency(probe.clone())
}

fn history_of(history: &[Document], change_id: &str) -> Vec<Document> {
    history
        .iter()
        .filter(|d| d.get_str("changeId") == Ok(change_id))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------- units and change logs

macro_rules! probe_unit {
    ($name:ident, $id:literal, $order:literal) => {
        #[change_unit(id = $id, order = $order, author = "team")]
        struct $name {
            probe: Dep<Recorder>,
        }

        impl $name {
            #[execution]
            async fn execute(&self) -> Result {
                self.probe.push($id);
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self) -> Result {
                Ok(())
            }
        }
    };
}

probe_unit!(Unit001, "unit-001", "001");
probe_unit!(Unit003, "unit-003", "003");

/// Runs between `unit-001` and `unit-003`; its change sets in their own order.
#[change_log(order = "002")]
struct DatabaseChangelog {
    db: Database,
    probe: Dep<Recorder>,
}

#[change_log]
impl DatabaseChangelog {
    #[change_set(id = "someChangeId", author = "testAuthor", order = "001")]
    async fn important_work(&self, session: &mut ClientSession) -> Result {
        self.probe.push("someChangeId");
        self.db
            .collection::<Document>("clients")
            .insert_one(doc! { "name": "first" })
            .session(session)
            .await?;
        Ok(())
    }

    // "0005" sorts before "001" as a plain string.
    #[change_set(id = "sorted-first", author = "testAuthor", order = "0005")]
    async fn sorted_first(&self) -> Result {
        self.probe.push("sorted-first");
        Ok(())
    }

    #[change_set(
        id = "with-version",
        author = "testAuthor",
        order = "002",
        system_version = "1.1"
    )]
    async fn versioned(&self, probe: &Recorder) -> Result {
        probe.push("with-version");
        Ok(())
    }

    #[change_set(id = "every-run", author = "testAuthor", order = "003", run_always)]
    async fn every_run(&self, probe: Dep<Recorder>) -> Result {
        probe.push("every-run");
        Ok(())
    }
}

/// No `order`: sorted by its type name, so after `unit-003`.
#[change_log]
struct LateChangelog {
    probe: Dep<Recorder>,
}

#[change_log]
impl LateChangelog {
    #[change_set(id = "late", author = "testAuthor")]
    async fn late(&self) -> Result {
        self.probe.push("late");
        Ok(())
    }
}

/// Only under the `dev` profile, whatever its change sets say.
#[change_log(order = "004", profiles = ["dev"])]
struct DevChangelog {
    probe: Dep<Recorder>,
}

#[change_log]
impl DevChangelog {
    #[change_set(id = "dev-seed", author = "testAuthor", profiles = ["!prod"])]
    async fn seed(&self) -> Result {
        self.probe.push("dev-seed");
        Ok(())
    }
}

/// Writes through the session, then fails; the change set after it must not run.
#[change_log(order = "f")]
struct FailingChangelog {
    db: Database,
    probe: Dep<Recorder>,
}

#[change_log]
impl FailingChangelog {
    #[change_set(id = "writes-then-fails", author = "team", order = "1")]
    async fn fails(&self, session: &mut ClientSession) -> Result {
        self.probe.push("writes-then-fails");
        self.db
            .collection::<Document>("partial")
            .insert_one(doc! { "_id": "written-before-failing" })
            .session(session)
            .await?;
        anyhow::bail!("boom after a write")
    }

    #[change_set(id = "after-failure", author = "team", order = "2")]
    async fn after(&self) -> Result {
        self.probe.push("after-failure");
        Ok(())
    }
}

fn mixed() -> Vec<&'static ChangeUnit> {
    let mut units = vec![Unit003::change_unit(), Unit001::change_unit()];
    units.extend(LateChangelog::change_sets());
    units.extend(DatabaseChangelog::change_sets());
    units.extend(DevChangelog::change_sets());
    units
}

// ---------------------------------------------------------------- ordering and format

async fn change_logs_run_at_their_order_among_units(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let probe = Recorder::default();

    let report = runner(&t, &probe).units(mixed()).run().await.unwrap();

    let expected = [
        "unit-001",
        "sorted-first",
        "someChangeId",
        "with-version",
        "every-run",
        "unit-003",
        "late",
    ];
    assert_eq!(probe.lines(), expected);
    assert_eq!(report.executed(), expected);
    assert!(matches!(
        report.unit("dev-seed").unwrap().outcome,
        Outcome::Skipped(SkipReason::Profile)
    ));
    let history = t.history().await;
    let recorded: Vec<&str> = history
        .iter()
        .map(|d| d.get_str("changeId").unwrap())
        .collect();
    assert_eq!(recorded, expected, "one row per change set, in run order");
    assert_eq!(
        t.collection("clients")
            .count_documents(doc! {})
            .await
            .unwrap(),
        1
    );
    t.finish().await;
}

#[tokio::test]
async fn change_logs_run_at_their_order_among_units_in_a_replica_set() {
    change_logs_run_at_their_order_among_units(Mode::ReplicaSet, "cl_order_rs").await;
}

#[tokio::test]
async fn change_logs_run_at_their_order_among_units_on_a_standalone_server() {
    change_logs_run_at_their_order_among_units(Mode::Standalone, "cl_order_sa").await;
}

async fn change_sets_are_recorded_in_mongock_shape(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let probe = Recorder::default();

    runner(&t, &probe)
        .units(DatabaseChangelog::change_sets())
        .run()
        .await
        .unwrap();

    let history = t.history().await;
    assert_eq!(history.len(), 4, "{history:?}");
    for entry in &history {
        assert_mongock_shape(entry);
        assert_eq!(entry.get_str("author").unwrap(), "testAuthor");
        assert_eq!(entry.get_str("state").unwrap(), "EXECUTED");
        assert_eq!(entry.get_str("type").unwrap(), "EXECUTION");
        assert!(entry
            .get_str("changeLogClass")
            .unwrap()
            .ends_with("change_log::DatabaseChangelog"));
        assert!(!entry.get_bool("systemChange").unwrap());
    }
    let row = &history_of(&history, "someChangeId")[0];
    assert_eq!(row.get_str("changeSetMethod").unwrap(), "important_work");
    let row = &history_of(&history, "with-version")[0];
    assert_eq!(row.get_str("changeSetMethod").unwrap(), "versioned");
    t.finish().await;
}

#[tokio::test]
async fn change_sets_are_recorded_in_mongock_shape_in_a_replica_set() {
    change_sets_are_recorded_in_mongock_shape(Mode::ReplicaSet, "cl_shape_rs").await;
}

#[tokio::test]
async fn change_sets_are_recorded_in_mongock_shape_on_a_standalone_server() {
    change_sets_are_recorded_in_mongock_shape(Mode::Standalone, "cl_shape_sa").await;
}

#[test]
fn change_sets_describe_themselves_as_such() {
    let sets = DatabaseChangelog::change_sets();
    let ids: Vec<&str> = sets.iter().map(|s| s.id()).collect();
    assert_eq!(
        ids,
        ["sorted-first", "someChangeId", "with-version", "every-run"]
    );
    for set in &sets {
        assert!(set.is_change_set());
        assert!(!set.has_rollback());
        assert_eq!(set.order(), "002");
        assert_eq!(set.declared_author(), Some("testAuthor"));
    }
    assert_eq!(sets[1].change_set_order(), Some("001"));
    assert_eq!(sets[1].execution_method(), "important_work");
    assert_eq!(sets[1].before_method(), None);
    assert_eq!(sets[1].type_path(), "change_log::DatabaseChangelog");
    assert!(sets[1].execution_takes_session());
    assert!(sets[1].location().starts_with("tests/change_log.rs:"));
    assert_ne!(sets[0].checksum(), sets[1].checksum());
    // The change log's fields, then the method's parameters.
    let sites: Vec<&str> = sets[2].requirements().iter().map(|(_, s)| *s).collect();
    assert_eq!(sites.len(), 3, "{sites:?}");
    assert!(sets[2].profiles().is_empty());
    assert_eq!(sets[2].system_version(), "1.1");
    assert!(sets[3].run_always());
    assert_eq!(LateChangelog::change_sets()[0].order(), "LateChangelog");
    assert_eq!(
        DevChangelog::change_sets()[0].change_log_profiles(),
        ["dev"]
    );
    assert_eq!(DevChangelog::change_sets()[0].profiles(), ["!prod"]);
    assert!(!Unit001::change_unit().is_change_set());
    assert!(Unit001::change_unit().has_rollback());
}

// ---------------------------------------------------------------- run_always and versions

async fn run_always_and_system_versions_apply_to_change_sets(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let probe = Recorder::default();

    let first = runner(&t, &probe)
        .units(DatabaseChangelog::change_sets())
        .system_versions("0", "1.1")
        .run()
        .await
        .unwrap();
    assert_eq!(
        first.executed(),
        ["sorted-first", "someChangeId", "every-run"]
    );
    assert!(matches!(
        &first.unit("with-version").unwrap().outcome,
        Outcome::Skipped(SkipReason::SystemVersion { version }) if version == "1.1"
    ));

    let second = runner(&t, &probe)
        .units(DatabaseChangelog::change_sets())
        .system_versions("0", "2")
        .run()
        .await
        .unwrap();
    assert_eq!(second.executed(), ["with-version", "every-run"]);
    assert_eq!(
        second.unit("every-run").unwrap().outcome,
        Outcome::ExecutedAgain
    );
    assert_eq!(
        probe.lines(),
        [
            "sorted-first",
            "someChangeId",
            "every-run",
            "with-version",
            "every-run"
        ]
    );
    let history = t.history().await;
    assert_eq!(
        history_of(&history, "every-run").len(),
        1,
        "only the first run of a run_always change set is recorded"
    );
    assert_eq!(history_of(&history, "with-version").len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn run_always_and_system_versions_apply_to_change_sets_in_a_replica_set() {
    run_always_and_system_versions_apply_to_change_sets(Mode::ReplicaSet, "cl_always_rs").await;
}

#[tokio::test]
async fn run_always_and_system_versions_apply_to_change_sets_on_a_standalone_server() {
    run_always_and_system_versions_apply_to_change_sets(Mode::Standalone, "cl_always_sa").await;
}

#[tokio::test]
async fn a_change_log_under_an_active_profile_runs() {
    let t = test_db(Mode::ReplicaSet, "cl_profile").await;
    let probe = Recorder::default();

    let report = runner(&t, &probe)
        .units(DevChangelog::change_sets())
        .profiles(["dev"])
        .run()
        .await
        .unwrap();

    assert_eq!(report.executed(), ["dev-seed"]);
    t.finish().await;
}

// ---------------------------------------------------------------- failure

async fn a_failing_change_set_is_recorded_failed_and_stops_the_run(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let probe = Recorder::default();

    let error = runner(&t, &probe)
        .units(FailingChangelog::change_sets())
        .run()
        .await
        .unwrap_err();

    let failure = error.as_execution().expect("an execution error");
    assert_eq!(failure.unit_id, "writes-then-fails");
    assert_eq!(failure.step, Step::Execution);
    assert_eq!(failure.source.to_string(), "boom after a write");
    assert_eq!(
        failure.to_string(),
        "change set `writes-then-fails` failed in `#[change_set]` method `fails`"
    );
    assert_eq!(probe.lines(), ["writes-then-fails"], "the run stopped");
    let history = t.history().await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_mongock_shape(&history[0]);
    assert_eq!(history[0].get_str("changeId").unwrap(), "writes-then-fails");
    assert_eq!(history[0].get_str("state").unwrap(), "FAILED");
    assert!(history[0]
        .get_str("errorTrace")
        .unwrap()
        .contains("boom after a write"));
    let partial = t
        .collection("partial")
        .count_documents(doc! {})
        .await
        .unwrap();
    if t.transactions {
        assert!(failure.rolled_back, "the transaction was aborted");
        assert_eq!(partial, 0, "the aborted transaction left nothing");
    } else {
        assert!(!failure.rolled_back, "a change set has nothing to undo it");
        assert_eq!(partial, 1, "without a transaction the write stays");
    }
    t.finish().await;
}

#[tokio::test]
async fn a_failing_change_set_is_recorded_failed_and_stops_the_run_in_a_replica_set() {
    a_failing_change_set_is_recorded_failed_and_stops_the_run(Mode::ReplicaSet, "cl_fail_rs").await;
}

#[tokio::test]
async fn a_failing_change_set_is_recorded_failed_and_stops_the_run_on_a_standalone_server() {
    a_failing_change_set_is_recorded_failed_and_stops_the_run(Mode::Standalone, "cl_fail_sa").await;
}

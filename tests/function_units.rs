//! Change units written as functions, run against a real server: recorded like struct units,
//! their parameters injected, their rollback function run where no transaction undoes them.

mod support;

use migrate::{change_unit, ChangeUnit, Dep, Error, Outcome, Report, Runner};
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Database};
use support::recorder::Recorder;
use support::{assert_mongock_shape, test_db, transactional_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

/// The registered unit `id`.
fn unit(id: &str) -> &'static ChangeUnit {
    migrate::registered()
        .iter()
        .find(|unit| unit.id() == id)
        .unwrap_or_else(|| panic!("no unit `{id}` is registered"))
}

fn runner(t: &TestDb, probe: &Recorder, ids: &[&str]) -> Runner {
    Runner::new(&t.db)
        .dependency(probe.clone())
        .units(ids.iter().map(|id| unit(id)))
}

/// Runs the units `ids`, which must succeed.
async fn apply(t: &TestDb, probe: &Recorder, ids: &[&str]) -> Report {
    runner(t, probe, ids).run().await.unwrap()
}

async fn count(t: &TestDb, collection: &str) -> u64 {
    t.collection(collection)
        .count_documents(doc! {})
        .await
        .unwrap()
}

// ---------------------------------------------------------------- units

#[change_unit(id = "fn-seed", order = "001", author = "functions", no_rollback)]
async fn seed_things(db: Database, session: &mut ClientSession) -> Result {
    db.collection::<Document>("things")
        .insert_one(doc! { "name": "first" })
        .session(session)
        .await?;
    Ok(())
}

#[change_unit(id = "fn-failing", order = "002", author = "functions", rollback = undo_failing)]
async fn failing(db: Database, probe: &Recorder, session: &mut ClientSession) -> Result {
    probe.push("execution");
    db.collection::<Document>("partial")
        .insert_one(doc! { "written": true })
        .session(session)
        .await?;
    anyhow::bail!("boom after a write")
}

/// Undoes `failing` where no transaction does.
async fn undo_failing(db: Database, probe: Dep<Recorder>) -> Result {
    probe.push("rollback");
    db.collection::<Document>("partial")
        .delete_many(doc! {})
        .await?;
    Ok(())
}

#[change_unit(id = "fn-tagged", order = "004", author = "functions", rollback = untag)]
async fn tag(db: Database, session: &mut ClientSession) -> Result {
    db.collection::<Document>("tagged")
        .insert_one(doc! { "tag": "fn-tagged" })
        .session(session)
        .await?;
    Ok(())
}

/// Undoes `tag`.
async fn untag(db: Database, probe: Dep<Recorder>) -> Result {
    probe.push("untag");
    db.collection::<Document>("tagged")
        .delete_many(doc! { "tag": "fn-tagged" })
        .await?;
    Ok(())
}

/// Registered by no test's runner.
struct Unregistered;

#[change_unit(id = "fn-needy", order = "003", rollback = undo_needy)]
async fn needy(_probe: &Recorder) -> Result {
    Ok(())
}

async fn undo_needy(_missing: Dep<Unregistered>) -> Result {
    Ok(())
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_function_unit_runs_with_its_parameters_injected_and_is_recorded_like_a_struct() {
    let Some(t) = transactional_db("fn_recorded").await else {
        return;
    };
    let probe = Recorder::default();

    let report = apply(&t, &probe, &["fn-seed"]).await;

    assert_eq!(report.units.len(), 1);
    assert_eq!(report.units[0].outcome, Outcome::Executed);
    assert_eq!(count(&t, "things").await, 1);
    let history = t.history().await;
    assert_eq!(history.len(), 1);
    let entry = &history[0];
    assert_mongock_shape(entry);
    assert_eq!(entry.get_str("changeId").unwrap(), "fn-seed");
    assert_eq!(entry.get_str("author").unwrap(), "functions");
    assert_eq!(entry.get_str("state").unwrap(), "EXECUTED");
    assert_eq!(entry.get_str("type").unwrap(), "EXECUTION");
    assert_eq!(
        entry.get_str("changeLogClass").unwrap(),
        "function_units::seed_things"
    );
    assert_eq!(entry.get_str("changeSetMethod").unwrap(), "seed_things");
    assert_eq!(
        entry.get_str("checksum").unwrap(),
        unit("fn-seed").checksum()
    );

    // Applied once: a second start finds it executed.
    let report = apply(&t, &probe, &["fn-seed"]).await;
    assert!(matches!(report.units[0].outcome, Outcome::Skipped(_)));
    assert_eq!(count(&t, "things").await, 1);
    t.finish().await;
}

#[tokio::test]
async fn a_function_unit_describes_itself() {
    let seed = unit("fn-seed");
    assert_eq!(seed.type_path(), "function_units::seed_things");
    assert_eq!(seed.execution_method(), "seed_things");
    assert_eq!(seed.before_method(), None);
    assert!(seed.execution_takes_session());
    assert!(!seed.can_undo(), "`no_rollback` has nothing to undo");
    assert!(
        seed.location().contains("function_units.rs:"),
        "{}",
        seed.location()
    );

    let failing = unit("fn-failing");
    assert!(failing.can_undo());
    assert!(failing.execution_takes_session());
    let sites: Vec<String> = failing
        .requirements()
        .into_iter()
        .map(|(requirement, site)| format!("{} {site}", requirement.type_name))
        .collect();
    assert_eq!(sites.len(), 5, "{sites:?}");
    assert!(
        sites[0].ends_with("Database parameter `db` of `failing`"),
        "{sites:?}"
    );
    assert!(
        sites[1].ends_with("Recorder parameter `probe` of `failing`"),
        "{sites:?}"
    );
    assert!(
        sites[2].ends_with("ClientSession parameter `session` of `failing`"),
        "{sites:?}"
    );
    assert!(
        sites[3].ends_with("Database a parameter of `undo_failing`"),
        "{sites:?}"
    );
    assert!(
        sites[4].ends_with("Recorder a parameter of `undo_failing`"),
        "{sites:?}"
    );
    assert_ne!(seed.checksum(), failing.checksum());
}

#[tokio::test]
async fn a_failed_function_unit_runs_its_rollback_function_without_a_transaction() {
    let t = test_db(Mode::Standalone, "fn_rollback").await;
    let probe = Recorder::default();

    let error = runner(&t, &probe, &["fn-failing"])
        .transactional(false)
        .run()
        .await
        .unwrap_err();

    let execution = error.as_execution().expect("an execution error");
    assert_eq!(execution.unit_id, "fn-failing");
    assert!(execution.rolled_back);
    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(message.contains("boom after a write"), "{message}");
    assert_eq!(probe.lines(), ["execution", "rollback"]);
    assert_eq!(
        count(&t, "partial").await,
        0,
        "the rollback undid the write"
    );
    let history = t.history().await;
    assert_eq!(history.len(), 1, "updated in place: {history:?}");
    assert_eq!(history[0].get_str("state").unwrap(), "ROLLED_BACK");
    assert!(history[0]
        .get_str("errorTrace")
        .unwrap()
        .contains("boom after a write"));
    t.finish().await;
}

#[tokio::test]
async fn a_failed_function_unit_in_a_transaction_leaves_no_writes() {
    let Some(t) = transactional_db("fn_transaction").await else {
        return;
    };
    let probe = Recorder::default();

    let error = runner(&t, &probe, &["fn-failing"]).run().await.unwrap_err();

    assert!(
        error
            .as_execution()
            .expect("an execution error")
            .rolled_back
    );
    assert_eq!(
        probe.lines(),
        ["execution"],
        "the transaction is aborted instead"
    );
    assert_eq!(count(&t, "partial").await, 0);
    let history = t.history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].get_str("state").unwrap(), "FAILED");
    t.finish().await;
}

#[tokio::test]
async fn a_rollback_functions_missing_dependency_is_reported_before_anything_runs() {
    let t = test_db(Mode::ReplicaSet, "fn_missing").await;
    let probe = Recorder::default();

    let error = runner(&t, &probe, &["fn-seed", "fn-needy"])
        .run()
        .await
        .unwrap_err();

    let Error::MissingDependencies(missing) = &error else {
        panic!("expected MissingDependencies, got {error:?}");
    };
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].unit_id, "fn-needy");
    assert!(
        missing[0].type_name.ends_with("Unregistered"),
        "{missing:?}"
    );
    assert_eq!(
        count(&t, "things").await,
        0,
        "`fn-seed` comes first but did not run"
    );
    assert!(t.history().await.is_empty());
    t.finish().await;
}

async fn undo_runs_a_function_units_rollback_function(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let probe = Recorder::default();
    apply(&t, &probe, &["fn-tagged"]).await;
    assert_eq!(count(&t, "tagged").await, 1);

    let report = runner(&t, &probe, &["fn-tagged"]).undo_all().await.unwrap();

    assert_eq!(report.units.len(), 1);
    assert_eq!(report.units[0].outcome, Outcome::RolledBack);
    assert_eq!(probe.lines(), ["untag"]);
    assert_eq!(count(&t, "tagged").await, 0, "the rollback function ran");
    let history = t.history().await;
    let states: Vec<&str> = history
        .iter()
        .map(|entry| entry.get_str("state").unwrap())
        .collect();
    assert_eq!(states, ["EXECUTED", "ROLLED_BACK"], "{history:?}");

    // Pending again: the next run applies it again.
    apply(&t, &probe, &["fn-tagged"]).await;
    assert_eq!(count(&t, "tagged").await, 1);
    t.finish().await;
}

#[tokio::test]
async fn undo_runs_a_function_units_rollback_function_in_a_replica_set() {
    undo_runs_a_function_units_rollback_function(Mode::ReplicaSet, "fn_undo_rs").await;
}

#[tokio::test]
async fn undo_runs_a_function_units_rollback_function_on_a_standalone_server() {
    undo_runs_a_function_units_rollback_function(Mode::Standalone, "fn_undo_sa").await;
}

#[tokio::test]
async fn undo_refuses_a_function_unit_without_rollback() {
    let t = test_db(Mode::ReplicaSet, "fn_undo_none").await;
    let probe = Recorder::default();
    apply(&t, &probe, &["fn-seed"]).await;
    let before = t.history().await;

    let error = runner(&t, &probe, &["fn-seed"])
        .undo_all()
        .await
        .unwrap_err();

    assert!(
        matches!(&error, Error::NoRollback { units } if units == &["fn-seed"]),
        "{error}"
    );
    assert_eq!(t.history().await, before, "nothing recorded");
    assert_eq!(count(&t, "things").await, 1, "nothing undone");
    t.finish().await;
}

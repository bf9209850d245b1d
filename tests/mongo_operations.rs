//! Operating a database against a real server, in both modes: status, the dry run, history,
//! running up to a unit, undo, unlock, checksum drift, and validation.

mod support;

use std::time::{Duration, SystemTime};

use migrate::{
    before_execution, change_unit, execution, rollback_before_execution, rollback_execution,
    ChangeUnit, ChecksumPolicy, Dep, DescribeUnit, Error, Outcome, ReleaseReason, Runner, Severity,
    SkipReason, State, UnitState, Unlock,
};
use mongodb::bson::{doc, DateTime, Document};
use mongodb::{ClientSession, Database};
use support::recorder::Recorder;
use support::{test_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

fn unit<T: DescribeUnit>() -> &'static ChangeUnit {
    T::change_unit()
}

// ---------------------------------------------------------------- units

/// A unit that inserts `{unit: <id>}` into `ops` with the session, and deletes it to undo.
macro_rules! ops_unit {
    ($name:ident, $id:literal, $order:literal) => {
        #[change_unit(id = $id, order = $order, author = "ops")]
        struct $name {
            db: Database,
        }

        impl $name {
            #[execution]
            async fn execute(&self, session: &mut ClientSession) -> Result {
                let ops = self.db.collection::<Document>("ops");
                ops.insert_one(doc! { "unit": $id })
                    .session(session)
                    .await?;
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self, session: &mut ClientSession) -> Result {
                let ops = self.db.collection::<Document>("ops");
                ops.delete_many(doc! { "unit": $id })
                    .session(session)
                    .await?;
                Ok(())
            }
        }
    };
}

ops_unit!(OpsB, "ops-b", "ops-2");
ops_unit!(OpsC, "ops-c", "ops-3");

/// A unit with a before-step that creates a marker the undo removes.
#[change_unit(id = "ops-a", order = "ops-1", author = "ops")]
struct OpsA {
    db: Database,
}

impl OpsA {
    #[before_execution]
    async fn mark(&self) -> Result {
        let before = self.db.collection::<Document>("ops_before");
        before.insert_one(doc! { "unit": "ops-a" }).await?;
        Ok(())
    }

    #[rollback_before_execution]
    async fn unmark(&self) -> Result {
        let before = self.db.collection::<Document>("ops_before");
        before.delete_many(doc! { "unit": "ops-a" }).await?;
        Ok(())
    }

    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        let ops = self.db.collection::<Document>("ops");
        ops.insert_one(doc! { "unit": "ops-a" })
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut ClientSession) -> Result {
        let ops = self.db.collection::<Document>("ops");
        ops.delete_many(doc! { "unit": "ops-a" })
            .session(session)
            .await?;
        Ok(())
    }
}

/// A unit whose rollback does nothing: it cannot be undone.
#[change_unit(id = "ops-empty", order = "ops-4", author = "ops")]
struct OpsEmptyRollback {
    db: Database,
}

impl OpsEmptyRollback {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        let ops = self.db.collection::<Document>("ops");
        ops.insert_one(doc! { "unit": "ops-empty" })
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// A unit whose rollback fails.
#[change_unit(id = "ops-stuck", order = "ops-5", author = "ops")]
struct OpsStuck {
    db: Database,
}

impl OpsStuck {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        let ops = self.db.collection::<Document>("ops");
        ops.insert_one(doc! { "unit": "ops-stuck" })
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        anyhow::bail!("the archive this unit deleted is gone")
    }
}

/// A unit that needs a dependency the runner may lack.
#[change_unit(id = "ops-needs", order = "ops-6", author = "ops")]
struct OpsNeedsRecorder {
    probe: Dep<Recorder>,
}

impl OpsNeedsRecorder {
    #[execution]
    async fn execute(&self) -> Result {
        self.probe.push("ran");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.probe.push("undone");
        Ok(())
    }
}

/// Orders "9" and "10": numbers of different widths, which sort as text.
#[change_unit(id = "ops-nine", order = "9", author = "ops", transactional = false)]
struct OpsNine;

impl OpsNine {
    #[execution]
    async fn execute(&self) -> Result {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Transactional, but its execution takes no session; order "10".
#[change_unit(id = "ops-ten", order = "10", author = "ops")]
struct OpsTenSessionless;

impl OpsTenSessionless {
    #[execution]
    async fn execute(&self) -> Result {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Declares the id and author of [`OpsB`] a second time.
#[change_unit(id = "ops-b", order = "ops-9", author = "ops")]
struct OpsBAgain;

impl OpsBAgain {
    #[execution]
    async fn execute(&self) -> Result {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

fn abc() -> [&'static ChangeUnit; 3] {
    [unit::<OpsA>(), unit::<OpsB>(), unit::<OpsC>()]
}

async fn ops_units(t: &TestDb) -> Vec<String> {
    let mut units: Vec<String> = t
        .documents("ops")
        .await
        .iter()
        .map(|d| d.get_str("unit").unwrap().to_owned())
        .collect();
    units.sort();
    units
}

fn states_of(history: &[Document], change_id: &str) -> Vec<String> {
    history
        .iter()
        .filter(|d| d.get_str("changeId") == Ok(change_id))
        .map(|d| d.get_str("state").unwrap().to_owned())
        .collect()
}

/// Writes commands the driver sent (the dry run and status must send none).
fn writes(t: &TestDb) -> Vec<String> {
    t.commands
        .names()
        .into_iter()
        .filter(|n| {
            matches!(
                n.as_str(),
                "insert" | "update" | "delete" | "findAndModify" | "createIndexes" | "create"
            )
        })
        .collect()
}

// ---------------------------------------------------------------- status

async fn status_shows_every_state(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    // A and C applied, B never: B is pending and out of order.
    Runner::new(&t.db)
        .units([unit::<OpsA>(), unit::<OpsC>()])
        .run()
        .await?;
    t.collection("mongockChangeLog")
        .insert_one(doc! {
            "executionId": "java-run", "changeId": "gone-unit", "author": "java-team",
            "timestamp": DateTime::now(), "state": "EXECUTED", "type": "EXECUTION",
            "changeLogClass": "com.example.GoneUnit", "changeSetMethod": "execution",
            "executionMillis": 3_i64, "executionHostname": "java-host", "systemChange": false,
        })
        .await?;

    t.commands.clear();
    let status = Runner::new(&t.db).units(abc()).status().await?;
    assert_eq!(t.commands.names(), ["find"], "status is one read");

    let a = status.unit("ops-a").unwrap();
    assert!(
        matches!(&a.state, UnitState::Executed { host, millis, .. } if !host.is_empty() && *millis >= 0),
        "{a:?}"
    );
    assert!(!a.pending && a.drift.is_none() && !a.out_of_order);
    let b = status.unit("ops-b").unwrap();
    assert_eq!(b.state, UnitState::Pending);
    assert!(b.pending && b.out_of_order, "{b:?}");
    let c = status.unit("ops-c").unwrap();
    assert!(matches!(c.state, UnitState::Executed { .. }) && !c.pending);

    assert_eq!(status.unknown.len(), 1, "{:?}", status.unknown);
    assert_eq!(status.unknown[0].id, "gone-unit");
    assert_eq!(status.unknown[0].change_log_class, "com.example.GoneUnit");
    assert_eq!(status.unknown[0].state, State::Executed);
    assert!(!status.is_up_to_date());

    let table = status.to_string();
    let b_line = table.lines().find(|l| l.contains("ops-b")).unwrap();
    assert!(b_line.contains("pending") && b_line.contains("ordered before an applied unit"));
    assert!(table.contains("com.example.GoneUnit"), "{table}");
    // Columns line up: every unit row starts its id at the same offset.
    let offsets: Vec<usize> = table
        .lines()
        .filter_map(|l| l.find("ops-"))
        .filter(|&o| o > 0)
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] == w[1]), "{table}");
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn status_shows_every_state_in_a_replica_set() -> Result {
    status_shows_every_state(Mode::ReplicaSet, "status_rs").await
}

#[tokio::test]
async fn status_shows_every_state_on_a_standalone_server() -> Result {
    status_shows_every_state(Mode::Standalone, "status_sa").await
}

// ---------------------------------------------------------------- run up to

async fn run_up_to_stops_after_the_target(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    let unknown = Runner::new(&t.db)
        .units(abc())
        .run_up_to("no-such-unit")
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, Error::UnknownChangeUnit { id } if id == "no-such-unit"),
        "{unknown}"
    );
    assert!(t.history().await.is_empty(), "nothing was written");

    let report = Runner::new(&t.db).units(abc()).run_up_to("ops-b").await?;
    assert_eq!(report.executed(), ["ops-a", "ops-b"]);
    assert_eq!(
        report.unit("ops-c").unwrap().outcome,
        Outcome::Skipped(SkipReason::AfterTarget {
            target: "ops-b".into()
        })
    );
    assert_eq!(ops_units(&t).await, ["ops-a", "ops-b"]);

    let report = Runner::new(&t.db).units(abc()).run().await?;
    assert_eq!(report.executed(), ["ops-c"], "the rest runs later");
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn run_up_to_stops_after_the_target_in_a_replica_set() -> Result {
    run_up_to_stops_after_the_target(Mode::ReplicaSet, "upto_rs").await
}

#[tokio::test]
async fn run_up_to_stops_after_the_target_on_a_standalone_server() -> Result {
    run_up_to_stops_after_the_target(Mode::Standalone, "upto_sa").await
}

// ---------------------------------------------------------------- undo

async fn undo_rolls_back_newest_first(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    Runner::new(&t.db).units(abc()).run().await?;
    assert_eq!(ops_units(&t).await, ["ops-a", "ops-b", "ops-c"]);

    t.commands.clear();
    let report = Runner::new(&t.db).units(abc()).undo_to("ops-b").await?;
    let commits = t.commands.count_of("commitTransaction");
    match mode {
        Mode::ReplicaSet => assert_eq!(commits, 2, "one transaction per undone unit"),
        Mode::Standalone => assert_eq!(commits, 0),
    }
    let undone: Vec<(&str, &Outcome)> = report.units.iter().map(|u| (u.id, &u.outcome)).collect();
    assert_eq!(
        undone,
        [
            ("ops-c", &Outcome::RolledBack),
            ("ops-b", &Outcome::RolledBack)
        ],
        "newest first, down to and including the target"
    );
    assert_eq!(ops_units(&t).await, ["ops-a"]);
    assert!(t.documents("mongockLock").await.is_empty(), "lock released");
    let history = t.history().await;
    assert_eq!(states_of(&history, "ops-c"), ["EXECUTED", "ROLLED_BACK"]);
    assert_eq!(states_of(&history, "ops-b"), ["EXECUTED", "ROLLED_BACK"]);
    let rolled_back = history
        .iter()
        .find(|d| d.get_str("changeId") == Ok("ops-b") && d.get_str("state") == Ok("ROLLED_BACK"))
        .unwrap();
    assert_eq!(rolled_back.get_str("type")?, "EXECUTION");
    assert_eq!(rolled_back.get_str("changeSetMethod")?, "execute");

    let status = Runner::new(&t.db).units(abc()).status().await?;
    assert!(matches!(
        status.unit("ops-b").unwrap().state,
        UnitState::RolledBack { .. }
    ));
    assert!(status.unit("ops-b").unwrap().pending, "pending again");

    // Undoing everything also rolls back A's before-step.
    let report = Runner::new(&t.db).units(abc()).undo_all().await?;
    assert_eq!(report.units.len(), 1, "only A was still applied");
    assert!(ops_units(&t).await.is_empty());
    assert!(
        t.documents("ops_before").await.is_empty(),
        "before-step undone"
    );
    let history = t.history().await;
    assert_eq!(
        states_of(&history, "ops-a_before"),
        ["EXECUTED", "ROLLED_BACK"]
    );

    // Everything is pending again, and a run applies it all once more.
    let report = Runner::new(&t.db).units(abc()).run().await?;
    assert_eq!(report.executed(), ["ops-a", "ops-b", "ops-c"]);
    assert_eq!(ops_units(&t).await, ["ops-a", "ops-b", "ops-c"]);

    // Nothing applied at or after the target: nothing to undo.
    let report = Runner::new(&t.db)
        .units([
            unit::<OpsA>(),
            unit::<OpsB>(),
            unit::<OpsC>(),
            unit::<OpsEmptyRollback>(),
        ])
        .undo_to("ops-empty")
        .await?;
    assert!(report.units.is_empty());
    assert_eq!(ops_units(&t).await, ["ops-a", "ops-b", "ops-c"]);
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn undo_rolls_back_newest_first_in_a_replica_set() -> Result {
    undo_rolls_back_newest_first(Mode::ReplicaSet, "undo_rs").await
}

#[tokio::test]
async fn undo_rolls_back_newest_first_on_a_standalone_server() -> Result {
    undo_rolls_back_newest_first(Mode::Standalone, "undo_sa").await
}

async fn undo_refuses_units_without_rollback_code(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    let units = [unit::<OpsB>(), unit::<OpsEmptyRollback>()];
    Runner::new(&t.db).units(units).run().await?;
    let before = t.history().await;

    let error = Runner::new(&t.db)
        .units(units)
        .undo_all()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::NoRollback { units } if units == &["ops-empty"]),
        "{error}"
    );
    assert!(error.to_string().contains("`ops-empty`"), "{error}");
    assert_eq!(t.history().await, before, "nothing recorded");
    assert_eq!(
        ops_units(&t).await,
        ["ops-b", "ops-empty"],
        "nothing undone"
    );
    assert!(t.documents("mongockLock").await.is_empty(), "no lock taken");

    // `ops-empty` is ordered after `ops-b`, so undoing down to `ops-b` includes it.
    let error = Runner::new(&t.db)
        .units(units)
        .undo_to("ops-b")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NoRollback { .. }), "{error}");
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn undo_refuses_units_without_rollback_code_in_a_replica_set() -> Result {
    undo_refuses_units_without_rollback_code(Mode::ReplicaSet, "undo_norb_rs").await
}

#[tokio::test]
async fn undo_refuses_units_without_rollback_code_on_a_standalone_server() -> Result {
    undo_refuses_units_without_rollback_code(Mode::Standalone, "undo_norb_sa").await
}

async fn a_failing_undo_is_recorded_and_stops(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    let units = [unit::<OpsB>(), unit::<OpsStuck>()];
    Runner::new(&t.db).units(units).run().await?;

    let error = Runner::new(&t.db)
        .units(units)
        .undo_all()
        .await
        .unwrap_err();
    let failed = error.as_execution().expect("a unit's failure");
    assert_eq!(failed.unit_id, "ops-stuck");
    assert_eq!(failed.step, migrate::Step::RollbackExecution);
    assert_eq!(
        ops_units(&t).await,
        ["ops-b", "ops-stuck"],
        "B was not undone: the undo stopped at the failure"
    );
    let history = t.history().await;
    assert_eq!(
        states_of(&history, "ops-stuck"),
        ["EXECUTED", "ROLLBACK_FAILED"]
    );
    let trace = history
        .iter()
        .find(|d| d.get_str("state") == Ok("ROLLBACK_FAILED"))
        .and_then(|d| d.get_str("errorTrace").ok())
        .unwrap()
        .to_owned();
    assert!(
        trace.contains("the archive this unit deleted is gone"),
        "{trace}"
    );
    let status = Runner::new(&t.db).units(units).status().await?;
    assert!(
        matches!(
            status.unit("ops-stuck").unwrap().state,
            UnitState::Executed { .. }
        ),
        "a failed undo leaves the unit applied"
    );
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_failing_undo_is_recorded_and_stops_in_a_replica_set() -> Result {
    a_failing_undo_is_recorded_and_stops(Mode::ReplicaSet, "undo_fail_rs").await
}

#[tokio::test]
async fn a_failing_undo_is_recorded_and_stops_on_a_standalone_server() -> Result {
    a_failing_undo_is_recorded_and_stops(Mode::Standalone, "undo_fail_sa").await
}

// ---------------------------------------------------------------- plan

async fn plan_makes_the_checks_run_makes(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    let needs = [unit::<OpsB>(), unit::<OpsNeedsRecorder>()];

    t.commands.clear();
    let error = Runner::new(&t.db).units(needs).plan().await.unwrap_err();
    assert!(matches!(error, Error::MissingDependencies(_)), "{error}");
    let plan = Runner::new(&t.db)
        .units(needs)
        .dependency(Recorder::default())
        .plan()
        .await?;
    assert_eq!(plan.pending().count(), 2);
    let table = plan.to_string();
    assert!(
        table.contains("ops-needs") && table.contains("run"),
        "{table}"
    );

    let forced = Runner::new(&t.db)
        .units([unit::<OpsB>()])
        .transactional(true)
        .plan()
        .await;
    match mode {
        Mode::Standalone => assert!(
            matches!(forced, Err(Error::TransactionsUnsupported { .. })),
            "{forced:?}"
        ),
        Mode::ReplicaSet => assert!(forced.is_ok(), "{forced:?}"),
    }
    assert!(writes(&t).is_empty(), "the dry run wrote: {:?}", writes(&t));

    t.collection("mongockChangeLog")
        .insert_one(doc! {
            "executionId": "old-run", "changeId": "deleted-unit", "author": "ops",
            "timestamp": DateTime::now(), "state": "EXECUTED", "type": "EXECUTION",
            "changeLogClass": "my_service::migrations::DeletedUnit",
            "changeSetMethod": "execute", "executionMillis": 1_i64,
            "executionHostname": "h", "systemChange": false,
        })
        .await?;
    let error = Runner::new(&t.db)
        .units([unit::<OpsB>()])
        .plan()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::UnknownHistory { .. }), "{error}");
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn plan_makes_the_checks_run_makes_in_a_replica_set() -> Result {
    plan_makes_the_checks_run_makes(Mode::ReplicaSet, "plan_rs").await
}

#[tokio::test]
async fn plan_makes_the_checks_run_makes_on_a_standalone_server() -> Result {
    plan_makes_the_checks_run_makes(Mode::Standalone, "plan_sa").await
}

// ---------------------------------------------------------------- checksums

/// Stores another checksum for `change_id`'s execution, as if its code had changed since.
async fn edit_recorded_checksum(t: &TestDb, change_id: &str, checksum: &str) {
    let result = t
        .collection("mongockChangeLog")
        .update_one(
            doc! { "changeId": change_id, "state": "EXECUTED" },
            doc! { "$set": { "checksum": checksum } },
        )
        .await
        .unwrap();
    assert_eq!(result.matched_count, 1);
}

async fn checksum_drift_follows_the_policy(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    Runner::new(&t.db)
        .units([unit::<OpsA>(), unit::<OpsB>()])
        .run()
        .await?;
    edit_recorded_checksum(&t, "ops-b", "00000000000000ff").await;

    let status = Runner::new(&t.db).units(abc()).status().await?;
    let drift = status.unit("ops-b").unwrap().drift.clone().expect("drift");
    assert_eq!(drift.recorded, "00000000000000ff");
    assert_eq!(drift.current, unit::<OpsB>().checksum());
    assert!(status.unit("ops-a").unwrap().drift.is_none());

    // Strict: the run fails before changing anything, naming the unit; so does the plan.
    let strict = || {
        Runner::new(&t.db)
            .units(abc())
            .checksum_policy(ChecksumPolicy::Strict)
    };
    let error = strict().plan().await.unwrap_err();
    assert!(
        matches!(&error, Error::ChecksumDrift { units } if units == &["ops-b"]),
        "{error}"
    );
    let error = strict().run().await.unwrap_err();
    assert!(
        matches!(&error, Error::ChecksumDrift { units } if units == &["ops-b"]),
        "{error}"
    );
    assert_eq!(ops_units(&t).await, ["ops-a", "ops-b"], "C did not run");

    // Warn (the default) runs on; Ignore too.
    let report = Runner::new(&t.db).units(abc()).run().await?;
    assert_eq!(report.executed(), ["ops-c"]);

    // Accepting records the new checksum and keeps the old one.
    let accepted = Runner::new(&t.db).units(abc()).accept_checksums().await?;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].id, "ops-b");
    let history = t.history().await;
    let b = history
        .iter()
        .find(|d| d.get_str("changeId") == Ok("ops-b"))
        .unwrap();
    assert_eq!(b.get_str("checksum")?, unit::<OpsB>().checksum());
    let previous: Vec<&str> = b
        .get_array("previousChecksums")?
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(previous, ["00000000000000ff"]);
    assert!(t.documents("mongockLock").await.is_empty(), "lock released");

    strict().run().await?;
    assert!(Runner::new(&t.db)
        .units(abc())
        .accept_checksums()
        .await?
        .is_empty());
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn checksum_drift_follows_the_policy_in_a_replica_set() -> Result {
    checksum_drift_follows_the_policy(Mode::ReplicaSet, "drift_rs").await
}

#[tokio::test]
async fn checksum_drift_follows_the_policy_on_a_standalone_server() -> Result {
    checksum_drift_follows_the_policy(Mode::Standalone, "drift_sa").await
}

// ---------------------------------------------------------------- unlock

async fn plant_lock(t: &TestDb, owner: &str, expires_at: SystemTime) {
    t.collection("mongockLock")
        .insert_one(doc! {
            "key": "DEFAULT_KEY", "status": "LOCK_HELD", "owner": owner,
            "expiresAt": DateTime::from_system_time(expires_at),
        })
        .await
        .unwrap();
}

async fn unlock_releases_only_what_it_may(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    let runner = Runner::new(&t.db).units(abc());
    assert_eq!(runner.unlock(false).await?, Unlock::Free);

    let live_until = SystemTime::now() + Duration::from_secs(600);
    plant_lock(&t, "other-instance", live_until).await;
    let left = runner.unlock(false).await?;
    assert!(
        matches!(&left, Unlock::HeldBy { owner, .. } if owner == "other-instance"),
        "{left:?}"
    );
    assert!(left.to_string().contains("other-instance"));
    assert_eq!(
        t.documents("mongockLock").await.len(),
        1,
        "a live lock stays"
    );

    let forced = runner.unlock(true).await?;
    assert!(
        matches!(&forced, Unlock::Released { owner, reason: ReleaseReason::Forced, .. } if owner == "other-instance"),
        "{forced:?}"
    );
    assert!(t.documents("mongockLock").await.is_empty());

    plant_lock(
        &t,
        "crashed-instance",
        SystemTime::now() - Duration::from_secs(5),
    )
    .await;
    let expired = runner.unlock(false).await?;
    assert!(
        matches!(
            &expired,
            Unlock::Released {
                reason: ReleaseReason::Expired,
                ..
            }
        ),
        "{expired:?}"
    );
    assert!(t.documents("mongockLock").await.is_empty());
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn unlock_releases_only_what_it_may_in_a_replica_set() -> Result {
    unlock_releases_only_what_it_may(Mode::ReplicaSet, "unlock_rs").await
}

#[tokio::test]
async fn unlock_releases_only_what_it_may_on_a_standalone_server() -> Result {
    unlock_releases_only_what_it_may(Mode::Standalone, "unlock_sa").await
}

// ---------------------------------------------------------------- history

#[tokio::test]
async fn history_is_typed_and_newest_first() -> Result {
    let t = test_db(Mode::ReplicaSet, "history_typed").await;
    Runner::new(&t.db).units(abc()).run().await?;
    Runner::new(&t.db).units(abc()).undo_to("ops-c").await?;
    let history = Runner::new(&t.db).units(abc()).history().await?;
    assert_eq!(history.len(), 5, "{history:?}");
    assert!(history.windows(2).all(|w| w[0].timestamp >= w[1].timestamp));
    assert_eq!(history[0].change_id, "ops-c");
    assert_eq!(history[0].state, State::RolledBack);
    assert_eq!(history.last().unwrap().change_id, "ops-a_before");
    t.finish().await;
    Ok(())
}

// ---------------------------------------------------------------- validate

#[tokio::test]
async fn validate_reports_every_problem_without_a_database() {
    let units = [
        unit::<OpsB>(),
        unit::<OpsBAgain>(),
        unit::<OpsNine>(),
        unit::<OpsTenSessionless>(),
        unit::<OpsA>(),
    ];
    // A runner whose store is never touched: no server behind this URI is contacted.
    let client = mongodb::Client::with_options(
        mongodb::options::ClientOptions::builder()
            .hosts(vec![
                mongodb::options::ServerAddress::parse("127.0.0.1:1").unwrap()
            ])
            .build(),
    )
    .unwrap();
    let validation = Runner::new(client.database("unused"))
        .units(units)
        .validate();
    assert!(!validation.is_valid());
    let errors: Vec<_> = validation.errors().collect();
    assert_eq!(errors.len(), 1, "{validation}");
    assert_eq!(errors[0].unit.as_deref(), Some("ops-b"));
    assert!(errors[0].message.contains("OpsBAgain"), "{validation}");

    let warnings: Vec<_> = validation.warnings().collect();
    assert!(
        warnings.iter().any(|w| w.unit.as_deref() == Some("ops-ten")
            && w.message.contains("takes no session")),
        "{validation}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("`10` runs before `9`")),
        "{validation}"
    );
    assert!(validation
        .findings
        .windows(2)
        .all(|w| w[0].severity <= w[1].severity));
    assert_eq!(validation.findings[0].severity, Severity::Error);
    assert!(
        validation.to_string().contains("5 units checked: 1 errors"),
        "{validation}"
    );

    let clean = Runner::new(client.database("unused"))
        .units(abc())
        .validate();
    assert!(clean.is_valid() && clean.findings.is_empty(), "{clean}");
}

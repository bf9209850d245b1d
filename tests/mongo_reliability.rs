//! Guarantees that must hold for real migrations, against a real server: units longer than
//! the refresh interval, transactions the server aborts, commits whose outcome is unknown,
//! transactions left open by a crashed runner, history writes that fail, and runs cancelled
//! while they hold the lock.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use migrate::{
    change_unit, execution, rollback_execution, ChangeUnit, Dep, DescribeUnit, Error, MongoStore,
    Runner, TransactionTooLong,
};
use mongodb::bson::{doc, DateTime, Document};
use mongodb::{ClientSession, Database};
use support::recorder::Recorder;
use support::{take_lock_over, test_db, transactional_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

fn unit<T: DescribeUnit>() -> &'static ChangeUnit {
    T::change_unit()
}

fn runner(t: &TestDb, recorder: &Recorder) -> Runner {
    Runner::new(&t.db).dependency(recorder.clone())
}

/// `failCommand` is one fail point per server: the tests that configure it take turns.
static FAIL_POINT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn fail_point(t: &TestDb, mode: mongodb::bson::Bson, data: Document) {
    let mut data = data;
    data.insert("appName", t.app_name());
    t.client
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": mode, "data": data })
        .await
        .expect("configureFailPoint (the server needs `--enable-test-commands`)");
}

async fn fail_point_off(t: &TestDb) {
    t.client
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .await
        .expect("configureFailPoint off");
}

fn executed_rows(history: &[Document], id: &str) -> usize {
    history
        .iter()
        .filter(|e| e.get_str("changeId") == Ok(id) && e.get_str("state") == Ok("EXECUTED"))
        .count()
}

/// Increments a counter through the session: applying it twice shows.
#[change_unit(id = "counted", order = "001", author = "reliability")]
struct Counted {
    db: Database,
    recorder: Dep<Recorder>,
}

impl Counted {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        self.recorder.attempt();
        self.db
            .collection::<Document>("counters")
            .update_one(doc! { "_id": "counted" }, doc! { "$inc": { "n": 1 } })
            .upsert(true)
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.db
            .collection::<Document>("counters")
            .update_one(doc! { "_id": "counted" }, doc! { "$inc": { "n": -1 } })
            .await?;
        Ok(())
    }
}

/// Writes, then works for 2.5 s: longer than two refresh intervals of a 3 s lease.
#[change_unit(id = "long", order = "001", author = "reliability")]
struct Long {
    db: Database,
    recorder: Dep<Recorder>,
}

impl Long {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        self.recorder.attempt();
        self.db
            .collection::<Document>("long")
            .insert_one(doc! { "written": true })
            .session(session)
            .await?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Works for 1.2 s, then writes: past a transaction lifetime of 1 s. Its error is an
/// `anyhow::Error`, which hides the driver's error from a downcast.
#[change_unit(id = "late-write", order = "001", author = "reliability")]
struct LateWrite {
    db: Database,
    recorder: Dep<Recorder>,
}

impl LateWrite {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        self.recorder.attempt();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        self.db
            .collection::<Document>("late")
            .insert_one(doc! { "written": true })
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Upserts a document (an `update`, never an `insert`, so a fail point on `insert` hits only
/// the history); its rollback deletes it.
#[change_unit(id = "inserted", order = "001", author = "reliability")]
struct Inserted {
    db: Database,
}

impl Inserted {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        self.db
            .collection::<Document>("inserted")
            .update_one(
                doc! { "unit": "inserted" },
                doc! { "$set": { "unit": "inserted" } },
            )
            .upsert(true)
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.db
            .collection::<Document>("inserted")
            .delete_many(doc! {})
            .await?;
        Ok(())
    }
}

async fn counter(t: &TestDb) -> i32 {
    t.documents("counters")
        .await
        .first()
        .map_or(0, |d| d.get_i32("n").unwrap())
}

#[tokio::test]
async fn a_transactional_unit_longer_than_a_third_of_the_lease_commits_first_time() {
    let Some(t) = transactional_db("long_unit").await else {
        return;
    };
    let recorder = Recorder::default();
    let report = runner(&t, &recorder)
        .lock_lease(Duration::from_secs(3))
        .units([unit::<Long>()])
        .run()
        .await
        .unwrap();
    assert_eq!(report.executed(), ["long"]);
    assert_eq!(recorder.attempts(), 1, "no write conflict with the refresh");
    assert_eq!(t.documents("long").await.len(), 1);
    assert!(t.documents("mongockLock").await.is_empty(), "released");
    t.finish().await;
}

/// Cancels a run (drops its future) while [`Long`] runs, with a lease of a minute.
async fn a_cancelled_run_releases_its_lock(mode: Mode, name: &str) {
    let t = test_db(mode, name).await;
    let recorder = Recorder::default();
    let run = tokio::spawn(
        runner(&t, &recorder)
            .lock_lease(Duration::from_secs(60))
            .units([unit::<Long>()])
            .run(),
    );
    while recorder.attempts() == 0 {
        assert!(!run.is_finished(), "the run ended before its unit started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    // The lease has most of a minute to go: only a release frees the lock this soon.
    let mut lock = t.documents("mongockLock").await;
    for _ in 0..300 {
        if lock.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        lock = t.documents("mongockLock").await;
    }
    assert!(
        lock.is_empty(),
        "the cancelled run's lock is released: {lock:?}"
    );
    assert!(
        t.history().await.is_empty(),
        "the cancelled unit is not recorded"
    );

    let report = runner(&t, &recorder)
        .units([unit::<Long>()])
        .run()
        .await
        .unwrap();
    assert_eq!(report.executed(), ["long"], "the next run applies it");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_releases_its_lock_in_a_replica_set() {
    a_cancelled_run_releases_its_lock(Mode::ReplicaSet, "cancelled_rs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_releases_its_lock_on_a_standalone_server() {
    a_cancelled_run_releases_its_lock(Mode::Standalone, "cancelled_sa").await;
}

/// Runs `unit` with a transaction lifetime of 1 s while the server answers the next
/// `command` with NoSuchTransaction, as it does once it aborted a transaction for its age:
/// the unit must fail once, with an error that says why.
async fn an_aged_out_transaction_fails_once(name: &str, command: &str, unit: &'static ChangeUnit) {
    let Some(t) = transactional_db(name).await else {
        return;
    };
    let _turn = FAIL_POINT.lock().await;
    fail_point(
        &t,
        doc! { "times": 1 }.into(),
        doc! {
            "failCommands": [command],
            "errorCode": 251,
            "errorLabels": ["TransientTransactionError"],
        },
    )
    .await;
    let recorder = Recorder::default();
    let store = MongoStore::new(&t.db).transaction_lifetime(Duration::from_millis(1000));
    let error = Runner::new(store)
        .dependency(recorder.clone())
        .units([unit])
        .run()
        .await
        .unwrap_err();
    fail_point_off(&t).await;

    let failure = error.as_execution().expect("the unit failed");
    let too_long = failure
        .source
        .downcast_ref::<TransactionTooLong>()
        .unwrap_or_else(|| panic!("the cause says the transaction was too long: {error}"));
    assert_eq!(too_long.lifetime, Duration::from_secs(1));
    assert!(
        too_long.to_string().contains("split the unit"),
        "{too_long}"
    );
    assert_eq!(recorder.attempts(), 1, "not retried");
    let history = t.history().await;
    assert_eq!(executed_rows(&history, unit.id()), 0);
    t.finish().await;
}

#[tokio::test]
async fn a_transaction_the_server_aborted_for_its_age_fails_once_and_says_why() {
    // The commit finds the transaction gone.
    an_aged_out_transaction_fails_once("too_long", "commitTransaction", unit::<Long>()).await;
}

#[tokio::test]
async fn a_unit_whose_own_write_finds_its_transaction_aged_out_fails_once_and_says_why() {
    // The unit's own insert finds it gone, and the unit returns that error through
    // `anyhow`, which hides the driver's error from a downcast.
    an_aged_out_transaction_fails_once("too_long_write", "insert", unit::<LateWrite>()).await;
}

#[tokio::test]
async fn a_recorded_driver_error_leaves_out_the_raw_server_reply() {
    let Some(t) = transactional_db("raw_reply").await else {
        return;
    };
    let _turn = FAIL_POINT.lock().await;
    // The unit's insert fails with a command error, which the driver prints with the
    // server's whole reply as hex.
    fail_point(
        &t,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["insert"], "errorCode": 2 },
    )
    .await;
    let recorder = Recorder::default();
    let error = runner(&t, &recorder)
        .units([unit::<Long>()])
        .run()
        .await
        .unwrap_err();
    fail_point_off(&t).await;
    assert!(error.as_execution().is_some(), "{error}");

    let history = t.history().await;
    let trace = history
        .iter()
        .find_map(|e| e.get_str("errorTrace").ok())
        .expect("the failure is recorded");
    assert!(trace.contains("Error code 2 "), "{trace}");
    assert!(!trace.contains("RawDocumentBuf"), "{trace}");
    t.finish().await;
}

#[tokio::test]
async fn a_commit_that_keeps_reporting_an_error_although_it_committed_is_not_applied_twice() {
    let Some(t) = transactional_db("committed_anyway").await else {
        return;
    };
    let _turn = FAIL_POINT.lock().await;
    fail_point(
        &t,
        "alwaysOn".into(),
        doc! {
            "failCommands": ["commitTransaction"],
            "writeConcernError": { "code": 64, "errmsg": "waiting for replication timed out" },
        },
    )
    .await;
    let recorder = Recorder::default();
    let result = runner(&t, &recorder).units([unit::<Counted>()]).run().await;
    fail_point_off(&t).await;
    let report = result.unwrap();

    assert_eq!(report.executed(), ["counted"]);
    assert_eq!(recorder.attempts(), 1);
    assert_eq!(
        t.commands.count_of("commitTransaction"),
        3,
        "the commit and its two retries, then the read-back"
    );
    assert_eq!(counter(&t).await, 1);
    let history = t.history().await;
    assert_eq!(executed_rows(&history, "counted"), 1, "{history:?}");
    assert_eq!(
        history.len(),
        1,
        "no FAILED row over the EXECUTED one: {history:?}"
    );

    let again = runner(&t, &recorder)
        .units([unit::<Counted>()])
        .run()
        .await
        .unwrap();
    assert!(again.executed().is_empty());
    assert_eq!(counter(&t).await, 1, "applied exactly once");
    t.finish().await;
}

#[tokio::test]
async fn a_failed_commit_ends_its_session_so_no_transaction_stays_open() {
    let Some(t) = transactional_db("failed_commit").await else {
        return;
    };
    let _turn = FAIL_POINT.lock().await;
    fail_point(
        &t,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["commitTransaction"], "errorCode": 8 },
    )
    .await;
    let recorder = Recorder::default();
    let error = runner(&t, &recorder)
        .units([unit::<Counted>()])
        .run()
        .await
        .unwrap_err();
    fail_point_off(&t).await;

    assert!(error.as_execution().is_some(), "{error}");
    assert_eq!(t.commands.count_of("killSessions"), 1);
    assert_eq!(counter(&t).await, 0, "nothing committed");
    let history = t.history().await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        history[0].get_str("state").unwrap(),
        "FAILED",
        "recorded on the key the aborted transaction had written"
    );
    t.finish().await;
}

#[tokio::test]
async fn a_transaction_left_open_on_the_lock_bounds_the_wait_and_then_releases_it() {
    let Some(t) = transactional_db("orphaned_transaction").await else {
        return;
    };
    // A crashed runner's transaction, stopped after its fence.
    let expired = DateTime::from_millis(DateTime::now().timestamp_millis() - 10_000);
    t.collection("mongockLock")
        .insert_one(doc! { "key": "DEFAULT_KEY", "status": "LOCK_HELD", "owner": "crashed", "expiresAt": expired })
        .await
        .unwrap();
    let mut orphan = t.client.start_session().await.unwrap();
    orphan.start_transaction().await.unwrap();
    t.collection("mongockLock")
        .update_one(
            doc! { "key": "DEFAULT_KEY" },
            doc! { "$set": { "expiresAt": DateTime::now() } },
        )
        .session(&mut orphan)
        .await
        .unwrap();

    let recorder = Recorder::default();
    let error = runner(&t, &recorder)
        .lock_quit_trying_after(Duration::from_secs(2))
        .lock_try_frequency(Duration::from_millis(500))
        .units([unit::<Counted>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Locked { owner, expires_at: None }
            if owner.starts_with("an open transaction of a runner")),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the migration lock is held by an open transaction of a runner"),
        "a description, not an owner id in backticks: {error}"
    );
    assert_eq!(recorder.attempts(), 0);

    // The server ends the orphan (here: its client aborts it); the next run converges.
    orphan.abort_transaction().await.unwrap();
    runner(&t, &recorder)
        .units([unit::<Counted>()])
        .run()
        .await
        .unwrap();
    assert_eq!(counter(&t).await, 1);
    t.finish().await;
}

#[tokio::test]
async fn without_transactions_a_change_that_cannot_be_recorded_is_rolled_back() {
    let t = test_db(Mode::Standalone, "unrecorded").await;
    if t.transactions {
        return;
    }
    let _turn = FAIL_POINT.lock().await;
    // The history entry is the only `insert` of the run.
    fail_point(
        &t,
        "alwaysOn".into(),
        doc! { "failCommands": ["insert"], "errorCode": 6, "errorLabels": ["RetryableWriteError"] },
    )
    .await;
    let recorder = Recorder::default();
    let error = runner(&t, &recorder)
        .units([unit::<Inserted>()])
        .run()
        .await;
    fail_point_off(&t).await;
    let error = error.unwrap_err();

    let failure = error.as_execution().expect("the unit failed");
    assert!(
        failure.source.to_string().contains("could not be recorded"),
        "{}",
        failure.source
    );
    assert!(failure.rolled_back);
    assert!(t.documents("inserted").await.is_empty(), "rolled back");
    assert_eq!(executed_rows(&t.history().await, "inserted"), 0);

    runner(&t, &recorder)
        .units([unit::<Inserted>()])
        .run()
        .await
        .unwrap();
    assert_eq!(
        t.documents("inserted").await.len(),
        1,
        "the rerun started clean"
    );
    assert_eq!(executed_rows(&t.history().await, "inserted"), 1);
    t.finish().await;
}

/// Drives tokio's paused clock for a test against a real server. A blocking task keeps the
/// clock from advancing on its own (it would jump to the driver's next timeout whenever the
/// runtime waits on the network), so it stands still until [`Clock::run`] is called; from
/// then on it moves with real time, a millisecond at a time, after a grace of `GRACE` of
/// real time.
#[derive(Clone, Default)]
struct Clock(Arc<AtomicBool>);

impl Clock {
    const GRACE: Duration = Duration::from_millis(50);

    /// Holds the clock still until [`run`](Clock::run), then moves it, for as long as the
    /// runtime lives.
    fn start(&self) {
        let (hold, released) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = released.recv();
        });
        let running = Arc::clone(&self.0);
        tokio::spawn(async move {
            // Owns the sender, so the blocking task, and with it the hold, lasts as long.
            let _hold = hold;
            let tick = Duration::from_millis(1);
            let mut grace = Clock::GRACE;
            loop {
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(tick)).await;
                if !running.load(Ordering::SeqCst) {
                    continue;
                }
                match grace.checked_sub(tick) {
                    Some(left) if !left.is_zero() => grace = left,
                    _ => tokio::time::advance(tick).await,
                }
            }
        });
    }

    fn run(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Writes in its transaction, then (on its first attempt only) lets another runner take the
/// lock over, and sets the clock running.
#[change_unit(id = "taken-over-midway", order = "001", author = "reliability")]
struct TakenOverMidway {
    db: Database,
    clock: Dep<Clock>,
}

impl TakenOverMidway {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result {
        self.db
            .collection::<Document>("midway")
            .insert_one(doc! { "written": true })
            .session(session)
            .await?;
        if !self.clock.0.load(Ordering::SeqCst) {
            take_lock_over(&self.db).await?;
            self.clock.run();
        }
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Every claim of this run falls in the same millisecond, as on a fast server: the clock
/// stands still until the unit has taken the lock over, and for a grace after that. The
/// fence must still write the lock document, so the takeover stops the commit.
#[tokio::test(start_paused = true)]
async fn a_takeover_stops_the_commit_when_every_lock_write_falls_in_one_millisecond() {
    let clock = Clock::default();
    clock.start();
    let Some(t) = transactional_db("fence_same_millisecond").await else {
        return;
    };
    let error = Runner::new(&t.db)
        .dependency(clock)
        .units([unit::<TakenOverMidway>()])
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::LockLost { unit_id: Some(id), .. } if id == "taken-over-midway"),
        "{error:?}"
    );
    assert!(t.documents("midway").await.is_empty(), "nothing committed");
    assert!(t.history().await.is_empty());
    t.finish().await;
}

/// Why every lock write changes the lock document: a fence that leaves it as it was writes
/// nothing, so a takeover committed after the transaction's snapshot does not stop the
/// commit. The runner never fences with the expiry already stored (a lease claims each
/// expiry at least a millisecond after the last); this pins what that relies on.
#[tokio::test]
async fn a_fence_stops_the_commit_after_a_takeover_only_when_it_changes_the_lock() {
    use migrate_core::{LockAttempt, LockClaim, LockStore, Store, TransactionStore};

    let Some(t) = transactional_db("fence_changes").await else {
        return;
    };
    let store = MongoStore::new(&t.db);
    // A whole second: the stored date keeps milliseconds only.
    let expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800);
    let claim = |expires_at| LockClaim {
        owner: "runner".into(),
        expires_at,
    };
    let mut outcomes = Vec::new();
    for fence_at in [expires_at, expires_at + Duration::from_millis(1)] {
        let acquired = store
            .acquire_lock(&claim(expires_at), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(acquired, LockAttempt::Acquired);

        let mut session = store.start_session().await.unwrap();
        store.start_transaction(&mut session).await.unwrap();
        t.collection("fenced")
            .insert_one(doc! { "fence_at": DateTime::from_system_time(fence_at) })
            .session(&mut session)
            .await
            .unwrap();
        take_lock_over(&t.db).await.unwrap();
        let committed = match store.fence_lock(&mut session, &claim(fence_at)).await {
            Ok(true) => store.commit_transaction(&mut session).await.is_ok(),
            Ok(false) | Err(_) => false,
        };
        store.end_session(session).await;
        outcomes.push(committed);
        t.collection("mongockLock")
            .delete_many(doc! {})
            .await
            .unwrap();
    }
    assert_eq!(
        outcomes,
        [true, false],
        "the unchanged fence commits although the lock was taken over; the changed one does not"
    );
    assert_eq!(t.documents("fenced").await.len(), 1);
    t.finish().await;
}

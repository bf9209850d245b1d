//! Resumable batch updates against a real server: a run killed at random points and started
//! again finishes the work with every document changed exactly once; the checkpoint goes
//! when the unit is recorded, a run stopped before that changes nothing again, and one a
//! run left after its record does not stop the unit applied again; documents whose ids are
//! of different types are all changed; a batch
//! never commits over a checkpoint another run moved, and a rollback keeps a checkpoint of
//! its own; the lock is checked between batches.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use migrate::batch::{
    stored_checkpoints, BatchUpdate, LeftOver, StoredCheckpoint, CHECKPOINT_COLLECTION,
};
use migrate::{
    change_unit, execution, rollback_execution, ChangeUnit, DescribeUnit, Error, Outcome, Progress,
    RunContext, Runner, Step,
};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Database;
use support::{test_db, transactional_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

const DOCUMENTS: i64 = 2_000;
const BATCH: usize = 100;

/// Marks every person done and counts how often each was changed.
#[change_unit(
    id = "backfill-people",
    order = "001",
    author = "batches",
    transactional = false
)]
struct BackfillPeople {
    db: Database,
}

impl BackfillPeople {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        BatchUpdate::new(
            &self.db.collection::<Document>("people"),
            doc! { "done": { "$ne": true } },
            doc! { "$set": { "done": true }, "$inc": { "changes": 1 } },
        )
        .batch_size(BATCH)
        .run(context)
        .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// The checkpointed update the counter units share: `$inc` on every counter.
fn bump_every_counter(db: &Database) -> BatchUpdate {
    BatchUpdate::new(
        &db.collection::<Document>("counters"),
        doc! {},
        doc! { "$inc": { "changes": 1 } },
    )
    .checkpointed()
    .batch_size(BATCH)
}

/// Declares a unit whose execution increments every counter once through
/// [`bump_every_counter`], and whose rollback does nothing.
macro_rules! bump_unit {
    ($(#[$doc:meta])* $name:ident, id = $id:literal $(, $key:ident = $value:tt)*) => {
        $(#[$doc])*
        #[change_unit(id = $id, author = "batches", transactional = false $(, $key = $value)*)]
        struct $name {
            db: Database,
        }

        impl $name {
            #[execution]
            async fn execute(&self, context: &RunContext) -> Result {
                bump_every_counter(&self.db).run(context).await?;
                Ok(())
            }

            #[rollback_execution]
            async fn rollback(&self) -> Result {
                Ok(())
            }
        }
    };
}

bump_unit!(
    /// Increments every counter once: no filter becomes false, so it walks a checkpoint.
    BumpCounters,
    id = "bump-counters",
    order = "002"
);
bump_unit!(
    /// Increments every counter once each run.
    BumpAlways,
    id = "bump-always",
    order = "001",
    run_always = true
);

/// The last progress [`FlagCounters`] reported, as (done, total), and what its batch changed.
static FLAG_PROGRESS: std::sync::Mutex<Option<(u64, Option<u64>, u64)>> =
    std::sync::Mutex::new(None);

/// Sets `flag` on every counter through a checkpoint; counters that have it already match
/// but do not change.
#[change_unit(
    id = "flag-counters",
    order = "001",
    author = "batches",
    transactional = false
)]
struct FlagCounters {
    db: Database,
}

impl FlagCounters {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        let last = Arc::new(std::sync::Mutex::new((0, None)));
        let seen = Arc::clone(&last);
        let report = BatchUpdate::new(
            &self.db.collection::<Document>("counters"),
            doc! {},
            doc! { "$set": { "flag": true } },
        )
        .checkpointed()
        .batch_size(BATCH)
        .on_progress(move |p| *seen.lock().unwrap() = (p.done, p.total))
        .run(context)
        .await?;
        let (done, total) = *last.lock().unwrap();
        *FLAG_PROGRESS.lock().unwrap() = Some((done, total, report.changed));
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Set while [`BumpThenStall`] should stop after its batches, before it returns.
static STALL: AtomicBool = AtomicBool::new(true);
/// Set once [`BumpThenStall`] has finished its batches and stalls.
static STALLED: AtomicBool = AtomicBool::new(false);

/// Increments every counter once, then stalls (while [`STALL`] is set) as if the process
/// stopped after the work but before the history records it.
#[change_unit(
    id = "bump-then-stall",
    order = "001",
    author = "batches",
    transactional = false
)]
struct BumpThenStall {
    db: Database,
}

impl BumpThenStall {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        bump_every_counter(&self.db).run(context).await?;
        if STALL.load(Ordering::SeqCst) {
            STALLED.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Increments every counter once, checkpointed. While `stall` is set, it first defers a
/// cleanup that sets `stalled` and never ends: cleanups run in the order they were deferred,
/// so the unit stops once recorded (or, rerun, once it succeeded), before the batch's
/// checkpoint is deleted, as if the process stopped there.
async fn bump_after_a_stall(
    db: &Database,
    context: &RunContext,
    stall: &AtomicBool,
    stalled: &'static AtomicBool,
) -> Result {
    if stall.load(Ordering::SeqCst) {
        context.after_recorded(async {
            stalled.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    bump_every_counter(db).run(context).await?;
    Ok(())
}

/// Set while [`BumpRecordedThenStall`] should stop after its record, before its cleanups.
static STALL_AFTER_RECORD: AtomicBool = AtomicBool::new(true);
/// Set once [`BumpRecordedThenStall`] is recorded and stalls.
static STALLED_AFTER_RECORD: AtomicBool = AtomicBool::new(false);

/// Increments every counter once; once recorded, stalls (while [`STALL_AFTER_RECORD`] is
/// set) before the batch's checkpoint is deleted, as if the process stopped there.
#[change_unit(
    id = "bump-recorded-then-stall",
    order = "001",
    author = "batches",
    transactional = false
)]
struct BumpRecordedThenStall {
    db: Database,
}

impl BumpRecordedThenStall {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        bump_after_a_stall(
            &self.db,
            context,
            &STALL_AFTER_RECORD,
            &STALLED_AFTER_RECORD,
        )
        .await
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.db
            .collection::<Document>("counters")
            .update_many(doc! {}, doc! { "$inc": { "changes": -1 } })
            .await?;
        Ok(())
    }
}

/// Set while [`BumpAlwaysThenStall`] should stop after it succeeded, before its cleanups.
static STALL_AFTER_RERUN: AtomicBool = AtomicBool::new(false);
/// Set once [`BumpAlwaysThenStall`] succeeded and stalls.
static STALLED_AFTER_RERUN: AtomicBool = AtomicBool::new(false);
/// How many times [`BumpAlwaysThenStall`] learned that it runs again.
static RAN_AGAIN: AtomicU64 = AtomicU64::new(0);

/// Increments every counter once each run; stalls after it succeeded (while
/// [`STALL_AFTER_RERUN`] is set), before the batch's checkpoint is deleted.
#[change_unit(
    id = "bump-always-then-stall",
    order = "001",
    author = "batches",
    transactional = false,
    run_always = true
)]
struct BumpAlwaysThenStall {
    db: Database,
}

impl BumpAlwaysThenStall {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        if context.runs_again() {
            RAN_AGAIN.fetch_add(1, Ordering::SeqCst);
        }
        bump_after_a_stall(&self.db, context, &STALL_AFTER_RERUN, &STALLED_AFTER_RERUN).await
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// The server [`BumpBesideAnotherRun`]'s other run connects to.
static OTHER_RUN_URI: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// Documents [`BumpBesideAnotherRun`] changed itself.
static CHANGED_BY_RUN: AtomicU64 = AtomicU64::new(u64::MAX);

/// Increments every counter once while, after its first batch, another run (a thread of the
/// test) commits the next four batches and moves the checkpoint past them.
#[change_unit(
    id = "bump-beside-another-run",
    order = "001",
    author = "batches",
    transactional = false
)]
struct BumpBesideAnotherRun {
    db: Database,
}

impl BumpBesideAnotherRun {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        let uri = OTHER_RUN_URI.get().expect("set by the test").clone();
        let db = self.db.name().to_owned();
        let report = bump_every_counter(&self.db)
            .checkpoint_name("beside")
            .on_progress(move |p: &Progress| {
                if p.done_now == BATCH as u64 {
                    as_another_process(&uri, &db, commit_four_batches_elsewhere);
                }
            })
            .run(context)
            .await?;
        CHANGED_BY_RUN.store(report.changed, Ordering::SeqCst);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

/// Increments every counter once, and fails at a counter whose `changes` is not a number;
/// its rollback marks every counter through a checkpointed batch of its own.
#[change_unit(
    id = "bump-or-fail",
    order = "001",
    author = "batches",
    transactional = false
)]
struct BumpOrFail {
    db: Database,
}

impl BumpOrFail {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        bump_every_counter(&self.db).run(context).await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, context: &RunContext) -> Result {
        BatchUpdate::new(
            &self.db.collection::<Document>("counters"),
            doc! {},
            doc! { "$set": { "rolledBack": true } },
        )
        .checkpointed()
        .batch_size(BATCH)
        .run(context)
        .await?;
        Ok(())
    }
}

/// What a second run would commit after the first batch: the next four batches, with the
/// checkpoint `beside` moved to their last `_id`.
async fn commit_four_batches_elsewhere(db: Database) {
    let (first, last) = (BATCH as i64, 5 * BATCH as i64 - 1);
    db.collection::<Document>("counters")
        .update_many(
            doc! { "_id": { "$gte": first, "$lte": last } },
            doc! { "$inc": { "changes": 1 } },
        )
        .await
        .unwrap();
    let moved = db
        .collection::<Document>(CHECKPOINT_COLLECTION)
        .update_one(
            doc! { "_id": "beside", "lastId": first - 1 },
            doc! { "$set": { "lastId": last }, "$inc": { "done": last - first + 1 } },
        )
        .await
        .unwrap();
    assert_eq!(
        moved.modified_count, 1,
        "the checkpoint was where the run left it"
    );
}

async fn seed(t: &TestDb, collection: &str) {
    let docs: Vec<Document> = (0..DOCUMENTS).map(|i| doc! { "_id": i, "n": i }).collect();
    t.collection(collection).insert_many(docs).await.unwrap();
}

/// Seeds `collection` with ids of five types, which the server compares by type first: 30
/// numbers (less than a batch), then strings, ObjectIds, dates and documents, in runs that
/// do not line up with the batches.
async fn seed_mixed_ids(t: &TestDb, collection: &str) {
    let docs: Vec<Document> = (0..DOCUMENTS)
        .map(|i| {
            let id = match i {
                ..30 => Bson::Int32(i32::try_from(i).unwrap()),
                30..730 => Bson::String(format!("person-{i:05}")),
                730..1210 => Bson::ObjectId(ObjectId::new()),
                1210..1700 => Bson::DateTime(DateTime::from_millis(i)),
                _ => Bson::Document(doc! { "n": i }),
            };
            doc! { "_id": id, "n": i }
        })
        .collect();
    t.collection(collection).insert_many(docs).await.unwrap();
}

/// Runs `unit`, killing the run once progress passes each of `kill_at` documents, then lets
/// it finish. Returns how many kills landed mid-work.
async fn run_with_kills(t: &TestDb, unit: &'static ChangeUnit, kill_at: &[u64]) -> usize {
    let mut killed = 0;
    for &threshold in kill_at {
        let seen = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&seen);
        let runner = Runner::new(&t.db)
            .units([unit])
            .lock_lease(Duration::from_secs(3))
            .on_progress(move |p: &Progress| s.store(p.done, Ordering::SeqCst));
        let run = tokio::spawn(runner.run());
        loop {
            if run.is_finished() || seen.load(Ordering::SeqCst) >= threshold {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if run.is_finished() {
            run.await.unwrap().unwrap();
            return killed;
        }
        run.abort();
        let _ = run.await;
        killed += 1;
        // The killed run's lock is this process's own: released without force.
        let unlocked = Runner::new(&t.db)
            .units([unit])
            .unlock(false)
            .await
            .unwrap();
        assert!(!unlocked.is_held(), "{unlocked}");
    }
    Runner::new(&t.db).units([unit]).run().await.unwrap();
    killed
}

/// Runs `unit` until it sets `stalled`, then stops the run there, as a process stopping
/// would, and releases the lock it left (this process's own, so without force).
/// Why `checkpoint` is left over, as `migrate status` says it.
async fn left_over(
    t: &TestDb,
    unit: &'static ChangeUnit,
    checkpoint: &StoredCheckpoint,
) -> Result<Option<LeftOver>> {
    let (status, history) = Runner::new(&t.db)
        .units([unit])
        .status_and_history()
        .await?;
    Ok(checkpoint.left_over(&history, &status))
}

async fn stop_once_stalled(t: &TestDb, unit: &'static ChangeUnit, stalled: &AtomicBool) {
    let run = tokio::spawn(
        Runner::new(&t.db)
            .units([unit])
            .lock_lease(Duration::from_secs(3))
            .run(),
    );
    while !stalled.load(Ordering::SeqCst) {
        assert!(!run.is_finished(), "the run ended before it stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    let unlocked = Runner::new(&t.db)
        .units([unit])
        .unlock(false)
        .await
        .unwrap();
    assert!(!unlocked.is_held(), "{unlocked}");
}

async fn assert_each_changed_once(t: &TestDb, collection: &str) {
    let all = t
        .collection(collection)
        .count_documents(doc! {})
        .await
        .unwrap();
    let once = t
        .collection(collection)
        .count_documents(doc! { "changes": 1 })
        .await
        .unwrap();
    assert_eq!(all, DOCUMENTS as u64);
    if once != all {
        let mut counts = std::collections::BTreeMap::new();
        for d in t.documents(collection).await {
            *counts
                .entry(d.get("changes").map(|c| c.to_string()))
                .or_insert(0) += 1;
        }
        let history: Vec<String> = t
            .history()
            .await
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e.get_str("changeId").unwrap_or("?"),
                    e.get_str("state").unwrap_or("?")
                )
            })
            .collect();
        panic!(
            "every document changed exactly once: {counts:?} documents by `changes`; \
             history {history:?}; checkpoints {:?}",
            t.documents(CHECKPOINT_COLLECTION).await
        );
    }
}

async fn executed_rows(t: &TestDb, id: &str) -> usize {
    t.history()
        .await
        .iter()
        .filter(|d| d.get_str("changeId") == Ok(id) && d.get_str("state") == Ok("EXECUTED"))
        .count()
}

/// Kill points: one early, so that at least one kill lands mid-work, and two at random.
fn kill_points(name: &str) -> Vec<u64> {
    use std::hash::{BuildHasher, RandomState};
    let seed = RandomState::new().hash_one(name);
    let (a, b) = (seed % DOCUMENTS as u64, (seed >> 32) % DOCUMENTS as u64);
    let mut points = vec![150, a.max(1), b.max(1)];
    points.sort_unstable();
    eprintln!("{name}: killing at {points:?} documents done");
    points
}

/// What the documents' `_id`s are.
#[derive(Clone, Copy)]
enum Ids {
    Numbers,
    /// Of five types ([`seed_mixed_ids`]).
    Mixed,
}

async fn seed_ids(t: &TestDb, collection: &str, ids: Ids) {
    match ids {
        Ids::Numbers => seed(t, collection).await,
        Ids::Mixed => seed_mixed_ids(t, collection).await,
    }
}

async fn a_filter_batch_survives_kills(mode: Mode, name: &str, ids: Ids) -> Result {
    let t = test_db(mode, name).await;
    seed_ids(&t, "people", ids).await;
    let killed = run_with_kills(&t, BackfillPeople::change_unit(), &kill_points(name)).await;
    eprintln!("{name}: {killed} kills landed mid-work");
    assert!(killed >= 1, "at least one kill interrupted the work");
    assert_each_changed_once(&t, "people").await;
    assert_eq!(executed_rows(&t, "backfill-people").await, 1);
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_batch_survives_kills_in_a_replica_set() -> Result {
    a_filter_batch_survives_kills(Mode::ReplicaSet, "batch_filter_rs", Ids::Numbers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_batch_survives_kills_on_a_standalone_server() -> Result {
    a_filter_batch_survives_kills(Mode::Standalone, "batch_filter_sa", Ids::Numbers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_batch_changes_ids_of_every_type_in_a_replica_set() -> Result {
    a_filter_batch_survives_kills(Mode::ReplicaSet, "batch_mixed_rs", Ids::Mixed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_batch_changes_ids_of_every_type_on_a_standalone_server() -> Result {
    a_filter_batch_survives_kills(Mode::Standalone, "batch_mixed_sa", Ids::Mixed).await
}

async fn a_checkpointed_batch_survives_kills(name: &str, ids: Ids) -> Result {
    let Some(t) = transactional_db(name).await else {
        return Ok(());
    };
    seed_ids(&t, "counters", ids).await;
    let killed = run_with_kills(&t, BumpCounters::change_unit(), &kill_points(name)).await;
    assert!(killed >= 1, "at least one kill interrupted the work");
    assert_each_changed_once(&t, "counters").await;
    assert!(
        t.documents(CHECKPOINT_COLLECTION).await.is_empty(),
        "the checkpoint is removed once the unit is recorded"
    );
    assert_eq!(executed_rows(&t, "bump-counters").await, 1);
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_batch_resumes_and_removes_its_checkpoint() -> Result {
    a_checkpointed_batch_survives_kills("batch_checkpoint", Ids::Numbers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_batch_changes_ids_of_every_type() -> Result {
    a_checkpointed_batch_survives_kills("batch_mixed_checkpoint", Ids::Mixed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpointed_progress_counts_the_documents_walked() -> Result {
    let Some(t) = transactional_db("batch_progress_walked").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    t.collection("counters")
        .update_many(
            doc! { "_id": { "$mod": [2, 0] } },
            doc! { "$set": { "flag": true } },
        )
        .await?;
    Runner::new(&t.db)
        .units([FlagCounters::change_unit()])
        .run()
        .await?;
    let (done, total, changed) = FLAG_PROGRESS.lock().unwrap().expect("the unit ran");
    assert_eq!(
        (done, total),
        (DOCUMENTS as u64, Some(DOCUMENTS as u64)),
        "progress reaches its total, although half the documents needed no change"
    );
    assert_eq!(
        changed,
        DOCUMENTS as u64 / 2,
        "the report counts the changes"
    );
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_after_its_batches_but_before_its_record_changes_nothing_again() -> Result {
    let Some(t) = transactional_db("batch_stop_before_record").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    let unit = BumpThenStall::change_unit();
    stop_once_stalled(&t, unit, &STALLED).await;
    let checkpoints = t.documents(CHECKPOINT_COLLECTION).await;
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    assert_eq!(
        checkpoints[0].get_bool("complete"),
        Ok(true),
        "the checkpoint outlives the stop, marked complete: {checkpoints:?}"
    );
    assert_eq!(executed_rows(&t, "bump-then-stall").await, 0);

    STALL.store(false, Ordering::SeqCst);
    let report = Runner::new(&t.db).units([unit]).run().await?;
    assert_eq!(report.executed().len(), 1);
    assert_each_changed_once(&t, "counters").await;
    assert!(
        t.documents(CHECKPOINT_COLLECTION).await.is_empty(),
        "the checkpoint goes once the unit is recorded"
    );
    assert_eq!(executed_rows(&t, "bump-then-stall").await, 1);
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_left_after_the_record_does_not_stop_the_unit_applied_again() -> Result {
    let Some(t) = transactional_db("batch_left_after_record").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    let unit = BumpRecordedThenStall::change_unit();
    stop_once_stalled(&t, unit, &STALLED_AFTER_RECORD).await;
    assert_eq!(executed_rows(&t, "bump-recorded-then-stall").await, 1);
    let checkpoints = t.documents(CHECKPOINT_COLLECTION).await;
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    assert_eq!(checkpoints[0].get_bool("complete"), Ok(true));
    let stored = stored_checkpoints(&t.db).await?;
    assert_eq!(
        stored[0].change_id.as_deref(),
        Some("bump-recorded-then-stall")
    );
    assert_eq!(stored[0].step, Some(Step::Execution));
    assert_eq!(
        left_over(&t, unit, &stored[0]).await?,
        Some(LeftOver::Recorded),
        "its run recorded the unit"
    );

    STALL_AFTER_RECORD.store(false, Ordering::SeqCst);
    Runner::new(&t.db).units([unit]).undo_all().await?;
    let report = Runner::new(&t.db).units([unit]).run().await?;
    assert_eq!(report.executed(), ["bump-recorded-then-stall"]);
    // Undone, then applied again: a counter the second application skipped would be at 0.
    assert_each_changed_once(&t, "counters").await;
    assert!(
        t.documents(CHECKPOINT_COLLECTION).await.is_empty(),
        "the checkpoint left behind is gone, and so is the new one"
    );
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_always_unit_running_again_does_its_work_again() -> Result {
    let Some(t) = transactional_db("batch_run_always").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    let unit = BumpAlwaysThenStall::change_unit();
    Runner::new(&t.db).units([unit]).run().await?;
    assert_eq!(
        RAN_AGAIN.load(Ordering::SeqCst),
        0,
        "the first run is not a rerun"
    );

    // The rerun succeeds and stops before its cleanup: its complete checkpoint stays.
    STALL_AFTER_RERUN.store(true, Ordering::SeqCst);
    stop_once_stalled(&t, unit, &STALLED_AFTER_RERUN).await;
    let checkpoints = stored_checkpoints(&t.db).await?;
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    assert!(checkpoints[0].complete);
    assert_eq!(
        left_over(&t, unit, &checkpoints[0]).await?,
        Some(LeftOver::RunsAgain),
        "nothing records the rerun, and the next one starts over"
    );

    STALL_AFTER_RERUN.store(false, Ordering::SeqCst);
    let report = Runner::new(&t.db).units([unit]).run().await?;
    assert_eq!(
        report.unit("bump-always-then-stall").map(|u| &u.outcome),
        Some(&Outcome::ExecutedAgain)
    );
    assert_eq!(RAN_AGAIN.load(Ordering::SeqCst), 2);
    let thrice = t
        .collection("counters")
        .count_documents(doc! { "changes": 3 })
        .await?;
    assert_eq!(
        thrice, DOCUMENTS as u64,
        "each of the three runs changed every counter"
    );
    assert!(t.documents(CHECKPOINT_COLLECTION).await.is_empty());
    assert_eq!(executed_rows(&t, "bump-always-then-stall").await, 1);
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_always_unit_running_again_resumes_the_work_a_stopped_rerun_left() -> Result {
    let Some(t) = transactional_db("batch_run_always_resumes").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    let unit = BumpAlways::change_unit();
    Runner::new(&t.db).units([unit]).run().await?;

    // A transaction left open on counter 1,000 holds the rerun at its eleventh batch, where
    // the process stops: nothing records the rerun.
    let counters = t.collection("counters");
    let mut left_open = t.client.start_session().await?;
    left_open.start_transaction().await?;
    counters
        .update_one(doc! { "_id": 1_000 }, doc! { "$set": { "held": true } })
        .session(&mut left_open)
        .await?;
    let rerun = tokio::spawn(Runner::new(&t.db).units([unit]).run());
    loop {
        assert!(!rerun.is_finished(), "the rerun ended before it was held");
        let stored = stored_checkpoints(&t.db).await?;
        if stored.first().and_then(|c| c.last_id.as_ref()) == Some(&Bson::Int64(999)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rerun.abort();
    let _ = rerun.await;
    left_open.abort_transaction().await?;
    Runner::new(&t.db).units([unit]).unlock(false).await?;
    let stored = stored_checkpoints(&t.db).await?;
    assert_eq!(
        left_over(&t, unit, &stored[0]).await?,
        None,
        "the next rerun resumes from it"
    );

    Runner::new(&t.db).units([unit]).run().await?;
    let twice = counters.count_documents(doc! { "changes": 2 }).await?;
    assert_eq!(
        twice, DOCUMENTS as u64,
        "the stopped rerun's ten batches are not done again"
    );
    assert!(t.documents(CHECKPOINT_COLLECTION).await.is_empty());
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_on_from_a_checkpoint_another_run_moved() -> Result {
    let Some(t) = transactional_db("batch_moved_checkpoint").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    OTHER_RUN_URI.get_or_init(|| t.uri.clone());
    Runner::new(&t.db)
        .units([BumpBesideAnotherRun::change_unit()])
        .run()
        .await?;
    assert_each_changed_once(&t, "counters").await;
    assert_eq!(
        CHANGED_BY_RUN.load(Ordering::SeqCst),
        DOCUMENTS as u64 - 4 * BATCH as u64,
        "the run skipped the batches the other run committed"
    );
    assert!(t.documents(CHECKPOINT_COLLECTION).await.is_empty());
    assert_eq!(executed_rows(&t, "bump-beside-another-run").await, 1);
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waits_out_a_transaction_a_stopped_run_left_open() -> Result {
    let Some(t) = transactional_db("batch_open_transaction").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    // A transaction that writes the first counter and stays open, as one of a process that
    // stopped mid-batch does until the server reaps it.
    let mut left_open = t.client.start_session().await?;
    left_open.start_transaction().await?;
    t.collection("counters")
        .update_one(doc! { "_id": 0 }, doc! { "$set": { "held": true } })
        .session(&mut left_open)
        .await?;

    let error = Runner::new(&t.db)
        .units([BumpCounters::change_unit()])
        .retry_deadline(Duration::from_millis(300))
        .run()
        .await
        .unwrap_err();
    let chain = format!("{:#}", anyhow::Error::from(error));
    assert!(
        chain.contains("changing a batch and its checkpoint") && chain.contains("WriteConflict"),
        "past the run's retry deadline the conflict fails the unit: {chain}"
    );

    let reaped = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        left_open.abort_transaction().await
    });
    Runner::new(&t.db)
        .units([BumpCounters::change_unit()])
        .run()
        .await?;
    reaped.await??;
    assert_each_changed_once(&t, "counters").await;
    assert_eq!(executed_rows(&t, "bump-counters").await, 1);
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_keeps_a_checkpoint_of_its_own() -> Result {
    let Some(t) = transactional_db("batch_rollback_checkpoint").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    // `$inc` fails on this counter: the execution stops after five batches.
    t.collection("counters")
        .update_one(doc! { "_id": 550 }, doc! { "$set": { "changes": "many" } })
        .await?;
    let unit = BumpOrFail::change_unit();
    let error = Runner::new(&t.db).units([unit]).run().await.unwrap_err();
    assert!(
        matches!(&error, Error::Execution(e) if e.unit_id == "bump-or-fail" && e.rolled_back),
        "{error:?}"
    );
    assert_eq!(
        t.collection("counters")
            .count_documents(doc! { "rolledBack": true })
            .await?,
        DOCUMENTS as u64,
        "the rollback walked every counter, not on from where the execution stopped"
    );
    let checkpoints = t.documents(CHECKPOINT_COLLECTION).await;
    let execution = format!("bump-or-fail:{}.counters", t.db.name());
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    assert_eq!(checkpoints[0].get_str("_id"), Ok(execution.as_str()));
    assert_eq!(
        checkpoints[0].get_i64("lastId"),
        Ok(5 * BATCH as i64 - 1),
        "the execution's checkpoint stays where it stopped, for the rerun: {checkpoints:?}"
    );
    assert_ne!(checkpoints[0].get_bool("complete"), Ok(true));
    let stored = stored_checkpoints(&t.db).await?;
    assert_eq!(stored[0].change_id.as_deref(), Some("bump-or-fail"));
    assert_eq!(stored[0].step, Some(Step::Execution));
    assert_eq!(
        left_over(&t, unit, &stored[0]).await?,
        None,
        "its run recorded the execution rolled back, not done"
    );

    t.collection("counters")
        .update_one(doc! { "_id": 550 }, doc! { "$unset": { "changes": "" } })
        .await?;
    Runner::new(&t.db).units([unit]).run().await?;
    assert_each_changed_once(&t, "counters").await;
    assert!(t.documents(CHECKPOINT_COLLECTION).await.is_empty());
    assert_eq!(executed_rows(&t, "bump-or-fail").await, 1);
    t.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_checkpointed_batch_needs_transactions() -> Result {
    let t = test_db(Mode::Standalone, "batch_checkpoint_sa").await;
    if t.transactions {
        t.finish().await;
        return Ok(());
    }
    seed(&t, "counters").await;
    let error = Runner::new(&t.db)
        .units([BumpCounters::change_unit()])
        .run()
        .await
        .unwrap_err();
    let chain = format!("{:#}", anyhow::Error::from(error));
    assert!(
        chain.contains("commit each batch with its checkpoint in a transaction"),
        "{chain}"
    );
    assert!(
        chain.contains(
            "; run the server as a (single-node) replica set, or use a filter that the change \
             makes false instead"
        ) && !chain.contains("`transactional`"),
        "the advice is for checkpoints, not for the runner's option: {chain}"
    );
    assert_eq!(
        t.collection("counters")
            .count_documents(doc! { "changes": 1 })
            .await?,
        0,
        "nothing changed"
    );
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_when_the_lock_was_taken_over() -> Result {
    let t = test_db(Mode::ReplicaSet, "batch_lock").await;
    seed(&t, "people").await;
    let (uri, db) = (t.uri.clone(), t.db.name().to_owned());
    let stolen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&stolen);
    let error = Runner::new(&t.db)
        .units([BackfillPeople::change_unit()])
        .lock_lease(Duration::from_secs(3))
        .on_progress(move |_: &Progress| {
            if s.swap(1, Ordering::SeqCst) == 0 {
                // Another runner takes the lock over while this one is paused past its lease.
                as_another_process(&uri, &db, |db| async move {
                    support::take_lock_over(&db).await.unwrap();
                });
                std::thread::sleep(Duration::from_millis(2_500));
            }
        })
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::LockLost { unit_id: Some(id), .. } if id == "backfill-people"),
        "{error:?}"
    );
    let done = t
        .collection("people")
        .count_documents(doc! { "done": true })
        .await?;
    assert!(done < DOCUMENTS as u64, "the work stopped: {done} done");
    assert_eq!(executed_rows(&t, "backfill-people").await, 0);
    t.finish().await;
    Ok(())
}

/// Runs `work` on database `db` through a client of its own, on a thread of its own, and
/// waits for it: another process acting while a progress callback holds the run still.
fn as_another_process<F, Fut>(uri: &str, db: &str, work: F)
where
    F: FnOnce(Database) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (uri, db) = (uri.to_owned(), db.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
            work(client.database(&db)).await;
        });
    })
    .join()
    .unwrap();
}

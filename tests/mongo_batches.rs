//! Resumable batch updates against a real server: a run killed at random points and started
//! again finishes the work with every document changed exactly once; the checkpoint goes
//! when the work is done; the lock is checked between batches.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use migrate::batch::{BatchUpdate, CHECKPOINT_COLLECTION};
use migrate::{
    change_unit, execution, rollback_execution, ChangeUnit, DescribeUnit, Error, Progress,
    RunContext, Runner,
};
use mongodb::bson::{doc, Document};
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

/// Increments every counter once: no filter becomes false, so it walks a checkpoint.
#[change_unit(
    id = "bump-counters",
    order = "002",
    author = "batches",
    transactional = false
)]
struct BumpCounters {
    db: Database,
}

impl BumpCounters {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result {
        BatchUpdate::new(
            &self.db.collection::<Document>("counters"),
            doc! {},
            doc! { "$inc": { "changes": 1 } },
        )
        .checkpointed()
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

async fn seed(t: &TestDb, collection: &str) {
    let docs: Vec<Document> = (0..DOCUMENTS).map(|i| doc! { "_id": i, "n": i }).collect();
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
    assert_eq!(once, all, "every document changed exactly once");
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

async fn a_filter_batch_survives_kills(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    seed(&t, "people").await;
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
    a_filter_batch_survives_kills(Mode::ReplicaSet, "batch_filter_rs").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_batch_survives_kills_on_a_standalone_server() -> Result {
    a_filter_batch_survives_kills(Mode::Standalone, "batch_filter_sa").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_batch_resumes_and_removes_its_checkpoint() -> Result {
    let Some(t) = transactional_db("batch_checkpoint").await else {
        return Ok(());
    };
    seed(&t, "counters").await;
    let killed = run_with_kills(
        &t,
        BumpCounters::change_unit(),
        &kill_points("batch_checkpoint"),
    )
    .await;
    assert!(killed >= 1, "at least one kill interrupted the work");
    assert_each_changed_once(&t, "counters").await;
    assert!(
        t.documents(CHECKPOINT_COLLECTION).await.is_empty(),
        "the checkpoint is removed when the work is done"
    );
    assert_eq!(executed_rows(&t, "bump-counters").await, 1);
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
                let (uri, db) = (uri.clone(), db.clone());
                std::thread::spawn(move || steal_lock(&uri, &db))
                    .join()
                    .unwrap();
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

fn steal_lock(uri: &str, db: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = mongodb::Client::with_uri_str(uri).await.unwrap();
        support::take_lock_over(&client.database(db)).await.unwrap();
    });
}

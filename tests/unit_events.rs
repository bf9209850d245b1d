//! `Runner::on_unit`: the per-unit events of a run and an undo, over the in-memory store.

use std::sync::{Arc, Mutex};

use migrate::{change_unit, execution, rollback_execution, BoxError, Event, Outcome};
use migrate::{ChangeUnit, DescribeUnit, TransactionStrategy};
use migrate_core::memory::{MemorySession, MemoryStore};
use migrate_core::Runner;

type Result<T = (), E = BoxError> = std::result::Result<T, E>;

#[change_unit(id = "one", order = "1", author = "events")]
struct One;

impl One {
    #[execution]
    async fn execute(&self, session: &mut MemorySession) -> Result {
        session.insert("one", "done");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut MemorySession) -> Result {
        session.remove("one");
        Ok(())
    }
}

#[change_unit(id = "two", order = "2", author = "events")]
struct Two;

impl Two {
    #[execution]
    async fn execute(&self, session: &mut MemorySession) -> Result {
        session.insert("two", "done");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut MemorySession) -> Result {
        session.remove("two");
        Ok(())
    }
}

#[change_unit(id = "broken", order = "3", author = "events")]
struct Broken;

impl Broken {
    #[execution]
    async fn execute(&self) -> Result {
        Err("broken on purpose".into())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        Ok(())
    }
}

fn units(extra: Option<&'static ChangeUnit>) -> Vec<&'static ChangeUnit> {
    let mut units = vec![One::change_unit(), Two::change_unit()];
    units.extend(extra);
    units
}

/// A runner over `store` whose unit events are written, one line each, into the returned log.
fn recording(store: &MemoryStore) -> (Runner<MemoryStore>, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let runner = Runner::new(store.clone()).on_unit(move |event| {
        let line = match event {
            Event::UnitStarted { id, author, order } => format!("start {order} {id} {author}"),
            Event::UnitFinished(report) => {
                let outcome = match &report.outcome {
                    Outcome::Failed { rolled_back, .. } => format!("failed {rolled_back}"),
                    other => format!("{other:?}"),
                };
                let timed = if report.elapsed.is_some() {
                    "timed"
                } else {
                    "-"
                };
                format!("finish {} {outcome} {timed}", report.id)
            }
            other => format!("unexpected {other:?}"),
        };
        sink.lock().unwrap().push(line);
    });
    (runner, log)
}

fn lines(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn a_run_reports_each_unit_as_it_starts_and_finishes() {
    let store = MemoryStore::new();
    let (runner, log) = recording(&store);
    runner.units(units(None)).run().await.unwrap();
    assert_eq!(
        lines(&log),
        [
            "start 1 one events",
            "finish one Executed timed",
            "start 2 two events",
            "finish two Executed timed",
        ]
    );
}

#[tokio::test]
async fn a_failing_unit_finishes_as_failed_before_the_run_returns_its_error() {
    let store = MemoryStore::without_transactions();
    let (runner, log) = recording(&store);
    let error = runner
        .units(units(Some(Broken::change_unit())))
        .run()
        .await
        .unwrap_err();
    assert_eq!(error.as_execution().unwrap().unit_id, "broken");
    assert_eq!(
        lines(&log)[4..],
        ["start 3 broken events", "finish broken failed true timed"]
    );
}

#[tokio::test]
async fn units_of_one_transaction_finish_together_when_it_commits() {
    let store = MemoryStore::new();
    let (runner, log) = recording(&store);
    runner
        .transaction_strategy(TransactionStrategy::PerRun)
        .units(units(None))
        .run()
        .await
        .unwrap();
    assert_eq!(
        lines(&log),
        [
            "start 1 one events",
            "start 2 two events",
            "finish one Executed timed",
            "finish two Executed timed",
        ]
    );
}

/// A store where `one` and `two` are applied.
async fn applied() -> MemoryStore {
    let store = MemoryStore::new();
    Runner::new(store.clone())
        .units(units(None))
        .run()
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn an_undo_reports_each_unit_newest_first() {
    let store = applied().await;
    let (runner, log) = recording(&store);
    runner.units(units(None)).undo_all().await.unwrap();
    assert_eq!(
        lines(&log),
        [
            "start 2 two events",
            "finish two RolledBack timed",
            "start 1 one events",
            "finish one RolledBack timed",
        ]
    );
}

#[tokio::test]
async fn nothing_pending_reports_no_unit() {
    let store = applied().await;
    let (runner, log) = recording(&store);
    runner.units(units(None)).run().await.unwrap();
    assert!(lines(&log).is_empty(), "{:?}", lines(&log));
}

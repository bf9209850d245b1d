//! One migration over many databases against a real server: the concurrency bound, a failing
//! database isolated, glob selection, and overlapping calls.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use migrate::{
    change_unit, execution, rollback_execution, ChangeUnit, Dep, DescribeUnit, Runner,
    TenantResult, Tenants,
};
use mongodb::bson::{doc, Document};
use mongodb::{Client, Database};
use support::{test_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

/// Counts the units running at once, and the most seen.
#[derive(Default, Clone)]
struct Gauge(Arc<(AtomicUsize, AtomicUsize)>);

impl Gauge {
    fn enter(&self) {
        let now = self.0 .0.fetch_add(1, Ordering::SeqCst) + 1;
        self.0 .1.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
    }

    fn most(&self) -> usize {
        self.0 .1.load(Ordering::SeqCst)
    }
}

/// Records itself in its database; fails in databases whose name ends with `_bad`.
#[change_unit(
    id = "tenant-setup",
    order = "001",
    author = "tenants",
    transactional = false
)]
struct TenantSetup {
    db: Database,
    gauge: Dep<Gauge>,
}

impl TenantSetup {
    #[execution]
    async fn execute(&self) -> Result {
        self.gauge.enter();
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.gauge.leave();
        anyhow::ensure!(
            !self.db.name().ends_with("_bad"),
            "this customer's data is not ready"
        );
        self.db
            .collection::<Document>("setup")
            .insert_one(doc! { "done": true })
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        self.db
            .collection::<Document>("setup")
            .delete_many(doc! {})
            .await?;
        Ok(())
    }
}

fn setup() -> &'static ChangeUnit {
    TenantSetup::change_unit()
}

/// `count` databases named after `t`'s, with `suffixes` appended where given.
fn databases(t: &TestDb, names: &[&str]) -> Vec<Database> {
    names
        .iter()
        .map(|n| t.client.database(&format!("{}_{n}", t.db.name())))
        .collect()
}

async fn drop_all(dbs: &[Database]) {
    for db in dbs {
        db.drop().await.unwrap();
    }
}

async fn setup_rows(db: &Database) -> u64 {
    db.collection::<Document>("setup")
        .count_documents(doc! {})
        .await
        .unwrap()
}

async fn executed_rows(db: &Database) -> u64 {
    db.collection::<Document>("mongockChangeLog")
        .count_documents(doc! { "changeId": "tenant-setup", "state": "EXECUTED" })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_the_concurrency_bound_runs_at_once() -> Result {
    let t = test_db(Mode::ReplicaSet, "tenants_bound").await;
    let dbs = databases(&t, &["t1", "t2", "t3", "t4", "t5", "t6"]);
    let gauge = Gauge::default();
    let g = gauge.clone();
    let reports = Tenants::new(dbs.clone())
        .concurrency(2)
        .run(move |db| Runner::new(db).units([setup()]).dependency(g.clone()))
        .await?;
    assert_eq!(reports.len(), 6);
    assert_eq!(gauge.most(), 2, "two at once, never more");
    for (name, report) in &reports {
        assert_eq!(report.executed(), ["tenant-setup"], "{name}");
    }
    let names: Vec<&str> = reports.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<String> = dbs.iter().map(|d| d.name().to_owned()).collect();
    assert_eq!(names, expected, "reports in the order given");
    drop_all(&dbs).await;
    t.finish().await;
    Ok(())
}

async fn a_failing_database_is_isolated(mode: Mode, name: &str) -> Result {
    let t = test_db(mode, name).await;
    let dbs = databases(&t, &["a", "b_bad", "c"]);
    let gauge = Gauge::default();
    let g = gauge.clone();
    let error = Tenants::new(dbs.clone())
        .concurrency(2)
        .run(move |db| Runner::new(db).units([setup()]).dependency(g.clone()))
        .await
        .unwrap_err();
    let failed: Vec<&str> = error.failures().map(|(db, _)| db).collect();
    assert_eq!(failed, [dbs[1].name()]);
    assert_eq!(
        error.to_string(),
        format!(
            "the migration failed in 1 of 3 databases, `{}`",
            dbs[1].name()
        ),
        "the first failure is the source, not also in the message"
    );
    let (_, cause) = error.failures().next().unwrap();
    let failure = cause.as_execution().expect("the unit failed");
    assert!(failure.source.to_string().contains("not ready"));
    assert!(
        std::error::Error::source(&error).is_some(),
        "the first failure is the source"
    );
    assert_eq!(setup_rows(&dbs[0]).await, 1, "the others ran");
    assert_eq!(setup_rows(&dbs[2]).await, 1);
    assert_eq!(setup_rows(&dbs[1]).await, 0);

    // Fail-fast, one at a time: what comes after the failure does not start.
    let more = databases(&t, &["d", "e_bad", "f"]);
    let g = gauge.clone();
    let error = Tenants::new(more.clone())
        .concurrency(1)
        .fail_fast(true)
        .run(move |db| Runner::new(db).units([setup()]).dependency(g.clone()))
        .await
        .unwrap_err();
    let results: Vec<&str> = error
        .outcomes
        .iter()
        .map(|o| match o.result {
            TenantResult::Done(_) => "done",
            TenantResult::Failed(_) => "failed",
            TenantResult::NotRun => "not run",
        })
        .collect();
    assert_eq!(results, ["done", "failed", "not run"]);
    assert_eq!(setup_rows(&more[2]).await, 0);
    assert!(error.to_string().contains("1 did not start"), "{error}");
    drop_all(&dbs).await;
    drop_all(&more).await;
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_is_isolated_in_a_replica_set() -> Result {
    a_failing_database_is_isolated(Mode::ReplicaSet, "tenants_fail_rs").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_is_isolated_on_a_standalone_server() -> Result {
    a_failing_database_is_isolated(Mode::Standalone, "tenants_fail_sa").await
}

#[tokio::test]
async fn a_glob_selects_databases_by_name() -> Result {
    let t = test_db(Mode::ReplicaSet, "tenants_glob").await;
    let dbs = databases(&t, &["x1", "x2", "y1"]);
    for db in &dbs {
        db.collection::<Document>("seed")
            .insert_one(doc! {})
            .await?;
    }
    let client: &Client = &t.client;
    let pattern = format!("{}_x*", t.db.name());
    let tenants = Tenants::matching(client, &pattern).await?;
    assert_eq!(tenants.names(), [dbs[0].name(), dbs[1].name()]);
    let one = Tenants::matching(client, &format!("{}_?1", t.db.name())).await?;
    assert_eq!(one.names(), [dbs[0].name(), dbs[2].name()]);
    assert!(
        !Tenants::matching(client, "*")
            .await?
            .names()
            .contains(&"admin".to_owned()),
        "the server's own databases match only by name"
    );
    assert_eq!(
        Tenants::matching(client, dbs[2].name()).await?.names(),
        [dbs[2].name()],
        "a name without wildcards matches itself"
    );
    drop_all(&dbs).await;
    t.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_calls_migrate_each_database_once() -> Result {
    let t = test_db(Mode::ReplicaSet, "tenants_overlap").await;
    let dbs = databases(&t, &["p", "q", "r"]);
    let gauge = Gauge::default();
    let call = |dbs: Vec<Database>, gauge: Gauge| async move {
        Tenants::new(dbs)
            .concurrency(3)
            .run(move |db| Runner::new(db).units([setup()]).dependency(gauge.clone()))
            .await
    };
    let (first, second) = tokio::join!(
        call(dbs.clone(), gauge.clone()),
        call(dbs.iter().rev().cloned().collect(), gauge.clone())
    );
    let (first, second) = (first?, second?);
    for db in &dbs {
        assert_eq!(setup_rows(db).await, 1, "{} applied once", db.name());
        assert_eq!(executed_rows(db).await, 1, "{} recorded once", db.name());
    }
    let applied = first
        .iter()
        .chain(&second)
        .filter(|(_, report)| !report.executed().is_empty())
        .count();
    assert_eq!(
        applied, 3,
        "each database applied by exactly one of the calls"
    );
    drop_all(&dbs).await;
    t.finish().await;
    Ok(())
}

//! Importing a mongobee history (`dbchangelog`) against a real server, in both modes: once,
//! without duplicates, without touching the source, and making the imported changes count as
//! applied.

mod support;

use migrate::{
    change_log, change_set, Dep, DescribeChangeLog, LegacyCountMismatch, LegacyMigration, Outcome,
    Runner, SkipReason, TransactionStrategy, LEGACY_MIGRATION_AUTHOR, LEGACY_MIGRATION_ID,
};
use mongodb::bson::{doc, Bson, DateTime, Document};
use support::recorder::Recorder;
use support::{assert_mongock_shape, test_db, Mode, TestDb};

type Result<T = ()> = anyhow::Result<T>;

/// The Rust port of a Java service's change log: `create-indexes` already ran under mongobee.
#[change_log(order = "001")]
struct ClientChangelog {
    probe: Dep<Recorder>,
}

#[change_log]
impl ClientChangelog {
    #[change_set(id = "create-indexes", author = "java-team", order = "001")]
    async fn create_indexes(&self) -> Result {
        self.probe.push("create-indexes");
        Ok(())
    }

    #[change_set(id = "backfill-status", author = "java-team", order = "002")]
    async fn backfill_status(&self) -> Result {
        self.probe.push("backfill-status");
        Ok(())
    }
}

fn runner(t: &TestDb, probe: &Recorder) -> Runner {
    Runner::new(&t.db)
        .dependency(probe.clone())
        .units(ClientChangelog::change_sets())
}

/// Three rows as mongobee writes them: no `state`, no `executionId`, no `type`.
fn mongobee_rows() -> Vec<Document> {
    let row = |id: i32, change_id: &str, method: &str, millis: i64| {
        doc! {
            "_id": id,
            "changeId": change_id,
            "author": "java-team",
            "timestamp": DateTime::from_millis(millis),
            "changeLogClass": "com.example.clients.ClientChangelog",
            "changeSetMethod": method,
        }
    };
    vec![
        row(1, "init-clients", "initClients", 1_400_000_000_000),
        row(2, "create-indexes", "createIndexes", 1_500_000_000_000),
        row(3, "seed-plans", "seedPlans", 1_600_000_000_000),
    ]
}

async fn with_mongobee_history(mode: Mode, name: &str) -> TestDb {
    let t = test_db(mode, name).await;
    t.collection("dbchangelog")
        .insert_many(mongobee_rows())
        .await
        .unwrap();
    t
}

fn rows_of<'a>(history: &'a [Document], change_id: &str) -> Vec<&'a Document> {
    history
        .iter()
        .filter(|d| d.get_str("changeId") == Ok(change_id))
        .collect()
}

// ---------------------------------------------------------------- the import

async fn imports_a_mongobee_history_once(mode: Mode, name: &str) {
    let t = with_mongobee_history(mode, name).await;
    // Already imported by hand, in Mongock's format: must not be duplicated.
    t.collection("mongockChangeLog")
        .insert_one(doc! {
            "executionId": "by-hand",
            "changeId": "init-clients",
            "author": "java-team",
            "timestamp": DateTime::from_millis(1_400_000_000_000),
            "state": "EXECUTED",
            "type": "EXECUTION",
        })
        .await
        .unwrap();
    let probe = Recorder::default();

    let first = runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("dbchangelog"))
        .run()
        .await
        .unwrap();

    assert_eq!(first.executed(), [LEGACY_MIGRATION_ID, "backfill-status"]);
    assert!(matches!(
        first.unit("create-indexes").unwrap().outcome,
        Outcome::Skipped(SkipReason::AlreadyExecuted)
    ));
    assert_eq!(
        probe.lines(),
        ["backfill-status"],
        "the imported change set did not run again"
    );
    assert_eq!(
        t.documents("dbchangelog").await,
        mongobee_rows(),
        "the source is left as it was"
    );
    let history = t.history().await;
    assert_eq!(rows_of(&history, "init-clients").len(), 1, "{history:?}");
    for (change_id, method, millis) in [
        ("create-indexes", "createIndexes", 1_500_000_000_000),
        ("seed-plans", "seedPlans", 1_600_000_000_000),
    ] {
        let imported = rows_of(&history, change_id);
        assert_eq!(imported.len(), 1, "{history:?}");
        let row = imported[0];
        assert!(row
            .get_str("executionId")
            .unwrap()
            .starts_with("legacy_migration-"));
        assert_eq!(row.get_str("author").unwrap(), "java-team");
        assert_eq!(
            row.get_datetime("timestamp").unwrap(),
            &DateTime::from_millis(millis)
        );
        assert_eq!(row.get_str("state").unwrap(), "EXECUTED");
        assert_eq!(row.get_str("type").unwrap(), "EXECUTION");
        assert_eq!(
            row.get_str("changeLogClass").unwrap(),
            "com.example.clients.ClientChangelog"
        );
        assert_eq!(row.get_str("changeSetMethod").unwrap(), method);
        assert_eq!(row.get_i64("executionMillis").unwrap(), -1);
        assert_eq!(
            row.get_document("metadata").unwrap(),
            &doc! { "migration-type": "legacy" }
        );
        assert!(!row.get_bool("systemChange").unwrap());
    }
    let system = rows_of(&history, LEGACY_MIGRATION_ID);
    assert_eq!(system.len(), 1);
    assert_mongock_shape(system[0]);
    assert_eq!(
        system[0].get_str("author").unwrap(),
        LEGACY_MIGRATION_AUTHOR
    );
    assert_eq!(system[0].get_str("state").unwrap(), "EXECUTED");
    assert!(system[0].get_bool("systemChange").unwrap());
    assert_eq!(history.len(), 5, "{history:?}");

    t.commands.clear();
    let second = runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("dbchangelog"))
        .run()
        .await
        .unwrap();

    assert!(second.executed().is_empty(), "{second}");
    assert_eq!(
        t.commands.names(),
        ["find"],
        "an import already done costs nothing: one history read"
    );
    assert_eq!(t.history().await, history, "nothing imported twice");
    assert_eq!(probe.lines(), ["backfill-status"]);

    // Without the option, the import's own row is no unknown unit of this binary.
    runner(&t, &probe).run().await.unwrap();
    t.finish().await;
}

#[tokio::test]
async fn imports_a_mongobee_history_once_in_a_replica_set() {
    imports_a_mongobee_history_once(Mode::ReplicaSet, "legacy_once_rs").await;
}

#[tokio::test]
async fn imports_a_mongobee_history_once_on_a_standalone_server() {
    imports_a_mongobee_history_once(Mode::Standalone, "legacy_once_sa").await;
}

#[tokio::test]
async fn the_import_is_recorded_without_the_runs_metadata_as_mongock_records_system_changes() {
    let t = with_mongobee_history(Mode::ReplicaSet, "legacy_metadata").await;
    let probe = Recorder::default();

    runner(&t, &probe)
        .metadata(doc! { "service": "clients" })
        .legacy_migration(LegacyMigration::new("dbchangelog"))
        .run()
        .await
        .unwrap();

    let history = t.history().await;
    let system = rows_of(&history, LEGACY_MIGRATION_ID);
    assert_eq!(system.len(), 1, "{history:?}");
    assert_eq!(system[0].get("metadata"), Some(&Bson::Null));
    let unit = rows_of(&history, "backfill-status");
    assert_eq!(
        unit[0].get_document("metadata").unwrap(),
        &doc! { "service": "clients" },
        "change units and change sets keep it"
    );
    let imported = rows_of(&history, "seed-plans");
    assert_eq!(
        imported[0].get_document("metadata").unwrap(),
        &doc! { "migration-type": "legacy" }
    );
    t.finish().await;
}

#[tokio::test]
async fn with_one_transaction_per_run_the_import_still_decides_what_runs() {
    let t = with_mongobee_history(Mode::ReplicaSet, "legacy_per_run").await;
    let probe = Recorder::default();

    let report = runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("dbchangelog"))
        .transaction_strategy(TransactionStrategy::PerRun)
        .run()
        .await
        .unwrap();

    assert_eq!(report.executed(), [LEGACY_MIGRATION_ID, "backfill-status"]);
    assert_eq!(probe.lines(), ["backfill-status"]);
    assert_eq!(
        t.history().await.len(),
        5,
        "three imported rows and two of this run"
    );
    t.finish().await;
}

// ---------------------------------------------------------------- expected count

async fn an_unexpected_row_count_fails_before_importing(mode: Mode, name: &str) {
    let t = with_mongobee_history(mode, name).await;
    let probe = Recorder::default();

    let error = runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("dbchangelog").expected_count(5))
        .run()
        .await
        .unwrap_err();

    let failure = error.as_execution().expect("the import failed");
    assert_eq!(failure.unit_id, LEGACY_MIGRATION_ID);
    assert_eq!(
        failure.to_string(),
        "system change `mongock-legacy-migration` failed"
    );
    let mismatch = failure
        .source
        .downcast_ref::<LegacyCountMismatch>()
        .expect("a count mismatch");
    assert_eq!((mismatch.expected, mismatch.found), (5, 3));
    assert_eq!(
        mismatch.to_string(),
        "`dbchangelog` has 3 rows, but 5 were expected; nothing was imported"
    );
    assert!(probe.lines().is_empty(), "nothing ran after the import");
    let history = t.history().await;
    assert_eq!(history.len(), 1, "only the failed import: {history:?}");
    assert_eq!(history[0].get_str("changeId").unwrap(), LEGACY_MIGRATION_ID);
    assert_eq!(history[0].get_str("state").unwrap(), "FAILED");

    // With the right count, the next run imports.
    let report = runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("dbchangelog").expected_count(3))
        .run()
        .await
        .unwrap();
    assert_eq!(report.executed(), [LEGACY_MIGRATION_ID, "backfill-status"]);
    t.finish().await;
}

#[tokio::test]
async fn an_unexpected_row_count_fails_before_importing_in_a_replica_set() {
    an_unexpected_row_count_fails_before_importing(Mode::ReplicaSet, "legacy_count_rs").await;
}

#[tokio::test]
async fn an_unexpected_row_count_fails_before_importing_on_a_standalone_server() {
    an_unexpected_row_count_fails_before_importing(Mode::Standalone, "legacy_count_sa").await;
}

// ---------------------------------------------------------------- options and bad rows

#[tokio::test]
async fn run_always_imports_new_rows_on_every_run_without_duplicates() {
    let t = with_mongobee_history(Mode::ReplicaSet, "legacy_always").await;
    let probe = Recorder::default();
    let legacy = LegacyMigration::new("dbchangelog").run_always(true);
    runner(&t, &probe)
        .legacy_migration(legacy.clone())
        .run()
        .await
        .unwrap();
    // A Java instance still running mongobee applies one more change.
    t.collection("dbchangelog")
        .insert_one(doc! {
            "_id": 4,
            "changeId": "backfill-status",
            "author": "java-team",
            "timestamp": DateTime::now(),
            "changeLogClass": "com.example.clients.ClientChangelog",
            "changeSetMethod": "backfillStatus",
        })
        .await
        .unwrap();

    let second = runner(&t, &probe)
        .legacy_migration(legacy)
        .run()
        .await
        .unwrap();

    assert_eq!(second.executed(), [LEGACY_MIGRATION_ID]);
    assert_eq!(
        probe.lines(),
        ["backfill-status"],
        "ran once, in the first run"
    );
    let history = t.history().await;
    for change_id in ["init-clients", "create-indexes", "seed-plans"] {
        assert_eq!(rows_of(&history, change_id).len(), 1, "{change_id}");
    }
    assert_eq!(
        rows_of(&history, "backfill-status").len(),
        1,
        "applied here before the row appeared there: not imported over it"
    );
    assert_eq!(rows_of(&history, LEGACY_MIGRATION_ID).len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn field_names_of_another_tool_can_be_mapped() {
    let t = test_db(Mode::Standalone, "legacy_mapped").await;
    t.collection("schema_versions")
        .insert_one(doc! {
            "_id": "v1",
            "version": "create-indexes",
            "installed_by": "java-team",
            "installed_on": DateTime::from_millis(1_500_000_000_000),
            "notes": "by hand",
        })
        .await
        .unwrap();
    let probe = Recorder::default();

    runner(&t, &probe)
        .legacy_migration(
            LegacyMigration::new("schema_versions")
                .change_id_field("version")
                .author_field("installed_by")
                .timestamp_field("installed_on")
                .metadata_field("notes"),
        )
        .run()
        .await
        .unwrap();

    assert_eq!(probe.lines(), ["backfill-status"]);
    let history = t.history().await;
    let imported = rows_of(&history, "create-indexes");
    assert_eq!(imported.len(), 1);
    assert_eq!(
        imported[0].get_document("metadata").unwrap(),
        &doc! { "migration-type": "legacy", "original-metadata": "by hand" }
    );
    assert_eq!(imported[0].get_str("changeLogClass").unwrap(), "");
    t.finish().await;
}

#[tokio::test]
async fn a_row_without_a_change_id_fails_the_import_naming_its_document() {
    let t = with_mongobee_history(Mode::ReplicaSet, "legacy_corrupt").await;
    t.collection("dbchangelog")
        .insert_one(doc! { "_id": 7, "author": "java-team", "changeId": Bson::Null })
        .await
        .unwrap();
    let probe = Recorder::default();

    let error = runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("dbchangelog"))
        .run()
        .await
        .unwrap_err();

    let failure = error.as_execution().expect("the import failed");
    assert_eq!(failure.unit_id, LEGACY_MIGRATION_ID);
    assert_eq!(
        failure.source.to_string(),
        format!(
            "history document `_id: 7` in `{}.dbchangelog` is corrupt: required field \
             `changeId` is missing",
            t.db.name()
        )
    );
    let history = t.history().await;
    assert_eq!(history.len(), 1, "nothing imported: {history:?}");
    assert!(probe.lines().is_empty());
    t.finish().await;
}

#[tokio::test]
async fn importing_from_the_history_collection_itself_is_refused() {
    let t = test_db(Mode::Standalone, "legacy_self").await;
    let probe = Recorder::default();

    let error = runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("mongockChangeLog"))
        .run()
        .await
        .unwrap_err();

    let failure = error.as_execution().expect("the import failed");
    assert_eq!(
        failure.source.to_string(),
        "invalid collection name `mongockChangeLog`: it is the history collection, which \
         earlier history is imported into"
    );
    t.finish().await;
}

// ---------------------------------------------------------------- cost

async fn an_import_writes_its_rows_in_one_command(mode: Mode, name: &str) {
    const ROWS: usize = 1_000;
    let t = test_db(mode, name).await;
    let rows: Vec<Document> = (0..ROWS)
        .map(|i| {
            doc! {
                "changeId": format!("change-{i:04}"),
                "author": "java-team",
                "timestamp": DateTime::from_millis(1_500_000_000_000 + i as i64),
                "changeLogClass": "com.example.Big",
                "changeSetMethod": format!("change{i}"),
            }
        })
        .collect();
    t.collection("dbchangelog").insert_many(rows).await.unwrap();
    t.commands.clear();
    let probe = Recorder::default();
    let started = std::time::Instant::now();

    runner(&t, &probe)
        .legacy_migration(LegacyMigration::new("dbchangelog").expected_count(ROWS as u64))
        .run()
        .await
        .unwrap();

    let elapsed = started.elapsed();
    let names = t.commands.names();
    eprintln!(
        "{name}: importing {ROWS} rows took {elapsed:?} and {} commands: {names:?}",
        names.len()
    );
    // One insert for all the rows, and one write for each of the three history entries (the
    // import's own and the two change sets'): an insert, or the `bulkWrite` that fences a
    // transaction with its entries.
    assert_eq!(
        t.commands.count_of("insert") + t.commands.count_of("bulkWrite"),
        4,
        "{names:?}"
    );
    // Besides those: the history and the source read, the indexes, the lock, and the fences
    // and commits of a replica set.
    assert!(names.len() <= 25, "{} commands: {names:?}", names.len());
    assert_eq!(
        t.collection("mongockChangeLog")
            .count_documents(doc! { "executionId": { "$regex": "^legacy_migration-" } })
            .await
            .unwrap(),
        ROWS as u64
    );
    t.finish().await;
}

#[tokio::test]
async fn an_import_writes_its_rows_in_one_command_in_a_replica_set() {
    an_import_writes_its_rows_in_one_command(Mode::ReplicaSet, "legacy_cost_rs").await;
}

#[tokio::test]
async fn an_import_writes_its_rows_in_one_command_on_a_standalone_server() {
    an_import_writes_its_rows_in_one_command(Mode::Standalone, "legacy_cost_sa").await;
}

//! The MongoDB store driven directly through the `Store` trait, against a real server: lock,
//! indexes, history upserts and reads.

// The server selection and per-test databases are shared with the facade's MongoDB tests.
#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, SystemTime};

use migrate_core::{
    EntryType, HistoryEntry, LockAttempt, LockClaim, LockStore, State, Store, TransactionStore,
};
use migrate_mongodb::MongoStore;
use mongodb::bson::{doc, Bson, DateTime, Document};
use support::{test_db, transactional_db, Mode, TestDb};

fn store(t: &TestDb) -> MongoStore {
    MongoStore::new(&t.db)
}

/// How long an acquisition may wait for an open transaction.
const WAIT: Duration = Duration::from_secs(5);

fn claim(owner: &str, lease: Duration) -> LockClaim {
    LockClaim {
        owner: owner.into(),
        expires_at: SystemTime::now() + lease,
    }
}

fn expired(owner: &str) -> LockClaim {
    LockClaim {
        owner: owner.into(),
        expires_at: SystemTime::now() - Duration::from_secs(5),
    }
}

/// Millisecond precision, as BSON dates store it.
fn millis(time: SystemTime) -> SystemTime {
    DateTime::from_system_time(time).to_system_time()
}

fn entry(execution_id: &str, change_id: &str, state: State) -> HistoryEntry<Document> {
    HistoryEntry {
        execution_id: execution_id.into(),
        change_id: change_id.into(),
        author: "team".into(),
        timestamp: SystemTime::now(),
        state,
        entry_type: EntryType::Execution,
        change_log_class: "app::migrations::Unit".into(),
        change_set_method: "execute".into(),
        metadata: None,
        execution_millis: -1,
        execution_hostname: "host".into(),
        error_trace: None,
        system_change: false,
        checksum: Some("c0ffee".into()),
    }
}

// ---------------------------------------------------------------- lock

#[tokio::test]
async fn lock_is_acquired_when_free_and_stored_in_mongock_shape() {
    let t = test_db(Mode::ReplicaSet, "lock_shape").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    let mine = claim("me", Duration::from_secs(60));
    assert_eq!(
        store.acquire_lock(&mine, WAIT).await.unwrap(),
        LockAttempt::Acquired
    );

    let docs = t.documents("mongockLock").await;
    assert_eq!(docs.len(), 1, "{docs:?}");
    let lock = &docs[0];
    let mut fields: Vec<&str> = lock.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["_id", "expiresAt", "key", "owner", "status"]);
    assert_eq!(lock.get_str("key").unwrap(), "DEFAULT_KEY");
    assert_eq!(lock.get_str("status").unwrap(), "LOCK_HELD");
    assert_eq!(lock.get_str("owner").unwrap(), "me");
    assert_eq!(
        lock.get_datetime("expiresAt").unwrap().to_system_time(),
        millis(mine.expires_at)
    );

    let info = store.inspect_lock().await.unwrap().expect("a lock");
    assert_eq!(info.owner, "me");
    assert_eq!(info.key, "DEFAULT_KEY");
    t.finish().await;
}

#[tokio::test]
async fn lock_is_reacquired_by_its_owner() {
    let t = test_db(Mode::ReplicaSet, "lock_reacquire").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    assert_eq!(
        store
            .acquire_lock(&claim("me", Duration::from_secs(60)), WAIT)
            .await
            .unwrap(),
        LockAttempt::Acquired
    );
    let again = claim("me", Duration::from_secs(120));
    assert_eq!(
        store.acquire_lock(&again, WAIT).await.unwrap(),
        LockAttempt::Acquired
    );
    let info = store.inspect_lock().await.unwrap().unwrap();
    assert_eq!(info.expires_at, millis(again.expires_at));
    assert_eq!(t.documents("mongockLock").await.len(), 1);
    t.finish().await;
}

#[tokio::test]
async fn lock_is_not_stolen_before_expiry() {
    let t = test_db(Mode::ReplicaSet, "lock_no_steal").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    let holder = claim("holder", Duration::from_secs(60));
    store.acquire_lock(&holder, WAIT).await.unwrap();

    let attempt = store
        .acquire_lock(&claim("thief", Duration::from_secs(60)), WAIT)
        .await
        .unwrap();
    let LockAttempt::HeldBy(Some(info)) = attempt else {
        panic!("expected the lock to be held, got {attempt:?}");
    };
    assert_eq!(info.owner, "holder");
    assert_eq!(info.expires_at, millis(holder.expires_at));
    assert_eq!(store.inspect_lock().await.unwrap().unwrap().owner, "holder");
    t.finish().await;
}

#[tokio::test]
async fn lock_is_taken_over_after_expiry() {
    let t = test_db(Mode::ReplicaSet, "lock_takeover").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    store.acquire_lock(&expired("old"), WAIT).await.unwrap();

    let new = claim("new", Duration::from_secs(60));
    assert_eq!(
        store.acquire_lock(&new, WAIT).await.unwrap(),
        LockAttempt::Acquired
    );
    assert_eq!(store.inspect_lock().await.unwrap().unwrap().owner, "new");
    assert_eq!(t.documents("mongockLock").await.len(), 1);
    assert!(
        !store
            .refresh_lock(&claim("old", Duration::from_secs(60)))
            .await
            .unwrap(),
        "the old owner's refresh must fail after a takeover"
    );
    t.finish().await;
}

#[tokio::test]
async fn refresh_extends_only_the_owners_lease() {
    let t = test_db(Mode::ReplicaSet, "lock_refresh").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    store
        .acquire_lock(&claim("me", Duration::from_secs(10)), WAIT)
        .await
        .unwrap();

    let longer = claim("me", Duration::from_secs(300));
    assert!(store.refresh_lock(&longer).await.unwrap());
    assert_eq!(
        store.inspect_lock().await.unwrap().unwrap().expires_at,
        millis(longer.expires_at)
    );
    assert!(!store
        .refresh_lock(&claim("other", Duration::from_secs(600)))
        .await
        .unwrap());
    assert_eq!(
        store.inspect_lock().await.unwrap().unwrap().expires_at,
        millis(longer.expires_at)
    );
    t.finish().await;
}

#[tokio::test]
async fn release_deletes_only_the_owners_lock_and_force_release_deletes_any() {
    let t = test_db(Mode::ReplicaSet, "lock_release").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    store
        .acquire_lock(&claim("me", Duration::from_secs(60)), WAIT)
        .await
        .unwrap();

    store.release_lock("other").await.unwrap();
    assert!(
        store.inspect_lock().await.unwrap().is_some(),
        "another owner cannot release it"
    );
    store.release_lock("me").await.unwrap();
    assert_eq!(store.inspect_lock().await.unwrap(), None);

    store
        .acquire_lock(&claim("someone", Duration::from_secs(60)), WAIT)
        .await
        .unwrap();
    store.force_release_lock().await.unwrap();
    assert_eq!(store.inspect_lock().await.unwrap(), None);
    t.finish().await;
}

#[tokio::test]
async fn a_corrupt_lock_document_is_an_error_naming_its_id() {
    let t = test_db(Mode::ReplicaSet, "lock_corrupt").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    t.collection("mongockLock")
        .insert_one(
            doc! { "_id": "bad-lock", "key": "DEFAULT_KEY", "owner": 42, "expiresAt": "soon" },
        )
        .await
        .unwrap();

    let error = store.inspect_lock().await.unwrap_err().to_string();
    assert!(error.contains("`_id: \"bad-lock\"`"), "{error}");
    assert!(
        error.contains(&format!("{}.mongockLock", t.db.name())),
        "{error}"
    );
    // Acquiring runs into the same document through the duplicate key and reports it too.
    let error = store
        .acquire_lock(&claim("me", Duration::from_secs(60)), WAIT)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("bad-lock"), "{error}");
    t.finish().await;
}

// ---------------------------------------------------------------- fencing

#[tokio::test]
async fn fence_fails_once_another_owner_holds_the_lock() {
    let Some(t) = transactional_db("fence_owner").await else {
        return;
    };
    let store = store(&t);
    store.prepare().await.unwrap();
    let mine = claim("me", Duration::from_secs(60));
    store.acquire_lock(&mine, WAIT).await.unwrap();

    let mut session = store.start_session().await.unwrap();
    store.start_transaction(&mut session).await.unwrap();
    assert!(store.fence_lock(&mut session, &mine).await.unwrap());
    store.commit_transaction(&mut session).await.unwrap();

    store.force_release_lock().await.unwrap();
    store
        .acquire_lock(&claim("thief", Duration::from_secs(60)), WAIT)
        .await
        .unwrap();
    store.start_transaction(&mut session).await.unwrap();
    assert!(!store.fence_lock(&mut session, &mine).await.unwrap());
    store.abort_transaction(&mut session).await.unwrap();
    t.finish().await;
}

// ---------------------------------------------------------------- indexes

async fn unique_indexes(t: &TestDb, collection: &str) -> Vec<Document> {
    let mut cursor = t.collection(collection).list_indexes().await.unwrap();
    let mut out = Vec::new();
    while cursor.advance().await.unwrap() {
        let index = cursor.deserialize_current().unwrap();
        if index.options.and_then(|o| o.unique) == Some(true) {
            out.push(index.keys);
        }
    }
    out
}

#[tokio::test]
async fn prepare_creates_the_unique_indexes() {
    let t = test_db(Mode::ReplicaSet, "indexes_created").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    store
        .prepare()
        .await
        .expect("creating existing indexes again is a no-op");

    let history = unique_indexes(&t, "mongockChangeLog").await;
    assert_eq!(
        history,
        [doc! { "executionId": 1, "author": 1, "changeId": 1 }]
    );
    let lock = unique_indexes(&t, "mongockLock").await;
    assert_eq!(lock, [doc! { "key": 1 }]);
    t.finish().await;
}

#[tokio::test]
async fn without_index_creation_a_missing_index_is_an_error_naming_collection_and_keys() {
    let t = test_db(Mode::ReplicaSet, "indexes_verified").await;
    let verifying = MongoStore::new(&t.db).index_creation(false);

    let error = verifying.prepare().await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("`{}.mongockChangeLog`", t.db.name()))
            && error.contains("{ executionId: 1, author: 1, changeId: 1 }"),
        "{error}"
    );

    // With the history index in place, the lock index is the one missing.
    t.collection("mongockChangeLog")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "executionId": 1, "author": 1, "changeId": 1 })
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    let error = verifying.prepare().await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("`{}.mongockLock`", t.db.name())) && error.contains("{ key: 1 }"),
        "{error}"
    );

    store(&t).prepare().await.unwrap();
    t.commands.clear();
    verifying.prepare().await.expect("both indexes exist");
    assert_eq!(t.commands.names(), ["listIndexes", "listIndexes"]);
    t.finish().await;
}

// ---------------------------------------------------------------- history

#[tokio::test]
async fn unknown_fields_survive_an_upsert() {
    let t = test_db(Mode::ReplicaSet, "history_unknown_fields").await;
    let store = store(&t);
    store.prepare().await.unwrap();
    store
        .write_entry(&entry("run-1", "unit", State::Failed), None)
        .await
        .unwrap();
    t.collection("mongockChangeLog")
        .update_one(
            doc! { "changeId": "unit" },
            doc! { "$set": { "javaOnly": "kept", "nested": { "a": 1 } } },
        )
        .await
        .unwrap();

    store
        .write_entry(&entry("run-1", "unit", State::RolledBack), None)
        .await
        .unwrap();

    let docs = t.history().await;
    assert_eq!(docs.len(), 1, "the entry is updated in place: {docs:?}");
    assert_eq!(docs[0].get_str("state").unwrap(), "ROLLED_BACK");
    assert_eq!(docs[0].get_str("javaOnly").unwrap(), "kept");
    assert_eq!(docs[0].get_document("nested").unwrap(), &doc! { "a": 1 });
    t.finish().await;
}

#[tokio::test]
async fn the_whole_history_is_read_in_one_round_trip() {
    let t = test_db(Mode::ReplicaSet, "history_one_round_trip").await;
    let store = store(&t);
    let rows: Vec<Document> = (0..500)
        .map(|i| {
            doc! {
                "changeId": format!("change-{i:04}"),
                "author": "java-team",
                "timestamp": DateTime::now(),
                "changeLogClass": "com.example.Migrations",
                "changeSetMethod": format!("change{i}"),
            }
        })
        .collect();
    t.collection("mongockChangeLog")
        .insert_many(rows)
        .await
        .unwrap();
    t.commands.clear();

    let history = store.read_history().await.unwrap();

    assert_eq!(history.len(), 500);
    assert_eq!(t.commands.names(), ["find"], "no getMore for 500 entries");
    assert!(history.iter().all(|e| e.state == State::Executed));
    t.finish().await;
}

#[tokio::test]
async fn a_history_document_without_change_id_is_an_error_naming_its_id() {
    let t = test_db(Mode::ReplicaSet, "history_corrupt").await;
    let store = store(&t);
    t.collection("mongockChangeLog")
        .insert_one(doc! { "_id": "broken-entry", "author": "a", "state": "EXECUTED" })
        .await
        .unwrap();
    let error = store.read_history().await.unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "history document `_id: \"broken-entry\"` in `{}.mongockChangeLog` is corrupt: \
             required field `changeId` is missing",
            t.db.name()
        )
    );

    t.collection("mongockChangeLog")
        .update_one(
            doc! { "_id": "broken-entry" },
            doc! { "$set": { "changeId": "c", "author": Bson::Int32(7) } },
        )
        .await
        .unwrap();
    let error = store.read_history().await.unwrap_err().to_string();
    assert!(
        error.contains("field `author` is an int32, expected a string"),
        "{error}"
    );
    t.finish().await;
}

#[tokio::test]
async fn transactions_are_detected_from_the_servers_hello() {
    for mode in [Mode::ReplicaSet, Mode::Standalone] {
        let t = test_db(mode, "detect_transactions").await;
        let store = store(&t);
        assert_eq!(store.supports_transactions().await.unwrap(), t.transactions);
        assert_eq!(t.commands.names(), ["hello"]);
        store.supports_transactions().await.unwrap();
        assert_eq!(t.commands.count(), 1, "the answer is cached");
        if !t.transactions {
            let reason = store.transactions_unsupported_reason();
            assert!(reason.contains("standalone"), "{reason}");
        }
        t.finish().await;
    }
}

#[tokio::test]
async fn configured_collection_names_are_used() {
    let t = test_db(Mode::ReplicaSet, "custom_collections").await;
    let store = MongoStore::new(&t.db)
        .change_log_collection("history")
        .lock_collection("locks");
    store.prepare().await.unwrap();
    store
        .write_entry(&entry("run-1", "unit", State::Executed), None)
        .await
        .unwrap();
    store
        .acquire_lock(&claim("me", Duration::from_secs(60)), WAIT)
        .await
        .unwrap();

    assert_eq!(t.documents("history").await.len(), 1);
    assert_eq!(t.documents("locks").await.len(), 1);
    assert_eq!(store.read_history().await.unwrap().len(), 1);
    let mut names = t.db.list_collection_names().await.unwrap();
    names.sort();
    assert_eq!(names, ["history", "locks"]);
    t.finish().await;
}

#[tokio::test]
async fn invalid_collection_settings_are_rejected_without_io() {
    let t = test_db(Mode::ReplicaSet, "invalid_collection").await;
    let error = MongoStore::new(&t.db)
        .change_log_collection("bad$name")
        .check_settings()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid collection name `bad$name`: it contains `$`"
    );
    let error = MongoStore::new(&t.db)
        .lock_collection("mongockChangeLog")
        .check_settings()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the history and lock collections must differ (both are `mongockChangeLog`)"
    );
    assert!(t.commands.names().is_empty(), "checking does no I/O");
    t.finish().await;
}

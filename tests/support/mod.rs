//! Shared set-up of the integration tests: which MongoDB server, a database per test, a
//! counter of the commands the driver sends, and a [`recorder::Recorder`] of what the units did.
//!
//! The facade's tests include it as `mod support;`, the store's own tests in
//! `migrate-mongodb/tests/` by its path, so both suites pick servers the same way.
//!
//! The server comes from the environment, in this order:
//! - `MONGODB_URI`: a user's own server, used for every test whatever its mode; tests whose
//!   assertions depend on the topology adapt to what the server's `hello` says;
//! - `MIGRATE_TEST_URI` (a replica set) and `MIGRATE_TEST_URI_STANDALONE` (a standalone
//!   server), exported by `cargo xtask test`, which starts both.
//!
//! Without any of them a test fails with a message saying how to provide one.
#![allow(dead_code)]

pub(crate) mod recorder;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};

/// Which kind of server a test wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A replica set member: units run in transactions.
    ReplicaSet,
    /// A standalone server: units run without transactions, rolled back by their methods.
    Standalone,
}

/// The URI of the server for `mode`, and whether it was given by the user (`MONGODB_URI`).
pub(crate) fn server_uri(mode: Mode) -> (String, bool) {
    if let Some(uri) = env("MONGODB_URI") {
        return (uri, true);
    }
    let var = match mode {
        Mode::ReplicaSet => "MIGRATE_TEST_URI",
        Mode::Standalone => "MIGRATE_TEST_URI_STANDALONE",
    };
    match env(var) {
        Some(uri) => (uri, false),
        None => panic!(
            "this test needs a MongoDB server and `{var}` is not set: run the tests with \
             `cargo xtask test` (it starts SecantusDB servers and sets `MIGRATE_TEST_URI` and \
             `MIGRATE_TEST_URI_STANDALONE`), or set `MONGODB_URI` to a server of your own"
        ),
    }
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// A command the driver sent: its name and database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) name: String,
    pub(crate) db: String,
}

/// Records every command a client sends (the driver's command monitoring; handshakes and
/// server monitoring are not reported).
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandLog(Arc<Mutex<Vec<Command>>>);

impl CommandLog {
    pub(crate) fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub(crate) fn count_of(&self, name: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.name == name)
            .count()
    }

    pub(crate) fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// A client on the test server with its own database, dropped by [`TestDb::finish`] (or, if
/// the test panics, when the value is dropped).
pub(crate) struct TestDb {
    pub(crate) client: Client,
    pub(crate) db: Database,
    pub(crate) commands: CommandLog,
    /// Whether the server runs transactions (a replica set member or a mongos).
    pub(crate) transactions: bool,
    /// Whether the server came from `MONGODB_URI`, so its mode may not be the one asked for.
    pub(crate) user_server: bool,
    pub(crate) uri: String,
    app_name: String,
    finished: bool,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Connects to the server for `mode` and picks a fresh database named after `test`.
pub(crate) async fn test_db(mode: Mode, test: &str) -> TestDb {
    let (uri, user_server) = server_uri(mode);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("_{}_{n}", std::process::id());
    let mut name: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60 - suffix.len() - 3)
        .collect();
    name = format!("mt_{name}{suffix}");
    let commands = CommandLog::default();
    let client = client_with_log(&uri, &name, &commands).await;
    let hello = client
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .unwrap_or_else(|e| {
            panic!("cannot reach the MongoDB server at `{uri}` (is it running?): {e}")
        });
    let transactions = hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid");
    if !user_server {
        let expected = mode == Mode::ReplicaSet;
        assert_eq!(
            transactions,
            expected,
            "the server at `{uri}` should be {} but its `hello` says otherwise",
            if expected {
                "a replica set member"
            } else {
                "a standalone server"
            }
        );
    }
    let db = client.database(&name);
    commands.clear();
    TestDb {
        client,
        db,
        commands,
        transactions,
        user_server,
        uri,
        app_name: name,
        finished: false,
    }
}

/// A fresh database on a server that runs transactions, or `None` (with a note on stderr)
/// when the user's `MONGODB_URI` server runs none. The project's own replica-set server
/// always does, so with `cargo xtask test` these tests never skip.
pub(crate) async fn transactional_db(test: &str) -> Option<TestDb> {
    let t = test_db(Mode::ReplicaSet, test).await;
    if t.transactions {
        return Some(t);
    }
    eprintln!("skipped: the server at MONGODB_URI runs no transactions");
    t.finish().await;
    None
}

/// A client that logs its commands into `log`, with a short server selection timeout.
pub(crate) async fn client_with_log(uri: &str, app_name: &str, log: &CommandLog) -> Client {
    let mut options = ClientOptions::parse(uri)
        .await
        .unwrap_or_else(|e| panic!("invalid MongoDB URI `{uri}`: {e}"));
    options.server_selection_timeout = Some(Duration::from_secs(5));
    options.app_name = Some(app_name.to_owned());
    let sink = log.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        if let CommandEvent::Started(started) = event {
            sink.0.lock().unwrap().push(Command {
                name: started.command_name.clone(),
                db: started.db.clone(),
            });
        }
    }));
    Client::with_options(options).expect("a client")
}

impl TestDb {
    /// The `appName` of this test's client, for fail points that target only it.
    pub(crate) fn app_name(&self) -> &str {
        &self.app_name
    }

    /// A second client on the same server and database (another "process").
    pub(crate) async fn other_client(&self) -> (Client, Database, CommandLog) {
        let log = CommandLog::default();
        let client = client_with_log(&self.uri, &format!("{}_2", self.app_name), &log).await;
        let db = client.database(self.db.name());
        (client, db, log)
    }

    pub(crate) fn collection(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// Every document of `collection`, in insertion order.
    pub(crate) async fn documents(&self, collection: &str) -> Vec<Document> {
        let mut cursor = self
            .collection(collection)
            .find(doc! {})
            .sort(doc! { "$natural": 1 })
            .await
            .expect("find");
        let mut out = Vec::new();
        while cursor.advance().await.expect("cursor") {
            out.push(cursor.deserialize_current().expect("document"));
        }
        out
    }

    /// The history documents, raw.
    pub(crate) async fn history(&self) -> Vec<Document> {
        self.documents("mongockChangeLog").await
    }

    /// Drops the database.
    pub(crate) async fn finish(mut self) {
        self.finished = true;
        self.db.drop().await.expect("dropping the test database");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The test panicked: drop its database from a runtime of our own, since the test's
        // runtime is going away.
        let uri = self.uri.clone();
        let name = self.db.name().to_owned();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(client) = Client::with_uri_str(&uri).await {
                    let _ = client.database(&name).drop().await;
                }
            });
        })
        .join();
    }
}

/// Takes the lock of `db` over as another runner, `thief`, whose lease began after the
/// holder's ended and runs ten more minutes.
pub(crate) async fn take_lock_over(db: &Database) -> mongodb::error::Result<()> {
    let in_ten_minutes = std::time::SystemTime::now() + Duration::from_secs(600);
    db.collection::<Document>("mongockLock")
        .update_one(
            doc! { "key": "DEFAULT_KEY" },
            doc! { "$set": {
                "owner": "thief",
                "expiresAt": mongodb::bson::DateTime::from_system_time(in_ten_minutes),
            } },
        )
        .await?;
    Ok(())
}

/// The fields of a history document as Mongock 5 writes them, plus our `checksum`.
const MONGOCK_FIELDS: [&str; 15] = [
    "_id",
    "author",
    "changeId",
    "changeLogClass",
    "changeSetMethod",
    "checksum",
    "errorTrace",
    "executionHostname",
    "executionId",
    "executionMillis",
    "metadata",
    "state",
    "systemChange",
    "timestamp",
    "type",
];

/// Asserts that a history document has exactly Mongock's fields, with Mongock's types.
pub(crate) fn assert_mongock_shape(entry: &Document) {
    let mut fields: Vec<&str> = entry.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, MONGOCK_FIELDS, "{entry:?}");
    for (field, expected) in [
        ("executionId", "a string"),
        ("changeId", "a string"),
        ("author", "a string"),
        ("timestamp", "a date"),
        ("state", "a string"),
        ("type", "a string"),
        ("changeLogClass", "a string"),
        ("changeSetMethod", "a string"),
        ("executionMillis", "an int64"),
        ("executionHostname", "a string"),
        ("systemChange", "a boolean"),
        ("checksum", "a string"),
    ] {
        let ok = matches!(
            (entry.get(field), expected),
            (Some(Bson::String(_)), "a string")
                | (Some(Bson::DateTime(_)), "a date")
                | (Some(Bson::Int64(_)), "an int64")
                | (Some(Bson::Boolean(_)), "a boolean")
        );
        assert!(ok, "`{field}` should be {expected}: {entry:?}");
    }
    assert!(
        matches!(entry.get("metadata"), Some(Bson::Document(_) | Bson::Null)),
        "{entry:?}"
    );
    assert!(
        matches!(entry.get("errorTrace"), Some(Bson::String(_) | Bson::Null)),
        "{entry:?}"
    );
}

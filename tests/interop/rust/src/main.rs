//! The Rust service `cargo xtask interop` runs against the same database as the Java Mongock 5
//! service of `tests/interop/java`, plus the probe the harness reads the database with.
//!
//! ```text
//! migrate-interop run        run the selected units, as a service instance would at start-up
//! migrate-interop state      print the database: counters, history rows, lock, indexes
//! migrate-interop topology   print `replica-set` or `standalone`
//! migrate-interop seed-legacy  write a mongobee-shaped history into `dbchangelog`
//! ```
//!
//! Both sides read the same environment: `INTEROP_URI` (required), `INTEROP_DB` (default
//! `interop`), and for `run` `INTEROP_UNITS` (comma-separated: `a`, `b`, `c`, `fail`, `slow`, `legacy`),
//! `INTEROP_INDEX_CREATION` (`true` or `false`, default `true`), `INTEROP_LOCK_LEASE_MILLIS`
//! (default 60000), `INTEROP_LOCK_QUIT_MILLIS` (default 180000), `INTEROP_LOCK_TRY_MILLIS`
//! (default 1000), `INTEROP_SLOW_BEFORE_MILLIS` and `INTEROP_SLOW_MILLIS` (how long
//! `interop-slow` sleeps in its before-step and its execution, default 0) and
//! `INTEROP_SERVICE` (the service identifier, default `rust`) and `INTEROP_LEGACY_MIGRATION` (the
//! collection of an earlier history to import first, as Mongock's legacy migration; none by
//! default). Transactions are detected, not
//! configured. `run` prints `interop: ...` progress lines on stderr and exits 0 on success,
//! 1 with `error: ...` on failure.

mod legacy;
mod state;
mod units;

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use migrate::{LegacyMigration, MongoStore, Runner};
use mongodb::bson::doc;
use mongodb::{Client, Database};

use units::Slowness;

type BoxError = Box<dyn Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    dispatch(&command).await.unwrap_or_else(|error| {
        // The format the harness reads: the error, then its `source()` chain.
        eprintln!("error: {error}");
        for cause in std::iter::successors(error.source(), |&cause| cause.source()) {
            eprintln!("  caused by: {cause}");
        }
        ExitCode::FAILURE
    })
}

async fn dispatch(command: &str) -> Result<ExitCode, BoxError> {
    if !matches!(command, "run" | "state" | "topology" | "seed-legacy") {
        eprintln!("usage: migrate-interop run | state | topology | seed-legacy");
        return Ok(ExitCode::from(2));
    }
    let uri = std::env::var("INTEROP_URI").map_err(|_| "INTEROP_URI is not set")?;
    let client = Client::with_uri_str(&uri).await?;
    let db = client.database(&setting("INTEROP_DB", "interop".to_owned())?);
    let result = match command {
        "run" => run(&db).await,
        "state" => state::print(&db).await,
        "seed-legacy" => legacy::seed(&db).await,
        _ => topology(&client).await,
    };
    // Dropping a client ends its sessions in a task of its own, which may outlive the
    // runtime; shutting it down here ends them first.
    client.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn run(db: &Database) -> Result<(), BoxError> {
    let millis = |name: &str, default: u64| setting(name, default).map(Duration::from_millis);
    let units: Vec<String> = setting("INTEROP_UNITS", String::new())?
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = units
        .iter()
        .find(|u| !["a", "b", "c", "fail", "slow", "legacy"].contains(&u.as_str()))
    {
        return Err(format!(
            "INTEROP_UNITS: unknown unit `{unknown}` (a, b, c, fail, slow, legacy)"
        )
        .into());
    }
    let store = MongoStore::new(db).index_creation(setting("INTEROP_INDEX_CREATION", true)?);
    let mut runner = Runner::new(store);
    let origin = setting("INTEROP_LEGACY_MIGRATION", String::new())?;
    if !origin.is_empty() {
        runner = runner.legacy_migration(LegacyMigration::new(origin));
    }
    let report = runner
        .profiles(units)
        .dependency(Slowness {
            before: millis("INTEROP_SLOW_BEFORE_MILLIS", 0)?,
            execution: millis("INTEROP_SLOW_MILLIS", 0)?,
        })
        .lock_lease(millis("INTEROP_LOCK_LEASE_MILLIS", 60_000)?)
        .lock_quit_trying_after(millis("INTEROP_LOCK_QUIT_MILLIS", 180_000)?)
        .lock_try_frequency(millis("INTEROP_LOCK_TRY_MILLIS", 1_000)?)
        .service_identifier(setting("INTEROP_SERVICE", "rust".to_owned())?)
        .metadata(doc! { "side": "rust" })
        .on_started(|_| eprintln!("interop: lock held"))
        .run()
        .await?;
    eprintln!("interop: executed [{}]", report.executed().join(","));
    eprintln!("interop: done");
    Ok(())
}

/// `replica-set` when the server runs transactions (a replica set member or a mongos),
/// `standalone` otherwise.
async fn topology(client: &Client) -> Result<(), BoxError> {
    let hello = client
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await?;
    let transactions = hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid");
    println!(
        "{}",
        if transactions {
            "replica-set"
        } else {
            "standalone"
        }
    );
    Ok(())
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T, BoxError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .map_err(|_| format!("{name}={value:?} is not valid").into()),
        _ => Ok(default),
    }
}

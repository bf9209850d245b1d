//! The service `cargo xtask chaos` kills, pauses and fault-injects, plus the small tools the
//! harness needs around it.
//!
//! ```text
//! migrate-chaos run                     run the six chaos units, as every service instance would
//! migrate-chaos check <expectation>     check the database after a trial (see `check.rs`)
//! migrate-chaos fault <options> | off   configure the server's `failCommand` fail point
//! migrate-chaos topology                print `replica-set` or `standalone`
//! migrate-chaos drop                    drop the database
//! migrate-chaos reap                    end expired transactions every 5 s (see `reap.rs`)
//! ```
//!
//! Every subcommand reads `MONGODB_URI` and `CHAOS_DB` (default `chaos`). `run` also reads
//! `CHAOS_LEASE_MILLIS` (the lock lease, default 3000), `CHAOS_STEP_MILLIS` (how long every
//! unit waits before its writes, default 0) and `CHAOS_UNIT_MILLIS` (how long the long units
//! wait after their writes, inside their transaction, default 0), and with
//! `CHAOS_TRACE_COMMANDS=1` lists every command it sends.
//!
//! `run` tells the harness where it is on stderr (`chaos: <unit> wrote`, ...), including every
//! command the server failed, so a fault scenario can tell whether its fault hit the command it
//! aimed at. It exits 0 on success, 1 with the error and its `source()` chain on failure.

mod check;
mod client;
mod fault;
mod reap;
mod units;

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use migrate::Runner;

use check::Expectation;
use units::{Journal, Timing};

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(dispatch(&args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(args: &[String]) -> Result<ExitCode, BoxError> {
    let uri = std::env::var("MONGODB_URI").map_err(|_| "MONGODB_URI is not set")?;
    let database = env_or("CHAOS_DB", "chaos".to_owned())?;
    let command = args.first().map(String::as_str);
    let client = match command {
        Some("run") => client::service(&uri).await?,
        Some("check" | "fault" | "topology" | "drop" | "reap") => client::admin(&uri).await?,
        _ => {
            eprintln!("usage: migrate-chaos run | check <exact|at-least-once|consistent> | fault <options>|off | topology | drop | reap");
            return Ok(ExitCode::from(2));
        }
    };
    let db = client.database(&database);
    let result = match command {
        Some("run") => run(&db).await.map(|()| ExitCode::SUCCESS),
        Some("check") => check(&db, args.get(1)).await,
        Some("fault") => fault::configure(&client, &args[1..])
            .await
            .map(|()| ExitCode::SUCCESS),
        Some("reap") => reap::reap(&client).await.map(|()| ExitCode::SUCCESS),
        Some("topology") => client::topology(&client).await.map(|t| {
            println!("{t}");
            ExitCode::SUCCESS
        }),
        _ => db
            .drop()
            .await
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
    };
    // Dropping a client ends its sessions in a task of its own, which may outlive the
    // runtime; shutting it down here ends them first.
    client.shutdown().await;
    result
}

/// Prints every violation of `expectation`, one a line, or `ok`.
async fn check(db: &mongodb::Database, expectation: Option<&String>) -> Result<ExitCode, BoxError> {
    let expectation: Expectation = expectation.ok_or("check: which expectation?")?.parse()?;
    let violations = check::check(db, expectation).await?;
    if violations.is_empty() {
        println!("ok");
        return Ok(ExitCode::SUCCESS);
    }
    for violation in violations {
        println!("{violation}");
    }
    Ok(ExitCode::FAILURE)
}

/// One service instance start-up: the runner with the chaos units and a short lease.
async fn run(db: &mongodb::Database) -> Result<(), BoxError> {
    let lease = Duration::from_millis(env_or("CHAOS_LEASE_MILLIS", 3000)?);
    let timing = Timing {
        step: Duration::from_millis(env_or("CHAOS_STEP_MILLIS", 0)?),
        long: Duration::from_millis(env_or("CHAOS_UNIT_MILLIS", 0)?),
    };
    let report = Runner::new(db)
        .dependency(timing)
        .dependency(Journal::default())
        .lock_lease(lease)
        .lock_try_frequency(Duration::from_millis(500))
        .service_identifier(format!("chaos-{}", std::process::id()))
        .on_started(|_| eprintln!("chaos: lock held"))
        .run()
        .await?;
    println!("chaos: executed [{}]", report.executed().join(","));
    Ok(())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, BoxError> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}={value:?} is not valid").into()),
        Err(_) => Ok(default),
    }
}

//! An application's own `migrate` command: status, plan, run, undo, unlock and more, over
//! the change units linked into the binary (feature `cli`).
//!
//! The application writes the binary in a few lines, building its runner the way the service
//! does (dependencies, system versions, service identifier); the closure receives the database
//! chosen on the command line, and is called once per database with `--databases`:
//!
//! ```no_run
//! # struct Api;
//! # impl Api { fn new() -> Self { Api } }
//! // src/bin/migrate.rs
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     migrate::cli::main(|db| migrate::Runner::new(db).dependency(Api::new())).await
//! }
//! ```
//!
//! # Commands
//!
//! | command | what it does |
//! | --- | --- |
//! | `run [--up-to ID] [--dry-run] [--concurrency N] [--fail-fast]` | applies the pending units ([`Runner::run`], [`Runner::run_up_to`]); `--dry-run` prints the plan instead ([`Runner::plan`], [`Runner::plan_up_to`]) |
//! | `status [--check]` | every unit's state ([`Runner::status`]); `--check` exits with 4 unless the database is up to date |
//! | `plan` | what `run` would do, after every check `run` makes, without the lock or a write |
//! | `history [--limit N]` | the history entries, newest first ([`Runner::history`]) |
//! | `undo (--to ID \| --all) [--yes] [--concurrency N] [--fail-fast]` | undoes applied units, newest first ([`Runner::undo_to`], [`Runner::undo_all`]) |
//! | `unlock [--force]` | releases the lock of a runner that is gone ([`Runner::unlock`]); with `--force`, also deletes a lock document that cannot be read (which every command reports as corrupt) |
//! | `validate` | checks the units without a database ([`Runner::validate`]) |
//! | `accept-checksums` | records the new checksum of units edited since they ran ([`Runner::accept_checksums`]) |
//!
//! `ID` names a unit by its id. When units by several authors share the id, `ID` alone is a
//! usage error that lists them, and `ID/AUTHOR` names one; the runner stops at (or undoes
//! from) the first unit of an id in order, so `ID/AUTHOR` can name only that one for now.
//!
//! Global options: `--uri` (default: the `MONGODB_URI` environment variable), `--database`
//! (default: the database named in the URI) or `--databases GLOB` (see below), `--profile
//! NAME` (repeatable; replaces the runner's active profiles), `--json`. `validate` reads no
//! database and needs none of them. Without a server selection timeout in the URI, the
//! command waits 10 s for a server.
//!
//! # Many databases
//!
//! `--databases GLOB` runs the command in every database of the server whose name matches
//! (`*` any run of characters, `?` one; `admin`, `config` and `local` only by their exact
//! name), listed with `listDatabases` through [`Tenants::matching`], each with its own lock
//! and history. `run` and `undo` work on `--concurrency N` databases at once (default 4)
//! and, with `--fail-fast`, start no other database once one fails; the other commands read
//! the databases 4 at a time. Without a matching database the command is a usage error, as
//! are `--database` with `--databases`, and `--concurrency` or `--fail-fast` without it.
//!
//! `run` and `undo` print each unit's line after its database's name, then a table with each
//! database's outcome, the units applied (or undone), those pending afterwards and the
//! error; `status` prints a section per database and the same table; the other commands a
//! section per database. A database's error also goes to standard error, as
//! ``error: in `tenant_b`: ...``.
//!
//! `undo` changes data, so without `--yes` it lists what it would undo and asks on a
//! terminal; any answer but `y` or `yes` cancels it, and when standard input is not a
//! terminal it refuses: both exit with code 2.
//!
//! While `run` and `undo` work, each unit gets a live progress line on a terminal (one per
//! database at work), showing how far a long unit got when it reports its progress
//! ([`RunContext::report_progress`](crate::RunContext::report_progress), as
//! [`batch::BatchUpdate`](crate::batch::BatchUpdate) does: done/total, rate, time left), and
//! a plain line once it is done otherwise. The runner's warnings (an applied unit edited since
//! it ran, a transactional unit whose writes escape its transaction) go to standard error as
//! `warning:` lines, unless the application installed a `tracing` subscriber of its own.
//! Colour is used only on a terminal, and never when
//! `NO_COLOR` is set. Once standard output cannot be written to (a closed pipe, as in
//! `migrate run | head -1`), the rest of the output is dropped quietly: the command still
//! does all its work and exits with its own code. Errors go to standard error with their causes:
//!
//! ```text
//! error: change unit `seed-widgets` failed in `#[execution]`
//!   caused by: Kind: Command failed: ...
//! ```
//!
//! # Exit codes
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | the operation failed (a unit, a rollback, the server, `validate` found errors) |
//! | 2 | usage: an invalid command line, no URI or database, an id that is no unit of the binary, `undo` unconfirmed |
//! | 3 | the lock is held by another runner ([`Error::Locked`]; `unlock` without `--force` finding a live lock) |
//! | 4 | `status --check` found pending or changed units, or the strict checksum policy stopped a run ([`Error::ChecksumDrift`]) |
//!
//! With `--databases`, the code is the most serious of the databases' codes, in this order:
//! 2 (the command line is wrong: fix it first), 1 (a database failed, or did not start after
//! a failure with `--fail-fast`), 3 (a lock was held: try again later), 4 (a database is not
//! up to date), 0. So `status --check` exits with 4 only when every database could be read
//! and some are behind.
//!
//! # JSON
//!
//! With `--json`, standard output holds exactly one JSON object, also when the command
//! fails (usage errors found while parsing the command line print none). Every object has
//! `"command"`, the subcommand's name. Times are RFC 3339 strings in UTC, durations whole
//! milliseconds; absent values are `null`. Fields may be added; none is removed or renamed.
//!
//! `status`:
//!
//! ```text
//! { "command": "status", "up_to_date": bool,
//!   "units": [ { "id", "author", "order",
//!                "state": "pending" | "executed" | "failed" | "rollback_failed" | "rolled_back" | "skipped",
//!                "at": time | null, "host": string | null, "millis": int | null,
//!                "error": string | null, "skip_reason": skip | null,
//!                "pending": bool, "run_always": bool, "runs_again": bool, "out_of_order": bool,
//!                "drift": { "recorded", "current" } | null } ],
//!   "unknown": [ { "id", "author", "class", "state", "at", "blocks_run": bool } ],
//!   "checkpoints": [ { "name", "namespace": string | null, "last_id": value | null,
//!                      "done": int, "complete": bool, "execution_id": string | null,
//!                      "change_id": string | null, "step": string | null,
//!                      "left_over": bool } ] }
//! ```
//!
//! where `skip` is `{ "reason": "already_executed" | "profile" | "system_version" |
//! "after_target", "version": string (system_version only), "target": string (after_target
//! only) }`, and `state` of an unknown entry is the stored history state (`"EXECUTED"`, ...);
//! `blocks_run` says that a run refuses to start because of it (a unit of this runtime that
//! is applied, and the runner does not allow unknown history).
//! `host` and `millis` are those of the row that recorded the unit's state (also for a failed
//! unit); `error` is the message of a failed unit's recorded error trace.
//! `checkpoints` are the [batch checkpoints](crate::batch::StoredCheckpoint) kept in the
//! database: those of failed or stopped units, and complete ones that outlived their cleanup.
//! `step` is the attribute of the step that moved it (`"execution"`, ...), and `left_over`
//! says that nothing resumes from it and it can be deleted (the step deletes it when it runs
//! again): the history records that step as done by the run that moved it last, or it is
//! complete and its unit `runs_again`. `runs_again` marks a `run_always` unit already
//! applied, which the next run applies again.
//!
//! `plan`, and `run --dry-run` (whose `"command"` is `"run"`, with `"dry_run": true`):
//!
//! ```text
//! { "command": "plan", "pending": int,
//!   "units": [ { "id", "author", "order", "action": "run" | "run_again" | "skip",
//!                "skip_reason": skip | null, "drift": { "recorded", "current" } | null } ] }
//! ```
//!
//! `run` and `undo`:
//!
//! ```text
//! { "command": "run" | "undo", "dry_run": false, "execution_id": string,
//!   "status": "completed" | "disabled" | "lock_unavailable", "elapsed_ms": int,
//!   "units": [ { "id", "author", "order",
//!                "outcome": "executed" | "executed_again" | "skipped" | "failed" | "not_run" | "rolled_back",
//!                "skip_reason": skip | null, "error": string | null,
//!                "rolled_back": bool | null, "elapsed_ms": int | null } ] }
//! ```
//!
//! `history` (the stored fields, under the names of the history collection):
//!
//! ```text
//! { "command": "history",
//!   "entries": [ { "executionId", "changeId", "author", "timestamp", "state", "type",
//!                  "changeLogClass", "changeSetMethod", "executionMillis",
//!                  "executionHostname", "errorTrace", "systemChange", "checksum",
//!                  "metadata": relaxed extended JSON | null } ] }
//! ```
//!
//! A row without `timestamp`, `executionId` or `executionHostname` has `null` there (and `-`
//! in the table). `history --limit 0` says how many entries there are and shows none.
//!
//! `unlock`:
//!
//! ```text
//! { "command": "unlock", "lock": "free" | "released" | "held",
//!   "owner": string | null, "expires_at": time | null,
//!   "reason": "expired" | "owned_by_this_process" | "forced" | "corrupt" | null,
//!   "corrupt": { "id": string, "namespace": string, "problem": string } | null }
//! ```
//!
//! `"corrupt"` describes the lock document that `unlock --force` deleted because it could not
//! be read (`"reason": "corrupt"`; its owner and lease are unknown): its `_id` as text, its
//! collection (`database.collection`) and what was wrong with it.
//!
//! `validate`:
//!
//! ```text
//! { "command": "validate", "valid": bool, "units": int,
//!   "findings": [ { "severity": "error" | "warning", "unit": string | null, "message" } ] }
//! ```
//!
//! `accept-checksums`:
//!
//! ```text
//! { "command": "accept-checksums",
//!   "accepted": [ { "id", "author", "recorded", "current" } ] }
//! ```
//!
//! A failure, in place of the command's object:
//!
//! ```text
//! { "command": string, "exit_code": int,
//!   "error": { "kind": "failed" | "usage" | "locked" | "checksum_drift" | "not_run",
//!              "message": string, "causes": [ string ] },
//!   "units": [ unit ] }
//! ```
//!
//! where `"units"` is there for a `run` or an `undo` that started: the units it applied (or
//! undid) before it stopped and the one it failed at (`"outcome": "failed"`), in the order
//! they finished, each in the shape of the report's units above.
//!
//! With `--databases`, one object for all the databases, in name order: each entry is the
//! object the command prints for that one database (or its failure object; `"kind":
//! "not_run"` for a database that did not start after a failure with `--fail-fast`), with its
//! name and exit code added; `exit_code` is the combined code:
//!
//! ```text
//! { "command": string, "exit_code": int,
//!   "databases": [ { "database": string, "exit_code": int, "command": string, ... } ] }
//! ```
//!
//! A problem with the command as a whole (no database matches, the server cannot list them)
//! prints the failure object alone.

mod failure;
mod human;
mod json;
mod out;
mod targets;
mod warnings;

use std::collections::HashMap;
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use mongodb::bson::Document;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use self::failure::{CorruptLock, Exit, Failure, InvalidUri, NotStarted};
use self::targets::{can_ask, confirm_undo, resolve_target, undo_targets};
use crate::batch::{stored_checkpoints, LeftOver, StoredCheckpoint};
use crate::{
    AcceptedChecksum, Error, HistoryEntry, Outcome, Plan, Report, RunStatus, Runner, Status,
    TenantResult, Tenants, Unlock, Validation, DEFAULT_CONCURRENCY,
};

/// Runs the command line of `std::env::args_os()` against the runner `configure` builds
/// for the chosen database (for each of them, with `--databases`), and returns the exit code.
pub async fn main<F>(configure: F) -> ExitCode
where
    F: Fn(&Database) -> Runner,
{
    main_from(std::env::args_os(), configure).await
}

/// Like [`main`], with the command line given: `args` starts with the program name.
pub async fn main_from<I, T, F>(args: I, configure: F) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
    F: Fn(&Database) -> Runner,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version requests print to stdout and succeed; the rest is usage.
            let _ = error.print();
            return ExitCode::from(error.exit_code().clamp(0, 255) as u8);
        }
    };
    warnings::install();
    let output = human::Output::new(cli.json);
    let name = cli.command.name();
    let connection = Connection::default();
    let code = match execute(cli, configure, &output, &connection).await {
        Ok(code) => code,
        Err(failure) => {
            output.error(None, &failure);
            if output.json {
                json::print(&json::failure(name, &failure));
            }
            failure.exit
        }
    };
    connection.shutdown().await;
    ExitCode::from(code as u8)
}

/// The client a command created, shut down before [`main_from`] returns.
///
/// Dropped instead, a client ends its sessions in a task of its own, which the runtime may be
/// shutting down by then: the command's process would exit before that task ran, or with the
/// driver's panic about its closed connection pool on standard error.
#[derive(Default)]
struct Connection(Mutex<Option<Client>>);

impl Connection {
    fn keep(&self, client: &Client) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
    }

    async fn shutdown(self) {
        let client = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = client {
            client.shutdown().await;
        }
    }
}

/// The help heading of the options every command takes.
const GLOBAL: &str = "Global options";

/// `migrate`'s command line.
#[derive(Debug, Parser)]
#[command(
    about = "Applies, inspects and undoes the MongoDB change units of this application",
    disable_version_flag = true
)]
struct Cli {
    /// The MongoDB connection string [default: the MONGODB_URI environment variable]
    #[arg(long, global = true, value_name = "URI", help_heading = GLOBAL)]
    uri: Option<String>,
    /// The database holding the data and the history [default: the URI's database]
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    database: Option<String>,
    /// Every database whose name matches this pattern (`*`, `?`), instead of one
    #[arg(long, global = true, value_name = "GLOB", help_heading = GLOBAL)]
    databases: Option<String>,
    /// An active profile; repeat it for several [default: the runner's profiles]
    #[arg(long = "profile", global = true, value_name = "NAME", help_heading = GLOBAL)]
    profiles: Vec<String>,
    /// Print one JSON object on standard output instead of tables
    #[arg(long, global = true, help_heading = GLOBAL)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// How `run` and `undo` go through the databases of `--databases`.
#[derive(Debug, Clone, Default, Args)]
struct Spread {
    /// With `--databases`: how many databases are worked on at once [default: 4]
    #[arg(long, value_name = "N")]
    concurrency: Option<NonZeroUsize>,
    /// With `--databases`: once a database fails, start no other
    #[arg(long)]
    fail_fast: bool,
}

#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Apply the pending change units, in order, under the lock
    Run {
        /// Stop after this unit: units ordered after it stay pending
        #[arg(long, value_name = "ID")]
        up_to: Option<String>,
        /// Print what would run, after every check a run makes, and change nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        spread: Spread,
    },
    /// Show every change unit with its recorded state
    Status {
        /// Exit with code 4 when units are pending or changed since they ran
        #[arg(long)]
        check: bool,
    },
    /// Show what `run` would do, without taking the lock or writing
    Plan,
    /// Show the history entries, newest first
    History {
        /// Show at most this many entries
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Undo applied change units, newest first, so they are pending again
    #[command(group(ArgGroup::new("target").required(true).args(["to", "all"])))]
    Undo {
        /// Undo the applied units ordered at or after this one
        #[arg(long, value_name = "ID")]
        to: Option<String>,
        /// Undo every applied unit
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        spread: Spread,
    },
    /// Release the migration lock of a runner that is gone
    Unlock {
        /// Release it even while its lease runs
        #[arg(long)]
        force: bool,
    },
    /// Check the change units and options without a database
    Validate,
    /// Record the current checksum of applied units edited since they ran
    AcceptChecksums,
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Run { .. } => "run",
            Command::Status { .. } => "status",
            Command::Plan => "plan",
            Command::History { .. } => "history",
            Command::Undo { .. } => "undo",
            Command::Unlock { .. } => "unlock",
            Command::Validate => "validate",
            Command::AcceptChecksums => "accept-checksums",
        }
    }

    /// What the progress display says a unit does, for the commands that change data.
    fn verb(&self) -> Option<human::Verb> {
        match self {
            Command::Run { dry_run: false, .. } => Some(human::Verb::Apply),
            Command::Undo { .. } => Some(human::Verb::Undo),
            _ => None,
        }
    }

    /// The unit that `run --up-to` or `undo --to` names, if any.
    fn target_mut(&mut self) -> Option<&mut String> {
        match self {
            Command::Run { up_to, .. } => up_to.as_mut(),
            Command::Undo { to, .. } => to.as_mut(),
            _ => None,
        }
    }

    fn spread(&self) -> Spread {
        match self {
            Command::Run { spread, .. } | Command::Undo { spread, .. } => spread.clone(),
            _ => Spread::default(),
        }
    }
}

/// What a command found or did in one database.
enum Done {
    Status {
        status: Status,
        check: bool,
        /// The batch checkpoints kept in the database, each with whether it is left over.
        checkpoints: Vec<(StoredCheckpoint, Option<LeftOver>)>,
        /// The history the status was built from, for what the status leaves out (the host
        /// of a failed unit).
        history: Vec<HistoryEntry<Document>>,
    },
    Plan {
        plan: Plan,
        command: &'static str,
    },
    History {
        /// The entries shown, newest first.
        entries: Vec<HistoryEntry<Document>>,
        /// How many the history holds.
        total: usize,
    },
    Report {
        report: Report,
        command: &'static str,
    },
    Unlock(Unlock),
    /// `unlock --force` deleted a lock document that could not be read.
    CorruptLockDeleted(CorruptLock),
    Validation(Validation),
    Accepted(Vec<AcceptedChecksum>),
}

impl Done {
    fn exit(&self) -> Exit {
        match self {
            Done::Status { status, check, .. } if *check && !status.is_up_to_date() => {
                Exit::NotUpToDate
            }
            Done::Report { report, .. } => report_exit(report),
            Done::Unlock(Unlock::HeldBy { .. }) => Exit::Locked,
            Done::Validation(validation) if !validation.is_valid() => Exit::Failed,
            _ => Exit::Ok,
        }
    }
}

/// The outcome of a command in one database of `--databases`.
struct Entry {
    database: String,
    result: Result<Done, Failure>,
    /// Units applied (or undone) by `run` (or `undo`), and those pending afterwards, when
    /// known.
    counts: human::Counts,
}

impl Entry {
    fn exit(&self) -> Exit {
        match &self.result {
            Ok(done) => done.exit(),
            Err(failure) => failure.exit,
        }
    }
}

/// The most serious of `exits` (see [`Exit::severity`]), or [`Exit::Ok`].
fn worst(exits: impl IntoIterator<Item = Exit>) -> Exit {
    exits
        .into_iter()
        .max_by_key(|exit| exit.severity())
        .unwrap_or(Exit::Ok)
}

async fn execute<F>(
    cli: Cli,
    configure: F,
    output: &human::Output,
    connection: &Connection,
) -> Result<Exit, Failure>
where
    F: Fn(&Database) -> Runner,
{
    if cli.database.is_some() && cli.databases.is_some() {
        return Err(Failure::usage(
            "`--database` and `--databases` exclude each other: name one database, or a pattern",
        ));
    }
    let spread = cli.command.spread();
    if cli.databases.is_none() && (spread.concurrency.is_some() || spread.fail_fast) {
        return Err(Failure::usage(
            "`--concurrency` and `--fail-fast` apply only with `--databases`",
        ));
    }
    let offline = matches!(cli.command, Command::Validate);
    if let (Some(glob), false) = (&cli.databases, offline) {
        return across(&cli, glob, &configure, output, connection).await;
    }
    let db = database(cli.uri, cli.database, offline, connection).await?;
    let runner = build(&configure, &db, &cli.profiles);
    let mut command = cli.command;
    if let Some(target) = command.target_mut() {
        *target = resolve_target(&runner, target).await?;
    }
    if let Command::Undo { to, yes: false, .. } = &command {
        can_ask()?;
        let targets = undo_targets(&runner, to.as_deref()).await?;
        confirm_undo(&[(db.name(), targets)], output)?;
    }
    let tracker = command
        .verb()
        .map(|verb| output.progress(verb, 0).tracker(None));
    let done = perform(runner, command, &db, tracker.as_ref())
        .await
        .map_err(|error| Failure::tracked(error, tracker.as_ref()))?;
    output.done(&done);
    Ok(done.exit())
}

/// The runner `configure` builds for `db`, with the profiles of the command line.
fn build<F>(configure: &F, db: &Database, profiles: &[String]) -> Runner
where
    F: Fn(&Database) -> Runner,
{
    let runner = configure(db);
    if profiles.is_empty() {
        runner
    } else {
        runner.profiles(profiles.to_vec())
    }
}

/// Runs `command` in the runner's database; `tracker` shows and counts the units of a run
/// or an undo.
async fn perform(
    runner: Runner,
    command: Command,
    db: &Database,
    tracker: Option<&human::Tracker>,
) -> Result<Done, Error> {
    let name = command.name();
    Ok(match command {
        Command::Run {
            up_to,
            dry_run: true,
            ..
        } => Done::Plan {
            plan: match &up_to {
                Some(id) => runner.plan_up_to(id).await?,
                None => runner.plan().await?,
            },
            command: name,
        },
        Command::Run { up_to, .. } => {
            let runner = watched(runner, tracker);
            let result = match up_to {
                Some(id) => runner.run_up_to(id).await,
                None => runner.run().await,
            };
            if let (Err(error), Some(tracker)) = (&result, tracker) {
                tracker.fail(error);
            }
            tracker.inspect(|t| t.finish());
            Done::Report {
                report: result?,
                command: name,
            }
        }
        Command::Status { check } => {
            let (status, history) = runner.status_and_history().await?;
            let checkpoints = checkpoints(db, &status, &history).await?;
            Done::Status {
                status,
                check,
                checkpoints,
                history,
            }
        }
        Command::Plan => Done::Plan {
            plan: runner.plan().await?,
            command: name,
        },
        Command::History { limit } => {
            let mut entries = runner.history().await?;
            let total = entries.len();
            entries.truncate(limit.unwrap_or(usize::MAX));
            Done::History { entries, total }
        }
        Command::Undo { to, .. } => {
            let runner = watched(runner, tracker);
            let result = match to {
                Some(id) => runner.undo_to(id).await,
                None => runner.undo_all().await,
            };
            if let (Err(error), Some(tracker)) = (&result, tracker) {
                tracker.fail(error);
            }
            tracker.inspect(|t| t.finish());
            Done::Report {
                report: result?,
                command: name,
            }
        }
        Command::Unlock { force } => match runner.unlock(force).await {
            Err(error) if force => match CorruptLock::in_chain(&error) {
                Some(corrupt) => {
                    corrupt.delete(db).await?;
                    Done::CorruptLockDeleted(corrupt)
                }
                None => return Err(error),
            },
            unlock => Done::Unlock(unlock?),
        },
        Command::Validate => Done::Validation(runner.validate()),
        Command::AcceptChecksums => Done::Accepted(runner.accept_checksums().await?),
    })
}

/// `runner`, reporting its units and their progress to `tracker`.
fn watched(runner: Runner, tracker: Option<&human::Tracker>) -> Runner {
    match tracker {
        Some(tracker) => {
            tracker.start();
            runner
                .on_unit(tracker.unit_listener())
                .on_progress(tracker.progress_listener())
        }
        None => runner,
    }
}

/// One database of a `--databases` command: its runner, taken when its turn comes, and
/// (for `run` and `undo`) one to read its status once that is done.
struct Slot {
    runner: Option<Runner>,
    after: Option<Runner>,
}

/// Runs the command in every database matching `glob`, prints what each did, and returns
/// the most serious exit code.
async fn across<F>(
    cli: &Cli,
    glob: &str,
    configure: &F,
    output: &human::Output,
    connection: &Connection,
) -> Result<Exit, Failure>
where
    F: Fn(&Database) -> Runner,
{
    let (client, _) = client(cli.uri.clone(), false, connection).await?;
    let spread = cli.command.spread();
    let tenants = Tenants::matching(&client, glob)
        .await?
        .concurrency(
            spread
                .concurrency
                .map_or(DEFAULT_CONCURRENCY, NonZeroUsize::get),
        )
        .fail_fast(spread.fail_fast);
    let names = tenants.names();
    if names.is_empty() {
        return Err(Failure::usage(format!(
            "no database matches `{glob}` (admin, config and local match only by their exact name)"
        )));
    }
    let verb = cli.command.verb();
    let mut command = cli.command.clone();
    let mut slots = HashMap::new();
    for name in &names {
        let db = client.database(name);
        slots.insert(
            name.clone(),
            Slot {
                runner: Some(build(configure, &db, &cli.profiles)),
                after: verb.map(|_| build(configure, &db, &cli.profiles)),
            },
        );
    }
    if let Some(target) = command.target_mut() {
        // Every database has the binary's units: the first one's runner resolves it.
        let runner = slots[&names[0]]
            .runner
            .as_ref()
            .expect("a runner per database");
        *target = resolve_target(runner, target).await?;
    }
    if let Command::Undo { to, yes: false, .. } = &command {
        can_ask()?;
        let mut listing = Vec::new();
        for name in &names {
            let runner = slots[name].runner.as_ref().expect("a runner per database");
            listing.push((name.as_str(), undo_targets(runner, to.as_deref()).await?));
        }
        confirm_undo(&listing, output)?;
    }
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let progress = verb.map(|verb| output.progress(verb, width));
    let trackers: HashMap<String, human::Tracker> = match &progress {
        Some(progress) => names
            .iter()
            .map(|name| (name.clone(), progress.tracker(Some(name))))
            .collect(),
        None => HashMap::new(),
    };
    let slots = Arc::new(Mutex::new(slots));
    let trackers = Arc::new(trackers);
    let outcomes = {
        let trackers = Arc::clone(&trackers);
        tenants
            .each(move |db| {
                let slot = slots
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(db.name());
                let tracker = trackers.get(db.name()).cloned();
                let command = command.clone();
                async move {
                    let Some(Slot {
                        runner: Some(runner),
                        after,
                    }) = slot
                    else {
                        unreachable!("each database is worked on once");
                    };
                    let result = perform(runner, command, &db, tracker.as_ref()).await;
                    if let (Some(after), Some(tracker)) = (after, &tracker) {
                        tracker.set_pending(after.status().await.ok().map(|s| s.pending().count()));
                    }
                    result
                }
            })
            .await
    };
    let entries: Vec<Entry> = outcomes
        .into_iter()
        .map(|outcome| Entry {
            counts: trackers
                .get(&outcome.database)
                .map(human::Tracker::counts)
                .unwrap_or_default(),
            result: match outcome.result {
                TenantResult::Done(done) => Ok(done),
                TenantResult::Failed(error) => {
                    Err(Failure::tracked(error, trackers.get(&outcome.database)))
                }
                _ => Err(Failure::new(Exit::Failed, NotStarted)),
            },
            database: outcome.database,
        })
        .collect();
    let exit = worst(entries.iter().map(Entry::exit));
    output.databases(cli.command.name(), verb.is_some(), &entries, exit);
    Ok(exit)
}

/// The exit code of a run or an undo that returned a report.
fn report_exit(report: &Report) -> Exit {
    if report.status == RunStatus::LockUnavailable {
        Exit::Locked
    } else if report
        .units
        .iter()
        .any(|u| matches!(u.outcome, Outcome::Failed { .. }))
    {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// The client of `--uri`/`MONGODB_URI`, kept in `connection`, and the URI's default
/// database. Creating the client does not connect; `offline` commands need no URI.
async fn client(
    uri: Option<String>,
    offline: bool,
    connection: &Connection,
) -> Result<(Client, Option<String>), Failure> {
    let uri = uri.or_else(|| std::env::var("MONGODB_URI").ok().filter(|u| !u.is_empty()));
    let mut options = match uri {
        Some(uri) => ClientOptions::parse(&uri)
            .await
            .map_err(|e| Failure::new(Exit::Usage, InvalidUri(e)))?,
        None if offline => ClientOptions::default(),
        None => {
            return Err(Failure::usage(
                "no MongoDB connection string: pass `--uri` or set `MONGODB_URI`",
            ))
        }
    };
    options
        .server_selection_timeout
        .get_or_insert(Duration::from_secs(10));
    options.app_name.get_or_insert_with(|| "migrate".to_owned());
    let default = options.default_database.clone();
    let client =
        Client::with_options(options).map_err(|e| Failure::new(Exit::Usage, InvalidUri(e)))?;
    connection.keep(&client);
    Ok((client, default))
}

/// The database named by `--uri`/`MONGODB_URI` and `--database`, or the URI's default
/// database; `offline` commands need neither.
async fn database(
    uri: Option<String>,
    database: Option<String>,
    offline: bool,
    connection: &Connection,
) -> Result<Database, Failure> {
    let (client, default) = client(uri, offline, connection).await?;
    let name = match database.or(default) {
        Some(name) => name,
        None if offline => "migrate".to_owned(),
        None => {
            return Err(Failure::usage(
                "no database: pass `--database` or `--databases`, or name one in the \
                 connection string (`mongodb://host/<database>`)",
            ))
        }
    };
    Ok(client.database(&name))
}

/// The batch checkpoints kept in `db`, each with why it is left over, if it is.
async fn checkpoints(
    db: &Database,
    status: &Status,
    history: &[HistoryEntry<Document>],
) -> Result<Vec<(StoredCheckpoint, Option<LeftOver>)>, Error> {
    let stored = stored_checkpoints(db)
        .await
        .map_err(|e| Error::store("reading the batch checkpoints", e))?;
    Ok(stored
        .into_iter()
        .map(|checkpoint| {
            let left_over = checkpoint.left_over(history, status);
            (checkpoint, left_over)
        })
        .collect())
}

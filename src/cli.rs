//! An application's own `migrate` command: status, plan, run, undo, unlock and more, over
//! the change units linked into the binary (feature `cli`).
//!
//! The application writes the binary in a few lines, building its runner the way the service
//! does (dependencies, system versions, service identifier); the closure receives the database
//! chosen on the command line:
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
//! | `run [--up-to ID] [--dry-run]` | applies the pending units ([`Runner::run`], [`Runner::run_up_to`]); `--dry-run` prints the plan instead ([`Runner::plan`], [`Runner::plan_up_to`]) |
//! | `status [--check]` | every unit's state ([`Runner::status`]); `--check` exits with 4 unless the database is up to date |
//! | `plan` | what `run` would do, after every check `run` makes, without the lock or a write |
//! | `history [--limit N]` | the history entries, newest first ([`Runner::history`]) |
//! | `undo (--to ID \| --all) [--yes]` | undoes applied units, newest first ([`Runner::undo_to`], [`Runner::undo_all`]) |
//! | `unlock [--force]` | releases the lock of a runner that is gone ([`Runner::unlock`]) |
//! | `validate` | checks the units without a database ([`Runner::validate`]) |
//! | `accept-checksums` | records the new checksum of units edited since they ran ([`Runner::accept_checksums`]) |
//!
//! Global options: `--uri` (default: the `MONGODB_URI` environment variable), `--database`
//! (default: the database named in the URI), `--profile NAME` (repeatable; replaces the
//! runner's active profiles), `--json`. `validate` reads no database and needs neither.
//! Without a server selection timeout in the URI, the command waits 10 s for a server.
//!
//! `undo` changes data, so without `--yes` it lists what it would undo and asks on a
//! terminal; when standard input is not a terminal it refuses with exit code 2.
//!
//! While `run` and `undo` work, each unit gets a live progress line on a terminal and a
//! plain line once it is done otherwise. The runner's warnings (an applied unit edited since
//! it ran, a transactional unit whose writes escape its transaction) go to standard error as
//! `warning:` lines, unless the application installed a `tracing` subscriber of its own.
//! Colour is used only on a terminal, and never when
//! `NO_COLOR` is set. Errors go to standard error with their causes:
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
//!                "pending": bool, "run_always": bool, "out_of_order": bool,
//!                "drift": { "recorded", "current" } | null } ],
//!   "unknown": [ { "id", "author", "class", "state", "at" } ] }
//! ```
//!
//! where `skip` is `{ "reason": "already_executed" | "profile" | "system_version" |
//! "after_target", "version": string (system_version only), "target": string (after_target
//! only) }`, and `state` of an unknown entry is the stored history state (`"EXECUTED"`, ...).
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
//! `unlock`:
//!
//! ```text
//! { "command": "unlock", "lock": "free" | "released" | "held",
//!   "owner": string | null, "expires_at": time | null,
//!   "reason": "expired" | "owned_by_this_process" | "forced" | null }
//! ```
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
//!   "error": { "kind": "failed" | "usage" | "locked" | "checksum_drift",
//!              "message": string, "causes": [ string ] } }
//! ```

mod human;
mod json;
mod warnings;

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand};
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use crate::{Error, Outcome, Report, RunStatus, Runner, UnitState, Unlock};

/// Runs the command line of `std::env::args_os()` against the runner `configure` builds
/// for the chosen database, and returns the exit code.
pub async fn main<F>(configure: F) -> ExitCode
where
    F: FnOnce(&Database) -> Runner,
{
    main_from(std::env::args_os(), configure).await
}

/// Like [`main`], with the command line given: `args` starts with the program name.
pub async fn main_from<I, T, F>(args: I, configure: F) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
    F: FnOnce(&Database) -> Runner,
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
    let code = match execute(cli, configure, &output).await {
        Ok(code) => code,
        Err(failure) => {
            output.error(&failure);
            if output.json {
                json::print(&json::failure(name, &failure));
            }
            failure.exit
        }
    };
    ExitCode::from(code as u8)
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
    /// An active profile; repeat it for several [default: the runner's profiles]
    #[arg(long = "profile", global = true, value_name = "NAME", help_heading = GLOBAL)]
    profiles: Vec<String>,
    /// Print one JSON object on standard output instead of tables
    #[arg(long, global = true, help_heading = GLOBAL)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the pending change units, in order, under the lock
    Run {
        /// Stop after this unit: units ordered after it stay pending
        #[arg(long, value_name = "ID")]
        up_to: Option<String>,
        /// Print what would run, after every check a run makes, and change nothing
        #[arg(long)]
        dry_run: bool,
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
}

/// The process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Ok = 0,
    Failed = 1,
    Usage = 2,
    Locked = 3,
    NotUpToDate = 4,
}

/// Why a command did not succeed: the error and the exit code it maps to.
#[derive(Debug)]
struct Failure {
    exit: Exit,
    error: Box<dyn StdError + Send + Sync>,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            exit: Exit::Usage,
            error: Box::new(Message(message.into())),
        }
    }
}

impl Failure {
    /// The error's causes, outermost first.
    fn causes(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        std::iter::successors(self.error.source(), |e| (*e).source())
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let exit = match &error {
            Error::Locked { .. } => Exit::Locked,
            Error::ChecksumDrift { .. } => Exit::NotUpToDate,
            Error::UnknownChangeUnit { .. } => Exit::Usage,
            _ => Exit::Failed,
        };
        Failure {
            exit,
            error: Box::new(error),
        }
    }
}

/// A problem the command line itself finds: a missing URI or database, an unconfirmed undo.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// An invalid `--uri`.
#[derive(Debug)]
struct InvalidUri(mongodb::error::Error);

impl fmt::Display for InvalidUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MongoDB connection string")
    }
}

impl StdError for InvalidUri {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

async fn execute<F>(cli: Cli, configure: F, output: &human::Output) -> Result<Exit, Failure>
where
    F: FnOnce(&Database) -> Runner,
{
    let offline = matches!(cli.command, Command::Validate);
    let db = database(cli.uri, cli.database, offline).await?;
    let mut runner = configure(&db);
    if !cli.profiles.is_empty() {
        runner = runner.profiles(cli.profiles);
    }
    match cli.command {
        Command::Run { up_to, dry_run } if dry_run => {
            let plan = match &up_to {
                Some(id) => runner.plan_up_to(id).await?,
                None => runner.plan().await?,
            };
            output.plan(&plan, "run");
            Ok(Exit::Ok)
        }
        Command::Run { up_to, .. } => {
            let progress = output.progress(human::Verb::Apply);
            let runner = runner.on_unit(progress.listener());
            let result = match up_to {
                Some(id) => runner.run_up_to(id).await,
                None => runner.run().await,
            };
            progress.finish();
            let report = result?;
            output.report(&report, "run");
            Ok(report_exit(&report))
        }
        Command::Status { check } => {
            let status = runner.status().await?;
            output.status(&status, check);
            Ok(if check && !status.is_up_to_date() {
                Exit::NotUpToDate
            } else {
                Exit::Ok
            })
        }
        Command::Plan => {
            output.plan(&runner.plan().await?, "plan");
            Ok(Exit::Ok)
        }
        Command::History { limit } => {
            let mut history = runner.history().await?;
            history.truncate(limit.unwrap_or(usize::MAX));
            output.history(&history);
            Ok(Exit::Ok)
        }
        Command::Undo { to, yes, .. } => {
            if !yes {
                confirm_undo(&runner, to.as_deref(), db.name(), output).await?;
            }
            let progress = output.progress(human::Verb::Undo);
            let runner = runner.on_unit(progress.listener());
            let result = match to {
                Some(id) => runner.undo_to(id).await,
                None => runner.undo_all().await,
            };
            progress.finish();
            let report = result?;
            output.report(&report, "undo");
            Ok(report_exit(&report))
        }
        Command::Unlock { force } => {
            let unlock = runner.unlock(force).await?;
            output.unlock(&unlock);
            Ok(match unlock {
                Unlock::HeldBy { .. } => Exit::Locked,
                _ => Exit::Ok,
            })
        }
        Command::Validate => {
            let validation = runner.validate();
            output.validation(&validation);
            Ok(if validation.is_valid() {
                Exit::Ok
            } else {
                Exit::Failed
            })
        }
        Command::AcceptChecksums => {
            let accepted = runner.accept_checksums().await?;
            output.accepted(&accepted);
            Ok(Exit::Ok)
        }
    }
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

/// The database named by `--uri`/`MONGODB_URI` and `--database`, or the URI's default
/// database. Creating the client does not connect; `offline` commands need neither.
async fn database(
    uri: Option<String>,
    database: Option<String>,
    offline: bool,
) -> Result<Database, Failure> {
    let uri = uri.or_else(|| std::env::var("MONGODB_URI").ok().filter(|u| !u.is_empty()));
    let mut options = match uri {
        Some(uri) => ClientOptions::parse(&uri).await.map_err(|e| Failure {
            exit: Exit::Usage,
            error: Box::new(InvalidUri(e)),
        })?,
        None if offline => ClientOptions::default(),
        None => {
            return Err(Failure::usage(
                "no MongoDB connection string: pass `--uri` or set `MONGODB_URI`",
            ))
        }
    };
    let name = match database.or_else(|| options.default_database.clone()) {
        Some(name) => name,
        None if offline => "migrate".to_owned(),
        None => {
            return Err(Failure::usage(
                "no database: pass `--database`, or name one in the connection string \
                 (`mongodb://host/<database>`)",
            ))
        }
    };
    options
        .server_selection_timeout
        .get_or_insert(Duration::from_secs(10));
    options.app_name.get_or_insert_with(|| "migrate".to_owned());
    let client = Client::with_options(options).map_err(|e| Failure {
        exit: Exit::Usage,
        error: Box::new(InvalidUri(e)),
    })?;
    Ok(client.database(&name))
}

/// Lists what `undo` would undo and asks on the terminal; refuses when standard input is
/// not one.
async fn confirm_undo(
    runner: &Runner,
    to: Option<&str>,
    database: &str,
    output: &human::Output,
) -> Result<(), Failure> {
    if !io::stdin().is_terminal() {
        return Err(Failure::usage(
            "`undo` changes the database and asks for confirmation, but standard input is \
             not a terminal; pass `--yes` to undo without asking",
        ));
    }
    let status = runner.status().await?;
    let start = match to {
        Some(id) => status
            .units
            .iter()
            .position(|u| u.id == id)
            .ok_or_else(|| Error::UnknownChangeUnit { id: id.to_owned() })?,
        None => 0,
    };
    let targets: Vec<_> = status.units[start..]
        .iter()
        .rev()
        .filter(|u| matches!(u.state, UnitState::Executed { .. }))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let mut stderr = io::stderr().lock();
    let _ = writeln!(
        stderr,
        "{} will be undone in `{database}`, newest first:",
        output.plural(targets.len(), "change unit")
    );
    for unit in &targets {
        let _ = writeln!(stderr, "  {}  {}", unit.order, unit.id);
    }
    let _ = write!(stderr, "undo them? [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure {
            exit: Exit::Failed,
            error: Box::new(e),
        })?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Failure {
            exit: Exit::Failed,
            error: Box::new(Message("undo cancelled; nothing was undone".into())),
        })
    }
}

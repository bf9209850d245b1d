//! The `migrate-chaos` binary as the harness drives it: service processes it can kill, pause
//! and resume, and the one-shot tools (check, fault, drop) around a trial.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub(super) use crate::process::{brief, Exit, Service};

/// How long one service process may run before it counts as hung. Long enough for the
/// runner's default three-minute wait for the lock.
pub(super) const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// How long a check, a fault configuration or a drop may take: a drop waits for an orphaned
/// transaction to be dropped by the server (60 s on SecantusDB).
const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

/// What a trial requires of the database afterwards (`migrate-chaos check <expectation>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expectation {
    /// Every unit applied exactly once, one `EXECUTED` row each, the lock released.
    Exact,
    /// Every unit applied at least once, one `EXECUTED` row each, the lock released.
    AtLeastOnce,
    /// The history tells the truth about what was applied, the lock released.
    Consistent,
}

impl Expectation {
    fn arg(self) -> &'static str {
        match self {
            Expectation::Exact => "exact",
            Expectation::AtLeastOnce => "at-least-once",
            Expectation::Consistent => "consistent",
        }
    }
}

/// The chaos binary pointed at one server and one database.
pub(super) struct Tool<'a> {
    pub(super) bin: &'a Path,
    pub(super) uri: &'a str,
    pub(super) db: String,
}

impl Tool<'_> {
    fn command(&self) -> Command {
        let mut command = Command::new(self.bin);
        command
            .env("MONGODB_URI", self.uri)
            .env("CHAOS_DB", &self.db)
            .stdin(Stdio::null());
        command
    }

    /// Runs a one-shot subcommand; its stdout, or why it failed.
    fn tool(&self, args: &[&str]) -> Result<String, String> {
        let mut child = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {:?}: {e}", self.bin))?;
        let deadline = Instant::now() + TOOL_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`migrate-chaos {}` did not finish within {} s",
                    args.join(" "),
                    TOOL_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        // The tools print a few lines at most, so their pipes never filled up.
        let output = child
            .wait_with_output()
            .map_err(|e| format!("reading the output of {:?}: {e}", self.bin))?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        // `check` prints its violations on stdout; errors go to stderr.
        if output.status.code() == Some(1) && !stdout.is_empty() {
            return Err(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let error: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: ") || l.starts_with("  caused by: "))
            .collect();
        Err(if error.is_empty() {
            format!("{:?} {args:?}: {}", self.bin, output.status)
        } else {
            brief(&error.join(" "))
        })
    }

    /// `replica-set` or `standalone`.
    pub(super) fn topology(&self) -> Result<String, String> {
        self.tool(&["topology"])
    }

    /// Checks the database; the violations, one a line, when it fails.
    pub(super) fn check(&self, expectation: Expectation) -> Result<(), String> {
        self.tool(&["check", expectation.arg()])
            .map(drop)
            .map_err(|violations| violations.lines().collect::<Vec<_>>().join("; "))
    }

    /// Configures the `failCommand` fail point for the service's `appName`.
    pub(super) fn fault(&self, args: &[String]) -> Result<(), String> {
        let args: Vec<&str> = std::iter::once("fault")
            .chain(args.iter().map(String::as_str))
            .collect();
        self.tool(&args).map(drop)
    }

    pub(super) fn fault_off(&self) -> Result<(), String> {
        self.tool(&["fault", "off"]).map(drop)
    }

    /// Drops the trial's database (best effort: a leftover only costs the server memory).
    pub(super) fn drop_database(&self) {
        if let Err(e) = self.tool(&["drop"]) {
            eprintln!("xtask: dropping {}: {e}", self.db);
        }
    }

    /// Starts one service instance (`migrate-chaos run`) with `env` on top of the defaults.
    pub(super) fn start(&self, env: &[(&str, String)]) -> Result<Service, String> {
        self.spawn("run", env)
    }

    /// Starts `migrate-chaos reap`, which ends the server's expired transactions as mongod's
    /// periodic job would (see `migrate-chaos`'s `reap.rs`), until it is dropped.
    pub(super) fn start_reaper(&self) -> Result<Service, String> {
        self.spawn("reap", &[])
    }

    fn spawn(&self, subcommand: &str, env: &[(&str, String)]) -> Result<Service, String> {
        let mut command = self.command();
        command
            .arg(subcommand)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        Service::spawn(&mut command).map_err(|e| format!("starting {:?}: {e}", self.bin))
    }
}

/// What the chaos scenarios read in a service's output.
impl Exit {
    /// Whether the printed error says the lock was lost.
    pub(super) fn lost_the_lock(&self) -> bool {
        self.lines().iter().any(|l| {
            let l = l.to_lowercase();
            l.starts_with("error: ") && l.contains("lock") && l.contains("lost")
        })
    }

    /// The commands the server failed (or answered with a write concern error), as
    /// `update on mongockChangeLog`.
    pub(super) fn failed_commands(&self) -> Vec<&str> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("chaos: command failed: "))
            .map(|l| l.split(": ").next().unwrap_or(l))
            .collect()
    }
}

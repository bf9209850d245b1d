//! The `migrate-chaos` binary as the harness drives it: service processes it can kill, pause
//! and resume, and the one-shot tools (check, fault, drop) around a trial.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {:?}: {e}", self.bin))?;
        let log = Arc::new(Log::default());
        let readers = vec![
            read_lines(child.stdout.take().expect("piped"), Arc::clone(&log)),
            read_lines(child.stderr.take().expect("piped"), Arc::clone(&log)),
        ];
        Ok(Service {
            child,
            log,
            readers,
            started: Instant::now(),
        })
    }
}

/// Everything a service printed, shared with the threads that read its pipes.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

fn read_lines(pipe: impl Read + Send + 'static, log: Arc<Log>) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            log.lines.lock().unwrap().push(line);
            log.grew.notify_all();
        }
    })
}

/// A running service instance; killed (SIGKILL) if dropped while still running.
pub(super) struct Service {
    child: Child,
    log: Arc<Log>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Service {
    /// Waits until the service prints `line` (`chaos: chaos-03 wrote`); `false` after
    /// `timeout`.
    pub(super) fn wait_for(&self, line: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if lines.iter().any(|l| l == line) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            lines = self
                .log
                .grew
                .wait_timeout(lines, (deadline - now).min(Duration::from_millis(100)))
                .unwrap()
                .0;
        }
    }

    /// Whether the process has not exited yet.
    pub(super) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How long ago the process was started.
    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// `kill -9`. Returns whether the process was still running.
    pub(super) fn kill9(&mut self) -> bool {
        let running = self.is_running();
        let _ = self.child.kill();
        running
    }

    /// SIGSTOP.
    pub(super) fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub(super) fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub(super) fn finish(mut self, timeout: Duration) -> Exit {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Exit {
            status,
            log: std::mem::take(&mut *self.log.lines.lock().unwrap()),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How a service process ended.
pub(super) struct Exit {
    /// `None` when it had to be killed after the timeout.
    status: Option<ExitStatus>,
    log: Vec<String>,
    pub(super) elapsed: Duration,
}

impl Exit {
    pub(super) fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Whether it died of SIGKILL (sent by the harness).
    pub(super) fn killed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal()) == Some(9)
    }

    /// Why it did not succeed, in one line: the error it printed, or how it ended.
    pub(super) fn failure(&self) -> String {
        let Some(status) = self.status else {
            return format!("hung: still running after {}s", self.elapsed.as_secs());
        };
        let Some(error) = self.log.iter().find_map(|l| l.strip_prefix("error: ")) else {
            return format!("exited with {status} and no error message");
        };
        let mut message = without_raw_replies(error);
        for cause in self
            .log
            .iter()
            .filter_map(|l| l.strip_prefix("  caused by: "))
        {
            let cause = without_raw_replies(cause);
            if !message.contains(&cause) {
                message = format!("{message}: {cause}");
            }
        }
        brief(&message)
    }

    /// Everything it printed, stdout and stderr interleaved as read.
    pub(super) fn lines(&self) -> &[String] {
        &self.log
    }

    /// Whether the printed error says the lock was lost.
    pub(super) fn lost_the_lock(&self) -> bool {
        self.log.iter().any(|l| {
            let l = l.to_lowercase();
            l.starts_with("error: ") && l.contains("lock") && l.contains("lost")
        })
    }

    /// The commands the server failed (or answered with a write concern error), as
    /// `update on mongockChangeLog`.
    pub(super) fn failed_commands(&self) -> Vec<&str> {
        self.log
            .iter()
            .filter_map(|l| l.strip_prefix("chaos: command failed: "))
            .map(|l| l.split(": ").next().unwrap_or(l))
            .collect()
    }
}

/// `text` without the raw server replies the driver's errors print as hex.
fn without_raw_replies(text: &str) -> String {
    const RAW: &str = ", server response: Some(RawDocumentBuf {";
    let mut text = text.to_owned();
    while let Some(start) = text.find(RAW) {
        let end = text[start..]
            .find("})")
            .map_or(text.len(), |i| start + i + "})".len());
        text.replace_range(start..end, "");
    }
    text
}

/// The first 240 characters of `text`.
pub(super) fn brief(text: &str) -> String {
    const MAX: usize = 240;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX).collect();
    out.push('…');
    out
}

//! Child processes whose output is read line by line as it comes: services the harnesses
//! start, wait for, kill, pause and resume.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Everything a service printed, shared with the threads that read its pipes.
#[derive(Default)]
struct Log {
    /// Each line with the moment it was read.
    lines: Mutex<Vec<(Instant, String)>>,
    grew: Condvar,
}

fn read_lines(pipe: impl Read + Send + 'static, log: Arc<Log>) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            log.lines.lock().unwrap().push((Instant::now(), line));
            log.grew.notify_all();
        }
    })
}

/// A running service instance; killed (SIGKILL) if dropped while still running.
pub(crate) struct Service {
    child: Child,
    log: Arc<Log>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Service {
    /// Starts `command` with its stdout and stderr read line by line.
    pub(crate) fn spawn(command: &mut Command) -> Result<Service, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
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

    /// Waits until the service prints `line` (`chaos: chaos-03 wrote`); `false` after
    /// `timeout`.
    pub(crate) fn wait_for(&self, line: &str, timeout: Duration) -> bool {
        self.wait_until(|l| l == line, timeout)
    }

    /// Waits until the service prints a line that satisfies `is`; `false` after `timeout`.
    pub(crate) fn wait_until(&self, is: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if lines.iter().any(|(_, l)| is(l)) {
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
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How long ago the process was started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// `kill -9`. Returns whether the process was still running.
    pub(crate) fn kill9(&mut self) -> bool {
        let running = self.is_running();
        let _ = self.child.kill();
        running
    }

    /// SIGSTOP.
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub(crate) fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub(crate) fn finish(mut self, timeout: Duration) -> Exit {
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
        let (times, log) = std::mem::take(&mut *self.log.lines.lock().unwrap())
            .into_iter()
            .unzip();
        Exit {
            status,
            log,
            times,
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
pub(crate) struct Exit {
    /// `None` when it had to be killed after the timeout.
    status: Option<ExitStatus>,
    log: Vec<String>,
    /// When each line of `log` was read.
    times: Vec<Instant>,
    pub(crate) elapsed: Duration,
}

impl Exit {
    pub(crate) fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Whether it died of SIGKILL (sent by the harness).
    pub(crate) fn killed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal()) == Some(9)
    }

    /// Why it did not succeed, in one line: the error it printed, or how it ended.
    pub(crate) fn failure(&self) -> String {
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
    pub(crate) fn lines(&self) -> &[String] {
        &self.log
    }

    /// When it printed the first line that satisfies `is`.
    pub(crate) fn printed_at(&self, is: impl Fn(&str) -> bool) -> Option<Instant> {
        self.log.iter().position(|l| is(l)).map(|i| self.times[i])
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
pub(crate) fn brief(text: &str) -> String {
    const MAX: usize = 240;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX).collect();
    out.push('…');
    out
}

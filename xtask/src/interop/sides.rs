//! The two services and how the scenarios start them: the Rust binary `migrate-interop` and
//! the Java Mongock runner, built once, run as processes with `INTEROP_*` settings.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::process::{Exit, Service};
use crate::server::workspace_root;
use crate::{cargo, run, Result};

use super::state::State;

/// How long one service process may run: the lock scenarios wait for a lease or two.
pub(super) const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Which implementation a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Java,
    Rust,
}

impl Side {
    pub(super) fn name(self) -> &'static str {
        match self {
            Side::Java => "java",
            Side::Rust => "rust",
        }
    }

    pub(super) fn other(self) -> Side {
        match self {
            Side::Java => Side::Rust,
            Side::Rust => Side::Java,
        }
    }

    /// Whether a line of this side's output says it holds the lock (Mongock logs each
    /// acquisition; the Rust service prints one line when its run takes the lock).
    pub(super) fn took_lock(self, line: &str) -> bool {
        match self {
            Side::Java => line.contains("Mongock acquired the lock"),
            Side::Rust => line == "interop: lock held",
        }
    }
}

pub(super) fn logs_dir() -> PathBuf {
    target_dir().join("interop").join("logs")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Both services, built.
pub(super) struct Toolchain {
    rust: PathBuf,
    java: PathBuf,
    java_classpath: String,
}

impl Toolchain {
    /// Checks that Java and Maven are there, then builds both services.
    pub(super) fn build() -> Result<Self> {
        let java = find("java", "-version", "Java 17 or newer")?;
        let maven = find("mvn", "--version", "Maven 3.8 or newer")?;
        run(
            "building the Rust interop service (migrate-interop)",
            cargo().args(["build", "--quiet", "-p", "migrate-interop"]),
        )?;
        let rust = target_dir().join("debug").join("migrate-interop");
        if !rust.exists() {
            return Err(format!("built migrate-interop but {rust:?} is missing"));
        }
        let java_target = target_dir().join("interop").join("java");
        let project = workspace_root().join("tests").join("interop").join("java");
        // The first run resolves Mongock and the driver from Maven Central into the local
        // repository, later runs need no network. Maven's output is shown only if it fails.
        eprintln!("xtask: building the Java interop service (Mongock 5.5.1, mvn -q package)");
        let built = Command::new(&maven)
            .current_dir(&project)
            .args(["-q", "-B", "package"])
            .arg(format!(
                "-Dmaven.repo.local={}",
                target_dir().join("interop").join("m2").display()
            ))
            .arg(format!("-Dinterop.target={}", java_target.display()))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("starting {maven:?}: {e}"))?;
        if !built.status.success() {
            return Err(format!(
                "building the Java interop service: mvn package: {}\n{}{}",
                built.status,
                String::from_utf8_lossy(&built.stdout),
                String::from_utf8_lossy(&built.stderr)
            ));
        }
        let classpath = format!(
            "{}:{}",
            java_target.join("classes").display(),
            java_target.join("lib").join("*").display()
        );
        fs::create_dir_all(logs_dir()).map_err(|e| format!("creating {:?}: {e}", logs_dir()))?;
        Ok(Toolchain {
            rust,
            java,
            java_classpath: classpath,
        })
    }
}

/// `name` on `PATH`, checked by running it with `probe`; an error naming what is needed
/// when it is missing.
fn find(name: &str, probe: &str, needed: &str) -> Result<PathBuf> {
    let works = Command::new(name)
        .arg(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        Ok(PathBuf::from(name))
    } else {
        Err(format!(
            "`cargo xtask interop` needs {needed} on PATH: `{name} {probe}` did not run. \
             Install a JDK and Maven (on Debian and Ubuntu: `apt-get install openjdk-17-jdk-headless \
             maven`); `cargo xtask test` does not need them"
        ))
    }
}

/// The services pointed at one server.
pub(super) struct Sides<'a> {
    toolchain: &'a Toolchain,
    uri: &'a str,
    transactions: bool,
}

/// Numbers the databases and log files of a `cargo xtask interop` run.
static SEQUENCE: AtomicUsize = AtomicUsize::new(0);

impl<'a> Sides<'a> {
    pub(super) fn new(toolchain: &'a Toolchain, uri: &'a str) -> Result<Self> {
        let mut sides = Sides {
            toolchain,
            uri,
            transactions: false,
        };
        let topology = sides.probe("admin", "topology")?;
        sides.transactions = match topology.trim() {
            "replica-set" => true,
            "standalone" => false,
            other => return Err(format!("`migrate-interop topology` printed {other:?}")),
        };
        Ok(sides)
    }

    /// `replica-set` or `standalone`.
    pub(super) fn mode_name(&self) -> &'static str {
        if self.transactions {
            "replica-set"
        } else {
            "standalone"
        }
    }

    /// Whether the server runs transactions.
    pub(super) fn transactions(&self) -> bool {
        self.transactions
    }

    /// A database name no other scenario run uses.
    pub(super) fn fresh_database(&self, scenario: &str) -> String {
        format!(
            "interop_{}_{}",
            scenario.replace('-', "_"),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A run of `side` with `units` on `db`, to be configured further and started.
    pub(super) fn run(&self, side: Side, db: &str, units: &str) -> Run<'_> {
        let mut env = vec![
            ("INTEROP_URI", self.uri.to_owned()),
            ("INTEROP_DB", db.to_owned()),
            ("INTEROP_UNITS", units.to_owned()),
        ];
        if side == Side::Java {
            // Mongock does not detect a server without transactions.
            env.push(("INTEROP_TRANSACTIONAL", self.transactions.to_string()));
        }
        Run {
            sides: self,
            side,
            db: db.to_owned(),
            env,
        }
    }

    /// The database as `migrate-interop state` reads it.
    pub(super) fn state(&self, db: &str) -> Result<State> {
        State::parse(&self.probe(db, "state")?)
    }

    /// Writes a mongobee-shaped history into `dbchangelog` (`migrate-interop seed-legacy`).
    pub(super) fn seed_legacy(&self, db: &str) -> Result {
        self.probe(db, "seed-legacy").map(drop)
    }

    /// Runs a `migrate-interop` subcommand and returns its stdout.
    fn probe(&self, db: &str, subcommand: &str) -> Result<String> {
        let output = Command::new(&self.toolchain.rust)
            .arg(subcommand)
            .env("INTEROP_URI", self.uri)
            .env("INTEROP_DB", db)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("starting {:?}: {e}", self.toolchain.rust))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "`migrate-interop {subcommand}` on {db}: {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

/// One service process to start.
pub(super) struct Run<'a> {
    sides: &'a Sides<'a>,
    side: Side,
    db: String,
    env: Vec<(&'static str, String)>,
}

impl Run<'_> {
    pub(super) fn env(mut self, name: &'static str, value: impl ToString) -> Self {
        self.env.push((name, value.to_string()));
        self
    }

    pub(super) fn start(self) -> Result<Process> {
        let toolchain = self.sides.toolchain;
        let mut command = match self.side {
            Side::Rust => {
                let mut command = Command::new(&toolchain.rust);
                command.arg("run");
                command
            }
            Side::Java => {
                let mut command = Command::new(&toolchain.java);
                command
                    .arg("-cp")
                    .arg(&toolchain.java_classpath)
                    .arg("io.migrate.interop.Main");
                command
            }
        };
        command.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        let service = Service::spawn(&mut command)
            .map_err(|e| format!("starting the {} service: {e}", self.side.name()))?;
        let log = logs_dir().join(format!(
            "{}-{:03}-{}.log",
            self.db,
            SEQUENCE.fetch_add(1, Ordering::Relaxed),
            self.side.name()
        ));
        Ok(Process {
            side: self.side,
            service,
            log,
            env: self.env,
        })
    }

    /// Starts the process and waits for it to exit.
    pub(super) fn finish(self) -> Result<Finished> {
        self.start().map(|p| p.finish())
    }
}

/// A started service process.
pub(super) struct Process {
    side: Side,
    service: Service,
    log: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Process {
    /// Waits until it prints a line containing `text`; an error after `timeout`.
    pub(super) fn wait_for(&self, text: &str, timeout: Duration) -> Result {
        if self.service.wait_until(|l| l.contains(text), timeout) {
            Ok(())
        } else {
            Err(format!(
                "the {} service did not print `{text}` within {} s",
                self.side.name(),
                timeout.as_secs()
            ))
        }
    }

    pub(super) fn is_running(&mut self) -> bool {
        self.service.is_running()
    }

    /// SIGKILL, then waits for it.
    pub(super) fn kill(mut self) -> Finished {
        self.service.kill9();
        self.finish()
    }

    pub(super) fn finish(self) -> Finished {
        let exit = self.service.finish(RUN_TIMEOUT);
        let mut text: String = self.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        text.push('\n');
        for line in exit.lines() {
            text.push_str(line);
            text.push('\n');
        }
        if let Err(e) = fs::write(&self.log, text) {
            eprintln!("xtask: writing {:?}: {e}", self.log);
        }
        Finished {
            side: self.side,
            exit,
            log: self.log,
        }
    }
}

/// A service process that exited.
pub(super) struct Finished {
    pub(super) side: Side,
    pub(super) exit: Exit,
    log: PathBuf,
}

impl Finished {
    /// Ok when it exited 0, else why not, with where its output is.
    pub(super) fn succeeded(&self) -> Result {
        if self.exit.succeeded() {
            Ok(())
        } else {
            Err(format!(
                "the {} service failed: {} (output in {})",
                self.side.name(),
                self.exit.failure(),
                self.log_name()
            ))
        }
    }

    /// Ok when it exited non-zero with an error that contains `expected`.
    pub(super) fn failed_with(&self, expected: &str) -> Result {
        if self.exit.succeeded() {
            return Err(format!(
                "the {} service succeeded, expected it to fail with `{expected}` (output in {})",
                self.side.name(),
                self.log_name()
            ));
        }
        if self.exit.lines().iter().any(|l| l.contains(expected)) {
            Ok(())
        } else {
            Err(format!(
                "the {} service failed without saying `{expected}`: {} (output in {})",
                self.side.name(),
                self.exit.failure(),
                self.log_name()
            ))
        }
    }

    /// Whether it printed a line containing `text`.
    pub(super) fn printed(&self, text: &str) -> bool {
        self.exit.lines().iter().any(|l| l.contains(text))
    }

    /// The step ids it applied, from its `interop: <step> applied` lines.
    pub(super) fn applied(&self) -> Vec<String> {
        self.exit
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix("interop: "))
            .filter_map(|l| l.strip_suffix(" applied"))
            .map(str::to_owned)
            .collect()
    }

    pub(super) fn log_name(&self) -> String {
        self.log
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

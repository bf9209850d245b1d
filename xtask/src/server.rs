//! Installing, starting and stopping the test database (SecantusDB).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{run, signals, Result};

/// The pinned release of the Python build.
pub(crate) const SECANTUS_VERSION: &str = "0.7.0b3";
/// The pinned release of the Rust build (crate `secantus-mdb`).
pub(crate) const SECANTUS_RS_VERSION: &str = "0.5.3-beta.196";
/// How long a server may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether the server advertises a replica set (transactions) or runs standalone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    ReplicaSet,
    Standalone,
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn state_dir() -> PathBuf {
    workspace_root().join("target").join("secantus")
}

/// Which build of the test database to install and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// `secantusd-py`, from PyPI into a virtualenv: quick to install. The default.
    Python,
    /// `secantusd-rs`, built with `cargo install` (about 7 minutes once, needs `cmake`):
    /// several times faster.
    Rust,
}

impl Build {
    /// The build `SECANTUS_BUILD` names (`py` or `rs`); the Python build when it is unset.
    pub(crate) fn from_env() -> Result<Self> {
        match std::env::var("SECANTUS_BUILD") {
            Err(_) => Ok(Build::Python),
            Ok(name) => Build::parse(&name)
                .ok_or_else(|| format!("SECANTUS_BUILD is `{name}`; expected `py` or `rs`")),
        }
    }

    /// `py` or `rs`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "py" => Some(Build::Python),
            "rs" => Some(Build::Rust),
            _ => None,
        }
    }

    /// How reports name the build.
    pub(crate) fn label(self) -> String {
        match self {
            Build::Python => format!("SecantusDB {SECANTUS_VERSION} (Python build, secantusd-py)"),
            Build::Rust => format!("SecantusDB {SECANTUS_RS_VERSION} (Rust build, secantusd-rs)"),
        }
    }
}

/// Installs the build `SECANTUS_BUILD` names (see [`install_build`]).
pub(crate) fn install() -> Result<PathBuf> {
    install_build(Build::from_env()?)
}

/// Installs `build` under `target/secantus` unless it is there already (or `SECANTUSD` names
/// a binary), and returns the binary's path.
pub(crate) fn install_build(build: Build) -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("SECANTUSD") {
        return Ok(PathBuf::from(bin));
    }
    match build {
        Build::Python => install_python(),
        Build::Rust => install_rust(),
    }
}

/// `cargo install secantus-mdb` into `target/secantus/rs`.
fn install_rust() -> Result<PathBuf> {
    let root = state_dir().join("rs");
    let bin = root.join("bin").join("secantusd-rs");
    let marker = root.join(format!(".installed-{SECANTUS_RS_VERSION}"));
    if marker.exists() && bin.exists() {
        return Ok(bin);
    }
    eprintln!(
        "xtask: building the test database's Rust build (secantus-mdb {SECANTUS_RS_VERSION}) \
         into {}; this takes several minutes, once",
        root.display()
    );
    let has_cmake = Command::new("cmake")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_cmake {
        return Err(
            "the Rust build of the test database needs `cmake` to build \
                    (on Debian and Ubuntu: `sudo apt install cmake`)"
                .into(),
        );
    }
    run(
        &format!("cargo install secantus-mdb {SECANTUS_RS_VERSION}"),
        crate::cargo()
            .args(["install", "secantus-mdb", "--version", SECANTUS_RS_VERSION])
            .args(["--locked", "--ignore-rust-version", "--root"])
            .arg(&root),
    )?;
    if !bin.exists() {
        return Err(format!("secantus-mdb installed but {bin:?} is missing"));
    }
    fs::write(&marker, "").map_err(|e| format!("writing {marker:?}: {e}"))?;
    Ok(bin)
}

/// `pip install secantusdb` into `target/secantus/venv`.
fn install_python() -> Result<PathBuf> {
    let venv = state_dir().join("venv");
    let bin = venv.join("bin").join("secantusd-py");
    let marker = venv.join(format!(".installed-{SECANTUS_VERSION}"));
    if marker.exists() && interpreter_exists(&bin) {
        return Ok(bin);
    }
    eprintln!(
        "xtask: installing the test database (SecantusDB {SECANTUS_VERSION}) into {}; \
         this happens once",
        venv.display()
    );
    fs::create_dir_all(state_dir()).map_err(|e| format!("creating {:?}: {e}", state_dir()))?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .ok_or("the test database needs Python 3 (python3) to install")?;
    // `--clear`: a virtualenv copied or moved from elsewhere has scripts naming the old path.
    run(
        "creating a virtualenv for the test database",
        Command::new(python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .map_err(|e| {
        format!(
            "{e}\n(a virtualenv needs Python's `venv` module: on Debian and Ubuntu, \
             install the `python3-venv` package)"
        )
    })?;
    run(
        &format!("pip install secantusdb=={SECANTUS_VERSION}"),
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--disable-pip-version-check",
            &format!("secantusdb=={SECANTUS_VERSION}"),
        ]),
    )?;
    if !bin.exists() {
        return Err(format!("secantusdb installed but {bin:?} is missing"));
    }
    fs::write(&marker, "").map_err(|e| format!("writing {marker:?}: {e}"))?;
    Ok(bin)
}

/// Whether the interpreter named on the first line of the script `bin` exists: it does not
/// when `target/` was copied or moved from another directory.
fn interpreter_exists(bin: &Path) -> bool {
    let Ok(script) = fs::read_to_string(bin) else {
        return false;
    };
    script
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("#!"))
        .and_then(|line| line.split_whitespace().next())
        .is_some_and(|interpreter| Path::new(interpreter).exists())
}

/// A running server, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    port: u16,
    mode: Mode,
    /// The storage directory of a build that keeps its data on disk, removed with the server.
    storage: Option<PathBuf>,
}

impl Server {
    pub(crate) fn start(bin: &Path, mode: Mode) -> Result<Self> {
        let port = free_port()?;
        fs::create_dir_all(state_dir()).map_err(|e| format!("creating {:?}: {e}", state_dir()))?;
        let log_path = state_dir().join(format!("server-{port}.log"));
        let log = fs::File::create(&log_path).map_err(|e| format!("{log_path:?}: {e}"))?;
        // The Python build keeps its data in memory; the Rust build wants a directory.
        let storage = is_rust_build(bin).then(|| state_dir().join(format!("data-{port}")));
        let storage_path = match &storage {
            Some(dir) => {
                // Left over from a server that was killed: start empty.
                let _ = fs::remove_dir_all(dir);
                dir.display().to_string()
            }
            None => ":memory:".to_owned(),
        };
        let mut command = Command::new(bin);
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--storage-path", &storage_path, "--enable-test-commands"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if mode == Mode::Standalone {
            command.arg("--standalone");
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {bin:?}: {e}"))?;
        let mut server = Server {
            child,
            port,
            mode,
            storage,
        };
        server.wait_until_listening(&log_path)?;
        eprintln!(
            "xtask: test database ({mode:?}) listening on 127.0.0.1:{port}, pid {}",
            server.child.id()
        );
        Ok(server)
    }

    fn wait_until_listening(&mut self, log_path: &Path) -> Result {
        let started = Instant::now();
        loop {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            if log.contains("listening") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the test database exited ({status}) before listening:\n{}",
                    tail(&log)
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the test database did not listen within {START_TIMEOUT:?}:\n{}",
                    tail(&log)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn uri(&self) -> String {
        let mut uri = format!("mongodb://127.0.0.1:{}/", self.port);
        if self.mode == Mode::Standalone {
            uri.push_str("?directConnection=true");
        }
        uri
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Keeps the server running until a stop signal arrives (see [`signals`]), then stops
    /// it and returns the signal's name. Fails if the server exits by itself.
    pub(crate) fn run_until_signal(mut self) -> Result<&'static str> {
        loop {
            if let Some(signal) = signals::received() {
                drop(self);
                return Ok(signal);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Ctrl-C reaches the server too, which may exit before the signal is seen.
                thread::sleep(Duration::from_millis(200));
                if let Some(signal) = signals::received() {
                    drop(self);
                    return Ok(signal);
                }
                return Err(format!(
                    "the test database on port {} exited ({status})",
                    self.port
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.storage {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Server {
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            // Already exited and reaped: its pid may belong to another process by now.
            eprintln!("xtask: test database on port {} stopped", self.port);
            return;
        }
        // SIGTERM first so the server removes its temporary storage, then SIGKILL.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                eprintln!("xtask: test database on port {} stopped", self.port);
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("xtask: test database on port {} killed", self.port);
    }
}

/// Whether `bin` is the Rust build, which stores its data in a directory.
fn is_rust_build(bin: &Path) -> bool {
    bin.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("secantusd-rs"))
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

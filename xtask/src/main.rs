//! Project automation.
//!
//! - `cargo xtask test`: installs the test database if needed, starts it in replica-set and
//!   standalone mode, runs formatting, lints, the whole test suite and the docs build against
//!   it, and stops it.
//! - `cargo xtask demo`: starts a local test database (unless `MONGODB_URI` is set), runs the
//!   `client_service` example twice against it, and stops it.
//! - `cargo xtask chaos [--short] [--scenario <name>] [--trials <n>]`: the fault-injection
//!   suite (`chaos.rs`): races, SIGKILL, SIGSTOP and `failCommand` faults against a local test
//!   database in both modes; `--help` lists the scenarios.
//! - `cargo xtask interop [--scenario <name>]`: the Rust runner and Java's Mongock 5.5.1 on
//!   one database (`interop.rs`), in both modes; needs Java 17+ and Maven 3.8+.
//! - `cargo xtask bench [--quick] [--case <name>] [--units <n>] [--runs <n>]`: the benchmark
//!   (`bench.rs`): generates programs of change units and their hand-written twins on the
//!   same driver under `target/bench/`, runs them against a local test database in both
//!   modes and prints medians, ratios, commands per unit, batch-update throughput and
//!   compile costs; `--help` lists the cases.
//! - `cargo xtask server [--standalone]`: starts a test database, prints its URI and keeps it
//!   running until SIGINT (Ctrl-C), SIGTERM or SIGHUP, then stops it.

mod bench;
mod chaos;
mod interop;
mod process;
mod server;
mod signals;

use std::env;
use std::process::{Command, ExitCode};

use server::{Mode, Server};

type Result<T = (), E = String> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("demo") => demo(),
        Some("chaos") => chaos::chaos(&args[1..]),
        Some("interop") => interop::interop(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("server") => serve(args.iter().any(|a| a == "--standalone")),
        Some("install-server") => server::install().map(|bin| println!("{}", bin.display())),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 test [--quick]          fmt, clippy, every test against a local test database, docs\n  \
                 demo                    run the client_service example against a local test database\n  \
                 chaos [--short] [--help]  kill, pause and fault-inject the chaos service; print the figures\n  \
                 interop [--help]        the Rust runner and Java's Mongock 5.5.1 on one database (needs Java, Maven)\n  \
                 bench [--quick] [--help]  migrate vs the raw driver: apply, no-op start, batch update, compile cost\n  \
                 server [--standalone]   start a test database until Ctrl-C or SIGTERM\n  \
                 install-server          install the test database and print its path"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command, failing with its description when it does not succeed.
fn run(description: &str, command: &mut Command) -> Result {
    eprintln!("xtask: {description}");
    let status = command
        .status()
        .map_err(|e| format!("{description}: could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{description}: {status}"))
    }
}

/// A `cargo` command without the package variables `cargo run` set for xtask itself
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...). Build scripts that watch them, such as
/// ring's, would otherwise rerun, and the MongoDB driver above them rebuild, every time
/// `cargo xtask test` follows a plain `cargo test` or the other way round.
fn cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in env::vars_os() {
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(name, "CARGO_CRATE_NAME" | "CARGO_BIN_NAME")
        {
            command.env_remove(name);
        }
    }
    command
}

fn test(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    if !quick {
        run(
            "cargo fmt --check",
            cargo().args(["fmt", "--all", "--check"]),
        )?;
        run(
            "cargo clippy",
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    }
    let servers = test_servers()?;
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    for (name, value) in servers.env() {
        tests.env(name, value);
    }
    run("cargo test --workspace", &mut tests)?;
    drop(servers);
    // Registration must survive optimisation. The core's registration test checks it while
    // building only the core and the macros in release mode, not the MongoDB driver.
    run(
        "cargo test --release (registration)",
        cargo().args([
            "test",
            "--release",
            "-p",
            "migrate-core",
            "--test",
            "registration",
        ]),
    )?;
    if !quick {
        run(
            "cargo doc",
            cargo()
                .args(["doc", "--workspace", "--no-deps"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )?;
    }
    Ok(())
}

/// The servers a test run talks to: none when the user points at their own.
struct TestServers {
    servers: Vec<Server>,
}

impl TestServers {
    fn env(&self) -> Vec<(&'static str, String)> {
        self.servers
            .iter()
            .map(|s| match s.mode() {
                Mode::ReplicaSet => ("MIGRATE_TEST_URI", s.uri()),
                Mode::Standalone => ("MIGRATE_TEST_URI_STANDALONE", s.uri()),
            })
            .collect()
    }
}

fn test_servers() -> Result<TestServers> {
    if let Ok(uri) = env::var("MONGODB_URI") {
        eprintln!("xtask: MONGODB_URI is set; testing against {uri}");
        return Ok(TestServers {
            servers: Vec::new(),
        });
    }
    let bin = server::install()?;
    Ok(TestServers {
        servers: vec![
            Server::start(&bin, Mode::ReplicaSet)?,
            Server::start(&bin, Mode::Standalone)?,
        ],
    })
}

fn demo() -> Result {
    let own_uri = env::var("MONGODB_URI").ok();
    let bin = match &own_uri {
        Some(uri) => {
            eprintln!("xtask: MONGODB_URI is set; the demo runs against {uri}");
            None
        }
        None => Some(server::install()?),
    };
    // Before the server starts: the first build compiles the MongoDB driver and its TLS
    // stack, which takes minutes; cargo shows its progress meanwhile.
    run(
        "building the client_service example (the first build takes a few minutes)",
        cargo().args(["build", "-p", "client_service"]),
    )?;
    let server = match bin {
        Some(bin) => {
            eprintln!("xtask: starting the test database");
            Some(Server::start(&bin, Mode::ReplicaSet)?)
        }
        None => None,
    };
    let uri = match &server {
        Some(server) => server.uri(),
        None => own_uri.unwrap_or_default(),
    };
    let runs = [
        ("first run: release 1 applies its units", "1"),
        ("second run: nothing left to apply", "1"),
        (
            "third run: release 2 applies the system-version-2 unit",
            "2",
        ),
    ];
    for (title, version) in runs {
        println!("\n=== client_service, {title} ===");
        let status = cargo()
            .args(["run", "--quiet", "-p", "client_service"])
            .env("MONGODB_URI", &uri)
            .env("CLIENT_SERVICE_VERSION", version)
            .status()
            .map_err(|e| format!("running client_service: {e}"))?;
        if !status.success() {
            return Err(format!("client_service ({title}) failed: {status}"));
        }
    }
    drop(server);
    Ok(())
}

fn serve(standalone: bool) -> Result {
    let mode = if standalone {
        Mode::Standalone
    } else {
        Mode::ReplicaSet
    };
    let bin = server::install()?;
    // From here on SIGINT, SIGTERM and SIGHUP stop the server before xtask exits, instead of
    // leaving it running without its parent.
    signals::install();
    let server = Server::start(&bin, mode)?;
    println!("{}", server.uri());
    println!("stop it with Ctrl-C (or SIGTERM, SIGHUP)");
    let signal = server.run_until_signal()?;
    eprintln!("xtask: stopped on {signal}");
    Ok(())
}

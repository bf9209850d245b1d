//! `cargo xtask interop`: the Rust runner and Java's Mongock 5.5.1 on one database.
//!
//! It builds the Rust service (`tests/interop/rust`, package `migrate-interop`) and the Java
//! one (`tests/interop/java`, a Maven project running Mongock standalone), starts the test
//! database in replica-set and standalone mode (or uses `MONGODB_URI`), and runs every
//! [`Scenario`] against each server with a fresh database. Both services have change units of
//! the same ids, authors and orders, selected per run with `INTEROP_UNITS`; each unit counts
//! its applications in `interop_counters`, so a unit applied twice, or by the wrong side,
//! shows. After every step a scenario reads the database back (`migrate-interop state`) and
//! checks the data, the history rows and the lock document.
//!
//! It prints one line per scenario and mode, `interop <scenario>/<mode>: ok (<n> s)`, or the
//! reasons it failed, and exits non-zero unless every scenario passed. The output of every
//! process it started is kept in `target/interop/logs`. Java 17 and Maven 3.8 or newer must be
//! on `PATH`; Maven resolves the pinned artifacts into `target/interop/m2` on the first run.

mod scenario;
mod sides;
mod state;

use std::env;
use std::time::Instant;

use crate::server::{self, Mode, Server};
use crate::Result;

use scenario::Scenario;
use sides::{Sides, Toolchain};

fn usage() -> String {
    let mut text = String::from(
        "usage: cargo xtask interop [--scenario <name>]...\n\n\
         Runs the Rust runner and Java's Mongock 5.5.1 against one database, in replica-set and\n\
         standalone mode (or against MONGODB_URI). Needs Java 17+ and Maven 3.8+ on PATH.\n\n\
         scenarios:\n",
    );
    for scenario in Scenario::ALL {
        text.push_str(&format!(
            "  {:<16} {}\n",
            scenario.name(),
            scenario.summary()
        ));
    }
    text
}

/// `cargo xtask interop ...`
pub(crate) fn interop(args: &[String]) -> Result {
    let mut scenarios = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{}", usage());
                return Ok(());
            }
            "--scenario" => {
                let name = args.next().ok_or("`--scenario` needs a value")?;
                let scenario = Scenario::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .ok_or_else(|| format!("unknown scenario `{name}`\n\n{}", usage()))?;
                scenarios.push(scenario);
            }
            other => return Err(format!("unknown option `{other}`\n\n{}", usage())),
        }
    }
    if scenarios.is_empty() {
        scenarios = Scenario::ALL.to_vec();
    }
    let started = Instant::now();
    let toolchain = Toolchain::build()?;
    let (uris, _servers) = servers()?;
    let mut failed = 0;
    let mut ran = 0;
    for uri in &uris {
        let sides = Sides::new(&toolchain, uri)?;
        for scenario in &scenarios {
            let scenario_started = Instant::now();
            let outcome = scenario.run(&sides);
            ran += 1;
            let name = format!("{}/{}", scenario.name(), sides.mode_name());
            let secs = scenario_started.elapsed().as_secs();
            match outcome {
                Ok(notes) => {
                    println!("interop {name}: ok ({secs} s)");
                    for note in notes {
                        println!("  {note}");
                    }
                }
                Err(reasons) => {
                    failed += 1;
                    println!("interop {name}: FAILED ({secs} s)");
                    for reason in reasons {
                        println!("  {reason}");
                    }
                }
            }
        }
    }
    println!(
        "interop: {} of {ran} scenario runs passed in {} s (process output in {})",
        ran - failed,
        started.elapsed().as_secs(),
        sides::logs_dir().display()
    );
    if failed == 0 {
        Ok(())
    } else {
        Err("some interop scenarios failed (see above)".into())
    }
}

/// The servers: both local test databases, or the user's `MONGODB_URI` alone.
fn servers() -> Result<(Vec<String>, Vec<Server>)> {
    if let Ok(uri) = env::var("MONGODB_URI") {
        if !uri.trim().is_empty() {
            eprintln!("xtask: MONGODB_URI is set; the interop scenarios run against {uri}");
            return Ok((vec![uri], Vec::new()));
        }
    }
    let bin = server::install()?;
    let servers = vec![
        Server::start(&bin, Mode::ReplicaSet)?,
        Server::start(&bin, Mode::Standalone)?,
    ];
    Ok((servers.iter().map(Server::uri).collect(), servers))
}

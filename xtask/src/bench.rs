//! `cargo xtask bench`: what `migrate` costs next to hand-written code on the same driver.
//!
//! It generates the benchmark programs under `target/bench/` (see [`generate`]), builds them
//! in release mode, starts the test database in replica-set and standalone mode (or uses
//! `MONGODB_URI`), and runs each case interleaved with its raw-driver twin `--runs` times,
//! each run on a fresh database. It prints the medians and their ratios, the database
//! commands per applied unit, and how a start with nothing to apply scales with the number
//! of applied units, and the throughput of a batch update over a seeded collection; then it
//! measures what the units cost to compile. Each timed run also
//! prints a progress line on stderr, so the spread of the samples can be seen.
//!
//! Nothing here asserts a timing: this is a benchmark, not a test.

mod cases;
mod generate;
mod measure;
mod report;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::{self, Build, Mode, Server};
use crate::{cargo, run, signals, Result};

use cases::Case;

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Clone)]
struct Options {
    cases: Vec<Case>,
    /// Units of the apply and compile cases.
    units: usize,
    /// Timed runs of each runtime case and of its twin.
    runs: usize,
    /// Timed builds of each compile measurement.
    compile_runs: usize,
    /// Applied units of the no-op start measurements.
    noop_units: Vec<usize>,
    /// Seeded documents of the batch case, one row each.
    batch_docs: Vec<usize>,
    /// Documents per batch of the batch case.
    batch_size: usize,
    /// Which build of the test database runs the runtime cases.
    server: Build,
}

impl Options {
    fn full() -> Self {
        Options {
            cases: Vec::new(),
            units: 1000,
            runs: 5,
            compile_runs: 1,
            noop_units: vec![10, 100, 1000, 10_000],
            // The Python test server's time per batch grows with the collection: 20,000
            // documents take about 30 s a run on 2 cores, 100,000 more than six minutes.
            batch_docs: vec![20_000],
            batch_size: 1000,
            server: Build::Python,
        }
    }

    fn quick() -> Self {
        Options {
            cases: Vec::new(),
            units: 50,
            runs: 2,
            compile_runs: 1,
            noop_units: vec![10, 50],
            batch_docs: vec![5_000],
            batch_size: 1000,
            server: Build::Python,
        }
    }
}

fn usage() -> String {
    let full = Options::full();
    let quick = Options::quick();
    let mut text = format!(
        "usage: cargo xtask bench [--quick] [--case <name>]... [--units <n>] [--runs <n>]\n\
         \x20                        [--noop-units <n,n,..>] [--compile-runs <n>]\n\
         \x20                        [--batch-docs <n,n,..>] [--batch-size <n>] [--server py|rs]\n\n\
         Generates the benchmark programs under target/bench/, builds them, starts the test\n\
         database (SECANTUSD=<path> picks the server binary, MONGODB_URI a server of your own),\n\
         runs each case interleaved with a hand-written program on the same driver, and prints\n\
         medians and ratios, database commands per applied unit, the no-op start by number\n\
         of applied units and the documents per second of a batch update.\n\n\
         options:\n  \
         --quick               a smoke run: {} units, {} runs, no-op at {}, batch of {} docs\n  \
         --case <name>         run only this case (repeatable)\n  \
         --units <n>           units of the apply and compile cases (default {})\n  \
         --runs <n>            timed runs of each runtime case and its twin (default {})\n  \
         --noop-units <list>   applied units of the no-op start (default {})\n  \
         --compile-runs <n>    timed builds of each compile measurement (default {})\n  \
         --batch-docs <list>   documents seeded for the batch case, a row each (default {})\n  \
         --batch-size <n>      documents per batch, migrate and raw alike (default {})\n  \
         --server py|rs        the test database's Python build (default) or its Rust build,\n  \
         \x20                     several times faster (built with cargo install the first\n  \
         \x20                     time: about 7 minutes, needs cmake); SECANTUS_BUILD=rs too\n\n\
         cases:\n",
        quick.units,
        quick.runs,
        list(&quick.noop_units),
        list(&quick.batch_docs),
        full.units,
        full.runs,
        list(&full.noop_units),
        full.compile_runs,
        list(&full.batch_docs),
        full.batch_size,
    );
    for case in Case::ALL {
        text.push_str(&format!("  {:<18} {}\n", case.name(), case.summary()));
    }
    text
}

fn list(values: &[usize]) -> String {
    values
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut options = if args.iter().any(|a| a == "--quick") {
        Options::quick()
    } else {
        Options::full()
    };
    options.server = Build::from_env()?;
    let positive = |flag: &str, n: &str| -> Result<usize> {
        n.parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(format!("{flag} {n}: expected a positive number"))
    };
    let positives = |flag: &str, list: &str| -> Result<Vec<usize>> {
        list.split(',').map(|n| positive(flag, n.trim())).collect()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("`{arg}` needs a value"));
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--quick" => {}
            "--case" => {
                let name = value()?;
                let case = Case::ALL
                    .into_iter()
                    .find(|c| c.name() == name)
                    .ok_or_else(|| format!("unknown case `{name}`\n\n{}", usage()))?;
                options.cases.push(case);
            }
            "--units" => options.units = positive(arg, value()?)?,
            "--runs" => options.runs = positive(arg, value()?)?,
            "--compile-runs" => options.compile_runs = positive(arg, value()?)?,
            "--noop-units" => options.noop_units = positives(arg, value()?)?,
            "--batch-docs" => options.batch_docs = positives(arg, value()?)?,
            "--batch-size" => options.batch_size = positive(arg, value()?)?,
            "--server" => {
                let name = value()?;
                options.server = Build::parse(name)
                    .ok_or_else(|| format!("--server {name}: expected `py` or `rs`"))?;
            }
            other => return Err(format!("unknown option `{other}`\n\n{}", usage())),
        }
    }
    if options.cases.is_empty() {
        options.cases = Case::ALL.to_vec();
    }
    options.noop_units.sort_unstable();
    options.noop_units.dedup();
    options.batch_docs.sort_unstable();
    options.batch_docs.dedup();
    Ok(Some(options))
}

/// `cargo xtask bench ...`
pub(crate) fn bench(args: &[String]) -> Result {
    let Some(options) = parse(args)? else {
        print!("{}", usage());
        return Ok(());
    };
    // Ctrl-C between two runs stops the servers before xtask exits.
    signals::install();
    let programs = Programs::generate(&options)?;
    let bin = match env::var("MONGODB_URI") {
        Ok(_) => None,
        Err(_) => Some(server::install_build(options.server)?),
    };
    programs.build_release()?;

    let mut results = report::Results::new(&options, server_label(options.server));
    let mut outcome = Ok(());
    if options.cases.iter().any(|c| c.needs_server()) {
        outcome = Targets::start(bin.as_deref(), &options).and_then(|targets| {
            for case in &options.cases {
                case.run_runtime(&options, &programs, &targets, &mut results)?;
            }
            Ok(())
        });
        // The servers are stopped here: the compile case runs without them.
    }
    if outcome.is_ok() && options.cases.contains(&Case::Compile) {
        outcome = cases::compile(&options, &programs, &mut results);
    }
    // What was measured is printed even when a later case failed.
    print!("{}", results.render());
    outcome
}

fn server_label(build: Build) -> String {
    if let Ok(uri) = env::var("MONGODB_URI") {
        return format!("the server at MONGODB_URI ({uri})");
    }
    match env::var("SECANTUSD") {
        Ok(bin) => format!("SecantusDB, {bin} (SECANTUSD)"),
        Err(_) => build.label(),
    }
}

/// The generated programs this run needs.
struct Programs {
    /// `units-<n>` by `n`, for the apply and no-op cases.
    units: Vec<(usize, String)>,
    /// `plain-<n>`, for the compile case.
    plain: Option<String>,
    /// `units-<n>` of the compile case.
    compile_units: Option<String>,
    /// `compile-functions-<n>`: the compile case's units written as functions.
    compile_functions: Option<String>,
    /// `units-1`, whose build builds every dependency of the crates of units.
    smallest: String,
    /// `batch`, for the batch case.
    batch: Option<String>,
}

impl Programs {
    fn generate(options: &Options) -> Result<Self> {
        eprintln!(
            "xtask: generating the benchmark programs in {:?}",
            generate::root()
        );
        generate::workspace()?;
        let mut sizes = Vec::new();
        if options.cases.iter().any(|c| c.is_apply()) {
            sizes.push(options.units);
        }
        if options.cases.contains(&Case::Noop) {
            sizes.extend(&options.noop_units);
        }
        sizes.sort_unstable();
        sizes.dedup();
        let mut units = Vec::new();
        for n in sizes {
            units.push((n, generate::units_crate("units", n)?));
        }
        let (plain, compile_units, compile_functions) = if options.cases.contains(&Case::Compile) {
            (
                Some(generate::plain_crate(options.units)?),
                Some(generate::units_crate("compile-units", options.units)?),
                Some(generate::functions_crate(options.units)?),
            )
        } else {
            (None, None, None)
        };
        Ok(Programs {
            units,
            plain,
            compile_units,
            compile_functions,
            smallest: generate::units_crate("units", 1)?,
            batch: if options.cases.contains(&Case::Batch) {
                Some(generate::batch_crate()?)
            } else {
                None
            },
        })
    }

    /// Builds the runtime programs (the raw twin, each `units-<n>` and `batch`) in release
    /// mode.
    fn build_release(&self) -> Result {
        let mut build = Self::cargo(&["build", "--release", "-p", "bench-raw"]);
        for package in self.units.iter().map(|(_, p)| p).chain(&self.batch) {
            build.args(["-p", package]);
        }
        run(
            "building the benchmark programs in release mode (the first build compiles the \
             MongoDB driver; a crate of 1,000 units takes minutes)",
            &mut build,
        )
    }

    /// A cargo command on the benchmark workspace.
    fn cargo(args: &[&str]) -> Command {
        let mut command = cargo();
        command
            .args(args)
            .arg("--manifest-path")
            .arg(generate::root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(generate::target_dir());
        command
    }

    fn binary(package: &str) -> PathBuf {
        generate::target_dir()
            .join("release")
            .join(format!("{package}{}", env::consts::EXE_SUFFIX))
    }

    fn raw() -> PathBuf {
        Self::binary("bench-raw")
    }

    fn batch() -> PathBuf {
        Self::binary("bench-batch")
    }

    fn units(&self, n: usize) -> PathBuf {
        let (_, package) = self
            .units
            .iter()
            .find(|(size, _)| *size == n)
            .expect("generated for every size the options name");
        Self::binary(package)
    }
}

/// The servers the runtime cases talk to, by mode.
struct Targets {
    uris: Vec<(Mode, String)>,
    _servers: Vec<Server>,
}

impl Targets {
    fn start(bin: Option<&Path>, options: &Options) -> Result<Self> {
        let Some(bin) = bin else {
            let uri = env::var("MONGODB_URI").unwrap_or_default();
            let mode = cases::probe(&uri)?;
            eprintln!("xtask: MONGODB_URI is set; benchmarking against {uri} ({mode:?})");
            return Ok(Targets {
                uris: vec![(mode, uri)],
                _servers: Vec::new(),
            });
        };
        let mut modes = Vec::new();
        if options
            .cases
            .iter()
            .any(|c| matches!(c, Case::ApplyReplicaSet | Case::Noop | Case::Batch))
        {
            modes.push(Mode::ReplicaSet);
        }
        if options.cases.contains(&Case::ApplyStandalone) {
            modes.push(Mode::Standalone);
        }
        let servers = modes
            .into_iter()
            .map(|mode| Server::start(bin, mode))
            .collect::<Result<Vec<_>>>()?;
        Ok(Targets {
            uris: servers.iter().map(|s| (s.mode(), s.uri())).collect(),
            _servers: servers,
        })
    }

    fn uri(&self, mode: Mode) -> Option<&str> {
        self.uris
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, uri)| uri.as_str())
    }
}

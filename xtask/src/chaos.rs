//! `cargo xtask chaos`: the fault-injection suite.
//!
//! It builds `migrate-chaos` (`tests/chaos`), a service whose six change units are
//! deliberately non-idempotent, starts the test database in replica-set and standalone mode
//! (or uses `MONGODB_URI`), and runs each [`Scenario`] against each server: processes racing,
//! killed with SIGKILL, paused with SIGSTOP past their lease, and server commands failed with
//! `failCommand`. Every trial ends with a check of the database (see `service::Expectation`).
//!
//! Each scenario prints one line per server mode, `figure <scenario>/<mode>: <passed>/<trials>`
//! (the `failpoints` scenario one per fault), followed by the reason of each failed trial.
//! The command exits non-zero unless every trial passed.

mod fault;
mod scenario;
mod service;

use std::env;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::server::{self, Mode, Server};
use crate::{cargo, run, Result};

pub(crate) use scenario::Scenario;
use service::Tool;

/// What `cargo xtask chaos` was asked to do.
struct Options {
    short: bool,
    scenarios: Vec<Scenario>,
    trials: Option<usize>,
    seed: u64,
}

fn usage() -> String {
    let mut text = String::from(
        "usage: cargo xtask chaos [--short] [--scenario <name>]... [--trials <n>] [--seed <n>]\n\n\
         Runs the fault-injection scenarios against a local test database in replica-set and\n\
         standalone mode (or against MONGODB_URI), and prints `figure <name>: <passed>/<trials>`.\n\n\
         options:\n  \
         --short             the CI configuration: fewer trials\n  \
         --scenario <name>   run only this scenario (repeatable)\n  \
         --trials <n>        trials per scenario and mode, instead of the configuration's\n  \
         --seed <n>          seed of the random kill moments, to repeat a run\n\n\
         scenarios (trials full/short):\n",
    );
    for scenario in Scenario::ALL {
        text.push_str(&format!(
            "  {:<22} ({}/{}) {}\n",
            scenario.name(),
            scenario.trials(false),
            scenario.trials(true),
            scenario.summary()
        ));
    }
    text
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut options = Options {
        short: false,
        scenarios: Vec::new(),
        trials: None,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("`{arg}` needs a value"));
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--short" => options.short = true,
            "--scenario" => {
                let name = value()?;
                let scenario = Scenario::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .ok_or_else(|| format!("unknown scenario `{name}`\n\n{}", usage()))?;
                options.scenarios.push(scenario);
            }
            "--trials" => {
                let n = value()?;
                options.trials = Some(
                    n.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or(format!("--trials {n}: expected a positive number"))?,
                );
            }
            "--seed" => {
                let n = value()?;
                options.seed = n.parse().map_err(|_| format!("--seed {n}: not a number"))?;
            }
            other => return Err(format!("unknown option `{other}`\n\n{}", usage())),
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios = Scenario::ALL.to_vec();
    }
    Ok(Some(options))
}

/// `cargo xtask chaos ...`
pub(crate) fn chaos(args: &[String]) -> Result {
    let Some(options) = parse(args)? else {
        print!("{}", usage());
        return Ok(());
    };
    let bin = build()?;
    let (targets, _local) = targets(&bin)?;
    println!(
        "chaos: seed {} (repeat with --seed {}){}",
        options.seed,
        options.seed,
        if options.short {
            ", short configuration"
        } else {
            ""
        }
    );
    let mut rng = Rng::new(options.seed);
    let mut figures = Vec::new();
    for scenario in &options.scenarios {
        let trials = options.trials.unwrap_or(scenario.trials(options.short));
        for target in &targets {
            let started = Instant::now();
            let ctx = scenario::Context::new(&bin, target, &mut rng);
            for figure in scenario.run(ctx, trials) {
                figure.print();
                figures.push(figure);
            }
            eprintln!(
                "xtask: {} on the {} server took {} s",
                scenario.name(),
                target.mode.name(),
                started.elapsed().as_secs()
            );
        }
    }
    let perfect = figures.iter().filter(|f| f.passed == f.trials).count();
    println!(
        "chaos: {perfect} of {} figures passed every trial",
        figures.len()
    );
    if perfect == figures.len() {
        Ok(())
    } else {
        Err("some chaos trials failed (see the figures above)".into())
    }
}

/// Builds the chaos service and returns the binary's path.
fn build() -> Result<PathBuf> {
    run(
        "building the chaos service (migrate-chaos)",
        cargo().args(["build", "--quiet", "-p", "migrate-chaos"]),
    )?;
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| server::workspace_root().join("target"));
    let bin = target_dir.join("debug").join("migrate-chaos");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("built migrate-chaos but {bin:?} is missing"))
    }
}

/// One server the scenarios run against.
pub(crate) struct Target {
    pub(crate) uri: String,
    pub(crate) mode: TargetMode,
}

/// Whether a server runs transactions, as its `hello` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetMode {
    ReplicaSet,
    Standalone,
}

impl TargetMode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TargetMode::ReplicaSet => "replica-set",
            TargetMode::Standalone => "standalone",
        }
    }
}

/// What keeps the local servers going, stopped when dropped: the reapers first, then the
/// servers.
struct Local {
    _reapers: Vec<service::Service>,
    _servers: Vec<Server>,
}

/// The servers: both local test databases, or the user's `MONGODB_URI` alone.
///
/// A local replica-set server gets a reaper (`migrate-chaos reap`): SecantusDB ends a
/// transaction past its 60 s lifetime only when a statement in some transaction reaches it,
/// where mongod ends it from a periodic job, so without one the open transaction of a killed
/// runner would outlive every wait. A user's server is left to itself.
fn targets(bin: &std::path::Path) -> Result<(Vec<Target>, Local)> {
    let (uris, servers) = match env::var("MONGODB_URI") {
        Ok(uri) if !uri.trim().is_empty() => {
            eprintln!("xtask: MONGODB_URI is set; the chaos scenarios run against {uri}");
            (vec![uri], Vec::new())
        }
        _ => {
            let bin = server::install()?;
            let servers = vec![
                Server::start(&bin, Mode::ReplicaSet)?,
                Server::start(&bin, Mode::Standalone)?,
            ];
            (servers.iter().map(Server::uri).collect(), servers)
        }
    };
    let mut targets = Vec::new();
    let mut reapers = Vec::new();
    for uri in uris {
        let tool = Tool {
            bin,
            uri: &uri,
            db: "chaos_probe".into(),
        };
        let mode = match tool.topology()?.as_str() {
            "replica-set" => TargetMode::ReplicaSet,
            _ => TargetMode::Standalone,
        };
        if mode == TargetMode::ReplicaSet && !servers.is_empty() {
            reapers.push(tool.start_reaper()?);
        }
        targets.push(Target { uri, mode });
    }
    Ok((
        targets,
        Local {
            _reapers: reapers,
            _servers: servers,
        },
    ))
}

/// The outcome of one scenario (or one fault) on one server.
pub(crate) struct Figure {
    pub(crate) name: String,
    pub(crate) passed: usize,
    pub(crate) trials: usize,
    /// What the harness measured or decided, printed under the figure.
    pub(crate) notes: Vec<String>,
    /// The failed trials, numbered from 1, with why.
    pub(crate) failures: Vec<(usize, String)>,
}

impl Figure {
    pub(crate) fn new(name: String) -> Self {
        Figure {
            name,
            passed: 0,
            trials: 0,
            notes: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Records trial number `trials + 1`.
    pub(crate) fn record(&mut self, outcome: Result) {
        self.trials += 1;
        match outcome {
            Ok(()) => self.passed += 1,
            Err(reason) => self.failures.push((self.trials, reason)),
        }
    }

    fn print(&self) {
        println!("figure {}: {}/{}", self.name, self.passed, self.trials);
        for note in &self.notes {
            println!("  {note}");
        }
        for (trial, reason) in &self.failures {
            println!("  trial {trial}: {reason}");
        }
    }
}

/// A small xorshift generator: the kill moments only need to be spread and repeatable.
pub(crate) struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// A number in `0..bound` (`bound > 0`).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

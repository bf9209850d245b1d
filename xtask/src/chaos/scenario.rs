//! The chaos scenarios: what each injects and what it checks.
//!
//! Every trial gets a fresh database. The service runs with a 3 s lock lease (so the lease is
//! refreshed every second) unless a scenario says otherwise. "The checks" after a trial are
//! `migrate-chaos check`:
//!
//! - on a replica set (units run in transactions): each of the six units applied exactly once
//!   (its counter is 1 and it inserted one document), exactly one `EXECUTED` execution row per
//!   unit in the history, and the lock document gone (released);
//! - on a standalone server (no transactions, rollback methods): the same history and lock
//!   checks; the units' effects exactly once where no process was killed or paused, and at
//!   least once where one was killed or paused in the middle of a unit, which is all a server
//!   without transactions allows.
//!
//! "Converges" means the runs a scenario prescribes succeed without a manual retry: the
//! process restarted once after a kill must succeed (it may wait for the dead owner's lock or
//! for its orphaned transaction to end, which the server does once the transaction's 60 s
//! lifetime has passed; on a local SecantusDB with the harness's reaper, see `chaos.rs`).

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use super::fault::{Aimed, FAULTS};
use super::service::{Exit, Expectation, Service, Tool, RUN_TIMEOUT};
use super::{Figure, Rng, Target, TargetMode};
use crate::Result;

/// The service's lock lease, in milliseconds: a refresh every second.
const LEASE_MILLIS: u64 = 3000;

/// The scenarios, in the order `cargo xtask chaos` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// `race16`: 16 service processes start together on an empty database (every unit waits
    /// 250 ms before its writes, so the winner holds the lock for a while). Checks: all 16
    /// exit 0, and the checks, effects exactly once in both modes.
    Race16,
    /// `kill9`: a service process is killed with SIGKILL at a random moment of its run (spread
    /// uniformly over 1.2 times the duration of a clean run, measured first; every unit waits
    /// 250 ms before its writes), then started again once. Checks: the restart exits 0, and
    /// the checks.
    Kill9,
    /// `kill9_in_transaction`: the long unit `chaos-03` (2 s after its writes) is killed with
    /// SIGKILL after its writes and before its commit (at a random moment in the first second
    /// of that wait), leaving an open transaction behind on a replica set; the service is then
    /// started again once, without long units. Checks: the restart exits 0 (waiting for the
    /// lock and for the orphaned transaction, ~60 s, is allowed), and the checks.
    Kill9InTransaction,
    /// `sigstop_takeover`: owner A is paused with SIGSTOP inside the long unit `chaos-03` (2 s
    /// after its writes, transaction open) and stays paused past its lease (lease + 1 s); B
    /// is started (every unit waits 300 ms before its writes) to take the expired lock over;
    /// A is resumed with SIGCONT 1 s later, while B runs. Checks: B exits 0; A exits 0, or
    /// non-zero with an error saying the lock was lost; B was still running when A resumed;
    /// the checks.
    SigstopTakeover,
    /// `failpoints`: one figure per fault, injected with `failCommand` for the service's
    /// `appName` only and aimed at one command found by a fault-free probe run (see
    /// `fault.rs`; lease 30 s, so no refresh interleaves): `commitTransaction` failing with a
    /// transient error, with an `UnknownTransactionCommitResult`, and answered with a write
    /// concern error on every attempt although the server committed (replica set only, the
    /// last turned off after the run); `chaos-03`'s history write failing with an error and
    /// with a dropped connection; the history read before and after the lock is taken
    /// failing; the lock acquisition failing with an error and with a dropped connection.
    /// Checks: the fault hit the command it aimed at; the faulted run succeeds or fails
    /// cleanly (its history tells the truth about what it applied, and the lock is released);
    /// a second run without the fault exits 0; the checks, effects exactly once in both modes.
    Failpoints,
    /// `long_units`: the long units `chaos-03` and `chaos-05` last 3.5 s after their writes,
    /// more than three lock refreshes, inside their transactions on a replica set. Checks: the
    /// first and only run exits 0, and the checks, effects exactly once.
    LongUnits,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 6] = [
        Scenario::Race16,
        Scenario::Kill9,
        Scenario::Kill9InTransaction,
        Scenario::SigstopTakeover,
        Scenario::Failpoints,
        Scenario::LongUnits,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Race16 => "race16",
            Scenario::Kill9 => "kill9",
            Scenario::Kill9InTransaction => "kill9_in_transaction",
            Scenario::SigstopTakeover => "sigstop_takeover",
            Scenario::Failpoints => "failpoints",
            Scenario::LongUnits => "long_units",
        }
    }

    /// One line for `--help`.
    pub(crate) fn summary(self) -> &'static str {
        match self {
            Scenario::Race16 => "16 processes start together on an empty database",
            Scenario::Kill9 => "kill -9 at a random moment of a run, then restart once",
            Scenario::Kill9InTransaction => {
                "kill -9 inside a long unit's open transaction, then restart once"
            }
            Scenario::SigstopTakeover => {
                "owner paused past its lease, another takes over, the owner resumes"
            }
            Scenario::Failpoints => {
                "failCommand on commit, history write, history read and lock acquisition"
            }
            Scenario::LongUnits => "transactional units lasting more than 3 lock refreshes",
        }
    }

    /// Trials per mode (per fault for `failpoints`) in the full or the short configuration.
    pub(crate) fn trials(self, short: bool) -> usize {
        let (full, short_) = match self {
            Scenario::Race16 => (5, 1),
            Scenario::Kill9 => (30, 3),
            Scenario::Kill9InTransaction => (5, 1),
            Scenario::SigstopTakeover => (10, 2),
            Scenario::Failpoints => (3, 1),
            Scenario::LongUnits => (3, 1),
        };
        if short {
            short_
        } else {
            full
        }
    }

    /// Runs `trials` trials against `ctx.target`.
    pub(crate) fn run(self, mut ctx: Context<'_>, trials: usize) -> Vec<Figure> {
        let name = format!("{}/{}", self.name(), ctx.target.mode.name());
        if self == Scenario::Failpoints {
            return ctx.failpoints(trials);
        }
        let mut figure = Figure::new(name);
        let kill_window = match self {
            Scenario::Kill9 => {
                let (window, note) = ctx.calibrate();
                figure.notes.push(note);
                window
            }
            _ => Duration::ZERO,
        };
        for trial in 1..=trials {
            let outcome = ctx.trial(self.name(), trial, |ctx, tool| match self {
                Scenario::Race16 => ctx.race16(tool),
                Scenario::Kill9 => ctx.kill9(tool, kill_window),
                Scenario::Kill9InTransaction => ctx.kill9_in_transaction(tool),
                Scenario::SigstopTakeover => ctx.sigstop_takeover(tool),
                Scenario::LongUnits => ctx.long_units(tool),
                Scenario::Failpoints => unreachable!("handled above"),
            });
            progress(&figure.name, trial, trials, &outcome);
            figure.record(outcome);
        }
        figure.notes.extend(ctx.take_tally());
        vec![figure]
    }
}

fn progress(figure: &str, trial: usize, trials: usize, outcome: &Result) {
    let verdict = if outcome.is_ok() { "passed" } else { "FAILED" };
    eprintln!("xtask: {figure} trial {trial}/{trials} {verdict}");
}

/// What a scenario runs with.
pub(crate) struct Context<'a> {
    bin: &'a std::path::Path,
    target: &'a Target,
    rng: &'a mut Rng,
    /// How often each notable outcome occurred, reported under the figure.
    tally: BTreeMap<&'static str, usize>,
}

/// The environment of the fault scenario's runs: a lease long enough that no refresh
/// interleaves with the commands a fault is aimed at, and the command list for the probe.
fn fault_env() -> Vec<(&'static str, String)> {
    vec![
        ("CHAOS_LEASE_MILLIS", "30000".to_owned()),
        ("CHAOS_TRACE_COMMANDS", "1".to_owned()),
    ]
}

/// The service's environment: the lease plus `extra`.
fn env(extra: &[(&'static str, u64)]) -> Vec<(&'static str, String)> {
    let mut env = vec![("CHAOS_LEASE_MILLIS", LEASE_MILLIS.to_string())];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// Collects every reason a trial failed.
#[derive(Default)]
struct Reasons(Vec<String>);

impl Reasons {
    fn add(&mut self, outcome: Result, context: impl FnOnce() -> String) {
        if let Err(reason) = outcome {
            self.0.push(format!("{}: {reason}", context()));
        }
    }

    fn fail(&mut self, reason: String) {
        self.0.push(reason);
    }

    fn into_result(self) -> Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0.join(" | "))
        }
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(bin: &'a std::path::Path, target: &'a Target, rng: &'a mut Rng) -> Self {
        Context {
            bin,
            target,
            rng,
            tally: BTreeMap::new(),
        }
    }

    fn count(&mut self, outcome: &'static str) {
        *self.tally.entry(outcome).or_default() += 1;
    }

    /// The tally as a note, emptied.
    fn take_tally(&mut self) -> Option<String> {
        if self.tally.is_empty() {
            return None;
        }
        let counts: Vec<String> = std::mem::take(&mut self.tally)
            .into_iter()
            .map(|(outcome, n)| format!("{outcome}: {n}"))
            .collect();
        Some(format!("outcomes: {}", counts.join(", ")))
    }

    /// Runs one trial in a fresh database, dropped afterwards.
    fn trial(
        &mut self,
        scenario: &str,
        trial: usize,
        body: impl FnOnce(&mut Self, &Tool<'_>) -> Result,
    ) -> Result {
        let target = self.target;
        let tool = Tool {
            bin: self.bin,
            uri: &target.uri,
            db: format!("chaos_{}_{scenario}_{trial}", std::process::id()),
        };
        tool.drop_database();
        let outcome = body(self, &tool);
        tool.drop_database();
        outcome
    }

    /// What the data must show after a process was killed or paused in the middle of a unit.
    fn after_interruption(&self) -> Expectation {
        match self.target.mode {
            TargetMode::ReplicaSet => Expectation::Exact,
            TargetMode::Standalone => Expectation::AtLeastOnce,
        }
    }

    /// Times a clean run of the `kill9` configuration: the kills are spread over 1.2 times
    /// that.
    fn calibrate(&mut self) -> (Duration, String) {
        let tool = Tool {
            bin: self.bin,
            uri: &self.target.uri,
            db: format!("chaos_{}_calibrate", std::process::id()),
        };
        tool.drop_database();
        let exit = tool
            .start(&env(&[("CHAOS_STEP_MILLIS", 250)]))
            .map(|s| s.finish(RUN_TIMEOUT));
        tool.drop_database();
        match exit {
            Ok(exit) if exit.succeeded() => {
                let window = exit.elapsed.mul_f64(1.2);
                let note = format!(
                    "a clean run takes {} ms; kills at random moments in 0..{} ms",
                    exit.elapsed.as_millis(),
                    window.as_millis()
                );
                (window, note)
            }
            Ok(exit) => (
                Duration::from_secs(3),
                format!(
                    "the clean calibration run failed ({}); kills at random moments in 0..3000 ms",
                    exit.failure()
                ),
            ),
            Err(e) => (Duration::from_secs(3), format!("calibration: {e}")),
        }
    }

    fn race16(&mut self, tool: &Tool<'_>) -> Result {
        let env = env(&[("CHAOS_STEP_MILLIS", 250)]);
        let services = (0..16)
            .map(|_| tool.start(&env))
            .collect::<Result<Vec<Service>>>()?;
        let exits: Vec<Exit> = services
            .into_iter()
            .map(|s| s.finish(RUN_TIMEOUT))
            .collect();
        let mut reasons = Reasons::default();
        let failed: Vec<String> = exits
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.succeeded())
            .map(|(i, e)| format!("process {}: {}", i + 1, e.failure()))
            .collect();
        if let Some(first) = failed.first() {
            reasons.fail(format!("{} of 16 processes failed; {first}", failed.len()));
        }
        reasons.add(tool.check(Expectation::Exact), || "checks".into());
        reasons.into_result()
    }

    fn kill9(&mut self, tool: &Tool<'_>, window: Duration) -> Result {
        let env = env(&[("CHAOS_STEP_MILLIS", 250)]);
        let delay = Duration::from_millis(self.rng.below(window.as_millis() as u64));
        let mut first = tool.start(&env)?;
        thread::sleep(delay.saturating_sub(first.elapsed()));
        let killed = first.kill9();
        let first = first.finish(Duration::from_secs(10));
        self.count(if killed {
            "killed during the run"
        } else {
            "the run had ended before the kill"
        });
        let mut reasons = Reasons::default();
        if !killed && !first.succeeded() {
            reasons.fail(format!(
                "the run failed before the kill: {}",
                first.failure()
            ));
        }
        let restart = tool.start(&env)?.finish(RUN_TIMEOUT);
        if !restart.succeeded() {
            reasons.fail(format!("the restart failed: {}", restart.failure()));
        }
        reasons.add(tool.check(self.after_interruption()), || "checks".into());
        reasons
            .into_result()
            .map_err(|r| format!("kill at {} ms: {r}", delay.as_millis()))
    }

    fn kill9_in_transaction(&mut self, tool: &Tool<'_>) -> Result {
        let delay = Duration::from_millis(self.rng.below(1000));
        let mut first = tool.start(&env(&[("CHAOS_UNIT_MILLIS", 2000)]))?;
        if !first.wait_for("chaos: chaos-03 wrote", RUN_TIMEOUT) {
            let exit = first.finish(Duration::from_secs(10));
            return Err(format!(
                "chaos-03 never reached its writes: {}",
                exit.failure()
            ));
        }
        thread::sleep(delay);
        let killed = first.kill9();
        let first = first.finish(Duration::from_secs(10));
        if !killed || !first.killed() {
            return Err(format!(
                "the process ended before the kill inside chaos-03 (harness timing): {}",
                if first.succeeded() {
                    "it succeeded".to_owned()
                } else {
                    first.failure()
                }
            ));
        }
        let mut reasons = Reasons::default();
        let restart = tool.start(&env(&[]))?.finish(RUN_TIMEOUT);
        if !restart.succeeded() {
            reasons.fail(format!(
                "the restart failed after {} s: {}",
                restart.elapsed.as_secs(),
                restart.failure()
            ));
        }
        reasons.add(tool.check(self.after_interruption()), || "checks".into());
        reasons
            .into_result()
            .map_err(|r| format!("kill {} ms into chaos-03's wait: {r}", delay.as_millis()))
    }

    fn sigstop_takeover(&mut self, tool: &Tool<'_>) -> Result {
        let a = tool.start(&env(&[("CHAOS_UNIT_MILLIS", 2000)]))?;
        if !a.wait_for("chaos: chaos-03 wrote", RUN_TIMEOUT) {
            let exit = a.finish(Duration::from_secs(10));
            return Err(format!(
                "A: chaos-03 never reached its writes: {}",
                exit.failure()
            ));
        }
        a.pause();
        thread::sleep(Duration::from_millis(LEASE_MILLIS + 1000));
        let mut b = tool.start(&env(&[("CHAOS_STEP_MILLIS", 300)]))?;
        let resume_at = Instant::now() + Duration::from_secs(1);
        thread::sleep(resume_at.saturating_duration_since(Instant::now()));
        let b_running = b.is_running();
        a.resume();
        let b = b.finish(RUN_TIMEOUT);
        let a = a.finish(RUN_TIMEOUT);
        let mut reasons = Reasons::default();
        if !b.succeeded() {
            reasons.fail(format!("B failed: {}", b.failure()));
        } else if !b_running {
            reasons.fail("B finished before A was resumed (harness timing)".into());
        }
        self.count(if a.succeeded() {
            "A succeeded"
        } else if a.lost_the_lock() {
            "A stopped, lock lost"
        } else {
            "A failed otherwise"
        });
        if !a.succeeded() && !a.lost_the_lock() {
            reasons.fail(format!(
                "A failed without saying the lock was lost: {}",
                a.failure()
            ));
        }
        reasons.add(tool.check(self.after_interruption()), || "checks".into());
        reasons.into_result()
    }

    /// One figure per fault that applies to the server, each aimed from one probe.
    fn failpoints(&mut self, trials: usize) -> Vec<Figure> {
        let probe = self.probe();
        let mode = self.target.mode;
        FAULTS
            .iter()
            .filter(|fault| fault.applies_to(mode))
            .map(|fault| {
                let mut figure = Figure::new(format!("failpoints/{}/{}", fault.name, mode.name()));
                let aimed = match &probe {
                    Ok(lines) => fault
                        .aim(lines)
                        .ok_or_else(|| "the probe sent no command to aim the fault at".to_owned()),
                    Err(e) => Err(e.clone()),
                };
                if let Ok(aimed) = &aimed {
                    figure.notes.push(format!(
                        "aimed at `{}`: fault {}",
                        aimed.target,
                        aimed.options.join(" ")
                    ));
                }
                for trial in 1..=trials {
                    let outcome = match &aimed {
                        Ok(aimed) => {
                            self.trial(&format!("fp_{}", fault.name), trial, |ctx, tool| {
                                ctx.fault_trial(tool, aimed)
                            })
                        }
                        Err(e) => Err(format!("harness: {e}")),
                    };
                    progress(&figure.name, trial, trials, &outcome);
                    figure.record(outcome);
                }
                figure.notes.extend(self.take_tally());
                figure
            })
            .collect()
    }

    /// A fault-free run that lists every command the service sends, in order, between its
    /// unit markers (see `fault.rs`).
    fn probe(&mut self) -> Result<Vec<String>> {
        let tool = Tool {
            bin: self.bin,
            uri: &self.target.uri,
            db: format!("chaos_{}_probe", std::process::id()),
        };
        tool.drop_database();
        tool.fault_off()?;
        let exit = tool.start(&fault_env())?.finish(RUN_TIMEOUT);
        tool.drop_database();
        if exit.succeeded() {
            Ok(exit.lines().to_vec())
        } else {
            Err(format!(
                "the fault-free probe run failed: {}",
                exit.failure()
            ))
        }
    }

    fn fault_trial(&mut self, tool: &Tool<'_>, aimed: &Aimed) -> Result {
        let env = fault_env();
        tool.fault_off()?;
        tool.fault(&aimed.options)?;
        let first = tool.start(&env).map(|s| s.finish(RUN_TIMEOUT));
        let off = tool.fault_off();
        let first = first?;
        off?;
        let mut reasons = Reasons::default();
        let failed = first.failed_commands();
        if failed.first() != Some(&aimed.target.as_str()) {
            reasons.fail(format!(
                "the fault did not hit `{}` (failed commands: {failed:?})",
                aimed.target
            ));
        }
        self.count(if first.succeeded() {
            "the faulted run succeeded"
        } else {
            "the faulted run failed"
        });
        let outcome = if first.succeeded() {
            "succeeded".to_owned()
        } else {
            format!("failed: {}", first.failure())
        };
        reasons.add(tool.check(Expectation::Consistent), || {
            format!("after the faulted run ({outcome})")
        });
        let second = tool.start(&env)?.finish(RUN_TIMEOUT);
        if !second.succeeded() {
            reasons.fail(format!(
                "the second run (no fault) failed: {}",
                second.failure()
            ));
        }
        reasons.add(tool.check(Expectation::Exact), || {
            "checks after the second run".into()
        });
        reasons.into_result()
    }

    fn long_units(&mut self, tool: &Tool<'_>) -> Result {
        let exit = tool
            .start(&env(&[("CHAOS_UNIT_MILLIS", 3500)]))?
            .finish(RUN_TIMEOUT);
        let mut reasons = Reasons::default();
        if !exit.succeeded() {
            reasons.fail(format!(
                "the run failed after {} s: {}",
                exit.elapsed.as_secs(),
                exit.failure()
            ));
        }
        reasons.add(tool.check(Expectation::Exact), || "checks".into());
        reasons.into_result()
    }
}

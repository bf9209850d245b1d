//! The measurements and the tables printed from them.

use std::fmt::Write;
use std::time::Duration;

use super::cases::mode_name;
use super::measure::{median, Sample};
use super::Options;
use crate::server::Mode;
use crate::Result;

/// Everything one `cargo xtask bench` measured.
pub(super) struct Results {
    runs: usize,
    compile_runs: usize,
    units: usize,
    server: String,
    pub(super) apply: Vec<TwinRow>,
    pub(super) noop: Vec<TwinRow>,
    pub(super) batch: Vec<BatchRow>,
    pub(super) compile: Vec<CompileRow>,
    /// Cases that were skipped, and why.
    pub(super) notes: Vec<String>,
}

/// A runtime case at one number of units: the samples of `migrate` and of its raw twin,
/// and the commands each sent in one more, untimed, run.
pub(super) struct TwinRow {
    pub(super) mode: Mode,
    pub(super) units: usize,
    pub(super) migrate: Vec<Sample>,
    pub(super) raw: Vec<Sample>,
    /// The raw twin with `migrate`'s guarantees (apply cases only; empty otherwise).
    pub(super) guarded: Vec<Sample>,
    pub(super) migrate_commands: CommandLog,
    pub(super) raw_commands: CommandLog,
}

/// The batch case at one number of seeded documents: the samples of the change unit's
/// `BatchUpdate` and of the hand-written loop, and the commands each sent in one more,
/// untimed, run.
pub(super) struct BatchRow {
    pub(super) mode: Mode,
    pub(super) docs: usize,
    pub(super) batch_size: usize,
    pub(super) migrate: Vec<Sample>,
    pub(super) raw: Vec<Sample>,
    pub(super) migrate_commands: CommandLog,
    pub(super) raw_commands: CommandLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Profile {
    Debug,
    Release,
}

impl Profile {
    pub(super) fn name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

pub(super) struct CompileRow {
    pub(super) profile: Profile,
    pub(super) units: usize,
    pub(super) migrate_clean: Vec<Sample>,
    pub(super) migrate_edit: Vec<Sample>,
    /// The same units written as functions (`#[change_unit]` on an `async fn`).
    pub(super) function_clean: Vec<Sample>,
    pub(super) function_edit: Vec<Sample>,
    pub(super) plain_clean: Vec<Sample>,
    pub(super) plain_edit: Vec<Sample>,
}

/// The commands a program sent, as its `BENCH_COMMANDS=1` output lists them.
pub(super) struct CommandLog {
    total: usize,
    /// `<command> <collection>` in the order sent.
    commands: Vec<String>,
    /// The commands of one applied unit in the middle of the run, starting after the
    /// previous unit's commit (or at the unit's own insert when there are no transactions).
    per_unit: Vec<String>,
}

/// A unit's own write, as the command log names it.
const UNIT_INSERT: &str = "insert bench";

impl CommandLog {
    /// Parses a program's output; `units` is how many units it applied (0 for none).
    pub(super) fn parse(output: &str, units: usize) -> Result<Self> {
        let mut total = None;
        let mut commands = Vec::new();
        for line in output.lines() {
            if let Some(n) = line.strip_prefix("commands ") {
                total = n.trim().parse().ok();
            } else if let Some(command) = line.strip_prefix("command ") {
                commands.push(command.to_owned());
            }
        }
        let total = total.ok_or("a benchmark program printed no command log")?;
        let inserts: Vec<usize> = commands
            .iter()
            .enumerate()
            .filter(|(_, c)| *c == UNIT_INSERT)
            .map(|(i, _)| i)
            .collect();
        if inserts.len() != units {
            return Err(format!(
                "a benchmark program applied {} units, expected {units}",
                inserts.len()
            ));
        }
        let per_unit = if units >= 2 {
            let m = units / 2;
            let window = &commands[inserts[m - 1] + 1..=inserts[m]];
            let start = window
                .iter()
                .rposition(|c| c.starts_with("commitTransaction"))
                .map(|i| i + 1)
                .unwrap_or_else(|| window.len() - 1);
            let mut per_unit = window[start..].to_vec();
            per_unit.extend_from_slice(&window[..start]);
            per_unit
        } else {
            Vec::new()
        };
        Ok(CommandLog {
            total,
            commands,
            per_unit,
        })
    }

    fn describe_unit(&self) -> String {
        format!(
            "{}: {} ({} in the whole run)",
            self.per_unit.len(),
            self.per_unit.join(", "),
            thousands(self.total)
        )
    }

    fn describe_all(&self) -> String {
        if self.commands.is_empty() {
            return "none".into();
        }
        let mut counted: Vec<(String, usize)> = Vec::new();
        for command in &self.commands {
            match counted.iter_mut().find(|(c, _)| c == command) {
                Some((_, n)) => *n += 1,
                None => counted.push((command.clone(), 1)),
            }
        }
        counted
            .iter()
            .map(|(c, n)| {
                if *n == 1 {
                    c.clone()
                } else {
                    format!("{n}× {c}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Results {
    pub(super) fn new(options: &Options, server: String) -> Self {
        Results {
            runs: options.runs,
            compile_runs: options.compile_runs,
            units: options.units,
            server,
            apply: Vec::new(),
            noop: Vec::new(),
            batch: Vec::new(),
            compile: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## migrate vs the same work on the raw driver\n\nmachine: {}",
            machine()
        );
        if !self.apply.is_empty() || !self.noop.is_empty() || !self.batch.is_empty() {
            let _ = writeln!(
                out,
                "server: {}\nmedians of {} runs, each run on a fresh database",
                self.server, self.runs
            );
        }
        if !self.compile.is_empty() {
            let _ = writeln!(out, "builds: medians of {}", self.compile_runs);
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| case | migrate | raw driver | ratio |");
        let _ = writeln!(out, "|---|---|---|---|");
        for row in &self.apply {
            let what = match row.mode {
                Mode::ReplicaSet => "replica set (a transaction per unit)",
                Mode::Standalone => "standalone",
            };
            let (m, r) = (wall(&row.migrate), wall(&row.raw));
            let _ = writeln!(
                out,
                "| apply {}, {what} | {} | {} | {} |",
                thousands(row.units),
                duration(m),
                duration(r),
                ratio(m, r)
            );
            if !row.guarded.is_empty() {
                let g = wall(&row.guarded);
                let guarantees = match row.mode {
                    Mode::ReplicaSet => {
                        "the unique history index, the lock fence in each transaction"
                    }
                    Mode::Standalone => "the unique history index",
                };
                let _ = writeln!(
                    out,
                    "| ... against the raw driver with migrate's guarantees ({guarantees}) | {} | {} | {} |",
                    duration(m),
                    duration(g),
                    ratio(m, g)
                );
            }
        }
        let largest = self.noop.iter().map(|r| r.units).max();
        for row in self
            .noop
            .iter()
            .filter(|r| r.units == self.units || Some(r.units) == largest)
        {
            let (m, r) = (wall(&row.migrate), wall(&row.raw));
            let _ = writeln!(
                out,
                "| no-op start, {} applied (whole process) | {} | {} (connect + one `find`) | {} |",
                thousands(row.units),
                with_cpu(&row.migrate),
                with_cpu(&row.raw),
                ratio(m, r)
            );
        }
        for row in &self.batch {
            let (m, r) = (wall(&row.migrate), wall(&row.raw));
            let _ = writeln!(
                out,
                "| batch update, {} documents, {} a batch (whole process) | {} ({}) | {} ({}; find + updateMany loop) | {} |",
                thousands(row.docs),
                thousands(row.batch_size),
                duration(m),
                per_second(row.docs, m),
                duration(r),
                per_second(row.docs, r),
                ratio(m, r)
            );
        }
        for row in &self.compile {
            let pc = wall(&row.plain_clean);
            let pe = wall(&row.plain_edit);
            let forms = [
                ("units", &row.migrate_clean, &row.migrate_edit),
                ("function units", &row.function_clean, &row.function_edit),
            ];
            for (form, clean, edit) in forms {
                let (c, e) = (wall(clean), wall(edit));
                let _ = writeln!(
                    out,
                    "| {} build, {} {form} vs plain async fns / after editing one | {} / {}, peak {} | {} / {}, peak {} | {} / {} |",
                    row.profile.name(),
                    thousands(row.units),
                    duration(c),
                    duration(e),
                    optional(peak(&[clean, edit]), bytes),
                    duration(pc),
                    duration(pe),
                    optional(peak(&[&row.plain_clean, &row.plain_edit]), bytes),
                    ratio(c, pc),
                    ratio(e, pe),
                );
            }
        }
        if !self.compile.is_empty() {
            let _ = writeln!(
                out,
                "\nBuilds are of the crate alone (its dependencies are built first); peak is the \
                 largest resident set of cargo and the rustc processes it ran."
            );
        }

        if !self.apply.is_empty() {
            let _ = writeln!(
                out,
                "\n### Database commands per applied unit\n\n\
                 (one unit in the middle of the run, from its transaction's first command to its \
                 commit)\n\n\
                 | mode | migrate | raw driver |\n|---|---|---|"
            );
            for row in &self.apply {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    mode_name(row.mode),
                    row.migrate_commands.describe_unit(),
                    row.raw_commands.describe_unit()
                );
            }
        }

        if !self.noop.is_empty() {
            let _ = writeln!(
                out,
                "\n### No-op start by number of applied units ({})\n\n\
                 | applied | migrate | CPU | peak RSS | raw driver | CPU | peak RSS | time ratio | RSS difference |\n\
                 |---|---|---|---|---|---|---|---|---|",
                mode_name(self.noop[0].mode)
            );
            for row in &self.noop {
                let (m, r) = (wall(&row.migrate), wall(&row.raw));
                let (mr, rr) = (rss(&row.migrate), rss(&row.raw));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    thousands(row.units),
                    duration(m),
                    optional(cpu(&row.migrate), duration),
                    optional(mr, bytes),
                    duration(r),
                    optional(cpu(&row.raw), duration),
                    optional(rr, bytes),
                    ratio(m, r),
                    match (mr, rr) {
                        (Some(mr), Some(rr)) => signed_bytes(mr as i64 - rr as i64),
                        _ => "n/a".into(),
                    },
                );
            }
            let _ = writeln!(out, "\nCommands of a no-op start:\n");
            for row in &self.noop {
                let _ = writeln!(
                    out,
                    "- {} applied: migrate {}; raw driver {}",
                    thousands(row.units),
                    row.migrate_commands.describe_all(),
                    row.raw_commands.describe_all()
                );
            }
        }
        if !self.batch.is_empty() {
            let _ = writeln!(
                out,
                "\n### Batch update ({}; documents seeded untimed before each run)\n\n\
                 | documents | batch | migrate | docs/s | CPU | peak RSS | raw driver | docs/s | CPU | peak RSS | migrate throughput |\n\
                 |---|---|---|---|---|---|---|---|---|---|---|",
                mode_name(self.batch[0].mode)
            );
            for row in &self.batch {
                let (m, r) = (wall(&row.migrate), wall(&row.raw));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    thousands(row.docs),
                    thousands(row.batch_size),
                    duration(m),
                    per_second(row.docs, m),
                    optional(cpu(&row.migrate), duration),
                    optional(peak(&[&row.migrate]), bytes),
                    duration(r),
                    per_second(row.docs, r),
                    optional(cpu(&row.raw), duration),
                    optional(peak(&[&row.raw]), bytes),
                    if m.is_zero() {
                        "n/a".into()
                    } else {
                        format!("{:.0}% of raw", 100.0 * r.as_secs_f64() / m.as_secs_f64())
                    },
                );
            }
            let _ = writeln!(
                out,
                "\nWall times are medians of whole processes (connect included); peak RSS is the \
                 largest of all runs.\n\nCommands of a batch update:\n"
            );
            for row in &self.batch {
                let _ = writeln!(
                    out,
                    "- {} documents: migrate {}; raw driver {}",
                    thousands(row.docs),
                    row.migrate_commands.describe_all(),
                    row.raw_commands.describe_all()
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        out
    }
}

/// One sample, for the progress lines: wall time, CPU time and peak RSS.
pub(super) fn sample(sample: &Sample) -> String {
    let mut text = duration(sample.wall);
    if let (Some(cpu), Some(rss)) = (sample.cpu, sample.peak_rss) {
        let _ = write!(text, " (CPU {}, peak {})", duration(cpu), bytes(rss));
    }
    text
}

fn wall(samples: &[Sample]) -> Duration {
    median(&samples.iter().map(|s| s.wall).collect::<Vec<_>>())
}

fn cpu(samples: &[Sample]) -> Option<Duration> {
    let values: Option<Vec<Duration>> = samples.iter().map(|s| s.cpu).collect();
    values.filter(|v| !v.is_empty()).map(|v| median(&v))
}

/// The median peak RSS.
fn rss(samples: &[Sample]) -> Option<u64> {
    let mut values: Vec<u64> = samples.iter().filter_map(|s| s.peak_rss).collect();
    values.sort_unstable();
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}

/// The largest peak RSS of all the samples.
fn peak(groups: &[&Vec<Sample>]) -> Option<u64> {
    groups
        .iter()
        .flat_map(|g| g.iter())
        .filter_map(|s| s.peak_rss)
        .max()
}

fn with_cpu(samples: &[Sample]) -> String {
    let mut text = duration(wall(samples));
    if let (Some(cpu), Some(rss)) = (cpu(samples), rss(samples)) {
        let _ = write!(text, " (CPU {}, peak RSS {})", duration(cpu), bytes(rss));
    }
    text
}

fn optional<T>(value: Option<T>, show: fn(T) -> String) -> String {
    value.map_or_else(|| "n/a".into(), show)
}

fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 100.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.1 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "n/a".into();
    }
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

/// `12,345 docs/s` for `docs` documents in `d`.
fn per_second(docs: usize, d: Duration) -> String {
    if d.is_zero() {
        return "n/a".into();
    }
    format!(
        "{} docs/s",
        thousands((docs as f64 / d.as_secs_f64()).round() as usize)
    )
}

fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= 1024.0 * MIB {
        format!("{:.2} GiB", n as f64 / 1024.0 / MIB)
    } else {
        format!("{:.1} MiB", n as f64 / MIB)
    }
}

fn signed_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", bytes(n.unsigned_abs()))
}

/// `1,000` for 1000.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The CPU model and the number of cores the benchmark could use.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| format!(", {}", m.trim()))
        })
        .unwrap_or_default();
    format!("{cores} cores{model}")
}

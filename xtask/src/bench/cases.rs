//! The cases, each measured against its hand-written twin.

use std::path::Path;
use std::process::Command;

use super::generate;
use super::measure::{self, Sample};
use super::report::{BatchRow, CommandLog, CompileRow, Profile, Results, TwinRow};
use super::{Options, Programs, Targets};
use crate::server::Mode;
use crate::{run, signals, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    ApplyReplicaSet,
    ApplyStandalone,
    Noop,
    Batch,
    Compile,
}

impl Case {
    pub(super) const ALL: [Case; 5] = [
        Case::ApplyReplicaSet,
        Case::ApplyStandalone,
        Case::Noop,
        Case::Batch,
        Case::Compile,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Case::ApplyReplicaSet => "apply-replset",
            Case::ApplyStandalone => "apply-standalone",
            Case::Noop => "noop",
            Case::Batch => "batch",
            Case::Compile => "compile",
        }
    }

    pub(super) fn summary(self) -> &'static str {
        match self {
            Case::ApplyReplicaSet => {
                "apply --units units on a replica set (a transaction per unit), and commands per unit"
            }
            Case::ApplyStandalone => {
                "apply --units units on a standalone server, and commands per unit"
            }
            Case::Noop => {
                "a whole process that finds nothing to apply, at each --noop-units; vs connect + one find"
            }
            Case::Batch => {
                "BatchUpdate in a unit over each --batch-docs seeded docs vs a find + updateMany \
                 loop; docs/s, peak RSS"
            }
            Case::Compile => {
                "clean build and rebuild after editing one unit, debug and release, of --units \
                 units vs plain async fns"
            }
        }
    }

    pub(super) fn needs_server(self) -> bool {
        self != Case::Compile
    }

    pub(super) fn is_apply(self) -> bool {
        matches!(self, Case::ApplyReplicaSet | Case::ApplyStandalone)
    }

    /// Runs a case that talks to a server; the compile case is [`compile`].
    pub(super) fn run_runtime(
        self,
        options: &Options,
        programs: &Programs,
        targets: &Targets,
        results: &mut Results,
    ) -> Result {
        let mode = match self {
            Case::ApplyReplicaSet => Mode::ReplicaSet,
            Case::ApplyStandalone => Mode::Standalone,
            Case::Noop | Case::Batch => targets.uris[0].0,
            Case::Compile => return Ok(()),
        };
        let Some(uri) = targets.uri(mode) else {
            results.notes.push(format!(
                "{}: skipped, the server at MONGODB_URI is not a {} server",
                self.name(),
                mode_name(mode)
            ));
            return Ok(());
        };
        let target = Target { uri, mode };
        match self {
            Case::Noop => results.noop.extend(noop(options, programs, target)?),
            Case::Batch => results.batch.extend(batch(options, target)?),
            _ => results
                .apply
                .push(apply(options, &programs.units(options.units), target)?),
        }
        Ok(())
    }
}

pub(super) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::ReplicaSet => "replica set",
        Mode::Standalone => "standalone",
    }
}

/// Whether the server at `uri` runs transactions, asked by the raw program.
pub(super) fn probe(uri: &str) -> Result<Mode> {
    let (_, output) = measure::run(
        "probing MONGODB_URI",
        Command::new(Programs::raw()).args(["probe", uri]),
        &log_path("probe"),
    )?;
    Ok(if output.trim() == "transactions" {
        Mode::ReplicaSet
    } else {
        Mode::Standalone
    })
}

fn log_path(name: &str) -> std::path::PathBuf {
    generate::root().join("logs").join(format!("{name}.log"))
}

fn stop_requested() -> Result {
    match signals::received() {
        Some(signal) => Err(format!("stopped on {signal}")),
        None => Ok(()),
    }
}

/// Drops the database `db`.
fn drop_database(uri: &str, db: &str) -> Result {
    measure::run(
        &format!("dropping {db}"),
        Command::new(Programs::raw()).args(["drop", uri, db]),
        &log_path("drop"),
    )
    .map(|_| ())
}

/// Runs `program` with `args` and, when `commands` is set, its command log on stdout.
fn measure_program(
    description: &str,
    program: &Path,
    args: &[&str],
    commands: bool,
) -> Result<(Sample, String)> {
    let mut command = Command::new(program);
    command.args(args);
    if commands {
        command.env("BENCH_COMMANDS", "1");
    }
    let name: String = description
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    measure::run(description, &mut command, &log_path(&name))
}

/// Runs a benchmark program on the database it is given, with its command log when asked.
type Program<'a> = Box<dyn Fn(&str, bool) -> Result<(Sample, String)> + 'a>;

/// Prepares the database it is given before a timed run, untimed.
type Prepare<'a> = Box<dyn Fn(&str) -> Result + 'a>;

/// The programs of a runtime case: `migrate`, its raw twin, and optionally the raw twin with
/// `migrate`'s guarantees.
struct Twins<'a> {
    migrate: Program<'a>,
    raw: Program<'a>,
    /// The raw twin doing what `migrate` does for its guarantees besides the same work.
    guarded: Option<Program<'a>>,
    /// Prepares the fresh database of each run, untimed (the batch case seeds it).
    prepare: Option<Prepare<'a>>,
}

impl Twins<'_> {
    /// Runs each program `runs` times, rotating which goes first; returns the samples of
    /// `migrate`, `raw` and `guarded` (empty without one).
    fn interleaved(
        &self,
        label: &str,
        runs: usize,
        db: impl Fn(usize, &str) -> String,
        fresh: Option<&str>,
    ) -> Result<(Vec<Sample>, Vec<Sample>, Vec<Sample>)> {
        let mut programs = vec![("migrate", &self.migrate), ("raw", &self.raw)];
        if let Some(guarded) = &self.guarded {
            programs.push(("guarded", guarded));
        }
        let mut samples = vec![Vec::new(); programs.len()];
        for run in 1..=runs {
            for turn in 0..programs.len() {
                let index = (run - 1 + turn) % programs.len();
                let (tool, program) = programs[index];
                stop_requested()?;
                let name = db(run, tool);
                if let Some(uri) = fresh {
                    drop_database(uri, &name)?;
                }
                if let Some(prepare) = &self.prepare {
                    prepare(&name)?;
                }
                let (sample, _) = program(&name, false)?;
                if let Some(uri) = fresh {
                    drop_database(uri, &name)?;
                }
                samples[index].push(sample);
            }
            let mut line = format!("xtask: bench {label}, run {run}/{runs}:");
            for ((tool, _), samples) in programs.iter().zip(&samples) {
                let sample = samples.last().expect("a run");
                line.push_str(&format!(" {tool} {},", super::report::sample(sample)));
            }
            eprintln!("{}", line.trim_end_matches(','));
        }
        let guarded = if samples.len() == 3 {
            samples.pop().expect("three")
        } else {
            Vec::new()
        };
        let raw = samples.pop().expect("two");
        let migrate = samples.pop().expect("one");
        Ok((migrate, raw, guarded))
    }

    /// Runs each once more, untimed, on a fresh database named by `db`, with the command
    /// log; `units` is how many units each applies.
    fn command_logs(
        &self,
        uri: &str,
        db: impl Fn(&str) -> String,
        units: usize,
    ) -> Result<(CommandLog, CommandLog)> {
        let mut logs = Vec::new();
        for (tool, program) in [("migrate", &self.migrate), ("raw", &self.raw)] {
            let name = db(tool);
            drop_database(uri, &name)?;
            if let Some(prepare) = &self.prepare {
                prepare(&name)?;
            }
            let (_, output) = program(&name, true)?;
            drop_database(uri, &name)?;
            logs.push(CommandLog::parse(&output, units)?);
        }
        let raw = logs.pop().expect("two logs");
        let migrate = logs.pop().expect("two logs");
        Ok((migrate, raw))
    }
}

/// A server of the runtime cases.
#[derive(Clone, Copy)]
struct Target<'a> {
    uri: &'a str,
    mode: Mode,
}

/// Applies `options.units` units with the program `units`, and the same work with the raw
/// twin.
fn apply(options: &Options, units: &Path, Target { uri, mode }: Target<'_>) -> Result<TwinRow> {
    let n = options.units;
    let raw = Programs::raw();
    let count = n.to_string();
    let transactions = if mode == Mode::ReplicaSet {
        "transactions"
    } else {
        "no-transactions"
    };
    let label = format!("apply {n}, {}", mode_name(mode));
    let twins = Twins {
        migrate: Box::new(|db: &str, commands| {
            measure_program(&format!("{label}: migrate"), units, &[uri, db], commands)
        }),
        raw: Box::new(|db: &str, commands| {
            measure_program(
                &format!("{label}: raw"),
                &raw,
                &["apply", uri, db, &count, transactions],
                commands,
            )
        }),
        guarded: Some(Box::new(|db: &str, commands| {
            measure_program(
                &format!("{label}: raw with guarantees"),
                &raw,
                &["apply", uri, db, &count, transactions, "guarded"],
                commands,
            )
        })),
        prepare: None,
    };
    let tag = if mode == Mode::ReplicaSet { "rs" } else { "sa" };
    let (migrate, raw_samples, guarded) = twins.interleaved(
        &label,
        options.runs,
        |run, tool| format!("bench_apply_{tag}_{run}_{tool}"),
        Some(uri),
    )?;
    let (migrate_log, raw_log) =
        twins.command_logs(uri, |tool| format!("bench_apply_{tag}_commands_{tool}"), n)?;
    Ok(TwinRow {
        mode,
        units: n,
        migrate,
        raw: raw_samples,
        guarded,
        migrate_commands: migrate_log,
        raw_commands: raw_log,
    })
}

/// For each of `options.noop_units`: applies that many units, then measures a start with
/// nothing to apply against the raw twin's connect and one `find`.
fn noop(
    options: &Options,
    programs: &Programs,
    Target { uri, mode }: Target<'_>,
) -> Result<Vec<TwinRow>> {
    let raw = Programs::raw();
    let mut rows = Vec::new();
    for &n in &options.noop_units {
        let units = programs.units(n);
        let db = format!("bench_noop_{n}");
        drop_database(uri, &db)?;
        eprintln!("xtask: bench no-op {n}: applying {n} units first");
        measure_program(&format!("no-op {n}: setup"), &units, &[uri, &db], false)?;
        let label = format!("no-op {n}, {}", mode_name(mode));
        let twins = Twins {
            migrate: Box::new(|db: &str, commands| {
                measure_program(&format!("{label}: migrate"), &units, &[uri, db], commands)
            }),
            raw: Box::new(|db: &str, commands| {
                measure_program(&format!("{label}: raw"), &raw, &["noop", uri, db], commands)
            }),
            guarded: None,
            prepare: None,
        };
        let (migrate, raw_samples, _) =
            twins.interleaved(&label, options.runs, |_, _| db.clone(), None)?;
        let (_, migrate_log) = (twins.migrate)(&db, true)?;
        let (_, raw_log) = (twins.raw)(&db, true)?;
        drop_database(uri, &db)?;
        rows.push(TwinRow {
            mode,
            units: n,
            migrate,
            raw: raw_samples,
            guarded: Vec::new(),
            migrate_commands: CommandLog::parse(&migrate_log, 0)?,
            raw_commands: CommandLog::parse(&raw_log, 0)?,
        });
    }
    Ok(rows)
}

/// For each of `options.batch_docs`: seeds that many documents into a fresh database before
/// every run (untimed), then changes them all with `BatchUpdate` in a change unit and with
/// the raw twin's loop, checking that each changed every document.
fn batch(options: &Options, Target { uri, mode }: Target<'_>) -> Result<Vec<BatchRow>> {
    let program = Programs::batch();
    let raw = Programs::raw();
    let size = options.batch_size.to_string();
    let mut rows = Vec::new();
    for &n in &options.batch_docs {
        let docs = n.to_string();
        let label = format!("batch {n}, {}", mode_name(mode));
        let checked = |tool: &'static str, run: Result<(Sample, String)>| {
            let (sample, output) = run?;
            let changed = output
                .lines()
                .find_map(|l| l.strip_prefix("changed "))
                .and_then(|c| c.trim().parse::<usize>().ok());
            if changed != Some(n) {
                return Err(format!(
                    "{label}: {tool} changed {changed:?} documents, expected {n}"
                ));
            }
            Ok((sample, output))
        };
        let twins = Twins {
            migrate: Box::new(|db: &str, commands| {
                checked(
                    "migrate",
                    measure_program(
                        &format!("{label}: migrate"),
                        &program,
                        &[uri, db, &size],
                        commands,
                    ),
                )
            }),
            raw: Box::new(|db: &str, commands| {
                checked(
                    "raw",
                    measure_program(
                        &format!("{label}: raw"),
                        &raw,
                        &["batch", uri, db, &size],
                        commands,
                    ),
                )
            }),
            guarded: None,
            prepare: Some(Box::new(|db: &str| {
                measure::run(
                    &format!("seeding {n} documents into {db}"),
                    Command::new(&raw).args(["seed", uri, db, &docs]),
                    &log_path("seed"),
                )
                .map(|_| ())
            })),
        };
        eprintln!("xtask: bench {label}: each run seeds {n} documents first, untimed");
        let (migrate, raw_samples, _) = twins.interleaved(
            &label,
            options.runs,
            |run, tool| format!("bench_batch_{run}_{tool}"),
            Some(uri),
        )?;
        let (migrate_commands, raw_commands) =
            twins.command_logs(uri, |tool| format!("bench_batch_commands_{tool}"), 0)?;
        rows.push(BatchRow {
            mode,
            docs: n,
            batch_size: options.batch_size,
            migrate,
            raw: raw_samples,
            migrate_commands,
            raw_commands,
        });
    }
    Ok(rows)
}

/// The compile case: a clean build of the crate of units and of the crate of plain async
/// functions, then a build after editing one unit of each, in debug and release mode.
/// "Clean" means the crate itself: its dependencies (the driver, `migrate`) are built first,
/// untimed. The peak memory is the largest process cargo waited for, in practice rustc.
pub(super) fn compile(options: &Options, programs: &Programs, results: &mut Results) -> Result {
    let units = programs
        .compile_units
        .as_deref()
        .expect("generated for the compile case");
    let plain = programs
        .plain
        .as_deref()
        .expect("generated for the compile case");
    let functions = programs
        .compile_functions
        .as_deref()
        .expect("generated for the compile case");
    let edited = options.units / 2 + 1;
    for profile in [Profile::Debug, Profile::Release] {
        let flags: &[&str] = match profile {
            Profile::Debug => &[],
            Profile::Release => &["--release"],
        };
        let with = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(flags);
            Programs::cargo(&all)
        };
        // A crate of one unit has every dependency of the crate of units, and the support
        // crate every dependency of the plain one, with the same features. Each is built on
        // its own: one `cargo build` of both would unify their features, and the driver the
        // plain crate links (without the features `migrate` enables) would then be compiled
        // inside the plain crate's first measured build.
        for package in [programs.smallest.as_str(), "bench-support"] {
            run(
                &format!(
                    "building the dependencies of the compile case ({}, {package}; the first \
                     build compiles the MongoDB driver)",
                    profile.name()
                ),
                &mut with(&["build", "-p", package]),
            )?;
        }
        let mut row = CompileRow {
            profile,
            units: options.units,
            migrate_clean: Vec::new(),
            migrate_edit: Vec::new(),
            function_clean: Vec::new(),
            function_edit: Vec::new(),
            plain_clean: Vec::new(),
            plain_edit: Vec::new(),
        };
        for run in 1..=options.compile_runs {
            let order = if run % 2 == 1 {
                [units, functions, plain]
            } else {
                [plain, functions, units]
            };
            for package in order {
                stop_requested()?;
                let label = format!("{} build of {package}", profile.name());
                measure::run(
                    &format!("cargo clean -p {package}"),
                    &mut with(&["clean", "-p", package]),
                    &log_path("cargo-clean"),
                )?;
                let build = |what: String| -> Result<Sample> {
                    eprintln!("xtask: bench compile: {what}");
                    let log = log_path("cargo-build");
                    measure::run(&what, &mut with(&["build", "-p", package]), &log)
                        .map(|(sample, _)| sample)
                };
                let clean = build(format!("clean {label}"))?;
                generate::toggle_unit(package, edited)?;
                let edit = build(format!("{label} after editing unit {edited}"))?;
                eprintln!(
                    "xtask: bench compile {label}, run {run}/{}: clean {}, after an edit {}",
                    options.compile_runs,
                    super::report::sample(&clean),
                    super::report::sample(&edit),
                );
                let (clean_samples, edit_samples) = if package == units {
                    (&mut row.migrate_clean, &mut row.migrate_edit)
                } else if package == functions {
                    (&mut row.function_clean, &mut row.function_edit)
                } else {
                    (&mut row.plain_clean, &mut row.plain_edit)
                };
                clean_samples.push(clean);
                edit_samples.push(edit);
            }
        }
        results.compile.push(row);
    }
    Ok(())
}

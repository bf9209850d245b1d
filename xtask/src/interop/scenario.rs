//! The interop scenarios: what each runs, on which side, and what it checks.
//!
//! The units (`tests/interop/{java,rust}`), the same on both sides: `interop-a`, `interop-b`
//! and `interop-c` (orders 001 to 003, each with a before-step), `interop-fail` (004: its before-step succeeds, its execution fails, both are rolled back)
//! and `interop-slow` (005, with a before-step; both sleep as long as the run says), all by
//! author `interop`; and the change log `interop-legacy` (010) with the change sets
//! `interop-legacy-1` and `interop-legacy-2` by `interop-legacy`. Each step counts its
//! applications in `interop_counters` with the side that applied it.

use std::thread;
use std::time::{Duration, Instant};

use super::sides::{Finished, Process, Side, Sides};
use super::state::{Row, State};
use crate::Result;

/// What the service prints when a unit's execution fails on purpose.
const FAILS_ON_PURPOSE: &str = "interop-fail fails on purpose";
/// The lock document's fields as Mongock 5.5.1 leaves them (the server orders the fields an
/// upsert's `$set` creates by name).
const LOCK_FIELDS: &str = "key:string,expiresAt:date,owner:string,status:string";
/// How long a service may take to reach the line a scenario waits for.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scenario {
    JavaThenRust,
    RustThenJava,
    LockWait,
    LockTakeover,
    Race,
    Indexes,
    LegacyImport,
}

impl Scenario {
    pub(super) const ALL: [Scenario; 7] = [
        Scenario::JavaThenRust,
        Scenario::RustThenJava,
        Scenario::LockWait,
        Scenario::LockTakeover,
        Scenario::Race,
        Scenario::Indexes,
        Scenario::LegacyImport,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Scenario::JavaThenRust => "java-then-rust",
            Scenario::RustThenJava => "rust-then-java",
            Scenario::LockWait => "lock-wait",
            Scenario::LockTakeover => "lock-takeover",
            Scenario::Race => "race",
            Scenario::Indexes => "indexes",
            Scenario::LegacyImport => "legacy-import",
        }
    }

    pub(super) fn summary(self) -> &'static str {
        match self {
            Scenario::JavaThenRust => {
                "Java applies a, b; Rust applies only c, then fails on `fail`; Java sees nothing pending"
            }
            Scenario::RustThenJava => {
                "Rust applies a, b, fails on `fail`; Java applies only c; each then sees nothing pending"
            }
            Scenario::LockWait => {
                "one side runs the slow unit, the other waits for the lock, then finds nothing pending (both ways)"
            }
            Scenario::LockTakeover => {
                "one side is killed holding the lock; the other takes it over once expired (both ways)"
            }
            Scenario::Race => {
                "two Java and two Rust services start together on an empty database"
            }
            Scenario::Indexes => {
                "each side accepts the other's indexes, with index creation on and off"
            }
            Scenario::LegacyImport => {
                "each side imports a mongobee `dbchangelog` as the other does, and accepts the other's import"
            }
        }
    }

    /// Runs the scenario: notes worth printing, or every reason it failed.
    pub(super) fn run(self, sides: &Sides<'_>) -> Result<Vec<String>, Vec<String>> {
        let mut checks = Checks::default();
        let outcome = match self {
            Scenario::JavaThenRust => one_after_the_other(sides, Side::Java, &mut checks),
            Scenario::RustThenJava => one_after_the_other(sides, Side::Rust, &mut checks),
            Scenario::LockWait => lock_wait(sides, &mut checks),
            Scenario::LockTakeover => lock_takeover(sides, &mut checks),
            Scenario::Race => race(sides, &mut checks),
            Scenario::Indexes => indexes(sides, &mut checks),
            Scenario::LegacyImport => legacy_import(sides, &mut checks),
        };
        if let Err(reason) = outcome {
            checks.reasons.push(reason);
        }
        if checks.reasons.is_empty() {
            Ok(checks.notes)
        } else {
            Err(checks.reasons)
        }
    }
}

/// What a scenario found: reasons it failed, and notes.
#[derive(Default)]
struct Checks {
    reasons: Vec<String>,
    notes: Vec<String>,
}

impl Checks {
    fn expect(&mut self, ok: bool, reason: impl FnOnce() -> String) {
        if !ok {
            self.reasons.push(reason());
        }
    }

    fn outcome(&mut self, outcome: Result, context: &str) {
        if let Err(reason) = outcome {
            self.reasons.push(format!("{context}: {reason}"));
        }
    }

    /// Each `(step, side)` applied exactly once, by `side`, with exactly one `EXECUTED` row
    /// written by `side`.
    fn applied_once(&mut self, state: &State, steps: &[(&str, Side)], context: &str) {
        for &(step, side) in steps {
            let counter = state.counters.get(step);
            self.expect(
                counter.is_some_and(|c| c.n == 1 && c.by == [side.name()]),
                || {
                    format!(
                        "{context}: `{step}` should be applied once by {}, found {counter:?}",
                        side.name()
                    )
                },
            );
            let rows = state.executed_rows(step);
            self.expect(rows.len() == 1 && rows[0].writer == side.name(), || {
                format!(
                    "{context}: `{step}` should have one EXECUTED row written by {}, found {:?}",
                    side.name(),
                    rows.iter().map(|r| &r.writer).collect::<Vec<_>>()
                )
            });
        }
    }

    /// No lock document left behind.
    fn released(&mut self, state: &State, context: &str) {
        self.expect(state.locks.is_empty(), || {
            format!("{context}: the lock is still there: {:?}", state.locks)
        });
    }

    /// Every history row has the fields, field types and field order Mongock writes, as seen
    /// in the rows Java wrote; rows by Rust add a `checksum` string at the end.
    fn mongock_shaped(&mut self, state: &State, context: &str) {
        let Some(reference) = state.rows.iter().find(|r| r.writer == "java") else {
            self.reasons
                .push(format!("{context}: no row written by Java to compare with"));
            return;
        };
        let reference = shape(&reference.fields);
        for row in &state.rows {
            let fields = row
                .fields
                .strip_suffix(",checksum:string")
                .filter(|_| row.writer == "rust")
                .unwrap_or(&row.fields);
            self.expect(shape(fields) == reference, || {
                format!(
                    "{context}: the {} row `{}` ({}) has fields {} where Mongock writes {reference}",
                    row.writer, row.change_id, row.state, row.fields
                )
            });
            if let Some(trace) = &row.error_trace {
                self.expect(trace.starts_with("{\"execution-error\":\""), || {
                    format!(
                        "{context}: the errorTrace of the {} row `{}` is not shaped as Mongock's \
                         (`{{\"execution-error\":\"...`): {}",
                        row.writer,
                        row.change_id,
                        trace.chars().take(80).collect::<String>()
                    )
                });
            }
        }
    }

    /// A run that waited for the lock: it succeeded and applied nothing.
    fn nothing_pending_after_wait(&mut self, run: &Finished, context: &str) {
        self.outcome(run.succeeded(), &format!("{context}: the waiter"));
        self.expect(run.applied().is_empty(), || {
            format!("{context}: the waiter applied {:?}", run.applied())
        });
    }

    /// A run that should have found nothing pending: it succeeded, applied nothing, never
    /// tried the lock, and left the database as it was.
    fn nothing_pending(&mut self, run: &Finished, before: &State, after: &State, context: &str) {
        self.outcome(run.succeeded(), context);
        self.expect(run.applied().is_empty(), || {
            format!(
                "{context}: applied {:?}, expected nothing pending",
                run.applied()
            )
        });
        let tried_lock = match run.side {
            Side::Java => run.printed("Mongock trying to acquire the lock"),
            Side::Rust => run.printed("interop: lock held"),
        };
        self.expect(!tried_lock, || {
            format!("{context}: took the lock although nothing was pending")
        });
        self.expect(
            before.counters == after.counters && before.rows == after.rows,
            || format!("{context}: the data or the history changed although nothing was pending"),
        );
    }
}

/// The field list with the types that vary with the content (`metadata` document or null,
/// `errorTrace` string or null) made alike.
fn shape(fields: &str) -> String {
    fields
        .split(',')
        .map(|f| match f {
            "metadata:document" | "metadata:null" => "metadata:document|null",
            "errorTrace:string" | "errorTrace:null" => "errorTrace:string|null",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `first` applies a and b, the other side applies only c, then fails on `interop-fail`;
/// `first` then sees nothing pending, fails on `interop-fail` itself (the other side's
/// FAILED and ROLLED_BACK rows leave it pending), and the other side sees nothing pending.
fn one_after_the_other(sides: &Sides<'_>, first: Side, checks: &mut Checks) -> Result {
    let second = first.other();
    let (f, s) = (first.name(), second.name());
    let db = sides.fresh_database(&format!("{f}_then_{s}"));

    let run = sides.run(first, &db, "a,b").finish()?;
    checks.outcome(run.succeeded(), &format!("{f} applying a, b"));
    let state = sides.state(&db)?;
    let mut expected: Vec<(&str, Side)> = [
        "interop-a_before",
        "interop-a",
        "interop-b_before",
        "interop-b",
    ]
    .into_iter()
    .map(|step| (step, first))
    .collect();
    checks.applied_once(&state, &expected, &format!("after {f} applied a, b"));
    checks.released(&state, &format!("after {f} applied a, b"));

    let run = sides.run(second, &db, "a,b,c").finish()?;
    let context = format!("{s} with a, b, c after {f}");
    checks.outcome(run.succeeded(), &context);
    checks.expect(run.applied() == ["interop-c_before", "interop-c"], || {
        format!("{context}: applied {:?}, expected only c", run.applied())
    });
    let state = sides.state(&db)?;
    expected.extend([("interop-c_before", second), ("interop-c", second)]);
    checks.applied_once(&state, &expected, &context);

    let run = sides.run(second, &db, "a,b,c,fail").finish()?;
    let context = format!("{s} with the failing unit");
    checks.outcome(run.failed_with(FAILS_ON_PURPOSE), &context);
    let state = sides.state(&db)?;
    checks.expect(state.applied("interop-fail_before") == 0, || {
        format!("{context}: the failed unit's before-step was not rolled back")
    });
    if second == Side::Rust {
        rust_failure_rows(&state, sides.transactions(), checks, &context);
    }
    checks.released(&state, &context);

    let before = state;
    let run = sides.run(first, &db, "a,b,c").finish()?;
    let after = sides.state(&db)?;
    checks.nothing_pending(&run, &before, &after, &format!("{f} again with a, b, c"));

    let run = sides.run(first, &db, "a,b,c,fail").finish()?;
    let context = format!("{f} with the failing unit after {s} failed it");
    checks.outcome(run.failed_with(FAILS_ON_PURPOSE), &context);
    checks.expect(run.applied() == ["interop-fail_before"], || {
        format!(
            "{context}: applied {:?}, expected only the failing unit's before-step",
            run.applied()
        )
    });

    let before = sides.state(&db)?;
    let run = sides.run(second, &db, "a,b,c").finish()?;
    let after = sides.state(&db)?;
    checks.nothing_pending(&run, &before, &after, &format!("{s} again with a, b, c"));
    checks.released(&after, "at the end");
    checks.mongock_shaped(&after, "at the end");

    if first == Side::Rust {
        // Mongock's first run on a database executes its system change
        // `system-change-00001`, which rewrites every row already there in its own shape.
        let rewritten: Vec<&str> = after
            .rows
            .iter()
            .filter(|r| r.writer == "rust" && !r.fields.ends_with(",checksum:string"))
            .map(|r| r.change_id.as_str())
            .collect();
        checks.notes.push(format!(
            "rows Rust wrote before Mongock's first run, rewritten by its system change without \
             `checksum`: {rewritten:?}"
        ));
    }
    Ok(())
}

/// The rows a failed Rust run leaves: the before-step `ROLLED_BACK`; the execution `FAILED`
/// (its transaction aborted) or `ROLLED_BACK` (its rollback ran), with the error.
fn rust_failure_rows(state: &State, transactions: bool, checks: &mut Checks, context: &str) {
    let expected = if transactions {
        "FAILED"
    } else {
        "ROLLED_BACK"
    };
    let execution: Vec<_> = state
        .rows_of("interop-fail")
        .filter(|r| r.writer == "rust")
        .collect();
    checks.expect(
        execution.len() == 1
            && execution[0].state == expected
            && execution[0]
                .error_trace
                .as_deref()
                .is_some_and(|t| t.contains(FAILS_ON_PURPOSE)),
        || format!("{context}: expected one {expected} row of `interop-fail` with the error, found {execution:?}"),
    );
    let before: Vec<_> = state
        .rows_of("interop-fail_before")
        .filter(|r| r.writer == "rust")
        .map(|r| r.state.as_str())
        .collect();
    checks.expect(before == ["ROLLED_BACK"], || {
        format!("{context}: expected `interop-fail_before` ROLLED_BACK, found {before:?}")
    });
}

/// Both ways: `holder` runs the slow unit (4 s in its execution); while it runs, the other
/// side starts, waits for the lock, takes it once released and finds nothing pending.
fn lock_wait(sides: &Sides<'_>, checks: &mut Checks) -> Result {
    let mut lock_fields = Vec::new();
    for holder in [Side::Java, Side::Rust] {
        let waiter_side = holder.other();
        let context = format!("{} holding, {} waiting", holder.name(), waiter_side.name());
        let db = sides.fresh_database("lock_wait");
        let mut running = sides
            .run(holder, &db, "slow")
            .env("INTEROP_SLOW_MILLIS", 4000)
            .start()?;
        running.wait_for("interop: interop-slow sleeping 4000 ms", STEP_TIMEOUT)?;
        let held = sides.state(&db)?;
        match held.locks.as_slice() {
            [lock] => {
                checks.expect(lock.status == "LOCK_HELD" && lock.expires_in > 0, || {
                    format!("{context}: the held lock reads {lock:?}")
                });
                lock_fields.push((holder, lock.fields.clone()));
            }
            other => checks.reasons.push(format!(
                "{context}: expected one lock document while the slow unit runs, found {other:?}"
            )),
        }
        let waiter = sides.run(waiter_side, &db, "slow").start()?;
        thread::sleep(Duration::from_millis(500));
        checks.expect(running.is_running(), || {
            format!("{context}: the holder ended before the waiter started")
        });
        let holder_run = running.finish();
        let waiter = waiter.finish();
        checks.outcome(holder_run.succeeded(), &context);
        // The holder keeps the lock for the whole sleep of its slow unit; it releases it before
        // it prints that it is done, so that line may come after the waiter's.
        let slow_started = holder_run
            .exit
            .printed_at(|l| l == "interop: interop-slow sleeping 4000 ms");
        let waiter_locked = waiter.exit.printed_at(|l| waiter_side.took_lock(l));
        checks.expect(
            match (slow_started, waiter_locked) {
                (Some(started), Some(locked)) => locked >= started + Duration::from_millis(4000),
                _ => false,
            },
            || format!("{context}: the waiter took the lock before the holder's slow unit ended ({slow_started:?}, {waiter_locked:?})"),
        );
        let after = sides.state(&db)?;
        checks.nothing_pending_after_wait(&waiter, &context);
        checks.applied_once(
            &after,
            &[("interop-slow_before", holder), ("interop-slow", holder)],
            &context,
        );
        checks.released(&after, &context);
    }
    for (holder, fields) in &lock_fields {
        checks.expect(fields == LOCK_FIELDS, || {
            format!(
                "the lock document {} holds has fields {fields}, Mongock's has {LOCK_FIELDS}",
                holder.name()
            )
        });
    }
    Ok(())
}

/// Both ways: `dead` is killed with SIGKILL inside the slow unit's before-step (no
/// transaction open), holding a lock with a 6 s lease; the other side starts at once, waits
/// for the lease to expire, takes the lock over and applies the unit.
fn lock_takeover(sides: &Sides<'_>, checks: &mut Checks) -> Result {
    for dead in [Side::Java, Side::Rust] {
        let taker_side = dead.other();
        let context = format!("{} killed, {} taking over", dead.name(), taker_side.name());
        let db = sides.fresh_database("lock_takeover");
        let running: Process = sides
            .run(dead, &db, "slow")
            .env("INTEROP_SLOW_BEFORE_MILLIS", 120_000)
            .env("INTEROP_LOCK_LEASE_MILLIS", 6000)
            .start()?;
        running.wait_for(
            "interop: interop-slow_before sleeping 120000 ms",
            STEP_TIMEOUT,
        )?;
        let killed = running.kill();
        let read_at = Instant::now();
        let left = sides.state(&db)?;
        let Some(lock) = left.locks.first() else {
            return Err(format!("{context}: the killed service left no lock behind"));
        };
        checks.expect(
            lock.status == "LOCK_HELD" && (0..=6000).contains(&lock.expires_in),
            || format!("{context}: the lock left behind reads {lock:?}"),
        );
        let expires = read_at + Duration::from_millis(lock.expires_in.max(0) as u64);
        let taker = sides.run(taker_side, &db, "slow").finish()?;
        checks.outcome(taker.succeeded(), &context);
        let locked = taker.exit.printed_at(|l| taker_side.took_lock(l));
        // Both sides compare `expiresAt` with their own clock, the same one here; 100 ms
        // covers the read of the lock after the kill.
        checks.expect(
            locked.is_some_and(|at| at + Duration::from_millis(100) >= expires),
            || format!("{context}: the taker took the lock before the dead owner's lease expired"),
        );
        let after = sides.state(&db)?;
        checks.applied_once(
            &after,
            &[
                ("interop-slow_before", taker_side),
                ("interop-slow", taker_side),
            ],
            &context,
        );
        checks.expect(killed.applied().is_empty(), || {
            format!(
                "{context}: the killed service applied {:?}",
                killed.applied()
            )
        });
        checks.released(&after, &context);
    }
    Ok(())
}

/// Two Java and two Rust services start together on an empty database with a, b, c and the
/// slow unit (1 s): every step applied exactly once, one `EXECUTED` row each, the lock
/// released. The Rust services start once the first Java one has scanned its units, about
/// when it reaches the database: a JVM takes a second or two to get there.
fn race(sides: &Sides<'_>, checks: &mut Checks) -> Result {
    let db = sides.fresh_database("race");
    let start = |(i, side): (usize, Side)| {
        sides
            .run(side, &db, "a,b,c,slow")
            .env("INTEROP_SLOW_MILLIS", 1000)
            .env("INTEROP_SERVICE", format!("{}-{i}", side.name()))
            .start()
    };
    let mut racers: Vec<Process> = [(0, Side::Java), (1, Side::Java)]
        .into_iter()
        .map(start)
        .collect::<Result<_>>()?;
    racers[0].wait_for("Reflections took", STEP_TIMEOUT)?;
    for racer in [(2, Side::Rust), (3, Side::Rust)] {
        racers.push(start(racer)?);
    }
    let finished: Vec<Finished> = racers.into_iter().map(Process::finish).collect();
    for run in &finished {
        checks.outcome(run.succeeded(), "racer");
    }
    let state = sides.state(&db)?;
    let steps = [
        "interop-a_before",
        "interop-a",
        "interop-b_before",
        "interop-b",
        "interop-c_before",
        "interop-c",
        "interop-slow_before",
        "interop-slow",
    ];
    let mut winners = Vec::new();
    for step in steps {
        let counter = state.counters.get(step);
        checks.expect(counter.is_some_and(|c| c.n == 1 && c.by.len() == 1), || {
            format!("`{step}` should be applied exactly once, found {counter:?}")
        });
        let rows = state.executed_rows(step);
        checks.expect(rows.len() == 1, || {
            format!(
                "`{step}` should have one EXECUTED row, found {}",
                rows.len()
            )
        });
        if let (Some(counter), [row]) = (counter, rows.as_slice()) {
            checks.expect(counter.by == [row.writer.as_str()], || {
                format!(
                    "`{step}` was applied by {:?} but recorded by {}",
                    counter.by, row.writer
                )
            });
            winners.push(format!("{step} by {}", row.writer));
        }
    }
    for system in ["system-change-00001_before", "system-change-00001"] {
        let rows = state.executed_rows(system);
        checks.expect(rows.len() == 1, || {
            format!(
                "Mongock's `{system}` should have one EXECUTED row, found {}",
                rows.len()
            )
        });
    }
    checks.released(&state, "after the race");
    checks.mongock_shaped(&state, "after the race");
    checks
        .notes
        .push(format!("applied: {}", winners.join(", ")));
    Ok(())
}

/// Whichever side creates the history and lock indexes, the other accepts them with index
/// creation off (verifies them) and on (leaves them as they are); both create the same
/// indexes; with index creation off, both refuse a database without them.
fn indexes(sides: &Sides<'_>, checks: &mut Checks) -> Result {
    let mut created = Vec::new();
    for creator in [Side::Java, Side::Rust] {
        let other = creator.other();
        let context = format!("{} created the indexes", creator.name());
        let db = sides.fresh_database("indexes");
        let run = sides.run(creator, &db, "a").finish()?;
        checks.outcome(run.succeeded(), &context);
        let indexes = sides.state(&db)?.indexes;
        for (creation, units) in [("false", "a,b"), ("true", "a,b,c")] {
            let run = sides
                .run(other, &db, units)
                .env("INTEROP_INDEX_CREATION", creation)
                .finish()?;
            let context = format!("{context}, {} with index creation {creation}", other.name());
            checks.outcome(run.succeeded(), &context);
            let now = sides.state(&db)?.indexes;
            checks.expect(now == indexes, || {
                format!("{context}: the indexes changed from {indexes:?} to {now:?}")
            });
        }
        created.push((creator, indexes));
    }
    if let [(_, java), (_, rust)] = created.as_slice() {
        checks.expect(java == rust, || {
            format!("Java creates the indexes {java:?}, Rust {rust:?}")
        });
        checks.expect(java.len() == 4, || {
            format!("expected `_id_` and one unique index on each collection, found {java:?}")
        });
        if let [_, history, _, lock] = java.as_slice() {
            checks.notes.push(format!("indexes: {history}; {lock}"));
        }
    }
    for (side, refusal) in [
        (Side::Java, "Index creation not allowed"),
        (Side::Rust, "{ executionId: 1, author: 1, changeId: 1 }"),
    ] {
        let db = sides.fresh_database("no_indexes");
        let run = sides
            .run(side, &db, "a")
            .env("INTEROP_INDEX_CREATION", "false")
            .finish()?;
        checks.outcome(
            run.failed_with(refusal),
            &format!(
                "{} with index creation off on a database without indexes",
                side.name()
            ),
        );
        let state = sides.state(&db)?;
        checks.expect(state.counters.is_empty(), || {
            format!("{} applied units without the indexes", side.name())
        });
    }
    Ok(())
}

/// The earlier history both sides import, as `migrate-interop seed-legacy` writes it: its
/// rows' `(changeId, author)` in order.
const SEEDED: [(&str, &str); 3] = [
    ("mongobee-init", "mongobee-team"),
    ("mongobee-indexes", "mongobee-team"),
    ("interop-legacy-1", "interop-legacy"),
];
/// The id and author of the legacy migration's own history row (Mongock's system change).
const LEGACY_MIGRATION: (&str, &str) = ("mongock-legacy-migration", "mongock");

/// The rows an import wrote: those whose `executionId` is `legacy_migration-...`.
fn imported_rows(state: &State) -> Vec<&Row> {
    state
        .rows
        .iter()
        .filter(|r| r.execution_id.starts_with("legacy_migration-"))
        .collect()
}

/// The imported rows' `(changeId, author, executionId)`, in order.
fn import_keys(state: &State) -> Vec<(&str, &str, &str)> {
    imported_rows(state)
        .iter()
        .map(|r| {
            (
                r.change_id.as_str(),
                r.author.as_str(),
                r.execution_id.as_str(),
            )
        })
        .collect()
}

/// The legacy migration's own rows.
fn legacy_migration_rows(state: &State) -> Vec<&Row> {
    state
        .rows
        .iter()
        .filter(|r| (r.change_id.as_str(), r.author.as_str()) == LEGACY_MIGRATION)
        .collect()
}

/// Both ways: a mongobee `dbchangelog` (two retired change sets and `interop-legacy-1`) is
/// seeded in two fresh databases; Java imports it into one, Rust into the other, each
/// applying unit a (Mongock needs a unit to run), and the imported rows are compared field by
/// field. Then the other side runs on each database with the legacy migration, unit a and
/// the change log: it does not import again, leaves a and `interop-legacy-1` as applied and
/// applies only `interop-legacy-2`; the first side then finds nothing pending.
fn legacy_import(sides: &Sides<'_>, checks: &mut Checks) -> Result {
    let mut imports = Vec::new();
    for first in [Side::Java, Side::Rust] {
        let context = format!("{} importing", first.name());
        let db = sides.fresh_database("legacy_import");
        sides.seed_legacy(&db)?;
        let run = sides
            .run(first, &db, "a")
            .env("INTEROP_LEGACY_MIGRATION", "dbchangelog")
            .finish()?;
        checks.outcome(run.succeeded(), &context);
        let state = sides.state(&db)?;
        checks.applied_once(
            &state,
            &[("interop-a_before", first), ("interop-a", first)],
            &context,
        );
        let imported: Vec<(&str, &str)> = imported_rows(&state)
            .iter()
            .map(|r| (r.change_id.as_str(), r.author.as_str()))
            .collect();
        checks.expect(imported == SEEDED, || {
            format!("{context}: imported {imported:?}, expected {SEEDED:?} in that order")
        });
        let own = legacy_migration_rows(&state);
        checks.expect(
            own.len() == 1 && own[0].state == "EXECUTED" && own[0].writer == first.name(),
            || format!("{context}: expected one EXECUTED `mongock-legacy-migration` row written by {}, found {own:?}", first.name()),
        );
        checks.expect(state.origin_rows == SEEDED.len(), || {
            format!(
                "{context}: `dbchangelog` has {} rows after the import, {} were seeded",
                state.origin_rows,
                SEEDED.len()
            )
        });
        checks.released(&state, &context);
        imports.push((first, db, state));
    }
    if let [(_, _, java), (_, _, rust)] = imports.as_slice() {
        compare_imports(java, rust, checks);
    }

    for (first, db, imported) in &imports {
        let (first, second) = (*first, first.other());
        let context = format!("{} after {} imported", second.name(), first.name());
        let run = sides
            .run(second, db, "a,legacy")
            .env("INTEROP_LEGACY_MIGRATION", "dbchangelog")
            .finish()?;
        checks.outcome(run.succeeded(), &context);
        checks.expect(run.applied() == ["interop-legacy-2"], || {
            format!(
                "{context}: applied {:?}, expected only `interop-legacy-2` (`interop-legacy-1` \
                 was imported)",
                run.applied()
            )
        });
        let state = sides.state(db)?;
        checks.expect(state.applied("interop-legacy-1") == 0, || {
            format!("{context}: the imported `interop-legacy-1` was applied")
        });
        checks.applied_once(&state, &[("interop-legacy-2", second)], &context);
        let (now, then) = (import_keys(&state), import_keys(imported));
        checks.expect(now == then, || {
            format!("{context}: imported again: the imported rows went from {then:?} to {now:?}")
        });
        let own = legacy_migration_rows(&state);
        checks.expect(own.len() == 1 && own[0].writer == first.name(), || {
            format!("{context}: expected the one `mongock-legacy-migration` row {} wrote, found {own:?}", first.name())
        });
        for (change_id, author) in SEEDED {
            let rows = state
                .rows
                .iter()
                .filter(|r| r.change_id == change_id && r.author == author)
                .count();
            checks.expect(rows == 1, || {
                format!("{context}: `{change_id}` by {author} has {rows} history rows, expected 1")
            });
        }
        let changed = changed_imports(imported, &state);
        if !changed.is_empty() {
            checks.notes.push(format!(
                "{} rewrote the rows {} imported: {}",
                second.name(),
                first.name(),
                changed.join("; ")
            ));
        }
        checks.released(&state, &context);

        let before = state;
        let run = sides
            .run(first, db, "a,legacy")
            .env("INTEROP_LEGACY_MIGRATION", "dbchangelog")
            .finish()?;
        let after = sides.state(db)?;
        checks.nothing_pending(
            &run,
            &before,
            &after,
            &format!("{} again after {}", first.name(), second.name()),
        );
    }
    Ok(())
}

/// The fields of an imported row both sides must write alike.
fn import_fields(row: &Row) -> [(&'static str, &str); 10] {
    [
        ("state", &row.state),
        ("type", &row.kind),
        ("timestamp", &row.timestamp),
        ("changeLogClass", &row.change_log_class),
        ("changeSetMethod", &row.change_set_method),
        ("systemChange", &row.system_change),
        ("metadata", &row.metadata),
        ("executionMillis", &row.execution_millis),
        ("executionHostname", &row.execution_hostname),
        ("fields", &row.fields),
    ]
}

/// Java's import against Rust's: the same rows, in the same order, field by field (the
/// `executionId` is `legacy_migration-` and the run's on both, so only its prefix is
/// compared); and the legacy migration's own row alike (state, type, `systemChange`,
/// `metadata`, fields) but for what names the code.
fn compare_imports(java: &State, rust: &State, checks: &mut Checks) {
    let (java_rows, rust_rows) = (imported_rows(java), imported_rows(rust));
    for (j, r) in java_rows.iter().zip(&rust_rows) {
        if (&j.change_id, &j.author) != (&r.change_id, &r.author) {
            continue; // the order was reported already
        }
        for ((name, jv), (_, rv)) in import_fields(j).into_iter().zip(import_fields(r)) {
            checks.expect(jv == rv, || {
                format!(
                    "the row imported for `{}`: {name} is {jv} from Java, {rv} from Rust",
                    j.change_id
                )
            });
        }
    }
    if let ([j], [r]) = (
        legacy_migration_rows(java).as_slice(),
        legacy_migration_rows(rust).as_slice(),
    ) {
        let same = |row: &Row| {
            [
                row.state.clone(),
                row.kind.clone(),
                row.system_change.clone(),
                row.metadata.clone(),
                shape(
                    row.fields
                        .strip_suffix(",checksum:string")
                        .unwrap_or(&row.fields),
                ),
            ]
        };
        checks.expect(same(j) == same(r), || {
            format!(
                "the `mongock-legacy-migration` row: Java writes {:?}, Rust {:?}",
                same(j),
                same(r)
            )
        });
        checks.notes.push(format!(
            "`mongock-legacy-migration` row: Java's names {}.{}, Rust's {}.{}",
            j.change_log_class, j.change_set_method, r.change_log_class, r.change_set_method,
        ));
    }
    let java_system: Vec<&str> = java
        .rows
        .iter()
        .filter(|r| r.system_change == "true")
        .map(|r| r.change_id.as_str())
        .collect();
    checks
        .notes
        .push(format!("system rows after Java's import: {java_system:?}"));
}

/// How the rows `before` imported differ in `after`: `<changeId> <field> <old> -> <new>`.
fn changed_imports(before: &State, after: &State) -> Vec<String> {
    let mut changed = Vec::new();
    for old in imported_rows(before) {
        let Some(new) = after
            .rows
            .iter()
            .find(|r| r.change_id == old.change_id && r.author == old.author)
        else {
            continue;
        };
        for ((name, o), (_, n)) in import_fields(old).into_iter().zip(import_fields(new)) {
            if o != n {
                changed.push(format!("{} {name} {o} -> {n}", old.change_id));
            }
        }
    }
    changed
}

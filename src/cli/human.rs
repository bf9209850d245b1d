//! What the commands print: tables and lines for people, or the `--json` objects; the live
//! progress of `run` and `undo`.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mongodb::bson::Document;

use super::failure::{Exit, Failure};
use super::out::{out, outln};
use super::{json, Done, Entry};
use crate::__private::{format_utc, write_table};
use crate::batch::{LeftOver, StoredCheckpoint, CHECKPOINT_COLLECTION};
use crate::{
    AcceptedChecksum, Error, Event, HistoryEntry, Outcome, Plan, Progress as Work, Report,
    RunStatus, SkipReason, Status, UnitReport, UnitState, Unlock, Validation,
};

const GREEN: &str = "32";
const RED: &str = "31";
const YELLOW: &str = "33";
const BOLD_RED: &str = "1;31";
const BOLD: &str = "1";

/// Where and how the commands print.
pub(super) struct Output {
    /// `--json`: one object on stdout, nothing else there.
    pub(super) json: bool,
    /// Whether stdout, and stderr, take colour.
    colour: Colour,
    colour_stderr: Colour,
}

/// ANSI colour, on or off.
#[derive(Debug, Clone, Copy)]
struct Colour(bool);

impl Colour {
    /// On for a terminal, unless `NO_COLOR` is set to anything but the empty string.
    fn detect(terminal: bool) -> Self {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Colour(terminal && !no_colour)
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

impl Output {
    pub(super) fn new(json: bool) -> Self {
        Output {
            json,
            colour: Colour::detect(io::stdout().is_terminal()),
            colour_stderr: Colour::detect(io::stderr().is_terminal()),
        }
    }

    /// `n noun` with an `s` unless `n` is 1.
    pub(super) fn plural(&self, n: usize, noun: &str) -> String {
        format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
    }

    /// The error and its causes on stderr, with the database it happened in, if one of
    /// several.
    pub(super) fn error(&self, database: Option<&str>, failure: &Failure) {
        let mut stderr = io::stderr().lock();
        let place = database.map_or(String::new(), |db| format!("in `{db}`: "));
        let _ = writeln!(
            stderr,
            "{} {place}{}",
            self.colour_stderr.paint(BOLD_RED, "error:"),
            failure.error
        );
        for cause in failure.causes() {
            let _ = writeln!(stderr, "  caused by: {cause}");
        }
    }

    fn status(
        &self,
        status: &Status,
        check: bool,
        checkpoints: &[(StoredCheckpoint, Option<LeftOver>)],
    ) {
        out!("{status}");
        if !checkpoints.is_empty() {
            outln!("batch checkpoints in `{CHECKPOINT_COLLECTION}`:");
            for (checkpoint, left_over) in checkpoints {
                outln!("  {}", CheckpointLine(checkpoint, *left_over));
            }
        }
        if check {
            if status.is_up_to_date() {
                outln!("{}", self.colour.paint(GREEN, "up to date"));
            } else {
                let mut verdict = format!(
                    "not up to date: {} pending, {} changed since they ran",
                    status.pending().count(),
                    status.drifted().count()
                );
                let blocking = status.blocking().count();
                if blocking > 0 {
                    verdict.push_str(&format!(
                        ", {blocking} applied in the history but not in this binary (a run \
                         refuses to start)"
                    ));
                }
                outln!("{}", self.colour.paint(YELLOW, &verdict));
            }
        }
    }

    fn plan(&self, plan: &Plan) {
        out!("{plan}");
    }

    fn history(&self, history: &[HistoryEntry<Document>], total: usize) {
        if total == 0 {
            outln!("the history is empty");
        } else if history.is_empty() {
            let entries = if total == 1 { "entry" } else { "entries" };
            outln!("{total} history {entries}, none shown");
        } else {
            out!("{}", HistoryTable(history));
        }
    }

    fn unlock(&self, unlock: &Unlock) {
        let code = if unlock.is_held() { YELLOW } else { GREEN };
        outln!("{}", self.colour.paint(code, &unlock.to_string()));
    }

    fn validation(&self, validation: &Validation) {
        out!("{validation}");
    }

    fn accepted(&self, accepted: &[AcceptedChecksum]) {
        if accepted.is_empty() {
            outln!("no applied change unit changed since it ran; nothing to accept");
        }
        for a in accepted {
            outln!(
                "recorded the new checksum of `{}` by `{}` ({} -> {})",
                a.id,
                a.author,
                a.drift.recorded,
                a.drift.current
            );
        }
    }

    /// The summary of `run` or `undo`, after the per-unit lines of the progress.
    fn report(&self, report: &Report, command: &str) {
        let summary = match report.status {
            RunStatus::Disabled => "migrations are disabled in this runner; nothing ran".into(),
            RunStatus::Completed => self.summary(report, command == "undo"),
            _ => "another runner holds the migration lock; nothing ran".into(),
        };
        outln!("{summary}");
        // Units that failed without stopping the run (`fail_fast = false`).
        for unit in &report.units {
            if let Outcome::Failed { error, .. } = &unit.outcome {
                outln!("  {}", unit_error(unit.id, error));
            }
        }
    }

    fn summary(&self, report: &Report, undo: bool) -> String {
        let count = |f: fn(&Outcome) -> bool| report.units.iter().filter(|u| f(&u.outcome)).count();
        let done = count(|o| {
            matches!(
                o,
                Outcome::Executed | Outcome::ExecutedAgain | Outcome::RolledBack
            )
        });
        let failed = count(|o| matches!(o, Outcome::Failed { .. }));
        let later = report.units.iter().find_map(|u| match &u.outcome {
            Outcome::Skipped(SkipReason::AfterTarget { target }) => Some(target),
            _ => None,
        });
        let left = count(|o| matches!(o, Outcome::Skipped(SkipReason::AfterTarget { .. })));
        let mut text = match (done, undo) {
            (0, false) if failed == 0 => "nothing to apply: the database is up to date".to_owned(),
            (0, true) => "nothing to undo".to_owned(),
            (n, false) => format!(
                "applied {} in {} ms",
                self.plural(n, "change unit"),
                report.elapsed.as_millis()
            ),
            (n, true) => format!(
                "undid {} in {} ms; {} pending again",
                self.plural(n, "change unit"),
                report.elapsed.as_millis(),
                if n == 1 { "it is" } else { "they are" }
            ),
        };
        if failed > 0 {
            text.push_str(&format!("; {failed} failed"));
        }
        if let Some(target) = later {
            text.push_str(&format!("; {left} ordered after `{target}` left for later"));
        }
        let code = if failed > 0 { RED } else { GREEN };
        self.colour.paint(code, &text)
    }

    /// What a command found or did in one database: its JSON object, or its tables and lines.
    pub(super) fn done(&self, done: &Done) {
        if self.json {
            return json::print(&json::done(done));
        }
        self.show(done);
    }

    fn show(&self, done: &Done) {
        match done {
            Done::Status {
                status,
                check,
                checkpoints,
                ..
            } => self.status(status, *check, checkpoints),
            Done::Plan { plan, .. } => self.plan(plan),
            Done::History { entries, total } => self.history(entries, *total),
            Done::Report { report, command } => self.report(report, command),
            Done::Unlock(unlock) => self.unlock(unlock),
            Done::CorruptLockDeleted(corrupt) => {
                outln!("{}", self.colour.paint(GREEN, &corrupt.to_string()))
            }
            Done::Validation(validation) => self.validation(validation),
            Done::Accepted(accepted) => self.accepted(accepted),
        }
    }

    /// What a command did in each database of `--databases`: errors on stderr, then one
    /// JSON object, or a table (`run` and `undo`, which `changes` data; `status`) and a
    /// section per database (the other commands, and `status`).
    pub(super) fn databases(&self, command: &str, changes: bool, entries: &[Entry], exit: Exit) {
        for entry in entries {
            if let Err(failure) = &entry.result {
                self.error(Some(&entry.database), failure);
            }
        }
        if self.json {
            return json::print(&json::databases(command, entries, exit));
        }
        if !changes {
            for entry in entries {
                outln!(
                    "{}",
                    self.colour
                        .paint(BOLD, &format!("database `{}`", entry.database))
                );
                match &entry.result {
                    Ok(done) => self.show(done),
                    Err(failure) => {
                        outln!("{}", self.colour.paint(RED, &failure.error.to_string()))
                    }
                }
                outln!();
            }
            if command != "status" {
                return;
            }
        }
        let done = if command == "undo" {
            "UNDONE"
        } else {
            "APPLIED"
        };
        let mut rows = vec![["DATABASE", "OUTCOME", done, "PENDING", "ERROR"]
            .map(str::to_owned)
            .to_vec()];
        for entry in entries {
            let (outcome, applied, pending, error) = row(entry);
            rows.push(vec![
                entry.database.clone(),
                outcome.to_owned(),
                applied.map_or("-".to_owned(), |n| n.to_string()),
                pending.map_or("-".to_owned(), |n| n.to_string()),
                error,
            ]);
        }
        out!("{}", Table(rows));
        // `2 databases: 1 completed, 1 failed`, outcomes in order of first appearance.
        let mut tally: Vec<(&str, usize)> = Vec::new();
        for entry in entries {
            let outcome = row(entry).0;
            match tally.iter_mut().find(|(o, _)| *o == outcome) {
                Some((_, n)) => *n += 1,
                None => tally.push((outcome, 1)),
            }
        }
        let tally: Vec<String> = tally.iter().map(|(o, n)| format!("{n} {o}")).collect();
        let verdict = format!(
            "{}: {}",
            self.plural(entries.len(), "database"),
            tally.join(", ")
        );
        let code = match exit {
            Exit::Ok => GREEN,
            Exit::NotUpToDate | Exit::Locked => YELLOW,
            Exit::Failed | Exit::Usage => RED,
        };
        outln!("{}", self.colour.paint(code, &verdict));
    }

    /// The progress display of a `run` or an `undo`: nothing with `--json`. `width` is that
    /// of the database names put before each line, 0 for a single database.
    pub(super) fn progress(&self, verb: Verb, width: usize) -> Progress {
        let multi = (!self.json && io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Progress(Arc::new(Live {
            multi,
            lines: !self.json,
            colour: self.colour,
            verb,
            width,
        }))
    }
}

/// A summary row of one database: its outcome, the units applied (or undone) or executed,
/// those pending, and its error.
fn row(entry: &Entry) -> (&'static str, Option<usize>, Option<usize>, String) {
    let counts = entry.counts;
    match &entry.result {
        Ok(Done::Status { status, .. }) => {
            let executed = status
                .units
                .iter()
                .filter(|u| matches!(u.state, UnitState::Executed { .. }))
                .count();
            let outcome = if status.is_up_to_date() {
                "up to date"
            } else {
                "not up to date"
            };
            (
                outcome,
                Some(executed),
                Some(status.pending().count()),
                String::new(),
            )
        }
        Ok(Done::Report { report, .. }) => {
            let failed = report.units.iter().find_map(|u| match &u.outcome {
                Outcome::Failed { error, .. } => Some(unit_error(u.id, error)),
                _ => None,
            });
            let outcome = match (report.status, &failed) {
                (RunStatus::Disabled, _) => "disabled",
                (RunStatus::Completed, None) => "completed",
                (RunStatus::Completed, Some(_)) => "failed",
                _ => "locked",
            };
            (
                outcome,
                Some(counts.applied),
                counts.pending,
                failed.unwrap_or_default(),
            )
        }
        Ok(_) => ("done", None, None, String::new()),
        Err(failure) => {
            // `checksum_drift` reads `checksum drift`.
            let outcome = match failure.kind() {
                "not_run" => "not started",
                "checksum_drift" => "checksum drift",
                kind => kind,
            };
            let mut error = failure.error.to_string();
            for cause in failure.causes() {
                error.push_str(": ");
                error.push_str(&cause);
            }
            (outcome, Some(counts.applied), counts.pending, error)
        }
    }
}

/// The error of the unit `id`, which names it once: the runner's errors start with
/// ``change unit `id` failed``, others get `id: ` in front.
fn unit_error(id: &str, error: &str) -> String {
    if error.contains(&format!("`{id}`")) {
        error.to_owned()
    } else {
        format!("{id}: {error}")
    }
}

/// Rows as an aligned table.
struct Table(Vec<Vec<String>>);

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_table(f, &self.0)
    }
}

/// What a progress display says a unit does.
#[derive(Debug, Clone, Copy)]
pub(super) enum Verb {
    Apply,
    Undo,
}

/// The progress of a `run` or an `undo`: on a terminal, a spinner line per database at work
/// naming the unit and how far it got; one line per unit once it is done.
pub(super) struct Progress(Arc<Live>);

struct Live {
    /// The spinners, on a terminal.
    multi: Option<MultiProgress>,
    /// Whether the per-unit lines are printed (not with `--json`).
    lines: bool,
    colour: Colour,
    verb: Verb,
    /// The width of the database names, 0 for a single database.
    width: usize,
}

/// Units applied (or undone) by a run (or an undo), and those pending afterwards.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    pub(super) applied: usize,
    pub(super) pending: Option<usize>,
}

/// A unit that a run or an undo finished (or stopped at), as its report lists it.
#[derive(Debug, Clone)]
pub(super) struct Finished {
    pub(super) id: String,
    pub(super) author: String,
    pub(super) order: String,
    pub(super) outcome: Outcome,
    pub(super) elapsed: Option<Duration>,
}

impl From<&UnitReport> for Finished {
    fn from(report: &UnitReport) -> Self {
        Finished {
            id: report.id.to_owned(),
            author: report.author.clone().into_owned(),
            order: report.order.to_owned(),
            outcome: report.outcome.clone(),
            elapsed: report.elapsed,
        }
    }
}

/// A unit started and not finished yet: its id, author, order and start.
type Started = (String, String, String, Instant);

/// The progress of a run or an undo in one database.
#[derive(Clone)]
pub(super) struct Tracker(Arc<Track>);

struct Track {
    live: Arc<Live>,
    /// The database's name, when there are several.
    database: Option<String>,
    bar: Mutex<Option<ProgressBar>>,
    /// What the spinner says before the unit's own progress.
    doing: Mutex<String>,
    counts: Mutex<Counts>,
    started: Mutex<Vec<Started>>,
    finished: Mutex<Vec<Finished>>,
}

impl Progress {
    /// The progress in `database` (`None` for the only one).
    pub(super) fn tracker(&self, database: Option<&str>) -> Tracker {
        Tracker(Arc::new(Track {
            live: Arc::clone(&self.0),
            database: database.map(str::to_owned),
            bar: Mutex::new(None),
            doing: Mutex::new(String::new()),
            counts: Mutex::new(Counts::default()),
            started: Mutex::new(Vec::new()),
            finished: Mutex::new(Vec::new()),
        }))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tracker {
    /// Shows the spinner, when on a terminal.
    pub(super) fn start(&self) {
        let Some(multi) = &self.0.live.multi else {
            return;
        };
        let bar = multi.add(ProgressBar::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .expect("a valid progress template"),
        );
        bar.set_message(self.0.prefixed("reading the history, taking the lock"));
        bar.enable_steady_tick(Duration::from_millis(100));
        *lock(&self.0.bar) = Some(bar);
    }

    /// The callback for [`Runner::on_unit`](crate::Runner::on_unit).
    pub(super) fn unit_listener(&self) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
        let track = Arc::clone(&self.0);
        move |event| track.event(event)
    }

    /// The callback for [`Runner::on_progress`](crate::Runner::on_progress): the long unit's
    /// progress on the spinner line.
    pub(super) fn progress_listener(&self) -> impl Fn(&Work) + Send + Sync + 'static {
        let track = Arc::clone(&self.0);
        move |work| {
            if let Some(bar) = &*lock(&track.bar) {
                bar.set_message(format!("{}  {work}", lock(&track.doing)));
            }
        }
    }

    /// Removes the spinner.
    pub(super) fn finish(&self) {
        if let Some(bar) = lock(&self.0.bar).take() {
            bar.finish_and_clear();
            if let Some(multi) = &self.0.live.multi {
                multi.remove(&bar);
            }
        }
    }

    pub(super) fn set_pending(&self, pending: Option<usize>) {
        lock(&self.0.counts).pending = pending;
    }

    pub(super) fn counts(&self) -> Counts {
        *lock(&self.0.counts)
    }

    /// The units finished so far, in the order they finished.
    pub(super) fn units(&self) -> Vec<Finished> {
        lock(&self.0.finished).clone()
    }

    /// Records the unit that `error` stopped the run or the undo at, with its line, unless
    /// the runner reported it finished already (a run does; an undo does not).
    pub(super) fn fail(&self, error: &Error) {
        let Some(failed) = error.as_execution() else {
            return;
        };
        let started = {
            let mut started = lock(&self.0.started);
            let at = started.iter().position(|s| s.0 == failed.unit_id);
            at.map(|at| started.remove(at))
        };
        let Some((id, author, order, start)) = started else {
            return;
        };
        let mut message = error.to_string();
        let mut source = StdError::source(error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        self.0.finish(Finished {
            id,
            author,
            order,
            outcome: Outcome::Failed {
                error: message,
                rolled_back: failed.rolled_back,
            },
            elapsed: Some(start.elapsed()),
        });
    }
}

impl Track {
    /// `text`, after the database's name when there are several.
    fn prefixed(&self, text: &str) -> String {
        match &self.database {
            Some(db) => format!("{db:<width$}  {text}", width = self.live.width),
            None => text.to_owned(),
        }
    }

    fn event(&self, event: &Event<'_>) {
        match event {
            Event::UnitStarted { id, author, order } => {
                lock(&self.started).push((
                    (*id).to_owned(),
                    (*author).to_owned(),
                    (*order).to_owned(),
                    Instant::now(),
                ));
                let doing = match self.live.verb {
                    Verb::Apply => "applying",
                    Verb::Undo => "undoing",
                };
                let doing = self.prefixed(&format!("{doing} {order}  {id}"));
                if let Some(bar) = &*lock(&self.bar) {
                    bar.set_message(doing.clone());
                }
                *lock(&self.doing) = doing;
            }
            Event::UnitFinished(report) => {
                lock(&self.started).retain(|s| !(s.0 == report.id && s.1 == report.author));
                self.finish(Finished::from(*report));
            }
            _ => {}
        }
    }

    /// Counts and keeps a finished unit, and prints its line.
    fn finish(&self, unit: Finished) {
        if matches!(
            unit.outcome,
            Outcome::Executed | Outcome::ExecutedAgain | Outcome::RolledBack
        ) {
            lock(&self.counts).applied += 1;
        }
        if self.live.lines {
            let line = self.prefixed(&self.line(&unit));
            match &self.live.multi {
                Some(multi) => {
                    let _ = multi.println(line);
                }
                None => outln!("{line}"),
            }
        }
        lock(&self.finished).push(unit);
    }

    /// `✓ applied    001  create-widgets            12 ms`, or the failure.
    fn line(&self, report: &Finished) -> String {
        let colour = self.live.colour;
        let ms = report.elapsed.map_or(0, |e| e.as_millis());
        let (mark, done) = match (&report.outcome, self.live.verb) {
            (Outcome::Failed { .. }, _) => (colour.paint(RED, "✗"), "failed"),
            (Outcome::ExecutedAgain, _) => (colour.paint(GREEN, "✓"), "reapplied"),
            (_, Verb::Apply) => (colour.paint(GREEN, "✓"), "applied"),
            (_, Verb::Undo) => (colour.paint(GREEN, "✓"), "undone"),
        };
        let (order, id) = (&report.order, &report.id);
        match report.outcome {
            Outcome::Failed { .. } => format!("{mark} {done:<9}  {order}  {id}"),
            _ => format!("{mark} {done:<9}  {order}  {id:<24}  {ms} ms"),
        }
    }
}

/// The history as an aligned table, newest first.
struct HistoryTable<'h>(&'h [HistoryEntry<Document>]);

impl fmt::Display for HistoryTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "TIMESTAMP (UTC)",
            "ID",
            "AUTHOR",
            "STATE",
            "TYPE",
            "MS",
            "HOST",
            "EXECUTION",
        ];
        let mut rows = vec![header.map(str::to_owned).to_vec()];
        for e in self.0 {
            rows.push(vec![
                json::recorded_at(e.timestamp).map_or("-".to_owned(), format_utc),
                e.change_id.clone(),
                e.author.clone(),
                e.state.as_str().to_owned(),
                e.entry_type.as_str().to_owned(),
                e.execution_millis.to_string(),
                text_or_dash(&e.execution_hostname),
                text_or_dash(&e.execution_id),
            ]);
        }
        write_table(f, &rows)
    }
}

/// `text`, or `-` for a field the history row leaves out.
fn text_or_dash(text: &str) -> String {
    if text.is_empty() { "-" } else { text }.to_owned()
}

/// One line of `status` about a batch checkpoint.
struct CheckpointLine<'a>(&'a StoredCheckpoint, Option<LeftOver>);

impl fmt::Display for CheckpointLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, left_over) = (self.0, self.1);
        write!(f, "`{}`", c.name)?;
        if let Some(namespace) = &c.namespace {
            write!(f, " on `{namespace}`")?;
        }
        write!(f, ": {} documents done", c.done)?;
        if let Some(last_id) = &c.last_id {
            write!(f, " up to _id {last_id}")?;
        }
        if let Some(left_over) = left_over {
            let why = match left_over {
                LeftOver::Recorded => "its run recorded the step",
                LeftOver::RunsAgain => "its unit runs again and starts over",
                _ => "nothing resumes from it",
            };
            write!(f, ", left over ({why}; safe to delete)")?;
        } else if c.complete {
            write!(f, ", complete (removed once its unit is recorded)")?;
        }
        match (&c.change_id, c.step) {
            (Some(id), Some(step)) => {
                write!(f, ", last moved by `#[{}]` of `{id}`", step.attribute())?;
            }
            (Some(id), None) => write!(f, ", last moved by `{id}`")?,
            _ => {}
        }
        match (&c.execution_id, &c.change_id) {
            (Some(run), Some(_)) => write!(f, " in run {run}")?,
            (Some(run), None) => write!(f, ", last moved by run {run}")?,
            (None, _) => {}
        }
        Ok(())
    }
}

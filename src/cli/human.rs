//! What the commands print: tables and lines for people, or the `--json` objects; the live
//! progress of `run` and `undo`.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mongodb::bson::Document;

use super::{json, Failure};
use crate::__private::{format_utc, write_table};
use crate::{
    AcceptedChecksum, Event, HistoryEntry, Outcome, Plan, Report, RunStatus, SkipReason, Status,
    UnitReport, Unlock, Validation,
};

const GREEN: &str = "32";
const RED: &str = "31";
const YELLOW: &str = "33";
const BOLD_RED: &str = "1;31";

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

    /// The error and its causes on stderr.
    pub(super) fn error(&self, failure: &Failure) {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{} {}",
            self.colour_stderr.paint(BOLD_RED, "error:"),
            failure.error
        );
        for cause in failure.causes() {
            let _ = writeln!(stderr, "  caused by: {cause}");
        }
    }

    pub(super) fn status(&self, status: &Status, check: bool) {
        if self.json {
            return json::print(&json::status(status));
        }
        print!("{status}");
        if check {
            if status.is_up_to_date() {
                println!("{}", self.colour.paint(GREEN, "up to date"));
            } else {
                let verdict = format!(
                    "not up to date: {} pending, {} changed since they ran",
                    status.pending().count(),
                    status.drifted().count()
                );
                println!("{}", self.colour.paint(YELLOW, &verdict));
            }
        }
    }

    pub(super) fn plan(&self, plan: &Plan, command: &str) {
        if self.json {
            return json::print(&json::plan(plan, command));
        }
        print!("{plan}");
    }

    pub(super) fn history(&self, history: &[HistoryEntry<Document>]) {
        if self.json {
            return json::print(&json::history(history));
        }
        if history.is_empty() {
            println!("the history is empty");
        } else {
            print!("{}", HistoryTable(history));
        }
    }

    pub(super) fn unlock(&self, unlock: &Unlock) {
        if self.json {
            return json::print(&json::unlock(unlock));
        }
        let code = if unlock.is_held() { YELLOW } else { GREEN };
        println!("{}", self.colour.paint(code, &unlock.to_string()));
    }

    pub(super) fn validation(&self, validation: &Validation) {
        if self.json {
            return json::print(&json::validation(validation));
        }
        print!("{validation}");
    }

    pub(super) fn accepted(&self, accepted: &[AcceptedChecksum]) {
        if self.json {
            return json::print(&json::accepted(accepted));
        }
        if accepted.is_empty() {
            println!("no applied change unit changed since it ran; nothing to accept");
        }
        for a in accepted {
            println!(
                "recorded the new checksum of `{}` by `{}` ({} -> {})",
                a.id, a.author, a.drift.recorded, a.drift.current
            );
        }
    }

    /// The summary of `run` or `undo`, after the per-unit lines of the progress.
    pub(super) fn report(&self, report: &Report, command: &str) {
        if self.json {
            return json::print(&json::report(report, command));
        }
        let summary = match report.status {
            RunStatus::Disabled => "migrations are disabled in this runner; nothing ran".into(),
            RunStatus::Completed => self.summary(report, command == "undo"),
            _ => "another runner holds the migration lock; nothing ran".into(),
        };
        println!("{summary}");
        // Units that failed without stopping the run (`fail_fast = false`).
        for unit in &report.units {
            if let Outcome::Failed { error, .. } = &unit.outcome {
                println!("  {}: {error}", unit.id);
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

    /// The progress display of a `run` or an `undo`: nothing with `--json`.
    pub(super) fn progress(&self, verb: Verb) -> Progress {
        if self.json {
            return Progress(None);
        }
        let bar = io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .expect("a valid progress template"),
            );
            bar.set_message("reading the history, taking the lock");
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress(Some(Arc::new(Live {
            bar: Mutex::new(bar),
            colour: self.colour,
            verb,
        })))
    }
}

/// What a progress display says a unit does.
#[derive(Debug, Clone, Copy)]
pub(super) enum Verb {
    Apply,
    Undo,
}

/// The progress of a `run` or an `undo`: a spinner line naming the unit at work on a
/// terminal, and one line per unit once it is done.
pub(super) struct Progress(Option<Arc<Live>>);

struct Live {
    bar: Mutex<Option<ProgressBar>>,
    colour: Colour,
    verb: Verb,
}

impl Progress {
    /// The callback for [`Runner::on_unit`](crate::Runner::on_unit).
    pub(super) fn listener(&self) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
        let live = self.0.clone();
        move |event| {
            if let Some(live) = &live {
                live.event(event);
            }
        }
    }

    /// Removes the spinner.
    pub(super) fn finish(&self) {
        if let Some(live) = &self.0 {
            if let Some(bar) = live.bar.lock().expect("progress lock").take() {
                bar.finish_and_clear();
            }
        }
    }
}

impl Live {
    fn event(&self, event: &Event<'_>) {
        let bar = self.bar.lock().expect("progress lock");
        match event {
            Event::UnitStarted { id, order, .. } => {
                if let Some(bar) = &*bar {
                    let doing = match self.verb {
                        Verb::Apply => "applying",
                        Verb::Undo => "undoing",
                    };
                    bar.set_message(format!("{doing} {order}  {id}"));
                }
            }
            Event::UnitFinished(report) => {
                let line = self.line(report);
                match &*bar {
                    Some(bar) => bar.suspend(|| println!("{line}")),
                    None => println!("{line}"),
                }
            }
            _ => {}
        }
    }

    /// `✓ applied    001  create-widgets            12 ms`, or the failure.
    fn line(&self, report: &UnitReport) -> String {
        let ms = report.elapsed.map_or(0, |e| e.as_millis());
        let (mark, done) = match (&report.outcome, self.verb) {
            (Outcome::Failed { .. }, _) => (self.colour.paint(RED, "✗"), "failed"),
            (Outcome::ExecutedAgain, _) => (self.colour.paint(GREEN, "✓"), "reapplied"),
            (_, Verb::Apply) => (self.colour.paint(GREEN, "✓"), "applied"),
            (_, Verb::Undo) => (self.colour.paint(GREEN, "✓"), "undone"),
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
                format_utc(e.timestamp),
                e.change_id.clone(),
                e.author.clone(),
                e.state.as_str().to_owned(),
                e.entry_type.as_str().to_owned(),
                e.execution_millis.to_string(),
                e.execution_hostname.clone(),
                e.execution_id.clone(),
            ]);
        }
        write_table(f, &rows)
    }
}

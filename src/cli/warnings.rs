//! Warnings for the person at the terminal: the runner reports drift, units whose writes escape
//! their transaction and the like through `tracing`, which a command-line program has no
//! subscriber for unless the application installs one.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Prints the runner's WARN events to standard error, one line each, unless the application
/// installed a subscriber of its own. Errors are the command's own output.
pub(super) fn install() {
    if !tracing::dispatcher::has_been_set() {
        // Fails only when another thread installed one meanwhile, which is as good.
        let _ = tracing::subscriber::set_global_default(StderrWarnings);
    }
}

struct StderrWarnings;

impl Subscriber for StderrWarnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() == Level::WARN
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        super::out::warn(format_args!("warning: {line}"));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// An event as `unit: message (field: value, ...)`.
#[derive(Default)]
struct Line {
    unit: Option<String>,
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "id" => self.unit = Some(value.to_owned()),
            "message" => self.message = value.to_owned(),
            name => {
                let _ = write!(self.fields, ", {name}: {value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "id" => self.unit = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            name => {
                let _ = write!(self.fields, ", {name}: {value:?}");
            }
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(unit) = &self.unit {
            write!(f, "change unit `{unit}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(fields) = self.fields.strip_prefix(", ") {
            write!(f, " ({fields})")?;
        }
        Ok(())
    }
}

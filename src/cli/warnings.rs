//! Warnings for the person at the terminal: the runner reports drift, units whose writes escape
//! their transaction and the like through `tracing`, which a command-line program has no
//! subscriber for unless the application installs one.

use std::fmt;

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

/// An event as one sentence about its unit, then its other fields: `change unit `id`
/// changed since it ran; ... (recorded: ..., current: ...)`.
#[derive(Default)]
struct Line {
    unit: Option<String>,
    message: String,
    /// The `error` field, kept apart: it may tell the whole story itself.
    error: Option<String>,
    fields: Vec<(&'static str, String)>,
}

impl Line {
    fn record(&mut self, field: &Field, value: String) {
        match field.name() {
            "id" => self.unit = Some(value),
            "message" => self.message = value,
            "error" => self.error = Some(value),
            name => self.fields.push((name, value)),
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

/// `message` about the unit `id`, naming it once: its `change unit` (or `the change unit`)
/// becomes ``change unit `id` ``; a message that does not mention it gets the unit in front.
fn about_unit(id: &str, message: &str) -> String {
    let named = format!("change unit `{id}`");
    if let Some(rest) = message.strip_prefix("change unit ") {
        format!("{named} {rest}")
    } else if message.contains("the change unit") {
        message.replacen("the change unit", &named, 1)
    } else {
        format!("{named}: {message}")
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The runner's advice names its method; here the command does it.
        let message = self
            .message
            .replace("`accept_checksums`", "`accept-checksums`");
        let mut error = self.error.as_deref();
        let sentence = match (&self.unit, error) {
            // `change unit `x` failed in ...: cause` already says what the message's first
            // clause (`change unit failed`) does: it stands in for that clause.
            (Some(id), Some(text)) if text.starts_with(&format!("change unit `{id}` ")) => {
                error = None;
                match message.split_once("; ") {
                    Some((_, rest)) => format!("{text}; {rest}"),
                    None => text.to_owned(),
                }
            }
            (Some(id), _) => about_unit(id, &message),
            (None, _) => message,
        };
        f.write_str(&sentence)?;
        let fields: Vec<String> = error
            .map(|e| format!("error: {e}"))
            .into_iter()
            .chain(
                self.fields
                    .iter()
                    .map(|(name, value)| format!("{name}: {value}")),
            )
            .collect();
        if !fields.is_empty() {
            write!(f, " ({})", fields.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(unit: Option<&str>, message: &str, error: Option<&str>) -> String {
        Line {
            unit: unit.map(str::to_owned),
            message: message.to_owned(),
            error: error.map(str::to_owned),
            fields: Vec::new(),
        }
        .to_string()
    }

    #[test]
    fn a_warning_names_its_unit_once() {
        assert_eq!(
            line(
                Some("u003"),
                "change unit failed; fail_fast is off, continuing",
                Some("change unit `u003` failed in `#[execution]`: boom"),
            ),
            "change unit `u003` failed in `#[execution]`: boom; fail_fast is off, continuing"
        );
        assert_eq!(
            line(
                Some("u001"),
                "change unit changed since it ran; review the edit, then accept it with \
                 `accept_checksums`",
                None,
            ),
            "change unit `u001` changed since it ran; review the edit, then accept it with \
             `accept-checksums`"
        );
        assert_eq!(
            line(
                Some("u002"),
                "the change unit runs in a transaction, but its `#[execution]` method takes no \
                 session: its writes escape the transaction",
                None,
            ),
            "change unit `u002` runs in a transaction, but its `#[execution]` method takes no \
             session: its writes escape the transaction"
        );
        assert_eq!(
            line(
                Some("u004"),
                "recording the change unit failed; retrying",
                Some("timeout")
            ),
            "recording change unit `u004` failed; retrying (error: timeout)"
        );
        assert_eq!(
            line(
                None,
                "the migration lock could not be released",
                Some("gone")
            ),
            "the migration lock could not be released (error: gone)"
        );
    }
}

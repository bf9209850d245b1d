//! A run's lifecycle events and the callbacks that receive them.

use crate::error::Error;
use crate::report::{Report, UnitReport};

/// A run's lifecycle event, passed to the callbacks of
/// [`Runner::on_started`](crate::Runner::on_started) and friends.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The lock is held and pending units are about to run.
    Started {
        /// The run's execution id.
        execution_id: &'a str,
        /// The ids of the pending units, in order.
        pending: &'a [&'a str],
    },
    /// The run finished.
    Succeeded(&'a Report),
    /// The run failed.
    Failed(&'a Error),
    /// A unit is about to run, or, in an undo, to be undone.
    UnitStarted {
        /// The unit id.
        id: &'a str,
        /// The author it runs as.
        author: &'a str,
        /// Its order key.
        order: &'a str,
    },
    /// A unit finished: it ran, was undone, or failed on its own (with `fail_fast` or
    /// without). An error that stops the whole operation (the store, the lock, a failed
    /// undo) ends it without this event; the operation returns that error.
    ///
    /// Under [`TransactionStrategy::PerRun`](crate::TransactionStrategy::PerRun) the units
    /// share one transaction: every unit starts before the first finishes, and they finish
    /// together when it commits.
    UnitFinished(&'a UnitReport),
}

type Listener = Box<dyn Fn(&Event<'_>) + Send + Sync>;

/// The callbacks registered with `on_started`, `on_success` and `on_failure`.
#[derive(Default)]
pub(crate) struct Listeners {
    started: Vec<Listener>,
    succeeded: Vec<Listener>,
    failed: Vec<Listener>,
    unit: Vec<Listener>,
}

impl Listeners {
    pub(crate) fn on_started(&mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) {
        self.started.push(Box::new(f));
    }

    pub(crate) fn on_success(&mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) {
        self.succeeded.push(Box::new(f));
    }

    pub(crate) fn on_failure(&mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) {
        self.failed.push(Box::new(f));
    }

    pub(crate) fn on_unit(&mut self, f: impl Fn(&Event<'_>) + Send + Sync + 'static) {
        self.unit.push(Box::new(f));
    }

    /// Calls every callback registered for `event`'s kind, in registration order.
    pub(crate) fn emit(&self, event: &Event<'_>) {
        let listeners = match event {
            Event::Started { .. } => &self.started,
            Event::Succeeded(_) => &self.succeeded,
            Event::Failed(_) => &self.failed,
            Event::UnitStarted { .. } | Event::UnitFinished(_) => &self.unit,
        };
        for listener in listeners {
            listener(event);
        }
    }
}

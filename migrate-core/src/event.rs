//! A run's lifecycle events and the callbacks that receive them.

use crate::error::Error;
use crate::report::Report;

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
}

type Listener = Box<dyn Fn(&Event<'_>) + Send + Sync>;

/// The callbacks registered with `on_started`, `on_success` and `on_failure`.
#[derive(Default)]
pub(crate) struct Listeners {
    started: Vec<Listener>,
    succeeded: Vec<Listener>,
    failed: Vec<Listener>,
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

    /// Calls every callback registered for `event`'s kind, in registration order.
    pub(crate) fn emit(&self, event: &Event<'_>) {
        let listeners = match event {
            Event::Started { .. } => &self.started,
            Event::Succeeded(_) => &self.succeeded,
            Event::Failed(_) => &self.failed,
        };
        for listener in listeners {
            listener(event);
        }
    }
}

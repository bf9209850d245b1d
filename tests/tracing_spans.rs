//! Every unit runs inside a `change_unit` span that carries its id, and the warnings a run
//! logs name the unit they are about.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use migrate::{change_unit, execution, rollback_execution, BoxError, Dep, DescribeUnit};
use migrate_core::memory::{MemorySession, MemoryStore};
use support::recorder::Recorder;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records `change_unit` spans with their `id` field, and which spans are entered now.
#[derive(Default, Clone)]
struct UnitSpans {
    next: Arc<AtomicU64>,
    spans: Arc<Mutex<Vec<(u64, String)>>>,
    current: Arc<Mutex<Vec<u64>>>,
    /// WARN events, as `<id field>: <message>`.
    warnings: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
struct IdField(Option<String>, String);

impl Visit for IdField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "id" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "id" => self.0 = Some(format!("{value:?}")),
            "message" => self.1 = format!("{value:?}"),
            _ => {}
        }
    }
}

impl Subscriber for UnitSpans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        if attrs.metadata().name() == "change_unit" {
            let mut field = IdField::default();
            attrs.record(&mut field);
            self.spans
                .lock()
                .unwrap()
                .push((id, field.0.unwrap_or_default()));
        }
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = IdField::default();
            event.record(&mut fields);
            let id = fields.0.unwrap_or_default();
            self.warnings
                .lock()
                .unwrap()
                .push(format!("{id}: {}", fields.1));
        }
    }

    fn enter(&self, span: &Id) {
        self.current.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, _: &Id) {
        self.current.lock().unwrap().pop();
    }
}

impl UnitSpans {
    /// The id of the innermost `change_unit` span entered now.
    fn current_unit(&self) -> Option<String> {
        let spans = self.spans.lock().unwrap();
        self.current.lock().unwrap().iter().rev().find_map(|s| {
            spans
                .iter()
                .find(|(id, _)| id == s)
                .map(|(_, unit)| unit.clone())
        })
    }
}

#[change_unit(id = "traced-unit", order = "001")]
struct Traced {
    spans: Dep<UnitSpans>,
    recorder: Dep<Recorder>,
}

impl Traced {
    /// Records the unit span it runs in.
    #[execution]
    async fn execute(&self) -> Result<(), BoxError> {
        let unit = self.spans.current_unit();
        let line = unit.as_deref().unwrap_or("outside every unit span");
        self.recorder.push(line);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

#[test]
fn each_unit_runs_inside_a_span_with_its_id() {
    let (spans, recorder) = (UnitSpans::default(), Recorder::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(spans.clone(), || {
        runtime.block_on(async {
            migrate_core::Runner::new(MemoryStore::new())
                .dependency(spans.clone())
                .dependency(recorder.clone())
                .units([Traced::change_unit()])
                .run()
                .await
                .unwrap();
        })
    });
    assert_eq!(
        spans
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, id)| id.as_str())
            .collect::<Vec<_>>(),
        ["traced-unit"]
    );
    assert_eq!(
        recorder.lines(),
        ["traced-unit"],
        "the execution ran inside the unit's span"
    );
}

/// Transactional, and its execution takes the session.
#[change_unit(id = "with-session", order = "002")]
struct WithSession;

impl WithSession {
    #[execution]
    async fn execute(&self, session: &mut MemorySession) -> Result<(), BoxError> {
        session.insert("with-session", "ran");
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Runs `runner` with `spans` as the subscriber.
fn run_traced(
    spans: &UnitSpans,
    runner: migrate_core::Runner<MemoryStore>,
) -> Result<migrate::Report, migrate::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(spans.clone(), || runtime.block_on(runner.run()))
}

#[test]
fn a_transactional_unit_without_a_session_is_warned_about() {
    let (spans, recorder) = (UnitSpans::default(), Recorder::default());
    let runner = migrate_core::Runner::new(MemoryStore::new())
        .dependency(spans.clone())
        .dependency(recorder.clone())
        .units([Traced::change_unit(), WithSession::change_unit()]);
    run_traced(&spans, runner).unwrap();
    let warnings = spans.warnings.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("traced-unit: ") && warnings[0].contains("takes no session"),
        "{warnings:?}"
    );
}

#[test]
fn drift_under_the_default_policy_is_one_warning_per_unit() {
    let spans = UnitSpans::default();
    let store = MemoryStore::new();
    let runner = |store: &MemoryStore| {
        migrate_core::Runner::new(store.clone()).units([WithSession::change_unit()])
    };
    run_traced(&spans, runner(&store)).unwrap();
    assert!(spans.warnings.lock().unwrap().is_empty());

    let mut history = store.history();
    history[0].checksum = Some("0123456789abcdef".into());
    store.set_history(history);
    let report = run_traced(&spans, runner(&store)).unwrap();
    assert!(
        report.executed().is_empty(),
        "the run goes on; nothing was pending"
    );
    let warnings = spans.warnings.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("with-session: ") && warnings[0].contains("changed since it ran"),
        "{warnings:?}"
    );
}

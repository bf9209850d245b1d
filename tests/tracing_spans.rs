//! Every unit runs inside a `change_unit` span that carries its id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use migrate::{change_unit, execution, rollback_execution, BoxError, DescribeUnit};
use migrate_core::memory::MemoryStore;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records `change_unit` spans with their `id` field, and which span each event happened in.
#[derive(Default, Clone)]
struct Recorder {
    next: Arc<AtomicU64>,
    spans: Arc<Mutex<Vec<(u64, String)>>>,
    current: Arc<Mutex<Vec<u64>>>,
    events_in: Arc<Mutex<Vec<Option<String>>>>,
}

struct IdField(Option<String>);

impl Visit for IdField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "id" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "id" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        if attrs.metadata().name() == "change_unit" {
            let mut field = IdField(None);
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

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        self.current.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, _: &Id) {
        self.current.lock().unwrap().pop();
    }
}

impl Recorder {
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
    recorder: migrate::Dep<Recorder>,
}

impl Traced {
    #[execution]
    async fn execute(&self) -> Result<(), BoxError> {
        let unit = self.recorder.current_unit();
        self.recorder.events_in.lock().unwrap().push(unit);
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

#[test]
fn each_unit_runs_inside_a_span_with_its_id() {
    let recorder = Recorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(recorder.clone(), || {
        runtime.block_on(async {
            migrate_core::Runner::new(MemoryStore::new())
                .dependency(recorder.clone())
                .units([Traced::change_unit()])
                .run()
                .await
                .unwrap();
        })
    });
    assert_eq!(
        recorder
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, id)| id.as_str())
            .collect::<Vec<_>>(),
        ["traced-unit"]
    );
    assert_eq!(
        *recorder.events_in.lock().unwrap(),
        [Some("traced-unit".to_owned())],
        "the execution ran inside the unit's span"
    );
}

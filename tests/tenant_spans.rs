//! Each database of a multi-tenant run logs inside a `tenant` span that names it. A test
//! binary of its own: the subscriber is the thread's default, and a test on another thread
//! that reached the spans' call sites first, with no subscriber, would leave them disabled.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use migrate::{change_unit, execution, rollback_execution, DescribeUnit, Runner, Tenants};
use mongodb::Database;
use support::{test_db, Mode};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Does nothing: the test looks at the spans it runs in.
#[change_unit(id = "noted", order = "001", author = "spans")]
struct Noted;

impl Noted {
    #[execution]
    async fn execute(&self) -> anyhow::Result<()> {
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// For every `change_unit` span: the `database` of the `tenant` span it was opened in.
#[derive(Clone, Default)]
struct TenantSpans {
    next: Arc<AtomicUsize>,
    tenants: Arc<Mutex<HashMap<u64, String>>>,
    entered: Arc<Mutex<Vec<u64>>>,
    units: Arc<Mutex<Vec<Option<String>>>>,
}

#[derive(Default)]
struct DatabaseField(Option<String>);

impl Visit for DatabaseField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "database" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "database" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl Subscriber for TenantSpans {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        match attrs.metadata().name() {
            "tenant" => {
                let mut field = DatabaseField::default();
                attrs.record(&mut field);
                let database = field.0.unwrap_or_default();
                self.tenants.lock().unwrap().insert(id, database);
            }
            "change_unit" => {
                let tenants = self.tenants.lock().unwrap();
                let inside = self
                    .entered
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .find_map(|s| tenants.get(s).cloned());
                self.units.lock().unwrap().push(inside);
            }
            _ => {}
        }
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        self.entered.lock().unwrap().push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut entered = self.entered.lock().unwrap();
        if let Some(at) = entered.iter().rposition(|s| *s == span.into_u64()) {
            entered.remove(at);
        }
    }
}

#[tokio::test]
async fn each_database_runs_in_a_span_that_names_it() -> anyhow::Result<()> {
    let spans = TenantSpans::default();
    let _default = tracing::subscriber::set_default(spans.clone());
    let t = test_db(Mode::ReplicaSet, "tenant_spans").await;
    let dbs: Vec<Database> = ["s1", "s2", "s3"]
        .iter()
        .map(|n| t.client.database(&format!("{}_{n}", t.db.name())))
        .collect();
    Tenants::new(dbs.clone())
        .concurrency(2)
        .run(|db| Runner::new(db).units([Noted::change_unit()]))
        .await?;
    let mut inside: Vec<Option<String>> = spans.units.lock().unwrap().clone();
    inside.sort();
    let expected: Vec<Option<String>> = dbs.iter().map(|d| Some(d.name().to_owned())).collect();
    assert_eq!(
        inside, expected,
        "each unit's span is inside its database's"
    );
    for db in &dbs {
        db.drop().await?;
    }
    t.finish().await;
    Ok(())
}

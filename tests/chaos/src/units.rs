//! Six deliberately non-idempotent change units: applying one twice shows in the data.
//!
//! Each unit `$inc`s its counter in `chaos_counters` (`{_id: <unit id>, n}`) and inserts a
//! document without a fixed `_id` into `chaos_inserts` (`{unit: <unit id>, pid}`), both
//! through the injected session, so they commit or abort with the unit's transaction on a
//! replica set. Its `#[rollback_execution]` undoes exactly what the execution did (the
//! `Journal` remembers it), for the standalone path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use migrate::{change_unit, execution, rollback_execution, Dep};
use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::{ClientSession, Database};

/// Where each unit counts its executions.
pub(crate) const COUNTERS: &str = "chaos_counters";
/// Where each unit inserts one document per execution.
pub(crate) const INSERTS: &str = "chaos_inserts";
/// The ids of the units, in order.
pub(crate) const UNIT_IDS: [&str; 6] = [
    "chaos-01", "chaos-02", "chaos-03", "chaos-04", "chaos-05", "chaos-06",
];

/// How long the units take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Every unit waits this long before its writes.
    pub(crate) step: Duration,
    /// The long units (`chaos-03`, `chaos-05`) wait this long after their writes, with their
    /// transaction open.
    pub(crate) long: Duration,
}

/// What each unit's last execution wrote in this process, so its rollback undoes exactly that.
#[derive(Debug, Default)]
pub(crate) struct Journal(Mutex<HashMap<&'static str, Written>>);

#[derive(Debug, Default, Clone, Copy)]
struct Written {
    incremented: bool,
    inserted: Option<ObjectId>,
}

impl Journal {
    fn update(&self, id: &'static str, f: impl FnOnce(&mut Written)) {
        f(self.0.lock().unwrap().entry(id).or_default());
    }

    fn take(&self, id: &'static str) -> Written {
        self.0.lock().unwrap().remove(id).unwrap_or_default()
    }
}

async fn apply(
    db: &Database,
    session: &mut ClientSession,
    journal: &Journal,
    timing: &Timing,
    id: &'static str,
    long: bool,
) -> mongodb::error::Result<()> {
    eprintln!("chaos: {id} started");
    journal.take(id);
    tokio::time::sleep(timing.step).await;
    db.collection::<Document>(COUNTERS)
        .update_one(doc! { "_id": id }, doc! { "$inc": { "n": 1 } })
        .upsert(true)
        .session(&mut *session)
        .await?;
    journal.update(id, |w| w.incremented = true);
    let inserted = db
        .collection::<Document>(INSERTS)
        .insert_one(doc! { "unit": id, "pid": std::process::id() })
        .session(&mut *session)
        .await?;
    journal.update(id, |w| w.inserted = inserted.inserted_id.as_object_id());
    eprintln!("chaos: {id} wrote");
    if long {
        tokio::time::sleep(timing.long).await;
    }
    eprintln!("chaos: {id} finished");
    Ok(())
}

async fn undo(db: &Database, journal: &Journal, id: &'static str) -> mongodb::error::Result<()> {
    eprintln!("chaos: {id} rolling back");
    let written = journal.take(id);
    if let Some(inserted) = written.inserted {
        db.collection::<Document>(INSERTS)
            .delete_one(doc! { "_id": inserted })
            .await?;
    }
    if written.incremented {
        db.collection::<Document>(COUNTERS)
            .update_one(doc! { "_id": id }, doc! { "$inc": { "n": -1 } })
            .await?;
    }
    Ok(())
}

macro_rules! chaos_unit {
    ($name:ident, id = $id:literal, order = $order:literal, long = $long:literal) => {
        #[change_unit(id = $id, order = $order, author = "chaos")]
        pub(crate) struct $name {
            db: Database,
            journal: Dep<Journal>,
            timing: Dep<Timing>,
        }

        impl $name {
            #[execution]
            async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
                apply(&self.db, session, &self.journal, &self.timing, $id, $long).await
            }

            #[rollback_execution]
            async fn rollback(&self) -> mongodb::error::Result<()> {
                undo(&self.db, &self.journal, $id).await
            }
        }
    };
}

chaos_unit!(Chaos01, id = "chaos-01", order = "001", long = false);
chaos_unit!(Chaos02, id = "chaos-02", order = "002", long = false);
chaos_unit!(Chaos03, id = "chaos-03", order = "003", long = true);
chaos_unit!(Chaos04, id = "chaos-04", order = "004", long = false);
chaos_unit!(Chaos05, id = "chaos-05", order = "005", long = true);
chaos_unit!(Chaos06, id = "chaos-06", order = "006", long = false);

//! The Rust twins of the Java change units (`tests/interop/java`): the same ids, authors and
//! orders, the same effects on the data. Each unit belongs to the profile of its name, so
//! `INTEROP_UNITS=a,c` selects units by activating profiles `a` and `c`.
//!
//! Every step counts its applications in `interop_counters` (`{_id: <step id>, n, by: [...]}`),
//! as the Java units do, so a step applied twice shows; a rollback counts back down.

use std::time::Duration;

use migrate::{
    before_execution, change_log, change_set, change_unit, execution, rollback_before_execution,
    rollback_execution,
};
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Database};

/// Where every step counts its applications.
pub(crate) const COUNTERS: &str = "interop_counters";

/// How long `interop-slow` sleeps in its before-step and in its execution.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Slowness {
    pub(crate) before: Duration,
    pub(crate) execution: Duration,
}

type Result = mongodb::error::Result<()>;

async fn apply(db: &Database, step: &str, session: Option<&mut ClientSession>) -> Result {
    eprintln!("interop: {step} applying");
    let counters = db.collection::<Document>(COUNTERS);
    let update = counters
        .update_one(
            doc! { "_id": step },
            doc! { "$inc": { "n": 1 }, "$push": { "by": "rust" } },
        )
        .upsert(true);
    match session {
        Some(session) => update.session(session).await?,
        None => update.await?,
    };
    eprintln!("interop: {step} applied");
    Ok(())
}

async fn undo(db: &Database, step: &str) -> Result {
    eprintln!("interop: {step} rolling back");
    db.collection::<Document>(COUNTERS)
        .update_one(doc! { "_id": step }, doc! { "$inc": { "n": -1 } })
        .await?;
    Ok(())
}

async fn sleep(step: &str, duration: Duration) {
    if !duration.is_zero() {
        eprintln!("interop: {step} sleeping {} ms", duration.as_millis());
        tokio::time::sleep(duration).await;
    }
}

/// A unit whose before-step and execution count themselves.
macro_rules! counting_unit {
    ($name:ident, id = $id:literal, order = $order:literal, profile = $profile:literal) => {
        #[change_unit(id = $id, order = $order, author = "interop", profiles = [$profile])]
        pub(crate) struct $name {
            db: Database,
        }

        impl $name {
            #[before_execution]
            async fn before(&self) -> Result {
                apply(&self.db, concat!($id, "_before"), None).await
            }

            #[rollback_before_execution]
            async fn rollback_before(&self) -> Result {
                undo(&self.db, concat!($id, "_before")).await
            }

            #[execution]
            async fn execution(&self, session: &mut ClientSession) -> Result {
                apply(&self.db, $id, Some(session)).await
            }

            #[rollback_execution]
            async fn rollback(&self) -> Result {
                undo(&self.db, $id).await
            }
        }
    };
}

counting_unit!(UnitA, id = "interop-a", order = "001", profile = "a");
counting_unit!(UnitB, id = "interop-b", order = "002", profile = "b");
counting_unit!(UnitC, id = "interop-c", order = "003", profile = "c");

/// Its before-step succeeds, its execution always fails: both are rolled back.
#[change_unit(id = "interop-fail", order = "004", author = "interop", profiles = ["fail"])]
pub(crate) struct UnitFail {
    db: Database,
}

impl UnitFail {
    #[before_execution]
    async fn before(&self) -> Result {
        apply(&self.db, "interop-fail_before", None).await
    }

    #[rollback_before_execution]
    async fn rollback_before(&self) -> Result {
        undo(&self.db, "interop-fail_before").await
    }

    #[execution]
    async fn execution(&self) -> std::result::Result<(), &'static str> {
        Err("interop-fail fails on purpose")
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        eprintln!("interop: interop-fail rolling back");
        Ok(())
    }
}

/// Sleeps in its before-step (outside any transaction, where a process killed leaves only its
/// lock behind) and in its execution, as long as [`Slowness`] says.
#[change_unit(id = "interop-slow", order = "005", author = "interop", profiles = ["slow"])]
pub(crate) struct UnitSlow {
    db: Database,
    slowness: migrate::Dep<Slowness>,
}

impl UnitSlow {
    #[before_execution]
    async fn before(&self) -> Result {
        sleep("interop-slow_before", self.slowness.before).await;
        apply(&self.db, "interop-slow_before", None).await
    }

    #[rollback_before_execution]
    async fn rollback_before(&self) -> Result {
        undo(&self.db, "interop-slow_before").await
    }

    #[execution]
    async fn execution(&self, session: &mut ClientSession) -> Result {
        sleep("interop-slow", self.slowness.execution).await;
        apply(&self.db, "interop-slow", Some(session)).await
    }

    #[rollback_execution]
    async fn rollback(&self) -> Result {
        undo(&self.db, "interop-slow").await
    }
}

/// The legacy model, as the Java service's `@ChangeLog` (order 010): each change set is
/// tracked on its own and has no rollback.
#[change_log(order = "010", profiles = ["legacy"])]
pub(crate) struct LegacyChangeLog {
    db: Database,
}

#[change_log]
impl LegacyChangeLog {
    #[change_set(id = "interop-legacy-1", author = "interop-legacy", order = "001")]
    async fn first(&self, session: &mut ClientSession) -> Result {
        apply(&self.db, "interop-legacy-1", Some(session)).await
    }

    #[change_set(id = "interop-legacy-2", author = "interop-legacy", order = "002")]
    async fn second(&self, session: &mut ClientSession) -> Result {
        apply(&self.db, "interop-legacy-2", Some(session)).await
    }
}

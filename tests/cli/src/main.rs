//! A `migrate` command built on `migrate::cli`, with small change units over a
//! `widgets` collection, for the command-line tests in `tests/`.
//!
//! ```text
//! 001 create-widgets   inserts the widgets
//! 002 price-widgets    prices them; fails when FIXTURE_FAIL=price-widgets
//! 003 audit-widgets    writes an audit entry
//! 004 dev-widgets      only under the `dev` profile: adds a test widget
//! 005 batch-gadgets    with FIXTURE_BATCH=N only: stores N gadgets, then marks them in
//!                      batches of 10 outside a transaction, reporting its progress
//! 006 count-runs       with FIXTURE_ALWAYS=1 only: runs on every run, counting them
//! 007 tolerant-widgets with FIXTURE_TOLERANT=1 only: `fail_fast = false`; fails when
//!                      FIXTURE_FAIL=tolerant-widgets
//! 008 shared (alice)   with FIXTURE_SHARED=1 only: two units with one id, by two authors,
//! 009 shared (bob)     each storing its author in `shared`
//! ```
//!
//! `FIXTURE_FAIL_UNDO=price-widgets` makes the rollback of `price-widgets` fail.
//! `FIXTURE_FAIL_IN=SUFFIX` limits `FIXTURE_FAIL` to the databases whose name ends with
//! `SUFFIX` (with `--databases`). `FIXTURE_STRICT=1` turns on the strict checksum policy. The
//! lock is given up after 1 s.

use std::process::ExitCode;
use std::time::Duration;

use migrate::batch::BatchUpdate;
use migrate::{
    change_unit, execution, rollback_execution, ChecksumPolicy, Dep, DescribeUnit, RunContext,
    Runner,
};
use mongodb::bson::{doc, Document};
use mongodb::{ClientSession, Collection, Database};

/// Which unit fails on purpose, if any.
struct Faults {
    fail: Option<String>,
    fail_undo: Option<String>,
}

fn widgets(db: &Database) -> Collection<Document> {
    db.collection("widgets")
}

#[change_unit(id = "create-widgets", order = "001", author = "fixture")]
struct CreateWidgets {
    db: Database,
}

impl CreateWidgets {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        let docs = [
            doc! { "_id": 1, "name": "bolt" },
            doc! { "_id": 2, "name": "nut" },
        ];
        widgets(&self.db).insert_many(docs).session(session).await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        let ids = doc! { "_id": { "$in": [1, 2] } };
        widgets(&self.db).delete_many(ids).session(session).await?;
        Ok(())
    }
}

#[change_unit(id = "price-widgets", order = "002", author = "fixture")]
struct PriceWidgets {
    db: Database,
    faults: Dep<Faults>,
}

impl PriceWidgets {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> Result<(), migrate::BoxError> {
        if self.faults.fail.as_deref() == Some("price-widgets") {
            return Err("the price list is unavailable".into());
        }
        let price = doc! { "$set": { "price": 10 } };
        widgets(&self.db)
            .update_many(doc! {}, price)
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut ClientSession) -> Result<(), migrate::BoxError> {
        if self.faults.fail_undo.as_deref() == Some("price-widgets") {
            return Err("the old prices are gone".into());
        }
        let unprice = doc! { "$unset": { "price": "" } };
        widgets(&self.db)
            .update_many(doc! {}, unprice)
            .session(session)
            .await?;
        Ok(())
    }
}

#[change_unit(id = "audit-widgets", order = "003", author = "fixture")]
struct AuditWidgets {
    db: Database,
}

impl AuditWidgets {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        let audit = self.db.collection::<Document>("audit");
        audit
            .insert_one(doc! { "_id": "widgets", "checked": true })
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        let audit = self.db.collection::<Document>("audit");
        audit
            .delete_one(doc! { "_id": "widgets" })
            .session(session)
            .await?;
        Ok(())
    }
}

#[change_unit(id = "dev-widgets", order = "004", author = "fixture", profiles = ["dev"])]
struct DevWidgets {
    db: Database,
}

impl DevWidgets {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        let test_widget = doc! { "_id": 99, "name": "test widget" };
        widgets(&self.db)
            .insert_one(test_widget)
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        widgets(&self.db)
            .delete_one(doc! { "_id": 99 })
            .session(session)
            .await?;
        Ok(())
    }
}

/// How many gadgets `batch-gadgets` stores and marks.
struct Gadgets(u32);

#[change_unit(
    id = "batch-gadgets",
    order = "005",
    author = "fixture",
    transactional = false
)]
struct BatchGadgets {
    db: Database,
    gadgets: Dep<Gadgets>,
}

impl BatchGadgets {
    #[execution]
    async fn execute(&self, context: &RunContext) -> Result<(), migrate::BoxError> {
        let gadgets = self.db.collection::<Document>("gadgets");
        gadgets.delete_many(doc! {}).await?;
        let docs = (0..self.gadgets.0).map(|n| doc! { "_id": n });
        gadgets.insert_many(docs).await?;
        BatchUpdate::new(
            &gadgets,
            doc! { "marked": { "$exists": false } },
            doc! { "$set": { "marked": true } },
        )
        .batch_size(10)
        .run(context)
        .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> mongodb::error::Result<()> {
        self.db.collection::<Document>("gadgets").drop().await
    }
}

#[change_unit(id = "count-runs", order = "006", author = "fixture", run_always)]
struct CountRuns {
    db: Database,
}

impl CountRuns {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        self.db
            .collection::<Document>("runs")
            .update_one(doc! { "_id": "count" }, doc! { "$inc": { "runs": 1 } })
            .upsert(true)
            .session(session)
            .await?;
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> mongodb::error::Result<()> {
        Ok(())
    }
}

#[change_unit(
    id = "tolerant-widgets",
    order = "007",
    author = "fixture",
    fail_fast = false
)]
struct TolerantWidgets {
    faults: Dep<Faults>,
}

impl TolerantWidgets {
    #[execution]
    async fn execute(&self, _session: &mut ClientSession) -> Result<(), migrate::BoxError> {
        if self.faults.fail.as_deref() == Some("tolerant-widgets") {
            return Err("the widgets are tolerated".into());
        }
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> mongodb::error::Result<()> {
        Ok(())
    }
}

/// Stores who ran it in `shared`.
async fn share(
    db: &Database,
    session: &mut ClientSession,
    who: &str,
) -> mongodb::error::Result<()> {
    db.collection::<Document>("shared")
        .insert_one(doc! { "_id": who })
        .session(session)
        .await?;
    Ok(())
}

/// Removes what [`share`] stored.
async fn unshare(
    db: &Database,
    session: &mut ClientSession,
    who: &str,
) -> mongodb::error::Result<()> {
    db.collection::<Document>("shared")
        .delete_one(doc! { "_id": who })
        .session(session)
        .await?;
    Ok(())
}

#[change_unit(id = "shared", order = "008", author = "alice")]
struct SharedByAlice {
    db: Database,
}

impl SharedByAlice {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        share(&self.db, session, "alice").await
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        unshare(&self.db, session, "alice").await
    }
}

#[change_unit(id = "shared", order = "009", author = "bob")]
struct SharedByBob {
    db: Database,
}

impl SharedByBob {
    #[execution]
    async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        share(&self.db, session, "bob").await
    }

    #[rollback_execution]
    async fn rollback(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
        unshare(&self.db, session, "bob").await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let fail = std::env::var("FIXTURE_FAIL").ok();
    let fail_in = std::env::var("FIXTURE_FAIL_IN").ok();
    let strict = std::env::var_os("FIXTURE_STRICT").is_some();
    let fail_undo = std::env::var("FIXTURE_FAIL_UNDO").ok();
    let always = std::env::var_os("FIXTURE_ALWAYS").is_some();
    let tolerant = std::env::var_os("FIXTURE_TOLERANT").is_some();
    let shared = std::env::var_os("FIXTURE_SHARED").is_some();
    let batch = std::env::var("FIXTURE_BATCH")
        .ok()
        .and_then(|n| n.parse().ok());
    migrate::cli::main(|db| {
        let here = fail_in
            .as_ref()
            .is_none_or(|suffix| db.name().ends_with(suffix));
        let mut units = vec![
            CreateWidgets::change_unit(),
            PriceWidgets::change_unit(),
            AuditWidgets::change_unit(),
            DevWidgets::change_unit(),
        ];
        if batch.is_some() {
            units.push(BatchGadgets::change_unit());
        }
        if always {
            units.push(CountRuns::change_unit());
        }
        if tolerant {
            units.push(TolerantWidgets::change_unit());
        }
        if shared {
            units.extend([SharedByAlice::change_unit(), SharedByBob::change_unit()]);
        }
        let runner = Runner::new(db)
            .units(units)
            .dependency(Faults {
                fail: fail.clone().filter(|_| here),
                fail_undo: fail_undo.clone(),
            })
            .dependency(Gadgets(batch.unwrap_or(0)))
            .lock_quit_trying_after(Duration::from_secs(1));
        if strict {
            runner.checksum_policy(ChecksumPolicy::Strict)
        } else {
            runner
        }
    })
    .await
}

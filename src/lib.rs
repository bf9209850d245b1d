//! `migrate`: ordered, recorded, lock-guarded data migrations for MongoDB, compatible with
//! Mongock's history format.
//!
//! ```no_run
//! use migrate::{change_unit, execution, rollback_execution};
//! use mongodb::{bson::doc, ClientSession, Database};
//!
//! #[change_unit(id = "add-clients-index", order = "001", author = "platform")]
//! pub struct AddClientsIndex {
//!     db: Database,
//! }
//!
//! impl AddClientsIndex {
//!     #[execution]
//!     async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
//!         let clients = self.db.collection::<mongodb::bson::Document>("clients");
//!         clients
//!             .update_many(doc! {}, doc! { "$set": { "active": true } })
//!             .session(session)
//!             .await?;
//!         Ok(())
//!     }
//!
//!     #[rollback_execution]
//!     async fn rollback(&self) -> mongodb::error::Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let client = mongodb::Client::with_uri_str("mongodb://localhost:27017").await?;
//! let report = migrate::run(&client.database("app")).await?;
//! println!("{report}");
//! # Ok(())
//! # }
//! ```
//!
//! A unit with one step can also be an `async fn`, which costs less to compile; its
//! attribute names the rollback function, or says `no_rollback`:
//!
//! ```no_run
//! use migrate::change_unit;
//! use mongodb::{bson::doc, Database};
//!
//! #[change_unit(id = "archive-inactive", order = "002", author = "platform", rollback = unarchive)]
//! async fn archive_inactive(db: Database) -> mongodb::error::Result<()> {
//!     let clients = db.collection::<mongodb::bson::Document>("clients");
//!     clients
//!         .update_many(doc! { "active": false }, doc! { "$set": { "archived": true } })
//!         .await?;
//!     Ok(())
//! }
//!
//! async fn unarchive(db: Database) -> mongodb::error::Result<()> {
//!     let clients = db.collection::<mongodb::bson::Document>("clients");
//!     clients
//!         .update_many(doc! {}, doc! { "$unset": { "archived": "" } })
//!         .await?;
//!     Ok(())
//! }
//! # fn main() {}
//! ```

#[doc(hidden)]
pub use migrate_core::__private;
pub use migrate_core::registered;
pub use migrate_core::{
    AcceptedChecksum, BoxError, ChangeUnit, ChecksumPolicy, Decision, Dep, Dependencies,
    DescribeChangeLog, DescribeUnit, Drift, EntryType, Error, Event, ExecutionError, Finding,
    HistoryEntry, LegacyCountMismatch, LegacyFields, LegacyMigration, LegacyRow, MissingDependency,
    NotRecorded, Outcome, Plan, PlannedUnit, Progress, ReleaseReason, Report, RunContext,
    RunStatus, Severity, SkipReason, State, Status, Step, TransactionStrategy, TransactionTooLong,
    UnitReport, UnitState, UnitStatus, UnknownEntry, Unlock, Validation, Version,
    LEGACY_MIGRATION_AUTHOR, LEGACY_MIGRATION_ID,
};
pub use migrate_macros::{
    before_execution, change_log, change_set, change_unit, execution, rollback_before_execution,
    rollback_execution,
};
pub use migrate_mongodb::{batch, Error as MongoStoreError, MongoStore};

mod tenants;

pub use tenants::{TenantOutcome, TenantResult, Tenants, TenantsError, DEFAULT_CONCURRENCY};

#[cfg(feature = "cli")]
pub mod cli;

/// The runner over the MongoDB store: `Runner::new(&db)`, then builder setters, then
/// `.run().await`.
pub type Runner = migrate_core::Runner<MongoStore>;

/// Runs every pending change unit against `db` with the default options.
///
/// Equivalent to `Runner::new(db).run().await`.
pub async fn run(db: &mongodb::Database) -> Result<Report, Error> {
    Runner::new(db).run().await
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! Storage-agnostic core of `migrate`: the change unit registry, ordering and filtering,
//! typed dependency injection, the [`Store`] traits and the [`Runner`].
//!
//! Applications use the `migrate` facade crate, which adds the MongoDB store and the macros;
//! this crate is what storage backends and generated code build on.
//!
//! A run flows through these modules: the `registry` collects the units the macros
//! registered (change units, and the change sets of change logs), `runner` validates the
//! options and reads the history, `plan` decides each unit, `lock` takes and keeps the lease,
//! `execution` runs the pending units and records each step in the history (an import of
//! earlier history, `legacy`, first), and `report` and `event` tell the caller what happened.
//!
//! ```
//! use migrate_core::{memory::MemoryStore, Runner};
//!
//! # async fn demo() -> Result<(), migrate_core::Error> {
//! let report = Runner::new(MemoryStore::new()).run().await?;
//! println!("{report}");
//! # Ok(())
//! # }
//! ```

mod clock;
mod context;
mod drift;
mod error;
mod event;
mod execution;
mod hash;
mod history;
mod ids;
mod inject;
mod legacy;
mod lock;
pub mod memory;
mod plan;
mod registry;
mod report;
mod retry;
mod rules;
mod runner;
mod status;
mod store;
mod text;
mod unit;
mod unlock;
mod validate;
mod version;

#[doc(hidden)]
pub mod __private;

pub use context::{Progress, RunContext};
pub use drift::{AcceptedChecksum, ChecksumPolicy, Drift};
pub use error::{Error, ExecutionError, MissingDependency, NotRecorded, TransactionTooLong};
pub use event::Event;
pub use history::{
    EntryType, HistoryEntry, PlanningEntries, PlanningEntry, PlanningHistory, State,
};
pub use inject::{Dep, Dependencies, Inject, InjectSession, Requirement};
pub use legacy::{
    LegacyCountMismatch, LegacyFields, LegacyMigration, LegacyRow, LEGACY_MIGRATION_AUTHOR,
    LEGACY_MIGRATION_ID,
};
pub use plan::{Decision, Plan, PlannedUnit};
pub use registry::{registered, DescribeChangeLog, DescribeUnit};
pub use report::{Outcome, Report, RunStatus, SkipReason, UnitReport};
pub use retry::Backoff;
pub use runner::{Runner, TransactionStrategy, MIN_LOCK_LEASE, MIN_LOCK_TRY_FREQUENCY};
pub use status::{Status, UnitState, UnitStatus, UnknownEntry};
pub use store::{IntoStore, LockAttempt, LockClaim, LockInfo, LockStore, Store, TransactionStore};
pub use unit::{BoxError, BoxFuture, ChangeUnit, Step, DEFAULT_AUTHOR};
pub use unlock::{ReleaseReason, Unlock};
pub use validate::{Finding, Severity, Validation};
pub use version::{InvalidVersion, Version, VersionWindow};

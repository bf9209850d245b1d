//! Storage-agnostic core of `migrate`: the change unit registry, ordering and filtering,
//! typed dependency injection, the [`Store`] trait and the [`Runner`].
//!
//! Applications use the `migrate` facade crate, which adds the MongoDB store and the macros;
//! this crate is what storage backends and generated code build on.
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

mod error;
mod history;
mod ids;
mod inject;
mod lock;
pub mod memory;
mod plan;
mod registry;
mod report;
mod rules;
mod runner;
mod store;
mod unit;
mod version;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use error::{Error, ExecutionError, MissingDependency};
pub use history::{error_trace, EntryType, ExecutedSet, HistoryEntry, State, BEFORE_SUFFIX};
pub use ids::format_utc;
pub use inject::{Dep, Dependencies, Inject, InjectSession, Requirement};
pub use plan::{profiles_match, sorted, Decision, Plan, PlannedUnit};
pub use registry::{registered, DescribeUnit};
pub use report::{Event, Outcome, Report, RunStatus, SkipReason, UnitReport};
pub use runner::{Runner, TransactionStrategy, MIN_LOCK_LEASE, MIN_LOCK_TRY_FREQUENCY};
pub use store::{IntoStore, LockAttempt, LockClaim, LockInfo, Store, StoreSettings};
pub use unit::{
    BoxError, BoxFuture, ChangeUnit, ChangeUnitInstance, Step, StepContext, DEFAULT_AUTHOR,
};
pub use version::{InvalidVersion, Version, VersionWindow};

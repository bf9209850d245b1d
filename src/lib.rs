//! `migrate`: ordered, recorded, lock-guarded data migrations for MongoDB.
#![doc(hidden)]

#[doc(hidden)]
pub use migrate_core::__private;
pub use migrate_core::*;
pub use migrate_macros::{
    before_execution, change_unit, execution, rollback_before_execution, rollback_execution,
};

//! The MongoDB store of `migrate`: Mongock 5's history and lock collections, sessions and
//! transactions, and the MongoDB handles change units can ask for.
//!
//! Applications use it through the `migrate` facade, where `migrate::Runner::new(&db)` builds
//! a [`MongoStore`] from a `&Database`:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use migrate_core::Runner;
//! use migrate_mongodb::MongoStore;
//!
//! let client = mongodb::Client::with_uri_str("mongodb://localhost:27017").await?;
//! let db = client.database("app");
//! let report = Runner::<MongoStore>::new(&db).run().await?;
//! println!("{report}");
//! # Ok(())
//! # }
//! ```
//!
//! Change units may take `Database` and `Client` as fields or method parameters, and
//! `&mut ClientSession` as a method parameter. **Pass that session to every operation**: only
//! operations made with it are part of the unit's transaction; anything else commits on its
//! own, even if the unit fails.

pub mod batch;
mod error;
mod history;
mod inject;
mod legacy;
mod lock;
mod raw;
mod store;
mod topology;

pub use error::{DriverError, Error};
pub use store::MongoStore;

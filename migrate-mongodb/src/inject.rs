//! The MongoDB handles change units can ask for: `Database`, `Client`, `&mut ClientSession`.

use migrate_core::{Dependencies, Inject, InjectSession, Requirement};
use mongodb::{Client, ClientSession, Database};

/// Selects this crate's implementations of [`Inject`] and [`InjectSession`].
///
/// The traits take a marker type parameter so that a storage crate may implement them for
/// types it does not own (`Database`, `Client`, `ClientSession`); the compiler infers it. It
/// has no values and is never named in user code.
#[derive(Debug)]
pub enum MongoHandles {}

impl<'a> Inject<'a, MongoHandles> for Database {
    fn requirement() -> Requirement {
        Requirement::of::<Database>()
    }

    fn resolve(deps: &'a Dependencies) -> Option<Self> {
        deps.get::<Database>().cloned()
    }
}

impl<'a> Inject<'a, MongoHandles> for Client {
    fn requirement() -> Requirement {
        Requirement::of::<Client>()
    }

    fn resolve(deps: &'a Dependencies) -> Option<Self> {
        deps.get::<Client>().cloned()
    }
}

impl InjectSession<MongoHandles> for ClientSession {}

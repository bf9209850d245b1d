//! A units crate that is a dependency but never referenced is dropped by the linker: the
//! runner then fails with the advice to reference it.
//!
//! `billing_migrations` is a dev-dependency of this package, exactly as a units crate is a
//! dependency of an application, but this test binary does not mention it.

use migrate::Error;
use migrate_core::memory::MemoryStore;
use migrate_core::Runner;

#[tokio::test]
async fn an_unreferenced_units_crate_leaves_the_registry_empty_with_a_helpful_error() {
    assert!(migrate_core::registered().is_empty());
    let store = MemoryStore::new();
    let error = Runner::new(store.clone()).run().await.unwrap_err();
    assert!(matches!(error, Error::NoChangeUnits));
    assert!(
        error.to_string().contains("`use my_migrations as _;`"),
        "{error}"
    );
    assert!(store.operations().is_empty(), "nothing touched the store");
}

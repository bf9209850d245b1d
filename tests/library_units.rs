//! Units declared in a library crate are registered once the application references it.

// The line the error message and the README tell users to write.
use billing_migrations as _;

#[test]
fn units_of_a_referenced_library_crate_are_registered() {
    let mut ids: Vec<&str> = migrate_core::registered().iter().map(|u| u.id()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["billing-defaults", "billing-net-days-14"]);
    let unit = migrate_core::registered()
        .iter()
        .find(|u| u.id() == "billing-defaults")
        .unwrap();
    assert_eq!(unit.type_path(), "billing_migrations::BillingDefaults");
    assert_eq!(unit.declared_author(), Some("billing-team"));
}

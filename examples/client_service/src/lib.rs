//! The client service's change units and the runner it configures for them, shared by the
//! service (`src/main.rs`) and its `migrate` command (`src/bin/migrate.rs`), so both apply
//! the same units with the same dependencies.

mod third_party;
mod units;

use migrate::Runner;
use mongodb::bson::doc;
use mongodb::Database;

use third_party::ThirdPartyClients;

/// The service version, from `CLIENT_SERVICE_VERSION` (default 1).
pub fn version() -> anyhow::Result<u32> {
    Ok(std::env::var("CLIENT_SERVICE_VERSION")
        .unwrap_or_else(|_| "1".into())
        .parse()?)
}

/// The runner of service `version` over `db`: the CRM the units fetch from, the service's
/// system-version window, its identifier and the release in every history entry.
pub fn runner(db: &Database, version: u32) -> Runner {
    // The window is `start <= system_version < end`: service version 1 runs the units of
    // versions 1.x, version 2 adds those of 2.x.
    Runner::new(db)
        .dependency(ThirdPartyClients::connect("https://crm.example.com"))
        .system_versions("0", (version + 1).to_string())
        .service_identifier("client-service")
        .metadata(doc! { "release": format!("client-service v{version}") })
}

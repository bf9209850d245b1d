//! The scenario of Mongock's guide: a horizontally scaled client service must, once and as
//! part of a release, fetch its clients from a third-party system and store them in
//! `clients`. A later release adds a field; a third change only belongs to system version 2.
//!
//! Run it with `cargo xtask demo`, or against your own server:
//! `MONGODB_URI=mongodb://localhost:27017 cargo run -p client_service`.
//! `CLIENT_SERVICE_VERSION=2` widens the system-version window to include version 2.

mod third_party;
mod units;

use migrate::Runner;
use mongodb::bson::doc;

use third_party::ThirdPartyClients;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://localhost:27017".into());
    let database = std::env::var("CLIENT_SERVICE_DB").unwrap_or_else(|_| "client_service".into());
    let version: u32 = std::env::var("CLIENT_SERVICE_VERSION")
        .unwrap_or_else(|_| "1".into())
        .parse()?;
    let db = mongodb::Client::with_uri_str(&uri)
        .await?
        .database(&database);

    // The window is `start <= system_version < end`: service version 1 runs the units of
    // versions 1.x, version 2 adds those of 2.x.
    let report = Runner::new(&db)
        .dependency(ThirdPartyClients::connect("https://crm.example.com"))
        .system_versions("0", (version + 1).to_string())
        .service_identifier("client-service")
        .metadata(doc! { "release": format!("client-service v{version}") })
        .run()
        .await?;

    print!("{report}");
    let applied = report.executed();
    if applied.is_empty() {
        println!("nothing to apply: the database is up to date");
    } else {
        println!("applied {}: {}", applied.len(), applied.join(", "));
    }
    let clients = db
        .collection::<mongodb::bson::Document>("clients")
        .count_documents(doc! {})
        .await?;
    println!("`{database}.clients` holds {clients} clients");
    Ok(())
}

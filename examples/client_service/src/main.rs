//! The scenario of Mongock's guide: a horizontally scaled client service must, once and as
//! part of a release, fetch its clients from a third-party system and store them in
//! `clients`. A later release adds a field; a third change only belongs to system version 2.
//!
//! Run it with `cargo xtask demo`, or against your own server:
//! `MONGODB_URI=mongodb://localhost:27017 cargo run -p client_service`.
//! `CLIENT_SERVICE_VERSION=2` widens the system-version window to include version 2.
//!
//! Its `migrate` command (`src/bin/migrate.rs`) inspects and operates the same units:
//! `cargo run -p client_service --bin migrate -- --database client_service status`.

use mongodb::bson::doc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://localhost:27017".into());
    let database = std::env::var("CLIENT_SERVICE_DB").unwrap_or_else(|_| "client_service".into());
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let db = client.database(&database);

    let report = client_service::runner(&db, client_service::version()?)
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
    // A dropped client ends its sessions in a task that a runtime shutting down may cut
    // short (the driver then prints a panic); shutting it down first ends them in order.
    client.shutdown().await;
    Ok(())
}

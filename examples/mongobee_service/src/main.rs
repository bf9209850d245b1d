//! A service that ran for years on mongobee (Java), ported to Rust. Its change logs keep
//! their ids and authors, and its `dbchangelog` history is imported on the first start-up, so
//! what mongobee applied is not applied again; only the change sets added since run.
//!
//! Against your own server: `MONGODB_URI=mongodb://localhost:27017 cargo run -p
//! mongobee_service`. With `--as-left-by-mongobee`, it first writes the `dbchangelog` rows
//! the Java service would have left (on a database that has none), to show the import.

mod changelogs;

use migrate::{LegacyMigration, Runner};
use mongodb::bson::{doc, DateTime, Document};
use mongodb::Database;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://localhost:27017".into());
    let database =
        std::env::var("MONGOBEE_SERVICE_DB").unwrap_or_else(|_| "mongobee_service".into());
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let db = client.database(&database);
    if std::env::args().any(|a| a == "--as-left-by-mongobee") {
        leave_mongobee_history(&db).await?;
    }

    let report = Runner::new(&db)
        // mongobee kept its history in `dbchangelog`, with the field names assumed here.
        .legacy_migration(LegacyMigration::new("dbchangelog"))
        .run()
        .await?;

    print!("{report}");
    let customers = db
        .collection::<Document>("customers")
        .count_documents(doc! { "plan": "free" })
        .await?;
    println!("`{database}.customers`: {customers} customers on the free plan");
    // A dropped client ends its sessions in a task that a runtime shutting down may cut
    // short (the driver then prints a panic); shutting it down first ends them in order.
    client.shutdown().await;
    Ok(())
}

/// What mongobee left after applying the first two change sets: rows without `state`,
/// `type` or `executionId`, and the data they wrote.
async fn leave_mongobee_history(db: &Database) -> anyhow::Result<()> {
    let history = db.collection::<Document>("dbchangelog");
    if history.count_documents(doc! {}).await? > 0 {
        return Ok(());
    }
    let row = |change_id: &str, method: &str, millis: i64| {
        doc! {
            "changeId": change_id,
            "author": "billing-team",
            "timestamp": DateTime::from_millis(millis),
            "changeLogClass": "com.example.billing.changelogs.DatabaseChangelog",
            "changeSetMethod": method,
        }
    };
    history
        .insert_many([
            row("create-customers", "createCustomers", 1_420_000_000_000),
            row(
                "index-customer-email",
                "indexCustomerEmail",
                1_450_000_000_000,
            ),
        ])
        .await?;
    db.collection::<Document>("customers")
        .insert_many([
            doc! { "email": "ada@example.com" },
            doc! { "email": "grace@example.com" },
        ])
        .await?;
    println!("wrote the history and data mongobee would have left");
    Ok(())
}

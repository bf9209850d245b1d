//! Runs change units that live in the `billing_migrations` library crate.
//!
//! `MONGODB_URI=mongodb://localhost:27017 cargo run -p billing_service`

// Without this line the linker drops the crate and the runner reports that no change units
// are registered.
use billing_migrations as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://localhost:27017".into());
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let report = migrate::run(&client.database("billing")).await?;
    print!("{report}");
    // A dropped client ends its sessions in a task that a runtime shutting down may cut
    // short (the driver then prints a panic); shutting it down first ends them in order.
    client.shutdown().await;
    Ok(())
}

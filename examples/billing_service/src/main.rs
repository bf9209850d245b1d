//! Runs change units that live in the `billing_migrations` library crate.
//!
//! `MONGODB_URI=mongodb://localhost:27017 cargo run -p billing_service`

// Without this line the linker drops the crate and the runner reports that no change units
// are registered.
use billing_migrations as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://localhost:27017".into());
    let db = mongodb::Client::with_uri_str(&uri)
        .await?
        .database("billing");
    let report = migrate::run(&db).await?;
    print!("{report}");
    Ok(())
}

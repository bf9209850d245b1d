//! A backfill over a large collection: every user gets a lower-cased copy of their email,
//! applied in resumable batches by a change unit that runs outside a transaction.
//!
//! ```sh
//! MONGODB_URI=mongodb://127.0.0.1:27017/ cargo run --release -p backfill -- 1000000
//! ```
//!
//! The program seeds the given number of users (1,000,000 by default) unless the collection
//! already holds them, then runs the migration. Stop it at any point with Ctrl-C and start it
//! again: it goes on where it stopped, and no user is changed twice.

use std::time::Instant;

use migrate::batch::BatchUpdate;
use migrate::{change_unit, execution, rollback_execution, Progress, RunContext, Runner};
use mongodb::bson::{doc, Document};
use mongodb::{Client, Database};

/// Lower-cases every user's email into `emailLower`, 5,000 users per batch. The filter
/// selects users without `emailLower`, which the update sets: a rerun sees only the rest.
#[change_unit(
    id = "backfill-email-lower",
    order = "001",
    author = "platform",
    transactional = false
)]
pub struct BackfillEmailLower {
    db: Database,
}

impl BackfillEmailLower {
    #[execution]
    async fn execute(&self, context: &RunContext) -> anyhow::Result<()> {
        let users = self.db.collection::<Document>("users");
        let report = BatchUpdate::new(
            &users,
            doc! { "emailLower": { "$exists": false } },
            vec![doc! { "$set": { "emailLower": { "$toLower": "$email" } } }],
        )
        .batch_size(5_000)
        .run(context)
        .await?;
        println!(
            "changed {} users in {} batches in {:.1} s",
            report.changed,
            report.batches,
            report.elapsed.as_secs_f64()
        );
        Ok(())
    }

    #[rollback_execution]
    async fn rollback(&self) -> anyhow::Result<()> {
        self.db
            .collection::<Document>("users")
            .update_many(doc! {}, doc! { "$unset": { "emailLower": "" } })
            .await?;
        Ok(())
    }
}

/// Inserts `count` users unless the collection holds that many already.
async fn seed(db: &Database, count: u64) -> anyhow::Result<()> {
    let users = db.collection::<Document>("users");
    let existing = users.estimated_document_count().await?;
    if existing >= count {
        return Ok(());
    }
    let started = Instant::now();
    const CHUNK: u64 = 10_000;
    let mut next = existing;
    while next < count {
        let end = (next + CHUNK).min(count);
        let docs: Vec<Document> = (next..end)
            .map(|i| doc! { "_id": i as i64, "email": format!("User.{i}@Example.COM") })
            .collect();
        users.insert_many(docs).await?;
        next = end;
    }
    println!(
        "seeded {} users in {:.1} s",
        count - existing,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".into());
    let client = Client::with_uri_str(&uri).await?;
    let db = client.database("backfill_example");
    seed(&db, count).await?;

    let report = Runner::new(&db)
        .on_progress(|progress: &Progress| eprint!("\r{progress}    "))
        .run()
        .await?;
    eprintln!();
    print!("{report}");
    // A dropped client ends its sessions in a task that a runtime shutting down may cut
    // short (the driver then prints a panic); shutting it down first ends them in order.
    client.shutdown().await;
    Ok(())
}

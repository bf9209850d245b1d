//! A stand-in for mongod's periodic transaction reaper, for SecantusDB.
//!
//! mongod aborts a transaction that outlives `transactionLifetimeLimitSeconds` (60 s) from a
//! periodic background job, so the open transaction of a killed or frozen runner ends by
//! itself. SecantusDB has no background job: it ends expired transactions only when a
//! statement inside some transaction reaches it. A runner that waits for such an orphan while
//! sending only lock attempts (outside any transaction) would wait for ever there, which a
//! real server never makes it do. `migrate-chaos reap` plays mongod's part: every five seconds
//! it opens a transaction on its own client, reads one document of a collection nobody else
//! uses, and aborts. It ends only transactions past their lifetime, exactly those mongod
//! would end; a live runner's transactions are untouched.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::Client;

use crate::BoxError;

const EVERY: Duration = Duration::from_secs(5);

/// Runs until the process is killed.
pub(crate) async fn reap(client: &Client) -> Result<(), BoxError> {
    let scratch = client
        .database("chaos_reaper")
        .collection::<Document>("reaper");
    loop {
        if let Err(error) = touch(client, &scratch).await {
            eprintln!("chaos: reaper: {error}");
        }
        tokio::time::sleep(EVERY).await;
    }
}

async fn touch(client: &Client, scratch: &mongodb::Collection<Document>) -> Result<(), BoxError> {
    let mut session = client.start_session().await?;
    session.start_transaction().await?;
    scratch.find_one(doc! {}).session(&mut session).await?;
    session.abort_transaction().await?;
    Ok(())
}

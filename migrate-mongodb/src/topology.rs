//! Whether the server can run multi-document transactions, from its `hello` reply.
//!
//! The driver does not refuse a transaction on a standalone server (the server answers with
//! error 20 only once the first operation runs), so the store asks the server itself.

use mongodb::bson::{doc, Document};
use mongodb::Database;

use crate::error::{code, Error};

/// Replica set transactions need MongoDB 4.0 (wire version 7).
const REPLICA_SET_TRANSACTIONS: i32 = 7;
/// Sharded transactions need MongoDB 4.2 (wire version 8).
const SHARDED_TRANSACTIONS: i32 = 8;
/// The client-level `bulkWrite` command needs MongoDB 8.0 (wire version 25).
const CLIENT_BULK_WRITE: i32 = 25;
/// `CommandNotFound`: servers older than 4.4.2 only know `isMaster`.
const COMMAND_NOT_FOUND: i32 = 59;

/// What the server said about itself.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    /// Whether transactions are available.
    pub(crate) transactions: bool,
    /// Why not, when they are not.
    pub(crate) reason: String,
    /// Whether the server has the client-level `bulkWrite` command, which writes to several
    /// collections in one round trip.
    pub(crate) bulk_write: bool,
}

pub(crate) async fn detect(db: &Database) -> Result<Topology, Error> {
    let reply = match db.run_command(doc! { "hello": 1 }).await {
        Ok(reply) => reply,
        Err(e) if code(&e) == Some(COMMAND_NOT_FOUND) => db
            .run_command(doc! { "isMaster": 1 })
            .await
            .map_err(|e| Error::command("isMaster", db.name(), e))?,
        Err(e) => return Err(Error::command("hello", db.name(), e)),
    };
    Ok(classify(&reply))
}

fn classify(reply: &Document) -> Topology {
    let wire = wire_version(reply);
    let (transactions, reason) = if reply.get_str("setName").is_ok() {
        (
            wire >= REPLICA_SET_TRANSACTIONS,
            format!(
                "the server is a replica set member older than MongoDB 4.0 (wire version \
                 {wire}), which cannot run transactions"
            ),
        )
    } else if reply.get_str("msg") == Ok("isdbgrid") {
        (
            wire >= SHARDED_TRANSACTIONS,
            format!(
                "the server is a mongos older than MongoDB 4.2 (wire version {wire}), which \
                 cannot run transactions"
            ),
        )
    } else {
        (
            false,
            "the server is a standalone server (its `hello` reply names no replica set and \
             it is not a mongos); MongoDB runs transactions only on replica set members and \
             mongos"
                .to_owned(),
        )
    };
    Topology {
        transactions,
        reason: if transactions { String::new() } else { reason },
        bulk_write: wire >= CLIENT_BULK_WRITE,
    }
}

fn wire_version(reply: &Document) -> i32 {
    match reply.get("maxWireVersion") {
        Some(mongodb::bson::Bson::Int32(n)) => *n,
        Some(mongodb::bson::Bson::Int64(n)) => i32::try_from(*n).unwrap_or(i32::MAX),
        Some(mongodb::bson::Bson::Double(n)) => *n as i32,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_sets_and_mongos_support_transactions_standalones_do_not() {
        assert!(classify(&doc! { "setName": "rs0", "maxWireVersion": 21 }).transactions);
        assert!(classify(&doc! { "msg": "isdbgrid", "maxWireVersion": 21 }).transactions);
        let standalone = classify(&doc! { "isWritablePrimary": true, "maxWireVersion": 21 });
        assert!(!standalone.transactions);
        assert!(
            standalone.reason.contains("standalone"),
            "{}",
            standalone.reason
        );
        assert!(!classify(&doc! { "setName": "rs0", "maxWireVersion": 6 }).transactions);
    }
}

//! The lock collection's document format (Mongock 5's `mongockLock`).

use std::time::SystemTime;

use migrate_core::{LockClaim, LockInfo};
use mongodb::bson::raw::RawDocument;
use mongodb::bson::{doc, DateTime, Document};

use crate::error::Error;
use crate::history::{document_id, Fields};

/// The only lock key Mongock uses.
pub(crate) const LOCK_KEY: &str = "DEFAULT_KEY";
const KEY: &str = "key";
const STATUS: &str = "status";
const OWNER: &str = "owner";
const EXPIRES_AT: &str = "expiresAt";
const LOCK_HELD: &str = "LOCK_HELD";

/// The keys of the lock's unique index.
pub(crate) const INDEX_KEYS: &str = "{ key: 1 }";

pub(crate) fn index_keys() -> Document {
    doc! { KEY: 1 }
}

/// Matches the lock if it is free to take for `claim.owner`: expired, or already theirs.
pub(crate) fn acquire_filter(claim: &LockClaim, now: SystemTime) -> Document {
    doc! {
        KEY: LOCK_KEY,
        "$or": [
            { EXPIRES_AT: { "$lt": DateTime::from_system_time(now) } },
            { OWNER: &claim.owner },
        ],
    }
}

/// The whole lock document, as a `$set`.
pub(crate) fn acquire_update(claim: &LockClaim) -> Document {
    doc! {
        "$set": {
            KEY: LOCK_KEY,
            STATUS: LOCK_HELD,
            OWNER: &claim.owner,
            EXPIRES_AT: DateTime::from_system_time(claim.expires_at),
        }
    }
}

/// Matches the lock only while `owner` holds it.
pub(crate) fn owner_filter(owner: &str) -> Document {
    doc! { KEY: LOCK_KEY, OWNER: owner }
}

/// Matches the lock only while it is exactly `held`: same owner, same expiry.
pub(crate) fn exact_filter(held: &LockInfo) -> Document {
    doc! {
        KEY: &held.key,
        OWNER: &held.owner,
        EXPIRES_AT: DateTime::from_system_time(held.expires_at),
    }
}

pub(crate) fn key_filter() -> Document {
    doc! { KEY: LOCK_KEY }
}

/// Extends the lease to `claim.expires_at`.
pub(crate) fn extend_update(claim: &LockClaim) -> Document {
    doc! { "$set": { EXPIRES_AT: DateTime::from_system_time(claim.expires_at) } }
}

/// Reads a stored lock document.
pub(crate) fn decode(doc: &RawDocument, namespace: &str) -> Result<LockInfo, Error> {
    let fields = Fields::new(doc);
    let corrupt = |reason: String| Error::CorruptLock {
        namespace: namespace.to_owned(),
        id: document_id(doc),
        reason,
    };
    let expires_at = fields
        .date(EXPIRES_AT)
        .map_err(corrupt)?
        .ok_or_else(|| corrupt(format!("required field `{EXPIRES_AT}` is missing")))?;
    Ok(LockInfo {
        key: fields.required_string(KEY).map_err(corrupt)?.to_owned(),
        owner: fields.required_string(OWNER).map_err(corrupt)?.to_owned(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_document_with_a_wrong_type_names_its_id() {
        let doc = doc! { "_id": 9, "key": LOCK_KEY, "owner": 1, "expiresAt": DateTime::now() };
        let doc = mongodb::bson::RawDocumentBuf::from_document(&doc).unwrap();
        let err = decode(&doc, "db.l").unwrap_err();
        assert_eq!(
            err.to_string(),
            "lock document `_id: 9` in `db.l` is corrupt: field `owner` is an int32, expected a string"
        );
    }
}

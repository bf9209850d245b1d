//! An in-memory [`Store`], for tests and examples that do not need a database.
//!
//! It keeps the history, the lock and a small key-value "database" that change units write
//! through [`MemorySession`]. Writes made inside a transaction become visible on commit and
//! vanish on abort, like a database's. Clones share the same state, so several runners can
//! race on one store.
//!
//! A held lock expires on tokio's clock, so in a test on tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`) leases run out as the paused time advances.
//!
//! With the `fault-injection` feature it can also fail commits and history writes on
//! demand, to test how a runner handles a store that fails.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock;
use crate::history::HistoryEntry;
use crate::inject::{Dependencies, InjectSession};
use crate::store::{LockAttempt, LockClaim, LockInfo, LockStore, Store, TransactionStore};
use crate::unit::BoxError;

/// The lock key Mongock uses.
const LOCK_KEY: &str = "DEFAULT_KEY";

/// An in-memory store. See the [module docs](self).
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    history: Vec<HistoryEntry<String>>,
    lock: Option<LockInfo>,
    data: BTreeMap<String, String>,
    no_transactions: bool,
    transient_commit_failures: usize,
    fail_history_writes: bool,
    operations: Vec<&'static str>,
    replaced_checksums: Vec<(String, String)>,
}

/// The session of a [`MemoryStore`]; change units take it as `&mut MemorySession`.
pub struct MemorySession {
    inner: Arc<Mutex<Inner>>,
    transaction: Option<Transaction>,
}

#[derive(Default)]
struct Transaction {
    data: Vec<(String, Option<String>)>,
    history: Vec<HistoryEntry<String>>,
}

impl InjectSession for MemorySession {}

/// An error of the in-memory store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MemoryError {
    message: String,
    transient: bool,
}

impl MemoryError {
    /// A transient error: the runner retries the transaction.
    pub fn transient(message: impl Into<String>) -> Self {
        MemoryError {
            message: message.into(),
            transient: true,
        }
    }
}

impl MemoryStore {
    /// An empty store that supports transactions.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store without transaction support (the rollback-method path).
    pub fn without_transactions() -> Self {
        let store = Self::default();
        store.lock().no_transactions = true;
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, operation: &'static str) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        inner.operations.push(operation);
        inner
    }

    /// Every history entry, in write order (updates replace in place).
    pub fn history(&self) -> Vec<HistoryEntry<String>> {
        self.lock().history.clone()
    }

    /// Replaces the history, e.g. with entries another runtime wrote.
    pub fn set_history(&self, history: Vec<HistoryEntry<String>>) {
        self.lock().history = history;
    }

    /// The checksums that `replace_checksum` replaced, as (changeId, old checksum), oldest
    /// first.
    pub fn replaced_checksums(&self) -> Vec<(String, String)> {
        self.lock().replaced_checksums.clone()
    }

    /// The committed key-value data.
    pub fn data(&self) -> BTreeMap<String, String> {
        self.lock().data.clone()
    }

    /// The stored lock, if any.
    pub fn lock_info(&self) -> Option<LockInfo> {
        self.lock().lock.clone()
    }

    /// Stores a lock as another runner would.
    pub fn set_lock(&self, lock: Option<LockInfo>) {
        self.lock().lock = lock;
    }

    /// The names of the store operations performed so far.
    pub fn operations(&self) -> Vec<&'static str> {
        self.lock().operations.clone()
    }

    /// Makes the next `count` commits fail with a transient error.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_commits(&self, count: usize) {
        self.lock().transient_commit_failures = count;
    }

    /// Makes every history write fail (to test store failures).
    #[cfg(feature = "fault-injection")]
    pub fn fail_history_writes(&self, fail: bool) {
        self.lock().fail_history_writes = fail;
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("history", &inner.history.len())
            .field("lock", &inner.lock)
            .field("data", &inner.data)
            .finish()
    }
}

impl MemorySession {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets `key` to `value` (inside the transaction, if one is open).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.write(key.into(), Some(value.into()));
    }

    /// Removes `key` (inside the transaction, if one is open).
    pub fn remove(&mut self, key: impl Into<String>) {
        self.write(key.into(), None);
    }

    fn write(&mut self, key: String, value: Option<String>) {
        match &mut self.transaction {
            Some(txn) => txn.data.push((key, value)),
            None => apply(&mut self.inner().data, key, value),
        }
    }

    /// Reads `key` as this session sees it.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(txn) = &self.transaction {
            if let Some((_, value)) = txn.data.iter().rev().find(|(k, _)| k == key) {
                return value.clone();
            }
        }
        self.inner().data.get(key).cloned()
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }
}

fn apply(data: &mut BTreeMap<String, String>, key: String, value: Option<String>) {
    match value {
        Some(value) => data.insert(key, value),
        None => data.remove(&key),
    };
}

fn upsert(history: &mut Vec<HistoryEntry<String>>, entry: HistoryEntry<String>) {
    match history.iter_mut().find(|e| {
        e.execution_id == entry.execution_id
            && e.author == entry.author
            && e.change_id == entry.change_id
    }) {
        Some(existing) => *existing = entry,
        None => history.push(entry),
    }
}

impl Store for MemoryStore {
    type Session = MemorySession;
    type Metadata = String;

    async fn read_history(&self) -> Result<Vec<HistoryEntry<String>>, BoxError> {
        Ok(self.log("read_history").history.clone())
    }

    async fn prepare(&self) -> Result<(), BoxError> {
        drop(self.log("prepare"));
        Ok(())
    }

    fn provide(&self, deps: &mut Dependencies) {
        deps.insert(self.clone());
    }

    async fn write_entry(
        &self,
        entry: &HistoryEntry<String>,
        session: Option<&mut MemorySession>,
    ) -> Result<(), BoxError> {
        if self.log("write_entry").fail_history_writes {
            return Err("history writes are failing".into());
        }
        match session.and_then(|s| s.transaction.as_mut()) {
            Some(txn) => txn.history.push(entry.clone()),
            None => upsert(&mut self.lock().history, entry.clone()),
        }
        Ok(())
    }

    async fn is_recorded(&self, entry: &HistoryEntry<String>) -> Result<bool, BoxError> {
        Ok(self.log("is_recorded").history.iter().any(|e| {
            e.execution_id == entry.execution_id
                && e.author == entry.author
                && e.change_id == entry.change_id
                && e.state == entry.state
        }))
    }

    async fn replace_checksum(
        &self,
        entry: &HistoryEntry<String>,
        checksum: &str,
    ) -> Result<bool, BoxError> {
        let mut inner = self.log("replace_checksum");
        let Inner {
            history,
            replaced_checksums,
            ..
        } = &mut *inner;
        let stored = history.iter_mut().find(|e| {
            e.execution_id == entry.execution_id
                && e.author == entry.author
                && e.change_id == entry.change_id
                && e.checksum == entry.checksum
        });
        let Some(stored) = stored else {
            return Ok(false);
        };
        if let Some(old) = stored.checksum.replace(checksum.to_owned()) {
            replaced_checksums.push((stored.change_id.clone(), old));
        }
        Ok(true)
    }

    async fn start_session(&self) -> Result<MemorySession, BoxError> {
        drop(self.log("start_session"));
        Ok(MemorySession {
            inner: Arc::clone(&self.inner),
            transaction: None,
        })
    }

    async fn reuse_session(&self, mut session: MemorySession) -> Option<MemorySession> {
        // What a unit left in a transaction of its own is dropped, as a server aborts it.
        session.transaction = None;
        Some(session)
    }
}

impl TransactionStore for MemoryStore {
    async fn supports_transactions(&self) -> Result<bool, BoxError> {
        Ok(!self.log("supports_transactions").no_transactions)
    }

    async fn start_transaction(&self, session: &mut MemorySession) -> Result<(), BoxError> {
        drop(self.log("start_transaction"));
        session.transaction = Some(Transaction::default());
        Ok(())
    }

    async fn fence_lock(
        &self,
        _session: &mut MemorySession,
        claim: &LockClaim,
    ) -> Result<bool, BoxError> {
        let inner = self.log("fence_lock");
        Ok(inner.lock.as_ref().is_some_and(|l| l.owner == claim.owner))
    }

    async fn commit_transaction(&self, session: &mut MemorySession) -> Result<(), BoxError> {
        let mut inner = self.log("commit_transaction");
        if inner.transient_commit_failures > 0 {
            inner.transient_commit_failures -= 1;
            session.transaction = None;
            return Err(MemoryError::transient("write conflict during commit").into());
        }
        let txn = session
            .transaction
            .take()
            .ok_or("no transaction to commit")?;
        for (key, value) in txn.data {
            apply(&mut inner.data, key, value);
        }
        for entry in txn.history {
            upsert(&mut inner.history, entry);
        }
        Ok(())
    }

    async fn abort_transaction(&self, session: &mut MemorySession) -> Result<(), BoxError> {
        drop(self.log("abort_transaction"));
        session.transaction = None;
        Ok(())
    }

    async fn end_session(&self, mut session: MemorySession) {
        drop(self.log("end_session"));
        session.transaction = None;
    }

    fn is_transient(&self, error: &BoxError) -> bool {
        error
            .downcast_ref::<MemoryError>()
            .is_some_and(|e| e.transient)
    }
}

impl LockStore for MemoryStore {
    async fn acquire_lock(
        &self,
        claim: &LockClaim,
        _max_wait: Duration,
    ) -> Result<LockAttempt, BoxError> {
        let mut inner = self.log("acquire_lock");
        let now = clock::now();
        match &inner.lock {
            Some(held) if held.owner != claim.owner && held.expires_at >= now => {
                Ok(LockAttempt::HeldBy(Some(held.clone())))
            }
            _ => {
                inner.lock = Some(LockInfo {
                    key: LOCK_KEY.into(),
                    owner: claim.owner.clone(),
                    expires_at: claim.expires_at,
                });
                Ok(LockAttempt::Acquired)
            }
        }
    }

    async fn refresh_lock(&self, claim: &LockClaim) -> Result<bool, BoxError> {
        let mut inner = self.log("refresh_lock");
        match &mut inner.lock {
            Some(held) if held.owner == claim.owner => {
                held.expires_at = claim.expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lock(&self, owner: &str) -> Result<(), BoxError> {
        let mut inner = self.log("release_lock");
        if inner.lock.as_ref().is_some_and(|l| l.owner == owner) {
            inner.lock = None;
        }
        Ok(())
    }

    async fn read_lock(&self) -> Result<Option<LockInfo>, BoxError> {
        Ok(self.log("read_lock").lock.clone())
    }

    async fn remove_lock(&self, lock: &LockInfo) -> Result<bool, BoxError> {
        let mut inner = self.log("remove_lock");
        if inner.lock.as_ref() == Some(lock) {
            inner.lock = None;
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LEASE: Duration = Duration::from_secs(3);

    fn claim(owner: &str) -> LockClaim {
        LockClaim {
            owner: owner.into(),
            expires_at: clock::now() + LEASE,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_is_taken_over_once_its_lease_has_run_out() {
        // Paused time costs nothing, so the margins around the expiry are wide.
        let margin = Duration::from_millis(100);
        let store = MemoryStore::new();
        assert_eq!(
            store
                .acquire_lock(&claim("first"), Duration::ZERO)
                .await
                .unwrap(),
            LockAttempt::Acquired
        );

        tokio::time::sleep(LEASE - margin).await;
        assert!(
            matches!(
                store.acquire_lock(&claim("second"), Duration::ZERO).await.unwrap(),
                LockAttempt::HeldBy(Some(held)) if held.owner == "first"
            ),
            "held until it expires"
        );

        tokio::time::sleep(2 * margin).await;
        assert_eq!(
            store
                .acquire_lock(&claim("second"), Duration::ZERO)
                .await
                .unwrap(),
            LockAttempt::Acquired
        );
        assert_eq!(store.lock_info().unwrap().owner, "second");
    }
}

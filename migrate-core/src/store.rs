//! The storage interface the runner drives.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::history::{HistoryEntry, PlanningHistory};
use crate::inject::Dependencies;
use crate::legacy::{LegacyMigration, LegacyRow};
use crate::report::Report;
use crate::runner::Runner;
use crate::unit::{BoxError, BoxFuture};

/// A lock claim: who wants the lock and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockClaim {
    /// The runner's owner id (random per run).
    pub owner: String,
    /// When the lease ends unless refreshed.
    pub expires_at: SystemTime,
}

/// The stored lock, as another runner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// The lock key (`DEFAULT_KEY`).
    pub key: String,
    /// The holder's owner id.
    pub owner: String,
    /// When the holder's lease ends.
    pub expires_at: SystemTime,
}

/// The result of one acquisition attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    /// The claim is now stored.
    Acquired,
    /// Another owner holds an unexpired lease (`None` when it vanished in between).
    HeldBy(Option<LockInfo>),
    /// The lock document is written by a transaction that is still open (a runner that
    /// crashed or froze inside one); the store waited as long as it was allowed to.
    InTransaction,
}

/// A storage backend's history and sessions: what every run needs.
///
/// The runner owns every decision; a store only performs single operations and owns every
/// storage detail, its own settings (collection names, indexes) included. The lock and
/// transactions are the focused traits [`LockStore`] and [`TransactionStore`] beside this one.
/// Methods return `Send` futures so a run can be spawned on a multi-threaded runtime.
pub trait Store: Send + Sync + 'static {
    /// The session handed to change unit methods as `&mut Session`.
    type Session: Send + 'static;
    /// Metadata recorded with every history entry.
    type Metadata: Clone + fmt::Debug + Send + Sync + 'static;

    /// Checks the store's own settings. Called before any other method; an error here stops
    /// the run before anything is read or written.
    fn check_settings(&self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Reads the whole history.
    fn read_history(
        &self,
    ) -> impl Future<Output = Result<Vec<HistoryEntry<Self::Metadata>>, BoxError>> + Send;

    /// Reads the whole history as far as planning a run needs it: every entry, without the
    /// fields that do not decide what runs. A start with nothing to apply reads only this,
    /// so a store that reads less here than in [`read_history`](Store::read_history) makes
    /// such starts cheaper. The default reads the whole history.
    fn read_history_for_planning(
        &self,
    ) -> impl Future<Output = Result<PlanningHistory, BoxError>> + Send {
        async {
            let history = self.read_history().await?;
            Ok(PlanningHistory::from(history.as_slice()))
        }
    }

    /// Creates (or, without index creation, verifies) what the store needs. Called only when
    /// something is pending, before the lock is taken.
    fn prepare(&self) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Registers the store's own injectable handles (for MongoDB: `Database`, `Client`).
    fn provide(&self, deps: &mut Dependencies);

    /// Inserts or updates a history entry, keyed by (executionId, author, changeId). With a
    /// session inside a transaction, the write is part of the transaction.
    fn write_entry(
        &self,
        entry: &HistoryEntry<Self::Metadata>,
        session: Option<&mut Self::Session>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Whether an entry with `entry`'s key (executionId, author, changeId) is stored in
    /// `entry`'s state: how the runner settles a write whose outcome it did not learn.
    fn is_recorded(
        &self,
        entry: &HistoryEntry<Self::Metadata>,
    ) -> impl Future<Output = Result<bool, BoxError>> + Send;

    /// Sets the checksum of the stored entry with `entry`'s key (executionId, author,
    /// changeId) to `checksum`, keeping `entry.checksum`, the one it replaces, beside it.
    /// `false` when no such entry holds `entry.checksum` any more.
    fn replace_checksum(
        &self,
        entry: &HistoryEntry<Self::Metadata>,
        checksum: &str,
    ) -> impl Future<Output = Result<bool, BoxError>> + Send;

    /// Starts a session (no transaction).
    fn start_session(&self) -> impl Future<Output = Result<Self::Session, BoxError>> + Send;

    /// Readies `session`, which a unit finished with successfully, for the run's next unit,
    /// so that a run starts one session however many units it applies; `None` has the next
    /// unit start a session of its own (the default). A transaction the unit left open must
    /// end here, as it would when its session is dropped.
    fn reuse_session(
        &self,
        session: Self::Session,
    ) -> impl Future<Output = Option<Self::Session>> + Send {
        drop(session);
        std::future::ready(None)
    }

    /// Inserts entries whose keys are not stored yet (the rows of an import), in as few
    /// round trips as the store can. With a session inside a transaction, the writes are
    /// part of the transaction. The default writes them one by one.
    fn insert_entries(
        &self,
        entries: &[HistoryEntry<Self::Metadata>],
        mut session: Option<&mut Self::Session>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        async move {
            for entry in entries {
                self.write_entry(entry, session.as_deref_mut()).await?;
            }
            Ok(())
        }
    }

    /// Reads every row of an earlier tool's history, for
    /// [`Runner::legacy_migration`](crate::Runner::legacy_migration). Never writes to it.
    /// Stores that cannot keep the default, which fails the import.
    fn read_legacy_history(
        &self,
        legacy: &LegacyMigration,
    ) -> impl Future<Output = Result<Vec<LegacyRow<Self::Metadata>>, BoxError>> + Send {
        let origin = legacy.origin().to_owned();
        async move { Err(format!("this store cannot import earlier history (from `{origin}`)").into()) }
    }
}

/// The distributed lock: one document that at most one runner holds at a time.
pub trait LockStore: Send + Sync + 'static {
    /// Stores `claim` if the lock is free, expired, or already held by `claim.owner`, waiting
    /// at most `max_wait` for an open transaction that holds the lock document.
    fn acquire_lock(
        &self,
        claim: &LockClaim,
        max_wait: Duration,
    ) -> impl Future<Output = Result<LockAttempt, BoxError>> + Send;

    /// Extends the lease; `false` when `claim.owner` no longer holds the lock.
    fn refresh_lock(
        &self,
        claim: &LockClaim,
    ) -> impl Future<Output = Result<bool, BoxError>> + Send;

    /// Deletes the lock if `owner` holds it.
    fn release_lock(&self, owner: &str) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Reads the stored lock, if there is one.
    fn read_lock(&self) -> impl Future<Output = Result<Option<LockInfo>, BoxError>> + Send;

    /// Deletes the lock if it is still exactly `lock` (same owner, same expiry); `false` when
    /// it changed or vanished in between.
    fn remove_lock(&self, lock: &LockInfo) -> impl Future<Output = Result<bool, BoxError>> + Send;
}

/// Multi-statement transactions, and the fence that ties a commit to the lock.
pub trait TransactionStore: Store {
    /// Whether the store can run multi-statement transactions; `Err` explains why not when
    /// detection itself fails.
    fn supports_transactions(&self) -> impl Future<Output = Result<bool, BoxError>> + Send;

    /// Why transactions are unavailable, for the error of a forced transactional run.
    fn transactions_unsupported_reason(&self) -> String {
        "this store does not support transactions".into()
    }

    /// Starts a transaction on `session`.
    fn start_transaction(
        &self,
        session: &mut Self::Session,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Extends the lease to `claim.expires_at` inside the transaction. Written first, it holds
    /// the lock document for the transaction's whole life: no other runner can take the lock
    /// over until it ends, and a takeover that happened before makes it return `false`.
    ///
    /// The runner never fences with the expiry already stored: each claim it makes is later
    /// than the last, by at least a millisecond. A fence must therefore write the document,
    /// since on MongoDB an update that changes nothing does not conflict with a takeover
    /// committed after the transaction's snapshot.
    fn fence_lock(
        &self,
        session: &mut Self::Session,
        claim: &LockClaim,
    ) -> impl Future<Output = Result<bool, BoxError>> + Send;

    /// Whether [`fence_and_record`](Self::fence_and_record) costs a single round trip. The
    /// runner then fences at the end of a transaction, together with its history entries,
    /// instead of with a write of its own at the start.
    fn combines_fence_and_record(&self) -> bool {
        false
    }

    /// Fences the lock (as [`fence_lock`](Self::fence_lock)) and writes `entries`, as the
    /// transaction's last writes; `false`, with nothing to commit, when another runner took
    /// the lock over.
    fn fence_and_record(
        &self,
        session: &mut Self::Session,
        claim: &LockClaim,
        entries: &[HistoryEntry<Self::Metadata>],
    ) -> impl Future<Output = Result<bool, BoxError>> + Send {
        async move {
            if !self.fence_lock(session, claim).await? {
                return Ok(false);
            }
            for entry in entries {
                self.write_entry(entry, Some(&mut *session)).await?;
            }
            Ok(true)
        }
    }

    /// Commits the transaction on `session`.
    fn commit_transaction(
        &self,
        session: &mut Self::Session,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Aborts the transaction on `session`.
    fn abort_transaction(
        &self,
        session: &mut Self::Session,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Ends `session` on the server, aborting any transaction still open on it: after a
    /// failed commit, which a client can no longer abort.
    fn end_session(&self, session: Self::Session) -> impl Future<Output = ()> + Send;

    /// How long the server lets a transaction live before aborting it.
    fn transaction_lifetime(&self) -> Duration {
        Duration::from_secs(60)
    }

    /// Whether `error` means the server no longer knows the transaction (it aborted it, for
    /// example because it outlived [`transaction_lifetime`](Self::transaction_lifetime)).
    fn is_transaction_gone(&self, _error: &BoxError) -> bool {
        false
    }

    /// Whether `error` means the whole transaction may succeed if retried.
    fn is_transient(&self, error: &BoxError) -> bool;

    /// Whether `error` from a commit means the commit itself may be retried.
    fn is_unknown_commit_result(&self, _error: &BoxError) -> bool {
        false
    }

    /// Runs `runner`, as [`Runner::run`] does. A store crate overrides it with the same body,
    /// `Box::pin(runner.run_here())`: the runner's code for that store is then compiled once,
    /// in the store's crate, instead of in every crate that calls `run` (optimized builds
    /// share no generic code between crates).
    #[doc(hidden)]
    fn run_runner(runner: Runner<Self>) -> BoxFuture<'static, Result<Report, Error>>
    where
        Self: LockStore + Sized,
    {
        Box::pin(runner.run_here())
    }
}

/// Converts a value into a store, so `Runner::new` accepts both stores and handles such as
/// `&Database`. The `S` parameter lets storage crates implement it for types they do not own.
pub trait IntoStore<S: Store> {
    /// Builds the store.
    fn into_store(self) -> S;
}

impl<S: Store> IntoStore<S> for S {
    fn into_store(self) -> S {
        self
    }
}

//! The lease on the distributed lock: acquisition with waiting, background refresh, the
//! ownership check that guards every write, and release.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard};
use tokio::task::JoinHandle;

use crate::clock;
use crate::context::LeaseCheck;
use crate::error::{DisplayTime, Error};
use crate::store::{LockAttempt, LockClaim, LockInfo, LockStore};
use crate::unit::BoxFuture;

/// The least step between two expiries a lease writes: the precision of a BSON date.
const EXPIRY_STEP: Duration = Duration::from_millis(1);

/// Lock timing, validated by the runner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockTiming {
    pub(crate) lease: Duration,
    pub(crate) quit_trying_after: Duration,
    pub(crate) try_frequency: Duration,
}

/// A held lease. Dropping it stops the refresher; [`Lease::release`] also deletes the lock.
pub(crate) struct Lease<S: LockStore> {
    probe: LeaseProbe<S>,
    refresher: JoinHandle<()>,
    /// Set until [`release`](Lease::release) runs: a lease dropped before that belongs to a
    /// run that was cancelled, and releases the lock in the background.
    release_on_drop: bool,
}

/// What checking and extending the lease needs; shared with the units through
/// [`RunContext`](crate::RunContext).
struct LeaseProbe<S> {
    store: Arc<S>,
    owner: String,
    lease: Duration,
    state: Arc<LeaseState>,
}

impl<S> Clone for LeaseProbe<S> {
    fn clone(&self) -> Self {
        LeaseProbe {
            store: Arc::clone(&self.store),
            owner: self.owner.clone(),
            lease: self.lease,
            state: Arc::clone(&self.state),
        }
    }
}

/// What the runner and the refresher share.
struct LeaseState {
    lost: AtomicBool,
    /// The latest expiry the store confirmed.
    confirmed: Mutex<SystemTime>,
    /// The latest expiry this lease has asked the store to write; see
    /// [`next_expiry`](LeaseState::next_expiry).
    claimed: Mutex<SystemTime>,
    /// Held by each refresh and by each transaction that writes the lock document (the
    /// fence), so that the two never write it at the same time.
    writes: AsyncMutex<()>,
}

impl LeaseState {
    fn confirmed(&self) -> SystemTime {
        *self
            .confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The expiry of the next write of the lock document: `lease` from now, and at least a
    /// millisecond (the precision of a BSON date) after the last one this lease claimed.
    ///
    /// Every write of the lock document must change it. A fence is an update inside the
    /// unit's transaction, and an update that leaves a document as it was writes nothing, so
    /// it would not conflict with a takeover committed after the transaction's snapshot: the
    /// transaction would commit although the lock was lost. Two lock writes within the same
    /// millisecond would otherwise store the same expiry. The expiry runs ahead of the clock
    /// only while this lease writes more often than once a millisecond.
    fn next_expiry(&self, lease: Duration) -> SystemTime {
        let mut claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
        *claimed = (clock::now() + lease).max(*claimed + EXPIRY_STEP);
        *claimed
    }

    fn claim(&self, owner: &str, lease: Duration) -> LockClaim {
        LockClaim {
            owner: owner.to_owned(),
            expires_at: self.next_expiry(lease),
        }
    }

    fn confirm(&self, expires_at: SystemTime) {
        let mut confirmed = self
            .confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *confirmed = (*confirmed).max(expires_at);
    }
}

/// Acquires the lock, waiting while another owner holds it.
///
/// Returns `Ok(None)` when it stays held for `quit_trying_after` and the caller asked not to
/// fail; otherwise [`Error::Locked`]. Every wait is bounded by `quit_trying_after`, including
/// a wait for an open transaction that holds the lock document.
pub(crate) async fn acquire<S: LockStore>(
    store: &Arc<S>,
    owner: &str,
    timing: LockTiming,
    fail_if_locked: bool,
) -> Result<Option<Lease<S>>, Error> {
    let deadline = tokio::time::Instant::now() + timing.quit_trying_after;
    let mut waiting_for: Option<Holder> = None;
    loop {
        let claim = LockClaim {
            owner: owner.to_owned(),
            expires_at: clock::now() + timing.lease,
        };
        let max_wait = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(MIN_STORE_WAIT);
        let holder = match store
            .acquire_lock(&claim, max_wait)
            .await
            .map_err(|e| Error::store("acquiring the migration lock", e))?
        {
            LockAttempt::Acquired => {
                tracing::info!(owner, lease = ?timing.lease, "migration lock acquired");
                return Ok(Some(Lease::start(Arc::clone(store), claim, timing.lease)));
            }
            LockAttempt::HeldBy(Some(info)) => Holder::Runner(info),
            LockAttempt::HeldBy(None) => Holder::Vanished,
            LockAttempt::InTransaction => Holder::Transaction,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            if fail_if_locked {
                return Err(holder.into_error());
            }
            tracing::warn!(holder = %holder, "migration lock unavailable; nothing was run");
            return Ok(None);
        }
        if waiting_for.as_ref() != Some(&holder) {
            tracing::info!(
                holder = %holder,
                wait_at_most = ?(deadline - now),
                "waiting for the migration lock"
            );
            waiting_for = Some(holder.clone());
        }
        // Wait the try frequency, but never past the holder's expiry or the deadline.
        let mut wait = timing.try_frequency.min(deadline - now);
        if let Holder::Runner(info) = &holder {
            if let Ok(until_expiry) = info.expires_at.duration_since(clock::now()) {
                wait = wait.min(until_expiry + Duration::from_millis(1));
            }
        }
        tokio::time::sleep(wait).await;
    }
}

/// The shortest wait a lock attempt is allowed, so that a last attempt at the deadline still
/// reaches the store.
const MIN_STORE_WAIT: Duration = Duration::from_millis(100);

/// Who keeps the lock from being acquired.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    Runner(LockInfo),
    /// Held when tried, gone when read back.
    Vanished,
    /// An open transaction writes the lock document.
    Transaction,
}

impl Holder {
    fn into_error(self) -> Error {
        match self {
            Holder::Runner(info) => Error::Locked {
                owner: info.owner,
                expires_at: Some(info.expires_at),
            },
            Holder::Vanished => Error::Locked {
                owner: "another runner".into(),
                expires_at: None,
            },
            Holder::Transaction => Error::Locked {
                owner: Holder::Transaction.to_string(),
                expires_at: None,
            },
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Runner(info) => {
                write!(f, "`{}` until {}", info.owner, DisplayTime(info.expires_at))
            }
            Holder::Vanished => f.write_str("another runner"),
            Holder::Transaction => f.write_str(
                "an open transaction of a runner that crashed or froze inside it (the server \
                 ends it when its transaction lifetime passes)",
            ),
        }
    }
}

impl<S: LockStore> Lease<S> {
    fn start(store: Arc<S>, claim: LockClaim, lease: Duration) -> Self {
        let state = Arc::new(LeaseState {
            lost: AtomicBool::new(false),
            confirmed: Mutex::new(claim.expires_at),
            claimed: Mutex::new(claim.expires_at),
            writes: AsyncMutex::new(()),
        });
        let refresher = tokio::spawn(refresh_loop(
            Arc::clone(&store),
            claim.owner.clone(),
            lease,
            Arc::clone(&state),
        ));
        Lease {
            probe: LeaseProbe {
                store,
                owner: claim.owner,
                lease,
                state,
            },
            refresher,
            release_on_drop: true,
        }
    }

    /// A claim extending the lease from now, for fencing a transaction.
    pub(crate) fn claim(&self) -> LockClaim {
        self.probe.state.claim(&self.probe.owner, self.probe.lease)
    }

    /// The lease length.
    pub(crate) fn lease(&self) -> Duration {
        self.probe.lease
    }

    /// Records an expiry the store confirmed (a committed fence).
    pub(crate) fn confirm(&self, expires_at: SystemTime) {
        self.probe.state.confirm(expires_at);
    }

    /// Keeps the refresher from writing the lock document until the guard is dropped: for a
    /// transaction that writes it itself (its fence).
    pub(crate) async fn hold_refresh(&self) -> AsyncMutexGuard<'_, ()> {
        self.probe.state.writes.lock().await
    }

    /// Whether the lease is known to be lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.probe.state.lost.load(Ordering::SeqCst)
    }

    /// Marks the lease lost (a fence found another owner).
    pub(crate) fn mark_lost(&self) {
        self.probe.state.lost.store(true, Ordering::SeqCst);
    }

    /// Whether this runner still holds the lock, checked right before a write that must
    /// happen only under it.
    ///
    /// The confirmed expiry proves it without a round trip while more than a third of the
    /// lease is left (the margin absorbs clock skew between runners); otherwise, after a pause
    /// or failed refreshes, the store is asked, extending the lease if it is still ours.
    pub(crate) async fn still_held(&self) -> Result<bool, Error> {
        self.still_held_for(self.probe.lease / 3).await
    }

    /// Like [`still_held`](Self::still_held), and makes sure at least `left` of the lease
    /// remains, extending it in the store when less does.
    pub(crate) async fn still_held_for(&self, left: Duration) -> Result<bool, Error> {
        self.probe.still_held_for(left).await
    }

    /// A check of this lease for the run's units.
    pub(crate) fn check(&self) -> Box<dyn LeaseCheck> {
        Box::new(self.probe.clone())
    }

    /// Stops refreshing and deletes the lock if still ours.
    pub(crate) async fn release(mut self) -> Result<(), Error> {
        self.release_on_drop = false;
        self.refresher.abort();
        let result = self
            .probe
            .store
            .release_lock(&self.probe.owner)
            .await
            .map_err(|e| Error::store("releasing the migration lock", e));
        if result.is_ok() {
            tracing::debug!(owner = %self.probe.owner, "migration lock released");
        }
        result
    }
}

impl<S: LockStore> LeaseProbe<S> {
    /// Whether the lock is still held, with at least `left` of the lease remaining; extends
    /// it in the store when less does.
    pub(crate) async fn still_held_for(&self, left: Duration) -> Result<bool, Error> {
        if self.state.lost.load(Ordering::SeqCst) {
            return Ok(false);
        }
        if clock::now() + left < self.state.confirmed() {
            return Ok(true);
        }
        let _writes = self.state.writes.lock().await;
        let claim = self.state.claim(&self.owner, self.lease);
        let held = self
            .store
            .refresh_lock(&claim)
            .await
            .map_err(|e| Error::store("checking that the migration lock is still held", e))?;
        if held {
            self.state.confirm(claim.expires_at);
        } else {
            tracing::error!(owner = %self.owner, "migration lock was taken over by another runner");
            self.state.lost.store(true, Ordering::SeqCst);
        }
        Ok(held)
    }
}

impl<S: LockStore> LeaseCheck for LeaseProbe<S> {
    fn still_held(&self) -> BoxFuture<'_, Result<bool, Error>> {
        Box::pin(self.still_held_for(self.lease / 3))
    }
}

impl<S: LockStore> Drop for Lease<S> {
    /// Stops the refresher. A lease dropped without [`Lease::release`] belongs to a run whose
    /// future was dropped (a timeout around `run`, an aborted task): its lock is released in
    /// a task of its own, so that other runners need not wait out the lease. A lock document
    /// that a transaction left open by the cancelled run still holds is released once the
    /// server ends that transaction; if the runtime is gone, the lease runs out instead.
    fn drop(&mut self) {
        self.refresher.abort();
        if !self.release_on_drop {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, owner) = (Arc::clone(&self.probe.store), self.probe.owner.clone());
        runtime.spawn(async move {
            match store.release_lock(&owner).await {
                Ok(()) => tracing::info!(owner, "migration lock of a cancelled run released"),
                Err(error) => tracing::warn!(
                    owner,
                    error = %crate::error::Chain(&*error),
                    "could not release the migration lock of a cancelled run; it is free once its lease ends"
                ),
            }
        });
    }
}

async fn refresh_loop<S: LockStore>(
    store: Arc<S>,
    owner: String,
    lease: Duration,
    state: Arc<LeaseState>,
) {
    let period = lease / 3;
    loop {
        tokio::time::sleep(period).await;
        let _writes = state.writes.lock().await;
        if state.lost.load(Ordering::SeqCst) {
            return;
        }
        let claim = state.claim(&owner, lease);
        match store.refresh_lock(&claim).await {
            Ok(true) => state.confirm(claim.expires_at),
            Ok(false) => {
                tracing::error!(%owner, "migration lock was taken over by another runner");
                state.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) if clock::now() + period >= state.confirmed() => {
                tracing::error!(%owner, error = %crate::error::Chain(&*error), "migration lock could not be refreshed before it expired");
                state.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => {
                tracing::warn!(%owner, error = %crate::error::Chain(&*error), "migration lock refresh failed; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests;

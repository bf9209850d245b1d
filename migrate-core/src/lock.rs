//! The lease on the distributed lock: acquisition with waiting, background refresh, release.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::clock;
use crate::error::Error;
use crate::store::{LockAttempt, LockClaim, LockInfo, LockStore};

/// Lock timing, validated by the runner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockTiming {
    pub(crate) lease: Duration,
    pub(crate) quit_trying_after: Duration,
    pub(crate) try_frequency: Duration,
}

/// A held lease. Dropping it stops the refresher; [`Lease::release`] also deletes the lock.
pub(crate) struct Lease<S: LockStore> {
    store: Arc<S>,
    owner: String,
    lease: Duration,
    lost: Arc<AtomicBool>,
    refresher: JoinHandle<()>,
}

/// Acquires the lock, waiting while another owner holds it.
///
/// Returns `Ok(None)` when it stays held for `quit_trying_after` and the caller asked not to
/// fail; otherwise [`Error::Locked`].
pub(crate) async fn acquire<S: LockStore>(
    store: &Arc<S>,
    owner: &str,
    timing: LockTiming,
    fail_if_locked: bool,
) -> Result<Option<Lease<S>>, Error> {
    let deadline = tokio::time::Instant::now() + timing.quit_trying_after;
    loop {
        let claim = LockClaim {
            owner: owner.to_owned(),
            expires_at: clock::now() + timing.lease,
        };
        let holder = match store
            .acquire_lock(&claim)
            .await
            .map_err(|e| Error::store("acquiring the migration lock", e))?
        {
            LockAttempt::Acquired => {
                tracing::debug!(owner, "migration lock acquired");
                return Ok(Some(Lease::start(Arc::clone(store), claim, timing.lease)));
            }
            LockAttempt::HeldBy(holder) => holder,
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            let LockInfo {
                owner, expires_at, ..
            } = holder.unwrap_or(LockInfo {
                key: String::new(),
                owner: "another runner".into(),
                expires_at: clock::now(),
            });
            if fail_if_locked {
                return Err(Error::Locked { owner, expires_at });
            }
            tracing::warn!(holder = %owner, "migration lock unavailable; nothing was run");
            return Ok(None);
        }
        // Wait the try frequency, but never past the holder's expiry or the deadline.
        let mut wait = timing.try_frequency.min(deadline - now);
        if let Some(until_expiry) = holder
            .as_ref()
            .and_then(|h| h.expires_at.duration_since(clock::now()).ok())
        {
            wait = wait.min(until_expiry + Duration::from_millis(1));
        }
        tracing::debug!(
            ?holder,
            ?wait,
            "migration lock held by another runner; waiting"
        );
        tokio::time::sleep(wait).await;
    }
}

impl<S: LockStore> Lease<S> {
    fn start(store: Arc<S>, claim: LockClaim, lease: Duration) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let refresher = tokio::spawn(refresh_loop(
            Arc::clone(&store),
            claim.owner.clone(),
            lease,
            claim.expires_at,
            Arc::clone(&lost),
        ));
        Lease {
            store,
            owner: claim.owner,
            lease,
            lost,
            refresher,
        }
    }

    /// A claim extending the lease from now, for fencing a transaction.
    pub(crate) fn claim(&self) -> LockClaim {
        LockClaim {
            owner: self.owner.clone(),
            expires_at: clock::now() + self.lease,
        }
    }

    /// Whether the refresher found the lock taken over or could not extend it in time.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Marks the lease lost (a fenced commit found another owner).
    pub(crate) fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Stops refreshing and deletes the lock if still ours.
    pub(crate) async fn release(self) -> Result<(), Error> {
        self.refresher.abort();
        let result = self
            .store
            .release_lock(&self.owner)
            .await
            .map_err(|e| Error::store("releasing the migration lock", e));
        if result.is_ok() {
            tracing::debug!(owner = %self.owner, "migration lock released");
        }
        result
    }
}

impl<S: LockStore> Drop for Lease<S> {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

async fn refresh_loop<S: LockStore>(
    store: Arc<S>,
    owner: String,
    lease: Duration,
    mut expires_at: SystemTime,
    lost: Arc<AtomicBool>,
) {
    let period = lease / 3;
    loop {
        tokio::time::sleep(period).await;
        let claim = LockClaim {
            owner: owner.clone(),
            expires_at: clock::now() + lease,
        };
        match store.refresh_lock(&claim).await {
            Ok(true) => expires_at = claim.expires_at,
            Ok(false) => {
                tracing::error!(%owner, "migration lock was taken over by another runner");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) if clock::now() + period >= expires_at => {
                tracing::error!(%owner, %error, "migration lock could not be refreshed before it expired");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => {
                tracing::warn!(%owner, %error, "migration lock refresh failed; retrying");
            }
        }
    }
}

//! The lease's expiries, on the in-memory store and the paused clock.

use super::*;
use crate::memory::MemoryStore;

const LEASE: Duration = Duration::from_secs(3);

/// Milliseconds since the epoch: what a BSON date keeps of an expiry.
fn stored(at: SystemTime) -> u128 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(start_paused = true)]
async fn every_lock_write_stores_a_later_expiry_even_when_the_clock_stands_still() {
    let store = Arc::new(MemoryStore::new());
    let timing = LockTiming {
        lease: LEASE,
        quit_trying_after: Duration::from_secs(1),
        try_frequency: Duration::from_secs(1),
    };
    let lease = acquire(&store, "owner", timing, true)
        .await
        .unwrap()
        .unwrap();
    let acquired = store.lock_info().unwrap().expires_at;

    // The paused clock does not move: each write would store the same expiry if it were
    // only `lease` from now.
    let fence = lease.claim().expires_at;
    assert!(lease.still_held_for(2 * LEASE).await.unwrap(), "refreshed");
    let refreshed = store.lock_info().unwrap().expires_at;
    let next_fence = lease.claim().expires_at;

    let writes = [acquired, fence, refreshed, next_fence].map(stored);
    assert!(
        writes.windows(2).all(|w| w[0] < w[1]),
        "each write changes the stored expiry: {writes:?}"
    );
    assert_eq!(
        writes[3] - writes[0],
        3,
        "a millisecond apart while the clock stands still"
    );

    // Once the clock passes them, expiries are again `lease` from now.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let claim = lease.claim().expires_at;
    let from_now = clock::now() + LEASE;
    let apart = claim
        .duration_since(from_now)
        .unwrap_or_else(|e| e.duration());
    assert!(apart < EXPIRY_STEP, "{claim:?} against {from_now:?}");
    lease.release().await.unwrap();
}

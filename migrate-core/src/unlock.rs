//! Releasing a lock by hand: what `Runner::unlock` decides and returns.

use std::fmt;
use std::time::SystemTime;

use crate::clock;
use crate::ids::{format_utc, process_token};
use crate::store::LockInfo;

/// What [`Runner::unlock`](crate::Runner::unlock) found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unlock {
    /// No lock was stored.
    Free,
    /// The lock was released.
    Released {
        /// Whose lock it was.
        owner: String,
        /// When its lease ended or would have ended.
        expires_at: SystemTime,
        /// Why releasing it was allowed.
        reason: ReleaseReason,
    },
    /// A live lock of another runner, left in place because `force` was not set.
    HeldBy {
        /// The holder.
        owner: String,
        /// When its lease ends unless the holder refreshes it.
        expires_at: SystemTime,
    },
}

/// Why [`Runner::unlock`](crate::Runner::unlock) released a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// Its lease had run out: its holder is gone.
    Expired,
    /// A runner of this process held it.
    OwnedByThisProcess,
    /// Another runner held a live lease and `force` was set.
    Forced,
}

/// Why `held` may be released now, or `None` if releasing it needs `force`.
pub(crate) fn release_reason(held: &LockInfo, force: bool) -> Option<ReleaseReason> {
    if held.expires_at < clock::now() {
        Some(ReleaseReason::Expired)
    } else if held.owner.starts_with(process_token()) {
        Some(ReleaseReason::OwnedByThisProcess)
    } else if force {
        Some(ReleaseReason::Forced)
    } else {
        None
    }
}

impl Unlock {
    /// Whether a lock is left held by another runner.
    pub fn is_held(&self) -> bool {
        matches!(self, Unlock::HeldBy { .. })
    }
}

impl fmt::Display for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlock::Free => f.write_str("the migration lock is free; nothing to release"),
            Unlock::Released {
                owner,
                expires_at,
                reason,
            } => {
                let why = match reason {
                    ReleaseReason::Expired => "its lease had ended",
                    ReleaseReason::OwnedByThisProcess => "it belonged to this process",
                    ReleaseReason::Forced => "forced; its lease was still running",
                };
                write!(
                    f,
                    "released the migration lock of `{owner}` (lease until {} UTC; {why})",
                    format_utc(*expires_at)
                )
            }
            Unlock::HeldBy { owner, expires_at } => write!(
                f,
                "the migration lock is held by `{owner}` until {} UTC; it is live, so it was \
                 left in place (release it with force only if that runner is gone)",
                format_utc(*expires_at)
            ),
        }
    }
}

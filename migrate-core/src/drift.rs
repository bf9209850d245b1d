//! Checksum drift: applied units whose code changed since they ran.

use crate::error::Error;
use crate::plan::Plan;

/// What a run does about applied units whose code changed since they ran (their recorded
/// checksum differs from the code's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumPolicy {
    /// Logs a warning per changed unit and runs on.
    #[default]
    Warn,
    /// Fails the run before it changes anything, naming every changed unit.
    Strict,
    /// Does not compare checksums.
    Ignore,
}

/// A unit whose code changed since it ran: the checksums of then and now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The checksum recorded when the unit ran.
    pub recorded: String,
    /// The checksum of the code in this binary.
    pub current: String,
}

/// A checksum that [`Runner::accept_checksums`](crate::Runner::accept_checksums) recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedChecksum {
    /// The unit id.
    pub id: String,
    /// The unit's author.
    pub author: String,
    /// The checksums replaced and recorded.
    pub drift: Drift,
}

/// Applies `policy` to the drifted units of `plan`: warns, fails, or does nothing.
pub(crate) fn enforce(plan: &Plan, policy: ChecksumPolicy) -> Result<(), Error> {
    match policy {
        ChecksumPolicy::Ignore => Ok(()),
        ChecksumPolicy::Warn => {
            for planned in plan.drifted() {
                let drift = planned.drift.as_ref().expect("drifted units have a drift");
                tracing::warn!(
                    id = planned.unit.id(),
                    recorded = %drift.recorded,
                    current = %drift.current,
                    location = %planned.unit.location(),
                    "change unit changed since it ran; review the edit, then accept it with `accept_checksums`"
                );
            }
            Ok(())
        }
        ChecksumPolicy::Strict => {
            let units: Vec<String> = plan
                .drifted()
                .map(|planned| planned.unit.id().to_owned())
                .collect();
            if units.is_empty() {
                Ok(())
            } else {
                Err(Error::ChecksumDrift { units })
            }
        }
    }
}

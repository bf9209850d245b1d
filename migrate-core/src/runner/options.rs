//! The runner's options, and their validation into the input of a plan.

use std::time::Duration;

use crate::drift::ChecksumPolicy;
use crate::error::Error;
use crate::legacy::LegacyMigration;
use crate::lock::LockTiming;
use crate::plan::PlanInput;
use crate::registry;
use crate::unit::{ChangeUnit, DEFAULT_AUTHOR};
use crate::version::{Version, VersionWindow};

use super::TransactionStrategy;

/// The smallest lock lease a runner accepts.
pub const MIN_LOCK_LEASE: Duration = Duration::from_secs(3);
/// The smallest pause between two lock attempts.
pub const MIN_LOCK_TRY_FREQUENCY: Duration = Duration::from_millis(500);

/// Every option of a runner that is not the store's, the dependencies or the callbacks.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) enabled: bool,
    pub(crate) timing: LockTiming,
    pub(crate) fail_if_locked: bool,
    pub(crate) track_ignored: bool,
    pub(crate) allow_unknown_history: bool,
    pub(crate) versions: (String, Option<String>),
    pub(crate) service_identifier: Option<String>,
    pub(crate) transactional: Option<bool>,
    pub(crate) strategy: TransactionStrategy,
    pub(crate) default_author: String,
    pub(crate) profiles: Vec<String>,
    pub(crate) units: Option<Vec<&'static ChangeUnit>>,
    pub(crate) retry_deadline: Duration,
    pub(crate) checksum_policy: ChecksumPolicy,
    pub(crate) up_to: Option<String>,
    pub(crate) legacy: Option<LegacyMigration>,
}

impl Default for Options {
    /// Mongock's defaults.
    fn default() -> Self {
        Options {
            enabled: true,
            timing: LockTiming {
                lease: Duration::from_secs(60),
                quit_trying_after: Duration::from_secs(180),
                try_frequency: Duration::from_secs(1),
            },
            fail_if_locked: true,
            track_ignored: false,
            allow_unknown_history: false,
            versions: ("0".into(), None),
            service_identifier: None,
            transactional: None,
            strategy: TransactionStrategy::default(),
            default_author: DEFAULT_AUTHOR.into(),
            profiles: vec!["default".into()],
            units: None,
            retry_deadline: Duration::from_secs(120),
            checksum_policy: ChecksumPolicy::default(),
            up_to: None,
            legacy: None,
        }
    }
}

impl Options {
    /// Validates the options and the units (registered, or set with `Runner::units`).
    pub(crate) fn check(&self) -> Result<PlanInput<'_>, Error> {
        if self.timing.lease < MIN_LOCK_LEASE {
            return Err(Error::InvalidConfig {
                option: "lock_lease",
                reason: format!("{:?} is below the minimum of 3 s", self.timing.lease),
            });
        }
        if self.timing.try_frequency < MIN_LOCK_TRY_FREQUENCY {
            return Err(Error::InvalidConfig {
                option: "lock_try_frequency",
                reason: format!(
                    "{:?} is below the minimum of 500 ms",
                    self.timing.try_frequency
                ),
            });
        }
        let parse = |text: &str| {
            Version::parse(text).map_err(|e| Error::InvalidConfig {
                option: "system_versions",
                reason: e.to_string(),
            })
        };
        let start = parse(&self.versions.0)?;
        let end = self.versions.1.as_deref().map(parse).transpose()?;
        let mut units = match &self.units {
            Some(units) => units.clone(),
            None => registry::registered().iter().collect(),
        };
        registry::validate(&units, &self.default_author)?;
        if let Some(legacy) = &self.legacy {
            legacy.check()?;
            units.push(legacy.unit());
        }
        Ok(PlanInput {
            units,
            window: VersionWindow::new(start, end),
            profiles: &self.profiles,
            default_author: &self.default_author,
            up_to: self.up_to.as_deref(),
        })
    }
}

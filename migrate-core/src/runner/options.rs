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
        if let Some(error) = self.option_errors().into_iter().next() {
            return Err(error);
        }
        Ok(PlanInput {
            units: self.checked_units()?,
            window: self.window()?,
            profiles: &self.profiles,
            default_author: &self.default_author,
            up_to: self.up_to.as_deref(),
        })
    }

    /// Every problem [`check`](Self::check) would fail with: each invalid option, and the
    /// first problem with the units.
    pub(crate) fn problems(&self) -> Vec<Error> {
        let mut errors = self.option_errors();
        errors.extend(self.checked_units().err());
        errors
    }

    /// One error per invalid option.
    fn option_errors(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        if self.timing.lease < MIN_LOCK_LEASE {
            errors.push(Error::InvalidConfig {
                option: "lock_lease",
                reason: format!("{:?} is below the minimum of 3 s", self.timing.lease),
            });
        }
        if self.timing.try_frequency < MIN_LOCK_TRY_FREQUENCY {
            errors.push(Error::InvalidConfig {
                option: "lock_try_frequency",
                reason: format!(
                    "{:?} is below the minimum of 500 ms",
                    self.timing.try_frequency
                ),
            });
        }
        errors.extend(self.window().err());
        if self.default_author.trim().is_empty() {
            errors.push(Error::InvalidConfig {
                option: "default_author",
                reason: "it is empty or only whitespace, so units that name no author would \
                         be recorded without one"
                    .into(),
            });
        }
        for profile in &self.profiles {
            if profile.is_empty()
                || profile.starts_with('!')
                || profile.chars().any(char::is_whitespace)
            {
                errors.push(Error::InvalidConfig {
                    option: "profiles",
                    reason: format!(
                        "`{profile}` is not a profile name: active profiles are non-empty names \
                         without spaces; `!name` belongs in a unit's profiles, to keep it out of \
                         a profile"
                    ),
                });
            }
        }
        errors
    }

    /// The system-version window: a valid start below a valid end.
    fn window(&self) -> Result<VersionWindow, Error> {
        let invalid = |reason: String| Error::InvalidConfig {
            option: "system_versions",
            reason,
        };
        let parse = |text: &str| Version::parse(text).map_err(|e| invalid(e.to_string()));
        let start = parse(&self.versions.0)?;
        let end = self.versions.1.as_deref().map(parse).transpose()?;
        if let Some(end) = end.as_ref().filter(|end| start >= **end) {
            return Err(invalid(format!(
                "the start `{start}` is not below the end `{end}`, so no unit is in the window \
                 (a unit runs when start <= its version < end)"
            )));
        }
        Ok(VersionWindow::new(start, end))
    }

    /// The units of the run, validated, with the import of earlier history when set.
    fn checked_units(&self) -> Result<Vec<&'static ChangeUnit>, Error> {
        let mut units = match &self.units {
            Some(units) if units.is_empty() => {
                return Err(Error::InvalidConfig {
                    option: "units",
                    reason: "the list given to `Runner::units` is empty; pass the change units \
                             to run, or leave `units` out to run every unit registered in this \
                             binary"
                        .into(),
                });
            }
            Some(units) => units.clone(),
            None => registry::registered().iter().collect(),
        };
        registry::validate(&units, &self.default_author)?;
        if let Some(legacy) = &self.legacy {
            legacy.check()?;
            units.push(legacy.unit());
        }
        Ok(units)
    }
}

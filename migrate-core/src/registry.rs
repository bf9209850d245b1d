//! The registry of change units collected from the binary.

use crate::__private::IsChangeLog;
use crate::error::Error;
use crate::hash::{self, FxHashMap};
use crate::history::BEFORE_SUFFIX;
use crate::unit::ChangeUnit;

/// Every change unit `#[change_unit]` registered in this binary, and every change set
/// `#[change_log]` registered.
#[linkme::distributed_slice]
pub static CHANGE_UNITS: [ChangeUnit];

/// Implemented by `#[change_unit]` for every unit type, to reach its descriptor.
pub trait DescribeUnit {
    /// The unit's registered descriptor.
    fn change_unit() -> &'static ChangeUnit;
}

/// Implemented for every `#[change_log]` type, to reach its change sets.
pub trait DescribeChangeLog {
    /// The change log's change sets, in the order they run.
    fn change_sets() -> Vec<&'static ChangeUnit>;
}

impl<T: IsChangeLog> DescribeChangeLog for T {
    fn change_sets() -> Vec<&'static ChangeUnit> {
        let mut sets: Vec<&'static ChangeUnit> = registered()
            .iter()
            .filter(|unit| unit.is_change_set() && unit.type_path() == T::TYPE_PATH)
            .collect();
        sets.sort_by_key(|unit| unit.sort_key());
        sets
    }
}

/// The units registered in this binary, in registration order (unsorted, unvalidated).
pub fn registered() -> &'static [ChangeUnit] {
    &CHANGE_UNITS
}

/// Checks a set of units: not empty, no two with the same (id, author), and none whose id is
/// the history id of another's before-step.
///
/// `default_author` is the author of units that do not name one.
pub(crate) fn validate(units: &[&'static ChangeUnit], default_author: &str) -> Result<(), Error> {
    if units.is_empty() {
        return Err(Error::NoChangeUnits);
    }
    // Keyed by bytes, which compare as the strings do, so that no text is re-checked as UTF-8.
    let mut seen: FxHashMap<(&[u8], &[u8]), &ChangeUnit> = hash::map_with_capacity(units.len());
    for unit in units {
        let author = unit
            .declared_author_bytes()
            .unwrap_or(default_author.as_bytes());
        if let Some(first) = seen.insert((unit.id_bytes(), author), unit) {
            if std::ptr::eq(first, *unit) {
                return Err(Error::InvalidConfig {
                    option: "units",
                    reason: format!("change unit `{}` is in the list twice", unit.id()),
                });
            }
            return Err(Error::DuplicateChangeUnit {
                id: unit.id().to_owned(),
                author: unit.declared_author().unwrap_or(default_author).to_owned(),
                first: declaration(first),
                second: declaration(unit),
            });
        }
    }
    match before_step_clashes(units, default_author).pop() {
        Some(clash) => Err(clash),
        None => Ok(()),
    }
}

/// Where `unit` is declared: its type, and for a change set also its method.
fn declaration(unit: &ChangeUnit) -> String {
    if unit.is_change_set() {
        format!("{}::{}", unit.type_path(), unit.execution_method())
    } else {
        unit.type_path().to_owned()
    }
}

/// [`Error::BeforeStepIdClash`] for every unit whose id is `<id>_before` of another unit with
/// a `#[before_execution]` step and the same author: its history rows would be that step's,
/// so the runner would take it for applied once the other unit ran, and never run it.
pub(crate) fn before_step_clashes(
    units: &[&'static ChangeUnit],
    default_author: &str,
) -> Vec<Error> {
    // Only a unit whose id ends with the suffix can clash, and such ids are rare: the others
    // are not looked at beyond their id, so that a start does not read every unit's generated
    // code (its names) for nothing.
    let suffix = BEFORE_SUFFIX.as_bytes();
    let author = |unit: &'static ChangeUnit| {
        unit.declared_author_bytes()
            .unwrap_or(default_author.as_bytes())
    };
    let candidates: Vec<&'static ChangeUnit> = units
        .iter()
        .copied()
        .filter(|unit| unit.id_bytes().ends_with(suffix))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let mut by_key: FxHashMap<(&[u8], &[u8]), &'static ChangeUnit> =
        hash::map_with_capacity(units.len());
    for &unit in units {
        by_key
            .entry((unit.id_bytes(), author(unit)))
            .or_insert(unit);
    }
    candidates
        .into_iter()
        .filter_map(|clash| {
            let id = clash.id_bytes();
            let base = &id[..id.len() - suffix.len()];
            let with_before = *by_key.get(&(base, author(clash)))?;
            with_before.before_method()?;
            Some(Error::BeforeStepIdClash {
                id: clash.id().to_owned(),
                author: clash.declared_author().unwrap_or(default_author).to_owned(),
                unit: clash.type_path(),
                before_of: with_before.id().to_owned(),
                before_of_type: with_before.type_path(),
            })
        })
        .collect()
}

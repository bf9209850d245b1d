//! The registry of change units collected from the binary.

use std::collections::HashMap;

use crate::error::Error;
use crate::unit::ChangeUnit;

/// Every change unit the `#[change_unit]` macro registered in this binary.
#[linkme::distributed_slice]
pub static CHANGE_UNITS: [ChangeUnit];

/// Implemented by `#[change_unit]` for every unit type, to reach its descriptor.
pub trait DescribeUnit {
    /// The unit's registered descriptor.
    fn change_unit() -> &'static ChangeUnit;
}

/// The units registered in this binary, in registration order (unsorted, unvalidated).
pub fn registered() -> &'static [ChangeUnit] {
    &CHANGE_UNITS
}

/// Checks a set of units: not empty, and no two with the same (id, author).
///
/// `default_author` is the author of units that do not name one.
pub(crate) fn validate(units: &[&'static ChangeUnit], default_author: &str) -> Result<(), Error> {
    if units.is_empty() {
        return Err(Error::NoChangeUnits);
    }
    let mut seen: HashMap<(&str, &str), &ChangeUnit> = HashMap::new();
    for unit in units {
        let author = unit.declared_author().unwrap_or(default_author);
        if let Some(first) = seen.insert((unit.id(), author), unit) {
            return Err(Error::DuplicateChangeUnit {
                id: unit.id().to_owned(),
                author: author.to_owned(),
                first: first.type_path(),
                second: unit.type_path(),
            });
        }
    }
    Ok(())
}

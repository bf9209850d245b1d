//! A unit's code. The registered `static` of a unit is read at every start, and every pointer
//! in it is a relocation the loader applies before `main`, writing to its page. So it holds
//! one pointer to code, and what only a run or a report needs (names, injection sites, the
//! constructor) is asked of that code.

use super::{Requirement, RequirementSite, Requirements};
use crate::inject::Dependencies;
use crate::unit::{BoxError, ChangeUnitInstance};

/// The generated function of a unit, answering each [`UnitCall`]. It fails only to build a
/// unit whose fields cannot be resolved.
pub type UnitCode = fn(UnitCall<'_, '_>) -> CodeResult;

/// What a unit's generated function returns (see [`UnitCode`]).
pub type CodeResult = Result<(), BoxError>;

/// A request to a unit's generated code.
pub enum UnitCall<'a, 'd> {
    /// Fill in the unit's names.
    Names(&'a mut UnitNames),
    /// List the injection sites: the struct's fields', then each step's, in order.
    Sites(&'a mut Vec<(Requirement, &'static str)>),
    /// Build the unit from the dependency map.
    Instantiate(
        &'d Dependencies,
        &'a mut Option<Box<dyn ChangeUnitInstance>>,
    ),
}

/// The names a unit is recorded and reported with.
#[derive(Clone, Copy, Default)]
pub struct UnitNames {
    /// The Rust path of the unit's type, or of a change set's change log.
    pub type_path: &'static str,
    /// The source file that declares the unit.
    pub file: &'static str,
    /// The `#[execution]` (or `#[change_set]`) method.
    pub execution_method: &'static str,
    /// The `#[before_execution]` method, if any.
    pub before_method: Option<&'static str>,
}

impl UnitNames {
    /// Sets every name. Taken one by one, each stays a constant of the caller's code rather
    /// than a `static` of pointers.
    pub fn set(
        &mut self,
        type_path: &'static str,
        file: &'static str,
        execution_method: &'static str,
        before_method: Option<&'static str>,
    ) {
        *self = UnitNames {
            type_path,
            file,
            execution_method,
            before_method,
        };
    }
}

/// Adds the sites of a unit's fields, then of its four steps (in the order of
/// [`Step`](crate::Step)'s variants), to `list`.
///
/// The groups come one by one, so that no `static` table of them is built.
pub fn list_sites(
    list: &mut Vec<(Requirement, &'static str)>,
    fields: Requirements,
    before: Requirements,
    execution: Requirements,
    rollback: Requirements,
    rollback_before: Requirements,
) {
    let groups = [fields, before, execution, rollback, rollback_before];
    list.extend(
        groups
            .iter()
            .flat_map(|group| group.iter())
            .map(RequirementSite::get),
    );
}

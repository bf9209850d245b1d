//! The legacy model: `#[change_log]` on a struct implements `IsChangeLog`; `#[change_log]` on
//! its impl registers one `ChangeUnit` per `#[change_set]` method, each built from the change
//! log's fields and running only that method.

use super::{
    instance, list_sites, method_name, ChangeSetSpec, Checksum, Present, Requirements, StepDef,
    StepRun, StepTable, TextParts, UnitAttributes, UnitCall, UnitExtra, UnitText,
};
use crate::inject::Dependencies;
use crate::unit::{BoxError, ChangeUnit};
/// Implemented by `#[change_log]` on a struct; `#[change_log]` on an impl requires it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a change log",
    label = "`#[change_log]` on this impl needs `#[change_log]` on the struct `{Self}`",
    note = "add `#[change_log]` or `#[change_log(order = \"...\")]` to the struct `{Self}`"
)]
pub trait IsChangeLog: Sized + Send + Sync + 'static {
    /// Where the change log runs among change units.
    const ORDER: &'static str;
    /// The Rust path of the type, recorded as `changeLogClass`.
    const TYPE_PATH: &'static str;
    /// Profile expressions that apply to every change set.
    const PROFILES: &'static [&'static str];
    /// Hash of the struct's tokens.
    const CHECKSUM: u64;

    /// The injection sites of the struct's fields.
    const REQUIREMENTS: Requirements;

    /// Builds the change log from `deps`, for the change set `unit_id`.
    fn build(deps: &Dependencies, unit_id: &'static str) -> Result<Self, BoxError>;
}

/// One change set, described by `#[change_log]` on the impl as a hidden type.
pub trait ChangeSetDef: 'static {
    /// The change log whose method the change set is.
    type Log: IsChangeLog;
    /// The change set's id.
    const ID: &'static str;
    /// The method, as a step of the change log.
    const STEP: StepDef<Self::Log, Present>;
    /// The source file of the `#[change_set]` attribute.
    const FILE: &'static str;
}

/// What a change set declares in its attribute, besides its id.
pub struct ChangeSetAttributes {
    /// From [`change_set_text`].
    pub text: &'static TextParts,
    /// From [`change_set_extra`].
    pub extra: &'static UnitExtra,
    pub run_always: bool,
    pub line: u32,
}

/// The strings of the change set `S`: its id, its change log's order, and the author and
/// system version of its attribute.
pub const fn change_set_text<S: ChangeSetDef>(
    author: &'static str,
    system_version: &'static str,
) -> TextParts {
    TextParts {
        id: S::ID,
        order: <S::Log as IsChangeLog>::ORDER,
        author: Some(author),
        system_version,
    }
}

/// What the change set `S` adds to a unit: its own order and profiles, and its change
/// log's profiles.
pub const fn change_set_extra<S: ChangeSetDef>(
    order: &'static str,
    profiles: &'static [&'static str],
) -> UnitExtra {
    UnitExtra {
        profiles,
        change_set: Some(ChangeSetSpec {
            order,
            change_log_profiles: <S::Log as IsChangeLog>::PROFILES,
        }),
    }
}

/// The registered descriptor of the change set `S`: its change log's order, type path and
/// profiles, its own attributes, and no rollback.
pub const fn change_set<S: ChangeSetDef>(set: ChangeSetAttributes) -> ChangeUnit {
    let unit = UnitAttributes {
        text: UnitText::Parts(set.text),
        run_always: set.run_always,
        transactional: true,
        fail_fast: true,
        extra: Some(set.extra),
        line: set.line,
    };
    let steps = StepTable {
        execution_takes_session: S::STEP.takes_session,
        rollback_does_nothing: true,
        checksum: Checksum::of_change_set(<S::Log as IsChangeLog>::CHECKSUM, S::STEP.checksum),
    };
    ChangeUnit::new(unit, steps, change_set_code::<S>, false)
}

/// The code of the change set `S` (see [`UnitCall`]).
fn change_set_code<S: ChangeSetDef>(call: UnitCall<'_, '_>) -> Result<(), BoxError> {
    match call {
        UnitCall::Names(names) => names.set(
            <S::Log as IsChangeLog>::TYPE_PATH,
            S::FILE,
            method_name(S::STEP.method),
            None,
        ),
        UnitCall::Sites(list) => list_sites(
            list,
            <S::Log as IsChangeLog>::REQUIREMENTS,
            &[],
            S::STEP.requirements,
            &[],
            &[],
        ),
        UnitCall::Instantiate(deps, unit) => {
            let log = S::Log::build(deps, S::ID)?;
            let none = StepRun::Absent;
            *unit = Some(instance(log, none, S::STEP.run, none, none));
        }
    }
    Ok(())
}

//! The plan of a run: every unit in order with the decision for it.

use std::borrow::Cow;
use std::fmt;

use crate::drift::Drift;
use crate::error::{Error, MissingDependency};
use crate::hash::{self, FxHashSet};
use crate::history::{EntryType, ExecutedSet, Recorded, BEFORE_SUFFIX};
use crate::inject::Dependencies;
use crate::report::SkipReason;
use crate::text::{skip_text, write_table};
use crate::unit::ChangeUnit;
use crate::version::{Version, VersionWindow};

/// What the runner will do with one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It has not run: it will.
    Run,
    /// A `run_always` unit that ran before: it runs again, unrecorded.
    RunAgain,
    /// It will not run.
    Skip(SkipReason),
}

/// One unit of a [`Plan`].
#[derive(Debug, Clone)]
pub struct PlannedUnit {
    /// The unit.
    pub unit: &'static ChangeUnit,
    /// The author it runs as: the one the unit declares, or the runner's default.
    pub author: Cow<'static, str>,
    /// The decision.
    pub decision: Decision,
    /// Set when the unit ran before with different code: the checksum recorded then
    /// differs from the code's now. Never set for a `run_always` unit, which runs again
    /// with the code of the day.
    pub drift: Option<Drift>,
}

impl PlannedUnit {
    /// Whether the unit will run.
    pub fn is_pending(&self) -> bool {
        matches!(self.decision, Decision::Run | Decision::RunAgain)
    }
}

/// The units of a run in execution order, each with its decision.
#[derive(Debug, Clone)]
pub struct Plan {
    units: Vec<PlannedUnit>,
}

/// What a plan is computed from, besides the history: the validated units and options.
pub(crate) struct PlanInput<'a> {
    pub(crate) units: Vec<&'static ChangeUnit>,
    pub(crate) window: VersionWindow,
    pub(crate) profiles: &'a [String],
    pub(crate) default_author: &'a str,
    /// Units ordered after this one do not run (`Runner::run_up_to`).
    pub(crate) up_to: Option<&'a str>,
}

impl PlanInput<'_> {
    /// The system units, and every other unit, as two inputs.
    pub(crate) fn split_system(&self) -> (Self, Self) {
        let (system, rest) = self.units.iter().partition(|unit| unit.is_system());
        let with = |units, up_to| PlanInput {
            units,
            window: self.window.clone(),
            profiles: self.profiles,
            default_author: self.default_author,
            up_to,
        };
        (with(system, None), with(rest, self.up_to))
    }
}

impl Plan {
    /// Sorts `units` (order as plain strings, ties by id) and decides each one.
    pub(crate) fn new<'h, E: Recorded<'h>>(
        input: &PlanInput<'_>,
        history: impl IntoIterator<Item = E>,
    ) -> Result<Self, Error> {
        let executed = ExecutedSet::from_entries(history);
        let sorted = sorted(&input.units);
        let last = match input.up_to {
            Some(target) => sorted
                .iter()
                .position(|u| u.id() == target)
                .ok_or_else(|| Error::UnknownChangeUnit {
                    id: target.to_owned(),
                })?,
            None => sorted.len(),
        };
        let mut units = Vec::with_capacity(input.units.len());
        // Neighbours usually share a system version: each text is parsed once per run of it.
        // Texts are compared and looked up as bytes: only a text that is parsed or kept is
        // read as a `str`, which checks its UTF-8.
        let mut last_version: Option<(&[u8], bool)> = None;
        for (position, unit) in sorted.into_iter().enumerate() {
            let author = match unit.declared_author() {
                Some(author) => Cow::Borrowed(author),
                None => Cow::Owned(input.default_author.to_owned()),
            };
            let in_window = match last_version {
                Some((text, inside)) if text == unit.system_version_bytes() => inside,
                _ => {
                    let version = Version::parse(unit.system_version()).map_err(|e| {
                        Error::InvalidChangeUnit {
                            id: unit.id().to_owned(),
                            field: "system_version",
                            reason: e.to_string(),
                        }
                    })?;
                    let inside = input.window.contains(&version);
                    last_version = Some((unit.system_version_bytes(), inside));
                    inside
                }
            };
            let applied = executed.executed_bytes(unit.id_bytes(), author.as_bytes());
            // A `run_always` unit runs again with the code of the day: what it ran with
            // before does not matter.
            let drift = applied
                .filter(|_| !unit.run_always())
                .and_then(|entry| entry.checksum())
                .filter(|recorded| !unit.has_checksum(recorded))
                .map(|recorded| Drift {
                    recorded: recorded.to_owned(),
                    current: unit.checksum(),
                });
            let profiles = profiles_match(unit.profiles(), input.profiles)
                && profiles_match(unit.change_log_profiles(), input.profiles);
            let decision = if !profiles && !unit.is_system() {
                Decision::Skip(SkipReason::Profile)
            } else if !in_window && !unit.is_system() {
                Decision::Skip(SkipReason::SystemVersion {
                    version: unit.system_version().to_owned(),
                })
            } else if applied.is_some() && !unit.run_always() {
                Decision::Skip(SkipReason::AlreadyExecuted)
            } else if position > last {
                Decision::Skip(SkipReason::AfterTarget {
                    target: input.up_to.unwrap_or_default().to_owned(),
                })
            } else if applied.is_none() {
                Decision::Run
            } else {
                Decision::RunAgain
            };
            units.push(PlannedUnit {
                unit,
                author,
                decision,
                drift,
            });
        }
        Ok(Plan { units })
    }

    /// Every unit in execution order.
    pub fn units(&self) -> &[PlannedUnit] {
        &self.units
    }

    /// The units whose code changed since they ran.
    pub fn drifted(&self) -> impl Iterator<Item = &PlannedUnit> {
        self.units.iter().filter(|u| u.drift.is_some())
    }

    /// Whether any unit will run.
    pub fn has_pending(&self) -> bool {
        self.units.iter().any(PlannedUnit::is_pending)
    }

    /// The units that will run.
    pub fn pending(&self) -> impl Iterator<Item = &PlannedUnit> {
        self.units.iter().filter(|u| u.is_pending())
    }

    /// Checks every pending unit's injection sites against `deps`, reporting every missing
    /// (unit, type) pair at once.
    pub(crate) fn check_dependencies(&self, deps: &[&Dependencies]) -> Result<(), Error> {
        check_dependencies(self.pending(), deps)
    }
}

impl fmt::Display for Plan {
    /// One row per unit: order, id, author, and what the run would do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows = vec![vec![
            "ORDER".to_owned(),
            "ID".to_owned(),
            "AUTHOR".to_owned(),
            "ACTION".to_owned(),
        ]];
        for planned in &self.units {
            let mut action = match &planned.decision {
                Decision::Run => "run".to_owned(),
                Decision::RunAgain => "run again (runs always)".to_owned(),
                Decision::Skip(reason) => format!("skip: {}", skip_text(reason)),
            };
            if planned.drift.is_some() {
                action.push_str("; code changed since it ran");
            }
            rows.push(vec![
                planned.unit.order().to_owned(),
                planned.unit.id().to_owned(),
                planned.author.clone().into_owned(),
                action,
            ]);
        }
        write_table(f, &rows)?;
        writeln!(
            f,
            "\n{} to run, {} units in all",
            self.pending().count(),
            self.units.len()
        )
    }
}

/// Checks the injection sites of `units` against `deps` (a type may come from any of them),
/// reporting every missing (unit, type) pair at once.
pub(crate) fn check_dependencies<'p>(
    units: impl Iterator<Item = &'p PlannedUnit>,
    deps: &[&Dependencies],
) -> Result<(), Error> {
    let missing: Vec<MissingDependency> = units
        .flat_map(|p| {
            p.unit
                .requirements()
                .into_iter()
                .filter(|(req, _)| {
                    !req.optional && !req.session && !deps.iter().any(|d| d.contains(req.type_id))
                })
                .map(|(req, site)| MissingDependency {
                    unit_id: p.unit.id().to_owned(),
                    type_name: req.type_name,
                    site,
                })
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingDependencies(missing))
    }
}

/// The (id, author) of every unit of a plan, to tell the history rows of those units from the
/// rest. Keyed by bytes, as [`ExecutedSet`] is.
pub(crate) struct KnownUnits<'p> {
    units: FxHashSet<(&'p [u8], &'p [u8])>,
}

impl<'p> KnownUnits<'p> {
    /// The units of `plan`, each with the author it runs as.
    pub(crate) fn new(plan: &'p Plan) -> Self {
        let mut units = hash::set_with_capacity(plan.units.len());
        units.extend(
            plan.units
                .iter()
                .map(|p| (p.unit.id_bytes(), p.author.as_bytes())),
        );
        KnownUnits { units }
    }

    /// Whether a row with this `changeId`, type and author records a step of a known unit:
    /// its execution, or its before-step (`<id>_before`).
    pub(crate) fn contains(&self, change_id: &str, entry_type: EntryType, author: &str) -> bool {
        let id = match entry_type {
            EntryType::Execution => change_id,
            EntryType::BeforeExecution => {
                change_id.strip_suffix(BEFORE_SUFFIX).unwrap_or(change_id)
            }
        };
        self.units.contains(&(id.as_bytes(), author.as_bytes()))
    }
}

/// The history rows that make a run refuse to start: for each (changeId, author) of Rust code
/// (type paths with `::`) that no unit of `plan` has, its newest effective row, when that
/// says the step is applied. A unit undone before it was deleted, or that never completed, is
/// not applied, so its rows do not count. Rows written by other runtimes (Java class names)
/// and system changes are left alone.
pub(crate) fn unknown_applied<'h, E: Recorded<'h>>(
    plan: &Plan,
    history: impl IntoIterator<Item = E>,
) -> Vec<E> {
    let known = KnownUnits::new(plan);
    let unknown = history.into_iter().filter(|e| {
        !e.system_change()
            && is_rust_path(e.change_log_class())
            && !known.contains(e.change_id(), e.entry_type(), e.author())
    });
    ExecutedSet::from_entries(unknown).applied().collect()
}

/// Fails when the history records applied units of Rust code that `plan` does not contain
/// (see [`unknown_applied`]): the usual sign of a units crate the linker dropped.
pub(crate) fn check_unknown_history<'h, E: Recorded<'h>>(
    plan: &Plan,
    history: impl IntoIterator<Item = E>,
) -> Result<(), Error> {
    let mut unknown: Vec<String> = unknown_applied(plan, history)
        .into_iter()
        .map(|e| {
            format!(
                "`{}` by `{}` ({})",
                e.change_id(),
                e.author(),
                e.change_log_class()
            )
        })
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(Error::UnknownHistory { ids: unknown })
}

/// Whether `class` is a Rust type path (holds `::`) rather than a Java class name. Looks for
/// each `:` with the fast single-byte search: a substring search sets up more than it saves
/// on names this short.
fn is_rust_path(class: &str) -> bool {
    let mut rest = class;
    while let Some(at) = rest.find(':') {
        rest = &rest[at + 1..];
        if rest.starts_with(':') {
            return true;
        }
    }
    false
}

/// Units sorted by order (plain string comparison, as Mongock does), a change log's change
/// sets together by their own order, ties broken by id; system units first.
fn sorted(units: &[&'static ChangeUnit]) -> Vec<&'static ChangeUnit> {
    // Each key is read once, with the first eight bytes of the order as a number: most
    // comparisons end there, without a string comparison. The stable sort makes one pass
    // over input already in order, as units registered in declaration order usually are.
    let mut keyed: Vec<_> = units
        .iter()
        .map(|&unit| {
            let key = unit.sort_key();
            ((key.0, order_prefix(key.1)), unit)
        })
        .collect();
    keyed.sort_by(|(prefix_a, a), (prefix_b, b)| {
        prefix_a
            .cmp(prefix_b)
            .then_with(|| a.sort_key().cmp(&b.sort_key()))
    });
    keyed.into_iter().map(|(_, unit)| unit).collect()
}

/// The first eight bytes of `order` as a big-endian number, zero-padded: comparing two
/// prefixes orders the strings as comparing them does, or ties.
fn order_prefix(order: &[u8]) -> u64 {
    let mut word = [0; 8];
    let bytes = &order[..order.len().min(8)];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_be_bytes(word)
}

/// Whether a unit with `declared` profile expressions runs under the `active` profiles.
///
/// No expressions: always. `!p` excludes the unit when `p` is active. Plain `p` entries
/// require at least one of them to be active.
fn profiles_match(declared: &[&str], active: &[String]) -> bool {
    if declared.is_empty() {
        return true;
    }
    let is_active = |p: &str| active.iter().any(|a| a == p);
    let (excluded, required): (Vec<&str>, Vec<&str>) =
        declared.iter().partition(|p| p.starts_with('!'));
    if excluded.iter().any(|p| is_active(&p[1..])) {
        return false;
    }
    required.is_empty() || required.iter().any(|p| is_active(p))
}

#[cfg(test)]
mod tests {
    use super::{is_rust_path, order_prefix, profiles_match};

    #[test]
    fn order_prefixes_sort_as_their_strings_or_tie() {
        let orders = [
            "",
            "0",
            "00",
            "001",
            "01",
            "1",
            "10",
            "2",
            "a",
            "a\0",
            "abcdefgh",
            "abcdefghi",
            "abcdefgz",
            "b",
            "é",
        ];
        for a in orders {
            for b in orders {
                let (pa, pb) = (order_prefix(a.as_bytes()), order_prefix(b.as_bytes()));
                assert!(pa == pb || pa.cmp(&pb) == a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn rust_paths_are_told_from_java_class_names() {
        assert!(is_rust_path("app::units::CreateIndexes"));
        assert!(is_rust_path("C::"));
        assert!(!is_rust_path("com.example.CreateIndexes"));
        assert!(!is_rust_path("a:b:c"));
        assert!(!is_rust_path(""));
    }

    #[test]
    fn profile_expressions() {
        let active = |ps: &[&str]| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], &[&str], bool)] = &[
            (&[], &["default"], true),
            (&[], &[], true),
            (&["dev"], &["default"], false),
            (&["dev"], &["dev"], true),
            (&["dev", "test"], &["test"], true),
            (&["!prod"], &["default"], true),
            (&["!prod"], &["prod"], false),
            (&["dev", "!prod"], &["dev", "prod"], false),
            (&["default"], &["default"], true),
        ];
        for (declared, on, expected) in cases {
            assert_eq!(
                profiles_match(declared, &active(on)),
                *expected,
                "declared {declared:?}, active {on:?}"
            );
        }
    }
}

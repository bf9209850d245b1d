//! Checks of the units and options that need no database: what `Runner::validate` returns.

use std::collections::HashMap;
use std::fmt;

use crate::error::Error;
use crate::registry;
use crate::unit::ChangeUnit;
use crate::version::Version;

/// The findings of [`Runner::validate`](crate::Runner::validate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    /// Every finding, errors first, each group in unit order.
    pub findings: Vec<Finding>,
    /// How many units were checked.
    pub units: usize,
}

/// One problem [`Runner::validate`](crate::Runner::validate) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Whether a run would fail on it or only warn.
    pub severity: Severity,
    /// The unit concerned, if the finding is about one.
    pub unit: Option<String>,
    /// What is wrong, and what to do about it.
    pub message: String,
}

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A run fails, or silently does something else than intended.
    Error,
    /// Legal, but probably a mistake.
    Warning,
}

impl Validation {
    /// Whether nothing is an error (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The findings that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The findings that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    fn push(&mut self, severity: Severity, unit: Option<&str>, message: String) {
        self.findings.push(Finding {
            severity,
            unit: unit.map(str::to_owned),
            message,
        });
    }
}

/// Checks `units` as authored by `default_author`; `problems` are what validating the
/// runner's options found, each a finding (but duplicates and before-step clashes, which are
/// reported here in full).
pub(crate) fn validate(
    units: &[&'static ChangeUnit],
    default_author: &str,
    problems: Vec<Error>,
) -> Validation {
    let mut validation = Validation {
        findings: Vec::new(),
        units: units.len(),
    };
    for problem in problems {
        match problem {
            Error::DuplicateChangeUnit { .. } | Error::BeforeStepIdClash { .. } => {}
            error => validation.push(Severity::Error, None, error.to_string()),
        }
    }
    let mut sorted = units.to_vec();
    sorted.sort_by(|a, b| a.order().cmp(b.order()).then_with(|| a.id().cmp(b.id())));
    duplicates(&sorted, default_author, &mut validation);
    for clash in registry::before_step_clashes(&sorted, default_author) {
        if let Error::BeforeStepIdClash {
            id,
            author,
            unit,
            before_of,
            before_of_type,
        } = clash
        {
            validation.push(
                Severity::Error,
                Some(&id),
                format!(
                    "declared by `{unit}`, it has the id that the history gives the \
                     `#[before_execution]` step of change unit `{before_of}` \
                     (`{before_of_type}`), both by `{author}`, so it would count as applied \
                     once that unit ran; rename one of them"
                ),
            );
        }
    }
    for unit in &sorted {
        if let Err(e) = Version::parse(unit.system_version()) {
            validation.push(
                Severity::Error,
                Some(unit.id()),
                format!("invalid `system_version`: {e}"),
            );
        }
        for expression in unit.profiles() {
            if let Some(problem) = profile_problem(expression) {
                validation.push(
                    Severity::Error,
                    Some(unit.id()),
                    format!("invalid profile expression `{expression}`: {problem}"),
                );
            }
        }
        if unit.transactional() && !unit.execution_takes_session() {
            validation.push(
                Severity::Warning,
                Some(unit.id()),
                format!(
                    "`#[execution]` method `{}` runs in a transaction but takes no session, so \
                     its writes escape the transaction; add a `&mut ClientSession` parameter \
                     and pass it to each operation, or set `transactional = false`",
                    unit.execution_method()
                ),
            );
        }
    }
    mixed_width_orders(&sorted, &mut validation);
    validation.findings.sort_by_key(|finding| finding.severity);
    validation
}

/// Every (id, author) declared more than once.
fn duplicates(units: &[&'static ChangeUnit], default_author: &str, validation: &mut Validation) {
    let mut seen: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for unit in units {
        let author = unit.declared_author().unwrap_or(default_author);
        seen.entry((unit.id(), author))
            .or_default()
            .push(unit.type_path());
    }
    let mut repeated: Vec<_> = seen.into_iter().filter(|(_, t)| t.len() > 1).collect();
    repeated.sort();
    for ((id, author), types) in repeated {
        validation.push(
            Severity::Error,
            Some(id),
            format!(
                "declared {} times by `{author}`: {}",
                types.len(),
                types
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}

/// What is wrong with a profile expression, if anything.
fn profile_problem(expression: &str) -> Option<&'static str> {
    let name = expression.strip_prefix('!').unwrap_or(expression);
    if name.is_empty() {
        Some("no profile name")
    } else if name.starts_with('!') {
        Some("only one `!` is allowed")
    } else if name.chars().any(|c| c.is_whitespace() || c == ',') {
        Some("a profile name has no spaces or commas; list each profile separately")
    } else {
        None
    }
}

/// Numeric orders of different widths sort as text, so `"10"` runs before `"9"`: one warning
/// per unit that runs before units with smaller numbers.
fn mixed_width_orders(units: &[&'static ChangeUnit], validation: &mut Validation) {
    let inversions = order_inversions(units);
    let Some(width) = inversions
        .iter()
        .flat_map(|inversion| std::iter::once(&inversion.early).chain(&inversion.shown))
        .map(|unit| unit.order().len())
        .max()
    else {
        return;
    };
    for inversion in inversions {
        validation.push(
            Severity::Warning,
            Some(inversion.early.id()),
            format!(
                "order `{}` runs before {}: orders compare as text, so numbers of different \
                 widths run out of numeric order; pad them to one width (`{:0width$}`)",
                inversion.early.order(),
                listed(&inversion),
                inversion.shown[0]
                    .order()
                    .parse::<u128>()
                    .unwrap_or_default(),
            ),
        );
    }
}

/// `` `9` (unit `nine`), `8` (unit `eight`) and 2 more ``: the units shown, by order and id.
fn listed(inversion: &Inversion<'_>) -> String {
    let mut text = inversion
        .shown
        .iter()
        .map(|unit| format!("`{}` (unit `{}`)", unit.order(), unit.id()))
        .collect::<Vec<_>>()
        .join(", ");
    if inversion.count > inversion.shown.len() {
        text.push_str(&format!(
            " and {} more",
            inversion.count - inversion.shown.len()
        ));
    }
    text
}

/// Every unit with a numeric order (digits only) that runs before units whose numbers are
/// smaller, with the first [`INVERSIONS_SHOWN`] of those units and how many there are:
/// orders compare as text, so `"10"` runs before `"9"`. Both in run order; system units are
/// left out (they run first anyway).
///
/// The smallest number after each unit is computed once, so a unit that runs before no
/// smaller number costs one comparison; only those that do are compared with the rest.
pub(crate) fn order_inversions<'u>(units: &[&'u ChangeUnit]) -> Vec<Inversion<'u>> {
    let mut numbered: Vec<(u128, &'u ChangeUnit)> = units
        .iter()
        .filter(|unit| !unit.is_system())
        .filter_map(|&unit| {
            let order = unit.order();
            let digits = !order.is_empty() && order.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| order.parse::<u128>().ok().map(|value| (value, unit)))?
        })
        .collect();
    numbered.sort_by(|(_, a), (_, b)| a.sort_key().cmp(&b.sort_key()));
    // smallest_after[i]: the smallest number among the units after the i-th.
    let mut smallest_after = vec![u128::MAX; numbered.len()];
    for at in (0..numbered.len().saturating_sub(1)).rev() {
        smallest_after[at] = smallest_after[at + 1].min(numbered[at + 1].0);
    }
    numbered
        .iter()
        .enumerate()
        .filter(|&(at, &(value, _))| smallest_after[at] < value)
        .map(|(at, &(value, early))| {
            let mut late = numbered[at + 1..]
                .iter()
                .filter(|(later, _)| *later < value)
                .map(|&(_, unit)| unit);
            let shown: Vec<_> = late.by_ref().take(INVERSIONS_SHOWN).collect();
            let count = shown.len() + late.count();
            Inversion {
                early,
                shown,
                count,
            }
        })
        .collect()
}

/// How many of the units a unit runs before are named.
pub(crate) const INVERSIONS_SHOWN: usize = 3;

/// A unit that runs before units with smaller numeric orders ([`order_inversions`]).
pub(crate) struct Inversion<'u> {
    pub(crate) early: &'u ChangeUnit,
    /// The first of those units, in run order.
    pub(crate) shown: Vec<&'u ChangeUnit>,
    /// How many there are.
    pub(crate) count: usize,
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let severity = match finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            match &finding.unit {
                Some(unit) => writeln!(f, "{severity}: change unit `{unit}`: {}", finding.message)?,
                None => writeln!(f, "{severity}: {}", finding.message)?,
            }
        }
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        writeln!(
            f,
            "{} units checked: {errors} errors, {warnings} warnings",
            self.units
        )
    }
}

#[cfg(test)]
mod tests {
    use super::profile_problem;

    #[test]
    fn profile_expressions_are_checked() {
        assert_eq!(profile_problem("dev"), None);
        assert_eq!(profile_problem("!prod"), None);
        assert!(profile_problem("").is_some());
        assert!(profile_problem("!").is_some());
        assert!(profile_problem("!!prod").is_some());
        assert!(profile_problem("dev, test").is_some());
    }
}

//! Maven-style version strings, as used by `system_version` and the runner's version window.

use std::cmp::Ordering;
use std::fmt;

use crate::rules::version_syntax;

/// A parsed version such as `"1"`, `"2.5.1"` or `"3.0-rc1"`, ordered as Maven orders them:
/// numbers numerically, trailing zeros ignored (`"1" == "1.0"`), and qualifiers
/// `alpha < beta < milestone < rc < snapshot < (release) < sp`.
#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Number(String),
    Qualifier(String),
}

/// Why a version string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version `{text}`: {reason}")]
pub struct InvalidVersion {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Version {
    /// Parses `text`: ASCII letters and digits in segments separated by `.` or `-`.
    pub fn parse(text: &str) -> Result<Self, InvalidVersion> {
        let segments = version_syntax::segments(text).map_err(|error| InvalidVersion {
            text: text.to_owned(),
            reason: error.reason(),
        })?;
        let mut items = Vec::new();
        for segment in segments {
            let mut rest = segment;
            while !rest.is_empty() {
                let digits = rest.starts_with(|c: char| c.is_ascii_digit());
                let end = rest
                    .find(|c: char| c.is_ascii_digit() != digits)
                    .unwrap_or(rest.len());
                let (token, tail) = rest.split_at(end);
                items.push(if digits {
                    let trimmed = token.trim_start_matches('0');
                    Item::Number(trimmed.to_owned())
                } else {
                    Item::Qualifier(canonical_qualifier(token))
                });
                rest = tail;
            }
        }
        while items.last().is_some_and(Item::is_null) {
            items.pop();
        }
        Ok(Version {
            text: text.to_owned(),
            items,
        })
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn canonical_qualifier(token: &str) -> String {
    let lower = token.to_ascii_lowercase();
    match lower.as_str() {
        "a" => "alpha".into(),
        "b" => "beta".into(),
        "m" => "milestone".into(),
        "cr" => "rc".into(),
        "ga" | "final" | "release" => String::new(),
        _ => lower,
    }
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Number(digits) => digits.is_empty(),
            Item::Qualifier(q) => q.is_empty(),
        }
    }

    fn cmp_to(this: Option<&Item>, other: Option<&Item>) -> Ordering {
        match (this, other) {
            (None, None) => Ordering::Equal,
            (Some(item), None) => item.cmp_null(),
            (None, Some(item)) => item.cmp_null().reverse(),
            (Some(Item::Number(a)), Some(Item::Number(b))) => {
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            }
            (Some(Item::Number(_)), Some(Item::Qualifier(_))) => Ordering::Greater,
            (Some(Item::Qualifier(_)), Some(Item::Number(_))) => Ordering::Less,
            (Some(Item::Qualifier(a)), Some(Item::Qualifier(b))) => qualifier_rank(a)
                .cmp(&qualifier_rank(b))
                .then_with(|| a.cmp(b)),
        }
    }

    fn cmp_null(&self) -> Ordering {
        match self {
            Item::Number(digits) if digits.is_empty() => Ordering::Equal,
            Item::Number(_) => Ordering::Greater,
            Item::Qualifier(q) => qualifier_rank(q).cmp(&qualifier_rank("")),
        }
    }
}

/// Known qualifiers by rank; unknown ones rank after all known ones.
fn qualifier_rank(q: &str) -> usize {
    QUALIFIERS
        .iter()
        .position(|known| *known == q)
        .unwrap_or(QUALIFIERS.len())
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.items.len().max(other.items.len());
        (0..len)
            .map(|i| Item::cmp_to(self.items.get(i), other.items.get(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The system-version window of a run: units with `start <= version < end` run.
#[derive(Debug, Clone)]
pub struct VersionWindow {
    start: Version,
    end: Option<Version>,
}

impl VersionWindow {
    /// A window from `start` (inclusive) to `end` (exclusive; `None` = unbounded).
    pub fn new(start: Version, end: Option<Version>) -> Self {
        VersionWindow { start, end }
    }

    /// Whether `version` lies in the window.
    pub fn contains(&self, version: &Version) -> bool {
        *version >= self.start && self.end.as_ref().is_none_or(|end| version < end)
    }

    /// The inclusive start.
    pub fn start(&self) -> &Version {
        &self.start
    }

    /// The exclusive end, if bounded.
    pub fn end(&self) -> Option<&Version> {
        self.end.as_ref()
    }
}

impl Default for VersionWindow {
    fn default() -> Self {
        VersionWindow::new(Version::parse("0").expect("\"0\" is a valid version"), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn orders_like_maven() {
        let ascending = [
            "0",
            "1-alpha",
            "1-alpha2",
            "1-beta",
            "1-m1",
            "1-rc1",
            "1-snapshot",
            "1",
            "1-sp1",
            "1.1",
            "1.2",
            "1.10",
            "2.5.1",
            "2.5.5",
            "2.6",
            "10",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn trailing_zeros_and_release_qualifiers_are_equal() {
        for (a, b) in [
            ("1", "1.0"),
            ("1", "1.0.0"),
            ("1", "1-final"),
            ("1.0", "1-ga"),
            ("01", "1"),
        ] {
            assert_eq!(v(a), v(b), "{a} == {b}");
        }
    }

    #[test]
    fn window_is_start_inclusive_end_exclusive() {
        let window = VersionWindow::new(v("1"), Some(v("2.5.5")));
        let cases = [
            ("0", false),
            ("0.9", false),
            ("1", true),
            ("1.1", true),
            ("2.5.1", true),
            ("2.5.5", false),
            ("2.6", false),
        ];
        for (version, inside) in cases {
            assert_eq!(window.contains(&v(version)), inside, "{version}");
        }
    }

    #[test]
    fn default_window_takes_everything() {
        let window = VersionWindow::default();
        for version in ["0", "1", "999.1"] {
            assert!(window.contains(&v(version)));
        }
    }

    #[test]
    fn a_malformed_string_is_rejected_with_the_syntax_rule_reason() {
        let error = Version::parse("1..2").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid version `1..2`: it has an empty segment"
        );
    }
}

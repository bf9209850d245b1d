//! The syntax of a version string: ASCII letters and digits in segments separated by `.` or
//! `-`. `#[change_unit]` checks `system_version` against it at compile time; `Version::parse`
//! splits by it at run time, so every version the macro accepts parses.
//!
//! This file is compiled into both migrate-core and migrate-macros (`#[path]`), so it must
//! stay std-only.

/// What separates a version's segments.
pub(crate) const SEPARATORS: [char; 2] = ['.', '-'];

/// Why a string is not a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyntaxError {
    Empty,
    ForbiddenCharacter,
    EmptySegment,
}

impl SyntaxError {
    /// The reason, as `InvalidVersion` states it.
    // Each crate words the error for its own reader.
    #[allow(dead_code)]
    pub(crate) fn reason(self) -> &'static str {
        match self {
            SyntaxError::Empty => "it is empty",
            SyntaxError::ForbiddenCharacter => {
                "only ASCII letters, digits, `.` and `-` are allowed"
            }
            SyntaxError::EmptySegment => "it has an empty segment",
        }
    }

    /// The reason with an example, as the compile error states it next to the literal.
    #[allow(dead_code)]
    pub(crate) fn reason_with_example(self) -> &'static str {
        match self {
            SyntaxError::Empty => "it is empty",
            SyntaxError::ForbiddenCharacter => {
                "only ASCII letters, digits, `.` and `-` are allowed, e.g. \"2.5.1\""
            }
            SyntaxError::EmptySegment => {
                "it has an empty segment between separators, e.g. \"1..2\""
            }
        }
    }
}

/// The segments of the version `text`, or why it is not one.
pub(crate) fn segments(text: &str) -> Result<std::str::Split<'_, [char; 2]>, SyntaxError> {
    if text.is_empty() {
        return Err(SyntaxError::Empty);
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || SEPARATORS.contains(&c))
    {
        return Err(SyntaxError::ForbiddenCharacter);
    }
    if text.split(SEPARATORS).any(str::is_empty) {
        return Err(SyntaxError::EmptySegment);
    }
    Ok(text.split(SEPARATORS))
}

// Pure and fast, so running once in each crate that compiles this file is harmless.
#[cfg(test)]
mod tests {
    use super::{segments, SyntaxError};

    #[test]
    fn splits_at_dots_and_dashes() {
        let cases: [(&str, &[&str]); 5] = [
            ("0", &["0"]),
            ("2.5.1", &["2", "5", "1"]),
            ("3.0-rc1", &["3", "0", "rc1"]),
            ("1.0.0-SNAPSHOT", &["1", "0", "0", "SNAPSHOT"]),
            ("01", &["01"]),
        ];
        for (text, expected) in cases {
            let split: Vec<&str> = segments(text).unwrap().collect();
            assert_eq!(split, expected, "{text}");
        }
    }

    #[test]
    fn says_why_a_string_is_not_a_version() {
        let cases = [
            ("", SyntaxError::Empty),
            ("1 2", SyntaxError::ForbiddenCharacter),
            ("1_0", SyntaxError::ForbiddenCharacter),
            ("v1/2", SyntaxError::ForbiddenCharacter),
            ("1.é", SyntaxError::ForbiddenCharacter),
            ("1..2", SyntaxError::EmptySegment),
            (".1", SyntaxError::EmptySegment),
            ("1.", SyntaxError::EmptySegment),
            ("-1", SyntaxError::EmptySegment),
            ("1-", SyntaxError::EmptySegment),
        ];
        for (text, error) in cases {
            assert_eq!(segments(text).err(), Some(error), "{text:?}");
        }
    }
}

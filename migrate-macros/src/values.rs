//! Validation of attribute values shared by `#[change_unit]`, `#[change_log]` and
//! `#[change_set]`.

use syn::{Generics, LitStr};

use crate::attr::UnitArgs;
use crate::errors::Errors;
use crate::rules::version_syntax;

/// The error for the keys of `required` that `args` lacks, if any, showing `syntax`.
pub(crate) fn missing(
    args: &UnitArgs,
    required: &[&str],
    attribute: &str,
    syntax: &str,
) -> Option<String> {
    let missing: Vec<String> = required
        .iter()
        .filter(|key| !args.unparsed && !args.written.contains(**key))
        .map(|key| format!("`{key}`"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "`#[{attribute}]` needs {}: write `{syntax}`",
            missing.join(" and ")
        )
    })
}

/// The value of a key that must not be empty when written (`""` when absent).
pub(crate) fn not_empty(
    value: Option<&LitStr>,
    key: &str,
    syntax: &str,
    errors: &mut Errors,
) -> String {
    let Some(value) = value else {
        return String::new();
    };
    if value.value().trim().is_empty() {
        errors.error(
            value.span(),
            format!("`{key}` must not be empty: write `{syntax}`"),
        );
    }
    value.value()
}

/// The `system_version`, `"0"` when absent.
pub(crate) fn system_version(version: Option<&LitStr>, errors: &mut Errors) -> String {
    let Some(version) = version else {
        return "0".to_owned();
    };
    if let Err(error) = version_syntax::segments(&version.value()) {
        errors.error(
            version.span(),
            format!(
                "invalid `system_version` \"{}\": {}",
                version.value(),
                error.reason_with_example()
            ),
        );
    }
    version.value()
}

/// The profile expressions, each a name or `!` and a name.
pub(crate) fn profiles(profiles: Option<&[LitStr]>, errors: &mut Errors) -> Vec<String> {
    profiles
        .unwrap_or_default()
        .iter()
        .map(|profile| {
            let value = profile.value();
            let name = value.strip_prefix('!').unwrap_or(&value);
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                errors.error(
                    profile.span(),
                    "a profile is a name, or `!` and a name to exclude it, e.g. \"dev\" or \"!prod\"",
                );
            }
            value
        })
        .collect()
}

/// Reports generics on a struct or impl the runner must build by concrete type; `what` is
/// the kind of item, plural and singular (`("change units", "unit")`).
pub(crate) fn not_generic(generics: &Generics, what: (&str, &str), errors: &mut Errors) {
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        let (plural, singular) = what;
        errors.error_spanned(
            generics,
            format!(
                "{plural} cannot be generic: the runner builds each {singular} from its \
                 dependencies by concrete type"
            ),
        );
    }
}

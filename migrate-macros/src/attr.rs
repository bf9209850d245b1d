//! Parsing the arguments of `#[change_unit(...)]` and of the method markers into typed
//! literals. Checks syntax and literal types only; `unit.rs` validates the values.

use proc_macro2::TokenStream;
use std::collections::HashSet;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitBool, LitStr, Path, Token};

use crate::errors::Errors;

/// The keys `#[change_log]` accepts on a struct, in the order the docs list them.
pub(crate) const CHANGE_LOG_KEYS: &[&str] = &["order", "profiles", "crate"];

/// The keys `#[change_set]` accepts, in the order the docs list them.
pub(crate) const CHANGE_SET_KEYS: &[&str] = &[
    "id",
    "author",
    "order",
    "system_version",
    "run_always",
    "profiles",
];

/// The keys `#[change_unit]` accepts, in the order the docs list them.
const UNIT_KEYS: &[&str] = &[
    "id",
    "order",
    "author",
    "system_version",
    "run_always",
    "transactional",
    "fail_fast",
    "profiles",
    "crate",
    "rollback",
    "no_rollback",
];

/// The arguments of `#[change_unit(...)]`, `#[change_log(...)]` or `#[change_set(...)]`, each
/// as written (`None` when absent or not accepted by the attribute).
#[derive(Default)]
pub(crate) struct UnitArgs {
    pub(crate) id: Option<LitStr>,
    pub(crate) order: Option<LitStr>,
    pub(crate) author: Option<LitStr>,
    pub(crate) system_version: Option<LitStr>,
    pub(crate) run_always: Option<LitBool>,
    pub(crate) transactional: Option<LitBool>,
    pub(crate) fail_fast: Option<LitBool>,
    pub(crate) profiles: Option<Vec<LitStr>>,
    pub(crate) krate: Option<Path>,
    /// A function unit's rollback function.
    pub(crate) rollback: Option<Path>,
    /// A function unit that has nothing to undo.
    pub(crate) no_rollback: Option<LitBool>,
    /// Every key written, valid value or not.
    pub(crate) written: HashSet<String>,
    /// Whether the list failed to parse, so that what is missing is unknown.
    pub(crate) unparsed: bool,
}

/// One `key` or `key = value` of an attribute's argument list.
struct Entry {
    key: Ident,
    value: Option<Expr>,
}

fn parse_entries(input: ParseStream<'_>) -> syn::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    while !input.is_empty() {
        let key = input.call(Ident::parse_any).map_err(|error| {
            syn::Error::new(error.span(), "expected a key such as `id = \"...\"`")
        })?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(without_groups(input.parse::<Expr>()?))
        } else {
            None
        };
        entries.push(Entry { key, value });
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(entries)
}

/// Looks through the invisible groups `macro_rules!` puts around `$value:expr` and
/// `$value:literal`, so that units declared by a user's macro parse like written ones.
fn without_groups(expr: Expr) -> Expr {
    match expr {
        Expr::Group(group) => without_groups(*group.expr),
        Expr::Array(mut array) => {
            array.elems = array
                .elems
                .into_pairs()
                .map(|pair| {
                    let (elem, punct) = pair.into_tuple();
                    syn::punctuated::Pair::new(without_groups(elem), punct)
                })
                .collect();
            Expr::Array(array)
        }
        other => other,
    }
}

/// Parses the argument list of `#[change_unit(...)]`, recording every mistake in `errors`.
pub(crate) fn unit_args(args: TokenStream, errors: &mut Errors) -> UnitArgs {
    keyed_args("change_unit", UNIT_KEYS, args, errors)
}

/// Parses the argument list of `#[attribute(...)]`, which accepts `keys`, recording every
/// mistake in `errors`.
pub(crate) fn keyed_args(
    attribute: &str,
    keys: &[&str],
    args: TokenStream,
    errors: &mut Errors,
) -> UnitArgs {
    let mut parsed = UnitArgs::default();
    let entries = match parse_entries.parse2(args) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(error);
            parsed.unparsed = true;
            return parsed;
        }
    };
    for Entry { key, value } in entries {
        let name = key.unraw().to_string();
        if !keys.contains(&name.as_str()) {
            let valid = keys
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ");
            errors.error(
                key.span(),
                format!("unknown key `{name}` in `#[{attribute}]`; valid keys are {valid}"),
            );
            continue;
        }
        if !parsed.written.insert(name.clone()) {
            errors.error(
                key.span(),
                format!("duplicate key `{name}`: `#[{attribute}]` already sets it"),
            );
            continue;
        }
        match name.as_str() {
            "id" => parsed.id = string(&key, value, "client-initializer", errors),
            "order" => parsed.order = string(&key, value, "001", errors),
            "author" => parsed.author = string(&key, value, "platform", errors),
            "system_version" => parsed.system_version = string(&key, value, "1", errors),
            "run_always" => parsed.run_always = boolean(&key, value, errors),
            "transactional" => parsed.transactional = boolean(&key, value, errors),
            "fail_fast" => parsed.fail_fast = boolean(&key, value, errors),
            "profiles" => parsed.profiles = strings(&key, value, errors),
            "crate" => parsed.krate = crate_path(&key, value, errors),
            "rollback" => parsed.rollback = function_path(&key, value, errors),
            "no_rollback" => parsed.no_rollback = boolean(&key, value, errors),
            _ => unreachable!("every accepted key is handled"),
        }
    }
    parsed
}

/// Parses the argument list of a method marker (`crate = path` or nothing).
pub(crate) fn marker_args(marker: &str, args: TokenStream, errors: &mut Errors) -> Option<Path> {
    let entries = match parse_entries.parse2(args) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    let mut krate = None;
    for Entry { key, value } in entries {
        let name = key.unraw().to_string();
        if name != "crate" {
            errors.error(
                key.span(),
                format!(
                    "unknown key `{name}` in `#[{marker}]`; it takes no arguments \
                     except `crate = path`"
                ),
            );
        } else if krate.is_some() {
            errors.error(
                key.span(),
                format!("duplicate key `crate`: `#[{marker}]` already sets it"),
            );
        } else {
            krate = crate_path(&key, value, errors);
        }
    }
    krate
}

fn string(key: &Ident, value: Option<Expr>, example: &str, errors: &mut Errors) -> Option<LitStr> {
    match value {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        })) => Some(lit),
        Some(other) => {
            errors.error_spanned(
                other,
                format!("`{key}` expects a string literal, e.g. `{key} = \"{example}\"`"),
            );
            None
        }
        None => {
            errors.error(
                key.span(),
                format!("`{key}` expects a value, e.g. `{key} = \"{example}\"`"),
            );
            None
        }
    }
}

fn boolean(key: &Ident, value: Option<Expr>, errors: &mut Errors) -> Option<LitBool> {
    match value {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Bool(lit),
            ..
        })) => Some(lit),
        Some(other) => {
            errors.error_spanned(
                other,
                format!("`{key}` expects `true` or `false`, e.g. `{key} = true`"),
            );
            None
        }
        // A bare flag means `true`, like `#[serde(default)]`.
        None => Some(LitBool::new(true, key.span())),
    }
}

fn strings(key: &Ident, value: Option<Expr>, errors: &mut Errors) -> Option<Vec<LitStr>> {
    let expected =
        format!("`{key}` expects an array of strings, e.g. `{key} = [\"dev\", \"!prod\"]`");
    let Some(value) = value else {
        errors.error(key.span(), expected);
        return None;
    };
    let Expr::Array(array) = value else {
        errors.error_spanned(value, expected);
        return None;
    };
    let elems: Punctuated<Expr, Token![,]> = array.elems;
    let mut out = Vec::new();
    let mut ok = true;
    for elem in elems {
        match elem {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => out.push(lit),
            other => {
                errors.error_spanned(other, &expected);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn function_path(key: &Ident, value: Option<Expr>, errors: &mut Errors) -> Option<Path> {
    let expected = format!("`{key}` expects the path of an `async fn`, e.g. `{key} = drop_index`");
    path(key, value, &expected, errors)
}

/// A plain path, or `expected` as the error.
fn path(key: &Ident, value: Option<Expr>, expected: &str, errors: &mut Errors) -> Option<Path> {
    match value {
        Some(Expr::Path(path)) if path.qself.is_none() && path.attrs.is_empty() => Some(path.path),
        Some(other) => {
            errors.error_spanned(other, expected);
            None
        }
        None => {
            errors.error(key.span(), expected);
            None
        }
    }
}

fn crate_path(key: &Ident, value: Option<Expr>, errors: &mut Errors) -> Option<Path> {
    let expected = "`crate` expects a path to the `migrate` crate, e.g. `crate = ::migrate`";
    match value {
        // `crate = "..."`, as serde and tokio spell it.
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        })) => match lit.parse_with(Path::parse_mod_style) {
            Ok(path) => Some(path),
            Err(_) => {
                errors.error(lit.span(), expected);
                None
            }
        },
        value => path(key, value, expected, errors),
    }
}

#[cfg(test)]
mod tests {
    use super::{marker_args, unit_args};
    use crate::errors::Errors;
    use quote::{quote, ToTokens};

    #[test]
    fn every_key_parses() {
        let mut errors = Errors::default();
        let args = unit_args(
            quote! {
                id = "a", order = "001", author = "me", system_version = "1.2",
                run_always = true, transactional = false, fail_fast = false,
                profiles = ["dev", "!prod"], crate = ::my::migrate,
            },
            &mut errors,
        );
        assert!(errors.is_empty());
        assert_eq!(args.id.unwrap().value(), "a");
        assert_eq!(args.order.unwrap().value(), "001");
        assert_eq!(args.author.unwrap().value(), "me");
        assert_eq!(args.system_version.unwrap().value(), "1.2");
        assert!(args.run_always.unwrap().value());
        assert!(!args.transactional.unwrap().value());
        assert!(!args.fail_fast.unwrap().value());
        let profiles: Vec<String> = args.profiles.unwrap().iter().map(|p| p.value()).collect();
        assert_eq!(profiles, ["dev", "!prod"]);
        assert_eq!(
            args.krate.unwrap().to_token_stream().to_string(),
            quote!(::my::migrate).to_string()
        );
    }

    #[test]
    fn a_bare_flag_means_true() {
        let mut errors = Errors::default();
        let args = unit_args(quote!(id = "a", order = "1", run_always), &mut errors);
        assert!(errors.is_empty());
        assert!(args.run_always.unwrap().value());
    }

    #[test]
    fn every_mistake_is_collected() {
        let mut errors = Errors::default();
        unit_args(
            quote!(
                id = 1,
                order = "1",
                order = "2",
                colour = "red",
                profiles = "dev"
            ),
            &mut errors,
        );
        let messages = errors.to_compile_errors().to_string();
        assert_eq!(messages.matches("compile_error").count(), 4, "{messages}");
    }

    #[test]
    fn markers_take_only_a_crate_path() {
        let mut errors = Errors::default();
        assert!(marker_args("execution", quote!(crate = "::m"), &mut errors).is_some());
        assert!(errors.is_empty());
        marker_args("execution", quote!(order = "1"), &mut errors);
        assert!(!errors.is_empty());
    }
}

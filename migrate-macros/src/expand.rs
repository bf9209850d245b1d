//! The pipeline of each macro: parse the attribute, build and validate the model, generate.
//! On any error the user's item is still emitted, next to one `compile_error!` per mistake.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::quote;
use syn::{Item, ItemStruct, Path};

use crate::change_log as log;
use crate::errors::Errors;
use crate::rules::steps::Step;
use crate::{attr, function, step, unit};

/// The path generated code uses when the attribute does not say `crate = ...`.
pub(crate) fn default_crate() -> Path {
    syn::parse_quote!(::migrate)
}

/// Expands `#[change_unit(args)]` on `item`.
pub(crate) fn change_unit(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::unit_args(args, &mut errors);
    let krate = args.krate.clone().unwrap_or_else(default_crate);
    if is_function(&item) {
        return match step::parse_method(item.clone()) {
            Ok(function) => change_unit_function(args, function, &krate, errors),
            Err(error) => {
                errors.push(error);
                let errors = errors.to_compile_errors();
                quote!(#item #errors)
            }
        };
    }
    let item: ItemStruct = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            errors.error(
                Span::call_site(),
                "`#[change_unit]` goes on a struct, e.g. `pub struct CreateIndexes { db: Database }`, \
                 or on an `async fn`",
            );
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    let unit = unit::model(args, &item, &mut errors);
    if errors.is_empty() {
        unit.generate(&item, &krate)
    } else {
        let rejected = unit.generate_rejected(&item, &krate);
        let errors = errors.to_compile_errors();
        quote!(#rejected #errors)
    }
}

/// Whether `item` is a function: `fn` comes before any braces, after attributes, visibility
/// and qualifiers.
fn is_function(item: &TokenStream) -> bool {
    item.clone()
        .into_iter()
        .take_while(
            |tree| !matches!(tree, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace),
        )
        .any(|tree| matches!(tree, TokenTree::Ident(ident) if ident == "fn"))
}

/// Expands `#[change_unit(args)]` on a function.
fn change_unit_function(
    args: attr::UnitArgs,
    function: syn::ImplItemFn,
    krate: &Path,
    mut errors: Errors,
) -> TokenStream {
    let unit = function::model(args, function, &mut errors);
    if errors.is_empty() {
        unit.generate(krate)
    } else {
        let rejected = unit.generate_rejected();
        let errors = errors.to_compile_errors();
        quote!(#rejected #errors)
    }
}

/// Expands a method marker (`#[execution]` and friends) on `item`.
pub(crate) fn step(kind: Step, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let krate =
        attr::marker_args(kind.attribute(), args, &mut errors).unwrap_or_else(default_crate);
    let method = match step::parse_method(item.clone()) {
        Ok(method) => method,
        Err(_) => {
            errors.error(
                Span::call_site(),
                format!(
                    "`#[{}]` goes on an `async fn(&self, ...)` in the impl of a change unit",
                    kind.attribute()
                ),
            );
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    let step = step::model(step::Marker::Step(kind), method, &mut errors);
    if errors.is_empty() {
        step.generate(&krate)
    } else {
        let rejected = step.generate_rejected(&krate);
        let errors = errors.to_compile_errors();
        quote!(#rejected #errors)
    }
}

/// Expands `#[change_log(args)]` on a struct (the change log) or on its impl block (its
/// change sets).
pub(crate) fn change_log(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let item = match syn::parse2(item.clone()) {
        Ok(Item::Impl(item)) => return log::expand_impl(args, item),
        Ok(Item::Struct(item)) => item,
        _ => {
            errors.error(
                Span::call_site(),
                "`#[change_log]` goes on a struct and on its impl block, e.g. \
                 `#[change_log(order = \"001\")] pub struct DatabaseChangelog { db: Database }` \
                 and `#[change_log] impl DatabaseChangelog { .. }`",
            );
            let errors = errors.to_compile_errors();
            return quote!(#item #errors);
        }
    };
    let args = attr::keyed_args("change_log", attr::CHANGE_LOG_KEYS, args, &mut errors);
    let krate = args.krate.clone().unwrap_or_else(default_crate);
    let log = log::model(&args, &item, &mut errors);
    // Mistakes in the attribute's values still leave a usable change log, so its impl block
    // reports nothing more; a generic struct cannot become one.
    let generated = if item.generics.params.is_empty() && item.generics.where_clause.is_none() {
        log.generate(&item, &krate)
    } else {
        quote!(#item)
    };
    let errors = errors.to_compile_errors();
    quote!(#generated #errors)
}

/// Expands a `#[change_set]`: a no-op where a `#[change_log]` impl has read it, a mistake
/// anywhere else.
pub(crate) fn change_set(args: TokenStream, item: TokenStream) -> TokenStream {
    let noop: TokenStream = quote!(__migrate_in_change_log);
    if args.to_string() == noop.to_string() {
        return item;
    }
    let mut errors = Errors::default();
    errors.error(
        Span::call_site(),
        "`#[change_set]` only works in an impl block marked `#[change_log]`, of a struct \
         marked `#[change_log]` too: write `#[change_log] impl MyChangeLog { .. }`",
    );
    let errors = errors.to_compile_errors();
    quote!(#item #errors)
}

#[cfg(test)]
mod tests {
    //! How much code a typical change unit expands to. rustc's work for a unit grows with the
    //! tokens its macros generate (the macros build them one by one through the proc-macro
    //! bridge, and rustc parses, resolves and type-checks what they form), so these budgets
    //! catch an expansion that grows by accident. Lower a budget when the expansion shrinks.

    use proc_macro2::{TokenStream, TokenTree};
    use quote::quote;

    use crate::errors::Errors;
    use crate::rules::steps::Step;
    use crate::{attr, function, step};

    /// Tokens in `tokens`, counting a group's delimiters as one token and its contents.
    fn count(tokens: TokenStream) -> usize {
        tokens
            .into_iter()
            .map(|token| match token {
                TokenTree::Group(group) => 1 + count(group.stream()),
                _ => 1,
            })
            .sum()
    }

    /// The tokens `expand` adds to `item`, after checking that it emits no error.
    fn generated(item: TokenStream, expand: impl FnOnce(TokenStream) -> TokenStream) -> usize {
        let input = count(item.clone());
        let output = expand(item);
        assert!(
            !output.to_string().contains("compile_error"),
            "the reference expansion reported an error: {output}"
        );
        count(output) - input
    }

    #[test]
    fn a_typical_unit_expands_within_its_token_budget() {
        let unit = generated(
            quote!(
                pub struct AddIndex {
                    db: Database,
                }
            ),
            |item| {
                super::change_unit(
                    quote!(id = "add-index", order = "0001", author = "ops"),
                    item,
                )
            },
        );
        let execution = generated(
            quote! {
                async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
                    self.db.collection::<Document>("c").insert_one(doc! { "k": 1 }).session(session).await?;
                    Ok(())
                }
            },
            |item| super::step(Step::Execution, TokenStream::new(), item),
        );
        let rollback = generated(
            quote!(
                async fn rollback(&self) -> mongodb::error::Result<()> {
                    Ok(())
                }
            ),
            |item| super::step(Step::RollbackExecution, TokenStream::new(), item),
        );
        for (part, tokens, budget) in [
            ("#[change_unit] on a struct with one field", unit, 595),
            ("#[execution] taking the session", execution, 312),
            (
                "#[rollback_execution] whose body is `Ok(())`",
                rollback,
                172,
            ),
        ] {
            assert!(
                tokens <= budget,
                "{part} generates {tokens} tokens, over its budget of {budget}"
            );
        }
    }

    #[test]
    fn a_typical_function_unit_expands_within_its_token_budget() {
        let generated = generated(
            quote! {
                async fn add_index(db: Database, session: &mut ClientSession) -> mongodb::error::Result<()> {
                    db.collection::<Document>("c").insert_one(doc! { "k": 1 }).session(session).await?;
                    Ok(())
                }
            },
            |item| {
                super::change_unit(
                    quote!(
                        id = "add-index",
                        order = "0001",
                        author = "ops",
                        no_rollback
                    ),
                    item,
                )
            },
        );
        let budget = 457;
        assert!(
            generated <= budget,
            "#[change_unit] on a function taking two parameters generates {generated} tokens, \
             over its budget of {budget}"
        );
    }

    #[test]
    fn a_function_units_checksum_covers_its_function_and_its_rollbacks_path() {
        let checksum = |args: TokenStream, body: TokenStream| {
            let mut errors = Errors::default();
            let args = attr::unit_args(args, &mut errors);
            let item = quote!(async fn add_index(db: Database) -> anyhow::Result<()> { #body });
            let function = step::parse_method(item).unwrap();
            let checksum = function::model(args, function, &mut errors).checksum;
            assert!(errors.is_empty());
            checksum
        };
        let base = checksum(
            quote!(id = "a", order = "1", rollback = undo),
            quote!(Ok(())),
        );
        let same = checksum(
            quote!(id = "a", order = "2", author = "me", rollback = undo),
            quote!(Ok(())),
        );
        let other_body = checksum(
            quote!(id = "a", order = "1", rollback = undo),
            quote!(db.drop().await?; Ok(())),
        );
        let other_rollback = checksum(
            quote!(id = "a", order = "1", rollback = undo_differently),
            quote!(Ok(())),
        );
        assert_eq!(
            base, same,
            "the attribute's other keys are not the unit's code"
        );
        assert_ne!(base, other_body);
        assert_ne!(base, other_rollback);
    }
}

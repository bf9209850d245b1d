//! The pipeline of each macro: parse the attribute, build and validate the model, generate.
//! On any error the user's item is still emitted, next to one `compile_error!` per mistake.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{ImplItemFn, ItemStruct, Path};

use crate::errors::Errors;
use crate::rules::steps::Step;
use crate::{attr, step, unit};

/// The path generated code uses when the attribute does not say `crate = ...`.
fn default_crate() -> Path {
    syn::parse_quote!(::migrate)
}

/// Expands `#[change_unit(args)]` on `item`.
pub(crate) fn change_unit(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::unit_args(args, &mut errors);
    let krate = args.krate.clone().unwrap_or_else(default_crate);
    let item: ItemStruct = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            errors.error(
                Span::call_site(),
                "`#[change_unit]` goes on a struct, e.g. `pub struct CreateIndexes { db: Database }`",
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

/// Expands a method marker (`#[execution]` and friends) on `item`.
pub(crate) fn step(kind: Step, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let krate =
        attr::marker_args(kind.attribute(), args, &mut errors).unwrap_or_else(default_crate);
    let method: ImplItemFn = match syn::parse2(item.clone()) {
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
    let step = step::model(kind, method, &mut errors);
    if errors.is_empty() {
        step.generate(&krate)
    } else {
        let rejected = step.generate_rejected(&krate);
        let errors = errors.to_compile_errors();
        quote!(#rejected #errors)
    }
}

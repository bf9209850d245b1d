//! `#[change_unit(...)]` on an `async fn`: the function is the unit's execution, and the
//! attribute names its rollback (`rollback = path`) or says it has none (`no_rollback`).
//!
//! A function unit generates one step function (its parameters resolved by type, as a
//! method marker's are), the unit's code and its registration; the runtime object every
//! function unit is built as is one non-generic type in `__private`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, ImplItemFn, Path};

use crate::attr::UnitArgs;
use crate::checksum;
use crate::errors::Errors;
use crate::respan::respan;
use crate::step::{self, Marker, Param, UnrawName};
use crate::unit::{self, Unit};

/// A change unit written as a function, validated.
pub(crate) struct FunctionUnit {
    unit: Unit,
    function: ImplItemFn,
    params: Vec<Param>,
    rollback: Option<Path>,
    /// Hash of the function's tokens and of the rollback's path.
    pub(crate) checksum: u64,
}

/// Builds the model of a function unit, recording every mistake in `errors`.
pub(crate) fn model(args: UnitArgs, function: ImplItemFn, errors: &mut Errors) -> FunctionUnit {
    let unit = unit::model_attributes(&args, &function.sig.ident, errors);
    step::check_signature(Marker::Function, &function.sig, errors);
    let params = step::params(Marker::Function, &function.sig, errors);
    let no_rollback = args.no_rollback.as_ref().filter(|flag| flag.value());
    match (&args.rollback, no_rollback) {
        (Some(_), Some(flag)) => errors.error(
            flag.span(),
            "`no_rollback` contradicts `rollback = ...`: keep one of them",
        ),
        (None, None) if !args.unparsed => errors.error(
            Span::call_site(),
            "a change unit written as a function names its rollback: add `rollback = \
             undo_fn` (an `async fn` whose parameters are injected), or `no_rollback` when \
             a failed run leaves nothing to undo",
        ),
        _ => {}
    }
    let rollback = args.rollback;
    let checksum = checksum::of_tokens(quote!(#function #rollback));
    FunctionUnit {
        unit,
        function,
        params,
        rollback,
        checksum,
    }
}

impl FunctionUnit {
    /// The function, its step function, its code and its registration.
    pub(crate) fn generate(&self, krate: &Path) -> TokenStream {
        let private = quote!(#krate::__private);
        let function = &self.function;
        let ident = &function.sig.ident;
        let name = ident.unraw_name();
        let attributes = self.unit.attributes(&private);
        let checksum = proc_macro2::Literal::u64_suffixed(self.checksum);
        let takes_session = self.params.iter().any(|p| p.session);
        let has_rollback = self.rollback.is_some();

        // Locals interpolated with call-site hygiene, as in `step.rs`.
        let cx = Ident::new("__migrate_cx", Span::call_site());
        let call = Ident::new("__migrate_call", Span::call_site());
        let (cx_pattern, args) = step::bindings(&self.params, &cx);
        // A parameter that cannot be resolved fails the step (see `StepResult`).
        let resolutions = self.params.iter().zip(&args).map(|(param, arg)| {
            let resolve = param.resolve(&cx, &private);
            quote!(let #arg = #resolve?;)
        });
        let requirements = step::requirements(&self.params, &private);
        // What the function returns is reported at its return type, as for a method.
        let output_span = step::output_span(&function.sig);
        let step_boxed = respan(quote!(#private::step_boxed), output_span);
        let mut function_at_output = ident.clone();
        function_at_output.set_span(ident.span().located_at(output_span));
        let execution = quote_spanned! {output_span=>
            #step_boxed(::std::boxed::Box::pin(#function_at_output(#(#args),*)))
        };

        let (rollback_item, rollback_step) = match &self.rollback {
            Some(path) => {
                let site = format!(
                    "a parameter of `{}`",
                    path.segments
                        .last()
                        .map(|segment| segment.ident.unraw_name())
                        .unwrap_or_default()
                );
                // Spanned at the path: a function that cannot be a rollback is reported there.
                let rollback = respan(quote!(#private::rollback), path.span());
                let rollback_call = Ident::new("__migrate_rollback_call", Span::call_site());
                (
                    quote! {
                        fn __migrate_rollback<'a>(
                            #rollback_call: #private::RollbackCall<'a, '_>,
                        ) -> #private::StepOutput<'a> {
                            #rollback(#path, #rollback_call, #site)
                        }
                    },
                    quote!(::core::option::Option::Some(__migrate_rollback)),
                )
            }
            None => (TokenStream::new(), quote!(::core::option::Option::None)),
        };

        quote! {
            #function

            const _: () = {
                #[#private::linkme::distributed_slice(#private::CHANGE_UNITS)]
                #[linkme(crate = #private::linkme)]
                static __MIGRATE_UNIT: #private::ChangeUnit = __MIGRATE_UNIT_DEF;

                fn __migrate_execution<'a>(
                    #cx_pattern: #private::StepContext<'a>,
                ) -> #private::StepResult<'a> {
                    #(#resolutions)*
                    ::core::result::Result::Ok(#execution)
                }

                #rollback_item

                fn __migrate_code(#call: #private::UnitCall<'_, '_>) -> #private::CodeResult {
                    #private::function_code(
                        #call,
                        (::core::concat!(::core::module_path!(), "::", #name), ::core::file!(), #name),
                        const { &[#(#requirements),*] },
                        __migrate_execution,
                        #rollback_step,
                    )
                }

                const __MIGRATE_UNIT_DEF: #private::ChangeUnit = #private::function_unit(
                    #attributes,
                    #checksum,
                    #takes_session,
                    #has_rollback,
                    __migrate_code,
                );
            };
        }
    }

    /// The function alone, for when the attribute has errors: the user sees those errors and
    /// no follow-on ones.
    pub(crate) fn generate_rejected(&self) -> TokenStream {
        let function = self.function.to_token_stream();
        quote! {
            #[allow(dead_code)]
            #function
        }
    }
}

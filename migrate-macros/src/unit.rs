//! `#[change_unit(...)]` on a struct: the unit's descriptor, its construction by injection,
//! its step dispatch and its registration.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, ItemStruct, LitBool, Path};

use crate::attr::UnitArgs;
use crate::errors::Errors;
use crate::fields::FieldSite;
use crate::respan::respan;
use crate::rules::steps::Step;
use crate::step::UnrawName;
use crate::{checksum, fields, values};

/// A change unit, validated.
pub(crate) struct Unit {
    ident: Ident,
    id: String,
    order: String,
    author: Option<String>,
    system_version: String,
    run_always: bool,
    transactional: bool,
    fail_fast: bool,
    profiles: Vec<String>,
    fields: Vec<FieldSite>,
    checksum: u64,
}

const SYNTAX: &str = "#[change_unit(id = \"...\", order = \"...\")]";

/// `migrate::__private::INLINE_CAPACITY`: texts this long or shorter are written into the
/// descriptor. The byte string is written at this length, so a mismatch does not compile.
const INLINE_CAPACITY: usize = 26;

/// Builds the model of a unit, recording every mistake in `errors`.
pub(crate) fn model(args: UnitArgs, item: &ItemStruct, errors: &mut Errors) -> Unit {
    for (key, written) in [
        ("rollback", args.rollback.as_ref().map(Spanned::span)),
        ("no_rollback", args.no_rollback.as_ref().map(LitBool::span)),
    ] {
        if let Some(span) = written {
            errors.error(
                span,
                format!(
                    "`{key}` is for a change unit written as a function; a struct's rollback \
                     is the method marked `#[rollback_execution]`"
                ),
            );
        }
    }
    values::not_generic(&item.generics, ("change units", "unit"), errors);
    let mut unit = model_attributes(&args, &item.ident, errors);
    unit.fields = fields::sites(&item.fields, "change unit", errors);
    unit.checksum = checksum::of_tokens(item.to_token_stream());
    unit
}

/// Builds the model of what a unit's attribute declares, for a struct or a function; the
/// caller fills in the fields and the checksum.
pub(crate) fn model_attributes(args: &UnitArgs, ident: &Ident, errors: &mut Errors) -> Unit {
    if let Some(message) = values::missing(args, &["id", "order"], "change_unit", SYNTAX) {
        errors.error(Span::call_site(), message);
    }
    let id = values::not_empty(args.id.as_ref(), "id", SYNTAX, errors);
    let order = values::not_empty(args.order.as_ref(), "order", SYNTAX, errors);
    let author = args.author.as_ref().map(|author| {
        if author.value().trim().is_empty() {
            errors.error(
                author.span(),
                "`author` must not be empty or blank; leave it out to record the runner's \
                 default author",
            );
        }
        author.value()
    });
    let system_version = values::system_version(args.system_version.as_ref(), errors);
    let profiles = values::profiles(args.profiles.as_deref(), errors);

    Unit {
        ident: ident.clone(),
        id,
        order,
        author,
        system_version,
        run_always: args.run_always.as_ref().is_some_and(LitBool::value),
        transactional: args.transactional.as_ref().is_none_or(LitBool::value),
        fail_fast: args.fail_fast.as_ref().is_none_or(LitBool::value),
        profiles,
        fields: Vec::new(),
        checksum: 0,
    }
}

impl Unit {
    /// The struct, its trait impls and its registration.
    pub(crate) fn generate(&self, item: &ItemStruct, krate: &Path) -> TokenStream {
        let private = quote!(#krate::__private);
        let ident = &self.ident;
        let id = &self.id;
        let attributes = self.attributes(&private);
        let type_name = ident.unraw_name();
        let type_path = quote!(::core::concat!(::core::module_path!(), "::", #type_name));
        let struct_checksum = proc_macro2::Literal::u64_suffixed(self.checksum);

        // In the order of `Step`'s variants, which index `Steps`. A path to a step resolves the
        // marker's const or its fallback.
        let step_consts = Step::ALL.map(Step::const_ident);
        let execution = Step::Execution.const_ident();
        // `step_table` requires the execution and rollback steps: a missing one is reported
        // at the struct's name.
        let step_table = respan(quote!(#private::step_table), ident.span());

        // Spanned at the struct's name: a unit that is not `Send + Sync + 'static` is reported
        // there.
        let unit_type = quote_spanned! {ident.span()=>
            impl #private::UnitType for #ident {}
        };

        // Locals interpolated with call-site hygiene, as in `step.rs`.
        let deps = Ident::new("__migrate_deps", Span::call_site());
        let call = Ident::new("__migrate_call", Span::call_site());
        let answer = Ident::new("__migrate_answer", Span::call_site());
        let field_requirements = self.fields.iter().map(|f| f.requirement(&private));
        let unit_id = quote!(#id);
        let field_values = self
            .fields
            .iter()
            .map(|f| f.initializer(&private, &deps, &unit_id));
        let before = Step::BeforeExecution.const_ident();

        // The unit's code is one function: what it answers are constants of its code, not a
        // table the loader would relocate. A fn item rather than a closure, so that no
        // `FnOnce` shim is generated for its coercion to a fn pointer. The registration is a
        // const that the `static` names, so that linkme's attribute parses and re-emits a
        // path instead of the whole body.
        quote! {
            #item

            const _: () = {
                #[allow(unused_imports)]
                use #private::StepFallback as _;

                impl #private::IsChangeUnit for #ident {
                    const ID: &'static str = #id;
                }

                #unit_type

                #[#private::linkme::distributed_slice(#private::CHANGE_UNITS)]
                #[linkme(crate = #private::linkme)]
                static __MIGRATE_UNIT: #private::ChangeUnit = __MIGRATE_UNIT_DEF;

                fn __migrate_code(#call: #private::UnitCall<'_, '_>) -> #private::CodeResult {
                    match #call {
                        #private::UnitCall::Names(#answer) => #answer.set(
                            #type_path,
                            ::core::file!(),
                            #private::method_name(#ident::#execution.method),
                            #ident::#before.method,
                        ),
                        #private::UnitCall::Sites(#answer) => #private::list_sites(
                            #answer,
                            const { &[#(#field_requirements),*] },
                            #(#ident::#step_consts.requirements),*
                        ),
                        #private::UnitCall::Instantiate(#deps, #answer) => {
                            *#answer = ::core::option::Option::Some(#private::instance(
                                #ident {
                                    #(#field_values,)*
                                },
                                #(#ident::#step_consts.run),*
                            ));
                        }
                    }
                    ::core::result::Result::Ok(())
                }

                const __MIGRATE_UNIT_DEF: #private::ChangeUnit = #private::change_unit(
                    #attributes,
                    #step_table(#struct_checksum, #(#ident::#step_consts),*),
                    __migrate_code,
                );

                impl #private::DescribeUnit for #ident {
                    fn change_unit() -> &'static #private::ChangeUnit {
                        &__MIGRATE_UNIT
                    }
                }
            };
        }
    }

    /// What the unit's attribute declares, as a `UnitAttributes` expression.
    pub(crate) fn attributes(&self, private: &TokenStream) -> TokenStream {
        let Unit {
            id,
            order,
            system_version,
            run_always,
            transactional,
            fail_fast,
            profiles,
            ..
        } = self;
        // The four strings planning reads, in the descriptor when they fit, else in one
        // string for one relocation (see `UnitText`).
        let author = self.author.as_deref().unwrap_or_default();
        let has_author = self.author.is_some();
        let packed = format!("{id}{order}{author}{system_version}");
        let lengths = [id.len(), order.len(), author.len()];
        let text = if packed.len() <= INLINE_CAPACITY {
            let mut bytes = packed.clone().into_bytes();
            bytes.resize(INLINE_CAPACITY, 0);
            let bytes = proc_macro2::Literal::byte_string(&bytes);
            let len = packed.len();
            quote! {
                #private::UnitText::inline(*#bytes, #len, [#(#lengths),*], #has_author)
            }
        } else {
            quote! {
                #private::UnitText::packed(#packed, [#(#lengths),*], #has_author)
            }
        };
        let extra = if profiles.is_empty() {
            quote!(::core::option::Option::None)
        } else {
            quote! {
                ::core::option::Option::Some(&#private::UnitExtra {
                    profiles: &[#(#profiles),*],
                    change_set: ::core::option::Option::None,
                })
            }
        };
        quote! {
            #private::UnitAttributes {
                text: #text,
                run_always: #run_always,
                transactional: #transactional,
                fail_fast: #fail_fast,
                extra: #extra,
                line: ::core::line!(),
            }
        }
    }

    /// The struct and just enough for its method markers to compile, for when the attribute
    /// has errors: the user sees those errors and no follow-on ones.
    pub(crate) fn generate_rejected(&self, item: &ItemStruct, krate: &Path) -> TokenStream {
        let ident = &self.ident;
        let id = &self.id;
        let (impl_generics, type_generics, where_clause) = item.generics.split_for_impl();
        quote! {
            #item

            impl #impl_generics #krate::__private::IsChangeUnit for #ident #type_generics
            #where_clause
            {
                const ID: &'static str = #id;
            }
        }
    }
}

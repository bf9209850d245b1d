//! `#[change_log]`, the legacy model: on a struct it declares a change log built by injection;
//! on the struct's impl block it registers every `#[change_set]` method as a unit of its own.
//!
//! An attribute on a method cannot name the type of its impl, and a registration must, so the
//! impl carries the attribute too and reads its `#[change_set]` methods itself. A
//! `#[change_set]` left for its own macro is therefore outside a `#[change_log]` impl.

use std::collections::HashMap;

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, ImplItem, ImplItemFn, ItemImpl, ItemStruct, Meta, Path};

use crate::attr::{self, UnitArgs};
use crate::errors::Errors;
use crate::fields::{self, FieldSite};
use crate::step::{self, change_set_const, Marker, StepMethod, UnrawName};
use crate::{checksum, values};

const SET_SYNTAX: &str = "#[change_set(id = \"...\", author = \"...\")]";
const LOG_SYNTAX: &str = "#[change_log(order = \"...\")]";

/// A change log struct, validated.
pub(crate) struct ChangeLog {
    ident: Ident,
    order: String,
    profiles: Vec<String>,
    fields: Vec<FieldSite>,
    checksum: u64,
}

/// Builds the model of a change log struct, recording every mistake in `errors`.
pub(crate) fn model(args: &UnitArgs, item: &ItemStruct, errors: &mut Errors) -> ChangeLog {
    let order = match &args.order {
        Some(_) => values::not_empty(args.order.as_ref(), "order", LOG_SYNTAX, errors),
        // Mongock sorts change logs without an order by their class name.
        None => item.ident.unraw_name(),
    };
    let profiles = values::profiles(args.profiles.as_deref(), errors);
    values::not_generic(&item.generics, ("change logs", "change log"), errors);
    ChangeLog {
        ident: item.ident.clone(),
        order,
        profiles,
        fields: fields::sites(&item.fields, "change log", errors),
        checksum: checksum::of_tokens(item.to_token_stream()),
    }
}

impl ChangeLog {
    /// The struct and its `IsChangeLog` impl.
    pub(crate) fn generate(&self, item: &ItemStruct, krate: &Path) -> TokenStream {
        let private = quote!(#krate::__private);
        let ChangeLog {
            ident,
            order,
            profiles,
            ..
        } = self;
        let type_name = ident.unraw_name();
        let checksum = proc_macro2::Literal::u64_suffixed(self.checksum);
        let deps = Ident::new("__migrate_deps", Span::call_site());
        let unit_id = Ident::new("__migrate_unit_id", Span::call_site());
        let unit_id_value = quote!(#unit_id);
        let requirements = self.fields.iter().map(|f| f.requirement(&private));
        let values = self
            .fields
            .iter()
            .map(|f| f.initializer(&private, &deps, &unit_id_value));
        quote! {
            #item

            const _: () = {
                impl #private::IsChangeLog for #ident {
                    const ORDER: &'static str = #order;
                    const TYPE_PATH: &'static str =
                        ::core::concat!(::core::module_path!(), "::", #type_name);
                    const PROFILES: &'static [&'static str] = &[#(#profiles),*];
                    const CHECKSUM: u64 = #checksum;

                    const REQUIREMENTS: #private::Requirements = &[#(#requirements),*];

                    fn build(
                        #deps: &#private::Dependencies,
                        #unit_id: &'static str,
                    ) -> ::core::result::Result<Self, #private::BoxError> {
                        ::core::result::Result::Ok(#ident {
                            #(#values,)*
                        })
                    }
                }
            };
        }
    }
}

/// One `#[change_set]` method, validated.
struct ChangeSet {
    id: String,
    author: String,
    order: String,
    system_version: String,
    run_always: bool,
    profiles: Vec<String>,
    step: StepMethod,
}

/// Expands `#[change_log]` on an impl block: its change-set methods and their registrations.
pub(crate) fn expand_impl(args: TokenStream, item: ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::keyed_args("change_log", attr::CHANGE_LOG_KEYS, args, &mut errors);
    if let Some(order) = &args.order {
        errors.error(
            order.span(),
            "`order` goes on the change log's struct, not on its impl block",
        );
    }
    if let Some(profile) = args.profiles.as_ref().and_then(|p| p.first()) {
        errors.error(
            profile.span(),
            "`profiles` goes on the change log's struct or on a `#[change_set]`, not on the \
             impl block",
        );
    }
    let krate = args.krate.unwrap_or_else(crate::expand::default_crate);
    if let Some((path, _)) = &item.trait_ {
        errors.error_spanned(
            path,
            "`#[change_log]` goes on the inherent impl of a change log (`impl MyChangeLog { .. }`), \
             not on a trait impl",
        );
    }
    values::not_generic(&item.generics, ("change logs", "change log"), &mut errors);

    let mut shell = item;
    let items = std::mem::take(&mut shell.items);
    let self_ty = (*shell.self_ty).clone();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut body = Vec::new();
    let mut sets = Vec::new();
    for item in items {
        let ImplItem::Fn(method) = item else {
            body.push(item.into_token_stream());
            continue;
        };
        if method.attrs.iter().any(is_change_set) {
            sets.push(change_set(method, &mut ids, &mut errors));
        } else {
            body.push(method.into_token_stream());
        }
    }

    let registrations: Vec<TokenStream> = if errors.is_empty() {
        for set in &sets {
            body.push(set.step.generate_change_set(&krate));
        }
        sets.iter()
            .map(|set| set.registration(&krate, &self_ty))
            .collect()
    } else {
        for set in &sets {
            body.push(set.step.generate_rejected(&krate));
        }
        Vec::new()
    };
    let errors = errors.to_compile_errors();
    let body: TokenStream = body.into_iter().collect();
    let block = with_body(shell, body);
    quote! {
        #block
        #(#registrations)*
        #errors
    }
}

/// `shell`, an impl block emptied of its items, with `body` inside its braces (after its inner
/// attributes, which syn prints there).
fn with_body(shell: ItemImpl, body: TokenStream) -> TokenStream {
    let mut tokens: Vec<TokenTree> = shell.to_token_stream().into_iter().collect();
    if let Some(TokenTree::Group(braces)) = tokens.pop() {
        let mut inside = braces.stream();
        inside.extend(body);
        let mut group = Group::new(Delimiter::Brace, inside);
        group.set_span(braces.span());
        tokens.push(TokenTree::Group(group));
    }
    tokens.into_iter().collect()
}

/// Whether `attr` is `#[change_set(..)]`, however the path to it is written.
fn is_change_set(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "change_set")
}

/// Reads the change set of a method that has a `#[change_set]`.
fn change_set(
    mut method: ImplItemFn,
    ids: &mut HashMap<String, String>,
    errors: &mut Errors,
) -> ChangeSet {
    let mut markers: Vec<Attribute> = Vec::new();
    method.attrs.retain(|attr| {
        let marker = is_change_set(attr);
        if marker {
            markers.push(attr.clone());
        }
        !marker
    });
    let mut markers = markers.into_iter();
    let marker = markers
        .next()
        .expect("the caller checked for a `#[change_set]`");
    // Put back as a no-op, so that the user's import of `change_set` counts as used.
    let path = marker.path().clone();
    let mut noop = marker.clone();
    noop.meta = syn::parse_quote!(#path(__migrate_in_change_log));
    method.attrs.push(noop);
    for extra in markers {
        errors.error_spanned(
            extra,
            "a method can be only one change set: it already has a `#[change_set]`",
        );
    }

    let tokens = match &marker.meta {
        Meta::List(list) => list.tokens.clone(),
        Meta::Path(_) => TokenStream::new(),
        Meta::NameValue(name_value) => {
            errors.error_spanned(
                name_value,
                format!("`#[change_set]` takes a list of keys: write `{SET_SYNTAX}`"),
            );
            TokenStream::new()
        }
    };
    let args = attr::keyed_args("change_set", attr::CHANGE_SET_KEYS, tokens, errors);
    if let Some(message) = values::missing(&args, &["id", "author"], "change_set", SET_SYNTAX) {
        errors.error_spanned(&marker, message);
    }
    let id = values::not_empty(args.id.as_ref(), "id", SET_SYNTAX, errors);
    let author = values::not_empty(args.author.as_ref(), "author", SET_SYNTAX, errors);
    let name = method.sig.ident.unraw_name();
    if let Some(literal) = &args.id {
        if let Some(first) = ids.insert(id.clone(), name.clone()) {
            errors.error(
                literal.span(),
                format!(
                    "duplicate change-set id `{id}`: method `{first}` already uses it; ids are \
                     unique among the change sets of a change log"
                ),
            );
        }
    }
    ChangeSet {
        id,
        author,
        order: args.order.as_ref().map(|o| o.value()).unwrap_or_default(),
        system_version: values::system_version(args.system_version.as_ref(), errors),
        run_always: args.run_always.is_some_and(|b| b.value()),
        profiles: values::profiles(args.profiles.as_deref(), errors),
        step: step::model(Marker::ChangeSet, method, errors),
    }
}

impl ChangeSet {
    /// The change set's hidden type and its entry in the registry.
    fn registration(&self, krate: &Path, self_ty: &syn::Type) -> TokenStream {
        let private = quote!(#krate::__private);
        let ChangeSet {
            id,
            author,
            order,
            system_version,
            run_always,
            profiles,
            ..
        } = self;
        let step = change_set_const(self.step.ident());
        // A type that is not a change log is reported once, at the impl's type.
        let log = quote_spanned!(self_ty.span()=> #self_ty);
        quote! {
            const _: () = {
                struct __MigrateChangeSet;

                impl #private::ChangeSetDef for __MigrateChangeSet {
                    type Log = #log;
                    const ID: &'static str = #id;
                    const STEP: #private::StepDef<#self_ty, #private::Present> =
                        <#self_ty>::#step;
                    const FILE: &'static str = ::core::file!();
                }

                static __MIGRATE_TEXT: #private::TextParts =
                    #private::change_set_text::<__MigrateChangeSet>(#author, #system_version);

                static __MIGRATE_EXTRA: #private::UnitExtra =
                    #private::change_set_extra::<__MigrateChangeSet>(#order, &[#(#profiles),*]);

                #[#private::linkme::distributed_slice(#private::CHANGE_UNITS)]
                #[linkme(crate = #private::linkme)]
                static __MIGRATE_UNIT: #private::ChangeUnit =
                    #private::change_set::<__MigrateChangeSet>(#private::ChangeSetAttributes {
                        text: &__MIGRATE_TEXT,
                        extra: &__MIGRATE_EXTRA,
                        run_always: #run_always,
                        line: ::core::line!(),
                    });
            };
        }
    }
}

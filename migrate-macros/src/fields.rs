//! The fields of a `#[change_unit]` or `#[change_log]` struct: each resolved by type when the
//! runner builds the struct.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, Ident, Member, Type};

use crate::errors::Errors;
use crate::step::UnrawName;

/// One field, resolved by type when the struct is built.
pub(crate) struct FieldSite {
    member: Member,
    ty: Type,
    site: String,
}

/// The injection sites of a struct's fields. A field that borrows is an error: the runner
/// builds the struct from values it owns.
pub(crate) fn sites(fields: &Fields, kind: &str, errors: &mut Errors) -> Vec<FieldSite> {
    for field in fields {
        if let Type::Reference(reference) = &field.ty {
            errors.error_spanned(
                reference,
                format!(
                    "a {kind}'s field cannot be a reference: the runner builds the struct from \
                     values it owns; make it `Dep<T>` for a value registered with \
                     `Runner::dependency` (a method's parameter can be `&T`)"
                ),
            );
        }
    }
    match fields {
        Fields::Named(named) => named
            .named
            .iter()
            .filter_map(|field| field.ident.as_ref().map(|ident| (ident, field)))
            .map(|(ident, field)| FieldSite {
                member: Member::Named(ident.clone()),
                ty: field.ty.clone(),
                site: format!("field `{}`", ident.unraw_name()),
            })
            .collect(),
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .map(|(index, field)| FieldSite {
                member: Member::Unnamed(syn::Index {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    span: field.ty.span(),
                }),
                ty: field.ty.clone(),
                site: format!("field {index}"),
            })
            .collect(),
        Fields::Unit => Vec::new(),
    }
}

impl FieldSite {
    /// The site's checked descriptor. Listing requirements and resolving the value both start
    /// from this same call, so a type that cannot be injected is one error, at the field.
    fn site(&self, private: &TokenStream) -> TokenStream {
        let FieldSite { ty, site, .. } = self;
        quote_spanned!(ty.span()=> #private::site::<#ty, _>(#site))
    }

    /// What the field needs, as an expression.
    pub(crate) fn requirement(&self, private: &TokenStream) -> TokenStream {
        let site = self.site(private);
        quote_spanned!(self.ty.span()=> #site.requirement())
    }

    /// `member: value`, resolving the field from the dependency map `deps` for the unit
    /// `unit_id` (an expression), returning early on a missing dependency.
    pub(crate) fn initializer(
        &self,
        private: &TokenStream,
        deps: &Ident,
        unit_id: &TokenStream,
    ) -> TokenStream {
        let site = self.site(private);
        let member = &self.member;
        let value = quote_spanned!(self.ty.span()=> #site.resolve(#deps, #unit_id)?);
        quote!(#member: #value)
    }
}

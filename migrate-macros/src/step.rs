//! The method markers: `#[execution]`, `#[rollback_execution]`, `#[before_execution]` and
//! `#[rollback_before_execution]`.
//!
//! A marker sees only its method, so it leaves the user's method as it is and adds one hidden
//! associated const to the same impl, named after the step
//! (`__MIGRATE_ONLY_ONE_EXECUTION_PER_CHANGE_UNIT`, ...), which `#[change_unit]` reads. It
//! holds a `StepDef`: the method's name and checksum, its injection sites, and a step function
//! that resolves the parameters and calls the method. The step function hands the method's
//! own future to `step_future`, so a step adds no state machine of its own.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{
    braced, Attribute, Block, FnArg, FnModifiers, Ident, ImplItemFn, Item, Pat, Path, ReceiverKind,
    ReturnType, Safety, Signature, Stmt, Token, Type, Visibility,
};

use crate::checksum;
use crate::errors::Errors;
use crate::respan::respan;
use crate::rules::steps::Step;

// What a marker generates for its step.
impl Step {
    /// The associated const the marker generates and `#[change_unit]` reads.
    pub(crate) fn const_ident(self) -> Ident {
        format_ident!(
            "__MIGRATE_ONLY_ONE_{}_PER_CHANGE_UNIT",
            self.attribute().to_ascii_uppercase()
        )
    }
}

/// What marks a method: one step of a change unit, or a change set of a change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    Step(Step),
    ChangeSet,
    /// `#[change_unit]` on an `async fn`: the function is the unit's execution.
    Function,
}

impl Marker {
    /// The attribute, as users write it.
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Marker::Step(step) => step.attribute(),
            Marker::ChangeSet => "change_set",
            Marker::Function => "change_unit",
        }
    }

    /// What the attribute goes on, in the plural, for messages.
    fn items(self) -> &'static str {
        match self {
            Marker::Function => "functions",
            Marker::Step(_) | Marker::ChangeSet => "methods",
        }
    }
}

/// A marked method, validated.
pub(crate) struct StepMethod {
    kind: Marker,
    method: ImplItemFn,
    params: Vec<Param>,
    checksum: u64,
}

/// One injected parameter of a marked method.
pub(crate) struct Param {
    /// `&mut S` takes the store session; anything else is injected from the dependency map.
    pub(crate) session: bool,
    /// The type to resolve: `S` for a session, the parameter's type otherwise.
    pub(crate) ty: Type,
    /// Describes the parameter in runtime error messages.
    site: String,
}

/// Parses the method a marker is on, keeping its body as written rather than parsing it: the
/// marker reads only the signature, and parsing a body and printing it back cost more than
/// the rest of the expansion. The body's tokens come out exactly as they went in, so the
/// method's checksum is that of the parsed method. The body group is split off before syn
/// sees the tokens, so that its tokens are not buffered either.
pub(crate) fn parse_method(tokens: TokenStream) -> syn::Result<ImplItemFn> {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    let body = match trees.pop() {
        Some(TokenTree::Group(body)) if body.delimiter() == Delimiter::Brace => body,
        last => {
            // No body: syn reports what is missing where a parsed method would.
            trees.extend(last);
            return parse_method_with_body.parse2(trees.into_iter().collect());
        }
    };
    let head: TokenStream = trees.iter().cloned().collect();
    match parse_method_head.parse2(head) {
        Ok(mut method) => {
            method.block.brace_token = syn::token::Brace(body.delim_span());
            method.block.stmts = vec![Stmt::Item(Item::Verbatim(body.stream()))];
            Ok(method)
        }
        // Something between the signature and the body: syn's error for the whole method.
        Err(_) => {
            trees.push(TokenTree::Group(body));
            parse_method_with_body.parse2(trees.into_iter().collect())
        }
    }
}

/// Everything before the body: attributes, visibility, `default` and the signature, with an
/// empty block.
fn parse_method_head(input: ParseStream<'_>) -> syn::Result<ImplItemFn> {
    let attrs = input.call(Attribute::parse_outer)?;
    let vis: Visibility = input.parse()?;
    let mut modifiers = FnModifiers::default();
    modifiers.defaultness = input.parse::<Option<Token![default]>>()?;
    let sig: Signature = input.parse()?;
    Ok(ImplItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        block: Block {
            brace_token: Default::default(),
            stmts: Vec::new(),
        },
    })
}

/// A whole method whose last token is not its body, parsed for syn's error.
fn parse_method_with_body(input: ParseStream<'_>) -> syn::Result<ImplItemFn> {
    let mut method = parse_method_head(input)?;
    let body;
    method.block.brace_token = braced!(body in input);
    method.block.stmts = vec![Stmt::Item(Item::Verbatim(body.parse()?))];
    Ok(method)
}

/// Builds the model of a marked method, recording every mistake in `errors`.
pub(crate) fn model(kind: Marker, mut method: ImplItemFn, errors: &mut Errors) -> StepMethod {
    strip_other_markers(kind, &mut method, errors);
    check_signature(kind, &method.sig, errors);
    let params = params(kind, &method.sig, errors);
    let attribute = kind.attribute();
    let checksum = checksum::of_tokens(quote!(#attribute #method));
    StepMethod {
        kind,
        method,
        params,
        checksum,
    }
}

/// Removes other step markers from the method, each an error, so that the method comes out
/// of the expansion exactly once.
fn strip_other_markers(kind: Marker, method: &mut ImplItemFn, errors: &mut Errors) {
    method.attrs.retain(|attr| {
        let other = Step::ALL.into_iter().find(|other| {
            attr.path()
                .segments
                .last()
                .is_some_and(|segment| segment.ident == other.attribute())
        });
        let Some(other) = other else {
            return true;
        };
        errors.error_spanned(
            attr,
            format!(
                "a method can be only one step: it is already `#[{}]`, so it cannot also be \
                 `#[{}]`",
                kind.attribute(),
                other.attribute()
            ),
        );
        false
    });
}

/// Checks everything but the parameters: `async`, not generic, a return type, `&self`.
pub(crate) fn check_signature(kind: Marker, sig: &Signature, errors: &mut Errors) {
    let attribute = kind.attribute();
    let items = kind.items();
    let name = sig.ident.unraw_name();
    if sig.asyncness.is_none() {
        errors.error(
            sig.fn_token.span(),
            format!("`#[{attribute}]` {items} must be `async`: write `async fn {name}`"),
        );
    }
    if let Some(constness) = &sig.constness {
        errors.error(
            constness.span(),
            format!("`#[{attribute}]` {items} cannot be `const`"),
        );
    }
    if let Safety::Unsafe(token) = &sig.safety {
        errors.error(
            token.span(),
            format!("`#[{attribute}]` {items} cannot be `unsafe`"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.error_spanned(
            abi,
            format!("`#[{attribute}]` {items} cannot declare an ABI"),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.error_spanned(
            &sig.generics,
            format!(
                "`#[{attribute}]` {items} cannot be generic: each parameter is injected by its \
                 concrete type"
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.error_spanned(variadic, "change unit methods cannot be variadic");
    }
    if let ReturnType::Default = sig.output {
        errors.error(
            sig.paren_token.span.close(),
            format!(
                "`#[{attribute}]` {items} return `Result<(), E>`: add a return type such as \
                 `-> anyhow::Result<()>`"
            ),
        );
    }

    if kind == Marker::Function {
        if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
            errors.error_spanned(
                receiver,
                "a change unit written as a function takes no `self`: put the method in an \
                 impl of a `#[change_unit]` struct and mark it `#[execution]`, or remove `self`",
            );
        }
        return;
    }
    let help =
        format!("`#[{attribute}]` {items} take `&self`: write `async fn {name}(&self, ...)`");
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            let shared = matches!(receiver.kind, ReceiverKind::Reference(_, _, None))
                && receiver.mutability.is_none();
            if !shared {
                errors.error_spanned(receiver, &help);
            }
        }
        Some(first) => errors.error_spanned(first, &help),
        None => errors.error(sig.paren_token.span.join(), &help),
    }
}

/// The parameters after the receiver, each to be injected.
pub(crate) fn params(kind: Marker, sig: &Signature, errors: &mut Errors) -> Vec<Param> {
    let name = sig.ident.unraw_name();
    let mut params = Vec::new();
    let mut session_seen = false;
    // Parameters are numbered from 1, not counting `self`.
    let first = usize::from(!matches!(sig.inputs.first(), Some(FnArg::Receiver(_))));
    for (position, input) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(arg) = input else {
            if position > 0 {
                errors.error_spanned(input, "`self` can only be the first parameter");
            }
            continue;
        };
        let site = match &*arg.pat {
            Pat::Ident(pat) => format!("parameter `{}` of `{name}`", pat.ident.unraw_name()),
            _ => format!("parameter {} of `{name}`", position + first),
        };
        if contains_impl_trait(&arg.ty) {
            errors.error_spanned(
                &arg.ty,
                format!(
                    "`#[{}]` {} cannot be generic: name a concrete type instead of \
                     `impl Trait`",
                    kind.attribute(),
                    kind.items()
                ),
            );
            continue;
        }
        let param = match without_groups(&arg.ty) {
            Type::Reference(reference) if reference.mutability.is_some() => {
                if session_seen {
                    let what = if kind == Marker::Function {
                        "function"
                    } else {
                        "method"
                    };
                    errors.error_spanned(
                        arg,
                        format!(
                            "a change unit {what} takes at most one `&mut` parameter: the \
                             store's session, such as `&mut ClientSession`"
                        ),
                    );
                    continue;
                }
                session_seen = true;
                Param {
                    session: true,
                    ty: (*reference.elem).clone(),
                    site,
                }
            }
            ty => Param {
                session: false,
                ty: ty.clone(),
                site,
            },
        };
        params.push(param);
    }
    params
}

impl StepMethod {
    /// The method's name.
    pub(crate) fn ident(&self) -> &Ident {
        &self.method.sig.ident
    }

    /// The associated const the method's step is generated as.
    fn const_ident(&self) -> Ident {
        match self.kind {
            Marker::Step(step) => step.const_ident(),
            Marker::ChangeSet | Marker::Function => change_set_const(&self.method.sig.ident),
        }
    }

    /// The method plus its hidden step items, for a change unit's step marker.
    pub(crate) fn generate(&self, krate: &Path) -> TokenStream {
        let private = quote!(#krate::__private);
        // Errors about the unit as a whole point at the marker. Naming `unit_id::<Self>`
        // without calling it checks that the type is a change unit and generates no code.
        let marker = Span::call_site();
        let is_unit = quote_spanned! {marker=>
            let _ = #private::unit_id::<Self>;
        };
        // The check of the companion step is a closure that is never called: a step that
        // does nothing makes its checks in its const, where reading the companion's const
        // directly would be a cycle between the two consts.
        let companion = match self.kind {
            Marker::Step(Step::BeforeExecution) => {
                let other = Step::RollbackBeforeExecution.const_ident();
                Some(quote_spanned! {marker=>
                    let _ = || {
                        #[allow(unused_imports)]
                        use #private::StepFallback as _;
                        #private::require_rollback_before_execution(&Self::#other);
                    };
                })
            }
            Marker::Step(Step::RollbackBeforeExecution) => {
                let other = Step::BeforeExecution.const_ident();
                Some(quote_spanned! {marker=>
                    let _ = || {
                        #[allow(unused_imports)]
                        use #private::StepFallback as _;
                        #private::require_before_execution(&Self::#other);
                    };
                })
            }
            _ => None,
        };
        self.generate_with(&private, quote!(#is_unit #companion))
    }

    /// The method plus its hidden step item, for a change set of a change log.
    pub(crate) fn generate_change_set(&self, krate: &Path) -> TokenStream {
        let private = quote!(#krate::__private);
        self.generate_with(&private, TokenStream::new())
    }

    /// The method and its `StepDef` const; `checks` are statements that check the unit the
    /// method belongs to.
    fn generate_with(&self, private: &TokenStream, checks: TokenStream) -> TokenStream {
        let method = &self.method;
        let ident = &method.sig.ident;
        let name = ident.unraw_name();
        let step_const = self.const_ident();
        let checksum = proc_macro2::Literal::u64_suffixed(self.checksum);
        let takes_session = self.params.iter().any(|p| p.session);
        let does_nothing = is_empty_body(&method.block);
        // Locals are made here, with call-site hygiene, and interpolated: code spanned at a
        // user's type may sit in the user's `macro_rules!` context, where a local written
        // inline would not resolve.
        let cx = Ident::new("__migrate_cx", Span::call_site());
        // `located_at` keeps that hygiene but moves where rustc points: the receiver for
        // what the step captures, the return type for what the method returns.
        let receiver_span = match method.sig.inputs.first() {
            Some(FnArg::Receiver(receiver)) => receiver.self_token.span(),
            _ => ident.span(),
        };
        let this = Ident::new(
            "__migrate_self",
            Span::call_site().located_at(receiver_span),
        );
        let (cx_pattern, args) = bindings(&self.params, &cx);
        let resolutions = resolutions(&self.params, &args, &cx, private);
        let requirement_list = requirements(&self.params, private);
        let output_span = output_span(&method.sig);
        // Only the helper's path is moved: the arguments keep the spans they were bound with.
        let step_future = respan(quote!(#private::step_future), output_span);
        // The boxed future, spanned at the return type, is what rustc points at when the
        // method's result does not fit.
        let this_at_output =
            Ident::new("__migrate_self", Span::call_site().located_at(output_span));
        let call = quote_spanned! {output_span=>
            #step_future(::std::boxed::Box::pin(#this_at_output.#ident(#(#args),*)))
        };
        // A method with nothing to inject whose body is only `Ok(())` is never called: the
        // step succeeds at once. The const still names the method (so it is not dead code),
        // makes the checks, and checks the method's declared result as the call above would,
        // without building its future, which is what costs compile time.
        let (run, step_fn) = if does_nothing && self.params.is_empty() {
            let output = match &method.sig.output {
                ReturnType::Type(_, ty) => quote!(#ty),
                ReturnType::Default => quote!(()),
            };
            let step_output = respan(quote!(#private::step_output), output_span);
            let check = quote_spanned! {output_span=>
                #step_output(::core::marker::PhantomData::<#output>)
            };
            let run = quote! {{
                #checks
                let _ = Self::#ident;
                #check;
                #private::StepRun::Nothing
            }};
            (run, TokenStream::new())
        } else {
            // A fn item rather than a closure: its coercion to a fn pointer needs no
            // `FnOnce` shim. Named after the method, which is unique in the type, so that a
            // second marker for the step is reported once, at the const.
            let step_fn = format_ident!("__migrate_step_{}", name);
            let item = quote! {
                #[doc(hidden)]
                fn #step_fn<'a>(
                    #this: &'a Self,
                    #cx_pattern: #private::StepContext<'a>,
                ) -> #private::StepOutput<'a> {
                    #checks
                    #(#resolutions)*
                    #call
                }
            };
            (quote!(#private::StepRun::Method(Self::#step_fn)), item)
        };

        // One item only: a second marker for the same step is then one "duplicate
        // definitions" error, and a marker in a trait impl one "not a member of trait" error.
        quote! {
            #method

            #step_fn

            #[doc(hidden)]
            #[allow(non_upper_case_globals)]
            pub(crate) const #step_const: #private::StepDef<Self, #private::Present> =
                #private::StepDef {
                    method: ::core::option::Option::Some(#name),
                    checksum: #checksum,
                    takes_session: #takes_session,
                    does_nothing: #does_nothing,
                    requirements: &[#(#requirement_list),*],
                    run: #run,
                    presence: ::core::marker::PhantomData,
                };
        }
    }

    /// The method and a stand-in for its step, for when the marker reported errors: the
    /// unit still finds the step, so the user sees only the errors about the method.
    pub(crate) fn generate_rejected(&self, krate: &Path) -> TokenStream {
        let step_const = self.const_ident();
        let method = &self.method;
        let name = method.sig.ident.unraw_name();
        quote! {
            #[allow(dead_code)]
            #method

            #[doc(hidden)]
            #[allow(dead_code, non_upper_case_globals)]
            pub(crate) const #step_const: #krate::__private::StepDef<Self, #krate::__private::Present> =
                #krate::__private::StepDef::rejected(#name);
        }
    }
}

/// How a step function binds its context `cx` (mutable when a parameter takes the session,
/// unused when there are no parameters), and the locals its parameters are resolved into.
pub(crate) fn bindings(params: &[Param], cx: &Ident) -> (TokenStream, Vec<Ident>) {
    let pattern = if params.iter().any(|p| p.session) {
        quote!(mut #cx)
    } else if params.is_empty() {
        quote!(_)
    } else {
        quote!(#cx)
    };
    let args = (0..params.len())
        .map(|i| format_ident!("__migrate_arg{}", i))
        .collect();
    (pattern, args)
}

/// `let argN = ...;` for each parameter, resolved from the step context `cx`; a step whose
/// parameter cannot be resolved returns a failed step.
pub(crate) fn resolutions(
    params: &[Param],
    args: &[Ident],
    cx: &Ident,
    private: &TokenStream,
) -> Vec<TokenStream> {
    params
        .iter()
        .zip(args)
        .map(|(param, arg)| {
            let resolve = param.resolve(cx, private);
            quote! {
                let #arg = match #resolve {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(error) => return #private::step_failed(error),
                };
            }
        })
        .collect()
}

/// What each parameter needs, as expressions for a const list.
pub(crate) fn requirements(params: &[Param], private: &TokenStream) -> Vec<TokenStream> {
    params
        .iter()
        .map(|param| {
            let site = param.site(private);
            quote_spanned!(param.ty.span()=> #site.requirement())
        })
        .collect()
}

/// Where rustc points when the method's result does not fit: its return type.
pub(crate) fn output_span(sig: &Signature) -> Span {
    match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    }
}

/// The associated const a change set's step is generated as: named after its method, which
/// is unique in the type.
pub(crate) fn change_set_const(method: &Ident) -> Ident {
    format_ident!("__MIGRATE_CHANGE_SET_{}", method.unraw_name())
}

impl Param {
    /// Resolves the parameter from the step context `cx`: a `Result` of its value.
    pub(crate) fn resolve(&self, cx: &Ident, private: &TokenStream) -> TokenStream {
        let site = self.site(private);
        if self.session {
            quote_spanned!(self.ty.span()=> #site.take(&mut #cx))
        } else {
            quote_spanned!(self.ty.span()=> #site.resolve(#cx.deps(), #cx.unit_id()))
        }
    }

    /// Builds the site's checked descriptor. Listing requirements and resolving the value
    /// both start from this same call, so rustc reports a type that cannot be injected once,
    /// at the parameter's type.
    pub(crate) fn site(&self, private: &TokenStream) -> TokenStream {
        let Param { session, ty, site } = self;
        if *session {
            quote_spanned!(ty.span()=> #private::session_site::<#ty, _>(#site))
        } else {
            quote_spanned!(ty.span()=> #private::site::<#ty, _>(#site))
        }
    }
}

/// Whether a method body does nothing: empty, or only `Ok(())`. Reads the body's tokens, so
/// that a body [`parse_method`] kept as written reads like a parsed one; inner attributes
/// (which a parsed body keeps apart from its statements) are skipped.
fn is_empty_body(block: &syn::Block) -> bool {
    let tokens: Vec<TokenTree> = block
        .stmts
        .iter()
        .flat_map(|stmt| stmt.to_token_stream())
        .collect();
    let mut rest = tokens.as_slice();
    while let [TokenTree::Punct(pound), TokenTree::Punct(bang), TokenTree::Group(group), tail @ ..] =
        rest
    {
        if pound.as_char() != '#'
            || bang.as_char() != '!'
            || group.delimiter() != Delimiter::Bracket
        {
            break;
        }
        rest = tail;
    }
    match rest {
        [] => true,
        [TokenTree::Ident(ok), TokenTree::Group(args)] => {
            ok == "Ok" && args.delimiter() == Delimiter::Parenthesis && is_unit_argument(args)
        }
        _ => false,
    }
}

/// Whether the arguments of a call are one `()`, with or without a trailing comma.
fn is_unit_argument(args: &proc_macro2::Group) -> bool {
    let args: Vec<TokenTree> = args.stream().into_iter().collect();
    let unit = match args.as_slice() {
        [unit] => unit,
        [unit, TokenTree::Punct(comma)] if comma.as_char() == ',' => unit,
        _ => return false,
    };
    matches!(unit, TokenTree::Group(unit)
        if unit.delimiter() == Delimiter::Parenthesis && unit.stream().is_empty())
}

/// Looks through the invisible groups `macro_rules!` puts around `$ty:ty`.
fn without_groups(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => without_groups(&group.elem),
        other => other,
    }
}

/// Whether `impl Trait` appears anywhere in `ty` (which would make the method generic).
fn contains_impl_trait(ty: &Type) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => scan(group.stream()),
            TokenTree::Punct(_) | TokenTree::Literal(_) => false,
        })
    }
    scan(ty.to_token_stream())
}

/// An identifier's name without the `r#` of a raw identifier.
pub(crate) trait UnrawName {
    fn unraw_name(&self) -> String;
}

impl UnrawName for Ident {
    fn unraw_name(&self) -> String {
        let name = self.to_string();
        name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::ImplItemFn;

    use super::{is_empty_body, parse_method};
    use crate::checksum;

    /// Methods whose bodies exercise statements, items, macros, attributes and literals.
    fn methods() -> Vec<proc_macro2::TokenStream> {
        vec![
            quote! {
                /// Inserts one document.
                #[allow(unused)]
                async fn execute(&self, session: &mut ClientSession) -> mongodb::error::Result<()> {
                    #![allow(clippy::all)]
                    self.db
                        .collection::<Document>("c")
                        .insert_one(doc! { "unit": 5_i64, "name": r#"x"# })
                        .session(session)
                        .await?;
                    let f = |x: &'static str| -> usize { x.len() };
                    /// A nested item.
                    fn helper<T: Clone>(t: &T) -> T { t.clone() }
                    'outer: for i in 0..3 { if i == 1 { continue 'outer; } }
                    match f("a") { 0 => {}, n if n > 1 => (), _ => println!("{}", 1.5e3) };
                    let r#type = [1u8; 4];
                    Ok(())
                }
            },
            quote!(
                async fn rollback(&self) -> anyhow::Result<()> {
                    Ok(())
                }
            ),
            quote!(
                async fn rollback(&self) -> anyhow::Result<()> {
                    Ok(())
                }
            ),
            quote!(
                async fn rollback(&self) -> anyhow::Result<()> {
                    #![allow(unused)]
                    Ok(())
                }
            ),
            quote!(
                async fn rollback(&self) -> anyhow::Result<()> {
                    Ok(());
                }
            ),
            quote!(
                async fn rollback(&self) -> anyhow::Result<()> {
                    Ok((()))
                }
            ),
            quote!(
                async fn rollback(&self) -> anyhow::Result<()> {
                    Result::Ok(())
                }
            ),
            quote!(
                async fn rollback(&self) {}
            ),
        ]
    }

    #[test]
    fn a_method_kept_as_written_has_the_checksum_and_emptiness_of_the_parsed_method() {
        for tokens in methods() {
            let parsed: ImplItemFn = syn::parse2(tokens.clone()).unwrap();
            let kept = parse_method(tokens.clone()).unwrap();
            assert_eq!(
                checksum::of_tokens(quote!("execution" #kept)),
                checksum::of_tokens(quote!("execution" #parsed)),
                "{tokens}"
            );
            assert_eq!(
                is_empty_body(&kept.block),
                is_empty_body(&parsed.block),
                "{tokens}"
            );
        }
    }

    #[test]
    fn a_method_that_is_not_one_fails_as_syn_fails_it() {
        let broken = [
            quote!(
                async fn execute(&self) -> anyhow::Result<()>;
            ),
            quote!(async fn execute(&self) -> anyhow::Result<()> extra {}),
            quote!(async fn execute(&self) -> {}),
            quote!(async fn execute(&self, {}) {}),
        ];
        for tokens in broken {
            let kept = parse_method(tokens.clone()).unwrap_err();
            let parsed = syn::parse2::<ImplItemFn>(tokens.clone()).unwrap_err();
            assert_eq!(kept.to_string(), parsed.to_string(), "{tokens}");
        }
    }

    #[test]
    fn only_an_empty_body_or_a_lone_ok_unit_does_nothing() {
        let nothing: Vec<bool> = methods()
            .into_iter()
            .map(|tokens| is_empty_body(&parse_method(tokens).unwrap().block))
            .collect();
        assert_eq!(
            nothing,
            [false, true, true, true, false, false, false, true]
        );
    }
}

//! Moving generated tokens onto a span the user wrote, so that rustc's errors about them
//! point there instead of at the attribute.

use proc_macro2::{Group, Span, TokenStream, TokenTree};

/// Gives every token of `tokens` the span `span`, so that rustc points at `span` for the
/// whole expression rather than at the attribute the paths came from.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                tree = TokenTree::Group(respanned);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

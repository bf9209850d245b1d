//! The checksum of a unit's source: an FNV-1a hash of its tokens.
//!
//! Hashing tokens rather than text ignores whitespace and comments; doc attributes
//! (`///` and `//!` included) are skipped too, so documenting a unit that already ran does not
//! make its recorded checksum stale, and so is a comma that ends a delimited group, which
//! `rustfmt` adds or removes as it splits or joins lines.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};

use crate::rules::checksum::{extend, OFFSET_BASIS};

/// Hashes `tokens`, ignoring spacing, comments, doc attributes and trailing commas.
pub(crate) fn of_tokens(tokens: TokenStream) -> u64 {
    let mut hash = Fnv(OFFSET_BASIS);
    hash.stream(tokens);
    hash.0
}

struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        self.0 = extend(self.0, bytes);
    }

    /// Hashes `tokens`, leaving out a comma that ends them if `trailing_comma_optional`.
    fn stream(&mut self, tokens: TokenStream) {
        self.tokens(&tokens.into_iter().collect::<Vec<_>>(), false);
    }

    fn tokens(&mut self, tokens: &[TokenTree], trailing_comma_optional: bool) {
        let mut i = 0;
        while i < tokens.len() {
            if let Some(len) = doc_attribute_len(&tokens[i..]) {
                i += len;
                continue;
            }
            match &tokens[i] {
                TokenTree::Punct(p)
                    if p.as_char() == ',' && i + 1 == tokens.len() && trailing_comma_optional => {}
                TokenTree::Group(group) => self.group(group, &tokens[..i]),
                tree => self.leaf(tree),
            }
            i += 1;
        }
    }

    /// Hashes `group`, which follows `before` in its parent.
    fn group(&mut self, group: &Group, before: &[TokenTree]) {
        let (open, close) = match group.delimiter() {
            Delimiter::Parenthesis => ("(", ")"),
            Delimiter::Brace => ("{", "}"),
            Delimiter::Bracket => ("[", "]"),
            Delimiter::None => ("", ""),
        };
        let tokens: Vec<TokenTree> = group.stream().into_iter().collect();
        let optional = trailing_comma_is_optional(group.delimiter(), &tokens, before);
        self.bytes(open.as_bytes());
        self.tokens(&tokens, optional);
        self.bytes(close.as_bytes());
    }

    fn leaf(&mut self, tree: &TokenTree) {
        match tree {
            TokenTree::Group(group) => self.group(group, &[]),
            TokenTree::Punct(punct) => {
                let mut buf = [0; 4];
                self.bytes(punct.as_char().encode_utf8(&mut buf).as_bytes());
            }
            // Identifiers and literals are separated so that `a b` and `ab` differ.
            TokenTree::Ident(ident) => {
                self.bytes(ident.to_string().as_bytes());
                self.bytes(b" ");
            }
            TokenTree::Literal(literal) => {
                self.bytes(literal.to_string().as_bytes());
                self.bytes(b" ");
            }
        }
    }
}

/// Keywords after which parentheses are a tuple or a parenthesized expression, pattern or
/// type, not a call's arguments.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "dyn", "else", "for", "if", "impl", "in",
    "let", "loop", "match", "move", "mut", "ref", "return", "static", "type", "unsafe", "where",
    "while", "yield",
];

/// Whether a comma that ends a group delimited by `delimiter`, holding `tokens` and following
/// `before`, can go without changing what the code means. It can in braces and brackets. In
/// parentheses it can when they hold several elements, or when they are the arguments or
/// parameters of a call, a function, a macro or a tuple struct; a comma that ends a
/// one-element tuple is what makes it a tuple.
fn trailing_comma_is_optional(
    delimiter: Delimiter,
    tokens: &[TokenTree],
    before: &[TokenTree],
) -> bool {
    let is_comma = |t: &TokenTree| matches!(t, TokenTree::Punct(p) if p.as_char() == ',');
    match delimiter {
        Delimiter::Brace | Delimiter::Bracket => true,
        Delimiter::None => false,
        Delimiter::Parenthesis => {
            let several = tokens.len() > 1 && tokens[..tokens.len() - 1].iter().any(is_comma);
            let call = match before {
                [.., TokenTree::Ident(ident)] => !KEYWORDS.iter().any(|keyword| ident == keyword),
                // `f::<T>(..)`, but not the tuple after `->` or `=>`.
                [.., arrow, TokenTree::Punct(p)] if p.as_char() == '>' => !matches!(
                    arrow,
                    TokenTree::Punct(a) if a.as_char() == '-' || a.as_char() == '='
                ),
                [TokenTree::Punct(p)] if p.as_char() == '>' => true,
                [.., TokenTree::Punct(p)] => p.as_char() == '!',
                [.., TokenTree::Group(g)] => g.delimiter() != Delimiter::Brace,
                [.., TokenTree::Literal(_)] | [] => false,
            };
            several || call
        }
    }
}

/// The number of tokens of a `#[doc ...]` or `#![doc ...]` attribute at the start of
/// `tokens`, if there is one.
fn doc_attribute_len(tokens: &[TokenTree]) -> Option<usize> {
    let TokenTree::Punct(pound) = tokens.first()? else {
        return None;
    };
    if pound.as_char() != '#' {
        return None;
    }
    let bang = matches!(tokens.get(1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
    let group_at = if bang { 2 } else { 1 };
    let TokenTree::Group(group) = tokens.get(group_at)? else {
        return None;
    };
    if group.delimiter() != Delimiter::Bracket {
        return None;
    }
    match group.stream().into_iter().next() {
        Some(TokenTree::Ident(ident)) if ident == "doc" => Some(group_at + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::of_tokens;
    use quote::quote;

    #[test]
    fn whitespace_and_docs_do_not_change_the_checksum() {
        let plain = of_tokens(quote! { async fn execute(&self) -> Result<(), E> { run(1).await } });
        let documented = of_tokens(
            "/// Runs it.\n#[doc = \"more\"]\nasync  fn execute( &self )->Result<(),E>{ /* c */ run(1).await }"
                .parse()
                .unwrap(),
        );
        assert_eq!(plain, documented);
    }

    #[test]
    fn trailing_commas_do_not_change_the_checksum() {
        let joined = of_tokens(quote! {
            struct S { db: Database }
            fn f() { run(a, b); let v = [1, 2]; }
        });
        let split = of_tokens(quote! {
            struct S { db: Database, }
            fn f() { run(a, b,); let v = [1, 2,]; }
        });
        assert_eq!(joined, split);
        let call = of_tokens(quote! { fn f(a: A) -> R { g(a); S::<T>(a); m!(a); h(a)(b) } });
        let split_call =
            of_tokens(quote! { fn f(a: A,) -> R { g(a,); S::<T>(a,); m!(a,); h(a,)(b,) } });
        assert_eq!(call, split_call);
    }

    #[test]
    fn the_comma_of_a_one_element_tuple_counts() {
        for (tuple, parenthesized) in [
            (quote! { let t = (1,); }, quote! { let t = (1); }),
            (quote! { fn f() -> (A,) {} }, quote! { fn f() -> (A) {} }),
            (
                quote! { match x { _ => (1,) } },
                quote! { match x { _ => (1) } },
            ),
            (quote! { return (1,); }, quote! { return (1); }),
            (quote! { for (a,) in v {} }, quote! { for (a) in v {} }),
        ] {
            assert_ne!(of_tokens(tuple), of_tokens(parenthesized));
        }
    }

    #[test]
    fn a_changed_body_changes_the_checksum() {
        let before = of_tokens(quote! { fn f() { run(1) } });
        let after = of_tokens(quote! { fn f() { run(2) } });
        assert_ne!(before, after);
    }

    #[test]
    fn other_attributes_count() {
        let plain = of_tokens(quote! { fn f() {} });
        let attributed = of_tokens(quote! { #[allow(unused)] fn f() {} });
        assert_ne!(plain, attributed);
    }
}

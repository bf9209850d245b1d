//! The checksum of a unit's source: an FNV-1a hash of its tokens.
//!
//! Hashing tokens rather than text ignores whitespace and comments; doc attributes
//! (`///` and `//!` included) are skipped too, so documenting a unit that already ran does not
//! make its recorded checksum stale.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

use crate::rules::checksum::{extend, OFFSET_BASIS};

/// Hashes `tokens`, ignoring spacing, comments and doc attributes.
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

    fn stream(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            if let Some(len) = doc_attribute_len(&tokens[i..]) {
                i += len;
                continue;
            }
            self.tree(&tokens[i]);
            i += 1;
        }
    }

    fn tree(&mut self, tree: &TokenTree) {
        match tree {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                self.bytes(open.as_bytes());
                self.stream(group.stream());
                self.bytes(close.as_bytes());
            }
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

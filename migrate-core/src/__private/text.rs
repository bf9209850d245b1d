//! The strings every start reads of a unit, kept in its descriptor or packed for one
//! relocation.

use std::ops::Range;

/// A unit's id, order, author and system version: what planning reads of every unit.
///
/// Every pointer in a registered `static` is a relocation the loader applies at start-up, and
/// every string it points to is read from a page of `.rodata` that a start would otherwise not
/// touch. `#[change_unit]` writes the four into the descriptor itself when they fit
/// ([`UnitText::inline`]), and as one string otherwise ([`UnitText::packed`]).
#[derive(Clone, Copy)]
pub enum UnitText {
    /// The four, one after the other, in the descriptor.
    Inline(InlineText),
    /// One string, each part ending where `ends` says; the system version is the rest.
    Packed {
        all: &'static str,
        ends: [u32; 3],
        has_author: bool,
    },
    /// Each string on its own, for descriptors assembled from other constants.
    Parts(&'static TextParts),
}

/// The bytes a [`UnitText::Inline`] holds: as many as keep a [`UnitText`] as small as a
/// [`UnitText::Packed`] alone would be, so that inline text does not grow the descriptor.
pub const INLINE_CAPACITY: usize = 26;

/// The text of a [`UnitText::Inline`]: valid UTF-8, split at character boundaries, both
/// checked by [`UnitText::inline`], its only constructor.
#[derive(Clone, Copy)]
pub struct InlineText {
    bytes: [u8; INLINE_CAPACITY],
    len: u8,
    ends: [u8; 3],
    has_author: bool,
}

/// The strings of a [`UnitText::Parts`].
pub struct TextParts {
    pub id: &'static str,
    pub order: &'static str,
    pub author: Option<&'static str>,
    pub system_version: &'static str,
}

/// Where each part sits in a [`UnitText`].
const ID: usize = 0;
const ORDER: usize = 1;
const AUTHOR: usize = 2;
const SYSTEM_VERSION: usize = 3;

impl UnitText {
    /// The first `len` bytes of `bytes` are the id, order, author (empty when `has_author` is
    /// false) and system version, one after the other; `lengths` are the byte lengths of the
    /// first three. Fails to evaluate unless they are UTF-8 split at character boundaries.
    pub const fn inline(
        bytes: [u8; INLINE_CAPACITY],
        len: usize,
        lengths: [usize; 3],
        has_author: bool,
    ) -> Self {
        assert!(len <= INLINE_CAPACITY);
        let Ok(text) = core::str::from_utf8(bytes.split_at(len).0) else {
            panic!("inline unit text is not UTF-8");
        };
        let mut ends = [0; 3];
        let mut end = 0;
        let mut part = 0;
        while part < 3 {
            end += lengths[part];
            assert!(end <= len && text.is_char_boundary(end));
            ends[part] = end as u8;
            part += 1;
        }
        UnitText::Inline(InlineText {
            bytes,
            len: len as u8,
            ends,
            has_author,
        })
    }

    /// `all` is the id, order, author (empty when `has_author` is false) and system version,
    /// one after the other; `lengths` are the byte lengths of the first three.
    pub const fn packed(all: &'static str, lengths: [usize; 3], has_author: bool) -> Self {
        let mut ends = [0; 3];
        let mut end = 0;
        let mut part = 0;
        while part < 3 {
            end += lengths[part];
            assert!(end <= all.len() && end <= u32::MAX as usize);
            ends[part] = end as u32;
            part += 1;
        }
        UnitText::Packed {
            all,
            ends,
            has_author,
        }
    }

    /// Where part `part` sits in a text of `len` bytes whose first three parts end at `ends`;
    /// the last part, the system version, runs to the end.
    fn span(ends: [u32; 3], len: usize, part: usize) -> Range<usize> {
        let start = match part {
            0 => 0,
            _ => ends[part - 1] as usize,
        };
        let end = ends.get(part).map_or(len, |&end| end as usize);
        start..end
    }

    /// The bytes of part `part`, read without a UTF-8 check.
    fn part_bytes(&self, part: usize) -> &[u8] {
        match *self {
            UnitText::Inline(ref text) => {
                &text.bytes[Self::span(text.ends.map(u32::from), text.len as usize, part)]
            }
            _ => self.part(part).as_bytes(),
        }
    }

    /// Part `part` as a string.
    fn part(&self, part: usize) -> &str {
        match *self {
            UnitText::Inline(_) => core::str::from_utf8(self.part_bytes(part))
                .expect("`UnitText::inline` checks that every part is UTF-8"),
            UnitText::Packed { all, ends, .. } => &all[Self::span(ends, all.len(), part)],
            UnitText::Parts(parts) => match part {
                ID => parts.id,
                ORDER => parts.order,
                AUTHOR => parts.author.unwrap_or_default(),
                _ => parts.system_version,
            },
        }
    }

    pub(crate) fn id(&self) -> &str {
        self.part(ID)
    }

    pub(crate) fn order(&self) -> &str {
        self.part(ORDER)
    }

    /// The id's bytes, which compare as the id does, read without a UTF-8 check.
    pub(crate) fn id_bytes(&self) -> &[u8] {
        self.part_bytes(ID)
    }

    /// The order's bytes, which compare as the order does, read without a UTF-8 check.
    pub(crate) fn order_bytes(&self) -> &[u8] {
        self.part_bytes(ORDER)
    }

    pub(crate) fn author(&self) -> Option<&str> {
        self.has_author().then(|| self.part(AUTHOR))
    }

    /// The author's bytes, read without a UTF-8 check.
    pub(crate) fn author_bytes(&self) -> Option<&[u8]> {
        self.has_author().then(|| self.part_bytes(AUTHOR))
    }

    fn has_author(&self) -> bool {
        match *self {
            UnitText::Inline(ref text) => text.has_author,
            UnitText::Packed { has_author, .. } => has_author,
            UnitText::Parts(parts) => parts.author.is_some(),
        }
    }

    pub(crate) fn system_version(&self) -> &str {
        self.part(SYSTEM_VERSION)
    }

    /// The system version's bytes, read without a UTF-8 check.
    pub(crate) fn system_version_bytes(&self) -> &[u8] {
        self.part_bytes(SYSTEM_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &UnitText) -> [Option<&str>; 4] {
        [
            Some(text.id()),
            Some(text.order()),
            text.author(),
            Some(text.system_version()),
        ]
    }

    /// `text` padded to an inline text's bytes.
    fn padded(text: &str) -> [u8; INLINE_CAPACITY] {
        let mut bytes = [0; INLINE_CAPACITY];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        bytes
    }

    #[test]
    fn packed_text_splits_where_the_lengths_say() {
        let text = UnitText::packed("idé001team1.2", ["idé".len(), 3, 4], true);
        assert_eq!(
            parts(&text),
            [Some("idé"), Some("001"), Some("team"), Some("1.2")]
        );
        let anonymous = UnitText::packed("a10", [1, 1, 0], false);
        assert_eq!(anonymous.author(), None);
        assert_eq!(anonymous.system_version(), "0");
    }

    #[test]
    fn separate_parts_read_as_packed_ones() {
        static PARTS: TextParts = TextParts {
            id: "idé",
            order: "001",
            author: Some("team"),
            system_version: "1.2",
        };
        let packed = UnitText::packed("idé001team1.2", ["idé".len(), 3, 4], true);
        assert_eq!(parts(&UnitText::Parts(&PARTS)), parts(&packed));
        assert_eq!(UnitText::Parts(&PARTS).order_bytes(), packed.order_bytes());
    }

    #[test]
    fn inline_text_reads_as_packed_text() {
        for (all, lengths, has_author) in [
            ("idé001team1.2", ["idé".len(), 3, 4], true),
            ("a10", [1, 1, 0], false),
            ("", [0, 0, 0], false),
            // Exactly the capacity.
            ("id-of-sixteen-ch001team1.2", [16, 3, 4], true),
        ] {
            let inline = UnitText::inline(padded(all), all.len(), lengths, has_author);
            let packed = UnitText::packed(all, lengths, has_author);
            assert!(matches!(inline, UnitText::Inline(_)));
            assert_eq!(parts(&inline), parts(&packed), "{all}");
            assert_eq!(inline.id_bytes(), packed.id_bytes());
            assert_eq!(inline.order_bytes(), packed.order_bytes());
            assert_eq!(inline.author_bytes(), packed.author_bytes());
            assert_eq!(
                inline.author_bytes(),
                inline.author().map(str::as_bytes),
                "{all}"
            );
        }
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn inline_text_takes_no_more_room_than_packed_text() {
        // A `&str`, three ends and a flag, whose spare values tell the variants apart.
        assert_eq!(size_of::<UnitText>(), 32);
        assert_eq!(size_of::<crate::ChangeUnit>(), 72);
    }

    #[test]
    #[should_panic]
    fn inline_text_cannot_split_a_character() {
        UnitText::inline(padded("é01"), 4, [1, 2, 0], false);
    }

    #[test]
    #[should_panic]
    fn inline_text_must_be_utf8() {
        let mut bytes = padded("a01");
        bytes[0] = 0xff;
        UnitText::inline(bytes, 3, [1, 1, 0], false);
    }

    #[test]
    #[should_panic]
    fn inline_text_cannot_end_past_its_length() {
        UnitText::inline(padded("a01"), 3, [1, 1, 2], false);
    }
}

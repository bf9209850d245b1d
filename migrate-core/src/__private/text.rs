//! The strings every start reads of a unit, packed for one relocation.

/// A unit's id, order, author and system version: what planning reads of every unit.
///
/// Every pointer in a registered `static` is a relocation the loader applies at start-up, so
/// `#[change_unit]` writes the four as one string ([`UnitText::packed`]).
#[derive(Clone, Copy)]
pub enum UnitText {
    /// One string, each part ending where `ends` says; the system version is the rest.
    Packed {
        all: &'static str,
        ends: [u32; 3],
        has_author: bool,
    },
    /// Each string on its own, for descriptors assembled from other constants.
    Parts(&'static TextParts),
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

impl UnitText {
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

    /// Part `part` of a packed text; the last part, the system version, runs to the end.
    fn packed_part(all: &'static str, ends: [u32; 3], part: usize) -> &'static str {
        let start = match part {
            0 => 0,
            _ => ends[part - 1] as usize,
        };
        let end = ends.get(part).map_or(all.len(), |&end| end as usize);
        &all[start..end]
    }

    pub(crate) fn id(self) -> &'static str {
        match self {
            UnitText::Packed { all, ends, .. } => Self::packed_part(all, ends, ID),
            UnitText::Parts(parts) => parts.id,
        }
    }

    pub(crate) fn order(self) -> &'static str {
        match self {
            UnitText::Packed { all, ends, .. } => Self::packed_part(all, ends, ORDER),
            UnitText::Parts(parts) => parts.order,
        }
    }

    pub(crate) fn author(self) -> Option<&'static str> {
        match self {
            UnitText::Packed {
                all,
                ends,
                has_author,
            } => has_author.then(|| Self::packed_part(all, ends, AUTHOR)),
            UnitText::Parts(parts) => parts.author,
        }
    }

    pub(crate) fn system_version(self) -> &'static str {
        match self {
            UnitText::Packed { all, ends, .. } => Self::packed_part(all, ends, ends.len()),
            UnitText::Parts(parts) => parts.system_version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: UnitText) -> [Option<&'static str>; 4] {
        [
            Some(text.id()),
            Some(text.order()),
            text.author(),
            Some(text.system_version()),
        ]
    }

    #[test]
    fn packed_text_splits_where_the_lengths_say() {
        let text = UnitText::packed("idé001team1.2", ["idé".len(), 3, 4], true);
        assert_eq!(
            parts(text),
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
        assert_eq!(parts(UnitText::Parts(&PARTS)), parts(packed));
    }
}

//! A unit's strings, packed for few relocations.

/// A unit's strings: its id, order, author, system version, type path and source file.
///
/// Every pointer in a registered `static` is a relocation the loader applies at start-up, so
/// `#[change_unit]` writes the six as one string ([`UnitText::packed`]).
#[derive(Clone, Copy)]
pub enum UnitText {
    /// One string, each part ending where `ends` says; the file is the rest.
    Packed {
        all: &'static str,
        ends: [u32; 5],
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
    pub type_path: &'static str,
    pub file: &'static str,
}

/// Where each part sits in a [`UnitText`].
const ID: usize = 0;
const ORDER: usize = 1;
const AUTHOR: usize = 2;
const SYSTEM_VERSION: usize = 3;
const TYPE_PATH: usize = 4;
const FILE: usize = 5;

impl UnitText {
    /// `all` is the id, order, author (empty when `has_author` is false), system version,
    /// type path and file, one after the other; `lengths` are the byte lengths of the first
    /// five.
    pub const fn packed(all: &'static str, lengths: [usize; 5], has_author: bool) -> Self {
        let mut ends = [0; 5];
        let mut end = 0;
        let mut part = 0;
        while part < 5 {
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

    fn get(self, part: usize) -> &'static str {
        match self {
            UnitText::Packed { all, ends, .. } => {
                let start = match part {
                    0 => 0,
                    _ => ends[part - 1] as usize,
                };
                let end = ends.get(part).map_or(all.len(), |&end| end as usize);
                &all[start..end]
            }
            UnitText::Parts(parts) => match part {
                ID => parts.id,
                ORDER => parts.order,
                AUTHOR => parts.author.unwrap_or_default(),
                SYSTEM_VERSION => parts.system_version,
                TYPE_PATH => parts.type_path,
                _ => parts.file,
            },
        }
    }

    pub(crate) fn id(self) -> &'static str {
        self.get(ID)
    }

    pub(crate) fn order(self) -> &'static str {
        self.get(ORDER)
    }

    pub(crate) fn author(self) -> Option<&'static str> {
        match self {
            UnitText::Packed { has_author, .. } => has_author.then(|| self.get(AUTHOR)),
            UnitText::Parts(parts) => parts.author,
        }
    }

    pub(crate) fn system_version(self) -> &'static str {
        self.get(SYSTEM_VERSION)
    }

    pub(crate) fn type_path(self) -> &'static str {
        self.get(TYPE_PATH)
    }

    pub(crate) fn file(self) -> &'static str {
        self.get(FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: UnitText) -> [Option<&'static str>; 6] {
        [
            Some(text.id()),
            Some(text.order()),
            text.author(),
            Some(text.system_version()),
            Some(text.type_path()),
            Some(text.file()),
        ]
    }

    #[test]
    fn packed_text_splits_where_the_lengths_say() {
        let text = UnitText::packed(
            "idé001team1.2app::Unitsrc/units.rs",
            ["idé".len(), 3, 4, 3, 9],
            true,
        );
        assert_eq!(
            parts(text),
            [
                Some("idé"),
                Some("001"),
                Some("team"),
                Some("1.2"),
                Some("app::Unit"),
                Some("src/units.rs"),
            ]
        );
        let anonymous = UnitText::packed("a10m::As.rs", [1, 1, 0, 1, 4], false);
        assert_eq!(anonymous.author(), None);
        assert_eq!(anonymous.system_version(), "0");
        assert_eq!(anonymous.file(), "s.rs");
    }

    #[test]
    fn separate_parts_read_as_packed_ones() {
        static PARTS: TextParts = TextParts {
            id: "idé",
            order: "001",
            author: Some("team"),
            system_version: "1.2",
            type_path: "app::Unit",
            file: "src/units.rs",
        };
        let packed = UnitText::packed(
            "idé001team1.2app::Unitsrc/units.rs",
            ["idé".len(), 3, 4, 3, 9],
            true,
        );
        assert_eq!(parts(UnitText::Parts(&PARTS)), parts(packed));
    }
}

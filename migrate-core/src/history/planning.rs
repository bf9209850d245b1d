//! The history as planning reads it: every entry's fields that decide what runs, with their
//! text kept in one buffer instead of one allocation per string.

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use super::{EntryType, HistoryEntry, Recorded, State};

/// What planning a run reads of one history entry: every field of a [`HistoryEntry`] that
/// decides what runs, borrowed from a [`PlanningHistory`] (or from whatever a store decodes
/// it from). See [`Store::read_history_for_planning`](crate::Store::read_history_for_planning).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanningEntry<'h> {
    /// The unit id, or `<id>_before` for a before-step.
    pub change_id: &'h str,
    /// The unit author.
    pub author: &'h str,
    /// When the step ended.
    pub timestamp: SystemTime,
    /// The outcome.
    pub state: State,
    /// Which method ran.
    pub entry_type: EntryType,
    /// The unit's type path (`changeLogClass`).
    pub change_log_class: &'h str,
    /// Whether the unit is a system change.
    pub system_change: bool,
    /// Checksum of the unit's source, if recorded.
    pub checksum: Option<&'h str>,
}

impl<'h, M> From<&'h HistoryEntry<M>> for PlanningEntry<'h> {
    fn from(entry: &'h HistoryEntry<M>) -> Self {
        PlanningEntry {
            change_id: &entry.change_id,
            author: &entry.author,
            timestamp: entry.timestamp,
            state: entry.state,
            entry_type: entry.entry_type,
            change_log_class: &entry.change_log_class,
            system_change: entry.system_change,
            checksum: entry.checksum.as_deref(),
        }
    }
}

/// Every entry of a history as planning reads it, in the order they were pushed.
///
/// The entries' strings share one buffer, and an author or type path equal to the previous
/// entry's is stored once, so reading a long history costs a few allocations in all rather
/// than a few per entry.
///
/// ```
/// use std::time::SystemTime;
/// use migrate_core::{EntryType, PlanningEntry, PlanningHistory, State};
///
/// let mut history = PlanningHistory::new();
/// history.push(PlanningEntry {
///     change_id: "create-indexes",
///     author: "platform",
///     timestamp: SystemTime::UNIX_EPOCH,
///     state: State::Executed,
///     entry_type: EntryType::Execution,
///     change_log_class: "billing::CreateIndexes",
///     system_change: false,
///     checksum: None,
/// });
/// assert_eq!(history.len(), 1);
/// assert_eq!(history.iter().next().unwrap().author, "platform");
/// ```
#[derive(Clone, Default)]
pub struct PlanningHistory {
    text: String,
    rows: Vec<Row>,
}

/// One entry, its strings as ranges of [`PlanningHistory::text`].
#[derive(Clone)]
struct Row {
    change_id: Span,
    author: Span,
    change_log_class: Span,
    checksum: Option<Span>,
    timestamp: SystemTime,
    state: State,
    entry_type: EntryType,
    system_change: bool,
}

#[derive(Clone, Copy, PartialEq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

impl PlanningHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty history with room for `entries` entries whose strings take `text_bytes`
    /// bytes in all.
    pub fn with_capacity(entries: usize, text_bytes: usize) -> Self {
        PlanningHistory {
            text: String::with_capacity(text_bytes),
            rows: Vec::with_capacity(entries),
        }
    }

    /// Appends `entry`, copying its strings.
    pub fn push(&mut self, entry: PlanningEntry<'_>) {
        let previous = self.rows.last();
        let author = previous
            .map(|row| row.author)
            .filter(|&span| &self.text[span.range()] == entry.author);
        let change_log_class = previous
            .map(|row| row.change_log_class)
            .filter(|&span| &self.text[span.range()] == entry.change_log_class);
        let row = Row {
            change_id: self.store(entry.change_id),
            author: author.unwrap_or_else(|| self.store(entry.author)),
            change_log_class: change_log_class
                .unwrap_or_else(|| self.store(entry.change_log_class)),
            checksum: entry.checksum.map(|checksum| self.store(checksum)),
            timestamp: entry.timestamp,
            state: entry.state,
            entry_type: entry.entry_type,
            system_change: entry.system_change,
        };
        self.rows.push(row);
    }

    fn store(&mut self, text: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(text);
        Span {
            start,
            end: self.text.len(),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the history has no entries.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The `index`th entry pushed, if there is one.
    pub fn get(&self, index: usize) -> Option<PlanningEntry<'_>> {
        self.rows.get(index).map(|row| self.entry(row))
    }

    /// The entries, in the order they were pushed.
    pub fn iter(&self) -> PlanningEntries<'_> {
        PlanningEntries {
            history: self,
            rows: self.rows.iter(),
        }
    }

    /// The entries as planning's passes read them: each string is sliced from the buffer
    /// only when a pass asks for it.
    pub(crate) fn rows(&self) -> impl ExactSizeIterator<Item = PlanningRow<'_>> + '_ {
        self.rows.iter().map(|row| self.row(row))
    }

    fn row<'h>(&'h self, row: &'h Row) -> PlanningRow<'h> {
        PlanningRow {
            text: &self.text,
            row,
        }
    }

    fn entry<'h>(&'h self, row: &'h Row) -> PlanningEntry<'h> {
        self.row(row).entry()
    }
}

/// One entry of a [`PlanningHistory`], read field by field (see [`PlanningHistory::rows`]).
#[derive(Clone, Copy)]
pub(crate) struct PlanningRow<'h> {
    text: &'h str,
    row: &'h Row,
}

impl<'h> PlanningRow<'h> {
    #[inline]
    fn text(self, span: Span) -> &'h str {
        &self.text[span.range()]
    }

    /// Every field at once.
    fn entry(self) -> PlanningEntry<'h> {
        PlanningEntry {
            change_id: self.change_id(),
            author: self.author(),
            timestamp: self.row.timestamp,
            state: self.row.state,
            entry_type: self.row.entry_type,
            change_log_class: self.change_log_class(),
            system_change: self.row.system_change,
            checksum: self.checksum(),
        }
    }
}

impl<'h> Recorded<'h> for PlanningRow<'h> {
    #[inline]
    fn change_id(self) -> &'h str {
        self.text(self.row.change_id)
    }
    #[inline]
    fn author(self) -> &'h str {
        self.text(self.row.author)
    }
    #[inline]
    fn timestamp(self) -> SystemTime {
        self.row.timestamp
    }
    #[inline]
    fn state(self) -> State {
        self.row.state
    }
    #[inline]
    fn entry_type(self) -> EntryType {
        self.row.entry_type
    }
    #[inline]
    fn change_log_class(self) -> &'h str {
        self.text(self.row.change_log_class)
    }
    #[inline]
    fn system_change(self) -> bool {
        self.row.system_change
    }
    #[inline]
    fn checksum(self) -> Option<&'h str> {
        self.row.checksum.map(|span| self.text(span))
    }
}

impl fmt::Debug for PlanningHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for PlanningHistory {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'e> Extend<PlanningEntry<'e>> for PlanningHistory {
    fn extend<I: IntoIterator<Item = PlanningEntry<'e>>>(&mut self, entries: I) {
        for entry in entries {
            self.push(entry);
        }
    }
}

impl<'e> FromIterator<PlanningEntry<'e>> for PlanningHistory {
    fn from_iter<I: IntoIterator<Item = PlanningEntry<'e>>>(entries: I) -> Self {
        let mut history = PlanningHistory::new();
        history.extend(entries);
        history
    }
}

impl<M> From<&[HistoryEntry<M>]> for PlanningHistory {
    fn from(entries: &[HistoryEntry<M>]) -> Self {
        let text = entries
            .iter()
            .map(|e| {
                e.change_id.len()
                    + e.author.len()
                    + e.change_log_class.len()
                    + e.checksum.as_ref().map_or(0, String::len)
            })
            .sum();
        let mut history = PlanningHistory::with_capacity(entries.len(), text);
        history.extend(entries.iter().map(PlanningEntry::from));
        history
    }
}

impl<'h> IntoIterator for &'h PlanningHistory {
    type Item = PlanningEntry<'h>;
    type IntoIter = PlanningEntries<'h>;

    fn into_iter(self) -> PlanningEntries<'h> {
        self.iter()
    }
}

/// The entries of a [`PlanningHistory`], from [`PlanningHistory::iter`].
#[derive(Clone)]
pub struct PlanningEntries<'h> {
    history: &'h PlanningHistory,
    rows: std::slice::Iter<'h, Row>,
}

impl<'h> Iterator for PlanningEntries<'h> {
    type Item = PlanningEntry<'h>;

    fn next(&mut self) -> Option<PlanningEntry<'h>> {
        self.rows.next().map(|row| self.history.entry(row))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl ExactSizeIterator for PlanningEntries<'_> {}

impl fmt::Debug for PlanningEntries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanningEntries")
            .field("remaining", &self.rows.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry<'a>(id: &'a str, author: &'a str, class: &'a str) -> PlanningEntry<'a> {
        PlanningEntry {
            change_id: id,
            author,
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(id.len() as u64),
            state: State::Executed,
            entry_type: EntryType::Execution,
            change_log_class: class,
            system_change: false,
            checksum: id.len().is_multiple_of(2).then_some("0123456789abcdef"),
        }
    }

    #[test]
    fn entries_come_back_as_they_were_pushed() {
        let pushed = [
            entry("a", "x", "app::A"),
            entry("bb", "x", "app::A"),
            entry("ccc", "y", "app::A"),
            entry("dddd", "x", "app::D"),
            entry("", "", ""),
        ];
        let history: PlanningHistory = pushed.iter().copied().collect();
        assert_eq!(history.len(), pushed.len());
        assert!(history.iter().eq(pushed.iter().copied()));
        assert_eq!(history.get(3), Some(pushed[3]));
        assert_eq!(history.get(5), None);
    }

    #[test]
    fn rows_read_the_fields_of_the_entries() {
        let mut pushed = [
            entry("a", "x", "app::A"),
            entry("bb", "x", "app::A"),
            entry("ccc", "y", "com.acme.C"),
        ];
        pushed[1].system_change = true;
        pushed[2].state = State::RolledBack;
        let history: PlanningHistory = pushed.iter().copied().collect();
        assert_eq!(history.rows().len(), pushed.len());
        for (row, entry) in history.rows().zip(pushed) {
            assert_eq!(row.change_id(), entry.change_id);
            assert_eq!(row.author(), entry.author);
            assert_eq!(row.timestamp(), entry.timestamp);
            assert_eq!(row.state(), entry.state);
            assert_eq!(row.change_log_class(), entry.change_log_class);
            assert_eq!(row.system_change(), entry.system_change);
            assert_eq!(row.checksum(), entry.checksum);
        }
    }

    #[test]
    fn a_repeated_author_and_type_path_are_stored_once() {
        let history: PlanningHistory = [
            entry("a", "team", "app::Units"),
            entry("b", "team", "app::Units"),
        ]
        .into_iter()
        .collect();
        assert_eq!(history.text, "ateamapp::Unitsb");
    }
}

//! The text popups' pure parts: the detail view of one record ([`DetailView`]: wrapped
//! or not, searched with `/`, scrolled within its text) and the help text, both sized
//! from the terminal so that scrolling stops at the last line instead of running into
//! blank space. Drawing (`draw::modal`) and `update` use the same geometry here.
//!
//! What it is not: drawing, or a JSON viewer; the record is its pretty JSON.

use tui_input::Input;

/// Rows the header, tabs, status line and footer take around the body.
const CHROME_ROWS: u16 = 4;

/// The inner size (columns, rows) of a text popup on a terminal of `size`: the body less
/// the popup's margin (`margin` columns) and border.
pub fn inner(size: (u16, u16), margin: u16) -> (u16, u16) {
    let (w, h) = size;
    let body_h = h.saturating_sub(CHROME_ROWS);
    (
        w.saturating_sub(margin).saturating_sub(2).max(1),
        body_h.saturating_sub(2).max(1),
    )
}

/// The rows `lines` take at `width` columns, wrapped or cut.
pub fn rows<'a>(lines: impl Iterator<Item = &'a str>, width: u16, wrap: bool) -> usize {
    let w = usize::from(width.max(1));
    lines
        .map(|l| {
            if wrap {
                l.chars().count().div_ceil(w).max(1)
            } else {
                1
            }
        })
        .sum()
}

/// `Enter` on a record: its JSON, scrolled, wrapped by default, searchable.
#[derive(Debug)]
pub struct DetailView {
    /// The title (kind/id).
    pub title: String,
    /// The pretty JSON.
    pub text: String,
    /// First row shown.
    pub scroll: u16,
    /// Long lines wrap (`w` toggles); cut at the edge otherwise.
    pub wrap: bool,
    /// The search being typed after `/`, if any.
    pub typing: Option<Input>,
    /// The last search (`n`/`N` find it again).
    pub needle: String,
}

impl DetailView {
    /// A view of `text` from its top, wrapped.
    pub fn new(title: String, text: String) -> DetailView {
        DetailView {
            title,
            text,
            scroll: 0,
            wrap: true,
            typing: None,
            needle: String::new(),
        }
    }

    /// The last scroll position that still fills the popup on a terminal of `size`.
    pub fn max_scroll(&self, size: (u16, u16)) -> u16 {
        let (w, h) = inner(size, DETAIL_MARGIN);
        let total = rows(self.text.lines(), w, self.wrap);
        u16::try_from(total.saturating_sub(usize::from(h))).unwrap_or(u16::MAX)
    }

    /// The row (as drawn at `size`) where line `line` starts.
    fn row_of(&self, line: usize, size: (u16, u16)) -> usize {
        let (w, _) = inner(size, DETAIL_MARGIN);
        rows(self.text.lines().take(line), w, self.wrap)
    }

    /// Scrolls to the next line holding the needle after the top one (`forward`) or the
    /// previous one, wrapping around; whether one was found.
    pub fn find(&mut self, size: (u16, u16), forward: bool) -> bool {
        let needle = self.needle.to_lowercase();
        if needle.is_empty() {
            return false;
        }
        let hits: Vec<usize> = self
            .text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.to_lowercase().contains(&needle))
            .map(|(i, _)| i)
            .collect();
        let top = usize::from(self.scroll);
        let rows: Vec<usize> = hits.iter().map(|&i| self.row_of(i, size)).collect();
        let pick = if forward {
            rows.iter().find(|&&r| r > top).or(rows.first())
        } else {
            rows.iter().rev().find(|&&r| r < top).or(rows.last())
        };
        match pick {
            Some(&r) => {
                let r = u16::try_from(r).unwrap_or(u16::MAX);
                self.scroll = r.min(self.max_scroll(size));
                true
            }
            None => false,
        }
    }
}

/// Columns between the detail popup and the screen's edges (two each side).
pub const DETAIL_MARGIN: u16 = 4;

/// The widest the help popup grows: wider lines are no easier to read.
pub const HELP_MAX_WIDTH: u16 = 110;

/// The help popup's width on a terminal `width` columns wide.
pub fn help_width(width: u16) -> u16 {
    width.min(HELP_MAX_WIDTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrolling_stops_at_the_last_line_wrapped_or_not() {
        let text = (0..30)
            .map(|i| format!("line {i} {}", "x".repeat(100)))
            .collect::<Vec<_>>()
            .join("\n");
        let mut d = DetailView::new("t".into(), text);
        // 80×24: 74 columns × 18 rows inside; each line wraps to two rows.
        assert_eq!(d.max_scroll((80, 24)), 60 - 18);
        d.wrap = false;
        assert_eq!(d.max_scroll((80, 24)), 30 - 18);
        assert_eq!(d.max_scroll((200, 50)), 0);
    }

    #[test]
    fn search_finds_the_next_and_previous_line_and_wraps_around() {
        let text = (0..100)
            .map(|i| format!("\"k{i}\": {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut d = DetailView::new("t".into(), text);
        d.needle = "k5".into();
        assert!(d.find((80, 24), true));
        assert_eq!(d.scroll, 5);
        assert!(d.find((80, 24), true));
        assert_eq!(d.scroll, 50);
        d.needle = "K99".into();
        assert!(d.find((80, 24), true));
        assert_eq!(d.scroll, d.max_scroll((80, 24)), "bounded");
        d.needle = "nothing".into();
        assert!(!d.find((80, 24), true));
    }
}

//! The windowed record table: rows are built only for what fits on screen, from the
//! loaded window, with the selection marked by reverse video and a `>` (visible without
//! colour).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table};
use serde_json::Value;

use steward::resource::Resource;

use super::overview::dsr_overdue;
use super::state::State;

/// Draws the current tab's table in `area` (borders included).
pub fn record_table(f: &mut Frame, area: Rect, s: &State, block: Block<'_>) {
    let t = s.theme;
    let tab = s.tab;
    let cols: Vec<_> = tab.table_columns().collect();
    let rows_all: Vec<&Value> = s.list.rows().collect();
    let vis = s.visible();
    let height = usize::from(area.height.saturating_sub(3)).max(1);
    let mut offset = s.list.offset;
    if s.list.selected < offset || s.list.selected >= offset + height {
        offset = s.list.selected.saturating_sub(height - 1);
    }
    // Columns as wide as what they show on screen (not a fixed guess), shrunk widest
    // first when the terminal is narrower than that.
    // Open data-subject requests past their deadline: in red, and `OVERDUE` in the Due
    // column so it reads without colour (NO_COLOR, mono).
    let now = jiff::Timestamp::now();
    let overdue: Vec<bool> = vis
        .iter()
        .skip(offset)
        .take(height)
        .map(|&i| tab == Resource::Dsr && dsr_overdue(rows_all[i], now))
        .collect();
    let texts: Vec<Vec<String>> = vis
        .iter()
        .skip(offset)
        .take(height)
        .zip(&overdue)
        .map(|(&i, &late)| {
            cols.iter()
                .map(|c| {
                    let text = c.table_text(rows_all[i], &s.zone);
                    if late && c.field == "dueAt" {
                        format!("{text} OVERDUE")
                    } else {
                        text
                    }
                })
                .collect()
        })
        .collect();
    let content: Vec<u16> = cols
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let cells = texts.iter().map(|r| r[j].chars().count());
            let w = cells.chain([c.title.chars().count()]).max().unwrap_or(1);
            u16::try_from(w).unwrap_or(u16::MAX)
        })
        .collect();
    // Borders, the marker column and one space between columns.
    let spacing = u16::try_from(cols.len()).unwrap_or(0);
    let available = area.width.saturating_sub(3 + spacing);
    let mut widths = vec![Constraint::Length(1)];
    // The column without a fixed width in steward::resource (the free text) grows.
    let grow = cols
        .iter()
        .position(|c| c.width == 0)
        .unwrap_or(cols.len().saturating_sub(1));
    widths.extend(
        fit_widths(&content, available, grow)
            .into_iter()
            .map(Constraint::Length),
    );
    let header = Row::new(
        std::iter::once(Cell::from(" "))
            .chain(cols.iter().map(|c| Cell::from(c.title)))
            .collect::<Vec<_>>(),
    )
    .style(t.column_header());
    let rows: Vec<Row> = texts
        .into_iter()
        .enumerate()
        .map(|(k, row_texts)| {
            let pos = offset + k;
            let sel = pos == s.list.selected;
            let mut cells = vec![Cell::from(if sel { ">" } else { " " })];
            for (c, text) in cols.iter().zip(row_texts) {
                let style = if tab == Resource::Alerts && c.title == "Severity" {
                    t.severity(&text)
                } else {
                    ratatui::style::Style::new()
                };
                cells.push(Cell::from(Line::from(Span::styled(text, style))));
            }
            let row = Row::new(cells);
            if sel {
                row.style(t.selected())
            } else if overdue[k] {
                row.style(t.error())
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(block);
    f.render_widget(table, area);
}

/// Column widths for `content` (what each column needs) within `available` cells: all
/// of it when it fits, else the widest columns give way first, none below 6 cells (or
/// its content when that is narrower). Column `grow` takes what is left over.
pub fn fit_widths(content: &[u16], available: u16, grow: usize) -> Vec<u16> {
    let mut w: Vec<u16> = content.to_vec();
    let floor = |c: u16| c.min(6);
    let mut total: u32 = w.iter().map(|&x| u32::from(x)).sum();
    while total > u32::from(available) {
        let Some((j, &widest)) = w
            .iter()
            .enumerate()
            .filter(|(j, x)| **x > floor(content[*j]))
            .max_by_key(|(_, x)| **x)
        else {
            break;
        };
        w[j] = widest - 1;
        total -= 1;
    }
    if let Some(last) = w.get_mut(grow) {
        let spare = u32::from(available).saturating_sub(total);
        *last = last.saturating_add(u16::try_from(spare).unwrap_or(0));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::fit_widths;

    #[test]
    fn widths_fit_the_content_and_shrink_the_widest_first() {
        assert_eq!(fit_widths(&[10, 20, 5], 50, 2), vec![10, 20, 20]);
        assert_eq!(fit_widths(&[10, 20, 5], 50, 1), vec![10, 35, 5]);
        assert_eq!(fit_widths(&[10, 40, 30], 60, 2), vec![10, 25, 25]);
        assert_eq!(fit_widths(&[3, 100], 10, 1), vec![3, 7]);
        assert_eq!(
            fit_widths(&[30, 30], 4, 1).iter().sum::<u16>(),
            12,
            "floors hold"
        );
    }
}

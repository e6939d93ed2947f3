//! The windowed record table: rows are built only for what fits on screen, from the
//! loaded window, with the selection marked by reverse video and a `>` (visible without
//! colour).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table};
use serde_json::Value;

use steward::resource::Resource;

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
    let mut widths = vec![Constraint::Length(1)];
    widths.extend(cols.iter().map(|c| {
        if c.width == 0 {
            Constraint::Min(8)
        } else {
            Constraint::Length(c.width)
        }
    }));
    let header = Row::new(
        std::iter::once(Cell::from(" "))
            .chain(cols.iter().map(|c| Cell::from(c.title)))
            .collect::<Vec<_>>(),
    )
    .style(t.column_header());
    let rows: Vec<Row> = vis
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(pos, &i)| {
            let v = rows_all[i];
            let sel = pos == s.list.selected;
            let mut cells = vec![Cell::from(if sel { ">" } else { " " })];
            for c in &cols {
                let text = c.table_text(v);
                let style = if tab == Resource::Alerts && c.title == "Severity" {
                    t.severity(&text)
                } else {
                    ratatui::style::Style::new()
                };
                cells.push(Cell::from(Line::from(Span::styled(text, style))));
            }
            let row = Row::new(cells);
            if sel { row.style(t.selected()) } else { row }
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(block);
    f.render_widget(table, area);
}

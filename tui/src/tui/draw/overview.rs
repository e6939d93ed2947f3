//! The overview screen: alerts per day as a sparkline and by severity as a bar chart,
//! the top alert types, JIT access granted now with its time left, data-subject requests
//! by due date (overdue ones marked in words as well as red, for `NO_COLOR`) and the
//! audit chain. Laid out for 80×24 first; wider terminals give the charts more room.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, Block, Paragraph, Sparkline, Wrap};
use serde_json::Value;
use steward::resource::Resource;

use crate::tui::overview::{Overview, dsr_due, dsr_open, dsr_overdue};
use crate::tui::state::State;
use crate::tui::theme::Theme;

/// Draws the overview in `area` (the body).
pub(super) fn draw_overview(f: &mut Frame, area: Rect, s: &State) {
    let t = s.theme;
    let tenant = s.session.tenant.as_deref().unwrap_or("");
    let days = s.overview.as_ref().map_or(30, |o| o.days);
    let block = Block::bordered().title(Line::from(vec![
        Span::styled(format!(" Overview of {tenant} "), t.title()),
        Span::styled(
            format!("│ last {days} days (:overview 90) │ esc: the list "),
            t.dim(),
        ),
    ]));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(o) = &s.overview else {
        f.render_widget(
            Paragraph::new("Loading the overview…").style(t.dim()),
            inner,
        );
        return;
    };
    let [left, right] = Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)])
        .spacing(1)
        .areas(inner);
    draw_alerts(f, left, o, t);
    let [jit, dsr, chain] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Fill(2),
        Constraint::Length(3),
    ])
    .areas(right);
    draw_jit(f, jit, o, t);
    draw_dsr(f, dsr, o, (t, &s.zone));
    draw_chain(f, chain, o, t);
}

/// Alerts per day (sparkline), by severity (bars) and the top types.
fn draw_alerts(f: &mut Frame, area: Rect, o: &Overview, t: Theme) {
    let a = match &o.alerts {
        Ok(a) => a,
        Err(why) => {
            f.render_widget(
                Paragraph::new(format!("Alerts: {why}")).style(t.dim()),
                area,
            );
            return;
        }
    };
    let [head, spark, axis, bars, types] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Length(1),
        Constraint::Length(4),
        Constraint::Min(1),
    ])
    .areas(area);
    let peak = a.per_day.iter().map(|d| d.total()).max().unwrap_or(0);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Alerts per day ", t.column_header()),
            Span::raw(format!("{} in {} days, peak {peak}", a.total, o.days)),
        ])),
        head,
    );
    // The newest days when the period has more days than columns.
    let width = usize::from(spark.width.max(1));
    let totals: Vec<u64> = a.per_day.iter().map(|d| d.total()).collect();
    let shown = &totals[totals.len().saturating_sub(width)..];
    f.render_widget(Sparkline::default().data(shown).style(t.key()), spark);
    let first = a
        .per_day
        .get(a.per_day.len().saturating_sub(shown.len()))
        .map_or("", |d| d.date.as_str());
    let last = a.per_day.last().map_or("", |d| d.date.as_str());
    let gap = usize::from(axis.width).saturating_sub(first.len() + last.len());
    f.render_widget(
        Paragraph::new(format!("{first}{}{last}", " ".repeat(gap))).style(t.dim()),
        axis,
    );
    let sum = |f: fn(&crate::tui::overview::Day) -> u64| a.per_day.iter().map(f).sum::<u64>();
    let rows = [
        ("High", sum(|d| d.high), t.severity("high")),
        ("Medium", sum(|d| d.medium), t.severity("medium")),
        ("Low", sum(|d| d.low), t.severity("low")),
        ("Other", sum(|d| d.other), t.severity("informational")),
    ];
    let bars_data: Vec<Bar> = rows
        .iter()
        .map(|(label, n, style)| {
            Bar::with_label(format!("{label:<6}"), *n)
                .text_value(n.to_string())
                .style(*style)
                .value_style(t.selected())
        })
        .collect();
    f.render_widget(
        BarChart::horizontal(bars_data)
            .bar_width(1)
            .bar_gap(0)
            .direction(Direction::Horizontal),
        bars,
    );
    let mut lines = vec![Line::from(vec![
        Span::styled("Top types ", t.column_header()),
        Span::styled(format!("(newest {} alerts)", a.types_from), t.dim()),
    ])];
    for ty in &a.top_types {
        lines.push(Line::raw(format!("{:>6} {}", ty.count, ty.kind)));
    }
    f.render_widget(Paragraph::new(lines), types);
}

/// JIT requests with access now, and the time left.
fn draw_jit(f: &mut Frame, area: Rect, o: &Overview, t: Theme) {
    let mut lines = vec![Line::styled("JIT access now", t.column_header())];
    match &o.jit {
        Err(why) => lines.push(Line::styled(why.clone(), t.dim())),
        Ok(rows) => {
            let col = |title: &str| {
                Resource::JitRequests
                    .table_columns()
                    .find(|c| c.title == title)
            };
            let text = |v: &Value, title: &str| {
                col(title)
                    .map(|c| c.table_text(v, &jiff::tz::TimeZone::UTC)) // a duration: no zone
                    .unwrap_or_default()
            };
            let active: Vec<&Value> = rows
                .iter()
                .filter(|v| {
                    let left = text(v, "Left");
                    !left.is_empty() && left != "ended"
                })
                .collect();
            if active.is_empty() {
                lines.push(Line::styled("none active", t.dim()));
            }
            for v in active {
                lines.push(Line::from(vec![
                    Span::raw(format!("{} ", text(v, "Requestor"))),
                    Span::styled(format!("{} left", text(v, "Left")), t.rw()),
                    Span::styled(format!(" {}", text(v, "Policy")), t.dim()),
                ]));
            }
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// Open data-subject requests, soonest due first; overdue ones in red and in words.
fn draw_dsr(f: &mut Frame, area: Rect, o: &Overview, (t, zone): (Theme, &jiff::tz::TimeZone)) {
    let mut lines = vec![Line::styled("Data-subject requests due", t.column_header())];
    match &o.dsr {
        Err(why) => lines.push(Line::styled(why.clone(), t.dim())),
        Ok(rows) => {
            let now = jiff::Timestamp::now();
            let mut open: Vec<&Value> = rows.iter().filter(|v| dsr_open(v)).collect();
            open.sort_by_key(|v| dsr_due(v).to_owned());
            if open.is_empty() {
                lines.push(Line::styled("none open", t.dim()));
            }
            for v in open {
                // The due day in the operator's zone (the stored time is UTC).
                let due = dsr_due(v)
                    .parse::<jiff::Timestamp>()
                    .map(|d| d.to_zoned(zone.clone()).strftime("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
                let id = Resource::Dsr.record_id(v);
                if dsr_overdue(v, now) {
                    lines.push(Line::styled(
                        format!("{due} {id} {kind} OVERDUE"),
                        t.error(),
                    ));
                } else {
                    lines.push(Line::raw(format!("{due} {id} {kind}")));
                }
            }
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// The audit chain's state.
fn draw_chain(f: &mut Frame, area: Rect, o: &Overview, t: Theme) {
    let mut lines = vec![Line::styled("Audit chain", t.column_header())];
    match &o.chain {
        Ok(r) if r.ok => {
            lines.push(Line::styled(
                format!("intact, {} records", r.records),
                t.ok(),
            ));
            lines.push(Line::styled(
                format!("head seq {} (:verify)", r.head.seq),
                t.dim(),
            ));
        }
        Ok(r) => lines.push(Line::styled(
            format!(
                "BROKEN at seq {}",
                r.first_bad_seq.map_or("?".to_owned(), |s| s.to_string())
            ),
            t.error(),
        )),
        Err(why) => lines.push(Line::styled(why.clone(), t.dim())),
    }
    f.render_widget(Paragraph::new(lines), area);
}

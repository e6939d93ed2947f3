//! Printing the daemon's JSON answers: tables, JSON, NDJSON and CSV.
//!
//! `-o json` prints the API's body exactly (pretty); `ndjson` prints the records of a
//! list (`value`) one per line; `table` and `csv` show the columns of the kind, from
//! [`steward::resource::Resource::columns`] (so `-o csv` has the columns of the daemon's
//! CSV export). Tables are the default, on a terminal or not (like kubectl and
//! docker): scripts ask for JSON explicitly. Nothing here talks to the daemon.

use std::io::Write;

use clap::ValueEnum;
use serde_json::Value;
use steward::resource::{Resource, display, first};

use super::error::CliError;

/// How answers are printed (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people (the default).
    Table,
    /// The API's JSON body, pretty-printed.
    Json,
    /// One JSON record per line.
    Ndjson,
    /// CSV with a header row.
    Csv,
}

/// What kind of record an answer holds, which picks the table and CSV columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Records of one kind: the columns of [`Resource::columns`], the same ones the
    /// TUI's table and the daemon's CSV export show.
    Records(Resource),
    /// `/v1/tenants`.
    Tenants,
    /// `/v1/tenants/{t}/subjects`: one row per record naming the person, grouped by kind.
    Subjects,
    /// Anything else (whoami, health, verify, subjects): shown as `key: value` lines.
    Other,
}

/// The columns of `/v1/tenants` (not a kind of record): header and JSON pointers.
const TENANT_COLUMNS: [(&str, &[&str]); 3] = [
    ("ID", &["/id"]),
    ("NAME", &["/displayName", "/name"]),
    ("PROFILES", &["/profiles"]),
];

/// The columns of `/v1/tenants/{t}/subjects`: header and JSON pointers.
const SUBJECT_COLUMNS: [(&str, &[&str]); 4] = [
    ("KIND", &["/kind"]),
    ("ID", &["/id"]),
    ("FIELD", &["/field"]),
    ("MATCHED", &["/matched"]),
];

/// One printed column: its header and how a record's cell is made.
pub struct Column {
    /// The header.
    pub header: String,
    /// The cell's text for a record.
    pub cell: Box<dyn Fn(&Value) -> String>,
}

/// How tables are laid out: the zone their times are shown in and the width they fit.
#[derive(Debug, Clone)]
pub struct TableLayout {
    /// The zone of times ([`steward::local_time`]).
    pub zone: jiff::tz::TimeZone,
    /// The terminal's width in columns; `None` prints cells whole (output to a pipe).
    pub width: Option<usize>,
}

impl TableLayout {
    /// The layout of this process: `STEWARD_TZ` (else the system zone), and the width
    /// from `COLUMNS` when set, else the terminal's when stdout is one, else none.
    pub fn from_env() -> Result<TableLayout, steward::local_time::ZoneError> {
        use std::io::IsTerminal;
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w > 0)
            .or_else(|| {
                std::io::stdout()
                    .is_terminal()
                    .then(crossterm::terminal::size)
                    .and_then(Result::ok)
                    .map(|(w, _)| usize::from(w))
            });
        Ok(TableLayout {
            zone: steward::local_time::zone()?,
            width,
        })
    }
}

impl Default for TableLayout {
    /// UTC, cells whole.
    fn default() -> TableLayout {
        TableLayout {
            zone: jiff::tz::TimeZone::UTC,
            width: None,
        }
    }
}

impl Kind {
    /// The columns of a table (headers in upper case, like kubectl); empty for
    /// [`Kind::Other`].
    pub fn table_columns(self, zone: &jiff::tz::TimeZone) -> Vec<Column> {
        match self {
            Kind::Records(r) => r
                .table_columns()
                .map(|c| {
                    let zone = zone.clone();
                    Column {
                        header: c.title.to_uppercase(),
                        cell: Box::new(move |v| c.table_text(v, &zone)),
                    }
                })
                .collect(),
            Kind::Tenants => pointer_columns(&TENANT_COLUMNS, str::to_owned),
            Kind::Subjects => pointer_columns(&SUBJECT_COLUMNS, str::to_owned),
            Kind::Other => Vec::new(),
        }
    }

    /// The columns of CSV output: for records, the daemon's export columns (headers are
    /// field names, cells the stored values, neutralised against formulas); empty for
    /// [`Kind::Other`].
    pub fn csv_columns(self) -> Vec<Column> {
        match self {
            Kind::Records(r) => r
                .csv_columns()
                .map(|c| Column {
                    header: c.field.to_owned(),
                    cell: Box::new(|v| c.csv_text(v)),
                })
                .collect(),
            Kind::Tenants | Kind::Subjects => pointer_columns(
                if self == Kind::Tenants {
                    &TENANT_COLUMNS
                } else {
                    &SUBJECT_COLUMNS
                },
                str::to_lowercase,
            )
            .into_iter()
            .map(|c| Column {
                header: c.header,
                cell: Box::new(move |v| safe((c.cell)(v))),
            })
            .collect(),
            Kind::Other => Vec::new(),
        }
    }
}

/// Columns of JSON pointers (tenants, subjects), headers shaped by `header`.
fn pointer_columns(
    columns: &'static [(&'static str, &'static [&'static str])],
    header: fn(&str) -> String,
) -> Vec<Column> {
    columns
        .iter()
        .map(|&(h, pointers)| Column {
            header: header(h),
            cell: Box::new(move |v| first(v, pointers)),
        })
        .collect()
}

/// The records of an answer: the `value` items of a list, else the answer itself.
pub fn records(body: &Value) -> Vec<&Value> {
    match body.get("value").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => match body {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        },
    }
}

/// Prints an answer in `format`, with the columns of `kind`; tables laid out by `layout`.
pub fn print(
    out: &mut dyn Write,
    format: OutputFormat,
    kind: Kind,
    body: &Value,
    layout: &TableLayout,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, body).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            for record in records(body) {
                serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
                writeln!(out)?;
            }
        }
        OutputFormat::Csv => write_csv(out, kind, &records(body))?,
        OutputFormat::Table => {
            let columns = kind.table_columns(&layout.zone);
            let mut rows = records(body);
            if kind == Kind::Subjects {
                // Grouped by kind, each kind's records by id.
                rows.sort_by_cached_key(|r| (first(r, &["/kind"]), first(r, &["/id"])));
            }
            if columns.is_empty() {
                write_fields(out, body)?;
            } else {
                write_table(out, &columns, &rows, layout.width)?;
            }
        }
    }
    Ok(())
}

/// Aligned columns, two spaces apart, headers first. Cells are one line each. Within
/// `width` (the terminal's), the widest columns give way first and a cut cell ends in
/// `…` ([`steward_tui::tui::widgets::fit_widths`], as the TUI's table); `-o json` has
/// every value whole.
pub fn write_table(
    out: &mut dyn Write,
    columns: &[Column],
    records: &[&Value],
    width: Option<usize>,
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| columns.iter().map(|c| one_line(&(c.cell)(r))).collect())
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.header.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if let Some(total) = width {
        let gaps = 2 * columns.len().saturating_sub(1);
        let available = u16::try_from(total.saturating_sub(gaps)).unwrap_or(u16::MAX);
        let content: Vec<u16> = widths
            .iter()
            .map(|w| u16::try_from(*w).unwrap_or(u16::MAX))
            .collect();
        // No column grows: a table is as wide as its content, at most the terminal.
        widths = steward_tui::tui::widgets::fit_widths(&content, available, usize::MAX)
            .into_iter()
            .map(usize::from)
            .collect();
    }
    let headers: Vec<String> = columns.iter().map(|c| c.header.clone()).collect();
    for row in std::iter::once(&headers).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let cell = elide(cell, *w);
            line.push_str(&cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `cell` cut to `width` characters, its last one `…` when anything was cut.
fn elide(cell: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if cell.chars().count() <= width {
        return std::borrow::Cow::Borrowed(cell);
    }
    let mut cut: String = cell.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        cut.push('…');
    }
    std::borrow::Cow::Owned(cut)
}

/// A cell on one line: control characters (newlines, tabs, escapes) become spaces so
/// neither the layout nor the terminal can be disturbed by a record's content.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A CSV cell neutralised against spreadsheet formulas ([`steward::csv_cell`]).
fn safe(cell: String) -> String {
    match steward::csv_cell::neutralise(&cell) {
        std::borrow::Cow::Borrowed(_) => cell,
        std::borrow::Cow::Owned(quoted) => quoted,
    }
}

/// CSV with a header row: the kind's columns, or for other answers the union of the
/// records' top-level keys in first-seen order; every cell neutralised against
/// spreadsheet formulas (`+1 555…` is written `'+1 555…`).
pub fn write_csv(out: &mut dyn Write, kind: Kind, records: &[&Value]) -> Result<(), CliError> {
    let mut writer = csv::Writer::from_writer(out);
    let columns = kind.csv_columns();
    if columns.is_empty() {
        let mut keys: Vec<&str> = Vec::new();
        for record in records {
            if let Some(map) = record.as_object() {
                for k in map.keys() {
                    if !keys.contains(&k.as_str()) {
                        keys.push(k);
                    }
                }
            }
        }
        writer.write_record(keys.iter().map(|k| safe((*k).to_owned())))?;
        for record in records {
            writer.write_record(
                keys.iter()
                    .map(|k| safe(record.get(*k).map(display).unwrap_or_default())),
            )?;
        }
    } else {
        writer.write_record(columns.iter().map(|c| c.header.as_str()))?;
        for record in records {
            writer.write_record(columns.iter().map(|c| (c.cell)(record)))?;
        }
    }
    writer.flush()?;
    Ok(())
}

/// An object as `key: value` lines (whoami, health, verify); nested values on one line.
fn write_fields(out: &mut dyn Write, body: &Value) -> std::io::Result<()> {
    match body {
        Value::Object(map) => {
            let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (k, v) in map {
                writeln!(out, "{k:<width$}  {}", one_line(&display(v)))?;
            }
        }
        Value::Array(items) => {
            for item in items {
                writeln!(out, "{}", one_line(&display(item)))?;
            }
        }
        other => writeln!(out, "{}", one_line(&display(other)))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(format: OutputFormat, kind: Kind, body: &Value) -> String {
        let mut out = Vec::new();
        print(&mut out, format, kind, body, &TableLayout::default()).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn contacts() -> Value {
        json!({"value": [
            {"name": "default", "properties": {"emails": "alice@contoso.com;bob@contoso.com", "phone": "(214)275-4038", "isEnabled": true}},
            {"name": "x", "properties": {"emails": "c@d.e", "alertNotifications": {"state": "Off"}}}
        ], "nextLink": "/v1/tenants/t/contacts?cursor=abc"})
    }

    #[test]
    fn contacts_table_has_aligned_columns() {
        let table = render(
            OutputFormat::Table,
            Kind::Records(Resource::Contacts),
            &contacts(),
        );
        assert_eq!(
            table,
            "NAME     EMAILS                             PHONE          ENABLED\n\
             default  alice@contoso.com;bob@contoso.com  (214)275-4038  yes\n\
             x        c@d.e                                             Off\n"
        );
    }

    #[test]
    fn alerts_table_and_a_hostile_cell() {
        let body = json!({"value": [{"name": "a1", "properties": {
            "timeGeneratedUtc": "2024-05-01T00:00:00Z", "severity": "High", "status": "Active",
            "alertDisplayName": "two\nlines\u{1b}[31m"}}]});
        let table = render(OutputFormat::Table, Kind::Records(Resource::Alerts), &body);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].starts_with("GENERATED"), "{table}");
        assert!(lines[1].ends_with("two lines [31m"), "{table}");
    }

    #[test]
    fn jit_columns_collect_vms_and_ports() {
        let policy = json!({"name": "default", "properties": {"virtualMachines": [
            {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
             "ports": [{"number": 22}, {"number": 3389}]},
            {"id": ".../virtualMachines/vm2", "ports": [{"number": 22}]}]}});
        let table = render(
            OutputFormat::Table,
            Kind::Records(Resource::JitPolicies),
            &policy,
        );
        assert_eq!(table.lines().nth(1).unwrap(), "default  vm1, vm2  22, 3389");
        let request = json!({"id": "r1", "requestor": "barbara@contoso.com", "virtualMachines": [
            {"id": "vm1", "ports": [
                {"number": 3389, "status": "Initiated", "endTimeUtc": "2024-05-01T01:00:00Z"},
                {"number": 22, "status": "Initiated", "endTimeUtc": "2024-05-01T03:00:00Z"}]}]});
        let cells: Vec<String> = Kind::Records(Resource::JitRequests)
            .table_columns(&jiff::tz::TimeZone::UTC)
            .iter()
            .map(|c| (c.cell)(&request))
            .collect();
        assert_eq!(
            cells,
            [
                "r1",
                "",
                "barbara@contoso.com",
                "3389, 22",
                "Initiated",
                "ended",
                "2024-05-01 03:00:00 UTC"
            ]
        );
    }

    #[test]
    fn csv_has_a_header_and_quotes_what_needs_quoting() {
        let csv = render(
            OutputFormat::Csv,
            Kind::Records(Resource::Contacts),
            &contacts(),
        );
        assert_eq!(
            csv,
            "name,emails,phone,isEnabled,notificationsByRole.state,notificationsByRole.roles,\
             notificationsSources,etag\n\
             default,alice@contoso.com;bob@contoso.com,(214)275-4038,true,,,,\n\
             x,c@d.e,,,,,,\n"
        );
        let body =
            json!({"value": [{"name": "a,b", "properties": {"alertDisplayName": "say \"hi\""}}]});
        let csv = render(OutputFormat::Csv, Kind::Records(Resource::Alerts), &body);
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "\"a,b\",,,,\"say \"\"hi\"\"\",,,,,"
        );
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_evaluate_get_a_quote() {
        let body = json!({"value": [{"name": "x", "properties": {
            "emails": "=HYPERLINK(\"http://evil\")", "phone": "+1 555 867 5309"}}]});
        let csv = render(OutputFormat::Csv, Kind::Records(Resource::Contacts), &body);
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let row = rows.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "'=HYPERLINK(\"http://evil\")");
        assert_eq!(&row[2], "'+1 555 867 5309");
        let csv = render(
            OutputFormat::Csv,
            Kind::Other,
            &json!({"@k": "-1", "t": "\tx"}),
        );
        assert_eq!(csv, "'@k,t\n'-1,'\tx\n");
        // JSON is untouched.
        let json_out = render(OutputFormat::Json, Kind::Records(Resource::Contacts), &body);
        assert!(json_out.contains("\"+1 555 867 5309\""));
    }

    #[test]
    fn csv_of_other_answers_uses_their_keys() {
        let csv = render(
            OutputFormat::Csv,
            Kind::Other,
            &json!({"ok": true, "records": 3}),
        );
        assert_eq!(csv, "ok,records\ntrue,3\n");
    }

    #[test]
    fn json_is_the_body_and_ndjson_is_its_records() {
        let body = contacts();
        let json_out = render(OutputFormat::Json, Kind::Records(Resource::Contacts), &body);
        assert_eq!(serde_json::from_str::<Value>(&json_out).unwrap(), body);
        let nd = render(
            OutputFormat::Ndjson,
            Kind::Records(Resource::Contacts),
            &body,
        );
        let lines: Vec<Value> = nd
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            vec![body["value"][0].clone(), body["value"][1].clone()]
        );
    }

    #[test]
    fn other_answers_print_as_fields() {
        let body = json!({"uid": 1000, "user": "alice", "groups": ["secops", "wheel"],
                          "grants": [{"tenant": "contoso", "profile": "owner"}]});
        let out = render(OutputFormat::Table, Kind::Other, &body);
        assert_eq!(
            out,
            "uid     1000\nuser    alice\ngroups  secops, wheel\ngrants  tenant=contoso profile=owner\n"
        );
    }

    #[test]
    fn a_table_fits_the_width_the_widest_column_giving_way_with_an_ellipsis() {
        let long = "x".repeat(120);
        let body = json!({"value": [{"name": "default", "properties": {
            "emails": long, "phone": "(214)275-4038", "isEnabled": true}}]});
        let mut out = Vec::new();
        let layout = TableLayout {
            width: Some(60),
            ..TableLayout::default()
        };
        print(
            &mut out,
            OutputFormat::Table,
            Kind::Records(Resource::Contacts),
            &body,
            &layout,
        )
        .unwrap();
        let table = String::from_utf8(out).unwrap();
        for line in table.lines() {
            assert!(
                line.chars().count() <= 60,
                "{line:?} ({})",
                line.chars().count()
            );
        }
        let row = table.lines().nth(1).unwrap();
        assert!(row.starts_with("default  xxx"), "{row}");
        assert!(row.contains("…  (214)275-4038  yes"), "{row}");
        // Without a width (a pipe), every cell is whole.
        let whole = render(
            OutputFormat::Table,
            Kind::Records(Resource::Contacts),
            &body,
        );
        assert!(whole.contains(&long), "{whole}");
        assert_eq!(elide("abcdef", 4), "abc…");
        assert_eq!(elide("abc", 4), "abc");
    }

    #[test]
    fn subjects_are_a_table_grouped_by_kind() {
        let body = json!({"value": [
            {"kind": "jit-requests", "id": "r2", "field": "requestor", "matched": "email"},
            {"kind": "contacts", "id": "default", "field": "properties.emails", "matched": "email"},
            {"kind": "alerts", "id": "a9", "field": "properties.compromisedEntity", "matched": "email"},
            {"kind": "contacts", "id": "backup", "field": "properties.emails", "matched": "email"}
        ]});
        let table = render(OutputFormat::Table, Kind::Subjects, &body);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "KIND          ID       FIELD                         MATCHED",
                "alerts        a9       properties.compromisedEntity  email",
                "contacts      backup   properties.emails             email",
                "contacts      default  properties.emails             email",
                "jit-requests  r2       requestor                     email",
            ]
        );
    }
}

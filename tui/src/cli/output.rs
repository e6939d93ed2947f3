//! Printing the daemon's JSON answers: tables, JSON, NDJSON and CSV.
//!
//! `-o json` prints the API's body exactly (pretty); `ndjson` prints the records of a
//! list (`value`) one per line; `table` and `csv` show the columns chosen per kind in
//! [`Kind::columns`]. Tables are the default, on a terminal or not (like kubectl and
//! docker): scripts ask for JSON explicitly. Nothing here talks to the daemon.

use std::io::Write;

use clap::ValueEnum;
use serde_json::Value;

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
    /// Security contacts.
    Contacts,
    /// JIT policies.
    JitPolicies,
    /// JIT requests.
    JitRequests,
    /// Alerts.
    Alerts,
    /// Audit records.
    Audit,
    /// Data-subject requests.
    Dsr,
    /// `/v1/tenants`.
    Tenants,
    /// Anything else (whoami, health, verify, subjects): shown as `key: value` lines.
    Other,
}

/// One column of a table: its header and how a record's cell is found.
pub struct Column {
    /// The header (upper case, like kubectl).
    pub header: &'static str,
    /// The cell's text for a record.
    pub cell: fn(&Value) -> String,
}

impl Kind {
    /// The columns shown for this kind; empty for [`Kind::Other`].
    pub fn columns(self) -> &'static [Column] {
        match self {
            Kind::Contacts => &[
                Column {
                    header: "NAME",
                    cell: |v| text(v, &["/name"]),
                },
                Column {
                    header: "EMAILS",
                    cell: |v| text(v, &["/properties/emails"]),
                },
                Column {
                    header: "PHONE",
                    cell: |v| text(v, &["/properties/phone"]),
                },
                Column {
                    header: "ENABLED",
                    cell: contact_enabled,
                },
            ],
            Kind::JitPolicies => &[
                Column {
                    header: "NAME",
                    cell: |v| text(v, &["/name"]),
                },
                Column {
                    header: "VMS",
                    cell: policy_vms,
                },
                Column {
                    header: "PORTS",
                    cell: |v| ports(v, "number"),
                },
            ],
            Kind::JitRequests => &[
                Column {
                    header: "ID",
                    cell: |v| text(v, &["/id", "/name"]),
                },
                Column {
                    header: "REQUESTOR",
                    cell: |v| text(v, &["/requestor", "/properties/requestor"]),
                },
                Column {
                    header: "PORTS",
                    cell: |v| ports(v, "number"),
                },
                Column {
                    header: "STATUS",
                    cell: |v| ports(v, "status"),
                },
                Column {
                    header: "END",
                    cell: request_end,
                },
            ],
            Kind::Alerts => &[
                Column {
                    header: "TIME",
                    cell: |v| text(v, &["/properties/timeGeneratedUtc"]),
                },
                Column {
                    header: "SEVERITY",
                    cell: |v| text(v, &["/properties/severity"]),
                },
                Column {
                    header: "STATUS",
                    cell: |v| text(v, &["/properties/status"]),
                },
                Column {
                    header: "NAME",
                    cell: |v| text(v, &["/name"]),
                },
                Column {
                    header: "DISPLAY NAME",
                    cell: |v| text(v, &["/properties/alertDisplayName"]),
                },
            ],
            Kind::Audit => &[
                Column {
                    header: "SEQ",
                    cell: |v| text(v, &["/seq", "/sequence"]),
                },
                Column {
                    header: "AT",
                    cell: |v| text(v, &["/at", "/eventTimestamp", "/time"]),
                },
                Column {
                    header: "USER",
                    cell: |v| text(v, &["/caller/user", "/caller/name", "/caller", "/user"]),
                },
                Column {
                    header: "OPERATION",
                    cell: |v| text(v, &["/operationName", "/operation", "/action"]),
                },
                Column {
                    header: "STATUS",
                    cell: |v| text(v, &["/status"]),
                },
                Column {
                    header: "RESOURCE",
                    cell: |v| text(v, &["/resourceId", "/resource"]),
                },
            ],
            Kind::Dsr => &[
                Column {
                    header: "ID",
                    cell: |v| text(v, &["/id"]),
                },
                Column {
                    header: "TYPE",
                    cell: |v| text(v, &["/type"]),
                },
                Column {
                    header: "STATUS",
                    cell: |v| text(v, &["/status"]),
                },
                Column {
                    header: "DUE",
                    cell: |v| text(v, &["/extendedDueAt", "/dueAt"]),
                },
            ],
            Kind::Tenants => &[
                Column {
                    header: "ID",
                    cell: |v| text(v, &["/id"]),
                },
                Column {
                    header: "NAME",
                    cell: |v| text(v, &["/displayName", "/name"]),
                },
                Column {
                    header: "PROFILES",
                    cell: |v| text(v, &["/profiles"]),
                },
            ],
            Kind::Other => &[],
        }
    }
}

/// The first of `pointers` present (and not null) in `v`, as display text: strings as
/// they are, arrays of scalars joined with `, `, other values as compact JSON.
fn text(v: &Value, pointers: &[&str]) -> String {
    pointers
        .iter()
        .find_map(|p| v.pointer(p).filter(|x| !x.is_null()))
        .map(display)
        .unwrap_or_default()
}

/// A value as one line of display text.
fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(display).collect::<Vec<_>>().join(", ")
        }
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join("; "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", display(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// A contact is enabled per `isEnabled` (2023 shape) or `alertNotifications.state` (2020).
fn contact_enabled(v: &Value) -> String {
    if let Some(b) = v.pointer("/properties/isEnabled").and_then(Value::as_bool) {
        return if b { "yes" } else { "no" }.to_owned();
    }
    match v.pointer("/properties/alertNotifications") {
        Some(Value::String(s)) => s.clone(),
        Some(n) => text(n, &["/state"]),
        None => String::new(),
    }
}

/// The virtual machines a JIT policy names, by their last id segment.
fn policy_vms(v: &Value) -> String {
    vms(v)
        .filter_map(|vm| vm.get("id").and_then(Value::as_str))
        .map(|id| id.rsplit('/').next().unwrap_or(id).to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `virtualMachines` of a policy or request, found under `properties` or at the top.
fn vms(v: &Value) -> impl Iterator<Item = &Value> {
    v.pointer("/properties/virtualMachines")
        .or_else(|| v.get("virtualMachines"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A field of every port of every VM, distinct values in first-seen order.
fn ports(v: &Value, field: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for port in vms(v)
        .filter_map(|vm| vm.get("ports").and_then(Value::as_array))
        .flatten()
    {
        if let Some(x) = port.get(field).filter(|x| !x.is_null()) {
            let x = display(x);
            if !seen.contains(&x) {
                seen.push(x);
            }
        }
    }
    seen.join(", ")
}

/// When a JIT request ends: the latest `endTimeUtc` of its ports (RFC 3339 in UTC
/// sorts as text).
fn request_end(v: &Value) -> String {
    vms(v)
        .filter_map(|vm| vm.get("ports").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("endTimeUtc").and_then(Value::as_str))
        .max()
        .unwrap_or_default()
        .to_owned()
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

/// Prints an answer in `format`, with the columns of `kind`.
pub fn print(
    out: &mut dyn Write,
    format: OutputFormat,
    kind: Kind,
    body: &Value,
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
            if kind == Kind::Other || kind.columns().is_empty() {
                write_fields(out, body)?;
            } else {
                write_table(out, kind.columns(), &records(body))?;
            }
        }
    }
    Ok(())
}

/// Aligned columns, two spaces apart, headers first. Cells are one line each.
pub fn write_table(
    out: &mut dyn Write,
    columns: &[Column],
    records: &[&Value],
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
    let headers: Vec<String> = columns.iter().map(|c| c.header.to_owned()).collect();
    for row in std::iter::once(&headers).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
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
    let columns = kind.columns();
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
        writer.write_record(columns.iter().map(|c| c.header.to_lowercase()))?;
        for record in records {
            writer.write_record(columns.iter().map(|c| safe((c.cell)(record))))?;
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
        print(&mut out, format, kind, body).unwrap();
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
        let table = render(OutputFormat::Table, Kind::Contacts, &contacts());
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
        let table = render(OutputFormat::Table, Kind::Alerts, &body);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].starts_with("TIME"));
        assert!(lines[1].ends_with("two lines [31m"), "{table}");
    }

    #[test]
    fn jit_columns_collect_vms_and_ports() {
        let policy = json!({"name": "default", "properties": {"virtualMachines": [
            {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
             "ports": [{"number": 22}, {"number": 3389}]},
            {"id": ".../virtualMachines/vm2", "ports": [{"number": 22}]}]}});
        let table = render(OutputFormat::Table, Kind::JitPolicies, &policy);
        assert_eq!(table.lines().nth(1).unwrap(), "default  vm1, vm2  22, 3389");
        let request = json!({"id": "r1", "requestor": "barbara@contoso.com", "virtualMachines": [
            {"id": "vm1", "ports": [
                {"number": 3389, "status": "Initiated", "endTimeUtc": "2024-05-01T01:00:00Z"},
                {"number": 22, "status": "Initiated", "endTimeUtc": "2024-05-01T03:00:00Z"}]}]});
        let cells: Vec<String> = Kind::JitRequests
            .columns()
            .iter()
            .map(|c| (c.cell)(&request))
            .collect();
        assert_eq!(
            cells,
            [
                "r1",
                "barbara@contoso.com",
                "3389, 22",
                "Initiated",
                "2024-05-01T03:00:00Z"
            ]
        );
    }

    #[test]
    fn csv_has_a_header_and_quotes_what_needs_quoting() {
        let csv = render(OutputFormat::Csv, Kind::Contacts, &contacts());
        assert_eq!(
            csv,
            "name,emails,phone,enabled\n\
             default,alice@contoso.com;bob@contoso.com,(214)275-4038,yes\n\
             x,c@d.e,,Off\n"
        );
        let body =
            json!({"value": [{"name": "a,b", "properties": {"alertDisplayName": "say \"hi\""}}]});
        let csv = render(OutputFormat::Csv, Kind::Alerts, &body);
        assert_eq!(csv.lines().nth(1).unwrap(), ",,,\"a,b\",\"say \"\"hi\"\"\"");
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_evaluate_get_a_quote() {
        let body = json!({"value": [{"name": "x", "properties": {
            "emails": "=HYPERLINK(\"http://evil\")", "phone": "+1 555 867 5309"}}]});
        let csv = render(OutputFormat::Csv, Kind::Contacts, &body);
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
        let json_out = render(OutputFormat::Json, Kind::Contacts, &body);
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
        let json_out = render(OutputFormat::Json, Kind::Contacts, &body);
        assert_eq!(serde_json::from_str::<Value>(&json_out).unwrap(), body);
        let nd = render(OutputFormat::Ndjson, Kind::Contacts, &body);
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
}

//! The columns of each kind, for the tables of the CLI and the TUI and for CSV exports:
//! one [`Column`] a field (header, title, width, JSON pointers, [`Render`], where it is
//! [`Shown`]), the tables per kind, and how a cell's text is made from a record.

use jiff::tz::TimeZone;
use serde_json::Value;

use crate::local_time::short_time;

/// Where a column is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// In the tables of the CLI and the TUI, and in CSV exports.
    Everywhere,
    /// Only in CSV exports (too wide for a terminal table).
    CsvOnly,
    /// Only in the tables (a summary a CSV gives field by field).
    TableOnly,
}

/// How a column's text is made from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// The first of the column's pointers present and not null: strings as they are,
    /// arrays of scalars joined with `, `, other values as compact text.
    Text,
    /// Like [`Render::Text`], but an RFC 3339 time is shown to the second in the
    /// clients' zone (`2026-11-21 06:18:48 CET`, [`crate::local_time`]) in tables; CSV
    /// keeps the time as stored.
    Time,
    /// A contact's notification state: `isEnabled` (2023 shape) as yes/no, else
    /// `alertNotifications.state` (2020 shape).
    ContactEnabled,
    /// The virtual machines of a policy or request, by the last segment of their ids.
    VmNames,
    /// One field of every port of every VM, distinct values in first-seen order.
    Ports(&'static str),
    /// The latest `endTimeUtc` of a request's ports.
    RequestEnd,
    /// The time left until the latest `endTimeUtc` of a request's ports (`1h05m`, `4m05s`,
    /// `9s`, `ended`): how long its door stays open.
    TimeLeft,
}

/// One column of a kind, for tables and CSV alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The header in CSV files, and the field it names (`timeGeneratedUtc`).
    pub field: &'static str,
    /// The header in tables (`Generated`); the CLI writes it in upper case.
    pub title: &'static str,
    /// The width of the column in a TUI table, in cells; 0 takes what is left.
    pub width: u16,
    /// JSON pointers into the record, tried in order.
    pub pointers: &'static [&'static str],
    /// How the text is made.
    pub render: Render,
    /// Where the column appears.
    pub shown: Shown,
}

const fn col(
    field: &'static str,
    title: &'static str,
    width: u16,
    pointers: &'static [&'static str],
) -> Column {
    Column {
        field,
        title,
        width,
        pointers,
        render: Render::Text,
        shown: Shown::Everywhere,
    }
}

impl Column {
    const fn render(self, render: Render) -> Column {
        Column { render, ..self }
    }
    const fn csv_only(self) -> Column {
        Column {
            shown: Shown::CsvOnly,
            ..self
        }
    }
    const fn table_only(self) -> Column {
        Column {
            shown: Shown::TableOnly,
            ..self
        }
    }

    /// Whether the column is in terminal tables.
    pub fn in_table(&self) -> bool {
        self.shown != Shown::CsvOnly
    }

    /// Whether the column is in CSV exports.
    pub fn in_csv(&self) -> bool {
        self.shown != Shown::TableOnly
    }

    /// The column's text for `record` as a table shows it: the first pointer present,
    /// shaped by its [`Render`] (times to the second in `zone`, with its abbreviation;
    /// [`crate::local_time`]).
    pub fn table_text(&self, record: &Value, zone: &TimeZone) -> String {
        match self.render {
            Render::Text => first(record, self.pointers),
            Render::Time => {
                let text = first(record, self.pointers);
                short_time(&text, zone).unwrap_or(text)
            }
            Render::ContactEnabled => contact_enabled(record),
            Render::VmNames => vm_names(record),
            Render::Ports(field) => ports(record, field),
            Render::RequestEnd => {
                let text = request_end(record);
                short_time(&text, zone).unwrap_or(text)
            }
            Render::TimeLeft => time_left(&request_end(record), jiff::Timestamp::now()),
        }
    }

    /// The column's cell for `record` in a CSV export: the field its header names (the
    /// first pointer) as stored — strings as they are, arrays of strings joined with `;`,
    /// other values as JSON — neutralised against spreadsheet formulas
    /// ([`crate::csv_cell`]).
    pub fn csv_text(&self, record: &Value) -> String {
        let raw = match self.pointers.first().and_then(|p| record.pointer(p)) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            Some(other) => other.to_string(),
        };
        match crate::csv_cell::neutralise(&raw) {
            std::borrow::Cow::Borrowed(_) => raw,
            std::borrow::Cow::Owned(safe) => safe,
        }
    }
}

pub(super) const CONTACTS: &[Column] = &[
    col("name", "Name", 14, &["/name"]),
    col("emails", "Emails", 0, &["/properties/emails"]),
    col("phone", "Phone", 16, &["/properties/phone"]),
    col("isEnabled", "Enabled", 8, &["/properties/isEnabled"]).render(Render::ContactEnabled),
    col(
        "notificationsByRole.state",
        "Roles notified",
        0,
        &["/properties/notificationsByRole/state"],
    )
    .csv_only(),
    col(
        "notificationsByRole.roles",
        "Roles",
        0,
        &["/properties/notificationsByRole/roles"],
    )
    .csv_only(),
    col(
        "notificationsSources",
        "Sources",
        0,
        &["/properties/notificationsSources"],
    )
    .csv_only(),
    col("etag", "Etag", 0, &["/etag"]).csv_only(),
];

pub(super) const JIT_POLICIES: &[Column] = &[
    col("name", "Name", 20, &["/name"]),
    col("kind", "Kind", 8, &["/kind"]).csv_only(),
    col("location", "Location", 10, &["/location"]).csv_only(),
    col("vms", "VMs", 24, &[])
        .render(Render::VmNames)
        .table_only(),
    col("ports", "Ports", 0, &[])
        .render(Render::Ports("number"))
        .table_only(),
    col(
        "virtualMachines",
        "Virtual machines",
        0,
        &["/properties/virtualMachines"],
    )
    .csv_only(),
    col("etag", "Etag", 0, &["/etag"]).csv_only(),
];

pub(super) const JIT_REQUESTS: &[Column] = &[
    col("id", "Id", 14, &["/id", "/name"]),
    col("policyName", "Policy", 14, &["/policyName"]),
    col(
        "requestor",
        "Requestor",
        14,
        &["/requestor", "/properties/requestor"],
    ),
    col("startTimeUtc", "Start", 20, &["/startTimeUtc"])
        .render(Render::Time)
        .csv_only(),
    col("justification", "Justification", 0, &["/justification"]).csv_only(),
    col("ports", "Ports", 8, &[])
        .render(Render::Ports("number"))
        .table_only(),
    col("status", "Status", 9, &[])
        .render(Render::Ports("status"))
        .table_only(),
    col("left", "Left", 8, &[])
        .render(Render::TimeLeft)
        .table_only(),
    col("end", "Ends", 0, &[])
        .render(Render::RequestEnd)
        .table_only(),
    col(
        "virtualMachines",
        "Virtual machines",
        0,
        &["/virtualMachines"],
    )
    .csv_only(),
];

pub(super) const ALERTS: &[Column] = &[
    col("name", "Name", 0, &["/name"]).csv_only(),
    col(
        "timeGeneratedUtc",
        "Generated",
        20,
        &["/properties/timeGeneratedUtc"],
    )
    .render(Render::Time),
    col("severity", "Severity", 13, &["/properties/severity"]),
    col("status", "Status", 9, &["/properties/status"]),
    col(
        "alertDisplayName",
        "Alert",
        0,
        &["/properties/alertDisplayName", "/name"],
    ),
    col("alertType", "Type", 0, &["/properties/alertType"]).csv_only(),
    col(
        "compromisedEntity",
        "Entity",
        0,
        &["/properties/compromisedEntity"],
    )
    .csv_only(),
    col("productName", "Product", 0, &["/properties/productName"]).csv_only(),
    col("vendorName", "Vendor", 0, &["/properties/vendorName"]).csv_only(),
    col(
        "description",
        "Description",
        0,
        &["/properties/description"],
    )
    .csv_only(),
];

pub(super) const AUDIT: &[Column] = &[
    col("seq", "Seq", 6, &["/seq"]),
    col("at", "At", 21, &["/at"]).render(Render::Time),
    col("user", "User", 10, &["/caller/user"]),
    col("uid", "Uid", 6, &["/caller/uid"]).csv_only(),
    col("profile", "Profile", 10, &["/caller/profile"]).csv_only(),
    col("operationName", "Operation", 18, &["/operationName"]),
    col("status", "Status", 8, &["/status"]),
    col("resourceId", "Resource", 0, &["/resourceId"]),
    col("fields", "Fields", 0, &["/fields"]).csv_only(),
    col("correlationId", "Correlation", 0, &["/correlationId"]).csv_only(),
    col("hash", "Hash", 0, &["/hash"]).csv_only(),
];

pub(super) const DSR: &[Column] = &[
    col("id", "Id", 14, &["/id"]),
    col("type", "Type", 7, &["/type"]),
    col("status", "Status", 21, &["/status"]),
    col("dueAt", "Due", 0, &["/extendedDueAt", "/dueAt"]).render(Render::Time),
];

/// The first of `pointers` present (and not null) in `v`, as text ([`display`]).
pub fn first(v: &Value, pointers: &[&str]) -> String {
    pointers
        .iter()
        .find_map(|p| v.pointer(p).filter(|x| !x.is_null()))
        .map(display)
        .unwrap_or_default()
}

/// A value as one line of text: strings as they are, arrays of scalars joined with `, `,
/// objects as `key=value` pairs, other values as JSON.
pub fn display(v: &Value) -> String {
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
        Some(n) => first(n, &["/state"]),
        None => String::new(),
    }
}

/// The `virtualMachines` of a policy or request, found under `properties` or at the top.
fn vms(v: &Value) -> impl Iterator<Item = &Value> {
    v.pointer("/properties/virtualMachines")
        .or_else(|| v.get("virtualMachines"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The virtual machines a JIT policy or request names, by their last id segment.
fn vm_names(v: &Value) -> String {
    vms(v)
        .filter_map(|vm| vm.get("id").and_then(Value::as_str))
        .map(|id| id.rsplit('/').next().unwrap_or(id).to_owned())
        .collect::<Vec<_>>()
        .join(", ")
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

/// When a JIT request ends: the latest `endTimeUtc` of its ports (RFC 3339 in UTC sorts
/// as text).
fn request_end(v: &Value) -> String {
    vms(v)
        .filter_map(|vm| vm.get("ports").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("endTimeUtc").and_then(Value::as_str))
        .max()
        .unwrap_or_default()
        .to_owned()
}

/// The time from `now` until `end` (`1h05m`, `4m05s`, `9s`), `ended` once it has passed,
/// empty when `end` is not a time.
pub(super) fn time_left(end: &str, now: jiff::Timestamp) -> String {
    let Ok(end) = end.parse::<jiff::Timestamp>() else {
        return String::new();
    };
    let secs = now.duration_until(end).as_secs();
    if secs <= 0 {
        return "ended".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

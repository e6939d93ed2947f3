//! What each kind of record is, written once: its path segment, the permissions of each
//! verb, the columns a table and a CSV export show, its audit operation names and its
//! export kind. The daemon's routes, exports and events, the CLI and the TUI all derive
//! theirs from [`Resource`]; adding a field to a kind's columns touches [`Resource::columns`]
//! alone.
//!
//! The audit log's operation names are [`Operation`]s, so every record names its operation
//! from one list (`contacts.write`, `retention.purge`, …), never from a bare string.

use jiff::tz::TimeZone;
use serde_json::Value;

use crate::local_time::short_time;
use crate::permissions::Permission;

/// A kind of record the API serves under `/v1/tenants/{t}/{segment}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Security contacts.
    Contacts,
    /// JIT network access policies.
    JitPolicies,
    /// JIT network access requests.
    JitRequests,
    /// Security alerts (read-only; appended by sources).
    Alerts,
    /// The audit log (append-only).
    Audit,
    /// Data-subject requests.
    Dsr,
}

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

const CONTACTS: &[Column] = &[
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

const JIT_POLICIES: &[Column] = &[
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

const JIT_REQUESTS: &[Column] = &[
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

const ALERTS: &[Column] = &[
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

const AUDIT: &[Column] = &[
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

const DSR: &[Column] = &[
    col("id", "Id", 14, &["/id"]),
    col("type", "Type", 7, &["/type"]),
    col("status", "Status", 21, &["/status"]),
    col("dueAt", "Due", 0, &["/extendedDueAt", "/dueAt"]).render(Render::Time),
];

impl Resource {
    /// Every kind, in the order the clients show them.
    pub const ALL: [Resource; 6] = [
        Resource::Contacts,
        Resource::JitPolicies,
        Resource::JitRequests,
        Resource::Alerts,
        Resource::Audit,
        Resource::Dsr,
    ];

    /// Its segment under `/v1/tenants/{t}/`, also the `kind` of its change events and of
    /// `/v1/tenants/{t}/export/{kind}`.
    pub fn segment(self) -> &'static str {
        match self {
            Resource::Contacts => "contacts",
            Resource::JitPolicies => "jit-policies",
            Resource::JitRequests => "jit-requests",
            Resource::Alerts => "alerts",
            Resource::Audit => "audit",
            Resource::Dsr => "dsr",
        }
    }

    /// The kind named by a path segment.
    pub fn from_segment(segment: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.segment() == segment)
    }

    /// The kind named by an operator's word (`:alerts`, `:jit`, `:requests`, …).
    pub fn from_word(word: &str) -> Option<Resource> {
        match word {
            "contact" => Some(Resource::Contacts),
            "jit" | "policies" => Some(Resource::JitPolicies),
            "requests" => Some(Resource::JitRequests),
            "alert" => Some(Resource::Alerts),
            other => Resource::from_segment(other),
        }
    }

    /// The title of its tab and its headings.
    pub fn title(self) -> &'static str {
        match self {
            Resource::Contacts => "Contacts",
            Resource::JitPolicies => "JIT policies",
            Resource::JitRequests => "JIT requests",
            Resource::Alerts => "Alerts",
            Resource::Audit => "Audit",
            Resource::Dsr => "DSR",
        }
    }

    /// Its name for one record, in messages (`deleted security contact default`).
    pub fn singular(self) -> &'static str {
        match self {
            Resource::Contacts => "security contact",
            Resource::JitPolicies => "JIT policy",
            Resource::JitRequests => "JIT request",
            Resource::Alerts => "alert",
            Resource::Audit => "audit record",
            Resource::Dsr => "data-subject request",
        }
    }

    /// The field a record is known by: the last segment of its path.
    pub fn id_field(self) -> &'static str {
        match self {
            Resource::Audit => "seq",
            Resource::JitRequests | Resource::Dsr => "id",
            _ => "name",
        }
    }

    /// A record's id (its [`Resource::id_field`]), empty when it has none.
    pub fn record_id(self, record: &Value) -> String {
        match record.get(self.id_field()) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }

    /// The permission to list and get it.
    pub fn read_permission(self) -> Permission {
        match self {
            Resource::Contacts => Permission::ContactsRead,
            Resource::JitPolicies | Resource::JitRequests => Permission::JitRead,
            Resource::Alerts => Permission::AlertsRead,
            Resource::Audit => Permission::AuditRead,
            Resource::Dsr => Permission::DsrManage,
        }
    }

    /// The permission to create, replace and delete it by PUT and DELETE; `None` for a
    /// kind no caller edits (requests change through their actions, alerts never).
    pub fn write_permission(self) -> Option<Permission> {
        match self {
            Resource::Contacts => Some(Permission::ContactsWrite),
            Resource::JitPolicies => Some(Permission::JitWrite),
            _ => None,
        }
    }

    /// The permission of its actions (`initiate`, `revoke`, `confirm`, …), if it has any.
    pub fn action_permission(self) -> Option<Permission> {
        match self {
            Resource::JitPolicies | Resource::JitRequests => Some(Permission::JitRequest),
            Resource::Dsr => Some(Permission::DsrManage),
            _ => None,
        }
    }

    /// The permission to export it; `None` when it has no export.
    pub fn export_permission(self) -> Option<Permission> {
        match self {
            Resource::Contacts => Some(Permission::ContactsExport),
            Resource::JitPolicies | Resource::JitRequests => Some(Permission::JitExport),
            Resource::Alerts => Some(Permission::AlertsExport),
            Resource::Audit => Some(Permission::AuditExport),
            Resource::Dsr => None,
        }
    }

    /// The kinds that can be exported, in order.
    pub fn exportable() -> impl Iterator<Item = Resource> {
        Resource::ALL
            .into_iter()
            .filter(|r| r.export_permission().is_some())
    }

    /// Whether the daemon filters its list by text (`?q=`); other kinds are filtered on
    /// the loaded window by the client.
    pub fn server_filter(self) -> bool {
        matches!(self, Resource::Alerts)
    }

    /// The orders the daemon lists it in, as `?orderby=` values: the first is its
    /// default (not sent), the clients' sort cycles through the rest. Empty for the
    /// audit log, which has one order (its sequence).
    pub fn orders(self) -> &'static [&'static str] {
        match self {
            Resource::Alerts => &[
                "timeGeneratedUtc desc",
                "timeGeneratedUtc asc",
                "severity desc",
                "status asc",
                "name asc",
                "name desc",
            ],
            Resource::Audit => &[],
            _ => &["name asc", "name desc"],
        }
    }

    /// Every column of the kind: tables show those [`Column::in_table`], CSV exports
    /// those [`Column::in_csv`], in this order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Resource::Contacts => CONTACTS,
            Resource::JitPolicies => JIT_POLICIES,
            Resource::JitRequests => JIT_REQUESTS,
            Resource::Alerts => ALERTS,
            Resource::Audit => AUDIT,
            Resource::Dsr => DSR,
        }
    }

    /// The columns of a terminal table.
    pub fn table_columns(self) -> impl Iterator<Item = &'static Column> {
        self.columns().iter().filter(|c| c.in_table())
    }

    /// The columns of a CSV export.
    pub fn csv_columns(self) -> impl Iterator<Item = &'static Column> {
        self.columns().iter().filter(|c| c.in_csv())
    }

    /// The audit operation of a PUT (create or replace).
    pub fn write_operation(self) -> Option<Operation> {
        match self {
            Resource::Contacts => Some(Operation::ContactsWrite),
            Resource::JitPolicies => Some(Operation::JitWrite),
            _ => None,
        }
    }

    /// The audit operation of a DELETE.
    pub fn delete_operation(self) -> Option<Operation> {
        match self {
            Resource::Contacts => Some(Operation::ContactsDelete),
            Resource::JitPolicies => Some(Operation::JitDelete),
            _ => None,
        }
    }

    /// The audit operation of an export.
    pub fn export_operation(self) -> Option<Operation> {
        match self {
            Resource::Contacts => Some(Operation::ContactsExport),
            Resource::JitPolicies => Some(Operation::JitPoliciesExport),
            Resource::JitRequests => Some(Operation::JitRequestsExport),
            Resource::Alerts => Some(Operation::AlertsExport),
            Resource::Audit => Some(Operation::AuditExport),
            Resource::Dsr => None,
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.segment())
    }
}

/// Declares [`Operation`] with its audit names, so a name is written exactly once.
macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The operation an audit record names (`operationName`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($(#[$doc])* $variant,)*
        }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The name stored in the audit record.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Operation::$variant => $name,)*
                }
            }
        }
    };
}

operations! {
    /// A contact created or replaced.
    ContactsWrite = "contacts.write",
    /// A contact deleted.
    ContactsDelete = "contacts.delete",
    /// Contacts exported.
    ContactsExport = "contacts.export",
    /// A JIT policy created or replaced.
    JitWrite = "jit.write",
    /// A JIT policy deleted.
    JitDelete = "jit.delete",
    /// JIT access requested.
    JitInitiate = "jit.initiate",
    /// A JIT request ended early: revoked by a caller, or superseded by a newer one.
    JitRevoke = "jit.revoke",
    /// A JIT request's ports reached their end time.
    JitExpire = "jit.expire",
    /// The `[jit] on_change` command failed.
    JitHook = "jit.hook",
    /// The built-in JIT firewall (`[jit] firewall`) rebuilt its table, or could not, or
    /// could not open a request port.
    JitFirewall = "jit.firewall",
    /// JIT policies exported.
    JitPoliciesExport = "jit-policies.export",
    /// JIT requests exported.
    JitRequestsExport = "jit-requests.export",
    /// Alerts appended (by the API or the spool).
    AlertsIngest = "alerts.ingest",
    /// An attempt to change an alert (always denied: alerts are read-only).
    AlertsUpdate = "alerts.update",
    /// An attempt at an alert state action (always denied).
    AlertsAction = "alerts.action",
    /// Alerts exported.
    AlertsExport = "alerts.export",
    /// The audit log exported.
    AuditExport = "audit.export",
    /// Audit records past retention removed (the chain keeps its anchor).
    AuditPurge = "audit.purge",
    /// Records past retention removed.
    RetentionPurge = "retention.purge",
    /// A data subject looked up.
    SubjectsSearch = "subjects.search",
    /// A data-subject request opened.
    DsrOpen = "dsr.open",
    /// A data-subject request confirmed.
    DsrConfirm = "dsr.confirm",
    /// A data-subject request rejected.
    DsrReject = "dsr.reject",
    /// A data-subject request's deadline extended.
    DsrExtend = "dsr.extend",
    /// A step of a data-subject request carried out.
    DsrExecute = "dsr.execute",
    /// A subject's data erased.
    DsrErase = "dsr.erase",
    /// A data-subject request completed.
    DsrComplete = "dsr.complete",
    /// A data-subject request became overdue.
    DsrOverdue = "dsr.overdue",
    /// A data-subject request's deadline is near.
    DsrDeadline = "dsr.deadline",
    /// A data-subject bundle fetched.
    DsrBundle = "dsr.bundle",
    /// An erased subject's bytes scrubbed from the store's file.
    DsrScrub = "dsr.scrub",
    /// A consistent copy of the whole store taken (`stewardd backup`).
    StoreBackup = "store.backup",
    /// The store rewritten into a fresh file to give back free space.
    StoreCompact = "store.compact",
    /// The configuration reloaded (or a reload refused).
    ConfigReload = "config.reload",
    /// Denied attempts coalesced into one record.
    DeniedCoalesced = "denied.coalesced",
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
fn time_left(end: &str, now: jiff::Timestamp) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn segments_and_words_name_each_kind_once() {
        for r in Resource::ALL {
            assert_eq!(Resource::from_segment(r.segment()), Some(r));
            assert_eq!(Resource::from_word(r.segment()), Some(r));
        }
        assert_eq!(Resource::from_word("jit"), Some(Resource::JitPolicies));
        assert_eq!(Resource::from_segment("idempotency-keys"), None);
    }

    #[test]
    fn operation_names_are_distinct() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        for r in Resource::exportable() {
            let op = r.export_operation().map(Operation::as_str);
            assert_eq!(op, Some(format!("{}.export", r.segment())).as_deref());
        }
    }

    #[test]
    fn every_exportable_kind_has_csv_columns_and_every_kind_a_table() {
        for r in Resource::ALL {
            assert!(r.table_columns().count() >= 3, "{r}");
        }
        for r in Resource::exportable() {
            assert!(r.csv_columns().count() >= 4, "{r}");
        }
    }

    #[test]
    fn cells_fall_back_along_their_pointers_and_times_shorten_in_tables() {
        let v = json!({"name": "a1", "properties": {"severity": "High",
            "timeGeneratedUtc": "2026-11-21T05:18:48.6859684Z"}});
        let cols: Vec<&Column> = Resource::Alerts.table_columns().collect();
        assert_eq!(
            cols[0].table_text(&v, &TimeZone::UTC),
            "2026-11-21 05:18:48 UTC"
        );
        assert_eq!(cols[0].csv_text(&v), "2026-11-21T05:18:48.6859684Z");
        let display = cols[3];
        assert_eq!(display.csv_text(&v), "", "a CSV cell is its own field only");
        assert_eq!(
            display.csv_text(&json!({"properties": {"alertDisplayName": "=cmd()"}})),
            "'=cmd()",
            "formulas are neutralised"
        );
        assert_eq!(cols[1].table_text(&v, &TimeZone::UTC), "High");
        assert_eq!(cols[3].table_text(&v, &TimeZone::UTC), "a1");
        assert_eq!(Resource::Audit.record_id(&json!({"seq": 7})), "7");
    }

    #[test]
    fn request_columns_summarise_ports() {
        let v = json!({"id": "r1", "virtualMachines": [{"id": "/x/virtualMachines/vm1",
            "ports": [{"number": 22, "status": "Initiated", "endTimeUtc": "2026-11-21T05:18:48Z"},
                      {"number": 3389, "status": "Initiated", "endTimeUtc": "2026-11-21T06:00:00Z"}]}]});
        let text: Vec<String> = Resource::JitRequests
            .table_columns()
            .map(|c| c.table_text(&v, &TimeZone::UTC))
            .collect();
        assert_eq!(text[0], "r1");
        assert!(text.contains(&"22, 3389".to_owned()), "{text:?}");
        assert!(text.contains(&"Initiated".to_owned()), "{text:?}");
        assert!(
            text.contains(&"2026-11-21 06:00:00 UTC".to_owned()),
            "{text:?}"
        );
    }

    /// The JIT requests table shows how long a door stays open.
    #[test]
    fn time_left_until_a_request_ends() {
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        assert_eq!(time_left("2026-12-03T11:05:30Z", now), "1h05m");
        assert_eq!(time_left("2026-12-03T10:04:05.9Z", now), "4m05s");
        assert_eq!(time_left("2026-12-03T10:00:09Z", now), "9s");
        assert_eq!(time_left("2026-12-03T10:00:00Z", now), "ended");
        assert_eq!(time_left("soon", now), "");
        let left = Resource::JitRequests
            .table_columns()
            .find(|c| c.title == "Left")
            .unwrap();
        let far = json!({"virtualMachines": [{"ports": [{"endTimeUtc": "2999-01-01T00:00:00Z"}]}]});
        assert!(
            left.table_text(&far, &TimeZone::UTC).ends_with('m'),
            "{}",
            left.table_text(&far, &TimeZone::UTC)
        );
        assert_eq!(left.table_text(&json!({}), &TimeZone::UTC), "");
    }
}

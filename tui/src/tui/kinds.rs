//! The tabs of the TUI and what each kind of record looks like in a table.
//!
//! Per kind: its path under `/v1/tenants/{t}/`, the permission to read it, export it and
//! change it, how to find a record's id, and the columns drawn from its JSON. Records are
//! kept as `serde_json::Value` in the UI: the detail view shows them whole, fields we do
//! not model (alerts are open) included. Nothing here talks to the network.

use serde_json::Value;
use steward::permissions::Permission;

/// One tab: one kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    /// Security contacts.
    Contacts,
    /// JIT network access policies.
    JitPolicies,
    /// JIT access requests.
    JitRequests,
    /// Security alerts (read-only).
    Alerts,
    /// The audit log (read-only).
    Audit,
    /// Data-subject requests (only with `dsr.manage`).
    Dsr,
}

/// One column of a kind's table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The header text.
    pub title: &'static str,
    /// The width in cells (the last column takes what is left).
    pub width: u16,
    /// JSON pointers tried in order; the first present one is shown.
    pub pointers: &'static [&'static str],
}

impl Tab {
    /// Every tab, in display order.
    pub const ALL: [Tab; 6] = [
        Tab::Contacts,
        Tab::JitPolicies,
        Tab::JitRequests,
        Tab::Alerts,
        Tab::Audit,
        Tab::Dsr,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Contacts => "Contacts",
            Tab::JitPolicies => "JIT policies",
            Tab::JitRequests => "JIT requests",
            Tab::Alerts => "Alerts",
            Tab::Audit => "Audit",
            Tab::Dsr => "DSR",
        }
    }

    /// The path segment under the tenant, also the `kind` of change events.
    pub fn segment(self) -> &'static str {
        match self {
            Tab::Contacts => "contacts",
            Tab::JitPolicies => "jit-policies",
            Tab::JitRequests => "jit-requests",
            Tab::Alerts => "alerts",
            Tab::Audit => "audit",
            Tab::Dsr => "dsr",
        }
    }

    /// The tab named in a `:` command (`:alerts`, `:jit`, `:requests`, …).
    pub fn from_command(word: &str) -> Option<Tab> {
        match word {
            "contacts" | "contact" => Some(Tab::Contacts),
            "jit" | "policies" | "jit-policies" => Some(Tab::JitPolicies),
            "requests" | "jit-requests" => Some(Tab::JitRequests),
            "alerts" | "alert" => Some(Tab::Alerts),
            "audit" => Some(Tab::Audit),
            "dsr" => Some(Tab::Dsr),
            _ => None,
        }
    }

    /// The permission needed to see the tab.
    pub fn read_permission(self) -> Permission {
        match self {
            Tab::Contacts => Permission::ContactsRead,
            Tab::JitPolicies | Tab::JitRequests => Permission::JitRead,
            Tab::Alerts => Permission::AlertsRead,
            Tab::Audit => Permission::AuditRead,
            Tab::Dsr => Permission::DsrManage,
        }
    }

    /// The permission needed to export the kind, `None` when it has no export.
    pub fn export_permission(self) -> Option<Permission> {
        match self {
            Tab::Contacts => Some(Permission::ContactsExport),
            Tab::JitPolicies | Tab::JitRequests => Some(Permission::JitExport),
            Tab::Alerts => Some(Permission::AlertsExport),
            Tab::Audit => Some(Permission::AuditExport),
            Tab::Dsr => None,
        }
    }

    /// The permission to create, edit and delete records, `None` for read-only kinds.
    pub fn write_permission(self) -> Option<Permission> {
        match self {
            Tab::Contacts => Some(Permission::ContactsWrite),
            Tab::JitPolicies => Some(Permission::JitWrite),
            _ => None,
        }
    }

    /// Whether the daemon filters this kind by text (`?q=`); other tabs filter the
    /// loaded window on the client.
    pub fn server_filter(self) -> bool {
        matches!(self, Tab::Alerts)
    }

    /// The record's id: the last segment of its path.
    pub fn record_id(self, v: &Value) -> String {
        let key = match self {
            Tab::Audit => "seq",
            Tab::JitRequests | Tab::Dsr => "id",
            _ => "name",
        };
        match v.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }

    /// The table's columns.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Tab::Contacts => CONTACT_COLUMNS,
            Tab::JitPolicies => POLICY_COLUMNS,
            Tab::JitRequests => REQUEST_COLUMNS,
            Tab::Alerts => ALERT_COLUMNS,
            Tab::Audit => AUDIT_COLUMNS,
            Tab::Dsr => DSR_COLUMNS,
        }
    }
}

const fn c(title: &'static str, width: u16, pointers: &'static [&'static str]) -> Column {
    Column {
        title,
        width,
        pointers,
    }
}

const CONTACT_COLUMNS: &[Column] = &[
    c("Name", 14, &["/name"]),
    c("Enabled", 8, &["/properties/isEnabled"]),
    c("Phone", 16, &["/properties/phone"]),
    c("Emails", 0, &["/properties/emails"]),
];
const POLICY_COLUMNS: &[Column] = &[
    c("Name", 20, &["/name"]),
    c("Kind", 8, &["/kind"]),
    c("State", 10, &["/properties/provisioningState"]),
    c("First VM", 0, &["/properties/virtualMachines/0/id"]),
];
const REQUEST_COLUMNS: &[Column] = &[
    c("Id", 14, &["/id"]),
    c("Policy", 14, &["/policyName"]),
    c("Requestor", 14, &["/requestor"]),
    c("Status", 9, &["/virtualMachines/0/ports/0/status"]),
    c("Left", 8, &["left:/virtualMachines/0/ports/0/endTimeUtc"]),
    c("Ends", 0, &["/virtualMachines/0/ports/0/endTimeUtc"]),
];
const ALERT_COLUMNS: &[Column] = &[
    c("Severity", 13, &["/properties/severity"]),
    c("Status", 9, &["/properties/status"]),
    c("Generated", 20, &["/properties/timeGeneratedUtc"]),
    c("Alert", 0, &["/properties/alertDisplayName", "/name"]),
];
const AUDIT_COLUMNS: &[Column] = &[
    c("Seq", 6, &["/seq"]),
    c("At", 21, &["/at"]),
    c("User", 10, &["/caller/user"]),
    c("Operation", 18, &["/operationName"]),
    c("Status", 8, &["/status"]),
    c("Resource", 0, &["/resourceId"]),
];
const DSR_COLUMNS: &[Column] = &[
    c("Id", 14, &["/id"]),
    c("Type", 7, &["/type"]),
    c("Status", 21, &["/status"]),
    c("Due", 0, &["/dueAt"]),
];

/// The text a column shows for a record (empty when the field is absent). Times are
/// shown to the second in UTC (`2026-11-21 05:18:48`): the API's 7 fractional digits
/// would crowd out the column.
pub fn cell(v: &Value, col: &Column) -> String {
    for p in col.pointers {
        if let Some(p) = p.strip_prefix(LEFT) {
            return match v.pointer(p).and_then(Value::as_str) {
                Some(s) => time_left(s, jiff::Timestamp::now()),
                None => String::new(),
            };
        }
        match v.pointer(p) {
            Some(Value::String(s)) => return short_time(s).unwrap_or_else(|| s.clone()),
            Some(Value::Null) | None => continue,
            Some(other) => return other.to_string(),
        }
    }
    String::new()
}

/// A column pointer starting with this shows the time left until the RFC 3339 time the
/// rest of it points to (a JIT request's open door), not the time itself.
const LEFT: &str = "left:";

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

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` (UTC), or `None` when `s` is not one.
fn short_time(s: &str) -> Option<String> {
    if s.len() < 20 || s.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    let t: jiff::Timestamp = s.parse().ok()?;
    Some(t.strftime("%Y-%m-%d %H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_second() {
        assert_eq!(
            short_time("2026-11-21T05:18:48.6859684Z").as_deref(),
            Some("2026-11-21 05:18:48")
        );
        assert_eq!(
            short_time("2026-11-21T07:18:48+02:00").as_deref(),
            Some("2026-11-21 05:18:48")
        );
        assert_eq!(short_time("default"), None);
        assert_eq!(short_time("2026-not-a-time-at-all"), None);
    }

    /// The JIT requests tab shows how long a door stays open.
    #[test]
    fn time_left_until_a_request_ends() {
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        assert_eq!(time_left("2026-12-03T11:05:30Z", now), "1h05m");
        assert_eq!(time_left("2026-12-03T10:04:05.9Z", now), "4m05s");
        assert_eq!(time_left("2026-12-03T10:00:09Z", now), "9s");
        assert_eq!(time_left("2026-12-03T10:00:00Z", now), "ended");
        assert_eq!(time_left("soon", now), "");
        let cols = Tab::JitRequests.columns();
        let left = cols.iter().find(|c| c.title == "Left").unwrap();
        let far = serde_json::json!({"virtualMachines": [{"ports": [{"endTimeUtc": "2999-01-01T00:00:00Z"}]}]});
        assert!(cell(&far, left).ends_with('m'), "{}", cell(&far, left));
        assert_eq!(cell(&serde_json::json!({}), left), "");
    }

    #[test]
    fn cells_fall_back_along_their_pointers() {
        let v = serde_json::json!({"name": "a1", "properties": {"severity": "High"}});
        let cols = Tab::Alerts.columns();
        assert_eq!(cell(&v, &cols[0]), "High");
        assert_eq!(cell(&v, &cols[3]), "a1");
        assert_eq!(Tab::Alerts.record_id(&v), "a1");
        assert_eq!(Tab::Audit.record_id(&serde_json::json!({"seq": 7})), "7");
    }
}

//! What each kind of record is, written once: its path segment, the permissions of each
//! verb, the columns a table and a CSV export show, its audit operation names and its
//! export kind. The daemon's routes, exports and events, the CLI and the TUI all derive
//! theirs from [`Resource`]; adding a field to a kind's columns touches its table in
//! `resource/columns.rs` alone.
//!
//! The audit log's operation names are [`Operation`]s, so every record names its operation
//! from one list (`contacts.write`, `retention.purge`, …), never from a bare string.

use serde_json::Value;

use crate::permissions::Permission;

mod columns;
mod operation;

pub use columns::{Column, Render, Shown, display, first};
pub use operation::Operation;

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
            Resource::Contacts => columns::CONTACTS,
            Resource::JitPolicies => columns::JIT_POLICIES,
            Resource::JitRequests => columns::JIT_REQUESTS,
            Resource::Alerts => columns::ALERTS,
            Resource::Audit => columns::AUDIT,
            Resource::Dsr => columns::DSR,
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

#[cfg(test)]
mod tests {
    use super::columns::time_left;
    use super::*;
    use jiff::tz::TimeZone;
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

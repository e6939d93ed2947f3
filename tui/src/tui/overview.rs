//! The overview screen's data (`:overview`, the first screen when the tenant has
//! alerts): alerts per day and severity and the top alert types (from the daemon's
//! `/overview/alerts`, counted on its time index), active JIT requests, data-subject
//! requests by due date and the audit chain's state. Each part says why it is missing
//! (a permission, an error) instead of failing the whole screen.
//!
//! What it is not: drawing (`draw::overview`) or a cache; `r` reloads it.

use serde_json::Value;
use steward::wire::VerifyReport;
pub use steward::wire::{AlertOverview, Day, TypeCount};

/// Everything the overview shows; each part is its data or why it is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// The period in days (30 or 90).
    pub days: u32,
    /// Alert counts.
    pub alerts: Result<AlertOverview, String>,
    /// The first page of JIT requests (the active ones are drawn).
    pub jit: Result<Vec<Value>, String>,
    /// The first page of data-subject requests.
    pub dsr: Result<Vec<Value>, String>,
    /// The audit chain's check.
    pub chain: Result<VerifyReport, String>,
}

/// The days the overview offers.
pub const PERIODS: [u32; 2] = [30, 90];

/// A data-subject request still open (not completed, rejected or failed).
pub fn dsr_open(v: &Value) -> bool {
    !matches!(
        v.get("status").and_then(Value::as_str),
        Some("completed" | "rejected" | "failed")
    )
}

/// Its deadline (the extended one when extended), RFC 3339.
pub fn dsr_due(v: &Value) -> &str {
    v.get("extendedDueAt")
        .or_else(|| v.get("dueAt"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether an open request's deadline has passed at `now`.
pub fn dsr_overdue(v: &Value, now: jiff::Timestamp) -> bool {
    dsr_open(v)
        && dsr_due(v)
            .parse::<jiff::Timestamp>()
            .is_ok_and(|due| due < now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_open_request_past_its_extended_deadline_is_overdue() {
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let v = json!({"status": "pending_confirmation", "dueAt": "2026-12-01T00:00:00Z"});
        assert!(dsr_overdue(&v, now));
        let v = json!({"status": "in_progress", "dueAt": "2026-12-01T00:00:00Z",
            "extendedDueAt": "2027-02-01T00:00:00Z"});
        assert!(!dsr_overdue(&v, now));
        let v = json!({"status": "completed", "dueAt": "2026-12-01T00:00:00Z"});
        assert!(!dsr_overdue(&v, now));
    }
}

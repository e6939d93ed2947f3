//! The records the benchmark writes: one security contact, and synthetic alerts shaped
//! like Defender's (an IP and an account entity each), the same text for steward and
//! SQLite.

use jiff::{SignedDuration, Timestamp};

/// Distinct account names across the alerts (each named by `N / USERS` alerts).
pub const USERS: u64 = 10_000;
/// Severities, in turn.
pub const SEVERITIES: [&str; 4] = ["High", "Medium", "Low", "Informational"];

/// A security contact's body.
pub fn contact() -> String {
    serde_json::json!({"properties": {
        "emails": "alice@contoso.com;bob@contoso.com",
        "phone": "(214)275-4038",
        "isEnabled": true,
        "notificationsByRole": {"state": "On", "roles": ["Owner"]},
        "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Medium"}]
    }})
    .to_string()
}

/// One synthetic alert: its name, time, severity, account, address and JSON text.
pub struct Alert {
    /// Resource name.
    pub name: String,
    /// `timeGeneratedUtc`.
    pub time: Timestamp,
    /// `severity`.
    pub severity: &'static str,
    /// The account entity's name.
    pub user: String,
    /// The IP entity's address.
    pub ip: String,
    /// The whole alert as sent.
    pub json: String,
}

/// The `i`th alert. Times are one second apart and end two days before `now`, so with
/// `[retention] alerts = "1d"` every alert is already due for the purge.
pub fn alert(i: u64, total: u64, now: Timestamp) -> Alert {
    let secs = i64::try_from(total - i).unwrap_or(i64::MAX);
    let time = now - SignedDuration::from_hours(48) - SignedDuration::from_secs(secs);
    let severity = SEVERITIES[(i % 4) as usize];
    let user = format!("user{}", i % USERS);
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let name = format!("alert-{i:08}");
    let json = serde_json::json!({"name": name, "properties": {
        "alertDisplayName": format!("Suspicious sign-in {}", i % 50),
        "alertType": "VM_SuspiciousSignIn",
        "severity": severity,
        "status": "Active",
        "timeGeneratedUtc": time.to_string(),
        "compromisedEntity": format!("vm{}", i % 500),
        "description": "A sign-in from an unusual location was detected.",
        "entities": [{"type": "ip", "address": ip}, {"type": "account", "name": user}]
    }})
    .to_string();
    Alert {
        name,
        time,
        severity,
        user,
        ip,
        json,
    }
}

/// The JSON array of alerts `from..to`, as one ingest body.
pub fn batch(from: u64, to: u64, total: u64, now: Timestamp) -> String {
    let mut s = String::from("[");
    for i in from..to {
        if i > from {
            s.push(',');
        }
        s.push_str(&alert(i, total, now).json);
    }
    s.push(']');
    s
}

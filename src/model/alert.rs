//! Security alerts (alerts 2022-01-01), kept whole as the source sent them.
//!
//! The API's alert shape is open (entities, evidence, extended properties…), so an alert
//! is a JSON object, not a struct: [`AlertInput::parse`] checks the few fields steward
//! relies on (`name`, `properties`, `properties.timeGeneratedUtc`, `severity`, `status`)
//! and keeps everything else, unknown fields included. Alerts are read-only once ingested.

use jiff::Timestamp;
use serde_json::{Map, Value};

use super::subject::{SubjectKey, SubjectKind, dedup};
use super::validate::{Collector, ValidationErrors, join};
use crate::names::{ResourceName, TenantId};

/// The resource type we serve alerts under (as the API's examples spell it).
pub const ALERT_TYPE: &str = "Microsoft.Security/Locations/alerts";

/// The severities Defender for Cloud sends, most severe first: what the CLI accepts for
/// `--severity` and the TUI's severity filter cycles through (the list's `?severity=`).
pub const SEVERITIES: [&str; 4] = ["High", "Medium", "Low", "Informational"];

/// The statuses Defender for Cloud sends: what the CLI accepts for `--status` and the
/// TUI's status filter cycles through.
pub const STATUSES: [&str; 4] = ["Active", "InProgress", "Resolved", "Dismissed"];

/// The resource group and location an ARM id names (`…/resourceGroups/{rg}/…` and
/// `…/locations/{location}/…`, each if present). The id is read as `/{type}/{name}` pairs
/// from its start, type names compared case-insensitively, so a name that happens to spell
/// a type (a tenant `locations`, a group `resourceGroups`) is never taken for one.
pub fn placement_of(id: &str) -> (Option<&str>, Option<&str>) {
    let segs: Vec<&str> = id.strip_prefix('/').unwrap_or(id).split('/').collect();
    let (mut group, mut location) = (None, None);
    for pair in segs.chunks(2) {
        let [kind, name] = pair else { break };
        if name.is_empty() {
            continue;
        }
        if kind.eq_ignore_ascii_case("resourceGroups") {
            group = group.or(Some(*name));
        } else if kind.eq_ignore_ascii_case("locations") {
            location = location.or(Some(*name));
        }
    }
    (group, location)
}

/// Parser of ingested alerts.
#[derive(Debug, Clone, Copy)]
pub struct AlertInput;

/// An alert that passed ingest validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidAlert {
    name: ResourceName,
    time_generated: Timestamp,
    time_defaulted: bool,
    json: Map<String, Value>,
}

impl AlertInput {
    /// Parses and validates one ingested alert.
    ///
    /// Requires an object with `name` (a valid resource name: the alert's key, so ingest is
    /// idempotent on it) and a `properties` object. `properties.severity` and
    /// `properties.status` are open strings but must be strings when present;
    /// `properties.timeGeneratedUtc`, when present, must be RFC 3339. When it is absent the
    /// alert is stamped with `received_at` (the ingest time), written into
    /// `properties.timeGeneratedUtc` so list order, filters and the 730-day retention all
    /// see the same time, and [`ValidAlert::time_defaulted`] says so. Nothing else is
    /// checked, so nothing else can fail: entities may hold any JSON.
    pub fn parse(body: &Value, received_at: Timestamp) -> Result<ValidAlert, ValidationErrors> {
        let Value::Object(map) = body else {
            return Err(ValidationErrors::one("", "an alert must be a JSON object"));
        };
        let mut c = Collector::new();
        let name = c
            .req_str(map, "name", "", 128)
            .and_then(|n| match ResourceName::parse(&n) {
                Ok(n) => Some(n),
                Err(e) => {
                    c.push("name", e.to_string());
                    None
                }
            });
        let mut time = None;
        match map.get("properties") {
            Some(Value::Object(p)) => {
                c.opt_str(p, "severity", "properties", 64);
                c.opt_str(p, "status", "properties", 64);
                time = c.opt_timestamp(p, "timeGeneratedUtc", "properties");
            }
            None | Some(Value::Null) => c.push("properties", "is required"),
            Some(_) => c.push("properties", "must be an object"),
        }
        let name = c.finish_opt(name)?;
        let mut json = map.clone();
        let (time_generated, time_defaulted) = match time {
            Some(t) => (t, false),
            None => {
                if let Some(Value::Object(p)) = json.get_mut("properties") {
                    p.insert(
                        "timeGeneratedUtc".to_owned(),
                        Value::String(received_at.to_string()),
                    );
                }
                (received_at, true)
            }
        };
        Ok(ValidAlert {
            name,
            time_generated,
            time_defaulted,
            json,
        })
    }

    /// Parses an ingest body that is one alert or an array of alerts. Errors of the i-th
    /// alert of an array have paths prefixed `[i].`; all alerts are checked.
    pub fn parse_batch(
        body: &Value,
        received_at: Timestamp,
    ) -> Result<Vec<ValidAlert>, ValidationErrors> {
        let Value::Array(items) = body else {
            return Self::parse(body, received_at).map(|a| vec![a]);
        };
        let mut out = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match Self::parse(item, received_at) {
                Ok(a) => out.push(a),
                Err(ValidationErrors(es)) => errors.extend(es.into_iter().map(|mut e| {
                    e.path = if e.path.is_empty() {
                        format!("[{i}]")
                    } else {
                        format!("[{i}].{}", e.path)
                    };
                    e
                })),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

impl ValidAlert {
    /// Rebuilds a stored alert (already validated at ingest) from its JSON.
    pub fn from_stored(json: Map<String, Value>) -> Result<Self, ValidationErrors> {
        // A stored alert always has timeGeneratedUtc, so the fallback time is never used.
        AlertInput::parse(&Value::Object(json), Timestamp::UNIX_EPOCH)
    }

    /// The alert's name (its key).
    pub fn name(&self) -> &ResourceName {
        &self.name
    }

    /// `properties.severity` (`Informational`, `Low`, `Medium`, `High`, or as given).
    pub fn severity(&self) -> Option<&str> {
        self.prop_str("severity")
    }

    /// `properties.status` (`Active`, `InProgress`, `Resolved`, `Dismissed`, or as given).
    pub fn status(&self) -> Option<&str> {
        self.prop_str("status")
    }

    /// `properties.alertDisplayName`.
    pub fn display_name(&self) -> Option<&str> {
        self.prop_str("alertDisplayName")
    }

    /// `properties.compromisedEntity`.
    pub fn compromised_entity(&self) -> Option<&str> {
        self.prop_str("compromisedEntity")
    }

    /// When the alert was generated (the ingest time when the source gave none).
    pub fn time_generated(&self) -> Timestamp {
        self.time_generated
    }

    /// Whether `timeGeneratedUtc` was missing and set to the ingest time.
    pub fn time_defaulted(&self) -> bool {
        self.time_defaulted
    }

    /// The whole alert as the source sent it (plus a defaulted `timeGeneratedUtc`).
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// The alert as served by `tenant`: the source's object with `id` and `type` set to
    /// ours (`/subscriptions/{tenant}[/resourceGroups/{rg}]/providers/Microsoft.Security/
    /// locations/{location}/alerts/{name}`, [`ALERT_TYPE`]); everything else as sent. The
    /// resource group and location are those the source's own ARM `id` names ([`placement_of`];
    /// one that is not a valid name is dropped), else none and `local`: the ARM paths
    /// list and get alerts by them. Consumes the alert (an ingest batch would otherwise
    /// copy every alert's whole object).
    pub fn into_json_for_tenant(self, tenant: &TenantId) -> Map<String, Value> {
        let mut m = self.json;
        let (rg, location) = match m.get("id").and_then(Value::as_str) {
            Some(id) => placement_of(id),
            None => (None, None),
        };
        let rg = rg
            .filter(|g| super::jit::is_resource_group(g))
            .map(|g| format!("/resourceGroups/{g}"))
            .unwrap_or_default();
        let location = location
            .filter(|l| ResourceName::parse(l).is_ok())
            .unwrap_or(super::jit::DEFAULT_LOCATION)
            .to_owned();
        m.insert(
            "id".to_owned(),
            Value::String(format!(
                "/subscriptions/{tenant}{rg}/providers/Microsoft.Security/locations/{location}/alerts/{}",
                self.name
            )),
        );
        m.insert("type".to_owned(), Value::String(ALERT_TYPE.to_owned()));
        m
    }

    /// The whole alert, consumed.
    pub fn into_json(self) -> Map<String, Value> {
        self.json
    }

    fn props(&self) -> Option<&Map<String, Value>> {
        self.json.get("properties").and_then(Value::as_object)
    }

    fn prop_str(&self, key: &str) -> Option<&str> {
        self.props()
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
    }

    /// The people the alert names, from `properties.entities[]` and
    /// `properties.compromisedEntity`:
    /// ip entities' `address` (ip); account entities' `name` (user) and `name@upnSuffix`
    /// (email); host entities' `hostName`, `netBiosName` and `fqdn` (host); in any entity, the
    /// email-like fields `upn`, `userPrincipalName`, `email`, `emailAddress`, `mailAddress`,
    /// `mail`, `mailboxPrimaryAddress`, `recipient`, `sender` when they hold an address;
    /// `compromisedEntity` (host). Entities of any other shape are skipped, never an error.
    pub fn subject_keys(&self) -> Vec<SubjectKey> {
        let mut keys = Vec::new();
        let Some(props) = self.props() else {
            return keys;
        };
        if let Some(Value::Array(entities)) = props.get("entities") {
            for (i, e) in entities.iter().enumerate() {
                if let Value::Object(e) = e {
                    entity_keys(e, &format!("properties.entities[{i}]"), &mut keys);
                }
            }
        }
        if let Some(Value::String(h)) = props.get("compromisedEntity") {
            keys.extend(SubjectKey::new(
                SubjectKind::Host,
                h,
                "properties.compromisedEntity",
            ));
        }
        dedup(keys)
    }
}

const EMAIL_FIELDS: [&str; 9] = [
    "upn",
    "userprincipalname",
    "email",
    "emailaddress",
    "mailaddress",
    "mail",
    "mailboxprimaryaddress",
    "recipient",
    "sender",
];

fn entity_keys(e: &Map<String, Value>, base: &str, keys: &mut Vec<SubjectKey>) {
    let kind = e
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let s = |k: &str| e.get(k).and_then(Value::as_str);
    let mut add = |kind: SubjectKind, field: &str, value: &str| {
        keys.extend(SubjectKey::new(kind, value, join(base, field)));
    };
    match kind.as_str() {
        "ip" => {
            if let Some(a) = s("address") {
                add(SubjectKind::Ip, "address", a);
            }
        }
        "account" => {
            if let Some(n) = s("name") {
                add(SubjectKind::User, "name", n);
                if let Some(suffix) = s("upnSuffix") {
                    add(SubjectKind::Email, "upnSuffix", &format!("{n}@{suffix}"));
                }
            }
        }
        "host" => {
            for f in ["hostName", "netBiosName", "fqdn"] {
                if let Some(h) = s(f) {
                    add(SubjectKind::Host, f, h);
                }
            }
        }
        _ => {}
    }
    for (k, v) in e {
        if let Value::String(v) = v
            && EMAIL_FIELDS.contains(&k.to_ascii_lowercase().as_str())
        {
            add(SubjectKind::Email, k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn missing_time_defaults_to_ingest_time_and_is_recorded() {
        let a = AlertInput::parse(
            &json!({"name": "a1", "properties": {"severity": "Mythic"}}),
            now(),
        )
        .unwrap();
        assert!(a.time_defaulted());
        assert_eq!(a.time_generated(), now());
        assert_eq!(
            a.json()["properties"]["timeGeneratedUtc"],
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(a.severity(), Some("Mythic"));
        let b = ValidAlert::from_stored(a.json().clone()).unwrap();
        assert!(!b.time_defaulted());
        assert_eq!(b.time_generated(), now());
    }

    #[test]
    fn all_errors_reported() {
        let e = AlertInput::parse(&json!({"name": "a/b", "properties": {"severity": 3, "status": [], "timeGeneratedUtc": "yesterday"}}), now())
            .unwrap_err();
        assert_eq!(
            e.paths(),
            vec![
                "name",
                "properties.severity",
                "properties.status",
                "properties.timeGeneratedUtc"
            ]
        );
        let e = AlertInput::parse(&json!({"properties": 1}), now()).unwrap_err();
        assert_eq!(e.paths(), vec!["name", "properties"]);
        assert_eq!(
            AlertInput::parse(&json!("x"), now()).unwrap_err().paths(),
            vec![""]
        );
    }

    #[test]
    fn batch_paths_are_prefixed() {
        let e = AlertInput::parse_batch(
            &json!([{"name": "ok", "properties": {}}, {"name": "ok2"}]),
            now(),
        )
        .unwrap_err();
        assert_eq!(e.paths(), vec!["[1].properties"]);
        assert_eq!(
            AlertInput::parse_batch(&json!({"name": "x", "properties": {}}), now())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn odd_entities_never_fail() {
        let a = AlertInput::parse(
            &json!({"name": "x", "properties": {"entities": [null, 3, "s", [], {"type": 4}, {"type": "account", "name": {"n": 1}},
                {"type": "Account", "name": "Bob", "upnSuffix": "contoso.com"}, {"type": "mailbox", "mailboxPrimaryAddress": "Eve@contoso.com"},
                {"type": "host", "hostName": null, "netBiosName": 7}], "compromisedEntity": 12}}),
            now(),
        )
        .unwrap();
        let keys: Vec<String> = a.subject_keys().iter().map(SubjectKey::index_key).collect();
        assert_eq!(
            keys,
            vec!["user:bob", "email:bob@contoso.com", "email:eve@contoso.com"]
        );
    }

    #[test]
    fn json_for_tenant_sets_id_and_type() {
        let a = AlertInput::parse(
            &json!({"id": "theirs", "name": "a1", "properties": {}, "x": 1}),
            now(),
        )
        .unwrap();
        let m = a.into_json_for_tenant(&TenantId::parse("contoso").unwrap());
        assert_eq!(
            m["id"],
            "/subscriptions/contoso/providers/Microsoft.Security/locations/local/alerts/a1"
        );
        assert_eq!(m["type"], ALERT_TYPE);
        assert_eq!(m["x"], 1);
    }

    /// The source's ARM id places the alert (for the ARM paths' lists and gets); a
    /// segment that is not a valid name is not copied into ours.
    #[test]
    fn json_for_tenant_keeps_the_sources_group_and_location() {
        let tenant = TenantId::parse("contoso").unwrap();
        let at = |id: &str| {
            let a = AlertInput::parse(&json!({"id": id, "name": "a1", "properties": {}}), now())
                .unwrap();
            a.into_json_for_tenant(&tenant)["id"].clone()
        };
        assert_eq!(
            at(
                "/subscriptions/x/resourceGroups/myRg1/providers/Microsoft.Security/locations/westeurope/alerts/z"
            ),
            "/subscriptions/contoso/resourceGroups/myRg1/providers/Microsoft.Security/locations/westeurope/alerts/a1"
        );
        assert_eq!(
            at("/subscriptions/x/providers/Microsoft.Security/locations/centralus/alerts/z"),
            "/subscriptions/contoso/providers/Microsoft.Security/locations/centralus/alerts/a1"
        );
        assert_eq!(
            at(
                "/subscriptions/x/resourceGroups/a?b/providers/Microsoft.Security/locations/../alerts/z"
            ),
            "/subscriptions/contoso/providers/Microsoft.Security/locations/local/alerts/a1"
        );
        assert_eq!(
            placement_of("/subscriptions/x/resourcegroups/RG/providers/p/Locations/l/alerts/a"),
            (Some("RG"), Some("l"))
        );
        // Names that spell a type are names, not types: a tenant `locations` or
        // `resourcegroups`, a group `locations`.
        assert_eq!(
            placement_of(
                "/subscriptions/locations/resourceGroups/locations/providers/Microsoft.Security/locations/westeurope/alerts/a"
            ),
            (Some("locations"), Some("westeurope"))
        );
        assert_eq!(
            placement_of(
                "/subscriptions/resourcegroups/resourceGroups/rg1/providers/Microsoft.Security/locations/l/jitNetworkAccessPolicies/p"
            ),
            (Some("rg1"), Some("l"))
        );
        assert_eq!(
            placement_of("/subscriptions/locations/providers/Microsoft.Security/alerts/a"),
            (None, None)
        );
    }
}

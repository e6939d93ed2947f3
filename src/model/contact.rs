//! Security contacts, in the `securityContacts` shape of api-version 2023-12-01-preview.
//!
//! [`ContactInput::parse`] turns a PUT body into validated [`ContactProperties`] (accepting
//! the 2020-01-01-preview shape too); [`SecurityContact`] is the stored and served resource.
//! Nothing here knows about storage or etag generation: the daemon supplies `etag`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::subject::{SubjectKey, SubjectKind, check_email, dedup, phone_digits};
use super::validate::{Collector, ValidationErrors, index, join, resource_body};
use crate::names::{ResourceName, TenantId};

/// The resource type we serve contacts under.
pub const CONTACT_TYPE: &str = "Microsoft.Security/securityContacts";

/// Longest `emails` string accepted, in bytes.
pub const MAX_EMAILS_LEN: usize = 2048;

/// A security contact resource as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityContact {
    /// ARM-style id: `/subscriptions/{tenant}/providers/Microsoft.Security/securityContacts/{name}`.
    #[serde(default)]
    pub id: String,
    /// The contact's name (`default` in practice).
    #[serde(default)]
    pub name: String,
    /// The resource type, [`CONTACT_TYPE`].
    #[serde(rename = "type", default)]
    pub resource_type: String,
    /// Opaque version tag for optimistic concurrency; absent until stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The contact's settings.
    pub properties: ContactProperties,
}

impl SecurityContact {
    /// Builds the resource for `name` in `tenant`, filling `id` and `type`.
    pub fn new(
        tenant: &TenantId,
        name: &ResourceName,
        properties: ContactProperties,
        etag: Option<String>,
    ) -> Self {
        Self {
            id: format!(
                "/subscriptions/{tenant}/providers/Microsoft.Security/securityContacts/{name}"
            ),
            name: name.to_string(),
            resource_type: CONTACT_TYPE.to_owned(),
            etag,
            properties,
        }
    }
}

/// `properties` of a security contact. Every field is optional, as in the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactProperties {
    /// `;`-separated email addresses, each checked, stored trimmed as `a@x.com;b@y.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<String>,
    /// A phone number as written (`(214)275-4038`); matched by its digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Whether the contact receives notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// Notify holders of these roles too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications_by_role: Option<NotificationsByRole>,
    /// Which notifications, from which sources, at which minimum level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications_sources: Option<Vec<NotificationsSource>>,
    /// `alertNotifications` as a 2020-01-01-preview body gave it, kept so that shape
    /// reads back whole (an `Off` state keeps its `minimalSeverity`, which no
    /// `notificationsSources` entry can hold). Never served in the 2023 shape
    /// ([`SecurityContact::render`]); a 2023 body leaves it unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_notifications: Option<AlertNotifications>,
}

/// `alertNotifications` of the 2020-01-01-preview shape: open strings, kept as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertNotifications {
    /// `On` or `Off` (or whatever the client sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `High`, `Medium` or `Low`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_severity: Option<String>,
}

/// The shapes a contact is served in, picked by a request's `api-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactShape {
    /// `2020-01-01-preview` (what `azure-mgmt-security` 7.0.0 sends): `emails`, `phone`,
    /// `alertNotifications {state, minimalSeverity}`, `notificationsByRole`.
    Preview2020,
    /// `2023-12-01-preview`: `emails`, `phone`, `isEnabled`, `notificationsByRole`,
    /// `notificationsSources`. The shape contacts are stored in, and `/v1` serves.
    Preview2023,
}

impl ContactShape {
    /// Every served shape with its `api-version`, oldest first.
    pub const SERVED: [(&'static str, ContactShape); 2] = [
        ("2020-01-01-preview", ContactShape::Preview2020),
        ("2023-12-01-preview", ContactShape::Preview2023),
    ];

    /// The shape an `api-version` asks for; `None` for a version not served.
    pub fn from_api_version(version: &str) -> Option<ContactShape> {
        Self::SERVED
            .into_iter()
            .find(|(v, _)| *v == version)
            .map(|(_, s)| s)
    }
}

/// `notificationsByRole`: state and roles are open strings (`On`/`Off`; `Owner`, ...), kept
/// as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationsByRole {
    /// `On` or `Off` (or whatever the client sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `AccountAdmin`, `ServiceAdmin`, `Owner`, `Contributor`, or others kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// One entry of `notificationsSources`, discriminated by `sourceType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsSource {
    /// `Alert`, `AttackPath`, or another type kept as given.
    pub source_type: String,
    /// For `Alert`: `High`, `Medium` or `Low`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_severity: Option<String>,
    /// For `AttackPath`: `Critical`, `High`, `Medium` or `Low`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimal_risk_level: Option<String>,
}

/// Parser of contact PUT bodies.
#[derive(Debug, Clone, Copy)]
pub struct ContactInput;

impl ContactInput {
    /// Parses and validates a contact PUT body into its properties, reporting every problem.
    ///
    /// - The body must be an object with an object `properties` (else one error, target
    ///   `properties`, or the empty path for a non-object body). `id`, `name`, `type`, `etag`
    ///   and unknown fields are ignored.
    /// - `emails`: each `;`-separated address is trimmed and checked; empty segments are
    ///   refused; stored re-joined with `;`. `phone`: see [`phone_digits`].
    /// - The 2020-01-01-preview shape, `alertNotifications {state, minimalSeverity}`, is
    ///   mapped: when `state` is `On` (any case) it becomes a `notificationsSources` entry
    ///   `{sourceType: Alert, minimalSeverity}`; when `Off` it adds nothing (no Alert
    ///   source = no alert mails, as in the 2023 API). `isEnabled` is left unset. A body
    ///   carrying both `alertNotifications` and `notificationsSources` is refused at
    ///   `properties.alertNotifications`, since the two could disagree.
    pub fn parse(body: &Value) -> Result<ContactProperties, ValidationErrors> {
        let (_, p) = resource_body(body)?;
        Self::parse_properties(p, "properties")
    }

    /// Parses a `properties` object already taken out of its body; `base` is its path.
    pub fn parse_properties(
        p: &Map<String, Value>,
        base: &str,
    ) -> Result<ContactProperties, ValidationErrors> {
        let mut c = Collector::new();
        let emails = c
            .opt_str(p, "emails", base, MAX_EMAILS_LEN)
            .and_then(|s| normalise_emails(&s, &join(base, "emails"), &mut c));
        let phone = c.opt_str(p, "phone", base, 64);
        if let Some(ph) = &phone
            && let Err(why) = phone_digits(ph)
        {
            c.push(join(base, "phone"), why);
        }
        let is_enabled = c.opt_bool(p, "isEnabled", base);

        let nbr_path = join(base, "notificationsByRole");
        let notifications_by_role = c.opt_object(p, "notificationsByRole", base).map(|m| {
            let state = c.opt_str(m, "state", &nbr_path, 64);
            let roles = c.opt_array(m, "roles", &nbr_path).map(|a| {
                let roles_path = join(&nbr_path, "roles");
                a.iter()
                    .enumerate()
                    .filter_map(|(i, v)| c.string(v, &index(&roles_path, i), 128))
                    .collect()
            });
            NotificationsByRole { state, roles }
        });

        let ns_path = join(base, "notificationsSources");
        let mut notifications_sources = c.opt_array(p, "notificationsSources", base).map(|a| {
            a.iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let path = index(&ns_path, i);
                    let m = c.object(v, &path)?;
                    let source_type = c.req_str(m, "sourceType", &path, 64);
                    let minimal_severity = c.opt_str(m, "minimalSeverity", &path, 64);
                    let minimal_risk_level = c.opt_str(m, "minimalRiskLevel", &path, 64);
                    Some(NotificationsSource {
                        source_type: source_type?,
                        minimal_severity,
                        minimal_risk_level,
                    })
                })
                .collect::<Vec<_>>()
        });

        let mut alert_notifications = None;
        if let Some(an) = c.opt_object(p, "alertNotifications", base) {
            let an_path = join(base, "alertNotifications");
            if p.get("notificationsSources").is_some_and(|v| !v.is_null()) {
                c.push(
                    an_path.clone(),
                    "cannot be combined with notificationsSources (alertNotifications is the 2020-01-01-preview form of an Alert source)",
                );
            }
            let state = c.opt_str(an, "state", &an_path, 64);
            let minimal_severity = c.opt_str(an, "minimalSeverity", &an_path, 64);
            if state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("on"))
            {
                notifications_sources
                    .get_or_insert_with(Vec::new)
                    .push(NotificationsSource {
                        source_type: "Alert".to_owned(),
                        minimal_severity: minimal_severity.clone(),
                        minimal_risk_level: None,
                    });
            }
            alert_notifications = Some(AlertNotifications {
                state,
                minimal_severity,
            });
        }

        c.finish(ContactProperties {
            emails,
            phone,
            is_enabled,
            notifications_by_role,
            notifications_sources,
            alert_notifications,
        })
    }
}

/// Checks each address of a `;`-separated list and re-joins the trimmed addresses.
fn normalise_emails(s: &str, path: &str, c: &mut Collector) -> Option<String> {
    let parts: Vec<&str> = s.split(';').map(str::trim).collect();
    let mut ok = true;
    for (i, part) in parts.iter().enumerate() {
        let n = i + 1;
        if part.is_empty() {
            c.push(path, format!("address {n} is empty (stray ';'?)"));
            ok = false;
        } else if let Err(why) = check_email(part) {
            c.push(path, format!("address {n} {why}"));
            ok = false;
        }
    }
    ok.then(|| parts.join(";"))
}

impl ContactProperties {
    /// The addresses of `emails`, trimmed, in order, as written (not lower-cased).
    pub fn emails(&self) -> Vec<String> {
        self.emails
            .as_deref()
            .map(|s| {
                s.split(';')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The digits of `phone`, when there is a valid one.
    pub fn phone_digits(&self) -> Option<String> {
        self.phone.as_deref().and_then(|p| phone_digits(p).ok())
    }

    /// The people this contact names: each email (`properties.emails`) and the phone
    /// (`properties.phone`), normalised, without duplicates.
    pub fn subject_keys(&self) -> Vec<SubjectKey> {
        let mut keys: Vec<SubjectKey> = self
            .emails()
            .iter()
            .filter_map(|e| SubjectKey::new(SubjectKind::Email, e, "properties.emails"))
            .collect();
        if let Some(p) = &self.phone {
            keys.extend(SubjectKey::new(SubjectKind::Phone, p, "properties.phone"));
        }
        dedup(keys)
    }

    /// Whether `address` is one of the emails (compared case-insensitively).
    pub fn has_email(&self, address: &str) -> bool {
        let a = address.trim().to_lowercase();
        self.emails().iter().any(|e| e.to_lowercase() == a)
    }

    /// These properties with every occurrence of `address` (case-insensitive) removed from
    /// `emails`, for data-subject erasure. `None` when no address is left: the caller then
    /// deletes the contact (DESIGN.md: "deleting a contact left with none"). When `address`
    /// is not present the result equals `self` (check with [`ContactProperties::has_email`]).
    pub fn without_email(&self, address: &str) -> Option<ContactProperties> {
        let target = address.trim().to_lowercase();
        let left: Vec<String> = self
            .emails()
            .into_iter()
            .filter(|e| e.to_lowercase() != target)
            .collect();
        if left.is_empty() {
            return None;
        }
        let mut out = self.clone();
        if self.emails.is_some() {
            out.emails = Some(left.join(";"));
        }
        Some(out)
    }

    /// The names of the top-level fields set, for audit records (names, never values).
    pub fn field_names(&self) -> Vec<String> {
        let mut f = Vec::new();
        let mut add = |set: bool, name: &str| {
            if set {
                f.push(format!("properties.{name}"));
            }
        };
        add(self.emails.is_some(), "emails");
        add(self.phone.is_some(), "phone");
        add(self.is_enabled.is_some(), "isEnabled");
        add(self.notifications_by_role.is_some(), "notificationsByRole");
        add(self.notifications_sources.is_some(), "notificationsSources");
        add(self.alert_notifications.is_some(), "alertNotifications");
        f
    }

    /// `alertNotifications` as the 2020-01-01-preview shape reads it: as written in that
    /// shape when it was, else from the first `Alert` source (`On` with its
    /// `minimalSeverity`, `Off` when `isEnabled` is false), else `Off`.
    pub fn alert_notifications_2020(&self) -> AlertNotifications {
        if let Some(an) = &self.alert_notifications {
            return an.clone();
        }
        let alert = self
            .notifications_sources
            .iter()
            .flatten()
            .find(|s| s.source_type.eq_ignore_ascii_case("alert"));
        let on = alert.is_some() && self.is_enabled != Some(false);
        AlertNotifications {
            state: Some(if on { "On" } else { "Off" }.to_owned()),
            minimal_severity: alert.and_then(|s| s.minimal_severity.clone()),
        }
    }
}

impl SecurityContact {
    /// The contact as served in `shape`. The 2023 shape is the stored one without the
    /// kept 2020 `alertNotifications`; the 2020 shape has `emails`, `phone`,
    /// `notificationsByRole` and `alertNotifications`
    /// ([`ContactProperties::alert_notifications_2020`]), and cannot hold `isEnabled` or
    /// sources other than `Alert`.
    pub fn render(&self, shape: ContactShape) -> serde_json::Result<Value> {
        let mut v = serde_json::to_value(self)?;
        let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut) else {
            return Ok(v);
        };
        p.remove("alertNotifications");
        if shape == ContactShape::Preview2020 {
            p.remove("isEnabled");
            p.remove("notificationsSources");
            let an = self.properties.alert_notifications_2020();
            p.insert("alertNotifications".to_owned(), serde_json::to_value(an)?);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_problems_reported_with_paths() {
        let e = ContactInput::parse(&json!({"properties": {
            "emails": "ok@contoso.com;;bad;x@y",
            "phone": "12ab",
            "isEnabled": "yes",
            "notificationsByRole": {"roles": ["Owner", 3]},
            "notificationsSources": [{"minimalSeverity": "Low"}, 4]
        }}))
        .unwrap_err();
        assert_eq!(
            e.paths(),
            vec![
                "properties.emails",
                "properties.emails",
                "properties.emails",
                "properties.phone",
                "properties.isEnabled",
                "properties.notificationsByRole.roles[1]",
                "properties.notificationsSources[0].sourceType",
                "properties.notificationsSources[1]",
            ]
        );
        assert!(e.0[0].message.contains("address 2"), "{}", e.0[0].message);
        assert!(e.0[1].message.contains("address 3"));
        assert!(e.0[2].message.contains("address 4"));
        // Messages never echo the value.
        assert!(!e.to_string().contains("bad"));
    }

    #[test]
    fn emails_are_trimmed_and_rejoined() {
        let p =
            ContactInput::parse(&json!({"properties": {"emails": " a@x.com ; B@y.org"}})).unwrap();
        assert_eq!(p.emails.as_deref(), Some("a@x.com;B@y.org"));
        assert_eq!(p.emails(), vec!["a@x.com", "B@y.org"]);
    }

    #[test]
    fn without_email_removes_one_address() {
        let p = ContactInput::parse(
            &json!({"properties": {"emails": "a@x.com;B@y.org", "phone": "(214)275-4038"}}),
        )
        .unwrap();
        let q = p.without_email("b@Y.org").unwrap();
        assert_eq!(q.emails.as_deref(), Some("a@x.com"));
        assert_eq!(q.phone, p.phone);
        assert!(p.has_email("B@Y.ORG"));
        assert!(!q.has_email("b@y.org"));
        assert_eq!(q.without_email("a@x.com"), None);
        assert_eq!(p.without_email("nobody@x.com").unwrap(), p);
    }

    /// A contact PUT in one shape reads back whole in the same shape, and in the other
    /// shape holds what that shape can say.
    #[test]
    fn each_shape_reads_back_whole() {
        let tenant = TenantId::parse("contoso").unwrap();
        let name = ResourceName::parse("default").unwrap();
        let old = json!({
            "emails": "a@x.com;b@y.org",
            "phone": "(214)275-4038",
            "alertNotifications": {"state": "Off", "minimalSeverity": "High"},
            "notificationsByRole": {"state": "On", "roles": ["Owner"]}
        });
        let p = ContactInput::parse(&json!({ "properties": old })).unwrap();
        let c = SecurityContact::new(&tenant, &name, p, None);
        assert_eq!(
            c.render(ContactShape::Preview2020).unwrap()["properties"],
            old
        );
        let new = c.render(ContactShape::Preview2023).unwrap();
        assert_eq!(new["properties"].get("alertNotifications"), None);
        assert_eq!(new["properties"]["emails"], "a@x.com;b@y.org");

        let new_body = json!({
            "emails": "a@x.com",
            "isEnabled": true,
            "notificationsByRole": {"state": "Off", "roles": []},
            "notificationsSources": [
                {"sourceType": "Alert", "minimalSeverity": "Medium"},
                {"sourceType": "AttackPath", "minimalRiskLevel": "Critical"}
            ]
        });
        let p = ContactInput::parse(&json!({ "properties": new_body })).unwrap();
        let c = SecurityContact::new(&tenant, &name, p, None);
        assert_eq!(
            c.render(ContactShape::Preview2023).unwrap()["properties"],
            new_body
        );
        assert_eq!(
            c.render(ContactShape::Preview2020).unwrap()["properties"],
            json!({
                "emails": "a@x.com",
                "alertNotifications": {"state": "On", "minimalSeverity": "Medium"},
                "notificationsByRole": {"state": "Off", "roles": []}
            })
        );
        assert_eq!(
            ContactShape::from_api_version("2020-01-01-preview"),
            Some(ContactShape::Preview2020)
        );
        assert_eq!(ContactShape::from_api_version("2017-08-01-preview"), None);
    }

    #[test]
    fn alert_notifications_off_adds_no_source_and_both_forms_conflict() {
        let p = ContactInput::parse(&json!({"properties": {"alertNotifications": {"state": "Off", "minimalSeverity": "High"}}})).unwrap();
        assert_eq!(p.notifications_sources, None);
        let e = ContactInput::parse(&json!({"properties": {
            "alertNotifications": {"state": "On"},
            "notificationsSources": []
        }}))
        .unwrap_err();
        assert_eq!(e.paths(), vec!["properties.alertNotifications"]);
    }
}

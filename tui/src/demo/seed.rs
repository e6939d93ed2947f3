//! Demo data, sent through the socket API with `steward::client::Client` exactly as any
//! client would, so the audit log the demo shows is the one these requests wrote.
//!
//! Per tenant: security contacts in the 2023 and 2020 shapes (one edited with
//! `If-Match`, one deleted), JIT policies over a few VMs and ports, JIT requests that
//! are live, superseded, revoked or about to expire (the daemon's timer ends them while
//! the demo runs), and a few thousand alerts of every severity and status over the last
//! 90 days with ip, account and host entities, ingested in batches of [`BATCH`].
//!
//! The data is pseudo-random from a fixed seed per tenant, so every demo looks alike.

use anyhow::{Context, bail};
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use steward::client::Client;

/// Alerts per ingest request.
pub const BATCH: usize = 1000;

/// Alerts seeded per tenant.
pub const ALERTS: [(&str, usize); 3] = [("contoso", 2000), ("fabrikam", 800), ("northwind", 500)];

/// Seeds every tenant.
pub async fn seed_all(c: &Client) -> anyhow::Result<()> {
    for (i, (tenant, alerts)) in ALERTS.into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0x5745_5741_5244 + i as u64);
        contacts(c, tenant).await?;
        jit(c, tenant).await?;
        seed_alerts(c, tenant, alerts, &mut rng).await?;
    }
    Ok(())
}

/// Sends one JSON request and returns the decoded answer; any non-2xx is an error that
/// names the request.
async fn send(
    c: &Client,
    method: steward::client::Method,
    path: &str,
    body: &Value,
    if_match: Option<&str>,
) -> anyhow::Result<(Value, Option<String>)> {
    let body = steward::client::Body::json(body)?;
    let headers = steward::client::if_match_header(if_match);
    let r = c
        .request(method.clone(), path, Some(body), &headers)
        .await
        .with_context(|| format!("{method} {path}"))?
        .error_for_status()
        .with_context(|| format!("{method} {path}"))?;
    let etag = r.etag().map(str::to_owned);
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()?
    };
    Ok((v, etag))
}

async fn put(c: &Client, path: &str, body: &Value) -> anyhow::Result<(Value, Option<String>)> {
    send(c, steward::client::Method::PUT, path, body, None).await
}

async fn post(c: &Client, path: &str, body: &Value) -> anyhow::Result<Value> {
    Ok(send(c, steward::client::Method::POST, path, body, None)
        .await?
        .0)
}

/// Contacts: `default` in the 2023 shape, `soc-escalation` in the 2020 shape, a
/// `billing-security` one that is edited (If-Match) and a `legacy` one that is deleted.
async fn contacts(c: &Client, t: &str) -> anyhow::Result<()> {
    let base = format!("/v1/tenants/{t}/contacts");
    let domain = format!("{t}.example.com");
    put(
        c,
        &format!("{base}/default"),
        &json!({"properties": {
            "isEnabled": true,
            "emails": format!("secops@{domain};alice.ng@{domain}"),
            "phone": "(214)275-4038",
            "notificationsByRole": {"state": "On", "roles": ["Owner", "ServiceAdmin"]},
            "notificationsSources": [
                {"sourceType": "Alert", "minimalSeverity": "Medium"},
                {"sourceType": "AttackPath", "minimalRiskLevel": "Critical"}
            ]
        }}),
    )
    .await?;
    put(
        c,
        &format!("{base}/soc-escalation"),
        &json!({"properties": {
            "emails": format!("soc-oncall@{domain}"),
            "phone": "+44 20 7946 0958",
            "alertNotifications": {"state": "On", "minimalSeverity": "High"},
            "notificationsByRole": {"state": "On", "roles": ["Owner"]}
        }}),
    )
    .await?;
    let (_, etag) = put(
        c,
        &format!("{base}/billing-security"),
        &json!({"properties": {
            "isEnabled": false,
            "emails": format!("finance-it@{domain}"),
            "notificationsByRole": {"state": "Off", "roles": []},
            "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "High"}]
        }}),
    )
    .await?;
    send(
        c,
        steward::client::Method::PUT,
        &format!("{base}/billing-security"),
        &json!({"properties": {
            "isEnabled": true,
            "emails": format!("finance-it@{domain};bob.okafor@{domain}"),
            "phone": "(425)555-0142",
            "notificationsByRole": {"state": "On", "roles": ["AccountAdmin"]},
            "notificationsSources": [{"sourceType": "Alert", "minimalSeverity": "Low"}]
        }}),
        etag.as_deref(),
    )
    .await?;
    put(
        c,
        &format!("{base}/legacy"),
        &json!({"properties": {
            "emails": format!("old-helpdesk@{domain}"),
            "alertNotifications": {"state": "Off", "minimalSeverity": "Low"}
        }}),
    )
    .await?;
    let r = c.delete(&format!("{base}/legacy"), None).await?;
    r.error_for_status()
        .context("deleting the legacy contact")?;
    Ok(())
}

fn vm(t: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{t}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

fn port(number: u16, prefix: &str, max: &str) -> Value {
    json!({"number": number, "protocol": "TCP", "allowedSourceAddressPrefix": prefix, "maxRequestAccessDuration": max})
}

fn initiate(vm: &str, number: u16, end: Timestamp, source: &str, why: &str) -> Value {
    json!({
        "virtualMachines": [{"id": vm, "ports": [
            {"number": number, "endTimeUtc": end.to_string(), "allowedSourceAddressPrefix": source}
        ]}],
        "justification": why
    })
}

fn in_secs(secs: i64) -> Timestamp {
    Timestamp::now() + SignedDuration::from_secs(secs)
}

/// Policies over a few VMs, and requests in every state.
async fn jit(c: &Client, t: &str) -> anyhow::Result<()> {
    let base = format!("/v1/tenants/{t}");
    let web1 = vm(t, "rg-web-prod", "web-01");
    let web2 = vm(t, "rg-web-prod", "web-02");
    let sql = vm(t, "rg-data", "sql-01");
    let jump = vm(t, "rg-mgmt", "jumphost-01");
    put(
        c,
        &format!("{base}/jit-policies/web-tier"),
        &json!({"kind": "Basic", "properties": {"virtualMachines": [
            {"id": web1, "ports": [port(22, "198.51.100.0/24", "PT3H"), port(3389, "*", "PT1H")]},
            {"id": web2, "ports": [port(22, "198.51.100.0/24", "PT3H")]}
        ]}}),
    )
    .await?;
    put(
        c,
        &format!("{base}/jit-policies/data-tier"),
        &json!({"kind": "Basic", "properties": {"virtualMachines": [
            {"id": sql, "ports": [port(1433, "10.20.0.0/16", "PT2H"), port(22, "10.20.0.0/16", "PT1H")]}
        ]}}),
    )
    .await?;
    put(
        c,
        &format!("{base}/jit-policies/mgmt"),
        &json!({"kind": "Basic", "properties": {"virtualMachines": [
            {"id": jump, "ports": [port(3389, "*", "PT8H"), port(5985, "203.0.113.0/24", "PT4H")]}
        ]}}),
    )
    .await?;

    let init = |p: &str| format!("{base}/jit-policies/{p}/initiate");
    // Live for a while.
    post(
        c,
        &init("web-tier"),
        &initiate(
            &web1,
            22,
            in_secs(2 * 3600),
            "198.51.100.17",
            "patching openssl (CHG-20417)",
        ),
    )
    .await?;
    post(
        c,
        &init("mgmt"),
        &initiate(
            &jump,
            3389,
            in_secs(6 * 3600),
            "192.0.2.44",
            "quarterly access review",
        ),
    )
    .await?;
    // Superseded by a newer request on the same port.
    post(
        c,
        &init("data-tier"),
        &initiate(&sql, 1433, in_secs(3600), "10.20.4.8", "index rebuild"),
    )
    .await?;
    post(
        c,
        &init("data-tier"),
        &initiate(
            &sql,
            1433,
            in_secs(5400),
            "10.20.4.9",
            "index rebuild, second attempt",
        ),
    )
    .await?;
    // Revoked by its requester.
    let r = post(
        c,
        &init("web-tier"),
        &initiate(
            &web2,
            22,
            in_secs(3 * 3600),
            "198.51.100.80",
            "incident INC-5521 triage",
        ),
    )
    .await?;
    let Some(id) = r["id"].as_str() else {
        bail!("the daemon's answer to initiate has no id: {r}");
    };
    post(c, &format!("{base}/jit-requests/{id}/revoke"), &json!({})).await?;
    // Ends on its own a few seconds into the demo (the daemon's timer expires it).
    post(
        c,
        &init("mgmt"),
        &initiate(&jump, 5985, in_secs(8), "203.0.113.12", "winrm smoke test"),
    )
    .await?;
    Ok(())
}

/// What an alert is about: type, display name, intent, the severities it comes in.
struct Template {
    alert_type: &'static str,
    display: &'static str,
    intent: &'static str,
    severities: &'static [&'static str],
    description: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        alert_type: "VM_SshBruteForceFailed",
        display: "Failed SSH brute force attack",
        intent: "PreAttack",
        severities: &["Medium", "Low"],
        description: "Failed brute force attacks were detected from the attackers' IP address.",
    },
    Template {
        alert_type: "VM_SshBruteForceSuccess",
        display: "Successful SSH brute force attack",
        intent: "InitialAccess",
        severities: &["High"],
        description: "A successful login occurred after a series of failed attempts from one source.",
    },
    Template {
        alert_type: "VM_SuspiciousPowerShell",
        display: "Suspicious PowerShell activity detected",
        intent: "Execution",
        severities: &["High", "Medium"],
        description: "Analysis of host data detected a PowerShell script running an obfuscated command.",
    },
    Template {
        alert_type: "VM_CoinMiner",
        display: "Digital currency mining related behavior detected",
        intent: "Impact",
        severities: &["High"],
        description: "A process behaving like a cryptocurrency miner was observed.",
    },
    Template {
        alert_type: "SQL.VM_BruteForce",
        display: "Suspected brute force attack attempt on SQL Server",
        intent: "PreAttack",
        severities: &["Medium", "High"],
        description: "An abnormally high number of failed logins with different credentials.",
    },
    Template {
        alert_type: "Storage.Blob_AnonymousAccessAnomaly",
        display: "Unusual unauthenticated access to a storage container",
        intent: "Collection",
        severities: &["Low", "Medium"],
        description: "A storage container was accessed without authentication in an unusual way.",
    },
    Template {
        alert_type: "KV_AccountVolumeAnomaly",
        display: "Unusual volume of operations in a key vault",
        intent: "CredentialAccess",
        severities: &["Medium", "Low"],
        description: "An anomalous number of key vault operations was performed by one account.",
    },
    Template {
        alert_type: "ARM_AnomalousOperation.Execution",
        display: "Suspicious invocation of a high-risk 'Execution' operation",
        intent: "Execution",
        severities: &["Medium"],
        description: "A user invoked a high-risk operation in your subscription for the first time.",
    },
    Template {
        alert_type: "DNS_DomainGenerationAlgorithm",
        display: "Anomalous domain name detected",
        intent: "CommandAndControl",
        severities: &["Low", "Informational"],
        description: "DNS queries for domain names that look generated by an algorithm.",
    },
    Template {
        alert_type: "K8S_PrivilegedContainer",
        display: "Privileged container detected",
        intent: "PrivilegeEscalation",
        severities: &["Low"],
        description: "A container running in privileged mode was started.",
    },
    Template {
        alert_type: "VM_EICAR",
        display: "Azure Security Center test alert (not a threat)",
        intent: "Execution",
        severities: &["Informational"],
        description: "This is a test alert generated by Azure Security Center.",
    },
    Template {
        alert_type: "AppServices_PhishingContent",
        display: "Phishing content hosted on Azure Webapps",
        intent: "Collection",
        severities: &["Informational", "Low"],
        description: "A URL used by the web app looks like a phishing page.",
    },
];

const HOSTS: &[&str] = &[
    "web-01",
    "web-02",
    "sql-01",
    "jumphost-01",
    "build-agent-03",
    "aks-nodepool1-12",
    "dc-02",
    "files-01",
];
const ACCOUNTS: &[&str] = &[
    "alice.ng",
    "bob.okafor",
    "carol.silva",
    "dmitri.petrov",
    "svc-backup",
    "svc-deploy",
    "administrator",
    "root",
];
const PLACES: &[(&str, &str)] = &[
    ("nl", "amsterdam"),
    ("us", "ashburn"),
    ("br", "sao paulo"),
    ("sg", "singapore"),
    ("de", "frankfurt"),
    ("ru", "moscow"),
    ("cn", "shanghai"),
    ("gb", "london"),
];
const LOCATIONS: &[&str] = &["westeurope", "eastus", "northeurope", "southeastasia"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// One realistic alert, generated `age_secs` ago.
fn alert(t: &str, i: usize, rng: &mut StdRng, now: Timestamp) -> Value {
    let tpl = pick(rng, TEMPLATES);
    let severity = *pick(rng, tpl.severities);
    let age = rng.random_range(0..90 * 24 * 3600i64);
    let generated = now - SignedDuration::from_secs(age);
    // Older alerts have mostly been dealt with.
    let roll = rng.random_range(0..100);
    let status = match (age > 14 * 24 * 3600, roll) {
        (true, 0..15) | (false, 0..55) => "Active",
        (true, 15..30) | (false, 55..75) => "InProgress",
        (true, 30..80) | (false, 75..90) => "Resolved",
        _ => "Dismissed",
    };
    let host = *pick(rng, HOSTS);
    let account = *pick(rng, ACCOUNTS);
    let (country, city) = *pick(rng, PLACES);
    let ip = format!(
        "{}.{}.{}.{}",
        pick(rng, &[45u8, 89, 103, 185, 193, 198]),
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8)
    );
    let location = *pick(rng, LOCATIONS);
    let rg = if host.starts_with("sql") {
        "rg-data"
    } else if host.starts_with("web") {
        "rg-web-prod"
    } else {
        "rg-mgmt"
    };
    let resource = vm(t, rg, host);
    let uuid = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        rng.random::<u32>(),
        rng.random::<u16>(),
        rng.random::<u16>() & 0x0fff | 0x4000,
        rng.random::<u16>() & 0x3fff | 0x8000,
        rng.random::<u64>() & 0xffff_ffff_ffff
    );
    let name = format!("25{:016}_{uuid}", 1_000_000_000_000 + i as u64 * 7919);
    json!({
        "name": name,
        "properties": {
            "version": "2022-01-01",
            "alertType": tpl.alert_type,
            "systemAlertId": name,
            "productComponentName": "Servers",
            "alertDisplayName": tpl.display,
            "description": tpl.description,
            "severity": severity,
            "intent": tpl.intent,
            "startTimeUtc": (generated - SignedDuration::from_secs(600)).to_string(),
            "endTimeUtc": generated.to_string(),
            "timeGeneratedUtc": generated.to_string(),
            "processingEndTimeUtc": (generated + SignedDuration::from_secs(42)).to_string(),
            "resourceIdentifiers": [{"azureResourceId": resource, "type": "AzureResource"}],
            "remediationSteps": ["Review the entities in this alert and escalate if unexpected."],
            "vendorName": "Microsoft",
            "status": status,
            "productName": "Microsoft Defender for Cloud",
            "compromisedEntity": host,
            "isIncident": false,
            "alertUri": format!("https://portal.azure.com/#blade/Microsoft_Azure_Security/AlertBlade/alertId/{name}/location/{location}"),
            "entities": [
                {"$id": "1", "type": "ip", "address": ip, "location": {"countryCode": country, "city": city}},
                {"$id": "2", "type": "account", "name": account, "ntDomain": t.to_uppercase(), "upnSuffix": format!("{t}.example.com")},
                {"$id": "3", "type": "host", "hostName": host, "azureID": resource, "osFamily": if host.starts_with("dc") || host.starts_with("jump") { "Windows" } else { "Linux" }}
            ],
            "extendedProperties": {"resourceType": "Virtual Machine", "location": location}
        }
    })
}

/// `count` alerts, ingested [`BATCH`] at a time as JSON arrays.
async fn seed_alerts(c: &Client, t: &str, count: usize, rng: &mut StdRng) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let all: Vec<Value> = (0..count).map(|i| alert(t, i, rng, now)).collect();
    let path = format!("/v1/tenants/{t}/alerts");
    for batch in all.chunks(BATCH) {
        let r = c
            .request(
                steward::client::Method::POST,
                &path,
                Some(steward::client::Body::json(batch)?),
                &[],
            )
            .await
            .with_context(|| format!("POST {path}"))?
            .error_for_status()
            .with_context(|| format!("POST {path}"))?;
        let answer: Value = r.json()?;
        if answer["ingested"].as_u64() != Some(batch.len() as u64) {
            bail!("the daemon ingested only part of a demo batch: {answer}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_valid_and_cover_every_severity_and_status() {
        let mut rng = StdRng::seed_from_u64(1);
        let now = Timestamp::now();
        let alerts: Vec<Value> = (0..2000)
            .map(|i| alert("contoso", i, &mut rng, now))
            .collect();
        let received = Timestamp::now();
        for a in &alerts {
            steward::model::alert::AlertInput::parse(a, received).unwrap();
        }
        let has = |field: &str, v: &str| alerts.iter().any(|a| a["properties"][field] == v);
        for s in ["Informational", "Low", "Medium", "High"] {
            assert!(has("severity", s), "{s}");
        }
        for s in ["Active", "InProgress", "Resolved", "Dismissed"] {
            assert!(has("status", s), "{s}");
        }
        let names: std::collections::HashSet<_> =
            alerts.iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), alerts.len(), "names are unique");
        let oldest = now - SignedDuration::from_hours(24 * 90);
        assert!(alerts.iter().all(|a| {
            a["properties"]["timeGeneratedUtc"]
                .as_str()
                .unwrap()
                .parse::<Timestamp>()
                .unwrap()
                >= oldest
        }));
    }
}

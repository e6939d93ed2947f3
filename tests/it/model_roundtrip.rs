#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The domain model against the Microsoft.Security API's own example payloads (copied byte
//! for byte into `tests/fixtures/azure-examples/`), and the validation rules DESIGN.md
//! states, end to end through the public API.

use std::path::PathBuf;

use jiff::Timestamp;
use serde_json::{Value, json};
use steward::model::jit::{RevokeReason, STATUS_INITIATED, STATUS_REVOKED};
use steward::model::{
    AlertInput, ContactInput, ContactShape, InitiateRequest, JitPolicy, JitPolicyInput, JitRequest,
    SecurityContact, SubjectKey, SubjectKind,
};
use steward::names::{ResourceName, TenantId};

fn example(name: &str) -> Value {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "azure-examples",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn examples(prefix: &str) -> Vec<(String, Value)> {
    let dir: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "azure-examples",
    ]
    .iter()
    .collect();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), example(&n)))
        .collect()
}

/// Every response body of an x-ms-examples file; a list body contributes its `value` items.
fn response_resources(ex: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for (_, r) in ex["responses"].as_object().unwrap() {
        let Some(body) = r.get("body") else { continue };
        match body.get("value") {
            Some(Value::Array(items)) => out.extend(items.iter().cloned()),
            _ => out.push(body.clone()),
        }
    }
    out
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn tenant() -> TenantId {
    TenantId::parse("contoso").unwrap()
}

/// The subscription of the Microsoft examples: their VMs are in this tenant.
const EXAMPLE_SUB: &str = "20ff7fc3-e762-44dd-bd96-b71116dcdc23";

fn example_tenant() -> TenantId {
    TenantId::parse(EXAMPLE_SUB).unwrap()
}

// ---------------------------------------------------------------- contacts

/// What a 2020-01-01-preview `properties` object becomes: `alertNotifications` with state On
/// is an Alert source too (and `alertNotifications` is kept as given, so the 2020 shape
/// reads back whole).
fn expected_2020(props: &Value) -> Value {
    let mut p = props.as_object().unwrap().clone();
    let an = p["alertNotifications"].clone();
    if an["state"] == "On" {
        p.insert(
            "notificationsSources".into(),
            json!([{"sourceType": "Alert", "minimalSeverity": an["minimalSeverity"]}]),
        );
    }
    Value::Object(p)
}

#[test]
fn contact_examples_parse_and_round_trip() {
    let files = examples("securityContacts_");
    assert_eq!(files.len(), 7);
    let mut checked = 0;
    for (name, ex) in files {
        let mut bodies: Vec<Value> = response_resources(&ex);
        if let Some(req) = ex["parameters"].get("securityContact") {
            bodies.push(req.clone());
        }
        for body in bodies {
            let props = ContactInput::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = serde_json::to_value(&props).unwrap();
            let is_2020 = body["properties"].get("alertNotifications").is_some();
            let want = if is_2020 {
                expected_2020(&body["properties"])
            } else {
                body["properties"].clone()
            };
            assert_eq!(got, want, "{name}");

            // Stored/served form: a response body deserialises and re-serialises unchanged.
            if body.get("id").is_some() {
                let c: SecurityContact = serde_json::from_value(body.clone()).unwrap();
                assert_eq!(serde_json::to_value(&c).unwrap(), body, "{name}");
            }
            // Served in the shape it was written in, it reads back whole.
            let shape = if is_2020 {
                ContactShape::Preview2020
            } else {
                ContactShape::Preview2023
            };
            let name_ok = ResourceName::parse("default").unwrap();
            let c = SecurityContact::new(&tenant(), &name_ok, props, None);
            assert_eq!(
                c.render(shape).unwrap()["properties"],
                body["properties"],
                "{name}: served in its own shape"
            );
            checked += 1;
        }
    }
    assert!(checked >= 9, "checked {checked}");
}

#[test]
fn contact_2020_shape_maps_alert_notifications() {
    let body = json!({"properties": {
        "emails": "john@contoso.com", "alertNotifications": {"state": "On", "minimalSeverity": "Medium"}
    }});
    let p = ContactInput::parse(&body).unwrap();
    let src = p.notifications_sources.as_ref().unwrap();
    assert_eq!(src.len(), 1);
    assert_eq!(src[0].source_type, "Alert");
    assert_eq!(src[0].minimal_severity.as_deref(), Some("Medium"));
    assert_eq!(p.is_enabled, None);
}

#[test]
fn contact_read_only_and_unknown_fields_ignored_and_new_resource_filled() {
    let body = json!({"id": "x", "type": "y", "etag": "z", "name": "other", "extra": 1,
        "properties": {"emails": "a@contoso.com", "futureField": true}});
    let p = ContactInput::parse(&body).unwrap();
    let c = SecurityContact::new(
        &tenant(),
        &ResourceName::parse("default").unwrap(),
        p,
        Some("e1".into()),
    );
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(
        v,
        json!({"id": "/subscriptions/contoso/providers/Microsoft.Security/securityContacts/default",
            "name": "default", "type": "Microsoft.Security/securityContacts", "etag": "e1",
            "properties": {"emails": "a@contoso.com"}})
    );
}

#[test]
fn contact_body_shape_errors() {
    assert_eq!(
        ContactInput::parse(&json!("x")).unwrap_err().paths(),
        vec![""]
    );
    assert_eq!(
        ContactInput::parse(&json!({})).unwrap_err().paths(),
        vec!["properties"]
    );
    assert_eq!(
        ContactInput::parse(&json!({"properties": []}))
            .unwrap_err()
            .paths(),
        vec!["properties"]
    );
}

#[test]
fn contact_unknown_enum_values_kept() {
    let body = json!({"properties": {
        "notificationsByRole": {"state": "Sometimes", "roles": ["Admin", "Owner"]},
        "notificationsSources": [{"sourceType": "Quantum", "minimalRiskLevel": "Extreme"}]
    }});
    let p = ContactInput::parse(&body).unwrap();
    assert_eq!(serde_json::to_value(&p).unwrap(), body["properties"]);
}

#[test]
fn phones_as_people_write_them() {
    for ok in ["(214)275-4038", "+44 20 7946 0958"] {
        assert!(
            ContactInput::parse(&json!({"properties": {"phone": ok}})).is_ok(),
            "{ok}"
        );
    }
    for bad in ["12ab", "123"] {
        let e = ContactInput::parse(&json!({"properties": {"phone": bad}})).unwrap_err();
        assert_eq!(e.paths(), vec!["properties.phone"], "{bad}");
    }
}

#[test]
fn contact_email_errors_name_the_position() {
    let e = ContactInput::parse(
        &json!({"properties": {"emails": "john@contoso.com; jane@@contoso.com;"}}),
    )
    .unwrap_err();
    assert_eq!(e.paths(), vec!["properties.emails", "properties.emails"]);
    assert!(
        e.errors()[0].message.starts_with("address 2 "),
        "{}",
        e.errors()[0].message
    );
    assert!(
        e.errors()[1].message.starts_with("address 3 "),
        "{}",
        e.errors()[1].message
    );
}

#[test]
fn contact_subject_keys() {
    let ex = example("securityContacts_get.json");
    let p = ContactInput::parse(&ex["responses"]["200"]["body"]).unwrap();
    let keys: Vec<(SubjectKind, String, String)> = p
        .subject_keys()
        .into_iter()
        .map(|k| (k.kind, k.value, k.field))
        .collect();
    assert_eq!(
        keys,
        vec![
            (
                SubjectKind::Email,
                "john@contoso.com".into(),
                "properties.emails".into()
            ),
            (
                SubjectKind::Email,
                "jane@contoso.com".into(),
                "properties.emails".into()
            ),
            (
                SubjectKind::Phone,
                "2142754038".into(),
                "properties.phone".into()
            ),
        ]
    );
    // A search query normalises the same way as the index.
    assert_eq!(
        SubjectKey::normalise(SubjectKind::Phone, "214.275.4038").as_deref(),
        Some("2142754038")
    );
    assert_eq!(
        SubjectKey::normalise(SubjectKind::Email, "JANE@contoso.com").as_deref(),
        Some("jane@contoso.com")
    );
    // Erasure of one address keeps the other; of both, leaves nothing.
    let q = p.without_email("JANE@contoso.com").unwrap();
    assert_eq!(q.emails(), vec!["john@contoso.com"]);
    assert!(q.without_email("john@contoso.com").is_none());
}

// ---------------------------------------------------------------- JIT

#[test]
fn jit_policy_examples_round_trip() {
    let mut checked = 0;
    for (name, ex) in examples("jit_") {
        if name == "jit_initiate.json" || name == "jit_delete.json" {
            continue;
        }
        let mut bodies = response_resources(&ex);
        if let Some(b) = ex["parameters"].get("body") {
            bodies.push(b.clone());
        }
        for body in bodies {
            // The PUT parser keeps every field it models with the value given; read-only
            // fields and client-sent `requests` (the daemon fills requests) are dropped.
            let input = JitPolicyInput::parse(&body, &example_tenant())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(input.kind(), body["kind"].as_str(), "{name}");
            assert_eq!(
                serde_json::to_value(&input.properties().virtual_machines).unwrap(),
                body["properties"]["virtualMachines"],
                "{name}"
            );
            assert!(input.properties().requests.is_empty());
            // The same VMs are another tenant's for any other tenant.
            let foreign = JitPolicyInput::parse(&body, &tenant()).unwrap_err();
            assert_eq!(
                foreign.paths(),
                vec!["properties.virtualMachines[0].id"],
                "{name}"
            );
            assert_eq!(
                input.location(),
                body.get("location")
                    .and_then(Value::as_str)
                    .unwrap_or("local")
            );

            // Stored/served form: whole body (requests included) unchanged through serde.
            if body.get("id").is_some() {
                let p: JitPolicy = serde_json::from_value(body.clone()).unwrap();
                assert_eq!(serde_json::to_value(&p).unwrap(), body, "{name}");
                assert_eq!(p.resource_group(), Some("myRg1"));
                assert_eq!(p.properties.requests.len(), 1);
            }
            checked += 1;
        }
    }
    assert!(checked >= 7, "checked {checked}");
}

#[test]
fn jit_request_examples_round_trip_with_unknown_status() {
    let ex = example("jit_initiate.json");
    let body = &ex["responses"]["202"]["body"];
    let r: JitRequest = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(r.virtual_machines[0].ports[0].status, "Initiating");
    assert_eq!(serde_json::to_value(&r).unwrap(), *body);
    let init = InitiateRequest::parse(&ex["parameters"]["body"], &example_tenant()).unwrap();
    assert_eq!(init.virtual_machines[0].ports[0].number, 3389);
    assert_eq!(
        init.justification.as_deref(),
        Some("testing a new version of the product")
    );
}

fn put_policy() -> JitPolicy {
    let ex = example("jit_put.json");
    let input = JitPolicyInput::parse(&ex["parameters"]["body"], &example_tenant()).unwrap();
    JitPolicy::new(&ResourceName::parse("default").unwrap(), input, None)
}

#[test]
fn jit_new_policy_id_uses_first_vm_resource_group_and_local_location() {
    let p = put_policy();
    assert_eq!(
        p.id,
        format!(
            "/subscriptions/{EXAMPLE_SUB}/resourceGroups/myRg1/providers/Microsoft.Security/locations/local/jitNetworkAccessPolicies/default"
        )
    );
    assert_eq!(
        p.resource_type,
        "Microsoft.Security/locations/jitNetworkAccessPolicies"
    );
    assert_eq!(
        p.properties.provisioning_state.as_deref(),
        Some("Succeeded")
    );
}

#[test]
fn jit_example_initiate_is_allowed_by_example_policy() {
    let ex = example("jit_initiate.json");
    let init = InitiateRequest::parse(&ex["parameters"]["body"], &example_tenant()).unwrap();
    let now = ts("2018-07-12T08:53:03.3658798Z");
    let r = put_policy()
        .initiate(&init, "barbara@contoso.com", now, "req-1")
        .unwrap();
    let mut v = serde_json::to_value(&r).unwrap();
    let mut want = ex["responses"]["202"]["body"].clone();
    // The example's VM id has another subscription (a known quirk) and status `Initiating`.
    want["virtualMachines"][0]["id"] = v["virtualMachines"][0]["id"].clone();
    want["virtualMachines"][0]["ports"][0]["status"] = json!("Initiated");
    want["id"] = json!("req-1");
    want["policyName"] = json!("default");
    assert_eq!(v.take(), want);
    let keys: Vec<String> = r.subject_keys().iter().map(SubjectKey::index_key).collect();
    assert_eq!(keys, vec!["email:barbara@contoso.com", "ip:192.127.0.2"]);
}

#[test]
fn jit_validation_reports_every_error_with_paths() {
    let body = json!({"properties": {"virtualMachines": [{
    "id": "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
    "ports": [
        {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "P3D"},
        {"number": 80, "protocol": "TCP", "allowedSourceAddressPrefix": "10.0.0.1",
         "allowedSourceAddressPrefixes": ["10.0.0.0/8"], "maxRequestAccessDuration": "PT1H"},
        {"number": 70000, "protocol": "UDP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT1H"}
    ]}]}});
    let e = JitPolicyInput::parse(&body, &tenant()).unwrap_err();
    assert_eq!(
        e.paths(),
        vec![
            "properties.virtualMachines[0].ports[0].maxRequestAccessDuration",
            "properties.virtualMachines[0].ports[1].allowedSourceAddressPrefixes",
            "properties.virtualMachines[0].ports[2].number",
        ]
    );
    // With a bad contact email, the four problems of the brief (email, 70000, P3D, both
    // prefixes) are each reported at their path.
    let c = ContactInput::parse(&json!({"properties": {"emails": "not-an-address"}})).unwrap_err();
    assert_eq!(c.paths(), vec!["properties.emails"]);
}

#[test]
fn jit_validation_more_rules() {
    let body = json!({"location": "west europe", "properties": {"virtualMachines": [
    {"id": "", "ports": []},
    {"id": "vm-without-rg", "ports": [
        {"number": 22, "protocol": "ICMP", "maxRequestAccessDuration": "PT4M"},
        {"number": 22, "protocol": "*", "allowedSourceAddressPrefixes": ["300.1.1.1", "*"], "maxRequestAccessDuration": "PT5M"},
        {"number": 23, "protocol": "*", "allowedSourceAddressPrefixes": [], "maxRequestAccessDuration": "soon"}
    ]}]}});
    let e = JitPolicyInput::parse(&body, &tenant()).unwrap_err();
    assert_eq!(
        e.paths(),
        vec![
            "location",
            "properties.virtualMachines[0].id",
            "properties.virtualMachines[0].ports",
            "properties.virtualMachines[1].id",
            "properties.virtualMachines[1].ports[0].protocol",
            "properties.virtualMachines[1].ports[0].allowedSourceAddressPrefix",
            "properties.virtualMachines[1].ports[0].maxRequestAccessDuration",
            "properties.virtualMachines[1].ports[1].allowedSourceAddressPrefixes[0]",
            "properties.virtualMachines[1].ports[1].number",
            "properties.virtualMachines[1].ports[2].allowedSourceAddressPrefixes",
            "properties.virtualMachines[1].ports[2].maxRequestAccessDuration",
        ]
    );
    let e = JitPolicyInput::parse(&json!({"properties": {"virtualMachines": []}}), &tenant())
        .unwrap_err();
    assert_eq!(e.paths(), vec!["properties.virtualMachines"]);
    // P1D and PT5M are the inclusive bounds.
    let ok = json!({"properties": {"virtualMachines": [{"id": "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/x",
        "ports": [{"number": 0, "protocol": "tcp", "allowedSourceAddressPrefix": "2001:db8::/32", "maxRequestAccessDuration": "P1D"},
                  {"number": 65535, "protocol": "*", "allowedSourceAddressPrefixes": ["10.0.0.0/8", "192.168.1.7"], "maxRequestAccessDuration": "PT5M"}]}]}});
    let p = JitPolicyInput::parse(&ok, &tenant()).unwrap();
    assert_eq!(p.location(), "local");
    assert_eq!(
        p.properties().virtual_machines[0].ports[0]
            .protocol
            .as_str(),
        "TCP"
    );
}

const VM: &str =
    "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1";

fn policy(ports: Value) -> JitPolicy {
    let input = JitPolicyInput::parse(
        &json!({"properties": {"virtualMachines": [{"id": VM, "ports": ports}]}}),
        &tenant(),
    )
    .unwrap();
    JitPolicy::new(&ResourceName::parse("p1").unwrap(), input, None)
}

fn initiate(ports: Value) -> InitiateRequest {
    InitiateRequest::parse(
        &json!({"virtualMachines": [{"id": VM, "ports": ports}], "justification": "deploy"}),
        &tenant(),
    )
    .unwrap()
}

const NOW: &str = "2024-05-01T12:00:00Z";

#[test]
fn initiate_rules() {
    let p = policy(json!([
        {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefixes": ["10.0.0.0/8", "192.168.1.0/24"], "maxRequestAccessDuration": "PT3H"},
        {"number": 3389, "protocol": "*", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT1H"},
        {"number": 443, "protocol": "TCP", "allowedSourceAddressPrefix": "203.0.113.9", "maxRequestAccessDuration": "PT1H"}
    ]));
    let now = ts(NOW);
    let ok = |ports: Value| p.initiate(&initiate(ports), "alice", now, "r");
    let err = |ports: Value| {
        ok(ports)
            .unwrap_err()
            .paths()
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    // Inside a prefix, within the maximum.
    let r = ok(json!([{"number": 22, "endTimeUtc": "2024-05-01T15:00:00Z", "allowedSourceAddressPrefix": "10.1.2.3"}])).unwrap();
    assert_eq!(r.virtual_machines[0].ports[0].status, STATUS_INITIATED);
    assert_eq!(
        r.virtual_machines[0].ports[0].status_reason,
        "UserRequested"
    );
    assert_eq!(r.start_time_utc, now);
    assert_eq!(r.justification.as_deref(), Some("deploy"));
    // Refused, each naming its field: an unknown port; too long (one second past PT3H),
    // and in the past; outside the allowed prefixes (a prefix wider than allowed is
    // outside too).
    for (port, end, source, field) in [
        (8080, "2024-05-01T13:00:00Z", "10.1.2.3", "number"),
        (22, "2024-05-01T15:00:01Z", "10.1.2.3", "endTimeUtc"),
        (22, NOW, "10.1.2.3", "endTimeUtc"),
        (
            22,
            "2024-05-01T13:00:00Z",
            "172.16.0.1",
            "allowedSourceAddressPrefix",
        ),
        (
            22,
            "2024-05-01T13:00:00Z",
            "192.168.0.0/16",
            "allowedSourceAddressPrefix",
        ),
    ] {
        let ports =
            json!([{"number": port, "endTimeUtc": end, "allowedSourceAddressPrefix": source}]);
        assert_eq!(
            err(ports),
            vec![format!("virtualMachines[0].ports[0].{field}")],
            "{port} until {end} from {source}"
        );
    }
    // `*` in the policy allows any source.
    assert!(ok(json!([{"number": 3389, "endTimeUtc": "2024-05-01T13:00:00Z", "allowedSourceAddressPrefix": "198.51.100.7"}])).is_ok());
    assert!(ok(json!([{"number": 3389, "endTimeUtc": "2024-05-01T13:00:00Z", "allowedSourceAddressPrefix": "2001:db8::1"}])).is_ok());
    // No source: the policy's single address is used; with several allowed, one is required.
    let r = ok(json!([{"number": 443, "endTimeUtc": "2024-05-01T13:00:00Z"}])).unwrap();
    assert_eq!(
        r.virtual_machines[0].ports[0]
            .allowed_source_address_prefix
            .as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(
        err(json!([{"number": 22, "endTimeUtc": "2024-05-01T13:00:00Z"}])),
        vec!["virtualMachines[0].ports[0].allowedSourceAddressPrefix"]
    );
    assert_eq!(
        err(json!([{"number": 3389, "endTimeUtc": "2024-05-01T13:00:00Z"}])),
        vec!["virtualMachines[0].ports[0].allowedSourceAddressPrefix"]
    );
    // Every problem at once, and an unknown VM.
    let bad = InitiateRequest::parse(&json!({"virtualMachines": [
        {"id": VM, "ports": [{"number": 8080, "endTimeUtc": "2024-05-01T13:00:00Z"},
                             {"number": 22, "endTimeUtc": "2024-05-02T13:00:00Z", "allowedSourceAddressPrefix": "8.8.8.8"}]},
        {"id": "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm9", "ports": [{"number": 22, "endTimeUtc": "2024-05-01T13:00:00Z"}]}
    ]}), &tenant()).unwrap();
    assert_eq!(
        p.initiate(&bad, "alice", now, "r").unwrap_err().paths(),
        vec![
            "virtualMachines[0].ports[0].number",
            "virtualMachines[0].ports[1].endTimeUtc",
            "virtualMachines[0].ports[1].allowedSourceAddressPrefix",
            "virtualMachines[1].id",
        ]
    );
}

#[test]
fn a_stored_policy_naming_another_tenants_vm_cannot_be_initiated() {
    // As an older version stored it, before VM ids were checked against the tenant.
    let foreign =
        "/subscriptions/fabrikam/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1";
    let mut p = policy(json!([
        {"number": 3389, "protocol": "*", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT1H"}
    ]));
    p.properties.virtual_machines[0].id = foreign.to_owned();
    let body = json!({"virtualMachines": [{"id": foreign, "ports": [
        {"number": 3389, "endTimeUtc": "2024-05-01T13:00:00Z", "allowedSourceAddressPrefix": "10.0.0.1"}]}]});
    let e = InitiateRequest::parse(&body, &tenant()).unwrap_err();
    assert_eq!(e.paths(), vec!["virtualMachines[0].id"]);
    assert!(
        e.to_string().contains("subscription must be `contoso`"),
        "{e}"
    );
    // Its own tenant's VM of the same name is not in that policy.
    let own = initiate(
        json!([{"number": 3389, "endTimeUtc": "2024-05-01T13:00:00Z", "allowedSourceAddressPrefix": "10.0.0.1"}]),
    );
    let e = p.initiate(&own, "alice", ts(NOW), "r").unwrap_err();
    assert_eq!(e.paths(), vec!["virtualMachines[0].id"]);
}

#[test]
fn initiate_body_validation() {
    let e = InitiateRequest::parse(
        &json!({"virtualMachines": [{"id": "", "ports": [
        {"number": 70000, "endTimeUtc": "tomorrow", "allowedSourceAddressPrefix": "x"}, {}]}]}),
        &tenant(),
    )
    .unwrap_err();
    assert_eq!(
        e.paths(),
        vec![
            "virtualMachines[0].id",
            "virtualMachines[0].ports[0].number",
            "virtualMachines[0].ports[0].endTimeUtc",
            "virtualMachines[0].ports[0].allowedSourceAddressPrefix",
            "virtualMachines[0].ports[1].number",
            "virtualMachines[0].ports[1].endTimeUtc",
        ]
    );
    assert_eq!(
        InitiateRequest::parse(&json!({}), &tenant())
            .unwrap_err()
            .paths(),
        vec!["virtualMachines"]
    );
    assert_eq!(
        InitiateRequest::parse(&json!(null), &tenant())
            .unwrap_err()
            .paths(),
        vec![""]
    );
}

#[test]
fn request_lifecycle() {
    let p = policy(json!([
        {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT3H"},
        {"number": 80, "protocol": "TCP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT3H"}
    ]));
    let now = ts(NOW);
    let mut older = p
        .initiate(&initiate(json!([
            {"number": 22, "endTimeUtc": "2024-05-01T13:00:00Z", "allowedSourceAddressPrefix": "10.0.0.1"},
            {"number": 80, "endTimeUtc": "2024-05-01T14:00:00Z", "allowedSourceAddressPrefix": "10.0.0.1"}
        ])), "alice", now, "r1")
        .unwrap();
    assert_eq!(older.end_time(), ts("2024-05-01T14:00:00Z"));
    assert_eq!(older.next_expiry(), Some(ts("2024-05-01T13:00:00Z")));
    assert_eq!(
        older
            .subject_keys()
            .iter()
            .map(SubjectKey::index_key)
            .collect::<Vec<_>>(),
        vec!["user:alice", "ip:10.0.0.1"]
    );

    // A newer request for port 22 ends the older one's port 22 only.
    let later = ts("2024-05-01T12:30:00Z");
    let newer = p
        .initiate(&initiate(json!([{"number": 22, "endTimeUtc": "2024-05-01T13:30:00Z", "allowedSourceAddressPrefix": "10.0.0.2"}])), "bob", later, "r2")
        .unwrap();
    assert_eq!(older.supersede_by(&newer, later), 1);
    let p22 = &older.virtual_machines[0].ports[0];
    assert_eq!(
        (p22.status.as_str(), p22.status_reason.as_str()),
        (STATUS_REVOKED, "NewerRequestInitiated")
    );
    assert_eq!(p22.end_time_utc, later);
    assert!(older.is_active());

    // The clock ends port 80 at its end time, keeping that time.
    assert_eq!(older.expire_due(ts("2024-05-01T13:59:59Z")), 0);
    assert_eq!(older.expire_due(ts("2024-05-01T14:00:00Z")), 1);
    let p80 = &older.virtual_machines[0].ports[1];
    assert_eq!(
        (p80.status_reason.as_str(), p80.end_time_utc),
        ("Expired", ts("2024-05-01T14:00:00Z"))
    );
    assert!(!older.is_active());
    assert_eq!(older.next_expiry(), None);

    // Revoke ends the newer request early; revoking twice changes nothing.
    let mut newer = newer;
    assert_eq!(
        newer.revoke_all(RevokeReason::UserRequested, ts("2024-05-01T12:45:00Z")),
        1
    );
    assert_eq!(
        newer.virtual_machines[0].ports[0].status_reason,
        "UserRequested"
    );
    assert_eq!(newer.end_time(), ts("2024-05-01T12:45:00Z"));
    assert_eq!(
        newer.revoke_all(RevokeReason::UserRequested, ts("2024-05-01T12:50:00Z")),
        0
    );
    assert!(!newer.revoke_port(VM, 22, RevokeReason::UserRequested, later));
}

// ---------------------------------------------------------------- alerts

fn all_example_alerts() -> Vec<Value> {
    let mut v = response_resources(&example("alerts_get_subscription_location.json"));
    v.extend(response_resources(&example(
        "alerts_list_subscription.json",
    )));
    v
}

#[test]
fn alerts_round_trip_whole() {
    let alerts = all_example_alerts();
    assert!(alerts.len() >= 3);
    for body in alerts {
        let a = AlertInput::parse(&body, ts(NOW)).unwrap();
        assert!(!a.time_defaulted());
        assert_eq!(Value::Object(a.json().clone()), body);
        let text = serde_json::to_string(a.json()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), body);
        assert_eq!(a.name().as_str(), body["name"].as_str().unwrap());
        assert_eq!(a.severity(), body["properties"]["severity"].as_str());
        assert_eq!(a.status(), body["properties"]["status"].as_str());
        assert_eq!(
            a.display_name(),
            body["properties"]["alertDisplayName"].as_str()
        );
    }
}

#[test]
fn alert_unknown_fields_and_enum_values_kept() {
    let body = json!({"name": "custom-1", "vendorField": {"deep": [1, null, "x"]},
        "properties": {"severity": "Catastrophic", "status": "Pondering", "timeGeneratedUtc": "2024-02-03T04:05:06.0000000Z",
                       "unmodelled": 3.5}});
    let a = AlertInput::parse(&body, ts(NOW)).unwrap();
    assert_eq!(Value::Object(a.json().clone()), body);
    assert_eq!(a.severity(), Some("Catastrophic"));
    assert_eq!(a.status(), Some("Pondering"));
    assert_eq!(a.time_generated(), ts("2024-02-03T04:05:06Z"));
}

#[test]
fn alert_subject_keys_from_examples() {
    let ex = example("alerts_get_subscription_location.json");
    let a = AlertInput::parse(&ex["responses"]["200"]["body"], ts(NOW)).unwrap();
    let keys: Vec<(String, String)> = a
        .subject_keys()
        .into_iter()
        .map(|k| (k.index_key(), k.field))
        .collect();
    assert_eq!(
        keys,
        vec![
            (
                "ip:192.0.2.1".into(),
                "properties.entities[0].address".into()
            ),
            ("host:vm1".into(), "properties.compromisedEntity".into()),
        ]
    );
    let list = response_resources(&example("alerts_list_subscription.json"));
    let a = AlertInput::parse(&list[1], ts(NOW)).unwrap();
    let keys: Vec<String> = a.subject_keys().iter().map(SubjectKey::index_key).collect();
    assert_eq!(keys, vec!["host:vm2", "user:contosouser"]);
}

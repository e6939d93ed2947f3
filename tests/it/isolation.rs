#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Isolation and permissions as a property: one real daemon in-process with four tenants,
//! each seeded with data whose every string carries the tenant's marker (its id); proptest
//! draws a configuration (grants of random built-in and custom profiles to this OS user
//! by user name, uid or group, per tenant or `*`, plus grants to other users), reloads it,
//! and runs random operations over every tenant route under random acting profiles.
//!
//! Each answer is checked against an oracle written here from DESIGN.md's matrix (not the
//! daemon's permission code): 404 with the body of a tenant that does not exist when no
//! grant names the caller in the tenant, 403 for an acting profile that is unknown or above
//! what is held, 403 naming the permission when the acting profile lacks it, 405 for any
//! alert update, else success. No body (lists, records, exports, subject searches, errors)
//! may carry another tenant's marker, and an events stream opened for the case may only
//! carry events of tenants where its acting profile holds the kind's read permission.
//!
//! The OS user is fixed (the test's own), so "random callers" are random grant sets.
//! What this does not cover: callers of other uids (see `daemon/tests/overload.rs` for a
//! second user), the DSR confirm/erase/bundle steps, and the spool.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use steward::client::{Body, Client, Method};
use steward_testkit::inproc::TestDaemon;

/// The tenants; each id is also the marker every string of its data carries.
const TENANTS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];
/// A tenant id declared nowhere: its answers are what an ungranted tenant must look like.
const GHOST: &str = "zulu";

// ---------------------------------------------------------------------------------------
// The oracle: DESIGN.md's matrix, written out as data.
// ---------------------------------------------------------------------------------------

/// Built-in profile names, in the matrix's column order.
const BUILTINS: [&str; 6] = [
    "reader",
    "contributor",
    "owner",
    "account-admin",
    "tenant-admin",
    "ingest",
];

/// DESIGN.md's matrix, row by row: permission, then reader, contributor, owner,
/// account-admin, tenant-admin, ingest.
const MATRIX: [(&str, [bool; 6]); 13] = [
    ("contacts.read", [true, true, true, true, true, false]),
    ("jit.read", [true, true, true, true, true, false]),
    ("alerts.read", [true, true, true, true, true, false]),
    ("audit.read", [true, true, true, true, true, false]),
    ("contacts.export", [true, true, true, true, true, false]),
    ("contacts.write", [false, true, true, true, true, false]),
    ("jit.write", [false, true, true, true, true, false]),
    ("jit.request", [false, true, true, true, true, false]),
    ("jit.export", [false, false, false, true, true, false]),
    ("alerts.export", [false, false, false, true, true, false]),
    ("audit.export", [false, false, false, true, true, false]),
    ("dsr.manage", [false, false, false, false, true, false]),
    ("alerts.ingest", [false, false, false, false, false, true]),
];

/// Names of the two custom profiles every generated config defines.
const CUSTOM: [&str; 2] = ["custom-a", "custom-b"];

type Perms = BTreeSet<&'static str>;

/// Who a grant names.
#[derive(Debug, Clone)]
enum Who {
    /// This OS user by name.
    Me,
    /// This OS user by uid.
    MyUid,
    /// This OS user's primary group.
    MyGroup,
    /// Someone else (user `nobody`, uid 65534 or group `nogroup`): never this caller.
    Other(u8),
}

/// One `[[grant]]`.
#[derive(Debug, Clone)]
struct Grant {
    who: Who,
    /// A tenant index, or `None` for `*`.
    tenant: Option<usize>,
    role: String,
}

/// A generated configuration.
#[derive(Debug, Clone)]
struct Setup {
    grants: Vec<Grant>,
    /// The permissions of `custom-a` and `custom-b` (indices into [`MATRIX`]).
    custom: [Vec<bool>; 2],
}

/// Why an operation is expected to fail before it reaches its own logic.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gate {
    /// No grant in the tenant (or no such tenant): 404, body of a missing tenant.
    NoTenant,
    /// The acting profile is unknown or above what is held: 403.
    ActAs,
    /// The acting profile lacks this permission: 403 naming it.
    Lacks(&'static str),
}

impl Setup {
    fn profile(&self, name: &str) -> Option<Perms> {
        if let Some(col) = BUILTINS.iter().position(|b| *b == name) {
            return Some(
                MATRIX
                    .iter()
                    .filter(|(_, cols)| cols[col])
                    .map(|(p, _)| *p)
                    .collect(),
            );
        }
        let i = CUSTOM.iter().position(|c| *c == name)?;
        Some(
            MATRIX
                .iter()
                .zip(&self.custom[i])
                .filter(|(_, on)| **on)
                .map(|((p, _), _)| *p)
                .collect(),
        )
    }

    /// What this caller holds in tenant `t` (an index; `TENANTS.len()` is the ghost).
    fn held(&self, t: usize) -> Option<Perms> {
        if t >= TENANTS.len() {
            return None;
        }
        let mine: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| !matches!(g.who, Who::Other(_)))
            .filter(|g| g.tenant.is_none_or(|x| x == t))
            .collect();
        if mine.is_empty() {
            return None;
        }
        Some(
            mine.iter()
                .flat_map(|g| self.profile(&g.role).unwrap_or_default())
                .collect(),
        )
    }

    /// What a request in tenant `t` acting as `acting` may do.
    fn effective(&self, t: usize, acting: Option<&str>) -> Result<Perms, Gate> {
        let held = self.held(t).ok_or(Gate::NoTenant)?;
        let Some(name) = acting else { return Ok(held) };
        let wanted = self.profile(name).ok_or(Gate::ActAs)?;
        if wanted.is_subset(&held) {
            Ok(wanted)
        } else {
            Err(Gate::ActAs)
        }
    }

    fn gate(&self, t: usize, acting: Option<&str>, needs: Option<&'static str>) -> Option<Gate> {
        match self.effective(t, acting) {
            Err(g) => Some(g),
            Ok(p) => needs.filter(|n| !p.contains(n)).map(Gate::Lacks),
        }
    }

    fn toml(&self, dir: &Path, me: &str, group: &str) -> String {
        let d = dir.display();
        let mut s = format!(
            "[daemon]\nsocket = \"{d}/run/steward.sock\"\ndata_dir = \"{d}/data\"\nlog_dir = \"{d}/logs\"\n\n"
        );
        for t in TENANTS {
            s += &format!("[[tenant]]\nid = \"{t}\"\nname = \"{t} ltd\"\n\n");
        }
        for g in &self.grants {
            let who = match g.who {
                Who::Me => format!("user = \"{me}\""),
                Who::MyUid => format!("uid = {}", nix::unistd::getuid().as_raw()),
                Who::MyGroup => format!("group = \"{group}\""),
                Who::Other(0) => "user = \"nobody\"".to_owned(),
                Who::Other(1) => "uid = 65534".to_owned(),
                Who::Other(_) => "group = \"nogroup\"".to_owned(),
            };
            let tenant = g.tenant.map_or("*", |t| TENANTS[t]);
            s += &format!(
                "[[grant]]\n{who}\ntenant = \"{tenant}\"\nrole = \"{}\"\n\n",
                g.role
            );
        }
        for (name, perms) in CUSTOM.iter().zip(&self.custom) {
            let list: Vec<String> = MATRIX
                .iter()
                .zip(perms)
                .filter(|(_, on)| **on)
                .map(|((p, _), _)| format!("\"{p}\""))
                .collect();
            s += &format!("[profile.{name}]\npermissions = [{}]\n\n", list.join(", "));
        }
        s
    }
}

// ---------------------------------------------------------------------------------------
// Operations.
// ---------------------------------------------------------------------------------------

/// Export kinds with the permission each needs (DESIGN.md, "The socket API").
const EXPORTS: [(&str, &str); 5] = [
    ("contacts", "contacts.export"),
    ("jit-policies", "jit.export"),
    ("jit-requests", "jit.export"),
    ("alerts", "alerts.export"),
    ("audit", "audit.export"),
];
const FORMATS: [&str; 3] = ["json", "ndjson", "csv"];

#[derive(Debug, Clone)]
enum Op {
    Tenants,
    ListContacts,
    GetContact,
    PutContact(u8),
    DeleteContact(u8),
    ListPolicies,
    GetPolicy,
    PutPolicy(u8),
    DeletePolicy(u8),
    AzurePolicy,
    Initiate,
    ListRequests,
    /// Get the seeded JIT request of tenant `.0` (another tenant's id must be 404).
    GetRequest(usize),
    /// Revoke the seeded JIT request of tenant `.0` through another tenant's path (or a
    /// request that does not exist, when `.0` is the step's own tenant): 404.
    RevokeForeign(usize),
    ListAlerts,
    GetAlert,
    Ingest(u8),
    /// 0 PUT, 1 DELETE, 2 POST dismiss, 3 PATCH, 4 Azure dismiss path.
    AlertWrite(u8),
    AuditList,
    AuditVerify,
    Export(usize, usize),
    AzureContacts,
    AzureAlerts,
    /// Search tenant's subjects for an identifier of tenant `.0`, of kind `.1`
    /// (0 email, 1 user, 2 host).
    Subjects(usize, u8),
    DsrList,
    /// Get the seeded data-subject request of tenant `.0` (another tenant's id: 404).
    DsrGet(usize),
    DsrOpen,
    Events,
}

/// One request: a tenant (index; `TENANTS.len()` is the ghost), an acting profile, an op.
#[derive(Debug, Clone)]
struct Step {
    tenant: usize,
    acting: Option<String>,
    op: Op,
}

/// A generated case: the config, the events subscriber's acting profile, the requests.
#[derive(Debug, Clone)]
struct Case {
    setup: Setup,
    events_acting: Option<String>,
    steps: Vec<Step>,
}

fn acting() -> impl Strategy<Value = Option<String>> {
    let mut names: Vec<String> = BUILTINS.iter().map(|s| (*s).to_owned()).collect();
    names.extend(CUSTOM.iter().map(|s| (*s).to_owned()));
    names.push("no-such-profile".to_owned());
    prop_oneof![
        4 => Just(None),
        3 => proptest::sample::select(names).prop_map(Some),
    ]
}

fn grant() -> impl Strategy<Value = Grant> {
    let mut roles: Vec<String> = BUILTINS.iter().map(|s| (*s).to_owned()).collect();
    roles.extend(CUSTOM.iter().map(|s| (*s).to_owned()));
    (
        prop_oneof![
            3 => Just(Who::Me),
            2 => Just(Who::MyUid),
            2 => Just(Who::MyGroup),
            1 => (0u8..3).prop_map(Who::Other),
        ],
        prop_oneof![4 => (0..TENANTS.len()).prop_map(Some), 1 => Just(None)],
        proptest::sample::select(roles),
    )
        .prop_map(|(who, tenant, role)| Grant { who, tenant, role })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Tenants),
        Just(Op::ListContacts),
        Just(Op::GetContact),
        (0u8..4).prop_map(Op::PutContact),
        (0u8..4).prop_map(Op::DeleteContact),
        Just(Op::ListPolicies),
        Just(Op::GetPolicy),
        (0u8..4).prop_map(Op::PutPolicy),
        (0u8..4).prop_map(Op::DeletePolicy),
        Just(Op::AzurePolicy),
        Just(Op::Initiate),
        Just(Op::ListRequests),
        (0..TENANTS.len()).prop_map(Op::GetRequest),
        (0..TENANTS.len()).prop_map(Op::RevokeForeign),
        Just(Op::ListAlerts),
        Just(Op::GetAlert),
        (0u8..8).prop_map(Op::Ingest),
        (0u8..5).prop_map(Op::AlertWrite),
        Just(Op::AuditList),
        Just(Op::AuditVerify),
        (0..EXPORTS.len(), 0..FORMATS.len()).prop_map(|(k, f)| Op::Export(k, f)),
        Just(Op::AzureContacts),
        Just(Op::AzureAlerts),
        (0..TENANTS.len(), 0u8..3).prop_map(|(t, k)| Op::Subjects(t, k)),
        Just(Op::DsrList),
        (0..TENANTS.len()).prop_map(Op::DsrGet),
        Just(Op::DsrOpen),
        Just(Op::Events),
    ]
}

fn case(ops: usize) -> impl Strategy<Value = Case> {
    let setup = (
        proptest::collection::vec(grant(), 0..9),
        proptest::collection::vec(any::<bool>(), MATRIX.len()),
        proptest::collection::vec(any::<bool>(), MATRIX.len()),
    )
        .prop_map(|(grants, a, b)| Setup {
            grants,
            custom: [a, b],
        });
    let step = (
        prop_oneof![8 => 0..TENANTS.len(), 1 => Just(TENANTS.len())],
        acting(),
        op(),
    )
        .prop_map(|(tenant, acting, op)| Step { tenant, acting, op });
    (
        setup,
        acting(),
        proptest::collection::vec(step, ops / 2..=ops),
    )
        .prop_map(|(setup, events_acting, steps)| Case {
            setup,
            events_acting,
            steps,
        })
}

// ---------------------------------------------------------------------------------------
// Seed data: every string carries its tenant's marker.
// ---------------------------------------------------------------------------------------

fn contact(t: &str) -> Value {
    json!({"properties": {
        "emails": format!("alice@{t}.example;sec@{t}.example"),
        "phone": "+1 555 0100",
        "isEnabled": true,
        "notificationsByRole": {"state": "On", "roles": ["Owner"]}
    }})
}

fn vm(t: &str) -> String {
    format!(
        "/subscriptions/{t}/resourceGroups/{t}-rg/providers/Microsoft.Compute/virtualMachines/{t}-vm"
    )
}

fn policy(t: &str) -> Value {
    json!({"kind": "Basic", "properties": {"virtualMachines": [{"id": vm(t), "ports": [
        {"number": 22, "protocol": "TCP", "allowedSourceAddressPrefix": "198.51.100.0/24", "maxRequestAccessDuration": "PT3H"},
        {"number": 3389, "protocol": "TCP", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT1H"}
    ]}]}})
}

fn initiate(t: &str) -> Value {
    let end = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(50);
    json!({"virtualMachines": [{"id": vm(t), "ports": [
        {"number": 3389, "endTimeUtc": end.to_string(), "allowedSourceAddressPrefix": "203.0.113.9"}
    ]}], "justification": format!("{t} patching")})
}

fn alert(t: &str, n: u8) -> Value {
    json!({"name": format!("{t}-alert-{n}"), "properties": {
        "alertDisplayName": format!("{t} suspicious sign-in {n}"),
        "alertType": format!("{t}_type"),
        "severity": "High",
        "status": "Active",
        "timeGeneratedUtc": jiff::Timestamp::now().to_string(),
        "compromisedEntity": format!("{t}-host"),
        "entities": [
            {"type": "host", "hostName": format!("{t}-host")},
            {"type": "account", "name": format!("{t}-user"), "upn": format!("ops@{t}.example")}
        ]
    }})
}

fn dsr(t: &str) -> Value {
    json!({"type": "export", "subject": {"email": format!("alice@{t}.example")}})
}

/// What seeding leaves for each tenant: the ids of its JIT request and its DSR.
struct Seeded {
    requests: Vec<String>,
    dsrs: Vec<String>,
}

async fn seed(d: &TestDaemon) -> Seeded {
    let c = d.client();
    let mut requests = Vec::new();
    let mut dsrs = Vec::new();
    for t in TENANTS {
        let b = format!("/v1/tenants/{t}");
        let (s, v, _) = c
            .put(&format!("{b}/contacts/default"), &contact(t), None)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v, _) = c
            .put(&format!("{b}/jit-policies/{t}-pol"), &policy(t), None)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v, _) = c
            .post(&format!("{b}/jit-policies/{t}-pol/initiate"), &initiate(t))
            .await;
        assert!(s.is_success(), "{s} {v}");
        requests.push(
            v["id"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned(),
        );
        let batch = Value::Array((0..3).map(|n| alert(t, n)).collect());
        let (s, v, _) = c.post(&format!("{b}/alerts"), &batch).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v, _) = c.post(&format!("{b}/dsr"), &dsr(t)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        dsrs.push(v["id"].as_str().unwrap().to_owned());
    }
    Seeded { requests, dsrs }
}

// ---------------------------------------------------------------------------------------
// Running a case.
// ---------------------------------------------------------------------------------------

/// What an allowed operation may answer beyond its gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ok_ {
    /// 2xx.
    Success,
    /// 2xx or 404 (a record that an earlier step may have deleted, or never made).
    SuccessOrMissing,
    /// 404: the record does not exist.
    Missing,
    /// 405: alerts are read-only.
    ReadOnly,
}

struct Outcome {
    status: StatusCode,
    body: Vec<u8>,
}

struct Ctx<'a> {
    d: &'a TestDaemon,
    seeded: &'a Seeded,
    ghost_body: Vec<u8>,
    me: String,
    /// How many answers of each kind were checked (for the report).
    tally: std::sync::Mutex<BTreeMap<&'static str, usize>>,
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Other tenants' markers found in `text`.
fn foreign(text: &str, own: usize) -> Vec<&'static str> {
    TENANTS
        .iter()
        .enumerate()
        .filter(|(i, t)| *i != own && text.contains(*t))
        .map(|(_, t)| *t)
        .collect()
}

impl Ctx<'_> {
    fn count(&self, what: &'static str, n: usize) {
        *self.tally.lock().unwrap().entry(what).or_default() += n;
    }

    async fn send(
        &self,
        acting: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Outcome {
        let client = Client::new(&self.d.socket).with_role(acting.map(str::to_owned));
        let body = body.map(|b| Body::json(&b).unwrap());
        if path.contains("/v1/events") {
            // A stream: only the head matters here.
            let r = client
                .request_streaming(method, path, body, &[])
                .await
                .unwrap();
            let status = r.status;
            let body = if status.is_success() {
                Vec::new()
            } else {
                r.collect().await.unwrap().body.to_vec()
            };
            return Outcome { status, body };
        }
        let r = client.request(method, path, body, &[]).await.unwrap();
        Outcome {
            status: r.status,
            body: r.body.to_vec(),
        }
    }

    /// The request of `step` and what it needs: (method, path, body, permission, ok).
    fn plan(&self, step: &Step) -> (Method, String, Option<Value>, Option<&'static str>, Ok_) {
        let t = TENANTS.get(step.tenant).copied().unwrap_or(GHOST);
        let b = format!("/v1/tenants/{t}");
        use Method as M;
        use Ok_::*;
        match &step.op {
            Op::Tenants => (M::GET, "/v1/tenants".into(), None, None, Success),
            Op::ListContacts => (
                M::GET,
                format!("{b}/contacts"),
                None,
                Some("contacts.read"),
                Success,
            ),
            Op::GetContact => (
                M::GET,
                format!("{b}/contacts/default"),
                None,
                Some("contacts.read"),
                Success,
            ),
            Op::PutContact(n) => (
                M::PUT,
                format!("{b}/contacts/{t}-c{n}"),
                Some(contact(t)),
                Some("contacts.write"),
                Success,
            ),
            Op::DeleteContact(n) => (
                M::DELETE,
                format!("{b}/contacts/{t}-c{n}"),
                None,
                Some("contacts.write"),
                SuccessOrMissing,
            ),
            Op::ListPolicies => (
                M::GET,
                format!("{b}/jit-policies"),
                None,
                Some("jit.read"),
                Success,
            ),
            Op::GetPolicy => (
                M::GET,
                format!("{b}/jit-policies/{t}-pol"),
                None,
                Some("jit.read"),
                Success,
            ),
            Op::PutPolicy(n) => (
                M::PUT,
                format!("{b}/jit-policies/{t}-p{n}"),
                Some(policy(t)),
                Some("jit.write"),
                Success,
            ),
            Op::DeletePolicy(n) => (
                M::DELETE,
                format!("{b}/jit-policies/{t}-p{n}"),
                None,
                Some("jit.write"),
                SuccessOrMissing,
            ),
            Op::AzurePolicy => (
                M::GET,
                format!(
                    "/subscriptions/{t}/resourceGroups/{t}-rg/providers/Microsoft.Security/locations/local/jitNetworkAccessPolicies/{t}-pol?api-version=2020-01-01"
                ),
                None,
                Some("jit.read"),
                Success,
            ),
            Op::Initiate => (
                M::POST,
                format!("{b}/jit-policies/{t}-pol/initiate"),
                Some(initiate(t)),
                Some("jit.request"),
                Success,
            ),
            Op::ListRequests => (
                M::GET,
                format!("{b}/jit-requests"),
                None,
                Some("jit.read"),
                Success,
            ),
            Op::GetRequest(of) => (
                M::GET,
                format!("{b}/jit-requests/{}", self.seeded.requests[*of]),
                None,
                Some("jit.read"),
                if *of == step.tenant { Success } else { Missing },
            ),
            Op::RevokeForeign(of) => {
                let id = if *of == step.tenant {
                    "no-such-request"
                } else {
                    self.seeded.requests[*of].as_str()
                };
                (
                    M::POST,
                    format!("{b}/jit-requests/{id}/revoke"),
                    Some(json!({})),
                    Some("jit.request"),
                    Missing,
                )
            }
            Op::DsrGet(of) => (
                M::GET,
                format!("{b}/dsr/{}", self.seeded.dsrs[*of]),
                None,
                Some("dsr.manage"),
                if *of == step.tenant { Success } else { Missing },
            ),
            Op::ListAlerts => (
                M::GET,
                format!("{b}/alerts"),
                None,
                Some("alerts.read"),
                Success,
            ),
            Op::GetAlert => (
                M::GET,
                format!("{b}/alerts/{t}-alert-0"),
                None,
                Some("alerts.read"),
                Success,
            ),
            Op::Ingest(n) => (
                M::POST,
                format!("{b}/alerts"),
                Some(alert(t, 3 + n)),
                Some("alerts.ingest"),
                Success,
            ),
            Op::AlertWrite(k) => {
                let a = format!("{b}/alerts/{t}-alert-1");
                let (m, p, body) = match k {
                    0 => (M::PUT, a, Some(alert(t, 1))),
                    1 => (M::DELETE, a, None),
                    2 => (M::POST, format!("{a}/dismiss"), Some(json!({}))),
                    3 => (
                        M::PATCH,
                        a,
                        Some(json!({"properties": {"status": "Dismissed"}})),
                    ),
                    _ => (
                        M::POST,
                        format!(
                            "/subscriptions/{t}/providers/Microsoft.Security/locations/centralus/alerts/{t}-alert-1/resolve?api-version=2022-01-01"
                        ),
                        Some(json!({})),
                    ),
                };
                (m, p, body, None, ReadOnly)
            }
            Op::AuditList => (
                M::GET,
                format!("{b}/audit"),
                None,
                Some("audit.read"),
                Success,
            ),
            Op::AuditVerify => (
                M::GET,
                format!("{b}/audit/verify"),
                None,
                Some("audit.read"),
                Success,
            ),
            Op::Export(k, f) => {
                let (kind, perm) = EXPORTS[*k];
                (
                    M::GET,
                    format!("{b}/export/{kind}?format={}", FORMATS[*f]),
                    None,
                    Some(perm),
                    Success,
                )
            }
            Op::AzureContacts => (
                M::GET,
                format!(
                    "/subscriptions/{t}/providers/Microsoft.Security/securityContacts?api-version=2023-12-01-preview"
                ),
                None,
                Some("contacts.read"),
                Success,
            ),
            Op::AzureAlerts => (
                M::GET,
                format!(
                    "/subscriptions/{t}/providers/Microsoft.Security/alerts?api-version=2022-01-01"
                ),
                None,
                Some("alerts.read"),
                Success,
            ),
            Op::Subjects(of, kind) => {
                let o = TENANTS[*of];
                let q = match kind {
                    0 => format!("email=alice%40{o}.example"),
                    1 => format!("user={o}-user"),
                    _ => format!("host={o}-host"),
                };
                (
                    M::GET,
                    format!("{b}/subjects?{q}"),
                    None,
                    Some("dsr.manage"),
                    Success,
                )
            }
            Op::DsrList => (
                M::GET,
                format!("{b}/dsr"),
                None,
                Some("dsr.manage"),
                Success,
            ),
            Op::DsrOpen => (
                M::POST,
                format!("{b}/dsr"),
                Some(dsr(t)),
                Some("dsr.manage"),
                Success,
            ),
            Op::Events => (
                M::GET,
                format!("/v1/events?tenant={t}"),
                None,
                None,
                Success,
            ),
        }
    }

    /// Runs one step and checks its answer. Returns the event kind a successful change
    /// must raise, if any.
    async fn step(
        &self,
        setup: &Setup,
        step: &Step,
    ) -> Result<Option<&'static str>, TestCaseError> {
        let (method, path, body, needs, ok) = self.plan(step);
        let acting = step.acting.as_deref();
        let out = self.send(acting, method.clone(), &path, body).await;
        let text = String::from_utf8_lossy(&out.body).into_owned();
        let what = format!("{method} {path} as {acting:?}: {} {text}", out.status);

        if let Op::Tenants = step.op {
            self.count("/v1/tenants", 1);
            return self.check_tenants(setup, &out, &what).map(|()| None);
        }

        self.count(
            match setup.gate(step.tenant, acting, needs) {
                Some(Gate::NoTenant) => "404 no grant",
                Some(Gate::ActAs) => "403 acting profile",
                Some(Gate::Lacks(_)) => "403 permission",
                None if ok == Ok_::ReadOnly => "405 alert update",
                None => "allowed",
            },
            1,
        );
        match setup.gate(step.tenant, acting, needs) {
            Some(Gate::NoTenant) => {
                if out.status != StatusCode::NOT_FOUND || out.body != self.ghost_body {
                    return Err(fail(format!("expected the missing-tenant 404; got {what}")));
                }
                return Ok(None);
            }
            Some(Gate::ActAs) => {
                if out.status != StatusCode::FORBIDDEN || !text.contains("X-Steward-Role") {
                    return Err(fail(format!(
                        "expected 403 for the acting profile; got {what}"
                    )));
                }
            }
            Some(Gate::Lacks(p)) => {
                if out.status != StatusCode::FORBIDDEN || !text.contains(p) {
                    return Err(fail(format!("expected 403 naming {p}; got {what}")));
                }
            }
            None => {
                let good = match ok {
                    Ok_::Success => out.status.is_success(),
                    Ok_::SuccessOrMissing => {
                        out.status.is_success() || out.status == StatusCode::NOT_FOUND
                    }
                    Ok_::Missing => out.status == StatusCode::NOT_FOUND,
                    Ok_::ReadOnly => out.status == StatusCode::METHOD_NOT_ALLOWED,
                };
                if !good {
                    return Err(fail(format!("expected {ok:?}; got {what}")));
                }
            }
        }

        let leaked = foreign(&text, step.tenant);
        if !leaked.is_empty() {
            return Err(fail(format!("{leaked:?} leaked into {what}")));
        }
        if setup.gate(step.tenant, acting, needs).is_some() || !out.status.is_success() {
            return Ok(None);
        }
        // Allowed reads must show the tenant's own data (so the leak check is not vacuous).
        let own = TENANTS[step.tenant];
        let must_show = matches!(
            step.op,
            Op::ListContacts
                | Op::GetContact
                | Op::ListPolicies
                | Op::GetPolicy
                | Op::AzurePolicy
                | Op::ListRequests
                | Op::ListAlerts
                | Op::GetAlert
                | Op::AzureContacts
                | Op::AzureAlerts
                | Op::DsrList
        ) || matches!(step.op, Op::Export(k, _) if k < 4)
            || matches!(step.op, Op::GetRequest(of) | Op::DsrGet(of) if of == step.tenant);
        if must_show && !text.contains(own) {
            return Err(fail(format!(
                "an allowed read shows none of {own}'s data: {what}"
            )));
        }
        if let Op::Subjects(of, _) = step.op {
            let v: Value = serde_json::from_str(&text).map_err(|e| fail(format!("{e}: {what}")))?;
            let hits = v["value"].as_array().map_or(0, Vec::len);
            if of == step.tenant && hits == 0 {
                return Err(fail(format!("own subject not found: {what}")));
            }
            if of != step.tenant && hits != 0 {
                return Err(fail(format!("another tenant's subject found: {what}")));
            }
        }
        Ok(match step.op {
            Op::PutContact(_) | Op::DeleteContact(_) => Some("contacts"),
            Op::PutPolicy(_) | Op::DeletePolicy(_) => Some("jit-policies"),
            Op::Initiate => Some("jit-requests"),
            Op::Ingest(_) if out.status == StatusCode::CREATED => Some("alerts"),
            Op::DsrOpen => Some("dsr"),
            _ => None,
        })
    }

    /// `/v1/tenants` lists exactly the granted tenants, each with the oracle's permissions.
    fn check_tenants(&self, setup: &Setup, out: &Outcome, what: &str) -> Result<(), TestCaseError> {
        if out.status != StatusCode::OK {
            return Err(fail(format!("expected 200; got {what}")));
        }
        let v: Value =
            serde_json::from_slice(&out.body).map_err(|e| fail(format!("{e}: {what}")))?;
        let got: BTreeMap<String, Perms> = v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let perms = t["permissions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        MATRIX
                            .iter()
                            .find(|(n, _)| Some(*n) == p.as_str())
                            .map(|(n, _)| *n)
                    })
                    .collect();
                (t["id"].as_str().unwrap_or("").to_owned(), perms)
            })
            .collect();
        let want: BTreeMap<String, Perms> = (0..TENANTS.len())
            .filter_map(|i| setup.held(i).map(|p| (TENANTS[i].to_owned(), p)))
            .collect();
        if got != want {
            return Err(fail(format!(
                "tenants: want {want:?}, got {got:?} ({what})"
            )));
        }
        Ok(())
    }
}

/// Writes the config atomically and puts it in force.
async fn reload(d: &TestDaemon, text: &str) {
    let path = d.dir.join("steward.toml");
    let tmp = d.dir.join("steward.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    d.reload().await.unwrap();
}

async fn run_case(ctx: &Ctx<'_>, case: &Case) -> Result<(), TestCaseError> {
    let group = nix::unistd::Group::from_gid(nix::unistd::getgid())
        .unwrap()
        .unwrap()
        .name;
    reload(ctx.d, &case.setup.toml(&ctx.d.dir, &ctx.me, &group)).await;

    let ev_client = Client::new(&ctx.d.socket).with_role(case.events_acting.clone());
    let mut events = ev_client.get_lines("/v1/events").await.unwrap();

    let mut raised: Vec<(usize, &'static str)> = Vec::new();
    for step in &case.steps {
        if let Some(kind) = ctx.step(&case.setup, step).await? {
            raised.push((step.tenant, kind));
        }
    }

    // Drain the stream until it has been quiet for a moment, waiting longer (up to 5 s)
    // while a change the subscriber may see has not been announced yet.
    let acting = case.events_acting.as_deref();
    let visible: Vec<(usize, &'static str)> = raised
        .iter()
        .copied()
        .filter(|(t, kind)| {
            case.setup
                .gate(*t, acting, Some(read_permission(kind)))
                .is_none()
        })
        .collect();
    let announced = |seen: &[Value], (t, kind): (usize, &str)| {
        seen.iter()
            .any(|e| e["tenant"] == TENANTS[t] && e["kind"] == kind)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen: Vec<Value> = Vec::new();
    loop {
        let missing = visible.iter().any(|v| !announced(&seen, *v));
        let wait = if missing && Instant::now() < deadline {
            deadline - Instant::now()
        } else {
            Duration::from_millis(250)
        };
        let Ok(line) = tokio::time::timeout(wait, events.next_line()).await else {
            break;
        };
        let Some(line) = line.unwrap() else { break };
        seen.push(serde_json::from_slice(&line).unwrap());
    }
    ctx.count("events received", seen.len());
    for ev in &seen {
        if ev.get("lagged").is_some() {
            continue;
        }
        let (Some(t), Some(kind)) = (ev["tenant"].as_str(), ev["kind"].as_str()) else {
            return Err(fail(format!("malformed event {ev}")));
        };
        let ti = TENANTS
            .iter()
            .position(|x| *x == t)
            .ok_or_else(|| fail(format!("event of unknown tenant {ev}")))?;
        if case
            .setup
            .gate(ti, acting, Some(read_permission(kind)))
            .is_some()
        {
            return Err(fail(format!(
                "event {ev} reached a subscriber acting as {acting:?}"
            )));
        }
        let leaked = foreign(&ev.to_string(), ti);
        if !leaked.is_empty() {
            return Err(fail(format!("{leaked:?} leaked into event {ev}")));
        }
    }
    // And the stream is not simply silent: each visible change was announced.
    if let Some((t, kind)) = visible.into_iter().find(|v| !announced(&seen, *v)) {
        return Err(fail(format!(
            "a {kind} change in {} was not announced to a subscriber acting as {acting:?}",
            TENANTS[t]
        )));
    }
    Ok(())
}

/// The permission needed to see an event of `kind` (DESIGN.md: the events the caller may
/// see; DSR events belong to whoever manages DSRs).
fn read_permission(kind: &str) -> &'static str {
    match kind {
        "contacts" => "contacts.read",
        "jit-policies" | "jit-requests" => "jit.read",
        "alerts" => "alerts.read",
        "dsr" => "dsr.manage",
        _ => "audit.read",
    }
}

/// Runs `default_cases` (or `PROPTEST_CASES`) cases of up to `ops` steps each.
fn property(default_cases: u32, ops: usize) {
    let cases = steward_testkit::env_number("PROPTEST_CASES").unwrap_or(default_cases);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let me = steward_testkit::me();
    let extra = format!(
        "{}\n[[grant]]\nuser = \"{me}\"\ntenant = \"*\"\nrole = \"tenant-admin\"\n\n[[grant]]\nuser = \"{me}\"\ntenant = \"*\"\nrole = \"ingest\"\n",
        TENANTS
            .iter()
            .map(|t| format!("[[tenant]]\nid = \"{t}\"\nname = \"{t} ltd\"\n"))
            .collect::<String>()
    );
    let d = rt.block_on(TestDaemon::start(dir.path(), &extra));
    let seeded = rt.block_on(seed(&d));
    let ghost = rt
        .block_on(d.client().0.get(&format!("/v1/tenants/{GHOST}/contacts")))
        .unwrap();
    assert_eq!(ghost.status, StatusCode::NOT_FOUND);
    let ctx = Ctx {
        d: &d,
        seeded: &seeded,
        ghost_body: ghost.body.to_vec(),
        me,
        tally: std::sync::Mutex::new(BTreeMap::new()),
    };

    let mut runner = TestRunner::new(PtConfig {
        cases,
        failure_persistence: None,
        ..PtConfig::default()
    });
    let started = Instant::now();
    let steps = std::cell::Cell::new(0usize);
    let result = runner.run(&case(ops), |c| {
        steps.set(steps.get() + c.steps.len());
        rt.block_on(run_case(&ctx, &c))
    });
    eprintln!(
        "isolation: {cases} cases, {} requests (shrinking included), {:.1} s; checked: {:?}",
        steps.get(),
        started.elapsed().as_secs_f64(),
        ctx.tally.lock().unwrap()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(d.stop());
}

#[test]
fn no_tenant_sees_another_and_every_decision_follows_the_matrix() {
    property(24, 20);
}

#[test]
#[ignore = "long run: cargo test --test it isolation:: -- --ignored --nocapture"]
fn isolation_long() {
    property(1000, 40);
}

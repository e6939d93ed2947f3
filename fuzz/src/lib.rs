//! The bodies of steward's fuzz targets, as plain functions so the same code runs under
//! libFuzzer (`cargo +nightly fuzz run request|record`) and as a regression test over the
//! saved inputs (`daemon/tests/hostile.rs` includes this file as a module and runs every
//! file of `fuzz/seeds/*` and `fuzz/regressions/*` through it).
//!
//! A target passes an input when it returns: every parser must answer `Ok` or `Err`,
//! never panic, loop or blow the stack. Not here: HTTP framing (hyper's, covered by the
//! raw-socket cases of `hostile.rs`).

use serde_json::Value;
use steward::model::jit::parse_access_duration;
use steward::model::subject::{check_email, phone_digits};
use steward::model::{
    AlertInput, AuditRecord, ContactInput, DataSubjectRequest, DsrInput, InitiateRequest,
    JitPolicy, JitPolicyInput, JitRequest, Protocol, SecurityContact, SourcePrefix, SubjectKey,
    SubjectKind, ValidAlert,
};
use steward::names::{ResourceName, TenantId};
use steward_daemon::store::TenantRead;
use steward_daemon::store::codec;

/// A fixed policy the fuzzed initiate bodies are checked against.
/// The tenant the fuzzed policies and initiates are parsed for (that of [`POLICY`]).
fn fuzz_tenant() -> TenantId {
    TenantId::parse("contoso").unwrap_or_else(|_| TenantId::default_tenant())
}

const POLICY: &str = r#"{"kind":"Basic","properties":{"virtualMachines":[{"id":"/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1","ports":[{"number":22,"protocol":"TCP","allowedSourceAddressPrefix":"10.0.0.0/8","maxRequestAccessDuration":"PT3H"},{"number":3389,"protocol":"*","allowedSourceAddressPrefixes":["192.0.2.1","2001:db8::/32"],"maxRequestAccessDuration":"PT5M"}]}]}"#;

/// Request decoding and validation. The first byte picks the body's route; the rest is
/// the body (and, as text, a path segment, a header value or a query value).
pub fn request(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if let Ok(s) = std::str::from_utf8(body) {
        let _ = TenantId::parse(s);
        let _ = ResourceName::parse(s);
        let _ = parse_access_duration(s);
        let _ = SourcePrefix::parse(s);
        let _ = Protocol::parse(s);
        let _ = check_email(s);
        let _ = phone_digits(s);
        for kind in [
            SubjectKind::Email,
            SubjectKind::Phone,
            SubjectKind::Ip,
            SubjectKind::User,
            SubjectKind::Host,
        ] {
            let _ = SubjectKey::normalise(kind, s);
        }
    }
    let now = jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_hours(500_000);
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => match selector % 6 {
            0 => {
                let _ = ContactInput::parse(&v);
            }
            1 => {
                if let Ok(p) = JitPolicyInput::parse(&v, &fuzz_tenant()) {
                    // What the daemon stores must serialise.
                    let _ = serde_json::to_string(p.properties());
                }
            }
            2 => {
                if let Ok(req) = InitiateRequest::parse(&v, &fuzz_tenant())
                    && let Ok(policy) = serde_json::from_str::<JitPolicy>(POLICY)
                {
                    let _ = policy.initiate(&req, "fuzz", now, "req-1");
                }
            }
            3 => {
                let _ = AlertInput::parse_batch(&v, now);
            }
            4 => {
                let _ = DsrInput::parse(&v);
            }
            _ => {
                let _ = ContactInput::parse(&v);
                let _ = JitPolicyInput::parse(&v, &fuzz_tenant());
                let _ = InitiateRequest::parse(&v, &fuzz_tenant());
            }
        },
        Err(_) => {
            // An ingest batch as NDJSON: each line on its own.
            for line in body.split(|b| *b == b'\n') {
                if let Ok(v) = serde_json::from_slice::<Value>(line) {
                    let _ = AlertInput::parse(&v, now);
                }
            }
        }
    }
}

/// On-disk record decoding, fast path: a stored value (format byte + postcard) as an
/// audit record, and a stored document's JSON body as each kind the daemon reads back.
pub fn record(data: &[u8]) {
    let _ = codec::decode::<AuditRecord>(data);
    stored_body(data);
}

/// On-disk record decoding through a real store file: `data` is written as the stored
/// value of a contact, an alert and audit record 1 of tenant `contoso` into a real
/// `steward.redb` (with redb, as a damaged disk or another program could), then the store
/// is opened as the daemon opens it and every read the routes make is run: documents by
/// name and by list, the audit list and its chain verification.
pub fn stored(data: &[u8]) {
    use redb::Database;
    use steward_daemon::store::tables::{AUDIT, AUDIT_HEAD, RECORDS};
    use steward_daemon::store::{Kind, Store, StoreOptions};

    let Ok(dir) = tempfile::Builder::new()
        .prefix("steward-fuzz-")
        .tempdir_in(scratch())
    else {
        return;
    };
    // A fresh store with its schema, then closed.
    match Store::open(dir.path(), StoreOptions::default()) {
        Ok(s) => s.close(),
        Err(_) => return,
    }
    let path = dir.path().join(steward_daemon::store::DB_FILE);
    {
        let Ok(db) = Database::create(&path) else {
            return;
        };
        let Ok(tx) = db.begin_write() else { return };
        {
            let Ok(mut t) = tx.open_table(RECORDS) else {
                return;
            };
            let _ = t.insert(("contoso", Kind::Contact.as_u8(), "x"), data);
            let _ = t.insert(("contoso", Kind::Alert.as_u8(), "x"), data);
            let Ok(mut a) = tx.open_table(AUDIT) else {
                return;
            };
            let _ = a.insert(("contoso", 1u64), data);
            let Ok(mut h) = tx.open_table(AUDIT_HEAD) else {
                return;
            };
            let _ = h.insert("contoso", data);
        }
        let _ = tx.commit();
    }
    let Ok(store) = Store::open(dir.path(), StoreOptions::default()) else {
        return;
    };
    let r = store.tenant(&steward::names::TenantId::parse("contoso").expect("a tenant id"));
    for kind in [Kind::Contact, Kind::Alert] {
        if let Ok(Some(doc)) = r.get(kind, "x") {
            stored_body(doc.body_json.as_bytes());
        }
        let _ = r.list(kind, None, 10);
    }
    let _ = r.audit(0, 10, &mut |_| true);
    let _ = r.audit_verify();
    drop(r);
    store.close();
}

/// Where `stored` makes its files: RAM when the machine has `/dev/shm`.
fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A stored document's JSON, read back as the routes do.
fn stored_body(json: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let _ = serde_json::from_value::<SecurityContact>(v.clone());
    let _ = serde_json::from_value::<JitPolicy>(v.clone());
    let _ = serde_json::from_value::<JitRequest>(v.clone());
    let _ = serde_json::from_value::<DataSubjectRequest>(v.clone());
    if let Value::Object(m) = v {
        let _ = ValidAlert::from_stored(m);
    }
}

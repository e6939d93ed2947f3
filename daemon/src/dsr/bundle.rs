//! Export: the bundle of every record of the request's tenant that names the subject
//! (found through the subject index) and every audit record that concerns it (found by
//! the HMAC of each identifier), written as JSON to `data_dir/dsr/<tenant>/<id>.json`,
//! mode 0600, through a temp file renamed into place. Only the request's tenant is read:
//! the reader handle cannot reach another tenant's keys.
//!
//! A bundle lives as long as its request: the retention sweep removes the bundles whose
//! request is gone ([`remove_orphans`]), since a bundle is a copy of a person's data. An
//! erasure removes the bundles of other requests that name the erased person
//! ([`naming`], [`discard`]): the erasure supersedes them, and the export's request says
//! which erasure removed its bundle.
//!
//! Not here: who may fetch the bundle (`routes/dsr.rs`), the request's states (`super`).

use crate::store::TenantRead;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use steward::names::TenantId;

use jiff::Timestamp;
use serde_json::{Value, json};
use steward::model::{DsrStatus, DsrSubject, SubjectKey};

use super::{DsrDoc, complete, load};
use crate::state::Shared;
use crate::store::{Kind, TenantReader, TenantWrite, WriteError};

/// The bundle file of request `id` of `tenant`.
pub fn path(data_dir: &Path, tenant: &TenantId, id: &str) -> PathBuf {
    data_dir.join("dsr").join(tenant).join(format!("{id}.json"))
}

/// Deletes every bundle (and leftover temp file) under `data_dir/dsr/` whose request no
/// longer exists (retention purged it, or it never committed). Returns how many files went.
pub fn remove_orphans(shared: &Shared) -> Result<usize, WriteError> {
    let root = shared.config().daemon.data_dir.join("dsr");
    let tenants = match std::fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(WriteError::Store(e.into())),
    };
    let mut removed = 0;
    for tenant in tenants {
        let tenant = tenant.map_err(|e| WriteError::Store(e.into()))?;
        let Some(t) = tenant
            .file_name()
            .to_str()
            .and_then(|t| TenantId::parse(t).ok())
        else {
            continue;
        };
        let reader = shared.store.tenant(&t);
        let files = std::fs::read_dir(tenant.path()).map_err(|e| WriteError::Store(e.into()))?;
        for file in files {
            let file = file.map_err(|e| WriteError::Store(e.into()))?;
            let name = file.file_name();
            let Some(id) = name.to_str().and_then(|n| n.split('.').next()) else {
                continue;
            };
            if reader.get(Kind::Dsr, id)?.is_none() {
                std::fs::remove_file(file.path()).map_err(|e| WriteError::Store(e.into()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The bundle files of `tenant` (complete ones and leftover temp files) that name
/// `subject`: their text, lower-cased, holds one of its identifiers (as normalised, which
/// is how a bundle's own `subject` holds them), or they hold one of `records` (`(kind,
/// id)`: the records the erasure reported, whose text may spell an identifier otherwise,
/// e.g. a phone with separators). Returns `(request id, file)`, in name order.
pub fn naming(
    data_dir: &Path,
    tenant: &TenantId,
    subject: &DsrSubject,
    records: &HashSet<(String, String)>,
) -> std::io::Result<Vec<(String, PathBuf)>> {
    let dir = data_dir.join("dsr").join(tenant);
    let entries = match std::fs::read_dir(&dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let needles: Vec<Vec<u8>> = subject
        .keys()
        .into_iter()
        .map(|k| k.value.to_lowercase().into_bytes())
        .filter(|n| !n.is_empty())
        .collect();
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.ends_with(".json") || name.ends_with(".json.tmp")) {
            continue;
        }
        let Some(id) = name.split('.').next() else {
            continue;
        };
        let bytes = std::fs::read(entry.path())?;
        let lower = bytes.to_ascii_lowercase();
        let by_text = needles
            .iter()
            .any(|n| lower.windows(n.len()).any(|w| w == n.as_slice()));
        let by_record = || {
            serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| {
                v["records"].as_array().is_some_and(|rs| {
                    rs.iter()
                        .any(|r| match (r["kind"].as_str(), r["id"].as_str()) {
                            (Some(k), Some(i)) => records.contains(&(k.to_owned(), i.to_owned())),
                            _ => false,
                        })
                })
            })
        };
        if by_text || by_record() {
            out.push((id.to_owned(), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes a file holding personal data: overwrites its bytes with zeros and syncs them
/// (so they do not linger readable in the file system's free space as easily), then
/// unlinks it and syncs the directory. A file already gone is fine.
pub fn discard(path: &Path) -> std::io::Result<()> {
    let f = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    crate::store::overwrite_with_zeros(&f)?;
    drop(f);
    std::fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Every record (not requests themselves) holding any of `keys`, with the fields that
/// hold them, in `(kind, name)` order.
pub fn hits(
    keys: &[SubjectKey],
    lookup: impl Fn(&SubjectKey) -> Result<Vec<crate::store::SubjectHit>, WriteError>,
) -> Result<BTreeMap<(Kind, String), BTreeSet<String>>, WriteError> {
    let mut out: BTreeMap<(Kind, String), BTreeSet<String>> = BTreeMap::new();
    for k in keys {
        for h in lookup(k)? {
            if h.kind == Kind::Dsr {
                continue;
            }
            out.entry((h.kind, h.name)).or_default().insert(h.field);
        }
    }
    Ok(out)
}

/// Builds the bundle of `d` from `reader`: `(bundle, records, audit records)`.
pub fn build(reader: &TenantReader, d: &DsrDoc) -> Result<(Value, u64, u64), WriteError> {
    let keys = d.subject_keys();
    let found = hits(&keys, |k| Ok(reader.subjects(k)?))?;
    let mut records = Vec::new();
    for ((kind, name), fields) in &found {
        let Some(doc) = reader.get(*kind, name)? else {
            continue;
        };
        let body: Value = doc
            .body()
            .map_err(|e| WriteError::Corrupt(format!("stored {kind} {name:?}: {e}")))?;
        records.push(json!({
            "kind": kind.as_str(),
            "id": name,
            "fields": fields,
            "record": body,
        }));
    }
    let mut audit = BTreeMap::new();
    for k in &keys {
        for r in reader.audit_for_subject(k)? {
            audit.insert(r.seq, r);
        }
    }
    let audit: Vec<Value> = audit
        .into_values()
        .map(|r| {
            json!({
                "seq": r.seq,
                "at": r.at,
                "caller": {"uid": r.caller.uid, "user": r.caller.user, "profile": r.caller.profile},
                "operationName": r.operation_name,
                "status": r.status.as_str(),
                "correlationId": r.correlation_id,
                "resourceId": r.resource_id,
                "fields": r.fields,
                "counts": r.details.counts,
            })
        })
        .collect();
    let (n_records, n_audit) = (records.len() as u64, audit.len() as u64);
    let bundle = json!({
        "tenant": reader.tenant(),
        "request": {
            "id": d.request.id,
            "type": "export",
            "receivedAt": d.request.received_at,
        },
        "subject": d.request.subject,
        "generatedAt": Timestamp::now(),
        "records": records,
        "audit": audit,
        "note": "audit records name people only by a keyed HMAC of their identifiers; these are the records whose HMACs match this subject",
    });
    Ok((bundle, n_records, n_audit))
}

/// Writes `bundle` to `path` with mode 0600 (the directory 0700), through a temp file
/// that is synced and renamed into place, so a reader never sees half a bundle.
pub fn write(path: &Path, bundle: &Value) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("bundle path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        serde_json::to_writer_pretty(&mut f, bundle)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Export steps after `start`: build and write the bundle, then complete the request.
pub async fn run(shared: &Arc<Shared>, tenant: &TenantId, id: &str) -> Result<(), WriteError> {
    let reader = shared.store.tenant(tenant);
    let file = path(&shared.config().daemon.data_dir, tenant, id);
    let i = id.to_string();
    let (records, audit) =
        tokio::task::spawn_blocking(move || -> Result<(u64, u64), WriteError> {
            let d = super::read(&reader, &i)?;
            let (bundle, records, audit) = build(&reader, &d)?;
            write(&file, &bundle).map_err(|e| {
                WriteError::Store(crate::store::StoreError::Io(std::io::Error::other(
                    format!("cannot write the bundle: {e}"),
                )))
            })?;
            Ok((records, audit))
        })
        .await
        .map_err(|_| WriteError::Panicked)??;
    let retention = shared.config().retention.dsr.0;
    let i = id.to_string();
    shared
        .store
        .writer()
        .write(tenant, move |txn: &mut dyn TenantWrite| {
            let mut d = load(txn, &i)?;
            if d.request.status != DsrStatus::InProgress {
                return Ok(());
            }
            let x = d.exec();
            x.bundle_records = Some(records);
            x.bundle_audit_records = Some(audit);
            complete(
                txn,
                &mut d,
                &[("records", records), ("audit", audit)],
                retention,
                None,
            )
        })
        .await
}

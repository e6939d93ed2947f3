//! Erase: remove what may be erased and report, record by record, what was erased and what
//! is kept, why, and until when.
//!
//! | record | outcome |
//! | --- | --- |
//! | contact | the subject's address (and phone) removed; deleted when no address and no phone is left → `erased` |
//! | alert | `retained`: security data (GDPR art. 17(3)(b) and (e)); read-only; leaves at `timeGeneratedUtc` + `[retention] alerts` |
//! | JIT request | `retained`: the record of who opened network access to which VM and from where — security data like alerts, and it names only an OS account and a source address; leaves at its end + `[retention] jit_requests` |
//! | audit log | `retained`: holds the subject only as keyed HMACs, never in clear; append-only; leaves after `[retention] audit` |
//! | another request's export bundle naming the subject | `erased`: the file is zeroed and removed (this erasure supersedes it); the export says `bundleRemovedBy` |
//! | another finished request naming the subject | `erased`: its identifiers replaced by their kinds and HMACs (`subjectRemoved`) |
//! | another open request naming the subject | `retained`: it keeps the identifiers it must act on until it is answered |
//! | this request | on completion its identifiers are replaced by their kinds and HMACs; the store is rewritten within `[dsr] scrub_within` (`super::scrub`) |
//!
//! We keep the JIT requestor rather than erasing it: rewriting who had access would break
//! the security record the JIT feature exists to keep, and the record leaves on its own
//! 30 days after access ended.
//!
//! Each step is one write job: it takes the next [`super::STEP`] records from the subject
//! index that have no report line yet, changes them, appends their report lines and
//! commits all of it with the request's progress (see `super` on resumability). After the
//! records, one job handles the tenant's other requests naming the person ([`supersede`]),
//! then their bundle files are removed; a crash between the two redoes both (the job adds
//! only missing report lines, and a file already gone is fine).

use crate::records::Stored;
use crate::store::TenantRead;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use steward::resource::Operation;

use jiff::Timestamp;
use steward::model::{
    AuditStatus, ContactProperties, DsrStatus, ReportEntry, ReportOutcome, SecurityContact,
};
use steward::names::{ResourceName, TenantId};

use super::bundle::{self, hits};
use super::{DsrDoc, STEP, complete, load, remove_subject, save, system};
use crate::state::Shared;
use crate::store::{Doc, Kind, TenantWrite, WriteError};

/// Why alerts are kept.
pub const ALERT_REASON: &str = "security alert: security data kept under GDPR art. 17(3)(b) and (e) (legal obligation, establishment and defence of legal claims); alerts are read-only and leave only through retention";
/// Why JIT requests are kept.
pub const JIT_REASON: &str = "JIT access request: the security record of who opened network access to which VM, from where and when; names only an OS account and a source address, and leaves with retention after the access ended";
/// Why the audit log is kept.
pub const AUDIT_REASON: &str = "audit log: names the subject only by a keyed HMAC of the identifier, never in clear; append-only hash chain, leaves with retention";

/// Why another request's bundle is removed.
pub const BUNDLE_REASON: &str = "export bundle of another request that holds the subject's data: zeroed and removed, this erasure supersedes it";
/// Why another finished request's identifiers are replaced.
pub const REQUEST_REASON: &str = "another finished data-subject request naming the subject: its identifiers replaced by their keyed HMACs";
/// Why another open request keeps the identifiers.
pub const OPEN_REQUEST_REASON: &str = "another data-subject request naming the subject is still open: it keeps the identifiers it must act on until it is answered";

/// The retention periods that give retained records their `leavesAt`, and the scrub's.
#[derive(Debug, Clone, Copy)]
struct Retention {
    dsr: Duration,
    scrub_within: Duration,
}

fn micros_ts(secs: i64) -> Option<Timestamp> {
    Timestamp::from_second(secs).ok()
}

/// Erases the subject from one contact: `(erased?, new body or deletion)`.
fn erase_contact(
    txn: &mut dyn TenantWrite,
    doc: &Doc,
    d: &DsrDoc,
) -> Result<ReportEntry, WriteError> {
    let contact = SecurityContact::from_doc(doc)?;
    let subject = &d.request.subject;
    let mut props: ContactProperties = contact.properties.clone();
    let mut fields = Vec::new();
    if let Some(email) = &subject.email
        && props.has_email(email)
    {
        match props.without_email(email) {
            Some(p) => props = p,
            None => props.emails = None,
        }
        fields.push("properties.emails");
    }
    if let (Some(phone), Some(digits)) = (&subject.phone, props.phone_digits())
        && *phone == digits
    {
        props.phone = None;
        fields.push("properties.phone");
    }
    let entry = d
        .entry(system(Operation::DsrErase, AuditStatus::Succeeded))
        .resource(format!("contacts/{}", doc.name));
    let mut entry = fields.iter().fold(entry, |e, f| e.field(*f));
    let left = props
        .emails
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty())
        || props.phone.is_some();
    if left {
        // A contact is stored under a checked name; one that is not is damaged.
        let name =
            ResourceName::parse(&doc.name).map_err(|e| WriteError::Corrupt(e.to_string()))?;
        let contact = SecurityContact::new(txn.tenant(), &name, props, None);
        txn.put(Kind::Contact, &name, contact.to_input()?, None)?;
        entry = entry.reason("the subject's identifiers removed from the contact");
    } else {
        txn.delete(Kind::Contact, &doc.name, None)?;
        entry = entry.reason("contact deleted: no address left");
    }
    txn.audit(entry);
    Ok(ReportEntry {
        kind: Kind::Contact.as_str().to_string(),
        id: doc.name.clone(),
        outcome: ReportOutcome::Erased,
        reason: Some(if left {
            format!(
                "the subject's identifier removed from {}; the contact's other addresses remain",
                fields.join(" and ")
            )
        } else {
            "contact deleted: no address was left".to_string()
        }),
        leaves_at: None,
    })
}

fn retained(doc: &Doc, reason: &str) -> ReportEntry {
    ReportEntry {
        kind: doc.kind.as_str().to_string(),
        id: doc.name.clone(),
        outcome: ReportOutcome::Retained,
        reason: Some(reason.to_string()),
        leaves_at: doc.expires_at().and_then(micros_ts),
    }
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Handled this many records; more may follow.
    Did(usize),
    /// Nothing left to handle.
    Done,
    /// The request is no longer in progress (completed by another runner).
    Stopped,
}

/// The `(kind, id)` of every record a request's report already names.
type Reported = HashSet<(String, String)>;

/// Request `id` while it is in progress, with what its report already names; `None` once
/// it is not in progress.
fn in_progress(txn: &dyn TenantWrite, id: &str) -> Result<Option<(DsrDoc, Reported)>, WriteError> {
    let d = load(txn, id)?;
    if d.request.status != DsrStatus::InProgress {
        return Ok(None);
    }
    let reported = d
        .request
        .report
        .iter()
        .map(|e| (e.kind.clone(), e.id.clone()))
        .collect();
    Ok(Some((d, reported)))
}

/// Job: handles the next `STEP` records that have no report line yet.
fn step(txn: &mut dyn TenantWrite, id: &str, r: Retention) -> Result<Step, WriteError> {
    let Some((mut d, reported)) = in_progress(txn, id)? else {
        return Ok(Step::Stopped);
    };
    let keys = d.subject_keys();
    let found = hits(&keys, |k| txn.subjects(k))?;
    let next: Vec<(Kind, String)> = found
        .into_keys()
        .filter(|(k, n)| !reported.contains(&(k.as_str().to_string(), n.clone())))
        .take(STEP)
        .collect();
    if next.is_empty() {
        return Ok(Step::Done);
    }
    let (mut erased, mut kept) = (0u64, 0u64);
    for (kind, name) in &next {
        let Some(doc) = txn.get(*kind, name)? else {
            continue;
        };
        let line = match kind {
            Kind::Contact => erase_contact(txn, &doc, &d)?,
            Kind::Alert => retained(&doc, ALERT_REASON),
            Kind::JitRequest => retained(&doc, JIT_REASON),
            _ => retained(
                &doc,
                "not covered by erasure: this kind of record is kept until it is deleted or leaves with retention",
            ),
        };
        match line.outcome {
            ReportOutcome::Erased => erased += 1,
            ReportOutcome::Retained => kept += 1,
        }
        d.request.report.push(line);
    }
    end_step(txn, &mut d, r, erased, kept)?;
    Ok(Step::Did(next.len()))
}

/// Ends one step of an erasure: counts it, stores the request with its report lines,
/// and audits the step's counts (`dsr.execute`, no personal values).
fn end_step(
    txn: &mut dyn TenantWrite,
    d: &mut DsrDoc,
    r: Retention,
    erased: u64,
    retained: u64,
) -> Result<(), WriteError> {
    d.exec().steps += 1;
    save(txn, d, r.dsr)?;
    txn.audit(
        d.entry(system(Operation::DsrExecute, AuditStatus::Succeeded))
            .field("report")
            .count("erased", erased)
            .count("retained", retained),
    );
    Ok(())
}

/// Job: the tenant's other requests naming the person. Those whose bundle is in
/// `bundles` (found to name the subject; the files go after this job commits) are marked
/// `bundleRemovedBy`; finished ones sharing an identifier keep only HMACs from now on; open
/// ones are reported as kept. Each gets one report line, added once.
fn supersede(
    txn: &mut dyn TenantWrite,
    id: &str,
    bundles: &[String],
    r: Retention,
) -> Result<(), WriteError> {
    let Some((mut d, reported)) = in_progress(txn, id)? else {
        return Ok(());
    };
    let mut others = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = txn.list(Kind::Dsr, after.as_deref(), 500)?;
        for doc in &page.items {
            if doc.name != id {
                others.push(DsrDoc::parse(doc)?);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let line = |d: &mut DsrDoc, kind: &str, oid: &str, outcome, reason: &str| {
        if !reported.contains(&(kind.to_owned(), oid.to_owned())) {
            d.request.report.push(ReportEntry {
                kind: kind.to_owned(),
                id: oid.to_owned(),
                outcome,
                reason: Some(reason.to_owned()),
                leaves_at: None,
            });
        }
    };
    let (mut removed, mut kept) = (0u64, 0u64);
    for mut o in others {
        let oid = o.request.id.clone();
        let mut fields = Vec::new();
        let marked = o
            .execution
            .as_ref()
            .is_some_and(|x| x.bundle_removed_by.as_deref() == Some(id));
        if bundles.contains(&oid) && !marked {
            o.exec().bundle_removed_by = Some(id.to_owned());
            fields.push("execution.bundleRemovedBy");
            line(&mut d, "bundle", &oid, ReportOutcome::Erased, BUNDLE_REASON);
            removed += 1;
        }
        if o.request.subject.shares_identifier(&d.request.subject) {
            if o.request.status.is_final() {
                remove_subject(txn, &mut o, id);
                fields.push("subject");
                line(&mut d, "dsr", &oid, ReportOutcome::Erased, REQUEST_REASON);
                removed += 1;
            } else {
                line(
                    &mut d,
                    "dsr",
                    &oid,
                    ReportOutcome::Retained,
                    OPEN_REQUEST_REASON,
                );
                kept += 1;
            }
        }
        if !fields.is_empty() {
            super::save(txn, &o, r.dsr)?;
            let e = d
                .entry(system(Operation::DsrErase, AuditStatus::Succeeded))
                .resource(format!("dsr/{oid}"));
            txn.audit(fields.into_iter().fold(e, |e, f| e.field(f)));
        }
    }
    end_step(txn, &mut d, r, removed, kept)
}

/// The bundles of the tenant's other requests that name the subject of request `id`
/// (read off the async threads).
async fn bundles_naming(
    shared: &Arc<Shared>,
    tenant: &TenantId,
    id: &str,
) -> Result<Vec<(String, PathBuf)>, WriteError> {
    let reader = shared.store.tenant(tenant);
    let data_dir = shared.config().daemon.data_dir.clone();
    let (t, i) = (tenant.to_owned(), id.to_owned());
    tokio::task::spawn_blocking(move || -> Result<_, WriteError> {
        let d = super::read(&reader, &i)?;
        let records: HashSet<(String, String)> = d
            .request
            .report
            .iter()
            .map(|e| (e.kind.clone(), e.id.clone()))
            .collect();
        let found = bundle::naming(&data_dir, &t, &d.request.subject, &records)
            .map_err(|e| WriteError::Store(e.into()))?;
        Ok(found.into_iter().filter(|(o, _)| *o != i).collect())
    })
    .await
    .map_err(|_| WriteError::Panicked)?
}

/// Job: the audit line, then `completed`.
fn finish(
    txn: &mut dyn TenantWrite,
    id: &str,
    audit_records: u64,
    audit_keep: Duration,
    r: Retention,
) -> Result<(), WriteError> {
    let mut d = load(txn, id)?;
    if d.request.status != DsrStatus::InProgress {
        return Ok(());
    }
    let now = Timestamp::from_microsecond(txn.now_micros()).unwrap_or_else(|_| Timestamp::now());
    let keep = jiff::SignedDuration::try_from(audit_keep).unwrap_or(jiff::SignedDuration::MAX);
    d.request.report.push(ReportEntry {
        kind: "audit".to_string(),
        id: format!("{audit_records} audit records"),
        outcome: ReportOutcome::Retained,
        reason: Some(AUDIT_REASON.to_string()),
        leaves_at: now.checked_add(keep).ok(),
    });
    let erased = d
        .request
        .report
        .iter()
        .filter(|e| e.outcome == ReportOutcome::Erased)
        .count() as u64;
    let kept = d.request.report.len() as u64 - erased;
    complete(
        txn,
        &mut d,
        &[("erased", erased), ("retained", kept)],
        r.dsr,
        Some(r.scrub_within),
    )
}

/// Erase steps after `start`: steps until nothing is left, then the audit line and
/// completion.
pub async fn run(shared: &Arc<Shared>, tenant: &TenantId, id: &str) -> Result<(), WriteError> {
    let writer = shared.store.writer();
    let cfg = shared.config();
    let r = Retention {
        dsr: cfg.retention.dsr.0,
        scrub_within: cfg.dsr.scrub_within.0,
    };
    loop {
        if shared.shutdown.is_cancelled() {
            // Resumed at the next start.
            return Ok(());
        }
        let i = id.to_string();
        match writer
            .write(tenant, move |txn: &mut dyn TenantWrite| step(txn, &i, r))
            .await?
        {
            Step::Did(_) => {}
            Step::Done => break,
            Step::Stopped => return Ok(()),
        }
    }
    // The other requests naming the person, then their bundle files.
    let bundles = bundles_naming(shared, tenant, id).await?;
    let ids: Vec<String> = bundles.iter().map(|(o, _)| o.clone()).collect();
    let i = id.to_string();
    writer
        .write(tenant, move |txn: &mut dyn TenantWrite| {
            supersede(txn, &i, &ids, r)
        })
        .await?;
    tokio::task::spawn_blocking(move || {
        bundles
            .iter()
            .try_for_each(|(_, file)| bundle::discard(file))
    })
    .await
    .map_err(|_| WriteError::Panicked)?
    .map_err(|e| WriteError::Store(e.into()))?;
    // How many audit records name the subject (by HMAC), for the report's audit line.
    let reader = shared.store.tenant(tenant);
    let i = id.to_string();
    let audit_records = tokio::task::spawn_blocking(move || -> Result<u64, WriteError> {
        let d = super::read(&reader, &i)?;
        let mut seqs = HashSet::new();
        for k in d.subject_keys() {
            seqs.extend(reader.audit_for_subject(&k)?.into_iter().map(|a| a.seq));
        }
        Ok(seqs.len() as u64)
    })
    .await
    .map_err(|_| WriteError::Panicked)??;
    let audit_keep = cfg.retention.audit.0;
    let i = id.to_string();
    writer
        .write(tenant, move |txn: &mut dyn TenantWrite| {
            finish(txn, &i, audit_records, audit_keep, r)
        })
        .await
}

//! JIT's rules over the store, shared by the routes, the expiry timer and the firewall:
//! how a request is kept, and what a new request does to the open ones.
//!
//! A request is stored with an `End` entry at the earliest end among its open ports
//! (rounded *up* to the second, so the expiry timer never wakes before a port is really
//! due) and a `Purge` entry at its end + `[retention] jit_requests` ([`request_input`]).
//! A newer request for the same VM port ends the older one (`NewerRequestInitiated`,
//! [`supersede`]). The policy's own rules (what may be asked) are in the library
//! (`steward::model::jit`); the HTTP side is `routes/jit.rs`.

use std::time::Duration;

use jiff::Timestamp;
use steward::model::{JitRequest, RevokeReason};

use crate::store::{AuditEntry, Doc, DocInput, Kind, ScheduleAction, TenantWrite, WriteError};
use crate::timers::hook::HookEvent;

/// Requests read per page while looking for the ones a new request supersedes.
const SCAN: usize = 500;

/// Unix seconds of `t`, rounded up to the next whole second.
pub fn ceil_secs(t: Timestamp) -> i64 {
    let s = t.as_second();
    if t.subsec_nanosecond() > 0 { s + 1 } else { s }
}

/// The stored form of `req`: its JSON, the people it names (requestor, single source
/// addresses) for the subject index, an `End` entry while a port is open and a `Purge`
/// entry `retention` after it ends.
pub fn request_input(req: &JitRequest, retention: Duration) -> Result<DocInput, WriteError> {
    let body =
        serde_json::to_string(req).map_err(|e| WriteError::Encode(format!("JIT request: {e}")))?;
    let mut input = DocInput::new(body);
    for k in &req.subject_keys() {
        input = input.subject(k);
    }
    if let Some(next) = req.next_expiry() {
        input = input.schedule(ScheduleAction::End, ceil_secs(next));
    }
    let keep = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let purge = ceil_secs(req.end_time()).saturating_add(keep);
    Ok(input.schedule(ScheduleAction::Purge, purge))
}

/// Parses a stored request document.
pub fn parse_request(doc: &Doc) -> Result<JitRequest, WriteError> {
    serde_json::from_str(&doc.body_json)
        .map_err(|e| WriteError::Corrupt(format!("stored JIT request {:?}: {e}", doc.name)))
}

/// Ends, in `txn`, every open port of the tenant's requests that `newer` asks for again:
/// each changed request is stored, audited as `superseded` (a `jit.revoke` entry, given
/// with the caller and correlation id) naming it and `NewerRequestInitiated`, and
/// announced as `revoked`. Returns the hook events of the requests it closed.
pub fn supersede(
    txn: &mut dyn TenantWrite,
    newer: &JitRequest,
    now: Timestamp,
    retention: Duration,
    superseded: &AuditEntry,
) -> Result<Vec<HookEvent>, WriteError> {
    let tenant = txn.tenant().to_owned();
    let mut hooks = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = txn.list(Kind::JitRequest, after.as_deref(), SCAN)?;
        for old_doc in &page.items {
            let mut old = parse_request(old_doc)?;
            if !old.is_active() {
                continue;
            }
            let before = old.clone();
            if old.supersede_by(newer, now) == 0 {
                continue;
            }
            txn.update(
                Kind::JitRequest,
                &old_doc.name,
                request_input(&old, retention)?,
            )?;
            let mut e = superseded
                .clone()
                .resource(format!("jit-requests/{}", old_doc.name))
                .field("virtualMachines[].ports[].status")
                .reason(RevokeReason::NewerRequestInitiated.as_str());
            for k in &old.subject_keys() {
                e = e.subject(k);
            }
            txn.audit(e);
            txn.emit(Kind::JitRequest, &old_doc.name, "revoked");
            hooks.push(HookEvent::closed(&tenant, &before, &old));
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(hooks),
        }
    }
}

//! The built-in JIT firewall (`[jit] firewall = "nftables"`): the daemon keeps one
//! nftables table of its own, `inet steward`, that is always the store's projection.
//!
//! Every change (an initiate, a revoke or supersede, a policy written or deleted), every
//! start and every reload **rebuilds the whole table from the store** ([`sync`]): read
//! every tenant's policies and open requests, compute the guards and doors
//! ([`plan`]), and replace the table in one kernel transaction ([`nft`]). One code path
//! does initiate, revoke, supersede and reconciliation, so a crash, a manual `nft flush
//! ruleset` or a reboot leaves, after the next start or reload, exactly what the store
//! says: strangers are gone, missing doors are back with the right remaining timeout.
//! Expiry needs nothing: each door is a set element with the kernel's own timeout.
//!
//! Rebuilds are serialised, and each reads the store after taking the lock, so the last
//! applied is never older than the last committed change. Outcomes are audited as
//! `jit.firewall` (in the tenant whose change it was; in every tenant for a start or a
//! reload); a door that cannot be opened closes its request port with `statusReason`
//! `FirewallFailed`, audited with the reason, and a failed rebuild leaves the previous
//! table in force. At start a firewall that cannot be set up stops the daemon
//! ([`crate::daemon::StartError::Firewall`]): never a silent open.
//!
//! Call sites (marked `firewall:`) are in `routes/jit.rs`, `daemon.rs` and `reload`'s
//! `on_config_applied`.

pub mod nft;
pub mod plan;

use crate::store::TenantRead;
use std::sync::{Arc, Mutex};
use steward::names::TenantId;

use jiff::Timestamp;
use steward::config::{Config, FirewallBackend};
use steward::model::{AuditStatus, JitPolicy, JitRequest, RevokeReason};
use steward::resource::Operation;

use http::StatusCode;

use crate::error::ApiError;
use crate::jit::{parse_request, request_input};
use crate::state::Shared;
use crate::store::{self, AuditEntry, Kind, StoreError, TenantWrite, WriteError};
use crate::timers::hook::{self, HookEvent};
pub use nft::NftError;
pub use plan::{Plan, Refusal, check_request};

/// The audit operation of firewall changes (`jit.firewall`).
pub const ACTION: Operation = Operation::JitFirewall;
/// Records read per page when scanning a tenant.
const SCAN: usize = 500;

/// Serialises rebuilds (read the store, then apply) across the process.
static LOCK: Mutex<()> = Mutex::new(());

/// Why the table could not be rebuilt. The cause is in the message (not a `source`), so
/// an error chain prints it once.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The store could not be read.
    #[error("[jit] firewall: cannot read the JIT requests: {0}")]
    Store(StoreError),
    /// `nft` failed; the previous table stays in force.
    #[error("[jit] firewall: {0}")]
    Nft(NftError),
}

impl From<StoreError> for FirewallError {
    fn from(e: StoreError) -> Self {
        FirewallError::Store(e)
    }
}

impl From<NftError> for FirewallError {
    fn from(e: NftError) -> Self {
        FirewallError::Nft(e)
    }
}

/// What started a rebuild (and so where it is audited).
#[derive(Debug, Clone)]
pub enum Trigger {
    /// The daemon's start: audited in every tenant.
    Start,
    /// A reload of the configuration: audited in every tenant.
    Reload,
    /// A change in one tenant to one resource (`jit-requests/ID`, `jit-policies/NAME`).
    Change {
        /// The tenant.
        tenant: TenantId,
        /// The resource that changed.
        resource: String,
    },
}

impl Trigger {
    fn why(&self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Reload => "reload",
            Trigger::Change { .. } => "change",
        }
    }
}

/// What a successful rebuild put in force.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Doors open.
    pub doors: usize,
    /// Guarded (target, protocol, port) triples.
    pub guards: usize,
    /// Request ports that could not be opened (now closed `FirewallFailed`).
    pub refused: Vec<Refusal>,
}

/// Whether the built-in firewall is on in `cfg`.
pub fn enabled(cfg: &Config) -> bool {
    cfg.jit.firewall == Some(FirewallBackend::Nftables)
}

/// Every tenant's policies and requests, oldest request first.
fn read_state(shared: &Shared) -> Result<Vec<plan::TenantState>, StoreError> {
    let mut out = Vec::new();
    for t in &shared.config().tenants {
        let r = shared.store.tenant(&t.id);
        let mut state = plan::TenantState {
            tenant: t.id.clone(),
            policies: Vec::new(),
            requests: Vec::new(),
        };
        for kind in [Kind::JitPolicy, Kind::JitRequest] {
            let mut after: Option<String> = None;
            loop {
                let page = r.list(kind, after.as_deref(), SCAN)?;
                for doc in &page.items {
                    if kind == Kind::JitPolicy {
                        match serde_json::from_str::<JitPolicy>(&doc.body_json) {
                            Ok(p) => state.policies.push(p),
                            Err(e) => {
                                tracing::error!(tenant = %t.id, policy = %doc.name, error = %e, "firewall: unreadable policy skipped")
                            }
                        }
                    } else {
                        match parse_request(doc) {
                            Ok(q) if q.is_active() => state.requests.push(q),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::error!(tenant = %t.id, error = %e, "firewall: unreadable request skipped (no door)")
                            }
                        }
                    }
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        out.push(state);
    }
    Ok(out)
}

/// Rebuilds the table now, blocking (the calling thread waits on `nft` and the writer):
/// the start's pass and the body of [`sync`]. Audits the outcome and closes refused
/// ports. Callable inside or outside an async runtime.
pub fn sync_blocking(shared: &Arc<Shared>, trigger: &Trigger) -> Result<Report, FirewallError> {
    let outcome = {
        let _held = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let cfg = shared.config();
        read_state(shared)
            .map_err(FirewallError::from)
            .and_then(|state| {
                let plan = plan::plan(&cfg.jit, &state, Timestamp::now());
                nft::apply(&nft::replace_table(&plan))?;
                Ok(plan)
            })
    };
    // Audited from a plain thread: it waits on the writer, which must not happen on an
    // async worker.
    let rt = tokio::runtime::Handle::try_current().ok();
    let recorded = std::thread::scope(|s| s.spawn(|| record(shared, rt, trigger, &outcome)).join());
    if recorded.is_err() {
        tracing::error!("firewall: recording a rebuild's outcome panicked");
    }
    outcome.map(|p| Report {
        doors: p.doors.len(),
        guards: p.guards.len(),
        refused: p.refused,
    })
}

/// Rebuilds the table off the async threads (see [`sync_blocking`]).
pub async fn sync(shared: &Arc<Shared>, trigger: Trigger) -> Result<Report, FirewallError> {
    let s = Arc::clone(shared);
    match tokio::task::spawn_blocking(move || sync_blocking(&s, &trigger)).await {
        Ok(r) => r,
        Err(e) => Err(FirewallError::Nft(NftError::Failed(format!(
            "the rebuild task failed: {e}"
        )))),
    }
}

/// Removes the table (the firewall was turned off by a reload). Blocking.
pub fn remove() -> Result<(), NftError> {
    let _held = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    nft::apply(&nft::remove_table())
}

/// Audits a rebuild's outcome and closes its refused ports; runs on a plain thread
/// (it waits on the writer).
fn record(
    shared: &Arc<Shared>,
    rt: Option<tokio::runtime::Handle>,
    trigger: &Trigger,
    outcome: &Result<Plan, FirewallError>,
) {
    let tenants: Vec<TenantId> = match trigger {
        Trigger::Change { tenant, .. } => vec![tenant.clone()],
        _ => shared
            .config()
            .tenants
            .iter()
            .map(|t| t.id.clone())
            .collect(),
    };
    let resource = match trigger {
        Trigger::Change { resource, .. } => resource.clone(),
        _ => "firewall".to_owned(),
    };
    let writer = shared.store.writer();
    for tenant in &tenants {
        let entry = match outcome {
            Ok(plan) => AuditEntry::new(store::system_caller(), ACTION, AuditStatus::Succeeded)
                .resource(&resource)
                .count("doors", plan.doors_of(tenant) as u64)
                .reason(trigger.why()),
            Err(e) => AuditEntry::new(store::system_caller(), ACTION, AuditStatus::Failed)
                .resource(&resource)
                .reason(format!("{}: {e}", trigger.why())),
        };
        let r: Result<(), WriteError> =
            writer.write_blocking(tenant, move |txn: &mut dyn TenantWrite| {
                txn.audit(entry);
                Ok(())
            });
        if let Err(e) = r {
            tracing::error!(tenant = %tenant, error = %e, "firewall: could not audit a rebuild");
        }
    }
    let plan = match outcome {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, trigger = trigger.why(), "firewall: the table was not rebuilt; the previous one stays in force");
            return;
        }
    };
    tracing::info!(
        doors = plan.doors.len(),
        guards = plan.guards.len(),
        refused = plan.refused.len(),
        trigger = trigger.why(),
        "firewall: table inet steward rebuilt"
    );
    for r in &plan.refused {
        tracing::warn!(tenant = %r.tenant, request = %r.request, port = r.port, reason = %r.reason, "firewall: a request port cannot be opened; closing it");
        let reason = format!("port {}: {}", r.port, r.reason);
        let port = Some((r.vm.as_str(), r.port));
        close(shared, rt.as_ref(), &r.tenant, &r.request, port, reason);
    }
}

/// Closes a request's port (`Some((vm, port))`) or all its open ports (`None`) that the
/// firewall could not open, with `FirewallFailed`; audits `reason` and runs the hook's
/// close (when a runtime is at hand). Never opened in the kernel: nothing to remove.
/// Blocking (waits on the writer): call it from a plain thread.
fn close(
    shared: &Arc<Shared>,
    rt: Option<&tokio::runtime::Handle>,
    tenant: &TenantId,
    request: &str,
    port: Option<(&str, u16)>,
    reason: String,
) {
    let retention = shared.config().retention.jit_requests.0;
    let entry = AuditEntry::new(store::system_caller(), ACTION, AuditStatus::Failed)
        .resource(format!("jit-requests/{request}"))
        .field("virtualMachines[].ports[].status")
        .reason(reason);
    let t = tenant.to_owned();
    let name = request.to_owned();
    let port = port.map(|(vm, n)| (vm.to_owned(), n));
    let done: Result<Option<HookEvent>, WriteError> =
        shared
            .store
            .writer()
            .write_blocking(tenant, move |txn: &mut dyn TenantWrite| {
                txn.audit(entry);
                let Some(doc) = txn.get(Kind::JitRequest, &name)? else {
                    return Ok(None);
                };
                let mut req: JitRequest = parse_request(&doc)?;
                let before = req.clone();
                let now = Timestamp::from_microsecond(txn.now_micros())
                    .unwrap_or_else(|_| Timestamp::now());
                let why = RevokeReason::FirewallFailed;
                let closed = match &port {
                    Some((vm, n)) => usize::from(req.revoke_port(vm, *n, why, now)),
                    None => req.revoke_all(why, now),
                };
                if closed == 0 {
                    return Ok(None);
                }
                txn.update(Kind::JitRequest, &name, request_input(&req, retention)?)?;
                txn.emit(Kind::JitRequest, &name, "revoked");
                Ok(Some(HookEvent::closed(&t, &before, &req)))
            });
    match (done, rt) {
        (Ok(Some(ev)), Some(rt)) => {
            let _entered = rt.enter();
            hook::spawn(Arc::clone(shared), vec![ev]);
        }
        (Ok(_), _) => {}
        (Err(e), _) => {
            tracing::error!(error = %e, "firewall: could not close a request it cannot open")
        }
    }
}

/// After an initiate committed request `request` in `tenant`: rebuilds the table so its
/// doors open (and superseded ones close) before the caller is answered. If they could
/// not open, the request's ports are closed `FirewallFailed` and the error says why: 409
/// when the request itself cannot be opened (an overlapping door, a target gone), 503
/// when the table could not be rebuilt. Does nothing when the firewall is off.
pub async fn opened(
    shared: &Arc<Shared>,
    tenant: &TenantId,
    request: &str,
) -> Result<(), ApiError> {
    if !enabled(&shared.config()) {
        return Ok(());
    }
    let trigger = Trigger::Change {
        tenant: tenant.clone(),
        resource: format!("jit-requests/{request}"),
    };
    let closed = |why: &str| {
        format!(
            "JIT request {request} was recorded, but the firewall could not open it, so its ports are closed (statusReason FirewallFailed): {why}"
        )
    };
    match sync(shared, trigger).await {
        Ok(report) => {
            let mine: Vec<String> = report
                .refused
                .iter()
                .filter(|r| r.tenant == *tenant && r.request == request)
                .map(|r| format!("port {}: {}", r.port, r.reason))
                .collect();
            if mine.is_empty() {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "FirewallFailed",
                    closed(&mine.join("; ")),
                ))
            }
        }
        Err(e) => {
            let (s, t, q, why) = (
                Arc::clone(shared),
                tenant.to_owned(),
                request.to_owned(),
                e.to_string(),
            );
            let rt = tokio::runtime::Handle::current();
            let _ =
                tokio::task::spawn_blocking(move || close(&s, Some(&rt), &t, &q, None, why)).await;
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "FirewallFailed",
                closed(&e.to_string()),
            ))
        }
    }
}

/// After a committed change in `tenant` to `resource` that closes doors or moves guards
/// (a revoke, a policy written or deleted): rebuilds the table. 503 when it could not
/// (the change is recorded; a door it should close still closes at its end, by the
/// kernel). Does nothing when the firewall is off.
pub async fn changed(
    shared: &Arc<Shared>,
    tenant: &TenantId,
    resource: String,
) -> Result<(), ApiError> {
    if !enabled(&shared.config()) {
        return Ok(());
    }
    let trigger = Trigger::Change {
        tenant: tenant.clone(),
        resource: resource.clone(),
    };
    sync(shared, trigger).await.map(|_| ()).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "FirewallFailed",
            format!("{resource} was changed, but the firewall table could not be rebuilt (an open door still closes at its end time): {e}"),
        )
    })
}

/// After a reload: rebuilds the table when the firewall is on, removes it when a reload
/// turned the firewall off (`was_on`). Failures are logged and audited.
pub async fn reloaded(shared: &Arc<Shared>, was_on: bool) {
    if enabled(&shared.config()) {
        let _ = sync(shared, Trigger::Reload).await;
    } else if was_on {
        match tokio::task::spawn_blocking(remove).await {
            Ok(Ok(())) => tracing::info!("firewall turned off: table inet steward removed"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "firewall turned off, but table inet steward could not be removed")
            }
            Err(e) => tracing::error!(error = %e, "firewall: removing the table failed"),
        }
    }
}

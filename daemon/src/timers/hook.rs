//! The `[jit] on_change` hook: a command run after a JIT request opens (initiate) or closes
//! (expired, revoked, superseded), so a host can open and close real firewall rules.
//!
//! It runs off the request path (a task of its own; the response and the timers never wait
//! for it). The change arrives as **one JSON document on stdin** ([`HookEvent`]), closed
//! after the document, for example:
//!
//! ```json
//! {"version": 1, "action": "opened", "tenant": "contoso", "requestId": "0193…",
//!  "policyName": "default", "status": "Initiated", "reason": "UserRequested",
//!  "startTimeUtc": "2026-12-03T10:00:00Z",
//!  "virtualMachines": [{"id": "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1",
//!    "resourceGroup": "rg1", "name": "vm1",
//!    "ports": [{"number": 22, "sourceAddressPrefixes": ["198.51.100.9"],
//!               "endTimeUtc": "2026-12-03T11:00:00Z", "status": "Initiated",
//!               "statusReason": "UserRequested"}]}]}
//! ```
//!
//! `action` is `opened`, `revoked`, `expired` or `superseded`; `virtualMachines` lists only
//! the ports that changed. Every VM id of an opened request is in the tenant (the policy
//! and the initiate were parsed as [`steward::model::VmId`]s of it). A few scalars are also
//! in the environment, for scripts that need no parser:
//!
//! | variable | value |
//! | --- | --- |
//! | `STEWARD_TENANT` | tenant id |
//! | `STEWARD_POLICY` | policy name |
//! | `STEWARD_REQUEST` | request id |
//! | `STEWARD_ACTION` | `opened`, `revoked`, `expired` or `superseded` |
//! | `STEWARD_STATUS` | `Initiated` or `Revoked` |
//! | `STEWARD_REASON` | the ports' `statusReason`: `UserRequested` (also for an initiate, as the API shows it), `Expired`, `NewerRequestInitiated` |
//!
//! The events of one change (a superseded request's close, then the new request's open) run
//! in order in one task, so a firewall never sees the open before the close. A command that
//! cannot start, exits non-zero or outlives [`HOOK_TIMEOUT`] (it is then killed) is logged
//! and audited as `jit.hook` `Failed` with the exit code as the reason; it changes nothing
//! else. The document is written from a task of its own and the whole run, write included,
//! is bounded by the timeout, so a hook that never reads its stdin cannot hold the daemon.
//! Of the daemon's own environment the hook gets only [`INHERITED`] (`PATH`, the locale,
//! `TZ`, `TMPDIR`): not the daemon's settings, and not systemd's `NOTIFY_SOCKET` or
//! `LISTEN_FDS`, with which a hook could speak for the daemon.
//! Not here: deciding when requests change (routes, `jit_expiry.rs`).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use steward::names::TenantId;
use steward::resource::Operation;

use jiff::Timestamp;
use serde::Serialize;
use steward::model::{AuditStatus, JitRequest, JitRequestPort, RevokeReason};
use tokio::io::AsyncWriteExt;

use crate::state::Shared;
use crate::store::{self, AuditEntry, TenantWrite, WriteError};

/// How long a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// The version of the stdin document's shape.
pub const HOOK_DOC_VERSION: u32 = 1;

/// What happened to the request's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookAction {
    /// A new request opened them.
    Opened,
    /// They were revoked (by a caller).
    Revoked,
    /// They reached their `endTimeUtc`.
    Expired,
    /// A newer request for the same VM port replaced them.
    Superseded,
}

impl HookAction {
    /// The lowercase name, as in the document.
    pub fn as_str(self) -> &'static str {
        match self {
            HookAction::Opened => "opened",
            HookAction::Revoked => "revoked",
            HookAction::Expired => "expired",
            HookAction::Superseded => "superseded",
        }
    }
}

/// One open or close of a request's ports: the document the hook reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookEvent {
    /// [`HOOK_DOC_VERSION`], so a hook can refuse a shape it does not know.
    pub version: u32,
    /// What happened.
    pub action: HookAction,
    /// Tenant id.
    pub tenant: TenantId,
    /// Request id.
    pub request_id: String,
    /// Policy name.
    pub policy_name: String,
    /// `Initiated` or `Revoked`.
    pub status: String,
    /// `statusReason` of the ports that changed.
    pub reason: String,
    /// When the request was made.
    pub start_time_utc: Timestamp,
    /// The VMs whose ports changed, each with those ports only.
    pub virtual_machines: Vec<HookVm>,
}

/// One VM of a hook document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookVm {
    /// The VM's ARM id.
    pub id: String,
    /// Its resource group (from the id).
    pub resource_group: String,
    /// Its name (the id's last segment).
    pub name: String,
    /// The ports that opened or closed.
    pub ports: Vec<HookPort>,
}

/// One port of a hook document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookPort {
    /// The port number.
    pub number: u16,
    /// The sources it is (or was) open for: IPs, CIDR prefixes or `*`.
    pub source_address_prefixes: Vec<String>,
    /// When it closes (or closed).
    pub end_time_utc: Timestamp,
    /// `Initiated` or `Revoked`.
    pub status: String,
    /// `UserRequested`, `Expired` or `NewerRequestInitiated`.
    pub status_reason: String,
}

impl HookEvent {
    fn from_ports<'a>(
        tenant: &TenantId,
        req: &JitRequest,
        ports: impl Iterator<Item = (&'a str, &'a JitRequestPort)>,
        status: &str,
    ) -> HookEvent {
        let mut ev = HookEvent {
            version: HOOK_DOC_VERSION,
            action: HookAction::Opened,
            tenant: tenant.clone(),
            request_id: req.id.clone(),
            policy_name: req.policy_name.clone().unwrap_or_default(),
            status: status.to_owned(),
            reason: String::new(),
            start_time_utc: req.start_time_utc,
            virtual_machines: Vec::new(),
        };
        for (vm, p) in ports {
            if ev.reason.is_empty() {
                ev.reason = p.status_reason.clone();
            }
            let port = HookPort {
                number: p.number,
                source_address_prefixes: p.sources(),
                end_time_utc: p.end_time_utc,
                status: p.status.clone(),
                status_reason: p.status_reason.clone(),
            };
            match ev.virtual_machines.iter_mut().find(|v| v.id == vm) {
                Some(v) => v.ports.push(port),
                None => {
                    let segs: Vec<&str> = vm.split('/').collect();
                    ev.virtual_machines.push(HookVm {
                        id: vm.to_owned(),
                        resource_group: segs.get(4).copied().unwrap_or_default().to_owned(),
                        name: segs.last().copied().unwrap_or_default().to_owned(),
                        ports: vec![port],
                    });
                }
            }
        }
        ev
    }

    /// A new request opened all its ports.
    pub fn opened(tenant: &TenantId, req: &JitRequest) -> HookEvent {
        let ports = req
            .virtual_machines
            .iter()
            .flat_map(|vm| vm.ports.iter().map(move |p| (vm.id.as_str(), p)));
        HookEvent::from_ports(tenant, req, ports, steward::model::jit::STATUS_INITIATED)
    }

    /// The ports open in `before` and closed in `after` (the same request).
    pub fn closed(tenant: &TenantId, before: &JitRequest, after: &JitRequest) -> HookEvent {
        let was_open: Vec<(String, u16)> = before
            .virtual_machines
            .iter()
            .flat_map(|vm| {
                vm.ports
                    .iter()
                    .filter(|p| p.is_active())
                    .map(move |p| (vm.id.to_ascii_lowercase(), p.number))
            })
            .collect();
        let ports = after.virtual_machines.iter().flat_map(|vm| {
            let key = vm.id.to_ascii_lowercase();
            let was_open = &was_open;
            vm.ports.iter().filter_map(move |p| {
                (!p.is_active() && was_open.contains(&(key.clone(), p.number)))
                    .then_some((vm.id.as_str(), p))
            })
        });
        let mut ev =
            HookEvent::from_ports(tenant, after, ports, steward::model::jit::STATUS_REVOKED);
        ev.action = if ev.reason == RevokeReason::Expired.as_str() {
            HookAction::Expired
        } else if ev.reason == RevokeReason::NewerRequestInitiated.as_str() {
            HookAction::Superseded
        } else {
            HookAction::Revoked
        };
        ev
    }

    /// The scalar environment variables (no lists: those are in the document).
    fn env(&self) -> [(&'static str, String); 6] {
        [
            ("STEWARD_TENANT", self.tenant.to_string()),
            ("STEWARD_POLICY", self.policy_name.clone()),
            ("STEWARD_REQUEST", self.request_id.clone()),
            ("STEWARD_ACTION", self.action.as_str().to_owned()),
            ("STEWARD_STATUS", self.status.clone()),
            ("STEWARD_REASON", self.reason.clone()),
        ]
    }
}

/// Why a hook run failed (what the audit record's reason says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookFailure {
    /// It could not be started.
    Spawn,
    /// It exited with this code.
    Exit(i32),
    /// It was ended by this signal.
    Signal(i32),
    /// It outlived [`HOOK_TIMEOUT`] and was killed.
    Timeout,
}

impl std::fmt::Display for HookFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookFailure::Spawn => f.write_str("the command could not be started"),
            HookFailure::Exit(c) => write!(f, "exit code {c}"),
            HookFailure::Signal(s) => write!(f, "killed by signal {s}"),
            HookFailure::Timeout => write!(f, "timed out after {}s", HOOK_TIMEOUT.as_secs()),
        }
    }
}

/// What a hook keeps of the daemon's environment: where programs are and how text and
/// time read. Nothing else crosses: not the daemon's `STEWARD_*` settings, and not
/// systemd's `NOTIFY_SOCKET` or `LISTEN_FDS`, with which a hook could speak for the daemon.
const INHERITED: &[&str] = &["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/// The daemon's values of [`INHERITED`] that are set.
fn inherited_env() -> impl Iterator<Item = (&'static str, std::ffi::OsString)> {
    INHERITED
        .iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (*k, v)))
}

/// Runs `cmd` once for `ev`, its document on stdin and its scalars as `STEWARD_*`
/// variables beside the [`INHERITED`] ones, waiting at most `timeout` in all.
pub async fn run_one(cmd: &Path, ev: &HookEvent, timeout: Duration) -> Result<(), HookFailure> {
    let doc = match serde_json::to_vec(ev) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "jit.on_change: cannot encode the document");
            return Err(HookFailure::Spawn);
        }
    };
    let mut child = tokio::process::Command::new(cmd)
        .env_clear()
        .envs(inherited_env())
        .envs(ev.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            tracing::warn!(command = %cmd.display(), error = %e, "jit.on_change could not start");
            HookFailure::Spawn
        })?;
    // Written from its own task: a hook that never reads must not block the wait below.
    // Dropping the handle at the end closes the pipe, so the hook sees end of input.
    let writer = child.stdin.take().map(|mut stdin| {
        tokio::spawn(async move {
            let _ = stdin.write_all(&doc).await;
            let _ = stdin.shutdown().await;
        })
    });
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    if let Some(w) = writer {
        w.abort();
    }
    let status = match waited {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return Err(HookFailure::Spawn),
        Err(_) => {
            let _ = child.kill().await;
            return Err(HookFailure::Timeout);
        }
    };
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    Err(match (status.code(), status.signal()) {
        (Some(c), _) => HookFailure::Exit(c),
        (None, Some(s)) => HookFailure::Signal(s),
        (None, None) => HookFailure::Exit(-1),
    })
}

/// Runs the configured hook for `events`, in order, in a task of its own; does nothing
/// when `[jit] on_change` is not set or there are no events.
pub fn spawn(shared: Arc<Shared>, events: Vec<HookEvent>) {
    if events.is_empty() {
        return;
    }
    let Some(cmd) = shared.config().jit.on_change.clone() else {
        return;
    };
    tokio::spawn(async move {
        for ev in events {
            let Err(failure) = run_one(&cmd, &ev, HOOK_TIMEOUT).await else {
                continue;
            };
            tracing::warn!(
                tenant = %ev.tenant,
                request = %ev.request_id,
                action = ev.action.as_str(),
                reason = %failure,
                "jit.on_change failed"
            );
            let entry = AuditEntry::new(
                store::system_caller(),
                Operation::JitHook,
                AuditStatus::Failed,
            )
            .resource(format!("jit-requests/{}", ev.request_id))
            .reason(failure.to_string());
            let written: Result<(), WriteError> = shared
                .store
                .writer()
                .write(&ev.tenant, move |txn: &mut dyn TenantWrite| {
                    txn.audit(entry);
                    Ok(())
                })
                .await;
            if let Err(e) = written {
                tracing::error!(error = %e, "could not audit a failed jit.on_change");
            }
        }
    });
}

//! The `[jit] on_change` hook: a command run after a JIT request opens (initiate) or closes
//! (expired, revoked, superseded), so a host can open and close real firewall rules.
//!
//! It runs off the request path (a task of its own; the response and the timers never wait
//! for it), with the request in its environment:
//!
//! | variable | value |
//! | --- | --- |
//! | `STEWARD_TENANT` | tenant id |
//! | `STEWARD_POLICY` | policy name |
//! | `STEWARD_REQUEST` | request id |
//! | `STEWARD_VMS` | VM ids the change concerns, comma-separated |
//! | `STEWARD_PORTS` | port numbers that opened or closed, comma-separated |
//! | `STEWARD_SOURCE` | source addresses / prefixes of those ports, comma-separated |
//! | `STEWARD_STATUS` | `Initiated` or `Revoked` |
//! | `STEWARD_REASON` | the ports' `statusReason`: `UserRequested` (also for an initiate, as the API shows it), `Expired`, `NewerRequestInitiated` |
//!
//! The events of one change (a superseded request's close, then the new request's open) run
//! in order in one task, so a firewall never sees the open before the close. A command that
//! cannot start, exits non-zero or outlives [`HOOK_TIMEOUT`] (it is then killed) is logged
//! and audited as `jit.hook` `Failed` with the exit code as the reason; it changes nothing
//! else. Not here: deciding when requests change (routes, `jit_expiry.rs`).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use steward::model::{AuditStatus, JitRequest, JitRequestPort};

use crate::state::Shared;
use crate::store::{self, AuditEntry, TenantTxn, WriteError};

/// How long a hook may run before it is killed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// One open or close of a request's ports, as the hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    /// Tenant id.
    pub tenant: String,
    /// Policy name.
    pub policy: String,
    /// Request id.
    pub request: String,
    /// VM ids concerned.
    pub vms: Vec<String>,
    /// Port numbers that changed.
    pub ports: Vec<u16>,
    /// Their sources.
    pub sources: Vec<String>,
    /// `Initiated` or `Revoked`.
    pub status: String,
    /// `statusReason` of those ports.
    pub reason: String,
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn sources_of(p: &JitRequestPort) -> Vec<String> {
    p.allowed_source_address_prefix
        .iter()
        .cloned()
        .chain(p.allowed_source_address_prefixes.iter().flatten().cloned())
        .collect()
}

impl HookEvent {
    fn from_ports<'a>(
        tenant: &str,
        req: &JitRequest,
        ports: impl Iterator<Item = (&'a str, &'a JitRequestPort)>,
        status: &str,
    ) -> HookEvent {
        let mut ev = HookEvent {
            tenant: tenant.to_owned(),
            policy: req.policy_name.clone().unwrap_or_default(),
            request: req.id.clone(),
            vms: Vec::new(),
            ports: Vec::new(),
            sources: Vec::new(),
            status: status.to_owned(),
            reason: String::new(),
        };
        for (vm, p) in ports {
            push_unique(&mut ev.vms, vm.to_owned());
            push_unique(&mut ev.ports, p.number);
            for s in sources_of(p) {
                push_unique(&mut ev.sources, s);
            }
            if ev.reason.is_empty() {
                ev.reason = p.status_reason.clone();
            }
        }
        ev
    }

    /// A new request opened all its ports.
    pub fn opened(tenant: &str, req: &JitRequest) -> HookEvent {
        let ports = req
            .virtual_machines
            .iter()
            .flat_map(|vm| vm.ports.iter().map(move |p| (vm.id.as_str(), p)));
        HookEvent::from_ports(tenant, req, ports, steward::model::jit::STATUS_INITIATED)
    }

    /// The ports open in `before` and closed in `after` (the same request).
    pub fn closed(tenant: &str, before: &JitRequest, after: &JitRequest) -> HookEvent {
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
        HookEvent::from_ports(tenant, after, ports, steward::model::jit::STATUS_REVOKED)
    }

    fn env(&self) -> [(&'static str, String); 8] {
        let join = |v: &[String]| v.join(",");
        [
            ("STEWARD_TENANT", self.tenant.clone()),
            ("STEWARD_POLICY", self.policy.clone()),
            ("STEWARD_REQUEST", self.request.clone()),
            ("STEWARD_VMS", join(&self.vms)),
            (
                "STEWARD_PORTS",
                self.ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("STEWARD_SOURCE", join(&self.sources)),
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

/// Runs `cmd` once for `ev`, waiting at most `timeout`.
pub async fn run_one(cmd: &Path, ev: &HookEvent, timeout: Duration) -> Result<(), HookFailure> {
    let mut child = tokio::process::Command::new(cmd)
        .envs(ev.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            tracing::warn!(command = %cmd.display(), error = %e, "jit.on_change could not start");
            HookFailure::Spawn
        })?;
    let status = match tokio::time::timeout(timeout, child.wait()).await {
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
                request = %ev.request,
                status = %ev.status,
                reason = %failure,
                "jit.on_change failed"
            );
            let entry = AuditEntry::new(store::system_caller(), "jit.hook", AuditStatus::Failed)
                .resource(format!("jit-requests/{}", ev.request))
                .reason(failure.to_string());
            let written: Result<(), WriteError> = shared
                .store
                .writer()
                .write(&ev.tenant, move |txn: &mut TenantTxn<'_>| {
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

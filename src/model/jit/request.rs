//! A JIT access request ([`JitRequest`]): its ports and their states (initiated, revoked,
//! expired, superseded), and the validated initiate body ([`InitiateRequest`]) that makes
//! one under a policy.

use std::collections::HashSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::subject::{SubjectKey, SubjectKind, check_email, dedup};
use crate::model::validate::{Collector, MAX_ID, MAX_TEXT, ValidationErrors, index, join};
use crate::names::TenantId;

use super::input::vm_id;
use super::*;

/// A JIT access request (JitNetworkAccessRequest) with our own `id` and its policy's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitRequest {
    /// Our id for the request (the API has none); empty in the API's own examples.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The policy the request was made under (ours; absent in the API's examples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// The VMs and ports opened.
    pub virtual_machines: Vec<JitRequestVm>,
    /// When the request was made.
    pub start_time_utc: Timestamp,
    /// Who made it (the OS user name, or an email in imported data).
    pub requestor: String,
    /// Why, as the requestor wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// One VM of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitRequestVm {
    /// The VM's ARM id.
    pub id: String,
    /// The ports asked for.
    pub ports: Vec<JitRequestPort>,
}

/// One port of a request, with its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitRequestPort {
    /// The port number.
    pub number: u16,
    /// The source the port is opened for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_source_address_prefix: Option<String>,
    /// Sources the port is opened for, when several (API data; we write the singular).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_source_address_prefixes: Option<Vec<String>>,
    /// When the port closes.
    pub end_time_utc: Timestamp,
    /// `Initiated` or `Revoked` (open string: the API's examples also show `Initiating`).
    pub status: String,
    /// `UserRequested`, `Expired` or `NewerRequestInitiated` (open string).
    pub status_reason: String,
    /// Azure Firewall mapped port, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_port: Option<u16>,
}

/// Why a request port was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// The requestor (or an operator) revoked it.
    UserRequested,
    /// Its `endTimeUtc` passed.
    Expired,
    /// A newer request for the same VM port replaced it.
    NewerRequestInitiated,
    /// The daemon's firewall (`[jit] firewall`) could not open it, so it never opened
    /// (steward's own value; the Azure API has no such reason).
    FirewallFailed,
}

impl RevokeReason {
    /// The `statusReason` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRequested => "UserRequested",
            Self::Expired => "Expired",
            Self::NewerRequestInitiated => "NewerRequestInitiated",
            Self::FirewallFailed => "FirewallFailed",
        }
    }
}

impl JitRequestPort {
    /// Every source the port is open to: `allowedSourceAddressPrefix` and then each of
    /// `allowedSourceAddressPrefixes`.
    pub fn sources(&self) -> Vec<String> {
        self.allowed_source_address_prefix
            .iter()
            .cloned()
            .chain(
                self.allowed_source_address_prefixes
                    .iter()
                    .flatten()
                    .cloned(),
            )
            .collect()
    }

    /// Whether the port is open (status `Initiated`).
    pub fn is_active(&self) -> bool {
        self.status == STATUS_INITIATED
    }

    /// Closes an open port for `reason` at `now`; an early close (not `Expired`) moves
    /// `endTimeUtc` back to `now`, so retention counts from when access really ended.
    /// Returns whether anything changed.
    pub fn revoke(&mut self, reason: RevokeReason, now: Timestamp) -> bool {
        if !self.is_active() {
            return false;
        }
        self.status = STATUS_REVOKED.to_owned();
        self.status_reason = reason.as_str().to_owned();
        if reason != RevokeReason::Expired && now < self.end_time_utc {
            self.end_time_utc = now;
        }
        true
    }
}

impl JitRequest {
    fn ports_mut(&mut self) -> impl Iterator<Item = (&str, &mut JitRequestPort)> {
        self.virtual_machines.iter_mut().flat_map(|vm| {
            let JitRequestVm { id, ports } = vm;
            let id: &str = id;
            ports.iter_mut().map(move |p| (id, p))
        })
    }

    /// Whether any port is still open.
    pub fn is_active(&self) -> bool {
        self.virtual_machines
            .iter()
            .flat_map(|vm| &vm.ports)
            .any(JitRequestPort::is_active)
    }

    /// When the request ends: the latest port end (its start when it has no port).
    pub fn end_time(&self) -> Timestamp {
        self.virtual_machines
            .iter()
            .flat_map(|vm| &vm.ports)
            .map(|p| p.end_time_utc)
            .max()
            .unwrap_or(self.start_time_utc)
    }

    /// The earliest end among open ports: when the expiry timer must next look at it.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.virtual_machines
            .iter()
            .flat_map(|vm| &vm.ports)
            .filter(|p| p.is_active())
            .map(|p| p.end_time_utc)
            .min()
    }

    /// Revokes every open port (`UserRequested` for a revoke call). Returns how many closed.
    pub fn revoke_all(&mut self, reason: RevokeReason, now: Timestamp) -> usize {
        self.ports_mut()
            .filter_map(|(_, p)| p.revoke(reason, now).then_some(()))
            .count()
    }

    /// Revokes one open port of one VM. Returns whether it changed.
    pub fn revoke_port(
        &mut self,
        vm_id: &str,
        number: u16,
        reason: RevokeReason,
        now: Timestamp,
    ) -> bool {
        self.ports_mut()
            .filter(|(vm, p)| vm.eq_ignore_ascii_case(vm_id) && p.number == number)
            .fold(false, |acc, (_, p)| p.revoke(reason, now) || acc)
    }

    /// Marks open ports whose `endTimeUtc` is at or before `now` `Revoked`/`Expired`.
    /// Returns how many closed.
    pub fn expire_due(&mut self, now: Timestamp) -> usize {
        self.ports_mut()
            .filter(|(_, p)| p.end_time_utc <= now)
            .filter_map(|(_, p)| p.revoke(RevokeReason::Expired, now).then_some(()))
            .count()
    }

    /// Closes this request's open ports that `newer` opens again (same VM and port), with
    /// `NewerRequestInitiated`. Returns how many closed.
    pub fn supersede_by(&mut self, newer: &JitRequest, now: Timestamp) -> usize {
        let asked: HashSet<(String, u16)> = newer
            .virtual_machines
            .iter()
            .flat_map(|vm| {
                vm.ports
                    .iter()
                    .map(|p| (vm.id.to_ascii_lowercase(), p.number))
            })
            .collect();
        self.ports_mut()
            .filter(|(vm, p)| asked.contains(&(vm.to_ascii_lowercase(), p.number)))
            .filter_map(|(_, p)| {
                p.revoke(RevokeReason::NewerRequestInitiated, now)
                    .then_some(())
            })
            .count()
    }

    /// The people this request names: the requestor (as an email when it is one, else a
    /// user) and each single source address (ip).
    pub fn subject_keys(&self) -> Vec<SubjectKey> {
        let kind = if check_email(self.requestor.trim()).is_ok() {
            SubjectKind::Email
        } else {
            SubjectKind::User
        };
        let mut keys: Vec<SubjectKey> = SubjectKey::new(kind, &self.requestor, "requestor")
            .into_iter()
            .collect();
        for (i, vm) in self.virtual_machines.iter().enumerate() {
            for (j, p) in vm.ports.iter().enumerate() {
                let base = format!("virtualMachines[{i}].ports[{j}]");
                let singles = p
                    .allowed_source_address_prefix
                    .iter()
                    .map(|s| (s, join(&base, "allowedSourceAddressPrefix")));
                let many = p
                    .allowed_source_address_prefixes
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(k, s)| (s, index(&join(&base, "allowedSourceAddressPrefixes"), k)));
                for (s, field) in singles.chain(many) {
                    if let Some(SourcePrefix::Net(n)) = SourcePrefix::parse(s) {
                        keys.extend(
                            SubjectKey::new(SubjectKind::Ip, &n.addr().to_string(), field)
                                .filter(|_| n.prefix_len() == n.max_prefix_len()),
                        );
                    }
                }
            }
        }
        dedup(keys)
    }
}

/// A validated initiate body (JitNetworkAccessPolicyInitiateRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateRequest {
    /// The VMs and ports asked for.
    pub virtual_machines: Vec<InitiateVm>,
    /// Why, as the requestor wrote it.
    pub justification: Option<String>,
}

/// One VM of an initiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateVm {
    /// The VM's ARM id, in the tenant the initiate was parsed for.
    pub id: VmId,
    /// The ports asked for.
    pub ports: Vec<InitiatePort>,
}

/// One port of an initiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiatePort {
    /// The port number.
    pub number: u16,
    /// When access should end.
    pub end_time_utc: Timestamp,
    /// The source to open for; `None` to use the policy's single allowed address.
    pub allowed_source_address_prefix: Option<String>,
}

impl InitiateRequest {
    /// Parses and validates an initiate body (no `properties` wrapper, as in the API):
    /// at least one VM whose `id` is a [`VmId`] of `tenant` and at least one port, each with `number`
    /// 0–65535, `endTimeUtc` RFC 3339, and an optional `allowedSourceAddressPrefix` (IP, CIDR
    /// or `*`); `justification` at most 1024 characters. Policy rules are checked later by
    /// [`JitPolicy::initiate`].
    pub fn parse(body: &Value, tenant: &TenantId) -> Result<Self, ValidationErrors> {
        let Value::Object(m) = body else {
            return Err(ValidationErrors::one("", "the body must be a JSON object"));
        };
        let mut c = Collector::new();
        let justification = c.opt_str(m, "justification", "", MAX_TEXT);
        let mut virtual_machines = Vec::new();
        if let Some(vms) = c.req_array(m, "virtualMachines", "") {
            if vms.is_empty() {
                c.push("virtualMachines", "must list at least one virtual machine");
            }
            for (i, v) in vms.iter().enumerate() {
                let path = index("virtualMachines", i);
                let Some(vm) = c.object(v, &path) else {
                    continue;
                };
                let id = c.req_str(vm, "id", &path, MAX_ID);
                let id = vm_id(&mut c, id, &path, tenant);
                let mut ports = Vec::new();
                let ports_path = join(&path, "ports");
                if let Some(arr) = c.req_array(vm, "ports", &path) {
                    if arr.is_empty() {
                        c.push(ports_path.clone(), "must list at least one port");
                    }
                    for (j, pv) in arr.iter().enumerate() {
                        let pp = index(&ports_path, j);
                        let Some(pm) = c.object(pv, &pp) else {
                            continue;
                        };
                        let number = c.req_port(pm, "number", &pp);
                        let end = c.req_timestamp(pm, "endTimeUtc", &pp);
                        let src = c.opt_str(pm, "allowedSourceAddressPrefix", &pp, 64);
                        if let Some(s) = &src
                            && SourcePrefix::parse(s).is_none()
                        {
                            c.push(
                                join(&pp, "allowedSourceAddressPrefix"),
                                "must be an IP address, a CIDR prefix or *",
                            );
                        }
                        if let (Some(number), Some(end_time_utc)) = (number, end) {
                            ports.push(InitiatePort {
                                number,
                                end_time_utc,
                                allowed_source_address_prefix: src,
                            });
                        }
                    }
                }
                if let Some(id) = id {
                    virtual_machines.push(InitiateVm { id, ports });
                }
            }
        }
        c.finish(InitiateRequest {
            virtual_machines,
            justification,
        })
    }
}

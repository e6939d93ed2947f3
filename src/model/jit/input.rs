//! A policy PUT body, validated for one tenant ([`JitPolicyInput`]): its VMs, port rules
//! and source prefixes read with every error collected. What it is not: the stored policy
//! (`jit.rs`) or a request made under it (`request.rs`).

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::model::validate::{Collector, MAX_ID, ValidationErrors, index, join, resource_body};
use crate::names::{ResourceName, TenantId};

use super::*;

/// A validated policy PUT body for one tenant: every VM id is a [`VmId`] of that tenant.
/// Only [`JitPolicyInput::parse`] builds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitPolicyInput {
    /// The tenant the VM ids were checked against.
    tenant: TenantId,
    /// `kind`, kept as given.
    kind: Option<String>,
    /// `location`, or [`DEFAULT_LOCATION`].
    location: String,
    /// The resource group the policy is at, when a path names it ([`JitPolicyInput::at`]);
    /// else that of its first VM.
    resource_group: Option<String>,
    /// The properties, with `requests` empty and `provisioningState` unset.
    properties: JitPolicyProperties,
}

impl JitPolicyInput {
    /// Parses and validates a policy PUT body, reporting every problem by path.
    ///
    /// Rules: `properties.virtualMachines` has at least one VM; each VM `id` is the ARM id of
    /// a virtual machine in `tenant` ([`VmId`]; the policy's resource group is that of the
    /// first VM);
    /// each VM has at least one port; ports are 0–65535 and unique per VM; `protocol` is
    /// `TCP`, `UDP` or `*`; exactly one of `allowedSourceAddressPrefix` and
    /// `allowedSourceAddressPrefixes` (non-empty), each entry an IP, a CIDR prefix or `*`;
    /// `maxRequestAccessDuration` an ISO 8601 duration from 5 minutes to 1 day;
    /// `publicIpAddress` an IP when given; `location` a resource-name-like token. `id`,
    /// `name`, `type`, `etag`, `properties.requests`, `properties.provisioningState` and
    /// unknown fields are ignored.
    pub fn parse(body: &Value, tenant: &TenantId) -> Result<Self, ValidationErrors> {
        let (top, p) = resource_body(body)?;
        let mut c = Collector::new();
        let kind = c.opt_str(top, "kind", "", 128);
        let location = match c.opt_str(top, "location", "", 128) {
            None => DEFAULT_LOCATION.to_owned(),
            Some(l) => {
                if ResourceName::parse(&l).is_err() {
                    c.push(
                        "location",
                        "must be letters, digits, '.', '_' or '-' (e.g. westeurope)",
                    );
                }
                l
            }
        };
        let vms_path = "properties.virtualMachines";
        let mut virtual_machines = Vec::new();
        if let Some(vms) = c.req_array(p, "virtualMachines", "properties") {
            if vms.is_empty() {
                c.push(vms_path, "must list at least one virtual machine");
            }
            for (i, v) in vms.iter().enumerate() {
                if let Some(vm) = parse_policy_vm(v, &index(vms_path, i), tenant, &mut c) {
                    virtual_machines.push(vm);
                }
            }
        }
        c.finish(JitPolicyInput {
            tenant: tenant.clone(),
            kind,
            location,
            resource_group: None,
            properties: JitPolicyProperties {
                virtual_machines,
                requests: Vec::new(),
                provisioning_state: None,
            },
        })
    }
}

impl JitPolicyInput {
    /// The tenant the VM ids were checked against.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// `kind`, kept as given.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// `location`, or [`DEFAULT_LOCATION`].
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The properties, with `requests` empty and `provisioningState` unset.
    pub fn properties(&self) -> &JitPolicyProperties {
        &self.properties
    }

    /// The policy placed at the resource group and location a path names (the ARM path
    /// `…/resourceGroups/{rg}/…/locations/{location}/jitNetworkAccessPolicies/{name}`):
    /// they override the body's `location` (read-only in the API, which its SDK never
    /// sends) and the first VM's resource group. 400 naming `resourceGroupName` or
    /// `location` when either is not a valid name.
    pub fn at(mut self, resource_group: &str, location: &str) -> Result<Self, ValidationErrors> {
        check_placement(Some(resource_group), Some(location))?;
        self.resource_group = Some(resource_group.to_owned());
        self.location = location.to_owned();
        Ok(self)
    }
}

/// Reads a VM `id` at `path` (a `…id` field) as a [`VmId`] of `tenant`.
pub(super) fn vm_id(
    c: &mut Collector,
    id: Option<String>,
    path: &str,
    tenant: &TenantId,
) -> Option<VmId> {
    let id = id?;
    match VmId::parse(&id, tenant) {
        Ok(v) => Some(v),
        Err(e) => {
            c.push(join(path, "id"), e.to_string());
            None
        }
    }
}

fn parse_policy_vm(
    v: &Value,
    path: &str,
    tenant: &TenantId,
    c: &mut Collector,
) -> Option<JitVirtualMachine> {
    let m = c.object(v, path)?;
    let id = c.req_str(m, "id", path, MAX_ID);
    let id = vm_id(c, id, path, tenant);
    let public_ip_address = c.opt_str(m, "publicIpAddress", path, 64);
    if let Some(ip) = &public_ip_address
        && ip.parse::<IpAddr>().is_err()
    {
        c.push(join(path, "publicIpAddress"), "must be an IP address");
    }
    let ports_path = join(path, "ports");
    let mut ports = Vec::new();
    if let Some(arr) = c.req_array(m, "ports", path) {
        if arr.is_empty() {
            c.push(ports_path.clone(), "must list at least one port");
        }
        let mut seen = HashSet::new();
        for (j, pv) in arr.iter().enumerate() {
            let pp = index(&ports_path, j);
            let rule = parse_port_rule(pv, &pp, c);
            // Duplicates are checked on the number alone, so a port whose other fields are
            // wrong still counts.
            if let Some(n) = pv.get("number").and_then(Value::as_u64)
                && u16::try_from(n).is_ok()
                && !seen.insert(n)
            {
                c.push(
                    join(&pp, "number"),
                    format!("port {n} is listed twice for this VM"),
                );
            }
            ports.extend(rule);
        }
    }
    Some(JitVirtualMachine {
        id: id?.into_string(),
        ports,
        public_ip_address,
    })
}

fn parse_port_rule(v: &Value, path: &str, c: &mut Collector) -> Option<JitPortRule> {
    let m = c.object(v, path)?;
    let number = c.req_port(m, "number", path);
    let protocol = c.req_str(m, "protocol", path, 8).and_then(|s| {
        let p = Protocol::parse(&s);
        if p.is_none() {
            c.push(join(path, "protocol"), "must be TCP, UDP or *");
        }
        p
    });
    let (single, many) = parse_prefixes(m, path, c);
    let dur_path = join(path, "maxRequestAccessDuration");
    let max = c.req_str(m, "maxRequestAccessDuration", path, 64);
    if let Some(s) = &max {
        match parse_access_duration(s) {
            Err(why) => c.push(dur_path, why),
            Ok(d) if d < MIN_ACCESS_DURATION || d > MAX_ACCESS_DURATION => {
                c.push(dur_path, "must be between 5 minutes (PT5M) and 1 day (P1D)")
            }
            Ok(_) => {}
        }
    }
    Some(JitPortRule {
        number: number?,
        protocol: protocol?,
        allowed_source_address_prefix: single,
        allowed_source_address_prefixes: many,
        max_request_access_duration: max?,
    })
}

/// Reads the `allowedSourceAddressPrefix` xor `allowedSourceAddressPrefixes` pair.
fn parse_prefixes(
    m: &Map<String, Value>,
    path: &str,
    c: &mut Collector,
) -> (Option<String>, Option<Vec<String>>) {
    let single_path = join(path, "allowedSourceAddressPrefix");
    let many_path = join(path, "allowedSourceAddressPrefixes");
    let single = c.opt_str(m, "allowedSourceAddressPrefix", path, 64);
    if let Some(s) = &single
        && SourcePrefix::parse(s).is_none()
    {
        c.push(
            single_path.clone(),
            "must be an IP address, a CIDR prefix or *",
        );
    }
    let many = c
        .opt_array(m, "allowedSourceAddressPrefixes", path)
        .map(|a| {
            if a.is_empty() {
                c.push(many_path.clone(), "must list at least one prefix");
            }
            a.iter()
                .enumerate()
                .filter_map(|(k, v)| {
                    let ep = index(&many_path, k);
                    let s = c.string(v, &ep, 64)?;
                    if SourcePrefix::parse(&s).is_none() {
                        c.push(ep, "must be an IP address, a CIDR prefix or *");
                    }
                    Some(s)
                })
                .collect::<Vec<_>>()
        });
    match (
        m.get("allowedSourceAddressPrefix"),
        m.get("allowedSourceAddressPrefixes"),
    ) {
        (Some(a), Some(b)) if !a.is_null() && !b.is_null() => c.push(
            many_path,
            "give either allowedSourceAddressPrefix or allowedSourceAddressPrefixes, not both",
        ),
        (None | Some(Value::Null), None | Some(Value::Null)) => c.push(
            single_path,
            "is required (or allowedSourceAddressPrefixes): use * to allow any source",
        ),
        _ => {}
    }
    (single, many)
}

impl JitPolicy {
    /// Builds the stored resource for `name` in the input's tenant from a validated input,
    /// filling `id`, `type` and `provisioningState: Succeeded`. `requests` starts empty: the
    /// daemon lists the policy's requests into it when serving.
    pub fn new(name: &ResourceName, input: JitPolicyInput, etag: Option<String>) -> Self {
        let tenant = input.tenant;
        let mut properties = input.properties;
        properties.provisioning_state = Some("Succeeded".to_owned());
        let mut policy = Self {
            id: String::new(),
            name: name.to_string(),
            resource_type: JIT_POLICY_TYPE.to_owned(),
            kind: input.kind,
            location: input.location,
            etag,
            properties,
        };
        let rg = match input.resource_group {
            Some(rg) => rg,
            None => policy.resource_group().unwrap_or("default").to_owned(),
        };
        policy.id = format!(
            "/subscriptions/{tenant}/resourceGroups/{rg}/providers/Microsoft.Security/locations/{}/jitNetworkAccessPolicies/{name}",
            policy.location
        );
        policy
    }
}

//! Just-in-time network access: policies (`jitNetworkAccessPolicies` 2020-01-01), the
//! requests that open ports under them (JitNetworkAccessRequest), and the rules that decide
//! whether an initiate is allowed.
//!
//! This module decides *what* a request may be and how its ports change state; *when* (the
//! expiry timer) and *where it is kept* (store, the policy's `requests` listing) are the
//! daemon's business. Times are `jiff::Timestamp`, serialised as RFC 3339.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use jiff::{SignedDuration, SpanRelativeTo, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::subject::{SubjectKey, SubjectKind, check_email, dedup};
use super::validate::{Collector, MAX_ID, MAX_TEXT, ValidationErrors, index, join, resource_body};
use crate::names::{ResourceName, TenantId};

/// The resource type of a policy.
pub const JIT_POLICY_TYPE: &str = "Microsoft.Security/locations/jitNetworkAccessPolicies";
/// The location of a policy whose body names none.
pub const DEFAULT_LOCATION: &str = "local";
/// Shortest `maxRequestAccessDuration` allowed.
pub const MIN_ACCESS_DURATION: SignedDuration = SignedDuration::from_secs(5 * 60);
/// Longest `maxRequestAccessDuration` allowed.
pub const MAX_ACCESS_DURATION: SignedDuration = SignedDuration::from_secs(24 * 60 * 60);
/// Port status of an open request port.
pub const STATUS_INITIATED: &str = "Initiated";
/// Port status of a closed request port.
pub const STATUS_REVOKED: &str = "Revoked";

fn default_location() -> String {
    DEFAULT_LOCATION.to_owned()
}

/// A JIT network access policy as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitPolicy {
    /// ARM-style id, built from tenant, resource group (of the first VM), location and name.
    #[serde(default)]
    pub id: String,
    /// The policy's name.
    #[serde(default)]
    pub name: String,
    /// The resource type, [`JIT_POLICY_TYPE`].
    #[serde(rename = "type", default)]
    pub resource_type: String,
    /// Open string (`Basic` in the examples), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Region label; [`DEFAULT_LOCATION`] unless the body names one.
    #[serde(default = "default_location")]
    pub location: String,
    /// Opaque version tag for optimistic concurrency; absent until stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// What the policy allows.
    pub properties: JitPolicyProperties,
}

/// `properties` of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitPolicyProperties {
    /// The VMs and their ports that may be opened.
    pub virtual_machines: Vec<JitVirtualMachine>,
    /// Requests made under this policy, filled by the daemon from its own records (a PUT
    /// body's `requests` is ignored: clients cannot write request history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<JitRequest>,
    /// Read-only; `Succeeded` once stored. Ignored in a PUT body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
}

/// One VM of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitVirtualMachine {
    /// The VM's ARM id (`/subscriptions/…/resourceGroups/RG/providers/…/virtualMachines/vm1`).
    pub id: String,
    /// The ports that may be opened on it.
    pub ports: Vec<JitPortRule>,
    /// Azure Firewall public IP, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip_address: Option<String>,
}

/// The transport a port rule opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// `TCP`
    #[serde(rename = "TCP")]
    Tcp,
    /// `UDP`
    #[serde(rename = "UDP")]
    Udp,
    /// `*`: both.
    #[serde(rename = "*")]
    All,
}

impl Protocol {
    /// `TCP`, `UDP` or `*`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::All => "*",
        }
    }

    /// Parses `TCP`, `UDP` or `*` (letters in any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "*" => Some(Self::All),
            s if s.eq_ignore_ascii_case("tcp") => Some(Self::Tcp),
            s if s.eq_ignore_ascii_case("udp") => Some(Self::Udp),
            _ => None,
        }
    }
}

/// One port of a VM in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JitPortRule {
    /// The port number.
    pub number: u16,
    /// Which transport.
    pub protocol: Protocol,
    /// Allowed sources as one IP, CIDR prefix or `*`; exclusive with the plural field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_source_address_prefix: Option<String>,
    /// Allowed sources as a list of IPs, CIDR prefixes or `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_source_address_prefixes: Option<Vec<String>>,
    /// Longest a request may keep the port open, ISO 8601 (`PT3H`), kept as written.
    pub max_request_access_duration: String,
}

impl JitPortRule {
    /// The allowed sources, parsed (entries that do not parse are skipped; validated input
    /// has none).
    pub fn allowed_prefixes(&self) -> Vec<SourcePrefix> {
        let single = self.allowed_source_address_prefix.iter();
        let many = self.allowed_source_address_prefixes.iter().flatten();
        single
            .chain(many)
            .filter_map(|s| SourcePrefix::parse(s))
            .collect()
    }

    /// `maxRequestAccessDuration` as a duration (`None` only if it does not parse).
    pub fn max_duration(&self) -> Option<SignedDuration> {
        parse_access_duration(&self.max_request_access_duration).ok()
    }

    /// Whether a source lies inside the allowed prefixes (`*` allows any).
    pub fn allows_source(&self, source: &SourcePrefix) -> bool {
        self.allowed_prefixes().iter().any(|p| p.contains(source))
    }
}

/// An allowed or requested source: `*`, or an IP address / CIDR prefix (an address is a
/// host prefix, /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourcePrefix {
    /// `*`: any source.
    Any,
    /// An address or prefix.
    Net(IpNet),
}

impl SourcePrefix {
    /// Parses `*`, an IPv4/IPv6 address, or a CIDR prefix.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s == "*" {
            return Some(Self::Any);
        }
        if let Ok(a) = s.parse::<IpAddr>() {
            return Some(Self::Net(IpNet::from(a)));
        }
        s.parse::<IpNet>().ok().map(Self::Net)
    }

    /// Whether every address of `other` is inside `self`.
    pub fn contains(&self, other: &SourcePrefix) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (Self::Net(_), Self::Any) => false,
            (Self::Net(a), Self::Net(b)) => a.contains(b),
        }
    }

    /// The single address this prefix is, if it is a host prefix.
    pub fn single_address(&self) -> Option<IpAddr> {
        match self {
            Self::Net(n) if n.prefix_len() == n.max_prefix_len() => Some(n.addr()),
            _ => None,
        }
    }
}

/// Parses an ISO 8601 duration (`PT3H`, `P1D`, `PT90M`) into a duration, days counted as
/// 24 hours; months and years are refused (their length depends on a date).
pub fn parse_access_duration(s: &str) -> Result<SignedDuration, &'static str> {
    let span = jiff::fmt::temporal::SpanParser::new()
        .parse_span(s)
        .map_err(|_| "must be an ISO 8601 duration such as PT3H")?;
    span.to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| "must be an ISO 8601 duration in weeks, days, hours, minutes or seconds")
}

/// A virtual machine's ARM id inside one tenant (whose id is the subscription):
/// `/subscriptions/{tenant}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}`.
///
/// Built only by [`VmId::parse`], so a policy or an initiate holding one can only name
/// machines of its own tenant. The grammar is ARM's, narrowed to ASCII:
/// - the fixed segments (`subscriptions`, `resourceGroups`, `providers`,
///   `Microsoft.Compute`, `virtualMachines`) and the subscription compare
///   case-insensitively, as ARM does;
/// - a resource group is 1–90 letters, digits, `_`, `-`, `.`, `(` or `)`, not ending in `.`
///   (ARM also allows non-ASCII letters; steward does not);
/// - a VM name is 1–64 letters, digits, `_`, `-` or `.`, starting with a letter or digit
///   and not ending in `.` or `-`.
///
/// Anything else (a trailing `/`, an empty segment, `..`, `,`, a newline, a space) is
/// refused. The id keeps the casing it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmId(String);

/// Why a string is not a VM id of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VmIdError {
    /// Not of the shape `/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/virtualMachines/…`.
    #[error(
        "must be a virtual machine id: /subscriptions/{tenant}/resourceGroups/GROUP/providers/Microsoft.Compute/virtualMachines/NAME"
    )]
    Shape {
        /// The tenant the id must be in.
        tenant: String,
    },
    /// The subscription is not the policy's tenant.
    #[error("must name a virtual machine of this tenant: the subscription must be `{tenant}`")]
    OtherTenant {
        /// The tenant the id must be in.
        tenant: String,
    },
    /// The resource group breaks ARM's grammar.
    #[error(
        "the resource group must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'"
    )]
    ResourceGroup,
    /// The VM name breaks ARM's grammar.
    #[error(
        "the virtual machine name must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit and not ending in '.' or '-'"
    )]
    Name,
}

/// Checks a resource group and a location named by an ARM path (each when given): 400
/// naming `resourceGroupName` or `location` when either is not a valid name.
pub fn check_placement(
    resource_group: Option<&str>,
    location: Option<&str>,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::new();
    if resource_group.is_some_and(|g| !is_resource_group(g)) {
        c.push(
            "resourceGroupName",
            "must be 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'",
        );
    }
    if location.is_some_and(|l| ResourceName::parse(l).is_err()) {
        c.push(
            "location",
            "must be letters, digits, '.', '_' or '-' (e.g. westeurope)",
        );
    }
    c.finish(())
}

/// Whether `s` is an ARM resource group name (ASCII subset).
pub(crate) fn is_resource_group(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.()".contains(&b))
        && !s.ends_with('.')
}

/// Whether `s` is an ARM virtual machine name.
fn is_vm_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !s.ends_with(['.', '-'])
}

impl VmId {
    /// Parses `id` as the ARM id of a virtual machine in `tenant`.
    pub fn parse(id: &str, tenant: &TenantId) -> Result<VmId, VmIdError> {
        let shape = || VmIdError::Shape {
            tenant: tenant.to_string(),
        };
        let segs: Vec<&str> = id.split('/').collect();
        let ["", subs, sub, rgs, rg, providers, compute, vms, name] = segs.as_slice() else {
            return Err(shape());
        };
        let fixed = [
            (subs, "subscriptions"),
            (rgs, "resourceGroups"),
            (providers, "providers"),
            (compute, "Microsoft.Compute"),
            (vms, "virtualMachines"),
        ];
        if !fixed
            .iter()
            .all(|(got, want)| got.eq_ignore_ascii_case(want))
        {
            return Err(shape());
        }
        if !sub.eq_ignore_ascii_case(tenant.as_str()) {
            return Err(VmIdError::OtherTenant {
                tenant: tenant.to_string(),
            });
        }
        if !is_resource_group(rg) {
            return Err(VmIdError::ResourceGroup);
        }
        if !is_vm_name(name) {
            return Err(VmIdError::Name);
        }
        Ok(VmId(id.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as given, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The resource group segment.
    pub fn resource_group(&self) -> &str {
        self.0.split('/').nth(4).unwrap_or_default()
    }

    /// The VM name segment.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

impl std::fmt::Display for VmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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
fn vm_id(c: &mut Collector, id: Option<String>, path: &str, tenant: &TenantId) -> Option<VmId> {
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

/// The resource group named in an ARM id (`…/resourceGroups/RG/…`), if any: read by
/// position, as [`crate::model::alert::placement_of`] reads it.
pub fn resource_group_of(id: &str) -> Option<&str> {
    crate::model::alert::placement_of(id).0
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

    /// The policy's resource group: the one its `id` names (where it was put), else
    /// that of its first VM id (which is what `id` held before policies could be put at
    /// an ARM path, so a policy stored then reads the same).
    pub fn resource_group(&self) -> Option<&str> {
        resource_group_of(&self.id).or_else(|| {
            self.properties
                .virtual_machines
                .first()
                .and_then(|vm| resource_group_of(&vm.id))
        })
    }

    /// Whether the policy is at `resource_group` and `location` (each compared
    /// case-insensitively, as ARM does; `None` matches any).
    pub fn is_at(&self, resource_group: Option<&str>, location: Option<&str>) -> bool {
        resource_group.is_none_or(|g| {
            self.resource_group()
                .is_some_and(|r| r.eq_ignore_ascii_case(g))
        }) && location.is_none_or(|l| self.location.eq_ignore_ascii_case(l))
    }

    /// The VM with this id (ARM ids compare case-insensitively).
    pub fn vm(&self, id: &str) -> Option<&JitVirtualMachine> {
        self.properties
            .virtual_machines
            .iter()
            .find(|vm| vm.id.eq_ignore_ascii_case(id))
    }

    /// Checks an initiate against this policy at `now` for `requestor` and builds the
    /// request (`id` is the daemon's new request id). Every asked VM and port must be in the
    /// policy; `endTimeUtc` must be after `now` and no later than `now` + the port's
    /// `maxRequestAccessDuration`; the source (when not given: the port's allowed prefix if
    /// it is a single address, else it is required) must lie inside the allowed prefixes
    /// (`*` allows any). Ports start `Initiated` / `UserRequested`. Every problem is reported
    /// with its path in the initiate body.
    pub fn initiate(
        &self,
        req: &InitiateRequest,
        requestor: &str,
        now: Timestamp,
        id: impl Into<String>,
    ) -> Result<JitRequest, ValidationErrors> {
        let mut c = Collector::new();
        let mut vms = Vec::new();
        let mut seen = HashSet::new();
        for (i, ivm) in req.virtual_machines.iter().enumerate() {
            let vm_path = index("virtualMachines", i);
            // `ivm.id` is a VmId of the caller's tenant and ids compare case-insensitively,
            // so a policy VM it matches is in that tenant too, even one stored by an older
            // version that did not check.
            let Some(pvm) = self.vm(ivm.id.as_str()) else {
                c.push(
                    join(&vm_path, "id"),
                    "this virtual machine is not in the policy",
                );
                continue;
            };
            let mut ports = Vec::new();
            for (j, ip) in ivm.ports.iter().enumerate() {
                let pp = index(&join(&vm_path, "ports"), j);
                if !seen.insert((pvm.id.to_ascii_lowercase(), ip.number)) {
                    c.push(
                        join(&pp, "number"),
                        format!("port {} is asked twice", ip.number),
                    );
                    continue;
                }
                let Some(rule) = pvm.ports.iter().find(|r| r.number == ip.number) else {
                    c.push(
                        join(&pp, "number"),
                        format!(
                            "port {} is not in the policy for this virtual machine",
                            ip.number
                        ),
                    );
                    continue;
                };
                let end_path = join(&pp, "endTimeUtc");
                if ip.end_time_utc <= now {
                    c.push(end_path, "must be in the future");
                } else {
                    match rule.max_duration() {
                        Some(max) if now.duration_until(ip.end_time_utc) <= max => {}
                        _ => c.push(
                            end_path,
                            format!(
                                "must be no later than {} from now (the port's maxRequestAccessDuration)",
                                rule.max_request_access_duration
                            ),
                        ),
                    }
                }
                let src_path = join(&pp, "allowedSourceAddressPrefix");
                let source = match &ip.allowed_source_address_prefix {
                    Some(s) => Some(s.clone()),
                    None => {
                        let allowed = rule.allowed_prefixes();
                        match allowed.as_slice() {
                            [one] => one.single_address().map(|a| a.to_string()),
                            _ => None,
                        }
                        .or_else(|| {
                            c.push(
                                src_path.clone(),
                                "is required: the policy allows more than one source address",
                            );
                            None
                        })
                    }
                };
                if let Some(s) = &source {
                    match SourcePrefix::parse(s) {
                        Some(sp) if rule.allows_source(&sp) => {}
                        Some(_) => c.push(
                            src_path,
                            "is not inside the policy's allowed source prefixes",
                        ),
                        None => c.push(src_path, "must be an IP address, a CIDR prefix or *"),
                    }
                }
                ports.push(JitRequestPort {
                    number: ip.number,
                    allowed_source_address_prefix: source,
                    allowed_source_address_prefixes: None,
                    end_time_utc: ip.end_time_utc,
                    status: STATUS_INITIATED.to_owned(),
                    status_reason: RevokeReason::UserRequested.as_str().to_owned(),
                    mapped_port: None,
                });
            }
            vms.push(JitRequestVm {
                id: pvm.id.clone(),
                ports,
            });
        }
        c.finish(JitRequest {
            id: id.into(),
            policy_name: Some(self.name.clone()),
            virtual_machines: vms,
            start_time_utc: now,
            requestor: requestor.to_owned(),
            justification: req.justification.clone(),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_access_duration("PT3H"),
            Ok(SignedDuration::from_hours(3))
        );
        assert_eq!(
            parse_access_duration("P1D"),
            Ok(SignedDuration::from_hours(24))
        );
        assert_eq!(
            parse_access_duration("PT5M"),
            Ok(SignedDuration::from_mins(5))
        );
        assert!(parse_access_duration("P1M").is_err());
        assert!(parse_access_duration("3h").is_err());
        assert!(parse_access_duration("").is_err());
    }

    #[test]
    fn resource_groups() {
        assert_eq!(
            resource_group_of("/subscriptions/x/resourceGroups/myRg1/providers/a/b"),
            Some("myRg1")
        );
        assert_eq!(
            resource_group_of("/subscriptions/x/resourcegroups/RG/x"),
            Some("RG")
        );
        assert_eq!(resource_group_of("/subscriptions/x/resourceGroups/"), None);
        assert_eq!(resource_group_of("vm1"), None);
        // A tenant named `resourcegroups` is a name, not the type.
        assert_eq!(
            resource_group_of(
                "/subscriptions/resourcegroups/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"
            ),
            Some("rg1")
        );
    }

    #[test]
    fn vm_ids_follow_the_arm_grammar_inside_their_tenant() {
        let t = TenantId::parse("contoso").unwrap();
        let vm = |rg: &str, name: &str| {
            format!(
                "/subscriptions/contoso/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
            )
        };
        let ok = VmId::parse(&vm("my_Rg(1).x", "Vm-1.a_"), &t).unwrap();
        assert_eq!(ok.resource_group(), "my_Rg(1).x");
        assert_eq!(ok.name(), "Vm-1.a_");
        // Fixed segments and the subscription compare case-insensitively; the id keeps its case.
        let upper = "/SUBSCRIPTIONS/Contoso/resourcegroups/rg/PROVIDERS/microsoft.compute/VirtualMachines/vm1";
        assert_eq!(VmId::parse(upper, &t).unwrap().as_str(), upper);
        let long_rg = "r".repeat(90);
        let long_name = "n".repeat(64);
        assert!(VmId::parse(&vm(&long_rg, &long_name), &t).is_ok());

        let other = TenantId::parse("fabrikam").unwrap();
        assert!(matches!(
            VmId::parse(&vm("rg", "vm1"), &other),
            Err(VmIdError::OtherTenant { .. })
        ));
        for bad in [
            "",
            "vm1",
            "/subscriptions/contoso/resourceGroups/rg",
            "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/",
            "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/extensions/x",
            "//subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            "subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Network/virtualMachines/vm1",
            "/subscriptions/contoso/resourceGroups/rg/providers/Microsoft.Compute/disks/vm1",
            "/tenants/contoso/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        ] {
            assert!(
                matches!(VmId::parse(bad, &t), Err(VmIdError::Shape { .. })),
                "{bad:?}"
            );
        }
        for rg in [
            "",
            "..",
            "a,b",
            "rg\n",
            "r g",
            "rg.",
            "r/g",
            "r%2Fg",
            "rg\u{e9}",
            &"r".repeat(91),
        ] {
            assert!(VmId::parse(&vm(rg, "vm1"), &t).is_err(), "{rg:?}");
        }
        for name in [
            "",
            "..",
            ".",
            "vm1,vm2",
            "vm1\n",
            "vm 1",
            "_vm",
            "-vm",
            "vm-",
            "vm.",
            "vm(1)",
            "vm;1",
            &"n".repeat(65),
        ] {
            assert!(VmId::parse(&vm("rg", name), &t).is_err(), "{name:?}");
        }
        assert!(matches!(
            VmId::parse(&vm("a,b", "vm1"), &t),
            Err(VmIdError::ResourceGroup)
        ));
        assert!(matches!(
            VmId::parse(&vm("rg", "vm1\nvm2"), &t),
            Err(VmIdError::Name)
        ));
    }

    #[test]
    fn prefixes() {
        let any = SourcePrefix::parse("*").unwrap();
        let net = SourcePrefix::parse("10.0.0.0/8").unwrap();
        let host = SourcePrefix::parse("10.1.2.3").unwrap();
        assert!(any.contains(&host) && any.contains(&any));
        assert!(net.contains(&host));
        assert!(!host.contains(&net));
        assert!(!net.contains(&any));
        assert_eq!(host.single_address(), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(net.single_address(), None);
        assert!(SourcePrefix::parse("10.0.0.0/33").is_none());
        assert!(SourcePrefix::parse("2001:db8::/32").is_some());
    }
}

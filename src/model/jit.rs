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

use super::validate::{Collector, ValidationErrors, index, join};

mod arm_names;
mod input;
mod request;

pub(crate) use arm_names::is_resource_group;
pub use arm_names::{VmId, VmIdError, check_placement, resource_group_of};
pub use input::JitPolicyInput;
pub use request::{
    InitiatePort, InitiateRequest, InitiateVm, JitRequest, JitRequestPort, JitRequestVm,
    RevokeReason,
};

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

impl JitPolicy {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::TenantId;

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

//! What the `inet steward` table must hold at one instant: the guarded (target, protocol,
//! port) triples and the open doors (source prefix, target, protocol, port, seconds left),
//! computed from `[jit.targets]`, the tenants' policies and their open requests. Pure: no
//! store, no kernel, so every rule of "never open more than granted" is tested here.
//!
//! - A guard is every port of every policy VM that has a target: traffic this host
//!   forwards to it is dropped unless a door allows it. `*` guards TCP and UDP.
//! - A door is one open request port: its own source prefix (never the policy's), `*`
//!   meaning every address *of the target's family*, for the protocol(s) the policy names
//!   for that port, with a kernel timeout of the whole seconds left (rounded down, so it
//!   never outlives `endTimeUtc`).
//! - The kernel refuses overlapping elements in an interval set, so a door whose source
//!   overlaps an earlier door on the same (target, protocol, port) is refused (two VM keys
//!   mapped to one address, two tenants), as is a door whose VM has no target, whose
//!   policy or port is gone, or whose source is of the other address family. Refused
//!   doors are closed by the caller (`FirewallFailed`), never silently dropped.

use std::collections::BTreeSet;
use std::net::IpAddr;
use steward::names::TenantId;

use ipnet::IpNet;
use jiff::Timestamp;
use steward::config::JitConfig;
use steward::model::jit::{JitPolicy, JitRequest, JitRequestPort, Protocol, SourcePrefix};
use steward::model::{FieldError, ValidationErrors};

/// A transport the table matches (`meta l4proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The nft name (`tcp`, `udp`).
    pub fn as_nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The transports a policy protocol stands for (`*` is both).
    pub fn of(p: Protocol) -> &'static [Proto] {
        match p {
            Protocol::Tcp => &[Proto::Tcp],
            Protocol::Udp => &[Proto::Udp],
            Protocol::All => &[Proto::Tcp, Proto::Udp],
        }
    }
}

/// A (target, protocol, port) whose forwarded traffic is dropped unless a door allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guard {
    /// The address this host forwards to.
    pub target: IpAddr,
    /// The transport.
    pub proto: Proto,
    /// The destination port.
    pub port: u16,
}

/// One open door: an element of the allow set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    /// The tenant of the request.
    pub tenant: TenantId,
    /// The request's id.
    pub request: String,
    /// The VM id of the port, as in the request.
    pub vm: String,
    /// Which (target, protocol, port) it opens.
    pub guard: Guard,
    /// The source prefix it opens for (the request's, same family as the target).
    pub source: IpNet,
    /// Whole seconds left until the port's `endTimeUtc` (at least 1).
    pub timeout_secs: u32,
}

/// A request port that cannot be opened, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The tenant of the request.
    pub tenant: TenantId,
    /// The request's id.
    pub request: String,
    /// The VM id of the port.
    pub vm: String,
    /// The port number.
    pub port: u16,
    /// Why, in words for the operator.
    pub reason: String,
}

/// One tenant's policies and requests, as read from the store.
#[derive(Debug, Clone)]
pub struct TenantState {
    /// The tenant id.
    pub tenant: TenantId,
    /// Its policies.
    pub policies: Vec<JitPolicy>,
    /// Its requests, oldest first (only the open ones matter).
    pub requests: Vec<JitRequest>,
}

/// The table's wanted content.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every guarded (target, protocol, port).
    pub guards: BTreeSet<Guard>,
    /// Every open door.
    pub doors: Vec<Door>,
    /// Open request ports that cannot be opened.
    pub refused: Vec<Refusal>,
}

impl Plan {
    /// How many doors belong to `tenant`.
    pub fn doors_of(&self, tenant: &TenantId) -> usize {
        self.doors.iter().filter(|d| d.tenant == *tenant).count()
    }
}

/// `s` as a network of `target`'s family: `*` is the whole family; a prefix of the other
/// family, or text that does not parse, is an error naming it.
pub fn source_net(s: &str, target: IpAddr) -> Result<IpNet, String> {
    let whole = |t: IpAddr| match t {
        IpAddr::V4(_) => IpNet::from(IpAddr::from([0u8; 4])),
        IpAddr::V6(_) => IpNet::from(IpAddr::from([0u16; 8])),
    };
    let net = match SourcePrefix::parse(s) {
        None => return Err(format!("source `{s}` is not an address, a prefix or *")),
        Some(SourcePrefix::Any) => {
            let host = whole(target);
            return IpNet::new(host.addr(), 0).map_err(|e| e.to_string());
        }
        Some(SourcePrefix::Net(n)) => n.trunc(),
    };
    if net.addr().is_ipv4() != target.is_ipv4() {
        let fam = |v4: bool| if v4 { "IPv4" } else { "IPv6" };
        return Err(format!(
            "source `{s}` is {} but the VM's target {target} is {}",
            fam(net.addr().is_ipv4()),
            fam(target.is_ipv4())
        ));
    }
    Ok(net)
}

/// Whether two networks of one family share an address.
fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Checks at initiate that every port of `req` can be opened by the firewall: its VM has
/// a `[jit.targets]` entry and its source is of the target's family. Paths are those of
/// the initiate body (the request's VMs and ports are in the body's order).
pub fn check_request(jit: &JitConfig, req: &JitRequest) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    for (i, vm) in req.virtual_machines.iter().enumerate() {
        let Some(target) = jit.target_of(&vm.id) else {
            errors.push(FieldError {
                path: format!("virtualMachines[{i}].id"),
                message: format!(
                    "virtual machine `{}` has no [jit.targets] entry on this host, so the firewall cannot open its ports",
                    vm.id.rsplit('/').next().unwrap_or_default()
                ),
            });
            continue;
        };
        for (j, p) in vm.ports.iter().enumerate() {
            for s in p.sources() {
                if let Err(why) = source_net(&s, target) {
                    errors.push(FieldError {
                        path: format!("virtualMachines[{i}].ports[{j}].allowedSourceAddressPrefix"),
                        message: why,
                    });
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

/// The table's content at `now` for these tenants (in order; their requests oldest first,
/// so of two overlapping doors the older keeps its place).
pub fn plan(jit: &JitConfig, tenants: &[TenantState], now: Timestamp) -> Plan {
    let mut out = Plan::default();
    for t in tenants {
        for policy in &t.policies {
            for vm in &policy.properties.virtual_machines {
                let Some(target) = jit.target_of(&vm.id) else {
                    continue;
                };
                for rule in &vm.ports {
                    for &proto in Proto::of(rule.protocol) {
                        out.guards.insert(Guard {
                            target,
                            proto,
                            port: rule.number,
                        });
                    }
                }
            }
        }
    }
    for t in tenants {
        for req in &t.requests {
            for vm in &req.virtual_machines {
                for p in vm.ports.iter().filter(|p| p.is_active()) {
                    let refuse = |reason: String| Refusal {
                        tenant: t.tenant.clone(),
                        request: req.id.clone(),
                        vm: vm.id.clone(),
                        port: p.number,
                        reason,
                    };
                    match doors_of(jit, t, req, &vm.id, p, now) {
                        Ok(doors) => {
                            let clash = doors.iter().find_map(|d| {
                                out.doors
                                    .iter()
                                    .find(|o| o.guard == d.guard && overlaps(&o.source, &d.source))
                            });
                            match clash {
                                Some(o) => out.refused.push(refuse(format!(
                                    "port {} on {} is already open for an overlapping source by request {} of tenant {}",
                                    p.number, o.guard.target, o.request, o.tenant
                                ))),
                                None => out.doors.extend(doors),
                            }
                        }
                        Err(why) => out.refused.push(refuse(why)),
                    }
                }
            }
        }
    }
    out
}

/// The doors of one open request port (one per protocol), or why it cannot be opened.
/// A port that ends within the second gets none and no refusal: the kernel could not
/// time it, and expiry closes it now.
fn doors_of(
    jit: &JitConfig,
    t: &TenantState,
    req: &JitRequest,
    vm: &str,
    p: &JitRequestPort,
    now: Timestamp,
) -> Result<Vec<Door>, String> {
    let left = now.duration_until(p.end_time_utc).as_secs();
    if left < 1 {
        return Ok(Vec::new());
    }
    let timeout_secs = u32::try_from(left).unwrap_or(u32::MAX);
    let Some(target) = jit.target_of(vm) else {
        return Err(format!(
            "virtual machine `{}` has no [jit.targets] entry",
            vm.rsplit('/').next().unwrap_or_default()
        ));
    };
    let policy = req
        .policy_name
        .as_deref()
        .and_then(|n| t.policies.iter().find(|pol| pol.name == n))
        .ok_or("its policy no longer exists, so its protocol is unknown")?;
    let rule = policy
        .vm(vm)
        .and_then(|v| v.ports.iter().find(|r| r.number == p.number))
        .ok_or_else(|| format!("its policy no longer lists port {} for this VM", p.number))?;
    let srcs = p.sources();
    if srcs.is_empty() {
        return Err("the request port names no source".into());
    }
    let mut nets = Vec::new();
    for s in &srcs {
        nets.push(source_net(s, target)?);
    }
    // CIDR prefixes nest or are disjoint: keep the widest of each nest, once, so the
    // port's own doors never overlap each other.
    let widest: Vec<IpNet> = nets
        .iter()
        .enumerate()
        .filter(|(i, n)| {
            !nets
                .iter()
                .enumerate()
                .any(|(j, m)| j != *i && m.contains(*n) && (m != *n || j < *i))
        })
        .map(|(_, n)| *n)
        .collect();
    let mut doors = Vec::new();
    for source in widest {
        for &proto in Proto::of(rule.protocol) {
            doors.push(Door {
                tenant: t.tenant.clone(),
                request: req.id.clone(),
                vm: vm.to_owned(),
                guard: Guard {
                    target,
                    proto,
                    port: p.number,
                },
                source,
                timeout_secs,
            });
        }
    }
    Ok(doors)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use steward::model::jit::{JitPortRule, JitRequestVm, JitVirtualMachine};

    const VM1: &str =
        "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
    const VM2: &str =
        "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm2";

    fn now() -> Timestamp {
        "2026-12-03T10:00:00Z".parse().unwrap()
    }

    fn jit(targets: &[(&str, &str)]) -> JitConfig {
        JitConfig {
            targets: targets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.parse().unwrap()))
                .collect(),
            ..Default::default()
        }
    }

    fn policy(vm: &str, proto: Protocol, allowed: &[&str]) -> JitPolicy {
        JitPolicy {
            id: String::new(),
            name: "default".into(),
            resource_type: String::new(),
            kind: None,
            location: "local".into(),
            etag: None,
            properties: steward::model::jit::JitPolicyProperties {
                virtual_machines: vec![JitVirtualMachine {
                    id: vm.into(),
                    ports: vec![JitPortRule {
                        number: 22,
                        protocol: proto,
                        allowed_source_address_prefix: None,
                        allowed_source_address_prefixes: Some(
                            allowed.iter().map(|s| (*s).to_owned()).collect(),
                        ),
                        max_request_access_duration: "PT3H".into(),
                    }],
                    public_ip_address: None,
                }],
                requests: Vec::new(),
                provisioning_state: None,
            },
        }
    }

    fn request(id: &str, vm: &str, source: &str, secs: i64) -> JitRequest {
        JitRequest {
            id: id.into(),
            policy_name: Some("default".into()),
            virtual_machines: vec![JitRequestVm {
                id: vm.into(),
                ports: vec![JitRequestPort {
                    number: 22,
                    allowed_source_address_prefix: Some(source.into()),
                    allowed_source_address_prefixes: None,
                    end_time_utc: now() + jiff::SignedDuration::from_millis(secs * 1000 + 700),
                    status: "Initiated".into(),
                    status_reason: "UserRequested".into(),
                    mapped_port: None,
                }],
            }],
            start_time_utc: now(),
            requestor: "alice".into(),
            justification: None,
        }
    }

    fn tenant(policies: Vec<JitPolicy>, requests: Vec<JitRequest>) -> TenantState {
        TenantState {
            tenant: TenantId::parse("contoso").unwrap(),
            policies,
            requests,
        }
    }

    /// The door is the request's own source, not the policy's wider prefix, timed to the
    /// whole seconds left (rounded down: it never outlives the end).
    #[test]
    fn door_is_the_request_source_with_the_seconds_left() {
        let t = tenant(
            vec![policy(VM1, Protocol::Tcp, &["10.0.0.0/8"])],
            vec![request("r1", VM1, "10.1.2.3", 600)],
        );
        let p = plan(&jit(&[("vm1", "192.168.5.5")]), &[t], now());
        assert!(p.refused.is_empty(), "{:?}", p.refused);
        assert_eq!(p.doors.len(), 1);
        assert_eq!(p.doors[0].source.to_string(), "10.1.2.3/32");
        assert_eq!(p.doors[0].timeout_secs, 600);
        assert_eq!(p.doors[0].guard.target.to_string(), "192.168.5.5");
        assert_eq!(p.guards.len(), 1);
    }

    /// `*` in a policy guards and opens TCP and UDP; `*` as a source is the whole family
    /// of the target (IPv6 here).
    #[test]
    fn star_protocol_and_star_source() {
        let t = tenant(
            vec![policy(VM1, Protocol::All, &["*"])],
            vec![request("r1", VM1, "*", 60)],
        );
        let p = plan(&jit(&[(VM1, "fd00::5")]), &[t], now());
        assert_eq!(p.guards.len(), 2);
        let srcs: Vec<String> = p.doors.iter().map(|d| d.source.to_string()).collect();
        assert_eq!(srcs, ["::/0", "::/0"]);
        let protos: Vec<Proto> = p.doors.iter().map(|d| d.guard.proto).collect();
        assert_eq!(protos, [Proto::Tcp, Proto::Udp]);
    }

    /// Refused, never opened: a VM without a target, a source of the other family, a
    /// request whose policy is gone, and a door overlapping an earlier one on the same
    /// (target, protocol, port) (two VM keys mapped to one address).
    #[test]
    fn refusals_close_rather_than_open() {
        let cfg = jit(&[("vm1", "10.9.9.9"), ("vm2", "10.9.9.9")]);
        let mut pol2 = policy(VM2, Protocol::Tcp, &["10.0.0.0/8"]);
        pol2.name = "second".into();
        let mut r4 = request("r4", VM2, "10.1.0.0/16", 60);
        r4.policy_name = Some("second".into());
        let mut r5 = request("r5", VM1, "10.1.0.1", 60);
        r5.policy_name = Some("deleted".into());
        let t = tenant(
            vec![
                policy(VM1, Protocol::Tcp, &["10.0.0.0/8", "2001:db8::/32"]),
                pol2,
            ],
            vec![
                request("r1", VM1, "10.1.2.3", 60),
                request("r2", VM1, "2001:db8::1", 60),
                r4,
                r5,
            ],
        );
        let p = plan(&cfg, &[t], now());
        assert_eq!(p.doors.len(), 1, "{:?}", p.doors);
        assert_eq!(p.doors[0].request, "r1");
        let refused: Vec<(&str, &str)> = p
            .refused
            .iter()
            .map(|r| (r.request.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(
            refused[0].0 == "r2" && refused[0].1.contains("IPv6"),
            "{refused:?}"
        );
        assert!(
            refused[1].0 == "r4" && refused[1].1.contains("overlapping"),
            "{refused:?}"
        );
        assert!(
            refused[2].0 == "r5" && refused[2].1.contains("policy"),
            "{refused:?}"
        );
        let none = plan(
            &jit(&[]),
            &[tenant(
                vec![policy(VM1, Protocol::Tcp, &["*"])],
                vec![request("r1", VM1, "10.1.2.3", 60)],
            )],
            now(),
        );
        assert!(none.doors.is_empty() && none.guards.is_empty());
        assert!(
            none.refused[0].reason.contains("jit.targets"),
            "{:?}",
            none.refused
        );
    }

    /// Nested sources of one port open once, as the widest; a port ending within the
    /// second opens nothing and is not refused (expiry closes it).
    #[test]
    fn nested_sources_and_ports_about_to_end() {
        let mut r = request("r1", VM1, "10.1.0.0/16", 60);
        r.virtual_machines[0].ports[0].allowed_source_address_prefixes =
            Some(vec!["10.1.2.0/24".into(), "10.1.0.0/16".into()]);
        let t = tenant(
            vec![policy(VM1, Protocol::Tcp, &["10.0.0.0/8"])],
            vec![r, request("r2", VM2, "10.1.2.3", 0)],
        );
        let p = plan(
            &jit(&[("vm1", "10.9.9.9")]),
            &[t],
            now() + jiff::SignedDuration::from_millis(800),
        );
        assert_eq!(p.doors.len(), 1, "{:?}", p.doors);
        assert_eq!(p.doors[0].source.to_string(), "10.1.0.0/16");
        assert_eq!(p.doors[0].timeout_secs, 59);
        assert_eq!(p.refused.len(), 0, "{:?}", p.refused);
    }

    /// At initiate: a VM without a target and a source of the other family are 400s that
    /// name the field.
    #[test]
    fn check_request_names_the_field() {
        let cfg = jit(&[("vm1", "10.9.9.9")]);
        let mut r = request("r1", VM1, "2001:db8::1", 60);
        r.virtual_machines
            .push(request("r", VM2, "10.1.2.3", 60).virtual_machines.remove(0));
        let e = check_request(&cfg, &r).unwrap_err();
        assert_eq!(
            e.paths(),
            [
                "virtualMachines[0].ports[0].allowedSourceAddressPrefix",
                "virtualMachines[1].id"
            ]
        );
        assert!(
            e.to_string().contains("`vm2` has no [jit.targets] entry"),
            "{e}"
        );
        assert!(check_request(&cfg, &request("r1", VM1, "10.1.2.3", 60)).is_ok());
    }
}

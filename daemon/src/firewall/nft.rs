//! The `inet steward` table as one nftables JSON document, and running `nft` on it.
//!
//! The document is built with the `nftables` crate's typed schema (never text pasted into
//! a command line) and replaces the table in **one kernel transaction**: `add table`
//! (so the next command has something to delete), `delete table`, then the whole table
//! again. Either all of it applies or nothing changes; there is no instant with the
//! guards gone. The table:
//!
//! ```text
//! table inet steward {
//!   set allow4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval,timeout }
//!   set allow6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags interval,timeout }
//!   set guard4 { type ipv4_addr . inet_proto . inet_service }
//!   set guard6 { type ipv6_addr . inet_proto . inet_service }
//!   chain forward {
//!     type filter hook forward priority filter; policy accept;
//!     ip saddr . ip daddr . meta l4proto . th dport @allow4 accept
//!     ip6 saddr . ip6 daddr . meta l4proto . th dport @allow6 accept
//!     ip daddr . meta l4proto . th dport @guard4 drop
//!     ip6 daddr . meta l4proto . th dport @guard6 drop
//!   }
//! }
//! ```
//!
//! An allow element is (source prefix . target . protocol . port) with the kernel's own
//! `timeout`: it disappears at the request's end whether or not stewardd is running. Its
//! comment is `tenant/request`, so `nft list table inet steward` shows whose door it is.
//! `nft` is run with the document on stdin (`nft -j -f -`) and its stderr captured, so a
//! refusal reads as nft wrote it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use nftables::batch::Batch;
use nftables::expr::{
    Elem, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix,
};
use nftables::schema::{
    Chain, NfListObject, Nftables, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::plan::{Door, Guard, Plan};

/// The table's name (family `inet`).
pub const TABLE: &str = "steward";
/// The chain's name.
const CHAIN: &str = "forward";
/// The command run (looked up in `PATH`).
pub const NFT: &str = "nft";

/// Why `nft` did not apply a document.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The program could not be started.
    #[error("cannot run `{NFT}` ({0}): install nftables (`nft` must be in the daemon's PATH)")]
    Missing(std::io::Error),
    /// It was denied the netlink operation.
    #[error(
        "`{NFT}` was refused ({0}): the daemon needs CAP_NET_ADMIN in the host's network namespace (config/stewardd.service.d/firewall.conf)"
    )]
    NotPermitted(String),
    /// It refused the document.
    #[error("`{NFT}` failed: {0}")]
    Failed(String),
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn l4proto() -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta {
        key: MetaKey::L4proto,
    }))
}

fn set(name: &'static str, types: &'static [SetType], interval: bool) -> NfListObject<'static> {
    let flags = interval.then(|| HashSet::from([SetFlag::Interval, SetFlag::Timeout]));
    NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        handle: None,
        set_type: SetTypeValue::Concatenated(Cow::Borrowed(types)),
        policy: None,
        flags,
        elem: None,
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    }))
}

/// `KEY @set VERDICT`.
fn rule(
    key: Vec<Expression<'static>>,
    set: &'static str,
    verdict: Statement<'static>,
) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: CHAIN.into(),
        expr: Cow::Owned(vec![
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::Concat(key)),
                right: Expression::String(format!("@{set}").into()),
                op: Operator::EQ,
            }),
            verdict,
        ]),
        handle: None,
        index: None,
        comment: None,
    })
}

fn addr(a: IpAddr) -> Expression<'static> {
    Expression::String(a.to_string().into())
}

fn door_elem(d: &Door) -> Expression<'static> {
    let source = Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(addr(d.source.network())),
        len: u32::from(d.source.prefix_len()),
    }));
    let val = Expression::Named(NamedExpression::Concat(vec![
        source,
        addr(d.guard.target),
        Expression::String(d.guard.proto.as_nft().into()),
        Expression::Number(u32::from(d.guard.port)),
    ]));
    let mut comment = format!("{}/{}", d.tenant, d.request);
    // nft keeps at most 128 bytes of a comment; ids are ASCII.
    comment.truncate(127);
    Expression::Named(NamedExpression::Elem(Elem {
        val: Box::new(val),
        timeout: Some(d.timeout_secs),
        expires: None,
        comment: Some(comment.into()),
        counter: None,
    }))
}

fn guard_elem(g: &Guard) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![
        addr(g.target),
        Expression::String(g.proto.as_nft().into()),
        Expression::Number(u32::from(g.port)),
    ]))
}

fn elements(name: &'static str, elem: Vec<Expression<'static>>) -> Option<NfListObject<'static>> {
    (!elem.is_empty()).then(|| {
        NfListObject::Element(nftables::schema::Element {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.into(),
            elem: Cow::Owned(elem),
        })
    })
}

const ALLOW4: &[SetType] = &[
    SetType::Ipv4Addr,
    SetType::Ipv4Addr,
    SetType::InetProto,
    SetType::InetService,
];
const ALLOW6: &[SetType] = &[
    SetType::Ipv6Addr,
    SetType::Ipv6Addr,
    SetType::InetProto,
    SetType::InetService,
];
const GUARD4: &[SetType] = &[SetType::Ipv4Addr, SetType::InetProto, SetType::InetService];
const GUARD6: &[SetType] = &[SetType::Ipv6Addr, SetType::InetProto, SetType::InetService];

/// The document that replaces the table with `plan`, atomically.
pub fn replace_table(plan: &Plan) -> Nftables<'static> {
    let mut b = Batch::new();
    b.add(NfListObject::Table(table()));
    b.delete(NfListObject::Table(table()));
    b.add(NfListObject::Table(table()));
    b.add(set("allow4", ALLOW4, true));
    b.add(set("allow6", ALLOW6, true));
    b.add(set("guard4", GUARD4, false));
    b.add(set("guard6", GUARD6, false));
    b.add(NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: CHAIN.into(),
        newname: None,
        handle: None,
        _type: Some(NfChainType::Filter),
        hook: Some(NfHook::Forward),
        prio: Some(0),
        dev: None,
        policy: Some(NfChainPolicy::Accept),
    }));
    let th = || payload("th", "dport");
    b.add(rule(
        vec![
            payload("ip", "saddr"),
            payload("ip", "daddr"),
            l4proto(),
            th(),
        ],
        "allow4",
        Statement::Accept(None),
    ));
    b.add(rule(
        vec![
            payload("ip6", "saddr"),
            payload("ip6", "daddr"),
            l4proto(),
            th(),
        ],
        "allow6",
        Statement::Accept(None),
    ));
    b.add(rule(
        vec![payload("ip", "daddr"), l4proto(), th()],
        "guard4",
        Statement::Drop(None),
    ));
    b.add(rule(
        vec![payload("ip6", "daddr"), l4proto(), th()],
        "guard6",
        Statement::Drop(None),
    ));
    let (d4, d6): (Vec<&Door>, Vec<&Door>) =
        plan.doors.iter().partition(|d| d.guard.target.is_ipv4());
    let (g4, g6): (Vec<&Guard>, Vec<&Guard>) = plan.guards.iter().partition(|g| g.target.is_ipv4());
    let adds = [
        elements("allow4", d4.into_iter().map(door_elem).collect()),
        elements("allow6", d6.into_iter().map(door_elem).collect()),
        elements("guard4", g4.into_iter().map(guard_elem).collect()),
        elements("guard6", g6.into_iter().map(guard_elem).collect()),
    ];
    for a in adds.into_iter().flatten() {
        b.add(a);
    }
    b.to_nftables()
}

/// The document that removes the table (and does nothing when there is none).
pub fn remove_table() -> Nftables<'static> {
    let mut b = Batch::new();
    b.add(NfListObject::Table(table()));
    b.delete(NfListObject::Table(table()));
    b.to_nftables()
}

/// Runs `nft -j -f -` with `doc` on stdin; one kernel transaction.
pub fn apply(doc: &Nftables<'_>) -> Result<(), NftError> {
    let json = serde_json::to_vec(doc).map_err(|e| NftError::Failed(e.to_string()))?;
    let mut child = Command::new(NFT)
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Missing)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means nft exited early; its status and stderr say why.
        let _ = stdin.write_all(&json);
    }
    let out = child.wait_with_output().map_err(NftError::Missing)?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_owned();
    if stderr.contains("Operation not permitted") {
        Err(NftError::NotPermitted(first))
    } else {
        Err(NftError::Failed(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::plan::{Door, Guard, Plan, Proto};
    use steward::names::TenantId;

    fn sample() -> Plan {
        let mut p = Plan::default();
        for (t, proto) in [("10.1.0.5", Proto::Tcp), ("fd00::5", Proto::Udp)] {
            let target: IpAddr = t.parse().unwrap_or(IpAddr::from([0u8; 4]));
            let guard = Guard {
                target,
                proto,
                port: 22,
            };
            p.guards.insert(guard);
            let source = if target.is_ipv4() {
                "198.51.100.0/24"
            } else {
                "2001:db8::/32"
            };
            p.doors.push(Door {
                tenant: TenantId::parse("contoso").unwrap(),
                request: "r1".into(),
                vm: "vm1".into(),
                guard,
                source: source
                    .parse()
                    .unwrap_or_else(|_| ipnet::IpNet::from(target)),
                timeout_secs: 90,
            });
        }
        p
    }

    /// The document is the table of the module doc: one add/delete/add of the table, four
    /// sets, the chain, four rules, and elements with their kernel timeout and owner.
    #[test]
    fn document_shape() {
        let json = serde_json::to_value(replace_table(&sample())).unwrap_or_default();
        let text = json.to_string();
        if std::env::var_os("STEWARD_PRINT_NFT").is_some() {
            println!("{text}");
        }
        let cmds = json["nftables"].as_array().cloned().unwrap_or_default();
        assert_eq!(cmds.len(), 3 + 4 + 1 + 4 + 4, "{text}");
        assert!(cmds[1].get("delete").is_some(), "{text}");
        assert!(text.contains(r#""timeout":90"#), "{text}");
        assert!(text.contains(r#""comment":"contoso/r1""#), "{text}");
        assert!(
            text.contains(r#"{"prefix":{"addr":"198.51.100.0","len":24}}"#),
            "{text}"
        );
    }
}

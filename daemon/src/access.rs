//! What a caller may do in a tenant: grants from the config, resolved for one caller.
//!
//! A caller's permissions in a tenant are the union of the profiles of every grant that
//! names it (by user name, uid or group) in that tenant or in `*`. A tenant the caller
//! holds nothing in is indistinguishable from one that does not exist: both are `None`
//! here and 404 on the wire.

use steward::config::{Config, Grantee};
use steward::names::TenantId;
use steward::permissions::{ActAsError, Permission, PermissionSet};

use crate::identity::Caller;

/// The caller's standing in one tenant for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Everything the caller's grants give it here.
    pub held: PermissionSet,
    /// What this request may do: `held`, or a lower profile's permissions.
    pub effective: PermissionSet,
    /// The profile recorded in the audit log: the acting profile, or the held
    /// profiles joined with `+`.
    pub profile: String,
}

impl Access {
    /// Whether the request may do `p`.
    pub fn allows(&self, p: Permission) -> bool {
        self.effective.contains(p)
    }
}

/// Whether `grantee` names `caller`.
fn names(grantee: &Grantee<'_>, caller: &Caller) -> bool {
    match grantee {
        Grantee::User(u) => caller.named && caller.user == *u,
        Grantee::Uid(uid) => caller.uid == *uid,
        Grantee::Group(g) => caller.groups.iter().any(|x| x == g),
    }
}

/// The profiles the caller holds in `tenant`, sorted and without repeats.
pub fn profiles_in(config: &Config, caller: &Caller, tenant: &TenantId) -> Vec<String> {
    if config.tenant(tenant).is_none() {
        return Vec::new();
    }
    let mut v: Vec<String> = config
        .grants
        .iter()
        .filter(|g| g.covers(tenant) && g.grantee().is_some_and(|who| names(&who, caller)))
        .map(|g| g.role.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The union of the caller's grants in `tenant`; `None` when it holds none there (or
/// the tenant does not exist).
pub fn held_in(config: &Config, caller: &Caller, tenant: &TenantId) -> Option<PermissionSet> {
    let profiles = profiles_in(config, caller, tenant);
    if profiles.is_empty() {
        return None;
    }
    Some(
        profiles
            .iter()
            .filter_map(|p| config.profiles().get(p))
            .fold(PermissionSet::EMPTY, PermissionSet::union),
    )
}

/// Why a caller gets no access for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessError {
    /// No grant in the tenant, or no such tenant (the same answer: 404).
    NoTenant,
    /// The requested acting profile is unknown or above what is held.
    ActAs(ActAsError),
}

/// The caller's access in `tenant` when acting as `acting` (the `X-Steward-Role` header).
pub fn resolve(
    config: &Config,
    caller: &Caller,
    tenant: &TenantId,
    acting: Option<&str>,
) -> Result<Access, AccessError> {
    let profiles = profiles_in(config, caller, tenant);
    let held = held_in(config, caller, tenant).ok_or(AccessError::NoTenant)?;
    let effective = config
        .profiles()
        .effective(held, acting)
        .map_err(AccessError::ActAs)?;
    Ok(Access {
        held,
        effective,
        profile: acting.map_or_else(|| profiles.join("+"), str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tid;

    fn caller(user: &str, uid: u32, groups: &[&str]) -> Caller {
        Caller {
            uid,
            gid: uid,
            pid: None,
            user: user.into(),
            named: true,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    const CFG: &str = r#"
[[tenant]]
id = "contoso"
name = "C"
[[tenant]]
id = "fabrikam"
name = "F"
[[grant]]
user = "alice"
tenant = "contoso"
role = "owner"
[[grant]]
group = "secops"
tenant = "*"
role = "reader"
[[grant]]
uid = 990
tenant = "fabrikam"
role = "ingest"
"#;

    #[test]
    fn grants_union_by_user_uid_and_group() {
        let cfg = Config::parse(CFG).unwrap();
        let p = cfg.profiles();
        let alice = caller("alice", 1000, &["secops"]);
        assert_eq!(held_in(&cfg, &alice, &tid("contoso")), p.get("owner"));
        assert_eq!(held_in(&cfg, &alice, &tid("fabrikam")), p.get("reader"));
        let ingester = caller("svc", 990, &[]);
        assert_eq!(held_in(&cfg, &ingester, &tid("contoso")), None);
        assert_eq!(held_in(&cfg, &ingester, &tid("fabrikam")), p.get("ingest"));
        assert_eq!(held_in(&cfg, &alice, &tid("nowhere")), None);
    }

    #[test]
    fn a_nameless_uid_never_matches_a_user_grant() {
        let cfg = Config::parse(CFG).unwrap();
        let mut ghost = caller("alice", 4242, &[]);
        ghost.named = false;
        assert_eq!(held_in(&cfg, &ghost, &tid("contoso")), None);
    }

    #[test]
    fn acting_lower_is_allowed_and_higher_refused() {
        let cfg = Config::parse(CFG).unwrap();
        let alice = caller("alice", 1000, &[]);
        let a = resolve(&cfg, &alice, &tid("contoso"), Some("reader")).unwrap();
        assert!(a.allows(Permission::ContactsRead));
        assert!(!a.allows(Permission::ContactsWrite));
        assert_eq!(a.profile, "reader");
        assert!(matches!(
            resolve(&cfg, &alice, &tid("contoso"), Some("tenant-admin")),
            Err(AccessError::ActAs(_))
        ));
        assert_eq!(
            resolve(&cfg, &alice, &tid("fabrikam"), None),
            Err(AccessError::NoTenant)
        );
    }
}

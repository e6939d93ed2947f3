//! Permissions and role profiles: the permission matrix of DESIGN.md as data.
//!
//! A caller's permissions in a tenant are the union of the profiles its grants give it
//! there. A request may ask to act under a lower profile (`X-Steward-Role`), which is
//! allowed only when that profile's permissions are a subset of what the caller holds.
//! This module decides nothing about *who* holds which grant — that is the config's and
//! the daemon's business — only what each profile allows.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One thing a caller may do in a tenant. The string forms (`contacts.read`, …) are the
/// names used in config files, 403 messages and the `/v1/tenants` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// Read security contacts.
    #[serde(rename = "contacts.read")]
    ContactsRead,
    /// Read JIT policies and requests.
    #[serde(rename = "jit.read")]
    JitRead,
    /// Read alerts.
    #[serde(rename = "alerts.read")]
    AlertsRead,
    /// Read the audit log and verify its chain.
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Export security contacts.
    #[serde(rename = "contacts.export")]
    ContactsExport,
    /// Create, update and delete security contacts.
    #[serde(rename = "contacts.write")]
    ContactsWrite,
    /// Create, update and delete JIT policies.
    #[serde(rename = "jit.write")]
    JitWrite,
    /// Initiate and revoke JIT access requests.
    #[serde(rename = "jit.request")]
    JitRequest,
    /// Export JIT policies and requests.
    #[serde(rename = "jit.export")]
    JitExport,
    /// Export alerts.
    #[serde(rename = "alerts.export")]
    AlertsExport,
    /// Export the audit log.
    #[serde(rename = "audit.export")]
    AuditExport,
    /// Find, export and erase a data subject's data.
    #[serde(rename = "dsr.manage")]
    DsrManage,
    /// Append alerts, nothing else.
    #[serde(rename = "alerts.ingest")]
    AlertsIngest,
}

impl Permission {
    /// Every permission, in the order of the matrix.
    pub const ALL: [Permission; 13] = [
        Permission::ContactsRead,
        Permission::JitRead,
        Permission::AlertsRead,
        Permission::AuditRead,
        Permission::ContactsExport,
        Permission::ContactsWrite,
        Permission::JitWrite,
        Permission::JitRequest,
        Permission::JitExport,
        Permission::AlertsExport,
        Permission::AuditExport,
        Permission::DsrManage,
        Permission::AlertsIngest,
    ];

    /// The permission's name as written in config and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ContactsRead => "contacts.read",
            Permission::JitRead => "jit.read",
            Permission::AlertsRead => "alerts.read",
            Permission::AuditRead => "audit.read",
            Permission::ContactsExport => "contacts.export",
            Permission::ContactsWrite => "contacts.write",
            Permission::JitWrite => "jit.write",
            Permission::JitRequest => "jit.request",
            Permission::JitExport => "jit.export",
            Permission::AlertsExport => "alerts.export",
            Permission::AuditExport => "audit.export",
            Permission::DsrManage => "dsr.manage",
            Permission::AlertsIngest => "alerts.ingest",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that is not one of [`Permission::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// A set of permissions (a small bit set; cheap to copy and compare).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u16);

impl PermissionSet {
    /// The empty set.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// A set holding exactly `perms`.
    pub fn of(perms: &[Permission]) -> Self {
        perms.iter().fold(Self::EMPTY, |s, p| s.with(*p))
    }

    /// This set plus `p`.
    #[must_use]
    pub fn with(self, p: Permission) -> Self {
        PermissionSet(self.0 | p.bit())
    }

    /// The union of two sets.
    #[must_use]
    pub fn union(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 | other.0)
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// Whether every permission of `self` is also in `other`.
    pub fn is_subset_of(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions in the set, in matrix order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Whether the set allows any change at all (for the `[RO]`/`[RW]` marker).
    pub fn can_write(self) -> bool {
        [
            Permission::ContactsWrite,
            Permission::JitWrite,
            Permission::JitRequest,
            Permission::DsrManage,
            Permission::AlertsIngest,
        ]
        .into_iter()
        .any(|p| self.contains(p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, |s, p| s.with(p))
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(d)?.into_iter().collect())
    }
}

/// The read permissions every browsing profile holds.
const READ: [Permission; 5] = [
    Permission::ContactsRead,
    Permission::JitRead,
    Permission::AlertsRead,
    Permission::AuditRead,
    Permission::ContactsExport,
];
/// What contributors add to reading.
const WRITE: [Permission; 3] = [
    Permission::ContactsWrite,
    Permission::JitWrite,
    Permission::JitRequest,
];
/// What account admins add to writing.
const EXPORT: [Permission; 3] = [
    Permission::JitExport,
    Permission::AlertsExport,
    Permission::AuditExport,
];

/// The built-in profiles, from the product's documented rules (DESIGN.md's matrix),
/// lowest first. Config may add profiles but never redefine these names.
pub fn builtin_profiles() -> [(&'static str, PermissionSet); 6] {
    let reader = PermissionSet::of(&READ);
    let contributor = reader.union(PermissionSet::of(&WRITE));
    let account_admin = contributor.union(PermissionSet::of(&EXPORT));
    [
        ("reader", reader),
        ("contributor", contributor),
        // The matrix gives owners exactly the contributor's permissions.
        ("owner", contributor),
        ("account-admin", account_admin),
        ("tenant-admin", account_admin.with(Permission::DsrManage)),
        ("ingest", PermissionSet::of(&[Permission::AlertsIngest])),
    ]
}

/// Why a set of profiles could not be built from config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A custom profile reuses a built-in name.
    #[error("profile `{0}` is built in and cannot be redefined")]
    RedefinesBuiltin(String),
    /// A custom profile names a permission that does not exist.
    #[error("profile `{profile}`: {source}")]
    UnknownPermission {
        /// The profile being defined.
        profile: String,
        /// The bad permission name.
        source: UnknownPermission,
    },
    /// A profile name is empty or has characters outside `[a-z0-9-]`.
    #[error("profile name `{0}` must be 1-63 characters of a-z, 0-9 and -")]
    BadName(String),
}

/// Why a request may not act under the profile it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActAsError {
    /// The profile does not exist.
    #[error("unknown profile `{0}`")]
    UnknownProfile(String),
    /// The profile allows something the caller does not hold in this tenant.
    #[error("profile `{profile}` needs {missing}, which you do not hold in this tenant")]
    NotASubset {
        /// The profile asked for.
        profile: String,
        /// One permission the caller lacks (the first in matrix order).
        missing: Permission,
    },
}

/// Every profile known to a daemon: the built-ins plus the config's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles {
    /// Profile name to permissions; built-ins included.
    by_name: BTreeMap<String, PermissionSet>,
}

impl Profiles {
    /// The built-in profiles plus `custom` (profile name to permission names).
    pub fn new(custom: &BTreeMap<String, Vec<String>>) -> Result<Self, ProfileError> {
        let mut by_name: BTreeMap<String, PermissionSet> = builtin_profiles()
            .into_iter()
            .map(|(n, p)| (n.to_owned(), p))
            .collect();
        for (name, perms) in custom {
            if by_name.contains_key(name) {
                return Err(ProfileError::RedefinesBuiltin(name.clone()));
            }
            if !is_profile_name(name) {
                return Err(ProfileError::BadName(name.clone()));
            }
            let set = perms
                .iter()
                .map(|p| p.parse::<Permission>())
                .collect::<Result<PermissionSet, _>>()
                .map_err(|source| ProfileError::UnknownPermission {
                    profile: name.clone(),
                    source,
                })?;
            by_name.insert(name.clone(), set);
        }
        Ok(Profiles { by_name })
    }

    /// Only the built-in profiles.
    pub fn builtin() -> Self {
        Profiles {
            by_name: builtin_profiles()
                .into_iter()
                .map(|(n, p)| (n.to_owned(), p))
                .collect(),
        }
    }

    /// The permissions of a profile, if it exists.
    pub fn get(&self, name: &str) -> Option<PermissionSet> {
        self.by_name.get(name).copied()
    }

    /// Every profile with its permissions, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, PermissionSet)> {
        self.by_name.iter().map(|(n, p)| (n.as_str(), *p))
    }

    /// What a caller holding `held` may do when it asks to act as `acting`: the acting
    /// profile's permissions when they are a subset of `held`, else an error.
    /// With no acting profile, everything held.
    pub fn effective(
        &self,
        held: PermissionSet,
        acting: Option<&str>,
    ) -> Result<PermissionSet, ActAsError> {
        let Some(name) = acting else {
            return Ok(held);
        };
        let wanted = self
            .get(name)
            .ok_or_else(|| ActAsError::UnknownProfile(name.to_owned()))?;
        match wanted.iter().find(|p| !held.contains(*p)) {
            None => Ok(wanted),
            Some(missing) => Err(ActAsError::NotASubset {
                profile: name.to_owned(),
                missing,
            }),
        }
    }

    /// The profiles a caller holding `held` may act under: each one whose permissions
    /// are a subset of `held`, lowest (fewest permissions) first.
    pub fn actable(&self, held: PermissionSet) -> Vec<String> {
        let mut v: Vec<(u32, String)> = self
            .by_name
            .iter()
            .filter(|(_, p)| !p.is_empty() && p.is_subset_of(held))
            .map(|(n, p)| (p.iter().count() as u32, n.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
    }
}

/// Whether `name` is a valid profile name (`[a-z0-9][a-z0-9-]{0,62}`).
fn is_profile_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    /// The matrix of DESIGN.md, written out row by row, independently of the code above.
    fn matrix() -> Vec<(Permission, [bool; 6])> {
        // columns: reader, contributor, owner, account-admin, tenant-admin, ingest
        let all_but_ingest = [true, true, true, true, true, false];
        vec![
            (ContactsRead, all_but_ingest),
            (JitRead, all_but_ingest),
            (AlertsRead, all_but_ingest),
            (AuditRead, all_but_ingest),
            (ContactsExport, all_but_ingest),
            (ContactsWrite, [false, true, true, true, true, false]),
            (JitWrite, [false, true, true, true, true, false]),
            (JitRequest, [false, true, true, true, true, false]),
            (JitExport, [false, false, false, true, true, false]),
            (AlertsExport, [false, false, false, true, true, false]),
            (AuditExport, [false, false, false, true, true, false]),
            (DsrManage, [false, false, false, false, true, false]),
            (AlertsIngest, [false, false, false, false, false, true]),
        ]
    }

    #[test]
    fn builtin_profiles_equal_the_design_matrix() {
        let names = [
            "reader",
            "contributor",
            "owner",
            "account-admin",
            "tenant-admin",
            "ingest",
        ];
        let profiles = Profiles::builtin();
        let rows = matrix();
        assert_eq!(rows.len(), Permission::ALL.len());
        for (perm, cols) in rows {
            for (i, name) in names.iter().enumerate() {
                let set = profiles.get(name).unwrap();
                assert_eq!(set.contains(perm), cols[i], "{name} / {perm}");
            }
        }
    }

    #[test]
    fn no_profile_updates_or_deletes_alerts() {
        // There is no such permission at all; ingest may only append.
        for (_, set) in builtin_profiles() {
            assert!(set.iter().all(|p| p.as_str() != "alerts.write"));
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), p);
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert!("alerts.delete".parse::<Permission>().is_err());
    }

    #[test]
    fn custom_profiles_cannot_redefine_builtins_or_invent_permissions() {
        let mut c = BTreeMap::new();
        c.insert("owner".to_owned(), vec!["audit.read".to_owned()]);
        assert_eq!(
            Profiles::new(&c),
            Err(ProfileError::RedefinesBuiltin("owner".into()))
        );
        let mut c = BTreeMap::new();
        c.insert("auditor".to_owned(), vec!["audit.rule".to_owned()]);
        assert!(matches!(
            Profiles::new(&c),
            Err(ProfileError::UnknownPermission { .. })
        ));
        let mut c = BTreeMap::new();
        c.insert(
            "auditor".to_owned(),
            vec!["audit.read".to_owned(), "audit.export".to_owned()],
        );
        let p = Profiles::new(&c).unwrap();
        assert_eq!(
            p.get("auditor"),
            Some(PermissionSet::of(&[AuditRead, AuditExport]))
        );
    }

    #[test]
    fn acting_under_a_lower_profile() {
        let p = Profiles::builtin();
        let owner = p.get("owner").unwrap();
        assert_eq!(
            p.effective(owner, Some("reader")),
            p.get("reader")
                .ok_or(ActAsError::UnknownProfile(String::new()))
        );
        assert_eq!(p.effective(owner, None), Ok(owner));
        assert_eq!(
            p.effective(owner, Some("tenant-admin")),
            Err(ActAsError::NotASubset {
                profile: "tenant-admin".into(),
                missing: JitExport
            })
        );
        assert!(matches!(
            p.effective(owner, Some("nobody")),
            Err(ActAsError::UnknownProfile(_))
        ));
        // A union of grants lets the caller act as either part.
        let held = p.get("reader").unwrap().union(p.get("ingest").unwrap());
        assert_eq!(
            p.effective(held, Some("ingest")),
            Ok(PermissionSet::of(&[AlertsIngest]))
        );
        assert_eq!(
            p.actable(held),
            vec!["ingest".to_owned(), "reader".to_owned()]
        );
    }

    #[test]
    fn read_only_marker() {
        let p = Profiles::builtin();
        assert!(!p.get("reader").unwrap().can_write());
        assert!(p.get("contributor").unwrap().can_write());
    }
}

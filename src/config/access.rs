//! Who may do what: `[[tenant]]`, `[[grant]]` and `[profile.NAME]`, and the check that a
//! grant's account name could match someone.

use serde::Deserialize;

use super::ConfigError;
use crate::names::TenantId;

/// One `[[tenant]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant id used in paths (`[a-z0-9][a-z0-9-]{0,62}`).
    pub id: TenantId,
    /// The display name.
    pub name: String,
}

/// One `[[grant]]`: a profile for a user, uid or group, in one tenant or all (`*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// A user name from the password database.
    pub user: Option<String>,
    /// A numeric uid.
    pub uid: Option<u32>,
    /// A group name: every member (primary or supplementary) holds the grant.
    pub group: Option<String>,
    /// A tenant id, or `*` for every tenant.
    pub tenant: String,
    /// The profile granted.
    pub role: String,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee<'a> {
    /// A user by name.
    User(&'a str),
    /// A user by uid.
    Uid(u32),
    /// Every member of a group.
    Group(&'a str),
}

impl GrantConfig {
    /// Who the grant is for (validation guarantees exactly one is set).
    pub fn grantee(&self) -> Option<Grantee<'_>> {
        match (&self.user, self.uid, &self.group) {
            (Some(u), None, None) => Some(Grantee::User(u)),
            (None, Some(u), None) => Some(Grantee::Uid(u)),
            (None, None, Some(g)) => Some(Grantee::Group(g)),
            _ => None,
        }
    }

    /// Whether the grant applies in `tenant`.
    pub fn covers(&self, tenant: &str) -> bool {
        self.tenant == "*" || self.tenant == tenant
    }
}

/// One `[profile.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Permission names (`audit.read`, …).
    pub permissions: Vec<String>,
}

/// Refuses a grant's `user` or `group` (`key`) that no account can have, so a grant that
/// matches nobody is an error rather than a silent no-op: empty, `*` (there is no wildcard
/// for who; only `tenant` takes `*`), a glob character, whitespace, a control character,
/// `:` (the password and group files' separator) or a leading `-`.
pub(super) fn check_grantee_name(n: usize, key: &str, name: &str) -> Result<(), ConfigError> {
    let why = if name.is_empty() {
        "is empty"
    } else if name == "*" {
        "matches nobody: `*` is not a wildcard here (only `tenant` takes `*`); name one account, or use `group` for many users"
    } else if name.contains(['*', '?']) {
        "holds a wildcard, which is not supported: name one account, or use `group` for many users"
    } else if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ':')
    {
        "holds a space, a control character or `:`, which no account name can"
    } else if name.starts_with('-') {
        "starts with `-`, which no account name can"
    } else {
        return Ok(());
    };
    Err(ConfigError::Invalid(format!("grant #{n}: `{key}` {why}")))
}

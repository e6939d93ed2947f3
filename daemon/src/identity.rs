//! Who is calling: the socket peer's credentials, resolved against the password and
//! group databases.
//!
//! Nothing a client *says* about itself is trusted: the uid and gid come from
//! `SO_PEERCRED` as the kernel recorded them at `connect()`, and the user name and group
//! names come from the system's databases. A uid with no password entry is still a
//! caller (named by its number); it simply matches no `user =` or `group =` grant.

use nix::unistd::{Gid, Group, Uid, User};

/// The caller of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The peer's uid from `SO_PEERCRED`.
    pub uid: u32,
    /// The peer's primary gid from `SO_PEERCRED`.
    pub gid: u32,
    /// The peer's pid, when the kernel reports one (for logs only).
    pub pid: Option<i32>,
    /// The user name, or the uid as text when the password database has none.
    pub user: String,
    /// Whether `user` came from the password database (a name grant can match it).
    pub named: bool,
    /// The names of every group the user is in (primary and supplementary).
    pub groups: Vec<String>,
}

impl Caller {
    /// Resolves a peer's credentials into a caller. Database lookups that fail leave
    /// the caller nameless and groupless rather than failing the connection.
    pub fn resolve(uid: u32, gid: u32, pid: Option<i32>) -> Caller {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let mut gids = vec![Gid::from_raw(gid)];
        if let Some(u) = &user
            && let Ok(name) = std::ffi::CString::new(u.name.clone())
            && let Ok(list) = nix::unistd::getgrouplist(&name, u.gid)
        {
            gids.extend(list);
        }
        gids.sort_by_key(|g| g.as_raw());
        gids.dedup();
        let groups = gids
            .into_iter()
            .filter_map(|g| Group::from_gid(g).ok().flatten().map(|g| g.name))
            .collect();
        Caller {
            uid,
            gid,
            pid,
            named: user.is_some(),
            user: user.map(|u| u.name).unwrap_or_else(|| uid.to_string()),
            groups,
        }
    }

    /// The daemon's own user, for work the daemon does by itself (timers, reloads).
    pub fn daemon() -> Caller {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        Caller::resolve(uid, gid, Some(std::process::id() as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_current_user_by_name_and_groups() {
        let me = Caller::daemon();
        assert_eq!(me.uid, nix::unistd::getuid().as_raw());
        assert!(me.named, "the test user has a password entry");
        let primary = Group::from_gid(nix::unistd::getgid())
            .unwrap()
            .unwrap()
            .name;
        assert!(me.groups.contains(&primary));
    }

    #[test]
    fn an_unknown_uid_is_named_by_its_number() {
        let c = Caller::resolve(3_999_999_999, 3_999_999_999, None);
        assert_eq!(c.user, "3999999999");
        assert!(!c.named);
        assert!(c.groups.is_empty());
    }
}

//! Who is calling: the socket peer's credentials, resolved against the password and
//! group databases, and kept fresh for as long as a connection stays open.
//!
//! Nothing a client *says* about itself is trusted: the uid and gid come from
//! `SO_PEERCRED` as the kernel recorded them at `connect()`, and the user name and group
//! names come from the system's databases. A uid with no password entry is still a
//! caller (named by its number); it simply matches no `user =` or `group =` grant. A
//! lookup that *fails* (the databases cannot be read: `EMFILE`, `EIO`, an NSS backend
//! down) is not the same as "no such user": it is an [`IdentityError`], answered 503,
//! never a caller quietly stripped of its name or groups.
//!
//! Group membership changes while a connection is open (`gpasswd -d`): an [`Identity`]
//! resolves its peer again when its last resolution is older than the refresh interval
//! (`[limits] identity_refresh`) or when a configuration has been put in force since.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::unistd::{Gid, Group, Uid, User};

/// Where user and group names come from. [`SystemDirectory`] asks the system (NSS);
/// tests put a failing one in its place, since making NSS fail for real is hard.
pub trait Directory: Send + Sync + std::fmt::Debug + 'static {
    /// The name and primary gid of `uid`; `Ok(None)` when the database has no entry.
    fn user(&self, uid: u32) -> Result<Option<(String, u32)>, Errno>;
    /// Every gid `user` is a member of, primary `gid` included.
    fn group_list(&self, user: &str, gid: u32) -> Result<Vec<u32>, Errno>;
    /// The name of `gid`; `Ok(None)` when the database has no entry.
    fn group_name(&self, gid: u32) -> Result<Option<String>, Errno>;
}

/// The system's password and group databases, through libc (and so NSS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemDirectory;

impl Directory for SystemDirectory {
    fn user(&self, uid: u32) -> Result<Option<(String, u32)>, Errno> {
        Ok(User::from_uid(Uid::from_raw(uid))?.map(|u| (u.name, u.gid.as_raw())))
    }

    fn group_list(&self, user: &str, gid: u32) -> Result<Vec<u32>, Errno> {
        // A name with a NUL byte cannot be in the database.
        let Ok(name) = std::ffi::CString::new(user) else {
            return Ok(vec![gid]);
        };
        // glibc's getgrouplist reports no error of its backends (it returns what it
        // found); the group-name lookups that follow read the same database and do.
        let list = nix::unistd::getgrouplist(&name, Gid::from_raw(gid))?;
        Ok(list.into_iter().map(Gid::as_raw).collect())
    }

    fn group_name(&self, gid: u32) -> Result<Option<String>, Errno> {
        Ok(Group::from_gid(Gid::from_raw(gid))?.map(|g| g.name))
    }
}

/// Why a peer's identity could not be resolved: a database could not be read. The
/// message names the lookup and the system's error (e.g. `EMFILE: Too many open files`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The password entry of a uid could not be read.
    #[error("the password database could not be read for uid {uid}: {errno}")]
    User {
        /// The uid looked up.
        uid: u32,
        /// The system's error.
        errno: Errno,
    },
    /// The group list of a user could not be read.
    #[error("the group list of user {user} could not be read: {errno}")]
    Groups {
        /// The user looked up.
        user: String,
        /// The system's error.
        errno: Errno,
    },
    /// The entry of a gid could not be read.
    #[error("the group database could not be read for gid {gid}: {errno}")]
    Group {
        /// The gid looked up.
        gid: u32,
        /// The system's error.
        errno: Errno,
    },
    /// The lookup took longer than the request may (an NSS backend that does not answer).
    #[error("the user and group lookup did not answer within {0:?}")]
    TimedOut(Duration),
    /// The lookup task itself failed (a panic in an NSS module, a shutting-down runtime).
    #[error("the identity lookup did not finish: {0}")]
    Task(String),
}

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
    /// Resolves a peer's credentials against the system's databases. A uid or gid the
    /// databases do not know is fine (no name); a database that cannot be read is an
    /// error.
    pub fn resolve(uid: u32, gid: u32, pid: Option<i32>) -> Result<Caller, IdentityError> {
        Caller::resolve_with(&SystemDirectory, uid, gid, pid)
    }

    /// [`Caller::resolve`] against `dir`.
    pub fn resolve_with(
        dir: &dyn Directory,
        uid: u32,
        gid: u32,
        pid: Option<i32>,
    ) -> Result<Caller, IdentityError> {
        let user = dir
            .user(uid)
            .map_err(|errno| IdentityError::User { uid, errno })?;
        let mut gids = vec![gid];
        if let Some((name, primary)) = &user {
            let list = dir
                .group_list(name, *primary)
                .map_err(|errno| IdentityError::Groups {
                    user: name.clone(),
                    errno,
                })?;
            gids.extend(list);
        }
        gids.sort_unstable();
        gids.dedup();
        let mut groups = Vec::with_capacity(gids.len());
        for g in gids {
            match dir.group_name(g) {
                Ok(Some(name)) => groups.push(name),
                Ok(None) => {}
                Err(errno) => return Err(IdentityError::Group { gid: g, errno }),
            }
        }
        Ok(Caller {
            uid,
            gid,
            pid,
            named: user.is_some(),
            user: user.map_or_else(|| uid.to_string(), |(name, _)| name),
            groups,
        })
    }

    /// The daemon's own user, for work the daemon does by itself (timers, reloads).
    pub fn daemon() -> Result<Caller, IdentityError> {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        Caller::resolve(uid, gid, i32::try_from(std::process::id()).ok())
    }
}

/// The last resolution of a peer, and when it was made.
#[derive(Debug)]
struct Resolved {
    /// The caller as resolved.
    caller: Arc<Caller>,
    /// When.
    at: Instant,
    /// The configuration generation in force then ([`crate::state::Shared::generation`]).
    generation: u64,
}

/// One connection's peer, resolved again whenever its resolution is stale: older than
/// the refresh interval, or made before the configuration in force now. Shared by the
/// connection's requests and any event stream it serves.
#[derive(Debug)]
pub struct Identity {
    /// The peer's uid, gid and pid from `SO_PEERCRED` (fixed for the connection).
    cred: (u32, u32, Option<i32>),
    /// The databases asked.
    directory: Arc<dyn Directory>,
    /// The last successful resolution, if any.
    last: Mutex<Option<Resolved>>,
}

impl Identity {
    /// The identity of a peer with these credentials, not resolved yet.
    pub fn new(directory: Arc<dyn Directory>, uid: u32, gid: u32, pid: Option<i32>) -> Self {
        Identity {
            cred: (uid, gid, pid),
            directory,
            last: Mutex::new(None),
        }
    }

    /// The peer's uid.
    pub fn uid(&self) -> u32 {
        self.cred.0
    }

    /// The caller as of now: the last resolution if it is younger than `refresh` and
    /// was made under configuration `generation`, else a fresh one (looked up off the
    /// async threads: NSS may go to LDAP or sssd). A failed lookup is returned as is and
    /// forgets the old resolution, so nothing is served on stale groups.
    pub async fn current(
        &self,
        refresh: Duration,
        generation: u64,
    ) -> Result<Arc<Caller>, IdentityError> {
        if let Ok(last) = self.last.lock()
            && let Some(r) = last.as_ref()
            && r.generation == generation
            && r.at.elapsed() < refresh
        {
            return Ok(Arc::clone(&r.caller));
        }
        let (uid, gid, pid) = self.cred;
        let dir = Arc::clone(&self.directory);
        let resolved =
            tokio::task::spawn_blocking(move || Caller::resolve_with(dir.as_ref(), uid, gid, pid))
                .await
                .map_err(|e| IdentityError::Task(e.to_string()))
                .and_then(|r| r);
        if let Ok(mut last) = self.last.lock() {
            *last = resolved.as_ref().ok().map(|c| Resolved {
                caller: Arc::new(c.clone()),
                at: Instant::now(),
                generation,
            });
            if let Some(r) = last.as_ref() {
                return Ok(Arc::clone(&r.caller));
            }
        }
        resolved.map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_current_user_by_name_and_groups() {
        let me = Caller::daemon().unwrap();
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
        let c = Caller::resolve(3_999_999_999, 3_999_999_999, None).unwrap();
        assert_eq!(c.user, "3999999999");
        assert!(!c.named);
        assert!(c.groups.is_empty());
    }

    /// A directory whose every lookup fails with one error.
    #[derive(Debug)]
    struct Failing(Option<Errno>, Option<Errno>, Option<Errno>);

    impl Directory for Failing {
        fn user(&self, uid: u32) -> Result<Option<(String, u32)>, Errno> {
            match self.0 {
                Some(e) => Err(e),
                None => Ok(Some((format!("u{uid}"), uid))),
            }
        }
        fn group_list(&self, _: &str, gid: u32) -> Result<Vec<u32>, Errno> {
            self.1.map_or(Ok(vec![gid, 7]), Err)
        }
        fn group_name(&self, gid: u32) -> Result<Option<String>, Errno> {
            self.2.map_or(Ok(Some(format!("g{gid}"))), Err)
        }
    }

    #[test]
    fn a_failed_lookup_is_an_error_naming_the_cause_not_a_nameless_caller() {
        let cases = [
            (
                Failing(Some(Errno::EMFILE), None, None),
                "password database could not be read for uid 5: EMFILE",
            ),
            (
                Failing(None, Some(Errno::EIO), None),
                "group list of user u5 could not be read: EIO",
            ),
            (
                Failing(None, None, Some(Errno::ENFILE)),
                "group database could not be read for gid 5: ENFILE",
            ),
        ];
        for (dir, want) in cases {
            let e = Caller::resolve_with(&dir, 5, 5, None).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        let ok = Caller::resolve_with(&Failing(None, None, None), 5, 5, None).unwrap();
        assert_eq!(ok.groups, ["g5", "g7"]);
    }
}

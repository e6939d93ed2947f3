//! What `steward demo` does with the global options: `--tenant` picks the demo tenant
//! the TUI opens on, `--as` the profile it acts under (checked against the demo's own
//! grants, so a profile the demo user cannot take is refused before anything starts),
//! and `--socket` is refused: the demo always runs its own private daemon in a fresh
//! temp dir, so a socket elsewhere cannot be honoured.
//!
//! Values from the environment (`STEWARD_TENANT`, `STEWARD_ROLE`, `STEWARD_SOCKET`) are
//! meant for the operator's real daemon: one the demo can honour is used, one it cannot
//! is set aside with a note on stderr rather than refused, so an exported variable does
//! not stop the demo from starting.

use steward::permissions::{PermissionSet, Profiles};

use super::START_TENANT;
use super::config::TENANTS;

/// Where an option's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    /// Typed on the command line.
    CommandLine,
    /// From the environment.
    Env,
    /// Not given (clap's default, or nothing).
    Default,
}

/// The global options as `steward demo` received them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// `--socket`, and where it came from.
    pub socket: Given,
    /// `--tenant`, and where it came from.
    pub tenant: (String, Given),
    /// `--as`, and where it came from.
    pub role: (Option<String>, Given),
}

/// What the demo's TUI opens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The demo tenant to open.
    pub tenant: String,
    /// The profile to act under; `None` acts with everything the demo grants.
    pub role: Option<String>,
    /// Values set aside, one line each, for stderr.
    pub notes: Vec<String>,
}

/// The demo's options from what was asked, or why they cannot be honoured.
pub fn resolve(asked: &Asked) -> Result<Options, String> {
    let mut notes = Vec::new();
    match asked.socket {
        Given::CommandLine => {
            return Err(
                "--socket does not apply: the demo runs its own private daemon in a \
                        temp dir (use `steward --socket PATH` for the TUI on another daemon)"
                    .to_owned(),
            );
        }
        Given::Env => {
            notes.push("ignoring $STEWARD_SOCKET: the demo runs its own private daemon".to_owned())
        }
        Given::Default => {}
    }
    let ids: Vec<&str> = TENANTS.iter().map(|(id, _, _)| *id).collect();
    let (tenant, given) = &asked.tenant;
    let tenant = match given {
        _ if ids.contains(&tenant.as_str()) => tenant.clone(),
        Given::CommandLine => {
            return Err(format!(
                "the demo has no tenant `{tenant}` (it has {})",
                ids.join(", ")
            ));
        }
        Given::Env => {
            notes.push(format!(
                "ignoring $STEWARD_TENANT={tenant}: the demo has {}",
                ids.join(", ")
            ));
            START_TENANT.to_owned()
        }
        Given::Default => START_TENANT.to_owned(),
    };
    let role = match &asked.role {
        (Some(role), given) if !role.is_empty() => {
            let may = actable(&tenant);
            if may.contains(role) {
                Some(role.clone())
            } else if *given == Given::Env {
                notes.push(format!(
                    "ignoring $STEWARD_ROLE={role}: in the demo's {tenant} you may act as {}",
                    may.join(", ")
                ));
                None
            } else {
                return Err(format!(
                    "cannot act as `{role}` in the demo's {tenant} (you may: {})",
                    may.join(", ")
                ));
            }
        }
        _ => None,
    };
    Ok(Options {
        tenant,
        role,
        notes,
    })
}

/// The profiles the demo user may act under in `tenant`.
fn actable(tenant: &str) -> Vec<String> {
    let profiles = Profiles::builtin();
    let held = TENANTS
        .iter()
        .filter(|(id, _, _)| *id == tenant)
        .flat_map(|(_, _, roles)| roles.iter())
        .filter_map(|r| profiles.get(r))
        .fold(PermissionSet::EMPTY, PermissionSet::union);
    profiles.actable(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(socket: Given, tenant: (&str, Given), role: (Option<&str>, Given)) -> Asked {
        Asked {
            socket,
            tenant: (tenant.0.to_owned(), tenant.1),
            role: (role.0.map(str::to_owned), role.1),
        }
    }

    #[test]
    fn nothing_given_opens_contoso_with_every_grant() {
        let o = resolve(&asked(
            Given::Default,
            ("default", Given::Default),
            (None, Given::Default),
        ))
        .unwrap();
        assert_eq!((o.tenant.as_str(), o.role), (START_TENANT, None));
        assert!(o.notes.is_empty());
    }

    #[test]
    fn tenant_and_profile_on_the_command_line_are_honoured_or_refused() {
        let o = resolve(&asked(
            Given::Default,
            ("northwind", Given::CommandLine),
            (Some("reader"), Given::CommandLine),
        ))
        .unwrap();
        assert_eq!(o.tenant, "northwind");
        assert_eq!(o.role.as_deref(), Some("reader"));

        let err = resolve(&asked(
            Given::Default,
            ("prod", Given::CommandLine),
            (None, Given::Default),
        ))
        .unwrap_err();
        assert!(
            err.contains("`prod`") && err.contains("contoso, fabrikam, northwind"),
            "{err}"
        );

        // fabrikam grants reader only: owner is more than the demo user holds there.
        let err = resolve(&asked(
            Given::Default,
            ("fabrikam", Given::CommandLine),
            (Some("owner"), Given::CommandLine),
        ))
        .unwrap_err();
        assert!(err.contains("`owner`") && err.contains("reader"), "{err}");
    }

    #[test]
    fn a_socket_on_the_command_line_is_refused_and_one_from_the_environment_noted() {
        let err = resolve(&asked(
            Given::CommandLine,
            ("default", Given::Default),
            (None, Given::Default),
        ))
        .unwrap_err();
        assert!(err.contains("--socket"), "{err}");
        let o = resolve(&asked(
            Given::Env,
            ("prod", Given::Env),
            (Some("nobody"), Given::Env),
        ))
        .unwrap();
        assert_eq!((o.tenant.as_str(), o.role), (START_TENANT, None));
        assert_eq!(o.notes.len(), 3, "{:?}", o.notes);
    }
}

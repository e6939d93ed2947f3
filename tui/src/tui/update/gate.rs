//! Permission gating: whether a key command is available to the acting profile on the
//! current tab, read from its [`Gate`] in the keymap's table. The footer hides what is
//! disabled, help lists what it needs, and a key pressed anyway is answered with a
//! toast and never becomes a request. The daemon still decides.

use steward::permissions::Permission;
use steward::resource::Resource;

use crate::tui::keymap::{Command, Gate};
use crate::tui::state::State;

/// Why a command is not available to the acting profile here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// The acting profile lacks this permission.
    Needs(Permission),
    /// The command does nothing on this tab.
    NotHere(&'static str),
    /// The command works only on this kind's tab.
    OnlyOn(Resource),
}

impl DisabledReason {
    /// The toast shown when `cmd` is pressed anyway.
    pub fn toast(self, s: &State, cmd: Command) -> String {
        match self {
            DisabledReason::Needs(p) => format!(
                "{}: the {} profile lacks {p}",
                cmd.describe(),
                s.session.profile_label()
            ),
            DisabledReason::NotHere(why) => format!("{}: {why}", cmd.describe()),
            DisabledReason::OnlyOn(kind) => {
                format!(
                    "{}: {} works on a {}",
                    cmd.describe(),
                    cmd.name(),
                    kind.singular()
                )
            }
        }
    }
}

/// The permissions a command needs somewhere (any one of them), for the help screen.
pub fn required(cmd: Command) -> Vec<Permission> {
    let mut perms: Vec<Permission> = match cmd.spec().gate {
        Gate::Always => Vec::new(),
        Gate::Write => Resource::ALL
            .into_iter()
            .filter_map(Resource::write_permission)
            .collect(),
        Gate::Export => Resource::ALL
            .into_iter()
            .filter_map(Resource::export_permission)
            .collect(),
        Gate::ActionOn(kind) => kind.action_permission().into_iter().collect(),
        Gate::On(kind) => vec![kind.read_permission()],
    };
    perms.dedup();
    perms
}

/// Whether `cmd` is unavailable on the current tab for the acting profile, and why.
pub fn disabled(s: &State, cmd: Command) -> Option<DisabledReason> {
    let perms = s.session.permissions();
    let need = |p: Permission| (!perms.contains(p)).then_some(DisabledReason::Needs(p));
    match cmd.spec().gate {
        Gate::Always => None,
        // A data-subject request is opened (not edited or deleted) under dsr.manage.
        Gate::Write if s.tab == Resource::Dsr && cmd == Command::New => {
            need(steward::permissions::Permission::DsrManage)
        }
        Gate::Write => match s.tab.write_permission() {
            None => Some(DisabledReason::NotHere("this kind is read-only")),
            Some(p) => need(p),
        },
        Gate::Export => match s.tab.export_permission() {
            None => Some(DisabledReason::NotHere("this kind has no export")),
            Some(p) => need(p),
        },
        Gate::ActionOn(kind) if s.tab != kind => Some(DisabledReason::OnlyOn(kind)),
        Gate::ActionOn(kind) => kind.action_permission().and_then(need),
        Gate::On(kind) if s.tab != kind => Some(DisabledReason::OnlyOn(kind)),
        Gate::On(kind) => need(kind.read_permission()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_permission_a_gate_can_ask_for() {
        assert_eq!(
            required(Command::Delete),
            vec![Permission::ContactsWrite, Permission::JitWrite]
        );
        assert_eq!(required(Command::Initiate), vec![Permission::JitRequest]);
        assert!(required(Command::Export).contains(&Permission::AuditExport));
        assert!(required(Command::Quit).is_empty());
    }
}

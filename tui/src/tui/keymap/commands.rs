//! The one table of key commands ([`COMMANDS`]) and what a row says: the [`Command`], its
//! name in the keys file, help text, footer label, default keys, help [`Group`] and
//! [`Gate`]. What it is not: the bindings in force (the [`super::Keymap`], which starts
//! from these defaults) or the handlers (`update::commands`).

use ratatui::crossterm::event::KeyCode;
use steward::resource::Resource;

use super::Key;

/// Something the operator can ask for with one key. The variants are in the order of
/// [`COMMANDS`] (a test checks it), which is the order of help and footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// This help.
    Help,
    /// Quit.
    Quit,
    /// Open the selected record's details.
    Open,
    /// Close what is open, clear the filter.
    Back,
    /// Filter the list.
    Filter,
    /// Alerts: cycle the severity shown (all, High, Medium, Low, Informational).
    Severity,
    /// Alerts: cycle the status shown (all, Active, InProgress, Resolved, Dismissed).
    Status,
    /// Create a record.
    New,
    /// Edit the selected record.
    Edit,
    /// Delete the selected record (asks first).
    Delete,
    /// Request JIT access under the selected policy.
    Initiate,
    /// Revoke the selected JIT request (asks first).
    Revoke,
    /// Export the kind to a file.
    Export,
    /// DSR: confirm a pending request (it runs; an erasure erases).
    DsrConfirm,
    /// DSR: reject a pending request, with a reason.
    DsrReject,
    /// DSR: extend a request's deadline once, with a reason.
    DsrExtend,
    /// DSR: download a completed export's bundle.
    DsrBundle,
    /// Copy the selected record as JSON (OSC 52).
    Copy,
    /// Copy one field of the selected record (picked from a list).
    CopyField,
    /// The `:` command line.
    CommandLine,
    /// Reload the list.
    Refresh,
    /// Cycle the sort order.
    Sort,
    /// Freeze or resume live updates.
    Freeze,
    /// Pick the tenant.
    Tenant,
    /// Pick the acting profile.
    Profile,
    /// Selection up one row.
    Up,
    /// Selection down one row.
    Down,
    /// First record.
    Top,
    /// Last record (follows cursors to the last page).
    Bottom,
    /// Half a screen up.
    HalfPageUp,
    /// Half a screen down.
    HalfPageDown,
    /// A screen up.
    PageUp,
    /// A screen down.
    PageDown,
    /// Next tab.
    NextTab,
    /// Previous tab.
    PrevTab,
}

/// What a command needs before it runs (the daemon still decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Nothing.
    Always,
    /// The tab's kind is editable and the profile holds its write permission.
    Write,
    /// The tab's kind has an export and the profile holds its export permission.
    Export,
    /// Only on this kind's tab, with its action permission.
    ActionOn(Resource),
    /// Only on this kind's tab; reading it is enough.
    On(Resource),
}

/// Where help lists a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// One per line, with what it needs.
    Action,
    /// Three to a line under "Moving".
    Move,
}

/// One row of [`COMMANDS`].
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The command.
    pub command: Command,
    /// Its name in the keys file (`half_page_up`).
    pub name: &'static str,
    /// What it does, in help.
    pub describe: &'static str,
    /// Its footer label; `None` keeps it out of the footer.
    pub footer: Option<&'static str>,
    /// Its default keys (the first is shown in the footer).
    pub keys: &'static [Key],
    /// Where help lists it.
    pub group: Group,
    /// What it needs.
    pub gate: Gate,
    /// It destroys something: asks first, and never sits on a Ctrl chord.
    pub destructive: bool,
}

/// A row with the common defaults: an action, always allowed, not destructive.
const fn spec(
    command: Command,
    name: &'static str,
    describe: &'static str,
    footer: Option<&'static str>,
    keys: &'static [Key],
) -> Spec {
    Spec {
        command,
        name,
        describe,
        footer,
        keys,
        group: Group::Action,
        gate: Gate::Always,
        destructive: false,
    }
}

impl Spec {
    const fn gate(self, gate: Gate) -> Spec {
        Spec { gate, ..self }
    }
    const fn moving(self) -> Spec {
        Spec {
            group: Group::Move,
            ..self
        }
    }
    const fn destructive(self) -> Spec {
        Spec {
            destructive: true,
            ..self
        }
    }
}

/// Every key command, in the order of help and footer, one row each.
#[rustfmt::skip]
pub const COMMANDS: [Spec; 35] = {
    use Command as C;
    use KeyCode as K;
    [
        spec(C::Help, "help", "this help", Some("help"), &[Key::ch('?')]),
        spec(C::Quit, "quit", "quit (ctrl-c quits from anywhere)", Some("quit"), &[Key::ch('q'), Key::ctrl('c')]),
        spec(C::Open, "open", "show the record's details", Some("details"), &[Key::code(K::Enter)]),
        spec(C::Back, "back", "close, clear the filter", None, &[Key::code(K::Esc)]),
        spec(C::Filter, "filter", "filter", Some("filter"), &[Key::ch('/')]),
        spec(C::Severity, "severity", "alerts: cycle the severity shown", Some("severity"), &[Key::ch('v')])
            .gate(Gate::On(Resource::Alerts)),
        spec(C::Status, "status", "alerts: cycle the status shown", Some("status"), &[Key::ch('a')])
            .gate(Gate::On(Resource::Alerts)),
        spec(C::New, "new", "new record", Some("new"), &[Key::ch('n')]).gate(Gate::Write),
        spec(C::Edit, "edit", "edit the record", Some("edit"), &[Key::ch('e')]).gate(Gate::Write),
        spec(C::Delete, "delete", "delete the record", Some("delete"), &[Key::ch('d')])
            .gate(Gate::Write).destructive(),
        spec(C::Initiate, "initiate", "request JIT access", Some("initiate"), &[Key::ch('i')])
            .gate(Gate::ActionOn(Resource::JitPolicies)),
        spec(C::Revoke, "revoke", "revoke the JIT request", Some("revoke"), &[Key::ch('R')])
            .gate(Gate::ActionOn(Resource::JitRequests)).destructive(),
        spec(C::Export, "export", "export to a file", Some("export"), &[Key::ch('x')])
            .gate(Gate::Export),
        spec(C::DsrConfirm, "dsr_confirm", "confirm the data-subject request", Some("confirm"), &[Key::ch('C')])
            .gate(Gate::ActionOn(Resource::Dsr)).destructive(),
        spec(C::DsrReject, "dsr_reject", "reject the data-subject request", Some("reject"), &[Key::ch('X')])
            .gate(Gate::ActionOn(Resource::Dsr)).destructive(),
        spec(C::DsrExtend, "dsr_extend", "extend its deadline (once)", Some("extend"), &[Key::ch('E')])
            .gate(Gate::ActionOn(Resource::Dsr)),
        spec(C::DsrBundle, "dsr_bundle", "download the export's bundle", Some("bundle"), &[Key::ch('b')])
            .gate(Gate::ActionOn(Resource::Dsr)),
        spec(C::Copy, "copy", "copy the record as JSON", Some("copy"), &[Key::ch('y')]),
        spec(C::CopyField, "copy_field", "copy one field of the record", None, &[Key::ch('c')]),
        spec(C::CommandLine, "command", "command line (:alerts, :tenant NAME, :export csv)",
            Some("cmd"), &[Key::ch(':')]),
        spec(C::Refresh, "refresh", "refresh", Some("refresh"), &[Key::ch('r')]),
        spec(C::Sort, "sort", "cycle the sort order", None, &[Key::ch('s')]),
        spec(C::Freeze, "freeze", "freeze / resume live updates", Some("freeze"), &[Key::ch('f')]),
        spec(C::Tenant, "tenant", "pick the tenant", Some("tenant"), &[Key::ch('t')]),
        spec(C::Profile, "profile", "pick the acting profile", Some("profile"), &[Key::ch('p')]),
        spec(C::Up, "up", "move up", None, &[Key::ch('k'), Key::code(K::Up)]).moving(),
        spec(C::Down, "down", "move down", None, &[Key::ch('j'), Key::code(K::Down)]).moving(),
        spec(C::Top, "top", "go to the first record", None, &[Key::ch('g'), Key::code(K::Home)]).moving(),
        spec(C::Bottom, "bottom", "go to the last record", None, &[Key::ch('G'), Key::code(K::End)]).moving(),
        spec(C::HalfPageUp, "half_page_up", "half a page up", None, &[Key::ctrl('u')]).moving(),
        spec(C::HalfPageDown, "half_page_down", "half a page down", None, &[Key::ctrl('d')]).moving(),
        spec(C::PageUp, "page_up", "page up", None, &[Key::code(K::PageUp)]).moving(),
        spec(C::PageDown, "page_down", "page down", None, &[Key::code(K::PageDown)]).moving(),
        spec(C::NextTab, "next_tab", "next tab", None, &[Key::code(K::Tab), Key::code(K::Right)]).moving(),
        spec(C::PrevTab, "prev_tab", "previous tab", None, &[Key::code(K::BackTab), Key::code(K::Left)]).moving(),
    ]
};

impl Command {
    /// Every command, in help order.
    pub fn all() -> impl Iterator<Item = Command> {
        COMMANDS.iter().map(|s| s.command)
    }

    /// Its row in [`COMMANDS`].
    pub fn spec(self) -> &'static Spec {
        // The variants are declared in the table's order (checked by a test).
        &COMMANDS[self as usize]
    }

    /// The name used in the keys file.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// What the command does, for the help screen.
    pub fn describe(self) -> &'static str {
        self.spec().describe
    }

    /// Whether the command destroys something (never on a Ctrl chord).
    pub fn destructive(self) -> bool {
        self.spec().destructive
    }

    pub(super) fn from_name(s: &str) -> Option<Command> {
        Command::all().find(|c| c.name() == s)
    }
}

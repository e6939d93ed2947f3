//! Everything the TUI knows, in one [`State`]: the session (tenants, acting profile),
//! the connection, the current tab's window of records, the open [`Modal`] and the toast.
//!
//! Only [`crate::tui::update`] changes it; drawing reads it. No I/O happens here. The
//! window ([`ListView`]) holds a few pages of the current list around the selection,
//! anchored by record id, with the `nextLink` of every page seen so that going back up
//! re-fetches a page instead of keeping the whole kind in memory.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;
use steward::permissions::{Permission, PermissionSet, Profiles};
use steward::wire::TenantInfo;
use tui_input::Input;

use super::form::{ContactForm, InitiateForm, TextArea};
use steward::resource::Resource;

use super::detail::DetailView;
use super::dsr::{DsrForm, ReasonFor};
use super::export::Clipboard;
use super::keymap::Keymap;
use super::overview::Overview;
use super::theme::Theme;
use crate::export_file::ExportFormat;

/// How many pages the window keeps loaded at most.
pub const MAX_PAGES: usize = 3;

/// How many ticks (250 ms) a toast stays.
pub const TOAST_TICKS: u32 = 16;

/// The whole state of the TUI.
#[derive(Debug)]
pub struct State {
    /// Which keys run which commands.
    pub keymap: Keymap,
    /// Tenants and the acting profile.
    pub session: Session,
    /// How the daemon's socket is doing.
    pub conn: Conn,
    /// The tab shown: one kind of record.
    pub tab: Resource,
    /// The window of the tab's records.
    pub list: ListView,
    /// The one popup open, if any.
    pub modal: Option<Modal>,
    /// A short message at the bottom.
    pub toast: Option<Toast>,
    /// Live updates paused (`f`).
    pub frozen: bool,
    /// The spinner's frame, advanced by ticks while something is loading.
    pub spinner: usize,
    /// The colours.
    pub theme: Theme,
    /// Records per page asked of the daemon (`?limit=`).
    pub page_size: usize,
    /// Table rows that fit on screen (from the last resize), for page moves.
    pub view_rows: usize,
    /// The terminal's size (columns, rows) at the last resize, for popups' scroll bounds.
    pub size: (u16, u16),
    /// The source of request generations (answers to older requests are dropped).
    pub next_gen: u64,
    /// Set by `update` when the screen must be drawn again.
    pub dirty: bool,
    /// The running export, if any.
    pub export: Option<ExportProgress>,
    /// The filter before `/` was opened: `esc` puts it back (the filter applies as
    /// it is typed).
    pub filter_before: Option<String>,
    /// `:` lines run, oldest first (↑/↓ in the command line).
    pub history: Vec<String>,
    /// The overview is shown instead of the tab's table.
    pub on_overview: bool,
    /// The overview's data, once loaded.
    pub overview: Option<Box<Overview>>,
    /// A key was pressed since the session opened (the overview then no longer takes
    /// over the screen when its data arrives).
    pub touched: bool,
    /// The zone tables show times in (`STEWARD_TZ`, else the system's; UTC until
    /// [`super::run_async`] sets it, so tests draw the same everywhere).
    pub zone: jiff::tz::TimeZone,
    /// The audit chain's last check (`:verify`), for the overview.
    pub chain: Option<steward::wire::VerifyReport>,
    /// How OSC 52 copies are sent (plain, or wrapped for tmux passthrough).
    pub clipboard: Clipboard,
}

/// Tenants the caller holds grants in, and which one and which profile it acts under.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The caller's user name (from `/v1/whoami`).
    pub user: String,
    /// `/v1/tenants`: every tenant with a grant.
    pub tenants: Vec<TenantInfo>,
    /// The tenant shown; `None` until the session loaded.
    pub tenant: Option<String>,
    /// The profile acted under (`X-Steward-Role`); `None` acts with everything held.
    pub role: Option<String>,
    /// The session has been loaded once.
    pub loaded: bool,
}

impl Session {
    /// The current tenant's entry.
    pub fn tenant_info(&self) -> Option<&TenantInfo> {
        let t = self.tenant.as_deref()?;
        self.tenants.iter().find(|i| i.id == t)
    }

    /// What the acting profile may do in the current tenant. A built-in profile is known
    /// here; a custom one is not, so the held set is used and the daemon decides.
    pub fn permissions(&self) -> PermissionSet {
        let Some(info) = self.tenant_info() else {
            return PermissionSet::EMPTY;
        };
        match self
            .role
            .as_deref()
            .and_then(|r| Profiles::builtin().get(r))
        {
            Some(profile) => profile
                .iter()
                .filter(|p| info.permissions.contains(*p))
                .collect(),
            None => info.permissions,
        }
    }

    /// The acting profile as shown in the header.
    pub fn profile_label(&self) -> String {
        match (&self.role, self.tenant_info()) {
            (Some(r), _) => r.clone(),
            (None, Some(info)) => info.profiles.join("+"),
            (None, None) => "-".into(),
        }
    }

    /// Whether `p` is held by the acting profile.
    pub fn can(&self, p: Permission) -> bool {
        self.permissions().contains(p)
    }
}

/// The connection to the daemon, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    /// Not yet answered.
    Connecting,
    /// The events stream is open.
    Connected,
    /// Lost; the next attempt is in this many seconds.
    Reconnecting {
        /// Seconds until the next attempt.
        in_secs: u64,
    },
    /// The socket cannot be reached (with why).
    Unreachable(String),
}

/// A window of one list: some consecutive pages around the selection.
#[derive(Debug, Clone, Default)]
pub struct ListView {
    /// `links[i]` fetches page `i`; holds the link past the last loaded page when known.
    pub links: Vec<String>,
    /// The index of the first loaded page.
    pub first: usize,
    /// The loaded pages, consecutive from `first`.
    pub pages: VecDeque<Vec<Value>>,
    /// The selected row among the visible ones.
    pub selected: usize,
    /// The first visible row drawn (kept so the selection moves inside the screen).
    pub offset: usize,
    /// The id of the selected record: the selection follows it across reloads.
    pub anchor: Option<String>,
    /// The generation of the list fetch in flight, if any.
    pub loading: Option<u64>,
    /// What the fetch in flight is for.
    pub pending: Option<Target>,
    /// The applied filter (`q=` on the server for alerts, the loaded window elsewhere).
    pub filter: String,
    /// Alerts: only this severity (`?severity=`, one of `steward::model::alert::SEVERITIES`).
    pub severity: Option<&'static str>,
    /// Alerts: only this status (`?status=`, one of `steward::model::alert::STATUSES`).
    pub status: Option<&'static str>,
    /// The daemon's order of the list: an index into [`Resource::orders`] of the tab (0,
    /// its default, is not sent; the others go as `?orderby=`).
    pub order: usize,
    /// Change events arrived: the next tick refreshes once (after the load in flight).
    pub stale: bool,
    /// The last list error.
    pub error: Option<String>,
    /// At least one answer has arrived.
    pub loaded: bool,
    /// The visible rows (indices into the loaded records, after the client-side filter),
    /// computed once per change by [`State::reindex`].
    visible: Vec<usize>,
}

/// Where the selection goes when a fetched page arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The first row (a new list, `g`).
    First,
    /// The last row (`G`).
    Last,
    /// The anchored record (refresh), or the nearest row when it is gone.
    Anchor,
    /// Pages added after the window (scrolling down).
    Append,
    /// A page added before the window (scrolling up).
    Prepend,
}

impl ListView {
    /// Every loaded record, in daemon order.
    pub fn rows(&self) -> impl Iterator<Item = &Value> {
        self.pages.iter().flatten()
    }

    /// Whether the window holds the list's last page.
    pub fn at_end(&self) -> bool {
        self.links.len() <= self.first + self.pages.len()
    }

    /// The link of the page after the window, if there is one.
    pub fn next_link(&self) -> Option<&String> {
        self.links.get(self.first + self.pages.len())
    }
}

/// The one popup open.
#[derive(Debug)]
pub enum Modal {
    /// `?`: keys and what the profile lacks.
    Help {
        /// First line shown.
        scroll: u16,
    },
    /// `Enter`: the whole record as pretty JSON, wrapped, searchable.
    Detail(Box<DetailView>),
    /// A destructive intent awaiting confirmation; focus starts on Cancel.
    Confirm {
        /// What will happen.
        intent: Intent,
        /// Whether the confirm button (not Cancel) has focus.
        on_confirm: bool,
    },
    /// `:` command line.
    CommandLine(Input),
    /// `/` filter being typed.
    Filter(Input),
    /// `t` / `p`: pick a tenant or profile.
    Picker {
        /// Which.
        kind: PickerKind,
        /// The choices.
        items: Vec<String>,
        /// The highlighted one.
        selected: usize,
    },
    /// `n`/`e` on contacts.
    ContactForm(Box<ContactForm>),
    /// `n`/`e` on JIT policies: the JSON in a text area.
    PolicyEditor(Box<PolicyEditor>),
    /// `i` on a JIT policy.
    Initiate(Box<InitiateForm>),
    /// A 412: what was sent and the newer version on the daemon.
    Conflict {
        /// The record's title.
        title: String,
        /// What we tried to save.
        mine: String,
        /// What the daemon has now.
        theirs: String,
        /// First line shown.
        scroll: u16,
    },
    /// `x`: format and path.
    Export(Box<ExportForm>),
    /// `n` on the DSR tab: open a data-subject request.
    DsrForm(Box<DsrForm>),
    /// `X`/`E` on a data-subject request: the reason to record.
    Reason {
        /// Reject or extend.
        action: ReasonFor,
        /// The request id.
        id: String,
        /// The reason typed.
        input: Input,
    },
    /// `b` on a data-subject request: where its bundle goes.
    Bundle {
        /// The request id.
        id: String,
        /// The file (created 0600).
        path: Input,
    },
}

/// Which picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    /// Tenants.
    Tenant,
    /// Profiles to act under.
    Profile,
    /// A field of the selected record to copy (`path = value` items).
    Field,
}

/// A destructive action asked for, not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Delete a record.
    Delete {
        /// Its kind.
        kind: Resource,
        /// Its name.
        name: String,
        /// The etag loaded, sent as `If-Match`.
        etag: Option<String>,
    },
    /// Revoke a JIT request.
    Revoke {
        /// The request id.
        id: String,
    },
    /// Confirm a data-subject request (an erasure cannot be undone).
    DsrConfirm {
        /// The request id.
        id: String,
        /// `export` or `erase`.
        kind: String,
    },
}

impl Intent {
    /// The confirmation's question, naming the record.
    pub fn question(&self) -> String {
        match self {
            Intent::Delete { kind, name, .. } => format!("Delete {} `{name}`?", kind.singular()),
            Intent::Revoke { id } => format!("Revoke JIT request `{id}`?"),
            Intent::DsrConfirm { id, kind } if kind == "erase" => format!(
                "Confirm erasure request `{id}`? It erases the person's records now; it cannot be undone."
            ),
            Intent::DsrConfirm { id, kind } => {
                format!("Confirm {kind} request `{id}`? It runs now.")
            }
        }
    }
}

/// The JIT policy editor: the policy's JSON, editable.
#[derive(Debug)]
pub struct PolicyEditor {
    /// The kind edited: JIT policies, or any kind whose edit came back from `$EDITOR`
    /// and was kept (not JSON, or refused by the daemon).
    pub kind: Resource,
    /// The policy name (typed for a new one).
    pub name: Input,
    /// Whether the name is editable (new policy).
    pub new: bool,
    /// The etag loaded.
    pub etag: Option<String>,
    /// The JSON text.
    pub text: TextArea,
    /// Focus on the name (true) or the text.
    pub on_name: bool,
    /// Errors from the daemon or the JSON parser, by field path.
    pub errors: BTreeMap<String, String>,
    /// A save is in flight.
    pub saving: bool,
}

/// The export modal.
#[derive(Debug)]
pub struct ExportForm {
    /// The kind exported.
    pub kind: Resource,
    /// The format chosen.
    pub format: ExportFormat,
    /// The path to write (relative to the directory `steward` runs in; the dialog shows
    /// it absolute).
    pub path: Input,
    /// The view's filters the export applies (the daemon's list parameters).
    pub filters: Vec<(&'static str, String)>,
    /// What the file will hold, in words ("alerts with severity High", "every contact").
    pub scope: String,
}

/// A running export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportProgress {
    /// The file written.
    pub path: String,
    /// Bytes written so far.
    pub bytes: u64,
    /// The response's length, when the daemon sent one.
    pub total: Option<u64>,
}

/// A short message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    /// The text.
    pub text: String,
    /// Shown as an error.
    pub error: bool,
    /// Ticks left.
    pub ttl: u32,
}

impl State {
    /// A fresh state before the session loaded.
    pub fn new(keymap: Keymap, tenant: Option<String>, role: Option<String>) -> State {
        State {
            keymap,
            session: Session {
                tenant,
                role,
                ..Session::default()
            },
            conn: Conn::Connecting,
            tab: Resource::Contacts,
            list: ListView::default(),
            modal: None,
            toast: None,
            frozen: false,
            spinner: 0,
            theme: Theme {
                color: true,
                light: false,
            },
            page_size: 100,
            view_rows: 15,
            size: (80, 24),
            next_gen: 1,
            dirty: true,
            export: None,
            clipboard: Clipboard::default(),
            chain: None,
            on_overview: false,
            filter_before: None,
            history: Vec::new(),
            overview: None,
            touched: false,
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// The tabs the acting profile may read, in order.
    ///
    /// Before the session has loaded every tab is shown, so the very first frame
    /// already has the whole tab bar (the operator sees where things are while the
    /// daemon answers); tabs the profile cannot read drop out once it is known.
    pub fn tabs(&self) -> Vec<Resource> {
        if !self.session.loaded {
            return Resource::ALL.to_vec();
        }
        let perms = self.session.permissions();
        Resource::ALL
            .into_iter()
            .filter(|t| perms.contains(t.read_permission()))
            .collect()
    }

    /// The visible rows: indices into the loaded records, after the client-side filter
    /// (as of the last [`State::reindex`]); the daemon orders them.
    pub fn visible(&self) -> &[usize] {
        &self.list.visible
    }

    /// Recomputes [`State::visible`]; `update` calls it whenever the loaded records, the
    /// filter or the tab change, so drawing and each key read it for free.
    pub fn reindex(&mut self) {
        let rows: Vec<&Value> = self.list.rows().collect();
        let needle = self.list.filter.to_lowercase();
        let idx: Vec<usize> = (0..rows.len())
            .filter(|&i| {
                self.tab.server_filter()
                    || needle.is_empty()
                    || rows[i].to_string().to_lowercase().contains(&needle)
            })
            .collect();
        self.list.visible = idx;
    }

    /// The `?orderby=` the list is asked in, when not the tab's default order.
    pub fn orderby(&self) -> Option<&'static str> {
        self.tab
            .orders()
            .get(self.list.order)
            .copied()
            .filter(|_| self.list.order > 0)
    }

    /// The selected record.
    pub fn selected(&self) -> Option<&Value> {
        let i = *self.list.visible.get(self.list.selected)?;
        self.list.rows().nth(i)
    }

    /// Shows a toast.
    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toast = Some(Toast {
            text: text.into(),
            error,
            ttl: TOAST_TICKS,
        });
    }

    /// A fresh request generation.
    pub fn gen_next(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }
}

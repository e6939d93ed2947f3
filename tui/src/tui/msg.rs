//! The protocol between the UI and the backend task: a [`Request`] asks, a [`Msg`]
//! answers.
//!
//! Both are plain data so that `update` can be tested by feeding it `Msg`s and reading
//! the `Request`s it returns, without a socket. A request says what is wanted (delete
//! this contact, with this etag), never how: methods, paths and headers are the
//! backend's, and every path comes from `steward::client::paths`.

use std::path::PathBuf;

use serde_json::Value;
use steward::resource::Resource;
use steward::wire::{ErrorDetail, Event, TenantInfo, VerifyReport};

use super::dsr::ReasonFor;
use super::overview::Overview;
use super::state::Conn;
use crate::export_file::ExportFormat;

/// A request for the backend task. Requests about records act in the tenant of the
/// last [`Request::SetSession`].
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Load `/v1/whoami` and `/v1/tenants`.
    LoadSession,
    /// Act in `tenant` under `role` from now on (events stream and `X-Steward-Role`).
    SetSession {
        /// The tenant to follow events of.
        tenant: Option<String>,
        /// The profile to act under.
        role: Option<String>,
    },
    /// Fetch `count` pages from `link` (or every page to the end when `to_end`), keeping
    /// the last `keep`.
    Pages {
        /// The request generation, echoed back.
        generation: u64,
        /// The index of the page `link` fetches.
        start_index: usize,
        /// The first page's path (built by `steward::client::paths`, or a `nextLink`).
        link: String,
        /// How many pages to follow.
        count: usize,
        /// Follow `nextLink` to the last page.
        to_end: bool,
        /// How many of the fetched pages to send back (the last ones).
        keep: usize,
    },
    /// Fetch the daemon's version of a record we failed to save (a 412), to show it
    /// beside ours.
    Newer {
        /// The kind.
        kind: Resource,
        /// The record's name.
        name: String,
        /// What we tried to save.
        mine: Value,
    },
    /// A change to a record.
    Change(Change),
    /// Stream a kind's export to a file.
    Export {
        /// The kind.
        kind: Resource,
        /// The format.
        format: ExportFormat,
        /// The file to write (created 0600, replaced only once complete).
        file: PathBuf,
        /// The list's filters of the view (`severity`, `status`, `q`), so the file holds
        /// what the screen shows; empty for the whole kind.
        filters: Vec<(&'static str, String)>,
    },
    /// Download a completed export request's bundle to a file (0600, whole or nothing).
    Bundle {
        /// The request id.
        id: String,
        /// The file.
        file: PathBuf,
    },
    /// Load the overview of the last `days` days.
    Overview {
        /// 30 or 90.
        days: u32,
        /// Alert counts are asked for only when the profile may read alerts.
        alerts: bool,
    },
    /// Check the tenant's audit chain (`:verify`).
    Verify,
    /// Find the records naming a person (`:subject alice@contoso.com`).
    Subject {
        /// The identifier's kind: `email`, `phone`, `ip`, `user` or `host`.
        key: &'static str,
        /// The identifier.
        value: String,
    },
    /// Stop fetching pages (the list fetch in flight is no longer wanted).
    CancelPages,
    /// Stop the running export; its temp file goes, an existing file stays untouched.
    CancelExport,
}

/// A change the UI asked for, echoed in its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Create or replace a record.
    Save {
        /// The kind.
        kind: Resource,
        /// Its name.
        name: String,
        /// The record.
        body: Value,
        /// The etag loaded (`If-Match`); `None` for a new record.
        etag: Option<String>,
        /// A new record: sent with `If-None-Match: *`, so a name already taken is a 412
        /// ("already exists") and never a silent overwrite.
        create: bool,
    },
    /// Delete a record.
    Delete {
        /// The kind.
        kind: Resource,
        /// Its name.
        name: String,
        /// The etag loaded (`If-Match`).
        etag: Option<String>,
    },
    /// Request JIT access under a policy.
    Initiate {
        /// The policy.
        policy: String,
        /// The request (VMs, ports, justification).
        body: Value,
    },
    /// End a JIT request now.
    Revoke {
        /// The request id.
        id: String,
    },
    /// Open a data-subject request (`{"type", "subject"}`).
    DsrOpen {
        /// The request.
        body: Value,
    },
    /// Confirm a pending data-subject request, which starts it.
    DsrConfirm {
        /// The request id.
        id: String,
    },
    /// Reject a pending data-subject request, or extend one's deadline, with a reason.
    DsrReason {
        /// The request id.
        id: String,
        /// Reject or extend.
        action: ReasonFor,
        /// Why (kept in the request, never in the audit log).
        reason: String,
    },
}

impl Change {
    /// What it changes, for messages (`security contact `default``).
    pub fn what(&self) -> String {
        match self {
            Change::Save { kind, name, .. } | Change::Delete { kind, name, .. } => {
                format!("{} `{name}`", kind.singular())
            }
            Change::Initiate { policy, .. } => format!("JIT access under `{policy}`"),
            Change::Revoke { id } => format!("JIT request `{id}`"),
            Change::DsrOpen { .. } => "a data-subject request".to_owned(),
            Change::DsrConfirm { id } | Change::DsrReason { id, .. } => {
                format!("data-subject request `{id}`")
            }
        }
    }

    /// What it did, once done.
    pub fn done(&self) -> &'static str {
        match self {
            Change::Save { .. } => "saved",
            Change::Delete { .. } => "deleted",
            Change::Initiate { .. } => "requested",
            Change::Revoke { .. } => "revoked",
            Change::DsrOpen { .. } => "opened (it waits for a confirmation)",
            Change::DsrConfirm { .. } => "confirmed (it runs now)",
            Change::DsrReason {
                action: ReasonFor::Reject,
                ..
            } => "rejected",
            Change::DsrReason {
                action: ReasonFor::Extend,
                ..
            } => "extended",
        }
    }
}

/// An error the daemon answered (or the transport met), for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status; `None` when the daemon could not be reached.
    pub status: Option<u16>,
    /// The error body (`message` holds the transport error when unreachable).
    pub error: ErrorDetail,
}

impl Failure {
    /// A failure without an HTTP answer.
    pub fn transport(message: impl Into<String>) -> Failure {
        Failure {
            status: None,
            error: ErrorDetail {
                code: "Unreachable".into(),
                message: message.into(),
                target: None,
                details: Vec::new(),
            },
        }
    }

    /// The failure as one line (`bad address (400)`).
    pub fn text(&self) -> String {
        match self.status {
            Some(code) => format!("{} ({code})", self.error.message),
            None => self.error.message.clone(),
        }
    }
}

/// An answer from the backend task.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The session: the caller's user name and its tenants.
    Session(Result<(String, Vec<TenantInfo>), Failure>),
    /// Pages of a list.
    Pages {
        /// The generation of the [`Request::Pages`].
        generation: u64,
        /// The index of the first link.
        start_index: usize,
        /// The link of every page fetched, in order.
        links: Vec<String>,
        /// The last `keep` pages fetched.
        pages: Vec<Vec<Value>>,
        /// The last page's `nextLink`.
        next: Option<String>,
    },
    /// A list fetch failed.
    PagesFailed {
        /// The generation of the [`Request::Pages`].
        generation: u64,
        /// Why.
        failure: Failure,
    },
    /// The answer to a [`Request::Newer`].
    Newer {
        /// The kind.
        kind: Resource,
        /// The record's name.
        name: String,
        /// What we tried to save.
        mine: Value,
        /// The daemon's version, or why not.
        result: Result<Value, Failure>,
    },
    /// A change's outcome.
    Written {
        /// The change.
        change: Change,
        /// Ok, or why not.
        result: Result<(), Failure>,
    },
    /// The events stream's state.
    Conn(Conn),
    /// A change event.
    Event(Event),
    /// Export progress.
    ExportProgress {
        /// Bytes written.
        bytes: u64,
        /// The body length when known.
        total: Option<u64>,
    },
    /// Export finished.
    ExportDone {
        /// The file.
        file: PathBuf,
        /// Records written.
        records: u64,
    },
    /// The overview's data.
    Overview(Box<Overview>),
    /// The audit chain's check.
    Verified(Result<VerifyReport, Failure>),
    /// The records naming a person: `(kind, id, field)` per hit.
    Subjects {
        /// What was searched, for the title (`email alice@contoso.com`).
        what: String,
        /// The hits, or why not.
        result: Result<Vec<(String, String, String)>, Failure>,
    },
    /// A bundle was written whole.
    BundleDone {
        /// The file.
        file: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// Export failed (nothing is left behind; a file that was there is untouched).
    ExportFailed(Failure),
}

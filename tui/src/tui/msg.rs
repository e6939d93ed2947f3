//! The protocol between the UI and the backend task: [`Cmd`] asks, [`Msg`] answers.
//!
//! Both are plain data so that `update` can be tested by feeding it `Msg`s and reading
//! the `Cmd`s it returns, without a socket.

use std::path::PathBuf;

use serde_json::Value;
use steward::wire::{ErrorDetail, Event, TenantInfo};

use super::kinds::Tab;
use super::state::Conn;

/// A request for the backend task.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
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
        /// The first page's path.
        link: String,
        /// How many pages to follow.
        count: usize,
        /// Follow `nextLink` to the last page.
        to_end: bool,
        /// How many of the fetched pages to send back (the last ones).
        keep: usize,
    },
    /// Fetch one record (a 412's newer version).
    Record {
        /// Why.
        purpose: RecordPurpose,
        /// Its path.
        path: String,
    },
    /// A change: PUT, DELETE or POST.
    Write {
        /// What it is, echoed back.
        op: Op,
        /// `PUT`, `DELETE` or `POST`.
        method: http::Method,
        /// The path.
        path: String,
        /// The JSON body.
        body: Option<Value>,
        /// The etag loaded, sent as `If-Match`.
        etag: Option<String>,
    },
    /// Stream an export to a file.
    Export {
        /// The API path with `?format=`.
        path: String,
        /// The file to write (created 0600).
        file: PathBuf,
        /// `json`, `ndjson` or `csv` (for counting records).
        format: String,
    },
}

/// Why a single record is fetched.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordPurpose {
    /// Show it beside what we tried to save, after a 412.
    Conflict {
        /// The record's title.
        title: String,
        /// What we sent.
        mine: Value,
    },
}

/// A change the UI asked for, echoed in its answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// PUT of a record.
    Save {
        /// The kind.
        tab: Tab,
        /// Its name.
        name: String,
        /// The body sent.
        body: Value,
    },
    /// DELETE of a record.
    Delete {
        /// The kind.
        tab: Tab,
        /// Its name.
        name: String,
    },
    /// JIT initiate under a policy.
    Initiate {
        /// The policy.
        policy: String,
    },
    /// JIT revoke of a request.
    Revoke {
        /// The request id.
        id: String,
    },
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
}

/// An answer from the backend task.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The session: the caller's user name and its tenants.
    Session(Result<(String, Vec<TenantInfo>), Failure>),
    /// Pages of a list.
    Pages {
        /// The generation of the [`Cmd::Pages`].
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
        /// The generation of the [`Cmd::Pages`].
        generation: u64,
        /// Why.
        failure: Failure,
    },
    /// A record fetched.
    Record {
        /// Why it was fetched.
        purpose: RecordPurpose,
        /// The record, or why not.
        result: Result<Value, Failure>,
    },
    /// A change's outcome.
    Written {
        /// The change.
        op: Op,
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
    /// Export failed (the partial file is removed).
    ExportFailed(Failure),
}

//! Exports: a whole kind of one tenant, streamed as JSON, NDJSON or CSV.
//!
//! Memory stays flat in the size of the data: a blocking producer reads one page at a
//! time (each in its own short read transaction), encodes it, and hands the bytes to
//! the response through a small bounded channel, so a slow reader slows the producer
//! rather than filling memory. CSV cells are neutralised against spreadsheet formulas
//! ([`steward::csv_cell`]); JSON and NDJSON carry the values as stored.
//!
//! Nothing is served unaudited: the export's audit record commits before the first byte,
//! and a second one gives its record count when the stream ends (`Failed` with the
//! partial count if the reader went away); [`stream`] says how.

use crate::store::TenantRead;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, header};
use serde::Deserialize;
use serde_json::Value;
use steward::permissions::Permission;
use steward::resource::{Operation, Resource};
use tokio::sync::mpsc;

use steward::model::AuditStatus;

use super::alerts::{AlertQuery, Filter};
use super::ctx::TenantCtx;
use super::extract::{P, Q};
use super::resource::{resource_json, write_resource};
use crate::error::ApiError;
use crate::store::{Kind, Page, TenantReader, TenantWrite, TimeCursor, TimeQuery, WriteError};

/// Records read per page while exporting.
const PAGE: usize = 500;
/// Encoded pages waiting for the client, at most.
const IN_FLIGHT: usize = 4;

/// The kind named by `/export/{kind}`, with the permission an export of it needs and the
/// operation that audits it; 404 naming the kinds that can be exported otherwise.
fn exportable(segment: &str) -> Result<(Resource, Permission, Operation), ApiError> {
    let found = Resource::from_segment(segment)
        .and_then(|r| Some((r, r.export_permission()?, r.export_operation()?)));
    found.ok_or_else(|| {
        let kinds: Vec<&str> = Resource::exportable().map(Resource::segment).collect();
        ApiError::not_found(format!(
            "cannot export `{segment}`: kinds are {}",
            kinds.join(", ")
        ))
    })
}

/// The encoding of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A header row, then one row per record.
    Csv,
}

impl ExportFormat {
    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }
}

/// `?format=`, and for alerts the list's filters (`severity`, `status`, `since`,
/// `until`, `q`): an export of what a filtered view shows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// json (default), ndjson or csv.
    pub format: Option<ExportFormat>,
    /// Alerts: only this severity.
    pub severity: Option<String>,
    /// Alerts: only this status.
    pub status: Option<String>,
    /// Alerts: generated at or after (RFC 3339).
    pub since: Option<String>,
    /// Alerts: generated at or before (RFC 3339).
    pub until: Option<String>,
    /// Alerts: the list's text search.
    pub q: Option<String>,
}

impl ExportQuery {
    /// The alert filter asked for, as the list parses it, and how the audit record names
    /// it; `None` when no filter is given (the whole kind, in name order); a 400 for a
    /// filter on another kind.
    fn alert_filter(&self, kind: Resource) -> Result<Option<(Filter, String)>, ApiError> {
        let given: Vec<(&str, &String)> = [
            ("severity", &self.severity),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let Some((first, _)) = given.first() else {
            return Ok(None);
        };
        if kind != Resource::Alerts {
            return Err(ApiError::invalid(format!(
                "`{first}` filters only an alerts export; {kind} is exported whole"
            ))
            .with_target(*first));
        }
        let q = AlertQuery {
            severity: self.severity.clone(),
            status: self.status.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            q: self.q.clone(),
            ..AlertQuery::default()
        };
        // For the audit record: the search text may name a person, so only that it was
        // given is kept (audit fields hold no personal values).
        let shown = given
            .iter()
            .map(|(k, v)| match *k {
                "q" => "q".to_owned(),
                _ => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join("&");
        Ok(Some((Filter::new(&q, (None, None))?, shown)))
    }
}

/// `GET /v1/tenants/{t}/export/{kind}?format=json|ndjson|csv`.
pub async fn export(
    ctx: TenantCtx,
    P((_, kind)): P<(String, String)>,
    Q(q): Q<ExportQuery>,
) -> Result<Response, ApiError> {
    let (kind, permission, operation) = exportable(&kind)?;
    ctx.require(permission, &format!("export/{kind}")).await?;
    let filter = q.alert_filter(kind)?;
    stream(
        &ctx,
        kind,
        operation,
        q.format.unwrap_or(ExportFormat::Json),
        filter,
    )
    .await
}

/// Audits the export as `operation`, then starts the producer and answers with the streaming body.
///
/// Nothing is served unaudited, and the count is honest although it is known only at the
/// end, so an export writes two records with the same correlation id:
/// `{kind}.export` commits BEFORE the first byte is sent (if it cannot — a full disk —
/// the answer is 507 and no data goes out), and `{kind}.export.end` carries the record
/// count and whether the stream completed. The last chunk is held back until the end
/// record has committed; if it cannot commit, the body is cut off with an error instead,
/// so a client never receives a complete export whose count went unrecorded.
async fn stream(
    ctx: &TenantCtx,
    kind: Resource,
    operation: Operation,
    format: ExportFormat,
    filter: Option<(Filter, String)>,
) -> Result<Response, ApiError> {
    let mut base = ctx
        .entry(operation, AuditStatus::Succeeded)
        .resource(format!("export/{kind}"))
        .field(format!("format={}", format.extension()));
    let filter = filter.map(|(f, shown)| {
        base = base.clone().field(format!("filter={shown}"));
        f
    });
    let started = base.clone().reason(format!(
        "started: the records sent are counted in `{operation}.end` (same correlation id)"
    ));
    ctx.write(move |txn: &mut dyn TenantWrite| {
        txn.audit(started);
        Ok(())
    })
    .await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    let reader = ctx.reader();
    let writer = ctx.shared.store.writer();
    let tenant = ctx.tenant.clone();
    let mut end = base;
    end.operation_name = format!("{operation}.end"); // the end record: see [`AuditEntry::named`]
    tokio::task::spawn_blocking(move || {
        let mut out = HoldBack { tx, held: None };
        let outcome = produce(&reader, kind, format, filter, &mut out);
        let (records, status, reason) = match &outcome {
            Ok(n) => (*n, AuditStatus::Succeeded, None),
            Err((n, why)) => (*n, AuditStatus::Failed, Some(why.clone())),
        };
        end.status = status;
        let mut entry = end.count("records", records);
        if let Some(r) = reason {
            entry = entry.reason(r);
        }
        let result: Result<(), WriteError> = writer.write_blocking(&tenant, move |txn| {
            txn.audit(entry);
            Ok(())
        });
        match (outcome, result) {
            (Ok(_), Ok(())) => out.finish(),
            (Err((_, why)), _) => out.fail(why),
            (Ok(_), Err(e)) => {
                tracing::error!(error = %e, "could not audit the end of an export: cutting it off");
                out.fail(format!("the export could not be audited: {e}"));
            }
        }
    });
    let filename = format!("attachment; filename=\"{}.{}\"", kind, format.extension());
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&filename) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The body's sender, one chunk behind: the last chunk goes out only with
/// [`HoldBack::finish`], once the export's end record has committed.
struct HoldBack {
    /// To the response body.
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    /// The latest chunk, not sent yet.
    held: Option<Bytes>,
}

impl HoldBack {
    /// Sends the chunk held so far and holds `bytes`; `false` when the client went away.
    fn push(&mut self, bytes: Vec<u8>) -> bool {
        match self.held.replace(Bytes::from(bytes)) {
            Some(prev) => self.tx.blocking_send(Ok(prev)).is_ok(),
            None => !self.tx.is_closed(),
        }
    }

    /// Sends the last chunk: the body is complete.
    fn finish(self) {
        if let Some(last) = self.held {
            let _ = self.tx.blocking_send(Ok(last));
        }
    }

    /// Ends the body with an error instead of its last chunk (the client sees a cut-off
    /// transfer, not a complete file).
    fn fail(self, why: String) {
        let _ = self.tx.blocking_send(Err(std::io::Error::other(why)));
    }
}

/// Where a paged read is.
enum Position {
    /// A filtered alerts export, newest first as the list shows it: the next page starts
    /// before this cursor.
    Time {
        before: Option<TimeCursor>,
        filter: Box<Filter>,
    },
    Name(Option<String>),
    Seq(u64),
}

/// Reads every record page by page, encodes and sends it. Returns the record count, or
/// the count so far and why it stopped.
fn produce(
    reader: &TenantReader,
    kind: Resource,
    format: ExportFormat,
    filter: Option<Filter>,
    out: &mut HoldBack,
) -> Result<u64, (u64, String)> {
    let mut n: u64 = 0;
    let mut send = |bytes: Vec<u8>, n: u64| -> Result<(), (u64, String)> {
        if out.push(bytes) {
            Ok(())
        } else {
            Err((n, "the client went away".to_owned()))
        }
    };
    match format {
        ExportFormat::Json => send(b"[".to_vec(), n)?,
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(kind.csv_columns().map(|c| c.field))
                .map_err(|e| (n, e.to_string()))?;
            send(w.into_inner().map_err(|e| (n, e.to_string()))?, n)?;
        }
        ExportFormat::Ndjson => {}
    }
    let mut pos = match (kind, filter) {
        (Resource::Audit, _) => Position::Seq(0),
        (_, Some(filter)) => Position::Time {
            before: filter.until.map(|u| TimeCursor {
                time_micros: u.saturating_add(1),
                name: String::new(),
            }),
            filter: Box::new(filter),
        },
        _ => Position::Name(None),
    };
    loop {
        let (records, more) = page(reader, kind, &mut pos).map_err(|e| (n, e))?;
        let mut buf = Vec::new();
        let mut csv_w = (format == ExportFormat::Csv).then(|| csv::Writer::from_writer(Vec::new()));
        for r in &records {
            match format {
                ExportFormat::Json => {
                    if n > 0 {
                        buf.push(b',');
                    }
                    r.write_json(&mut buf).map_err(|e| (n, e))?;
                }
                ExportFormat::Ndjson => {
                    r.write_json(&mut buf).map_err(|e| (n, e))?;
                    buf.push(b'\n');
                }
                ExportFormat::Csv => {
                    if let Some(w) = csv_w.as_mut() {
                        let v = r.value().map_err(|e| (n, e))?;
                        w.write_record(kind.csv_columns().map(|c| c.csv_text(&v)))
                            .map_err(|e| (n, e.to_string()))?;
                    }
                }
            }
            n += 1;
        }
        if let Some(w) = csv_w {
            buf = w.into_inner().map_err(|e| (n, e.to_string()))?;
        }
        if !buf.is_empty() {
            send(buf, n)?;
        }
        if !more {
            break;
        }
    }
    if format == ExportFormat::Json {
        send(b"]\n".to_vec(), n)?;
    }
    Ok(n)
}

/// One exported record: a stored document's text, or an audit record already in its API
/// shape.
enum Rec {
    Text { etag: String, body_json: String },
    Value(Value),
}

impl Rec {
    /// A stored record's etag and JSON text.
    fn text(etag: String, body_json: String) -> Rec {
        Rec::Text { etag, body_json }
    }

    /// The record as the API shows it.
    fn value(&self) -> Result<std::borrow::Cow<'_, Value>, String> {
        match self {
            Rec::Text { etag, body_json } => resource_json(body_json, etag)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| e.detail.message),
            Rec::Value(v) => Ok(std::borrow::Cow::Borrowed(v)),
        }
    }

    /// Appends the record's JSON to `buf` (a document through [`write_resource`]).
    fn write_json(&self, buf: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Rec::Text { etag, body_json } => {
                write_resource(body_json, etag, buf).map_err(|e| e.detail.message)
            }
            Rec::Value(v) => serde_json::to_writer(buf, v).map_err(|e| e.to_string()),
        }
    }
}

/// A page's records as [`Rec`]s and whether more follow; `at` moves to where the next
/// page starts.
fn advance<T, C>(page: Page<T, C>, at: &mut Option<C>, rec: impl Fn(T) -> Rec) -> (Vec<Rec>, bool) {
    let more = page.next.is_some();
    *at = page.next;
    (page.items.into_iter().map(rec).collect(), more)
}

/// One page of records, and whether more follow; advances `pos`.
fn page(
    reader: &TenantReader,
    kind: Resource,
    pos: &mut Position,
) -> Result<(Vec<Rec>, bool), String> {
    match pos {
        Position::Time { before, filter } => {
            let f: &Filter = filter;
            let p = reader
                .list_by_time(
                    Kind::Alert,
                    TimeQuery {
                        cursor: before.as_ref(),
                        bound: f.since,
                        facets: Box::new(|facets| f.accepts_facets(facets)),
                        filter: Box::new(|d| f.accepts(d)),
                        ..TimeQuery::newest_first(PAGE)
                    },
                )
                .map_err(|e| e.to_string())?;
            Ok(advance(p, before, |d| Rec::text(d.etag, d.body_json)))
        }
        Position::Name(after) => {
            let k = Kind::of(kind).ok_or_else(|| format!("{kind} has no records to list"))?;
            let p = reader
                .list_text(k, after.as_deref(), PAGE)
                .map_err(|e| e.to_string())?;
            Ok(advance(p, after, |d| Rec::text(d.etag, d.body_json)))
        }
        Position::Seq(after) => {
            let p = reader
                .audit(*after, PAGE, &mut |_| true)
                .map_err(|e| e.to_string())?;
            let values = p
                .items
                .iter()
                .map(|r| {
                    serde_json::to_value(r)
                        .map(Rec::Value)
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let more = p.next.is_some();
            if let Some(s) = p.next {
                *after = s;
            }
            Ok((values, more))
        }
    }
}

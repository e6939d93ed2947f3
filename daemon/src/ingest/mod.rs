//! Alert ingestion shared by both ways in: `POST /v1/tenants/{t}/alerts` and the spool
//! directory. Parsing turns a body (one alert, an array, or NDJSON) into validated
//! alerts or every error with its item and field; storing appends them — idempotent on
//! the alert's name — with an audit record carrying the counts.
//!
//! Memory is bounded by the body's size: a body is walked as a stream (an array element
//! at a time, a line at a time), each alert parsed into a `Value` only while it is checked
//! and then dropped, and the errors of a rejected body are capped at [`MAX_ERRORS`]. The
//! route keeps a [`Batch`] (the body's bytes and where each alert lies in them) and
//! prepares and stores it in bounded chunks ([`Batch::chunks`]), each its own write job, so
//! a maximal ingest neither holds every prepared record at once nor keeps other tenants'
//! writes waiting for one huge transaction. A spool file is stored in one job instead
//! (all or nothing, `spool.rs`). [`Budget`] bounds the ingest bytes held daemon-wide.

pub mod spool;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use steward::model::{AlertInput, FieldError, SubjectKey, ValidAlert, ValidationErrors};
use steward::names::{ResourceName, TenantId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::{AuditEntry, DocInput, Kind, TenantWrite, WriteError};

/// Most errors a rejected body lists; the rest are counted in one last entry, so a body of
/// a million bad alerts costs no more memory than one of a hundred.
pub const MAX_ERRORS: usize = 100;

/// Most alerts stored by one write job of an HTTP ingest.
pub const CHUNK_ALERTS: usize = 2048;

/// Most alert text (bytes of the body) stored by one write job of an HTTP ingest.
pub const CHUNK_BYTES: usize = 512 << 10;

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    /// Alerts stored now.
    pub ingested: u64,
    /// Alerts whose name was already stored (left as they were).
    pub duplicates: u64,
}

impl std::ops::AddAssign for IngestSummary {
    fn add_assign(&mut self, o: IngestSummary) {
        self.ingested += o.ingested;
        self.duplicates += o.duplicates;
    }
}

/// Errors of a body, at most [`MAX_ERRORS`] kept.
#[derive(Default)]
struct Errors {
    kept: Vec<FieldError>,
    more: u64,
}

impl Errors {
    fn push(&mut self, e: FieldError) {
        if self.kept.len() < MAX_ERRORS {
            self.kept.push(e);
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Item `prefix`'s errors, each path prefixed by `prefix(path)`.
    fn extend(&mut self, es: ValidationErrors, prefix: impl Fn(&str) -> String) {
        for e in es.0 {
            self.push(FieldError {
                path: prefix(&e.path),
                message: e.message,
            });
        }
    }

    fn finish(mut self) -> Result<(), ValidationErrors> {
        if self.kept.is_empty() {
            return Ok(());
        }
        if self.more > 0 {
            self.kept.push(FieldError {
                path: "body".into(),
                message: format!(
                    "{} more errors not listed (only the first {MAX_ERRORS} are)",
                    self.more
                ),
            });
        }
        Err(ValidationErrors(self.kept))
    }
}

fn not_json(e: &serde_json::Error) -> ValidationErrors {
    ValidationErrors::one("body", format!("not valid JSON: {e}"))
}

/// One alert's text, parsed and validated (its `Value` dropped on return).
fn parse_one(text: &[u8], now: jiff::Timestamp) -> Result<ValidAlert, ValidationErrors> {
    let v = crate::strict_json::json_value(text)
        .map_err(|e| ValidationErrors::one("", format!("not valid JSON: {e}")))?;
    AlertInput::parse(&v, now)
}

/// Walks a JSON body (one alert or an array of alerts) an alert at a time, handing each
/// valid alert and its byte range to `each` while no error has been seen. Errors carry
/// `[i].` prefixes for array items.
fn walk_json(
    bytes: &[u8],
    now: jiff::Timestamp,
    mut each: impl FnMut(Range<usize>, ValidAlert),
) -> Result<(), ValidationErrors> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    match bytes.get(start) {
        Some(b'[') => {}
        Some(b'{') => {
            let v = crate::strict_json::json_value(bytes).map_err(|e| not_json(&e))?;
            each(0..bytes.len(), AlertInput::parse(&v, now)?);
            return Ok(());
        }
        _ => {
            return Err(match crate::strict_json::json_value(bytes) {
                Err(e) => not_json(&e),
                Ok(_) => {
                    ValidationErrors::one("body", "must be an alert object or an array of alerts")
                }
            });
        }
    }
    let mut errors = Errors::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walk = Items {
        base: bytes.as_ptr() as usize,
        now,
        each: &mut each,
        errors: &mut errors,
    };
    (&mut de).deserialize_seq(walk).map_err(|e| not_json(&e))?;
    de.end().map_err(|e| not_json(&e))?;
    errors.finish()
}

/// The array walk of [`walk_json`]: each element is taken as raw text borrowed from the
/// body, checked, and dropped before the next is read.
struct Items<'f, F> {
    /// Address of the body's first byte, to turn an element's text into a byte range.
    base: usize,
    now: jiff::Timestamp,
    each: &'f mut F,
    errors: &'f mut Errors,
}

impl<'de, F: FnMut(Range<usize>, ValidAlert)> Visitor<'de> for Items<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of alerts")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let text = raw.get();
            let from = (text.as_ptr() as usize).saturating_sub(self.base);
            match parse_one(text.as_bytes(), self.now) {
                Ok(a) if self.errors.is_empty() => (self.each)(from..from + text.len(), a),
                Ok(_) => {}
                Err(es) => self.errors.extend(es, |p| {
                    if p.is_empty() {
                        format!("[{i}]")
                    } else {
                        format!("[{i}].{p}")
                    }
                }),
            }
            i += 1;
        }
        Ok(())
    }
}

/// Walks NDJSON a line at a time (blank lines skipped), like [`walk_json`]. Errors name
/// the line as `line N` (1-based) before the field path.
fn walk_ndjson(
    bytes: &[u8],
    now: jiff::Timestamp,
    mut each: impl FnMut(Range<usize>, ValidAlert),
) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let mut from = 0usize;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let span = from..from + line.len();
        from = span.end + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let n = i + 1;
        match parse_one(line, now) {
            Ok(a) if errors.is_empty() => each(span, a),
            Ok(_) => {}
            Err(es) => errors.extend(es, |p| {
                if p.is_empty() {
                    format!("line {n}")
                } else {
                    format!("line {n}: {p}")
                }
            }),
        }
    }
    errors.finish()
}

/// Parses a JSON body: one alert or an array of alerts. Errors carry `[i].` prefixes.
pub fn parse_json(bytes: &[u8], now: jiff::Timestamp) -> Result<Vec<ValidAlert>, ValidationErrors> {
    let mut out = Vec::new();
    walk_json(bytes, now, |_, a| out.push(a))?;
    Ok(out)
}

/// Parses NDJSON: one alert per line (blank lines skipped). Errors name the line as
/// `line N` (1-based) before the field path.
pub fn parse_ndjson(
    bytes: &[u8],
    now: jiff::Timestamp,
) -> Result<Vec<ValidAlert>, ValidationErrors> {
    let mut out = Vec::new();
    walk_ndjson(bytes, now, |_, a| out.push(a))?;
    Ok(out)
}

/// A validated ingest body kept as received: its bytes and the byte range of each alert.
/// Alerts are prepared again from their text a chunk at a time ([`Batch::prepare`]), so
/// what a batch holds is its body plus two words per alert.
#[derive(Debug)]
pub struct Batch {
    /// The body as received.
    bytes: Bytes,
    /// Where each alert's text lies in `bytes`, in body order.
    spans: Vec<Range<usize>>,
    /// The ingest time, stamped on alerts without `timeGeneratedUtc` (the same in every chunk).
    now: jiff::Timestamp,
}

impl Batch {
    /// Validates a JSON body (one alert or an array): every alert or every error.
    pub fn json(bytes: Bytes, now: jiff::Timestamp) -> Result<Batch, ValidationErrors> {
        let mut spans = Vec::new();
        walk_json(&bytes, now, |r, _| spans.push(r))?;
        Ok(Batch { bytes, spans, now })
    }

    /// Validates an NDJSON body: every alert or every error.
    pub fn ndjson(bytes: Bytes, now: jiff::Timestamp) -> Result<Batch, ValidationErrors> {
        let mut spans = Vec::new();
        walk_ndjson(&bytes, now, |r, _| spans.push(r))?;
        Ok(Batch { bytes, spans, now })
    }

    /// How many alerts the batch holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the batch holds no alert (`[]`).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The batch cut into consecutive ranges of alerts, each at most [`CHUNK_ALERTS`]
    /// alerts and (unless one alert is larger) [`CHUNK_BYTES`] of text; one empty range
    /// for an empty batch, so it is still stored (and audited) once.
    pub fn chunks(&self) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut bytes = 0;
        for (i, s) in self.spans.iter().enumerate() {
            let n = s.len();
            if i > start && (i - start >= CHUNK_ALERTS || bytes + n > CHUNK_BYTES) {
                out.push(start..i);
                start = i;
                bytes = 0;
            }
            bytes += n;
        }
        out.push(start..self.spans.len());
        out
    }

    /// The alerts of `range` (indices into the batch), parsed again and prepared.
    pub fn prepare(
        &self,
        range: Range<usize>,
        tenant: &TenantId,
        retention: Duration,
    ) -> Result<Vec<PreparedAlert>, ValidationErrors> {
        let spans = self.spans.get(range).unwrap_or_default();
        let mut out = Vec::with_capacity(spans.len());
        for s in spans {
            let text = self.bytes.get(s.clone()).unwrap_or_default();
            out.push(prepare_one(parse_one(text, self.now)?, tenant, retention));
        }
        Ok(out)
    }
}

/// The daemon-wide budget of ingest bytes held at once (`limits.ingest_budget`): an
/// ingest reserves its body's size before reading it and holds it until answered.
#[derive(Debug, Clone)]
pub struct Budget {
    /// One permit per byte.
    bytes: Arc<Semaphore>,
    /// The whole budget, so that one request never asks for more than exists.
    total: usize,
}

/// How long an ingest waits for room in the budget before it is answered 503.
pub const BUDGET_WAIT: Duration = Duration::from_secs(1);

/// The budget stayed spent for [`BUDGET_WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpent;

impl Budget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Budget {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Reserves `bytes` (at most the whole budget), waiting up to `wait`.
    pub async fn reserve(
        &self,
        bytes: usize,
        wait: Duration,
    ) -> Result<OwnedSemaphorePermit, BudgetSpent> {
        let n = u32::try_from(bytes.clamp(1, self.total)).unwrap_or(u32::MAX);
        match tokio::time::timeout(wait, Arc::clone(&self.bytes).acquire_many_owned(n)).await {
            Ok(Ok(p)) => Ok(p),
            // Closed (never) or timed out: no room.
            _ => Err(BudgetSpent),
        }
    }
}

/// An alert ready to store: its name, its document and the people it names. Built on a
/// blocking thread with the parse ([`prepare`]), so the writer thread, which every write
/// of every tenant waits for, does only the storing.
#[derive(Debug)]
pub struct PreparedAlert {
    name: ResourceName,
    input: DocInput,
    subjects: Vec<SubjectKey>,
}

/// Turns validated alerts into documents for `tenant` ([`prepare_one`] each).
pub fn prepare(
    alerts: Vec<ValidAlert>,
    tenant: &TenantId,
    retention: std::time::Duration,
) -> Vec<PreparedAlert> {
    alerts
        .into_iter()
        .map(|a| prepare_one(a, tenant, retention))
        .collect()
}

/// Turns a validated alert into its document for `tenant`: the stored JSON (tagged with
/// the tenant), the time index with its severity and status facets, the subject keys and
/// the retention deadline.
pub fn prepare_one(alert: ValidAlert, tenant: &TenantId, retention: Duration) -> PreparedAlert {
    let keep_secs = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let t = alert.time_generated();
    let subjects = alert.subject_keys();
    let name = alert.name().clone();
    // Lower-cased as the list filters compare them.
    let severity = alert.severity().unwrap_or("").to_lowercase();
    let status = alert.status().unwrap_or("").to_lowercase();
    let body = Value::Object(alert.into_json_for_tenant(tenant)).to_string();
    let mut input = DocInput::new(body)
        .time(t.as_microsecond())
        .facets(severity, status)
        .expires_at(t.as_second().saturating_add(keep_secs));
    for k in &subjects {
        input = input.subject(k);
    }
    PreparedAlert {
        name,
        input,
        subjects,
    }
}

/// Stores `alerts` in this job: new names are stored, known names (stored before or
/// earlier in the batch) are counted as duplicates. `entry` is completed with the counts
/// and the people concerned and recorded.
pub fn store_alerts(
    txn: &mut dyn TenantWrite,
    alerts: Vec<PreparedAlert>,
    entry: AuditEntry,
) -> Result<IngestSummary, WriteError> {
    let mut summary = IngestSummary::default();
    // One per person (`kind:value`), whichever field named them first.
    let mut subjects = BTreeMap::new();
    for alert in alerts {
        // Stored or already there: ingest is idempotent on the name.
        if !txn.put_new(Kind::Alert, &alert.name, alert.input)? {
            summary.duplicates += 1;
            continue;
        }
        for k in alert.subjects {
            subjects.entry(k.index_key()).or_insert(k);
        }
        txn.emit(Kind::Alert, &alert.name, "ingested");
        summary.ingested += 1;
    }
    let mut entry = entry
        .count("ingested", summary.ingested)
        .count("duplicates", summary.duplicates);
    for s in subjects.values() {
        entry = entry.subject(s);
    }
    txn.audit(entry);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_errors_name_the_line() {
        let body = b"{\"name\":\"a\",\"properties\":{}}\nthis is not json\n\n{\"properties\":{}}\n";
        let e = parse_ndjson(body, jiff::Timestamp::now()).unwrap_err();
        let paths = e.paths();
        assert!(paths.iter().any(|p| p.starts_with("line 2")), "{paths:?}");
        assert!(paths.iter().any(|p| p.starts_with("line 4")), "{paths:?}");
        assert_eq!(paths.len(), 2, "{paths:?}");
    }

    #[test]
    fn errors_are_capped_and_counted() {
        let body = format!("[{}]", vec!["{}"; 1000].join(","));
        let e = parse_json(body.as_bytes(), jiff::Timestamp::now()).unwrap_err();
        // Two errors per item (name, properties): the first MAX_ERRORS, then one count.
        assert_eq!(e.errors().len(), MAX_ERRORS + 1);
        let last = e.errors().last().unwrap();
        assert_eq!(last.path, "body");
        assert!(
            last.message.starts_with("1900 more errors"),
            "{}",
            last.message
        );
        let nd = vec!["{}"; 1000].join("\n");
        let e = parse_ndjson(nd.as_bytes(), jiff::Timestamp::now()).unwrap_err();
        assert_eq!(e.errors().len(), MAX_ERRORS + 1);
    }

    #[test]
    fn a_batch_keeps_spans_and_cuts_bounded_chunks() {
        let now = jiff::Timestamp::now();
        let items: Vec<String> = (0..5000)
            .map(|i| format!("{{\"name\":\"a{i}\",\"properties\":{{}}}}"))
            .collect();
        let body = Bytes::from(format!(" [ {} ] ", items.join(" , ")));
        let b = Batch::json(body, now).unwrap();
        assert_eq!(b.len(), 5000);
        let chunks = b.chunks();
        assert_eq!(chunks, vec![0..2048, 2048..4096, 4096..5000]);
        let t = TenantId::parse("contoso").unwrap();
        let p = b.prepare(4096..4098, &t, Duration::from_secs(60)).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "a4096");
        assert_eq!(p[1].name, "a4097");
        // NDJSON spans are lines; one object is one alert.
        let nd = Bytes::from(items[..3].join("\n\n"));
        let b = Batch::ndjson(nd, now).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(
            b.prepare(2..3, &t, Duration::from_secs(60)).unwrap()[0].name,
            "a2"
        );
        let one = Batch::json(Bytes::from(items[7].clone()), now).unwrap();
        assert_eq!(one.chunks(), vec![0..1]);
        let none = Batch::json(Bytes::from_static(b"[]"), now).unwrap();
        assert!(none.is_empty());
        assert_eq!(none.chunks(), vec![0..0]);
        // Big alerts: the byte bound cuts first.
        let big: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    "{{\"name\":\"b{i}\",\"properties\":{{\"x\":\"{}\"}}}}",
                    "y".repeat(200 << 10)
                )
            })
            .collect();
        let b = Batch::json(Bytes::from(format!("[{}]", big.join(","))), now).unwrap();
        assert!(b.chunks().iter().all(|c| c.len() <= 3), "{:?}", b.chunks());
    }

    #[test]
    fn json_accepts_one_or_many() {
        let now = jiff::Timestamp::now();
        assert_eq!(
            parse_json(br#"{"name":"a","properties":{}}"#, now)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            parse_json(
                br#"[{"name":"a","properties":{}},{"name":"b","properties":{}}]"#,
                now
            )
            .unwrap()
            .len(),
            2
        );
        assert!(parse_json(b"42", now).is_err());
    }
}

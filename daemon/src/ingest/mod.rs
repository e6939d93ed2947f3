//! Alert ingestion shared by both ways in: `POST /v1/tenants/{t}/alerts` and the spool
//! directory. Parsing turns a body (one alert, an array, or NDJSON) into validated
//! alerts or every error with its item and field; storing appends them in one write job
//! — idempotent on the alert's name — with one audit record carrying the counts.

pub mod spool;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use steward::model::{AlertInput, FieldError, SubjectKey, ValidAlert, ValidationErrors};
use steward::names::TenantId;

use crate::store::{AuditEntry, DocInput, Kind, TenantTxn, WriteError};

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    /// Alerts stored now.
    pub ingested: u64,
    /// Alerts whose name was already stored (left as they were).
    pub duplicates: u64,
}

/// Parses a JSON body: one alert or an array of alerts. Errors carry `[i].` prefixes.
pub fn parse_json(bytes: &[u8], now: jiff::Timestamp) -> Result<Vec<ValidAlert>, ValidationErrors> {
    let v: Value = crate::routes::json_value(bytes)
        .map_err(|e| ValidationErrors::one("body", format!("not valid JSON: {e}")))?;
    if !(v.is_object() || v.is_array()) {
        return Err(ValidationErrors::one(
            "body",
            "must be an alert object or an array of alerts",
        ));
    }
    AlertInput::parse_batch(&v, now)
}

/// Parses NDJSON: one alert per line (blank lines skipped). Errors name the line as
/// `line N` (1-based) before the field path.
pub fn parse_ndjson(
    bytes: &[u8],
    now: jiff::Timestamp,
) -> Result<Vec<ValidAlert>, ValidationErrors> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = crate::routes::json_value(line)
            .map_err(|e| ValidationErrors::one("", format!("not valid JSON: {e}")))
            .and_then(|v| AlertInput::parse(&v, now));
        match parsed {
            Ok(a) => out.push(a),
            Err(ValidationErrors(es)) => errors.extend(es.into_iter().map(|e| FieldError {
                path: if e.path.is_empty() {
                    format!("line {n}")
                } else {
                    format!("line {n}: {}", e.path)
                },
                message: e.message,
            })),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ValidationErrors(errors))
    }
}

/// An alert ready to store: its name, its document and the people it names. Built on a
/// blocking thread with the parse ([`prepare`]), so the writer thread, which every write
/// of every tenant waits for, does only the storing.
#[derive(Debug)]
pub struct PreparedAlert {
    name: String,
    input: DocInput,
    subjects: Vec<SubjectKey>,
}

/// Turns validated alerts into documents for `tenant`: the stored JSON (tagged with the
/// tenant), the time index with its severity and status facets, the subject keys and the
/// retention deadline.
pub fn prepare(
    alerts: Vec<ValidAlert>,
    tenant: &TenantId,
    retention: std::time::Duration,
) -> Vec<PreparedAlert> {
    let keep_secs = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    alerts
        .into_iter()
        .map(|alert| {
            let t = alert.time_generated();
            let subjects = alert.subject_keys();
            let name = alert.name().as_str().to_string();
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
        })
        .collect()
}

/// Stores `alerts` in this job: new names are stored, known names (stored before or
/// earlier in the batch) are counted as duplicates. `entry` is completed with the counts
/// and the people concerned and recorded.
pub fn store_alerts(
    txn: &mut TenantTxn<'_>,
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

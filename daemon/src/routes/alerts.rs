//! Alerts: list newest first with filters, get one, ingest (append only). Alerts are
//! security data: no profile updates or deletes one, so every update, delete or state
//! action answers 405 and is audited as denied. The list and the get answer on both
//! mounts ([`Mount`]): the ARM paths' resource group and location filter the list and
//! must be the alert's for a get (those its `id` names, kept from the source's own id at
//! ingest).

use crate::store::TenantRead;
use std::sync::Arc;
use steward::resource::Operation;

use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use steward::permissions::Permission;
use steward::wire::List;

use steward::model::AuditStatus;

use super::alert_order::{self, Order};
use super::arm::{At, Mount};
use super::body::{self, Accept, Format};
use super::ctx::TenantCtx;
use super::extract::{P, Q};
use super::idempotency::{IdempotencyKey, Outcome};
use super::paging;
use super::resource::{doc_json, etag_header, raw_doc_json, resource_name};
use crate::error::ApiError;
use crate::ingest;
use crate::store::tables::Facets;
use crate::store::{Doc, Kind};

/// The name of this list in cursors.
const LIST: &str = "alerts";

/// `?severity=&status=&since=&until=&q=&limit=&cursor=` (other parameters, such as the Azure paths' `api-version`, are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct AlertQuery {
    /// Only this severity (case-insensitive).
    pub severity: Option<String>,
    /// Only this status (case-insensitive).
    pub status: Option<String>,
    /// Only alerts generated at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only alerts generated at or before this time (RFC 3339).
    pub until: Option<String>,
    /// Text that the display name, type, description, name or compromised entity
    /// contains (case-insensitive).
    pub q: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
    /// Where to resume.
    pub cursor: Option<String>,
    /// `FIELD [asc|desc]`: `timeGeneratedUtc` (the default, newest first), `name`,
    /// `severity` or `status`; see [`Order::parse`].
    pub orderby: Option<String>,
}

/// A parsed filter over stored alerts (the list's, and a filtered export's).
pub(crate) struct Filter {
    severity: Option<String>,
    status: Option<String>,
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
    q: Option<String>,
    /// The resource group and location an ARM path names, matched against the alert's
    /// `id` (case-insensitively).
    at: (Option<String>, Option<String>),
}

/// Whether an alert's `id` is at `rg` and `loc` (each when given; compared
/// case-insensitively, as ARM does).
fn is_at(id: Option<&str>, (rg, loc): &(Option<String>, Option<String>)) -> bool {
    let (g, l) = id
        .map(steward::model::alert::placement_of)
        .unwrap_or_default();
    let same = |want: &Option<String>, have: Option<&str>| {
        want.as_deref()
            .is_none_or(|w| have.is_some_and(|h| h.eq_ignore_ascii_case(w)))
    };
    same(rg, g) && same(loc, l)
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            s.parse::<jiff::Timestamp>()
                .map(|t| t.as_microsecond())
                .map_err(|e| {
                    ApiError::invalid(format!("{name} must be an RFC 3339 time: {e}"))
                        .with_target(name)
                })
        })
        .transpose()
}

impl Filter {
    /// Parses the query's filters (a bad time is a 400 naming the parameter), at the
    /// resource group and location `at` names (an ARM path's; `(None, None)` elsewhere).
    pub(crate) fn new(
        q: &AlertQuery,
        at: (Option<String>, Option<String>),
    ) -> Result<Filter, ApiError> {
        Ok(Filter {
            severity: q.severity.as_ref().map(|s| s.to_lowercase()),
            status: q.status.as_ref().map(|s| s.to_lowercase()),
            since: time_param("since", &q.since)?,
            until: time_param("until", &q.until)?,
            q: q.q
                .as_ref()
                .map(|s| s.to_lowercase())
                .filter(|s| !s.is_empty()),
            at,
        })
    }

    /// `?severity=&status=`, tested on the time index's facets (no record read).
    pub(crate) fn accepts_facets(&self, f: Facets<'_>) -> bool {
        self.severity.as_deref().is_none_or(|s| f.severity == s)
            && self.status.as_deref().is_none_or(|s| f.status == s)
    }

    /// Every filter tested on the record alone (`?severity=&status=` from its body): for
    /// a walk that has no time-index entry to test the facets on (the name orders).
    pub(crate) fn accepts_record(&self, doc: &Doc) -> bool {
        if self.severity.is_some() || self.status.is_some() {
            #[derive(Default, Deserialize)]
            struct Props {
                #[serde(default)]
                severity: Option<String>,
                #[serde(default)]
                status: Option<String>,
            }
            #[derive(Deserialize)]
            struct Body {
                #[serde(default)]
                properties: Props,
            }
            let Ok(b) = serde_json::from_str::<Body>(&doc.body_json) else {
                return false;
            };
            let lower = |v: Option<String>| v.unwrap_or_default().to_lowercase();
            let (severity, status) = (lower(b.properties.severity), lower(b.properties.status));
            if !self.accepts_facets(Facets {
                severity: &severity,
                status: &status,
            }) {
                return false;
            }
        }
        self.accepts(doc)
    }

    /// `?until=` (which also starts the scan, see [`list_page`]; `since` ends it) and
    /// `?q=`, tested on the record.
    pub(crate) fn accepts(&self, doc: &Doc) -> bool {
        let t = doc.time.unwrap_or(i64::MIN);
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
            return false;
        }
        let placed = self.at.0.is_some() || self.at.1.is_some();
        if self.q.is_none() && !placed {
            return true;
        }
        // Only the fields `q` reads are decoded: parsing each whole body into a `Value`
        // was most of a filtered page's time (docs/PERFORMANCE.md). A body this shape
        // does not fit takes the old path.
        let v = match serde_json::from_str::<FilterBody>(&doc.body_json) {
            Ok(b) => b.into_value(),
            Err(_) => match serde_json::from_str::<Value>(&doc.body_json) {
                Ok(v) => v,
                Err(_) => return false,
            },
        };
        if placed && !is_at(v["id"].as_str(), &self.at) {
            return false;
        }
        let Some(q) = &self.q else {
            return true;
        };
        let p = &v["properties"];
        let field = |k: &str| p[k].as_str().unwrap_or("").to_lowercase();
        let hay = [
            "alertDisplayName",
            "alertType",
            "description",
            "compromisedEntity",
        ];
        doc.name.to_lowercase().contains(q) || hay.iter().any(|k| field(k).contains(q))
    }
}

/// The parts of a stored alert `?q=` reads.
#[derive(Deserialize)]
struct FilterBody {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    properties: FilterProps,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterProps {
    alert_display_name: Option<Value>,
    alert_type: Option<Value>,
    description: Option<Value>,
    compromised_entity: Option<Value>,
}

impl FilterBody {
    /// `{"properties": {…}}` with just those fields, for [`Filter::accepts`].
    fn into_value(self) -> Value {
        let p = self.properties;
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("alertDisplayName", p.alert_display_name),
            ("alertType", p.alert_type),
            ("description", p.description),
            ("compromisedEntity", p.compromised_entity),
        ] {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        }
        serde_json::json!({ "id": self.id, "properties": m })
    }
}

/// Lists alerts newest first, at the resource group and location `at` names (each when
/// given). Each alert is served as its stored JSON text with the etag added
/// ([`raw_doc_json`], no parse).
async fn list_page(
    ctx: &TenantCtx,
    q: AlertQuery,
    at: (Option<String>, Option<String>),
    path: &str,
    mount: Mount,
) -> Result<List<Box<RawValue>>, ApiError> {
    ctx.require(Permission::AlertsRead, LIST).await?;
    let limit = paging::limit(q.limit)?;
    let filter = Filter::new(&q, at)?;
    let order = Order::parse(q.orderby.as_deref())?;
    let list = order.list();
    let resume = match &q.cursor {
        Some(c) => {
            let p = paging::decode(&ctx.tenant, &list, c)?;
            Some(order.resume(&p).ok_or_else(|| {
                ApiError::invalid("the cursor is not one this list gave out").with_target("cursor")
            })?)
        }
        None => None,
    };
    let page = ctx
        .read(move |r| alert_order::page(r, order, resume, &filter, limit))
        .await?;
    let value = page
        .items
        .iter()
        .map(raw_doc_json)
        .collect::<Result<Vec<_>, _>>()?;
    let next = page
        .next
        .map(|c| paging::encode(&ctx.tenant, &list, &alert_order::position(&c)));
    let mut query = mount.query();
    for (k, v) in [
        ("severity", &q.severity),
        ("status", &q.status),
        ("since", &q.since),
        ("until", &q.until),
        ("q", &q.q),
        ("orderby", &q.orderby),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    Ok(paging::page(value, path, &query, limit, next))
}

/// `GET /v1/tenants/{t}/alerts` and the ARM lists (of the subscription or a resource
/// group, each also by region).
pub async fn list(
    ctx: TenantCtx,
    mount: Mount,
    P(at): P<At>,
    Q(q): Q<AlertQuery>,
) -> Result<Json<List<Box<RawValue>>>, ApiError> {
    let placement = at.placement()?;
    let path = at.list_path(&ctx, mount, "alerts", "alerts");
    Ok(Json(list_page(&ctx, q, placement, &path, mount).await?))
}

/// `GET /v1/tenants/{t}/alerts/{name}` and the ARM gets (subscription or resource group
/// level, at a location: the alert's own, else 404).
pub async fn get(ctx: TenantCtx, P(at): P<At>) -> Result<Response, ApiError> {
    let name = at.name()?;
    ctx.require(Permission::AlertsRead, &format!("alerts/{name}"))
        .await?;
    let placement = at.placement()?;
    let name = resource_name(&name)?;
    let doc = ctx
        .read(move |r| Ok(r.get(Kind::Alert, name.as_str())?))
        .await?
        .filter(|d| {
            placement == (None, None) || {
                let id = serde_json::from_str::<FilterBody>(&d.body_json)
                    .ok()
                    .and_then(|b| b.id)
                    .and_then(|v| v.as_str().map(str::to_owned));
                is_at(id.as_deref(), &placement)
            }
        })
        .ok_or_else(|| ApiError::not_found("no such alert"))?;
    Ok((etag_header(&doc.etag), Json(doc_json(&doc)?)).into_response())
}

/// `POST /v1/tenants/{t}/alerts`: one alert, an array, or NDJSON. All or nothing at
/// validation: any invalid item makes it a 400 listing the bad items (the first
/// [`ingest::MAX_ERRORS`]), and nothing is stored. A valid batch is stored in bounded
/// chunks, one write job each ([`ingest::Batch::chunks`]), so other writes are not held
/// behind it; a storage failure partway answers the error with the earlier chunks stored,
/// and a retry stores the rest (ingest is idempotent on the alert's name). The body's size
/// is reserved from the daemon's ingest budget before it is read: 503 with `Retry-After`
/// when the budget stays spent. Honours `Idempotency-Key` (checked with the first chunk,
/// recorded with the last).
pub async fn ingest(ctx: TenantCtx, headers: HeaderMap, raw: Body) -> Result<Response, ApiError> {
    ctx.require(Permission::AlertsIngest, LIST).await?;
    let cfg = ctx.shared.config();
    let limit = cfg.limits.max_ingest_body.bytes();
    let declared = body::declared_len(&headers)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(limit);
    let Ok(_held) = ctx
        .shared
        .ingest_budget
        .reserve(declared.min(limit), ingest::BUDGET_WAIT)
        .await
    else {
        return Ok(busy());
    };
    let (format, bytes) = body::read(&headers, raw, limit, Accept::JsonOrNdjson).await?;
    let operation = match format {
        Format::Json => "alerts.ingest json",
        Format::Ndjson => "alerts.ingest ndjson",
    };
    let key = IdempotencyKey::of(&ctx, &headers, operation, &bytes)?;
    let now = jiff::Timestamp::now();
    let batch = tokio::task::spawn_blocking(move || match format {
        Format::Json => ingest::Batch::json(bytes, now),
        Format::Ndjson => ingest::Batch::ndjson(bytes, now),
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let batch = Arc::new(batch);
    let chunks = batch.chunks();
    let parts = chunks.len() as u64;
    let retention = cfg.retention.alerts.0;
    let mut summary = ingest::IngestSummary::default();
    for (i, range) in chunks.into_iter().enumerate() {
        let (first, last) = (i == 0, i as u64 + 1 == parts);
        let (b, tenant) = (Arc::clone(&batch), ctx.tenant.clone());
        let alerts = tokio::task::spawn_blocking(move || b.prepare(range, &tenant, retention))
            .await
            .map_err(|e| ApiError::internal(&e))?
            .map_err(|e| ApiError::internal(&format!("a validated alert no longer parses: {e}")))?;
        let mut entry = ctx
            .entry(Operation::AlertsIngest, AuditStatus::Succeeded)
            .resource(LIST);
        if parts > 1 {
            entry = entry.count("part", i as u64 + 1).count("parts", parts);
        }
        let key = key.clone();
        let so_far = summary.clone();
        let step = ctx
            .write(move |txn| {
                if first
                    && let Some(k) = &key
                    && let Some(o) = k.recorded(txn)?
                {
                    return Ok(Err(o));
                }
                let stored = ingest::store_alerts(txn, alerts, entry)?;
                if last && let Some(k) = &key {
                    let mut total = so_far;
                    total += stored.clone();
                    k.record(txn, Outcome::json(status_of(&total), None, &total)?)?;
                }
                Ok(Ok(stored))
            })
            .await?;
        match step {
            Ok(stored) => summary += stored,
            Err(replay) => return Ok(replay.into_response(true)),
        }
    }
    Ok((status_of(&summary), Json(summary)).into_response())
}

/// 201 when something was stored, else 200.
fn status_of(s: &ingest::IngestSummary) -> StatusCode {
    if s.ingested > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// 503 with `Retry-After`: the daemon's ingest budget stayed spent.
fn busy() -> Response {
    (
        [(http::header::RETRY_AFTER, "1")],
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "IngestBusy",
            format!(
                "other ingests hold the daemon's ingest budget (limits.ingest_budget) and no room came free within {:?}; retry later",
                ingest::BUDGET_WAIT
            ),
        ),
    )
        .into_response()
}

/// Any update, delete or state action on an alert: 405, audited as denied.
pub async fn read_only(
    ctx: TenantCtx,
    P(params): P<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let name = get("name").unwrap_or_default();
    // The action is a path segment like the name: it goes into the resource id, where
    // anything that is not a resource name is hashed; the operation names it only when it
    // is one.
    let (operation, resource) = match get("action") {
        Some(a) if steward::names::ResourceName::parse(&a).is_ok() => {
            (format!("alerts.{a}"), format!("alerts/{name}/{a}"))
        }
        Some(a) => ("alerts.action".to_owned(), format!("alerts/{name}/{a}")),
        None => ("alerts.update".to_owned(), format!("alerts/{name}")),
    };
    ctx.audit_denied(
        &operation,
        &resource,
        "a permission no profile holds: alerts are read-only security data",
    )
    .await?;
    Err(ApiError::method_not_allowed(
        "alerts are security data and read-only: they cannot be updated, dismissed or deleted; they leave only through retention",
    ))
}

//! The audit log: list a tenant's records (oldest first, filtered) and verify its hash
//! chain.
//!
//! Listed records carry `subjectCount` instead of their `subjects` HMACs unless asked for
//! with `?subjects=true`: an ingest of 1000 alerts names a few thousand people, and a page
//! of 100 such records was 16 MB of hex that no one browsing reads (the data-subject search
//! uses the HMACs inside the daemon). The export carries whole records, so a chain can be
//! verified outside the daemon.

use crate::store::TenantRead;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use steward::model::AuditRecord;
use steward::permissions::Permission;
use steward::wire::{ChainHead, List, VerifyReport};

use super::ctx::TenantCtx;
use super::extract::Q;
use super::paging;
use crate::error::ApiError;
use crate::store;

/// The name of this list in cursors.
const LIST: &str = "audit";

/// `?since=&action=&actor=&limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only this operation (`contacts.write`), or operations under a prefix (`contacts.`).
    pub action: Option<String>,
    /// Only records by this user name.
    pub actor: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
    /// Where to resume.
    pub cursor: Option<String>,
    /// List each record's `subjects` HMACs too (default: only `subjectCount`).
    pub subjects: Option<bool>,
}

/// The filter of an audit listing.
pub struct AuditFilter {
    since: Option<i64>,
    action: Option<String>,
    actor: Option<String>,
}

impl AuditFilter {
    /// Parses the query's filters.
    pub fn new(q: &AuditQuery) -> Result<AuditFilter, ApiError> {
        let since = q
            .since
            .as_deref()
            .map(|s| {
                s.parse::<jiff::Timestamp>()
                    .map(|t| t.as_microsecond())
                    .map_err(|e| {
                        ApiError::invalid(format!("since must be an RFC 3339 time: {e}"))
                            .with_target("since")
                    })
            })
            .transpose()?;
        Ok(AuditFilter {
            since,
            action: q.action.clone(),
            actor: q.actor.clone(),
        })
    }

    /// Whether a record passes.
    pub fn accepts(&self, r: &AuditRecord) -> bool {
        self.since.is_none_or(|s| r.at.as_microsecond() >= s)
            && self.action.as_ref().is_none_or(|a| {
                r.operation_name == *a
                    || (a.ends_with('.') && r.operation_name.starts_with(a.as_str()))
            })
            && self.actor.as_ref().is_none_or(|u| r.caller.user == *u)
    }
}

/// `GET /v1/tenants/{t}/audit`.
pub async fn list(ctx: TenantCtx, Q(q): Q<AuditQuery>) -> Result<Json<List<Value>>, ApiError> {
    ctx.require(Permission::AuditRead, LIST).await?;
    let limit = paging::limit(q.limit)?;
    let after = match &q.cursor {
        Some(c) => paging::decode(&ctx.tenant, LIST, c)?
            .parse::<u64>()
            .map_err(|_| {
                ApiError::invalid("the cursor is not one this list gave out").with_target("cursor")
            })?,
        None => 0,
    };
    let filter = AuditFilter::new(&q)?;
    let page = ctx
        .read(move |r| Ok(r.audit(after, limit, &mut |rec| filter.accepts(rec))?))
        .await?;
    let with_subjects = q.subjects.unwrap_or(false);
    let value = page
        .items
        .iter()
        .map(|r| listed(r, with_subjects))
        .collect::<Result<Vec<_>, _>>()?;
    let next = page
        .next
        .map(|seq| paging::encode(&ctx.tenant, LIST, &seq.to_string()));
    let mut query = Vec::new();
    for (k, v) in [
        ("since", &q.since),
        ("action", &q.action),
        ("actor", &q.actor),
    ] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    if with_subjects {
        query.push(("subjects", "true".to_string()));
    }
    Ok(Json(paging::page(
        value,
        &format!("{}/audit", ctx.base()),
        &query,
        limit,
        next,
    )))
}

/// A record as a list shows it: with `subjectCount`, and its `subjects` only if asked.
fn listed(r: &AuditRecord, with_subjects: bool) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(r).map_err(|e| ApiError::internal(&e))?;
    if let Some(o) = v.as_object_mut() {
        if !with_subjects {
            o.remove("subjects");
        }
        o.insert("subjectCount".into(), r.subjects.len().into());
    }
    Ok(v)
}

/// `GET /v1/tenants/{t}/audit/verify`.
pub async fn verify(ctx: TenantCtx) -> Result<Json<VerifyReport>, ApiError> {
    ctx.require(Permission::AuditRead, "audit/verify").await?;
    let r = ctx.read(|r| Ok(r.audit_verify()?)).await?;
    let head = r.head.clone().map_or(
        ChainHead {
            seq: 0,
            hash: store::GENESIS_HASH.to_owned(),
        },
        |h| ChainHead {
            seq: h.seq,
            hash: h.hash,
        },
    );
    Ok(Json(VerifyReport {
        ok: r.ok,
        records: r.records,
        head,
        anchor: r.anchor.map(|a| a.hash),
        first_bad_seq: if r.ok { None } else { r.first_bad_seq },
    }))
}

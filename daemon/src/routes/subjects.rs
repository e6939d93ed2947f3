//! `GET /v1/tenants/{t}/subjects?email=|phone=|ip=|user=|host=`: which records of the tenant
//! name a person, answered from the subject index (so it costs what it finds), with the
//! kind, id and field of each hit and the identifier kind that matched. The query is
//! normalised exactly as the index is ([`SubjectKey::normalise`]). Needs `dsr.manage`;
//! every search is audited as `subjects.search` with the identifiers only as HMACs.
//! Data-subject requests themselves are not indexed (see [`crate::dsr`]).

use crate::store::TenantRead;
use axum::Json;
use serde::{Deserialize, Serialize};
use steward::model::{AuditStatus, SubjectKey, SubjectKind};
use steward::permissions::Permission;
use steward::resource::Operation;
use steward::resource::Resource;
use steward::wire::List;

use super::ctx::TenantCtx;
use super::extract::Q;
use crate::error::ApiError;
use crate::store::TenantWrite;

/// The identifiers searched for (at least one).
#[derive(Debug, Default, Deserialize)]
pub struct SubjectQuery {
    /// An email address or UPN.
    pub email: Option<String>,
    /// A phone number (matched by its digits).
    pub phone: Option<String>,
    /// An IP address.
    pub ip: Option<String>,
    /// An account name.
    pub user: Option<String>,
    /// A host name.
    pub host: Option<String>,
}

/// One record naming the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The record's collection: `contacts`, `alerts`, `jit-requests`, `jit-policies`.
    pub kind: &'static str,
    /// The record's name or id.
    pub id: String,
    /// The field path that holds the identifier.
    pub field: String,
    /// The identifier kind that matched: `email`, `phone`, `ip`, `user`, `host`.
    pub matched: &'static str,
}

/// Parses the query into model keys, or 400 naming each bad parameter.
fn keys(q: &SubjectQuery) -> Result<Vec<SubjectKey>, ApiError> {
    let mut out = Vec::new();
    for (kind, v) in [
        (SubjectKind::Email, &q.email),
        (SubjectKind::Phone, &q.phone),
        (SubjectKind::Ip, &q.ip),
        (SubjectKind::User, &q.user),
        (SubjectKind::Host, &q.host),
    ] {
        let Some(raw) = v else { continue };
        let key = SubjectKey::new(kind, raw, kind.as_str()).ok_or_else(|| {
            ApiError::invalid(format!("not a valid {}", kind.as_str())).with_target(kind.as_str())
        })?;
        out.push(key);
    }
    if out.is_empty() {
        return Err(
            ApiError::invalid("name at least one of email, phone, ip, user, host")
                .with_target("query"),
        );
    }
    Ok(out)
}

/// `GET /v1/tenants/{t}/subjects`.
pub async fn search(ctx: TenantCtx, Q(q): Q<SubjectQuery>) -> Result<Json<List<Hit>>, ApiError> {
    ctx.require(Permission::DsrManage, "subjects").await?;
    let keys = keys(&q)?;
    let lookup = keys.clone();
    let hits = ctx
        .read(move |r| {
            let mut out = Vec::new();
            for key in &lookup {
                for h in r.subjects(key)? {
                    // Data-subject requests are not indexed; bookkeeping has no resource.
                    let Some(resource) = h.kind.resource().filter(|r| *r != Resource::Dsr) else {
                        continue;
                    };
                    out.push(Hit {
                        kind: resource.segment(),
                        id: h.name,
                        field: h.field,
                        matched: key.kind.as_str(),
                    });
                }
            }
            Ok(out)
        })
        .await?;
    let mut entry = ctx
        .entry(Operation::SubjectsSearch, AuditStatus::Succeeded)
        .resource("subjects")
        .count("hits", hits.len() as u64);
    for key in &keys {
        entry = entry.field(key.kind.as_str()).subject(key);
    }
    ctx.write(move |txn: &mut dyn TenantWrite| {
        txn.audit(entry);
        Ok(())
    })
    .await?;
    Ok(Json(List {
        value: hits,
        next_link: None,
    }))
}

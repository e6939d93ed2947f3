//! Turning stored documents into API resources, and the small checks every resource
//! route shares.

use crate::store::TenantRead;
use http::header::ETAG;
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use steward::model::AuditStatus;
use steward::names::ResourceName;
use steward::permissions::Permission;
use steward::resource::Resource;
use steward::wire::List;

use super::arm::Mount;
use super::ctx::TenantCtx;
use super::orderby::{self, Dir};
use super::paging;
use crate::error::ApiError;
use crate::store::{AuditEntry, Doc, DocInput, IfMatch, Kind, TenantWrite};

/// The resource as served: the stored JSON with the current `etag`.
pub fn doc_json(doc: &Doc) -> Result<Value, ApiError> {
    resource_json(&doc.body_json, &doc.etag)
}

/// [`doc_json`] of a stored body and etag.
pub fn resource_json(body_json: &str, etag: &str) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_str(body_json).map_err(|e| ApiError::internal(&e))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("etag".into(), Value::String(etag.to_owned()));
    }
    Ok(v)
}

/// Appends the resource as served to `buf`: the same bytes as writing [`doc_json`]'s
/// value, without building it. The stored text (an object, as serde_json wrote it) is
/// copied with `,"etag":"…"}` spliced before its closing brace: parsing every body into a
/// `Value` and writing it back was most of an export's and a list page's time
/// (docs/PERFORMANCE.md). A body with an `etag` of its own (which would keep its place in
/// the object) takes the `doc_json` path. A key that decodes to `etag` is spelled `etag`
/// or holds a `\u` escape, so a body with neither is not scanned at all; one with either
/// is scanned (without allocating) for a top-level `etag`.
pub fn write_doc_json(doc: &Doc, buf: &mut Vec<u8>) -> Result<(), ApiError> {
    write_resource(&doc.body_json, &doc.etag, buf)
}

/// [`write_doc_json`] of a stored body and etag.
pub fn write_resource(body_json: &str, etag: &str, buf: &mut Vec<u8>) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    struct Top {
        #[serde(default, deserialize_with = "present")]
        etag: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| true)
    }
    let body = body_json.trim();
    let may_hold_etag = body.contains("etag") || body.contains("\\u");
    let own_etag =
        may_hold_etag && !matches!(serde_json::from_str::<Top>(body), Ok(Top { etag: false }));
    if !own_etag
        && body.starts_with('{')
        && let Some(head) = body.strip_suffix('}')
    {
        buf.extend_from_slice(head.as_bytes());
        if !head.trim_end().ends_with('{') {
            buf.push(b',');
        }
        buf.extend_from_slice(b"\"etag\":");
        serde_json::to_writer(&mut *buf, etag).map_err(|e| ApiError::internal(&e))?;
        buf.push(b'}');
        return Ok(());
    }
    serde_json::to_writer(buf, &resource_json(body_json, etag)?).map_err(|e| ApiError::internal(&e))
}

/// A record as a list serves it: [`write_doc_json`]'s bytes as raw JSON text, so no
/// `Value` is built for it.
pub fn raw_doc_json(doc: &Doc) -> Result<Box<RawValue>, ApiError> {
    let mut buf = Vec::with_capacity(doc.body_json.len() + 48);
    write_doc_json(doc, &mut buf)?;
    let text = String::from_utf8(buf).map_err(|e| ApiError::internal(&e))?;
    RawValue::from_string(text).map_err(|e| ApiError::internal(&e))
}

/// The `ETag` header (quoted) for an etag.
pub fn etag_header(etag: &str) -> [(http::HeaderName, HeaderValue); 1] {
    let v =
        HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"\""));
    [(ETAG, v)]
}

/// A resource name from the path, or 400.
pub fn resource_name(name: &str) -> Result<ResourceName, ApiError> {
    ResourceName::parse(name).map_err(|e| ApiError::invalid(e.to_string()).with_target("name"))
}

/// The record `name` of `kind` for a `GET`: `needed` is checked first (a refusal names
/// `{segment}/{name}`), then the name, then the read; 404 with `missing` when there is none.
pub async fn get_record(
    ctx: &TenantCtx,
    needed: Permission,
    kind: Kind,
    name: &str,
    missing: &'static str,
) -> Result<Doc, ApiError> {
    let segment = kind.resource().map_or("", Resource::segment);
    ctx.require(needed, &format!("{segment}/{name}")).await?;
    let name = resource_name(name)?;
    ctx.read(move |r| Ok(r.get(kind, name.as_str())?))
        .await?
        .ok_or_else(|| ApiError::not_found(missing))
}

/// `?limit=&cursor=` of a list in name order (other parameters, such as the ARM paths'
/// `api-version`, which the ARM mount checks before the handler runs, are ignored here).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Page size.
    pub limit: Option<usize>,
    /// Where to resume.
    pub cursor: Option<String>,
    /// `name asc` (the default) or `name desc` ([`super::orderby::name_order`]).
    pub orderby: Option<String>,
}

/// One page of a tenant's records of `kind` in name order (`?orderby=name desc`: reversed),
/// as the list envelope: checks
/// `needed`, resumes after the cursor of the list called `list`, serves each record
/// with `to_json`, and links the next page at `path` (with the mount's `api-version`).
pub async fn name_page(
    ctx: &TenantCtx,
    needed: Permission,
    kind: Kind,
    list: &str,
    q: &ListQuery,
    (path, mount): (&str, Mount),
    mut to_json: impl FnMut(&Doc) -> Result<Value, ApiError>,
) -> Result<List<Value>, ApiError> {
    ctx.require(needed, list).await?;
    let limit = paging::limit(q.limit)?;
    let dir = orderby::name_order(q.orderby.as_deref())?;
    let list = orderby::cursor_list(list, dir);
    let after = match &q.cursor {
        Some(c) => Some(paging::decode(&ctx.tenant, &list, c)?),
        None => None,
    };
    let page = ctx
        .read(move |r| {
            Ok(match dir {
                Dir::Asc => r.list(kind, after.as_deref(), limit)?,
                Dir::Desc => r.list_desc(kind, after.as_deref(), limit)?,
            })
        })
        .await?;
    let value = page
        .items
        .iter()
        .map(&mut to_json)
        .collect::<Result<Vec<_>, _>>()?;
    let next = page.next.map(|n| paging::encode(&ctx.tenant, &list, &n));
    let mut query = mount.query();
    if let Some(o) = &q.orderby {
        query.push(("orderby", o.clone()));
    }
    Ok(paging::page(value, path, &query, limit, next))
}

/// A PUT's precondition, from its headers: `If-Match` (an etag, or `*`: the record must
/// exist), `If-None-Match: *` (a create: the name must be free), or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is stored.
    None,
    /// `If-Match`: the current etag must be this one (`*`: any, but it must exist).
    IfMatch(String),
    /// `If-None-Match: *`: nothing may be stored under the name.
    Create,
}

impl Precondition {
    /// Reads `If-Match` and `If-None-Match` (only `*` is meaningful on a PUT; any other
    /// value, or both headers at once, is a 400 naming the header).
    pub fn of(headers: &HeaderMap) -> Result<Precondition, ApiError> {
        let if_match = super::body::if_match(headers)?;
        let Some(none) = headers.get(http::header::IF_NONE_MATCH) else {
            return Ok(if_match.map_or(Precondition::None, Precondition::IfMatch));
        };
        if none.to_str().map(str::trim).ok() != Some("*") {
            return Err(ApiError::invalid(
                "If-None-Match on a PUT must be `*` (create only if the name is free)",
            )
            .with_target("If-None-Match"));
        }
        if if_match.is_some() {
            return Err(ApiError::invalid(
                "If-Match and If-None-Match cannot both be given: one replaces, the other creates",
            )
            .with_target("If-None-Match"));
        }
        Ok(Precondition::Create)
    }
}

/// Creates or replaces `name` of `kind` in a write job under `pre`: `(doc, created)`. A
/// precondition that does not hold answers 412 and audits `failed` (with the reason) while
/// the job's changes are discarded, like every refused write.
pub fn put_under(
    txn: &mut dyn TenantWrite,
    kind: Kind,
    name: &ResourceName,
    input: DocInput,
    pre: Precondition,
    failed: AuditEntry,
) -> Result<(Doc, bool), ApiError> {
    match pre {
        Precondition::Create => {
            if let Some(cur) = txn.get(kind, name.as_str())? {
                txn.audit_on_failure(failed.reason("If-None-Match: * but the name is taken"));
                return Err(ApiError::new(
                    http::StatusCode::PRECONDITION_FAILED,
                    steward::wire::codes::PRECONDITION_FAILED,
                    format!(
                        "If-None-Match: * asks for a create, but `{name}` already exists (etag \"{}\"): read it and replace it with If-Match instead",
                        cur.etag
                    ),
                ));
            }
            Ok((txn.put(kind, name, input, None)?, true))
        }
        Precondition::IfMatch(tag) => {
            let cond = IfMatch {
                tag: Some(tag),
                failed,
            };
            Ok(txn.replace_if_match(kind, name, input, cond)?)
        }
        Precondition::None => {
            let cond = IfMatch { tag: None, failed };
            Ok(txn.replace_if_match(kind, name, input, cond)?)
        }
    }
}

/// `DELETE` of a named record of `kind` (contacts, JIT policies): needs the kind's write
/// permission; honours `If-Match` (a refused one is audited as failed and answers 412);
/// the audit record names the people the record named, as HMACs. `here` says whether the
/// stored record is the one the path means (the ARM paths name a policy's resource group
/// and location too). Answers the deleted record, or `None` when there was none here
/// (the `/v1` mount answers that 404, the ARM mount 204, as the API's spec says).
pub async fn delete(
    ctx: &TenantCtx,
    kind: Resource,
    name: &str,
    headers: &HeaderMap,
    here: impl FnOnce(&Doc) -> Result<bool, ApiError> + Send + 'static,
) -> Result<Option<Doc>, ApiError> {
    let (Some(permission), Some(operation), Some(stored)) = (
        kind.write_permission(),
        kind.delete_operation(),
        Kind::of(kind),
    ) else {
        return Err(ApiError::method_not_allowed(format!(
            "{kind} cannot be deleted"
        )));
    };
    let resource = format!("{kind}/{name}");
    ctx.require(permission, &resource).await?;
    let name = resource_name(name)?;
    let cond = IfMatch {
        tag: super::body::if_match(headers)?,
        failed: ctx
            .entry(operation, AuditStatus::Failed)
            .resource(&resource),
    };
    let entry = ctx
        .entry(operation, AuditStatus::Succeeded)
        .resource(&resource);
    let gone = ctx
        .write(move |txn| {
            match txn.get(stored, name.as_str())? {
                Some(cur) if here(&cur)? => {}
                _ => return Ok(None),
            }
            let doc = txn.delete_if_match(stored, name.as_str(), cond)?;
            let entry = doc.subjects.iter().fold(entry, |e, s| e.subject(s));
            txn.audit(entry);
            Ok::<_, ApiError>(Some(doc))
        })
        .await;
    match gone {
        Err(e) if e.status == http::StatusCode::NOT_FOUND => Ok(None),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> Doc {
        Doc {
            kind: Kind::Alert,
            name: "a".into(),
            etag: "0190-e\"t".into(),
            created_at_micros: 0,
            updated_at_micros: 0,
            body_json: body.to_owned(),
            subjects: Vec::new(),
            schedule: Vec::new(),
            time: None,
        }
    }

    /// Stored bodies are serde_json's own output, so the bytes equal `doc_json`'s.
    #[test]
    fn written_records_equal_their_api_shape() {
        for body in [
            r#"{"name":"a1","properties":{"severity":"High","n":1.5,"s":"é\"\\"}}"#,
            r#"{}"#,
            r#"{"name":"a2","etag":"theirs","properties":{}}"#,
            r#"{"name":"a3","etag":null}"#,
            r#"{"name":"a4","e\u0074ag":"escaped","properties":{}}"#,
            r#"{"name":"a5","properties":{"description":"the etag is not a key here","x":"\u0001"}}"#,
            r#"{"name":"a6","properties":{"etag":"nested, not top-level"}}"#,
            r#"[1,{"a":"}"}]"#,
            r#""a string}""#,
        ] {
            let d = doc(body);
            let want = serde_json::to_string(&doc_json(&d).unwrap()).unwrap();
            let mut buf = Vec::new();
            write_doc_json(&d, &mut buf).unwrap();
            assert_eq!(String::from_utf8(buf).unwrap(), want, "{body}");
            let raw = raw_doc_json(&d).unwrap();
            assert_eq!(raw.get(), want, "{body}");
        }
    }
}

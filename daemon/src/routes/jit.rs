//! JIT network access: policies (list, get, create or replace, delete), initiating a
//! request under a policy, and requests (list, get, revoke). The policy handlers answer
//! on both mounts ([`Mount`]): on the ARM paths the resource group and location in the
//! path ([`At`]) place a policy when it is put, filter the lists, and must be the
//! policy's for a get, delete or initiate (else 404; a delete answers 204).
//!
//! A policy is stored without its requests; `properties.requests` is filled when it is
//! served, from the tenant's request records. A request is its own record (key: its id, a
//! UUIDv7, so name order is creation order) scheduled by
//! [`crate::jit::request_input`]: the expiry timer closes it at its end
//! and retention removes it `[retention] jit_requests` later. Every change is audited with
//! field names and the people it concerns as subjects (HMACs), and the `jit.on_change`
//! hook runs after each open and close, off the request path.

use crate::store::TenantRead;
use std::collections::BTreeMap;
use std::sync::Arc;
use steward::names::ResourceName;
use steward::resource::{Operation, Resource};

use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use serde_json::Value;
use steward::model::{
    AuditStatus, InitiateRequest, JitPolicy, JitPolicyInput, JitRequest, RevokeReason,
};
use steward::permissions::Permission;
use steward::wire::List;

use super::arm::{At, Mount};
use super::body;
use super::ctx::TenantCtx;
use super::extract::{P, Q};
use super::idempotency::{IdempotencyKey, Outcome};
use super::orderby::{self, Dir};
use super::paging;
use super::resource::{self, ListQuery, Precondition, get_record, name_page};
use super::resource::{doc_json, etag_header, resource_name};
use crate::error::ApiError;
use crate::jit::{self, request_input};
use crate::records::Stored;
use crate::store::{Doc, Kind, TenantReader, TenantWrite};
use crate::timers::hook::{self, HookEvent};

/// Cursor list name of policies.
const POLICIES: &str = "jit-policies";
/// Cursor list name of requests.
const REQUESTS: &str = "jit-requests";
/// Records read per page when scanning every request of a tenant.
const SCAN: usize = 500;

fn now_of(txn: &dyn TenantWrite) -> Timestamp {
    Timestamp::from_microsecond(txn.now_micros()).unwrap_or_else(|_| Timestamp::now())
}

/// Every request of the tenant as served, by policy name (one scan of the requests).
fn requests_by_policy(r: &TenantReader) -> Result<BTreeMap<String, Vec<Value>>, ApiError> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = r.list(Kind::JitRequest, after.as_deref(), SCAN)?;
        for doc in &page.items {
            let v = doc.body().map_err(|e| ApiError::internal(&e))?;
            let policy = v
                .get("policyName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            out.entry(policy).or_default().push(v);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// A policy as served: its record with `properties.requests` filled.
fn policy_json(doc: &Doc, requests: Vec<Value>) -> Result<Value, ApiError> {
    let mut v = doc_json(doc)?;
    if let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("requests".into(), Value::Array(requests));
    }
    Ok(v)
}

/// A stored policy.
fn policy_of(doc: &Doc) -> Result<JitPolicy, ApiError> {
    Ok(JitPolicy::from_doc(doc)?)
}

/// `GET /v1/tenants/{t}/jit-policies` and the ARM lists (of the subscription, a region,
/// a resource group, or both): the policies at the path's resource group and location,
/// in name order, each with its requests.
pub async fn list_policies(
    ctx: TenantCtx,
    mount: Mount,
    P(at): P<At>,
    Q(q): Q<ListQuery>,
) -> Result<Json<List<Value>>, ApiError> {
    ctx.require(Permission::JitRead, POLICIES).await?;
    let (rg, loc) = at.placement()?;
    let limit = paging::limit(q.limit)?;
    let dir = orderby::name_order(q.orderby.as_deref())?;
    let list = orderby::cursor_list(POLICIES, dir);
    let after = match &q.cursor {
        Some(c) => Some(paging::decode(&ctx.tenant, &list, c)?),
        None => None,
    };
    let (docs, next, mut requests) = ctx
        .read(move |r| {
            let mut found: Vec<Doc> = Vec::new();
            let mut after = after;
            loop {
                let page = match dir {
                    Dir::Asc => r.list(Kind::JitPolicy, after.as_deref(), SCAN)?,
                    Dir::Desc => r.list_desc(Kind::JitPolicy, after.as_deref(), SCAN)?,
                };
                for doc in page.items {
                    if !policy_of(&doc)?.is_at(rg.as_deref(), loc.as_deref()) {
                        continue;
                    }
                    if found.len() == limit {
                        let next = found.last().map(|d| d.name.clone());
                        return Ok((found, next, requests_by_policy(r)?));
                    }
                    found.push(doc);
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => return Ok((found, None, requests_by_policy(r)?)),
                }
            }
        })
        .await?;
    let value = docs
        .iter()
        .map(|d| policy_json(d, requests.remove(&d.name).unwrap_or_default()))
        .collect::<Result<Vec<_>, _>>()?;
    let next = next.map(|n| paging::encode(&ctx.tenant, &list, &n));
    let path = at.list_path(&ctx, mount, "jit-policies", "jitNetworkAccessPolicies");
    let mut query = mount.query();
    if let Some(o) = &q.orderby {
        query.push(("orderby", o.clone()));
    }
    Ok(Json(paging::page(value, &path, &query, limit, next)))
}

/// Reads one policy with its requests, or 404 (also when it is not at the resource
/// group and location given).
async fn read_policy(
    ctx: &TenantCtx,
    name: String,
    rg: Option<String>,
    loc: Option<String>,
) -> Result<(Doc, Value), ApiError> {
    let name = resource_name(&name)?;
    let (doc, mut requests) = ctx
        .read(move |r| {
            let doc = r
                .get(Kind::JitPolicy, name.as_str())?
                .filter(|d| policy_of(d).is_ok_and(|p| p.is_at(rg.as_deref(), loc.as_deref())))
                .ok_or_else(|| ApiError::not_found("no such JIT policy"))?;
            Ok((doc, requests_by_policy(r)?))
        })
        .await?;
    let v = policy_json(&doc, requests.remove(&doc.name).unwrap_or_default())?;
    Ok((doc, v))
}

/// `GET …/jit-policies/{name}` and `GET …/resourceGroups/{rg}/…/locations/{loc}/
/// jitNetworkAccessPolicies/{name}`.
pub async fn get_policy(ctx: TenantCtx, P(at): P<At>) -> Result<Response, ApiError> {
    let name = at.name()?;
    ctx.require(Permission::JitRead, &format!("jit-policies/{name}"))
        .await?;
    let (rg, loc) = at.placement()?;
    let (doc, v) = read_policy(&ctx, name, rg, loc).await?;
    Ok((etag_header(&doc.etag), Json(v)).into_response())
}

/// `PUT …/jit-policies/{name}` on either mount. On `/v1`: 201 when created, 200 when
/// replaced; the location is the body's (default `local`; a replaced policy keeps its
/// own when the body names none) and a replaced policy keeps its resource group. On the ARM path: 200 either way (all its spec and SDK accept);
/// the path's resource group and location place it, and a policy of that name placed
/// elsewhere is a 409 (one name per tenant). `If-Match` and `If-None-Match: *` as for
/// contacts.
pub async fn put_policy(
    ctx: TenantCtx,
    mount: Mount,
    headers: HeaderMap,
    P(at): P<At>,
    raw: Body,
) -> Result<Response, ApiError> {
    let name = at.name()?;
    let resource = format!("jit-policies/{name}");
    ctx.require(Permission::JitWrite, &resource).await?;
    let name = resource_name(&name)?;
    let (rg, loc) = at.placement()?;
    let pre = Precondition::of(&headers)?;
    let value = body::object(&ctx.shared, &headers, raw).await?;
    let mut input = JitPolicyInput::parse(&value, &ctx.tenant)?;
    if let (Some(rg), Some(loc)) = (&rg, &loc) {
        input = input.at(rg, loc)?;
    }
    let placed = rg.is_some();
    let body_location = value.get("location").is_some_and(|l| !l.is_null());
    let entry = ctx
        .entry(Operation::JitWrite, AuditStatus::Succeeded)
        .resource(&resource)
        .field("kind")
        .field("location")
        .field("properties.virtualMachines");
    let failed = ctx
        .entry(Operation::JitWrite, AuditStatus::Failed)
        .resource(&resource);
    let (doc, created) = ctx
        .write(move |txn| {
            if let Some(cur) = txn.get(Kind::JitPolicy, name.as_str())? {
                let cur = policy_of(&cur)?;
                let group = cur.resource_group().map(str::to_owned);
                if placed && !cur.is_at(rg.as_deref(), loc.as_deref()) {
                    txn.audit_on_failure(failed.reason("the name is taken at another place"));
                    return Err(ApiError::conflict(format!(
                        "a JIT policy named `{name}` exists at resource group `{}`, location `{}`: delete it there first, or use another name (a name is unique in a subscription)",
                        group.as_deref().unwrap_or("-"),
                        cur.location
                    )));
                }
                if !placed && let Some(g) = group {
                    let loc = if body_location {
                        input.location().to_owned()
                    } else {
                        cur.location.clone()
                    };
                    input = input.at(&g, &loc)?;
                }
            }
            let policy = JitPolicy::new(&name, input, None);
            let put =
                resource::put_under(txn, Kind::JitPolicy, &name, policy.to_input()?, pre, failed)?;
            txn.audit(entry);
            Ok::<_, ApiError>(put)
        })
        .await?;
    // firewall: the policy's ports are the guards.
    crate::firewall::changed(&ctx.shared, &ctx.tenant, resource).await?;
    // The answer is the policy as committed, with its requests: read back by name, a
    // delete that lands in between would turn a committed PUT into a 404.
    let mut requests = ctx.read(requests_by_policy).await?;
    let v = policy_json(&doc, requests.remove(&doc.name).unwrap_or_default())?;
    let status = if created && !mount.is_arm() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, etag_header(&doc.etag), Json(v)).into_response())
}

/// `DELETE …/jit-policies/{name}` on either mount: 200 with the deleted policy; when
/// there is none (at the path's resource group and location), 404 on `/v1` and 204 on
/// the ARM path. Its requests stay (listable until retention removes them) and open
/// ports close at their own end.
pub async fn delete_policy(
    ctx: TenantCtx,
    mount: Mount,
    headers: HeaderMap,
    P(at): P<At>,
) -> Result<Response, ApiError> {
    let name = at.name()?;
    let (rg, loc) = at.placement()?;
    let here = move |d: &Doc| Ok(policy_of(d)?.is_at(rg.as_deref(), loc.as_deref()));
    let gone = resource::delete(&ctx, Resource::JitPolicies, &name, &headers, here).await?;
    let Some(doc) = gone else {
        return if mount.is_arm() {
            Ok(StatusCode::NO_CONTENT.into_response())
        } else {
            Err(ApiError::not_found("no such JIT policy"))
        };
    };
    let resource = format!("jit-policies/{name}");
    crate::firewall::changed(&ctx.shared, &ctx.tenant, resource).await?; // firewall
    Ok((StatusCode::OK, Json(doc_json(&doc)?)).into_response())
}

/// `POST …/jit-policies/{name}/initiate` on either mount (the ARM path's resource group
/// and location must be the policy's): 202 with the new request. The
/// requestor is the caller's OS user. In the same write job, every open port of an older
/// request that the new one opens again closes with `NewerRequestInitiated`.
pub async fn initiate(
    ctx: TenantCtx,
    headers: HeaderMap,
    P(at): P<At>,
    raw: Body,
) -> Result<Response, ApiError> {
    let name = at.name()?;
    ctx.require(
        Permission::JitRequest,
        &format!("jit-policies/{name}/initiate"),
    )
    .await?;
    let name = resource_name(&name)?;
    let (rg, loc) = at.placement()?;
    let value = body::object(&ctx.shared, &headers, raw).await?;
    let asked = InitiateRequest::parse(&value, &ctx.tenant)?;
    // The path's placement is part of what is asked: a retry of the key at another
    // group or location is another request (422), not a replay of the first answer.
    // (Placements compare without case, as the lists filter them.)
    let place = format!(
        "{}/{}",
        rg.as_deref().unwrap_or("-"),
        loc.as_deref().unwrap_or("-")
    )
    .to_ascii_lowercase();
    let key = IdempotencyKey::of(
        &ctx,
        &headers,
        &format!("{} jit-policies/{name} at {place}", Operation::JitInitiate),
        value.to_string().as_bytes(),
    )?;
    let requestor = ctx.caller.user.clone();
    let id = ResourceName::fresh();
    let request_id = id.clone();
    // firewall: with `[jit] firewall`, every port needs a target it can open.
    let cfg = ctx.shared.config();
    let firewall = crate::firewall::enabled(&cfg).then(|| cfg.jit.clone());
    let retention = ctx.shared.config().retention.jit_requests.0;
    let tenant = ctx.tenant.clone();
    let opened = ctx.entry(Operation::JitInitiate, AuditStatus::Succeeded);
    let superseded = ctx.entry(Operation::JitRevoke, AuditStatus::Succeeded);
    let (outcome, replayed, hooks) = ctx
        .write(move |txn| {
            if let Some(k) = &key
                && let Some(o) = k.recorded(txn)?
            {
                return Ok((o, true, Vec::new()));
            }
            let policy = txn
                .get(Kind::JitPolicy, name.as_str())?
                .map(|d| policy_of(&d))
                .transpose()?
                .filter(|p| p.is_at(rg.as_deref(), loc.as_deref()))
                .ok_or_else(|| ApiError::not_found("no such JIT policy"))?;
            let now = now_of(txn);
            let req = policy.initiate(&asked, &requestor, now, id.to_string())?;
            if let Some(jit) = &firewall {
                crate::firewall::check_request(jit, &req)?; // firewall: 400 naming the port
            }
            let mut hooks = jit::supersede(txn, &req, now, retention, &superseded)?;
            let doc = txn.put(Kind::JitRequest, &id, request_input(&req, retention)?, None)?;
            let mut e = opened
                .resource(format!("jit-requests/{id}"))
                .field("virtualMachines")
                .field("startTimeUtc")
                .field("requestor");
            if req.justification.is_some() {
                e = e.field("justification");
            }
            for k in &req.subject_keys() {
                e = e.subject(k);
            }
            txn.audit(e);
            hooks.push(HookEvent::opened(&tenant, &req));
            let outcome = Outcome::json(StatusCode::ACCEPTED, None, &doc_json(&doc)?)?;
            if let Some(k) = &key {
                k.record(txn, outcome.clone())?;
            }
            Ok((outcome, false, hooks))
        })
        .await?;
    hook::spawn(Arc::clone(&ctx.shared), hooks);
    if !replayed {
        // firewall: open the doors (close superseded ones) before answering.
        crate::firewall::opened(&ctx.shared, &ctx.tenant, &request_id).await?;
    }
    Ok(outcome.into_response(replayed))
}

/// `GET /v1/tenants/{t}/jit-requests`: oldest first (ids are time-ordered).
pub async fn list_requests(
    ctx: TenantCtx,
    Q(q): Q<ListQuery>,
) -> Result<Json<List<Value>>, ApiError> {
    let path = format!("{}/jit-requests", ctx.base());
    let page = name_page(
        &ctx,
        Permission::JitRead,
        Kind::JitRequest,
        REQUESTS,
        &q,
        (&path, Mount::V1),
        doc_json,
    )
    .await?;
    Ok(Json(page))
}

/// `GET /v1/tenants/{t}/jit-requests/{id}`.
pub async fn get_request(
    ctx: TenantCtx,
    P((_, id)): P<(String, String)>,
) -> Result<Response, ApiError> {
    let missing = "no such JIT request";
    let doc = get_record(&ctx, Permission::JitRead, Kind::JitRequest, &id, missing).await?;
    Ok((etag_header(&doc.etag), Json(doc_json(&doc)?)).into_response())
}

/// `POST /v1/tenants/{t}/jit-requests/{id}/revoke`: closes every open port
/// (`UserRequested`, ending now) and reschedules its purge; 409 when none is open.
pub async fn revoke(
    ctx: TenantCtx,
    headers: HeaderMap,
    P((_, id)): P<(String, String)>,
) -> Result<Response, ApiError> {
    let resource = format!("jit-requests/{id}");
    ctx.require(Permission::JitRequest, &format!("{resource}/revoke"))
        .await?;
    let id = resource_name(&id)?;
    let if_match = body::if_match(&headers)?;
    let retention = ctx.shared.config().retention.jit_requests.0;
    let tenant = ctx.tenant.clone();
    let entry = ctx
        .entry(Operation::JitRevoke, AuditStatus::Succeeded)
        .resource(&resource)
        .field("virtualMachines[].ports[].status")
        .reason(RevokeReason::UserRequested.as_str());
    let failed = ctx
        .entry(Operation::JitRevoke, AuditStatus::Failed)
        .resource(&resource);
    let (doc, hook) = ctx
        .write(move |txn| {
            let cur = txn
                .get(Kind::JitRequest, id.as_str())?
                .ok_or_else(|| ApiError::not_found("no such JIT request"))?;
            if let Some(want) = if_match.as_deref()
                && want != "*"
                && want != cur.etag
            {
                txn.audit_on_failure(failed.reason("If-Match did not match"));
                return Err(ApiError::precondition_failed(Some(&cur.etag)));
            }
            let mut req = JitRequest::from_doc(&cur)?;
            let before = req.clone();
            if req.revoke_all(RevokeReason::UserRequested, now_of(txn)) == 0 {
                return Err(ApiError::conflict("the request has no open port to revoke"));
            }
            let doc = txn.put(Kind::JitRequest, &id, request_input(&req, retention)?, None)?;
            let mut entry = entry;
            for k in &req.subject_keys() {
                entry = entry.subject(k);
            }
            txn.audit(entry);
            txn.emit(Kind::JitRequest, id.as_str(), "revoked");
            Ok((doc, HookEvent::closed(&tenant, &before, &req)))
        })
        .await?;
    hook::spawn(Arc::clone(&ctx.shared), vec![hook]);
    crate::firewall::changed(&ctx.shared, &ctx.tenant, resource).await?; // firewall
    Ok((etag_header(&doc.etag), Json(doc_json(&doc)?)).into_response())
}

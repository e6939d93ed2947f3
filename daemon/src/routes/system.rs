//! The routes that are not about one tenant's records: health, whoami, the caller's
//! tenants, and the change-event stream.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, header};
use serde::Deserialize;
use steward::permissions::Permission;
use steward::wire::{Event, GrantInfo, Health, List, TenantInfo, WhoAmI};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::{CallerExt, acting_role};
use crate::access;
use crate::error::ApiError;
use crate::state::Shared;
use crate::store::{ChangeEvent, Kind};

/// `GET /v1/health`.
pub async fn health(State(shared): State<Arc<Shared>>) -> Json<Health> {
    let status = if shared.shutdown.is_cancelled() {
        "shutting-down"
    } else {
        "ok"
    };
    Json(Health {
        status: status.into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// `GET /v1/whoami`: the caller as the daemon sees it, with every grant per tenant.
pub async fn whoami(
    State(shared): State<Arc<Shared>>,
    CallerExt(caller): CallerExt,
) -> Json<WhoAmI> {
    let cfg = shared.config();
    let grants = cfg
        .tenants
        .iter()
        .flat_map(|t| {
            access::profiles_in(&cfg, &caller, t.id.as_str())
                .into_iter()
                .map(|profile| GrantInfo {
                    tenant: t.id.to_string(),
                    profile,
                })
        })
        .collect();
    Json(WhoAmI {
        uid: caller.uid,
        gid: caller.gid,
        user: caller.user.clone(),
        groups: caller.groups.clone(),
        grants,
    })
}

/// `GET /v1/tenants`: each tenant the caller holds a grant in.
pub async fn tenants(
    State(shared): State<Arc<Shared>>,
    CallerExt(caller): CallerExt,
) -> Json<List<TenantInfo>> {
    let cfg = shared.config();
    let value = cfg
        .tenants
        .iter()
        .filter_map(|t| {
            let held = access::held_in(&cfg, &caller, t.id.as_str())?;
            Some(TenantInfo {
                id: t.id.to_string(),
                display_name: t.name.clone(),
                profiles: access::profiles_in(&cfg, &caller, t.id.as_str()),
                permissions: held,
                actable_profiles: cfg.profiles().actable(held),
            })
        })
        .collect();
    Json(List {
        value,
        next_link: None,
    })
}

/// The permission needed to see an event about records of `kind`.
fn read_permission(kind: &str) -> Permission {
    match kind {
        "contacts" => Permission::ContactsRead,
        "jit-policies" | "jit-requests" => Permission::JitRead,
        "alerts" => Permission::AlertsRead,
        "dsr" => Permission::DsrManage,
        _ => Permission::AuditRead,
    }
}

/// The wire form of a committed change.
fn wire_event(c: &ChangeEvent) -> Event {
    Event {
        seq: c.seq,
        at: jiff::Timestamp::from_microsecond(c.at_micros)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_string(),
        tenant: c.tenant.clone(),
        kind: kind_name(c.kind).to_owned(),
        name: c.name.clone(),
        action: c.action.clone(),
    }
}

/// The API's name for a kind of record (the path segment of its routes).
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Contact => "contacts",
        Kind::JitPolicy => "jit-policies",
        Kind::JitRequest => "jit-requests",
        Kind::Alert => "alerts",
        Kind::Dsr => "dsr",
        Kind::IdempotencyKey => "idempotency-keys",
    }
}

/// `?tenant=` of `/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this tenant's events.
    tenant: Option<String>,
}

/// `GET /v1/events[?tenant=t]`: an NDJSON stream of change events the caller may see,
/// judged against the configuration in force when each event is sent.
pub async fn events(
    State(shared): State<Arc<Shared>>,
    CallerExt(caller): CallerExt,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let acting = acting_role(&headers)?;
    if let Some(t) = &q.tenant {
        super::tenant_access(&shared, &caller, t, acting.as_deref())?;
    }
    let rx = shared.store.writer().subscribe();
    let stop = shared.shutdown.clone();
    let stream = BroadcastStream::new(rx)
        .take_until(async move { stop.cancelled().await })
        .filter_map(move |item| {
            let shared = Arc::clone(&shared);
            let caller = Arc::clone(&caller);
            let only = q.tenant.clone();
            let acting = acting.clone();
            async move {
                let line = match item {
                    Ok(change) => {
                        let ev = wire_event(&change);
                        if only.as_ref().is_some_and(|t| *t != ev.tenant) {
                            return None;
                        }
                        let cfg = shared.config();
                        let access =
                            access::resolve(&cfg, &caller, &ev.tenant, acting.as_deref()).ok()?;
                        if !access.allows(read_permission(&ev.kind)) {
                            return None;
                        }
                        serde_json::to_string(&ev).ok()?
                    }
                    Err(BroadcastStreamRecvError::Lagged(n)) => {
                        format!("{{\"lagged\":{n}}}")
                    }
                };
                Some(Ok::<_, std::io::Error>(format!("{line}\n")))
            }
        });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

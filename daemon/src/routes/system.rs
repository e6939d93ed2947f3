//! The routes that are not about one tenant's records: health, whoami, the caller's
//! tenants, and the change-event stream.

use std::sync::Arc;
use steward::names::TenantId;

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};
use serde::Deserialize;
use steward::resource::Resource;
use steward::wire::{Event, GrantInfo, Health, List, TenantInfo, WhoAmI};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{CallerExt, acting_role};
use crate::access;
use crate::error::ApiError;
use crate::identity::{Caller, Identity};
use crate::state::Shared;
use crate::store::ChangeEvent;

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
            access::profiles_in(&cfg, &caller, &t.id)
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
            let held = access::held_in(&cfg, &caller, &t.id)?;
            Some(TenantInfo {
                id: t.id.to_string(),
                display_name: t.name.clone(),
                profiles: access::profiles_in(&cfg, &caller, &t.id),
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

/// The wire form of a committed change, and the resource it is about; `None` for a
/// change to bookkeeping records (never announced).
fn wire_event(c: &ChangeEvent) -> Option<(Event, Resource)> {
    let resource = c.kind.resource()?;
    let event = Event {
        seq: c.seq,
        at: jiff::Timestamp::from_microsecond(c.at_micros)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_string(),
        tenant: c.tenant.to_string(),
        kind: resource.segment().to_owned(),
        name: c.name.clone(),
        action: c.action.clone(),
    };
    Some((event, resource))
}

/// `?tenant=` of `/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this tenant's events.
    tenant: Option<String>,
}

/// `GET /v1/events[?tenant=t]`: an NDJSON stream of change events the caller may see,
/// judged against the configuration in force and the caller's current groups when each
/// event is sent.
///
/// The caller is resolved again whenever its resolution is stale (`[limits]
/// identity_refresh`, at least every 30 s, and on every configuration put in force),
/// also while no event comes. A stream whose grant is gone (the tenant of `?tenant=`, or
/// any tenant it was following) ends with a last line `{"closed": "GrantRevoked",
/// "message": …}`; one whose caller can no longer be looked up ends with
/// `{"closed": "IdentityUnavailable", …}`.
pub async fn events(
    State(shared): State<Arc<Shared>>,
    CallerExt(caller): CallerExt,
    Extension(identity): Extension<Arc<Identity>>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let acting = acting_role(&headers)?;
    let only = q.tenant.as_deref().map(super::parse_tenant).transpose()?;
    if let Some(t) = &only {
        super::tenant_access(&shared, &caller, t, acting.as_deref())?;
    }
    let cfg = shared.config();
    let following = match &only {
        Some(t) => vec![t.clone()],
        None => cfg
            .tenants
            .iter()
            .map(|t| t.id.clone())
            .filter(|t| access::resolve(&cfg, &caller, t, acting.as_deref()).is_ok())
            .collect(),
    };
    let refresh = cfg.limits.identity_refresh.0;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = EventStream {
        rx: shared.store.writer().subscribe(),
        generation: shared.watch_generation(),
        stop: shared.shutdown.clone(),
        shared,
        identity,
        only,
        following,
        acting,
        tick,
        ended: false,
    };
    let lines = futures::stream::unfold(stream, |mut s| async move {
        let line = s.next_line().await?;
        Some((Ok::<_, std::io::Error>(line), s))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// The state of one `/v1/events` stream.
struct EventStream {
    /// Committed changes.
    rx: crate::store::Subscription,
    /// Moves when a configuration is put in force.
    generation: watch::Receiver<u64>,
    /// Cancelled when the daemon drains.
    stop: CancellationToken,
    /// The daemon's state.
    shared: Arc<Shared>,
    /// The connection's caller.
    identity: Arc<Identity>,
    /// `?tenant=`.
    only: Option<TenantId>,
    /// The tenants the stream follows: the stream ends when one is no longer granted.
    following: Vec<TenantId>,
    /// The `X-Steward-Role` profile.
    acting: Option<String>,
    /// When the caller is looked up again.
    tick: tokio::time::Interval,
    /// The last line has been sent.
    ended: bool,
}

impl EventStream {
    /// The next line to send, or `None` when the stream is over.
    async fn next_line(&mut self) -> Option<String> {
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return None,
                item = self.rx.recv() => match item {
                    Ok(change) => {
                        if let Some(line) = self.event_line(&change).await {
                            return Some(line);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        return Some(format!("{{\"lagged\":{n}}}\n"));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    if let Some(last) = self.recheck().await {
                        return Some(last);
                    }
                }
                changed = self.generation.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    if let Some(last) = self.recheck().await {
                        return Some(last);
                    }
                }
            }
        }
    }

    /// The caller as of now, or the last line saying why it cannot be told.
    async fn caller(&mut self) -> Result<Arc<Caller>, String> {
        let refresh = self.shared.config().limits.identity_refresh.0;
        match self
            .identity
            .current(refresh, self.shared.generation())
            .await
        {
            Ok(c) => Ok(c),
            Err(e) => {
                self.ended = true;
                Err(closing_line(
                    "IdentityUnavailable",
                    &format!("the daemon cannot tell who you are right now: {e}"),
                ))
            }
        }
    }

    /// The line for `change`, if the caller may see it now.
    async fn event_line(&mut self, change: &ChangeEvent) -> Option<String> {
        let (ev, resource) = wire_event(change)?;
        if self.only.as_ref().is_some_and(|t| *t != change.tenant) {
            return None;
        }
        let caller = match self.caller().await {
            Ok(c) => c,
            Err(last) => return Some(last),
        };
        let cfg = self.shared.config();
        let access = access::resolve(&cfg, &caller, &change.tenant, self.acting.as_deref()).ok()?;
        if !access.allows(resource.read_permission()) {
            return None;
        }
        serde_json::to_string(&ev).ok().map(|l| format!("{l}\n"))
    }

    /// Looks the caller up again; the last line when a followed grant is gone.
    async fn recheck(&mut self) -> Option<String> {
        let caller = match self.caller().await {
            Ok(c) => c,
            Err(last) => return Some(last),
        };
        let cfg = self.shared.config();
        let lost = self
            .following
            .iter()
            .find(|t| access::resolve(&cfg, &caller, t, self.acting.as_deref()).is_err())?;
        self.ended = true;
        Some(closing_line(
            "GrantRevoked",
            &format!(
                "{} no longer holds a grant in tenant {lost} (group membership or configuration changed)",
                caller.user
            ),
        ))
    }
}

/// The last line of a stream that ends for `code`.
fn closing_line(code: &str, message: &str) -> String {
    let v = serde_json::json!({"closed": code, "message": message});
    format!("{v}\n")
}

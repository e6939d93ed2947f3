//! Change events across a fleet: what one daemon commits, the subscribers of every other
//! daemon on the same database see (`/v1/events`, the timers' wake-ups).
//!
//! The writer announces each landed job's events with `pg_notify` inside the group's own
//! transaction ([`notify`]): PostgreSQL delivers a notification only when its transaction
//! commits, so only committed changes are announced, after they are readable. Each daemon
//! runs one listener thread ([`spawn`]) on a connection of its own (`LISTEN
//! steward_events`) that feeds what the others announced into the daemon's own broadcast
//! channel, numbered there per tenant and kind like a local event (so the numbers a
//! subscriber sees say nothing of other tenants). A payload carries what a local event
//! does and nothing more: tenant, kind, name, action, commit time, plus the announcing
//! store's random origin id, by which a daemon skips its own writes (already sent
//! locally). When the listener's connection drops it reconnects every second, and once
//! listening again tells every subscriber it may have missed events (a lag).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, Transaction};
use serde::{Deserialize, Serialize};
use steward::names::TenantId;

use super::pool;
use crate::store::doc::Kind;
use crate::store::error::StoreError;
use crate::store::group::Ran;
use crate::store::writer::Shared;

/// The notification channel every daemon of a fleet listens on.
pub(crate) const CHANNEL: &str = "steward_events";
/// PostgreSQL refuses a payload of 8000 bytes or more; an event larger than this (none
/// is: names are bounded far below) is announced as a gap instead.
const MAX_PAYLOAD: usize = 7900;
/// How long the listener waits for a notification before looking at the stop flag.
const POLL: Duration = Duration::from_millis(500);
/// Wait between reconnection attempts.
const RECONNECT: Duration = Duration::from_secs(1);

/// One announced change, as it travels in a notification's payload.
#[derive(Debug, Serialize, Deserialize)]
struct Announcement {
    /// The announcing store's origin id.
    o: String,
    /// Position in its group: makes payloads of one transaction distinct (PostgreSQL
    /// folds identical payloads of one transaction into one).
    i: usize,
    /// Tenant (absent on a gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    /// Kind's stored byte.
    #[serde(default)]
    k: u8,
    /// Record name.
    #[serde(default)]
    n: String,
    /// Action.
    #[serde(default)]
    a: String,
    /// Commit time of the group, Unix microseconds.
    #[serde(default)]
    at: i64,
}

/// The payloads announcing the events of the landed jobs of a group about to commit.
pub(super) fn payloads(origin: &str, ran: &[Ran], now_micros: i64) -> Vec<String> {
    let mut out = Vec::new();
    for r in ran.iter().filter(|r| r.closure_ok && r.refusal.is_none()) {
        for ev in &r.events {
            let i = out.len();
            let a = Announcement {
                o: origin.to_owned(),
                i,
                t: Some(r.tenant.as_str().to_owned()),
                k: ev.kind.as_u8(),
                n: ev.name.clone(),
                a: ev.action.clone(),
                at: now_micros,
            };
            let text = serde_json::to_string(&a).unwrap_or_default();
            out.push(if text.is_empty() || text.len() > MAX_PAYLOAD {
                gap_payload(origin, i)
            } else {
                text
            });
        }
    }
    out
}

/// A payload saying only "a change was not announced".
fn gap_payload(origin: &str, i: usize) -> String {
    format!("{{\"o\":{},\"i\":{i}}}", serde_json::Value::from(origin))
}

/// Queues the notifications in the group's transaction (delivered if it commits).
pub(super) fn notify(tx: &mut Transaction<'_>, payloads: &[String]) -> Result<(), StoreError> {
    if payloads.is_empty() {
        return Ok(());
    }
    tx.execute(
        "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
        &[&CHANNEL, &payloads],
    )?;
    Ok(())
}

/// Starts the listener thread of the store whose writer announces as `origin`; it stops
/// once the writer is stopping or gone.
pub(in crate::store) fn spawn(
    config: Config,
    origin: String,
    shared: Weak<Shared>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("steward-pg-listen".into())
        .spawn(move || run(&config, &origin, &shared))
}

/// Whether the store is closing.
fn stopping(shared: &Weak<Shared>) -> bool {
    shared
        .upgrade()
        .is_none_or(|s| s.stopping.load(Ordering::SeqCst))
}

/// The listener's loop: connect and LISTEN, deliver until the connection drops,
/// reconnect; a reconnection tells the subscribers they may have missed events.
fn run(config: &Config, origin: &str, shared: &Weak<Shared>) {
    let mut first = true;
    while !stopping(shared) {
        let mut client = match listening(config) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the fleet's change events; retrying");
                std::thread::sleep(RECONNECT);
                continue;
            }
        };
        if !first && let Some(s) = shared.upgrade() {
            tracing::info!("listening for the fleet's change events again");
            s.gap();
        }
        first = false;
        loop {
            if stopping(shared) {
                return;
            }
            let next = client.notifications().timeout_iter(POLL).next();
            match next {
                Ok(Some(note)) => {
                    if let Some(s) = shared.upgrade() {
                        deliver(&s, origin, note.payload());
                    }
                }
                Ok(None) if client.is_closed() => break,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lost the fleet's change events; reconnecting");
                    break;
                }
            }
        }
        std::thread::sleep(RECONNECT);
    }
}

/// A connection listening on [`CHANNEL`].
fn listening(config: &Config) -> Result<Client, StoreError> {
    let mut c = pool::connect(config)?;
    c.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(c)
}

/// Feeds one notification of another daemon into the local channel. Our own are skipped
/// (sent locally at commit); a payload that is not a well-formed announcement is a gap
/// (anyone who may connect to the database may NOTIFY; nothing it says is trusted beyond
/// "something changed").
fn deliver(shared: &Arc<Shared>, origin: &str, payload: &str) {
    let Ok(a) = serde_json::from_str::<Announcement>(payload) else {
        tracing::warn!("an unreadable change announcement on {CHANNEL}");
        shared.gap();
        return;
    };
    if a.o == origin {
        return;
    }
    let tenant = a.t.as_deref().map(TenantId::parse);
    match (tenant, Kind::from_u8(a.k)) {
        (Some(Ok(tenant)), Some(kind)) if a.n.len() <= 1024 && a.a.len() <= 64 => {
            shared.announce(&tenant, kind, a.n, a.a, a.at);
        }
        _ => shared.gap(),
    }
}

//! Denied attempts cost bounded disk: the coalescing of their audit records.
//!
//! Every denied attempt is audited (DESIGN.md), and the record must commit before the 403
//! goes out — otherwise the request fails (507). Written one per attempt, a reader could
//! write thousands of durable records a second and fill the disk on purpose. So, per uid:
//!
//! - **Identical denials are coalesced.** The first denial of a `(tenant, operation,
//!   resource)` in the uid's window (`[limits] denial_window`, 60 s) writes its record
//!   (`attempts: 1`) before answering; the identical ones after it are only counted in
//!   memory and answered at once. When the window closes — at the uid's next denial after
//!   it, or at the periodic sweep ([`start`]), or when the daemon stops — one summary record
//!   per key carries the count (`attempts: N`). The sum of `attempts` over the records is
//!   the number of denied attempts, and every record is an ordinary link of the hash chain.
//! - **Distinct denials are bounded.** A uid gets at most `[limits] denials_per_uid`
//!   distinct keys per window; past it, its further denials in a tenant are counted under
//!   one key per tenant (`denied.coalesced`, resource `denials`), whatever they were.
//!
//! So one uid writes at most about `2 × (denials_per_uid + tenants)` records per window, and
//! memory is bounded the same way. What a crash costs: the in-memory counts of the open
//! window (at most one window's identical repeats per key); every first denial is on disk.
//! A denial racing the commit of its key's first record is counted with that key; if that
//! commit fails, the count stays pending and goes into the key's next record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use steward::names::TenantId;
use steward::resource::Operation;

use steward::model::AuditStatus;

use crate::error::ApiError;
use crate::state::Shared;
use crate::store::AuditEntry;

/// The operation of the per-tenant record that counts a uid's denials past its budget.
pub const OVERFLOW_OPERATION: &str = Operation::DeniedCoalesced.as_str();

/// The count a denial record carries: how many denied attempts it stands for.
pub const ATTEMPTS: &str = "attempts";

/// How often the sweep looks for closed windows.
const SWEEP: Duration = Duration::from_secs(5);

/// What identifies "the same" denial within a uid's window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// Tenant of the attempt (each tenant has its own audit chain).
    tenant: TenantId,
    /// The operation, or [`OVERFLOW_OPERATION`].
    operation: String,
    /// The resource as the route named it (hashed only when stored).
    resource: String,
}

/// One key's state in the open window.
struct Pending {
    /// The record to write, as of the key's first denial (caller, correlation id, reason).
    template: AuditEntry,
    /// A record of this key has committed in this window.
    committed: bool,
    /// A record of this key is being written right now.
    in_flight: bool,
    /// Denials counted but in no committed record yet.
    uncounted: u64,
}

/// One uid's open window.
struct Window {
    /// When it opened.
    opened: Instant,
    /// Its keys (at most `denials_per_uid`, plus one overflow key per tenant).
    keys: HashMap<Key, Pending>,
}

/// The coalescing state of every uid (see the module doc).
#[derive(Default)]
pub struct Denials {
    /// Open windows by uid.
    windows: Mutex<HashMap<u32, Window>>,
}

impl std::fmt::Debug for Denials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Denials(..)")
    }
}

/// A record to write: which key it belongs to, the entry, and the attempts it counts.
struct Due {
    uid: u32,
    key: Key,
    entry: AuditEntry,
    attempts: u64,
}

impl Denials {
    /// Records a denied attempt by `uid` in `tenant` and returns once it is audited: its
    /// own record committed, or counted under a key whose record has. Records of windows
    /// that have closed are written on the way. `Err` (507 on a full disk) means the attempt
    /// could not be audited; the caller must answer with it instead of 403.
    pub async fn record(
        &self,
        shared: &Shared,
        uid: u32,
        tenant: &TenantId,
        entry: AuditEntry,
        operation: &str,
        resource: &str,
    ) -> Result<(), ApiError> {
        let limits = shared.config().limits.clone();
        let window = limits.denial_window.0;
        // What to do with this denial: `None`, counted in memory (answer 403 now); or
        // write this record first (answer 403 once it commits).
        let (closed, decision): (Vec<Due>, Option<Due>) = {
            let mut all = self.lock();
            let now = Instant::now();
            let mut closed = Vec::new();
            let expired = all
                .get(&uid)
                .is_some_and(|w| now.duration_since(w.opened) >= window);
            if expired && let Some(w) = all.remove(&uid) {
                closed = summaries(uid, w);
            }
            let w = all.entry(uid).or_insert_with(|| Window {
                opened: now,
                keys: HashMap::new(),
            });
            let mut key = Key {
                tenant: tenant.clone(),
                operation: operation.to_owned(),
                resource: resource.to_owned(),
            };
            let mut entry = entry;
            let distinct = w
                .keys
                .keys()
                .filter(|k| k.operation != OVERFLOW_OPERATION)
                .count();
            if !w.keys.contains_key(&key) && distinct >= limits.denials_per_uid {
                key = Key {
                    tenant: tenant.clone(),
                    operation: OVERFLOW_OPERATION.to_owned(),
                    resource: "denials".to_owned(),
                };
                entry = overflow_entry(entry, limits.denials_per_uid, window);
            }
            let decision = match w.keys.get_mut(&key) {
                None => {
                    w.keys.insert(
                        key.clone(),
                        Pending {
                            template: entry.clone(),
                            committed: false,
                            in_flight: true,
                            uncounted: 0,
                        },
                    );
                    Some(Due {
                        uid,
                        key,
                        entry,
                        attempts: 1,
                    })
                }
                Some(p) if p.committed || p.in_flight => {
                    p.uncounted += 1;
                    None
                }
                Some(p) => {
                    // An earlier write of this key failed: this one carries its count.
                    p.in_flight = true;
                    let attempts = p.uncounted + 1;
                    p.uncounted = 0;
                    Some(Due {
                        uid,
                        key,
                        entry,
                        attempts,
                    })
                }
            };
            (closed, decision)
        };
        self.write_all(shared, closed).await;
        match decision {
            None => Ok(()),
            Some(due) => {
                let (uid, key, attempts) = (due.uid, due.key.clone(), due.attempts);
                let result = write(shared, due).await;
                let mut all = self.lock();
                if let Some(p) = all.get_mut(&uid).and_then(|w| w.keys.get_mut(&key)) {
                    p.in_flight = false;
                    match &result {
                        Ok(()) => p.committed = true,
                        Err(_) => p.uncounted += attempts,
                    }
                }
                result
            }
        }
    }

    /// Writes the summaries of every window that has closed by now (all of them with
    /// `everything`, when the daemon stops).
    pub async fn flush(&self, shared: &Shared, everything: bool) {
        let window = shared.config().limits.denial_window.0;
        let closed: Vec<Due> = {
            let mut all = self.lock();
            let now = Instant::now();
            let uids: Vec<u32> = all
                .iter()
                .filter(|(_, w)| everything || now.duration_since(w.opened) >= window)
                .map(|(uid, _)| *uid)
                .collect();
            uids.into_iter()
                .filter_map(|uid| all.remove(&uid).map(|w| summaries(uid, w)))
                .flatten()
                .collect()
        };
        self.write_all(shared, closed).await;
    }

    /// Writes closed windows' summaries; a summary that cannot be written goes back as a
    /// pending count of the uid's current window, to be written with its next record.
    async fn write_all(&self, shared: &Shared, closed: Vec<Due>) {
        for due in closed {
            let (uid, key, template, attempts) =
                (due.uid, due.key.clone(), due.entry.clone(), due.attempts);
            if let Err(e) = write(shared, due).await {
                tracing::error!(error = %e.detail.message, uid, attempts,
                    "could not write a summary of coalesced denials; kept for the next try");
                let mut all = self.lock();
                let w = all.entry(uid).or_insert_with(|| Window {
                    opened: Instant::now(),
                    keys: HashMap::new(),
                });
                let p = w.keys.entry(key).or_insert(Pending {
                    template,
                    committed: false,
                    in_flight: false,
                    uncounted: 0,
                });
                p.uncounted += attempts;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The summary records of a closed window: one per key with uncounted denials.
fn summaries(uid: u32, w: Window) -> Vec<Due> {
    w.keys
        .into_iter()
        .filter(|(_, p)| p.uncounted > 0)
        .map(|(key, p)| {
            let why = p.template.details.reason.clone().unwrap_or_default();
            Due {
                uid,
                key,
                entry: p.template.reason(format!(
                    "{why}; repeats of the denial first recorded under this correlation id, \
                     coalesced (the count is in `{ATTEMPTS}`)"
                )),
                attempts: p.uncounted,
            }
        })
        .collect()
}

/// The entry of a uid's first denial past its budget in a tenant.
fn overflow_entry(entry: AuditEntry, budget: usize, window: Duration) -> AuditEntry {
    AuditEntry::new(
        entry.caller,
        Operation::DeniedCoalesced,
        AuditStatus::Denied,
    )
    .correlation(entry.correlation_id)
    .resource("denials")
    .reason(format!(
        "more than {budget} distinct denied attempts by this uid within {}s: \
             further ones are counted here, whatever they were",
        window.as_secs()
    ))
}

/// Commits one record counting `attempts` denials; 507 on a full disk (after trying the
/// store's space reserve), 500 otherwise.
async fn write(shared: &Shared, due: Due) -> Result<(), ApiError> {
    let entry = due.entry.count(ATTEMPTS, due.attempts);
    shared
        .store
        .writer()
        .write_refusal(&due.key.tenant, entry)
        .await
        .map_err(ApiError::from)
}

/// Starts the sweep that writes the summaries of closed windows until the daemon starts
/// draining (the daemon then writes the rest once no request is left: `daemon.rs`).
pub fn start(shared: &Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                _ = tick.tick() => shared.denials.flush(&shared, false).await,
            }
        }
    })
}

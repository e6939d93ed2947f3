//! Which daemon of a fleet runs the timers (retention sweep, JIT expiry, DSR deadlines,
//! the erasure scrub): the one holding a session-level advisory lock on a connection of
//! its own.
//!
//! Each daemon's leader thread tries `pg_try_advisory_lock` once a second until it gets
//! it, then checks once a second that its connection is alive. PostgreSQL releases the
//! lock when the holding session ends, so a leader that is SIGKILLed, crashes or loses
//! its connection hands over within about a second: the next daemon to try takes it.
//! Why a leader rather than `FOR UPDATE SKIP LOCKED` on due schedule rows: the sweep's
//! audit purge and the DSR scrub are not schedule rows, and one leader keeps every
//! timer's pass (and its audit records) exactly as on a single daemon. A lost connection
//! may leave two daemons leading for up to a second (the old one has not noticed yet);
//! that is harmless because every timer job re-checks, under the tenant's chain head
//! lock, that its entry is still due, so a second run finds nothing to do.
//!
//! The state is a [`watch`] channel the timers follow ([`super::super::Store::leadership`]).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use postgres::{Client, Config};
use tokio::sync::watch;

use super::pool;
use crate::store::error::StoreError;

/// The advisory lock key of the timers' leader (`stewtimr` in ASCII).
const LEADER_LOCK: i64 = 0x7374_6577_7469_6d72;
/// How often a follower tries the lock and a leader checks its connection.
const TRY_EVERY: Duration = Duration::from_secs(1);

/// The leader thread of an open store: [`Leader::stop`] ends it, closing its connection
/// (and so releasing the lock) before returning, so that a store opened next in the same
/// process finds the lock free.
#[derive(Debug)]
pub(crate) struct Leader {
    /// Dropped to stop the thread.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    /// The thread, joined by [`Leader::stop`].
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Leader {
    /// Stops the thread and waits until its session has ended.
    pub(crate) fn stop(&self) {
        if let Ok(mut s) = self.stop.lock() {
            s.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Tries the lock once, now (so a daemon starting alone leads from its first moment), and
/// starts the thread that keeps trying or keeps checking; the thread ends, releasing the
/// lock, once stopped ([`Leader::stop`]) or once `lead` is dropped.
pub(crate) fn start(config: &Config, lead: Weak<watch::Sender<bool>>) -> std::io::Result<Leader> {
    let mut client = pool::connect(config).ok();
    let mut leading = false;
    if let Some(c) = client.as_mut() {
        leading = try_lock(c).unwrap_or(false);
    }
    if let Some(tx) = lead.upgrade() {
        set(&tx, leading);
    }
    if leading {
        tracing::info!("this daemon runs the fleet's timers");
    }
    let config = config.clone();
    let (stop, stopped) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("steward-pg-leader".into())
        .spawn(move || run(&config, &lead, &stopped, client, leading))?;
    Ok(Leader {
        stop: Mutex::new(Some(stop)),
        thread: Mutex::new(Some(thread)),
    })
}

/// `pg_try_advisory_lock` on [`LEADER_LOCK`].
fn try_lock(c: &mut Client) -> Result<bool, StoreError> {
    Ok(
        c.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])?
            .try_get(0)?,
    )
}

/// The thread's loop (see the module doc).
fn run(
    config: &Config,
    lead: &Weak<watch::Sender<bool>>,
    stopped: &mpsc::Receiver<()>,
    mut client: Option<Client>,
    mut leading: bool,
) {
    loop {
        let tx = match stopped.recv_timeout(TRY_EVERY) {
            Err(RecvTimeoutError::Timeout) => lead.upgrade(),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => None,
        };
        let Some(tx) = tx else {
            // Ends the session (releasing the lock) before the store's close returns.
            if let Some(c) = client {
                let _ = c.close();
            }
            return;
        };
        if client.as_ref().is_none_or(Client::is_closed) {
            client = pool::connect(config).ok();
            if leading {
                tracing::warn!("lost the connection holding the fleet's timer lock");
                leading = false;
            }
        }
        let Some(c) = client.as_mut() else {
            set(&tx, false);
            continue;
        };
        let now = if leading {
            c.simple_query("SELECT 1").is_ok()
        } else {
            try_lock(c).unwrap_or(false)
        };
        if now != leading {
            if now {
                tracing::info!("this daemon now runs the fleet's timers");
            } else {
                tracing::warn!("this daemon has lost the fleet's timers to another");
                client = None;
            }
            leading = now;
        }
        set(&tx, leading);
    }
}

/// Moves the state only when it changes (the timers wake on every move).
fn set(tx: &watch::Sender<bool>, leading: bool) {
    tx.send_if_modified(|v| {
        let moved = *v != leading;
        *v = leading;
        moved
    });
}

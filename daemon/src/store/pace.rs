//! How a store copy shares the machine with the daemon's readers: it runs in small chunks on
//! a thread of the lowest CPU priority (`SCHED_IDLE`), so that any reader or writer thread
//! that wakes takes the core at once, with a floor that keeps a starved copy moving.
//!
//! A copy (backup, compaction, the scrub's rewrite) is CPU-bound work on a 2-core jump host
//! where readers answer in a few hundred microseconds: at normal priority it holds a core for
//! a whole time slice and a reader that wakes waits for it. Here the copy is a sequence of
//! chunks (each at most [`CHUNK_BYTES`] / [`CHUNK_ENTRIES`] of table entries, a millisecond
//! or two of work) and a state that moves between two threads between chunks:
//!
//! - the idle worker, a thread started for this copy that lowers only itself to `SCHED_IDLE`
//!   (the kernel runs it when no other thread wants the core, and preempts it as soon as one
//!   does). It ends with the copy, so no pooled thread keeps the low priority;
//! - the calling thread, at normal priority, which runs a chunk itself when the copy must not
//!   wait for idle time: writes are waiting for it (the rewrite's catch-up journal is full,
//!   [`Control::urgent`]), or it is below its floor.
//!
//! The floor is what guarantees that a copy under constant load finishes: the CPU time the
//! chunks took (the thread CPU clock, so time spent waiting for a core does not count) must
//! be at least [`FLOOR_PERCENT`] of the wall time since the copy began; whenever it falls
//! below, chunks run at normal priority (a fair share of a core) until it is back above. So
//! a copy that needs C seconds of CPU finishes within about C × 100 / [`FLOOR_PERCENT`]
//! seconds whatever the load (as long as a normal thread gets that share of a core), and on
//! a machine with idle time it takes only idle time.
//!
//! A thread cannot raise its priority again once lowered without `CAP_SYS_NICE`, which the
//! daemon does not have: hence two threads rather than one changing its own priority. If the
//! kernel refuses `SCHED_IDLE` (a restricted container), the worker runs at normal priority
//! and the copy behaves as an ordinary thread would.
//!
//! Not here: what a chunk does (`copy.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// Most bytes of keys and values one chunk copies.
pub(crate) const CHUNK_BYTES: usize = 256 << 10;

/// Most entries one chunk copies.
pub(crate) const CHUNK_ENTRIES: u64 = 1024;

/// The least share of wall time, in percent, a copy's chunks get as CPU time (see the module
/// doc): below it, chunks run at normal priority.
pub(crate) const FLOOR_PERCENT: u32 = 20;

/// Signals to a running copy from outside it.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Stop the copy (the store is closing); looked at before every chunk.
    pub cancel: AtomicBool,
    /// Writes wait for the copy: run every chunk at normal priority from now on.
    pub urgent: AtomicBool,
}

/// What the chunks of one copy took, for the log and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PaceReport {
    /// Chunks run on the idle worker.
    pub idle_chunks: u64,
    /// Chunks run at normal priority (urgent, below the floor, or no idle worker).
    pub normal_chunks: u64,
    /// CPU time of all chunks.
    pub cpu: Duration,
    /// Wall time from the first chunk to the last.
    pub wall: Duration,
    /// Whether the worker runs at `SCHED_IDLE` (false: the kernel refused it).
    pub idle_priority: bool,
}

/// The calling thread's CPU time so far (zero if the clock cannot be read: the floor then
/// sees no progress and runs chunks at normal priority, which is safe).
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Puts the calling thread in the `SCHED_IDLE` class; says whether the kernel agreed.
pub(crate) fn lower_this_thread() -> bool {
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    match set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = ?e, "the copy cannot run at idle priority; it runs at normal priority");
            false
        }
    }
}

/// Runs `step` on `state` until it says it is done (`Ok(true)`) or fails, chunk by chunk,
/// on the idle worker or on this thread as the module doc says; returns the state and what
/// the chunks took. `step` is one chunk: it must return within a few milliseconds of CPU.
/// `cancelled` makes the error for a copy stopped through [`Control::cancel`] (or whose
/// worker panicked).
pub(crate) fn run<S, E, F>(
    state: S,
    control: &Control,
    cancelled: impl Fn() -> E,
    step: F,
) -> Result<(S, PaceReport), E>
where
    S: Send,
    E: Send,
    F: Fn(&mut S) -> Result<bool, E> + Sync,
{
    let started = Instant::now();
    let timed = |s: &mut S| {
        let before = thread_cpu();
        let r = step(s);
        (r, thread_cpu().saturating_sub(before))
    };
    let timed = &timed;
    let cancelled = &cancelled;
    std::thread::scope(move |scope| {
        let mut state = state;
        let mut report = PaceReport::default();
        let (to_idle, idle_rx) = mpsc::channel::<S>();
        let (idle_tx, from_idle) = mpsc::channel::<(S, Result<bool, E>, Duration)>();
        let (ready_tx, ready_rx) = mpsc::channel::<bool>();
        let worker = std::thread::Builder::new()
            .name("steward-copy-idle".into())
            .spawn_scoped(scope, move || {
                let _ = ready_tx.send(lower_this_thread());
                for mut s in idle_rx {
                    // A panic (redb on a damaged page) ends the worker and drops the state;
                    // the caller sees the channel close and fails the copy.
                    let Ok((r, cpu)) = catch_unwind(AssertUnwindSafe(|| timed(&mut s))) else {
                        break;
                    };
                    if idle_tx.send((s, r, cpu)).is_err() {
                        break;
                    }
                }
            });
        let mut to_idle = match worker {
            Ok(_) => {
                report.idle_priority = ready_rx.recv().unwrap_or(false);
                Some(to_idle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the copy's idle thread; copying at normal priority");
                None
            }
        };
        loop {
            if control.cancel.load(Ordering::SeqCst) {
                return Err(cancelled());
            }
            let below = report.cpu < started.elapsed() * FLOOR_PERCENT / 100;
            let here = below || control.urgent.load(Ordering::SeqCst);
            let (r, cpu) = match to_idle.as_ref() {
                Some(tx) if !here => {
                    if let Err(mpsc::SendError(s)) = tx.send(state) {
                        state = s;
                        to_idle = None;
                        continue;
                    }
                    // The worker hands the state back after one chunk; if it panicked, the
                    // state is gone with it and the copy cannot go on.
                    let Ok((s, r, cpu)) = from_idle.recv() else {
                        return Err(cancelled());
                    };
                    state = s;
                    report.idle_chunks += 1;
                    (r, cpu)
                }
                _ => {
                    report.normal_chunks += 1;
                    timed(&mut state)
                }
            };
            report.cpu += cpu;
            match r {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err(e),
            }
        }
        drop(to_idle);
        report.wall = started.elapsed();
        tracing::debug!(?report, "store copy paced");
        Ok((state, report))
    })
}

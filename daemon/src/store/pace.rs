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

/// CPU time a copy may be behind its floor before chunks run at normal priority: lets the
/// idle worker wait up to 50 ms for a core before the copy competes for one.
const FLOOR_GRACE: Duration = Duration::from_millis(10);

/// Why a copy stopped when one of its chunks panicked.
const PANICKED: &str = "the copy stopped: reading the store panicked (a damaged page?)";

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
/// `stopped` makes the error for a copy that cannot go on, from the reason: cancelled
/// through [`Control::cancel`], or its idle worker panicked.
pub(crate) fn run<S, E, F>(
    state: S,
    control: &Control,
    stopped: impl Fn(&'static str) -> E,
    step: F,
) -> Result<(S, PaceReport), E>
where
    S: Send,
    E: Send,
    F: Fn(&mut S) -> Result<bool, E> + Sync,
{
    // A chunk and the CPU time it took; `None` if it panicked (redb may, on a damaged page).
    let timed = |s: &mut S| {
        let before = thread_cpu();
        let r = catch_unwind(AssertUnwindSafe(|| step(s))).ok()?;
        Some((r, thread_cpu().saturating_sub(before)))
    };
    let timed = &timed;
    let stopped = &stopped;
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
                    // A panic ends the worker and drops the state; the caller sees the
                    // channel close and fails the copy.
                    let Some((r, cpu)) = timed(&mut s) else {
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
        let started = Instant::now();
        loop {
            if control.cancel.load(Ordering::SeqCst) {
                return Err(stopped("the copy was cancelled: the store is closing"));
            }
            let below = report.cpu + FLOOR_GRACE < started.elapsed() * FLOOR_PERCENT / 100;
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
                        return Err(stopped(PANICKED));
                    };
                    state = s;
                    report.idle_chunks += 1;
                    (r, cpu)
                }
                _ => {
                    report.normal_chunks += 1;
                    timed(&mut state).ok_or_else(|| stopped(PANICKED))?
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use thread_priority::thread_schedule_policy;

    use super::*;

    /// Burns about `d` of this thread's CPU time.
    fn burn(d: Duration) {
        let until = thread_cpu() + d;
        let mut x = 0u64;
        while thread_cpu() < until {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    /// A copy of `chunks` chunks of ~1 ms of CPU each, recording the scheduling policy each
    /// chunk ran under.
    fn chunks(
        n: usize,
        control: &Control,
    ) -> Result<(Vec<ThreadSchedulePolicy>, PaceReport), String> {
        let step = |seen: &mut Vec<ThreadSchedulePolicy>| {
            burn(Duration::from_millis(1));
            seen.push(thread_schedule_policy().map_err(|e| format!("{e:?}"))?);
            Ok(seen.len() >= n)
        };
        run(Vec::new(), control, |why: &str| why.to_string(), step)
    }

    const IDLE: ThreadSchedulePolicy =
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);

    #[test]
    fn chunks_run_at_idle_priority_and_the_caller_keeps_its_own() {
        let before = thread_schedule_policy().unwrap();
        let (seen, report) = chunks(20, &Control::default()).unwrap();
        assert_eq!(seen.len(), 20);
        assert!(
            report.idle_priority,
            "the kernel refused SCHED_IDLE: {report:?}"
        );
        // The first chunk always goes to the idle worker (nothing is below the floor yet).
        assert!(report.idle_chunks >= 1, "{report:?}");
        assert_eq!(report.idle_chunks + report.normal_chunks, 20);
        let idle = seen.iter().filter(|p| **p == IDLE).count() as u64;
        assert_eq!(idle, report.idle_chunks, "{seen:?} {report:?}");
        assert_eq!(
            thread_schedule_policy().unwrap(),
            before,
            "the caller's priority changed"
        );
        assert_ne!(before, IDLE);
    }

    #[test]
    fn urgent_chunks_run_at_normal_priority() {
        let control = Control::default();
        control.urgent.store(true, Ordering::SeqCst);
        let (seen, report) = chunks(10, &control).unwrap();
        assert_eq!(report.idle_chunks, 0, "{report:?}");
        assert!(seen.iter().all(|p| *p != IDLE), "{seen:?}");
    }

    #[test]
    fn a_starved_copy_runs_at_normal_priority_and_finishes() {
        // Every core busy with normal-priority threads: the idle worker gets (almost) no
        // CPU, so the floor must move the copy to the caller's thread.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let spinners: Vec<_> = (0..cores * 2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
            })
            .collect();
        let outcome = chunks(200, &Control::default());
        stop.store(true, Ordering::SeqCst);
        for s in spinners {
            s.join().unwrap();
        }
        let (seen, report) = outcome.unwrap();
        assert_eq!(seen.len(), 200, "the copy did not finish");
        assert!(
            report.normal_chunks > 0,
            "the floor never moved the starved copy to normal priority: {report:?}"
        );
        eprintln!("{report:?}");
    }

    #[test]
    fn a_cancelled_copy_stops_and_a_panicking_chunk_fails_it() {
        let control = Control::default();
        control.cancel.store(true, Ordering::SeqCst);
        assert!(chunks(10, &control).unwrap_err().contains("cancelled"));
        // The first chunk runs on the idle worker; its panic fails the copy, not the caller.
        let step = |_: &mut ()| -> Result<bool, String> { panic!("a damaged page") };
        let err = run((), &Control::default(), |why: &str| why.to_string(), step);
        assert_eq!(err.unwrap_err(), PANICKED);
        // The same on the caller's thread.
        let control = Control::default();
        control.urgent.store(true, Ordering::SeqCst);
        let err = run((), &control, |why: &str| why.to_string(), step);
        assert_eq!(err.unwrap_err(), PANICKED);
    }
}

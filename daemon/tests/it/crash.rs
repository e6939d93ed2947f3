//! Crash safety of the real `stewardd` process: 32 concurrent writers create, replace and
//! delete contacts in three tenants and record every acknowledged write; the daemon is
//! SIGKILLed at a random moment, restarted on the same data directory, and then:
//!
//! - every acknowledged write is there (the last acknowledged state of each name, or the
//!   one write that was in flight for it when the daemon died, whole);
//! - nothing half-written is visible: every stored contact is exactly a body some writer
//!   sent, and has its `contacts.write` audit record;
//! - every tenant's audit chain verifies.
//!
//! Trials run in generations of [`GENERATION`] on one data directory; each trial re-checks
//! what the earlier trials of its generation stored.
//!
//! `cargo test -p steward-daemon --test it crash::` runs 10 trials; the long run is
//! `scripts/crash-long.sh` (the ignored test, 200 trials; `STEWARD_CRASH_TRIALS` sets
//! another count, `STEWARD_CRASH_SEED` replays a seed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use steward_testkit::process::{Stewardd, TENANTS, contact, emails_of, get, list_all, verify_all};

/// Writers running at once.
const WRITERS: usize = 32;

/// Trials that share one data directory (and re-check everything the earlier ones
/// stored) before the next ones start on a fresh store. Without it each trial re-reads
/// the whole growing store and audit log, and the long run's trials slow down until a
/// 200-trial run takes hours.
const GENERATION: usize = 20;

/// What a name may hold after a crash: its last acknowledged state (`None`: absent),
/// plus the state of a write that was in flight for it and may or may not have landed.
#[derive(Debug, Clone, Default)]
struct Allowed {
    acked: Option<String>,
    in_flight: Option<Option<String>>,
}

/// Every name's allowed states, keyed by (tenant, name).
type Model = BTreeMap<(String, String), Allowed>;

/// What one writer did.
#[derive(Debug, Default)]
struct WriterLog {
    /// Acknowledged writes.
    acked: usize,
    /// Final states it acknowledged, in order, and the in-flight one.
    model: Model,
}

async fn writer(
    c: steward::client::Client,
    id: usize,
    trial: usize,
    seed: u64,
    mut mine: Model,
    stop: Arc<Mutex<bool>>,
    acks: Arc<AtomicUsize>,
) -> WriterLog {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (id as u64) << 20);
    let mut log = WriterLog::default();
    let mut n = 0usize;
    loop {
        if *stop.lock().unwrap() {
            break;
        }
        n += 1;
        let existing: Vec<(String, String)> = mine
            .iter()
            .filter(|(_, a)| a.acked.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let roll: u32 = rng.random_range(0..100);
        let (key, next) = if roll < 65 || existing.is_empty() {
            let t = TENANTS[rng.random_range(0..TENANTS.len())];
            let name = format!("t{trial}-w{id}-n{n}");
            (
                (t.to_owned(), name.clone()),
                Some(format!("{name}-v0@example.com")),
            )
        } else if roll < 90 {
            let k = existing[rng.random_range(0..existing.len())].clone();
            let tag = format!("{}-v{n}", k.1);
            (k, Some(format!("{tag}@example.com")))
        } else {
            (existing[rng.random_range(0..existing.len())].clone(), None)
        };
        let path = format!("/v1/tenants/{}/contacts/{}", key.0, key.1);
        let entry = mine.entry(key.clone()).or_default();
        entry.in_flight = Some(next.clone());
        let res = match &next {
            Some(emails) => {
                let tag = emails.trim_end_matches("@example.com");
                c.put_json(&path, &contact(tag), None).await
            }
            None => c.delete(&path, None).await,
        };
        match res {
            Ok(r) if r.status.is_success() => {
                entry.acked = next;
                entry.in_flight = None;
                log.acked += 1;
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) => panic!(
                "writer {id}: {path} answered {} before the kill: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            // The daemon died under us: this write may or may not have landed.
            Err(_) => break,
        }
    }
    log.model = mine;
    log
}

/// Checks the restarted daemon against the model, then collapses the model to what is
/// stored (now durable). Returns the number of names checked.
async fn check(d: &Stewardd, model: &mut Model) -> usize {
    let c = d.client();
    verify_all(&c).await;
    for t in TENANTS {
        let stored: HashMap<String, Value> = list_all(&c, &format!("/v1/tenants/{t}/contacts"))
            .await
            .into_iter()
            .map(|v| (v["name"].as_str().unwrap().to_owned(), v))
            .collect();
        let audit = list_all(&c, &format!("/v1/tenants/{t}/audit")).await;
        let written: std::collections::HashSet<String> = audit
            .iter()
            .filter(|r| r["operationName"] == "contacts.write" && r["status"] == "Succeeded")
            .filter_map(|r| r["resourceId"].as_str())
            .filter_map(|id| id.rsplit('/').next())
            .map(str::to_owned)
            .collect();
        for (name, v) in &stored {
            let key = (t.to_owned(), name.clone());
            let Some(allowed) = model.get(&key) else {
                panic!("{t}/{name} is stored but no writer ever wrote it: {v}");
            };
            let emails = emails_of(v);
            assert!(
                emails.is_some() && v["properties"]["phone"] == "+1 (555) 010-0000",
                "{t}/{name} is half-written: {v}"
            );
            assert!(
                emails == allowed.acked || Some(&emails) == allowed.in_flight.as_ref(),
                "{t}/{name} holds {emails:?}; acknowledged {:?}, in flight {:?}",
                allowed.acked,
                allowed.in_flight
            );
            assert!(
                written.contains(name),
                "{t}/{name} is stored without its audit record"
            );
        }
        for ((mt, name), allowed) in model.iter_mut().filter(|((mt, _), _)| mt == t) {
            let now = stored.get(name).and_then(emails_of);
            assert!(
                now == allowed.acked || Some(&now) == allowed.in_flight.as_ref(),
                "{mt}/{name}: acknowledged {:?} (in flight {:?}) but the store holds {now:?}",
                allowed.acked,
                allowed.in_flight
            );
            allowed.acked = now;
            allowed.in_flight = None;
        }
    }
    model.len()
}

async fn trials(n: usize) {
    let seed: u64 = steward_testkit::env_number("STEWARD_CRASH_SEED").unwrap_or_else(rand::random);
    println!("crash: {n} trials, seed {seed} (STEWARD_CRASH_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut d = Stewardd::new("", "");
    let mut model = Model::new();
    let mut total_acked = 0usize;
    for trial in 0..n {
        if trial > 0 && trial % GENERATION == 0 {
            d.start();
            let checked = check(&d, &mut model).await;
            d.stop();
            println!(
                "generation ends after trial {}: {checked} names verified",
                trial - 1
            );
            d = Stewardd::new("", "");
            model.clear();
        }
        d.start();
        let checked = check(&d, &mut model).await;
        let stop = Arc::new(Mutex::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for id in 0..WRITERS {
            let mine: Model = model
                .iter()
                .filter(|((_, name), _)| name.split('-').nth(1) == Some(&format!("w{id}")))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            tasks.push(tokio::spawn(writer(
                d.client(),
                id,
                trial,
                seed.wrapping_add(trial as u64),
                mine,
                Arc::clone(&stop),
                Arc::clone(&acks),
            )));
        }
        // The kill falls at a random point after the first acknowledged write, so a trial
        // always tests something, however slow the machine is to start the daemon.
        let first = Instant::now();
        while acks.load(Ordering::SeqCst) == 0 {
            assert!(
                first.elapsed() < Duration::from_secs(60),
                "trial {trial}: no write was acknowledged within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delay = rng.random_range(150..1200);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        d.kill9();
        *stop.lock().unwrap() = true;
        let mut acked = 0;
        for t in tasks {
            let log = t.await.unwrap();
            acked += log.acked;
            model.extend(log.model);
        }
        total_acked += acked;
        println!(
            "trial {trial}: killed {delay} ms after the first acknowledged write, {acked} acknowledged writes, {checked} names checked at start"
        );
        assert!(acked > 0, "trial {trial}: no write was acknowledged");
    }
    d.start();
    let checked = check(&d, &mut model).await;
    let (st, _) = get(&d.client(), "/v1/health").await;
    assert_eq!(st, StatusCode::OK);
    d.stop();
    println!("crash: {n} trials, {total_acked} acknowledged writes, {checked} names verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_loses_no_acknowledged_write() {
    trials(10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long run: scripts/crash-long.sh (200 trials)"]
async fn sigkill_loses_no_acknowledged_write_long() {
    let n = steward_testkit::env_number("STEWARD_CRASH_TRIALS").unwrap_or(200);
    trials(n).await;
}

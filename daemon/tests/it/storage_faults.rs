//! Storage faults against the real `stewardd` process:
//!
//! - a full disk: the data directory on a small tmpfs the test mounts (skipped with a
//!   printed reason where the machine forbids mounting) — writes answer 507 and change
//!   nothing, reads and the audit chain stay good, and writes work again once space is
//!   freed, without a restart (the store reopens redb after the I/O error) and across one;
//! - a truncated or corrupted `steward.redb`: a clear start-up error (or, for damage redb
//!   can live with, a daemon that serves), never a panic;
//! - a data directory owned by another user or unwritable (the daemon run as `nobody`
//!   through `setpriv`, since root bypasses file permissions): a clear error naming it.
//!
//! `cargo test -p steward-daemon --test it storage_faults:: -- --nocapture` prints the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use http::StatusCode;
use rand::{Rng, SeedableRng};
use serde_json::json;
use steward_testkit::api::expect_status;
use steward_testkit::fill::{Mount, until_refused};
use steward_testkit::process::{
    Stewardd, contact, get, list_all, run_to_exit, temp_dir_named, verify_all,
};

/// An alert of about `kb` KiB (alerts are kept whole, so padding is stored).
fn big_alert(name: &str, kb: usize) -> serde_json::Value {
    json!({"name": name, "properties": {"severity": "Low", "timeGeneratedUtc": "2026-06-01T00:00:00Z",
        "description": "x".repeat(kb * 1024)}})
}

/// Fills a small tmpfs under a daemon until a write answers 507. Returns the daemon, the
/// mount guard, the mount point, the acknowledged alert names and the write count.
async fn fill_up() -> Option<(Stewardd, Mount, std::path::PathBuf, Vec<String>, usize)> {
    let dir = temp_dir_named("steward-full-");
    let mnt = dir.path().join("small");
    let mount = match Mount::tmpfs(&mnt, "6m") {
        Ok(m) => m,
        Err(why) => {
            // A full-disk test without a small disk proves nothing: fail, unless told to
            // skip (as the other root-only suites).
            assert!(
                std::env::var_os("STEWARD_SKIP_ROOT_TESTS").is_some(),
                "cannot mount a small tmpfs here ({why}); STEWARD_SKIP_ROOT_TESTS=1 skips this test"
            );
            println!("skipped: cannot mount a small tmpfs here ({why})");
            return None;
        }
    };
    let data = mnt.join("data");
    let mut d = Stewardd::with_data_dir(dir, &data, "", "");
    d.start();
    let c = d.client();
    // A filler file to free later.
    std::fs::write(mnt.join("filler"), vec![0u8; 1024 * 1024]).unwrap();
    let mut acked = Vec::new();
    for i in 0..400 {
        let name = format!("big-{i}");
        let r = c
            .post_json("/v1/tenants/contoso/alerts", &big_alert(&name, 64))
            .await
            .unwrap();
        match r.status.as_u16() {
            200 | 201 => acked.push(name),
            507 => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(v["error"]["code"], "StorageFull", "{v}");
                return Some((d, mount, mnt, acked, i));
            }
            s => panic!(
                "write {i} answered {s}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
    panic!("the disk never filled up");
}

/// The daemon survives a full disk, refuses writes, loses nothing acknowledged, and
/// writes again once space is freed and it is restarted.
/// Asserts that contoso holds exactly the `acked` alerts (nothing acknowledged was lost,
/// nothing refused was stored) and that the chains verify.
async fn assert_exactly_acked(c: &steward::client::Client, acked: &[String]) {
    let names: Vec<String> = list_all(c, "/v1/tenants/contoso/alerts")
        .await
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    for n in acked {
        assert!(names.contains(n), "{n} was acknowledged but is gone");
    }
    assert_eq!(names.len(), acked.len(), "a refused write was stored");
    verify_all(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_507_and_loses_nothing() {
    let Some((mut d, _mount, mnt, mut acked, full_at)) = fill_up().await else {
        return;
    };
    let c = d.client();
    // More writes while full: none succeeds (see the ignored test below for the codes).
    let mut refused = 1;
    let mut codes = Vec::new();
    for i in 0..5 {
        let r = c
            .post_json(
                "/v1/tenants/contoso/alerts",
                &big_alert(&format!("refused-{i}"), 64),
            )
            .await
            .unwrap();
        assert!(!r.status.is_success(), "a write succeeded on a full disk");
        codes.push(r.status.as_u16());
        refused += 1;
    }
    assert!(
        d.alive(),
        "the daemon died on a full disk: {}",
        d.stderr_text()
    );
    let (st, _) = get(&c, "/v1/health").await;
    assert_eq!(st, StatusCode::OK);
    // Free space and restart: everything acknowledged is there, chains verify, writes work.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    d.stop();
    d.start();
    let c = d.client();
    verify_all(&c).await;
    let r = c
        .post_json("/v1/tenants/contoso/alerts", &big_alert("after-free", 64))
        .await
        .unwrap();
    assert!(
        r.status.is_success(),
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    acked.push("after-free".into());
    assert_exactly_acked(&c, &acked).await;
    println!(
        "full disk: 6 MiB tmpfs, full after {full_at} writes of 64 KiB, then {refused} writes refused \
         (codes after the first 507: {codes:?}); after freeing 1 MiB and a restart: {} alerts intact, \
         chains verify, writes work",
        acked.len()
    );
    d.stop();
}

/// DESIGN.md: 507 while full, and writes work again once space is freed — without a
/// restart. After the first ENOSPC redb refuses every later transaction of that instance
/// ("Previous I/O error occurred. Please close and re-open the database"); the store reopens
/// it (`store/slot.rs`), so later writes answer 507 while full and succeed once there is space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_recovers_without_restart() {
    let Some((mut d, _mount, mnt, mut acked, _)) = fill_up().await else {
        return;
    };
    let c = d.client();
    // While full: big writes answer 507 (not 500), reads keep answering. A small write may
    // still fit (the reopened file reuses the pages of the refused transaction) or be 507.
    let mut small = Vec::new();
    for i in 0..3 {
        let r = c
            .post_json(
                "/v1/tenants/contoso/alerts",
                &big_alert(&format!("while-full-{i}"), 64),
            )
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 507, "{}", d.stderr_text());
        let r = c
            .put_json(
                &format!("/v1/tenants/contoso/contacts/small-{i}"),
                &contact("while-full"),
                None,
            )
            .await
            .unwrap();
        let code = r.status.as_u16();
        assert!(
            code == 507 || r.status.is_success(),
            "a small write while full answered {code}: {}",
            d.stderr_text()
        );
        small.push(code);
        let (st, _) = get(&c, "/v1/tenants/contoso/alerts?limit=5").await;
        assert_eq!(
            st,
            StatusCode::OK,
            "a read failed while full: {}",
            d.stderr_text()
        );
    }
    verify_all(&c).await;
    // Free space: writes work again, without a restart.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let r = c
        .put_json(
            "/v1/tenants/contoso/contacts/default",
            &contact("after"),
            None,
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{} {}", r.status, d.stderr_text());
    let r = c
        .post_json("/v1/tenants/contoso/alerts", &big_alert("after-free", 64))
        .await
        .unwrap();
    assert!(r.status.is_success(), "{} {}", r.status, d.stderr_text());
    acked.push("after-free".into());
    // Nothing acknowledged was lost, nothing refused was stored, the chains verify.
    assert_exactly_acked(&c, &acked).await;
    assert!(d.alive());
    let reopens = d.stderr_text().matches("reopening the database").count();
    println!(
        "full disk without restart: 3 big writes refused with 507 while full (small writes: \
         {small:?}), reads answered; after freeing 1 MiB writes work, {} alerts intact, chains \
         verify ({reopens} reopens logged)",
        acked.len()
    );
}

/// Fills what `fill_up` left: small writes, then lone audit records, until they are refused
/// too (redb reuses the pages of refused transactions), then a file over the last free
/// bytes of the mount.
async fn fill_to_the_brim(c: &steward::client::Client, mnt: &Path) {
    let small = until_refused(500, |i| async move {
        c.put_json(
            &format!("/v1/tenants/contoso/contacts/brim-{i}"),
            &contact("brim"),
            None,
        )
        .await
        .unwrap()
        .status
        .as_u16()
    })
    .await;
    assert!(small, "small writes never stopped fitting");
    // The smallest write there is: an audit record alone (an export of an empty kind).
    let lone = until_refused(500, |_| async {
        c.get("/v1/tenants/contoso/export/jit-policies")
            .await
            .unwrap()
            .status
            .as_u16()
    })
    .await;
    assert!(lone, "audit records never stopped fitting");
    let mut f = std::fs::File::create(mnt.join("brim")).unwrap();
    let chunk = vec![1u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let _ = f.sync_all();
}

/// DESIGN.md: nothing is served unaudited. With the disk full, an export (and a subject
/// search) answers 507 and sends no record (its audit record must commit first); a denied
/// attempt is still audited — from the space reserve — and answered 403, never 403 without
/// its record. Once space returns, exports work again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_export_is_507_and_denials_are_audited_from_the_reserve() {
    let Some((d, _mount, mnt, _, _)) = fill_up().await else {
        return;
    };
    let c = d.client();
    fill_to_the_brim(&c, &mnt).await;
    let before = verify_all(&c).await[0];
    // An export: 507 before any data, and no record of it.
    let r = c
        .get("/v1/tenants/contoso/export/contacts?format=ndjson")
        .await
        .unwrap();
    expect_status(&r, 507, "export on a full disk");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"]["code"], "StorageFull", "{v}");
    assert!(!String::from_utf8_lossy(&r.body).contains("brim@example.com"));
    // A denied attempt: audited from the reserve, then 403.
    let reader = c.clone().with_role(Some("reader".to_owned()));
    let r = reader
        .get("/v1/tenants/contoso/export/alerts")
        .await
        .unwrap();
    assert_eq!(
        r.status.as_u16(),
        403,
        "{} {}",
        String::from_utf8_lossy(&r.body),
        d.stderr_text()
    );
    let after = verify_all(&c).await[0];
    assert_eq!(
        after,
        before + 1,
        "the denial was answered without its record"
    );
    let (_, page) = get(&c, "/v1/tenants/contoso/audit?limit=1000").await;
    let last = page["value"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["status"], "Denied", "{last}");
    assert_eq!(last["operationName"], "alerts.export", "{last}");
    assert!(
        !mnt.join("data")
            .join(steward_daemon::store::RESERVE_FILE)
            .exists(),
        "the reserve was not used"
    );
    // The reserve is for refusals only: another export is still refused, and so is a
    // subject search (an audited read too), with none of what it found.
    let r = c
        .get("/v1/tenants/contoso/export/contacts?format=ndjson")
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 507);
    let r = c
        .get("/v1/tenants/contoso/subjects?email=brim@example.com")
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 507);
    assert!(!String::from_utf8_lossy(&r.body).contains("brim-"));
    assert_eq!(verify_all(&c).await[0], before + 1);
    // Space returns: the reserve is re-created and exports are served (and audited).
    std::fs::remove_file(mnt.join("brim")).unwrap();
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let r = c
        .get("/v1/tenants/contoso/export/contacts?format=ndjson")
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200, "{}", d.stderr_text());
    assert!(
        mnt.join("data")
            .join(steward_daemon::store::RESERVE_FILE)
            .exists()
    );
    verify_all(&c).await;
    println!(
        "full disk: export answered 507 with no data and no record; a denial was audited from \
         the {} KiB reserve and answered 403; exports work once space returns",
        steward_daemon::store::RESERVE_BYTES / 1024
    );
}

/// A daemon with some data, stopped; returns it and its database file's bytes.
async fn seeded() -> (Stewardd, Vec<u8>) {
    let mut d = Stewardd::started("", "");
    let c = d.client();
    for i in 0..30 {
        let r = c
            .put_json(
                &format!("/v1/tenants/contoso/contacts/c{i}"),
                &contact(&format!("c{i}")),
                None,
            )
            .await
            .unwrap();
        assert!(r.status.is_success());
        let r = c
            .post_json(
                "/v1/tenants/fabrikam/alerts",
                &big_alert(&format!("a{i}"), 2),
            )
            .await
            .unwrap();
        assert!(r.status.is_success());
    }
    d.stop();
    let bytes = std::fs::read(d.dir.path().join("data/steward.redb")).unwrap();
    (d, bytes)
}

/// What a store holds as the API shows it: every tenant's contacts, alerts, audit log and
/// chain report, as (path, status, body).
async fn snapshot(c: &steward::client::Client) -> Vec<(String, u16, String)> {
    let mut out = Vec::new();
    for t in steward_testkit::process::TENANTS {
        for p in ["audit/verify", "contacts", "alerts", "audit"] {
            let path = format!("/v1/tenants/{t}/{p}?limit=1000");
            let r = c.get(&path).await.unwrap();
            out.push((
                path,
                r.status.as_u16(),
                String::from_utf8_lossy(&r.body).into_owned(),
            ));
        }
    }
    out
}

/// Starts the daemon on damaged bytes: it must exit with a clear error, or serve (its
/// reads answering without a panic) — never panic. Returns whether it refused to start.
/// With `strict` (the daemon runs with `verify_on_start`), a daemon that starts must
/// serve exactly `strict`: the damage was in space no record uses, and no read panics.
async fn start_on(
    d: &mut Stewardd,
    what: &str,
    bytes: &[u8],
    strict: Option<&[(String, u16, String)]>,
) -> bool {
    let db = d.dir.path().join("data/steward.redb");
    std::fs::write(&db, bytes).unwrap();
    let _ = std::fs::remove_file(&d.stderr);
    let mut child = Command::new(steward_testkit::process::stewardd())
        .arg("--config")
        .arg(&d.config)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&d.stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let err = d.stderr_text();
            // redb itself may panic on a damaged file; Store::open catches that and turns
            // it into the error checked below. A panic anywhere else is a bug.
            let ours = err
                .lines()
                .filter(|l| l.contains("panicked at") && !l.contains("/redb-"))
                .count();
            assert_eq!(ours, 0, "{what}: stewardd panicked:\n{err}");
            assert!(
                st.code().is_some_and(|c| c != 0),
                "{what}: {st} on a damaged file:\n{err}"
            );
            assert!(
                err.contains("stewardd: error") && err.contains("steward.redb")
                    || err.contains("cannot open the store"),
                "{what}: unclear start-up error:\n{err}"
            );
            return true;
        }
        if steward_testkit::process::health(&d.socket) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: neither started nor failed in 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // It accepted the file: it must serve without a panic.
    d.child = Some(child);
    let c = d.client();
    if let Some(expected) = strict {
        let served = snapshot(&c).await;
        d.stop();
        assert!(
            served.as_slice() == expected,
            "{what}: verified at start, but serves something else than was stored"
        );
        let err = d.stderr_text();
        assert!(!err.contains("panicked at"), "{what}: a panic:\n{err}");
        return false;
    }
    for t in steward_testkit::process::TENANTS {
        for p in ["audit/verify", "contacts", "alerts", "audit"] {
            let r = c.get(&format!("/v1/tenants/{t}/{p}")).await.unwrap();
            assert!(r.status.as_u16() != 502, "{what}");
        }
    }
    assert!(
        d.alive(),
        "{what}: the daemon died serving a damaged file: {}",
        d.stderr_text()
    );
    d.stop();
    // Known (RELIABILITY.md, open findings): damage redb does not check at open can make
    // a read panic inside redb; the request answers 500 and the daemon stays up.
    let err = d.stderr_text();
    let ours = err
        .lines()
        .filter(|l| l.contains("panicked at") && !l.contains("/redb-"))
        .count();
    assert_eq!(ours, 0, "{what}: a panic outside redb:\n{err}");
    if err.contains("panicked at") {
        println!("note: {what}: a read panicked inside redb (answered 500, daemon stayed up)");
    }
    false
}

/// `STEWARD_CORRUPT_TRIALS` (default 12) copies of `good`, each with 1–63 random bytes
/// flipped, named with the seed that replays them; and the seed.
fn randomly_damaged(good: &[u8]) -> (Vec<(String, Vec<u8>)>, u64) {
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let trials = steward_testkit::env_number("STEWARD_CORRUPT_TRIALS").unwrap_or(12);
    let damaged = (0..trials)
        .map(|t| {
            let mut bytes = good.to_vec();
            let flips = rng.random_range(1..64);
            for _ in 0..flips {
                let at = rng.random_range(0..good.len());
                bytes[at] ^= rng.random_range(1..=255u8);
            }
            (
                format!("{flips} random bytes flipped (seed {seed}, trial {t})"),
                bytes,
            )
        })
        .collect();
    (damaged, seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_or_corrupted_database_gives_a_clear_error() {
    let (mut d, good) = seeded().await;
    let len = good.len();
    let mut refused = 0;
    let mut cases = 0;
    let fixed: Vec<(String, Vec<u8>)> = vec![
        ("truncated to 1 byte".into(), good[..1].to_vec()),
        ("truncated to 100 bytes".into(), good[..100].to_vec()),
        ("truncated to 4 KiB".into(), good[..4096].to_vec()),
        ("truncated to half".into(), good[..len / 2].to_vec()),
        ("truncated by one page".into(), good[..len - 4096].to_vec()),
        (
            "header zeroed".into(),
            [vec![0u8; 512], good[512..].to_vec()].concat(),
        ),
        (
            "magic garbled".into(),
            [b"NOTREDB!".to_vec(), good[8..].to_vec()].concat(),
        ),
        ("all zeros".into(), vec![0u8; len]),
        ("all 0xff".into(), vec![0xffu8; len]),
        (
            "a text file".into(),
            b"this is not a database\n".repeat(1000),
        ),
    ];
    let mut accepted = Vec::new();
    for (what, bytes) in &fixed {
        cases += 1;
        if start_on(&mut d, what, bytes, None).await {
            refused += 1;
        } else {
            println!("note: stewardd accepted a file {what}");
            accepted.push(what.clone());
        }
    }
    for what in [
        "truncated to 1 byte",
        "header zeroed",
        "magic garbled",
        "a text file",
    ] {
        assert!(
            !accepted.iter().any(|a| a == what),
            "{what}: started anyway"
        );
    }
    // Random damage: bytes flipped across the file.
    let (damaged, seed) = randomly_damaged(&good);
    for (what, bytes) in &damaged {
        cases += 1;
        if start_on(&mut d, what, bytes, None).await {
            refused += 1;
        }
    }
    println!(
        "corrupted database: {cases} damaged files (seed {seed}), {refused} refused at start with a clear error, the rest served without a panic"
    );
}

/// With `[daemon] verify_on_start`, damage anywhere in the file is a start-up error: a
/// daemon that starts serves exactly what was stored (the damage hit only free space).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_verify_on_start_damage_is_a_start_up_error() {
    let (mut d, good) = seeded().await;
    let lazy = std::fs::read_to_string(&d.config).unwrap();
    let verifying = lazy.replacen("[daemon]\n", "[daemon]\nverify_on_start = true\n", 1);
    d.start();
    let expected = snapshot(&d.client()).await;
    d.stop();
    assert!(
        expected.iter().all(|(_, st, _)| *st == 200),
        "the seeded store does not serve: {expected:?}"
    );
    let len = good.len();
    let (mut cases, mut refused, mut refused_lazily) = (0, 0, 0);
    let (random, seed) = randomly_damaged(&good);
    let mut damaged: Vec<(String, Vec<u8>)> = vec![
        ("truncated by one page".into(), good[..len - 4096].to_vec()),
        ("truncated to half".into(), good[..len / 2].to_vec()),
    ];
    damaged.extend(random);
    // One byte in every used page of the records, in turn, is the case a lazy check
    // misses: flip a byte in the middle of each 4 KiB page from the second on.
    for page in (1..len / 4096).step_by((len / 4096 / 8).max(1)) {
        let mut bytes = good.clone();
        bytes[page * 4096 + 2048] ^= 0x5a;
        damaged.push((format!("one byte flipped in page {page}"), bytes));
    }
    for (what, bytes) in &damaged {
        cases += 1;
        std::fs::write(&d.config, &lazy).unwrap();
        if start_on(&mut d, what, bytes, None).await {
            refused_lazily += 1;
        }
        std::fs::write(&d.config, &verifying).unwrap();
        if start_on(&mut d, what, bytes, Some(&expected)).await {
            refused += 1;
        }
    }
    println!(
        "verify_on_start: {cases} damaged files (seed {seed}): {refused} refused at start with a clear error (without the check: {refused_lazily}); the rest (damage in free space) served exactly what was stored"
    );
    assert!(
        refused > refused_lazily,
        "the check at start found no damage that an ordinary start misses"
    );
}

/// `stewardd verify-store`: sound on a good file, a clear error on damage or while the
/// daemon holds the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_store_command_reports_sound_damaged_and_busy_files() {
    let (mut d, good) = seeded().await;
    let run = |d: &Stewardd| {
        let out = Command::new(steward_testkit::process::stewardd())
            .arg("--config")
            .arg(&d.config)
            .arg("verify-store")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(&d);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("store sound") && text.contains("audit records in 2 tenant chains"),
        "{text}"
    );
    d.start();
    let (code, text) = run(&d);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("already holds the data directory"), "{text}");
    d.stop();
    // Damage in every eighth page: some of it lands in used pages.
    let mut bytes = good.clone();
    for page in (1..good.len() / 4096).step_by(8) {
        bytes[page * 4096 + 2048] ^= 0x5a;
    }
    std::fs::write(d.dir.path().join("data/steward.redb"), &bytes).unwrap();
    let (code, text) = run(&d);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("steward.redb") && !text.contains("store sound"),
        "{text}"
    );
}

/// Runs stewardd as `nobody` on a data dir it may not use: a clear error, no panic.
#[test]
fn data_dir_owned_by_another_user_or_unwritable_gives_a_clear_error() {
    if !nix::unistd::getuid().is_root()
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        println!("skipped: needs root and setpriv to run stewardd as another user");
        return;
    }
    let dir = temp_dir_named("steward-perm-");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    let nogroup = nix::unistd::Gid::from_raw(65534);
    for sub in ["logs", "run"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        nix::unistd::chown(&dir.path().join(sub), Some(nobody), Some(nogroup)).unwrap();
    }
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make)> = vec![
        (
            "owned by root, mode 0700",
            Box::new(|p: &Path| {
                std::fs::create_dir(p).unwrap();
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
            }),
        ),
        (
            "owned by root, mode 0755 (unwritable)",
            Box::new(|p: &Path| {
                std::fs::create_dir(p).unwrap();
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }),
        ),
        (
            "ours, but steward.redb owned by root 0600",
            Box::new(|p: &Path| {
                std::fs::create_dir(p).unwrap();
                std::fs::write(p.join("steward.redb"), b"").unwrap();
                std::fs::set_permissions(
                    p.join("steward.redb"),
                    std::fs::Permissions::from_mode(0o600),
                )
                .unwrap();
                nix::unistd::chown(
                    p,
                    Some(nix::unistd::Uid::from_raw(65534)),
                    Some(nix::unistd::Gid::from_raw(65534)),
                )
                .unwrap();
            }),
        ),
        (
            "parent unwritable, data dir missing",
            Box::new(|p: &Path| {
                std::fs::create_dir(p.parent().unwrap()).unwrap();
                std::fs::set_permissions(
                    p.parent().unwrap(),
                    std::fs::Permissions::from_mode(0o755),
                )
                .unwrap();
            }),
        ),
    ];
    for (i, (what, make)) in cases.iter().enumerate() {
        let data = if what.starts_with("parent") {
            dir.path().join(format!("p{i}/data"))
        } else {
            dir.path().join(format!("data{i}"))
        };
        make(&data);
        let cfg = dir.path().join(format!("c{i}.toml"));
        std::fs::write(
            &cfg,
            steward_testkit::process::config_text(dir.path(), &data, "", ""),
        )
        .unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, err) = run_to_exit(&cfg, true, Duration::from_secs(10));
        assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
        assert!(
            code.is_some_and(|c| c != 0),
            "{what}: stewardd did not fail ({code:?}):\n{err}"
        );
        assert!(
            err.contains(&data.display().to_string())
                && (err.to_lowercase().contains("permission denied")
                    || err.contains("not by the daemon's user")),
            "{what}: the error does not name the data dir and the reason:\n{err}"
        );
        println!("{what}: {}", err.lines().next().unwrap_or(""));
    }
}

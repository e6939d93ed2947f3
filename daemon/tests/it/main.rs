//! The daemon's integration tests: one binary (`cargo test -p steward-daemon --test it`),
//! one module per concern; `cargo test -p steward-daemon --test it crash::` runs one.
//!
//! | module | what it checks |
//! | --- | --- |
//! | [`process`] | `stewardd` as an operator runs it: flags, config checks, socket, reload, SIGTERM |
//! | [`backup`] | online backup under writers, verified restore, compaction, SIGKILL during each, who may ask |
//! | [`conns`] | connection caps, identities that change, event numbering, real OS users |
//! | [`crash`] | SIGKILL at random points loses no acknowledged write |
//! | [`dsr_crash`] | an erasure killed midway completes after a restart, nothing done twice |
//! | [`fleet`] | two `stewardd` on one PostgreSQL: writes, events and chains shared, SIGKILL under writers, timers run once |
//! | [`hostile`] | hostile bytes on the raw socket, fuzz regressions |
//! | [`ingest_bounds`] | ingest limits: sizes, counts, idempotency, other users' posts |
//! | [`jit_firewall`] | the nftables backend in network namespaces: doors open, close on time with the daemon dead, reconcile |
//! | [`migrate`] | `stewardd migrate --from redb --to postgres`: everything moves, chains at the same heads; refusals |
//! | [`pg_store`] | the PostgreSQL backend: its chains verify, unaudited changes do not happen, newer schemas are refused, two stores share one database |
//! | [`overload`] | many slow or idle connections while a well-behaved client is served |
//! | [`private_files`] | the daemon's own files against other local users |
//! | [`reads`] | the store's read paths |
//! | [`scrub`] | no byte of an erased subject left in any file after the scrub |
//! | [`spool_attacks`] | the spool against a hostile alert source |
//! | [`storage_faults`] | a full disk, damaged store files, unusable data dirs |
//! | [`store`] | the store: tables, indexes, the audit chain, the writer |
//!
//! The `stewardd` processes, configs, clients and OS users come from `steward_testkit`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup;
mod conns;
mod crash;
mod dsr_crash;
mod fleet;
mod hostile;
mod ingest_bounds;
mod jit_firewall;
mod migrate;
mod overload;
mod pg_store;
mod private_files;
mod process;
mod reads;
mod scrub;
mod spool_attacks;
mod storage_faults;
mod store;

/// The kit finds the very `stewardd` Cargo built for this package's tests (the other
/// packages rely on the same search, where Cargo names no binary).
#[test]
fn the_kit_runs_the_stewardd_cargo_built() {
    if std::env::var_os(steward_testkit::bin::OVERRIDE).is_some() {
        return;
    }
    assert_eq!(
        steward_testkit::bin::stewardd(),
        std::path::Path::new(env!("CARGO_BIN_EXE_stewardd"))
    );
}

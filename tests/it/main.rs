//! The library's and the API's integration tests: one binary (`cargo test --test it`),
//! one module per concern; `cargo test --test it api_jit::` runs one of them.
//!
//! | module | what it checks |
//! | --- | --- |
//! | [`api`] | contacts, alerts, tenants, paging, limits and the audit log through the socket |
//! | [`api_arm`] | the Microsoft.Security (ARM) mount against `/v1`: one operation mounted twice, versions, placement, `If-None-Match` |
//! | [`api_dsr`] | data-subject requests: open, confirm, reject, bundles, deadlines |
//! | [`api_jit`] | JIT policies and requests: initiate, supersede, revoke, permissions |
//! | [`azure_sdk`] | Microsoft's Python SDK (azure-mgmt-security 7.0.0) driving every ARM operation over the socket |
//! | [`audit_guard`] | what the audit log may and may not hold (no values, hashed subjects) |
//! | [`ingest`] | the alert spool: files in, done/rejected, audit |
//! | [`isolation`] | random grants and callers against an independent permission oracle |
//! | [`model_roundtrip`] | the wire model against the fixtures in `tests/fixtures` |
//! | [`timers`] | JIT expiry (also at start-up), the `jit.on_change` hook, retention |
//!
//! Daemons run in-process through `steward_testkit::inproc` (a config file, the socket,
//! a reload, the redb file once stopped).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod api_arm;
mod api_dsr;
mod api_jit;
mod audit_guard;
mod azure_sdk;
mod ingest;
mod isolation;
mod model_roundtrip;
mod timers;

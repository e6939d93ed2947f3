//! # steward — the shared library
//!
//! Everything the daemon (`stewardd`) and the operator's client (`steward`) agree on,
//! and nothing that needs a database, an HTTP server or a terminal:
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`names`] | validated identifiers: tenant ids and resource names |
//! | [`model`] | the domain model — security contacts, JIT policies and requests, alerts, audit records, data-subject requests — in the JSON shapes of the Microsoft.Security API, with validation that reports every problem by field path |
//! | [`permissions`] | permissions, the built-in role profiles of the permission matrix, custom profiles, and the "act under a lower profile" rule |
//! | [`config`] | the TOML configuration both programs read (types, parsing, the embedded default) |
//! | [`resource`] | what each kind of record is, once: path segment, permissions per verb, table and CSV columns, audit operation names |
//! | [`wire`] | the API's wire types: list envelope, error body, change events, whoami, tenants, verify report |
//! | [`client`] | the Unix-socket HTTP client used by `steward` (and by tests) |
//! | [`csv_cell`] | CSV cells neutralised against spreadsheet formula injection, for every CSV writer |
//!
//! The contract these types implement is `DESIGN.md` (kept beside the project as
//! `../shared/DESIGN.md`; decisions of our own are in `docs/DECISIONS.md`).

pub mod client;
pub mod config;
pub mod csv_cell;
pub mod local_time;
pub mod model;
pub mod names;
pub mod permissions;
pub mod resource;
pub mod wire;

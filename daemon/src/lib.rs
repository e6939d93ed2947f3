//! # steward-daemon — `stewardd`
//!
//! The daemon owns one redb file, serves the HTTP/1.1 + JSON API on a Unix socket,
//! identifies every caller by the socket's peer credentials, checks the caller's role
//! in the tenant, writes the audit record in the same transaction as the change, and
//! runs the timers.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`store`] | the redb store: tenant-scoped handles, postcard records behind a format byte, indexes, the audit hash chain, the group-commit writer |
//! | [`identity`] | who is calling: peer credentials resolved to a user and groups |
//! | [`access`] | what a caller may do in a tenant: grants resolved to permissions |
//! | [`denials`] | denied attempts coalesced per uid, so a flood of them costs bounded disk |
//! | [`server`] | the accept loop: connection caps, head limits and timeouts, draining |
//! | [`routes`] | the API's routes, one module per resource |
//! | [`ingest`] | alert ingestion shared by the API and the spool: parsing and storing |
//! | [`jit`] | JIT's rules over the store: how a request is kept and scheduled, what a newer request ends |
//! | [`dsr`] | carrying out data-subject requests: export bundles, erasure, resumable steps |
//! | [`strict_json`] | JSON parsing that refuses duplicate keys, for bodies and alert files alike |
//! | [`error`] | the API's error type and its JSON rendering |
//! | [`state`] | the state shared by connections and timers |
//! | [`daemon`] | starting a daemon on a listener of one's own ([`run`]) |
//! | [`socket`] | the listening socket: created safely, or from systemd |
//! | [`private`] | the daemon's own files and their modes: data, store, logs, runtime dir |
//! | [`reload`] | watching and reloading the config file |
//! | [`logging`] | daily-rotated log files and stderr |
//! | [`firewall`] | the built-in JIT firewall: the `inet steward` nftables table rebuilt from the store |
//! | [`timers`] | retention sweep, JIT expiry (also at startup), the `jit.on_change` hook |

pub mod access;
pub mod daemon;
pub mod denials;
pub mod dsr;
pub mod error;
pub mod firewall;
pub mod identity;
pub mod ingest;
pub mod jit;
pub mod logging;
pub mod private;
pub mod reload;
pub mod routes;
pub mod server;
pub mod socket;
pub mod state;
pub mod store;
pub mod strict_json;
pub mod timers;

pub use daemon::run;

/// Checked names from unit tests' literals.
#[cfg(test)]
pub(crate) mod testing {
    use steward::names::{ResourceName, TenantId};

    /// A tenant id from a literal (panics on a malformed one: a bug in the test).
    pub fn tid(s: &str) -> TenantId {
        TenantId::parse(s).expect("a tenant id literal")
    }

    /// A resource name from a literal (panics on a malformed one: a bug in the test).
    pub fn rn(s: &str) -> ResourceName {
        ResourceName::parse(s).expect("a resource name literal")
    }
}

//! The plain sections of the file: `[daemon]`, `[limits]`, `[retention]`, `[jit]`,
//! `[ingest]`, `[dsr]`, each with its defaults (the values `config/steward.toml` shows).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, ConfigDuration, ConfigError};

/// `[daemon]`: paths and logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// The Unix socket the API listens on.
    pub socket: PathBuf,
    /// When set, the socket is `0660` with this group; otherwise `0600`.
    pub socket_group: Option<String>,
    /// Where `steward.redb` lives.
    pub data_dir: PathBuf,
    /// Where daily log files go.
    pub log_dir: PathBuf,
    /// The log filter (`RUST_LOG` overrides it).
    pub log_level: String,
    /// How many daily log files are kept.
    pub log_max_files: usize,
    /// Check every page's checksum and every audit chain of the store before serving, so a
    /// damaged file is a start-up error rather than a failed read later. Costs a read of
    /// the whole file (about 1.5 s per GB); off by default (`stewardd verify-store` runs
    /// the same check offline).
    pub verify_on_start: bool,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: PathBuf::from("/run/steward/steward.sock"),
            socket_group: None,
            data_dir: PathBuf::from("/var/lib/steward"),
            log_dir: PathBuf::from("/var/log/steward"),
            log_level: "info".into(),
            log_max_files: 14,
            verify_on_start: false,
        }
    }
}

/// `[limits]`: what one request or one user may consume.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body on every route but ingest.
    pub max_body: ByteSize,
    /// Largest request body of an alert ingest.
    pub max_ingest_body: ByteSize,
    /// Ingest bytes held at once, all requests together: an ingest reserves its body's
    /// size before reading it, waits briefly when the budget is spent, then answers 503
    /// with `Retry-After`, so concurrent ingests cannot exhaust memory. At least
    /// `max_ingest_body`. Read at start.
    pub ingest_budget: ByteSize,
    /// Largest request head (431 past it).
    pub max_header: ByteSize,
    /// How long a client may take to send its request head.
    pub header_timeout: ConfigDuration,
    /// How long a request may take to be read and handed to the store (408 past it). A
    /// write already handed to the writer is answered with its commit's outcome.
    pub request_timeout: ConfigDuration,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: ConfigDuration,
    /// Connections served at once, all users together.
    pub max_connections: usize,
    /// Connections served at once for one uid.
    pub max_connections_per_uid: usize,
    /// Identical denied attempts (same uid, tenant, operation and resource) within this
    /// window are audited as one record with their count.
    pub denial_window: ConfigDuration,
    /// Distinct denied-attempt records one uid may cause per window; past it, its further
    /// denials in a tenant are counted in one record per tenant.
    pub denials_per_uid: usize,
    /// How long a caller's group membership is trusted on an open connection or event
    /// stream before it is looked up again (at most 30 s; a reload also refreshes it).
    pub identity_refresh: ConfigDuration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body: ByteSize(1 << 20),
            max_ingest_body: ByteSize(16 << 20),
            ingest_budget: ByteSize(64 << 20),
            max_header: ByteSize(64 << 10),
            header_timeout: ConfigDuration(Duration::from_secs(10)),
            request_timeout: ConfigDuration(Duration::from_secs(30)),
            idle_timeout: ConfigDuration(Duration::from_secs(60)),
            max_connections: 1024,
            max_connections_per_uid: 64,
            denial_window: ConfigDuration(Duration::from_secs(60)),
            denials_per_uid: 32,
            identity_refresh: ConfigDuration(Duration::from_secs(30)),
        }
    }
}

/// `[retention]`: how long each kind is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// JIT requests, counted from when they end.
    pub jit_requests: ConfigDuration,
    /// Alerts, counted from `timeGeneratedUtc`.
    pub alerts: ConfigDuration,
    /// Audit records, counted from when they were written.
    pub audit: ConfigDuration,
    /// Data-subject requests, counted from receipt.
    pub dsr: ConfigDuration,
    /// How often the retention sweep runs.
    pub sweep_interval: ConfigDuration,
}

/// Seconds in a day (the retention defaults).
pub(super) const DAY: u64 = 24 * 60 * 60;

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            jit_requests: ConfigDuration(Duration::from_secs(30 * DAY)),
            alerts: ConfigDuration(Duration::from_secs(730 * DAY)),
            audit: ConfigDuration(Duration::from_secs(90 * DAY)),
            dsr: ConfigDuration(Duration::from_secs(1095 * DAY)),
            sweep_interval: ConfigDuration(Duration::from_secs(60)),
        }
    }
}

/// `[jit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JitConfig {
    /// A command run whenever a JIT request's access opens or closes.
    pub on_change: Option<PathBuf>,
    /// The built-in firewall backend that opens and closes real rules, if any.
    pub firewall: Option<FirewallBackend>,
    /// `[jit.targets]`: VM id (or VM name) -> the address this host forwards to. With a
    /// firewall, a port of a VM with no entry cannot be opened.
    pub targets: BTreeMap<String, std::net::IpAddr>,
}

/// `[jit] firewall`: which built-in backend opens the doors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallBackend {
    /// The daemon's own nftables table (`inet steward`), driven through `nft`'s JSON API.
    Nftables,
}

impl JitConfig {
    /// The address a VM's traffic is forwarded to: the entry whose key is the VM's id
    /// (compared case-insensitively, as ARM ids are), else the entry whose key is its
    /// name (the id's last segment, also case-insensitive).
    pub fn target_of(&self, vm_id: &str) -> Option<std::net::IpAddr> {
        let name = vm_id.rsplit('/').next().unwrap_or_default();
        let by = |want: &str| {
            self.targets
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(want))
                .map(|(_, a)| *a)
        };
        by(vm_id).or_else(|| by(name).filter(|_| !name.is_empty()))
    }

    /// Refuses a `[jit.targets]` key that can name no VM: it must be a VM id
    /// (`/subscriptions/…/virtualMachines/NAME`) or a bare VM name.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for key in self.targets.keys() {
            let bad = |why: &str| Err(ConfigError::Invalid(format!("jit.targets: `{key}` {why}")));
            if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return bad("is empty or holds a space or a control character");
            }
            if key.starts_with('/') {
                let segs: Vec<&str> = key.split('/').collect();
                let shape = segs.len() == 9
                    && segs[1].eq_ignore_ascii_case("subscriptions")
                    && segs[7].eq_ignore_ascii_case("virtualMachines")
                    && segs.iter().skip(1).all(|s| !s.is_empty());
                if !shape {
                    return bad(
                        "must be a VM id (/subscriptions/T/resourceGroups/G/providers/Microsoft.Compute/virtualMachines/NAME) or a VM name",
                    );
                }
            } else if key.contains('/') {
                return bad(
                    "must be a VM id starting with /subscriptions/, or a VM name without `/`",
                );
            }
        }
        Ok(())
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// The spool directory (one subdirectory per tenant). When unset, `data_dir/spool`:
    /// a default outside the data dir would need root to create.
    pub spool_dir: Option<PathBuf>,
    /// How often every tenant's spool directory is scanned even without a watcher event
    /// (a lost event, a file the watcher could not see). At least 100 ms.
    pub rescan_interval: ConfigDuration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            spool_dir: None,
            rescan_interval: ConfigDuration(Duration::from_secs(10)),
        }
    }
}

/// `[dsr]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DsrConfig {
    /// Whether a data-subject request must be confirmed by another user than its requester.
    pub require_second_person: bool,
    /// How soon after an erasure completes no byte of the erased identifiers may remain in
    /// any file under the data dir: the store is rewritten into a fresh file (its freed
    /// pages gone) within this time. Erasures completing within one window share one
    /// rewrite.
    pub scrub_within: ConfigDuration,
}

impl Default for DsrConfig {
    fn default() -> Self {
        DsrConfig {
            require_second_person: false,
            scrub_within: ConfigDuration(Duration::from_secs(15 * 60)),
        }
    }
}

//! The TOML configuration: types, parsing, validation and the embedded default.
//!
//! Key names are the contract of DESIGN.md "Config". Unknown keys are errors at every
//! level (a typo must not silently weaken a grant), and a file is validated whole before
//! anything uses it: every grant names a tenant that exists (or `*`) and a profile that
//! exists, custom profiles never redefine a built-in one. The daemon loads and reloads
//! files; the client reads only the socket default from here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::names::TenantId;
use crate::permissions::{ProfileError, Profiles};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML for this schema (syntax, unknown key, wrong type).
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    /// A profile definition is wrong.
    #[error("{0}")]
    Profile(#[from] ProfileError),
    /// The file parses but does not make sense (duplicate tenant, dangling grant, …).
    #[error("{0}")]
    Invalid(String),
}

/// A whole, validated configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the daemon listens, keeps data and writes logs.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// Request, body and connection limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How long each kind of record is kept, and how often expired ones are swept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// JIT access settings.
    #[serde(default)]
    pub jit: JitConfig,
    /// Alert ingestion settings.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Data-subject request settings.
    #[serde(default)]
    pub dsr: DsrConfig,
    /// Store settings (compaction).
    #[serde(default)]
    pub store: StoreConfig,
    /// The tenants (`[[tenant]]`).
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Who holds which profile where (`[[grant]]`).
    #[serde(default, rename = "grant")]
    pub grants: Vec<GrantConfig>,
    /// Extra role profiles (`[profile.NAME]`).
    #[serde(default, rename = "profile")]
    pub custom_profiles: BTreeMap<String, ProfileConfig>,
    /// Built-in plus custom profiles, built when the file is validated.
    #[serde(skip, default = "Profiles::builtin")]
    profiles: Profiles,
    /// The text this configuration was parsed from (none for the embedded default): a
    /// reload whose file holds the same text changes nothing.
    #[serde(skip)]
    source: SourceText,
}

/// The text a configuration was parsed from; `Debug` shows only its length.
#[derive(Clone, Default)]
struct SourceText(Option<std::sync::Arc<str>>);

impl fmt::Debug for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(t) => write!(f, "SourceText({} bytes)", t.len()),
            None => f.write_str("SourceText(none)"),
        }
    }
}

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

const DAY: u64 = 24 * 60 * 60;

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
    fn validate(&self) -> Result<(), ConfigError> {
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

/// `[store]`: the store file's upkeep.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// When set (a fraction between 0 and 1, e.g. `0.5`), the daemon compacts the store
    /// (rewrites it into a fresh file online, as `stewardd compact` does) once more than this share of the
    /// file is free pages, checked every `[retention] sweep_interval` (files under 16 MiB
    /// are left alone); unset, it never compacts
    /// by itself.
    pub compact_when_free_over: Option<f64>,
}

/// One `[[tenant]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant id used in paths (`[a-z0-9][a-z0-9-]{0,62}`).
    pub id: TenantId,
    /// The display name.
    pub name: String,
}

/// One `[[grant]]`: a profile for a user, uid or group, in one tenant or all (`*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// A user name from the password database.
    pub user: Option<String>,
    /// A numeric uid.
    pub uid: Option<u32>,
    /// A group name: every member (primary or supplementary) holds the grant.
    pub group: Option<String>,
    /// A tenant id, or `*` for every tenant.
    pub tenant: String,
    /// The profile granted.
    pub role: String,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee<'a> {
    /// A user by name.
    User(&'a str),
    /// A user by uid.
    Uid(u32),
    /// Every member of a group.
    Group(&'a str),
}

impl GrantConfig {
    /// Who the grant is for (validation guarantees exactly one is set).
    pub fn grantee(&self) -> Option<Grantee<'_>> {
        match (&self.user, self.uid, &self.group) {
            (Some(u), None, None) => Some(Grantee::User(u)),
            (None, Some(u), None) => Some(Grantee::Uid(u)),
            (None, None, Some(g)) => Some(Grantee::Group(g)),
            _ => None,
        }
    }

    /// Whether the grant applies in `tenant`.
    pub fn covers(&self, tenant: &str) -> bool {
        self.tenant == "*" || self.tenant == tenant
    }
}

/// One `[profile.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Permission names (`audit.read`, …).
    pub permissions: Vec<String>,
}

impl Config {
    /// Parses and validates a whole configuration file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text)?;
        cfg.validate()?;
        cfg.source = SourceText(Some(text.into()));
        Ok(cfg)
    }

    /// The text this configuration was parsed from; `None` for one built in code (the
    /// embedded default).
    pub fn source_text(&self) -> Option<&str> {
        self.source.0.as_deref()
    }

    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text)
    }

    /// The configuration a daemon runs with when no file is given: a user-private
    /// socket, XDG data and log dirs, one tenant `default` where `user` (the daemon's
    /// own user) is tenant-admin.
    pub fn embedded_default(user: &str) -> Config {
        let data = xdg_dir("XDG_DATA_HOME", ".local/share").join("steward");
        let mut cfg = Config {
            daemon: DaemonConfig {
                socket: crate::client::default_socket_path(),
                data_dir: data.clone(),
                log_dir: xdg_dir("XDG_STATE_HOME", ".local/state").join("steward"),
                ..DaemonConfig::default()
            },
            limits: LimitsConfig::default(),
            retention: RetentionConfig::default(),
            jit: JitConfig::default(),
            ingest: IngestConfig {
                spool_dir: Some(data.join("spool")),
                ..IngestConfig::default()
            },
            dsr: DsrConfig::default(),
            store: StoreConfig::default(),
            tenants: vec![TenantConfig {
                id: TenantId::default_tenant(),
                name: "Default".into(),
            }],
            grants: vec![GrantConfig {
                user: Some(user.to_owned()),
                uid: None,
                group: None,
                tenant: "default".into(),
                role: "tenant-admin".into(),
            }],
            custom_profiles: BTreeMap::new(),
            profiles: Profiles::builtin(),
            source: SourceText::default(),
        };
        // The embedded default is valid by construction; validating keeps one path.
        if let Err(e) = cfg.validate() {
            debug_assert!(false, "embedded default invalid: {e}");
        }
        cfg
    }

    /// Built-in plus custom role profiles.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// The tenant with this id, if configured.
    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id.as_str() == id)
    }

    /// The spool directory: `[ingest] spool_dir`, else `data_dir/spool`.
    pub fn spool_dir(&self) -> PathBuf {
        self.ingest
            .spool_dir
            .clone()
            .unwrap_or_else(|| self.daemon.data_dir.join("spool"))
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        if let Some(f) = self.store.compact_when_free_over
            && !(f > 0.0 && f < 1.0)
        {
            return Err(ConfigError::Invalid(format!(
                "[store] compact_when_free_over = {f}: must be a fraction between 0 and 1 (e.g. 0.5)"
            )));
        }
        let custom: BTreeMap<String, Vec<String>> = self
            .custom_profiles
            .iter()
            .map(|(k, v)| (k.clone(), v.permissions.clone()))
            .collect();
        self.profiles = Profiles::new(&custom)?;
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.tenants {
            if !seen.insert(t.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "tenant `{}` is declared twice",
                    t.id
                )));
            }
        }
        for (i, g) in self.grants.iter().enumerate() {
            let n = i + 1;
            match g.grantee() {
                None => {
                    let set: Vec<&str> = [
                        ("`user`", g.user.is_some()),
                        ("`uid`", g.uid.is_some()),
                        ("`group`", g.group.is_some()),
                    ]
                    .into_iter()
                    .filter_map(|(k, on)| on.then_some(k))
                    .collect();
                    let found = if set.is_empty() {
                        "none is set".to_owned()
                    } else {
                        format!("{} are set", set.join(" and "))
                    };
                    return Err(ConfigError::Invalid(format!(
                        "grant #{n}: give exactly one of `user`, `uid` or `group` ({found})"
                    )));
                }
                Some(Grantee::User(name)) => check_grantee_name(n, "user", name)?,
                Some(Grantee::Group(name)) => check_grantee_name(n, "group", name)?,
                Some(Grantee::Uid(u32::MAX)) => {
                    return Err(ConfigError::Invalid(format!(
                        "grant #{n}: `uid = {}` is (uid_t)-1, which no user can have",
                        u32::MAX
                    )));
                }
                Some(Grantee::Uid(_)) => {}
            }
            if g.tenant != "*" && self.tenant(&g.tenant).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "grant #{n}: tenant `{}` is not declared in a [[tenant]]",
                    g.tenant
                )));
            }
            if self.profiles.get(&g.role).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "grant #{n}: role `{}` is neither built in nor defined in [profile.{}]",
                    g.role, g.role
                )));
            }
        }
        if self.limits.max_connections == 0 || self.limits.max_connections_per_uid == 0 {
            return Err(ConfigError::Invalid(
                "limits: connection caps must be at least 1".into(),
            ));
        }
        if self.limits.denial_window.0 < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "limits.denial_window must be at least 1s (denials within it are coalesced)".into(),
            ));
        }
        let refresh = self.limits.identity_refresh.0;
        if refresh < Duration::from_millis(100) || refresh > Duration::from_secs(30) {
            return Err(ConfigError::Invalid(
                "limits: identity_refresh must be between 100ms and 30s".into(),
            ));
        }
        if self.limits.ingest_budget.0 < self.limits.max_ingest_body.0 {
            return Err(ConfigError::Invalid(
                "limits.ingest_budget must be at least limits.max_ingest_body".into(),
            ));
        }
        if self.retention.sweep_interval.0 < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "retention.sweep_interval must be at least 100ms".into(),
            ));
        }
        if self.ingest.rescan_interval.0 < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "ingest.rescan_interval must be at least 100ms".into(),
            ));
        }
        self.jit.validate()?;
        if self.tenants.len() > 1
            && let Some(name) = self.jit.targets.keys().find(|k| !k.starts_with('/'))
        {
            return Err(ConfigError::Invalid(format!(
                "jit.targets: `{name}` is a bare VM name, but several tenants are declared and each may have a VM of that name (another tenant's policy would open this address): key it by the full VM id"
            )));
        }
        Ok(())
    }
}

/// Refuses a grant's `user` or `group` (`key`) that no account can have, so a grant that
/// matches nobody is an error rather than a silent no-op: empty, `*` (there is no wildcard
/// for who; only `tenant` takes `*`), a glob character, whitespace, a control character,
/// `:` (the password and group files' separator) or a leading `-`.
fn check_grantee_name(n: usize, key: &str, name: &str) -> Result<(), ConfigError> {
    let why = if name.is_empty() {
        "is empty"
    } else if name == "*" {
        "matches nobody: `*` is not a wildcard here (only `tenant` takes `*`); name one account, or use `group` for many users"
    } else if name.contains(['*', '?']) {
        "holds a wildcard, which is not supported: name one account, or use `group` for many users"
    } else if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ':')
    {
        "holds a space, a control character or `:`, which no account name can"
    } else if name.starts_with('-') {
        "starts with `-`, which no account name can"
    } else {
        return Ok(());
    };
    Err(ConfigError::Invalid(format!("grant #{n}: `{key}` {why}")))
}

/// `$VAR` when set and absolute, else `$HOME/fallback`, else `/tmp/steward-$UID`.
fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        _ => match std::env::var_os("HOME").map(PathBuf::from) {
            Some(h) if h.is_absolute() => h.join(fallback),
            _ => private_tmp_dir(),
        },
    }
}

fn private_tmp_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/steward-{}", nix::unistd::getuid()))
}

/// A duration in config: a jiff "friendly" duration (`30d`, `1m`, `2h 30m`) or ISO 8601
/// (`P30D`, `PT1M`). Days count as 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl FromStr for ConfigDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let span: jiff::Span = s
            .parse()
            .map_err(|e| format!("`{s}` is not a duration (try `30d`, `1m` or `PT1M`): {e}"))?;
        let d = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| format!("`{s}`: {e}"))?;
        let d = Duration::try_from(d).map_err(|_| format!("`{s}` must not be negative"))?;
        Ok(ConfigDuration(d))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A size in config: `1MiB`, `64KiB`, `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes, as a `usize` (saturating on 32-bit targets).
    pub fn bytes(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let b: bytesize::ByteSize = s.parse().map_err(|e| {
            serde::de::Error::custom(format!("`{s}` is not a size (try `1MiB`): {e}"))
        })?;
        Ok(ByteSize(b.as_u64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = include_str!("../config/steward.toml");

    #[test]
    fn the_documented_example_config_is_valid_and_uses_every_section() {
        let c = Config::parse(FULL).unwrap();
        assert_eq!(c.limits.max_body.0, 1 << 20);
        assert_eq!(c.limits.max_ingest_body.0, 16 << 20);
        assert_eq!(c.retention.alerts.0, Duration::from_secs(730 * DAY));
        assert_eq!(c.retention.sweep_interval.0, Duration::from_secs(60));
        assert!(c.profiles().get("auditor").is_some());
        assert!(c.tenant("contoso").is_some());
    }

    /// `[jit] firewall` and `[jit.targets]`: a target is found by VM id (any case) or by
    /// bare VM name; a key that can name no VM, an address that is not one, and an
    /// unknown backend are refused.
    #[test]
    fn jit_firewall_and_targets() {
        const VM1: &str = "/subscriptions/contoso/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1";
        let c = Config::parse(&format!(
            "[jit]\nfirewall = \"nftables\"\n[jit.targets]\n\"{VM1}\" = \"10.1.0.5\"\n\"vm2\" = \"fd00::7\"\n"
        ))
        .unwrap();
        assert_eq!(c.jit.firewall, Some(FirewallBackend::Nftables));
        let upper = VM1.to_ascii_uppercase();
        assert_eq!(
            c.jit.target_of(&upper).map(|a| a.to_string()).as_deref(),
            Some("10.1.0.5")
        );
        let vm2 = VM1.replace("vm1", "VM2");
        assert_eq!(
            c.jit.target_of(&vm2).map(|a| a.to_string()).as_deref(),
            Some("fd00::7")
        );
        assert_eq!(c.jit.target_of(&VM1.replace("vm1", "vm3")), None);
        assert_eq!(Config::parse("").unwrap().jit.firewall, None);
        for (bad, want) in [
            ("[jit]\nfirewall = \"iptables\"", "unknown variant"),
            ("[jit.targets]\nvm1 = \"10.1.0\"", "invalid IP address"),
            ("[jit.targets]\n\"rg1/vm1\" = \"10.1.0.5\"", "without `/`"),
            (
                "[jit.targets]\n\"/subscriptions/c/vm1\" = \"10.1.0.5\"",
                "must be a VM id",
            ),
            ("[jit.targets]\n\"vm 1\" = \"10.1.0.5\"", "space"),
            (
                "[[tenant]]\nid = \"a\"\nname = \"A\"\n[[tenant]]\nid = \"b\"\nname = \"B\"\n[jit.targets]\nvm1 = \"10.1.0.5\"",
                "several tenants",
            ),
        ] {
            let e = Config::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        for bad in [
            "bogus = 1",
            "[daemon]\nsockett = \"/x\"",
            "[limits]\nmax_bodyy = \"1MiB\"",
            "[[tenant]]\nid = \"a\"\nname = \"A\"\ncolour = \"red\"",
            "[[tenant]]\nid = \"a\"\nname = \"A\"\n[[grant]]\nuser = \"x\"\ntenant = \"a\"\nrole = \"reader\"\nbogus_key = 1",
        ] {
            assert_refused(bad, "unknown field");
        }
    }

    /// Asserts that `text` is refused with an error that says `want`.
    fn assert_refused(text: &str, want: &str) {
        let e = Config::parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }

    #[test]
    fn grants_must_be_coherent() {
        let base = "[[tenant]]\nid = \"a\"\nname = \"A\"\n";
        let cases = [
            (
                "[[grant]]\ntenant = \"a\"\nrole = \"reader\"",
                "exactly one",
            ),
            (
                "[[grant]]\nuser = \"x\"\nuid = 1\ntenant = \"a\"\nrole = \"reader\"",
                "exactly one",
            ),
            (
                "[[grant]]\nuser = \"x\"\ntenant = \"b\"\nrole = \"reader\"",
                "not declared",
            ),
            (
                "[[grant]]\nuser = \"x\"\ntenant = \"a\"\nrole = \"superuser\"",
                "superuser",
            ),
            (
                "[profile.owner]\npermissions = [\"audit.read\"]",
                "cannot be redefined",
            ),
        ];
        for (text, want) in cases {
            assert_refused(&format!("{base}{text}"), want);
        }
        assert!(Config::parse(&format!("{base}[[tenant]]\nid = \"a\"\nname = \"B\"")).is_err());
        assert!(Config::parse("[[tenant]]\nid = \"Bad_Id\"\nname = \"x\"").is_err());
    }

    #[test]
    fn grants_that_can_match_nobody_are_errors_naming_the_grant_and_the_key() {
        let base = "[[tenant]]\nid = \"a\"\nname = \"A\"\n\
                    [[grant]]\nuser = \"ok\"\ntenant = \"a\"\nrole = \"reader\"\n[[grant]]\n";
        let rest = "tenant = \"a\"\nrole = \"reader\"\n";
        let cases = [
            ("user = \"*\"", "grant #2: `user` matches nobody"),
            ("group = \"*\"", "grant #2: `group` matches nobody"),
            ("user = \"\"", "grant #2: `user` is empty"),
            ("group = \"\"", "grant #2: `group` is empty"),
            ("group = \"sec*\"", "grant #2: `group` holds a wildcard"),
            ("user = \"al ice\"", "grant #2: `user` holds a space"),
            ("user = \"a:b\"", "grant #2: `user` holds a space"),
            ("user = \"a\\nb\"", "grant #2: `user` holds a space"),
            ("user = \"-x\"", "grant #2: `user` starts with `-`"),
            (
                "uid = 4294967295",
                "grant #2: `uid = 4294967295` is (uid_t)-1",
            ),
            (
                "",
                "grant #2: give exactly one of `user`, `uid` or `group` (none is set)",
            ),
            (
                "user = \"x\"\ngroup = \"g\"",
                "grant #2: give exactly one of `user`, `uid` or `group` (`user` and `group` are set)",
            ),
        ];
        for (who, want) in cases {
            assert_refused(&format!("{base}{who}\n{rest}"), want);
        }
        for who in [
            "user = \"alice.b@corp\"",
            "group = \"sec-ops_1\"",
            "uid = 0",
            "uid = 65534",
        ] {
            assert!(
                Config::parse(&format!("{base}{who}\n{rest}")).is_ok(),
                "{who}"
            );
        }
    }

    #[test]
    fn a_parsed_config_keeps_its_text_and_the_embedded_default_has_none() {
        let text = "[[tenant]]\nid = \"a\"\nname = \"A\"\n";
        assert_eq!(Config::parse(text).unwrap().source_text(), Some(text));
        assert_eq!(Config::embedded_default("alice").source_text(), None);
    }

    #[test]
    fn durations_accept_friendly_and_iso_forms() {
        for (s, secs) in [
            ("30d", 30 * DAY),
            ("P30D", 30 * DAY),
            ("1m", 60),
            ("PT1M", 60),
            ("3s", 3),
        ] {
            assert_eq!(
                s.parse::<ConfigDuration>().unwrap().0.as_secs(),
                secs,
                "{s}"
            );
        }
        assert!("soon".parse::<ConfigDuration>().is_err());
        assert!("-5s".parse::<ConfigDuration>().is_err());
    }

    #[test]
    fn denial_coalescing_keys_have_defaults_and_a_floor() {
        let c = Config::parse(FULL).unwrap();
        assert_eq!(c.limits.denial_window.0, Duration::from_secs(60));
        assert_eq!(c.limits.denials_per_uid, 32);
        let e = Config::parse("[limits]\ndenial_window = \"0s\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("denial_window"), "{e}");
    }

    #[test]
    fn embedded_default_grants_the_daemon_user_tenant_admin() {
        let c = Config::embedded_default("alice");
        assert_eq!(c.tenants.len(), 1);
        assert_eq!(c.tenants[0].id.as_str(), "default");
        assert_eq!(c.grants[0].grantee(), Some(Grantee::User("alice")));
        assert_eq!(c.grants[0].role, "tenant-admin");
        assert!(c.daemon.socket_group.is_none());
        assert!(c.daemon.socket.ends_with("steward.sock"));
    }
}

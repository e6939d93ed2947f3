//! The TOML configuration: types, parsing, validation and the embedded default.
//!
//! Key names are the contract of DESIGN.md "Config". Unknown keys are errors at every
//! level (a typo must not silently weaken a grant), and a file is validated whole before
//! anything uses it: every grant names a tenant that exists (or `*`) and a profile that
//! exists, custom profiles never redefine a built-in one. The daemon loads and reloads
//! files; the client reads only the socket default from here.
//!
//! | module | what it holds |
//! | --- | --- |
//! | `sections` | `[daemon]`, `[limits]`, `[retention]`, `[jit]`, `[ingest]`, `[dsr]` |
//! | `store` | `[store]`: the backend (redb or PostgreSQL) and the redb file's upkeep |
//! | `access` | `[[tenant]]`, `[[grant]]`, `[profile.NAME]` |
//! | `units` | durations and sizes as written in the file |

mod access;
mod sections;
mod store;
mod units;

pub use access::{GrantConfig, Grantee, ProfileConfig, TenantConfig};
pub use sections::{
    DaemonConfig, DsrConfig, FirewallBackend, IngestConfig, JitConfig, LimitsConfig,
    RetentionConfig,
};
pub use store::{DEFAULT_POSTGRES_URL, StoreBackend, StoreConfig};
pub use units::{ByteSize, ConfigDuration};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
        self.store.validate()?;
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
                Some(Grantee::User(name)) => access::check_grantee_name(n, "user", name)?,
                Some(Grantee::Group(name)) => access::check_grantee_name(n, "group", name)?,
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

#[cfg(test)]
mod tests;

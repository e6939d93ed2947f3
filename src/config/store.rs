//! `[store]`: which backend holds the data (the embedded redb file, or a PostgreSQL database
//! several daemons share) and the redb file's upkeep.
//!
//! A password never sits in the config file (which is readable by whoever may read the
//! configuration, and ends up in backups and bug reports): `postgres_url` is refused when
//! it holds one, and `postgres_password_file` names a file the daemon reads at start.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `postgres_url`'s default: the database `steward` through PostgreSQL's Unix socket in
/// `/run/postgresql`, authenticated by the daemon's own OS user (peer authentication).
pub const DEFAULT_POSTGRES_URL: &str = "postgresql:///steward?host=/run/postgresql";

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Where the data lives: `redb` (the default: one file in `data_dir`) or `postgres`.
    pub backend: StoreBackend,
    /// With `backend = "postgres"`: the database, as a `postgresql://` URL without a
    /// password (see [`DEFAULT_POSTGRES_URL`]).
    pub postgres_url: String,
    /// With `backend = "postgres"`: an absolute path to a file holding the password (its
    /// first line), for a server that asks for one; none for peer authentication.
    pub postgres_password_file: Option<PathBuf>,
    /// With `backend = "postgres"`: connections kept open for reads (the writer has one
    /// more of its own), 1 to 256.
    pub pool_size: usize,
    /// When set (a fraction between 0 and 1, e.g. `0.5`), the daemon compacts the store
    /// (rewrites it into a fresh file online, as `stewardd compact` does) once more than
    /// this share of the file is free pages, checked every `[retention] sweep_interval`
    /// (files under 16 MiB are left alone); unset, it never compacts by itself. redb only.
    pub compact_when_free_over: Option<f64>,
}

/// `[store] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The embedded redb file `data_dir/steward.redb`.
    #[default]
    Redb,
    /// A PostgreSQL database, which several daemons (a fleet) may share.
    Postgres,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Redb,
            postgres_url: DEFAULT_POSTGRES_URL.to_owned(),
            postgres_password_file: None,
            pool_size: 8,
            compact_when_free_over: None,
        }
    }
}

impl StoreConfig {
    /// Checks the section on its own: the compaction threshold, the URL's form (and that
    /// it holds no password), the password file's path, the pool size.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(f) = self.compact_when_free_over
            && !(f > 0.0 && f < 1.0)
        {
            return Err(ConfigError::Invalid(format!(
                "[store] compact_when_free_over = {f}: must be a fraction between 0 and 1 (e.g. 0.5)"
            )));
        }
        check_postgres_url(&self.postgres_url)?;
        if let Some(p) = &self.postgres_password_file
            && !p.is_absolute()
        {
            return Err(ConfigError::Invalid(format!(
                "[store] postgres_password_file = {:?}: must be an absolute path",
                p.display()
            )));
        }
        if !(1..=256).contains(&self.pool_size) {
            return Err(ConfigError::Invalid(format!(
                "[store] pool_size = {}: must be between 1 and 256",
                self.pool_size
            )));
        }
        Ok(())
    }
}

/// Refuses a `postgres_url` that is not a `postgresql://` (or `postgres://`) URL, or that
/// carries a password (`user:password@` or a `password=` parameter).
fn check_postgres_url(url: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        Err(ConfigError::Invalid(format!(
            "[store] postgres_url: {why} (e.g. {DEFAULT_POSTGRES_URL:?})"
        )))
    };
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return bad("must be a postgresql:// URL");
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && userinfo.contains(':')
    {
        return bad(
            "holds a password; put it in a file named by postgres_password_file, never in the config",
        );
    }
    let password_param = query
        .split('&')
        .any(|kv| kv.split('=').next().is_some_and(|k| k == "password"));
    if password_param {
        return bad(
            "holds a password parameter; put it in a file named by postgres_password_file, never in the config",
        );
    }
    Ok(())
}

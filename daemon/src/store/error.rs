//! The store's error types: [`StoreError`] for storage itself, [`WriteError`] for a write job.
//!
//! redb's per-operation errors are folded into [`StoreError`] here, once, so the daemon can
//! map them to HTTP (507 for [`StoreError::StorageFull`]) without knowing redb.

use std::path::PathBuf;

use super::Kind;
use super::codec::CodecError;

/// Something went wrong with the database itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb's exclusive file lock is held: another daemon owns this data directory.
    #[error(
        "another stewardd already holds the data directory: {path} is locked \
         (stop the other daemon or use another data_dir)"
    )]
    AlreadyOpen {
        /// The database file that is locked.
        path: PathBuf,
    },
    /// The file is not a redb database, or redb found it damaged.
    #[error("the database is damaged or is not a steward database: {0}")]
    Corrupted(String),
    /// The file was written with a layout this build does not understand.
    #[error(
        "the database has schema version {found}; this stewardd understands version {supported}"
    )]
    UnsupportedSchema {
        /// The version recorded in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The disk (or quota) is full: the change did not happen (HTTP 507).
    #[error("storage full: no space left for the database; the change was not made")]
    StorageFull,
    /// A stored value could not be decoded (or a value could not be encoded).
    #[error("{what}: {source}")]
    Codec {
        /// Which value: table and key.
        what: String,
        /// The codec's reason.
        #[source]
        source: CodecError,
    },
    /// An I/O error outside redb (creating the data directory, reading the OS's randomness).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other redb error.
    #[error("database error: {0}")]
    Database(std::sync::Arc<redb::Error>),
    /// An error of the PostgreSQL backend's server or connection.
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(std::sync::Arc<postgres::Error>),
    /// The writer thread has stopped (the store was closed); nothing was written.
    #[error("the store is closed: its writer has stopped")]
    WriterStopped,
    /// A backup, restore or compaction refused to go on (a bad target path, a copy from a
    /// newer schema, another one running); nothing was changed. The text says why.
    #[error("{0}")]
    Refused(String),
    /// The path given for a backup cannot be used (relative, a symbolic link, inside the
    /// data directory, …); nothing was written. The text names the path and why.
    #[error("{0}")]
    BadTarget(String),
}

impl StoreError {
    /// Wraps a codec error with the table and key it concerns.
    pub(crate) fn codec(what: impl Into<String>, source: CodecError) -> Self {
        StoreError::Codec {
            what: what.into(),
            source,
        }
    }

    /// redb's "Previous I/O error occurred": the instance is latched by an earlier I/O error.
    pub(crate) fn is_previous_io(&self) -> bool {
        matches!(self, StoreError::Database(e) if matches!(**e, redb::Error::PreviousIo))
    }

    /// An I/O failure inside redb (a full disk included): redb latches the instance after
    /// it, so it must be closed and opened again (see `slot.rs`).
    pub(crate) fn breaks_instance(&self) -> bool {
        match self {
            StoreError::StorageFull => true,
            StoreError::Database(e) => matches!(**e, redb::Error::PreviousIo | redb::Error::Io(_)),
            _ => false,
        }
    }

    /// A copy for each job of a group that failed together (`io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> StoreError {
        match self {
            StoreError::AlreadyOpen { path } => StoreError::AlreadyOpen { path: path.clone() },
            StoreError::Corrupted(m) => StoreError::Corrupted(m.clone()),
            StoreError::UnsupportedSchema { found, supported } => StoreError::UnsupportedSchema {
                found: *found,
                supported: *supported,
            },
            StoreError::StorageFull => StoreError::StorageFull,
            StoreError::Codec { what, source } => StoreError::Codec {
                what: what.clone(),
                source: source.clone(),
            },
            StoreError::Io(e) => StoreError::Io(std::io::Error::new(e.kind(), e.to_string())),
            StoreError::Database(e) => StoreError::Database(e.clone()),
            StoreError::Postgres(e) => StoreError::Postgres(e.clone()),
            StoreError::WriterStopped => StoreError::WriterStopped,
            StoreError::Refused(m) => StoreError::Refused(m.clone()),
            StoreError::BadTarget(m) => StoreError::BadTarget(m.clone()),
        }
    }
}

fn is_storage_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// A PostgreSQL error with the server's own message (the driver's `Display` says only
/// "db error" for an error the server reported).
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The server's disk is full: the change did not happen (507, as with redb).
        if e.code() == Some(&postgres::error::SqlState::DISK_FULL) {
            return StoreError::StorageFull;
        }
        StoreError::Postgres(std::sync::Arc::new(e))
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) if is_storage_full(&io) => StoreError::StorageFull,
            redb::Error::Corrupted(msg) => StoreError::Corrupted(msg),
            other => StoreError::Database(std::sync::Arc::new(other)),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::from(redb::Error::from(e))
            }
        }
        impl From<$t> for WriteError {
            fn from(e: $t) -> Self {
                WriteError::Store(StoreError::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError,
    redb::DatabaseError
);

/// Why a write job failed. A failed job changed nothing (see [`super::TenantTxn`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The record to change does not exist in this tenant (HTTP 404).
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Kind of the record.
        kind: Kind,
        /// Its name.
        name: String,
    },
    /// `If-Match` did not match the record's current etag, or `*` and it does not exist (412).
    #[error("{kind} {name:?} has changed: If-Match does not match its current etag")]
    PreconditionFailed {
        /// Kind of the record.
        kind: Kind,
        /// Its name.
        name: String,
        /// Its current etag, when it exists (the 412 names it, so a client can reload).
        current: Option<String>,
    },
    /// The job changed something but recorded no audit entry, so none of it was applied.
    #[error("a change without its audit record: the job was refused and nothing was applied")]
    Unaudited,
    /// The job handed the store something it cannot keep (empty name, bad subject, ...):
    /// the caller's input is at fault (400).
    #[error("invalid write: {0}")]
    Invalid(String),
    /// A stored record could not be read back (a record the store holds is damaged or of
    /// a shape this build does not know): the store is at fault, not the caller (500).
    #[error("a stored record is unreadable: {0}")]
    Corrupt(String),
    /// A record could not be encoded for storage: a bug, not the caller's input (500).
    #[error("a record could not be encoded: {0}")]
    Encode(String),
    /// The job's closure panicked; nothing of it was applied, the other jobs went on.
    #[error("the write job panicked; nothing of it was applied")]
    Panicked,
    /// The storage failed; with a commit failure every job of the group gets this.
    #[error(transparent)]
    Store(#[from] StoreError),
}

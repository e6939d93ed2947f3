//! Why a subcommand failed, and the exit code each failure maps to.
//!
//! The exit codes are a contract with scripts (DESIGN.md "Clients"): 0 ok, 1 error,
//! 2 usage, 3 forbidden, 4 not found, 5 conflict, 6 daemon unreachable. The mapping
//! from HTTP status lives in one function, [`exit_for_status`]; clap's own usage errors
//! exit 2 before any of this runs.

use std::path::PathBuf;
use std::process::ExitCode;

use steward::client::{ClientError, StatusCode};

/// The process exit codes of `steward`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Any other failure (bad input file, invalid record, daemon error, broken audit chain).
    Error = 1,
    /// The command line or the situation does not allow the command (a delete without
    /// `--yes` and no terminal to ask on).
    Usage = 2,
    /// The daemon answered 403: the acting profile lacks the permission.
    Forbidden = 3,
    /// The daemon answered 404: no such record, or no such (or no granted) tenant.
    NotFound = 4,
    /// The daemon answered 409 or 412: the record changed or already exists.
    Conflict = 5,
    /// The daemon's socket could not be connected.
    Unreachable = 6,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// The exit code for a non-2xx status answered by the daemon.
pub fn exit_for_status(status: StatusCode) -> Exit {
    match status {
        StatusCode::FORBIDDEN => Exit::Forbidden,
        StatusCode::NOT_FOUND => Exit::NotFound,
        StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => Exit::Conflict,
        s if s.is_success() => Exit::Ok,
        _ => Exit::Error,
    }
}

/// A failed subcommand, carrying what decides its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the daemon failed, or it answered an error.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The command cannot run as given.
    #[error("{0}")]
    Usage(String),
    /// A local input (a JSON file, stdin) could not be read or is not what is expected.
    #[error("{}: {message}", path.display())]
    Input {
        /// The file (or `-` for stdin).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The command ran and its answer is a failure (a broken audit chain).
    #[error("{0}")]
    Failed(String),
    /// Writing output or a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// The exit code this failure maps to.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Client(ClientError::Unreachable { .. } | ClientError::Untrusted { .. }) => {
                Exit::Unreachable
            }
            Self::Client(ClientError::Api(e)) => exit_for_status(e.status),
            Self::Client(_) | Self::Input { .. } | Self::Failed(_) | Self::Io(_) => Exit::Error,
            Self::Usage(_) => Exit::Usage,
        }
    }

    /// True for a write to a closed pipe (`steward alerts list | head`), which is not
    /// an error worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Self::Io(e) => e.kind() == std::io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }
}

impl From<csv::Error> for CliError {
    fn from(e: csv::Error) -> Self {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Self::Io(io),
            other => Self::Failed(format!("CSV output: {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward::client::ApiError;

    fn api(status: StatusCode) -> CliError {
        CliError::Client(ClientError::Api(ApiError::from_body(status, b"")))
    }

    #[test]
    fn statuses_map_to_the_documented_exit_codes() {
        assert_eq!(exit_for_status(StatusCode::FORBIDDEN), Exit::Forbidden);
        assert_eq!(exit_for_status(StatusCode::NOT_FOUND), Exit::NotFound);
        assert_eq!(exit_for_status(StatusCode::CONFLICT), Exit::Conflict);
        assert_eq!(
            exit_for_status(StatusCode::PRECONDITION_FAILED),
            Exit::Conflict
        );
        for other in [400, 405, 413, 415, 429, 431, 500, 503, 507] {
            let status = StatusCode::from_u16(other).unwrap();
            assert_eq!(exit_for_status(status), Exit::Error, "{other}");
        }
        assert_eq!(exit_for_status(StatusCode::OK), Exit::Ok);
    }

    #[test]
    fn errors_carry_their_exit_code() {
        assert_eq!(api(StatusCode::FORBIDDEN).exit() as u8, 3);
        assert_eq!(api(StatusCode::NOT_FOUND).exit() as u8, 4);
        assert_eq!(api(StatusCode::PRECONDITION_FAILED).exit() as u8, 5);
        assert_eq!(api(StatusCode::BAD_REQUEST).exit() as u8, 1);
        let unreachable = CliError::Client(ClientError::Unreachable {
            socket: "/nope".into(),
            source: std::io::ErrorKind::NotFound.into(),
        });
        assert_eq!(unreachable.exit() as u8, 6);
        let untrusted = CliError::Client(ClientError::Untrusted {
            socket: "/tmp/steward-1000/steward.sock".into(),
            reason: steward::client::Untrusted::DirIsLink {
                dir: "/tmp/steward-1000".into(),
            },
        });
        assert_eq!(untrusted.exit() as u8, 6);
        assert_eq!(CliError::Usage("x".into()).exit() as u8, 2);
        assert_eq!(CliError::Failed("x".into()).exit() as u8, 1);
        assert!(CliError::Io(std::io::ErrorKind::BrokenPipe.into()).is_broken_pipe());
    }
}

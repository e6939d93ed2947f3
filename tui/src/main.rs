//! # steward — the operator's client
//!
//! Temporary entry point on the `tui` branch: opens the terminal UI on
//! `$STEWARD_SOCKET` (else `$XDG_RUNTIME_DIR/steward/steward.sock`) for
//! `$STEWARD_TENANT`. The subcommands' `main.rs` replaces this file.

use std::path::PathBuf;
use std::process::ExitCode;

use steward_tui::tui::{TuiOptions, run};

fn main() -> ExitCode {
    let socket = std::env::var_os("STEWARD_SOCKET")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_RUNTIME_DIR")
                .map(|d| PathBuf::from(d).join("steward").join("steward.sock"))
        })
        .unwrap_or_else(|| PathBuf::from("/run/steward/steward.sock"));
    let opts = TuiOptions {
        socket,
        tenant: std::env::var("STEWARD_TENANT")
            .ok()
            .filter(|t| !t.is_empty()),
        role: None,
        keys: None,
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

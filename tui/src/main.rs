//! # steward — the operator's client
//!
//! `steward` talks to the steward daemon (`stewardd`) over its Unix socket, through
//! [`steward::client`], and never touches the database.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`cli`] | the subcommands for scripts (`steward alerts list -o json`): clap definitions, printing, exports, exit codes |
//! | `steward_tui::tui` (the crate's library) | the ratatui terminal UI opened by a bare `steward` |
//! | [`demo`] | `steward demo`: a private daemon with demo data, then the TUI |
//!
//! Exit codes (a contract with scripts): 0 ok, 1 error, 2 usage, 3 forbidden,
//! 4 not found, 5 conflict, 6 daemon unreachable.

mod cli;
mod demo;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, CliCommand, DemoArgs, GlobalArgs};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2 (0 for --help and --version).
    let Cli { global, command } = Cli::parse();
    match command {
        None => run_tui(&global),
        Some(CliCommand::Demo(args)) => run_demo(&global, &args),
        Some(command) => cli::run(&global, command),
    }
}

/// Opens the terminal UI on the daemon `global` points at.
fn run_tui(global: &GlobalArgs) -> ExitCode {
    let opts = steward_tui::tui::TuiOptions {
        socket: global
            .socket
            .clone()
            .unwrap_or_else(steward::client::default_socket_path),
        tenant: Some(global.tenant.clone()),
        role: global.role.clone().filter(|r| !r.is_empty()),
        keys: None,
    };
    match steward_tui::tui::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts a private daemon with demo data and opens the terminal UI on it.
fn run_demo(_global: &GlobalArgs, args: &DemoArgs) -> ExitCode {
    match demo::run(args.keep) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

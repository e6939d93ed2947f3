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

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use cli::args::{Cli, CliCommand, DemoArgs, GlobalArgs};
use demo::options::{Asked, Given};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2 (0 for --help and --version).
    let matches = Cli::command().get_matches();
    let Cli { global, command } = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match command {
        None => run_tui(&global),
        Some(CliCommand::Demo(args)) => run_demo(&global, &matches, &args),
        Some(command) => cli::run(&global, command),
    }
}

/// The exit code and message of a TUI that could not run: 2 without a terminal or with a
/// `STEWARD_TZ` naming no zone (usage errors, nothing was started), 1 otherwise.
fn tui_failed(prefix: &str, e: &anyhow::Error) -> ExitCode {
    eprintln!("{prefix}: {e:#}");
    if e.downcast_ref::<steward_tui::tui::NoTerminal>().is_some()
        || e.downcast_ref::<steward::local_time::ZoneError>().is_some()
    {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
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
        Err(e) => tui_failed("steward", &e),
    }
}

/// Starts a private daemon with demo data and opens the terminal UI on it, in the tenant
/// and profile asked for; a global option it cannot honour is a usage error (exit 2).
fn run_demo(global: &GlobalArgs, matches: &ArgMatches, args: &DemoArgs) -> ExitCode {
    let given = |id: &str| {
        // Globals given after the subcommand are recorded in its matches.
        let sub = matches.subcommand_matches("demo");
        match sub
            .and_then(|m| m.value_source(id))
            .or(matches.value_source(id))
        {
            Some(ValueSource::CommandLine) => Given::CommandLine,
            Some(ValueSource::EnvVariable) => Given::Env,
            _ => Given::Default,
        }
    };
    let asked = Asked {
        socket: given("socket"),
        tenant: (global.tenant.clone(), given("tenant")),
        role: (global.role.clone(), given("role")),
    };
    // Before the temp dir and the daemon: nothing to clean up when there is no terminal.
    if let Err(e) = steward_tui::tui::require_terminal() {
        eprintln!("steward demo: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = steward::local_time::zone() {
        eprintln!("steward demo: {e}");
        return ExitCode::from(2);
    }
    let opts = match demo::options::resolve(&asked) {
        Ok(opts) => opts,
        Err(why) => {
            eprintln!("steward demo: {why}");
            return ExitCode::from(2);
        }
    };
    match demo::run(args.keep, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => tui_failed("steward demo", &e),
    }
}

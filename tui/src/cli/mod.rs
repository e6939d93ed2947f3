//! The subcommands of `steward`, for scripts and quick looks (`steward alerts list`).
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`args`] | the clap definitions: global options and the subcommand tree |
//! | [`commands`] | what each subcommand sends and prints |
//! | [`output`] | table, JSON, NDJSON and CSV printing, with the columns per kind |
//! | [`input`] | reading JSON records and alert files (JSON, array or NDJSON) |
//! | [`export`] | streaming exports and bundles to a file (0600, renamed when complete) or stdout |
//! | [`error`] | failures and the exit codes scripts rely on |
//!
//! Not here: the terminal UI and `demo`, which `main` dispatches to on its own.

pub mod args;
pub mod commands;
pub mod error;
pub mod export;
pub mod input;
pub mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use args::{Cli, CliCommand, GlobalArgs};
use error::{CliError, Exit};

/// Runs a subcommand that talks to the daemon and turns its outcome into the exit
/// code, printing a failure as `steward: …` on stderr.
pub fn run(global: &GlobalArgs, command: CliCommand) -> ExitCode {
    let outcome = match command {
        CliCommand::Completions(args) => completions(args.shell),
        CliCommand::Man => man(),
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::from)
            .and_then(|runtime| {
                let ctx = commands::Context::new(global);
                runtime.block_on(commands::run(&ctx, command))
            }),
    };
    match outcome {
        Ok(()) => Exit::Ok.into(),
        Err(e) if e.is_broken_pipe() => Exit::Ok.into(),
        Err(e) => {
            eprintln!("steward: {e}");
            e.exit().into()
        }
    }
}

/// `steward completions SHELL`: completions generated from the clap definitions.
fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "steward", &mut out);
    out.flush()?;
    Ok(())
}

/// `steward man`: the man page (roff) generated from the clap definitions.
fn man() -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out.flush()?;
    Ok(())
}

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
        CliCommand::Keys(args) => keys(args.markdown),
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::from)
            .and_then(|runtime| {
                let ctx = commands::Context::new(global)?;
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

/// `steward man`: the man page (roff) generated from the clap definitions, with the
/// ENVIRONMENT, FILES and KEYS sections clap does not know about (KEYS from the keymap).
fn man() -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out.write_all(man_extra().as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The man page's sections beyond the clap definitions, in roff.
pub fn man_extra() -> String {
    let mut roff = String::from(".SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        roff.push_str(&format!(".TP\n\\fB{name}\\fR\n{}\n", roff_escape(what)));
    }
    roff.push_str(".SH FILES\n");
    for (name, what) in FILES {
        roff.push_str(&format!(".TP\n\\fI{name}\\fR\n{}\n", roff_escape(what)));
    }
    roff.push_str(".SH KEYS\nThe terminal UI's default keys (remap them in the keys file):\n");
    for (keys, what) in steward_tui::tui::keymap::Keymap::default().rows() {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_escape(&keys.join(" ")),
            roff_escape(&what)
        ));
    }
    roff
}

/// Text made safe for roff: backslashes doubled, a leading `.` or `'` escaped.
fn roff_escape(text: &str) -> String {
    let t = text.replace('\\', "\\e");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The environment variables `steward` reads, for the man page.
const ENVIRONMENT: [(&str, &str); 10] = [
    (
        "STEWARD_SOCKET",
        "The daemon's socket when --socket is not given.",
    ),
    ("STEWARD_TENANT", "The tenant when --tenant is not given."),
    (
        "STEWARD_ROLE",
        "The profile to act under when --as is not given.",
    ),
    (
        "STEWARD_THEME",
        "The TUI's colours: dark (default), light or mono.",
    ),
    (
        "NO_COLOR",
        "Set to anything: the TUI uses no colour (as STEWARD_THEME=mono).",
    ),
    (
        "STEWARD_KEYS",
        "The TUI's keys file, instead of $XDG_CONFIG_HOME/steward/keys.toml.",
    ),
    (
        "STEWARD_OSC52",
        "passthrough: wrap the TUI's clipboard copies for tmux's allow-passthrough (plain OSC 52 otherwise).",
    ),
    (
        "STEWARD_TZ",
        "The zone times are shown in by tables (the TUI's and the subcommands'): UTC or an IANA name such as Europe/Berlin. Unset: the system's zone (TZ, else /etc/localtime). JSON and CSV keep the stored UTC times.",
    ),
    (
        "COLUMNS",
        "The width subcommand tables fit (else the terminal's; output to a pipe is not cut). Use -o json for whole values.",
    ),
    (
        "EDITOR, VISUAL",
        "The editor `e` opens a record in (EDITOR, else VISUAL, else vi).",
    ),
];

/// The files `steward` reads or writes, for the man page.
const FILES: [(&str, &str); 3] = [
    (
        "$XDG_CONFIG_HOME/steward/keys.toml",
        "The TUI's key overrides ([keys] delete = \"D\"); a conflict is an error at start.",
    ),
    (
        "$XDG_RUNTIME_DIR/steward/steward.sock",
        "The daemon's default socket.",
    ),
    (
        "./steward-TENANT-KIND-TIME.EXT",
        "Exports from the TUI (created 0600, written whole or not at all).",
    ),
];

/// `steward keys`: the TUI's default keys, as aligned text or a Markdown table.
fn keys(markdown: bool) -> Result<(), CliError> {
    let map = steward_tui::tui::keymap::Keymap::default();
    let text = if markdown {
        map.markdown()
    } else {
        map.rows()
            .into_iter()
            .map(|(k, w)| format!("{:<14}{w}\n", k.join(" ")))
            .collect()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

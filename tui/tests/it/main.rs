//! The client's integration tests: one binary (`cargo test -p steward-tui --test it`),
//! one module per concern; `cargo test -p steward-tui --test it cli::` runs one.
//!
//! | module | what it checks |
//! | --- | --- |
//! | [`cli`] | the `steward` subcommands as a script sees them, against a real daemon |
//! | [`cli_tables`] | tables for people (width, zone, subjects) and the daemon's orders |
//! | [`e2e_pty`] | the real `steward` TUI in a pseudo-terminal against a real daemon |
//! | [`squatted_socket`] | a socket squatted by another local user is refused before a byte |
//! | [`tui_regressions`] | one test per defect of issue 19, named for what was wrong |
//! | [`tui_snapshots`] | each screen at 80×24 per profile (`insta` snapshots in `snapshots/`) |
//! | [`tui_update`] | `update(State, Action)` without a terminal |
//!
//! [`tui_fixtures`] holds the TUI states both TUI modules start from.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod cli_tables;
mod e2e_pty;
mod squatted_socket;
mod tui_fixtures;
mod tui_regressions;
mod tui_snapshots;
mod tui_update;

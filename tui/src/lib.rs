//! # steward-tui — the operator's client as a library
//!
//! The `steward` binary (`main.rs`: the subcommands and `demo`) and the tests in
//! `tui/tests/` use the terminal UI from here.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`export_file`] | the one writer of export files (0600, renamed over the target when complete), export formats, a streaming record counter |
//! | [`tui`] | the ratatui terminal UI opened by a bare `steward`: state, update, drawing, keymap, the backend task |

pub mod export_file;
pub mod tui;

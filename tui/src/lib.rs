//! # steward-tui — the operator's client as a library
//!
//! The `steward` binary (`main.rs`: the subcommands and `demo`) and the tests in
//! `tui/tests/` use the terminal UI from here.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`tui`] | the ratatui terminal UI opened by a bare `steward`: state, update, drawing, keymap, the backend task |

pub mod tui;

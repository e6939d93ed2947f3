//! Where the `stewardd` binary under test is, from any package's tests.
//!
//! Cargo sets `CARGO_BIN_EXE_stewardd` only while compiling the daemon package's own
//! tests, so the kit finds the binary the way Cargo lays out a target directory: a test
//! binary runs from `target/<profile>/deps/`, and the package binaries of the same build
//! sit one level up, in `target/<profile>/`. `STEWARD_TEST_STEWARDD` overrides that (to
//! test an installed binary, or a target dir with another layout). The daemon package's
//! suite checks that the two agree (`daemon/tests/it/main.rs`).
//!
//! Cargo builds `stewardd` before running the daemon package's tests (and for
//! `cargo test --workspace`); the other packages' tests run the daemon in-process.

use std::path::PathBuf;

/// The environment variable that names the `stewardd` binary to test, when set.
pub const OVERRIDE: &str = "STEWARD_TEST_STEWARDD";

/// The path of the `stewardd` binary under test; panics, saying how to build it, when
/// there is none.
pub fn stewardd() -> PathBuf {
    if let Some(p) = std::env::var_os(OVERRIDE) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    let mut dir = exe
        .parent()
        .expect("the test binary's directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("stewardd");
    assert!(
        bin.is_file(),
        "no stewardd at {} (build it with `cargo build -p steward-daemon --bin stewardd`, \
         or name one in {OVERRIDE})",
        bin.display()
    );
    bin
}

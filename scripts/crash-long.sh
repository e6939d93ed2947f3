#!/usr/bin/env bash
# Long crash-safety run: 200 SIGKILL trials of the real stewardd under 32 writers
# (daemon/tests/crash.rs, the ignored test). STEWARD_CRASH_TRIALS=N for another count,
# STEWARD_CRASH_SEED=S to replay a seed printed by an earlier run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
exec cargo test -p steward-daemon --test it -- --ignored --nocapture crash::sigkill_loses_no_acknowledged_write_long

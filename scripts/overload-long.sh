#!/usr/bin/env bash
# Long overload run: 1000 concurrent connections (idle, slow-header, slow-body) held for
# 30 s against the real stewardd while a well-behaved client is timed
# (daemon/tests/overload.rs, the ignored test). STEWARD_OVERLOAD_CONNECTIONS=N for another
# count (mind `ulimit -n`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
exec cargo test -p steward-daemon --test it -- --ignored --nocapture overload::many_connections_long

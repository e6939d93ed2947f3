#!/usr/bin/env bash
# Runs each cargo-fuzz target for SECONDS (default 600) from its seed corpus, on nightly.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: request record stored)
# Crashes land in fuzz/artifacts/<target>/; copy each into fuzz/regressions/<target>/ once
# fixed, and `cargo test -p steward-daemon --test it hostile::fuzz_regressions` replays them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}; shift || true
targets=${*:-request record stored}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  seeds=seeds/$t; [ "$t" = stored ] && seeds=seeds/record
  cp -n "$seeds"/* "corpus/$t/" 2>/dev/null || true
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 | tee "artifacts/$t.log" | grep -E "^#[0-9]+.*(pulse|DONE|NEW)|stat::|ERROR|panicked" | tail -15
done

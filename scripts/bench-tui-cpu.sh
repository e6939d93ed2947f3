#!/usr/bin/env bash
# Measures the CPU time of the open TUI while alerts are ingested (issue 19, defect 9):
# a release `stewardd` on a private temp dir, the release `steward` TUI in a detached
# tmux session (200x50) on the Alerts tab, then `steward alerts ingest` of N alerts
# (default 200,000) in its batches. The TUI's utime+stime are read from /proc/<pid>/stat
# before and after the ingest, and again over an idle stretch as long as the ingest.
#
# Usage, from the project root after `cargo build --release`:
#   scripts/bench-tui-cpu.sh [N]
set -euo pipefail
N=${1:-200000}
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
[ -x "$BIN/stewardd" ] && [ -x "$BIN/steward" ] || { echo "build --release first" >&2; exit 2; }
command -v tmux >/dev/null || { echo "needs tmux" >&2; exit 2; }
WORK=$(mktemp -d /tmp/steward-tuicpu.XXXXXX)
SESSION=steward-tuicpu-$$
DAEMON_PID=
cleanup() {
  tmux kill-session -t "$SESSION" 2>/dev/null || true
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p -m 700 "$WORK/data" "$WORK/logs" "$WORK/run"
SOCK=$WORK/run/steward.sock
ME=$(id -un)
cat >"$WORK/steward.toml" <<EOF
[daemon]
socket = "$SOCK"
data_dir = "$WORK/data"
log_dir = "$WORK/logs"

[[tenant]]
id = "contoso"
name = "Contoso Ltd"

[[grant]]
user = "$ME"
tenant = "contoso"
role = "tenant-admin"

[[grant]]
user = "$ME"
tenant = "contoso"
role = "ingest"
EOF
"$BIN/stewardd" --config "$WORK/steward.toml" >"$WORK/stdout" 2>"$WORK/stderr" &
DAEMON_PID=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { tail -5 "$WORK/stderr"; exit 1; }

# N alerts, one second apart, four severities.
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) {
  s = (i % 4 == 0) ? "High" : (i % 4 == 1) ? "Medium" : (i % 4 == 2) ? "Low" : "Informational";
  t = 1764547200 + i;
  printf "{\"name\":\"bench-%07d\",\"properties\":{\"alertDisplayName\":\"Bench alert %d\",\"severity\":\"%s\",\"status\":\"Active\",\"timeGeneratedUtc\":\"%s\"}}\n",
    i, i, s, strftime("%Y-%m-%dT%H:%M:%SZ", t, 1) } }' >"$WORK/alerts.ndjson"

tmux new-session -d -s "$SESSION" -x 200 -y 50 \
  "exec env STEWARD_SOCKET=$SOCK STEWARD_TENANT=contoso TERM=xterm-256color $BIN/steward"
for _ in $(seq 1 100); do
  tmux capture-pane -p -t "$SESSION" | grep -q connected && break; sleep 0.1
done
tmux send-keys -t "$SESSION" ':alerts' Enter
sleep 1
PID=$(tmux list-panes -t "$SESSION" -F '#{pane_pid}')
TCK=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

t0=$(date +%s.%N); c0=$(cpu "$PID"); d0=$(cpu "$DAEMON_PID")
STEWARD_SOCKET=$SOCK STEWARD_TENANT=contoso "$BIN/steward" --as ingest alerts ingest "$WORK/alerts.ndjson"
sleep 2 # the last coalesced reload
t1=$(date +%s.%N); c1=$(cpu "$PID"); d1=$(cpu "$DAEMON_PID")
wall=$(echo "$t1 - $t0" | bc)
sleep "$wall"
c2=$(cpu "$PID")
tmux capture-pane -p -t "$SESSION" | head -3 | tail -1
printf 'ingest of %d alerts: %.1f s wall\n' "$N" "$wall"
printf 'TUI CPU during the ingest: %.2f s (%.1f%% of one core)\n' \
  "$(echo "($c1 - $c0) / $TCK" | bc -l)" "$(echo "100 * ($c1 - $c0) / $TCK / $wall" | bc -l)"
printf 'TUI CPU idle for as long: %.2f s\n' "$(echo "($c2 - $c1) / $TCK" | bc -l)"
printf 'daemon CPU during the ingest: %.2f s\n' "$(echo "($d1 - $d0) / $TCK" | bc -l)"

#!/usr/bin/env bash
# Rule evaluation benchmark: capture a mix of real container activity with
# `rampart capture`, then replay it through the full default rule set on one
# core (`taskset -c 0 rampart replay`), reporting ns/event for parsing, the
# process table and rule evaluation, and events per second replayed (all of
# it) and evaluated (rules only). The same activity is captured twice at
# once, as JSON lines and in the binary form (`capture --binary`), and both
# are replayed.
#
#   scripts/bench-rules.sh            (as root; ~1 minute)
#
# The captures are kept at target/bench/capture.{jsonl,bin}; replaying needs
# no root:  target/release/rampart replay target/bench/capture.bin >/dev/null
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[[ $(id -u) == 0 ]] || { echo "bench-rules.sh: must run as root" >&2; exit 1; }
# shellcheck source=scripts/docker-env.sh
source "$ROOT/scripts/docker-env.sh"
"$ROOT/scripts/dockerd.sh" start
"$ROOT/tests/image/build.sh"
cargo build --release -p rampart
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart
OUT=$ROOT/target/bench
mkdir -p "$OUT"
CAPTURE=$OUT/capture.jsonl
BINARY=$OUT/capture.bin

"$BIN" capture -o "$CAPTURE" 2>"$OUT/capture.err" &
agent=$!
"$BIN" capture --binary -o "$BINARY" 2>"$OUT/capture-bin.err" &
agent_bin=$!
trap 'kill -INT $agent $agent_bin 2>/dev/null || true' EXIT
for err in "$OUT/capture.err" "$OUT/capture-bin.err"; do
    until grep -q "sensor ready" "$err"; do
        kill -0 $agent 2>/dev/null && kill -0 $agent_bin 2>/dev/null || { cat "$err" >&2; exit 1; }
        sleep 0.2
    done
done

# Mixed activity: file loops, process churn, loopback connections, a shell
# script touching many files, and a few suspicious actions so rules do match.
run() { "$DOCKER" run --rm --name "rampart-bench-rules-$1-$$" rampart-test:latest "${@:2}" >/dev/null; }
pids=()
run open rtest bench-open 200000 & pids+=($!)
run exec rtest bench-exec 2000 & pids+=($!)
run connect rtest bench-connect 5000 & pids+=($!)
run script sh -c 'for i in $(seq 1 300); do mkdir -p /tmp/d$i && echo $i > /tmp/d$i/f && cat /tmp/d$i/f >/dev/null && ls /tmp/d$i >/dev/null && rm -r /tmp/d$i; done' & pids+=($!)
run suspicious sh -c 'for i in $(seq 1 50); do cat /etc/shadow >/dev/null; echo x > /bin/x$i; done' & pids+=($!)
wait "${pids[@]}"
kill -INT $agent $agent_bin
wait $agent $agent_bin || true
trap - EXIT
echo "JSON lines: $(tail -n1 "$OUT/capture.err"); $(stat -c %s "$CAPTURE") bytes"
echo "binary:     $(tail -n1 "$OUT/capture-bin.err"); $(stat -c %s "$BINARY") bytes"

for c in "$CAPTURE" "$BINARY"; do
    echo "replay of ${c##*/}:"
    taskset -c 0 "$BIN" replay "$c" >/dev/null 2>"$OUT/replay.err" || { cat "$OUT/replay.err" >&2; exit 1; }
    grep -v "^rampart: warning" "$OUT/replay.err"
done

#!/usr/bin/env bash
# Overhead benchmark: rampart (events, run, record) vs no agent vs its hooks' floor vs bpftrace vs
# auditd, side by side.
# Builds rampart in release, makes sure dockerd and the test image are there,
# then runs scripts/bench.py (arguments pass through; see --help).
#
#   scripts/bench.sh                          full run (~8 min on 2 cores)
#   scripts/bench.sh --reps 1 --open-n 200000 --sustained-secs 10   quick look
#   scripts/bench.sh --modes none,auditd --no-sustained             without rampart
#   scripts/bench.sh --modes none,rampart,record --no-sustained     cost of `rampart record`
#   scripts/bench.sh --modes none --no-sustained --iperf-secs 5 --iperf-reps 1   iperf3 only (quick)
#   scripts/bench.sh --modes none,run --workloads connect --no-sustained --no-iperf --pipeline-opens 0
#                                             one loop only (each loop also reports its CPU time)
#   scripts/bench.sh --modes none --workloads '' --no-sustained --no-iperf   the live pipeline only
#                                             (`rampart run` on one CPU at saturation: events per CPU-second)
#
# Results: a table on stdout and JSON in target/bench/results.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
for a in "$@"; do
    [[ $a == -h || $a == --help ]] && exec python3 "$ROOT/scripts/bench.py" --help
done
[[ $(id -u) == 0 ]] || { echo "bench.sh: must run as root" >&2; exit 1; }

"$ROOT/scripts/dockerd.sh" start
# The bpftrace mode's tracer (a benchmark peer, not needed by the tests).
if ! command -v bpftrace >/dev/null && [[ " $* " != *" --modes"* || " $* " == *bpftrace* ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q bpftrace >/dev/null
fi
# bench.py waits with it until a stopped agent's programs are released.
if ! command -v bpftool >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q bpftool >/dev/null || true
fi
"$ROOT/tests/image/build.sh"
"$ROOT/tests/image/iperf3.sh"

needs_rampart=1
args=" $* "
# Without --modes the default modes include rampart.
if [[ $args == *" --no-sustained "* && $args =~ --modes[\ =]([^ ]*) && ${BASH_REMATCH[1]} != *rampart* && ${BASH_REMATCH[1]} != *record* && ${BASH_REMATCH[1]} != *run* ]]; then
    needs_rampart=0
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# The floor mode's binary: the same code built with the feature bench-floor
# (bpf/floor.h: every hot program returns at once). Built first: the default
# build after it puts the real binary back in target/release (both are
# cached, so each build after the first is a relink at most).
if [[ ( $args != *" --modes"* || $args =~ --modes[\ =]([^ ]*floor) ) && $args != *" --rampart-floor "* ]]; then
    cargo build --release -p rampart --features bench-floor
    mkdir -p "$TARGET/bench"
    cp "$TARGET/release/rampart" "$TARGET/bench/rampart-floor"
    needs_rampart=1
fi
if ((needs_rampart)) && [[ $args != *" --rampart "* ]]; then
    cargo build --release -p rampart
fi
exec python3 "$ROOT/scripts/bench.py" "$@"

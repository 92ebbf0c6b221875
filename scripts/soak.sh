#!/usr/bin/env bash
# Soak: process churn and container churn under `rampart run` (default rules),
# too long for the test suite. Prints the agent's memory before and after each
# phase, what it holds at the end (process table, containers known) and its
# event accounting, so the figures can go into notes.
#
#   scripts/soak.sh                               1,000,000 processes, 500 containers
#   scripts/soak.sh --processes 100000 --containers 50
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PROCESSES=1000000
CONTAINERS=500
while (($#)); do
    case $1 in
        --processes) PROCESSES=$2; shift 2 ;;
        --containers) CONTAINERS=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "soak.sh: must run as root" >&2; exit 1; }

"$ROOT/scripts/dockerd.sh" start
"$ROOT/tests/image/build.sh"
cargo build --release -p rampart
DOCKER=${DOCKER:-/usr/bin/docker}
BIN="$ROOT/target/release/rampart"
OUT=$(mktemp -d /tmp/rampart-soak.XXXXXX)

"$BIN" run --json --metrics-address off >/dev/null 2>"$OUT/agent.err" &
agent=$!
trap 'kill -INT $agent 2>/dev/null || true' EXIT
until grep -q "sensor ready" "$OUT/agent.err"; do
    kill -0 $agent 2>/dev/null || { cat "$OUT/agent.err" >&2; exit 1; }
    sleep 0.2
done
# VmRSS includes the ring buffer's pages (RssFile, kernel memory mapped once)
# and the binary's text; RssAnon is the agent's own heap and stacks.
mem() { awk '/^VmRSS|^VmHWM|^RssAnon/ {printf "%s %d MiB  ", $1, $2/1024}' "/proc/$agent/status"; echo; }
# Entries in each hash map the agent holds open (map ids from its fds'
# fdinfo), so container churn can be seen to leave the kernel tables as it
# found them. Arrays are fixed-size and not listed.
maps() {
    local id info
    for f in /proc/$agent/fdinfo/*; do
        awk '/^map_id:/ {print $2}' "$f" 2>/dev/null || true
    done | sort -un | while read -r id; do
        info=$(bpftool map show id "$id" -j 2>/dev/null) || continue
        case $(jq -r .type <<<"$info") in
            hash | lru_hash | percpu_hash | lru_percpu_hash) ;;
            *) continue ;;
        esac
        printf '%s=%s ' "$(jq -r .name <<<"$info")" "$(bpftool map dump id "$id" -j 2>/dev/null | jq length)"
    done | tr ' ' '\n' | sort | tr '\n' ' '
    echo
}
sleep 2
echo "baseline:              $(mem)"
echo "  kernel maps:         $(maps)"

start=$(date +%s)
"$DOCKER" run --rm --name "rampart-soak-procs-$$" rampart-test:latest rtest bench-exec "$PROCESSES" >/dev/null
echo "after $PROCESSES processes ($(( $(date +%s) - start )) s): $(mem)"

start=$(date +%s)
for ((i = 0; i < CONTAINERS; i++)); do
    "$DOCKER" run --rm --name "rampart-soak-c$i-$$" rampart-test:latest true >/dev/null
done
echo "after $CONTAINERS containers ($(( $(date +%s) - start )) s): $(mem)"
# Exited processes and removed containers leave the tables after their grace period.
sleep 15
echo "15 s later:            $(mem)"
echo "  kernel maps:         $(maps)"

kill -INT $agent
wait $agent || true
trap - EXIT
grep -E "process table|events seen" "$OUT/agent.err"
rm -rf "$OUT"

#!/usr/bin/env bash
# The agent's steady memory with many idle containers: starts `rampart run`
# (default rules), then N containers of the test image that only sleep,
# waits for the agent to settle and prints its memory as users see it
# (VmRSS) and how it splits (RssAnon: heap and stacks; RssFile: the binary's
# pages and the BPF maps mapped in, such as ring buffers), its Pss (each
# physical page counted once: a BPF ring buffer maps its data pages twice, so
# that a record can be read across the wrap, and VmRSS counts them twice),
# and the largest mappings.
#
#   scripts/rss.sh [--containers 100] [--settle 30] [--bin PATH] [-- AGENT ARGS]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONTAINERS=100
SETTLE=30
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
while (($#)); do
    case $1 in
        --containers) CONTAINERS=$2; shift 2 ;;
        --settle) SETTLE=$2; shift 2 ;;
        --bin) BIN=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "rss.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "rss.sh: must run as root" >&2; exit 1; }
DOCKER=${DOCKER:-/usr/bin/docker}
OUT=$(mktemp -d /tmp/rampart-rss.XXXXXX)
tag="rampart-rss-$$"

cleanup() {
    kill -INT "${agent:-0}" 2>/dev/null || true
    "$DOCKER" ps -q --filter "label=$tag" | xargs -r "$DOCKER" rm -f >/dev/null
    rm -rf "$OUT"
}
trap cleanup EXIT

"$BIN" run --metrics-address off "$@" >/dev/null 2>"$OUT/agent.err" &
agent=$!
until grep -qs "sensor ready" "$OUT/agent.err"; do
    kill -0 $agent 2>/dev/null || { cat "$OUT/agent.err" >&2; exit 1; }
    sleep 0.2
done
mem() {
    awk '/^VmRSS|^VmHWM|^RssAnon|^RssFile|^RssShmem/ {printf "%s %.1f MiB  ", $1, $2/1024}' "/proc/$agent/status"
    awk '/^Pss:/ {printf "Pss: %.1f MiB", $2/1024}' "/proc/$agent/smaps_rollup"
    echo
}
echo "started:     $(mem)"
for ((i = 0; i < CONTAINERS; i++)); do
    "$DOCKER" run -d --label "$tag" rampart-test:latest sleep infinity >/dev/null
done
echo "$("$DOCKER" ps -q --filter "label=$tag" | wc -l) containers running: $(mem)"
sleep "$SETTLE"
echo "${SETTLE} s later: $(mem)"
# The largest mappings by resident size (KiB), named by what they map.
awk '/^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6 ? $6 : "[anon]")}
     /^Rss:/ {rss[name] += $2}
     END {for (n in rss) if (rss[n] >= 512) printf "  %8d KiB  %s\n", rss[n], n}' "/proc/$agent/smaps" | sort -rn | head -12

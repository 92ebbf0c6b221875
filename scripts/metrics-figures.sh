#!/usr/bin/env bash
# Figures for issue 17, too long for the test suite: /metrics scrape time and
# payload size with many running containers, and the CPU share rampart's
# rules read (`container.cpu_share`) against the kernel's own accounting
# (the container cgroup's cpu.stat usage_usec) for a busy container.
#
#   scripts/metrics-figures.sh                    200 idle containers, 30 s of CPU comparison
#   scripts/metrics-figures.sh --containers 50 --seconds 20
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONTAINERS=200
SECONDS_CPU=30
while (($#)); do
    case $1 in
        --containers) CONTAINERS=$2; shift 2 ;;
        --seconds) SECONDS_CPU=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "metrics-figures.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "metrics-figures.sh: must run as root" >&2; exit 1; }

"$ROOT/scripts/dockerd.sh" start
"$ROOT/tests/image/build.sh"
cargo build --release -p rampart
DOCKER=${DOCKER:-/usr/bin/docker}
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart"
OUT=$(mktemp -d /tmp/rampart-figures.XXXXXX)
PREFIX="rampart-figures-$$"
PORT=$((20000 + $$ % 20000))
AGENT=""

cleanup() {
    [[ -n $AGENT ]] && kill -INT "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null || true
    "$DOCKER" ps -aq --filter "name=$PREFIX" | xargs -r "$DOCKER" rm -f >/dev/null
}
trap cleanup EXIT

# A probe rule: the busy container's CPU share as rampart's rules read it,
# on each open of /dev/null by its loop (a few a second).
cat > "$OUT/probe.yaml" <<'EOF'
- rule: Figures cpu share probe
  desc: the CPU share rampart's rules read, for the figures script
  condition: evt.type in (open, openat) and container and fd.name = /dev/null and container.cpu_share >= 0
  output: share %container.cpu_share
  priority: INFO
EOF
# Every probe alert: the figures need them all, not one per 10 s.
cat > "$OUT/config.yaml" <<'EOF'
alerts:
  rate_limit: {enabled: false, dedup_window_secs: 0}
EOF
"$BIN" run --json --config "$OUT/config.yaml" --rules "$OUT/probe.yaml" --metrics-address "127.0.0.1:$PORT" \
    > "$OUT/alerts.jsonl" 2> "$OUT/agent.err" &
AGENT=$!
for _ in $(seq 1 120); do grep -q "sensor ready" "$OUT/agent.err" && break; sleep 0.5; done
grep -q "sensor ready" "$OUT/agent.err" || { cat "$OUT/agent.err"; exit 1; }

echo "== /metrics with $CONTAINERS running containers"
t0=$(date +%s.%N)
for i in $(seq 1 "$CONTAINERS"); do
    "$DOCKER" run -d --name "$PREFIX-idle-$i" rampart-test:latest sleep 3600 > /dev/null
done
echo "started $CONTAINERS containers in $(echo "$(date +%s.%N) - $t0" | bc) s"
sleep 5
for i in 1 2 3 4 5; do
    curl -s -o "$OUT/metrics.txt" -w "scrape $i: %{time_total} s, %{size_download} bytes\n" "http://127.0.0.1:$PORT/metrics"
done
echo "series: $(grep -vc '^#' "$OUT/metrics.txt"); containers with series: $(grep -c '^rampart_container_cpu_seconds_total{' "$OUT/metrics.txt")"
echo "agent RSS: $(grep VmRSS "/proc/$AGENT/status" | awk '{print $2, $3}')"
"$DOCKER" ps -aq --filter "name=$PREFIX-idle" | xargs -r "$DOCKER" rm -f > /dev/null

echo "== container.cpu_share against cpu.stat, $SECONDS_CPU s"
id=$("$DOCKER" run -d --name "$PREFIX-busy" rampart-test:latest sh -c \
    'while :; do i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; : > /dev/null; done')
# The container's cgroup v2 directory (beside the v1 controllers on a hybrid host).
path=""
for d in $(find /sys/fs/cgroup -maxdepth 4 -type d -name "*$id*" 2>/dev/null); do
    grep -q '^usage_usec' "$d/cpu.stat" 2>/dev/null && { path=$d; break; }
done
[[ -n $path ]] || { echo "no cgroup v2 directory for $id" >&2; exit 1; }
sleep 6 # one full window first
start_line=$(wc -l < "$OUT/alerts.jsonl")
u0=$(awk '/^usage_usec/ {print $2}' "$path/cpu.stat"); s0=$(date +%s.%N)
sleep "$SECONDS_CPU"
u1=$(awk '/^usage_usec/ {print $2}' "$path/cpu.stat"); s1=$(date +%s.%N)
tail -n +"$((start_line + 1))" "$OUT/alerts.jsonl" > "$OUT/window.jsonl"
python3 - "$OUT/window.jsonl" "${id:0:12}" "$u0" "$u1" "$s0" "$s1" <<'EOF'
import json, sys
path, short, u0, u1, s0, s1 = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
shares = []
for line in open(path):
    v = json.loads(line)
    if v.get("rule") == "Figures cpu share probe" and v.get("container", {}).get("id", "").startswith(short):
        shares.append(v["output_fields"]["container.cpu_share"])
kernel = (u1 - u0) / (s1 - s0) / 1e4
if not shares:
    sys.exit(f"no probe alert for {short}")
mean = sum(shares) / len(shares)
print(f"cpu.stat: {kernel:.1f}% of a CPU over {s1 - s0:.1f} s")
print(f"container.cpu_share: mean {mean:.1f}% over {len(shares)} events (min {min(shares)}, max {max(shares)})")
print(f"difference: {mean - kernel:+.1f} points ({(mean - kernel) / kernel * 100:+.1f}%)")
EOF
echo "agent stderr: $OUT/agent.err"

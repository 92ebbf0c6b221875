#!/usr/bin/env bash
# Figures, not a test: the agent's cost under a flood of small UDP packets
# between two containers (iperf3, 64-byte datagrams, paced at RATE packets/s
# for SECS s on a Docker network of the script's own), with `rampart run`
# (flows and scan/flood detection on, default rules).
#
# Prints: packets delivered per second; the agent's CPU (user+sys, from
# /proc/<pid>/stat) per 100k packets/s; the kernel time of the root
# cgroup_skb programs (kernel.bpf_stats_enabled) per packet; the agent's
# event drops and the flow table's failed inserts. Run as root after
# scripts/setup.sh. Usage: scripts/netflood-bench.sh [RATE] [SECS]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATE=${1:-100000}
SECS=${2:-10}
BIN=${RAMPART_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart}
IMAGE=rampart-iperf3:latest
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"
[[ -x $BIN ]] || { echo "no $BIN (cargo build --release -p rampart)" >&2; exit 1; }
"$ROOT/tests/image/iperf3.sh"

tag=rampart-netflood-$$
net=$tag-net
work=$(mktemp -d /tmp/$tag.XXXXXX)
cleanup() {
    [[ -n ${agent:-} ]] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
    "$DOCKER" rm -f "$tag-srv" "$tag-cli" >/dev/null 2>&1 || true
    "$DOCKER" network rm "$net" >/dev/null 2>&1 || true
    sysctl -qw kernel.bpf_stats_enabled="${stats_was:-0}" || true
    rm -rf "$work"
}
trap cleanup EXIT

"$DOCKER" network create "$net" >/dev/null
"$DOCKER" run -d --name "$tag-srv" --network "$net" "$IMAGE" iperf3 -s >/dev/null
"$DOCKER" run -d --name "$tag-cli" --network "$net" "$IMAGE" sleep 3600 >/dev/null

stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
"$BIN" run --json >"$work/alerts" 2>"$work/agent.err" &
agent=$!
for _ in $(seq 100); do grep -q "sensor ready" "$work/agent.err" && break; sleep 0.2; done
grep -q "sensor ready" "$work/agent.err" || { cat "$work/agent.err" >&2; exit 1; }
sleep 2

cpu() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
prog_ns() { # run_time_ns and run_cnt of the flow programs
    bpftool prog show -j 2>/dev/null | python3 -c '
import json, sys
t = c = 0
for p in json.load(sys.stdin):
    if p.get("name") in ("fl_ingress", "fl_egress"):
        t += p.get("run_time_ns", 0); c += p.get("run_cnt", 0)
print(t, c)'
}
hz=$(getconf CLK_TCK)
bps=$((RATE * 64 * 8))
c0=$(cpu); read -r k0 n0 < <(prog_ns || echo "0 0")
t0=$(date +%s.%N)
"$DOCKER" exec "$tag-cli" iperf3 -u -c "$tag-srv" -l 64 -b "$bps" -t "$SECS" --json >"$work/iperf.json"
t1=$(date +%s.%N)
c1=$(cpu); read -r k1 n1 < <(prog_ns || echo "0 0")
kill -INT "$agent"; wait "$agent" || true; agent=

python3 - "$work/iperf.json" "$c0" "$c1" "$hz" "$t0" "$t1" "$k0" "$k1" "$n0" "$n1" "$work/agent.err" "$RATE" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))["end"]["sum"]
c0, c1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t0, t1 = float(sys.argv[5]), float(sys.argv[6])
k0, k1, n0, n1 = (int(x) for x in sys.argv[7:11])
err = open(sys.argv[11]).read()
rate = int(sys.argv[12])
secs = j["seconds"]
delivered = j["packets"] - j["lost_packets"]
pps = j["packets"] / secs
cpu_s = (c1 - c0) / hz
wall = t1 - t0
print(f"offered {rate}/s; sent {j['packets']} ({pps:.0f}/s), delivered {delivered} in {secs:.1f} s")
print(f"agent CPU: {cpu_s:.2f} s over {wall:.1f} s = {100 * cpu_s / wall:.1f}% of a core, "
      f"{100 * cpu_s / wall * 100000 / max(pps, 1):.1f}% of a core per 100k packets/s sent")
if n1 > n0:
    print(f"kernel, root cgroup_skb programs: {(k1 - k0) / (n1 - n0):.0f} ns per run, {n1 - n0} runs")
m = re.search(r"rampart: (\d+) events seen, (\d+) dropped", err)
print("agent summary:", m.group(0) if m else "(none)")
full = re.findall(r"failed_inserts=(\d+)", err)
print("flow table failed inserts (warnings):", full[-1] if full else 0)
PY

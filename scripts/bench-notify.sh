#!/usr/bin/env bash
# Cost of the seccomp notify path per syscall: N open+close of an allowed
# file (/etc/passwd) in a containerd (ctr) container,
#   none:    no seccomp filter;
#   allow:   a filter that allows everything (what any filter costs);
#   notify:  rampart's notify profile for a deny rule on opens (every open
#            goes to the agent, which reads the path, evaluates the rule and
#            answers CONTINUE),
# each REPS times, interleaved. Prints ns per open (median) and the ratios.
# With KIND=unshare, the same for N unshare(CLONE_FS) calls under a deny rule
# on unshare of a user namespace (a syscall the agent decides from its
# registers: nothing read from the process; every unshare is a candidate,
# none is denied).
#
# Usage (root; containerd running, test image built, rampart built):
#   [KIND=open|unshare] scripts/bench-notify.sh [N] [REPS]
set -euo pipefail

N=${1:-100000}
REPS=${2:-3}
KIND=${KIND:-open}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAMPART=${RAMPART:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart}
SOCK=/run/containerd/containerd.sock
NS=rampart-bench
IMG=docker.io/library/rampart-test:latest

log() { echo "bench-notify: $*" >&2; }
[[ -x $RAMPART ]] || { log "no $RAMPART (cargo build --release -p rampart)"; exit 1; }

work=$(mktemp -d /tmp/rampart-bench-notify.XXXXXX)
agent=
cleanup() {
    [[ -n $agent ]] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

case $KIND in
    open) helper=openrace cond="evt.type in (open, openat, openat2) and fd.name = $work/never" ;;
    unshare) helper=unsharetry cond="evt.type = unshare and evt.arg.flags contains CLONE_NEWUSER" ;;
    *) log "KIND is open or unshare, not $KIND"; exit 1 ;;
esac
gcc -static -O2 -pthread -o "$work/$helper" "$ROOT/crates/rampart/tests/helpers/$helper.c"
if ! ctr --address "$SOCK" -n "$NS" images ls -q | grep -qx "$IMG"; then
    log "importing the test image into containerd namespace $NS"
    docker save rampart-test:latest | ctr --address "$SOCK" -n "$NS" images import - >/dev/null
fi

# A deny rule no call of the loop matches: every call is a candidate, none
# is denied.
cat >"$work/rules.yaml" <<EOF
- rule: bench deny
  desc: a deny rule on opens, for the benchmark
  condition: $cond and container.id != host
  output: "never (%fd.name)"
  priority: WARNING
  actions: [{deny: {errno: EPERM}}]
EOF
"$RAMPART" seccomp notify-profile --no-default-rules --rules "$work/rules.yaml" \
    --listener "$work/notify.sock" -o "$work/notify.json" 2>/dev/null
echo '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}' >"$work/allow.json"

"$RAMPART" run --no-default-rules --rules "$work/rules.yaml" --notify-socket "$work/notify.sock" \
    --metrics-address off >"$work/agent.out" 2>"$work/agent.err" &
agent=$!
for _ in $(seq 100); do
    grep -q "sensor ready" "$work/agent.err" 2>/dev/null && break
    sleep 0.2
done
grep -q "seccomp agent on" "$work/agent.err" || { cat "$work/agent.err" >&2; exit 1; }

if [[ $KIND == open ]]; then loop=(openrace loop /etc/passwd "$N"); else loop=(unsharetry loop "$N"); fi

one() { # mode -> ns per call
    local mode=$1 opts=()
    case $mode in
        allow) opts=(--seccomp --seccomp-profile "$work/allow.json") ;;
        notify) opts=(--seccomp --seccomp-profile "$work/notify.json") ;;
    esac
    ctr --address "$SOCK" -n "$NS" run --rm "${opts[@]}" \
        --mount "type=bind,src=$work/$helper,dst=/usr/local/bin/$helper,options=rbind:ro" \
        "$IMG" "bench-notify-$mode-$$" "${loop[@]}" |
        awk '/^ns_per_(open|call)/ { if ($4 != 0) { print "failed calls: " $4 > "/dev/stderr"; exit 1 } print $2 }'
}

declare -A res
for rep in $(seq "$REPS"); do
    for mode in none allow notify; do
        v=$(one "$mode")
        res[$mode]+="$v "
        log "rep $rep $mode: $v ns/call"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
none=$(median <<<"${res[none]}")
allow=$(median <<<"${res[allow]}")
notify=$(median <<<"${res[notify]}")
what="open+close"
[[ $KIND == unshare ]] && what="unshare(CLONE_FS)"
echo "$what x $N, median of $REPS: none $none ns, allow-all filter $allow ns, notify profile $notify ns"
awk -v n="$none" -v a="$allow" -v t="$notify" 'BEGIN {
    printf "notify/none %.1fx, notify/allow %.1fx, agent round trip ~%.1f us per notified call\n", t / n, t / a, (t - a) / 1000 }'
kill -INT "$agent"
wait "$agent" 2>/dev/null || true
agent=
grep -E "events seen" "$work/agent.err" | tail -1 >&2 || true

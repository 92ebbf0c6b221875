#!/usr/bin/env bash
# How often an entrypoint that opens a forbidden file as its first action is
# killed in the kernel, per kind of kill rule, with new Docker containers.
#
#   scripts/prevention-window.sh [RUNS [KINDS]]   (as root; default 100 runs per rule kind;
#                                                  KINDS: a regex of the kinds to run, default all)
#
# Rule kinds: "any" (`container.id != host`: armed for every container from
# its cgroup's creation), "image" (`container.image.repository =
# rampart-test`: armed per container once the agent has its metadata) and
# "image-hook" (the same rule, containers run with `--runtime=rampart`: the
# rampart-runc wrapper's OCI hook has the agent arm each container before its
# entrypoint; scripts/dockerd.sh registers the runtime, this script links
# /usr/local/bin/rampart-runc to the rampart it measures), and on podman,
# "podman-image" and "podman-image-hook": the image-scoped rule
# (`localhost/rampart-test`) without and with rampart's hooks.d file (in a
# directory of this script's own, given with `--hooks-dir`). The
# forbidden file is a marker file of this script, bind-mounted into each
# container, so other containers on the machine are not affected. Prints one
# line per kind: killed (exit 137, nothing printed) / leaked / other.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-100}
KINDS=${2:-.}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RAMPART=$TARGET/release/rampart
IMAGE=rampart-test:latest

if [[ $(id -u) != 0 ]]; then
    echo "prevention-window.sh: needs root (BPF, docker)" >&2
    exit 1
fi
[[ -x $RAMPART ]] || (cd "$ROOT" && cargo build --release -p rampart)

WORK=$(mktemp -d /tmp/rampart-prevention.XXXXXX)
AGENT_PID=
cleanup() {
    [[ -n $AGENT_PID ]] && kill -INT "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

SECRET=$WORK/secret
MARKER=marker-$$-$RANDOM
echo "$MARKER" >"$SECRET"

measure() {
    local kind=$1 scope=$2 armed_line=$3
    local -a run_args=("${@:4}")
    [[ $kind =~ $KINDS ]] || return 0
    cat >"$WORK/$kind.yaml" <<EOF
- rule: Prevention window $kind
  desc: a container process opened the script's secret
  condition: evt.type in (open, openat, openat2) and fd.name = $SECRET and $scope
  output: "secret opened (container=%container.id)"
  priority: CRITICAL
  actions: [kill]
EOF
    "$RAMPART" rules check --no-default-rules "$WORK/$kind.yaml" | grep '^kill in'
    "$RAMPART" run --json --no-default-rules --rules "$WORK/$kind.yaml" --metrics-address 127.0.0.1:0 \
        >"$WORK/$kind.out" 2>"$WORK/$kind.err" &
    AGENT_PID=$!
    for _ in $(seq 600); do
        grep -q "rampart: sensor ready" "$WORK/$kind.err" && break
        sleep 0.1
    done
    if [[ -n $armed_line ]]; then
        for _ in $(seq 200); do
            grep -q "$armed_line" "$WORK/$kind.err" && break
            sleep 0.1
        done
    fi
    local killed=0 leaked=0 other=0 start=$SECONDS
    for i in $(seq "$RUNS"); do
        local out status=0
        out=$("${run_args[@]}" --name "rampart-prevention-$$-$kind-$i" -v "$SECRET:$SECRET:ro" \
            "$IMAGE" cat "$SECRET" 2>/dev/null) || status=$?
        if [[ $out == *"$MARKER"* ]]; then
            leaked=$((leaked + 1))
        elif [[ $status == 137 && -z $out ]]; then
            killed=$((killed + 1))
        else
            other=$((other + 1))
        fi
    done
    kill -INT "$AGENT_PID"
    wait "$AGENT_PID" || true
    AGENT_PID=
    echo "$kind: killed $killed/$RUNS, leaked $leaked, other $other ($((SECONDS - start)) s)"
}

measure any "container.id != host" "kernel kill armed for every container" docker run --rm
measure image "container.image.repository = rampart-test" "" docker run --rm
ln -sfn "$RAMPART" /usr/local/bin/rampart-runc
measure image-hook "container.image.repository = rampart-test" \
    "OCI hook socket on" docker run --rm --runtime=rampart
if command -v podman >/dev/null; then
    IMAGE=localhost/rampart-test:latest
    mkdir "$WORK/hooks.d"
    "$RAMPART" oci-hook --hooks-d-json >"$WORK/hooks.d/rampart.json"
    measure podman-image "container.image.repository = localhost/rampart-test" "" podman run --rm
    measure podman-image-hook "container.image.repository = localhost/rampart-test" "OCI hook socket on" \
        podman --hooks-dir "$WORK/hooks.d" run --rm
fi

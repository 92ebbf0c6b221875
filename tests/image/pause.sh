#!/usr/bin/env bash
# Build the pod sandbox image rampart.local/pause:latest (a static pause.c, alone
# in its rootfs) and import it into containerd's k8s.io namespace, where the CRI
# plugin looks for the sandbox image scripts/containerd.sh configures. No registry
# is involved: the rootfs is `docker import`ed, then `docker save | ctr import`ed.
#
# Idempotent: the containerd image carries a hash of the inputs as a label and
# is rebuilt only when an input changed (or RAMPART_IMAGE_REBUILD=1).
#
# Needs: gcc with libc6-dev (static libc), a running dockerd, a containerd
# answering on RAMPART_CONTAINERD_SOCK (default /run/containerd/containerd.sock).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${RAMPART_PAUSE_IMAGE:-rampart.local/pause:latest}
SOCK=${RAMPART_CONTAINERD_SOCK:-/run/containerd/containerd.sock}
NS=k8s.io
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"

log() { echo "image/pause.sh: $*" >&2; }
ctr_() { ctr --address "$SOCK" -n "$NS" "$@"; }
# shellcheck source=scripts/lib/image.sh
. "$ROOT/scripts/lib/image.sh"

command -v ctr >/dev/null || { log "ctr is not installed (apt-get install containerd)"; exit 1; }
timeout 10 ctr --address "$SOCK" version >/dev/null 2>&1 ||
    { log "containerd does not answer on $SOCK (scripts/containerd.sh start)"; exit 1; }

# One build at a time (tests call this script concurrently).
LOCK=/run/lock/rampart-pause-image.lock
[[ -d /run/lock ]] || LOCK=/tmp/rampart-pause-image.lock
exec 9>"$LOCK"
flock 9

hash=$(cat "$HERE/pause.sh" "$ROOT/scripts/lib/image.sh" "$HERE/pause.c" | sha256sum | cut -c1-16)
if [[ ${RAMPART_IMAGE_REBUILD:-0} != 1 ]] &&
    ctr_ images ls "name==$IMAGE" 2>/dev/null | grep -q "rampart.pause.hash=$hash"; then
    log "$IMAGE is up to date in containerd namespace $NS ($hash)"
    exit 0
fi

work=$(mktemp -d /tmp/rampart-pause.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs"
gcc -static -O2 -Wall -Wextra -o "$work/rootfs/pause" "$HERE/pause.c"
strip "$work/rootfs/pause"

new=$(image_import "$work/rootfs" "$IMAGE" \
    --change 'ENTRYPOINT ["/pause"]' \
    --change "LABEL rampart.pause.hash=$hash")
"$DOCKER" save "$IMAGE" | ctr_ images import - >/dev/null
ctr_ images label "$IMAGE" "rampart.pause.hash=$hash" >/dev/null
log "imported $IMAGE into containerd namespace $NS ($hash, ${new:7:12})"

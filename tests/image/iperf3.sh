#!/usr/bin/env bash
# Build rampart-iperf3:latest without any registry: Debian's iperf3 with the
# shared libraries it links (ldd) and busybox, `docker import`ed. The flow
# tests run it between two containers. Idempotent: rebuilt only when an input
# changed (hash label) or RAMPART_IMAGE_REBUILD=1.
#
# Needs: iperf3 and busybox-static (Debian packages), a running dockerd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${RAMPART_IPERF3_IMAGE:-rampart-iperf3:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
IPERF3=${IPERF3:-/usr/bin/iperf3}
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"

log() { echo "image/iperf3.sh: $*" >&2; }

[[ -x $IPERF3 ]] || { log "$IPERF3 missing (apt-get install iperf3)"; exit 1; }
[[ -x $BUSYBOX ]] || { log "$BUSYBOX missing (apt-get install busybox-static)"; exit 1; }

# The binary and every library the loader resolves for it (absolute paths).
mapfile -t libs < <(ldd "$IPERF3" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}')
((${#libs[@]})) || { log "ldd found no libraries for $IPERF3"; exit 1; }

hash=$(cat "$HERE/iperf3.sh" "$IPERF3" "$BUSYBOX" "${libs[@]}" | sha256sum | cut -c1-16)
if [[ ${RAMPART_IMAGE_REBUILD:-0} != 1 ]]; then
    have=$("$DOCKER" image inspect --format '{{index .Config.Labels "rampart.test.hash"}}' "$IMAGE" 2>/dev/null || true)
    if [[ $have == "$hash" ]]; then
        log "$IMAGE is up to date ($hash)"
        exit 0
    fi
fi

work=$(mktemp -d /tmp/rampart-iperf3.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,usr/bin,etc,tmp,proc,sys,dev}
chmod 1777 "$rootfs/tmp"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in sh cat sleep ls; do ln -s /bin/busybox "$rootfs/bin/$applet"; done
cp "$IPERF3" "$rootfs/usr/bin/iperf3"
for lib in "${libs[@]}"; do
    mkdir -p "$rootfs/$(dirname "$lib")"
    cp -L "$lib" "$rootfs/$lib"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

old=$("$DOCKER" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . |
    "$DOCKER" import \
        --change 'CMD ["/usr/bin/iperf3", "-s"]' \
        --change 'ENV PATH=/usr/bin:/bin' \
        --change "LABEL rampart.test.hash=$hash" \
        - "$IMAGE" >/dev/null
new=$("$DOCKER" image inspect --format '{{.Id}}' "$IMAGE")
if [[ -n $old && $old != "$new" ]]; then
    "$DOCKER" rmi "$old" >/dev/null 2>&1 || true
fi
log "built $IMAGE ($hash, ${new:7:12})"

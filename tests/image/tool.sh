#!/usr/bin/env bash
# Build a test image holding Debian tools without any registry: each binary
# with the shared libraries it links (ldd), any data files or directories the
# tools read, and busybox's shell and basic applets, `docker import`ed.
# The network and flow tests run such tools (iperf3, ...) inside containers so
# that an alert must name the container that ran them.
#
#   tests/image/tool.sh IMAGE CMD-JSON BINARY... [-- DATA-PATH...]
#   tests/image/tool.sh rampart-iperf3:latest '["/usr/bin/iperf3","-s"]' /usr/bin/iperf3
#
# Idempotent: rebuilt only when an input changed (hash label) or
# RAMPART_IMAGE_REBUILD=1. Needs busybox-static, the tools, a running dockerd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUSYBOX=${BUSYBOX:-/bin/busybox}
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"
log() { echo "image/tool.sh: $*" >&2; }
# shellcheck source=scripts/lib/image.sh
. "$ROOT/scripts/lib/image.sh"

(($# >= 3)) || { log "usage: tool.sh IMAGE CMD-JSON BINARY... [-- DATA-PATH...]"; exit 2; }
IMAGE=$1 CMD=$2
shift 2
bins=() data=()
while (($#)) && [[ $1 != -- ]]; do bins+=("$1"); shift; done
(($#)) && shift
data=("$@")

[[ -x $BUSYBOX ]] || { log "$BUSYBOX missing (apt-get install busybox-static)"; exit 1; }
for b in "${bins[@]}"; do
    [[ -x $b ]] || { log "$b missing (apt-get install the package that ships it)"; exit 1; }
done
for d in "${data[@]}"; do
    [[ -e $d ]] || { log "$d missing"; exit 1; }
done

mapfile -t libs < <(image_libs "${bins[@]}")
hash=$( (cat "$HERE/tool.sh" "$ROOT/scripts/lib/image.sh" "$BUSYBOX" "${bins[@]}" "${libs[@]}"
    printf '%s\n' "$CMD" "${bins[@]}" "${data[@]}"
    if ((${#data[@]})); then find "${data[@]}" -type f -print0 | sort -z | xargs -0r cat; fi) |
    sha256sum | cut -c1-16)
if image_is_current "$IMAGE" rampart.test.hash "$hash"; then
    log "$IMAGE is up to date ($hash)"
    exit 0
fi

work=$(mktemp -d /tmp/rampart-tool.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,usr/bin,etc,tmp,proc,sys,dev,run}
chmod 1777 "$rootfs/tmp"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in sh cat sleep ls echo kill wc grep; do ln -s /bin/busybox "$rootfs/bin/$applet"; done
image_copy_at_path "$rootfs" "${bins[@]}" "${libs[@]}"
for d in "${data[@]}"; do
    mkdir -p "$rootfs/$(dirname "$d")"
    cp -a "$d" "$rootfs/$(dirname "$d")/"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

new=$(image_import "$rootfs" "$IMAGE" \
    --change "CMD $CMD" \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL rampart.test.hash=$hash")
log "built $IMAGE ($hash, ${new:7:12})"

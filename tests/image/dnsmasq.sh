#!/usr/bin/env bash
# Build rampart-dnsmasq:latest without any registry: Debian's dnsmasq with the
# shared libraries it links (ldd) and busybox (nslookup, wget, httpd), `docker
# import`ed. The DNS and pcap tests run a resolver and its clients from it.
# Idempotent: rebuilt only when an input changed (hash label) or
# RAMPART_IMAGE_REBUILD=1.
#
# Needs: dnsmasq-base and busybox-static (Debian packages), a running dockerd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${RAMPART_DNSMASQ_IMAGE:-rampart-dnsmasq:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"

log() { echo "image/dnsmasq.sh: $*" >&2; }

[[ -x $DNSMASQ ]] || { log "$DNSMASQ missing (apt-get install dnsmasq-base)"; exit 1; }
[[ -x $BUSYBOX ]] || { log "$BUSYBOX missing (apt-get install busybox-static)"; exit 1; }

# The binary and every library the loader resolves for it (absolute paths).
mapfile -t libs < <(ldd "$DNSMASQ" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}')
((${#libs[@]})) || { log "ldd found no libraries for $DNSMASQ"; exit 1; }

hash=$(cat "$HERE/dnsmasq.sh" "$DNSMASQ" "$BUSYBOX" "${libs[@]}" | sha256sum | cut -c1-16)
if [[ ${RAMPART_IMAGE_REBUILD:-0} != 1 ]]; then
    have=$("$DOCKER" image inspect --format '{{index .Config.Labels "rampart.test.hash"}}' "$IMAGE" 2>/dev/null || true)
    if [[ $have == "$hash" ]]; then
        log "$IMAGE is up to date ($hash)"
        exit 0
    fi
fi

work=$(mktemp -d /tmp/rampart-dnsmasq.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,www}
chmod 1777 "$rootfs/tmp"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in sh cat sleep ls nslookup wget httpd echo; do ln -s /bin/busybox "$rootfs/bin/$applet"; done
cp "$DNSMASQ" "$rootfs/usr/sbin/dnsmasq"
for lib in "${libs[@]}"; do
    mkdir -p "$rootfs/$(dirname "$lib")"
    cp -L "$lib" "$rootfs/$lib"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
# dnsmasq drops privileges to this user by default.
echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$rootfs/etc/passwd"
echo 'nogroup:x:65534:' >>"$rootfs/etc/group"

old=$("$DOCKER" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . |
    "$DOCKER" import \
        --change 'CMD ["/usr/sbin/dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts"]' \
        --change 'ENV PATH=/usr/sbin:/usr/bin:/bin' \
        --change "LABEL rampart.test.hash=$hash" \
        - "$IMAGE" >/dev/null
new=$("$DOCKER" image inspect --format '{{.Id}}' "$IMAGE")
if [[ -n $old && $old != "$new" ]]; then
    "$DOCKER" rmi "$old" >/dev/null 2>&1 || true
fi
log "built $IMAGE ($hash, ${new:7:12})"

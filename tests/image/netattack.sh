#!/usr/bin/env bash
# Build rampart-netattack:latest without any registry: Debian's nmap (and
# its nping, for connect floods) and hping3 with the shared libraries they link (ldd), nmap's port and protocol
# tables, and busybox (sh, httpd, nc, wget for the targets and the benign
# workloads), `docker import`ed. The scan and flood detection tests
# (crates/rampart/tests/netdetect.rs) run the attacks from inside containers
# so that the alert must name them. Idempotent: rebuilt only when an input
# changed (hash label) or RAMPART_IMAGE_REBUILD=1.
#
# Needs: nmap, hping3 and busybox-static (Debian packages), a running dockerd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${RAMPART_NETATTACK_IMAGE:-rampart-netattack:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
NMAP=${NMAP:-/usr/bin/nmap}
NPING=${NPING:-/usr/bin/nping}
HPING3=${HPING3:-/usr/sbin/hping3}
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"

log() { echo "image/netattack.sh: $*" >&2; }
# shellcheck source=scripts/lib/image.sh
. "$ROOT/scripts/lib/image.sh"

[[ -x $NMAP ]] || { log "$NMAP missing (apt-get install nmap)"; exit 1; }
[[ -x $NPING ]] || { log "$NPING missing (apt-get install nmap)"; exit 1; }
[[ -x $HPING3 ]] || { log "$HPING3 missing (apt-get install hping3)"; exit 1; }
[[ -x $BUSYBOX ]] || { log "$BUSYBOX missing (apt-get install busybox-static)"; exit 1; }

# nmap's tables a plain port scan reads (not its scripts or OS database).
data=(nmap-services nmap-protocols nmap-payloads nmap-mac-prefixes nmap-rpc)
datafiles=()
for f in "${data[@]}"; do datafiles+=("/usr/share/nmap/$f"); done

# The binaries and every library the loader resolves for them.
mapfile -t libs < <(image_libs "$NMAP" "$NPING" "$HPING3")
((${#libs[@]})) || { log "ldd found no libraries"; exit 1; }

hash=$(cat "$HERE/netattack.sh" "$ROOT/scripts/lib/image.sh" "$NMAP" "$NPING" "$HPING3" "$BUSYBOX" "${libs[@]}" "${datafiles[@]}" | sha256sum | cut -c1-16)
if image_is_current "$IMAGE" rampart.test.hash "$hash"; then
    log "$IMAGE is up to date ($hash)"
    exit 0
fi

work=$(mktemp -d /tmp/rampart-netattack.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,usr/bin,usr/sbin,usr/share/nmap,etc,tmp,proc,sys,dev,www}
chmod 1777 "$rootfs/tmp"
cp "$BUSYBOX" "$rootfs/bin/busybox"
for applet in sh cat sleep ls httpd nc wget seq timeout kill; do ln -s /bin/busybox "$rootfs/bin/$applet"; done
cp "$NMAP" "$rootfs/usr/bin/nmap"
cp "$NPING" "$rootfs/usr/bin/nping"
cp "$HPING3" "$rootfs/usr/sbin/hping3"
cp "${datafiles[@]}" "$rootfs/usr/share/nmap/"
image_copy_at_path "$rootfs" "${libs[@]}"
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
echo 'hello from rampart' >"$rootfs/www/index.html"

new=$(image_import "$rootfs" "$IMAGE" \
    --change 'CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]' \
    --change 'ENV PATH=/usr/bin:/usr/sbin:/bin' \
    --change "LABEL rampart.test.hash=$hash")
log "built $IMAGE ($hash, ${new:7:12})"

#!/usr/bin/env bash
# Build the test image rampart-test:latest without any registry:
# a rootfs of Debian's busybox-static plus the static helpers of this folder,
# `docker import`ed. Idempotent: the image carries a hash of its inputs as a
# label and is rebuilt only when an input changed (or RAMPART_IMAGE_REBUILD=1).
#
# Needs: gcc with libc6-dev (static libc), busybox-static, a running dockerd.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${RAMPART_TEST_IMAGE:-rampart-test:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"

log() { echo "image/build.sh: $*" >&2; }
# shellcheck source=scripts/lib/image.sh
. "$ROOT/scripts/lib/image.sh"

[[ -x $BUSYBOX ]] || { log "$BUSYBOX missing (apt-get install busybox-static)"; exit 1; }
if ! "$BUSYBOX" true || ldd "$BUSYBOX" >/dev/null 2>&1; then
    log "$BUSYBOX is not a static busybox (apt-get install busybox-static)"
    exit 1
fi

hash=$(cat "$HERE/build.sh" "$ROOT/scripts/lib/image.sh" "$HERE"/*.c "$BUSYBOX" | sha256sum | cut -c1-16)
if image_is_current "$IMAGE" rampart.test.hash "$hash"; then
    log "$IMAGE is up to date ($hash)"
    exit 0
fi

work=$(mktemp -d /tmp/rampart-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,root,proc,sys,dev,var/tmp,run}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"

cp "$BUSYBOX" "$rootfs/bin/busybox"
# The applets as symlinks at their usual places (bin/sh, usr/bin/awk, ...).
"$BUSYBOX" --list-full | while read -r applet; do
    [[ -e $rootfs/$applet || -L $rootfs/$applet ]] && continue
    mkdir -p "$rootfs/$(dirname "$applet")"
    ln -s /bin/busybox "$rootfs/$applet"
done

gcc -static -O2 -Wall -Wextra -o "$rootfs/usr/local/bin/rtest" "$HERE/rtest.c"
gcc -static -nostdlib -O2 -Wall -o "$rootfs/usr/local/bin/nop" "$HERE/nop.c"
strip "$rootfs/usr/local/bin/rtest" "$rootfs/usr/local/bin/nop"

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
# A shadow file, as real images have: the sensitive-file rules read it.
cat >"$rootfs/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chmod 0640 "$rootfs/etc/shadow"
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

new=$(image_import "$rootfs" "$IMAGE" \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL rampart.test.hash=$hash")
log "built $IMAGE ($hash, ${new:7:12})"

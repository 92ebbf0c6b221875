#!/usr/bin/env bash
# Build rampart's own container image, rampart:latest, from this repository
# without any registry: the release binary, the shared libraries it links
# (from ldd), the default rules and a minimal /etc, `docker import`ed. No shell
# or other program is in the image: only /usr/bin/rampart.
#
# Idempotent: the image carries a hash of its inputs (binary, libraries, rules,
# this script) as a label and is rebuilt only when one changed (or with
# RAMPART_IMAGE_REBUILD=1). The binary is built with `cargo build --release`
# (incremental) unless RAMPART_BINARY names one already built.
#
#   scripts/build-image.sh            # build (or confirm) rampart:latest
#   RAMPART_IMAGE=rampart:dev scripts/build-image.sh
#
# Run it: README.md, "Run from the image on Docker".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${RAMPART_IMAGE:-rampart:latest}
# shellcheck source=scripts/docker-env.sh
. "$ROOT/scripts/docker-env.sh"

log() { echo "build-image.sh: $*" >&2; }
# shellcheck source=scripts/lib/image.sh
. "$ROOT/scripts/lib/image.sh"

if [[ -n ${RAMPART_BINARY:-} ]]; then
    BIN=$RAMPART_BINARY
else
    if ! command -v cargo >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
        export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    fi
    (cd "$ROOT" && cargo build --release -p rampart --quiet)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/rampart
fi
[[ -x $BIN ]] || { log "$BIN is not an executable"; exit 1; }

mapfile -t LIBS < <(image_libs "$BIN")
((${#LIBS[@]})) || { log "ldd found no libraries for $BIN"; exit 1; }

hash=$(cat "${BASH_SOURCE[0]}" "$ROOT/scripts/lib/image.sh" "$BIN" "${LIBS[@]}" "$ROOT"/rules/*.yaml | sha256sum | cut -c1-16)
if image_is_current "$IMAGE" rampart.image.hash "$hash"; then
    log "$IMAGE is up to date ($hash)"
    exit 0
fi

work=$(mktemp -d /tmp/rampart-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{usr/bin,etc/rampart/rules.d,usr/share/rampart,proc,sys,dev,tmp,run,var/lib/rampart}
chmod 1777 "$rootfs/tmp"
ln -s ../run "$rootfs/var/run"

# Debug info out: the release profile keeps line tables (debug = 1), which
# are 10x the code; the image does not need them.
objcopy --strip-debug "$BIN" "$rootfs/usr/bin/rampart"
image_copy_at_path "$rootfs" "${LIBS[@]}"
# Debian's merged /usr: /lib and /lib64 are where the binary's interpreter and
# RUNPATH-less lookups go; both were copied as real directories above.

# The default rules are built into the binary; a copy to read, and to start
# from when writing your own (`rules.d/` is where the config looks).
cp "$ROOT"/rules/*.yaml "$rootfs/usr/share/rampart/"
# The config the entrypoint reads: the defaults, with the agent's rules
# directory, JSON alerts on stdout (a log collector reads them) and the metrics
# endpoint on every address of the container (a probe or scraper reaches it).
# Mount your own /etc/rampart (config.yaml and rules.d/) over it.
cat >"$rootfs/etc/rampart/config.yaml" <<'EOF'
# rampart's configuration in its image (docs/config.example.yaml has every key).
rules:
  paths: [/etc/rampart/rules.d]
alerts:
  outputs:
    stdout:
      format: json
metrics:
  address: 0.0.0.0:9376
EOF
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/nonexistent:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
# CA certificates for webhook and syslog-over-TLS outputs, when the host has them.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    mkdir -p "$rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
fi

new=$(image_import "$rootfs" "$IMAGE" \
    --change 'ENTRYPOINT ["/usr/bin/rampart", "run", "--config", "/etc/rampart/config.yaml"]' \
    --change 'CMD []' \
    --change 'USER 0:0' \
    --change 'EXPOSE 9376' \
    --change "LABEL rampart.image.hash=$hash")
size=$("$DOCKER" image inspect --format '{{.Size}}' "$IMAGE")
log "built $IMAGE ($hash, ${new:7:12}, $((size / 1024 / 1024)) MiB)"

# Shared by the image builders (tests/image/*.sh, scripts/build-image.sh):
# the libraries a binary maps, the up-to-date check on a hash label, and the
# `docker import` of a rootfs. No registry is ever involved. Source it after
# scripts/docker-env.sh (it uses $DOCKER) and after defining log().

# Every absolute path the dynamic loader maps for the given binaries
# (`name => /path (addr)` and the interpreter line `/lib64/ld-... (addr)`).
image_libs() {
    local bin
    for bin in "$@"; do
        ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
    done | sort -u
}

# Copies files into ROOTFS at their own paths, symlinks resolved (the loader
# looks for e.g. /lib64/ld-linux-x86-64.so.2 by that name).
image_copy_at_path() {
    local rootfs=$1 f
    shift
    for f in "$@"; do
        mkdir -p "$rootfs/$(dirname "$f")"
        cp -L "$f" "$rootfs/$f"
    done
}

# Succeeds when IMAGE carries LABEL=HASH and no rebuild was asked for
# (RAMPART_IMAGE_REBUILD=1).
image_is_current() {
    local image=$1 label=$2 hash=$3 have
    [[ ${RAMPART_IMAGE_REBUILD:-0} == 1 ]] && return 1
    have=$("$DOCKER" image inspect --format "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null || true)
    [[ $have == "$hash" ]]
}

# Imports ROOTFS as IMAGE (files owned by root), with the given `--change`
# instructions, and removes the image it replaces. Prints the new image id.
image_import() {
    local rootfs=$1 image=$2 old new
    shift 2
    old=$("$DOCKER" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . |
        "$DOCKER" import "$@" - "$image" >/dev/null
    new=$("$DOCKER" image inspect --format '{{.Id}}' "$image")
    if [[ -n $old && $old != "$new" ]]; then
        "$DOCKER" rmi "$old" >/dev/null 2>&1 || true
    fi
    echo "$new"
}

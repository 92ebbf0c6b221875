#!/usr/bin/env bash
# Start, stop or restart the Docker daemon on machines without systemd.
#
#   scripts/dockerd.sh start     start dockerd in the background unless it answers
#   scripts/dockerd.sh stop      stop the dockerd this script started (pid file)
#   scripts/dockerd.sh restart
#   scripts/dockerd.sh status    exit 0 when the daemon answers
#
# Used by scripts/setup.sh and by the integration test that restarts dockerd.
# Environment:
#   RAMPART_DOCKERD_LOG      daemon log (default /var/log/rampart-dockerd.log)
#   RAMPART_STORAGE_DRIVER   force a storage driver (default: dockerd's choice,
#                            overlay2 where the filesystem allows it)
#   RAMPART_DOCKERD_PIDFILE  pid file (default /var/run/docker.pid)
#   RAMPART_DOCKERD_SOCK     API socket (default /var/run/docker.sock)
#   RAMPART_DOCKERD_ARGS     extra dockerd arguments (e.g. a second daemon's
#                            --data-root, --exec-root). Beware: a dockerd started
#                            with --bridge=none deletes the docker0 interface that
#                            the main daemon uses; give a second daemon its own
#                            bridge (--bridge=NAME) instead.
#   RAMPART_DOCKERD_CONFIG   daemon.json (default /etc/docker/daemon.json): the
#                            `rampart` runtime (/usr/local/bin/rampart-runc, the
#                            OCI hook wrapper, tests/prevention.rs) is added to it
set -euo pipefail

# shellcheck source=scripts/lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"

LOG=${RAMPART_DOCKERD_LOG:-/var/log/rampart-dockerd.log}
PIDFILE=${RAMPART_DOCKERD_PIDFILE:-/var/run/docker.pid}
SOCK=${RAMPART_DOCKERD_SOCK:-/var/run/docker.sock}

# shellcheck source=scripts/docker-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/docker-env.sh"

NAME=dockerd
log() { echo "dockerd.sh: $*" >&2; }

answers() { timeout 10 "$DOCKER" -H "unix://$SOCK" info >/dev/null 2>&1; }

daemon_pid() { daemon_pid_of "$PIDFILE" dockerd; }

# dockerd 20.10 takes any file at containerd's usual socket path for a running
# system containerd (it only lstat()s the path) and then dials it instead of
# starting its own. A containerd killed hard (e.g. the standalone one of
# scripts/containerd.sh when a session ends) leaves that socket behind, and
# dockerd then retries the dead socket for a minute and exits. Remove a socket
# that refuses connections, so dockerd starts its own containerd.
SYSTEM_CONTAINERD_SOCK=/run/containerd/containerd.sock

socket_refuses() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except (ConnectionRefusedError, FileNotFoundError):
    sys.exit(0)
except OSError:
    sys.exit(1)
sys.exit(1)
PY
}

remove_stale_system_containerd_socket() {
    if [[ -S $SYSTEM_CONTAINERD_SOCK ]] && socket_refuses "$SYSTEM_CONTAINERD_SOCK"; then
        log "removing stale $SYSTEM_CONTAINERD_SOCK (nothing listens on it)"
        rm -f "$SYSTEM_CONTAINERD_SOCK"
    fi
}

# The `rampart` runtime: `docker run --runtime=rampart` goes through the
# rampart-runc wrapper (a link to the rampart binary; the tests point it at
# theirs), which adds rampart's OCI hook. Added to daemon.json, keeping what
# is there; a running dockerd reloads runtimes on SIGHUP.
CONFIG=${RAMPART_DOCKERD_CONFIG:-/etc/docker/daemon.json}
RUNTIME_PATH=/usr/local/bin/rampart-runc

add_rampart_runtime() {
    mkdir -p "$(dirname "$CONFIG")"
    python3 - "$CONFIG" "$RUNTIME_PATH" <<'PY'
import json, os, sys
path, runtime = sys.argv[1], sys.argv[2]
cfg = json.load(open(path)) if os.path.exists(path) else {}
if cfg.get("runtimes", {}).get("rampart", {}).get("path") == runtime:
    sys.exit(1)
cfg.setdefault("runtimes", {})["rampart"] = {"path": runtime}
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(cfg, f, indent=2)
os.replace(tmp, path)
PY
}

start() {
    local changed=0
    add_rampart_runtime && changed=1
    if answers; then
        if [[ $changed == 1 ]] && pid=$(pgrep -o -x dockerd); then
            log "runtime rampart added to $CONFIG; dockerd (pid $pid) reloads it (SIGHUP)"
            kill -HUP "$pid"
        fi
        log "dockerd already answers"
        return 0
    fi
    if pid=$(daemon_pid); then
        log "dockerd (pid $pid) runs but does not answer yet; waiting"
    else
        if ! command -v dockerd >/dev/null; then
            log "dockerd is not installed (apt-get install docker.io)"
            return 1
        fi
        # A dockerd killed hard leaves its pid file and socket behind; dockerd
        # refuses to start over a live pid file only, but clean both.
        rm -f "$PIDFILE" "$SOCK"
        remove_stale_system_containerd_socket
        local args=(--pidfile "$PIDFILE" -H "unix://$SOCK")
        if [[ -n ${RAMPART_STORAGE_DRIVER:-} ]]; then
            args+=(--storage-driver "$RAMPART_STORAGE_DRIVER")
        fi
        # shellcheck disable=SC2206
        args+=(${RAMPART_DOCKERD_ARGS:-})
        log "starting dockerd ${args[*]} (log: $LOG)"
        # dockerd writes its own pid file (--pidfile).
        daemon_spawn "" dockerd "${args[@]}"
    fi
    daemon_wait 60 || return 1
    log "dockerd answers (storage driver: $("$DOCKER" -H "unix://$SOCK" info --format '{{.Driver}}' 2>/dev/null))"
}

stop() {
    local pid
    if ! pid=$(daemon_pid); then
        if answers; then
            log "a dockerd answers but was not started with pid file $PIDFILE; not stopping it"
            return 1
        fi
        log "dockerd is not running"
        return 0
    fi
    daemon_kill "$pid" 30
}

daemon_main "$@"

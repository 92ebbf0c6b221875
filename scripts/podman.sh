#!/usr/bin/env bash
# Start, stop or check podman's API service (rootful) on machines without
# systemd, for the podman tests and for trying rampart on a podman host.
#
#   scripts/podman.sh start     start `podman system service` in the background unless it answers
#   scripts/podman.sh stop      stop the service this script started (pid file)
#   scripts/podman.sh status    exit 0 when the service answers
#
# It listens on rootful podman's usual socket (/run/podman/podman.sock), so
# rampart finds it without configuration. Containers started with the podman
# CLI show up in the service's API and events too: both read the same storage
# and the same events file.
#
# Before starting, it writes a containers.conf drop-in
# (/etc/containers/containers.conf.d/50-rampart.conf) so that podman runs here:
#   - default ulimits no higher than this machine's hard limits: podman asks for
#     nofile=1048576 by default and runc fails with "error setting rlimit type 7:
#     operation not permitted" where the hard limit is lower and the bounding set
#     lacks CAP_SYS_RESOURCE; nproc is capped at kernel.pid_max too, which is
#     what podman lowers its own limit to (32768 here);
#   - without systemd: the cgroupfs cgroup manager (containers land in
#     /libpod_parent/libpod-<id>) and the file events logger (no journald), which
#     is what makes CLI containers' events visible to the service.
# Environment:
#   RAMPART_PODMAN_SOCK   socket (default /run/podman/podman.sock)
#   RAMPART_PODMAN_LOG    service log (default /var/log/rampart-podman.log)
set -euo pipefail

# shellcheck source=scripts/lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"

SOCK=${RAMPART_PODMAN_SOCK:-/run/podman/podman.sock}
LOG=${RAMPART_PODMAN_LOG:-/var/log/rampart-podman.log}
DIR=/var/lib/rampart/podman
PIDFILE=$DIR/podman.pid
CONF_DIR=/etc/containers/containers.conf.d
CONF=$CONF_DIR/50-rampart.conf

NAME="podman service"
log() { echo "podman.sh: $*" >&2; }

answers() {
    [[ -S $SOCK ]] || return 1
    [[ $(timeout 10 curl -s --unix-socket "$SOCK" http://d/v4.0.0/libpod/_ping 2>/dev/null) == OK ]]
}

daemon_pid() { daemon_pid_of "$PIDFILE" podman; }

write_config() {
    local nofile nproc pid_max conf
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    pid_max=$(cat /proc/sys/kernel/pid_max)
    [[ $nofile == unlimited ]] && nofile=1048576
    if [[ $nproc == unlimited ]] || ((nproc > pid_max)); then
        nproc=$pid_max
    fi
    conf="# Written by rampart's scripts/podman.sh; see the comment there.
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
"
    if [[ ! -d /run/systemd/system ]]; then
        conf+="
[engine]
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
"
    fi
    mkdir -p "$CONF_DIR"
    if [[ ! -f $CONF || $(cat "$CONF") != "${conf%$'\n'}" ]]; then
        log "writing $CONF"
        printf '%s' "$conf" >"$CONF"
    fi
}

start() {
    command -v podman >/dev/null || { log "podman is not installed (apt-get install podman)"; return 1; }
    command -v curl >/dev/null || { log "curl is not installed (apt-get install curl)"; return 1; }
    write_config
    if answers; then
        log "podman service already answers on $SOCK"
        return 0
    fi
    if ! pid=$(daemon_pid); then
        rm -f "$SOCK"
        mkdir -p "$(dirname "$SOCK")"
        log "starting podman system service on unix://$SOCK (log: $LOG)"
        # --time=0: never exit when idle.
        daemon_spawn "$PIDFILE" podman system service --time=0 "unix://$SOCK"
    fi
    daemon_wait 30 || return 1
    log "podman service answers on $SOCK ($(podman --version))"
}

stop() {
    local pid
    if ! pid=$(daemon_pid); then
        if answers; then
            log "a podman service answers on $SOCK but was not started with pid file $PIDFILE; not stopping it"
            return 1
        fi
        log "podman service is not running"
        return 0
    fi
    daemon_kill "$pid" 20
    rm -f "$PIDFILE"
}

daemon_main "$@"

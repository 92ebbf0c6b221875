#!/usr/bin/env bash
# Start, stop or check a standalone containerd (with its CRI plugin) on machines
# without systemd, for the containerd and CRI tests and for trying rampart on a
# containerd host.
#
#   scripts/containerd.sh start     start containerd in the background unless it answers
#   scripts/containerd.sh stop      stop the containerd this script started (pid file)
#   scripts/containerd.sh restart
#   scripts/containerd.sh status    exit 0 when it answers
#
# It listens on containerd's usual socket (/run/containerd/containerd.sock), so
# rampart finds it without configuration. Its config (written next to the pid
# file) differs from containerd's defaults in two points: the CRI plugin's sandbox
# ("pause") image is the locally built rampart.local/pause, so pod sandboxes never
# need a registry, and oom scores are clamped (restrict_oom_score_adj: no
# CAP_SYS_RESOURCE here). dockerd keeps its own containerd when started first.
# Environment:
#   RAMPART_CONTAINERD_SOCK   socket (default /run/containerd/containerd.sock)
#   RAMPART_CONTAINERD_LOG    log (default /var/log/rampart-containerd.log)
set -euo pipefail

# shellcheck source=scripts/lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"

SOCK=${RAMPART_CONTAINERD_SOCK:-/run/containerd/containerd.sock}
LOG=${RAMPART_CONTAINERD_LOG:-/var/log/rampart-containerd.log}
DIR=/var/lib/rampart/containerd
PIDFILE=$DIR/containerd.pid
CONFIG=$DIR/config.toml
PAUSE_IMAGE=${RAMPART_PAUSE_IMAGE:-rampart.local/pause:latest}

NAME=containerd
log() { echo "containerd.sh: $*" >&2; }

answers() { timeout 10 ctr --address "$SOCK" version >/dev/null 2>&1; }

daemon_pid() { daemon_pid_of "$PIDFILE" containerd; }

write_config() {
    mkdir -p "$DIR"
    cat >"$CONFIG" <<CONF
version = 2
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Sandboxes ask for oom_score_adj -998, which needs CAP_SYS_RESOURCE; these
  # machines' bounding set lacks it and runc init then dies ("can't get final
  # child's PID from pipe"). Clamp to containerd's own score instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
CONF
}

start() {
    if answers; then
        log "containerd already answers on $SOCK"
        return 0
    fi
    command -v containerd >/dev/null || { log "containerd is not installed (apt-get install containerd)"; return 1; }
    if ! pid=$(daemon_pid); then
        write_config
        rm -f "$SOCK"
        mkdir -p "$(dirname "$SOCK")"
        log "starting containerd --config $CONFIG (log: $LOG)"
        daemon_spawn "$PIDFILE" containerd --config "$CONFIG"
    fi
    daemon_wait 30 || return 1
    log "containerd answers on $SOCK"
}

stop() {
    local pid
    pid=$(daemon_pid) || { log "no containerd started by this script"; return 0; }
    daemon_kill "$pid" 20
}

daemon_main "$@"

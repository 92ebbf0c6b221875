# Sourced by scripts/dockerd.sh, containerd.sh and podman.sh.
#
# daemon_pid_of PIDFILE COMM: print the pid in PIDFILE when that process is
# alive and is COMM; fail otherwise (no file, a reused pid, or a daemon killed
# moments ago that is still a zombie).
daemon_pid_of() {
    local pidfile=$1 comm=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(cat "$pidfile")
    [[ -n $pid && -d /proc/$pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null || return 1
    echo "$pid"
}

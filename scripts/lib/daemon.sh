# Sourced by scripts/dockerd.sh, containerd.sh and podman.sh: the start / wait /
# stop logic they share, for machines without systemd.
#
# The sourcing script defines:
#   NAME       what the messages call the daemon ("dockerd", "podman service")
#   LOG        the daemon's log file
#   log MSG    print a message (to stderr)
#   answers    exit 0 when the daemon answers on its socket
#   start, stop

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

# daemon_spawn PIDFILE COMMAND...: run COMMAND in the background with its output
# appended to $LOG; its pid goes to PIDFILE unless that is empty (dockerd
# writes its own). setsid: own session, so that the caller's Ctrl-C or process
# group kill does not take the daemon down with it.
daemon_spawn() {
    local pidfile=$1
    shift
    mkdir -p "$(dirname "$LOG")"
    setsid "$@" </dev/null >>"$LOG" 2>&1 &
    if [[ -n $pidfile ]]; then
        mkdir -p "$(dirname "$pidfile")"
        echo $! >"$pidfile"
    fi
    disown || true
}

# daemon_wait SECONDS: wait until the daemon answers; on time out show the
# end of its log and fail.
daemon_wait() {
    local secs=$1
    for _ in $(seq 1 $((secs * 2))); do
        answers && return 0
        sleep 0.5
    done
    log "$NAME did not answer within $secs s; last lines of $LOG:"
    tail -n 30 "$LOG" >&2 || true
    return 1
}

# daemon_kill PID SECONDS: SIGTERM, then SIGKILL when it is still there after
# SECONDS.
daemon_kill() {
    local pid=$1 secs=$2
    log "stopping $NAME (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 $((secs * 2))); do
        [[ -d /proc/$pid ]] || { log "$NAME stopped"; return 0; }
        sleep 0.5
    done
    log "$NAME did not stop within $secs s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
}

# daemon_main ARGS: the command line every daemon script takes.
daemon_main() {
    case ${1:-} in
        start) start ;;
        stop) stop ;;
        restart) stop; start ;;
        status) if answers; then echo running; else echo stopped; exit 1; fi ;;
        *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
    esac
}

# shellcheck shell=bash
# Two outpostd nodes for the end-to-end tests of counters shared on Redis
# (sourced after lib.sh and the harness's env; OP7, docs/limits.md).  Each
# node NAME (a or b) has its config in $T/NAME.conf, its log in
# $T/NAME.log, its state (and control socket) in $T/NAME/state.
#
#   redis_rig_setup            sources svc_redis.sh (redis_start, redis_stop,
#                              sentinel_start) and procs.sh; sets the EXIT trap
#                              (redis_rig_trap: nodes killed, every redis under
#                              $T stopped, RIG_CLEANUP_EXTRA run, the PIDs in
#                              RIG_PIDS stopped, then e2e_cleanup); call
#                              redis_rig_trap again after pf_setup, which sets
#                              its own.  RIG_PIDS: daemons to stop by PID even
#                              when their directory is gone
#   node_start NAME            starts it (PID_A / PID_B), waits until this
#                              run is ready (10 s at most)
#   node_stop NAME             SIGTERM, waits; returns its exit status
#   nodes_kill                 kill -9 of both (the trap does it too)
#   node_ctl NAME ARGS...      its outpostctl
#   node_used NAME LIMIT SUBJ  "used" of LIMIT for SUBJ, as NAME sees it
#   node_counter NAME LIMIT SUBJ FIELD   any field of counter show --json
#   node_redis_section PREFIX  redis { } on the test's own Redis
#                              ($REDIS_E2E_PORT), short timeouts
#   nodes_log_clean            both logs (and a.log.*, b.log.*) in $T/daemon.log, then
#                              check_log_clean
. "$ROOT/spec/harness/procs.sh"
HARNESS_DIR=${HARNESS_DIR:-$ROOT/build/harness}
[ -n "${REDIS_E2E_PORT:-}" ] || . "$HARNESS_DIR/env"
PID_A="" PID_B=""
RIG_CLEANUP_EXTRA=:
RIG_PIDS=""

redis_rig_setup() {
    log() { printf 'redis: %s\n' "$*" >&2; }
    # shellcheck disable=SC1091
    . "$ROOT/spec/harness/svc_redis.sh"
    redis_rig_trap
}

redis_rig_trap() {
    trap 'nodes_kill; redis_rig_stop_all; eval "$RIG_CLEANUP_EXTRA"; redis_rig_stop_pids; e2e_cleanup' EXIT
}

redis_rig_stop_all() {
    local d
    for d in "$T"/redis* "$T"/r-* "$T"/s-*; do [ -d "$d" ] && redis_stop "$d"; done
    return 0
}

redis_rig_stop_pids() {
    local p
    for p in $RIG_PIDS; do stop_pid "$p"; done
    return 0
}

nodes_kill() {
    local p
    for p in $PID_A $PID_B; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    PID_A="" PID_B=""
}

node_start() { # NAME: sets PID_<NAME>
    mkdir -p "$T/$1"
    # this run's readiness: the log may hold earlier runs of the node
    local from pid i
    from=$(($(cat "$T/$1.log" 2>/dev/null | wc -l) + 1))
    "$OUTPOSTD" -c "$T/$1.conf" 2>> "$T/$1.log" &
    pid=$!
    if [ "$1" = a ]; then PID_A=$pid; else PID_B=$pid; fi
    for ((i = 0; i < 200; i++)); do
        tail -n +"$from" "$T/$1.log" 2>/dev/null | grep -q "ready: generation" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "node $1 did not start:"; tail -20 "$T/$1.log"
    return 1
}

node_stop() { # NAME: SIGTERM and wait; the exit status
    local var=PID_${1^^} rc=0
    [ -n "${!var}" ] || return 0
    kill -TERM "${!var}"
    wait "${!var}" || rc=$?
    printf -v "$var" %s ""
    return $rc
}

node_ctl() { local n=$1; shift; "$ROOT/build/outpostctl" -s "$T/$n/state/control.sock" "$@"; }
node_used() { node_counter "$1" "$2" "$3" used; }
node_counter() { # NAME LIMIT SUBJECT FIELD (of counter show --json: used, reserved, max, ...)
    node_ctl "$1" --json counter show "$2" "$3" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$4"
}

node_redis_section() { # PREFIX
    cat <<EOF
redis {
    servers = [127.0.0.1:$REDIS_E2E_PORT]
    prefix = "$1"
    command_timeout = 500ms
    connect_timeout = 500ms
    reconnect_max = 500ms
}
EOF
}

nodes_log_clean() { # also the logs of earlier runs kept as NAME.log.*
    cat "$T"/a.log* "$T"/b.log* > "$T/daemon.log" 2>/dev/null
    check_log_clean
}

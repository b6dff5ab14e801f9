# shellcheck shell=bash
# The harness's Redis (sourced by harness.sh): one redis-server on
# 127.0.0.1:$REDIS_PORT, no persistence, a fresh directory on every `up`,
# for the counters' Redis backend (engine/counters/counters_redis.c).  The
# lua layer runs the limit specs against it too (spec/run-all.sh, with
# $HARNESS_DIR/outpost-redis.conf); e2e tests that need a replica and
# Sentinels start their own with redis_start/sentinel_start below.
REDIS_DIR=$HARNESS_DIR/redis

# redis_start DIR PORT [redis-server options...]: a private instance, daemonised,
# its pid in DIR/redis.pid; waits until it answers PING.
redis_start() {
    local dir=$1 port=$2
    shift 2
    rm -rf "$dir"
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
        --save '' --appendonly no --repl-diskless-sync-delay 0 "$@" >/dev/null || return 1
    wait_until 10 redis_ping "$port" || { log "redis-server does not answer on $port"; return 1; }
}

redis_ping() {
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]
}

# redis_stop DIR: by the pid it recorded (the pidfile goes before the
# process does, so the pid is read first and waited on).
redis_stop() {
    local pid
    [ -f "$1/redis.pid" ] || return 0
    pid=$(cat "$1/redis.pid")
    stop_pid "$pid"
    rm -f "$1/redis.pid"
}

# sentinel_start DIR PORT MASTER_PORT: a Sentinel watching 127.0.0.1:MASTER_PORT
# as "outpost" (quorum 2, down after 1 s); its config file is written fresh.
sentinel_start() {
    local dir=$1 port=$2 master=$3
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '%s\n' "port $port" "bind 127.0.0.1" "daemonize yes" \
        "pidfile $dir/redis.pid" "logfile $dir/sentinel.log" "dir $dir" \
        "sentinel monitor outpost 127.0.0.1 $master 2" \
        "sentinel down-after-milliseconds outpost 1000" \
        "sentinel failover-timeout outpost 3000" > "$dir/sentinel.conf"
    redis-server "$dir/sentinel.conf" --sentinel >/dev/null || return 1
    wait_until 10 redis_ping "$port" || { log "sentinel does not answer on $port"; return 1; }
}

redis_up() {
    redis_start "$REDIS_DIR" "$REDIS_PORT"
}

redis_down() {
    redis_stop "$REDIS_DIR"
}

redis_running() {
    [ -f "$REDIS_DIR/redis.pid" ] && pid_alive "$(cat "$REDIS_DIR/redis.pid")"
}

#!/bin/bash
# What the Redis backend's script (engine/counters/counters_redis.lua)
# costs inside redis-server, per call, without outpostd or the network in
# the way (docs/performance.md, "Second round").  For each SCRIPT in turn,
# ROUNDS times: a private redis-server on 127.0.0.1 (AOF, appendfsync
# everysec, as docs/limits.md recommends and make bench runs it), OPEN
# transactions made first, then N calls measured.  Prints redis-server's
# CPU per call (/proc/PID/schedstat: moves with the machine's load), and
# with CALLGRIND=1 the instructions per call instead (valgrind's callgrind,
# counted only over the N calls: the same from run to run within a few
# %, whatever the load; about 50 times slower).
#
#   bench/redis_script_cost.sh [SCRIPT.lua ...]   (default: this tree's script)
#   N (2000), OPEN (20000), MODE (r: reserve a new transaction; a: add),
#   BATCH (1: one call of the script per operation; B > 1: B operations per
#   call of its batch operation, as outpostd groups a loop turn's; the
#   figures are then per operation), ROUNDS (1), CALLGRIND (unset),
#   CALLGRIND_OUT (a file that keeps the last profile),
#   OUTPOST_PORT_BASE (port + 88)
#
# Compare two versions: git show main:engine/counters/counters_redis.lua >/tmp/old.lua
# then CALLGRIND=1 bench/redis_script_cost.sh /tmp/old.lua engine/counters/counters_redis.lua
set -eu
cd "$(dirname "$0")/.."
N=${N:-2000} OPEN=${OPEN:-20000} MODE=${MODE:-r} ROUNDS=${ROUNDS:-1} BATCH=${BATCH:-1}
PORT=$((${OUTPOST_PORT_BASE:-20000} + 88))
[ $# -gt 0 ] || set -- engine/counters/counters_redis.lua
for x in "$N" "$OPEN" "$ROUNDS" "$BATCH"; do [[ $x =~ ^[0-9]+$ ]] || { echo "N, OPEN, ROUNDS, BATCH: integers" >&2; exit 1; }; done
[[ $MODE =~ ^[ra]$ ]] || { echo "MODE: r or a" >&2; exit 1; }
if redis-cli -p "$PORT" PING >/dev/null 2>&1; then
    echo "redis_script_cost: 127.0.0.1:$PORT is taken (make bench's redis-server?)" >&2
    exit 1
fi
DIR=$(mktemp -d /tmp/outpost-redis-cost.XXXXXX)
PID=
stop() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
        PID=
    fi
}
trap 'stop; rm -rf "$DIR"' EXIT
for round in $(seq "$ROUNDS"); do
    for script in "$@"; do
        rm -rf "${DIR:?}"/*
        server=(redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --save "" --appendonly yes
            --appendfsync everysec --logfile "$DIR/redis.log")
        opt=()
        if [ -n "${CALLGRIND:-}" ]; then
            valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$DIR/callgrind.out" \
                "${server[@]}" >"$DIR/valgrind.log" 2>&1 &
            opt=(--callgrind)
        else
            "${server[@]}" &
        fi
        PID=$!
        for _ in $(seq 300); do [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
        out=$(python3 bench/redis_script_cost.py "$PORT" "$PID" "$script" "$N" "$OPEN" "$MODE" "$BATCH" "${opt[@]}")
        stop
        line="round $round $script: MODE=$MODE BATCH=$BATCH N=$N OPEN=$OPEN load=$(cut -d' ' -f1 /proc/loadavg) $out"
        if [ -n "${CALLGRIND:-}" ]; then
            # the calls' own work (processCommand, inclusive: the script,
            # its commands, their AOF feed), without what the server did
            # meanwhile on its timers, which grows with valgrind's slowness
            ir=$(callgrind_annotate --inclusive=yes "$DIR/callgrind.out" 2>/dev/null |
                awk '/:processCommand /{gsub(",", "", $1); print $1; exit}')
            line="$line instructions_per_op=$((${ir:-0} / N))"
            # CALLGRIND_OUT=FILE keeps the profile (callgrind_annotate FILE)
            [ -z "${CALLGRIND_OUT:-}" ] || cp "$DIR/callgrind.out" "$CALLGRIND_OUT"
        fi
        echo "$line"
    done
done

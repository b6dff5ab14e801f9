#!/bin/bash
# make bench, counters: check-and-add operations per second through a policy
# (outpost.limit.add on address.subject(req), one RocksDB read of the window
# and one WriteBatch per request) over 100,000 distinct subjects, and the
# size of the store on disk.
#
# Knobs (environment): BENCH_SECONDS (default 5), BENCH_CONNS (default "8 64"),
# BENCH_KEYS (default 100000), BENCH_FILL_SECONDS (default 10: unmeasured load
# first, so most subjects exist before the measured runs).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_CONNS=${BENCH_CONNS:-8 64}
BENCH_KEYS=${BENCH_KEYS:-100000}
BENCH_FILL_SECONDS=${BENCH_FILL_SECONDS:-10}
LOADGEN=build/rel/bench-loadgen
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
for b in "$LOADGEN" "$OUTPOSTD" build/outpostctl; do
    [ -x "$b" ] || { echo "bench_counters: $b is missing: run 'make bench'" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-counters.XXXXXX")
PID=
cleanup() {
    rc=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"
        for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    [ $rc -eq 0 ] && rm -rf "$TMP" || echo "bench_counters: failed; logs in $TMP" >&2
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$TMP/lua/lib" "$TMP/lua/policies"
ln -s "$ROOT"/lua/lib/* "$TMP/lua/lib/"   # every library, as a policy may require any
cat > "$TMP/lua/policies/count.lua" <<'EOF2'
local A = require "outpost.action"
local limit = require "outpost.limit"
local address = require "site.address"
return function(req)
    local r, err = limit.add("rcpt", address.subject(req))
    if not r then return A.defer("4.3.0", "counters %s", err) end
    return r.ok and A.dunno() or A.defer("4.7.1", "limit reached")
end
EOF2
cat > "$TMP/outpost.conf" <<EOF2
daemon { state_dir = $TMP/state; lua_dir = $TMP/lua; log_decisions = no }
listener bench { listen = unix:$TMP/outpostd.sock; service = count }
service count { }
limit rcpt { max = 1000000; window = 24h; resolution = 15m }
EOF2
"$OUTPOSTD" -c "$TMP/outpost.conf" > "$TMP/outpostd.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do [ -S "$TMP/outpostd.sock" ] && break; sleep 0.1; done
[ -S "$TMP/outpostd.sock" ] || { cat "$TMP/outpostd.log" >&2; exit 1; }

echo
echo "counters: check-and-add through a policy, $BENCH_KEYS distinct subjects (sasl_username), unix socket"
"$LOADGEN" --unix "$TMP/outpostd.sock" -c 64 -d "$BENCH_FILL_SECONDS" --warmup 0 --keys "$BENCH_KEYS" --quiet \
    > "$TMP/fill.out" 2>&1 || { cat "$TMP/fill.out" >&2; exit 1; }
grep -q "DEFER" "$TMP/fill.out" && { echo "bench_counters: the policy deferred" >&2; cat "$TMP/fill.out" >&2; exit 1; }
fill=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$TMP/fill.out")
echo "fill: $fill requests in ${BENCH_FILL_SECONDS}s (unmeasured)"
printf '%-6s %10s %8s %8s %8s %10s\n' conns "ops/s" p50_us p99_us max_us cpu_s/1k
for c in $BENCH_CONNS; do
    "$LOADGEN" --unix "$TMP/outpostd.sock" -c "$c" -d "$BENCH_SECONDS" --warmup 0.5 --keys "$BENCH_KEYS" \
        --quiet --server-pid "$PID" > "$TMP/run-$c.out" 2>&1 || { cat "$TMP/run-$c.out" >&2; exit 1; }
    cpu=$(sed -n 's/^server_cpu_s=//p' "$TMP/run-$c.out")
    tail -n 1 "$TMP/run-$c.out" | awk -v c="$c" -v cpu="${cpu:-0}" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%-6d %10d %8d %8d %8d %10.4f\n", c, v["rps"], v["p50_us"], v["p99_us"], v["max_us"],
               (v["requests"] > 0 ? cpu * 1000 / v["requests"] : 0) }'
done
live=$(build/outpostctl -s "$TMP/state/control.sock" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters_disk_bytes"])')
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status")
kill -TERM "$PID"
wait "$PID" || { echo "bench_counters: outpostd exited with $?" >&2; exit 1; }
PID=
disk=$(du -sb "$TMP/state/counters" | cut -f1)
total=$(cat "$TMP"/fill.out "$TMP"/run-*.out | sed -n 's/.*requests=\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n }')
echo "store: ${live} bytes in files while running, $disk bytes (du -sb) after a clean stop;"
echo "       after $total measured+fill increments over $BENCH_KEYS subjects; peak RSS $((hwm / 1024)) MiB"

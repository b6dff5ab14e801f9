#!/bin/bash
# make bench, DNS: lookups per second through a policy (bench/dns/*.lua),
# against the harness's unbound on loopback, 64 concurrent connections.
#   cached     every request looks up one name: cache hits
#   uncached   every request looks up a new name: one query each
# Knobs: BENCH_SECONDS (default 5), BENCH_DNS_CONNS (default 64).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_DNS_CONNS:-64}
LOADGEN=build/rel/bench-loadgen
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
[ -x "$LOADGEN" ] && [ -x "$OUTPOSTD" ] || { echo "bench_dns: build first (make bench)"; exit 1; }

# Stop the test servers afterwards only if this script started them.
started_harness=
bash spec/harness/harness.sh status | grep -q "^dns: running" || started_harness=1
bash spec/harness/harness.sh up >/dev/null || { echo "bench_dns: the test servers did not start"; exit 1; }
# shellcheck disable=SC1091
. build/harness/env
TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-dns.XXXXXX")
PID=
cleanup() {
    if [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$TMP/outpostd.log" 2>/dev/null; then
        echo "bench_dns: sanitizer report in the daemon log:"; head -40 "$TMP/outpostd.log"
    fi
    rm -rf "$TMP"
    [ -n "$started_harness" ] && bash spec/harness/harness.sh down >/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$TMP/lua/lib" "$TMP/lua/policies"
ln -s "$ROOT"/lua/lib/* "$TMP/lua/lib/"   # every library, as a policy may require any
cp bench/dns/cached.lua bench/dns/uncached.lua "$TMP/lua/policies/"
cat > "$TMP/outpost.conf" <<EOF
daemon {
    state_dir = $TMP/state
    lua_dir = $TMP/lua
    log_decisions = no
}
listener cached {
    listen = unix:$TMP/cached.sock
    service = cached
}
listener uncached {
    listen = unix:$TMP/uncached.sock
    service = uncached
}
service cached { }
service uncached { }
dns {
    servers = [127.0.0.1:$DNS_PORT]
    timeout = 2s
}
EOF
"$OUTPOSTD" -c "$TMP/outpost.conf" >"$TMP/outpostd.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "ready: generation" "$TMP/outpostd.log" && break; sleep 0.05; done
grep -q "ready: generation" "$TMP/outpostd.log" || { echo "bench_dns: outpostd did not start"; cat "$TMP/outpostd.log"; exit 1; }

queries_at_server() { grep -c "bench.test. A IN" "$HARNESS_DIR/dns/unbound.log"; }

echo
echo "=== DNS through a policy, $CONNS connections, ${SECS}s each"
status=0
for kind in cached uncached; do
    before=$(queries_at_server)
    out=$("$LOADGEN" --unix "$TMP/$kind.sock" -c "$CONNS" -d "$SECS" --server-pid "$PID" --quiet 2>&1)
    rc=$?
    after=$(queries_at_server)
    line=$(echo "$out" | grep -E '^requests=' | tail -1)
    actions=$(echo "$out" | grep -E '^action ' | head -3 | tr '\n' ';')
    rps=$(echo "$line" | sed -E 's/.* rps=([0-9.]+).*/\1/')
    printf '%-9s lookups/s=%s  queries_at_unbound=%d  %s\n' "$kind" "$rps" $((after - before)) "$line"
    [ "$rc" -eq 0 ] || { echo "  loadgen failed: $actions"; status=1; }
    echo "$actions" | grep -q "DUNNO" || { echo "  unexpected answers: $actions"; status=1; }
done
exit $status

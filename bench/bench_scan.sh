#!/bin/bash
# make bench-parts, AO6 part: whole milter sessions per second through
# appout's stage-2 milter (lua/policies/appout_stage2.lua: AO6 sends each
# message to clamd and then to rspamd) with the harness's real scanners
# (spec/harness/svc_scan.sh), 100 KB messages, 8 connections.  The CPU
# seconds of outpostd, clamd and rspamd (all its processes) are shown
# apart, per 1000 messages: the scanners' cost is theirs, not ours.
#
# Knobs: BENCH_SECONDS (10), BENCH_CONNS ("8"), BENCH_BODY (102400),
# BENCH_OUTPOSTD (build/outpostd).  Starts the test harness when it is not
# running (the scanners' start-up is not measured) and stops it after.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-8}
BODY=${BENCH_BODY:-102400}
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
LOAD=build/rel/bench-milterload
for b in "$OUTPOSTD" "$LOAD"; do
    [ -x "$b" ] || { echo "bench_scan: $b is missing: run 'make bench-parts'" >&2; exit 1; }
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-scan.XXXXXX")
DAEMON=
HARNESS_STARTED=
cleanup() {
    if [ -n "$DAEMON" ]; then
        kill -TERM "$DAEMON" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON" 2>/dev/null
        wait "$DAEMON" 2>/dev/null
    fi
    [ -n "$HARNESS_STARTED" ] && bash spec/harness/harness.sh down >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! bash spec/harness/harness.sh status 2>/dev/null | grep -q '^scan: running'; then
    bash spec/harness/harness.sh up >/dev/null || { echo "bench_scan: the test servers did not start" >&2; exit 1; }
    HARNESS_STARTED=1
fi
# shellcheck disable=SC1091
. build/harness/env

block() { awk -v n="$1" '$0 ~ "^"n" \\{" {p=1} p {print} p && /^}/ {p=0}' "$2"; }
{
    printf 'daemon {\n    state_dir = %s/state\n    lua_dir = %s/lua\n    lists_dir = %s/conf/lists\n    log_decisions = no\n}\n' "$TMP" "$ROOT" "$ROOT"
    printf 'listener stage2-milter {\n    listen = unix:%s/milter.sock\n    protocol = milter\n    service = appout-stage2\n    tenant = lm\n}\n' "$TMP"
    for b in "service appout-stage2" "limit appout_send"; do block "$b" conf/outpost.conf; done
    for b in dns ldap directory clamd rspamd; do block "$b" build/harness/outpost.conf; done
} > "$TMP/outpost.conf"
# more scans at once than connections: none waits in line
sed -i -e '/^\(clamd\|rspamd\) {$/a\    max_connections = 64' -e 's/^    timeout = 4s$/    timeout = 30s/' "$TMP/outpost.conf"
"$OUTPOSTD" -c "$TMP/outpost.conf" 2> "$TMP/outpostd.log" &
DAEMON=$!
for ((i = 0; i < 100; i++)); do [ -S "$TMP/milter.sock" ] && break; sleep 0.05; done
[ -S "$TMP/milter.sock" ] || { echo "bench_scan: outpostd did not start:"; tail -5 "$TMP/outpostd.log"; exit 1; }

# CPU ticks (user + system) of a list of PIDs
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)
CLAMD=$(cat "$HARNESS_DIR/scan/clamd.main.pid")
RSPAMD_SID=$(cat "$HARNESS_DIR/scan/rspamd.main.pid")
rspamd_pids() { ps -eo pid=,sid= | awk -v s="$RSPAMD_SID" '$2 == s { print $1 }'; }

echo
echo "AO6: whole milter sessions through appout-stage2 with clamd and rspamd, ${BODY}-byte body"
out=$("$LOAD" --unix "$TMP/milter.sock" -c 2 -n 10 -d 30 --body "$BODY")
if ! grep -q ' errors=0 ' <<<"$out"; then
    echo "check failed: errors answering 10 messages:"; echo "$out"; tail -5 "$TMP/outpostd.log"; exit 1
fi
if grep -q 'cannot be scanned\|AO6.*error' "$TMP/outpostd.log"; then
    echo "check failed: a scanner did not answer:"; grep 'AO6\|scan' "$TMP/outpostd.log" | tail -3; exit 1
fi
echo "check: 10 messages scanned by both, 0 errors ($(grep '^reply' <<<"$out" | tr '\n' ' '))"
printf '%-6s %8s %8s %9s %9s %14s %12s %13s\n' conns msgs/s MB/s p50_ms p99_ms outpostd_cpu/1k clamd_cpu/1k rspamd_cpu/1k
for c in $CONNS; do
    # shellcheck disable=SC2046
    o0=$(ticks "$DAEMON") c0=$(ticks "$CLAMD") r0=$(ticks $(rspamd_pids))
    out=$("$LOAD" --unix "$TMP/milter.sock" -c "$c" -d "$SECS" --body "$BODY" | tail -n 1)
    # shellcheck disable=SC2046
    o1=$(ticks "$DAEMON") c1=$(ticks "$CLAMD") r1=$(ticks $(rspamd_pids))
    grep -q ' errors=0 ' <<<"$out" || { echo "errors: $out"; exit 1; }
    awk -v c="$c" -v body="$BODY" -v hz="$HZ" -v o=$((o1 - o0)) -v cl=$((c1 - c0)) -v r=$((r1 - r0)) '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        n = v["messages"] > 0 ? v["messages"] : 1
        printf "%-6s %8d %8.1f %9.1f %9.1f %14.2f %12.2f %13.2f\n", c, v["mps"], v["mps"] * body / 1e6,
            v["p50_us"] / 1000, v["p99_us"] / 1000, o / hz * 1000 / n, cl / hz * 1000 / n, r / hz * 1000 / n
    }' <<<"$out"
done
echo "(cpu/1k: CPU seconds per 1000 messages; rspamd: all its processes)"
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$DAEMON/status")
echo "outpostd peak RSS: $((rss / 1024)) MiB"

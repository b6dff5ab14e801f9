#!/bin/bash
# make bench, milter part: whole milter sessions per second (negotiate,
# connect, HELO, MAIL, RCPT, DATA, 5 headers, a 10 kB body, end of message,
# quit; one connection per message, as Postfix opens one per SMTP session)
# through outpostd with a header-checking on_eom policy, at 8 and 64
# concurrent sessions.  Environment: BENCH_SECONDS (5), BENCH_CONNS ("8 64"),
# BENCH_BODY (10240), BENCH_TREE (the tree whose build/outpostd and lua/
# run: default this one; make bench sets it to BENCH_BASELINE for a second
# pass against another commit).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-8 64}
BODY=${BENCH_BODY:-10240}
TREE=${BENCH_TREE:-$ROOT}
DIR=$(mktemp -d /tmp/outpost-bench-milter.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$DIR/outpost.conf" <<EOF
daemon {
    state_dir = $DIR/state
    lua_dir = $TREE/lua
    log_decisions = no
}
listener milter {
    listen = unix:$DIR/milter.sock
    protocol = milter
    service = headers
}
service headers {
    policy = $ROOT/bench/milter/policy.lua
}
EOF
"$TREE/build/outpostd" -c "$DIR/outpost.conf" 2> "$DIR/outpostd.log" &
PID=$!
for ((i = 0; i < 100; i++)); do [ -S "$DIR/milter.sock" ] && break; sleep 0.05; done
LOAD=$ROOT/build/rel/bench-milterload

echo
[ "$TREE" = "$ROOT" ] || echo "milter: outpostd of $TREE"
echo "milter: whole sessions (connect ... end of message, ${BODY}-byte body) per second"
# Correctness first: every message answered, each end of message adding the header.
out=$("$LOAD" --unix "$DIR/milter.sock" -c 2 -n 20 -d 10 --body "$BODY")
if ! grep -q '^reply 20 h$' <<<"$out" || ! grep -q ' errors=0 ' <<<"$out"; then
    echo "check failed: the milter did not answer 20 messages with an added header:"
    echo "$out"
    exit 1
fi
echo "check: 20 messages, 20 headers added, 0 errors"
printf '%-8s %10s %8s %8s %8s\n' conns msgs/s p50_us p99_us max_us
for c in $CONNS; do
    out=$("$LOAD" --unix "$DIR/milter.sock" -c "$c" -d "$SECS" --body "$BODY" | tail -n 1)
    echo "$out" | sed -E 's/.*mps=([0-9]+) p50_us=([0-9]+) p99_us=([0-9]+) max_us=([0-9]+).*/\1 \2 \3 \4/' |
        { read -r mps p50 p99 max; printf '%-8s %10s %8s %8s %8s\n' "$c" "$mps" "$p50" "$p99" "$max"; }
    grep -q ' errors=0 ' <<<"$out" || { echo "errors: $out"; exit 1; }
done
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
echo "outpostd peak RSS: $((rss / 1024)) MiB"

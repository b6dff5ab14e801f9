#!/bin/bash
# make bench-parts, MO8: DKIM-signed messages (20 KB body, RSA 2048 and
# Ed25519, signed by python3-dkim with the harness's per-run keys) verified
# per second through the milter, whole sessions at 8 connections, the key
# cache warm (the first messages fetch the keys from the harness's unbound;
# then every lookup is a cache hit).  Knobs: BENCH_SECONDS (5),
# BENCH_DKIM_CONNS ("8").
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_DKIM_CONNS:-8}
LOAD=build/rel/bench-milterload
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
[ -x "$LOAD" ] && [ -x "$OUTPOSTD" ] || { echo "bench_dkim: build first (make bench-parts)"; exit 1; }
started_harness=
bash spec/harness/harness.sh status | grep -q "^dns: running" || started_harness=1
bash spec/harness/harness.sh up >/dev/null || { echo "bench_dkim: the test servers did not start"; exit 1; }
# shellcheck disable=SC1091
. build/harness/env
TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-dkim.XXXXXX")
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$TMP"
    [ -n "$started_harness" ] && bash spec/harness/harness.sh down >/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FX=$HARNESS_DIR/dns/dkim
# 20 KB bodies signed by python3-dkim (never our code)
/usr/bin/python3 - "$FX" "$TMP" <<'PY' || { echo "bench_dkim: signing failed"; exit 1; }
import sys, dkim
fx, out = sys.argv[1], sys.argv[2]
body = b"".join(b"line %05d of a twenty kilobyte body, signed for the benchmark....\r\n" % i
                for i in range(300))[:20480]
msg = (b"From: Alice <alice@inst.test>\r\nTo: bob@example.net\r\nSubject: bench\r\n"
       b"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\nMessage-ID: <bench@inst.test>\r\n\r\n" + body)
for name, sel, key, alg, canon in (("rsa", b"rsa2026", "rsa.key", b"rsa-sha256", (b"relaxed", b"simple")),
                                   ("ed25519", b"ed2026", "ed.key", b"ed25519-sha256", (b"relaxed", b"relaxed"))):
    priv = open(fx + "/" + key, "rb").read()
    sig = dkim.sign(msg, sel, b"inst.test", priv, signature_algorithm=alg, canonicalize=canon,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    open(out + "/" + name + ".eml", "wb").write(sig + msg)
PY

mkdir -p "$TMP/lua/lib" "$TMP/lua/policies" "$TMP/lists"
ln -s "$ROOT"/lua/lib/* "$TMP/lua/lib/"
cp "$ROOT"/conf/lists/*.txt "$TMP/lists/"
cp bench/milter/dkim.lua "$TMP/lua/policies/dkim.lua"
cat > "$TMP/outpost.conf" <<CONF
daemon {
    state_dir = $TMP/state
    lua_dir = $TMP/lua
    lists_dir = $TMP/lists
    log_decisions = no
}
listener milter {
    listen = unix:$TMP/milter.sock
    protocol = milter
    service = dkim
}
service dkim {
    policy = dkim
}
dns {
    servers = [127.0.0.1:$DNS_PORT]
    timeout = 500ms
    tries = 1
}
CONF
"$OUTPOSTD" -c "$TMP/outpost.conf" 2> "$TMP/outpostd.log" &
PID=$!
for ((i = 0; i < 100; i++)); do [ -S "$TMP/milter.sock" ] && break; sleep 0.05; done

echo
echo "dkim (MO8): signed messages (20 KB body) verified per second, whole milter sessions, warm key cache"
printf '%-8s %-6s %10s %8s %8s %8s\n' alg conns msgs/s p50_us p99_us max_us
for alg in rsa ed25519; do
    # correctness first, and the key cache warmed: 20 messages, 20 passes
    out=$("$LOAD" --unix "$TMP/milter.sock" -c 2 -n 20 -d 10 --message "$TMP/$alg.eml")
    if ! grep -q '^reply 20 h$' <<<"$out" || ! grep -q ' errors=0 ' <<<"$out"; then
        echo "check failed: $alg: 20 messages did not all pass DKIM:"
        echo "$out"; tail -5 "$TMP/outpostd.log"
        exit 1
    fi
    for c in $CONNS; do
        out=$("$LOAD" --unix "$TMP/milter.sock" -c "$c" -d "$SECS" --message "$TMP/$alg.eml" | tail -n 1)
        echo "$out" | sed -E 's/.*mps=([0-9]+) p50_us=([0-9]+) p99_us=([0-9]+) max_us=([0-9]+).*/\1 \2 \3 \4/' |
            { read -r mps p50 p99 max; printf '%-8s %-6s %10s %8s %8s %8s\n' "$alg" "$c" "$mps" "$p50" "$p99" "$max"; }
        grep -q ' errors=0 ' <<<"$out" || { echo "errors: $out"; exit 1; }
    done
done

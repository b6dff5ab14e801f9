#!/bin/bash
# make bench, scaling: outpostd with the full postout policy as the number of
# subjects in RocksDB grows (1k, 100k, 1M) and as the number of connections
# grows (1 ... 1,024), over TCP on loopback (docs/performance.md).
#
# Subjects: one daemon per store size, all running, measured interleaved
# (1k, 100k, 1M, 1k, ...).  Each store is filled first by bench-prefill
# through the engine's counters API (one add per subject, as a request
# would), not by a million requests.  Two loads per daemon, 64 connections:
#   postout   the full policy PO1-PO7 (warm caches) for user0..user999, the
#             users of the test directory, against a store holding N
#             subjects (a million directory entries are out of reach here);
#   po7       PO7's operation alone (limit.reserve on the SASL user) for N
#             distinct users drawn uniformly: every subject of the store is
#             hit, so RocksDB's reads miss the block cache as N grows.
# Peak RSS per daemon shows what 1M subjects cost in memory (RocksDB's block
# cache is bounded, engine/counters/counters.c).
#
# Connections: the 1k daemon, postout, at BENCH_SCALE_CONNS connections.
#
# Before timing, each daemon answers a good request DUNNO, a recipient
# domain without DNS 550 5.1.2, and user1000 (limited to 5 by an operator
# override, not in the postout load) is refused their 6th recipient; the
# override is cleared again before the po7 load, which draws every subject.
#
# Knobs: BENCH_SECONDS (4), BENCH_ROUNDS (2), BENCH_WARMUP (0.5),
# BENCH_FILL_SECONDS (3), BENCH_SCALE_SUBJECTS ("1000 100000 1000000"),
# BENCH_SCALE_CONNS ("1 8 64 256 1024"), BENCH_OUTPOSTD (build/outpostd).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_SECONDS=${BENCH_SECONDS:-4}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-0.5}
BENCH_FILL_SECONDS=${BENCH_FILL_SECONDS:-3}
SUBJECTS=${BENCH_SCALE_SUBJECTS:-1000 100000 1000000}
CONNS=${BENCH_SCALE_CONNS:-1 8 64 256 1024}
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
LOADGEN=build/rel/bench-loadgen
PREFILL=build/rel/bench-prefill
KEYS=1000
CHECK_KEY=1000
CHECK_MAX=5

# shellcheck source=bench/lib.sh
. bench/lib.sh
for b in "$LOADGEN" "$PREFILL" "$OUTPOSTD" build/outpostctl; do
    [ -x "$b" ] || die "$b is missing: run 'make bench' (it builds first)"
done
for n in $SUBJECTS; do
    echo "$n" | grep -Eq '^[1-9][0-9]*$' && [ "$n" -ge $KEYS ] || die "BENCH_SCALE_SUBJECTS: want integers >= $KEYS"
done
# 1,024 connections: both ends need more than the usual 1,024 descriptors
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_setup "bench scaling" bench-scaling

# A lua_dir with every library and one more policy: PO7's operation alone.
mkdir -p "$TMP/lua/policies"
ln -s "$ROOT/lua/lib" "$TMP/lua/lib"
for f in "$ROOT"/lua/policies/*.lua; do ln -s "$f" "$TMP/lua/policies/"; done
cat >"$TMP/lua/policies/po7.lua" <<'EOF'
-- PO7's store operation alone: reserve one recipient for the SASL user.
local A = require "outpost.action"
local limit = require "outpost.limit"
local address = require "site.address"
return function(req)
    local r, err = limit.reserve("postout_rcpt", address.subject(req), req.attrs.instance, 1)
    if not r then return A.defer("4.3.0", "counters: %s", err) end
    return r.ok and A.dunno() or A.defer("4.5.3", "limit reached")
end
EOF

# conf DIR PORT: postout on PORT, po7 on PORT+1
conf() {
    mkdir -p "$1/state"
    cat >"$1/outpost.conf" <<EOF
daemon {
    state_dir = $1/state
    lua_dir = $TMP/lua
    lists_dir = $ROOT/conf/lists
    log_decisions = no
    max_connections = 4096
}
control { socket = $1/control.sock }
# loadgen's 1,024 connections all come from 127.0.0.1: without
# max_per_peer = 0 the listener's per-peer cap (256 by default) drops them
listener postout { listen = tcp:127.0.0.1:$2; service = postout; max_per_peer = 0 }
listener po7 { listen = tcp:127.0.0.1:$(($2 + 1)); service = po7; max_per_peer = 0 }
service postout { }
service po7 { policy = po7 }
dns { servers = [127.0.0.1:$DNS_PORT] }
ldap {
    uris = ["ldap://127.0.0.1:$LDAP_PORT/"]
    bind_dn = "cn=policyd,ou=services,dc=example,dc=org"
    bind_password_file = $HARNESS_DIR/ldap/bind.pw
    pool_size = 4
    cache_size = 100000
    cache_ttl = 1h
    negative_ttl = 1h
}
directory { base = "dc=example,dc=org"; default_limit = 10000000 }
limit postout_rcpt { max = 10000000; max_override = 10000000 }
EOF
}

declare -A PORT SIDN
i=0
for n in $SUBJECTS; do
    d=$TMP/s$n
    PORT[$n]=$((OUTPOST_PORT_BASE + 84 + 2 * i)) # 84..89: at most three sizes at once
    i=$((i + 1))
    [ $i -le 3 ] || die "BENCH_SCALE_SUBJECTS: at most three sizes"
    conf "$d" "${PORT[$n]}"
    # user0..user999 (the load) and N-1000 more; user1000 stays untouched for the check
    "$PREFILL" -c "$d/outpost.conf" -l postout_rcpt -n $KEYS 2>/dev/null | sed "s/^prefill:/prefill $n:/"
    if [ "$n" -gt $KEYS ]; then
        "$PREFILL" -c "$d/outpost.conf" -l postout_rcpt --first $((CHECK_KEY + 1)) -n $((n - KEYS)) 2>/dev/null \
            | sed "s/^prefill:/prefill $n:/"
    fi
done
for n in $SUBJECTS; do
    d=$TMP/s$n
    for attempt in 1 2 3; do
        start_server "s$n" "$d/outpostd.log" "$ROOT/$OUTPOSTD" -c "$d/outpost.conf"
        SIDN[$n]=$SERVER_SID
        wait_port "${PORT[$n]}" "${SIDN[$n]}" "$d/outpostd.log" \
            && wait_port $((PORT[$n] + 1)) "${SIDN[$n]}" "$d/outpostd.log" && break
        stop_session "${SIDN[$n]}"
        [ $attempt -lt 3 ] || die "the daemon with $n subjects did not start (log $d/outpostd.log)"
        sleep 1
    done
    check_answer "postout ($n subjects)" "${PORT[$n]}" DUNNO --recipient-domain bench.test
    check_answer "postout ($n subjects)" "${PORT[$n]}" "550 5.1.2 *" --recipient-domain nxdomain.test
    build/outpostctl -s "$TMP/s$n/control.sock" limit set postout_rcpt "user$CHECK_KEY@example.org" \
        "$CHECK_MAX" --reason "bench: the limit must bite" >/dev/null || die "outpostctl limit set failed"
    check_limit "postout ($n subjects)" "${PORT[$n]}" "$CHECK_MAX" "$CHECK_KEY" --recipient-domain bench.test
    # the po7 load draws from every subject, user1000 included: lift the check's limit again
    build/outpostctl -s "$TMP/s$n/control.sock" limit clear postout_rcpt "user$CHECK_KEY@example.org" >/dev/null \
        || die "outpostctl limit clear failed"
    check_answer "po7 ($n subjects)" $((PORT[$n] + 1)) DUNNO
done

# run PORT SID CONNS SECONDS WARMUP KEYS OUT: only DUNNO may come back
run() {
    if ! "$LOADGEN" --tcp "127.0.0.1:$1" -c "$3" -d "$4" --warmup "$5" --keys "$6" \
        --recipient-domain bench.test --connect-batch 1 --ramp --quiet --server-session "$2" >"$7" 2>&1; then
        cat "$7" >&2
        die "port $1 at $3 connections: errors or dropped requests"
    fi
    if grep '^action ' "$7" | grep -vq ' DUNNO$'; then
        grep '^action ' "$7" >&2
        die "port $1 at $3 connections: answers other than DUNNO"
    fi
}
for n in $SUBJECTS; do
    run "${PORT[$n]}" "${SIDN[$n]}" 64 "$BENCH_FILL_SECONDS" 0 $KEYS "$TMP/fill-$n.out"
done
say "fill: ${BENCH_FILL_SECONDS} s of postout load per daemon (unmeasured; fills the LDAP and DNS caches)"

# one result line: CURVE X ROUND cpu=S <loadgen summary>
record() { # curve x round out
    echo "$1 $2 $3 cpu=$(sed -n 's/^server_cpu_s=//p' "$4") $(tail -n 1 "$4")" >>"$TMP/results"
}
: >"$TMP/results"
for round in $(seq "$BENCH_ROUNDS"); do
    for n in $SUBJECTS; do
        out=$TMP/postout-$n-$round.out
        run "${PORT[$n]}" "${SIDN[$n]}" 64 "$BENCH_SECONDS" "$BENCH_WARMUP" $KEYS "$out"
        record subjects-postout "$n" "$round" "$out"
        out=$TMP/po7-$n-$round.out
        run $((PORT[$n] + 1)) "${SIDN[$n]}" 64 "$BENCH_SECONDS" "$BENCH_WARMUP" "$n" "$out"
        record subjects-po7 "$n" "$round" "$out"
    done
    first=${SUBJECTS%% *}
    for c in $CONNS; do
        out=$TMP/conns-$c-$round.out
        run "${PORT[$first]}" "${SIDN[$first]}" "$c" "$BENCH_SECONDS" "$BENCH_WARMUP" $KEYS "$out"
        record connections "$c" "$round" "$out"
    done
    say "scaling: round $round/$BENCH_ROUNDS done"
done

: >"$TMP/rss"
for n in $SUBJECTS; do
    disk=$(build/outpostctl -s "$TMP/s$n/control.sock" status 2>/dev/null | sed -n 's/.*counters on disk \([0-9]*\) bytes.*/\1/p')
    echo "$n $(session_hwm "${SIDN[$n]}") ${disk:-0}" >>"$TMP/rss"
done
stop_all_sessions

echo
say "scaling: outpostd, full postout policy, TCP, medians of $BENCH_ROUNDS rounds of ${BENCH_SECONDS} s"
awk -v first="${SUBJECTS%% *}" '
function median(arr, n,    i, j, x, s) {
    for (i = 1; i <= n; i++) s[i] = arr[i]
    for (i = 2; i <= n; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
    return n == 0 ? 0 : n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
FNR == NR { rl[++nr] = $1; rss[$1] = $2; disk[$1] = $3; next }
{
    delete v
    for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = $1 SUBSEP $2
    if (!(k in n)) order[$1] = order[$1] " " $2
    n[k]++
    rps[k, n[k]] = v["rps"] + 0; p99[k, n[k]] = v["p99_us"] + 0; p50[k, n[k]] = v["p50_us"] + 0
    cpu[k, n[k]] = v["requests"] > 0 ? v["cpu"] * 1e6 / v["requests"] : 0
}
function show(curve, label,    xs, nx, xi, k, m, r, a1, a2, a3, a4, base, rel) {
    nx = split(order[curve], xs, " ")
    printf "%-17s %9s %8s %7s %7s %8s %8s\n", curve, label, "req/s", "p50_us", "p99_us", "cpu_us", "vs_first"
    for (xi = 1; xi <= nx; xi++) {
        k = curve SUBSEP xs[xi]; m = n[k]
        for (r = 1; r <= m; r++) { a1[r] = rps[k, r]; a2[r] = p50[k, r]; a3[r] = p99[k, r]; a4[r] = cpu[k, r] }
        if (xi == 1) base = median(a1, m)
        rel = base > 0 ? median(a1, m) / base : 0
        printf "%-17s %9s %8.0f %7.0f %7.0f %8.1f %8.2f\n", "", xs[xi], median(a1, m), median(a2, m),
               median(a3, m), median(a4, m), rel
    }
}
END {
    show("subjects-postout", "subjects")
    show("subjects-po7", "subjects")
    show("connections", "conns")
    printf "\npeak RSS and store size per daemon:\n"
    for (i = 1; i <= nr; i++) printf "  %9s subjects: RSS %6.1f MiB, counters on disk %6.1f MiB\n", rl[i], rss[rl[i]] / 1024, disk[rl[i]] / 1048576
    print "cpu_us = server CPU microseconds per request; vs_first = req/s relative to the first row"
    print "subjects-postout: 64 connections, users user0..999 (the test directory), store of N subjects"
    print "subjects-po7: 64 connections, PO7 alone (limit.reserve) over N distinct users"
    print "connections: the " first "-subject daemon, full postout"
}' "$TMP/rss" "$TMP/results"

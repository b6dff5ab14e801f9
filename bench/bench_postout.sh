#!/bin/bash
# make bench, postout: the full postout policy (lua/policies/postout.lua,
# PO1-PO7) with warm caches, next to the ceiling (bench-ceiling: libuv and
# the codec, no Lua), at 1, 8 and 64 connections, interleaved as in
# bench/run.sh (ceiling, outpostd, ceiling, ...; medians over rounds).
#
# Every request is an authenticated RCPT of user<k>@example.org (k over
# 0..1000, all in the fixture directory) to rcpt<k>@bench.test (the harness's
# DNS answers A 127.0.0.1 for it), so each one runs every check: TLS, login,
# the directory entry (PO3, PO4, the PO7 tier), DNS (PO5), whether the
# domain is local (PO6: the list, then the directory) and a counter
# reservation (PO7).  "Warm": an unmeasured fill over every key first, so
# the LDAP and DNS answers come from the caches (TTL 1 h here); the counter
# is written on every request, as in production.  The limit is raised out
# of reach so no answer is a 4xx.
#
# First it checks that the policy is not fast by doing nothing: a good
# request answers DUNNO, a recipient domain that does not exist 550 5.1.2
# (PO5), an unknown local recipient 550 5.1.1 (PO6); and every measured
# answer must be DUNNO.
#
# Knobs: BENCH_SECONDS (5), BENCH_ROUNDS (2), BENCH_WARMUP (0.5),
# BENCH_CONNS ("1 8 64"), BENCH_FILL_SECONDS (5), BENCH_OUTPOSTD
# (build/outpostd), BENCH_CHECKS (modes for the service, e.g. "PO7=off" to
# see what a check costs; default: every check enforced).  Uses the test harness's slapd and unbound (started and
# stopped here when they were not running).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-0.5}
BENCH_CONNS=${BENCH_CONNS:-1 8 64}
BENCH_FILL_SECONDS=${BENCH_FILL_SECONDS:-5}
BENCH_CHECKS=${BENCH_CHECKS:-}
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
LOADGEN=build/rel/bench-loadgen
CEILING=build/rel/bench-ceiling
KEYS=1001 # user0..user1000@example.org
DOMAIN=bench.test
for b in "$OUTPOSTD" "$LOADGEN" "$CEILING"; do
    [ -x "$b" ] || { echo "bench_postout: $b is missing: run 'make bench'" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-postout.XXXXXX")
DAEMON=
CEIL=
HARNESS_STARTED=
stop() { # pid
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    rc=$?
    [ -n "$DAEMON" ] && stop "$DAEMON"
    [ -n "$CEIL" ] && stop "$CEIL"
    [ -n "$HARNESS_STARTED" ] && bash spec/harness/harness.sh down >/dev/null 2>&1
    if [ $rc -eq 0 ]; then rm -rf "$TMP"; else echo "bench_postout: failed; logs in $TMP" >&2; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
    echo "bench_postout: $*" >&2
    [ -f "$TMP/daemon.log" ] && tail -n 10 "$TMP/daemon.log" >&2
    exit 1
}

status=$(bash spec/harness/harness.sh status 2>/dev/null)
if ! grep -q '^ldap: running' <<<"$status" || ! grep -q '^dns: running' <<<"$status"; then
    bash spec/harness/harness.sh up >/dev/null || fail "the test servers did not start"
    HARNESS_STARTED=1
fi
# shellcheck disable=SC1091
. build/harness/env

cat > "$TMP/outpost.conf" <<EOF
daemon {
    state_dir = $TMP/state
    lua_dir = $ROOT/lua
    lists_dir = $ROOT/conf/lists
    log_decisions = no
}
listener bench {
    listen = unix:$TMP/outpostd.sock
    service = postout
}
service postout {
    checks = [$BENCH_CHECKS]
}
dns {
    servers = [127.0.0.1:$DNS_PORT]
}
ldap {
    uris = ["ldap://127.0.0.1:$LDAP_PORT/"]
    bind_dn = "cn=policyd,ou=services,dc=example,dc=org"
    bind_password_file = $HARNESS_DIR/ldap/bind.pw
    pool_size = 4
    cache_size = 100000
    cache_ttl = 1h
    negative_ttl = 1h
}
directory {
    base = "dc=example,dc=org"
    default_limit = 10000000
}
limit postout_rcpt {
    max = 10000000
    max_override = 10000000
}
EOF
mkdir -p "$TMP/state"
"$OUTPOSTD" -c "$TMP/outpost.conf" 2>"$TMP/daemon.log" &
DAEMON=$!
"$CEILING" --unix "$TMP/ceiling.sock" >"$TMP/ceiling.log" 2>&1 &
CEIL=$!
for _ in $(seq 100); do [ -S "$TMP/outpostd.sock" ] && [ -S "$TMP/ceiling.sock" ] && break; sleep 0.1; done
[ -S "$TMP/outpostd.sock" ] || fail "outpostd did not start"
[ -S "$TMP/ceiling.sock" ] || fail "bench-ceiling did not start"

# one_answer SOCKET DOMAIN: the answer to one request to rcpt<k>@DOMAIN
one_answer() {
    "$LOADGEN" --unix "$1" -c 1 -n 1 -d 10 --warmup 0 --keys "$KEYS" --recipient-domain "$2" --quiet \
        2>&1 | sed -n 's/^action 1 //p'
}
expect_answer() { # what domain pattern
    local got
    got=$(one_answer "$TMP/outpostd.sock" "$2")
    case $got in
    $3) echo "check: postout answers $1: $got" ;;
    *) fail "postout answers $1 with '$got', want $3" ;;
    esac
}
expect_answer "a good request" "$DOMAIN" "DUNNO"
expect_answer "a recipient domain that does not exist" nxdomain.test "550 5.1.2 *"
expect_answer "an unknown local recipient" example.org "550 5.1.1 *"
[ "$(one_answer "$TMP/ceiling.sock" "$DOMAIN")" = DUNNO ] || fail "the ceiling does not answer DUNNO"

# run SOCKET PID CONNS SECONDS WARMUP OUT: one loadgen run; only DUNNO may come back
run() {
    "$LOADGEN" --unix "$1" -c "$3" -d "$4" --warmup "$5" --keys "$KEYS" --recipient-domain "$DOMAIN" \
        --quiet --server-pid "$2" >"$6" 2>&1 || { cat "$6" >&2; fail "errors or dropped requests"; }
    if grep '^action ' "$6" | grep -vq ' DUNNO$'; then
        grep '^action ' "$6" >&2
        fail "answers other than DUNNO"
    fi
}
run "$TMP/outpostd.sock" "$DAEMON" 64 "$BENCH_FILL_SECONDS" 0 "$TMP/fill.out"
echo "fill: $(sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$TMP/fill.out") requests in ${BENCH_FILL_SECONDS}s over $KEYS users (unmeasured; fills the caches)"

: > "$TMP/results"
for round in $(seq "$BENCH_ROUNDS"); do
    for c in $BENCH_CONNS; do
        for target in ceiling outpostd; do
            if [ $target = ceiling ]; then sock=$TMP/ceiling.sock pid=$CEIL; else sock=$TMP/outpostd.sock pid=$DAEMON; fi
            out=$TMP/run-$target-$c-$round.out
            run "$sock" "$pid" "$c" "$BENCH_SECONDS" "$BENCH_WARMUP" "$out"
            echo "$target $c $round cpu=$(sed -n 's/^server_cpu_s=//p' "$out") $(tail -n 1 "$out")" >> "$TMP/results"
        done
    done
done
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON/status")

echo
echo "postout: the full policy (PO1-PO7), warm caches, $KEYS users, unix socket, medians of $BENCH_ROUNDS rounds of ${BENCH_SECONDS}s"
awk -v conns_list="$BENCH_CONNS" '
function median(arr, n,    i, j, x, s) {
    for (i = 1; i <= n; i++) s[i] = arr[i]
    for (i = 2; i <= n; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
{
    for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = $1 SUBSEP $2; n[k]++
    rps[k, n[k]] = v["rps"] + 0; p50[k, n[k]] = v["p50_us"] + 0; p99[k, n[k]] = v["p99_us"] + 0
    cpu[k, n[k]] = v["requests"] > 0 ? v["cpu"] * 1000 / v["requests"] : 0
}
END {
    nc = split(conns_list, cl, " ")
    printf "%-9s %6s %10s %8s %8s %10s\n", "target", "conns", "req/s", "p50_us", "p99_us", "cpu_s/1k"
    for (ci = 1; ci <= nc; ci++) {
        for (t = 1; t <= 2; t++) {
            name = t == 1 ? "ceiling" : "postout"; k = (t == 1 ? "ceiling" : "outpostd") SUBSEP cl[ci]; m = n[k]
            for (r = 1; r <= m; r++) { a1[r] = rps[k, r]; a2[r] = p50[k, r]; a3[r] = p99[k, r]; a4[r] = cpu[k, r] }
            printf "%-9s %6d %10.0f %8.0f %8.0f %10.4f\n", name, cl[ci], median(a1, m), median(a2, m), median(a3, m), median(a4, m)
        }
        kc = "ceiling" SUBSEP cl[ci]; ko = "outpostd" SUBSEP cl[ci]
        for (r = 1; r <= n[kc]; r++) a1[r] = rps[kc, r] > 0 ? rps[ko, r] / rps[kc, r] : 0
        ratio[ci] = median(a1, n[kc])
    }
    printf "ratio postout/ceiling req/s (median of per-round ratios):"
    for (ci = 1; ci <= nc; ci++) printf "  %d conns %.2f", cl[ci], ratio[ci]
    printf "\n"
}' "$TMP/results"
echo "postout peak RSS $((hwm / 1024)) MiB; cpu_s/1k = server CPU seconds per 1,000 requests"

#!/bin/bash
# make bench, LDAP part: directory lookups through a policy.
#
#   cached    every request runs directory.user(sasl_username) whose answer
#             is in the service's cache (1000 users, warmed up first)
#   uncached  the same with cache_size = 0: every request is one search
#             against the harness's slapd on loopback (identical searches in
#             flight are still coalesced; with 1000 users that is rare)
# at 8 and 64 concurrent requests (bench-loadgen connections).  The users
# user0..user999@example.org are in the fixture directory.
#
# Knobs: BENCH_SECONDS (default 5), BENCH_WARMUP (default 1), BENCH_OUTPOSTD
# (default build/outpostd).  Uses the test harness's slapd (started and
# stopped here when it was not running).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_WARMUP=${BENCH_WARMUP:-1}
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
LOADGEN=build/rel/bench-loadgen
for b in "$OUTPOSTD" "$LOADGEN"; do
    [ -x "$b" ] || { echo "bench_ldap: $b is missing: run 'make bench'" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench-ldap.XXXXXX")
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

if ! bash spec/harness/harness.sh status 2>/dev/null | grep -q '^ldap: running'; then
    bash spec/harness/harness.sh up >/dev/null || { echo "bench_ldap: the test servers did not start" >&2; exit 1; }
    HARNESS_STARTED=1
fi
# shellcheck disable=SC1091
. build/harness/env

mkdir -p "$TMP/lua/lib" "$TMP/lua/policies"
ln -s "$ROOT"/lua/lib/* "$TMP/lua/lib/"   # every library, as a policy may require any
cat > "$TMP/lua/policies/lookup.lua" <<'EOF'
local A = require "outpost.action"
local directory = require "site.directory"
return function(req)
    local user, err = directory.user(req.attrs.sasl_username)
    if err then return A.defer("4.3.0", "directory unavailable (%s)", err) end
    if not user then return A.reject("5.7.1", "unknown user") end
    return A.dunno()
end
EOF

# run_case NAME CACHE_SIZE CONNS: prints one result line
run_case() {
    cat > "$TMP/outpost.conf" <<EOF
daemon {
    state_dir = $TMP/state
    lua_dir = $TMP/lua
    log_decisions = no
}
listener bench {
    listen = unix:$TMP/outpostd.sock
    service = lookup
}
service lookup { }
ldap {
    uris = ["ldap://127.0.0.1:$LDAP_PORT/"]
    bind_dn = "cn=policyd,ou=services,dc=example,dc=org"
    bind_password_file = $HARNESS_DIR/ldap/bind.pw
    pool_size = 4
    cache_size = $2
    cache_ttl = 1h
}
EOF
    "$OUTPOSTD" -c "$TMP/outpost.conf" 2>"$TMP/daemon.log" &
    DAEMON=$!
    for _ in $(seq 100); do [ -S "$TMP/outpostd.sock" ] && break; sleep 0.1; done
    local out
    out=$("$LOADGEN" --unix "$TMP/outpostd.sock" -c "$3" -d "$BENCH_SECONDS" --warmup "$BENCH_WARMUP" \
        --keys 1000 --quiet --server-pid "$DAEMON" 2>&1)
    local rc=$?
    kill -TERM "$DAEMON"
    wait "$DAEMON" 2>/dev/null
    DAEMON=
    rm -f "$TMP/outpostd.sock"
    local summary
    summary=$(echo "$out" | grep '^requests=' | tail -n 1)
    if [ $rc -ne 0 ] || ! echo "$out" | grep -q '^action [0-9]* DUNNO'; then
        echo "bench_ldap: $1 c=$3 failed:" >&2
        echo "$out" | tail -5 >&2
        tail -5 "$TMP/daemon.log" >&2
        return 1
    fi
    # every answer must come from the directory: DUNNO only
    if echo "$out" | grep '^action ' | grep -vq ' DUNNO$'; then
        echo "bench_ldap: $1 c=$3: answers other than DUNNO:" >&2
        echo "$out" | grep '^action ' >&2
        return 1
    fi
    printf 'ldap %-8s c=%-3s %s\n' "$1" "$3" "$summary"
}

echo "=== LDAP: directory.user() through a policy, 1000 users, ${BENCH_SECONDS}s per run"
for conns in 8 64; do
    run_case cached 100000 "$conns" || exit 1
done
for conns in 8 64; do
    run_case uncached 0 "$conns" || exit 1
done

#!/bin/bash
# LDAP against the harness's slapd with configurations of its own:
#  - spec/ldap/*_spec.lua under `outpostd test`: failover, a silent server,
#    slapd stopped, killed and restarted (faults_spec.lua);
#  - a running daemon whose policy answers from the directory: 4xx while
#    slapd is down, answers again after it is back without reload or
#    restart; identical searches in flight are coalesced.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
export ROOT HARNESS_DIR
e2e_setup
CTL=$ROOT/spec/harness/ldap-ctl.sh
trap '"$CTL" resume >/dev/null 2>&1; "$CTL" start >/dev/null 2>&1; e2e_cleanup' EXIT

# ldap_conf FILE URIS [CONNECT_TIMEOUT]
ldap_conf() {
    cat > "$1" <<EOF
daemon {
    state_dir = $T/state
    lua_dir = $T/lua
}
listener unix {
    listen = unix:$T/test.sock
    service = dunno
}
service dunno { }
ldap {
    uris = [$2]
    bind_dn = "cn=policyd,ou=services,dc=example,dc=org"
    bind_password_file = $HARNESS_DIR/ldap/bind.pw
    timeout = 2s
    connect_timeout = ${3:-1s}
    reconnect_min = 50ms
    reconnect_max = 500ms
}
EOF
}

# run_spec NAME CONF SPEC: one spec file under outpostd test; its passes
# and failures count here.
run_spec() {
    local out line p=0 f=1
    out=$("$OUTPOSTD" test -c "$2" "$ROOT/spec/ldap/$3" 2>&1)
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    fi
    if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" <<<"$out"; then f=$((f + 1)); fi
    if [ "$f" -ne 0 ] || [ "$p" -eq 0 ]; then
        printf '%s\n' "$out" | sed 's/^/    /' | tail -40
        [ "$f" -eq 0 ] && f=1
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    echo "$1: $p passed, $f failed"
}

L="ldap://127.0.0.1:$LDAP_PORT/"
S="ldap://127.0.0.1:$LDAP_SILENT_PORT/"
DEAD="ldap://127.0.0.1:1/"

ldap_conf "$T/failover.conf" "\"$DEAD\", \"$S\", \"$L\"" 300ms
run_spec "failover: dead, silent, then slapd" "$T/failover.conf" failover_spec.lua
ldap_conf "$T/silent.conf" "\"$S\"" 5s
run_spec "silent server" "$T/silent.conf" silent_spec.lua
ldap_conf "$T/tls.conf" "\"$L\""
sed -i "s|^    timeout = 2s|    timeout = 2s\\n    starttls = yes\\n    ca_file = $HARNESS_DIR/ldap/tls/ca.pem|" "$T/tls.conf"
run_spec "StartTLS with the right CA" "$T/tls.conf" starttls_spec.lua
sed "s|tls/ca.pem|tls/other-ca.pem|" "$T/tls.conf" > "$T/tls-bad.conf"
OUTPOST_EXPECT_TLS=fail run_spec "StartTLS with another CA" "$T/tls-bad.conf" starttls_spec.lua
ldap_conf "$T/ldaps.conf" "\"ldaps://127.0.0.1:$LDAPS_PORT/\""
sed -i "s|^    timeout = 2s|    timeout = 2s\\n    ca_file = $HARNESS_DIR/ldap/tls/ca.pem|" "$T/ldaps.conf"
run_spec "ldaps with the right CA" "$T/ldaps.conf" starttls_spec.lua
sed "s|tls/ca.pem|tls/other-ca.pem|" "$T/ldaps.conf" > "$T/ldaps-bad.conf"
OUTPOST_EXPECT_TLS=fail run_spec "ldaps with another CA" "$T/ldaps-bad.conf" starttls_spec.lua
ldap_conf "$T/ttl.conf" "\"$L\""
sed -i "s|^    timeout = 2s|    timeout = 2s\\n    cache_ttl = 400ms\\n    negative_ttl = 200ms\\n    cache_size = 2|" "$T/ttl.conf"
run_spec "cache TTLs and bound" "$T/ttl.conf" ttl_spec.lua
ldap_conf "$T/faults.conf" "\"$L\""
run_spec "slapd paused, killed, restarted" "$T/faults.conf" faults_spec.lua

# ---- a daemon whose policy asks the directory ----
"$CTL" resume >/dev/null 2>&1
"$CTL" start || not_ok "slapd is up again after the fault specs"
e2e_policy lookup <<'EOF'
local A = require "outpost.action"
local directory = require "site.directory"
return function(req)
    local user, err = directory.user(req.attrs.sasl_username)
    if err then return A.defer("4.3.0", "directory unavailable (%s), try again later", err) end
    if not user then return A.reject("5.7.1", "unknown user") end
    if user.locked then return A.reject("5.7.1", "account locked") end
    return A.info("limit=%d", user.limit)
end
EOF
e2e_policy stats <<'EOF'
local A = require "outpost.action"
local ldap = require "outpost.ldap"
return function()
    local s = ldap.stats()
    return A.info("sent=%d coalesced=%d hits=%d", s.sent, s.coalesced, s.cache_hits)
end
EOF
ldap_conf "$T/outpost.conf" "\"$L\""
sed -i 's/    service = dunno/    service = lookup/' "$T/outpost.conf"
cat >> "$T/outpost.conf" <<EOF
service lookup { deadline = 5s }
service stats { }
listener stats {
    listen = unix:$T/stats.sock
    service = stats
}
directory {
    base = "dc=example,dc=org"
}
EOF
e2e_start || { e2e_finish; exit 1; }
ask() { $ASK "unix:$T/$1" "${@:2}" 2>&1; }

check "a user's tier comes from the directory" test "$(ask test.sock sasl_username=bob)" = "action=INFO limit=500"
check "a locked account is rejected" test "$(ask test.sock sasl_username=mallory)" = "action=REJECT 5.7.1 account locked"
check "a crafted user name finds nobody" test "$(ask test.sock 'sasl_username=*')" = "action=REJECT 5.7.1 unknown user"

# Coalescing: with slapd paused, 20 identical lookups wait on one search.
"$CTL" pause
for i in $(seq 20); do ask test.sock sasl_username=carol > "$T/coal.$i" & done
# Resume once all 20 wait (the stats service asks no directory): on a busy
# machine the 20 clients take a while to start.
for ((i = 0; i < 100; i++)); do
    c=$(ask stats.sock x=1 | sed -nE 's/.*coalesced=([0-9]+).*/\1/p')
    [ "${c:-0}" -ge 19 ] && break
    sleep 0.1
done
"$CTL" resume
all_answered() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(cat "$T"/coal.* | grep -c 'INFO limit=1000')" -eq 20 ] && return 0
        sleep 0.05
    done
    return 1
}
check "20 concurrent lookups of one user all answer" all_answered
stats=$(ask stats.sock x=1)
echo "    $stats"
coalesced=$(echo "$stats" | sed -nE 's/.*coalesced=([0-9]+).*/\1/p')
check "they shared one search (19 coalesced)" test "${coalesced:-0}" -ge 19

# The cache lives in the service: a reload keeps it.
field() { echo "$1" | sed -nE "s/.*$2=([0-9]+).*/\1/p"; }
before=$(ask stats.sock x=1)
kill -HUP "$DAEMON_PID"
reloaded() {
    local i
    for ((i = 0; i < 100; i++)); do log_has "generation 2" && return 0; sleep 0.05; done
    return 1
}
check "SIGHUP loads generation 2" reloaded
check "after the reload a cached user still answers" test "$(ask test.sock sasl_username=bob)" = "action=INFO limit=500"
after=$(ask stats.sock x=1)
check "... from the cache that survived the reload (no new search)" \
    test "$(field "$after" sent)" = "$(field "$before" sent)" -a "$(field "$after" hits)" -gt "$(field "$before" hits)"

# A reload that changes the servers: connections are re-established to the
# new list (a dead server first, then slapd), the cache starts empty.
wait_gen() {
    local i
    for ((i = 0; i < 100; i++)); do log_has "generation $1" && return 0; sleep 0.05; done
    return 1
}
sed -i "s|    uris = \[|    uris = [\"$DEAD\", |" "$T/outpost.conf"
before=$(ask stats.sock x=1)
kill -HUP "$DAEMON_PID"
check "a reload with other servers loads generation 3" wait_gen 3
check "after it a user answers, through the new server list" test "$(ask test.sock sasl_username=bob)" = "action=INFO limit=500"
after=$(ask stats.sock x=1)
check "... with a new search: the cache of the old servers was emptied" \
    test "$(field "$after" sent)" -gt "$(field "$before" sent)"

# A reload whose password file cannot be read keeps the LDAP settings.
sed -i "s|bind_password_file = .*|bind_password_file = $T/no-such.pw|" "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
check "a reload with an unreadable password file is logged" \
    bash -c "for i in \$(seq 100); do grep -q 'no-such.pw.*keeps its previous settings' '$T/daemon.log' && exit 0; sleep 0.05; done; exit 1"
check "... and lookups go on with the old settings" test "$(ask test.sock sasl_username=carol)" = "action=INFO limit=1000"

# slapd down: the policy defers (4xx), then recovers by itself.
"$CTL" kill
check "with slapd killed a lookup answers 4xx within its deadline" bash -c \
    "timeout 4 $ASK unix:$T/test.sock sasl_username=dave | grep -q '^action=DEFER 4.3.0 directory unavailable (unavailable)'"
"$CTL" start
recovered() {
    local i
    for ((i = 0; i < 60; i++)); do
        ask test.sock sasl_username=erin | grep -q '^action=INFO limit=250' && return 0
        sleep 0.1
    done
    return 1
}
check "after slapd is back the daemon answers again, no reload or restart" recovered
check "the daemon logged the outage and the recovery" log_has "up again"
check "the daemon stops cleanly" e2e_stop
check_log_clean
e2e_finish

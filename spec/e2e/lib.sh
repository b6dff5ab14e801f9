# Shared by the end-to-end tests: a private outpostd in a temporary
# directory, assertions, and cleanup by PID on any exit.
#
#   . spec/e2e/lib.sh
#   e2e_setup                 temp dir in $T, lua tree in $T/lua
#   e2e_config <<EOF ... EOF  writes $T/outpost.conf (@T@ = the temp dir)
#   e2e_start                 starts the daemon, waits for its sockets
#   check "what" cmd...       one test: passes when cmd exits 0
#   e2e_finish                prints "N passed, N failed"; exit status

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTPOSTD=${OUTPOSTD:-$ROOT/build/asan/outpostd}
ASK="$ROOT/build/outpostd ask"
LOADGEN=$ROOT/build/rel/bench-loadgen
RAW="python3 $ROOT/spec/e2e/rawclient.py"
PASSED=0
FAILED=0
DAEMON_PID=
T=

# ASan: report leaks, and make a report fail loudly in the log we scan.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

e2e_cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    [ -n "$T" ] && [ -z "${E2E_KEEP:-}" ] && rm -rf "$T"
}
trap e2e_cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

e2e_setup() {
    T=$(mktemp -d /tmp/outpost-e2e.XXXXXX)
    mkdir -p "$T/lua/lib" "$T/lua/policies"
    local f
    for f in "$ROOT"/lua/lib/*; do ln -s "$f" "$T/lua/lib/"; done
    cp "$ROOT"/lua/policies/*.lua "$T/lua/policies/"
}

# Writes $T/outpost.conf from stdin; a config without a daemon section
# gets the usual one (state and Lua tree in $T).
e2e_config() {
    local text
    text=$(cat)
    if ! grep -q '^daemon {' <<<"$text"; then
        text=$(printf 'daemon {\n    state_dir = @T@/state\n    lua_dir = @T@/lua\n}\n%s' "$text")
    fi
    sed -e "s|@T@|$T|g" -e "s|@ROOT@|$ROOT|g" <<<"$text" > "$T/outpost.conf"
    # the one endpoint (policy_listener, on a one-endpoint round only)
    # serves every shipped service: the test's own as it configured them,
    # the others as conf/outpost.conf ships them.  Other tests may name a
    # listener "policy" too: they get nothing added.
    if one_endpoint && grep -q '^listener policy {' <<<"$text"; then
        local b
        for b in "service postout" "limit postout_rcpt" "service mailout" "limit mailout_rcpt" \
            "service appout-stage1" "service appout-stage2" "limit appout_send"; do
            grep -q "^$b {" <<<"$text" ||
                sed -n "/^$b {/,/^}/p" "$ROOT/conf/outpost.conf" >> "$T/outpost.conf"
        done
    fi
}

# The harness's own sections (ldap, directory, dns, ...) of its
# outpost.conf, for a test that talks to the same servers the same way:
#   harness_sections ldap directory >> "$T/outpost.conf"
harness_sections() {
    local name
    for name in "$@"; do sed -n "/^$name {/,/^}/p" "$HARNESS_DIR/outpost.conf"; done
}

# The fixture directories (spec/fixtures/ldap/, attribute style, and
# spec/fixtures/ldap-groups/, group style; both in the harness's slapd).
# The directory-dependent scenarios (postout, mailout, appout through
# Postfix) run once per fixture in E2E_FIXTURES, with the same policies and
# only fixture_directory's block different; one Postfix serves every round
# (fixture_round).  E2E_FIXTURES=groups bash spec/e2e/test_X.sh runs one.
E2E_FIXTURES=${E2E_FIXTURES:-attrs groups}
FIXTURE=attrs

# directory { } of $FIXTURE: the shipped one (conf/outpost.conf) for the
# attribute style, spec/fixtures/ldap-groups/directory.conf for the other.
fixture_directory() {
    case $FIXTURE in
    attrs) sed -n '/^directory {/,/^}/p' "$ROOT/conf/outpost.conf" ;;
    groups) sed -n '/^directory {/,/^}/p' "$ROOT/spec/fixtures/ldap-groups/directory.conf" ;;
    *) echo "unknown fixture '$FIXTURE'" >&2; return 1 ;;
    esac
}

# The policy endpoint of a round.  Round attrs: each service asks a
# listener of its own (as conf/outpost.conf ships them: postout, mailout,
# appout-lm).  Round groups: ONE listener for every service and tenant
# (docs/services.md, "One endpoint for every service and tenant"): it has
# no tenant of its own, Postfix names the service and, for appout, the
# tenant in policy_context (postfix.sh: pf_policy_round), so appout's
# tenant can only come from the context.  Its allow_context names every
# shipped service, so e2e_config adds the shipped service { } and limit { }
# blocks the test does not configure itself (outpostd refuses a context
# naming a service it does not define).  Milter listeners stay per service.
ENDPOINT_CONTEXTS='postout, mailout, "appout-stage1:lm", "appout-stage2:lm", "appout-stage1:tu", "appout-stage2:tu"'
one_endpoint() { [ "$FIXTURE" = groups ]; }
# ENDPOINT_DIR: where the socket is (default $T); a test with two nodes
# gives each its own (test_po7_two_relays.sh).
endpoint_address() { echo "unix:${ENDPOINT_DIR:-$T}/policy.sock"; }

# policy_listener <<EOF listener NAME { ... } EOF: prints the round's policy
# listener: the service's own (stdin) or the one endpoint.
policy_listener() {
    if one_endpoint; then
        cat >/dev/null
        cat <<EOF
listener policy {
    listen = $(endpoint_address)
    socket_group = postfix
    service = postout
    allow_context = [$ENDPOINT_CONTEXTS]
}
EOF
    else
        cat
    fi
}

# On a one-endpoint round: outpostd has exactly one policy listener (the
# others are milters), and it has no tenant.
endpoint_listener_check() {
    one_endpoint || return 0
    only_one() {
        [ "$(grep -c '^listener ' "$T/outpost.conf")" -eq \
          $(($(grep -c '^    protocol = milter' "$T/outpost.conf") + 1)) ] &&
            ! sed -n '/^listener policy {/,/^}/p' "$T/outpost.conf" | grep -q tenant
    }
    check "one endpoint: outpostd has one policy listener, $(endpoint_address), with no tenant of its own" only_one
}

# Ends a fixture's round: stops outpostd, keeps its log as
# daemon.log.FIXTURE, and leaves a fresh state (counters) for the next.
fixture_round_end() {
    [ -n "$DAEMON_PID" ] && e2e_stop
    mv "$T/daemon.log" "$T/daemon.log.$FIXTURE"
    rm -rf "$T/state"
}

# Policies for a test: e2e_policy NAME <<EOF ... EOF
e2e_policy() {
    cat > "$T/lua/policies/$1.lua.tmp" && mv "$T/lua/policies/$1.lua.tmp" "$T/lua/policies/$1.lua"
}

wait_for_socket() { # path, seconds
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        [ -S "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

e2e_start() {
    "$OUTPOSTD" -c "$T/outpost.conf" 2> "$T/daemon.log" &
    DAEMON_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q "ready: generation" "$T/daemon.log" 2>/dev/null && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "daemon did not start:"; cat "$T/daemon.log"
    return 1
}

e2e_stop() { # sends SIGTERM and waits; returns the exit status
    kill -TERM "$DAEMON_PID"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    return $rc
}

# Result lines name the fixture of rounds past the first (fixture_directory).
fixture_tag() { [ "$FIXTURE" = attrs ] || printf '[%s] ' "$FIXTURE"; }
ok() { PASSED=$((PASSED + 1)); echo "ok - $(fixture_tag)$1"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $(fixture_tag)$1"; }

check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# The daemon log must never show a sanitizer report.
check_log_clean() {
    if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$T/daemon.log"; then
        grep -A30 -E "AddressSanitizer|LeakSanitizer|runtime error:" "$T/daemon.log" | head -60
        not_ok "daemon log has no sanitizer report"
    else
        ok "daemon log has no sanitizer report"
    fi
}

log_has() { grep -qE -- "$1" "$T/daemon.log"; }

e2e_finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

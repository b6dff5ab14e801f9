#!/bin/bash
# Runs every test layer and sums their results.  Each layer prints, as its
# last line, "N passed, N failed"; a layer that crashes without that line
# counts as one failure.  The last line of this script is the sum.
#
#   spec/run-all.sh            all layers
#   spec/run-all.sh c lua      only the named layers (c, fuzz, lua, e2e, package)
set -u
cd "$(dirname "$0")/.."

total_passed=0
total_failed=0
summary=()
# What a failing layer printed that says why: its last lines, then its "not
# ok" lines (each with the four after it, where busted and the e2e tests say
# why).  Printed just before the sum, so that a report which keeps only the
# last twenty-odd lines of the output (CI's) still names the failure.
failures=()

run_layer() {
    local name=$1
    shift
    local log
    log=$(mktemp)
    printf '\n=== %s: %s\n' "$name" "$*"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    local p=0 f=0
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $name exited with status $rc without reporting a failure; counting one"
        f=1
    fi
    if [ "$f" -ne 0 ]; then
        failures+=("--- $name: its last lines" "$(tail -n 6 "$log")"
            "--- $name: its \"not ok\" lines" "$(grep -E -A4 '^not ok' "$log" | head -n 15)")
    fi
    rm -f "$log"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    summary+=("$(printf '%-34s %4d passed, %d failed' "$name" "$p" "$f")")
}

want() { [ $# -eq 0 ] || [[ " $* " == *" $LAYER "* ]]; }
layers=("$@")

# The real servers (DNS, LDAP, SMTP, ...) the specs and end-to-end tests
# talk to; stopped on any exit.
HARNESS=spec/harness/harness.sh
harness_up() {
    [ -n "${HARNESS_UP:-}" ] && return 0
    HARNESS_UP=1
    trap 'bash $HARNESS down' EXIT
    trap 'exit 130' INT TERM
    if ! bash "$HARNESS" up; then
        echo "!!! the test servers did not start; counting one failure"
        total_failed=$((total_failed + 1))
        summary+=("$(printf '%-34s %4d passed, %d failed' "harness: up" 0 1)")
        return 1
    fi
    # shellcheck disable=SC1091
    . build/harness/env
}

LAYER=c
# test_dns (and later C tests of services) talk to the harness's servers.
if want "${layers[@]}" && harness_up; then
    for t in build/asan/test_*; do
        [ -x "$t" ] && run_layer "c: $(basename "$t")" "$t"
    done
fi

LAYER=fuzz
if want "${layers[@]}"; then
    run_layer "fuzz: codecs and parsers, 15 s each" spec/fuzz/run.sh 15
fi

LAYER=lua
if want "${layers[@]}" && harness_up; then
    run_layer "lua: busted in the engine" build/asan/outpostd test -c build/harness/outpost.conf spec/lua
    # The directory vocabulary and the policies again on the group-style
    # fixture (spec/fixtures/ldap-groups/): the same specs, only directory { }
    # differs (build/harness/outpost-groups.conf).
    run_layer "lua: the directory vocabulary and policies, group-style fixture" \
        build/asan/outpostd test -c build/harness/outpost-groups.conf spec/lua/directory_spec.lua \
        spec/lua/directory_sender_spec.lua spec/lua/directory_groups_spec.lua spec/lua/policies
    # the specs that count, again with the counters on the harness's Redis
    run_layer "lua: the counting specs on Redis" build/asan/outpostd test \
        -c build/harness/outpost-redis.conf spec/lua/limit_spec.lua spec/lua/explain_spec.lua spec/lua/transaction_spec.lua \
        spec/lua/pipeline_spec.lua spec/lua/policies
fi

LAYER=e2e
if want "${layers[@]}" && harness_up; then
    for t in spec/e2e/test_*.sh; do
        [ -f "$t" ] && run_layer "e2e: $(basename "$t" .sh)" bash "$t"
    done
fi

# The Debian package built, installed, run and purged on this machine
# (spec/package/, about 2.5 min: one package build).  Its own layer, so
# `make e2e` stays quick; `make test` runs it.
LAYER=package
if want "${layers[@]}"; then
    for t in spec/package/test_*.sh; do
        [ -f "$t" ] && run_layer "package: $(basename "$t" .sh)" bash "$t"
    done
fi

printf '\n=== summary\n'
printf '%s\n' "${summary[@]}"
if [ ${#failures[@]} -gt 0 ]; then
    printf '\n=== what the failing layers printed\n'
    printf '%s\n' "${failures[@]}"
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]

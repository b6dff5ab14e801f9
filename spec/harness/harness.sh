#!/bin/bash
# The real servers the tests talk to (DNS, LDAP, SMTP, Postfix, ...), each a
# private instance on loopback in a directory of its own, started and
# stopped by PID.
#
#   spec/harness/harness.sh up     start every server that is not running yet;
#                                  write $HARNESS_DIR/env and $HARNESS_DIR/outpost.conf
#   spec/harness/harness.sh down   stop everything it started
#   spec/harness/harness.sh status what runs, on which ports
#
# Each server is one file, spec/harness/svc_NAME.sh, which defines
#   NAME_up      start it (it may assume its ports are free), wait until it answers
#   NAME_down    stop it by the PID it recorded
#   NAME_running exit 0 when it runs
# and may append KEY=value lines to $HARNESS_DIR/env (sourced by tests).
#
# Ports: base + a fixed offset per server (table below), so two checkouts
# pick different bases and a taken port is reported before anything starts.
# OUTPOST_PORT_BASE overrides the base.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HARNESS_DIR=${HARNESS_DIR:-$ROOT/build/harness}
export ROOT HARNESS_DIR

if [ -z "${OUTPOST_PORT_BASE:-}" ]; then
    # 20000..32600 in steps of 100, from the checkout's path: below Linux's
    # ephemeral ports (32768 up), which outgoing connections may hold
    OUTPOST_PORT_BASE=$(( 20000 + ( $(printf '%s' "$ROOT" | cksum | cut -d' ' -f1) % 127 ) * 100 ))
fi
export OUTPOST_PORT_BASE

# The port plan: one row per port any server uses.  Add rows, never reuse an offset.
#   name            offset  proto
PORT_PLAN="
DNS_PORT            0       udp+tcp
DNS_SILENT_PORT     1       udp+tcp
LDAP_PORT           10      tcp
LDAP_SILENT_PORT    11      tcp
LDAPS_PORT          12      tcp
SMTP_VERIFY_PORT    20      tcp
SMTP_SLOW_PORT      21      tcp
OUTPOSTD_TCP_PORT   30      tcp
OUTPOSTD_MILTER_PORT 31     tcp
POSTFIX_BASE_PORT   40      tcp
POSTOUT_SUBMISSION_PORT 50  tcp
POSTOUT_SMTPS_PORT  51      tcp
POSTOUT_PLAIN_PORT  52      tcp
FLOODS_TCP_PORT     60      tcp     # spec/e2e/test_floods.sh's own outpostd listeners
FLOODS_CLOSED_PORT  61      tcp
METRICS_PORT        62      tcp     # spec/e2e/test_metrics.sh: the endpoint and a tcp listener
METRICS_TCP_PORT    63      tcp
BENCH_BASE_PORT     70      tcp     # bench/run.sh and bench/scaling.sh: 70..89
CLAMD_PORT          90      tcp     # spec/harness/svc_scan.sh (AO6)
RSPAMD_PORT         91      tcp
OUTPOSTD2_TCP_PORT  33      tcp     # the second node of spec/e2e/test_redis_*.sh
REDIS_PORT          94      tcp     # svc_redis.sh; the Sentinel test's own:
REDIS_REPLICA_PORT  95      tcp
REDIS_SENTINEL_PORT 96      tcp     # 96, 97, 98
REDIS_SENTINEL2_PORT 97     tcp
REDIS_SENTINEL3_PORT 98     tcp
REDIS_E2E_PORT      99      tcp     # the own redis-server of spec/e2e/test_redis_*.sh
BENCH_JIT_PORT      100     tcp     # bench/targets.sh's -jit-MODE targets: 100..105
"
while read -r name offset _; do
    [ -n "$name" ] && export "$name=$((OUTPOST_PORT_BASE + offset))"
done <<<"$PORT_PLAN"

log() { printf 'harness: %s\n' "$*" >&2; }

# pid_alive, stop_pid, port_taken, wait_until
# shellcheck disable=SC1091
. "$ROOT/spec/harness/procs.sh"

# The servers of spec/harness/svc_*.sh; HARNESS_ONLY="dns ldap" limits them
# (make run starts only the example directory and DNS).
services() {
    local f name
    for f in "$ROOT"/spec/harness/svc_*.sh; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .sh | sed 's/^svc_//')
        if [ -n "${HARNESS_ONLY:-}" ] && [[ " $HARNESS_ONLY " != *" $name "* ]]; then
            continue
        fi
        echo "$name"
    done
}
for f in "$ROOT"/spec/harness/svc_*.sh; do
    # shellcheck disable=SC1090
    [ -f "$f" ] && . "$f"
done

# The lists the test configuration reads: the shipped example lists, and
# the fixtures of spec/lua/lists_spec.lua.
link_lists() {
    rm -rf "$HARNESS_DIR/lists"
    mkdir -p "$HARNESS_DIR/lists"
    local f
    for f in "$ROOT"/conf/lists/*.txt "$ROOT"/spec/lua/fixtures/lists/*.txt; do
        [ -f "$f" ] && ln -sf "$f" "$HARNESS_DIR/lists/"
    done
}

write_config() {
    link_lists
    local template=$ROOT/spec/harness/outpost-test.conf.in args=() name
    args+=(-e "s|@ROOT@|$ROOT|g" -e "s|@HARNESS_DIR@|$HARNESS_DIR|g")
    while read -r name _; do
        [ -n "$name" ] && args+=(-e "s|@$name@|${!name}|g")
    done <<<"$PORT_PLAN"
    # The two fixture directories (svc_ldap.sh): one config each, the same
    # but for directory { }.
    { sed "${args[@]}" "$template"; cat "$ROOT/spec/fixtures/ldap/directory.conf"; } \
        > "$HARNESS_DIR/outpost.conf"
    { sed "${args[@]}" "$template"; cat "$ROOT/spec/fixtures/ldap-groups/directory.conf"; } \
        > "$HARNESS_DIR/outpost-groups.conf"
    # the same with the counters on the harness's Redis (the lua layer runs
    # the counting specs against both backends)
    sed -e 's/^counters {$/counters {\n    backend = redis/' "$HARNESS_DIR/outpost.conf" > "$HARNESS_DIR/outpost-redis.conf"
    printf 'redis {\n    servers = [127.0.0.1:%s]\n    prefix = "outpost-spec:"\n}\n' "$REDIS_PORT" >> "$HARNESS_DIR/outpost-redis.conf"
}

up() {
    mkdir -p "$HARNESS_DIR"
    chmod 755 "$HARNESS_DIR"
    # Preflight: every port of every server not yet running, all at once.
    local conflicts="" name offset proto svc owner
    local -A running=()
    for svc in $(services); do
        "${svc}_running" && running[$svc]=1
    done
    if [ ${#running[@]} -eq 0 ]; then
        while read -r name offset proto; do
            [ -n "$name" ] || continue
            owner=$(port_taken "${!name}" "$proto") && conflicts+="  127.0.0.1:${!name}/$proto ($name) is taken: $owner"$'\n'
        done <<<"$PORT_PLAN"
    fi
    if [ -n "$conflicts" ]; then
        log "ports needed by the test servers are in use:"
        printf '%s' "$conflicts" >&2
        log "stop what holds them, or choose other ports: OUTPOST_PORT_BASE=NNNNN (now $OUTPOST_PORT_BASE)"
        return 1
    fi
    {
        echo "ROOT=$ROOT"
        echo "HARNESS_DIR=$HARNESS_DIR"
        echo "OUTPOST_PORT_BASE=$OUTPOST_PORT_BASE"
        while read -r name _; do [ -n "$name" ] && echo "$name=${!name}"; done <<<"$PORT_PLAN"
    } > "$HARNESS_DIR/env"
    for svc in $(services); do
        if [ -z "${running[$svc]:-}" ]; then
            "${svc}_up" || { log "$svc did not start"; return 1; }
        fi
    done
    write_config
}

down() {
    local svc
    for svc in $(services | tac); do
        "${svc}_down"
    done
    return 0
}

status() {
    local svc
    for svc in $(services); do
        if "${svc}_running"; then echo "$svc: running"; else echo "$svc: stopped"; fi
    done
    [ -f "$HARNESS_DIR/env" ] && cat "$HARNESS_DIR/env"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

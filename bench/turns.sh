#!/bin/bash
# What a request costs the daemon in system calls, context switches and
# CPU time, per thread, at a given number of connections: the counts that
# show a cost paid per turn of the loop (or per wake-up) rather than per
# request (docs/performance.md, "The per-turn cost at few connections").
# Unlike req/s they move little with the machine's load: a context switch
# is counted whatever the other processes do.
#
# For each target (bench/targets.sh's names: trivial, postout-warm, ...)
# and each connection count: outpostd starts, is checked, its caches are
# filled (3 s at 64 connections), then
#   1. BENCH_TURNS_REQUESTS requests run with nothing attached: CPU time
#      (utime+stime of the whole process, /proc/PID/stat) and the voluntary
#      and involuntary context switches of each thread (/proc/PID/task/*/
#      status) are read before and after;
#   2. the same count again under `strace -c -f`: system calls per request
#      by name (strace slows the daemon, so this run's times are not used).
# Knobs: BENCH_TURNS_TARGETS (default "trivial postout-warm"),
# BENCH_TURNS_CONNS (default "1 8 64"), BENCH_TURNS_REQUESTS (default
# 20000), BENCH_TURNS_STRACE (default 1; 0 skips the strace run).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_TURNS_TARGETS=${BENCH_TURNS_TARGETS:-trivial postout-warm}
BENCH_TURNS_CONNS=${BENCH_TURNS_CONNS:-1 8 64}
BENCH_TURNS_REQUESTS=${BENCH_TURNS_REQUESTS:-20000}
BENCH_TURNS_STRACE=${BENCH_TURNS_STRACE:-1}
LOADGEN=build/rel/bench-loadgen
CEILING=build/rel/bench-ceiling
OUTPOSTD=build/outpostd
KEYS=1000

# shellcheck source=bench/lib.sh
. bench/lib.sh

for b in "$LOADGEN" "$OUTPOSTD" build/outpostctl; do
    [ -x "$b" ] || die "$b is missing: make build"
done
[ "$BENCH_TURNS_STRACE" = 0 ] || command -v strace >/dev/null || die "strace is missing"

bench_setup "bench turns" bench-turns
SHM=$TMP
PORT_BASE=$OUTPOST_PORT_BASE
# shellcheck source=bench/targets.sh
. bench/targets.sh

load() { # target conns count out
    # shellcheck disable=SC2086  # LOADOPTS holds several options
    "$LOADGEN" --tcp "127.0.0.1:${PORT[$1]}" -c "$2" -n "$3" -d 300 --warmup 0 \
        --keys "$KEYS" --recipient-domain bench.test ${LOADOPTS[$1]:-} --quiet >"$4" 2>&1 \
        || { cat "$4" >&2; die "$1: errors or dropped requests"; }
    if grep '^action ' "$4" | grep -Evq ' (DUNNO|dunno)$'; then
        grep '^action ' "$4" >&2
        die "$1: answers other than DUNNO"
    fi
}

daemon_pid() { # sid -> outpostd's PID
    local p
    for p in $(session_pids "$1"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = outpostd ] && { echo "$p"; return; }
    done
    die "no outpostd in session $1"
}

# role voluntary involuntary cpu-ticks, one line per role: the loop thread
# (the process's first) and the others summed (libuv's pool, RocksDB's,
# the watchdog: they share outpostd's name)
switches() { # pid
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s %s\n' "$([ "${t##*/}" = "$1" ] && echo loop || echo other-threads)" \
            "$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$t/status")" \
            "$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' "$t/status")" \
            "$(awk '{ print $14 + $15 }' "$t/stat")"
    done | awk '{ v[$1] += $2; n[$1] += $3; c[$1] += $4 } END { for (k in v) print k, v[k], n[k], c[k] }' | sort
}

cpu_ticks() { # pid -> utime+stime in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

HZ=$(getconf CLK_TCK)
N=$BENCH_TURNS_REQUESTS
say "machine: $(nproc) CPUs, Linux $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "per request, $N requests per run after 3 s of fill at 64 connections"
for t in $BENCH_TURNS_TARGETS; do
    "start_$t"
    wait_port "${PORT[$t]}" "${SID[$t]}" "$TMP/$t/outpostd.log" || die "$t exited at start"
    "check_$t" >/dev/null
    pid=$(daemon_pid "${SID[$t]}")
    # shellcheck disable=SC2086  # LOADOPTS holds several options
    "$LOADGEN" --tcp "127.0.0.1:${PORT[$t]}" -c 64 -d 3 --warmup 0 --keys "$KEYS" \
        --recipient-domain bench.test ${LOADOPTS[$t]:-} --quiet >"$TMP/$t.fill" 2>&1 \
        || { cat "$TMP/$t.fill" >&2; die "$t: fill failed"; }
    for c in $BENCH_TURNS_CONNS; do
        switches "$pid" >"$TMP/sw0"
        c0=$(cpu_ticks "$pid")
        t0=$(date +%s.%N)
        load "$t" "$c" "$N" "$TMP/$t.$c.out"
        t1=$(date +%s.%N)
        c1=$(cpu_ticks "$pid")
        switches "$pid" >"$TMP/sw1"
        say ""
        say "$t, $c connections: $(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.0f req/s", n / (b - a) }'), CPU $(awk -v a="$c0" -v b="$c1" -v n="$N" -v hz="$HZ" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }') us/request; load average $(cut -d' ' -f1-3 /proc/loadavg)"
        join "$TMP/sw0" "$TMP/sw1" | awk -v n="$N" -v hz="$HZ" '
            { v = ($5 - $2) / n; i = ($6 - $3) / n; tv += v; ti += i
              printf "  per request, %-14s switches voluntary %6.3f involuntary %6.3f, CPU %6.1f us\n", $1, v, i, ($7 - $4) / hz * 1e6 / n }
            END { printf "  per request, %-14s switches voluntary %6.3f involuntary %6.3f\n", "(all)", tv, ti }'
        if [ "$BENCH_TURNS_STRACE" != 0 ]; then
            strace -c -f -p "$pid" -o "$TMP/strace.$t.$c" 2>/dev/null &
            sp=$!
            sleep 1 # strace attaches to every thread
            load "$t" "$c" "$N" "$TMP/$t.$c.sout"
            kill -INT "$sp"
            wait "$sp" 2>/dev/null || true
            awk -v n="$N" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
                    calls = $4; name = $NF
                    if (name == "total") { printf "  syscalls/request (all) %.2f\n", calls / n; next }
                    if (calls / n >= 0.05) printf "  syscalls/request %-16s %6.2f\n", name, calls / n }' \
                "$TMP/strace.$t.$c"
        fi
        if [ -n "${BENCH_TURNS_PERF:-}" ]; then
            mkdir -p "$BENCH_TURNS_PERF"
            perf record -q -g -F 2999 -p "$pid" -o "$BENCH_TURNS_PERF/$t.$c.perf" 2>/dev/null &
            sp=$!
            sleep 1
            load "$t" "$c" "$N" "$TMP/$t.$c.pout"
            kill -INT "$sp"
            wait "$sp" 2>/dev/null || true
        fi
    done
    stop_session "${SID[$t]}"
done

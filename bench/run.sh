#!/bin/sh
# make bench: outpostd's throughput against the bare ceiling (bench-ceiling,
# the same libuv + codec with no Lua), both over unix sockets on this machine.
#
# Runs are interleaved (ceiling, outpostd, ceiling, outpostd, ...) so that a
# drift of the machine (another job, thermal throttling) hits both targets
# alike, and every number is the median over rounds.  Every run is bounded:
# loadgen stops after BENCH_SECONDS, and every wait below has a limit.
#
# Knobs (environment):
#   BENCH_SECONDS  measured seconds of each run (default 5)
#   BENCH_ROUNDS   rounds over all (conns, target) pairs (default 2)
#   BENCH_WARMUP   unmeasured seconds before each run (default 0.5)
#   BENCH_CONNS    connection counts (default "1 8 64")
#   BENCH_OUTPOSTD the daemon to measure (default build/outpostd)
#
# Without that binary only the ceiling is measured (and said so).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-0.5}
BENCH_CONNS=${BENCH_CONNS:-1 8 64}
LOADGEN=build/rel/bench-loadgen
CEILING=build/rel/bench-ceiling
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
STARTUP_TRIES=200 # x 0.1 s: time a server gets to accept and answer
STOP_TRIES=150    # x 0.1 s: time a server gets to exit after SIGTERM

die() {
    echo "bench: $*" >&2
    exit 1
}

is_number() { # a decimal like 5 or 0.5
    echo "$1" | grep -Eq '^[0-9]+(\.[0-9]+)?$'
}
if ! is_number "$BENCH_SECONDS" || ! awk -v x="$BENCH_SECONDS" 'BEGIN { exit !(x + 0 > 0) }'; then
    die "BENCH_SECONDS=$BENCH_SECONDS: want a number of seconds > 0"
fi
is_number "$BENCH_WARMUP" || die "BENCH_WARMUP=$BENCH_WARMUP: want a number of seconds"
echo "$BENCH_ROUNDS" | grep -Eq '^[1-9][0-9]*$' || die "BENCH_ROUNDS=$BENCH_ROUNDS: want an integer >= 1"
for c in $BENCH_CONNS; do
    echo "$c" | grep -Eq '^[1-9][0-9]*$' || die "BENCH_CONNS=\"$BENCH_CONNS\": want integers >= 1"
done
for b in "$LOADGEN" "$CEILING"; do
    [ -x "$b" ] || die "$b is missing: run 'make bench' (it builds first)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench.XXXXXX")
PIDS=""

# /proc/PID/stat state letter, empty when the process is gone.  The command
# name may contain spaces: the state follows the last ") ".
proc_state() {
    sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true
}

alive() {
    st=$(proc_state "$1")
    [ -n "$st" ] && [ "$st" != Z ]
}

# SIGTERM, a bounded wait, then SIGKILL.  Sets STOP_STATUS to the exit status.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    i=0
    while alive "$1" && [ $i -lt $STOP_TRIES ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if alive "$1"; then
        echo "bench: pid $1 still running $((STOP_TRIES / 10)) s after SIGTERM: SIGKILL" >&2
        kill -KILL "$1" 2>/dev/null || true
    fi
    STOP_STATUS=0
    wait "$1" 2>/dev/null || STOP_STATUS=$?
    PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ' || true)
}

cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    for pid in $(echo "$PIDS" | tr ' ' '\n' | tac); do # loadgen before servers
        stop_pid "$pid"
    done
    case $rc in
    0 | 129 | 130 | 143) rm -rf "$TMP" ;; # done, or interrupted on purpose
    *) echo "bench: failed; logs kept in $TMP" >&2 ;;
    esac
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Runs "$@" in the background and waits for it: a signal to this script is
# then handled at once (a foreground child would be waited for first), and
# the cleanup stops the child by PID.  Sets CHILD_STATUS.
run_child() {
    "$@" &
    child=$!
    PIDS="$PIDS $child"
    CHILD_STATUS=0
    wait "$child" || CHILD_STATUS=$?
    PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$child" | tr '\n' ' ' || true)
}

show_log() {
    echo "--- $1 (last lines)" >&2
    tail -n 20 "$1" >&2 || true
}

# Waits until the socket accepts, then checks that one request is answered
# DUNNO: a benchmark of a server that answers wrong would be meaningless.
check_ready() { # name socket pid log
    i=0
    while [ $i -lt $STARTUP_TRIES ]; do
        if ! alive "$3"; then
            show_log "$4"
            die "$1 exited during startup"
        fi
        CHILD_STATUS=1
        [ -S "$2" ] && run_child "$LOADGEN" --unix "$2" -c 1 -n 1 -d 5 --warmup 0 --quiet \
            >"$TMP/check.out" 2>"$TMP/check.err"
        if [ "$CHILD_STATUS" = 0 ]; then
            if grep -qx 'action 1 DUNNO' "$TMP/check.out"; then
                echo "check: $1 answers DUNNO"
                return 0
            fi
            cat "$TMP/check.out" >&2
            die "$1 does not answer DUNNO"
        fi
        sleep 0.1
        i=$((i + 1))
    done
    cat "$TMP/check.out" "$TMP/check.err" >&2 2>/dev/null || true
    show_log "$4"
    die "$1 does not answer on $2 after $((STARTUP_TRIES / 10)) s"
}

cpus=$(nproc)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$model" ] || model=$(uname -m)
echo "machine: $cpus CPUs, $model, Linux $(uname -r) (loadgen and server share them)"
echo "runs: ${BENCH_SECONDS} s each after ${BENCH_WARMUP} s warmup, $BENCH_ROUNDS rounds, connections: $BENCH_CONNS, unix sockets"

# --- start the servers
"$CEILING" --unix "$TMP/ceiling.sock" >"$TMP/ceiling.log" 2>&1 &
CEILING_PID=$!
PIDS="$PIDS $CEILING_PID"
TARGETS="ceiling"

if [ -x "$OUTPOSTD" ]; then
    mkdir -p "$TMP/state"
    sed -e "s|@DIR@|$TMP|g" -e "s|@LUA@|$ROOT/lua|g" bench/outpost-bench.conf >"$TMP/outpost-bench.conf"
    "$OUTPOSTD" -c "$TMP/outpost-bench.conf" >"$TMP/outpostd.log" 2>&1 &
    OUTPOSTD_PID=$!
    PIDS="$PIDS $OUTPOSTD_PID"
    TARGETS="ceiling outpostd"
else
    echo "NOTE: $OUTPOSTD not found: benching the ceiling only"
fi

check_ready ceiling "$TMP/ceiling.sock" "$CEILING_PID" "$TMP/ceiling.log"
if [ -n "${OUTPOSTD_PID:-}" ]; then
    check_ready outpostd "$TMP/outpostd.sock" "$OUTPOSTD_PID" "$TMP/outpostd.log"
fi

# --- the runs: rounds outermost, so each round samples every pair once
: >"$TMP/results"
round=1
while [ $round -le "$BENCH_ROUNDS" ]; do
    for conns in $BENCH_CONNS; do
        for target in $TARGETS; do
            if [ "$target" = ceiling ]; then
                pid=$CEILING_PID log="$TMP/ceiling.log"
            else
                pid=$OUTPOSTD_PID log="$TMP/outpostd.log"
            fi
            out="$TMP/run-$target-$conns-$round"
            run_child "$LOADGEN" --unix "$TMP/$target.sock" -c "$conns" -d "$BENCH_SECONDS" \
                --warmup "$BENCH_WARMUP" --quiet --server-pid "$pid" >"$out.out" 2>"$out.err"
            if [ "$CHILD_STATUS" != 0 ]; then
                cat "$out.out" "$out.err" >&2
                show_log "$log"
                die "$target at $conns connections: errors or dropped requests"
            fi
            alive "$pid" || { show_log "$log"; die "$target died during the run"; }
            cpu=$(sed -n 's/^server_cpu_s=//p' "$out.out")
            summary=$(tail -n 1 "$out.out")
            echo "$target $conns $round cpu=$cpu $summary" >>"$TMP/results"
            echo "$summary" | awk -v t="$target" -v c="$conns" -v r="$round" -v n="$BENCH_ROUNDS" '{
                for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                printf "round %d/%d  %-8s %4d conns  %8d req/s  p50 %6d us  p99 %6d us\n",
                       r, n, t, c, v["rps"], v["p50_us"], v["p99_us"]
            }'
        done
    done
    round=$((round + 1))
done

# --- peak memory, then stop the servers (a clean exit is part of the test)
RSS=""
for target in $TARGETS; do
    if [ "$target" = ceiling ]; then pid=$CEILING_PID; else pid=$OUTPOSTD_PID; fi
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    RSS="$RSS $target=$hwm"
done
for target in $TARGETS; do
    if [ "$target" = ceiling ]; then pid=$CEILING_PID; else pid=$OUTPOSTD_PID; fi
    stop_pid "$pid"
    if [ "$STOP_STATUS" != 0 ]; then
        show_log "$TMP/$target.log"
        die "$target exited with status $STOP_STATUS after SIGTERM"
    fi
done

# --- the table: medians over rounds; max_us is the maximum over rounds
echo
awk -v conns_list="$BENCH_CONNS" -v targets="$TARGETS" -v rss="$RSS" '
function median(arr, n,    i, j, x, s) {
    for (i = 1; i <= n; i++) s[i] = arr[i]
    for (i = 2; i <= n; i++) {
        x = s[i]
        for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]
        s[j + 1] = x
    }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
{
    for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = $1 SUBSEP $2
    n[k]++
    rps[k, n[k]] = v["rps"] + 0; p50[k, n[k]] = v["p50_us"] + 0; p99[k, n[k]] = v["p99_us"] + 0
    cpu1k[k, n[k]] = v["requests"] > 0 ? v["cpu"] * 1000 / v["requests"] : 0
    if (!(k in mx) || v["max_us"] + 0 > mx[k]) mx[k] = v["max_us"] + 0
}
END {
    nc = split(conns_list, cl, " "); nt = split(targets, tl, " ")
    printf "%-9s %6s %10s %8s %8s %8s %10s\n", "target", "conns", "req/s", "p50_us", "p99_us", "max_us", "cpu_s/1k"
    for (ci = 1; ci <= nc; ci++) for (ti = 1; ti <= nt; ti++) {
        k = tl[ti] SUBSEP cl[ci]; m = n[k]
        for (r = 1; r <= m; r++) { a1[r] = rps[k, r]; a2[r] = p50[k, r]; a3[r] = p99[k, r]; a4[r] = cpu1k[k, r] }
        med[k] = median(a1, m)
        printf "%-9s %6d %10.0f %8.0f %8.0f %8d %10.4f\n", tl[ti], cl[ci], med[k],
               median(a2, m), median(a3, m), mx[k], median(a4, m)
    }
    if (nt > 1) {
        # Per round, of two runs seconds apart, so that a slow drift of the
        # machine cancels out; then the median over rounds.
        printf "\nratio outpostd/ceiling req/s (median of per-round ratios):"
        for (ci = 1; ci <= nc; ci++) {
            kc = "ceiling" SUBSEP cl[ci]; ko = "outpostd" SUBSEP cl[ci]; m = n[kc]
            for (r = 1; r <= m; r++) a1[r] = rps[kc, r] > 0 ? rps[ko, r] / rps[kc, r] : 0
            printf "  %d conns %.2f", cl[ci], median(a1, m)
        }
        printf "\n"
    }
    printf "\npeak RSS (VmHWM):"
    nr = split(rss, rl, " ")
    for (i = 1; i <= nr; i++) { split(rl[i], kv, "="); printf "  %s %.1f MiB", kv[1], kv[2] / 1024 }
    printf "\n"
    print "cpu_s/1k = server CPU seconds (user+sys) per 1,000 requests, during the measured window"
}' "$TMP/results"

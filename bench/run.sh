#!/bin/bash
# make bench: outpostd against the protocol's ceiling and the policy servers
# admins use today, in one run, over TCP on loopback (docs/performance.md).
#
# Targets (bench/targets.sh): bench-ceiling; outpostd with a DUNNO policy;
# outpostd with the full postout policy, caches warm and caches off, and
# warm with the metrics endpoint scraped every second (postout-metrics);
# postfwd; policyd-rate-limit with SQLite on disk and on tmpfs.  Each runs
# as a private process in a session of its own on a port of the harness's
# port plan (OUTPOST_PORT_BASE + 70..89) and is checked before it is timed
# (its limit bites at the configured count).
#
# Runs are interleaved: round r, for each connection count, every target
# once (A B C ... A B C ...), so a drift of the machine hits all alike; the
# table shows medians over rounds, ratios are medians of per-round ratios.
# Every run is bounded (loadgen stops after BENCH_SECONDS; every wait has a
# limit); every server is stopped by PID on exit, also on failure.
#
# Knobs (environment):
#   BENCH_SECONDS       measured seconds of each run (default 4)
#   BENCH_ROUNDS        rounds (default 2)
#   BENCH_WARMUP        unmeasured seconds before each run (default 0.5)
#   BENCH_CONNS         connection counts (default "1 8 64")
#   BENCH_TARGETS       which targets (default: all)
#   BENCH_FILL_SECONDS  unmeasured load that fills postout's caches (default 3)
#   BENCH_OUTPOSTD      the daemon to measure (default build/outpostd)
#   BENCH_BASELINE      a checkout of another commit, built (make
#                       build/outpostd there): adds postout-base and
#                       mailout-base, its daemon and lua/ with the -warm
#                       targets' setup, and prints this build's req/s over
#                       the baseline's per round (docs/performance.md)
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_SECONDS=${BENCH_SECONDS:-4}
BENCH_ROUNDS=${BENCH_ROUNDS:-2}
BENCH_WARMUP=${BENCH_WARMUP:-0.5}
BENCH_CONNS=${BENCH_CONNS:-1 8 64}
BENCH_FILL_SECONDS=${BENCH_FILL_SECONDS:-3}
ALL_TARGETS="ceiling trivial postout-warm postout-metrics postout-redis postout-cold mailout-warm mailout-cold appout-warm appout-cold postfwd prl-disk prl-tmpfs"
if [ -n "${BENCH_BASELINE:-}" ]; then
    [ -x "$BENCH_BASELINE/build/outpostd" ] || { echo "bench: BENCH_BASELINE=$BENCH_BASELINE has no build/outpostd" >&2; exit 1; }
    ALL_TARGETS="$ALL_TARGETS postout-base mailout-base"
fi
BENCH_TARGETS=${BENCH_TARGETS:-$ALL_TARGETS}
# Not in the default set: postout and mailout warm under each daemon {
# lua_jit } mode (bench/targets.sh).
ALL_TARGETS="$ALL_TARGETS postout-jit-no postout-jit-yes postout-jit-lib mailout-jit-no mailout-jit-yes mailout-jit-lib"
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
LOADGEN=build/rel/bench-loadgen
CEILING=build/rel/bench-ceiling
KEYS=1000 # the load: user0..user999@example.org, all in the harness directory

# shellcheck source=bench/lib.sh
. bench/lib.sh

echo "$BENCH_SECONDS" | grep -Eq '^[0-9]+(\.[0-9]+)?$' || die "BENCH_SECONDS=$BENCH_SECONDS: want seconds"
echo "$BENCH_WARMUP" | grep -Eq '^[0-9]+(\.[0-9]+)?$' || die "BENCH_WARMUP=$BENCH_WARMUP: want seconds"
echo "$BENCH_ROUNDS" | grep -Eq '^[1-9][0-9]*$' || die "BENCH_ROUNDS=$BENCH_ROUNDS: want an integer >= 1"
for c in $BENCH_CONNS; do
    echo "$c" | grep -Eq '^[1-9][0-9]*$' || die "BENCH_CONNS=\"$BENCH_CONNS\": want integers >= 1"
done
for t in $BENCH_TARGETS; do
    [[ " $ALL_TARGETS " == *" $t "* ]] || die "BENCH_TARGETS: unknown target $t (known: $ALL_TARGETS)"
done
for b in "$LOADGEN" "$CEILING" "$OUTPOSTD" build/outpostctl; do
    [ -x "$b" ] || die "$b is missing: run 'make bench' (it builds first)"
done
for p in postfwd1 policyd-rate-limit; do
    command -v "$p" >/dev/null || die "$p is missing: bench/deps.sh installs it"
done

# State on disk (the bench's own directory under build/) and on tmpfs.
bench_cleanup_more() { [ -n "${SHM:-}" ] && rm -rf "$SHM"; }
bench_setup bench bench
SHM=$(mktemp -d /dev/shm/outpost-bench.XXXXXX)
chmod 755 "$TMP" "$SHM"
PORT_BASE=$OUTPOST_PORT_BASE

# shellcheck source=bench/targets.sh
. bench/targets.sh

fs_of() { stat -f -c %T "$1"; }
say "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "runs: ${BENCH_SECONDS} s after ${BENCH_WARMUP} s warmup, $BENCH_ROUNDS rounds, connections: $BENCH_CONNS, TCP on 127.0.0.1"
say "state: $TMP ($(fs_of "$TMP")), $SHM ($(fs_of "$SHM"))"

for t in $BENCH_TARGETS; do
    "start_$t"
done
for t in $BENCH_TARGETS; do
    for attempt in 1 2 3; do
        log=$(find "$TMP/$t" "$TMP/$t.log" "$SHM/$t" -maxdepth 1 -name '*.log' 2>/dev/null | head -n 1 || true)
        wait_port "${PORT[$t]}" "${SID[$t]}" "${log:-/dev/null}" && break
        [ $attempt -lt 3 ] || die "$t did not start (log $log)"
        say "bench: $t exited during startup; starting it again"
        stop_session "${SID[$t]}"
        sleep 1
        "start_$t"
    done
    "check_$t"
done

# run TARGET CONNS SECONDS WARMUP OUT: one loadgen run; every answer must
# accept (DUNNO): a refusal is cheaper, so it would flatter the server.
run() {
    local t=$1 out=$5 scraper=
    if [ "$t" = postout-metrics ]; then
        # a scrape a second for as long as the run (bounded by its count)
        local n
        n=$(awk -v d="$3" -v w="$4" 'BEGIN { printf "%d", d + w + 1 }')
        (for ((i = 0; i < n; i++)); do
            curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$METRICS_BENCH_PORT/metrics"
            sleep 1
        done) &
        scraper=$!
    fi
    if ! "$LOADGEN" --tcp "127.0.0.1:${PORT[$t]}" -c "$2" -d "$3" --warmup "$4" --keys "$KEYS" \
        --recipient-domain bench.test ${LOADOPTS[$t]:-} --connect-batch 1 --ramp --quiet --server-session "${SID[$t]}" >"$out" 2>&1; then
        cat "$out" >&2
        die "$t at $2 connections: errors or dropped requests"
    fi
    if grep '^action ' "$out" | grep -Evq ' (DUNNO|dunno)$'; then
        grep '^action ' "$out" >&2
        die "$t at $2 connections: answers other than DUNNO"
    fi
    [ -z "$scraper" ] || wait "$scraper"
    sid_alive "${SID[$t]}" || die "$t died during the run"
}

for t in $BENCH_TARGETS; do
    case $t in postout-warm | postout-metrics | postout-redis | mailout-warm | appout-warm | postout-base | mailout-base | *-jit-*)
        run "$t" 64 "$BENCH_FILL_SECONDS" 0 "$TMP/fill-$t.out"
        say "fill: $t: $(sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$TMP/fill-$t.out") requests in ${BENCH_FILL_SECONDS} s over $KEYS users (unmeasured; fills the LDAP and DNS caches)"
        ;;
    esac
done

# postout-redis's CPU split: redis-server's CPU ticks and its EVALSHA/EVAL
# calls and their usec (INFO commandstats), read before and after a run
# (warmup included, both alike): "ticks calls usec".
redis_probe() {
    local pid stats
    pid=$(redis-cli -p "$REDIS_BENCH_PORT" INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
    stats=$(redis-cli -p "$REDIS_BENCH_PORT" INFO commandstats 2>/dev/null | tr -d '\r')
    sed 's/.*) //' "/proc/${pid:-0}/stat" 2>/dev/null | awk -v s="$stats" '{ t = $12 + $13 } END {
        n = split(s, l, "\n"); c = 0; u = 0
        for (i = 1; i <= n; i++) if (l[i] ~ /^cmdstat_eval(sha)?:/) {
            match(l[i], /calls=[0-9]+/); c += substr(l[i], RSTART + 6, RLENGTH - 6)
            match(l[i], /usec=[0-9]+/); u += substr(l[i], RSTART + 5, RLENGTH - 5)
        }
        print t + 0, c, u }'
}

: >"$TMP/results"
for round in $(seq "$BENCH_ROUNDS"); do
    for conns in $BENCH_CONNS; do
        for t in $BENCH_TARGETS; do
            out=$TMP/run-$t-$conns-$round.out
            [ "$t" != postout-redis ] || before=$(redis_probe)
            run "$t" "$conns" "$BENCH_SECONDS" "$BENCH_WARMUP" "$out"
            line="$t $conns $round cpu=$(sed -n 's/^server_cpu_s=//p' "$out") $(tail -n 1 "$out")"
            echo "$line" >>"$TMP/results"
            echo "$line" | awk -v n="$BENCH_ROUNDS" '{
                for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                printf "round %d/%d  %-13s %4d conns %8d req/s  p50 %7d us  p99 %7d us  cpu %6.1f ms/1k\n", $3, n, $1, $2, v["rps"], v["p50_us"], v["p99_us"], (v["requests"] > 0 ? v["cpu"] * 1e6 / v["requests"] : 0)
            }'
            if [ "$t" = postout-redis ]; then
                # redis-server's share: CPU per script call, and the script's own time in it
                # (a call carries the operations of one loop turn of
                # outpostd: per request, the CPU of warmup and run over the
                # run's requests scaled to the warmup's length too)
                echo "$before $(redis_probe) $(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")" |
                    awk -v hz="$(getconf CLK_TCK)" -v s="$BENCH_SECONDS" -v w="$BENCH_WARMUP" '$5 > $2 {
                    r = $7 * (s + w) / s
                    printf "           redis-server: %d calls, %.1f us CPU per call (INFO commandstats usec_per_call %.1f); %.1f requests per call, %.1f us CPU per request\n",
                        $5 - $2, ($4 - $1) * 1e6 / hz / ($5 - $2), ($6 - $3) / ($5 - $2),
                        r / ($5 - $2), (r > 0 ? ($4 - $1) * 1e6 / hz / r : 0) }'
            fi
        done
    done
done

: >"$TMP/rss"
for t in $BENCH_TARGETS; do
    echo "$t $(session_hwm "${SID[$t]}") $(session_pids "${SID[$t]}" | wc -l)" >>"$TMP/rss"
done
stop_all_sessions

echo
bench/table.awk -v conns_list="$BENCH_CONNS" -v targets="$BENCH_TARGETS" "$TMP/rss" "$TMP/results"
# This build against the baseline: per round, warm req/s over the
# baseline's (the two ran seconds apart), and the median of those.
if [ -n "${BENCH_BASELINE:-}" ]; then
    echo
    say "this build / baseline ($BENCH_BASELINE, $(git -C "$BENCH_BASELINE" log -1 --format=%h 2>/dev/null || echo '?')), req/s per round:"
    for s in postout mailout; do
        for conns in $BENCH_CONNS; do
            awk -v a="$s-warm" -v b="$s-base" -v c="$conns" '
                $2 == c { for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "rps") r[$1, $3] = kv[2] } rounds[$3] = 1 }
                END {
                    line = ""
                    for (k in rounds) if (r[b, k] > 0) { x = r[a, k] / r[b, k]; line = line sprintf(" %.3f", x) }
                    printf "  %-8s %4d conns:%s\n", substr(a, 1, 7), c, line
                }' "$TMP/results"
        done
    done
fi

echo
say "durability of the counters:"
for t in $BENCH_TARGETS; do printf '  %-13s %s\n' "$t" "${DURABLE[$t]}"; done
say "targets:"
for t in $BENCH_TARGETS; do printf '  %-13s %s\n' "$t" "${DESCR[$t]}"; done

#!/bin/bash
# Instructions per request of postout-warm and mailout-warm under each
# daemon { lua_jit } mode, counted by valgrind's callgrind: a measure that,
# unlike CPU time and req/s, does not move with what else the machine runs
# (docs/performance.md, "The JIT's place").  perf's hardware counters would
# be cheaper, but a VM often has none (perf stat: instructions <not
# supported>).
#
# For each target (bench/targets.sh's -jit-MODE ones): outpostd runs under
# callgrind, is checked, its caches are filled with BENCH_INSTR_FILL
# requests over the load's 1,000 users, the counters are zeroed
# (callgrind_control -z), BENCH_INSTR_REQUESTS requests run on
# BENCH_INSTR_CONNS connections, and the counters are dumped: their total
# over the requests is the figure.  Every answer must be DUNNO.  Slow (about
# 50 times slower than the daemon alone) but bounded: loadgen stops after
# its count or 300 s.
#
# Knobs: BENCH_INSTR_TARGETS (default: postout and mailout, each mode; also
# trivial, postout-warm, mailout-warm and appout-warm, which run the
# daemon's default lua_jit as bench/run.sh's targets of those names do),
# BENCH_INSTR_REQUESTS (3000), BENCH_INSTR_FILL (3000), BENCH_INSTR_CONNS (8:
# the count per request at 1 connection includes what is paid per turn of
# the loop, which more connections share), BENCH_INSTR_OUTPOSTD (the daemon
# counted, default build/outpostd: another commit's build, run with this
# tree's lua/),
# BENCH_INSTR_KEEP (a directory that gets each target's callgrind dump, as
# TARGET.callgrind, for callgrind_annotate).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_INSTR_TARGETS=${BENCH_INSTR_TARGETS:-postout-jit-no postout-jit-yes postout-jit-lib mailout-jit-no mailout-jit-yes mailout-jit-lib}
BENCH_INSTR_REQUESTS=${BENCH_INSTR_REQUESTS:-3000}
BENCH_INSTR_FILL=${BENCH_INSTR_FILL:-3000}
BENCH_INSTR_CONNS=${BENCH_INSTR_CONNS:-8}
LOADGEN=build/rel/bench-loadgen
CEILING=build/rel/bench-ceiling
KEYS=1000

# shellcheck source=bench/lib.sh
. bench/lib.sh

command -v valgrind >/dev/null && command -v callgrind_control >/dev/null \
    || die "valgrind is missing: scripts/deps.sh valgrind"
for n in "$BENCH_INSTR_REQUESTS" "$BENCH_INSTR_FILL" "$BENCH_INSTR_CONNS"; do
    echo "$n" | grep -Eq '^[1-9][0-9]*$' || die "BENCH_INSTR_*: want integers >= 1, got $n"
done
for b in "$LOADGEN" build/outpostd build/outpostctl; do
    [ -x "$b" ] || die "$b is missing: make build/outpostd build/outpostctl $LOADGEN"
done

bench_setup "bench instructions" bench-instr
SHM=$TMP
PORT_BASE=$OUTPOST_PORT_BASE
# The daemon as targets.sh starts it, under callgrind (OUTPOSTD is relative
# to ROOT there).
cat >"$TMP/outpostd" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="\$(dirname "\$2")/callgrind.out" "${BENCH_INSTR_OUTPOSTD:-$ROOT/build/outpostd}" "\$@"
EOF
chmod +x "$TMP/outpostd"
OUTPOSTD=${TMP#"$ROOT"/}/outpostd
# shellcheck source=bench/targets.sh
. bench/targets.sh

load() { # target count out
    # shellcheck disable=SC2086  # LOADOPTS holds several options
    "$LOADGEN" --tcp "127.0.0.1:${PORT[$1]}" -c "$BENCH_INSTR_CONNS" -n "$2" -d 300 --warmup 0 \
        --keys "$KEYS" --recipient-domain bench.test ${LOADOPTS[$1]:-} --quiet >"$3" 2>&1 \
        || { cat "$3" >&2; die "$1: errors or dropped requests"; }
    if grep '^action ' "$3" | grep -Evq ' DUNNO$'; then
        grep '^action ' "$3" >&2
        die "$1: answers other than DUNNO (a deadline under valgrind?)"
    fi
}

say "machine: $(nproc) CPUs, Linux $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "instructions per request (callgrind), $BENCH_INSTR_REQUESTS requests on $BENCH_INSTR_CONNS connections after $BENCH_INSTR_FILL that fill the caches"
printf '%-16s %8s %14s\n' target lua_jit instr/request
for t in $BENCH_INSTR_TARGETS; do
    case $t in
    trivial | postout-warm | mailout-warm | appout-warm) ;;
    *) [ -n "${LUA_JIT[$t]:-}" ] || die "BENCH_INSTR_TARGETS: $t is neither trivial, postout-warm, mailout-warm, appout-warm nor a -jit-MODE target ($JIT_TARGETS)" ;;
    esac
    "start_$t"
    for _i in $(seq 600); do
        ss -Hltn "( sport = :${PORT[$t]} )" 2>/dev/null | grep -q . && break
        sid_alive "${SID[$t]}" || die "$t exited at start (log $TMP/$t/outpostd.log)"
        sleep 0.1
    done
    "check_$t" >/dev/null
    load "$t" "$BENCH_INSTR_FILL" "$TMP/$t/fill.out"
    callgrind_control -z "${SID[$t]}" >/dev/null 2>&1
    load "$t" "$BENCH_INSTR_REQUESTS" "$TMP/$t/run.out"
    callgrind_control -d "${SID[$t]}" >/dev/null 2>&1
    sleep 1
    dump=$(ls -t "$TMP/$t"/callgrind.out* | head -n 1)
    [ -n "${BENCH_INSTR_KEEP:-}" ] && mkdir -p "$BENCH_INSTR_KEEP" && cp "$dump" "$BENCH_INSTR_KEEP/$t.callgrind"
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")
    printf '%-16s %8s %14.0f\n' "$t" "${LUA_JIT[$t]:-default}" "$(echo "$ir / $BENCH_INSTR_REQUESTS" | bc -l)"
    stop_session "${SID[$t]}"
done

#!/bin/bash
# make bench-jit: where LuaJIT's traces stop on the warm per-request path,
# and where the Lua time goes (docs/performance.md, "Traces").
#
# For each target (postout-warm and mailout-warm by default, the setups of
# bench/targets.sh) one outpostd runs with the JIT on (daemon { lua_jit },
# BENCH_LUA_JIT, default yes) and LuaJIT's own jit.v (one line per trace
# compiled or aborted) and jit.p (a sampling profiler with the VM's states:
# interpreted, compiled, C, GC, JIT compiler), loaded by the daemon from
# OUTPOST_LUAJIT_TOOLS (engine/core/vm.c).  The target is checked, its
# caches filled, then it is reloaded (SIGHUP): the tools start in the new
# generation's state (OUTPOST_LUAJIT_TOOLS_GEN=2), so what they write covers
# the warm state only
# (the new state compiles its traces afresh; the LDAP, DNS and counter
# caches are the C core's and stay warm).  After BENCH_JIT_SECONDS of load
# it is stopped (SIGTERM), and jit.p writes its report as the generation
# closes.
#
# Prints, per target: the trace aborts grouped by reason and source
# location with counts (C functions named from the binary's symbols), the
# number of traces compiled, and the profile.  Every run is bounded; every
# server is stopped by PID.
#
# Knobs (environment):
#   BENCH_JIT_TARGETS   targets (default "postout-warm mailout-warm")
#   BENCH_JIT_SECONDS   measured load per target (default 6)
#   BENCH_JIT_CONNS     connections of the load (default 8)
#   BENCH_JIT_PROFILE   jit.p's mode (default vFi1m2: VM states, then the
#                       functions within each; see jit/p.lua's header)
#   BENCH_LUA_JIT       daemon { lua_jit } of the targets (default yes)
#   BENCH_FILL_SECONDS  load that fills the caches before the reload (3)
#   BENCH_JIT_KEEP      a directory to copy the raw jit.v/jit.p files into
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH_JIT_TARGETS=${BENCH_JIT_TARGETS:-postout-warm mailout-warm}
BENCH_JIT_SECONDS=${BENCH_JIT_SECONDS:-6}
BENCH_JIT_CONNS=${BENCH_JIT_CONNS:-8}
BENCH_JIT_PROFILE=${BENCH_JIT_PROFILE:-vFi1m2}
BENCH_FILL_SECONDS=${BENCH_FILL_SECONDS:-3}
export BENCH_LUA_JIT=${BENCH_LUA_JIT:-yes}
OUTPOSTD=${BENCH_OUTPOSTD:-build/outpostd}
LOADGEN=build/rel/bench-loadgen
CEILING=build/rel/bench-ceiling
KEYS=1000

# shellcheck source=bench/lib.sh
. bench/lib.sh

for t in $BENCH_JIT_TARGETS; do
    case $t in postout-warm | mailout-warm | appout-warm | trivial) ;;
    *) die "BENCH_JIT_TARGETS: $t is not an outpostd target (postout-warm mailout-warm appout-warm trivial)" ;;
    esac
done
echo "$BENCH_JIT_SECONDS" | grep -Eq '^[0-9]+(\.[0-9]+)?$' || die "BENCH_JIT_SECONDS=$BENCH_JIT_SECONDS: want seconds"
echo "$BENCH_JIT_CONNS" | grep -Eq '^[1-9][0-9]*$' || die "BENCH_JIT_CONNS=$BENCH_JIT_CONNS: want an integer >= 1"
for b in "$LOADGEN" "$OUTPOSTD" build/outpostctl; do
    [ -x "$b" ] || die "$b is missing: run 'make bench-jit' (it builds first)"
done
TOOLS_DIR=$(luajit -e 'for d in package.path:gmatch("[^;]+") do local f = d:gsub("%?", "jit/v") local h = io.open(f) if h then h:close() print((f:gsub("/v%.lua$", ""))) break end end')
[ -n "$TOOLS_DIR" ] || die "LuaJIT's jit/v.lua is not on luajit's package.path (Debian: package luajit)"

bench_setup "bench-jit" bench-jit
SHM=$TMP # targets.sh's tmpfs targets are not run here
chmod 755 "$TMP"
PORT_BASE=$OUTPOST_PORT_BASE
# shellcheck source=bench/targets.sh
. bench/targets.sh

# C:7f... in jit.v's lines (a lua_CFunction the trace could not call) ->
# its name, from the binary's symbols and where the running daemon mapped it.
name_c_functions() { # pid binary < lines
    local base
    base=$(awk -v b="$(readlink -f "$2")" '$6 == b { split($1, r, "-"); print r[1]; exit }' "/proc/$1/maps")
    awk -v base="$base" -v bin="$2" '
        function hex(s,   i, n, c) { n = 0; s = tolower(s); for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; n = n * 16 + c } return n }
        {
            line = $0
            while (match(line, /C:[0-9a-f]+/)) {
                a = substr(line, RSTART + 2, RLENGTH - 2)
                if (!(a in name)) {
                    cmd = sprintf("addr2line -f -e %s 0x%x", bin, hex(a) - hex(base))
                    cmd | getline fn; close(cmd)
                    name[a] = (fn == "??" || base == "") ? "C:" a : fn "()"
                }
                out = out substr(line, 1, RSTART - 1) name[a]
                line = substr(line, RSTART + RLENGTH)
            }
            print out line; out = ""
        }'
}

say "machine: $(nproc) CPUs, Linux $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "bench-jit: lua_jit = $BENCH_LUA_JIT, $BENCH_JIT_CONNS connections, ${BENCH_JIT_SECONDS} s warm after a reload, jit.p mode $BENCH_JIT_PROFILE, tools from $TOOLS_DIR"
for t in $BENCH_JIT_TARGETS; do
    dir=$TMP/$t
    OUTPOST_LUAJIT_TOOLS="v=$dir/jit-v-2.txt p=$BENCH_JIT_PROFILE,$dir/jit-p-2.txt" \
        OUTPOST_LUAJIT_TOOLS_GEN=2 "start_$t"
    wait_port "${PORT[$t]}" "${SID[$t]}" "$dir/outpostd.log" || die "$t did not start (log $dir/outpostd.log)"
    "check_$t"
    "$LOADGEN" --tcp "127.0.0.1:${PORT[$t]}" -c 64 -d "$BENCH_FILL_SECONDS" --warmup 0 --keys "$KEYS" \
        --recipient-domain bench.test ${LOADOPTS[$t]:-} --connect-batch 1 --ramp --quiet >"$TMP/fill-$t.out" 2>&1 \
        || { cat "$TMP/fill-$t.out" >&2; die "$t: the fill failed"; }
    kill -HUP "${SID[$t]}"
    for _i in $(seq 100); do
        grep -q 'generation 2 is current' "$dir/outpostd.log" && break
        sleep 0.1
    done
    grep -q 'generation 2 is current' "$dir/outpostd.log" || die "$t: the reload did not finish in 10 s"
    out=$TMP/run-$t.out
    "$LOADGEN" --tcp "127.0.0.1:${PORT[$t]}" -c "$BENCH_JIT_CONNS" -d "$BENCH_JIT_SECONDS" --warmup 0 --keys "$KEYS" \
        --recipient-domain bench.test ${LOADOPTS[$t]:-} --connect-batch 1 --ramp --quiet --server-pid "${SID[$t]}" >"$out" 2>&1 \
        || { cat "$out" >&2; die "$t: errors or dropped requests under the tools"; }
    if grep '^action ' "$out" | grep -Evq ' DUNNO$'; then
        grep '^action ' "$out" >&2
        die "$t: answers other than DUNNO"
    fi
    name_c_functions "${SID[$t]}" "$OUTPOSTD" <"$dir/jit-v-2.txt" | sed "s|$ROOT/||g" >"$dir/jit-v.txt"
    stop_session "${SID[$t]}"
    [ -s "$dir/jit-p-2.txt" ] || die "$t: jit.p wrote nothing (log $dir/outpostd.log)"
    echo
    say "== $t: $(sed -n 's/.*requests=\([0-9]*\).*rps=\([0-9]*\).*/\1 requests, \2 req\/s/p' "$out") under the tools (not a throughput figure)"
    say "traces compiled: $(grep -c '^\[TRACE *[0-9]' "$dir/jit-v.txt" || true), aborted: $(grep -c '^\[TRACE ---' "$dir/jit-v.txt" || true)"
    say "trace aborts by reason and where (count, reason, location; 'in' = where the trace started):"
    awk '
        /^\[TRACE ---/ {
            s = $0; sub(/^\[TRACE --- /, "", s); sub(/\]$/, "", s)
            sub(/^\([0-9]+\/[0-9a-z]+\) /, "", s)   # side trace: (parent/exit)
            i = index(s, " -- "); start = substr(s, 1, i - 1); rest = substr(s, i + 4)
            if (match(rest, / at [^ ]+$/)) { reason = substr(rest, 1, RSTART - 1); loc = substr(rest, RSTART + 4) }
            else { reason = rest; loc = start }
            n[reason "\t" loc " (in " start ")"]++
        }
        END { for (k in n) { split(k, f, "\t"); printf "%6d  %-48s %s\n", n[k], f[1], f[2] } }' "$dir/jit-v.txt" | sort -k1,1nr
    say "traces compiled, by how they end (stitch F: the trace stops at a call LuaJIT cannot compile, F, and another starts after it):"
    awk '
        /^\[TRACE *[0-9]/ {
            s = $0; sub(/^\[TRACE *[0-9]+ /, "", s); sub(/\]$/, "", s)
            sub(/^\([0-9]+\/[0-9a-z]+\) /, "", s)
            if (match(s, / -- fallback to interpreter$/)) end_ = "fallback to interpreter"
            else if (match(s, / stitch .*$/)) end_ = substr(s, RSTART + 1)
            else if (match(s, / -> [0-9]+.*$/)) end_ = "linked to another trace"
            else { n_ = split(s, w, " "); end_ = w[n_] }
            n[end_]++
        }
        END { for (k in n) printf "%6d  %s\n", n[k], k }' "$dir/jit-v.txt" | sort -k1,1nr
    say "profile (jit.p $BENCH_JIT_PROFILE, samples of the warm generation's Lua state):"
    sed "s|$ROOT/||g; s|^|  |" "$dir/jit-p-2.txt"
    if [ -n "${BENCH_JIT_KEEP:-}" ]; then
        mkdir -p "$BENCH_JIT_KEEP"
        cp "$dir/jit-v.txt" "$BENCH_JIT_KEEP/$t-jit-v.txt"
        cp "$dir/jit-p-2.txt" "$BENCH_JIT_KEEP/$t-jit-p.txt"
    fi
done

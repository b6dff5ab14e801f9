#!/bin/bash
# Builds the libFuzzer targets (clang) and runs each for a bounded time on
# its seed corpus: the two MTA codecs, the scanners' codecs, the metrics
# endpoint's HTTP codec, the config
# parser, the DKIM-Signature tag parser, the DKIM verifier on libopendkim
# and the Lua address
# parsers.  `make test` runs them briefly, `make fuzz` longer.
#   spec/fuzz/run.sh [SECONDS]      default 15 per target
set -u
cd "$(dirname "$0")/../.."
SECS=${1:-15}
OUT=build/fuzz
mkdir -p "$OUT"
passed=0
failed=0
CC=${FUZZ_CC:-clang-14}
if ! command -v "$CC" >/dev/null; then
    echo "not ok - $CC is missing (scripts/deps.sh installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi
LUAJIT_CFLAGS=$(pkg-config --cflags luajit)
LUAJIT_LIBS="$(pkg-config --libs luajit) -lidn2"
# NAME SOURCE [FILES AND FLAGS...]: builds build/fuzz/NAME and runs it on
# spec/fuzz/corpus/CORPUS (NAME without its fuzz_ and proto_).
run_target() {
    local name=$1 src=$2
    shift 2
    local bin=$OUT/$name
    # shellcheck disable=SC2068
    if ! "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iengine \
        "$src" $@ -o "$bin"; then
        echo "not ok - $name does not build"
        failed=$((failed + 1))
        return
    fi
    local short=${name#fuzz_}
    short=${short#proto_}
    local corpus=$OUT/corpus-$short
    mkdir -p "$corpus"
    cp spec/fuzz/corpus/"$short"/* "$corpus"/
    # -timeout: an input that takes seconds is a finding (a quadratic parse)
    if "$bin" -max_total_time="$SECS" -timeout=10 -print_final_stats=1 "$corpus" > "$OUT/$short.log" 2>&1; then
        local runs
        runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$OUT/$short.log")
        echo "ok - $name: ${runs:-?} inputs in ${SECS}s, no crash"
        passed=$((passed + 1))
    else
        echo "not ok - $name found a problem:"
        grep -E "ERROR|SUMMARY|Test unit written|invariant|raised|written back" "$OUT/$short.log" | head -5 | sed 's/^/#   /'
        failed=$((failed + 1))
    fi
}
run_target fuzz_proto_policy spec/fuzz/fuzz_proto_policy.c engine/proto/proto_policy.c engine/core/mem.c engine/core/log.c engine/core/log_format.c
run_target fuzz_proto_milter spec/fuzz/fuzz_proto_milter.c engine/proto/proto_milter.c
run_target fuzz_scan_codec spec/fuzz/fuzz_scan_codec.c engine/lookup/scan_codec.c
run_target fuzz_metrics_http spec/fuzz/fuzz_metrics_http.c engine/metrics/metrics_http.c
run_target fuzz_conf_parse spec/fuzz/fuzz_conf_parse.c engine/config/conf_parse.c engine/core/mem.c engine/core/log.c engine/core/log_format.c
run_target fuzz_dkim_sig spec/fuzz/fuzz_dkim_sig.c engine/lib/dkim_sig.c engine/lib/names.c -lidn2
run_target fuzz_dkim_verify spec/fuzz/fuzz_dkim_verify.c engine/lookup/dkim_verify.c engine/lib/dkim_sig.c \
    engine/lib/names.c engine/core/mem.c engine/core/log.c engine/core/log_format.c -lopendkim -lidn2
# shellcheck disable=SC2086
run_target fuzz_address spec/fuzz/fuzz_address.c engine/lib/names.c $LUAJIT_CFLAGS $LUAJIT_LIBS
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/bash
# Builds the libFuzzer targets (clang) and runs each for a bounded time on
# its seed corpus.  `make test` runs them briefly, `make fuzz` longer.
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
for target in policy:engine/proto/proto_policy.c:engine/core/mem.c:engine/core/log.c milter:engine/proto/proto_milter.c; do
    name=${target%%:*}
    srcs=$(echo "${target#*:}" | tr ':' ' ')
    bin=$OUT/fuzz_proto_$name
    # shellcheck disable=SC2086
    if ! "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iengine \
        "spec/fuzz/fuzz_proto_$name.c" $srcs -o "$bin"; then
        echo "not ok - fuzz_proto_$name does not build"
        failed=$((failed + 1))
        continue
    fi
    corpus=$OUT/corpus-$name
    mkdir -p "$corpus"
    cp spec/fuzz/corpus/$name/* "$corpus"/
    if "$bin" -max_total_time="$SECS" -print_final_stats=1 "$corpus" > "$OUT/$name.log" 2>&1; then
        runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$OUT/$name.log")
        echo "ok - fuzz_proto_$name: ${runs:-?} inputs in ${SECS}s, no crash"
        passed=$((passed + 1))
    else
        echo "not ok - fuzz_proto_$name found a problem:"
        grep -E "ERROR|SUMMARY|Test unit written" "$OUT/$name.log" | head -5 | sed 's/^/#   /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

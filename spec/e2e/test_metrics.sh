#!/bin/bash
# The Prometheus endpoint (metrics { listen }) and `outpostctl stats`:
# exact counts per check and class after a known sequence of requests, the
# histograms' _count, `promtool check metrics`, HTTP errors, scrapes
# answering during 64 connections of load, slow scrapers that do not slow
# requests, and stats without the endpoint.
. "$(dirname "$0")/lib.sh"
METRICS_PORT=${METRICS_PORT:-$((${OUTPOST_PORT_BASE:-43000} + 62))}
METRICS_TCP_PORT=${METRICS_TCP_PORT:-$((${OUTPOST_PORT_BASE:-43000} + 63))}
URL=http://127.0.0.1:$METRICS_PORT/metrics
CTL="$ROOT/build/outpostctl -s"
e2e_setup
e2e_config <<EOF
listener main {
    listen = unix:@T@/main.sock
    service = checks
    tenant = lrz
    allow_context = ["checks:ctx"]
}
listener load {
    listen = tcp:127.0.0.1:$METRICS_TCP_PORT
    service = checks
    tenant = load
}
service checks {
    deadline = 300ms
    default_action = "451 4.3.5 test default"
}
control {
    socket = @T@/control.sock
}
limit sent {
    max = 1000000
}
metrics {
    listen = tcp:127.0.0.1:$METRICS_PORT
    max_connections = 8
    timeout = 4s
}
EOF
e2e_policy checks <<'EOF'
local A = require "outpost.action"
local P = require "outpost.pipeline"
local outpost = require "outpost"
local limit = require "outpost.limit"
return P.service "checks" {
    P.check("X1", "reject", function(tx) if tx.sender == "r@test" then return A.reject("5.7.1", "no") end end),
    P.check("X2", "defer", function(tx) if tx.sender == "d@test" then return A.defer("4.7.1", "later") end end),
    P.check("X4", "counted", function(tx) limit.add("sent", tx.sender) end),
    P.check("X3", "slow or broken", function(tx)
        if tx.sender == "slow@test" then outpost.sleep(5) end
        if tx.sender == "err@test" then error("broken on purpose") end
    end),
}
EOF
e2e_start || exit 1
S=unix:$T/main.sock
scrape() { curl -s --max-time 5 "$URL"; }
# the value of the series named exactly $1 in $2 (a scrape), or "none"
value() { awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print "none" }' <<<"$2"; }
is() { # name scrape want
    local got
    got=$(value "$1" "$2")
    [ "$got" = "$3" ] || { echo "    $1: got $got, want $3"; return 1; }
}

# The known sequence: 3 rejects by X1, 2 defers by X2, 4 accepts, one
# deadline and one policy error (both the default action, 451: defer).
for s in r@test d@test a@test r@test b@test d@test c@test r@test e@test slow@test err@test; do
    $ASK "$S" "sender=$s" > /dev/null
done
M=$(scrape)
L='service="checks"'
check "requests by listener, service, tenant and protocol: 11" \
    is "outpost_requests_total{listener=\"main\",$L,tenant=\"lrz\",protocol=\"policy\"}" "$M" 11
check "answers of X1: 3 reject" is "outpost_answers_total{$L,check=\"X1\",class=\"reject\"}" "$M" 3
check "answers of X2: 2 defer" is "outpost_answers_total{$L,check=\"X2\",class=\"defer\"}" "$M" 2
check "answers of no check: 4 accept" is "outpost_answers_total{$L,check=\"-\",class=\"accept\"}" "$M" 4
check "the default actions: 2 defer by no check" is "outpost_answers_total{$L,check=\"-\",class=\"defer\"}" "$M" 2
check "default answers by cause: 1 deadline" is "outpost_default_answers_total{$L,cause=\"deadline\"}" "$M" 1
check "default answers by cause: 1 error" is "outpost_default_answers_total{$L,cause=\"error\"}" "$M" 1
check "the latency histogram's _count is the number of requests" \
    is "outpost_request_duration_seconds_count{$L}" "$M" 11
check "... and its +Inf bucket too" is "outpost_request_duration_seconds_bucket{$L,le=\"+Inf\"}" "$M" 11
check "the deadline's request is in no bucket below 0.25 s" \
    is "outpost_request_duration_seconds_bucket{$L,le=\"0.25\"}" "$M" 10
check "nothing in flight" is "outpost_requests_in_flight" "$M" 0
check "generation 1" is "outpost_generation" "$M" 1
check "the counters store wrote (limit.add of X4) and its histogram counts each write" bash -c \
    "[ '$(value 'outpost_store_writes_total{backend="rocksdb"}' "$M")' -ge 1 ] &&
     [ '$(value 'outpost_store_writes_total{backend="rocksdb"}' "$M")' = '$(value 'outpost_store_write_duration_seconds_count{backend="rocksdb"}' "$M")' ]"
no_addresses() { ! grep -qE '@test|127\.0\.0\.1' <<<"$M"; }
check "no label is an address or a user" no_addresses
promtool_clean() { # a non-empty scrape, and promtool has nothing to say (lint included)
    local m out
    m=$(scrape) && [ -n "$m" ] && out=$(promtool check metrics <<<"$m" 2>&1) && [ -z "$out" ] || { echo "    $out"; return 1; }
}
check "promtool check metrics is clean (the store's writes included)" promtool_clean
check "Content-Type is the text format 0.0.4" bash -c \
    "curl -s -o /dev/null -w '%{content_type}' '$URL' | grep -qx 'text/plain; version=0.0.4; charset=utf-8'"
check "another path: 404" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$METRICS_PORT/) = 404 ]"
check "another method: 405" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -X POST '$URL') = 405 ]"
check "garbage: 400, and closed" bash -c \
    "printf 'garbage\r\n\r\n' | $RAW tcp:127.0.0.1:$METRICS_PORT --wait 1 | grep 'HTTP/1.1 400 Bad Request' > /dev/null &&
     printf 'garbage\r\n\r\n' | $RAW tcp:127.0.0.1:$METRICS_PORT --wait 1 | grep -qx CLOSED"

kill -HUP "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do log_has "reload: generation 2 is current" && break; sleep 0.1; done
M=$(scrape)
check "a reload counts, and the generation follows" bash -c \
    "[ '$(value 'outpost_reloads_total{result="ok"}' "$M")' = 1 ] && [ '$(value outpost_generation "$M")' = 2 ]"

# outpostctl stats: the same numbers for a person, and as JSON.
ST=$($CTL "$T/control.sock" stats)
check "stats: the requests since start" grep -qE '^requests +11 ' <<<"$ST"
per_class() {
    grep -qE '^reject +3 ' <<<"$ST" && grep -qE '^defer +4 ' <<<"$ST" &&
        grep -qE '^accept +4 ' <<<"$ST" && grep -qE '^default +2 ' <<<"$ST"
}
top_x1() { grep -A1 'top refusing checks' <<<"$ST" | grep -qE '^ +3 +reject +checks +X1$'; }
check "stats: the answers per class" per_class
check "stats: X1 is the top refusing check" top_x1
check "stats: latency per service" grep -qE '^  checks +11 ' <<<"$ST"
check "stats: the counters store" grep -q 'counters store: ok' <<<"$ST"
check "stats --json: totals, top checks and the minute's rates" python3 -c "
import json, subprocess, sys
j = json.loads(subprocess.check_output(['$ROOT/build/outpostctl', '-s', '$T/control.sock', '--json', 'stats']))
assert j['totals'] == {'requests': 11, 'accept': 4, 'reject': 3, 'defer': 4, 'other': 0, 'default': 2}, j['totals']
assert j['top_refusing_checks'][0] == {'service': 'checks', 'check': 'X1', 'class': 'reject', 'answers': 3}, j['top_refusing_checks']
assert j['latency'][0]['requests'] == 11
assert j['per_second_last_minute'] is not None and j['per_second_last_minute']['requests'] > 0, j
assert j['counters_store'] == 'ok'
"

# 64 connections of load: a scrape still answers, in well under a second.
"$LOADGEN" --tcp "127.0.0.1:$METRICS_TCP_PORT" -c 64 -d 8 --warmup 0 --quiet > "$T/load.out" 2>&1 &
LOAD=$!
sleep 1
worst=0
for i in 1 2 3 4 5; do
    t=$(curl -s -o /dev/null --max-time 5 -w '%{time_total}' "$URL" || echo 99)
    worst=$(python3 -c "print(max($worst, $t))")
    sleep 0.5
done
wait "$LOAD"
echo "    scrapes under 64 connections: worst $worst s; load: $(tail -1 "$T/load.out")"
check "5 scrapes during 64 connections of load each answered within 1 s" \
    python3 -c "import sys; sys.exit(0 if $worst < 1.0 else 1)"
check "... and the load was served" grep -qE 'requests=[1-9][0-9]* errors=0 dropped=0' "$T/load.out"
M=$(scrape)
served=$(sed -nE 's/^requests=([0-9]+).*/\1/p' "$T/load.out")
check "the load's requests are counted on their listener (at least the measured ones)" python3 -c "
import sys; sys.exit(0 if int('$(value "outpost_requests_total{listener=\"load\",$L,tenant=\"load\",protocol=\"policy\"}" "$M")') >= ${served:-1} else 1)"

# Slow scrapers: they hold every metrics connection, one reading a byte a
# second; requests go on (no request waits on a scraper: the slowest
# answer stays far below the 4 s a scraper is held), outpostd spends no
# more CPU per request, and the timeout ends them.  The machine is shared
# (req/s of two runs seconds apart vary by half under load): the rates are
# printed, the asserts are on what a blocked loop would change.
run_load() { "$LOADGEN" --tcp "127.0.0.1:$METRICS_TCP_PORT" -c 8 -d 2 --warmup 0.2 --quiet --server-pid "$DAEMON_PID" > "$1"; }
field() { grep -oE "(^| )$1=[0-9.]+" "$2" | head -1 | sed 's/.*=//'; }
cpu_per_request() { python3 -c "print($(field server_cpu_s "$1") / max(1, $(field requests "$1")))"; }
run_load "$T/base.out"
SLOW=()
for i in 1 2 3 4 5 6 7; do
    python3 "$ROOT/spec/e2e/slowscrape.py" 127.0.0.1 "$METRICS_PORT" trickle 10 > "$T/slow$i.out" &
    SLOW+=($!)
done
python3 "$ROOT/spec/e2e/slowscrape.py" 127.0.0.1 "$METRICS_PORT" read 10 > "$T/slow8.out" &
SLOW+=($!)
sleep 0.5
check "a ninth scrape connection is closed at once (max_connections 8)" bash -c \
    "printf 'GET /metrics HTTP/1.1\r\n\r\n' | $RAW tcp:127.0.0.1:$METRICS_PORT --wait 1 | grep -qx CLOSED"
run_load "$T/slow.out"
sleep 4 # past the timeout (4 s): the slow reader still reads, but outpostd let go
established() { ss -Htn state established "( sport = :$METRICS_PORT )" | grep -c .; }
held=$(established)
wait "${SLOW[@]}" # each stops by itself after 10 s
base_cpu=$(cpu_per_request "$T/base.out")
slow_cpu=$(cpu_per_request "$T/slow.out")
echo "    8 connections without slow scrapers: $(tail -1 "$T/base.out"), $base_cpu CPU s/request"
echo "    ... with 8 slow scrapers:            $(tail -1 "$T/slow.out"), $slow_cpu CPU s/request"
check "with 8 slow scrapers every request was answered, the slowest in under 1 s" bash -c \
    "grep -qE 'errors=0 dropped=0' '$T/slow.out' && [ \$(sed -nE 's/.* max_us=([0-9]+).*/\\1/p' '$T/slow.out') -lt 1000000 ]"
check "... and outpostd spent no more CPU per request (at most 1.5 times)" \
    python3 -c "import sys; sys.exit(0 if $slow_cpu <= 1.5 * $base_cpu else 1)"
check "the trickling scrapers were closed at the timeout (4 s), not held" bash -c \
    "for i in 1 2 3 4 5 6 7; do grep -qE 'closed after ([3]\.[5-9]|[4-6]\.)' $T/slow\$i.out || exit 1; done"
check "the slow reader's connection was closed by outpostd too (none established past the timeout)" \
    test "$held" = 0
check "a scrape after them answers" bash -c "curl -s --max-time 5 '$URL' | grep -q '^outpost_requests_total'"
# A listener counts its own binding through labels resolved when it was
# bound (core/metrics.h, op_metrics_route), a request whose policy_context
# picks another service or tenant through a lookup: both land in their own
# series, and a reload that rebinds the listener counts under its new
# labels from then on.
$ASK "$S" sender=a@test policy_context=checks:ctx > /dev/null
M=$(scrape)
check "a request whose policy_context names another tenant counts under that tenant" \
    is "outpost_requests_total{listener=\"main\",$L,tenant=\"ctx\",protocol=\"policy\"}" "$M" 1
check "... and not under the listener's own" \
    is "outpost_requests_total{listener=\"main\",$L,tenant=\"lrz\",protocol=\"policy\"}" "$M" 11
sed -i "s/listen = tcp:127.0.0.1:$METRICS_PORT/listen = tcp:127.0.0.1:$((METRICS_PORT + 100))/" "$T/outpost.conf"
sed -i 's/^    tenant = lrz$/    tenant = lrz2/' "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do log_has "reload: generation 3 is current" && break; sleep 0.1; done
$ASK "$S" sender=a@test > /dev/null
$ASK "$S" sender=r@test > /dev/null
M=$(scrape)
check "after a reload that moves the listener to tenant lrz2, its requests count there" \
    is "outpost_requests_total{listener=\"main\",$L,tenant=\"lrz2\",protocol=\"policy\"}" "$M" 2
check "... the old tenant's series keeps its count" \
    is "outpost_requests_total{listener=\"main\",$L,tenant=\"lrz\",protocol=\"policy\"}" "$M" 11
check "... and the answers still count by check and class" \
    is "outpost_answers_total{$L,check=\"X1\",class=\"reject\"}" "$M" 4
check "a reload that moves metrics { listen } says it needs a restart, and the endpoint stays" bash -c \
    "grep -q 'reload: metrics { listen } changed (tcp:127.0.0.1:$METRICS_PORT -> ' '$T/daemon.log' && curl -s --max-time 5 '$URL' | grep -q '^outpost_generation 3'"
check "SIGTERM stops it with status 0" e2e_stop

# Without metrics { }: no endpoint, and stats still counts.
sed -i '/^metrics {/,/^}/d' "$T/outpost.conf"
e2e_start || exit 1
$ASK "$S" sender=r@test > /dev/null
check "without metrics { }: nothing listens on its port" bash -c "! curl -s --max-time 2 '$URL' > /dev/null"
check "... and stats counts" bash -c "$CTL '$T/control.sock' stats | grep -qE '^reject +1 '"
check "SIGTERM stops it with status 0" e2e_stop

# docs/operations.md's alert rules: promtool accepts them, and they fire
# on series that should fire them (spec/e2e/metrics/alert_rules_test.yml).
sed -n '/^## Alert rules/,$p' "$ROOT/docs/operations.md" | sed -n '/^```yaml$/,/^```$/p' | sed '1d;$d' > "$T/rules.yml"
cp "$ROOT/spec/e2e/metrics/alert_rules_test.yml" "$T/"
check "docs/operations.md's alert rules: promtool check rules" bash -c "promtool check rules '$T/rules.yml' | grep -q 'SUCCESS: 3 rules found'"
check "... and promtool test rules: each fires when it should, not before" promtool test rules "$T/alert_rules_test.yml"
check_log_clean
e2e_finish

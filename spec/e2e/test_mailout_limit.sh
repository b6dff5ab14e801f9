#!/bin/bash
# MO7 end to end: recipients per sending IP per 24 h through the real
# mailout Postfix (spec/e2e/mailout_env.sh), 1,000 without forward-confirmed
# reverse DNS, 10,000 with it (conf/outpost.conf's limit mailout_rcpt, the
# policy's fcrdns_max).  Campus MTAs at addresses of the harness's reverse
# zone (with, without, with a wrong, with a timing-out PTR) send real
# recipients, 500 per message, and the test asserts which recipient is the
# last accepted and the first deferred (reply, enhanced code, decision
# line), what the counter holds, and what reached the sink; also the
# postmaster's tools: outpostctl limit set, counter show and reset.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
. "$ROOT/spec/e2e/mailout_env.sh"
e2e_setup
mailout_lists
mailout_up || exit 1
CTL="$ROOT/build/outpostctl -s $T/state/control.sock"

# mta_sends ADDR NAME PREFIX COUNT: COUNT recipients PREFIX1..PREFIXCOUNT
# @withmx.test from the MTA at ADDR, whose reverse name Postfix would see as
# NAME, in messages of 500; every dialogue in $OUT
mta_sends() {
    local addr=$1 name=$2 prefix=$3 count=$4 first last i to all=
    for ((first = 1; first <= count; first += 500)); do
        last=$((first + 499 > count ? count : first + 499))
        to=
        for ((i = first; i <= last; i++)); do to+="$prefix$i@withmx.test,"; done
        send "$addr" --xclient-name "$name" --from alice@example.org --to "${to%,}"
        all+=$OUT$'\n'
    done
    OUT=$all
}
accepted_count() { grep -c '^<-  250 2\.1\.5 Ok$' <<<"$OUT"; }
used() { # SUBJECT N: the counter keeps N, nothing left reserved
    $CTL counter show mailout_rcpt "$1" | grep -qx "used *$2 (of which reserved, not yet committed: 0)"
}
HINT='\(10,000 with a forward-confirmed reverse DNS entry\)'

# --- no reverse DNS (127.0.0.12 has no PTR): 1,000
mta_sends 127.0.0.12 '[UNAVAILABLE]' nr 1001
check "MO7 no reverse DNS: 1,000 of 1,001 recipients accepted" test "$(accepted_count)" -eq 1000
expect "MO7 no reverse DNS: the 1,000th recipient" nr1000@withmx.test "$ACCEPTED" DUNNO - 1
expect "MO7 no reverse DNS: the 1,001st recipient" nr1001@withmx.test \
    "450 4\.7\.1 .*mail server 127\.0\.0\.12 reached its limit of 1000 recipients per 24 h $HINT; next slot at [0-9]{2}:[0-9]{2} UTC" \
    "DEFER 4.7.1" MO7 1
check "... both messages queued for their accepted recipients" \
    test "$(grep -c '^<-  250 2\.0\.0 Ok: queued' <<<"$OUT")" -eq 2
check "... the counter keeps 1000 (reserved at RCPT, committed at DATA)" used 127.0.0.12 1000
send 127.0.0.12 --xclient-name '[UNAVAILABLE]' --from alice@example.org --to nr1001@withmx.test
check "MO7 no reverse DNS: the MTA's retry is deferred again (450 4.7.1)" \
    answered nr1001@withmx.test '450 4\.7\.1 .*reached its limit of 1000 recipients'
# the postmaster raises this MTA (docs/services/mailout.md): the retry passes
check "MO7: outpostctl limit set raises the MTA to 1001" \
    bash -c "$CTL limit set mailout_rcpt 127.0.0.12 1001 --reason 'ticket 4711' >/dev/null"
send 127.0.0.12 --xclient-name '[UNAVAILABLE]' --from alice@example.org --to nr1001@withmx.test
check "... and the MTA's next retry is accepted (250 2.1.5)" answered nr1001@withmx.test "$ACCEPTED"

# --- a PTR that does not confirm (127.0.0.11 -> bad.example.org -> 127.0.0.99): 1,000
mta_sends 127.0.0.11 '[UNAVAILABLE]' bad 1001
check "MO7 reverse DNS not confirmed: 1,000 of 1,001 recipients accepted" test "$(accepted_count)" -eq 1000
expect "MO7 reverse DNS not confirmed: the 1,001st recipient" bad1001@withmx.test \
    "450 4\.7\.1 .*mail server 127\.0\.0\.11 reached its limit of 1000 recipients per 24 h $HINT" \
    "DEFER 4.7.1" MO7 0

# --- forward-confirmed reverse DNS (127.0.0.10 <-> good.example.org): 10,000
mta_sends 127.0.0.10 good.example.org fc 10001
check "MO7 with FCrDNS: 10,000 of 10,001 recipients accepted" test "$(accepted_count)" -eq 10000
expect "MO7 with FCrDNS: the 1,001st recipient" fc1001@withmx.test "$ACCEPTED" DUNNO - 1
expect "MO7 with FCrDNS: the 10,000th recipient" fc10000@withmx.test "$ACCEPTED" DUNNO - 1
expect "MO7 with FCrDNS: the 10,001st recipient" fc10001@withmx.test \
    '450 4\.7\.1 .*mail server 127\.0\.0\.10 reached its limit of 10000 recipients per 24 h; next slot at' \
    "DEFER 4.7.1" MO7 0
check "... the counter keeps 10000" used 127.0.0.10 10000

# --- reverse DNS not answering (the zone of 127.0.0.14 drops queries): the
# lower limit applies and is logged, the mail is not held up
send 127.0.0.14 --xclient-name '[TEMPUNAVAIL]' --from alice@example.org --to dnsdown@withmx.test
expect "MO7 reverse DNS times out: the recipient is accepted" dnsdown@withmx.test "$ACCEPTED" DUNNO - 1
check "... and the lower limit logged" \
    log_has "MO7: FCrDNS of 127\.0\.0\.14 failed \(.*\); the limit without FCrDNS applies"

# --- by hand, as docs/testing.md shows admins: one session that quits after
# RCPT relays nothing, yet its reservations count at once
to=$(seq -f 'hand%g@withmx.test' 1 1001 | paste -sd,)
send 127.0.0.13 --xclient-name '[UNAVAILABLE]' --quit-after RCPT --from alice@example.org --to "$to"
check "MO7 by hand, one session quitting after RCPT: 1,000 accepted" test "$(accepted_count)" -eq 1000
check "... the 1,001st deferred (450 4.7.1)" answered hand1001@withmx.test '450 4\.7\.1 .*limit of 1000 recipients'
check "... outpostctl shows them reserved" bash -c "$CTL counter show mailout_rcpt 127.0.0.13 | grep -qx 'used *1000 (of which reserved, not yet committed: 1000)'"
$CTL counter reset mailout_rcpt 127.0.0.13 >/dev/null
check "... and counter reset forgets them" bash -c "$CTL counter show mailout_rcpt 127.0.0.13 | grep -qE '^used +0 '"
delivered hand1@withmx.test 0

sink_check
check "sink: the MTA without reverse DNS: nr1..nr1000 all delivered" \
    test "$(pf_delivered_re 'nr([1-9][0-9]{0,2}|1000)@withmx\.test')" -eq 1000
check "sink: the MTA without confirmed reverse DNS: 1,000 delivered" \
    test "$(pf_delivered_re 'bad[0-9]+@withmx\.test')" -eq 1000
check "sink: the MTA with FCrDNS: fc1..fc10000 all delivered" \
    test "$(pf_delivered_re 'fc([1-9][0-9]{0,3}|10000)@withmx\.test')" -eq 10000

check_log_clean
e2e_finish

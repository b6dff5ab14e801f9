#!/bin/bash
# The milter protocol end to end, driven by miltertest (the MTA side of
# libmilter's protocol, from OpenDKIM): negotiation, every reply kind,
# header changes, quarantine, deadline and errors answered with the default
# action, message and connection state, and bad input.
. "$(dirname "$0")/lib.sh"
e2e_setup
command -v miltertest >/dev/null || { echo "miltertest is not installed (scripts/deps.sh)"; not_ok "miltertest present"; e2e_finish; exit 1; }
PORT=$((20000 + RANDOM % 20000))
e2e_config <<EOF
listener milter {
    listen = tcp:127.0.0.1:$PORT
    protocol = milter
    service = milter
    tenant = lrz
}
listener policy {
    listen = unix:@T@/policy.sock
    service = dunno
}
service milter {
    policy = @ROOT@/spec/e2e/milter/policy.lua
    deadline = 1s
    default_action = "451 4.3.5 test default"
}
service dunno { }
listener milter-slow {
    listen = tcp:127.0.0.1:$((PORT + 1))
    protocol = milter
    service = milter-slow
}
service milter-slow {
    policy = @ROOT@/spec/e2e/milter/policy.lua
    deadline = 10s
    default_action = "451 4.3.5 test default"
}
EOF
e2e_start || exit 1

mt() {
    miltertest -D port="$PORT" -D dir="$ROOT/spec/e2e/milter" -s "$ROOT/spec/e2e/milter/$1.lua" > "$T/mt-$1.out" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || sed 's/^/#   /' "$T/mt-$1.out"
    return $rc
}
check "a good message passes, with X-Outpost added and Subject changed at end of message" mt accept
check "a header From that is not the user's is rejected at end of message" mt reject_from
check "... with 5.7.1 and a text naming the header" log_has 'phase=eom .* action="REJECT 5.7.1 header From The Boss <boss@example.org> is not yours"' 
check "a blocked sender is refused at MAIL" mt reject_sender
check "an unknown recipient is refused at RCPT, the next accepted" mt reject_rcpt
check "HOLD becomes a quarantine with its reason" mt body_HOLD
check "defer becomes a reply code" mt body_TEMPFAIL
check "... 4.7.0" log_has 'phase=eom .* action="DEFER 4.7.0 try again"' 
t0=$(date +%s%N)
check "a handler past its deadline answers a reply code" mt body_SLEEP
check "... the default action, for the deadline" log_has 'phase=eom .* action="451 4.3.5 test default" check=- reason=deadline' 
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "... at the deadline (1 s), not after the sleep (took ${ms} ms)" test "$ms" -lt 3000
# SMFIR_PROGRESS: an end-of-message check that takes 6.5 s (under its 10 s
# deadline) is announced every 5 s, so the MTA's timeout does not fire.
python3 "$ROOT/spec/e2e/milter/progress_client.py" 127.0.0.1 $((PORT + 1)) "body says SLOW" 20 > "$T/progress.out" 2>&1
sed 's/^/#   /' "$T/progress.out"
check "a slow end-of-message check sends one progress packet" test "$(grep -c ' p$' "$T/progress.out")" = 1
check "... about 5 s after EOM" awk '$2 == "p" { good = $1 >= 4.5 && $1 < 6.0 } END { exit !good }' "$T/progress.out"
check "... then the final reply (header changes, continue) after the 6.5 s check" \
    awk '$2 == "c" { good = $1 >= 6.4 && $1 < 9 } END { exit !good }' "$T/progress.out"
check "... in order: progress, then the header changes, then the reply" \
    test "$(awk '{ printf "%s", $2 }' "$T/progress.out")" = phmc
python3 "$ROOT/spec/e2e/milter/progress_client.py" 127.0.0.1 $((PORT + 1)) "fast body" 5 > "$T/fast.out" 2>&1
check "a fast one sends none, only its reply" test "$(awk '{ printf "%s", $2 }' "$T/fast.out")" = hmc
check "a handler that raises answers a reply code" mt body_RAISE
check "... the default action, for the error" log_has 'phase=eom .* action="451 4.3.5 test default" check=- reason=error' 
check "... logged with a traceback" log_has "policy raised an error.*policy.lua:[0-9]+: boom"
check "message state is new per message, connection state kept; abort resets" mt two_messages
check "on_abort ran for the aborted message" log_has "milter test: aborted message from alice@example.org"
check "a decision line per phase with a handler" \
    log_has 'decision req=[0-9]+ service=milter tenant=lrz proto=milter phase=eom client=192.0.2.7 sasl_user="alice@example.org" sender="<alice@example.org>" rcpts=1 action="DUNNO" check=- reason=policy'

# Bad input closes that connection, not the daemon.
garbage() { head -c 2000 /dev/urandom | $RAW "tcp:127.0.0.1:$PORT" --wait 2 | sed -n 2p; }
check "garbage closes the milter connection" test "$(garbage)" = CLOSED
out=$(printf '\x00\x00\x00\x04Ch\x00U' | $RAW "tcp:127.0.0.1:$PORT" --wait 2)
check "a command before negotiation closes it without a reply" test "$out" = "$(printf "b''\nCLOSED")"
check "... and says why" log_has "command out of order for the session state in state start"
out=$(printf '\xff\xff\xff\xffO' | $RAW "tcp:127.0.0.1:$PORT" --wait 2 | sed -n 2p)
check "a length of 2^32-1 closes it at once" test "$out" = CLOSED
check "the daemon still answers milter sessions" mt accept
check "... and policy requests" bash -c "$ASK unix:$T/policy.sock | grep -qx action=DUNNO"

# A service without the handlers a listener needs is refused at load.
sed 's/service = dunno/service = milter/' "$T/outpost.conf" > "$T/bad.conf"
check "a policy listener on a milter-only service is refused by --check" bash -c \
    "'$OUTPOSTD' --check -c '$T/bad.conf' 2>&1 | grep -q 'has no on_request, which a policy listener needs'"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

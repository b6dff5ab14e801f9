#!/bin/bash
# MO8 end to end: a real Postfix built from conf/postfix/mailout/ with
# outpostd as its policy service and its milter (listener mailout-milter),
# the harness's unbound publishing this run's DKIM keys, and messages
# signed by python3-dkim when the harness started (spec/dkim/make_fixture.py,
# in $HARNESS_DIR/dns/dkim/).  Each message is sent whole by swaks as a
# campus MTA; asserted: the reply at end of data, the log line of MO8's
# verdict, and that our verdict is dkimpy's (verdicts.txt: python3-dkim's
# own verifier on the same message and keys).
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
. "$ROOT/spec/e2e/mailout_env.sh"
FX=$HARNESS_DIR/dns/dkim

# send_msg CASE ENVELOPE-SENDER [RCPT]: the fixture's message from
# 127.0.0.1, to dkim-CASE@withmx.test or RCPT
send_msg() {
    OUT=$(swaks --server 127.0.0.1 --port "$PORT" --helo mta.example.org \
        --xclient-addr 127.0.0.1 --from "$2" --to "${3:-dkim-$1@withmx.test}" \
        --data "$FX/$1.eml" 2>&1)
}
eod() { # RE: the reply to the end of data matches RE
    if grep -qE -- "^<(-|\*\*|~) +$1" <<<"$(grep -A1 -E '^ -> \.$' <<<"$OUT" | tail -1)"; then
        return 0
    fi
    echo "#   end of data: $(grep -A1 -E '^ -> \.$' <<<"$OUT" | tail -1)"
    return 1
}
# dkimpy's verdict of the case has a pass exactly when ours has
interop() { # CASE OURS(pass|nopass)
    local theirs
    theirs=$(awk -F'\t' -v c="$1" '$1 == c { print $2 }' "$FX/verdicts.txt")
    if [[ " $theirs " == *" pass "* ]]; then theirs=pass; else theirs=nopass; fi
    [ "$theirs" = "$2" ] || { echo "#   dkimpy: $theirs, ours: $2"; return 1; }
}

QUEUED='250 2\.0\.0 Ok: queued'

e2e_setup
mailout_lists
mailout_up || exit 1
# enforced first; the shipped log-only at the end, after a reload
sed -i 's/checks = \[MO8=log-only\]/checks = []/' "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
check "MO8 enforced: the configuration reloads" reloaded 2

# The daemon's key cache warmed first, as an MTA's retry would: on a
# loaded machine a cold first lookup can pass the 500 ms DNS timeout (451,
# the MTA retries); the cases below are about verdicts.
for warm in two_sigs ed25519; do
    for _ in 1 2 3; do
        send_msg "$warm" alice@example.org "warm-$warm@withmx.test"
        grep -qE '^<- +250 2\.0\.0 Ok: queued' <<<"$OUT" && break
    done
done

send_msg rsa_relaxed alice@example.org
check "MO8: institution From signed by the signing domain (RSA): queued" eod "$QUEUED"
check "... MO8 logs the pass with d= and s=" \
    log_has "MO8: header From inst\.test signed by d=inst\.test s=rsa2026 a=rsa-sha256: pass"
check "... dkimpy agrees" interop rsa_relaxed pass
check "... the decision line notes the verdicts" \
    log_has 'decision .*phase=eom .*action="DUNNO" check=- reason=policy detail="dkim: d=inst\.test s=rsa2026 a=rsa-sha256 pass" '
delivered dkim-rsa_relaxed@withmx.test 1

send_msg ed25519 alice@example.org
check "MO8: Ed25519 signature: queued" eod "$QUEUED"
check "... MO8 logs the pass" log_has "MO8: header From inst\.test signed by d=inst\.test s=ed2026 a=ed25519-sha256: pass"
check "... dkimpy agrees" interop ed25519 pass
delivered dkim-ed25519@withmx.test 1

send_msg unsigned alice@example.org
check "MO8 (enforce): unsigned institution mail refused 5.7.1, telling the admin what to change" \
    eod "550 5\.7\.1 mail from inst\.test \(header From\) needs a valid DKIM signature of the institution; found: no signature\. Send it through postout or Exchange, or sign it"
check "... decision check=MO8, with detail 'dkim: no signature'" \
    log_has 'decision .*phase=eom .*action="REJECT 5\.7\.1 .*check=MO8 reason=policy detail="dkim: no signature" '
check "... dkimpy agrees" interop unsigned nopass
delivered dkim-unsigned@withmx.test 0

send_msg foreign alice@example.org
check "MO8: signed only by a foreign domain: refused" \
    eod "550 5\.7\.1 mail from inst\.test .*found: d=foreign\.test s=sel a=rsa-sha256 pass\."
check "... dkimpy says the signature itself is valid" interop foreign pass
delivered dkim-foreign@withmx.test 0

send_msg body_altered alice@example.org
check "MO8: body altered after signing: refused" \
    eod "550 5\.7\.1 mail from inst\.test .*d=inst\.test s=rsa2026 a=rsa-sha256 fail \(body hash mismatch\)"
check "... dkimpy agrees" interop body_altered nopass
delivered dkim-body_altered@withmx.test 0

send_msg timeout_key alice@example.org
check "MO8: the key record times out: 451 4.7.5" \
    eod "451 4\.7\.5 cannot fetch the DKIM key for mail from slow\.inst\.test"
check "... logged temperror" log_has "MO8: header From slow\.inst\.test: d=slow\.inst\.test s=sel a=rsa-sha256 temperror"
delivered dkim-timeout_key@withmx.test 0

mo8_lines() { grep -c 'MO8' "$T/daemon.log"; }
before=$(mo8_lines)
send_msg outsider '<>'
check "MO8: a non-institution From (null envelope sender) needs no signature: queued" eod "$QUEUED"
check "... MO8 did not judge it (no MO8 line)" test "$(mo8_lines)" -eq "$before"
delivered dkim-outsider@withmx.test 1

send_msg outsider alice@example.org dkim-outsider-env@withmx.test
check "MO8: a foreign From with an institution envelope sender needs the signature too" \
    eod "550 5\.7\.1 mail from example\.org \(envelope sender\) needs a valid DKIM signature"
delivered dkim-outsider-env@withmx.test 0

# as shipped: log-only
sed -i 's/checks = \[\]/checks = [MO8=log-only]/' "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
check "MO8 log-only: the configuration reloads" reloaded 3
send_msg unsigned bob@example.org dkim-unsigned-logonly@withmx.test
check "MO8 (log-only, as shipped): unsigned institution mail is queued" eod "$QUEUED"
check "... and logged as what MO8 would have answered" \
    log_has "MO8 \(.*\) log-only: would answer REJECT 5\.7\.1 mail from inst\.test"
delivered dkim-unsigned-logonly@withmx.test 1

sink_check
check_log_clean
e2e_finish

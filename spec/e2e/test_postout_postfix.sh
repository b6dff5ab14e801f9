#!/bin/bash
# postout end to end, one scenario per requirement (PO1-PO7): swaks as the
# users' mail program, a real Postfix built from conf/postfix/postout/
# (spec/e2e/postout_rig.sh: STARTTLS + SASL AUTH, and a port without TLS),
# outpostd with the shipped postout service, the harness's slapd and
# unbound.  Each scenario asserts the SMTP reply and enhanced status code
# the client sees, the decision line naming the check in outpostd's log,
# and what reached the sink (discard's "status=sent" lines) or not.
# docs/testing.md, "## postout", says how to reproduce each by hand.
# Every scenario runs once per fixture directory (lib.sh, E2E_FIXTURES):
# the same Postfix and policies, outpostd started again with the other
# directory { }.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup
# shellcheck disable=SC1091
. "$ROOT/spec/e2e/postout_rig.sh"
FIXTURE=${E2E_FIXTURES%% *}
postout_rig_up || exit 1

# what reached the sink, after the queue manager had its chance
delivered() { pf_wait_sent "$2" "$1"; [ "$(pf_delivered_re "$1")" -eq "$2" ]; }
nothing_for() { sleep 0.5; [ "$(pf_delivered_re "$1")" -eq 0 ]; }
# a swaks dialogue (OUT) where all N recipients got 250 and the message was queued
all_accepted() { # N OUT
    [ "$(grep -c '^<~  250 2\.1\.5 Ok' <<<"$2")" -eq "$1" ] && ! grep -q '^<~\*' <<<"$2" &&
        grep -qE '^<~  250 2\.0\.0 Ok: queued' <<<"$2"
}

scenarios() {
    # --- the way through: STARTTLS on submission, TLS on smtps --------------
    expect "submission: STARTTLS + AUTH, own sender, existing domain: queued" \
        '^<~  250 2\.0\.0 Ok: queued' --to ok-sub@withmx.test
    check "... and delivered" delivered 'ok-sub@withmx\.test' 1
    check "... outpost answered DUNNO at RCPT, DATA and END-OF-MESSAGE" \
        bash -c "[ \$(grep -c 'decision .*sasl_user=alice@example.org .*rcpt=ok-sub@withmx.test action=DUNNO' '$T/daemon.log') -eq 3 ]"
    out=$(swaks --server 127.0.0.1 --port "$SMTPS" --tlsc --auth PLAIN --auth-user alice@example.org \
        --auth-password alice-secret --from alice@example.org --to ok-smtps@withmx.test 2>&1)
    check "smtps (TLS on connect) + AUTH: queued" grep -qE '^<~  250 2\.0\.0 Ok: queued' <<<"$out"
    check "... and delivered" delivered 'ok-smtps@withmx\.test' 1

    # --- PO1: no TLS ---------------------------------------------------------
    out=$(swaks --server 127.0.0.1 --port "$PLAIN" --auth PLAIN --auth-user alice@example.org \
        --auth-password alice-secret --from alice@example.org --to po1@withmx.test 2>&1)
    check "PO1: logged in without TLS: 530 5.7.10 at RCPT" \
        grep -qE '^<\*\* 530 5\.7\.10 .*only over an encrypted connection' <<<"$out"
    check "... decided by PO1" log_has 'decision .*sasl_user=alice@example.org .*rcpt=po1@withmx.test .*check=PO1'
    check "... nothing delivered" nothing_for 'po1@withmx\.test'
    out=$(swaks --server 127.0.0.1 --port "$SUB" --from alice@example.org --to po1-sub@withmx.test 2>&1)
    no_auth_offered() { ! grep -q '^<-  250.AUTH' <<<"$1"; }
    check "PO1 before outpost: submission without STARTTLS offers no AUTH" no_auth_offered "$out"
    check "... and Postfix refuses MAIL with 530 5.7.0 (smtpd_tls_security_level=encrypt)" \
        grep -qE '^<\*\* 530 5\.7\.0 Must issue a STARTTLS command first' <<<"$out"

    # --- PO2: no login -------------------------------------------------------
    out=$(swaks --server 127.0.0.1 --port "$SUB" --tls --from alice@example.org --to po2@withmx.test 2>&1)
    check "PO2: TLS without AUTH: 530 5.7.0 at RCPT" \
        grep -qE '^<~\* 530 5\.7\.0 .*authentication required' <<<"$out"
    check "... decided by PO2" log_has 'decision .*sasl_user="" .*rcpt=po2@withmx.test .*check=PO2'
    check "... nothing delivered" nothing_for 'po2@withmx\.test'

    # --- PO3: locked accounts ------------------------------------------------
    expect "PO3: an account locked in the directory (mallory): 550 5.7.13" \
        '^<~\* 550 5\.7\.13 .*your account mallory@example.org is locked' \
        --auth-user mallory@example.org --auth-password mallory-secret --from mallory@example.org --to po3@withmx.test
    check "... decided by PO3" log_has 'decision .*sasl_user=mallory@example.org .*check=PO3'
    expect "PO3: an account on locked_accounts.txt (erin): 550 5.7.13" \
        '^<~\* 550 5\.7\.13 .*your account erin@students.example.org is locked' \
        --auth-user erin@students.example.org --auth-password erin-secret --from erin@students.example.org --to po3@withmx.test
    check "... decided by PO3" log_has 'decision .*sasl_user=erin@students.example.org .*check=PO3'
    expect "PO3: a login SASL knows and the directory does not: 550 5.7.1" \
        '^<~\* 550 5\.7\.1 .*ghost@example.org is not enabled for sending' \
        --auth-user ghost@example.org --auth-password ghost-secret --from ghost@example.org --to po3@withmx.test
    check "... decided by PO3" log_has 'decision .*sasl_user=ghost@example.org .*check=PO3'
    check "... nothing delivered" nothing_for 'po3@withmx\.test'

    # --- PO4: the envelope sender --------------------------------------------
    expect "PO4: alice sending as bob: 553 5.7.1, naming her own addresses" \
        '^<~\* 553 5\.7\.1 .*may not send as <bob@example.org>.*alice@example.org' \
        --from bob@example.org --to po4-bad@withmx.test
    check "... decided by PO4" log_has 'decision .*sasl_user=alice@example.org sender=bob@example.org .*check=PO4'
    check "... nothing delivered" nothing_for 'po4-bad@withmx\.test'
    expect "PO4: alice sending as her alias alice.adams@example.org: queued" \
        '^<~  250 2\.0\.0 Ok: queued' --from alice.adams@example.org --to po4-ok@withmx.test
    check "... and delivered" delivered 'po4-ok@withmx\.test' 1

    # --- PO5: the recipient's domain -----------------------------------------
    expect "PO5: a domain that does not exist: 550 5.1.2" \
        '^<~\* 550 5\.1\.2 .*domain nxdomain.test does not exist' --to po5@nxdomain.test
    check "... decided by PO5" log_has 'decision .*rcpt=po5@nxdomain.test .*check=PO5'
    # outpost answers 556 5.1.10 (RFC 7505); Postfix 3.7 passes 556 but
    # reports the enhanced code as 5.1.0
    expect "PO5: a domain with a null MX: 556 5.1.0 (Postfix's rewrite of 5.1.10)" \
        '^<~\* 556 5\.1\.0 .*nullmx.test accepts no mail' --to po5@nullmx.test
    check "... decided by PO5, which answered 556 5.1.10" \
        log_has 'decision .*rcpt=po5@nullmx.test action="556 5\.1\.10 .*check=PO5'
    expect "PO5: a domain with only an A record: queued" '^<~  250 2\.0\.0 Ok: queued' --to po5@aonly.test
    check "... and delivered" delivered 'po5@aonly\.test' 1
    check "... refused ones not delivered" nothing_for 'po5@(nxdomain|nullmx)\.test'

    # --- PO6: local recipients exist -----------------------------------------
    out=$(submit --to bob@example.org,bbo@example.org)
    check "PO6: a typo'd local recipient (bbo@example.org) is refused at RCPT: 550 5.1.1" \
        grep -qE '^<~\* 550 5\.1\.1 <bbo@example.org>: .*no mailbox <bbo@example.org>' <<<"$out"
    check "... decided by PO6" log_has 'decision .*rcpt=bbo@example.org .*check=PO6'
    check "... the message is queued for the existing one (bob@example.org)" \
        grep -qE '^<~  250 2\.0\.0 Ok: queued' <<<"$out"
    check "... bob@example.org delivered" delivered 'bob@example\.org' 1
    check "... bbo@example.org not" nothing_for 'bbo@example\.org'

    # --- PO7: 250 recipients per user per 24 h -------------------------------
    # dave (directory tier 250) sends 200 + 50 recipients, then the 251st
    # (Postfix's smtpd_recipient_limit, 1000 by default, allows 251 in one).
    rcpts() { seq -f "$1%g@withmx.test" "$2" "$3" | paste -sd, -; }
    dave=(--auth-user dave@students.example.org --auth-password dave-secret --from dave@students.example.org)
    out=$(submit "${dave[@]}" --to "$(rcpts po7-d 1 200)")
    check "PO7: dave's first 200 recipients in one message: all accepted, queued" \
        all_accepted 200 "$out"
    out=$(submit "${dave[@]}" --to "$(rcpts po7-d 201 250)")
    check "PO7: recipients 201..250 (the 250th included): all accepted, queued" \
        all_accepted 50 "$out"
    expect "PO7: the 251st recipient in 24 h: 452 4.5.3 with the limit and when the next frees" \
        '^<~\* 452 4\.5\.3 .*limit of 250 recipients per 24 hours; the next recipient can be sent from ' \
        "${dave[@]}" --to po7-d251@withmx.test
    check "... decided by PO7" log_has 'decision .*sasl_user=dave@students.example.org .*rcpt=po7-d251@withmx.test .*check=PO7'
    check "... the 250 were delivered" delivered 'po7-d[0-9]+@withmx\.test' 250
    check "... the 251st was not" nothing_for 'po7-d251@withmx\.test'
    check "... outpostctl counts 250 used of 250 for the account dave (not the login's spelling)" \
        bash -c "build/outpostctl -s '$T/control.sock' counter show postout_rcpt dave |
                 grep -qE 'used[^0-9]*250' "
    check "PO7: the operator raises dave to the next tier (500) without restart" \
        bash -c "build/outpostctl -s '$T/control.sock' limit set postout_rcpt dave 500 --reason 'e2e: next tier' >/dev/null"
    expect "... now the 251st passes: queued" '^<~  250 2\.0\.0 Ok: queued' "${dave[@]}" --to po7-d251@withmx.test
    check "... and delivered" delivered 'po7-d251@withmx\.test' 1
    # bob's tier is 500 in the directory (mailSendLimit): 251 in one message pass.
    out=$(submit --auth-user bob@example.org --auth-password bob-secret --from bob@example.org \
        --to "$(rcpts po7-b 1 251)")
    check "PO7: bob (directory tier 500) sends to 251 recipients: all accepted, queued" \
        all_accepted 251 "$out"
    check "... no PO7 decision for bob" bash -c "! grep -q 'sasl_user=bob@example.org .*check=PO7' '$T/daemon.log'"
    check "... all 251 delivered" delivered 'po7-b[0-9]+@withmx\.test' 251

    # --- PO8, G3, G4: the message, through outpostd as Postfix's milter -------
    # The shipped service introduces them in log-only mode (OP5): the message
    # is delivered and what each would have answered is logged.
    expect "PO8 (log-only): alice's header From shows bob's address: queued" \
        '^<~  250 2\.0\.0 Ok: queued' --to po8@withmx.test --header "From: Bob <bob@example.org>"
    check "... and delivered" delivered 'po8@withmx\.test' 1
    check "... PO8 logged what it would answer: 5.7.1, not yours" \
        log_has 'service=postout: PO8 \(header From is one of the user.s addresses\) log-only: would answer REJECT 5\.7\.1 header From bob@example.org is not yours'
    check "... the milter's end-of-message decision names the service and user" \
        log_has 'decision req=[0-9]+ service=postout .*phase=eom .*sasl_user="alice@example.org" .*action="DUNNO"'
    expect "G3 (log-only): a message with two From headers: queued" \
        '^<~  250 2\.0\.0 Ok: queued' --to g3@withmx.test --add-header "From: alice@example.org"
    check "... G3 logged what it would answer: 5.6.0" \
        log_has 'service=postout: G3 .* log-only: would answer REJECT 5\.6\.0 message does not follow RFC 5322: 2 From headers'
    expect "G4 (log-only): a link to a URL shortener: queued" \
        '^<~  250 2\.0\.0 Ok: queued' --to g4@withmx.test --body "see https://bit.ly/3abc"
    check "... G4 logged what it would answer, naming bit.ly" \
        log_has 'service=postout: G4 .* log-only: would answer REJECT 5\.7\.1 links to URL shorteners \(bit\.ly\)'
    check "... both delivered" delivered '(g3|g4)@withmx\.test' 2
    check_log_clean
}

for FIXTURE in $E2E_FIXTURES; do
    if [ -z "$DAEMON_PID" ]; then postout_outpostd_up || { not_ok "outpostd starts"; continue; }; fi
    endpoint_listener_check
    pf_endpoint_check postout_policy postout
    scenarios
    fixture_round_end
    # the sink counts from zero again: every delivery of this round is in
    pf_drained 10
    : > "$PF/log/maillog"
done
e2e_finish

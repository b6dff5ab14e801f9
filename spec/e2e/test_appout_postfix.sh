#!/bin/bash
# appout end to end through real Postfix: conf/postfix/appout/ split into
# its two stages, each a private instance, both asking outpostd's appout-lm
# listener (the shipped sections of conf/outpost.conf) with the harness's
# slapd and unbound.
#
#   swaks --STARTTLS + AUTH--> stage 1 (submission/submissions; AO1-AO5)
#         --content_filter appout-stage2--> stage 2 (AO7, AO8) --> discard
#
# Stage 1 is the shipped submission services with Cyrus SASL (a private
# sasldb) instead of Dovecot; stage 2 is the shipped 10026 smtpd in an
# instance of its own, whose deliveries (discard) are the sink the test
# counts.  Each of AO1-AO5, AO7, AO8 sends real mail and checks the reply,
# the decision line naming the check, and what reached the sink or stays
# in stage 1's queue.  docs/testing.md (## appout) lists the scenarios.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

S1_PORT=$((POSTFIX_BASE_PORT + 5))   # stage 1, submission (587)
S1S_PORT=$((POSTFIX_BASE_PORT + 6))  # stage 1, submissions (465)
S2_PORT=$((POSTFIX_BASE_PORT + 7))   # stage 2 (10026)
NOTLS_PORT=$((POSTFIX_BASE_PORT + 8)) # stage 1 without its TLS requirement (AO1)
SOCK=$T/appout-lm.sock
SENDER=noreply-lm@example.org        # app-lm's sender address

# outpostd: the shipped appout sections, LMU's socket in the temp dir and
# reachable by Postfix's smtpds; the harness's DNS and LDAP, the directory
# { } of the round's fixture (lib.sh, E2E_FIXTURES).  On the round with one
# endpoint (lib.sh: policy_listener) LMU's listener is replaced by the one
# for every service and tenant, which has no tenant: both stages' smtpds
# ask it with policy_context=appout-stage1:lm / appout-stage2:lm
# (pf_policy_round), and tenant=lm in the decision lines comes from there.
block() { awk -v n="$1" '$0 ~ "^"n" \\{" {p=1} p {print} p && /^}/ {p=0}' "$2"; }
appout_outpostd_up() {
    {
        printf 'daemon {\n    state_dir = @T@/state\n    lua_dir = @T@/lua\n    lists_dir = @ROOT@/conf/lists\n}\n'
        block "listener appout-lm" "$ROOT/conf/outpost.conf" |
            sed -e "s|unix:\.\./var/run/appout-lm.sock|unix:$SOCK\n    socket_group = postfix|" |
            policy_listener
        for b in "service appout-stage1" "service appout-stage2" "limit appout_send"; do
            block "$b" "$ROOT/conf/outpost.conf"
        done
        for b in dns ldap; do block "$b" "$ROOT/build/harness/outpost.conf"; done
        fixture_directory
    } | e2e_config
    e2e_start
}
FIXTURE=${E2E_FIXTURES%% *}
appout_outpostd_up || exit 1

. "$ROOT/spec/e2e/postfix.sh"
S1=$T/s1
S2=$T/s2

# Stage 2: the shipped 127.0.0.1:10026 smtpd on this test's port, in an
# instance of its own (postfix.sh: pf_appout_stage).
pf_appout_stage 2 "$S2" "$SOCK" "$S2_PORT"
pf_policy_round appout_policy "unix:$SOCK" lm
pf_start || exit 1

# Stage 1: the shipped submission services and the appout-stage2 transport,
# pointing at stage 2's port.  XCLIENT from loopback lets swaks play an
# application host in app-lm's network (AO5).
pf_appout_stage 1 "$S1" "$SOCK" "$S1_PORT" "$S2_PORT" "$S1S_PORT"
# pf_setup's trap stops only the last instance
trap 'PF=$S1; pf_stop; PF=$S2; pf_stop; e2e_cleanup' EXIT
pf_sasl_user app-lm@appout-lm.test app-lm-secret
pf_sasl_user app-hm@appout-lm.test app-hm-secret
pf_sasl_user app-locked@appout-lm.test app-locked-secret
pf_sasl_user alice@appout-lm.test alice-secret        # a person, no function account
# the login with a realm, as Cyrus hands it to Postfix when the client
# names one: directory { login } finds the function account app-lm
pf_sasl_user app-lm@example.org app-lm@example.org-secret
# AO1 behind Postfix: the shipped ports never let a session without TLS
# reach AUTH (smtpd_tls_security_level=encrypt).  This port is the shipped
# submission service with that requirement lost, as a mistake in one
# tenant's master.cf would lose it: outpost's AO1 must refuse there.
awk '/^submission inet /{p=1; next} p && /^[^ ]/{exit} p' "$ROOT/conf/postfix/appout/master.cf" |
    sed -e "s|smtpd_tls_security_level=encrypt|smtpd_tls_security_level=may|" \
        -e "s|smtpd_tls_auth_only=yes|smtpd_tls_auth_only=no|" \
        -e "s|appout-lm/submission|appout-lm/no-tls|" \
        -e "s|appout-stage2:\[127\.0\.0\.1\]:10026|appout-stage2:[127.0.0.1]:$S2_PORT|" |
    { echo "127.0.0.1:$NOTLS_PORT inet n - n - - smtpd"; cat; } >> "$PF/etc/master.cf"
pf_policy_round appout_policy "unix:$SOCK" lm
pf_start || exit 1

# ---- helpers ---------------------------------------------------------------
# app USER [swaks args...]: an application in app-lm's network, STARTTLS and
# AUTH on the submission port; prints the dialogue.
app() {
    local user=$1
    shift
    swaks --server 127.0.0.1 --port "$S1_PORT" --helo app.example.org --tls \
        --xclient-addr 10.153.1.2 --auth PLAIN --auth-user "$user" --auth-password "$user-secret" \
        --from "$SENDER" --to someone@withmx.test "$@" 2>&1
}
has() { grep -qE -- "$1" <<<"$OUT" || { echo "$OUT" | grep -E '^(<-|<~|<\*\*|<~\*|\*\*\*)' | tail -4 | sed 's/^/#   /'; return 1; }; }
# decision N PATTERN: the last N decision lines include one matching PATTERN
decision() { grep ' decision ' "$T/daemon.log" | tail -n "$1" | grep -qE -- "$2"; }
sent() { PF=$S2 pf_delivered_re '[^>]*'; }
# wait_for WHAT: poll up to 10 s
wait_for() { local i; for ((i = 0; i < 100; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }
sent_is() { [ "$(sent)" -eq "$1" ]; }
ctl() { "$ROOT/build/outpostctl" -s "$T/state/control.sock" "$@"; }
limit_to() { ctl limit set appout_send "$SENDER" "$1" --reason "test_appout_postfix.sh: $2" >/dev/null; }
# counted USED [MAX-LINE]: outpostctl counter show for the sender
counted() {
    local show
    show=$(ctl counter show appout_send "$SENDER") || return 1
    grep -qE "^used +$1 " <<<"$show" && { [ -z "${2:-}" ] || grep -qE "^max +$2" <<<"$show"; }
}
s1_log() { grep -qE -- "$1" "$S1/log/maillog"; }

# The scenarios, once per fixture directory: the same two Postfix
# instances, outpostd started again with the other directory { } and a
# fresh counter store; each round begins with empty logs and queues.
scenarios() {
    # ---- the happy path --------------------------------------------------------
    OUT=$(app app-lm)
    check "accepted: app-lm over STARTTLS with AUTH from its network, own sender" has '^<~? +250 2\.0\.0 Ok: queued'
    check "... stage 1 asked appout-stage1 (tenant lm) and it answered DUNNO" \
        decision 5 'service=appout-stage1 tenant=lm .*action=DUNNO'
    check "... stage 2 took it from stage 1's queue and delivered it (sink: 1)" wait_for sent_is 1
    check "... stage 2 asked with policy_context=appout-stage2 (AO7 and AO8 passed)" \
        decision 5 'service=appout-stage2 tenant=lm .*rcpt=someone@withmx.test action=DUNNO'

    # ---- AO1 .. AO5: stage 1 refuses at RCPT; nothing reaches stage 2 ---------
    # AO1: on the shipped ports Postfix refuses AUTH before TLS itself, so
    # outpost is never asked; on a port that lost its TLS requirement,
    # outpost's AO1 refuses an authenticated session without TLS.
    n=$(grep -c ' decision ' "$T/daemon.log")
    OUT=$(swaks --server 127.0.0.1 --port "$S1_PORT" --helo app.example.org --auth PLAIN \
        --auth-user app-lm --auth-password app-lm-secret --from "$SENDER" --to someone@withmx.test 2>&1)
    check "AO1: the shipped submission port offers no AUTH before STARTTLS (Postfix: smtpd_tls_auth_only)" \
        has '^\*\*\* Host did not advertise authentication'
    check "AO1: ... before outpost is asked (no new decision line)" \
        bash -c "[ \$(grep -c ' decision ' '$T/daemon.log') -eq $n ]"
    OUT=$(swaks --server 127.0.0.1 --port "$NOTLS_PORT" --helo app.example.org --xclient-addr 10.153.1.2 \
        --auth PLAIN --auth-user app-lm --auth-password app-lm-secret --from "$SENDER" --to someone@withmx.test 2>&1)
    check "AO1: a port that lost its TLS requirement: outpost refuses with 554 5.7.10" \
        has '^<\*\* +554 5\.7\.10 .*only over an encrypted connection'
    check "AO1: ... and the decision line names AO1" decision 1 'sasl_user=app-lm .*action="REJECT 5\.7\.10 .*check=AO1'

    OUT=$(swaks --server 127.0.0.1 --port "$S1_PORT" --helo app.example.org --tls \
        --xclient-addr 10.153.1.2 --from "$SENDER" --to someone@withmx.test 2>&1)
    check "AO2: TLS without AUTH is refused with 554 5.7.0" has '^<(\*\*|~\*) +554 5\.7\.0 .*needs authentication'
    check "AO2: ... and the decision line names AO2" decision 1 'action="REJECT 5\.7\.0 .*check=AO2'

    OUT=$(app app-locked --from noreply-locked@example.org)
    check "AO3: a locked function account is refused with 554 5.7.1" has '^<(\*\*|~\*) +554 5\.7\.1 .*app-locked is locked'
    check "AO3: ... and the decision line names AO3" decision 1 'check=AO3'
    OUT=$(app app-hm --from noreply-hm@hm.example.org)
    check "AO3: an account not enabled for this tenant (lm) is refused with 554 5.7.1" \
        has '^<(\*\*|~\*) +554 5\.7\.1 .*app-hm is not enabled for appout-lm'
    check "AO3: ... and the decision line names AO3" decision 1 'tenant=lm .*check=AO3'
    OUT=$(app alice --from alice@example.org)
    check "AO3: a login that is no function account is refused with 554 5.7.1" \
        has '^<(\*\*|~\*) +554 5\.7\.1 .*alice is not a function account for appout'
    check "AO3: ... and the decision line names AO3" decision 1 'sasl_user=alice .*check=AO3'

    # the SASL login with its realm: the same function account, by the one
    # login rule (directory { login }) for users and function accounts
    OUT=$(app app-lm@example.org --quit-after RCPT)
    check "AO3: the login with a realm (app-lm@example.org) is the function account app-lm: RCPT accepted" \
        has '^<~ +250 2\.1\.5 '
    check "AO3: ... decided DUNNO by appout-stage1 for that login" \
        decision 1 'service=appout-stage1 tenant=lm .*sasl_user=app-lm@example.org .*action=DUNNO'

    OUT=$(app app-lm --from portal-ba@lrz.example)
    check "AO4: another account's sender address is refused with 554 5.7.1" \
        has '^<(\*\*|~\*) +554 5\.7\.1 .*app-lm may not send as <portal-ba@lrz\.example>'
    check "AO4: ... and the decision line names AO4" decision 1 'check=AO4'

    OUT=$(app app-lm --xclient-addr 10.1.2.3)
    check "AO5: a client outside the account's networks is refused with 554 5.7.1" \
        has '^<(\*\*|~\*) +554 5\.7\.1 .*client 10\.1\.2\.3 is not in the networks allowed for function account app-lm'
    check "AO5: ... and the decision line names AO5" decision 1 'check=AO5'
    OUT=$(swaks --server 127.0.0.1 --port "$S1S_PORT" --tls-on-connect --helo app.example.org \
        --xclient-addr 10.1.2.3 --auth PLAIN --auth-user app-lm --auth-password app-lm-secret \
        --from "$SENDER" --to someone@withmx.test 2>&1)
    check "AO5: ... on submissions (465, TLS from the first byte) too" has '^<(\*\*|~\*) +554 5\.7\.1 .*client 10\.1\.2\.3 '
    check "AO1-AO5 refusals reached neither stage 2 nor its sink" sent_is 1

    # ---- AO7: stage 2 answers 5xx, stage 1 bounces to the application ---------
    # One message, three recipients: a domain that does not exist, a local
    # domain's mailbox that does not exist (the directory), and one that does.
    OUT=$(app app-lm --to x@nxdomain.test,nobody-here@example.org,bob@example.org)
    check "AO7: stage 1 accepts all three recipients (deliverability is stage 2's)" \
        has '^<~? +250 2\.0\.0 Ok: queued'
    check "AO7: ... stage 2 refuses the unknown domain with 5.1.2, stage 1 bounces it" \
        wait_for s1_log 'to=<x@nxdomain\.test>.*status=bounced .*said: 554 5\.1\.2 .*nxdomain\.test does not exist'
    check "AO7: ... stage 2 refuses the unknown local mailbox with 5.1.1, stage 1 bounces it" \
        wait_for s1_log 'to=<nobody-here@example\.org>.*status=bounced .*said: 554 5\.1\.1 .*does not exist'
    check "AO7: ... the decision lines name AO7" \
        bash -c "grep ' decision ' '$T/daemon.log' | grep -q 'rcpt=x@nxdomain.test action=\"REJECT 5.1.2 .*check=AO7' &&
                 grep ' decision ' '$T/daemon.log' | grep -q 'rcpt=nobody-here@example.org action=\"REJECT 5.1.1 .*check=AO7'"
    check "AO7: ... the application's sender gets the bounce (stage 1's notice)" \
        wait_for s1_log 'to=<noreply-lm@example\.org>.* status=sent'
    check "AO7: ... only the existing mailbox reached the sink (sink: 2)" wait_for sent_is 2
    check "AO7: ... and it is bob@example.org" grep -q 'to=<bob@example.org>.* status=sent' "$S2/log/maillog"

    # ---- AO8: over the agreed limit the mail waits in stage 1 ------------------
    # app-lm's agreed limit is 20000 (the directory); an operator override
    # lowers it to what the sender has already sent, so the next recipients are
    # over it.  Raising it again (no reload) and flushing stage 1's queue, as
    # an admin would, delivers them.
    check "AO8: the two recipients delivered so far were counted for $SENDER" counted 2
    check "AO8: outpostctl limit set lowers its limit to 2" limit_to 2 "lowered to what it sent"
    OUT=$(app app-lm --to one@withmx.test,two@withmx.test)
    check "AO8: stage 1 accepts a message to two more recipients (the limit is stage 2's)" \
        has '^<~? +250 2\.0\.0 Ok: queued'
    check "AO8: stage 2 defers both with 450 4.7.1, stage 1 keeps them" \
        wait_for s1_log 'to=<two@withmx\.test>.*status=deferred .*said: 450 4\.7\.1 .*reached its agreed send limit of 2 '
    check "AO8: ... and the decision line names AO8" \
        decision 10 'service=appout-stage2 .*rcpt=one@withmx\.test action="DEFER 4\.7\.1 .*check=AO8'
    sleep 1
    in_queue() { # PATTERN: both recipients are in stage 1's queue, with PATTERN as the reason
        local pq
        pq=$(postqueue -c "$S1/etc" -p 2>&1)
        [ "$(grep -cE '^ +(one|two)@withmx\.test' <<<"$pq")" -eq 2 ] && grep -qE -- "$1" <<<"$pq"
    }
    check "AO8: ... a second later postqueue -p still lists both, with stage 2's reason" \
        in_queue 'said: 450 4\.7\.1 .*agreed send limit'
    check "AO8: ... and nothing more reached the sink" sent_is 2

    # Stage 2 without outpost: its default_action (DEFER) keeps the mail in
    # stage 1 too, rather than bouncing or delivering it.
    check_log_clean
    check "outpostd stops (SIGTERM)" e2e_stop
    mv "$T/daemon.log" "$T/daemon-1.log"
    check "stage 2 without outpost: postqueue -f" postqueue -c "$S1/etc" -f
    check "... stage 2 defers (default_action) and the mail stays in stage 1" \
        wait_for s1_log 'to=<two@withmx\.test>.*status=deferred .*said: 450 4\.7\.1 .*Access denied'
    held_by() { sleep 0.5; in_queue "$1" && sent_is 2; }
    check "... both still in the queue, with that reason; nothing reached the sink" held_by 'Access denied'
    e2e_start || return 1
    check "outpostd restarted: counter and override survived (used 2, max 2 (operator))" \
        counted 2 '2 \(operator\)'

    # An operator pause (max 0), as docs/testing.md tells an admin to hold a sender.
    check "AO8: outpostctl limit set 0 pauses the sender" limit_to 0 "hold"
    check "AO8: postqueue -f flushes stage 1" postqueue -c "$S1/etc" -f
    check "AO8: ... stage 2 defers both with 450 4.7.1 ... may send no mail now" \
        wait_for s1_log 'to=<two@withmx\.test>.*status=deferred .*said: 450 4\.7\.1 .*may send no mail now'
    check "AO8: ... and the decision line names AO8" decision 2 'action="DEFER 4\.7\.1 .*may send no mail now.*check=AO8'
    check "AO8: ... both still queued, nothing delivered" held_by 'may send no mail now'

    check "AO8: outpostctl limit set raises it to 10 (no reload)" limit_to 10 "agreed more"
    check "AO8: postqueue -f flushes stage 1" postqueue -c "$S1/etc" -f
    check "AO8: ... both recipients are delivered (sink: 4)" wait_for sent_is 4
    check "AO8: ... stage 2 delivered one@ and two@" \
        bash -c "grep -q 'to=<one@withmx.test>.* status=sent' '$S2/log/maillog' &&
                 grep -q 'to=<two@withmx.test>.* status=sent' '$S2/log/maillog'"
    check "AO8: ... counted: used 4 of 10 (operator)" counted 4 '10 \(operator\)'
    check "AO8: ... stage 1's queue is empty" \
        bash -c "postqueue -c '$S1/etc' -p 2>&1 | grep -q 'Mail queue is empty'"
    unset_limit() { ctl limit clear appout_send "$SENDER" >/dev/null && ! ctl counter show appout_send "$SENDER" | grep -q operator; }
    check "AO8: outpostctl limit clear drops the override (the agreed limit applies again)" unset_limit
    check_log_clean
}

for FIXTURE in $E2E_FIXTURES; do
    if [ -z "$DAEMON_PID" ]; then
        # both stages ask the round's policy endpoint
        if ! { PF=$S2 pf_policy_round appout_policy "unix:$SOCK" lm &&
            PF=$S1 pf_policy_round appout_policy "unix:$SOCK" lm; }; then
            not_ok "Postfix reloaded"
            continue
        fi
        : > "$S1/log/maillog"
        : > "$S2/log/maillog"
        appout_outpostd_up || { not_ok "outpostd starts"; continue; }
    fi
    endpoint_listener_check
    PF=$S1 pf_endpoint_check appout_policy appout-stage1:lm
    PF=$S2 pf_endpoint_check appout_policy appout-stage2:lm
    scenarios
    fixture_round_end
done

e2e_finish

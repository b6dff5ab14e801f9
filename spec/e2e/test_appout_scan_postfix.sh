#!/bin/bash
# AO6 end to end through real Postfix: appout's two stages as in
# test_appout_postfix.sh, with stage 2's smtpd also asking outpostd as its
# milter (service appout-stage2, tenant lm), and the harness's real clamd
# (a test-only signature of a marker string) and rspamd (GTUBE rejected),
# spec/harness/svc_scan.sh.
#
#   swaks --STARTTLS + AUTH--> stage 1 --content_filter--> stage 2 smtpd
#         (policy: AO7, AO8 at RCPT; milter: AO6 at end of message) --> discard
#
# Scenarios (docs/testing.md, ## appout): a clean message is delivered; the
# marker (virus) and GTUBE (spam) are refused with 5xx by stage 2 and
# bounced by stage 1, the signature name in the bounce; clamd stopped keeps
# the message in stage 1's queue with a 4xx, delivered once clamd is back
# and the queue flushed; AO6=log-only delivers and logs.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

S1_PORT=$((POSTFIX_BASE_PORT + 5))   # stage 1, submission (587)
S2_PORT=$((POSTFIX_BASE_PORT + 7))   # stage 2 (10026)
MILTER_PORT=$OUTPOSTD_MILTER_PORT    # stage 2's milter: outpostd
SOCK=$T/appout-lm.sock
SENDER=noreply-lm@example.org
MARKER=OUTPOST-TEST-VIRUS-MARKER-7f3a9c
GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
SCANCTL=$ROOT/spec/harness/scan-ctl.sh

# outpostd: the shipped appout sections and the stage-2 milter listener of
# docs/services/appout.md; the harness's DNS, directory and scanners.
block() { awk -v n="$1" '$0 ~ "^"n" \\{" {p=1} p {print} p && /^}/ {p=0}' "$2"; }
{
    printf 'daemon {\n    state_dir = @T@/state\n    lua_dir = @T@/lua\n    lists_dir = @ROOT@/conf/lists\n}\n'
    block "listener appout-lm" "$ROOT/conf/outpost.conf" |
        sed -e "s|unix:\.\./var/run/appout-lm.sock|unix:$SOCK\n    socket_group = postfix|"
    printf 'listener appout-lm-milter {\n    listen = tcp:127.0.0.1:%s\n    protocol = milter\n    service = appout-stage2\n    tenant = lm\n}\n' "$MILTER_PORT"
    for b in "service appout-stage1" "service appout-stage2" "limit appout_send"; do
        block "$b" "$ROOT/conf/outpost.conf"
    done
    for b in dns ldap directory clamd rspamd; do block "$b" "$ROOT/build/harness/outpost.conf"; done
} | e2e_config
e2e_start || exit 1

. "$ROOT/spec/e2e/postfix.sh"
S1=$T/s1
S2=$T/s2

# Stage 2: the shipped 10026 smtpd (postfix.sh: pf_appout_stage) with the
# milter lines of docs/services/appout.md ("Turning AO6 on").
pf_appout_stage 2 "$S2" "$SOCK" "$S2_PORT"
cat >> "$PF/etc/master.cf" <<CONF
  -o smtpd_milters=inet:127.0.0.1:$MILTER_PORT
  -o milter_default_action=tempfail
  -o milter_content_timeout=60s
  -o smtpd_data_restrictions=
  -o smtpd_end_of_data_restrictions=
CONF
pf_start || exit 1

# Stage 1: the shipped submission service (no submissions), pointing at
# stage 2's port.
pf_appout_stage 1 "$S1" "$SOCK" "$S1_PORT" "$S2_PORT"
trap 'PF=$S1; pf_stop; PF=$S2; pf_stop; bash "$SCANCTL" clamd-start >/dev/null 2>&1; e2e_cleanup' EXIT
pf_sasl_user app-lm@appout-lm.test app-lm-secret
pf_start || exit 1

# ---- helpers ---------------------------------------------------------------
app() { # BODY [swaks args...]
    local body=$1
    shift
    swaks --server 127.0.0.1 --port "$S1_PORT" --helo app.example.org --tls \
        --xclient-addr 10.153.1.2 --auth PLAIN --auth-user app-lm --auth-password app-lm-secret \
        --from "$SENDER" --to "$RCPT" --body "$body" "$@" 2>&1
}
has() { grep -qE -- "$1" <<<"$OUT" || { echo "$OUT" | grep -E '^(<-|<~|<\*\*|<~\*|\*\*\*)' | tail -4 | sed 's/^/#   /'; return 1; }; }
wait_for() { local i; for ((i = 0; i < 150; i++)); do "$@" && return 0; sleep 0.1; done; return 1; }
s1_log() { grep -qE -- "$1" "$S1/log/maillog"; }
delivered() { PF=$S2 pf_delivered "$1"; }
delivered_is() { [ "$(delivered "$1")" -eq "$2" ]; }
ctl() { "$ROOT/build/outpostctl" -s "$T/state/control.sock" "$@"; }
# counted N: AO8's counter of the sender (one per recipient delivered)
counted() { ctl counter show appout_send "$SENDER" | grep -qE "^used +$1 "; }
mdecision() { grep ' decision ' "$T/daemon.log" | grep 'proto=milter' | grep -qE -- "$1"; }

# ---- a clean message is delivered ------------------------------------------
RCPT=clean@withmx.test
OUT=$(app "Hello, your order has shipped.")
check "clean: stage 1 accepts" has '^<~? +250 2\.0\.0 Ok: queued'
check "clean: stage 2 delivers it (sink)" wait_for delivered_is "$RCPT" 1
check "clean: the milter decision line has both verdicts" \
    mdecision 'service=appout-stage2 tenant=lm proto=milter phase=eom .*action="DUNNO" check=- reason=policy detail="AO6 clamd=clean rspamd=no_action/'

# ---- the marker (a virus to the test's clamd) bounces ----------------------
RCPT=virus@withmx.test
OUT=$(app "Attached: $MARKER")
check "virus: stage 1 accepts (scanning is stage 2's)" has '^<~? +250 2\.0\.0 Ok: queued'
check "virus: stage 2 refuses with 5xx naming the signature, stage 1 bounces it" \
    wait_for s1_log "to=<$RCPT>.*status=bounced .*said: 5[0-9][0-9] 5\.7\.1 message contains a virus \(Outpost\.Test\.Marker\.UNOFFICIAL\)"
check "virus: the decision line names AO6 and the signature" \
    mdecision 'action="REJECT 5\.7\.1 message contains a virus .* check=AO6 reason=policy detail="AO6 clamd=infected:Outpost\.Test\.Marker\.UNOFFICIAL'
check "virus: the application's sender gets stage 1's bounce" \
    wait_for s1_log "to=<$SENDER>.* status=sent"
check "virus: nothing reached the sink" delivered_is "$RCPT" 0

# ---- GTUBE (spam to rspamd) bounces ----------------------------------------
RCPT=spam@withmx.test
OUT=$(app "$GTUBE")
check "spam: stage 2 refuses GTUBE with 5xx and rspamd's verdict, stage 1 bounces it" \
    wait_for s1_log "to=<$RCPT>.*status=bounced .*said: 5[0-9][0-9] 5\.7\.1 message looks like spam \(rspamd: reject, score 15\.0 of 15\.0; GTUBE"
check "spam: the decision line names AO6 with rspamd's action and score" \
    mdecision 'check=AO6 reason=policy detail="AO6 clamd=clean rspamd=reject/15\.00/15\.00 symbols=GTUBE'
check "spam: nothing reached the sink" delivered_is "$RCPT" 0
check "AO8 and AO6 see one transaction: only the clean message is counted (refused ones released)" \
    wait_for counted 1

# ---- clamd down: 4xx, the mail waits in stage 1 until clamd is back --------
RCPT=later@withmx.test
check "clamd stopped (by its PID)" bash "$SCANCTL" clamd-stop
OUT=$(app "Hello again, nothing bad in here.")
check "clamd down: stage 1 accepts" has '^<~? +250 2\.0\.0 Ok: queued'
check "clamd down: stage 2 answers 4xx, stage 1 defers (the mail stays queued)" \
    wait_for s1_log "to=<$RCPT>.*status=deferred .*said: 4[0-9][0-9] 4\.7\.0 message cannot be scanned now \(clamd: connect: (ECONNREFUSED|ENOENT)\)"
check "clamd down: the decision line says why" \
    mdecision 'action="DEFER 4\.7\.0 message cannot be scanned now .* check=AO6 .*detail="AO6 clamd=unavailable:'
check "clamd down: postqueue -p still lists it" \
    bash -c "postqueue -c '$S1/etc' -p 2>&1 | grep -q '$RCPT'"
check "clamd down: not delivered" delivered_is "$RCPT" 0
check "clamd started again" bash "$SCANCTL" clamd-start
check "postqueue -f flushes stage 1" postqueue -c "$S1/etc" -f
check "clamd back: the queued message is delivered" wait_for delivered_is "$RCPT" 1
check "AO8: the deferred try was released, the delivered one counted (2)" wait_for counted 2

# ---- AO6=log-only: delivered, and the log says what it would have done -----
gen=$(grep -c 'reload: generation .* is current' "$T/daemon.log")
sed -i '/^service appout-stage2 {/a\    checks = [AO6=log-only]' "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
check "reload with checks = [AO6=log-only]" \
    wait_for bash -c "[ \$(grep -c 'reload: generation .* is current' '$T/daemon.log') -gt $gen ]"
RCPT=logonly@withmx.test
OUT=$(app "Attached: $MARKER")
check "log-only: the marker message is delivered" wait_for delivered_is "$RCPT" 1
check "log-only: the log says what AO6 would have answered" \
    log_has 'AO6 \(no virus and no spam \(clamd, rspamd\)\) log-only: would answer REJECT 5\.7\.1 message contains a virus \(Outpost\.Test\.Marker\.UNOFFICIAL\)'
check "log-only: the decision line has the verdict" \
    mdecision 'action="DUNNO" check=- reason=policy detail="AO6 clamd=infected:Outpost\.Test\.Marker\.UNOFFICIAL'

check_log_clean
e2e_finish

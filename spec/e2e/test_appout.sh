#!/bin/bash
# appout end to end: the appout sections of the shipped conf/outpost.conf (sockets moved
# into the temp dir) with the shipped policies and lists, against the
# harness's slapd and unbound.  The tenant comes from the listener,
# policy_context selects the stage, a mode change with SIGHUP changes the
# answer without a restart, and a stage-2 id on stage 1 is refused.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

# block NAME FILE: the top-level section "NAME {" ... "}" of FILE
block() { awk -v n="$1" '$0 ~ "^"n" \\{" {p=1} p {print} p && /^}/ {p=0}' "$2"; }
{
    printf 'daemon {\n    state_dir = %s/state\n    lua_dir = %s/lua\n    lists_dir = %s/conf/lists\n}\n' "$T" "$T" "$ROOT"
    for b in "listener appout-ba" "listener appout-hm" "listener appout-lm" "listener appout-tu" \
        "listener appout-stage2" "service appout-stage1" "service appout-stage2" "limit appout_send"; do
        block "$b" "$ROOT/conf/outpost.conf"
    done | sed -e "s|unix:\.\./var/run/|unix:$T/|" -e "s|tcp:127.0.0.1:10049|unix:$T/stage2.sock|"
    for s in dns ldap directory; do block "$s" "$ROOT/build/harness/outpost.conf"; done
} > "$T/outpost.conf"
e2e_start || exit 1

LM=unix:$T/appout-lm.sock
BA=unix:$T/appout-ba.sock
S2=unix:$T/stage2.sock
GOOD="encryption_protocol=TLSv1.3 sasl_username=app-lm sender=noreply-lm@example.org client_address=10.153.1.2 recipient=x@withmx.test protocol_state=RCPT instance=e2e.1"
ask() { $ASK "$@" 2>/dev/null; }

check "AO1-AO5 pass on LMU's socket (stage 1 by policy_context)" \
    bash -c "$ASK $LM $GOOD policy_context=appout-stage1 | grep -qx 'action=DUNNO'"
check "without policy_context the listener's service answers (stage 1)" \
    bash -c "$ASK $LM $GOOD | grep -qx 'action=DUNNO'"
check "AO3: the tenant comes from the listener (app-lm on BAdW's socket)" \
    bash -c "$ASK $BA $GOOD | grep -q '^action=REJECT 5.7.1 function account app-lm is not enabled for appout-ba'"
check "... and the decision line names AO3" log_has "check=AO3"
check "AO1: no TLS" bash -c "$ASK $LM ${GOOD/TLSv1.3/} | grep -q '^action=REJECT 5.7.10 '"
check "AO7 on the tenant socket with policy_context=appout-stage2: no such domain is 5xx" \
    bash -c "$ASK $LM sender=portal-lm@example.org recipient=x@no-such-domain.test protocol_state=RCPT instance=e2e.2 policy_context=appout-stage2 | grep -q '^action=REJECT 5.1.2 '"
check "AO7: DNS timeout is 4xx (stays queued)" \
    bash -c "$ASK $S2 sender=portal-lm@example.org recipient=x@timeout.test protocol_state=RCPT instance=e2e.3 | grep -q '^action=DEFER 4.4.3 '"
check "AO7, AO8 pass on the shared stage-2 listener" \
    bash -c "$ASK $S2 sender=portal-lm@example.org recipient=bob@example.org protocol_state=RCPT instance=e2e.4 | grep -qx 'action=DUNNO'"

OUT="encryption_protocol=TLSv1.3 sasl_username=app-ba sender=noreply-ba@lrz.example client_address=10.1.2.3 recipient=x@withmx.test protocol_state=RCPT instance=e2e.5"
check "AO5: app-ba outside its network" bash -c "$ASK $BA $OUT | grep -q '^action=REJECT 5.7.1 client 10.1.2.3 '"
sed -i 's/^    tenant_checks = \[\]/    tenant_checks = [ba:AO5=log-only]/' "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
reloaded() { grep -c "ready: generation" "$T/daemon.log" | grep -qx 2; }
for _ in $(seq 1 100); do reloaded && break; sleep 0.05; done
check "SIGHUP with tenant_checks = [ba:AO5=log-only]: BAdW's AO5 only logs" \
    bash -c "$ASK $BA $OUT | grep -qx 'action=DUNNO'"
check "... and the log says what it would have answered" log_has "AO5 \(.*\) log-only: would answer REJECT 5.7.1 client 10.1.2.3"
check "... other tenants still enforce AO5" \
    bash -c "$ASK $LM ${GOOD/10.153.1.2/10.1.2.3} | grep -q '^action=REJECT 5.7.1 client 10.1.2.3 '"
check "SIGTERM stops it with status 0" e2e_stop

sed 's/^    checks = \[\]/    checks = [AO7=log-only]/' "$T/outpost.conf" > "$T/typo.conf"
check "a stage-2 id in appout-stage1's checks is refused at load" bash -c \
    "'$OUTPOSTD' --check -c '$T/typo.conf' 2>&1 | grep -q 'service appout-stage1: checks names AO7, which is not a check of this policy'"
check_log_clean
e2e_finish

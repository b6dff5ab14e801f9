#!/bin/bash
# Faults end to end on postout (spec/e2e/postout_rig.sh: real Postfix,
# outpostd, the harness's slapd and unbound, swaks as the mail program):
#   1. slapd dies during a run of messages: the recipients get 4xx (never
#      250, never 5xx), the client keeps the message and retries; once
#      slapd is back every message is accepted and delivered exactly once;
#   2. outpostd reloaded (SIGHUP) and restarted (SIGTERM, start) during a
#      bounded loop of messages: every good message ends accepted and is
#      delivered exactly once, every bad one (a sender not the user's) ends
#      refused with 5xx and is never delivered; the ones that met the
#      restart got 4xx (Postfix's default_action) and were retried.
# The client's retry is a loop: a 4xx is retried after a pause, at most
# RETRIES times (a mail program does the same with its outbox).
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup
# shellcheck disable=SC1091
. "$ROOT/spec/e2e/postout_rig.sh"
# every request asks slapd (no answer cache), so its death shows at once
POSTOUT_LDAP_EXTRA="    cache_size = 0" postout_rig_up || exit 1

LDAP_CTL="bash $ROOT/spec/harness/ldap-ctl.sh"
LOOP_PID=
stop_loop() { [ -n "$LOOP_PID" ] && kill "$LOOP_PID" 2>/dev/null; wait "$LOOP_PID" 2>/dev/null; LOOP_PID=; }
# the harness's slapd is shared with later tests: always back on exit
trap 'stop_loop; $LDAP_CTL start; pf_stop; e2e_cleanup' EXIT

RETRIES=30
# send_until_final I KIND: one message, retried while it gets 4xx; appends
# "I KIND CODE TRIES 4xx-SEEN FIRST-4xx" to $T/outcomes.  KIND good: carol to
# fault-I@withmx.test; bad: alice as bob@example.org to fault-I@withmx.test.
send_until_final() {
    local i=$1 kind=$2 n out code deferred=0 args first4xx=-
    if [ "$kind" = good ]; then
        args=(--auth-user carol@example.org --auth-password carol-secret --from carol@example.org)
    else
        args=(--from bob@example.org)
    fi
    for ((n = 1; n <= RETRIES; n++)); do
        out=$(submit "${args[@]}" --to "fault-$i@withmx.test")
        if grep -qE '^<~  250 2\.0\.0 Ok: queued' <<<"$out"; then code=250
        else code=$(grep -oE '^<(~|\*)\* [0-9]{3}' <<<"$out" | head -1 | cut -c5-); fi
        code=${code:-none}
        case $code in
            4??) deferred=$((deferred + 1))
                [ "$first4xx" = - ] && first4xx=$(grep -oE '^<(~|\*)\* 4[0-9][0-9] 4\.[0-9.]+' <<<"$out" | head -1 | cut -c5- | tr ' ' _)
                sleep 0.3 ;;
            *) break ;;
        esac
    done
    echo "$i $kind $code $n $deferred $first4xx" >> "$T/outcomes"
}

# all_final KIND CODE [FROM TO]: every message of KIND in the outcomes
# (numbered FROM..TO) ended with CODE
all_final() {
    awk -v k="$1" -v c="$2" -v a="${3:-0}" -v b="${4:-999999}" \
        '$2 == k && $1 >= a && $1 <= b { n++; if ($3 !~ "^" c) bad++ } END { exit !(n > 0 && !bad) }' \
        "$T/outcomes"
}
deferred_some() { awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b && $5 > 0 { f = 1 } END { exit !f }' "$T/outcomes"; }
# every good message of FROM..TO delivered exactly once, no bad one at all
sink_exact() {
    local i kind want
    sleep 0.5
    while read -r i kind _; do
        { [ "$i" -ge "$1" ] && [ "$i" -le "$2" ]; } || continue
        want=0; [ "$kind" = good ] && want=1
        pf_wait_sent "$want" "fault-$i@withmx\.test" || true
        [ "$(pf_delivered_re "fault-$i@withmx\.test")" -eq "$want" ] ||
            { echo "#   fault-$i ($kind): $(pf_delivered_re "fault-$i@withmx\.test") delivered"; return 1; }
    done < "$T/outcomes"
}

# --- 1. slapd dies during a run -----------------------------------------
for i in 1 2 3; do send_until_final "$i" good; done
$LDAP_CTL kill
# while slapd is away: one try each, the client keeps the message
for i in 4 5 6; do
    out=$(submit --auth-user carol@example.org --auth-password carol-secret --from carol@example.org \
        --to "fault-$i@withmx.test")
    check "slapd away: message $i gets 451 4.3.0 at RCPT (the client keeps it)" \
        grep -qE '^<~\* 451 4\.3\.0 .*user directory cannot be reached' <<<"$out"
done
check "... decided by PO3 (the first check asking the directory)" \
    log_has 'decision .*sasl_user=carol@example.org .*rcpt=fault-4@withmx.test action="451 4\.3\.0 .*check=PO3'
check "... nothing of them reached the sink" bash -c "sleep 0.5; [ \$(grep -cE 'to=<fault-[456]@withmx.test>.*status=sent' '$PF/log/maillog') -eq 0 ]"
$LDAP_CTL start
# the client retries 4..6, then goes on
for i in 4 5 6 7 8; do send_until_final "$i" good; done
check "slapd back: the deferred messages are accepted on retry, the later ones too" all_final good 250 1 8
check "... every message 1..8 delivered exactly once" sink_exact 1 8

# --- 2. outpostd reloaded and restarted during a loop -------------------
# Messages 101..160, every 5th a bad one; the loop runs in the background
# while the daemon is reloaded and restarted twice each, at fixed points
# of the loop's progress.
(
    for ((i = 101; i <= 160; i++)); do
        if ((i % 5 == 0)); then send_until_final "$i" bad; else send_until_final "$i" good; fi
    done
) &
LOOP_PID=$!
progress() { # wait until the loop has finished N messages of run 2 (at most 60 s)
    local n
    for ((n = 0; n < 600; n++)); do
        [ "$(awk '$1 > 100' "$T/outcomes" | wc -l)" -ge "$1" ] && return 0
        kill -0 "$LOOP_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# the daemon stopped for a while, as an admin's restart or a crash would
down_for() { e2e_stop; sleep "$1"; daemon_restart; }
progress 8 && kill -HUP "$DAEMON_PID"
progress 16 && down_for 1.5
progress 28 && kill -HUP "$DAEMON_PID"
progress 36 && down_for 1.5
progress 44 && kill -HUP "$DAEMON_PID"
wait "$LOOP_PID"
LOOP_PID=

awk '$1 > 100 && $5 > 0 { m++; d += $5; c[$6]++ } END { printf "# run 2: %d messages met a 4xx (%d 4xx answers in all), each retried; first 4xx:", m, d; for (k in c) printf " %s (%d)", k, c[k]; print "" }' "$T/outcomes"
check "the loop finished: 60 messages, each with a final answer" \
    bash -c "[ \$(awk '\$1 > 100' '$T/outcomes' | wc -l) -eq 60 ]"
check "outpostd was reloaded 3 times and restarted twice during it" \
    bash -c "[ \$(cat '$T'/daemon.log* | grep -c 'reload: generation [0-9]* is current') -eq 3 ] && [ $DAEMON_RUNS -eq 2 ]"
check "messages that met the restarts got 4xx and were retried" deferred_some 101 160
# 450 4.7.1: Postfix's default_action=DEFER_IF_PERMIT, outpostd away;
# 451 4.7.1 or 454 4.3.0: milter_default_action=tempfail, outpostd's milter
# away: Postfix refuses the session from CONNECT on, so swaks sees it at
# EHLO or as STARTTLS refused;
# 451 4.3.5: outpostd's service default_action, a request cut by its stop
check "... the 4xx was the fragment's or outpostd's default_action, nothing else" \
    bash -c "! awk '\$1 > 100 && \$5 > 0 && \$6 != \"450_4.7.1\" && \$6 != \"451_4.7.1\" && \$6 != \"454_4.3.0\" && \$6 != \"451_4.3.5\"' '$T/outcomes' | grep -q ."
check "every good message ended accepted (250)" all_final good 250 101 160
check "every bad message (alice as bob@example.org) ended refused with 553, never accepted" \
    all_final bad 553 101 160
check "the sink has every good message exactly once and no bad one" sink_exact 101 160
check "... decided by PO4 each time" \
    bash -c "[ \$(cat '$T'/daemon.log* | grep -c 'decision .*sender=bob@example.org .*check=PO4') -ge 12 ]"

check_logs_clean
e2e_finish

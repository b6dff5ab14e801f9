#!/bin/bash
# A deferred mail found by its queue id, first in Postfix's log, then in
# outpostd's decision lines (issue 18, docs/operations.md "Finding a
# deferred mail").  A real Postfix asks outpostd's policy service at RCPT,
# DATA and END-OF-MESSAGE and runs it as its milter; spec/e2e/logs/qid.lua
# defers the recipient later@ at RCPT (the second recipient: Postfix has
# opened the queue file by then) and the whole message of defer@ at
# END-OF-MESSAGE.  Also records what Postfix 3.7 sends as queue_id at each
# protocol_state, with smtpd_delay_open_until_valid_rcpt = yes (the
# default) and no, and the milter's i macro at each phase.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

PORT=$((POSTFIX_BASE_PORT + 6))
POLICY_PORT=$OUTPOSTD_TCP_PORT
MILTER_PORT=$OUTPOSTD_MILTER_PORT
e2e_config <<EOF
listener qid-policy {
    listen = tcp:127.0.0.1:$POLICY_PORT
    service = qid
    tenant = lrz
}
listener qid-milter {
    listen = tcp:127.0.0.1:$MILTER_PORT
    protocol = milter
    service = qid
    tenant = lrz
}
service qid {
    policy = @ROOT@/spec/e2e/logs/qid.lua
}
EOF
e2e_start || exit 1

. "$ROOT/spec/e2e/postfix.sh"
pf_setup "$T/pf" qid.test
PF_PORT=$PORT
pf_ask_outpostd "$POLICY_PORT" "$MILTER_PORT" recipient data end_of_data
# the second smtpd opens the queue file at MAIL FROM
printf '%s\n' "127.0.0.1:$PORT inet n - n - - smtpd" \
    "127.0.0.1:$((PORT + 1)) inet n - n - - smtpd -o smtpd_delay_open_until_valid_rcpt=no" \
    > "$PF/etc/master.cf"
pf_start || exit 1

send() { # port, then swaks options
    local port=$1
    shift
    swaks --server 127.0.0.1 --port "$port" --helo client.example.org "$@" 2>&1
}
maillog() { cat "$PF/log/maillog"; }

# 1. later@ is the second recipient: deferred at RCPT, bob@ gets the mail.
out=$(send "$PORT" --from alice@example.org --to bob@example.net,later@example.net)
check "RCPT later@: the client sees outpostd's 450 4.7.1" grep -q \
    '^<\*\* 450 4\.7\.1 <later@example.net>: Recipient address rejected: recipient later@example.net must wait' <<<"$out"
qid1=$(sed -nE 's/^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+).*/\1/p' <<<"$out")
check "the message is queued for bob@ (queue id $qid1)" test -n "$qid1"
pfline1=$(maillog | grep -E "postfix-outpost-qid.test/smtpd\[[0-9]+\]: $qid1: reject: RCPT from .*: 450 4\.7\.1 <later@example.net>")
check "Postfix's log has the reject of later@ under the queue id" test -n "$pfline1"
line1=$(grep -E "decision req=[0-9]+ service=qid tenant=lrz .*rcpt=later@example.net action=\"DEFER 4\.7\.1 .* check=QD1 reason=policy .* queue_id=$qid1 instance=[0-9a-f.]+ protocol_state=RCPT$" "$T/daemon.log")
check "outpostd's decision line for later@ has queue_id=$qid1, instance, protocol_state=RCPT" test -n "$line1"

# 2. defer@'s message: deferred at END-OF-MESSAGE, where the DATA decision
# and the milter's at DATA carry the same queue id (Postfix runs
# smtpd_end_of_data_restrictions before the milter's end of message: a
# message deferred there never reaches the milter's eom).
out=$(send "$PORT" --from defer@example.org --to carol@example.net --header "Subject: deferred")
check "END-OF-MESSAGE: the client sees outpostd's 450 4.7.1" \
    grep -q '^<\*\* 450 4\.7\.1 .*message from defer@example.org held back' <<<"$out"
pfline2=$(maillog | grep -E ": reject: END-OF-MESSAGE from .*: 450 4\.7\.1 .*message from defer@example.org held back.*from=<defer@example.org>")
qid2=$(sed -nE 's/.*smtpd\[[0-9]+\]: ([0-9A-F]+): reject: END-OF-MESSAGE.*/\1/p' <<<"$pfline2")
check "Postfix's log has the END-OF-MESSAGE reject under a queue id ($qid2)" test -n "$qid2"
by_qid=$(grep -E "decision .* queue_id=$qid2( |$)" "$T/daemon.log")
check "outpostd's END-OF-MESSAGE decision has queue_id=$qid2" \
    grep -qE "sender=defer@example.org .*action=\"DEFER 4\.7\.1 .* check=QD1 .* queue_id=$qid2 instance=[0-9a-f.]+ protocol_state=END-OF-MESSAGE$" <<<"$by_qid"
check "... so do its DATA decision and the milter's at DATA" bash -c \
    "grep -qE 'action=DUNNO .*queue_id=$qid2 instance=[0-9a-f.]+ protocol_state=DATA\$' <<<'$by_qid' &&
     grep -qE 'proto=milter phase=data .*queue_id=$qid2\$' <<<'$by_qid'"
# all decisions of the transaction share Postfix's instance
inst=$(grep -E "queue_id=$qid2 .*protocol_state=END-OF-MESSAGE" "$T/daemon.log" | grep -oE 'instance=[0-9a-f.]+' | cut -d= -f2)
check "the RCPT decision of that message (no queue id yet) has the same instance ($inst)" \
    test -n "$inst" -a -n "$(grep -E "rcpt=carol@example.net .*queue_id=\"\" instance=$inst protocol_state=RCPT$" "$T/daemon.log")"

# 3. What Postfix 3.7 sends: the policy's queue_id per protocol_state and
# the milter's i per phase (the policy logs both).
seen() { grep -oE "qid (policy|milter): [A-Za-z-]+ (queue_id|i)=[0-9A-F]*" "$T/daemon.log"; }
first_rcpt=$(grep -E "qid policy: RCPT queue_id=[0-9A-F]* rcpt=carol@example.net" "$T/daemon.log" | tail -1)
check "delay_open yes: the first RCPT has no queue_id" grep -q 'queue_id= rcpt' <<<"$first_rcpt"
check "delay_open yes: the second RCPT has it" grep -qE "qid policy: RCPT queue_id=$qid1 rcpt=later@example.net" "$T/daemon.log"
check "delay_open yes: DATA and END-OF-MESSAGE have it" bash -c \
    "grep -q 'qid policy: DATA queue_id=$qid2 ' '$T/daemon.log' && grep -q 'qid policy: END-OF-MESSAGE queue_id=$qid2 ' '$T/daemon.log'"
out=$(send $((PORT + 1)) --from alice@example.org --to dave@example.net --header "Subject: early")
qid3=$(sed -nE 's/^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+).*/\1/p' <<<"$out")
check "delay_open no: queued ($qid3)" test -n "$qid3"
check "delay_open no: the first RCPT has the queue_id" \
    grep -qE "qid policy: RCPT queue_id=$qid3 rcpt=dave@example.net" "$T/daemon.log"
check "delay_open no: the milter's i is there at RCPT" bash -c \
    "grep -qE 'proto=milter phase=rcpt .*queue_id=$qid3\$' '$T/daemon.log'"

# 4. Two messages on one SMTP connection: Postfix sends no i before the
# second message has a queue file, so the milter must not show the first
# message's queue id on the second's MAIL and RCPT lines.
python3 - "$PORT" <<'PY' > "$T/two.out" 2>&1
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("client.example.org")
for n in (1, 2):
    r = s.sendmail("two%d@example.org" % n, ["erin%d@example.net" % n], "Subject: %d\r\n\r\nbody\r\n" % n)
s.quit()
PY
first_qid=$(grep -E 'proto=milter phase=data .*sender="<two1@example.org>"' "$T/daemon.log" | grep -oE 'queue_id=[0-9A-F]+' | cut -d= -f2)
check "two messages on one connection: the first has its queue id ($first_qid)" test -n "$first_qid"
check "... the second's milter MAIL and RCPT lines do not show it" bash -c \
    "grep -E 'proto=milter phase=(mail|rcpt) .*sender=\"<two2@example.org>\"' '$T/daemon.log' | grep -c 'queue_id=\"\"\$' | grep -qx 2"

echo "# what arrived (policy protocol_state queue_id, milter phase i):"
seen | sort | uniq -c | sed 's/^/#   /'

echo "# Postfix: $pfline2"
echo "# outpostd:"
grep -F "queue_id=$qid2" "$T/daemon.log" | sed 's/^/#   /'
pf_stop
e2e_stop
check_log_clean
e2e_finish

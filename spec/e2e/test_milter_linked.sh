#!/bin/bash
# Correlation end to end: a real Postfix asks outpostd's policy service at
# RCPT and DATA (check_policy_service) and runs outpostd as its milter
# (smtpd_milters), both bound to one service, spec/e2e/linked/policy.lua
# (P.service link = true).  The milter's end-of-message check must see what
# the policy decided for the same transaction: it puts it in a header of the
# message and holds it, and the test reads the header from Postfix's hold
# queue (postcat).  A transaction that ends before DATA gives back, at the
# milter's ABORT, the recipients the policy reserved.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

PORT=$((POSTFIX_BASE_PORT + 2))
POLICY_PORT=$OUTPOSTD_TCP_PORT
MILTER_PORT=$OUTPOSTD_MILTER_PORT
e2e_config <<EOF
listener linked-policy {
    listen = tcp:127.0.0.1:$POLICY_PORT
    service = linked
}
listener linked-milter {
    listen = tcp:127.0.0.1:$MILTER_PORT
    protocol = milter
    service = linked
}
service linked {
    policy = @ROOT@/spec/e2e/linked/policy.lua
    checks = [XL2=log-only]
}
counters {
    reservation_timeout = 1h
}
limit e2e_rcpt {
    max = 100
    window = 1h
    resolution = 1m
}
EOF
e2e_start || exit 1

. "$ROOT/spec/e2e/postfix.sh"
pf_setup "$T/pf" linked.test
PF_PORT=$PORT
pf_ask_outpostd "$POLICY_PORT" "$MILTER_PORT" recipient data
# a second smtpd asks the policy at RCPT only: no request carries a queue id
printf '%s\n' "127.0.0.1:$PORT inet n - n - - smtpd" \
    "127.0.0.1:$((PORT + 1)) inet n - n - - smtpd -o smtpd_data_restrictions=" > "$PF/etc/master.cf"
pf_start || exit 1

send() { swaks --server 127.0.0.1 --port "$PORT" --helo client.example.org \
    --from alice@example.org "$@" 2>&1; }
queued_as() { sed -nE 's/^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+).*/\1/p'; }
header_of() { postcat -c "$PF/etc" -h -q "$1" 2>/dev/null | grep '^X-Outpost-Policy:'; }
policy_instance() { # the instance the policy logged at the RCPT of $1
    sed -nE "s/.*linked policy: RCPT instance=([^ ]+) queue_id=[^ ]* rcpt=$1\$/\1/p" "$T/daemon.log" | tail -1
}
has() { grep -qF -- "$1" <<<"$hdr"; }

# 1. Two recipients, one refused by the policy, one passed with a log-only
# note: the second RCPT carries the queue id, the first does not.
out=$(send --to bob@example.net,refused@example.org --header "Subject: linked")
qid=$(queued_as <<<"$out")
check "the message is queued (to bob; refused@ refused at RCPT by the policy)" test -n "$qid"
check "... refused@ got the policy's 5.7.1" grep -q \
    '^<\*\* 554 5\.7\.1 <refused@example.org>: Recipient address rejected: refused by the policy' <<<"$out"
hdr=$(header_of "$qid")
echo "# $hdr"
inst=$(policy_instance bob@example.net)
check "the policy saw the transaction's instance at RCPT" test -n "$inst"
check "the milter's header names the policy's instance" has "instance=$inst;"
check "... and the queue id, learned from the second RCPT" has "queue_id=$qid"
check "... the policy's answer for bob" has "rcpt:bob@example.net=DUNNO"
check "... and for the refused recipient" has "rcpt:refused@example.org=REJECT 5.7.1 refused by the policy"
check "... the log-only check's would-be answer" has "logonly:XL2=REJECT 5.7.1 would be refused"
check "... a check's note (the last RCPT's)" has "note:used=2"
check "... the DATA stage's answer" has "stage:DATA=DUNNO"
check "the message was held by the milter (quarantine)" bash -c \
    "postqueue -c '$PF/etc' -j 2>/dev/null | grep -q '\"queue_name\": \"hold\", \"queue_id\": \"$qid\"'"

# 2. One recipient, and the policy asked at RCPT only: Postfix has no queue
# id at the only RCPT; the milter finds the transaction by client address,
# port and sender.
out=$(send --port $((PORT + 1)) --to carol@example.org --header "Subject: one")
qid=$(queued_as <<<"$out")
hdr=$(header_of "$qid")
echo "# $hdr"
inst=$(policy_instance carol@example.org)
check "a one-recipient message is linked by client, port and sender" has "instance=$inst;"
check "... the policy side never had its queue id" bash -c "[ -n '$hdr' ] && ! grep -q 'queue_id=' <<<'$hdr'"
check "... without a DATA stage, the milter's end of message commits the reservation" \
    log_has 'transaction: 1 reserved recipient\(s\) committed at end of message'
check "... which is the only commit there: the DATA stage committed bob's" \
    test "$(grep -c 'committed at end of message' "$T/daemon.log")" = 1

# 3. Two messages on one connection: the second sees its own transaction.
mark=$(wc -l < "$T/daemon.log")
python3 - "$PORT" > "$T/two.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.ehlo("client.example.org")
for to in ("erin@example.org", "frank@example.org"):
    s.sendmail("alice@example.org", [to],
               "From: alice@example.org\r\nTo: %s\r\nSubject: two\r\n\r\nhi\r\n" % to)
s.quit()
PY
milter_lines() { tail -n +"$mark" "$T/daemon.log" | grep 'linked milter:'; }
check "two messages on one connection are both linked" test "$(milter_lines | wc -l)" = 2
last=$(milter_lines | tail -1)
check "... the second sees its own recipient" grep -q 'rcpt:frank@example.org=DUNNO' <<<"$last"
check "... not the first's" bash -c "[ -n '$last' ] && ! grep -q 'rcpt:erin@' <<<'$last'"

# 4. A transaction that ends after RCPT: the milter's ABORT releases the
# recipient the policy reserved.
send --to gina@example.org --quit-after RCPT >/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
    log_has 'transaction aborted' && break
    sleep 0.2
done
check "a transaction ended after RCPT releases its reservation at the milter's abort" \
    log_has 'transaction aborted: 1 reserved recipient\(s\) released'
check "... no other: the aborts after delivered messages find nothing left" \
    test "$(grep -c 'transaction aborted' "$T/daemon.log")" = 1
# 5. The macros the policy declared (policy.macros, SMFIR_SETSYMLIST) are
# what Postfix sent: its own default list for connect is replaced.
macros=$(grep 'linked macros:' "$T/daemon.log" | tail -1)
echo "# $macros"
check "Postfix sent the declared connect macros ({daemon_port}, {client_port})" \
    grep -qE "\{client_port\}=[0-9]+ \{daemon_port\}=$PORT " <<<"$macros"
check "... and not its default ones (v, {daemon_name})" bash -c \
    "[ -n '$macros' ] && ! grep -qE ' v=|\{daemon_name\}=' <<<'$macros'"
check "... the declared MAIL and DATA ones ({mail_addr}, i)" bash -c \
    "grep -q '{mail_addr}=alice@example.org' <<<'$macros' && grep -qE '(^| )i=[0-9A-F]+' <<<'$macros'"
check "... and not Postfix's other MAIL defaults ({mail_host})" bash -c "[ -n '$macros' ] && ! grep -q 'mail_host' <<<'$macros'"
bad_macros() { # the policy's macros table, what --check must say
    printf 'return { on_request = function() end, on_eom = function() end, macros = %s }\n' "$1" > "$T/bad.lua"
    sed "s|policy = .*linked/policy.lua|policy = $T/bad.lua|" "$T/outpost.conf" > "$T/bad.conf"
    "$OUTPOSTD" --check -c "$T/bad.conf" 2>&1 | grep -qF -- "$2"
}
check "a policy asking for macros of an unknown stage is refused at load" \
    bad_macros '{ body = { "i" } }' 'policy.macros.body: no such stage'
check "... and for a name that is no macro name" \
    bad_macros '{ mail = { "i", "auth_authen" } }' 'policy.macros.mail[2]: not a macro name'
check "the milter's decisions are logged" \
    log_has 'decision req=[0-9]+ service=linked tenant=- proto=milter phase=eom client=127.0.0.1 .*check=XL3'
check_log_clean
e2e_finish

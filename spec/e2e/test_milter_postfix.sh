#!/bin/bash
# The milter end to end through a real Postfix: smtpd_milters points at
# outpostd's milter listener, which runs lua/policies/messages.lua (G3, G4;
# PO8 needs SASL: test_po8_postfix.sh).
# swaks submits messages; the reply codes Postfix gives at end of data, the
# decision log and Postfix's milter_default_action when outpostd is away are
# what the test checks; with checks = [G4=tag] a second smtpd's messages go on
# with X-Outpost-G4.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

PORT=$((POSTFIX_BASE_PORT + 1))
MILTER_PORT=$OUTPOSTD_MILTER_PORT
TAG_PORT=$((POSTFIX_BASE_PORT + 4))     # an smtpd whose milter tags G4
TAG_MILTER_PORT=$OUTPOSTD_TCP_PORT      # (no policy listener in this test)
e2e_config <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @ROOT@/conf/lists
}
listener messages {
    listen = tcp:127.0.0.1:$MILTER_PORT
    protocol = milter
    service = messages
}
service messages {
    policy = messages
    default_action = "451 4.3.5 message checks unavailable, try again later"
}
# G4 in tag mode: the same policy, a second listener and smtpd
listener messages-tag {
    listen = tcp:127.0.0.1:$TAG_MILTER_PORT
    protocol = milter
    service = messages-tag
}
service messages-tag {
    policy = messages
    checks = [G4=tag]
    default_action = "451 4.3.5 message checks unavailable, try again later"
}
EOF
harness_sections ldap directory >> "$T/outpost.conf"
e2e_start || exit 1

. "$ROOT/spec/e2e/postfix.sh"
pf_setup "$T/pf" milter.test
PF_PORT=$PORT
cat >> "$PF/etc/main.cf" <<EOF
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_milters = inet:127.0.0.1:$MILTER_PORT
milter_protocol = 6
milter_default_action = tempfail
# Postfix adds a missing Date and Message-ID for clients it rewrites headers
# for (by default its own interfaces, so 127.0.0.1): G3 would never see
# them missing.  Submission clients are remote in production.
local_header_rewrite_clients =
# the tagged messages are held, so the test can read their header
milter_header_checks = regexp:$PF/etc/milter_header_checks
EOF
echo '/^X-Outpost-G4: / HOLD tagged by G4' > "$PF/etc/milter_header_checks"
printf '%s\n' "127.0.0.1:$PORT inet n - n - - smtpd" \
    "127.0.0.1:$TAG_PORT inet n - n - - smtpd -o smtpd_milters=inet:127.0.0.1:$TAG_MILTER_PORT" \
    > "$PF/etc/master.cf"
pf_start || exit 1

send() { swaks --server 127.0.0.1 --port "$PORT" --helo client.example.org \
    --from alice@example.org --to bob@withmx.test "$@" 2>&1; }
expect() { # what, pattern, swaks args...
    local what=$1 pattern=$2 out
    shift 2
    out=$(send "$@")
    if grep -qE -- "$pattern" <<<"$out"; then ok "$what"; else
        not_ok "$what"; echo "$out" | grep -E '^(<-|<\*\*|\*\*\*)' | tail -4 | sed 's/^/#   /'
    fi
}
NL=$'\r\n'
message() { # headers..., then the body as the last argument
    local out="" a
    for a in "$@"; do out+="$a$NL"; done
    printf '%s' "$out"
}

expect "a well-formed message without shortener links is queued" \
    '^<-  250 2\.0\.0 Ok: queued' --header "Subject: hello"
check "... and the milter's end-of-message decision is logged" \
    log_has 'decision req=[0-9]+ service=messages tenant=- proto=milter phase=eom client=127.0.0.1 .* action="DUNNO"'
expect "G4: a link to a URL shortener is refused at end of data with 5.7.1" \
    '^<\*\* 550 5\.7\.1 .*URL shorteners \(bit\.ly\)' --header "Subject: look" \
    --body "see https://bit.ly/3abcdef for the details"
expect "G3: a message with two From headers is refused with 5.6.0" \
    '^<\*\* 550 5\.6\.0 .*RFC 5322' --add-header "From: other@example.org"
expect "G3: a message without Date is refused with 5.6.0" \
    '^<\*\* 550 5\.6\.0 .*RFC 5322' --data "$(message 'From: alice@example.org' 'To: bob@withmx.test' \
        'Message-ID: <nodate@example.org>' 'Subject: no date' '' 'body')"
check "the refusals name their checks in the decision log" \
    bash -c "grep -q 'phase=eom .* check=G4 ' '$T/daemon.log' && grep -q 'phase=eom .* check=G3 ' '$T/daemon.log'"

# G4=tag: the shortener link is accepted, the message carries X-Outpost-G4.
out=$(send --port "$TAG_PORT" --header "Subject: look" --body "see https://bit.ly/3abcdef and www.tinyurl.com/x")
qid=$(sed -nE 's/^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+).*/\1/p' <<<"$out")
check "G4=tag: a message with a shortener link is queued, not refused" test -n "$qid"
hdr=$(postcat -c "$PF/etc" -h -q "$qid" 2>/dev/null | grep '^X-Outpost-G4:')
echo "# $hdr"
check "... and carries X-Outpost-G4 naming the shortener" test "$hdr" = "X-Outpost-G4: url-shortener bit.ly"
check "... the tag is logged" log_has 'G4 \(no links to URL shorteners\) tagged: url-shortener bit\.ly'
check "... the decision is DUNNO" log_has 'decision req=[0-9]+ service=messages-tag .*phase=eom .*action="DUNNO"'
out=$(send --port "$TAG_PORT" --header "Subject: plain")
qid=$(sed -nE 's/^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+).*/\1/p' <<<"$out")
check "G4=tag: a message without such links is queued without the header (not held)" bash -c \
    "[ -n '$qid' ] && ! postcat -c '$PF/etc' -h -q '$qid' 2>/dev/null | grep -q '^X-Outpost-G4:'"

# Issue 14 item 4: past 1,000 fields the milter kept no more, so a second
# From behind 1,000 fillers passed G3 (two From).  Now the message is
# refused by header_overflow_action, not judged on the part kept.
fillers=()
for i in $(seq 1000); do fillers+=("X-Filler-$i: x"); done
expect "1,000 filler headers then a second From: refused with 552 5.3.4" \
    '^<\*\* 552 5\.3\.4 message header too large to check' --data "$(message 'From: alice@example.org' \
        'To: bob@withmx.test' 'Date: Sat, 28 Nov 2026 09:00:00 +0100' 'Message-ID: <flood@example.org>' \
        'Subject: flood' "${fillers[@]}" 'From: The Boss <boss@example.org>' '' 'body')"
check "... the overflow is logged with what the policy answered" \
    log_has 'service messages: the message has more than 1000 header fields, more than outpostd keeps; answering header_overflow_action'
# Issue 14 item 5: G3 reads the Date and the line length.
expect "G3: a Date that is not an RFC 5322 date-time is refused with 5.6.0" \
    '^<\*\* 550 5\.6\.0 .*the Date header is not RFC 5322 syntax' --header "Date: yesterday"
expect "G3: a header line over 998 characters is refused with 5.6.0" \
    '^<\*\* 550 5\.6\.0 .*a line of the X-Long header has 1007 characters' \
    --add-header "X-Long: $(printf 'a%.0s' $(seq 1000))"

# outpostd away: Postfix applies milter_default_action (tempfail): 4xx.
e2e_stop
expect "outpostd not answering: Postfix tempfails (milter_default_action), never accepts" \
    '^<\*\* 4[0-9][0-9] 4\.' --header "Subject: while away"
check_log_clean
e2e_finish

#!/bin/bash
# The message checks (PO8, G3, G4; lua/policies/messages.lua) through the
# milter engine, driven by miltertest: alice (the fixture directory) sends
# with someone else's From, without a Date, with two From headers, with a
# shortener link in a quoted-printable and a base64 part; PO8 once enforced
# and once log-only (checks = [PO8=log-only]).
. "$(dirname "$0")/lib.sh"
. "$ROOT/build/harness/env"
e2e_setup
command -v miltertest >/dev/null || { echo "miltertest is not installed (scripts/deps.sh)"; not_ok "miltertest present"; e2e_finish; exit 1; }
mkdir -p "$T/lists"
cp "$ROOT/conf/lists/url_shorteners.txt" "$T/lists/"
PORT=$((20000 + RANDOM % 20000))
LOGONLY=$((PORT + 1))
e2e_config <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @T@/lists
}
listener enforce {
    listen = tcp:127.0.0.1:$PORT
    protocol = milter
    service = messages
}
listener logonly {
    listen = tcp:127.0.0.1:$LOGONLY
    protocol = milter
    service = messages-logonly
}
service messages {
    deadline = 5s
}
service messages-logonly {
    policy = @T@/lua/policies/messages.lua
    deadline = 5s
    checks = [PO8=log-only]
    header_overflow_action = "451 4.3.0 header too large, try later"
}
EOF
harness_sections ldap directory >> "$T/outpost.conf"
e2e_start || exit 1

# mt PORT CASE WANT
mt() {
    local out="$T/mt-$2-$1.out"
    miltertest -D port="$1" -D dir="$ROOT/spec/e2e/msgchecks" -D case="$2" -D want="$3" \
        -s "$ROOT/spec/e2e/msgchecks/message.lua" > "$out" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || sed 's/^/#   /' "$out"
    return $rc
}
check "alice's good message passes" mt "$PORT" good continue
check "... with an alias in other case" mt "$PORT" alias continue
check "PO8 enforced: a From that is not alice's is refused" mt "$PORT" other_from reject
check "... 5.7.1, naming the address and the check" \
    log_has 'service=messages .*phase=eom .*action="REJECT 5.7.1 header From boss@example.org is not yours.*check=PO8'
check "PO8 log-only: the same message passes" mt "$LOGONLY" other_from continue
check "... and the log says what it would have answered" \
    log_has 'PO8 \(header From is one of the user.s addresses\) log-only: would answer REJECT 5.7.1 header From boss@example.org'
check "G3: a message without Date is refused" mt "$PORT" no_date reject
check "... 5.6.0 no Date header" log_has 'action="REJECT 5.6.0 message does not follow RFC 5322: no Date header" check=G3'
check "G3: two From headers are refused" mt "$PORT" two_from reject
check "... 2 From headers" log_has 'action="REJECT 5.6.0 message does not follow RFC 5322: 2 From headers.*check=G3'
check "G3 is enforced in the log-only service too" mt "$LOGONLY" no_date reject
check "G4: a shortener link split by quoted-printable is refused" mt "$PORT" shortener_qp reject
check "... naming bit.ly" log_has 'action="REJECT 5.7.1 links to URL shorteners \(bit.ly\).*check=G4'
check "G4: a shortener link in a base64 HTML part is refused" mt "$PORT" shortener_b64 reject
check "... naming tinyurl.com" log_has 'action="REJECT 5.7.1 links to URL shorteners \(tinyurl.com\).*check=G4'

# Issue 14 item 5: G3 reads the Date and the line length.
check "G3: a Date that is not an RFC 5322 date-time is refused" mt "$PORT" bad_date reject
check "... naming the Date" log_has 'action="REJECT 5.6.0 message does not follow RFC 5322: the Date header is not RFC 5322 syntax.*check=G3'
check "G3: a header line of 1,007 characters is refused" mt "$PORT" long_line reject
check "... naming the line" log_has 'action="REJECT 5.6.0 message does not follow RFC 5322: a line of the X-Long header has 1007 characters'
check "G3: an obsolete but valid Date passes" mt "$PORT" obs_date continue

# Issue 14 item 4: headers past the bound were dropped silently, so a second
# From behind 1,000 fillers passed PO8 and G3.
check "1,000 fillers then a second From: refused" mt "$PORT" flood_from reject
check "... by header_overflow_action 552 5.3.4, whatever the policy answered" \
    log_has 'more than 1000 header fields, more than outpostd keeps; answering header_overflow_action .552 5.3.4 message header too large to check'
check "... and the policy was told (ctx.truncated): its checks did not run" \
    log_has 'message checks not run: the message has more than 1000 header fields'
check "exactly 1,000 fields are kept whole and pass" mt "$PORT" at_bound continue
check "270 KB of header then a second From: refused" mt "$PORT" big_from reject
check "... as a header over 256 KiB" log_has 'a header of more than 256 KiB, more than outpostd keeps'
check "the log-only service refuses it too, with its own header_overflow_action" mt "$LOGONLY" flood_from reject
check "... 451 4.3.0" log_has "service messages-logonly: the message has more than 1000 header fields.*answering header_overflow_action '451 4.3.0"

# The list reloads: without tinyurl.com the base64 message passes.
sed -i '/^tinyurl.com$/d' "$T/lists/url_shorteners.txt"
kill -HUP "$DAEMON_PID"
for _ in $(seq 50); do log_has "generation 2 is current" && break; sleep 0.1; done
check "after a reload without tinyurl.com the base64 message passes" mt "$PORT" shortener_b64 continue
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

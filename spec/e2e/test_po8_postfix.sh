#!/bin/bash
# PO8 end to end: users submit through a real Postfix with SASL AUTH (Cyrus,
# a private sasldb2), whose milter is outpostd running lua/policies/
# messages.lua against the harness's slapd.  A user whose header From is
# someone else's address is refused at end of data where PO8 is enforced,
# and only logged where it is log-only (how it is introduced, OP5).
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

ENFORCE_PORT=$((POSTFIX_BASE_PORT + 5))
LOGONLY_PORT=$((POSTFIX_BASE_PORT + 6))
ENFORCE_MILTER=$OUTPOSTD_MILTER_PORT
LOGONLY_MILTER=$OUTPOSTD_TCP_PORT
e2e_config <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @ROOT@/conf/lists
}
listener po8-enforce {
    listen = tcp:127.0.0.1:$ENFORCE_MILTER
    protocol = milter
    service = po8-enforce
}
listener po8-log {
    listen = tcp:127.0.0.1:$LOGONLY_MILTER
    protocol = milter
    service = po8-log
}
service po8-enforce {
    policy = messages
    checks = [PO8=enforce]
}
service po8-log {
    policy = messages
    checks = [PO8=log-only]
}
EOF
harness_sections ldap directory >> "$T/outpost.conf"
e2e_start || exit 1

. "$ROOT/spec/e2e/postfix.sh"
pf_setup "$T/pf" po8.test
PF_PORT=$LOGONLY_PORT
cat >> "$PF/etc/main.cf" <<EOF
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
milter_protocol = 6
milter_default_action = tempfail
EOF
# Cyrus SASL with a private sasldb2 (postfix.sh): users log in as
# user@example.org.
for u in alice bob; do pf_sasl_user "$u@example.org" "$u-secret"; done
printf '%s\n' \
    "127.0.0.1:$ENFORCE_PORT inet n - n - - smtpd -o smtpd_milters=inet:127.0.0.1:$ENFORCE_MILTER" \
    "127.0.0.1:$LOGONLY_PORT inet n - n - - smtpd -o smtpd_milters=inet:127.0.0.1:$LOGONLY_MILTER" \
    > "$PF/etc/master.cf"
pf_start || exit 1

send() { # port, user, header From, swaks args...
    local port=$1 user=$2 from=$3
    shift 3
    swaks --server 127.0.0.1 --port "$port" --helo client.example.org \
        --auth PLAIN --auth-user "$user@example.org" --auth-password "$user-secret" \
        --from "$user@example.org" --to someone@withmx.test --header "From: $from" "$@" 2>&1
}
expect() { # what, pattern, send args...
    local what=$1 pattern=$2 out
    shift 2
    out=$(send "$@")
    if grep -qE -- "$pattern" <<<"$out"; then ok "$what"; else
        not_ok "$what"; echo "$out" | grep -E '^(<-|<\*\*|\*\*\*)' | tail -4 | sed 's/^/#   /'
    fi
}
QUEUED='^<-  250 2\.0\.0 Ok: queued'

expect "SASL works: alice authenticates" '^<-  235 ' "$ENFORCE_PORT" alice "alice@example.org"
expect "PO8 enforced: alice's own address in From is queued" "$QUEUED" \
    "$ENFORCE_PORT" alice "Alice Adams <alice@example.org>"
expect "... so is one of her mailLocalAddress values" "$QUEUED" \
    "$ENFORCE_PORT" alice "alice.adams@example.org"
expect "PO8 enforced: someone else's address in From is refused at end of data with 5.7.1" \
    '^<\*\* 550 5\.7\.1 header From boss@example.org is not yours' \
    "$ENFORCE_PORT" alice "The Boss <boss@example.org>"
expect "... bob's address, which is some user's, is not alice's" \
    '^<\*\* 550 5\.7\.1 header From bob@example.org is not yours' \
    "$ENFORCE_PORT" alice "bob@example.org"
expect "... nor is another address shown in the display name" \
    '^<\*\* 550 5\.7\.1 header From' \
    "$ENFORCE_PORT" alice '"bob@example.org" <alice@example.org>'
expect "bob's own From passes" "$QUEUED" "$ENFORCE_PORT" bob "Bob Brown <bob.brown@example.org>"
check "the refusal is logged with PO8, the SASL user and the sender" \
    log_has 'decision req=[0-9]+ service=po8-enforce .*phase=eom .*sasl_user="alice@example.org" sender="<alice@example.org>" .*action="REJECT 5\.7\.1 header From boss@example.org is not yours.*" check=PO8'

expect "PO8 log-only: someone else's From is queued" "$QUEUED" \
    "$LOGONLY_PORT" alice "The Boss <boss@example.org>"
check "... and what it would have answered is logged" \
    log_has 'service=po8-log: PO8 \(header From is one of the user.s addresses\) log-only: would answer REJECT 5\.7\.1 header From boss@example.org is not yours'
check "... the decision is DUNNO" \
    log_has 'decision req=[0-9]+ service=po8-log .*phase=eom .*sasl_user="alice@example.org" .*action="DUNNO"'
check_log_clean
e2e_finish

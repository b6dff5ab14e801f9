#!/bin/bash
# mailout end to end: a real Postfix built from conf/postfix/mailout/
# (main.cf and master.cf, with ports and paths of this test), outpostd with
# conf/outpost.conf's mailout service and the shipped lists, the harness's
# slapd, unbound and call-out Postfix; swaks as a campus MTA.  swaks speaks
# TLS only with Net::SSLeay, so the test's copy of the lists puts 127.0.0.1
# in an area of its own that does not enforce TLS, and 127.0.0.2 stays in
# area-servers, which does (MO3).  Proves the Postfix
# fragments: which restriction lists ask outpost, policy_context, that
# Postfix relays the answers, and its default_action when outpost is away.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

PORT=$POSTFIX_BASE_PORT           # the mailout smtpd
POLICY_PORT=$OUTPOSTD_TCP_PORT    # outpostd's mailout listener

# outpostd: the fragment's service and limit, the harness's servers.
{
    cat <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @T@/lists
}
listener mailout {
    listen = tcp:127.0.0.1:$POLICY_PORT
    service = mailout
    allow_context = [mailout]
}
dns {
    servers = [127.0.0.1:$DNS_PORT]
    timeout = 500ms
    tries = 1
}
smtp_verify {
    helo = outpost-test.example.org
    port = $SMTP_VERIFY_PORT
    connect_timeout = 1s
    step_timeout = 4s
}
ldap {
    uris = ["ldap://127.0.0.1:$LDAP_PORT/"]
    bind_dn = "cn=policyd,ou=services,dc=example,dc=org"
    bind_password_file = $HARNESS_DIR/ldap/bind.pw
    timeout = 2s
}
EOF
    sed -n '/^service mailout {/,/^}/p; /^limit mailout_rcpt {/,/^}/p' "$ROOT/conf/outpost.conf"
} | e2e_config
mkdir -p "$T/lists"
cp "$ROOT"/conf/lists/*.txt "$T/lists/"
echo "127.0.0.1/32 area-e2e-plain   # test_mailout_postfix.sh: no TLS needed" >> "$T/lists/campus_networks.txt"
e2e_start || exit 1

# Postfix: a private instance in $T/pf, its main.cf = the basics + the fragment.
. "$ROOT/spec/e2e/postfix.sh"
pf_setup "$T/pf" mailout.test
PF_PORT=$PORT
sed -e "s|^mailout_policy = .*|mailout_policy = inet:127.0.0.1:$POLICY_PORT|" \
    -e "s|/etc/ssl/mailout/fullchain.pem|$PF/etc/cert.pem|" \
    -e "s|/etc/ssl/mailout/privkey.pem|$PF/etc/key.pem|" \
    "$ROOT/conf/postfix/mailout/main.cf" >> "$PF/etc/main.cf"
# master.cf: the fragment's smtpd on this test's port, unchrooted (the
# private queue has no chroot tree), and Postfix's own services.
sed -e "s|^smtp      inet  n       -       y|127.0.0.1:$PORT inet n - n|" \
    "$ROOT/conf/postfix/mailout/master.cf" > "$PF/etc/master.cf"
pf_start || exit 1

# swaks as a campus MTA; prints the whole dialogue
mta() { swaks --server 127.0.0.1 --port "$PORT" --helo mta.example.org --quit-after RCPT "$@" 2>&1; }
expect() { # what, pattern, swaks args...
    local what=$1 pattern=$2 out
    shift 2
    out=$(mta "$@")
    if grep -qE -- "$pattern" <<<"$out"; then ok "$what"; else
        not_ok "$what"; echo "$out" | grep -E '^(<-|<\*\*|\*\*\*)' | tail -5 | sed 's/^/#   /'
    fi
}

expect "accepted: campus MTA (area without TLS rule), institution sender, external recipient" \
    '^<-  250 .*Ok' --from alice@example.org --to bob@withmx.test
expect "MO3: no TLS from an enforcing area is refused at RCPT with 5.7.10" \
    '^<\*\* 554 5\.7\.10 .*must use TLS' --local-interface 127.0.0.2 --from alice@example.org --to bob@withmx.test
expect "MO6: a list for authenticated senders is refused with 5.7.1" \
    '^<\*\* 554 5\.7\.1 .*all-staff@example\.org accepts mail only from authenticated senders' \
    --from alice@example.org --to all-staff@example.org
expect "MO9: a domain the MTA does not own is refused with 5.7.1" \
    '^<\*\* 554 5\.7\.1 .*may send only as' --from a.adams@lrz.example --to bob@withmx.test
expect "MO5: a sender its mail server refuses is refused with 5.7.1 (not rewritten to 5.1.2)" \
    '^<\*\* 554 5\.7\.1 .*refused by its own mail server' --from nobody@verify.test --to bob@withmx.test
expect "MO5: a sender its mail server answers 4xx for is deferred with 4.7.1" \
    '^<\*\* 450 4\.7\.1 .*cannot verify sender' --from busy@verify.test --to bob@withmx.test
expect "MO4: a recipient domain that does not exist is refused with 5.1.2" \
    '^<\*\* 554 5\.1\.2 ' --from alice@example.org --to bob@nxdomain.test

# A whole message: RCPT reserves, DATA and END-OF-MESSAGE settle (MO7).
out=$(swaks --server 127.0.0.1 --port "$PORT" --helo mta.example.org \
    --from alice@example.org --to bob@withmx.test,carol@aonly.test,all-staff@example.org 2>&1)
check "a message with one refused recipient is queued for the two others" \
    grep -qE '^<-  250 2\.0\.0 Ok: queued' <<<"$out"
check "outpost was asked at DATA and END-OF-MESSAGE (policy_context=mailout) and answered DUNNO" \
    bash -c "[ \$(grep -c 'decision .*service=mailout .*rcpt=\"\" action=DUNNO' '$T/daemon.log') -eq 2 ]"

# outpost away: Postfix answers its default_action (DEFER_IF_PERMIT: 4xx).
e2e_stop
expect "outpost not answering: Postfix defers (default_action), never accepts or rejects" \
    '^<\*\* 4[0-9][0-9] 4\.' --from alice@example.org --to bob@withmx.test

# A broken list refuses the load with its file and line (the running
# generation would keep serving on a SIGHUP).
refused() { # what, pattern: --check must fail with a message matching pattern
    local out
    if out=$("$OUTPOSTD" --check -c "$T/outpost.conf" 2>&1); then return 1; fi
    grep -qE -- "$1" <<<"$out" || { echo "$out" | sed 's/^/#   /'; return 1; }
}
cp "$T/lists/tls_required_areas.txt" "$T/areas.bak"
echo "area-srevers" >> "$T/lists/tls_required_areas.txt"
check "MO3: an area campus_networks does not name refuses the load" \
    refused "tls_required_areas.txt:[0-9]+: 'area-srevers' is no network area"
cp "$T/areas.bak" "$T/lists/tls_required_areas.txt"
echo "10.9.0.0/16" >> "$T/lists/mailout_mta_domains.txt"
check "MO9: an MTA line without domains refuses the load" \
    refused "mailout_mta_domains.txt:[0-9]+: expected 'NETWORK DOMAIN...'"
sed -i '$d' "$T/lists/mailout_mta_domains.txt"
echo "10.9.0.1/8 typo" >> "$T/lists/mta_blocklist.txt"
check "MO2: a block-list network with host bits refuses the load" refused "mta_blocklist.txt:[0-9]+:"
sed -i '$d' "$T/lists/mta_blocklist.txt"
check "the lists restored load again" "$OUTPOSTD" --check -c "$T/outpost.conf"

check_log_clean
e2e_finish

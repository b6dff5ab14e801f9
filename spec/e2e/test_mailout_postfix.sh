#!/bin/bash
# mailout end to end, one scenario per requirement (MO1-MO6, MO9; MO7 is
# test_mailout_limit.sh): a real Postfix built from conf/postfix/mailout/,
# outpostd with conf/outpost.conf's mailout service, the harness's slapd,
# unbound and call-out Postfix; swaks as campus MTAs at the addresses of
# spec/e2e/mailout_env.sh (XCLIENT).  Each recipient is asserted three
# ways: the reply the MTA got at RCPT (code, enhanced code, text), the
# decision line naming the check, and whether it reached the sink.  Also
# proves the fragments: the DATA/END-OF-MESSAGE calls, Postfix's
# default_action when outpost is away, broken lists refusing the load.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
. "$ROOT/spec/e2e/mailout_env.sh"
e2e_setup
mailout_lists
FIXTURE=${E2E_FIXTURES%% *}
mailout_up || exit 1

# The scenarios, once per fixture directory (lib.sh, E2E_FIXTURES): the
# same Postfix, outpostd started again with the other directory { }.
scenarios() {

    send 127.0.0.1 --from alice@example.org --to ok@withmx.test
    expect "accepted: campus MTA, institution sender, external recipient" ok@withmx.test "$ACCEPTED" DUNNO - 1
    check "... queued" grep -qE '^<-  250 2\.0\.0 Ok: queued' <<<"$OUT"
    check "... outpost was asked at RCPT, DATA and END-OF-MESSAGE (policy_context=mailout): DUNNO" \
        bash -c "[ \$(grep -c 'decision .*service=mailout .*rcpt=ok@withmx.test action=DUNNO' '$T/daemon.log') -eq 3 ]"

    # MO1: the campus network.  Postfix's mynetworks refuses the rest of the
    # world; outpost refuses what is in mynetworks but not in campus_networks.
    send 198.51.100.7 --from alice@example.org --to mo1@withmx.test
    expect "MO1: a client in mynetworks but outside the campus network" mo1@withmx.test \
        '554 5\.7\.1 <mo1@withmx\.test>: Recipient address rejected: client 198\.51\.100\.7 is not in the campus network' \
        "REJECT 5.7.1" MO1 0
    send 203.0.113.9 --from alice@example.org --to mo1-world@withmx.test
    check "MO1: a client outside mynetworks: Postfix itself refuses, 554 5.7.1" \
        answered mo1-world@withmx.test '554 5\.7\.1 <mo1-world@withmx\.test>: Recipient address rejected: Access denied'
    check "... without asking outpost" bash -c "! grep -q 'client=203\.0\.113\.9 ' '$T/daemon.log'"
    delivered mo1-world@withmx.test 0

    # MO2: the block list, and lifting a block by editing it and reloading
    send 127.0.0.66 --from alice@example.org --to mo2@withmx.test
    expect "MO2: a blocked MTA" mo2@withmx.test \
        '554 5\.7\.1 .*mail server 127\.0\.0\.66 is blocked from mailout \(spec-blocked\); contact the postmaster' \
        "REJECT 5.7.1" MO2 0
    sed -i '/^127\.0\.0\.66 /d' "$T/lists/mta_blocklist.txt"
    kill -HUP "$DAEMON_PID"
    check "MO2: the block lifted, SIGHUP loads the list" reloaded 2
    send 127.0.0.66 --from alice@example.org --to mo2-lifted@withmx.test
    expect "MO2: the MTA whose block was lifted" mo2-lifted@withmx.test "$ACCEPTED" DUNNO - 1

    # MO3: TLS where the area enforces it; elsewhere only a log line
    send 127.0.0.2 --from alice@example.org --to mo3@withmx.test
    expect "MO3: no TLS from an enforcing area" mo3@withmx.test \
        '554 5\.7\.10 .*mail servers in network area area-servers must use TLS: enable STARTTLS' \
        "REJECT 5.7.10" MO3 0
    send 127.0.0.2 --tls --from alice@example.org --to mo3-tls@withmx.test
    expect "MO3: STARTTLS from the enforcing area" mo3-tls@withmx.test "$ACCEPTED" DUNNO - 1
    send 127.0.0.1 --from alice@example.org --to mo3-plain@withmx.test
    expect "MO3: no TLS from an area without the rule" mo3-plain@withmx.test "$ACCEPTED" DUNNO - 1
    check "... is logged: MO3 not enforced in area-e2e-plain" \
        log_has "MO3 \(TLS\) not enforced in network area area-e2e-plain: client 127\.0\.0\.1 sent without TLS"

    # MO4: the recipient's domain in DNS
    send 127.0.0.1 --from alice@example.org --to mo4@nxdomain.test
    expect "MO4: a recipient domain that does not exist" mo4@nxdomain.test \
        '554 5\.1\.2 .*recipient domain nxdomain\.test does not exist or has no mail server' "REJECT 5.1.2" MO4 0
    # outpost answers 5.1.10 (RFC 7505); Postfix knows no X.1.10 and maps it to
    # 5.1.0 at RCPT (smtpd_dsn_fix), so the MTA sees 5.1.0 with outpost's text
    send 127.0.0.1 --from alice@example.org --to mo4@nullmx.test
    expect "MO4: a recipient domain with a null MX" mo4@nullmx.test \
        '554 5\.1\.0 .*recipient domain nullmx\.test accepts no mail \(null MX\)' "REJECT 5.1.10" MO4 0
    check "... Postfix logs the mapping of 5.1.10 to 5.1.0" \
        grep -q 'mapping DSN status 5.1.10 into Recipient address status 5.1.0' "$PF/log/maillog"
    send 127.0.0.1 --from alice@example.org --to mo4@timeout.test
    expect "MO4: DNS not answering for the domain" mo4@timeout.test \
        '450 4\.4\.3 .*cannot look up recipient domain timeout\.test \(DNS .*\), try again later' "DEFER 4.4.3" MO4 0
    send 127.0.0.1 --from alice@example.org --to mo4@aonly.test
    expect "MO4: a domain with only an A record" mo4@aonly.test "$ACCEPTED" DUNNO - 1

    # MO5: the sender, in the directory or by a call-out to its campus MX
    send 127.0.0.1 --from nosuch@example.org --to mo5-unknown@withmx.test
    expect "MO5: an institution sender the directory does not know" mo5-unknown@withmx.test \
        "554 5\.7\.1 .*sender nosuch@example\.org does not exist in the institution's directory" "REJECT 5.7.1" MO5 0
    send 127.0.0.1 --from nobody@verify.test --to mo5-refused@withmx.test
    expect "MO5: a sender its mail server refuses (5.7.1, not rewritten to 5.1.2)" mo5-refused@withmx.test \
        '554 5\.7\.1 .*sender nobody@verify\.test is refused by its own mail server \(550 5\.1\.1' "REJECT 5.7.1" MO5 0
    send 127.0.0.1 --from busy@verify.test --to mo5-busy@withmx.test
    expect "MO5: a sender its mail server answers 4xx for" mo5-busy@withmx.test \
        '450 4\.7\.1 .*cannot verify sender busy@verify\.test with its mail server \(450 4\.2\.1' "DEFER 4.7.1" MO5 0
    send 127.0.0.1 --from bob@verify.test --to mo5-verified@withmx.test
    expect "MO5: a sender its mail server accepts" mo5-verified@withmx.test "$ACCEPTED" DUNNO - 1
    # a call-out longer than the policy's budget (slow@ answers after 2 s):
    # 4xx now, the call-out fills the cache in the background, the MTA's retry
    # passes
    send 127.0.0.1 --from slow@verify.test --to mo5-slow@withmx.test
    expect "MO5: a sender whose verification takes longer than the budget" mo5-slow@withmx.test \
        '450 4\.7\.1 .*sender slow@verify\.test is being verified with its mail server, try again in a few minutes' \
        "DEFER 4.7.1" MO5 0
    for ((retry = 1; retry <= 20; retry++)); do
        sleep 0.5
        send 127.0.0.1 --from slow@verify.test --to "mo5-retry$retry@withmx.test"
        answered "mo5-retry$retry@withmx.test" "$ACCEPTED" >/dev/null && break
    done
    expect "MO5: ... the MTA's retry once the call-out has answered" "mo5-retry$retry@withmx.test" "$ACCEPTED" DUNNO - 1

    # MO6: lists that only authenticated senders may reach; an open list passes
    send 127.0.0.1 --from alice@example.org --to all-staff@example.org,chess@example.org
    expect "MO6: a list for authenticated senders" all-staff@example.org \
        '554 5\.7\.1 .*recipient all-staff@example\.org accepts mail only from authenticated senders; submit it through postout' \
        "REJECT 5.7.1" MO6 0
    expect "MO6: an open list in the same message" chess@example.org "$ACCEPTED" DUNNO - 1

    # MO9: the MTA's own domains as sender; bounces (<>) have none
    send 127.0.0.1 --from a.adams@lrz.example --to mo9@withmx.test
    expect "MO9: a sender domain the MTA does not own" mo9@withmx.test \
        '554 5\.7\.1 .*mail server 127\.0\.0\.1 may send only as example\.org, students\.example\.org, verify\.test, not as lrz\.example' \
        "REJECT 5.7.1" MO9 0
    send 192.0.2.7 --tls --from alice@example.org --to mo9-unregistered@withmx.test
    expect "MO9: a campus MTA without registered domains" mo9-unregistered@withmx.test \
        '554 5\.7\.1 .*mail server 192\.0\.2\.7 has no registered mail domains' "REJECT 5.7.1" MO9 0
    send 127.0.0.1 --from '<>' --to mo9-bounce@withmx.test
    expect "MO9: a bounce (null sender)" mo9-bounce@withmx.test "$ACCEPTED" DUNNO - 1

    sink_check
}

for FIXTURE in $E2E_FIXTURES; do
    if [ -z "$DAEMON_PID" ]; then
        mailout_lists   # MO2's scenario edited the block list
        mailout_outpostd_up || { not_ok "outpostd starts"; continue; }
        SINK_EXPECT=()
        : > "$PF/log/maillog"
    fi
    endpoint_listener_check
    pf_endpoint_check mailout_policy mailout
    scenarios
    check_log_clean
    [ "$FIXTURE" = "${E2E_FIXTURES##* }" ] || fixture_round_end
done

# outpost away: Postfix answers 4xx, the policy service's default_action
# (DEFER_IF_PERMIT) or, since outpostd is its milter too (MO8), the
# milter's (milter_default_action = tempfail: 4.7.1 from MAIL FROM on).
e2e_stop
send 127.0.0.1 --from alice@example.org --to away@withmx.test
deferred() {
    grep -qE '^<\*\* +4[0-9][0-9] 4\.7\.1 .*Service unavailable' <<<"$OUT" &&
        ! grep -qE '^<\*\* +5|queued' <<<"$OUT" && return 0
    grep -E '^<' <<<"$OUT" | tail -3 | sed 's/^/#   /'
    return 1
}
check "outpost not answering: Postfix defers (4.7.1), never accepts or rejects" deferred

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

# shellcheck shell=bash
# The mailout service end to end, for spec/e2e/test_mailout_*.sh (sourced
# after lib.sh): outpostd with conf/outpost.conf's mailout service and limit,
# the harness's slapd, unbound and call-out Postfix, and a real Postfix built
# from conf/postfix/mailout/ (ports and paths of the test replaced).  swaks
# plays the campus MTAs, each at an address of its own thanks to XCLIENT.
#
#   mailout_lists        copies conf/lists to $T/lists, with the test's areas
#                        (edit $T/lists further before mailout_up)
#   mailout_up           starts outpostd, then the Postfix
#   mailout_outpostd_up  starts outpostd again, with the directory { } of
#                        $FIXTURE (lib.sh), for a fixture's round
#   send ADDR args...    one whole message from the MTA at ADDR; the
#                        dialogue in $OUT (swaks args: --from, --to, --tls ...)
#   answered RCPT RE     the RCPT reply for RCPT matches RE ("554 5.7.1 .*text")
#   decided RCPT RE      outpostd's decision line at RCPT TO:<RCPT> matches RE
#   reloaded GEN         waits until outpostd serves generation GEN (SIGHUP)
#   expect WHAT RCPT REPLY-RE ACTION CHECK N
#                        the three of them for one recipient ($ACCEPTED: 250 2.1.5)
#   delivered RCPT N     expect N deliveries of RCPT at the sink (checked by
#                        sink_check, once the queue has drained)
#
# Client addresses: XCLIENT ADDR is what Postfix checks mynetworks against
# and passes to outpost as client_address, so one swaks connection from
# 127.0.0.1 can be any campus MTA.  The addresses the tests use:
#   127.0.0.1           a campus MTA in area-e2e-plain (no TLS rule)
#   127.0.0.2           area-servers, which enforces TLS (MO3)
#   127.0.0.10          forward-confirmed reverse DNS (MO7; the PTR and A
#                       records in spec/harness/dns/zones.conf)
#   127.0.0.11 / .12    a PTR whose name does not resolve back / no PTR
#   127.0.0.13 / .14    a PTR to a name that does not exist / DNS timeout
#   127.0.0.66          on the shipped block list (MO2)
#   192.0.2.7           campus (area-servers), no entry in mailout_mta_domains (MO9)
#   198.51.100.7        outside the campus, but in this Postfix's mynetworks
#                       (a drift between the two lists: MO1's case)
#   203.0.113.9         outside both: Postfix itself refuses to relay
# All of them are strings in an SMTP command: no packet goes anywhere but
# 127.0.0.1.

PORT=$POSTFIX_BASE_PORT           # the mailout smtpd
POLICY_PORT=$OUTPOSTD_TCP_PORT    # outpostd's mailout listener
SINK_EXPECT=()

mailout_lists() {
    mkdir -p "$T/lists"
    cp "$ROOT"/conf/lists/*.txt "$T/lists/"
    # loopback MTAs without TLS: an area of the test's own that does not
    # enforce it; 127.0.0.2 stays in area-servers, which does
    cat >> "$T/lists/campus_networks.txt" <<EOF
127.0.0.0/24        area-e2e-plain   # spec/e2e/mailout_env.sh: no TLS rule
127.0.0.2/32        area-servers     # spec/e2e/mailout_env.sh: TLS enforced
EOF
}

mailout_config() {
    cat <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @T@/lists
}
EOF
    policy_listener <<EOF
listener mailout {
    listen = tcp:127.0.0.1:$POLICY_PORT
    service = mailout
    allow_context = [mailout]
}
EOF
    cat <<EOF
listener mailout-milter {
    listen = tcp:127.0.0.1:$OUTPOSTD_MILTER_PORT
    protocol = milter
    service = mailout
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
    fixture_directory
}

# outpostd alone: again for each fixture's round (lib.sh), after
# fixture_round_end, in front of the same Postfix, which pf_policy_round
# points at the round's policy endpoint (its own listener or the one).
mailout_outpostd_up() {
    if [ -n "${PF:-}" ]; then pf_policy_round mailout_policy "inet:127.0.0.1:$POLICY_PORT" || return 1; fi
    mailout_config | e2e_config
    e2e_start
}

mailout_up() {
    mailout_outpostd_up || return 1
    # Postfix: a private instance in $T/pf, its main.cf = the basics + the
    # fragment + XCLIENT from loopback, and 198.51.100.0/24 in mynetworks
    # though not in campus_networks.txt (MO1 is the second line of defence).
    . "$ROOT/spec/e2e/postfix.sh"
    pf_setup "$T/pf" mailout.test
    PF_PORT=$PORT
    sed -e "s|^mailout_policy = .*|mailout_policy = inet:127.0.0.1:$POLICY_PORT|" \
        -e "s|^smtpd_milters = .*|smtpd_milters = inet:127.0.0.1:$OUTPOSTD_MILTER_PORT|" \
        -e "s|^mynetworks = .*|&, 198.51.100.0/24|" \
        -e "s|/etc/ssl/mailout/fullchain.pem|$PF/etc/cert.pem|" \
        -e "s|/etc/ssl/mailout/privkey.pem|$PF/etc/key.pem|" \
        "$ROOT/conf/postfix/mailout/main.cf" >> "$PF/etc/main.cf"
    pf_policy_round mailout_policy "inet:127.0.0.1:$POLICY_PORT"
    echo "smtpd_authorized_xclient_hosts = 127.0.0.0/8" >> "$PF/etc/main.cf"
    # master.cf: the fragment's smtpd on this test's port, unchrooted (the
    # private queue has no chroot tree), and Postfix's own services.
    sed -e "s|^smtp      inet  n       -       y|127.0.0.1:$PORT inet n - n|" \
        "$ROOT/conf/postfix/mailout/master.cf" > "$PF/etc/master.cf"
    pf_start
}

send() { # ADDR swaks-args...
    local addr=$1
    shift
    OUT=$(swaks --server 127.0.0.1 --port "$PORT" --helo mta.example.org \
        --xclient-addr "$addr" "$@" 2>&1)
}

answered() { # RCPT RE: the reply to RCPT TO:<RCPT> matches RE
    local reply
    reply=$(awk -v r="RCPT TO:<$1>" 'found { print; exit } index($0, r) { found = 1 }' <<<"$OUT")
    if grep -qE -- "^<(-|\*\*|~|~\*) +$2" <<<"$reply"; then return 0; fi
    echo "#   reply to RCPT TO:<$1>: $reply"
    return 1
}

decided() { # RCPT RE: outpostd's decision at RCPT TO:<RCPT> matches RE
    # the first line: for a message with one recipient, Postfix repeats it
    # at DATA and END-OF-MESSAGE
    local line
    line=$(grep ' decision ' "$T/daemon.log" | grep -m1 -F " rcpt=$1 ")
    if grep -qE -- "$2" <<<"$line"; then return 0; fi
    echo "#   decision for $1: ${line:-(none)}"
    return 1
}

# expect WHAT RCPT REPLY-RE ACTION CHECK N: the reply to RCPT, outpost's
# decision (ACTION like "REJECT 5.7.1", CHECK the id or - when every check
# passed), and N deliveries of RCPT at the sink
expect() {
    local what=$1 rcpt=$2 reply=$3 action=$4 id=$5
    check "$what: RCPT answered $(cut -d' ' -f1-2 <<<"$reply" | tr -d '\\')" answered "$rcpt" "$reply"
    check "$what: decision $action check=$id" decided "$rcpt" "action=\"?${action//./\\.}[\" ].*check=$id "
    delivered "$rcpt" "$6"
}
# shellcheck disable=SC2034 # the tests' reply for an accepted recipient
ACCEPTED='250 2\.1\.5 Ok'

reloaded() { # GENERATION: waits until outpostd serves it (after a SIGHUP)
    local i
    for ((i = 0; i < 100; i++)); do
        log_has "reload: generation $1 is current" && return 0
        sleep 0.05
    done
    return 1
}

delivered() { SINK_EXPECT+=("$1 $2"); }

# After the last message: wait for the queue to drain, then every expected
# recipient must have reached the sink as often as said (0: never).
sink_check() {
    check "the queue drains: every accepted message delivered" pf_drained 30
    local e rcpt n got
    for e in "${SINK_EXPECT[@]}"; do
        read -r rcpt n <<<"$e"
        got=$(pf_delivered "$rcpt")
        if [ "$got" -eq "$n" ]; then ok "sink: $rcpt delivered $n times"; else
            not_ok "sink: $rcpt delivered $n times (got $got)"
        fi
    done
}

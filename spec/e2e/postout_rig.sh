# The postout rig for the end-to-end tests (sourced after lib.sh and the
# harness's env): a real Postfix built from conf/postfix/postout/ and
# outpostd with conf/outpost.conf's postout service, the harness's slapd and
# unbound.  Postfix asks outpostd over unix:private/outpost, as the shipped
# master.cf says: outpostd's listener is the socket in Postfix's queue; its
# milter (PO8, G3, G4) is outpostd's milter listener on this test's port.
#
#   postout_rig_up      start both; then
#     $SUB    submission, STARTTLS required (the fragment's "submission")
#     $SMTPS  TLS from the first byte (the fragment's "smtps")
#     $PLAIN  the submission service without TLS: only PO1 stands in the way
#   submit ARGS...      swaks through $SUB with STARTTLS and alice's login,
#                       ARGS override (--auth-user, --to, ...); prints the dialogue
#   expect WHAT REGEX ARGS...   one test: submit's dialogue matches REGEX
#   daemon_restart      start outpostd again after e2e_stop; the log of the
#                       earlier run moves to daemon.log.N
#   postout_alone_conf [LINE]  outpost.conf for outpostd alone with postout
#                       (no Postfix: test_postout.sh, test_explain.sh)
#
# SASL logins are user@realm (pf_sasl_user): alice@example.org, the form
# Postfix passes as sasl_username; directory { login } says how it is looked
# up (the attribute fixture: by mail, the group fixture: without the
# realm), and PO7 counts the account it finds (alice).  Passwords: LOGIN-secret.
# POSTOUT_CONF_EXTRA: more outpost.conf text; POSTOUT_LDAP_EXTRA: more
# lines in its ldap { } (e.g. cache_size = 0).
# shellcheck disable=SC1091
. "$ROOT/spec/e2e/postfix.sh"

SUB=$POSTOUT_SUBMISSION_PORT
SMTPS=$POSTOUT_SMTPS_PORT
PLAIN=$POSTOUT_PLAIN_PORT
LOGINS="alice@example.org bob@example.org carol@example.org mallory@example.org
erin@students.example.org dave@students.example.org ghost@example.org"

postout_rig_up() {
    pf_setup "$T/pf" postout.test
    PF_PORT=$SUB
    {
        sed "s|^smtpd_milters = inet:127.0.0.1:10046|smtpd_milters = inet:127.0.0.1:$OUTPOSTD_MILTER_PORT|" \
            "$ROOT/conf/postfix/postout/main.cf"
        cat <<EOF
smtpd_tls_cert_file = $PF/etc/cert.pem
smtpd_tls_key_file = $PF/etc/key.pem
EOF
    } >> "$PF/etc/main.cf"
    local login
    for login in $LOGINS; do pf_sasl_user "$login" "${login%@*}-secret"; done
    # master.cf: the fragment's services on this test's ports, unchrooted
    # (the private queue has no chroot tree), and a copy of submission
    # without TLS (PO1 must refuse what it carries).
    local frag=$ROOT/conf/postfix/postout/master.cf
    {
        sed -e "s|^submission inet n - y - - smtpd|127.0.0.1:$SUB inet n - n - - smtpd|" \
            -e "s|^smtps inet n - y - - smtpd|127.0.0.1:$SMTPS inet n - n - - smtpd|" "$frag"
        sed -n '/^submission /,/^[^ ]/p' "$frag" | sed '$d' |
            sed -e "s|^submission inet n - y - - smtpd|127.0.0.1:$PLAIN inet n - n - - smtpd|" \
                -e 's|syslog_name=postfix/submission|syslog_name=postfix/plain|' \
                -e 's|smtpd_tls_security_level=encrypt|smtpd_tls_security_level=none|'
    } > "$PF/etc/master.cf"
    grep -q "^127.0.0.1:$PLAIN " "$PF/etc/master.cf" || { echo "no plain port in master.cf"; return 1; }
    pf_policy_round postout_policy unix:private/outpost
    pf_start || return 1
    postout_outpostd_up
}

# outpostd: the shipped service and limit, the harness's servers, the
# directory { } of $FIXTURE (lib.sh), the listener in Postfix's private/
# (created by postfix start), or the one endpoint on a round that has it
# (lib.sh: policy_listener; Postfix pointed at it by pf_policy_round).
# Again for each fixture's round, after fixture_round_end, against the
# same Postfix.
postout_outpostd_up() {
    pf_policy_round postout_policy unix:private/outpost || return 1
    mkdir -p "$T/lists"
    cp "$ROOT"/conf/lists/*.txt "$T/lists/"
    {
        cat <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @T@/lists
}
control {
    socket = @T@/control.sock
}
EOF
        policy_listener <<EOF
listener postout {
    listen = unix:$PF/queue/private/outpost
    service = postout
    allow_context = [postout]
    socket_mode = 0666
}
EOF
        cat <<EOF
listener postout-milter {
    listen = tcp:127.0.0.1:$OUTPOSTD_MILTER_PORT
    protocol = milter
    service = postout
}
dns {
    servers = [127.0.0.1:$DNS_PORT]
    timeout = 500ms
    tries = 1
}
counters {
    reservation_timeout = 5s
}
EOF
        sed -n '/^ldap {/,/^}/p' "$HARNESS_DIR/outpost.conf" | sed '$d'
        printf '%s\n' "${POSTOUT_LDAP_EXTRA:-}" "}"
        sed -n '/^service postout {/,/^}/p; /^limit postout_rcpt {/,/^}/p' "$ROOT/conf/outpost.conf"
        fixture_directory
        printf '%s\n' "${POSTOUT_CONF_EXTRA:-}"
    } | e2e_config
    e2e_start
}

# outpostd alone with the postout policy, no Postfix (test_postout.sh,
# test_explain.sh): postout_alone_conf [SERVICE-LINE] prints an outpost.conf
# for e2e_config: daemon { } with the shipped lists (copied into $T/lists
# at the first call),
# listener postout on unix:$T/postout.sock, service postout { SERVICE-LINE },
# dns { } on the harness's unbound, ldap { } on its slapd with the service
# account's bind, the directory's base and the limit postout_rcpt.
postout_alone_conf() {
    # once: a test may edit its lists between two configurations
    [ -d "$T/lists" ] || { mkdir -p "$T/lists" && cp "$ROOT"/conf/lists/*.txt "$T/lists/"; }
    cat <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @T@/lists
}
listener postout {
    listen = unix:@T@/postout.sock
    service = postout
}
service postout {
    ${1:-}
}
dns {
    servers = [127.0.0.1:$DNS_PORT]
    timeout = 500ms
    tries = 1
}
ldap {
    uris = ["ldap://127.0.0.1:$LDAP_PORT/"]
    bind_dn = "cn=policyd,ou=services,dc=example,dc=org"
    bind_password_file = $HARNESS_DIR/ldap/bind.pw
}
directory {
    base = "dc=example,dc=org"
}
limit postout_rcpt {
    max = 250
    max_override = 1000
}
EOF
}

submit() {
    swaks --server 127.0.0.1 --port "$SUB" --tls --helo client.example.org \
        --auth PLAIN --auth-user alice@example.org --auth-password alice-secret \
        --from alice@example.org --to bob@withmx.test "$@" 2>&1
}

expect() { # what, regex, submit args...
    local what=$1 pattern=$2 out
    shift 2
    out=$(submit "$@")
    if grep -qE -- "$pattern" <<<"$out"; then ok "$what"; else
        not_ok "$what"; grep -E '^(<-|<~|<\*\*|<~\*|\*\*\*)' <<<"$out" | tail -6 | sed 's/^/#   /'
    fi
}

DAEMON_RUNS=0
daemon_restart() {
    DAEMON_RUNS=$((DAEMON_RUNS + 1))
    mv "$T/daemon.log" "$T/daemon.log.$DAEMON_RUNS"
    e2e_start
}

# Every run's log: no sanitizer report.
check_logs_clean() {
    cat "$T"/daemon.log.* "$T/daemon.log" 2>/dev/null > "$T/all.log"
    if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$T/all.log"; then
        grep -A30 -E "AddressSanitizer|LeakSanitizer|runtime error:" "$T/all.log" | head -60
        not_ok "daemon logs have no sanitizer report"
    else
        ok "daemon logs have no sanitizer report"
    fi
}

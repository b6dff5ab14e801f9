# A private Postfix instance for end-to-end tests (sourced after lib.sh).
#
#   pf_setup DIR HOSTNAME    a private instance in DIR: main.cf with the basics
#                            (private queue, log file, mail discarded), a test
#                            certificate; pf_start adds Postfix's own services
#                            (spec/harness/postfix-master.services) to master.cf
#   (then append the test's main.cf lines and prepend its smtpd to master.cf)
#   pf_ask_outpostd POLICY_PORT MILTER_PORT STAGE...
#                            main.cf: clients on 127.0.0.0/8 may relay,
#                            outpostd's policy service on 127.0.0.1:POLICY_PORT
#                            is asked at each STAGE (recipient, data,
#                            end_of_data) and its milter on MILTER_PORT runs
#                            (tempfail if it is down)
#   pf_start                 start it and wait until PF_PORT listens
#   pf_stop                  stop it (also on exit: pf_setup arranges that)
#
# The basics come from spec/harness/postfix-base.sh (shared with the
# harness's call-out Postfix); mtimes are set back or every start waits 2 s.

# shellcheck source=spec/harness/postfix-base.sh
. "$ROOT/spec/harness/postfix-base.sh"

pf_setup() {
    PF=$1
    chmod 755 "$T"
    postfix_private "$PF" "$2"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$2" \
        -keyout "$PF/etc/key.pem" -out "$PF/etc/cert.pem" >/dev/null 2>&1
    cat >> "$PF/etc/main.cf" <<EOF
myhostname = $2
# accepted mail goes nowhere
default_transport = discard
relay_transport = discard
EOF
    trap 'pf_stop; e2e_cleanup' EXIT
}

pf_ask_outpostd() { # policy-port milter-port stage...
    local policy=$1 milter=$2 stage
    shift 2
    {
        echo "mynetworks = 127.0.0.0/8"
        echo "smtpd_relay_restrictions = permit_mynetworks, reject"
        for stage in "$@"; do
            echo "smtpd_${stage}_restrictions = check_policy_service inet:127.0.0.1:$policy"
        done
        echo "smtpd_milters = inet:127.0.0.1:$milter"
        echo "milter_protocol = 6"
        echo "milter_default_action = tempfail"
    } >> "$PF/etc/main.cf"
}

# The sink: accepted mail goes to the discard transport, which logs one
# "status=sent" line per recipient in the instance's maillog.
#   pf_delivered RCPT        how many times RCPT was delivered
#   pf_delivered_re ERE      how many deliveries to recipients matching ERE
#   pf_drained SECONDS       waits until the queue is empty (all delivered)
pf_delivered() { grep -F " to=<$1>, " "$PF/log/maillog" | grep -c ' status=sent '; }
pf_delivered_re() { grep -E " to=<$1>, .* status=sent " "$PF/log/maillog" | grep -c .; }

pf_drained() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        postqueue -c "$PF/etc" -p 2>/dev/null | grep -q '^Mail queue is empty' && return 0
        sleep 0.1
    done
    postqueue -c "$PF/etc" -p | tail -3 | sed 's/^/#   /'
    return 1
}

pf_start() {
    cat "$ROOT/spec/harness/postfix-master.services" >> "$PF/etc/master.cf"
    touch -d '-10 seconds' "$PF/etc/main.cf" "$PF/etc/master.cf"
    postfix -c "$PF/etc" check >"$PF/log/start.log" 2>&1
    if ! postfix -c "$PF/etc" start >>"$PF/log/start.log" 2>&1; then
        echo "postfix did not start:"; cat "$PF/log/start.log"; tail -5 "$PF/log/maillog"
        return 1
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        [ -n "$(ss -Hltn "( sport = :$PF_PORT )")" ] && return 0
        sleep 0.1
    done
    echo "postfix does not listen on $PF_PORT"
    return 1
}

pf_stop() { [ -n "${PF:-}" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1; return 0; }

# SASL AUTH for the instance: Cyrus SASL with a private sasldb (PLAIN and
# LOGIN), no saslauthd.  A login is user@realm: Cyrus appends the realm
# (without one it would be myhostname), so Postfix's sasl_username is
# alice@example.org, the form docs/testing.md settles on.  main.cf gets the
# Cyrus settings unless the test's main.cf already points at them.
#   pf_sasl_user alice@example.org alice-secret
pf_sasl_user() {
    local sasl=$PF/etc/sasl
    if [ ! -f "$sasl/smtpd.conf" ]; then
        mkdir -p "$sasl"
        cat > "$sasl/smtpd.conf" <<EOC
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $sasl/sasldb2
EOC
    fi
    if ! grep -q '^cyrus_sasl_config_path' "$PF/etc/main.cf"; then
        cat >> "$PF/etc/main.cf" <<EOC
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $sasl
smtpd_sasl_security_options = noanonymous
EOC
    fi
    printf %s "$2" | saslpasswd2 -p -c -f "$sasl/sasldb2" -u "${1#*@}" "${1%@*}"
    chown root:postfix "$sasl/sasldb2"
    chmod 640 "$sasl/sasldb2"
}

# Waits up to 10 s until at least N recipients matching ERE were delivered.
#   pf_wait_sent N [ERE]
pf_wait_sent() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(pf_delivered_re "${2:-[^>]*}")" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# pf_policy_round VAR ADDRESS [TENANT]: points main.cf's policy address VAR
# (the shipped fragments' postout_policy, mailout_policy, appout_policy) at
# the round's endpoint (lib.sh): ADDRESS, the service's own listener, or
# the one endpoint; there every check_policy_service { } whose
# policy_context names a service without a tenant names TENANT too
# (policy_context=appout-stage1 -> appout-stage1:TENANT).  A running
# instance whose main.cf changed is reloaded.
pf_policy_round() {
    local cf=$PF/etc/main.cf addr=$2 before
    before=$(cksum < "$cf")
    if one_endpoint; then addr=$(endpoint_address); fi
    postconf -c "$PF/etc" -e "$1 = $addr" 2>/dev/null || return 1
    if one_endpoint && [ -n "${3:-}" ]; then
        sed -i -E "s/(policy_context=[a-z0-9-]+)([,} ]|$)/\1:$3\2/" "$cf"
    else
        sed -i -E "s/(policy_context=[a-z0-9-]+):[a-z0-9]+/\1/" "$cf"
    fi
    [ "$(cksum < "$cf")" = "$before" ] && return 0
    touch -d '-10 seconds' "$cf"
    if postfix -c "$PF/etc" status >/dev/null 2>&1; then
        postfix -c "$PF/etc" reload >>"$PF/log/start.log" 2>&1 || return 1
        sleep 1   # the smtpds of the old configuration finish
    fi
}

# pf_endpoint_check VAR CONTEXT...: on a one-endpoint round, main.cf's VAR
# is the one endpoint and each CONTEXT is a policy_context it sends.
pf_endpoint_check() {
    one_endpoint || return 0
    local var=$1 c
    shift
    check "one endpoint: $(basename "$PF")'s $var is $(endpoint_address)" \
        test "$(postconf -c "$PF/etc" -h "$var" 2>/dev/null)" = "$(endpoint_address)"
    for c in "$@"; do
        check "one endpoint: $(basename "$PF") asks it with policy_context=$c" \
            grep -qE "check_policy_service \{ \\\$$var, policy_context=${c}[,} ]" "$PF/etc/main.cf"
    done
}

# pf_appout_stage 2 DIR SOCK PORT
# pf_appout_stage 1 DIR SOCK PORT STAGE2_PORT [SUBMISSIONS_PORT]
# One stage of appout's two-stage Postfix (conf/postfix/appout/), set up in
# DIR (pf_setup) and left for the caller to add to and start (pf_start):
# the shipped main.cf with the policy at unix:SOCK, this instance's
# certificate and Cyrus SASL with a private sasldb (pf_sasl_user) instead
# of Dovecot.  Stage 2: the shipped 127.0.0.1:10026 smtpd on PORT.  Stage
# 1: the shipped submission service on PORT, submissions on
# SUBMISSIONS_PORT (without it, no submissions), the appout-stage2
# transport pointing at STAGE2_PORT, and XCLIENT from loopback (a test
# plays the application host).  Sets PF and PF_PORT.
pf_appout_stage() {
    local stage=$1 sock=$3 port=$4
    pf_setup "$2" "$([ "$stage" = 2 ] && echo stage2.)appout-lm.test"
    PF_PORT=$port
    sed -e "s|^appout_policy = .*|appout_policy = unix:$sock|" \
        -e "s|/etc/ssl/appout-lm/fullchain.pem|$PF/etc/cert.pem|" \
        -e "s|/etc/ssl/appout-lm/privkey.pem|$PF/etc/key.pem|" \
        -e "s|^smtpd_sasl_type = dovecot|smtpd_sasl_type = cyrus|" \
        -e "s|^smtpd_sasl_path = private/auth|smtpd_sasl_path = smtpd\ncyrus_sasl_config_path = $PF/etc/sasl|" \
        "$ROOT/conf/postfix/appout/main.cf" >> "$PF/etc/main.cf"
    if [ "$stage" = 2 ]; then
        awk '/^127\.0\.0\.1:10026 /{p=1} p' "$ROOT/conf/postfix/appout/master.cf" |
            sed "s|^127\.0\.0\.1:10026 |127.0.0.1:$port |" > "$PF/etc/master.cf"
        return
    fi
    local submissions=(-e "/^submissions inet /,/^#/d")
    [ -n "${6:-}" ] && submissions=(-e "s|^submissions inet |127.0.0.1:$6 inet |")
    echo "smtpd_authorized_xclient_hosts = 127.0.0.0/8" >> "$PF/etc/main.cf"
    awk '/^127\.0\.0\.1:10026 /{exit} {print}' "$ROOT/conf/postfix/appout/master.cf" |
        sed -e "s|^submission inet |127.0.0.1:$port inet |" "${submissions[@]}" \
            -e "s|appout-stage2:\[127\.0\.0\.1\]:10026|appout-stage2:[127.0.0.1]:$5|" > "$PF/etc/master.cf"
}

# The harness's SMTP server for the call-out (outpost.smtp.verify): a
# private Postfix instance in $HARNESS_DIR/smtp whose smtpd listens on
# 127.0.0.1:$SMTP_VERIFY_PORT (sourced by harness.sh).  It is the final
# destination of verify.test, where
#   alice@, bob@, postmaster@   are accepted (relay_recipient_maps),
#   anyone else                 is rejected: 550 5.1.1 User unknown,
#   slow@                       is accepted after a 2 s pause (Postfix's
#                               `sleep` restriction), for budgets and timeouts,
#   busy@                       gets 450 4.2.1 (a temporary failure).
# Its smtpd on 127.0.0.1:$SMTP_SLOW_PORT waits 3 s before its greeting
# (smtpd_client_restrictions = sleep 3 with smtpd_delay_reject = no), for
# per-step timeouts.  Mail is never accepted for delivery: the call-out
# quits after RCPT.  See ../shared/recipes/REAL-COMPONENTS.md, section 6.
SMTP_DIR=$HARNESS_DIR/smtp
# shellcheck source=spec/harness/postfix-base.sh
. "$ROOT/spec/harness/postfix-base.sh"

smtp_write_conf() {
    local etc=$SMTP_DIR/etc
    postfix_private "$SMTP_DIR" verify
    cat >> "$etc/main.cf" <<CONF
myhostname = mx.verify.test
mydomain = verify.test
mynetworks = 127.0.0.1/32
relay_domains = verify.test
relay_recipient_maps = inline:{ alice@verify.test=ok, bob@verify.test=ok, postmaster@verify.test=ok, slow@verify.test=ok, busy@verify.test=ok }
local_recipient_maps =
in_flow_delay = 0s
smtpd_restriction_classes = slowdown
slowdown = sleep 2, permit
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access inline:{ slow@verify.test=slowdown, { busy@verify.test = 450 4.2.1 mailbox busy } }
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
CONF
    cat > "$etc/master.cf" <<CONF
127.0.0.1:$SMTP_VERIFY_PORT inet n - n - - smtpd
127.0.0.1:$SMTP_SLOW_PORT inet n - n - - smtpd
  -o smtpd_delay_reject=no
  -o smtpd_client_restrictions=sleep,3
CONF
    # Postfix's own services, unchrooted (shared with spec/e2e/postfix.sh)
    cat "$ROOT/spec/harness/postfix-master.services" >> "$etc/master.cf"
    # Postfix waits for config files younger than about 2 s to settle.
    touch -d '-10 seconds' "$etc/main.cf" "$etc/master.cf"
}

smtp_listening() {
    [ -n "$(ss -Hltn "( sport = :$SMTP_VERIFY_PORT )")" ] &&
        [ -n "$(ss -Hltn "( sport = :$SMTP_SLOW_PORT )")" ]
}

smtp_up() {
    smtp_write_conf
    postfix -c "$SMTP_DIR/etc" check >>"$SMTP_DIR/log/start.log" 2>&1
    postfix -c "$SMTP_DIR/etc" start >>"$SMTP_DIR/log/start.log" 2>&1 || {
        log "postfix (smtp) did not start: $(tail -5 "$SMTP_DIR/log/maillog" 2>/dev/null)"
        return 1
    }
    wait_until 10 smtp_listening || { log "postfix (smtp) does not listen"; return 1; }
}

smtp_master_pid() {
    [ -f "$SMTP_DIR/queue/pid/master.pid" ] && tr -d ' \n' < "$SMTP_DIR/queue/pid/master.pid"
}

smtp_down() {
    local pid
    pid=$(smtp_master_pid) || return 0
    pid_alive "$pid" || return 0
    postfix -c "$SMTP_DIR/etc" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || break
        sleep 0.05
    done
    stop_pid "$pid"
}

smtp_running() {
    local pid
    pid=$(smtp_master_pid) && pid_alive "$pid"
}

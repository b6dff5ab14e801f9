#!/bin/bash
# The postout policy (lua/policies/postout.lua, PO1-PO7) in a running daemon
# against the harness's slapd and unbound: answers over the socket, the
# decision log naming the check, and what a reload (SIGHUP) changes without
# a restart: a check's mode (PO6 enforce -> log-only), the locked-accounts
# list (PO3), and a broken policy or list refused while the old generation
# keeps serving.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
# shellcheck source=spec/e2e/postout_rig.sh
. "$ROOT/spec/e2e/postout_rig.sh"
e2e_setup

# write_conf PO6_MODE
write_conf() { postout_alone_conf "checks = [PO6=$1]" | e2e_config; }
write_conf enforce
e2e_start || { e2e_finish; exit 1; }

P=unix:$T/postout.sock
# ask_po ATTR=VALUE...: alice over TLS, sending to bob, unless overridden
# (an attribute twice would be a malformed request: later ones replace)
ask_po() {
    local -A a=([encryption_protocol]=TLSv1.3 [sasl_method]=PLAIN [sasl_username]=alice
        [sender]=alice@example.org [recipient]=bob@example.org [instance]="e2e.$RANDOM$RANDOM")
    local kv args=()
    for kv in "$@"; do a[${kv%%=*}]=${kv#*=}; done
    for kv in "${!a[@]}"; do args+=("$kv=${a[$kv]}"); done
    $ASK "$P" "${args[@]}" 2>&1
}
answers() { # want ATTR=VALUE...
    local want=$1 got
    shift
    got=$(ask_po "$@")
    [ "$got" = "action=$want" ] || { echo "    got: $got"; return 1; }
}
says() { # PATTERN ATTR=VALUE...: the answer matches the grep -E pattern
    local pat=$1 got
    shift
    got=$(ask_po "$@")
    grep -qE -- "$pat" <<<"$got" || { echo "    got: $got"; return 1; }
}
# hup: SIGHUP, then wait until the log shows one more reload outcome
reloads() { grep -cE "reload: generation [0-9]+ is current|reload failed" "$T/daemon.log"; }
hup() {
    local before
    before=$(reloads)
    kill -HUP "$DAEMON_PID"
    for _ in $(seq 100); do [ "$(reloads)" -gt "$before" ] && return 0; sleep 0.05; done
    return 1
}

check "a good submission: DUNNO" answers DUNNO
check "PO1: no TLS is refused with how to set up the client" \
    says '^action=530 5.7.10 .*port 465' encryption_protocol=
check "PO4: another's sender is refused, naming it" \
    says '^action=553 5.7.1 your account alice may not send as <bob@example.org>' sender=bob@example.org
check "PO5: a domain that does not exist" \
    says '^action=550 5.1.2 ' recipient=x@nxdomain.test
check "PO6 enforced: an unknown local recipient is refused" \
    says '^action=550 5.1.1 ' recipient=bbo@example.org
check "... and the decision line names PO6" log_has "decision .*check=PO6"
check "PO3: erin, on the shipped locked list, is refused" \
    says '^action=550 5.7.13 ' sasl_username=erin sender=erin@students.example.org

# a mode changed in the configuration, SIGHUP, no restart
write_conf log-only
check "SIGHUP reloads" hup
check "PO6 log-only after the reload: the same recipient passes" answers DUNNO recipient=bbo@example.org
check "... and the log says what PO6 would have answered" \
    log_has "PO6 \(recipient exists when its domain is local\) log-only: would answer 550 5.1.1"

# the locked list is read again on reload
echo alice >> "$T/lists/locked_accounts.txt"
check "SIGHUP reloads the lists" hup
check "PO3: alice, now on the locked list, is refused" \
    says '^action=550 5.7.13 your account alice is locked'
sed -i '/^alice$/d' "$T/lists/locked_accounts.txt"
echo "not a login" >> "$T/lists/locked_accounts.txt"
check "a broken list line refuses the reload" hup
check "... with the list's file and line" log_has "reload failed; generation [0-9]+ keeps serving: .*locked_accounts.txt:[0-9]+:"
check "... and the old generation keeps serving (alice still locked)" \
    says '^action=550 5.7.13 '
sed -i '/^not a login$/d' "$T/lists/locked_accounts.txt"

# a typo in the policy
cp "$T/lua/policies/postout.lua" "$T/postout.lua.good"
sed -i 's/^local LIMIT = "postout_rcpt"$/local LIMIT = = "postout_rcpt"/' "$T/lua/policies/postout.lua"
check "a typo in the policy refuses the reload" hup
check "... with the policy's file and line" log_has "reload failed; generation [0-9]+ keeps serving: .*postout.lua:[0-9]+:"
check "... and the old generation keeps serving" \
    says '^action=550 5.7.13 '
cp "$T/postout.lua.good" "$T/lua/policies/postout.lua"
check "the fixed policy and list load again" hup
check "... and alice passes again" answers DUNNO

check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

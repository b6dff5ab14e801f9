#!/bin/bash
# One policy endpoint for every service and tenant, through real Postfix:
# one outpostd unix listener whose allow_context lists postout, mailout,
# appout-stage1:lm and appout-stage2:tu, and one Postfix instance whose
# smtpds each ask it with their own policy_context
# (check_policy_service { unix:SOCKET, policy_context=VALUE }, Postfix 3.7).
# The services run a policy that answers with the service and tenant it was
# given, so each reply shows who decided.  A context the listener does not
# list is answered with its unknown_context_action (4xx), by no policy, and
# logged once per value per minute.  docs/services.md (## One endpoint).
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
e2e_setup

SOCK=$T/run/policy.sock
e2e_config <<EOF
listener policy {
    listen = unix:$SOCK
    socket_group = postfix
    service = postout
    tenant = lrz
    allow_context = [postout, mailout, "appout-stage1:lm", "appout-stage2:tu"]
}
service postout { policy = who }
service mailout { policy = who }
service appout-stage1 { policy = who }
service appout-stage2 { policy = who }
EOF
e2e_policy who <<'EOF'
-- Says who decided: the service and the tenant the request came with.
local A = require "outpost.action"
return { on_request = function(req)
    return A.reject("5.7.1", "decided by service=%s tenant=%s", req.service,
        req.tenant ~= "" and req.tenant or "-")
end }
EOF
e2e_start || exit 1

. "$ROOT/spec/e2e/postfix.sh"
pf_setup "$T/pf" endpoint.test
# One smtpd per policy_context, all asking the same socket.
CONTEXTS=(postout mailout appout-stage1:lm appout-stage2:tu appout-stage1:xx appout-stage1 postout:lm)
{
    echo "smtpd_relay_restrictions = permit_mynetworks, reject"
    for i in "${!CONTEXTS[@]}"; do
        echo "ctx$i = check_policy_service { unix:$SOCK, policy_context=${CONTEXTS[$i]} }, reject"
    done
} >> "$PF/etc/main.cf"
for i in "${!CONTEXTS[@]}"; do
    echo "127.0.0.1:$((POSTFIX_BASE_PORT + 5 + i)) inet n - n - - smtpd -o smtpd_recipient_restrictions=\$ctx$i"
done > "$PF/etc/master.cf"
PF_PORT=$((POSTFIX_BASE_PORT + 5))
pf_start || exit 1

# rcpt CONTEXT: Postfix's reply to RCPT on the smtpd that sends CONTEXT
rcpt() {
    local i
    for i in "${!CONTEXTS[@]}"; do [ "${CONTEXTS[$i]}" = "$1" ] && break; done
    swaks --server 127.0.0.1 --port $((POSTFIX_BASE_PORT + 5 + i)) --helo client.test \
        --from a@example.org --to rcpt@example.net --quit-after RCPT --timeout 20 2>&1 | grep -E '^<~?\*\* ' | tail -1
}
replies() { # CONTEXT, the reply that must come
    local got
    got=$(rcpt "$1")
    grep -qF -- "$2" <<<"$got" || { echo "#   got: $got"; return 1; }
}
decided() { replies "$1" "554 5.7.1 <rcpt@example.net>: Recipient address rejected: decided by $2"; }

check "policy_context=postout: postout with the listener's tenant" decided postout "service=postout tenant=lrz"
check "policy_context=mailout: mailout with the listener's tenant" decided mailout "service=mailout tenant=lrz"
check "policy_context=appout-stage1:lm: stage 1 for tenant lm" decided appout-stage1:lm "service=appout-stage1 tenant=lm"
check "policy_context=appout-stage2:tu: stage 2 for tenant tu" decided appout-stage2:tu "service=appout-stage2 tenant=tu"
check "... the decision lines name the tenant the context gave" bash -c \
    "grep -qE 'decision req=[0-9]+ service=appout-stage1 tenant=lm ' '$T/daemon.log' &&
     grep -qE 'decision req=[0-9]+ service=appout-stage2 tenant=tu ' '$T/daemon.log'"

UNKNOWN="451 4.3.5 <rcpt@example.net>: Recipient address rejected: policy service: unknown policy_context"
check "a tenant the listener does not list (appout-stage1:xx) is 4xx, by no policy" replies appout-stage1:xx "$UNKNOWN"
check "a service listed only with a tenant (appout-stage1) is 4xx, by no policy" replies appout-stage1 "$UNKNOWN"
check "the listener's own service with a tenant it does not list (postout:lm) is 4xx" replies postout:lm "$UNKNOWN"
for _ in 1 2 3; do rcpt appout-stage1:xx >/dev/null; done
check "an unknown context is logged once per value per minute" bash -c \
    "[ \$(grep -c 'policy_context \"appout-stage1:xx\" is not in allow_context' '$T/daemon.log') = 1 ]"
check "... and no policy decided any of them" bash -c \
    "! grep -E 'decision .*(tenant=xx|service=appout-stage1 tenant=lrz)' '$T/daemon.log'"

pf_stop
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

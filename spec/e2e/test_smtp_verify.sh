#!/bin/bash
# outpost.smtp.verify in the daemon (MO5) against the harness's Postfix:
# a verification slower than its budget answers 4xx and fills the cache for
# the retry; a request that gives up (deadline) while a session runs, and
# shutdown with sessions open, are clean under ASan.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env" || { echo "harness not up"; echo "0 passed, 1 failed"; exit 1; }
e2e_setup
e2e_config <<EOF
listener unix {
    listen = unix:@T@/policy.sock
    service = mo5
}
service mo5 {
    deadline = 1s
    default_action = "451 4.3.5 test default"
}
dns {
    servers = [127.0.0.1:$DNS_PORT]
    timeout = 1s
}
smtp_verify {
    port = $SMTP_VERIFY_PORT
    step_timeout = 5s
}
EOF
e2e_policy mo5 <<'EOF'
local A = require "outpost.action"
local smtp = require "outpost.smtp"
return function(req)
    local sender = req.attrs.sender
    -- client_name=patient: no budget, and the listener that greets after 3 s,
    -- so the deadline (1s) passes first
    local patient = req.attrs.client_name == "patient"
    local verdict, reply = smtp.verify(sender, {
        budget = not patient and 0.5 or nil,
        port = patient and tonumber("@SLOW_PORT@") or nil,
    })
    if verdict == "accepted" then return A.dunno()
    elseif verdict == "rejected" then return A.reject("5.7.1", "sender rejected: %s", reply)
    elseif verdict == nil then return A.reject("5.1.7", "bad sender address")
    end
    return A.defer("4.7.1", "sender %s: %s", verdict, reply or "verifying")
end
EOF
sed -i "s/@SLOW_PORT@/$SMTP_SLOW_PORT/" "$T/lua/policies/mo5.lua"
e2e_start || exit 1
S=unix:$T/policy.sock

check "an accepted sender goes on" bash -c "$ASK $S sender=alice@verify.test | grep -qx 'action=DUNNO'"
check "a rejected sender gets 5xx with the server's reply" \
    bash -c "$ASK $S sender=nobody@verify.test | grep -q '^action=REJECT 5.7.1 sender rejected: 550 5.1.1'"
check "a slow verification past its budget answers 4xx pending" \
    bash -c "$ASK $S sender=slow@verify.test | grep -qx 'action=DEFER 4.7.1 sender pending: verifying'"
sleep 2 # Postfix answers slow@ after 2 s; the session fills the cache
check "the retry finds the verdict in the cache" bash -c "$ASK $S sender=slow@verify.test | grep -qx 'action=DUNNO'"
check "a request past its deadline during a session answers the default" \
    bash -c "$ASK $S sender=carol@verify.test client_name=patient | grep -qx 'action=451 4.3.5 test default'"
for i in 1 2 3; do $ASK "$S" "sender=late$i@verify.test" client_name=patient >/dev/null 2>&1 & done
$ASK "$S" "sender=slow@example.org" >/dev/null 2>&1 &
sleep 0.2
check "SIGTERM with sessions open exits 0" e2e_stop
wait
check_log_clean
e2e_finish

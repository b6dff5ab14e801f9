#!/bin/bash
# Check modes from the configuration: enforce, log-only, off, per service
# and per tenant; a mode for a check the policy does not have refuses the
# load.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_config <<'EOF'
listener main {
    listen = unix:@T@/main.sock
    service = checks
    tenant = main
}
listener t1 {
    listen = unix:@T@/t1.sock
    service = checks
    tenant = t1
}
service checks {
    checks = [X2=log-only]
    tenant_checks = [t1:X1=off, t1:X2=enforce]
}
EOF
e2e_policy checks <<'EOF'
local A = require "outpost.action"
local P = require "outpost.pipeline"
local function refuse(id)
    return function(tx)
        if tx.sender == id:lower() .. "@test" then return A.reject("5.7.1", "%s says no", id) end
    end
end
return P.service "checks" {
    P.check("X1", "first rule", refuse("X1")),
    P.check("X2", "second rule, being introduced", refuse("X2")),
    P.check("X3", "third rule", refuse("X3")),
}
EOF
e2e_start || exit 1
M=unix:$T/main.sock
T1=unix:$T/t1.sock
check "an enforced check answers" bash -c "$ASK $M sender=x1@test | grep -qx 'action=REJECT 5.7.1 X1 says no'"
check "... and the decision line names it" log_has "decision .* sender=x1@test .* check=X1 reason=policy"
check "a log-only check does not answer" bash -c "$ASK $M sender=x2@test | grep -qx 'action=DUNNO'"
check "... but logs what it would have answered" log_has "X2 \(second rule, being introduced\) log-only: would answer REJECT 5.7.1 X2 says no"
check "checks after a log-only one still run" bash -c "$ASK $M sender=x3@test | grep -qx 'action=REJECT 5.7.1 X3 says no'"
check "a tenant's mode turns a check off" bash -c "$ASK $T1 sender=x1@test | grep -qx 'action=DUNNO'"
check "a tenant's mode enforces a check log-only elsewhere" bash -c "$ASK $T1 sender=x2@test | grep -qx 'action=REJECT 5.7.1 X2 says no'"
check "SIGTERM stops it with status 0" e2e_stop

sed 's/checks = \[X2=log-only\]/checks = [X9=log-only]/' "$T/outpost.conf" > "$T/typo.conf"
check "a mode for a check the policy lacks is refused at load" bash -c \
    "'$OUTPOSTD' --check -c '$T/typo.conf' 2>&1 | grep -q 'service checks: checks names X9, which is not a check of this policy'"
sed 's/checks = \[X2=log-only\]/checks = [X2=maybe]/' "$T/outpost.conf" > "$T/mode.conf"
check "an unknown mode is a configuration error with its line" bash -c \
    "'$OUTPOSTD' --check -c '$T/mode.conf' 2>&1 | grep -qE 'mode.conf:[0-9]+: .*the mode must be enforce, log-only, off or tag'"
check_log_clean
e2e_finish

#!/bin/bash
# Data lists are read when the policies load: a reload picks up an edited
# list, a broken list refuses the reload (the old generation keeps serving),
# and a policy may not read a list inside a request.
. "$(dirname "$0")/lib.sh"
e2e_setup
mkdir -p "$T/lists"
e2e_config <<'EOF'
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lists_dir = @T@/lists
}
listener unix {
    listen = unix:@T@/policy.sock
    service = area
}
service area { }
EOF
printf '10.0.0.0/8 campus\n10.1.0.0/16 area-a\n' > "$T/lists/networks.txt"
e2e_policy area <<'EOF'
local A = require "outpost.action"
local lists = require "outpost.lists"
local NETWORKS = lists.networks("networks")
return function(req)
    if req.attrs.sender == "late@test" then lists.networks("networks") end
    return A.warn("area=%s", NETWORKS:match(req.attrs.client_address) or "outside")
end
EOF
e2e_start || exit 1
S=unix:$T/policy.sock
check "a client is placed by the list" bash -c "$ASK $S client_address=10.1.2.3 | grep -qx 'action=WARN area=area-a'"
check "a client outside every network" bash -c "$ASK $S client_address=192.0.2.1 | grep -qx 'action=WARN area=outside'"
printf '10.0.0.0/8 campus\n10.1.0.0/16 area-b\n' > "$T/lists/networks.txt"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a reload reads the edited list" bash -c "$ASK $S client_address=10.1.2.3 | grep -qx 'action=WARN area=area-b'"
printf '10.0.0.0/8 campus\n10.1.2.3/16 area-c\n' > "$T/lists/networks.txt"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a broken list refuses the reload, naming file and line" log_has "reload failed; generation 2 keeps serving: .*networks.txt:2: '10.1.2.3/16' has host bits set"
check "... and the old lists keep answering" bash -c "$ASK $S client_address=10.1.2.3 | grep -qx 'action=WARN area=area-b'"
check "reading a list inside a request is refused (the default action)" bash -c "$ASK $S sender=late@test | grep -q '^action=451 4.3.5'"
check "... and says to read lists when the policy loads" log_has "lists are read when the policy loads, not in a request"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

#!/bin/bash
# outpost.dns in the daemon: a request that gives up (deadline) while its
# lookup is on the wire, a reload keeping the cache and taking new servers,
# and shutdown with lookups in flight, all clean under ASan.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env" || { echo "harness not up"; echo "0 passed, 1 failed"; exit 1; }
e2e_setup

write_config() { # dns server port
    e2e_config <<EOF
listener unix {
    listen = unix:@T@/policy.sock
    service = po5
}
service po5 {
    deadline = 300ms
    default_action = "451 4.3.5 test default"
}
dns {
    servers = [127.0.0.1:$1]
    timeout = 1s
    tries = 1
}
EOF
}
write_config "$DNS_PORT"
cp "$ROOT/spec/lua/fixtures/po5_policy.lua" "$T/lua/policies/po5.lua"
e2e_start || exit 1
S=unix:$T/policy.sock
check "the load warns that a silent DNS server outlasts the deadline" \
    log_has "dns: timeout × tries is 1s, not under service 'po5''s deadline 0.3s"

check "a domain with MX goes on" bash -c "$ASK $S recipient=bob@withmx.test | grep -qx 'action=DUNNO'"
check "a null MX domain is rejected" bash -c "$ASK $S recipient=bob@nullmx.test | grep -q '^action=REJECT 5.1.10'"
check "a lookup past the deadline answers the default action" \
    bash -c "$ASK $S recipient=bob@e2e.timeout.test | grep -qx 'action=451 4.3.5 test default'"
sleep 1.2 # the abandoned query times out meanwhile; its record is freed
check "the daemon answers after the abandoned lookup ended" \
    bash -c "$ASK $S recipient=bob@aonly.test | grep -qx 'action=DUNNO'"

# Reload onto the silent server: cached names still answer, new ones wait.
write_config "$DNS_SILENT_PORT"
kill -HUP "$DAEMON_PID"
for _ in $(seq 50); do log_has "reload: generation 2 is current" && break; sleep 0.1; done
check "the reload took" log_has "reload: generation 2 is current"
check "a cached answer survives the reload" bash -c "$ASK $S recipient=bob@withmx.test | grep -qx 'action=DUNNO'"
check "an uncached name now goes to the new (silent) server" \
    bash -c "$ASK $S recipient=bob@partner.test | grep -qx 'action=451 4.3.5 test default'"

# Shutdown with lookups in flight.
for i in 1 2 3; do $ASK "$S" "recipient=bob@late$i.test" >/dev/null 2>&1 & done
sleep 0.1
check "SIGTERM with lookups in flight exits 0" e2e_stop
wait
check_log_clean
e2e_finish

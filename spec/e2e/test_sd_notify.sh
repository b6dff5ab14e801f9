#!/bin/bash
# systemd's Type=notify and WatchdogSec= without systemd: a datagram socket
# of ours stands in as NOTIFY_SOCKET.  The daemon says READY=1 once it
# serves, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a reload,
# STOPPING=1 when it drains, a STATUS= line, and pings WATCHDOG=1 at half
# of WATCHDOG_USEC from its loop.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_config <<'EOF2'
listener unix {
    listen = unix:@T@/policy.sock
    service = dunno
}
service dunno { }
EOF2
e2e_policy dunno <<'EOF2'
local A = require "outpost.action"
return function(req) return A.dunno() end
EOF2

python3 "$ROOT/spec/e2e/notify_listen.py" "$T/notify.sock" "$T/notify.log" &
LISTENER=$!
trap 'kill $LISTENER 2>/dev/null; e2e_cleanup' EXIT
wait_for_socket "$T/notify.sock" 5
msgs() { cut -d' ' -f2- "$T/notify.log"; }

# 400 ms: pings every 200 ms.
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 e2e_start || exit 1
for ((i = 0; i < 40; i++)); do grep -q 'READY=1' "$T/notify.log" && break; sleep 0.05; done
check "READY=1 once the daemon serves" bash -c "msgs() { cut -d' ' -f2- '$T/notify.log'; }; msgs | grep -q '^READY=1|STATUS=serving: generation 1, 0 connections'"
check "... and it answers then" bash -c "$ASK unix:$T/policy.sock | grep -qx action=DUNNO"
sleep 2
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 40; i++)); do [ "$(grep -c 'READY=1' "$T/notify.log")" -ge 2 ] && break; sleep 0.05; done
e2e_stop
sleep 0.2
sed 's/^/# /' "$T/notify.log" | grep -v WATCHDOG

order=$(msgs | grep -oE '^(READY|RELOADING|STOPPING)=1' | tr '\n' ' ')
check "READY, RELOADING, READY, STOPPING in that order ($order)" test "$order" = "READY=1 RELOADING=1 READY=1 STOPPING=1 "
check "RELOADING=1 carries MONOTONIC_USEC" bash -c "grep -qE 'RELOADING=1\|MONOTONIC_USEC=[0-9]+$' '$T/notify.log'"
check "the READY after the reload names generation 2" grep -q 'READY=1|STATUS=serving: generation 2' "$T/notify.log"
check "STOPPING=1 says it drains" grep -q 'STOPPING=1|STATUS=draining: generation 2' "$T/notify.log"
check "the log says the watchdog is on" log_has "systemd watchdog: pinging every 0.2s"

# The pings between READY and STOPPING: every 200 ms, none late.
read -r n mean worst < <(awk '/READY=1\|STATUS=serving: generation 1/ { on = 1 }
    /STOPPING=1/ { on = 0 }
    on && /WATCHDOG=1/ { if (last) { d = $1 - last; s += d; k++; if (d > w) w = d } last = $1 }
    END { printf "%d %.3f %.3f\n", k, k ? s / k : 0, w }' "$T/notify.log")
echo "# watchdog: $n intervals, mean ${mean}s, longest ${worst}s (WATCHDOG_USEC=400000)"
check "WATCHDOG=1 pings kept coming ($n intervals in about 2.5 s)" test "$n" -ge 8
check "... every 0.2 s on average (${mean}s)" awk -v m="$mean" 'BEGIN { exit !(m > 0.15 && m < 0.26) }'
check "... none later than the watchdog interval (${worst}s < 0.4s)" awk -v w="$worst" 'BEGIN { exit !(w < 0.4) }'

# Without WATCHDOG_USEC: no pings; with another process's WATCHDOG_PID: none either.
: > "$T/notify.log"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 WATCHDOG_PID=1 e2e_start || exit 1
sleep 0.7
e2e_stop
check "WATCHDOG_PID of another process: no pings" bash -c "! grep -q WATCHDOG '$T/notify.log'"
check "... but READY and STOPPING still" bash -c "grep -q READY=1 '$T/notify.log' && grep -q STOPPING=1 '$T/notify.log'"

# Without NOTIFY_SOCKET (not under systemd): nothing is sent, nothing breaks.
: > "$T/notify.log"
e2e_start || exit 1
check "without NOTIFY_SOCKET it serves" bash -c "$ASK unix:$T/policy.sock | grep -qx action=DUNNO"
e2e_stop
check "... and sends nothing" test ! -s "$T/notify.log"
check_log_clean

# The pings come from the event loop, not from a thread: while a compiled
# endless loop (lua_jit = yes, which no hook stops) holds the loop, they
# stop, so systemd's WatchdogSec= would restart the daemon even before the
# CPU watchdog's exit of last resort (twice cpu_budget, here 8 s).
e2e_config <<'EOF2'
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    lua_jit = yes
}
listener unix {
    listen = unix:@T@/policy.sock
    service = stuck
}
service stuck { cpu_budget = 4s }
EOF2
e2e_policy stuck <<'EOF2'
local A = require "outpost.action"
return function(req)
    if req.attrs.sender == "stuck@test" then
        local i = 0
        while true do i = i + 1 end
    end
    return A.dunno()
end
EOF2
: > "$T/notify.log"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 e2e_start || exit 1
sleep 1
before=$(grep -c WATCHDOG=1 "$T/notify.log")
$ASK "unix:$T/policy.sock" sender=stuck@test >/dev/null 2>&1 &
STUCK=$!
sleep 0.5
n0=$(grep -c WATCHDOG=1 "$T/notify.log")
sleep 2
n1=$(grep -c WATCHDOG=1 "$T/notify.log")
echo "# watchdog pings: $before in the first second, $((n1 - n0)) in 2 s of a stuck loop"
check "pings came while the loop turned ($before in 1 s)" test "$before" -ge 3
check "no ping while the loop is stuck ($((n1 - n0)) in 2 s, with WatchdogSec=0.4s)" test "$((n1 - n0))" -eq 0
kill -KILL "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
kill "$STUCK" 2>/dev/null; wait "$STUCK" 2>/dev/null
e2e_finish

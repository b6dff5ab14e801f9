#!/bin/bash
# Started as root, outpostd binds its sockets, hands them to the configured
# user, then becomes that user before loading any Lua.
. "$(dirname "$0")/lib.sh"
e2e_setup
if [ "$(id -u)" != 0 ]; then
    echo "# not root: privilege drop cannot be tested here"
    e2e_finish
    exit 0
fi
chmod 755 "$T"
e2e_config <<'EOF'
daemon {
    user = nobody
    group = nogroup
    state_dir = @T@/state
    lua_dir = @T@/lua
}
listener unix {
    listen = unix:@T@/run/policy.sock
    service = whoami
    socket_mode = 0660
}
service whoami { }
EOF
e2e_policy whoami <<'EOF'
local A = require "outpost.action"
return function(req) return A.dunno() end
EOF
e2e_start || exit 1
uid=$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$DAEMON_PID/status")
gid=$(awk '/^Gid:/ { print $2 $3 $4 $5 }' "/proc/$DAEMON_PID/status")
nobody=$(id -u nobody)
nogroup=$(getent group nogroup | cut -d: -f3)
check "the daemon runs as nobody (real, effective, saved uid)" test "$uid" = "$nobody$nobody$nobody$nobody"
check "the daemon runs as group nogroup" test "$gid" = "$nogroup$nogroup$nogroup$nogroup"
check "no supplementary groups are kept" bash -c "[ -z \"\$(awk '/^Groups:/ { print \$2 }' /proc/$DAEMON_PID/status)\" ]"
check "the socket belongs to the daemon's user and group" test "$(stat -c %U:%G "$T/run/policy.sock")" = "nobody:nogroup"
check "the socket has mode 0660" test "$(stat -c %a "$T/run/policy.sock")" = 660
check "the state directory belongs to the daemon's user" test "$(stat -c %U "$T/state")" = nobody
check "it answers" bash -c "$ASK unix:$T/run/policy.sock | grep -qx action=DUNNO"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a reload works as the unprivileged user" log_has "reload: generation 2 is current"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

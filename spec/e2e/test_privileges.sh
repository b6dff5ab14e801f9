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
check "supplementary groups: only the user's own (for nobody: nogroup)" bash -c "[ \"\$(awk '/^Groups:/ { \$1 = \"\"; print }' /proc/$DAEMON_PID/status | xargs)\" = $nogroup ]"
check "the socket belongs to the daemon's user and group" test "$(stat -c %U:%G "$T/run/policy.sock")" = "nobody:nogroup"
check "the socket has mode 0660" test "$(stat -c %a "$T/run/policy.sock")" = 660
check "the state directory belongs to the daemon's user" test "$(stat -c %U "$T/state")" = nobody
check "it answers" bash -c "$ASK unix:$T/run/policy.sock | grep -qx action=DUNNO"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a reload works as the unprivileged user" log_has "reload: generation 2 is current"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
check "running as a user: no warning about root" bash -c "! grep -q 'RUNNING AS ROOT' '$T/daemon.log'"

# A user whose admin group is a supplementary one (as the package's outpost
# user is in group postfix): initgroups keeps it, so control { group } and
# a listener's socket_group work with it.  Temporary users and groups,
# removed on exit.
SUF=$$
U=op-e2e-d$SUF; ADM=op-e2e-adm$SUF; OP=op-e2e-op$SUF
cleanup_users() {
    userdel "$U" 2>/dev/null; userdel "$OP" 2>/dev/null; groupdel "$ADM" 2>/dev/null
}
trap 'e2e_cleanup; cleanup_users' EXIT
groupadd --system "$ADM"
useradd --system --no-create-home --shell /usr/sbin/nologin --groups "$ADM" "$U"
useradd --system --no-create-home --shell /usr/sbin/nologin --groups "$ADM" "$OP"
rm -rf "${T:?}/state" "${T:?}/run"
e2e_config <<EOF
daemon {
    user = $U
    state_dir = @T@/state
    lua_dir = @T@/lua
}
listener unix {
    listen = unix:@T@/run/policy.sock
    service = whoami
    socket_group = $ADM
}
service whoami { }
control {
    socket = @T@/ctl/control.sock   # state_dir is 0750: the admins reach it here
    group = $ADM
}
EOF
mkdir -p "$T/ctl" && chown "$U" "$T/ctl" && chmod 755 "$T/ctl"
e2e_start || exit 1
adm_gid=$(getent group "$ADM" | cut -d: -f3)
check "the daemon keeps its user's supplementary group" \
    bash -c "awk '/^Groups:/' /proc/$DAEMON_PID/status | grep -qw $adm_gid"
check "the control socket got the supplementary admin group" \
    test "$(stat -c %G "$T/ctl/control.sock")" = "$ADM"
check "... without a warning that chgrp failed" bash -c "! grep -q 'control: chgrp' '$T/daemon.log'"
check "a member of the admin group runs outpostctl status" \
    runuser -u "$OP" -- "$ROOT/build/outpostctl" -s "$T/ctl/control.sock" status
check "the policy socket has the socket_group" test "$(stat -c %G "$T/run/policy.sock")" = "$ADM"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean

# As root without a user: it runs, and says loudly what that means.
rm -rf "${T:?}/state" "${T:?}/run"
e2e_config <<EOF
listener unix {
    listen = unix:@T@/run/policy.sock
    service = whoami
}
service whoami { }
EOF
e2e_start || exit 1
check "as root without daemon { user }: a loud warning" log_has "RUNNING AS ROOT: .* sets no daemon \{ user \}"
check "SIGTERM stops it with status 0" e2e_stop
e2e_finish


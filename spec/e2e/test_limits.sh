#!/bin/bash
# Connection limits an admin configures: idle connections are closed, and
# connections past max_connections are refused without disturbing the others.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_config <<'EOF'
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    idle_timeout = 1s
    max_connections = 4
}
listener unix {
    listen = unix:@T@/policy.sock
    service = dunno
}
service dunno { }
EOF
e2e_start || exit 1

t0=$(date +%s%N)
out=$(printf '' | $RAW "unix:$T/policy.sock" --wait 4 | sed -n 2p)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a silent connection is closed after idle_timeout" test "$out" = CLOSED
check "... not before it (closed after ${ms} ms)" test "$ms" -ge 1000 -a "$ms" -lt 3500

out=$(python3 - "$T/policy.sock" <<'EOF'
import socket, sys, time
path = sys.argv[1]
req = b"request=smtpd_access_policy\nsender=a@b\n\n"
held = []
for _ in range(4):
    s = socket.socket(socket.AF_UNIX); s.connect(path); s.settimeout(2)
    s.sendall(req); assert s.recv(100) == b"action=DUNNO\n\n"
    held.append(s)
extra = socket.socket(socket.AF_UNIX); extra.connect(path); extra.settimeout(2)
try:
    extra.sendall(req)
    fifth = extra.recv(100)
except OSError:
    fifth = b""
# the four held connections still work
ok = all((s.sendall(req), s.recv(100))[1] == b"action=DUNNO\n\n" for s in held)
print("fifth=%r held_ok=%s" % (fifth, ok))
EOF
)
echo "# $out"
check "a connection past max_connections is closed unanswered" grep -q "fifth=b''" <<<"$out"
check "the connections within the limit keep working" grep -q "held_ok=True" <<<"$out"
check "the refusal is logged" log_has "max_connections reached"
sleep 0.3
check "after they close, new connections are accepted" bash -c "$ASK unix:$T/policy.sock | grep -qx action=DUNNO"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

#!/bin/bash
# Hot reload under load: SIGHUP every second with an alternating policy and
# library, 64 persistent connections over unix and TCP.  Zero failed
# requests, zero dropped connections, every answer from one complete
# generation.  A broken policy is refused while the old one keeps serving.
# SIGTERM drains what is in flight.
. "$(dirname "$0")/lib.sh"
e2e_setup
PORT=$((20000 + RANDOM % 20000))
SECONDS_UNDER_LOAD=${RELOAD_SECONDS:-6}

e2e_config <<EOF
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    log_decisions = no
    drain_timeout = 5s
}
listener unix {
    listen = unix:@T@/policy.sock
    service = gentest
}
listener tcp {
    listen = tcp:127.0.0.1:$PORT
    service = gentest
}
service gentest { }
EOF

# Generation X = a policy and a library that both say X.  An answer mixing
# them would mean a request saw half of a reload.
write_generation() {
    cat > "$T/lua/lib/genmark.lua.tmp" <<EOF
return { mark = "$1" }
EOF
    mv "$T/lua/lib/genmark.lua.tmp" "$T/lua/lib/genmark.lua"
    e2e_policy gentest <<EOF
local A = require "outpost.action"
local outpost = require "outpost"
local lib = require "genmark"
local MARK = "$1"
return { on_request = function(req)
    if req.attrs.sleep_ms then outpost.sleep(tonumber(req.attrs.sleep_ms) / 1000) end
    return A.warn("policy=%s lib=%s", MARK, lib.mark)
end }
EOF
}
write_generation A
e2e_start || exit 1

"$LOADGEN" --unix "$T/policy.sock" -c 32 -d "$SECONDS_UNDER_LOAD" --warmup 0 --quiet > "$T/load-unix.out" &
lu=$!
"$LOADGEN" --tcp "127.0.0.1:$PORT" -c 32 -d "$SECONDS_UNDER_LOAD" --warmup 0 --quiet > "$T/load-tcp.out" &
lt=$!
marks=(B A)
for ((i = 0; i < SECONDS_UNDER_LOAD - 1; i++)); do
    sleep 1
    write_generation "${marks[i % 2]}"
    kill -HUP "$DAEMON_PID"
done
rc_u=0; rc_t=0
wait $lu || rc_u=$?
wait $lt || rc_t=$?

summary() { tail -n 1 "$1"; }
echo "# unix: $(summary "$T/load-unix.out")"
echo "# tcp:  $(summary "$T/load-tcp.out")"
grep '^action' "$T/load-unix.out" "$T/load-tcp.out" | sed 's/^/# /'
check "unix load: no failed request, no dropped connection" test "$rc_u" -eq 0
check "tcp load: no failed request, no dropped connection" test "$rc_t" -eq 0
check "unix load: errors=0 dropped=0 reported" grep -q ' errors=0 dropped=0 ' "$T/load-unix.out"
check "tcp load: errors=0 dropped=0 reported" grep -q ' errors=0 dropped=0 ' "$T/load-tcp.out"
reloads=$(grep -c "reload: generation [0-9]* is current" "$T/daemon.log")
check "every SIGHUP made a new generation ($reloads of $((SECONDS_UNDER_LOAD - 1)))" test "$reloads" -eq $((SECONDS_UNDER_LOAD - 1))
mixed=$(grep -h '^action' "$T/load-unix.out" "$T/load-tcp.out" | grep -vcE '^action [0-9]+ WARN policy=(A lib=A|B lib=B)$')
check "every answer came from one complete generation" test "$mixed" -eq 0
check "answers of both generations were seen" bash -c \
    "grep -qh 'WARN policy=A lib=A' '$T/load-unix.out' '$T/load-tcp.out' && grep -qh 'WARN policy=B lib=B' '$T/load-unix.out' '$T/load-tcp.out'"
n=$(cat "$T"/load-*.out | sed -nE 's/^requests=([0-9]+) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
check "the load was real ($n requests)" test "$n" -gt 1000
check "old generations were closed once their requests ended" log_has "generation 1 closed"

# A request in flight on the old generation finishes there.
current=$($ASK "unix:$T/policy.sock")
$ASK "unix:$T/policy.sock" sleep_ms=800 > "$T/inflight.out" &
inflight=$!
sleep 0.2
write_generation C
kill -HUP "$DAEMON_PID"
sleep 0.2
check "after the reload new requests see the new generation" bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=C lib=C'"
wait $inflight
check "a request in flight during the reload finished on its own generation" \
    test "$(head -n 1 "$T/inflight.out")" = "$current"

# A broken policy: refused, logged with file and line, the old one serves.
e2e_policy gentest <<'EOF'
local A = require "outpost.action"
return { on_request = function(req)
    if req then
        return A.dunno(
end }
EOF
kill -HUP "$DAEMON_PID"
sleep 0.5
check "a policy with a syntax error is refused, with file and line" \
    log_has "reload failed; generation [0-9]+ keeps serving: .*gentest.lua:[0-9]+:"
check "the old policy keeps answering" bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=C lib=C'"

# A policy that raises while loading, and a config with a typo: refused too.
e2e_policy gentest <<'EOF'
error("cannot start: missing list")
EOF
kill -HUP "$DAEMON_PID"
sleep 0.5
check "a policy that raises while loading is refused" log_has "keeps serving: .*cannot start: missing list"
write_generation D
sed -i 's/log_decisions = no/log_decisions = nope/' "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5
check "a config with a bad value is refused, with file and line" log_has "keeps serving: .*outpost.conf:[0-9]+"
check "... and the old generation still answers" bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=C lib=C'"
sed -i 's/log_decisions = nope/log_decisions = no/' "$T/outpost.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5
check "once fixed, the next reload succeeds" bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=D lib=D'"

# A reload that changes what only a restart applies (a listener added,
# another socket_mode): the rest is applied, each change is named, and
# outpostctl exits 5, so neither an admin nor systemd's ExecReload takes it
# for success.
CTL="$ROOT/build/outpostctl -s $T/state/control.sock"
check "outpostctl reload of an unchanged file: exit 0" bash -c "$CTL reload | grep -q 'is current'"
cp "$T/outpost.conf" "$T/outpost.conf.orig"
sed -i "s|^    listen = unix:$T/policy.sock|&\n    socket_mode = 0600|" "$T/outpost.conf"
printf 'listener extra {\n    listen = unix:%s/extra.sock\n    service = gentest\n}\n' "$T" >> "$T/outpost.conf"
write_generation E
out=$($CTL reload 2>&1); rc=$?
echo "# $out"
check "a reload that adds a listener and changes a socket_mode exits 5" test "$rc" = 5
check "... naming the new listener" grep -q "listener extra (unix:$T/extra.sock) added" <<<"$out"
check "... and the socket_mode change" grep -q "listener unix (unix:$T/policy.sock): socket_mode 0660 -> 0600" <<<"$out"
check "... while the rest is applied (the new policy answers)" bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=E lib=E'"
check "... and the log names the changes too" log_has "these changes need a restart: .*listener extra"
out=$($CTL --json reload 2>/dev/null); rc=$?
check "--json: exit 5 in the JSON answer" bash -c "python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d[\"exit\"]==5, d' '$out'"
mv "$T/outpost.conf.orig" "$T/outpost.conf"
check "back to the file the daemon started with: exit 0" bash -c "$CTL reload >/dev/null"

# SIGTERM: stop accepting, finish what is in flight, exit 0.
$ASK "unix:$T/policy.sock" sleep_ms=1000 > "$T/drain.out" &
draining=$!
sleep 0.3
kill -TERM "$DAEMON_PID"
sleep 0.2
check "after SIGTERM new connections are refused" bash -c "! $ASK unix:$T/policy.sock >/dev/null 2>&1"
wait $draining
check "a request in flight at SIGTERM gets its real answer" grep -qx 'action=WARN policy=E lib=E' "$T/drain.out"
rc=0; wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
check "the daemon exits 0 after draining" test "$rc" -eq 0
check_log_clean
e2e_finish

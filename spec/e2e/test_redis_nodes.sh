#!/bin/bash
# OP7: two outpostd nodes count against one Redis (counters { backend =
# redis }): one limit between them, exactly; either node's outpostctl sees
# and changes the same state; a node killed under load loses no
# acknowledged recipient; Redis stopped answers 4xx within the deadline
# (or admits uncounted with on_error = accept), and counting resumes when
# it is back.  The test's own redis-server ($REDIS_E2E_PORT, AOF on).
# With OUTPOST_E2E_BACKEND=rocksdb the same test runs each node on its own
# RocksDB, as before issue 16: the race then admits 20, not 10.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/spec/e2e/redis_rig.sh"   # the nodes a and b, cleanup by PID
BACKEND=${OUTPOST_E2E_BACKEND:-redis}

e2e_setup
redis_rig_setup
RDIR=$T/redis

redis_start "$RDIR" "$REDIS_E2E_PORT" --appendonly yes --appendfsync everysec || exit 1

# One config per node: its own state, sockets and control socket; the
# same limits and the same Redis.
node_config() { # NAME
    mkdir -p "$T/$1"
    cat > "$T/$1.conf" <<EOF
daemon {
    state_dir = $T/$1/state
    lua_dir = $T/lua
}
listener txn {
    listen = unix:$T/$1/txn.sock
    service = txn
}
service txn {
    deadline = 3s
}
listener count {
    listen = unix:$T/$1/count.sock
    service = count
}
service count {
    deadline = 3s
}
listener open {
    listen = unix:$T/$1/open.sock
    service = open
}
service open {
    deadline = 3s
}
listener dunno {
    listen = unix:$T/$1/dunno.sock
    service = dunno
}
service dunno { }
counters {
    backend = $BACKEND
    reservation_timeout = 30m
}
$(node_redis_section "e2e-$$:")
limit rcpt {
    max = 1000
    window = 24h
    resolution = 15m
    max_override = 100000
}
limit rcpt_open {
    max = 1000
    on_error = accept
}
EOF
}
node_config a
node_config b

cat > "$T/lua/policies/txn.lua" <<'EOF'
local A = require "outpost.action"
local limit = require "outpost.limit"
local address = require "site.address"
return function(req)
    local a = req.attrs
    local s = address.subject(req)
    if a.fill then
        assert(limit.add("rcpt", s, tonumber(a.fill)))
        return A.dunno()
    end
    local st = a.protocol_state
    if st == "RCPT" then
        local r, err = limit.reserve("rcpt", s, a.instance)
        if not r then return A.defer("4.3.0", "recipient counter unavailable (%s)", err) end
        if not r.ok then
            return A.defer("4.7.1", "limit of %d recipients per %d h reached; next slot at %s",
                r.max, r.window / 3600, os.date("!%H:%M", r.next_free))
        end
    elseif st == "DATA" or st == "END-OF-MESSAGE" then
        limit.commit(a.instance, tonumber(a.recipient_count))
    end
    return A.dunno()
end
EOF
cat > "$T/lua/policies/count.lua" <<'EOF'
local A = require "outpost.action"
local limit = require "outpost.limit"
local address = require "site.address"
return function(req)
    local r, err = limit.add("rcpt", address.subject(req))
    if not r then return A.defer("4.3.0", "recipient counter unavailable (%s)", err) end
    return r.ok and A.dunno() or A.defer("4.7.1", "limit reached")
end
EOF
cat > "$T/lua/policies/open.lua" <<'EOF'
local A = require "outpost.action"
local limit = require "outpost.limit"
local address = require "site.address"
return function(req)
    local r, err = limit.add("rcpt_open", address.subject(req))
    if not r then return A.defer("4.3.0", "recipient counter unavailable (%s)", err) end
    return r.ok and A.dunno() or A.defer("4.7.1", "limit reached")
end
EOF
cat > "$T/lua/policies/dunno.lua" <<'EOF'
local A = require "outpost.action"
return function() return A.dunno() end
EOF

node_start a || exit 1
node_start b || exit 1

ctl() { node_ctl "$@"; }
used() { node_used "$1" rcpt "$2"; }
ask() { local n=$1 svc=$2; shift 2; $ASK "unix:$T/$n/$svc.sock" "$@" | sed -n 's/^action=//p'; }
ms() { date +%s%3N; }

# --- the race: 64 connections over two nodes for the last 10 of 1000 slots
ask a txn sasl_username=user0@example.org fill=990 >/dev/null
check "the stage: 990 of 1000 used, as node b sees it" test "$(used b user0@example.org)" = 990
"$LOADGEN" --unix "$T/a/txn.sock" -c 32 -n 320 --keys 1 --warmup 0 -d 30 --quiet > "$T/race-a.out" 2>&1 &
LA=$!
"$LOADGEN" --unix "$T/b/txn.sock" -c 32 -n 320 --keys 1 --warmup 0 -d 30 --quiet > "$T/race-b.out" 2>&1
wait $LA
admitted=$(cat "$T/race-a.out" "$T/race-b.out" | awk '$1 == "action" && $3 == "DUNNO" {n += $2} END {print n + 0}')
deferred=$(cat "$T/race-a.out" "$T/race-b.out" | awk '$1 == "action" && $3 == "DEFER" {n += $2} END {print n + 0}')
check "64 connections on two nodes racing for the last 10 slots: exactly 10 admitted (got $admitted)" \
    test "$admitted" = 10
check "the other 630 are deferred (got $deferred)" test "$deferred" = 630
check "both nodes' outpostctl say 1000" test "$(used a user0@example.org)-$(used b user0@example.org)" = 1000-1000
check "node a's refusals say when the next slot frees" \
    grep -qE 'action [0-9]+ DEFER 4\.7\.1 limit of 1000 recipients per 24 h reached; next slot at [0-9]{2}:[0-9]{2}' "$T/race-a.out" "$T/race-b.out"

# --- a transaction reserved on one node, settled on the other
for i in 1 2 3; do ask a txn sasl_username=bob@example.org protocol_state=RCPT instance=X1 recipient="r$i@example.net" >/dev/null; done
check "3 reserved on node a: node b counts them" test "$(used b bob@example.org)" = 3
check "... and shows them reserved" bash -c "$ROOT/build/outpostctl -s $T/b/state/control.sock counter show rcpt bob@example.org | grep -q 'reserved, not yet committed: 3'"
ask b txn sasl_username=bob@example.org protocol_state=DATA instance=X1 recipient_count=2 >/dev/null
check "committed on node b with recipient_count 2: 2 counted on both" \
    test "$(used a bob@example.org)-$(used b bob@example.org)" = 2-2
check "... nothing reserved any more" bash -c "$ROOT/build/outpostctl -s $T/a/state/control.sock counter show rcpt bob@example.org | grep -q 'reserved, not yet committed: 0'"

# --- the operator: an override set on one node holds on the other, top and reset too
ctl a limit set rcpt carol@example.org 2 --reason "ticket 42" >/dev/null
check "an override set on node a is listed by node b, with who and why" \
    bash -c "$ROOT/build/outpostctl -s $T/b/state/control.sock limit show rcpt | grep -q 'rcpt carol@example.org max 2 .*: ticket 42'"
r1=$(ask b txn sasl_username=carol@example.org protocol_state=RCPT instance=C1 recipient=x1@example.net)
r2=$(ask a txn sasl_username=carol@example.org protocol_state=RCPT instance=C1 recipient=x2@example.net)
r3=$(ask b txn sasl_username=carol@example.org protocol_state=RCPT instance=C1 recipient=x3@example.net)
check "... and node b enforces it: 2 admitted, the 3rd deferred ($r1 / $r2 / $r3)" \
    test "$r1-$r2-${r3:0:9}" = "DUNNO-DUNNO-DEFER 4.7"
check "counter top on node b ranks user0 and carol first" \
    bash -c "$ROOT/build/outpostctl -s $T/b/state/control.sock counter top rcpt 2 | awk 'NR > 1 {print \$3}' | sort | tr '\n' ' ' | grep -qx 'carol@example.org user0@example.org '"
ctl b counter reset rcpt carol@example.org >/dev/null
check "a reset on node b: node a sees 0" test "$(used a carol@example.org)" = 0
ask a txn sasl_username=carol@example.org protocol_state=DATA instance=C1 recipient_count=2 >/dev/null
check "... and the transaction reserved before the reset counts nothing when it commits" \
    test "$(used b carol@example.org)" = 0
ctl b limit clear rcpt carol@example.org >/dev/null
check "cleared on node b: node a lists no override" bash -c "$ROOT/build/outpostctl -s $T/a/state/control.sock limit show | grep -q 'no overrides'"

# --- kill -9 of node b under load: every acknowledged recipient is counted
ctl a limit set rcpt user1@example.org 100000 --reason "crash test" >/dev/null
"$LOADGEN" --unix "$T/a/count.sock" -c 8 -d 4 --keys 1 --first-key 1 --warmup 0 > "$T/crash-a.out" 2>&1 &
LA=$!
"$LOADGEN" --unix "$T/b/count.sock" -c 8 -d 4 --keys 1 --first-key 1 --warmup 0 > "$T/crash-b.out" 2>&1 &
LB=$!
sleep 2
kill -KILL "$PID_B"
wait "$PID_B" 2>/dev/null
PID_B=
wait $LA $LB
acked=$(cat "$T/crash-a.out" "$T/crash-b.out" | awk '$1 == "action" && $3 == "DUNNO" {n += $2} END {print n + 0}')
acked_b=$(awk '$1 == "action" && $3 == "DUNNO" {n += $2} END {print n + 0}' "$T/crash-b.out")
check "node b answered before the kill ($acked_b)" test "$acked_b" -gt 20
after=$(used a user1@example.org)
check "after kill -9 of node b: all $acked acknowledged recipients are counted (counter $after)" \
    test "$after" -ge "$acked"
check "... and at most the 16 in flight (8 per node) more" test "$after" -le $((acked + 16))
node_start b || exit 1

# --- Redis stopped: counting answers 4xx within the deadline, the rest goes on
redis_stop "$RDIR"
t0=$(ms)
r=$(ask a count sasl_username=dave@example.org)
t1=$(ms)
check "Redis stopped: a counted request defers ($r)" test "${r:0:9}" = "DEFER 4.3"
check "... within the deadline of 3 s (took $((t1 - t0)) ms)" test $((t1 - t0)) -lt 3000
t0=$(ms)
r=$(ask b count sasl_username=dave@example.org)
t1=$(ms)
check "... on node b too, in $((t1 - t0)) ms" test "${r:0:9}" = "DEFER 4.3"
check "... a service that counts nothing answers as before" test "$(ask a dunno sasl_username=dave@example.org)" = DUNNO
r=$(ask a open sasl_username=dave@example.org)
check "... a limit with on_error = accept admits ($r)" test "$r" = DUNNO
check "... and says so in the log" grep -q "limit rcpt_open (on_error = accept) admits dave@example.org UNCOUNTED" "$T/a.log"
check "outpostctl status says the counters are failing" \
    bash -c "$ROOT/build/outpostctl -s $T/a/state/control.sock status | grep -q 'counters store failing: redis'"
check "outpostctl counter show fails with status 1" \
    bash -c "$ROOT/build/outpostctl -s $T/a/state/control.sock counter show rcpt user0@example.org; test \$? = 1"

# --- Redis back (its AOF kept the counts): both nodes count again, no restart
redis-server --bind 127.0.0.1 --port "$REDIS_E2E_PORT" --daemonize yes \
    --pidfile "$RDIR/redis.pid" --logfile "$RDIR/redis.log" --dir "$RDIR" \
    --save '' --appendonly yes --appendfsync everysec >/dev/null
wait_until 5 redis_ping "$REDIS_E2E_PORT"
t0=$(ms)
for ((i = 0; i < 100; i++)); do
    [ "$(ask a count sasl_username=erin@example.org)" = DUNNO ] && break
    sleep 0.1
done
t1=$(ms)
check "Redis back: node a counts again within 10 s (took $((t1 - t0)) ms)" test "$(used a erin@example.org)" -ge 1
for ((i = 0; i < 100; i++)); do
    [ "$(ask b count sasl_username=erin@example.org)" = DUNNO ] && break
    sleep 0.1
done
check "... node b too" test "$(used b erin@example.org)" -ge 2
check "... and the counts from before are there (user0: 1000)" test "$(used b user0@example.org)" = 1000

# --- the script flushed on the server: EVALSHA answers NOSCRIPT, the node sends EVAL
before=$(used a erin@example.org)
redis-cli -p "$REDIS_E2E_PORT" SCRIPT FLUSH >/dev/null
r=$(ask a count sasl_username=erin@example.org)
check "after SCRIPT FLUSH the next count works (NOSCRIPT, sent again as EVAL): $r" test "$r" = DUNNO
check "... and is counted once" test "$(used a erin@example.org)" = $((before + 1))

# --- Redis frozen (SIGSTOP): no answer within command_timeout is a failure too
RPID=$(cat "$RDIR/redis.pid")
kill -STOP "$RPID"
t0=$(ms)
r=$(ask a count sasl_username=frank@example.org)
t1=$(ms)
check "Redis frozen: a counted request defers ($r)" test "${r:0:9}" = "DEFER 4.3"
check "... after command_timeout (500 ms), within the deadline (took $((t1 - t0)) ms)" \
    test $((t1 - t0)) -ge 400 -a $((t1 - t0)) -lt 3000
check "... and the log says why" grep -q "no answer within command_timeout" "$T/a.log"
kill -CONT "$RPID"
for ((i = 0; i < 100; i++)); do
    [ "$(ask a count sasl_username=frank@example.org)" = DUNNO ] && break
    sleep 0.1
done
check "thawed: node a counts again" test "$(used a frank@example.org)" -ge 1

for p in a b; do
    node_stop $p
    check "node $p: clean exit after SIGTERM" test $? = 0
done
nodes_log_clean
e2e_finish

#!/bin/bash
# OP7 with failover: a Redis primary, a replica and three Sentinels of the
# test's own; two outpostd nodes find the primary through the Sentinels
# (redis { sentinels; master_name }).  The primary is killed (-9); the
# Sentinels promote the replica, and both nodes count on it within 30 s,
# without a restart; the counts the replica had received are still there.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/spec/e2e/redis_rig.sh"   # the nodes a and b, cleanup by PID

e2e_setup
redis_rig_setup
PRIMARY=$REDIS_E2E_PORT
REPLICA=$REDIS_REPLICA_PORT
SENTINELS="$REDIS_SENTINEL_PORT $REDIS_SENTINEL2_PORT $REDIS_SENTINEL3_PORT"

redis_start "$T/r-primary" "$PRIMARY" || exit 1
redis_start "$T/r-replica" "$REPLICA" --replicaof 127.0.0.1 "$PRIMARY" || exit 1
for p in $SENTINELS; do sentinel_start "$T/s-$p" "$p" "$PRIMARY" || exit 1; done
sentinels_agree() { # every Sentinel knows the other two (hellos every 2 s)
    local p
    for p in $SENTINELS; do
        redis-cli -p "$p" SENTINEL master outpost 2>/dev/null | grep -A1 -x num-other-sentinels | tail -1 | grep -qx 2 || return 1
    done
}
replica_synced() { redis-cli -p "$REPLICA" INFO replication | grep -q 'master_link_status:up'; }
wait_until 10 sentinels_agree
check "three Sentinels watch the primary and know each other" sentinels_agree
wait_until 10 replica_synced
check "the replica is in sync" replica_synced

node_config() { # NAME
    mkdir -p "$T/$1"
    cat > "$T/$1.conf" <<EOF
daemon {
    state_dir = $T/$1/state
    lua_dir = $T/lua
}
listener count {
    listen = unix:$T/$1/count.sock
    service = count
}
service count {
    deadline = 3s
}
counters {
    backend = redis
}
redis {
    sentinels = [127.0.0.1:$REDIS_SENTINEL_PORT, 127.0.0.1:$REDIS_SENTINEL2_PORT, 127.0.0.1:$REDIS_SENTINEL3_PORT]
    master_name = outpost
    prefix = "e2e-$$:"
    command_timeout = 500ms
    connect_timeout = 500ms
    reconnect_max = 500ms
}
limit rcpt {
    max = 1000
}
EOF
}
node_config a
node_config b
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

node_start a || exit 1
node_start b || exit 1
ask() { local n=$1; shift; $ASK "unix:$T/$n/count.sock" "$@" | sed -n 's/^action=//p'; }
used() { node_used "$1" rcpt "$2"; }

for i in 1 2 3; do ask a sasl_username=alice@example.org >/dev/null; ask b sasl_username=alice@example.org >/dev/null; done
check "both nodes count on the primary the Sentinels name: 6" test "$(used a alice@example.org)" = 6
check "node a connected to the primary ($PRIMARY)" grep -q "redis 127.0.0.1:$PRIMARY ready" "$T/a.log"
redis-cli -p "$PRIMARY" WAIT 1 1000 >/dev/null

# --- the primary dies
kill -KILL "$(cat "$T/r-primary/redis.pid")"
t0=$(date +%s)
ok_a="" ok_b=""
for ((i = 0; i < 300; i++)); do
    [ -z "$ok_a" ] && [ "$(ask a sasl_username=bob@example.org)" = DUNNO ] && ok_a=$(($(date +%s) - t0))
    [ -z "$ok_b" ] && [ "$(ask b sasl_username=bob@example.org)" = DUNNO ] && ok_b=$(($(date +%s) - t0))
    [ -n "$ok_a" ] && [ -n "$ok_b" ] && break
    sleep 0.1
done
check "the Sentinels promoted the replica" \
    bash -c "redis-cli -p $REDIS_SENTINEL_PORT SENTINEL get-master-addr-by-name outpost | grep -qx $REPLICA"
check "node a counts on the promoted replica within 30 s (after ${ok_a:-never} s)" test -n "$ok_a" -a "${ok_a:-99}" -le 30
check "node b too (after ${ok_b:-never} s)" test -n "$ok_b" -a "${ok_b:-99}" -le 30
check "node a says where it counts now" grep -q "redis 127.0.0.1:$REPLICA ready" "$T/a.log"
check "what the replica had received is there: alice 6 on both nodes" \
    test "$(used a alice@example.org)-$(used b alice@example.org)" = 6-6
check "no restart: each node is the process it was" bash -c "kill -0 $PID_A && kill -0 $PID_B"

for p in a b; do
    node_stop $p
    check "node $p: clean exit after SIGTERM" test $? = 0
done
nodes_log_clean
e2e_finish

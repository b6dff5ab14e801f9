# shellcheck shell=bash disable=SC2034  # the tables are read by bench/run.sh
# The servers bench/run.sh compares (sourced).  For each target T:
#   start_T  starts it (in a session of its own, on 127.0.0.1:PORT[T]) and
#            sets SID[T];
#   check_T  proves it does its job before it is timed: a server with a
#            limit refuses request max+1 of one user (a user the load never
#            uses), the others answer what they should;
#   DURABLE[T] says what survives of its counters.
# Every target answers the load (users user0..user999@example.org, RCPT of
# rcpt<k>@bench.test) with DUNNO: run.sh fails on any other answer.
#
# Expects ROOT, TMP (temporary directory on disk), SHM (on tmpfs), PORT_BASE,
# LDAP_PORT, DNS_PORT, HARNESS_DIR, OUTPOSTD, CEILING, LOADGEN.

CHECK_KEY=1000  # user1000@example.org: in the directory, not in the load (keys 0..999)
PEER_CHECK_KEY=900000
CHECK_MAX=5

declare -A PORT SID DURABLE DESCR
PORT[ceiling]=$((PORT_BASE + 70))
PORT[trivial]=$((PORT_BASE + 71))
PORT[postout-warm]=$((PORT_BASE + 72))
PORT[postout-cold]=$((PORT_BASE + 73))
PORT[mailout-warm]=$((PORT_BASE + 74))
PORT[mailout-cold]=$((PORT_BASE + 75))
PORT[appout-warm]=$((PORT_BASE + 76))
PORT[appout-cold]=$((PORT_BASE + 77))
PORT[postout-base]=$((PORT_BASE + 78))
PORT[mailout-base]=$((PORT_BASE + 79))
PORT[postfwd]=$((PORT_BASE + 80))
PORT[postout-redis]=$((PORT_BASE + 81))
REDIS_BENCH_PORT=$((PORT_BASE + 89)) # postout-redis's redis-server (scaling.sh, run after, uses 84..89)
PORT[prl-disk]=$((PORT_BASE + 82))
PORT[prl-tmpfs]=$((PORT_BASE + 83))
PORT[postout-metrics]=$((PORT_BASE + 84)) # 84, 85: free again when scaling.sh runs after
METRICS_BENCH_PORT=$((PORT_BASE + 85))     # postout-metrics's metrics { listen }

DESCR[ceiling]="bench-ceiling: libuv + the codec, DUNNO, no Lua"
DESCR[trivial]="outpostd, policy answers DUNNO"
DESCR[postout-warm]="outpostd, full postout PO1-PO7, LDAP+DNS caches on (filled)"
DESCR[postout-cold]="outpostd, full postout PO1-PO7, LDAP+DNS caches off"
DESCR[postout-metrics]="postout-warm plus metrics { listen }, scraped every second during the run"
DESCR[mailout-warm]="outpostd, full mailout MO1-MO9 (FCrDNS in MO7), caches on (filled)"
DESCR[mailout-cold]="outpostd, full mailout MO1-MO9 (FCrDNS in MO7), caches off"
DESCR[appout-warm]="outpostd, appout stage 1 AO1-AO5, one function account, caches on"
DESCR[appout-cold]="outpostd, appout stage 1 AO1-AO5, one function account, caches off"
DESCR[postout-redis]="outpostd, postout-warm with the counters on a local redis-server (CPU: both)"
DESCR[postout-base]="the baseline's outpostd (BENCH_BASELINE) with its own lua/: postout-warm's setup"
DESCR[mailout-base]="the baseline's outpostd (BENCH_BASELINE) with its own lua/: mailout-warm's setup"
DESCR[postfwd]="postfwd1 1.35: network, blocked list, rate() per SASL user"
DESCR[prl-disk]="policyd-rate-limit 1.0.1, SQLite on disk"
DESCR[prl-tmpfs]="policyd-rate-limit 1.0.1, SQLite on tmpfs"

DURABLE[ceiling]="no state"
DURABLE[trivial]="no state"
DURABLE[postout-warm]="RocksDB WAL before the answer, no fsync: survives a process crash, not a power loss"
DURABLE[postout-cold]=${DURABLE[postout-warm]}
DURABLE[postout-metrics]=${DURABLE[postout-warm]}
DURABLE[mailout-warm]=${DURABLE[postout-warm]}
DURABLE[mailout-cold]=${DURABLE[postout-warm]}
DURABLE[appout-warm]="no counters at stage 1 (AO8 counts at stage 2)"
DURABLE[appout-cold]=${DURABLE[appout-warm]}
DURABLE[postout-base]=${DURABLE[postout-warm]}
DURABLE[postout-redis]="Redis AOF written before the answer, fsync every second (appendfsync everysec, docs/limits.md's recommendation): survives a crash of outpostd or redis-server; a power loss loses up to 1 s"
DURABLE[mailout-base]=${DURABLE[postout-warm]}
DURABLE[postfwd]="counters in memory: lost on any restart"
DURABLE[prl-disk]="SQLite commit per request on disk (fsync): survives a power loss"
DURABLE[prl-tmpfs]="SQLite commit per request on tmpfs: survives a process crash, not a reboot"

# Load options beyond the common ones (--keys 1000 --recipient-domain
# bench.test).  appout: the directory's function account of tenant lm, its
# own sender, a client in its allowed network.
declare -A LOADOPTS
APPOUT_OPTS="--sasl-username app-lm --sender noreply-lm@example.org --client-address 10.153.0.7"
LOADOPTS[appout-warm]=$APPOUT_OPTS
LOADOPTS[appout-cold]=$APPOUT_OPTS

# --- bench-ceiling
start_ceiling() {
    start_server ceiling "$TMP/ceiling.log" "$ROOT/$CEILING" --tcp "127.0.0.1:${PORT[ceiling]}"
    SID[ceiling]=$SERVER_SID
}
check_ceiling() { check_answer ceiling "${PORT[ceiling]}" DUNNO; }

# --- outpostd
# SRC[NAME]: the tree whose outpostd, lua/ and conf/lists a target runs
# (default ROOT; the -base targets run BENCH_BASELINE's, a checkout of
# another commit with its build/outpostd built, so that a change is measured
# against what it replaces in one run).
declare -A SRC
if [ -n "${BENCH_BASELINE:-}" ]; then
    SRC[postout-base]=$BENCH_BASELINE
    SRC[mailout-base]=$BENCH_BASELINE
fi

# daemon { lua_jit } per target (else BENCH_LUA_JIT, else the daemon's
# default): the -jit-MODE targets are postout-warm and mailout-warm under
# each mode, to weigh the JIT's gain against what it costs the runaway
# guarantee (docs/reliability.md).  Not in the default set of run.sh.
declare -A LUA_JIT
JIT_TARGETS=""
for mode in no yes lib; do
    for s in postout mailout; do
        LUA_JIT[$s-jit-$mode]=$mode
        JIT_TARGETS="$JIT_TARGETS $s-jit-$mode"
        DURABLE[$s-jit-$mode]=${DURABLE[postout-warm]}
        DESCR[$s-jit-$mode]="$s-warm with daemon { lua_jit = $mode }"
        eval "start_$s-jit-$mode() { start_outpost $s-jit-$mode $s 100000; }"
        eval "check_$s-jit-$mode() { check_$s $s-jit-$mode; }"
    done
done
port=$((PORT_BASE + 100)) # BENCH_JIT_PORT of the harness's port plan: 100..105
for t in $JIT_TARGETS; do
    PORT[$t]=$port
    port=$((port + 1))
done

# outpost_conf NAME SERVICE CACHE_SIZE: a configuration in $TMP/NAME/
outpost_conf() {
    local name=$1 service=$2 cache=$3 dir=$TMP/$1 src=${SRC[$1]:-$ROOT}
    local lua_jit=${LUA_JIT[$1]:-${BENCH_LUA_JIT:-}}
    mkdir -p "$dir/state"
    cat >"$dir/outpost.conf" <<EOF
daemon {
    state_dir = $dir/state
    lua_dir = $src/lua
    lists_dir = $src/conf/lists
    log_decisions = no${lua_jit:+
    lua_jit = $lua_jit}
}
control { socket = $dir/control.sock }
listener bench {
    listen = tcp:127.0.0.1:${PORT[$name]}
    service = $service
    tenant = lm
}
EOF
    if [ "$service" = dunno ]; then
        echo "service dunno { policy = dunno }" >>"$dir/outpost.conf"
        return
    fi
    cat >>"$dir/outpost.conf" <<EOF
$(service_section "$service")
dns {
    servers = [127.0.0.1:$DNS_PORT]
    cache_size = $cache
}
ldap {
    uris = ["ldap://127.0.0.1:$LDAP_PORT/"]
    bind_dn = "cn=policyd,ou=services,dc=example,dc=org"
    bind_password_file = $HARNESS_DIR/ldap/bind.pw
    pool_size = 4
    cache_size = $cache
    cache_ttl = 1h
    negative_ttl = 1h
}
directory {
    base = "dc=example,dc=org"
    user_filter = "(&(objectClass=inetOrgPerson)(|(uid=%1)(mail=%1)))"
    address_filter = "(|(mail=%1)(mailLocalAddress=%1))"
    domain_filter = "(&(objectClass=domainRelatedObject)(associatedDomain=%s))"
    protected_filter = "(&(|(mail=%1)(mailLocalAddress=%1))(mailAuthRequired=TRUE))"
    function_filter = "(&(objectClass=outpostFunctionAccount)(uid=%s))"
    sender_attrs = [mail, mailLocalAddress]
    lock_attr = pwdAccountLockedTime
    default_limit = 10000000
}
limit postout_rcpt {
    max = 10000000
    max_override = 10000000
}
limit mailout_rcpt {
    max = 10000000
    max_override = 10000000
}
EOF
    # mailout's lists: the repository's, with the load's networks (the
    # documentation ranges) as a campus area whose MTAs send as example.org
    if [ "$service" = mailout ]; then
        mkdir -p "$dir/lists"
        cp "$src"/conf/lists/*.txt "$dir/lists/"
        printf '%s bench\n' 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 2001:db8::/32 >"$dir/lists/campus_networks.txt"
        printf '%s example.org\n' 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 2001:db8::/32 >"$dir/lists/mailout_mta_domains.txt"
        : >"$dir/lists/mta_blocklist.txt"
        echo bench >"$dir/lists/tls_required_areas.txt"
        sed -i "s|lists_dir = .*|lists_dir = $dir/lists|" "$dir/outpost.conf"
    fi
}

# The service section of a configuration.
service_section() {
    case $1 in
    postout) echo "service postout { }" ;;
    mailout) echo "service mailout { }" ;;
    appout-stage1) echo "service appout-stage1 { policy = appout_stage1 }" ;;
    esac
}

start_outpost() { # name service cache_size
    outpost_conf "$1" "$2" "$3"
    local bin=$ROOT/$OUTPOSTD
    [ -n "${SRC[$1]:-}" ] && bin=${SRC[$1]}/build/outpostd
    start_server "$1" "$TMP/$1/outpostd.log" "$bin" -c "$TMP/$1/outpost.conf"
    SID[$1]=$SERVER_SID
}

# postout-warm with counters { backend = redis }: a redis-server of its own,
# configured as docs/limits.md recommends for production (AOF on, appendfsync
# everysec: a little more durable than RocksDB's WAL without sync), in the
# same session as outpostd, so the CPU reported is both processes'.
start_postout-redis() {
    local dir=$TMP/postout-redis
    outpost_conf postout-redis postout 100000
    mkdir -p "$dir/redis"
    printf 'counters {\n    backend = redis\n}\nredis {\n    servers = [127.0.0.1:%s]\n}\n' \
        "$REDIS_BENCH_PORT" >>"$dir/outpost.conf"
    start_server postout-redis "$dir/outpostd.log" bash -c '
        redis-server --bind 127.0.0.1 --port "$1" --dir "$2" --save "" --appendonly yes \
            --appendfsync everysec --logfile "$2/redis.log" &
        for i in $(seq 100); do [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ] && break; sleep 0.05; done
        exec "$3" -c "$4"' _ "$REDIS_BENCH_PORT" "$dir/redis" "$ROOT/$OUTPOSTD" "$dir/outpost.conf"
    SID[postout-redis]=$SERVER_SID
}
check_postout-redis() { check_postout postout-redis; }

# postout-warm with the Prometheus endpoint on; run() scrapes it every
# second while the load runs.  (postout-warm counts in the same registry:
# the difference is the endpoint and the scrapes.)
start_postout-metrics() {
    outpost_conf postout-metrics postout 100000
    printf 'metrics {\n    listen = tcp:127.0.0.1:%s\n}\n' "$METRICS_BENCH_PORT" >>"$TMP/postout-metrics/outpost.conf"
    start_server postout-metrics "$TMP/postout-metrics/outpostd.log" "$ROOT/$OUTPOSTD" -c "$TMP/postout-metrics/outpost.conf"
    SID[postout-metrics]=$SERVER_SID
}
check_postout-metrics() {
    check_postout postout-metrics
    curl -s --max-time 5 "http://127.0.0.1:$METRICS_BENCH_PORT/metrics" | grep -q '^outpost_requests_total' ||
        die "postout-metrics: no metrics at 127.0.0.1:$METRICS_BENCH_PORT"
}
start_trivial() { start_outpost trivial dunno 0; }
start_postout-warm() { start_outpost postout-warm postout 100000; }
start_postout-cold() { start_outpost postout-cold postout 0; }
check_trivial() { check_answer trivial "${PORT[trivial]}" DUNNO; }

# The full policy answers: a good request DUNNO, a recipient domain without
# DNS 550 5.1.2 (PO5), an unknown local recipient 550 5.1.1 (PO6), and
# user1000, whom an operator limited to CHECK_MAX, is refused the next one.
check_postout() {
    local name=$1 port=${PORT[$1]}
    check_answer "$name" "$port" DUNNO --recipient-domain bench.test
    check_answer "$name" "$port" "550 5.1.2 *" --recipient-domain nxdomain.test
    check_answer "$name" "$port" "550 5.1.1 *" --recipient-domain example.org
    "$ROOT/build/outpostctl" -s "$TMP/$name/control.sock" limit set postout_rcpt \
        "user$CHECK_KEY@example.org" "$CHECK_MAX" --reason "bench: the limit must bite" >/dev/null \
        || die "$name: outpostctl limit set failed"
    check_limit "$name" "$port" "$CHECK_MAX" "$CHECK_KEY" --recipient-domain bench.test
}
check_postout-warm() { check_postout postout-warm; }
check_postout-cold() { check_postout postout-cold; }
start_postout-base() { start_outpost postout-base postout 100000; }
check_postout-base() { check_postout postout-base; }

# mailout: a good request DUNNO; a recipient domain without DNS 5.1.2
# (MO4); a client outside the campus 5.7.1 (MO1); and the MTA of user1000's
# key (2001:db8::3e8), limited to CHECK_MAX by an operator, is refused the
# next recipient (MO7, counted per client IP, after the FCrDNS lookup).
start_mailout-warm() { start_outpost mailout-warm mailout 100000; }
start_mailout-cold() { start_outpost mailout-cold mailout 0; }
check_mailout() {
    local name=$1 port=${PORT[$1]}
    check_answer "$name" "$port" DUNNO --recipient-domain bench.test
    check_answer "$name" "$port" "* 5.1.2 *" --recipient-domain nxdomain.test
    check_answer "$name" "$port" "* 5.7.1 *" --recipient-domain bench.test --client-address 10.99.0.1
    "$ROOT/build/outpostctl" -s "$TMP/$name/control.sock" limit set mailout_rcpt 2001:db8::3e8 \
        "$CHECK_MAX" --reason "bench: the limit must bite" >/dev/null \
        || die "$name: outpostctl limit set failed"
    check_limit "$name" "$port" "$CHECK_MAX" "$CHECK_KEY" --recipient-domain bench.test
}
check_mailout-warm() { check_mailout mailout-warm; }
check_mailout-cold() { check_mailout mailout-cold; }
start_mailout-base() { start_outpost mailout-base mailout 100000; }
check_mailout-base() { check_mailout mailout-base; }

# appout stage 1 has no limit (AO8 counts at stage 2): its checks must
# refuse what they are for: a client outside the account's networks (AO5),
# a sender that is not the account's (AO4), a login that is no function
# account (AO3).
start_appout-warm() { start_outpost appout-warm appout-stage1 100000; }
start_appout-cold() { start_outpost appout-cold appout-stage1 0; }
check_appout() {
    local name=$1 port=${PORT[$1]}
    # shellcheck disable=SC2086
    check_answer "$name" "$port" DUNNO $APPOUT_OPTS
    check_answer "$name" "$port" "* 5.7.1 *" --sasl-username app-lm \
        --sender noreply-lm@example.org --client-address 10.99.0.1
    check_answer "$name" "$port" "* 5.7.1 *" --sasl-username app-lm \
        --sender user1@example.org --client-address 10.153.0.7
    check_answer "$name" "$port" "* 5.7.1 *" --sasl-username user1@example.org \
        --sender user1@example.org --client-address 10.153.0.7
}
check_appout-warm() { check_appout appout-warm; }
check_appout-cold() { check_appout appout-cold; }

# --- postfwd: the single-process postfwd1.  postfwd2 (the preforking one)
# was tried first: its rate() limits never bit here (12 of 12 requests
# accepted at a limit of 5; its cache daemon did not keep the rates), so it
# fails the correctness check.  Its configuration: the client must be in
# the networks the load uses (a network check), the SASL user must not be on
# a blocked list, and a rate per SASL user per 24 h; one user has a low
# limit for the check.
start_postfwd() {
    local dir=$TMP/postfwd
    mkdir -p "$dir"
    printf 'blocked@example.org\nlocked@example.org\n' >"$dir/blocked.txt"
    cat >"$dir/postfwd.cf" <<EOF
id=NET4; client_address=192.0.2.0/24,198.51.100.0/24,203.0.113.0/24; action=jump(INNET)
id=NET6; client_address=~^2001:db8:; action=jump(INNET)
id=OUTSIDE; action=REJECT 5.7.1 client outside the allowed networks
id=INNET; sasl_username==file:$dir/blocked.txt; action=REJECT 5.7.1 account blocked
id=CHECKLIMIT; sasl_username==user$PEER_CHECK_KEY@example.org; action=rate(sasl_username/$CHECK_MAX/86400/450 4.7.1 limit reached)
id=LIMIT; sasl_username!=user$PEER_CHECK_KEY@example.org; action=rate(sasl_username/10000000/86400/450 4.7.1 limit reached)
id=DEFAULT; action=DUNNO
EOF
    chmod -R a+rX "$dir"
    chmod 777 "$dir"
    rm -f "$dir/postfwd.pid"
    # -d: it forks into a session of its own and writes its PID there
    setsid postfwd1 -d -f "$dir/postfwd.cf" --interface 127.0.0.1 --port "${PORT[postfwd]}" \
        --pidfile "$dir/postfwd.pid" -u nobody -g nogroup >"$dir/postfwd.log" 2>&1 </dev/null
    adopt_pidfile_session "$dir/postfwd.pid" || die "postfwd wrote no pidfile"
    SID[postfwd]=$SERVER_SID
}
check_postfwd() {
    check_answer postfwd "${PORT[postfwd]}" DUNNO
    check_limit postfwd "${PORT[postfwd]}" "$CHECK_MAX" "$PEER_CHECK_KEY"
}

# --- policyd-rate-limit: one limit per SASL user per 24 h; one user limited
# to CHECK_MAX for the check.  SQLite in dir (on disk or tmpfs).
start_prl() { # name dir
    local name=$1 dir=$2
    mkdir -p "$dir/db"
    cat >"$dir/prl.yaml" <<EOF
debug: False
user: "policyd-rate-limit"
group: "policyd-rate-limit"
pidfile: "$dir/prl.pid"
backend: 0
sqlite_config:
    database: "$dir/db/db.sqlite3"
SOCKET: ["127.0.0.1", ${PORT[$name]}]
limits:
    - [10000000, 86400]
limits_by_id:
    user$PEER_CHECK_KEY@example.org:
        - [$CHECK_MAX, 86400]
limit_by_sasl: True
limit_by_sender: False
limit_by_ip: False
limited_networks: []
success_action: "dunno"
fail_action: "defer_if_permit rate limit reached, retry later"
db_error_action: "dunno"
report: False
delay_to_close: 300
EOF
    chown -R policyd-rate-limit: "$dir"
    start_server "$name" "$dir/prl.log" policyd-rate-limit -f "$dir/prl.yaml"
    SID[$name]=$SERVER_SID
}
start_prl-disk() { start_prl prl-disk "$TMP/prl-disk"; }
start_prl-tmpfs() { start_prl prl-tmpfs "$SHM/prl-tmpfs"; }
check_prl-disk() { check_answer prl-disk "${PORT[prl-disk]}" dunno; check_limit prl-disk "${PORT[prl-disk]}" "$CHECK_MAX" "$PEER_CHECK_KEY"; }
check_prl-tmpfs() { check_answer prl-tmpfs "${PORT[prl-tmpfs]}" dunno; check_limit prl-tmpfs "${PORT[prl-tmpfs]}" "$CHECK_MAX" "$PEER_CHECK_KEY"; }

# The harness's content scanners for AO6 (sourced by harness.sh):
#  - clamd on 127.0.0.1:$CLAMD_PORT and $HARNESS_DIR/scan/clamd.sock with a
#    TEST-ONLY signature database written here: one .ndb signature of the
#    harmless marker string $SCAN_MARKER (no freshclam, no network; EICAR
#    is not detected without the official database).  clamd reports it as
#    Outpost.Test.Marker.UNOFFICIAL.
#  - rspamd 3.4 (normal worker) on 127.0.0.1:$RSPAMD_PORT with the stock
#    rules and a minimal local.d: DNS to the harness's unbound (which
#    answers NXDOMAIN for "."), no fuzzy_check, no greylist, no redis.
#    GTUBE scores "reject"; a plain message from 127.0.0.1 "no action".
# rspamd compiles its TLD list and hyperscan caches into DBDIR on a cold
# start (10-13 s idle, 39 s on a loaded 2-core machine); DBDIR is kept in
# build/scan-cache/ across harness runs (`make clean` removes it), so later
# starts take 0.5-5 s.  Start-up times go to $HARNESS_DIR/scan/startup.log;
# they are never part of a test's time.
# See ../shared/recipes/MORE-COMPONENTS.md, sections 2 and 3.
SCAN_DIR=$HARNESS_DIR/scan
SCAN_CACHE=$ROOT/build/scan-cache
SCAN_MARKER=OUTPOST-TEST-VIRUS-MARKER-7f3a9c
export SCAN_MARKER

scan_write_conf() {
    mkdir -p "$SCAN_DIR/db" "$SCAN_DIR/rspamd/etc/local.d" "$SCAN_DIR/rspamd/run" \
        "$SCAN_DIR/rspamd/log" "$SCAN_CACHE/rspamd-db"
    printf 'Outpost.Test.Marker:0:*:%s\n' "$(printf %s "$SCAN_MARKER" | xxd -p | tr -d '\n')" \
        > "$SCAN_DIR/db/outpost-test.ndb"
    cat > "$SCAN_DIR/clamd.conf" <<CONF
Foreground yes
LogFile $SCAN_DIR/clamd.log
LogTime yes
PidFile $SCAN_DIR/clamd.pid
DatabaseDirectory $SCAN_DIR/db
TCPSocket $CLAMD_PORT
TCPAddr 127.0.0.1
LocalSocket $SCAN_DIR/clamd.sock
StreamMaxLength 10M
CONF
    local R=$SCAN_DIR/rspamd
    cat > "$R/rspamd.conf" <<'CONF'
.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging { type = "file"; filename = "$LOGDIR/rspamd.log"; level = "info"; }
CONF
    cat >> "$R/rspamd.conf" <<CONF
worker "normal" { bind_socket = "127.0.0.1:$RSPAMD_PORT"; count = 1; .include "\$CONFDIR/worker-normal.inc" }
CONF
    printf 'dns { nameserver = ["127.0.0.1:%s"]; timeout = 1s; retransmits = 1; }\n' "$DNS_PORT" \
        > "$R/etc/local.d/options.inc"
    echo 'enabled = false;' > "$R/etc/local.d/fuzzy_check.conf"
    echo 'enabled = false;' > "$R/etc/local.d/greylist.conf"
    chown -R _rspamd:_rspamd "$R/run" "$R/log" "$SCAN_CACHE/rspamd-db"
}

scan_rspamd_vars() {
    local R=$SCAN_DIR/rspamd
    echo "--var=LOCAL_CONFDIR=$R/etc --var=DBDIR=$SCAN_CACHE/rspamd-db --var=RUNDIR=$R/run --var=LOGDIR=$R/log"
}

clamd_ready() {
    (exec 3<>"/dev/tcp/127.0.0.1/$CLAMD_PORT" && printf 'zPING\0' >&3 && read -r -t 2 -d '' r <&3 &&
        [ "$r" = PONG ]) 2>/dev/null
}
rspamd_ready() { curl -s -m 2 "http://127.0.0.1:$RSPAMD_PORT/ping" | grep -q pong; }

scan_clamd_up() {
    local t0 pid
    t0=$(date +%s.%N)
    setsid clamd -c "$SCAN_DIR/clamd.conf" </dev/null >"$SCAN_DIR/clamd.out" 2>&1 &
    pid=$!
    echo "$pid" > "$SCAN_DIR/clamd.main.pid"
    if ! wait_until 30 clamd_ready; then
        log "clamd did not answer PING: $(tail -3 "$SCAN_DIR/clamd.log" "$SCAN_DIR/clamd.out" 2>/dev/null)"
        return 1
    fi
    echo "clamd $(echo "$(date +%s.%N) - $t0" | bc) s" >> "$SCAN_DIR/startup.log"
}

scan_rspamd_up() {
    local t0 pid
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    setsid rspamd -f -u _rspamd -g _rspamd -c "$SCAN_DIR/rspamd/rspamd.conf" $(scan_rspamd_vars) \
        </dev/null >"$SCAN_DIR/rspamd/log/stdout" 2>&1 &
    pid=$!
    echo "$pid" > "$SCAN_DIR/rspamd.main.pid"
    if ! wait_until 120 rspamd_ready; then
        log "rspamd did not answer /ping: $(tail -3 "$SCAN_DIR/rspamd/log/rspamd.log" 2>/dev/null)"
        return 1
    fi
    echo "rspamd $(echo "$(date +%s.%N) - $t0" | bc) s" >> "$SCAN_DIR/startup.log"
}

scan_up() {
    scan_write_conf
    : > "$SCAN_DIR/startup.log"
    scan_clamd_up || return 1
    scan_rspamd_up || return 1
    {
        echo "CLAMD_SOCKET=$SCAN_DIR/clamd.sock"
        echo "CLAMD_CONF=$SCAN_DIR/clamd.conf"
        echo "SCAN_MARKER=$SCAN_MARKER"
    } >> "$HARNESS_DIR/env"
    log "scanners up: $(tr '\n' ' ' < "$SCAN_DIR/startup.log")"
}

scan_down() {
    local f
    for f in clamd.main.pid rspamd.main.pid; do
        [ -f "$SCAN_DIR/$f" ] && stop_pid "$(cat "$SCAN_DIR/$f")"
        rm -f "$SCAN_DIR/$f"
    done
    return 0
}

scan_running() {
    local f
    for f in clamd.main.pid rspamd.main.pid; do
        [ -f "$SCAN_DIR/$f" ] && pid_alive "$(cat "$SCAN_DIR/$f")" || return 1
    done
}

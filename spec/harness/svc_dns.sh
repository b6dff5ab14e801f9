# The harness's DNS servers (sourced by harness.sh):
#  - unbound on 127.0.0.1:$DNS_PORT serving the fixture zones in
#    spec/harness/dns/zones.conf (NXDOMAIN, NODATA, REFUSED, SERVFAIL and
#    dropped queries are all the real server's own answers);
#  - dns_fake.py on 127.0.0.1:$DNS_SILENT_PORT for what unbound cannot be
#    made to send: it never answers, except FORMERR for names under
#    formerr.test.
#  - MO8's DKIM keys (inst.test, foreign.test), made at every start by
#    spec/dkim/make_fixture.py into $HARNESS_DIR/dns/dkim/ with messages
#    signed by python3-dkim; slow.inst.test is delegated to the silent server.
# unbound logs every query (log-queries) to $HARNESS_DIR/dns/unbound.log,
# so tests count what reached it.
DNS_DIR=$HARNESS_DIR/dns

dns_write_conf() {
    mkdir -p "$DNS_DIR"
    # MO8's test keys, new at every start, and messages signed with them
    # (spec/dkim/make_fixture.py): the keys go into the zones here
    rm -rf "$DNS_DIR/dkim"
    /usr/bin/python3 "$ROOT/spec/dkim/make_fixture.py" "$DNS_DIR/dkim" || return 1
    cat > "$DNS_DIR/unbound.conf" <<CONF
server:
    verbosity: 1
    num-threads: 1
    interface: 127.0.0.1
    port: $DNS_PORT
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    chroot: ""
    username: ""
    directory: "$DNS_DIR"
    pidfile: "$DNS_DIR/unbound.pid"
    logfile: "$DNS_DIR/unbound.log"
    use-syslog: no
    log-queries: yes
    module-config: "iterator"
    do-not-query-localhost: no
    do-not-query-address: 127.0.0.253
    ratelimit: 0
    ip-ratelimit: 0
    include: "$ROOT/spec/harness/dns/zones.conf"
    include: "$DNS_DIR/dkim/zones.conf"
    local-zone: "slow.inst.test." transparent
forward-zone:
    name: "servfail.test."
    forward-addr: 127.0.0.253@53
forward-zone:
    name: "slow.inst.test."
    forward-addr: 127.0.0.1@$DNS_SILENT_PORT
remote-control:
    control-enable: no
CONF
}

dns_probe() {
    dig +time=1 +tries=1 @127.0.0.1 -p "$DNS_PORT" example.org MX | grep -q 'status: NOERROR'
}

dns_up() {
    dns_write_conf
    unbound-checkconf "$DNS_DIR/unbound.conf" >/dev/null || return 1
    : > "$DNS_DIR/unbound.log"
    unbound -c "$DNS_DIR/unbound.conf" || return 1
    wait_until 5 dns_probe || { log "unbound does not answer on $DNS_PORT"; return 1; }
    setsid python3 "$ROOT/spec/harness/dns_fake.py" "$DNS_SILENT_PORT" </dev/null \
        >>"$DNS_DIR/fake.log" 2>&1 &
    echo $! > "$DNS_DIR/fake.pid"
    wait_until 5 dns_fake_listening || { log "dns_fake.py did not start"; return 1; }
}

dns_fake_listening() {
    [ -n "$(ss -Hlun "( sport = :$DNS_SILENT_PORT )")" ]
}

dns_down() {
    [ -f "$DNS_DIR/unbound.pid" ] && stop_pid "$(cat "$DNS_DIR/unbound.pid")"
    [ -f "$DNS_DIR/fake.pid" ] && stop_pid "$(cat "$DNS_DIR/fake.pid")"
    rm -f "$DNS_DIR/unbound.pid" "$DNS_DIR/fake.pid"
}

dns_running() {
    [ -f "$DNS_DIR/unbound.pid" ] && pid_alive "$(cat "$DNS_DIR/unbound.pid")" &&
        [ -f "$DNS_DIR/fake.pid" ] && pid_alive "$(cat "$DNS_DIR/fake.pid")"
}

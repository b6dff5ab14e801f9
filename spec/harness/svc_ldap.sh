# The LDAP servers of the tests (sourced by harness.sh):
#  - slapd on 127.0.0.1:$LDAP_PORT (and ldaps on $LDAPS_PORT), loaded with spec/fixtures/ldap/ by
#    slapadd before it starts (fresh on every `up`), bind DN
#    cn=policyd,ou=services,dc=example,dc=org with the password in
#    $HARNESS_DIR/ldap/bind.pw; the same slapd holds the group-style
#    fixture spec/fixtures/ldap-groups/ as a second database (suffix
#    dc=campus,dc=test): one process, port and bind DN for both, so the
#    second fixture costs no start, no port, and the fault specs
#    (ldap-ctl.sh) hit both alike;
#  - a silent server on 127.0.0.1:$LDAP_SILENT_PORT that accepts TCP
#    connections and never answers (a fault slapd cannot produce on demand).
# ldap_up / ldap_down also serve the fault specs, which stop and restart
# slapd mid-test (spec/e2e/test_ldap.sh).

LDAP_DIR=$HARNESS_DIR/ldap
LDAP_FIXTURE=$ROOT/spec/fixtures/ldap
LDAP_GROUPS_FIXTURE=$ROOT/spec/fixtures/ldap-groups

ldap_conf() {
    cat <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/misc.schema
include /etc/ldap/schema/nis.schema
include $LDAP_FIXTURE/outpost-test.schema
include $LDAP_GROUPS_FIXTURE/campus.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile $LDAP_DIR/slapd.pid
argsfile $LDAP_DIR/slapd.args
sizelimit 500
database mdb
maxsize 104857600
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw secret
directory $LDAP_DIR/data
index objectClass eq
index uid,mail,mailLocalAddress,cn,associatedDomain eq
index member eq
overlay ppolicy
ppolicy_default "cn=default,ou=policies,dc=example,dc=org"
TLSCACertificateFile $LDAP_DIR/tls/ca.pem
TLSCertificateFile $LDAP_DIR/tls/server.pem
TLSCertificateKeyFile $LDAP_DIR/tls/server.key
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
database mdb
maxsize 10485760
suffix "dc=campus,dc=test"
rootdn "cn=admin,dc=campus,dc=test"
rootpw secret
directory $LDAP_DIR/data-groups
index objectClass eq
index uid,mail,campusMailAlias,campusMailDomain eq
access to * by * read
CONF
}

ldap_slapd_pid() { cat "$LDAP_DIR/slapd.pid" 2>/dev/null; }
ldap_silent_pid() { cat "$LDAP_DIR/silent.pid" 2>/dev/null; }

ldap_slapd_running() { pid_alive "$(ldap_slapd_pid)"; }

ldap_running() {
    ldap_slapd_running && pid_alive "$(ldap_silent_pid)"
}

ldap_answers() {
    ldapsearch -x -LLL -H "ldap://127.0.0.1:$LDAP_PORT/" -b dc=example,dc=org -s base dn >/dev/null 2>&1
}

# Starts slapd on the loaded data (ldap_load first).
ldap_slapd_start() {
    # exec: no shell stays behind holding the caller's stdout open
    ( cd "$LDAP_DIR" && exec setsid slapd -f "$LDAP_DIR/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/ ldaps://127.0.0.1:$LDAPS_PORT/" -d 256 \
        </dev/null >>"$LDAP_DIR/slapd.log" 2>&1 ) </dev/null >/dev/null 2>&1 &
    wait_until 10 ldap_answers || { log "slapd does not answer on 127.0.0.1:$LDAP_PORT (see $LDAP_DIR/slapd.log)"; return 1; }
}

ldap_slapd_stop() {
    stop_pid "$(ldap_slapd_pid)"
    rm -f "$LDAP_DIR/slapd.pid"
}

# A private CA and a certificate for 127.0.0.1, for StartTLS; plus a second
# CA that did not sign it (a client trusting only that one must refuse).
ldap_tls() {
    local d=$LDAP_DIR/tls
    [ -f "$d/server.pem" ] && return 0
    mkdir -p "$d"
    (
        cd "$d" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=outpost test CA" \
            -keyout ca.key -out ca.pem
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=other test CA" \
            -keyout other-ca.key -out other-ca.pem
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile ext.cnf -out server.pem
    ) >"$LDAP_DIR/tls.log" 2>&1 || { log "cannot make the test certificates (see $LDAP_DIR/tls.log)"; return 1; }
}

ldap_load() {
    ldap_tls || return 1
    rm -rf "$LDAP_DIR/data" "$LDAP_DIR/data-groups"
    mkdir -p "$LDAP_DIR/data" "$LDAP_DIR/data-groups"
    ldap_conf > "$LDAP_DIR/slapd.conf"
    printf 'policyd-secret\n' > "$LDAP_DIR/bind.pw"
    chmod 600 "$LDAP_DIR/bind.pw"
    slapadd -q -f "$LDAP_DIR/slapd.conf" -l "$LDAP_FIXTURE/fixture.ldif" >"$LDAP_DIR/slapadd.log" 2>&1 \
        || { log "slapadd failed:"; cat "$LDAP_DIR/slapadd.log" >&2; return 1; }
    slapadd -q -f "$LDAP_DIR/slapd.conf" -b dc=campus,dc=test -l "$LDAP_GROUPS_FIXTURE/fixture.ldif" \
        >>"$LDAP_DIR/slapadd.log" 2>&1 \
        || { log "slapadd (groups) failed:"; cat "$LDAP_DIR/slapadd.log" >&2; return 1; }
}

ldap_silent_start() {
    /usr/bin/python3 - "$LDAP_SILENT_PORT" >"$LDAP_DIR/silent.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
held = []
while True:            # accepts and holds every connection, answers nothing
    c, _ = s.accept()
    held.append(c)
    if len(held) > 1000:
        held.pop(0).close()
PY
    echo $! > "$LDAP_DIR/silent.pid"
    wait_until 5 sh -c "ss -Hltn '( sport = :$LDAP_SILENT_PORT )' | grep -q LISTEN"
}

ldap_up() {
    mkdir -p "$LDAP_DIR"
    if ! ldap_slapd_running; then
        ldap_load && ldap_slapd_start || return 1
    fi
    pid_alive "$(ldap_silent_pid)" || ldap_silent_start || return 1
}

ldap_down() {
    ldap_slapd_stop
    stop_pid "$(ldap_silent_pid)"
    rm -f "$LDAP_DIR/silent.pid"
}

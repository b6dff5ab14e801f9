#!/bin/bash
# make run: the example directory (slapd, spec/fixtures/ldap/) and DNS zones
# (unbound, spec/harness/dns/) on loopback, then outpostd with the shipped
# conf/outpost.conf in the foreground.  Ctrl-C (or SIGTERM) stops outpostd,
# then the example servers.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Fixed ports, which conf/outpost.conf names: DNS 25300, LDAP 25310.
export HARNESS_DIR=$ROOT/var/example OUTPOST_PORT_BASE=25300 HARNESS_ONLY="dns ldap"

if ! bash spec/harness/harness.sh up; then
    echo "make run: the example directory and DNS servers did not start (see above)" >&2
    exit 1
fi
trap 'bash spec/harness/harness.sh down' EXIT
trap 'exit 130' INT TERM

ASK="build/outpostd ask"
cat <<EOF

  outpostd with conf/outpost.conf, the example directory on ldap://127.0.0.1:25310
  and the example DNS zones on 127.0.0.1:25300.  From another terminal:

    $ASK tcp:127.0.0.1:10045 sasl_username=alice sender=alice@example.org recipient=bob@withmx.test

  build/outpostctl -s var/control.sock status    # the control socket
  build/outpostctl -s var/control.sock reload    # after editing lua/policies/ or conf/
  Ctrl-C                                         # stop

EOF
build/outpostd -c conf/outpost.conf

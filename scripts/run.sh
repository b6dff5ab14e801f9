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

  postout (PO1-PO7), a user's mail client:
    $ASK tcp:127.0.0.1:10045 encryption_protocol=TLSv1.3 sasl_username=alice \\
        sender=alice@example.org recipient=bob@withmx.test instance=try.1
    ... the same as mallory (locked), or recipient=nobody@example.org (no such mailbox)
  mailout (MO1-MO7, MO9), a campus MTA:
    $ASK tcp:127.0.0.1:10047 client_address=10.1.4.25 sender=alice@example.org \\
        recipient=bob@withmx.test instance=try.2
    ... client_address=10.3.0.25 (servers' area: TLS enforced), or sender=x@other.example (MO9)
  appout stage 1 (AO1-AO5), an application of tenant lm:
    $ASK unix:var/run/appout-lm.sock encryption_protocol=TLSv1.3 sasl_username=app-lm \\
        sender=noreply-lm@example.org client_address=10.153.1.2 recipient=x@withmx.test
  Each answer is logged with the check that decided (check=PO3 ...).

  build/outpostctl -s var/control.sock status    # the control socket
  build/outpostctl -s var/control.sock reload    # after editing lua/policies/ or conf/
  Ctrl-C                                         # stop

EOF
build/outpostd -c conf/outpost.conf

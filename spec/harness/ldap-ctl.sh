#!/bin/bash
# Fault injection on the harness's slapd, for the LDAP fault tests:
#   ldap-ctl.sh kill     SIGKILL (connections reset, as in a crash)
#   ldap-ctl.sh start    start it again on the same data, wait until it answers
#   ldap-ctl.sh pause    SIGSTOP (connections stay open, nothing answers)
#   ldap-ctl.sh resume   SIGCONT
# Needs a harness that is up (build/harness/env).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HARNESS_DIR=${HARNESS_DIR:-$ROOT/build/harness}
# shellcheck disable=SC1091
. "$HARNESS_DIR/env"
log() { printf 'ldap-ctl: %s\n' "$*" >&2; }
# shellcheck disable=SC1091
. "$ROOT/spec/harness/procs.sh"
# shellcheck disable=SC1091
. "$ROOT/spec/harness/svc_ldap.sh"

pid=$(ldap_slapd_pid)
case "${1:-}" in
    kill)
        pid_alive "$pid" && kill -KILL "$pid"
        wait_until 5 bash -c "! ss -Hltn '( sport = :$LDAP_PORT )' | grep -q LISTEN"
        ;;
    start) ldap_slapd_running || ldap_slapd_start ;;
    pause) kill -STOP "$pid" ;;
    resume) kill -CONT "$pid" ;;
    *) echo "usage: $0 kill|start|pause|resume" >&2; exit 2 ;;
esac

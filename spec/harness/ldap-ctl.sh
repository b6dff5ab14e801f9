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
# The process that holds the LDAP port: the slapd that answers.  pause and
# resume signal it rather than trusting slapd.pid alone: once, a second
# after appout_spec's kill and start, a pause left the answering slapd
# running (it answered a search in 0.3 ms "while paused"); slapd.pid is
# the suspect.
listening_pid() {
    ss -Hltnp "( sport = :$LDAP_PORT )" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}
case "${1:-}" in
    kill)
        pid_alive "$pid" && kill -KILL "$pid"
        wait_until 5 bash -c "! ss -Hltn '( sport = :$LDAP_PORT )' | grep -q LISTEN"
        ;;
    start) ldap_slapd_running || ldap_slapd_start ;;
    pause | resume)
        p=$(listening_pid)
        [ -n "$p" ] || p=$pid
        if [ "$1" = pause ]; then kill -STOP "$p"; else kill -CONT "$p"; fi
        ;;
    *) echo "usage: $0 kill|start|pause|resume" >&2; exit 2 ;;
esac

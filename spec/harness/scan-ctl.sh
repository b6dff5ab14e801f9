#!/bin/bash
# Stops and starts the harness's clamd (spec/harness/svc_scan.sh) by its
# PID, for the tests of a scanner that is down (AO6's 4xx):
#   spec/harness/scan-ctl.sh clamd-stop | clamd-start
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HARNESS_DIR=${HARNESS_DIR:-$ROOT/build/harness}
# shellcheck disable=SC1091
. "$HARNESS_DIR/env"
log() { printf 'scan-ctl: %s\n' "$*" >&2; }
# shellcheck source=spec/harness/procs.sh
. "$ROOT/spec/harness/procs.sh"
# shellcheck source=spec/harness/svc_scan.sh
. "$ROOT/spec/harness/svc_scan.sh"
case "${1:-}" in
    clamd-stop)
        stop_pid "$(cat "$SCAN_DIR/clamd.main.pid" 2>/dev/null)"
        ! clamd_ready ;;
    clamd-start)
        clamd_ready || scan_clamd_up ;;
    *) echo "usage: $0 clamd-stop|clamd-start" >&2; exit 2 ;;
esac

# shellcheck shell=bash
# Helpers of the bench scripts (sourced by bench/run.sh, scaling.sh, jit.sh
# and instructions.sh): their start-up and cleanup (bench_setup), servers
# started in their own session and stopped by PID, bounded waits, and one
# loadgen run.  Expects ROOT and LOADGEN to be set; bench_setup sets TMP.

# Every server runs in a session of its own (setsid; its PID is the session
# id), so its CPU time and memory are those of the session's processes,
# also for a server that forks (postfwd's daemon mode).
SESSIONS=""

say() { printf '%s\n' "$*"; }
die() {
    echo "bench: $*" >&2
    exit 1
}

sid_alive() { # sid: any process of the session alive (not a zombie)
    local p
    for p in $(session_pids "$1"); do
        [ "$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$p/stat" 2>/dev/null)" != Z ] && return 0
    done
    return 1
}

session_pids() { # sid -> the PIDs of the session
    ps -eo pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'
}

# SIGTERM to the session's leader, then to every process left in the
# session; SIGKILL after 10 s.  Each process by its PID.
stop_session() { # sid
    local sid=$1 p _i
    kill -TERM "$sid" 2>/dev/null || true
    for _i in $(seq 20); do sid_alive "$sid" || break; sleep 0.1; done
    for p in $(session_pids "$sid"); do kill -TERM "$p" 2>/dev/null || true; done
    for _i in $(seq 80); do sid_alive "$sid" || break; sleep 0.1; done
    for p in $(session_pids "$sid"); do kill -KILL "$p" 2>/dev/null || true; done
    wait "$sid" 2>/dev/null || true
    SESSIONS=$(echo "$SESSIONS" | tr ' ' '\n' | grep -vx "$sid" | tr '\n' ' ' || true)
}

stop_all_sessions() {
    local s
    for s in $SESSIONS; do stop_session "$s"; done
}

# start_server NAME LOG CMD...: runs CMD in a new session; sets SERVER_SID.
start_server() {
    local name=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 &
    SERVER_SID=$!
    SESSIONS="$SESSIONS $SERVER_SID"
}

# The session of a daemon that forks into a session of its own and writes
# its PID to a file (postfwd -d): waits for the file, at most 20 s.
adopt_pidfile_session() { # pidfile -> SERVER_SID
    local _i
    for _i in $(seq 200); do
        if [ -s "$1" ]; then
            SERVER_SID=$(cat "$1")
            SESSIONS="$SESSIONS $SERVER_SID"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Waits until 127.0.0.1:PORT accepts, at most 20 s.  Returns 1 when the
# server exited (e.g. its port was taken as the local port of some
# connection: the harness's ports lie in Linux's ephemeral range).
wait_port() { # port sid log
    local _i
    for _i in $(seq 200); do
        if ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .; then return 0; fi
        sid_alive "$2" || { tail -n 3 "$3" >&2; return 1; }
        sleep 0.1
    done
    tail -n 20 "$3" >&2
    die "nothing accepts on port $1 after 20 s (log $3)"
}

# Peak RSS of a session: the sum of VmHWM of its processes, KiB.  For a
# forking server this counts the pages its processes share once per process.
session_hwm() { # sid
    local p sum=0 v
    for p in $(session_pids "$1"); do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# answers PORT N KEY [loadgen options]: N requests from user<KEY> on one
# connection; prints "action COUNT TEXT" lines.
answers() {
    local port=$1 n=$2 key=$3
    shift 3
    "$LOADGEN" --tcp "127.0.0.1:$port" -c 1 -n "$n" -d 30 --warmup 0 --keys 1 --first-key "$key" \
        --quiet "$@" 2>&1 | grep '^action '
}

# check_limit NAME PORT MAX KEY [loadgen options]: MAX requests of user<KEY>
# are accepted and the next one is refused.  The server's limit for that one
# user is MAX; the load uses other users.
check_limit() {
    local name=$1 port=$2 max=$3 key=$4 got ok
    shift 4
    got=$(answers "$port" "$max" "$key" "$@")
    ok=$(echo "$got" | awk '$3 ~ /^(DUNNO|dunno|OK)$/ {n += $2} END {print n + 0}')
    [ "$ok" = "$max" ] || die "$name: of the first $max requests of user$key only $ok were accepted: $got"
    got=$(answers "$port" 1 "$key" "$@")
    case $got in
    "action 1 DUNNO" | "action 1 dunno" | "action 1 OK" | "")
        die "$name: request $((max + 1)) of user$key was not refused (limit $max): '$got'" ;;
    esac
    say "check: $name refuses request $((max + 1)) of user$key (limit $max): ${got#action 1 }"
}

# check_answer NAME PORT WANT [loadgen options]: one request (user0) is
# answered WANT (a shell pattern).
check_answer() {
    local name=$1 port=$2 want=$3 got
    shift 3
    got=$(answers "$port" 1 0 "$@")
    got=${got#action 1 }
    # shellcheck disable=SC2254
    case $got in
    $want) say "check: $name answers '$got'" ;;
    *) die "$name answers '$got', want $want" ;;
    esac
}

# The median of the numbers on stdin.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The harness's slapd and unbound, started unless they run already
# (HARNESS_STARTED=1 then, so the caller's cleanup stops them again); its
# env (ports, paths) is sourced either way.
harness_dns_ldap_up() {
    local status
    status=$(bash spec/harness/harness.sh status 2>/dev/null || true)
    if ! grep -q '^ldap: running' <<<"$status" || ! grep -q '^dns: running' <<<"$status"; then
        HARNESS_ONLY="dns ldap" bash spec/harness/harness.sh up >"$TMP/harness.log" 2>&1 \
            || { cat "$TMP/harness.log" >&2; die "the harness's slapd and unbound did not start"; }
        HARNESS_STARTED=1
    fi
    # shellcheck disable=SC1091
    . build/harness/env
}

# The start of a bench script: TMP, a folder of its own under build/; on
# any exit every server it started is stopped, the harness too if it
# started it, and TMP removed (kept, with its logs, when the script
# failed); the harness's slapd and unbound up.  A script with more to
# clean defines bench_cleanup_more, which runs before TMP goes.
bench_setup() { # name-in-messages tmp-prefix
    BENCH_NAME=$1
    mkdir -p build
    TMP=$(mktemp -d "$ROOT/build/$2.XXXXXX")
    HARNESS_STARTED=
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    harness_dns_ldap_up
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    stop_all_sessions
    [ -n "$HARNESS_STARTED" ] && bash spec/harness/harness.sh down >/dev/null 2>&1
    if declare -F bench_cleanup_more >/dev/null; then bench_cleanup_more; fi
    case $rc in
    0 | 129 | 130 | 143) rm -rf "$TMP" ;;
    *) echo "$BENCH_NAME: failed; logs kept in $TMP" >&2 ;;
    esac
    exit "$rc"
}

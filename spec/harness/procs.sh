# Process helpers of the test harness (sourced by harness.sh and ldap-ctl.sh).

# 0 when PID lives and is not a zombie (reparented daemons may stay zombies
# for a while before init reaps them).
pid_alive() {
    local pid=$1 state
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Z]).*/\1/' "/proc/$pid/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}

# Stops a process by PID: TERM, then KILL after 5 s.
stop_pid() {
    local pid=$1 i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null
}

port_taken() { # port proto(udp|tcp|udp+tcp)
    local out=""
    case $2 in *tcp*) out+=$(ss -Hltnp "( sport = :$1 )" 2>/dev/null) ;; esac
    case $2 in *udp*) out+=$(ss -Hlunp "( sport = :$1 )" 2>/dev/null) ;; esac
    [ -n "$out" ] && printf '%s' "$out"
}

# Waits until cmd succeeds, at most $1 seconds.
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 20; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}


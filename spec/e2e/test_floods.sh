#!/bin/bash
# Connection floods (issue 14, item 3): 2,000 idle TCP connections and a
# slowloris must not lock Postfix out of its unix socket; allow_from
# refuses a client outside; the refusals do not flood the log.
. "$(dirname "$0")/lib.sh"
# Ports of their own (harness.sh's plan): a daemon of the test before may
# still be closing on the shared OUTPOSTD_TCP_PORT.
TCP_PORT=${FLOODS_TCP_PORT:-$((${OUTPOST_PORT_BASE:-43000} + 60))}
CLOSED_PORT=${FLOODS_CLOSED_PORT:-$((${OUTPOST_PORT_BASE:-43000} + 61))}
# A soft file limit below what max_connections needs, as systemd's default
# (1024) is for a raised max_connections: the daemon raises its own, or
# the TCP flood takes the descriptors the unix listener needs.
ulimit -Sn 512
e2e_setup
e2e_config <<EOF2
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    max_connections = 1024
    request_timeout = 1s
}
listener unix {
    listen = unix:@T@/policy.sock
    service = dunno
}
listener tcp {
    listen = tcp:127.0.0.1:$TCP_PORT
    service = dunno
    max_per_peer = 0
}
listener closed {
    listen = tcp:127.0.0.1:$CLOSED_PORT
    service = dunno
    allow_from = ["192.0.2.0/24", "2001:db8::/32"]
}
service dunno { }
EOF2
e2e_start || exit 1

# The flood, held open while the checks below run; it reports how many of
# its connections the daemon closed (refused) and when the slowloris died.
python3 - "$TCP_PORT" "$T" <<'EOF2' > "$T/flood.out" &
import resource, socket, sys, time
port, tdir = int(sys.argv[1]), sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
# the slowloris first, so that it has a slot
slow = socket.create_connection(("127.0.0.1", port), timeout=5)
flood = []
for _ in range(2000):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    flood.append(s)
def count_refused():
    n = 0
    for s in flood:
        s.setblocking(False)
        try:
            if s.recv(10) == b"":
                n += 1
        except BlockingIOError:
            pass
        except OSError:
            n += 1
    return n
# until the daemon has taken the burst (bounded: 5 s): the flood is then idle
t0 = time.monotonic()
while count_refused() < 1233 and time.monotonic() - t0 < 5:
    time.sleep(0.05)
open(tdir + "/flood.ready", "w").close()
# Postfix's side: a request on the unix socket, 20 times, with the flood held
worst = 0.0
for _ in range(20):
    t = time.monotonic()
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(2)
    u.connect(tdir + "/policy.sock")
    u.sendall(b"request=smtpd_access_policy\nrecipient=bob@example.org\n\n")
    ans = u.recv(100)
    u.close()
    ms = (time.monotonic() - t) * 1000 if ans == b"action=DUNNO\n\n" else 99999
    worst = max(worst, ms)
# the slowloris: one byte every 200 ms, never a whole request
t0 = time.monotonic()
died = None
# bounded: at most 6 s
while time.monotonic() - t0 < 6:
    try:
        slow.send(b"r")
        slow.settimeout(0.2)
        if slow.recv(10) == b"":
            died = time.monotonic() - t0
            break
    except socket.timeout:
        continue
    except OSError:
        died = time.monotonic() - t0
        break
refused = count_refused()
print("unix_worst_ms=%.1f refused=%d slowloris_died=%s" % (worst, refused, "%.1f" % died if died is not None else "never"))
open(tdir + "/flood.done", "w").close()
time.sleep(1)
EOF2
FLOOD=$!

for ((i = 0; i < 200; i++)); do [ -e "$T/flood.ready" ] && break; sleep 0.05; done
check "2,000 TCP connections opened" test -e "$T/flood.ready"
sleep 0.3
# outpostd ask is a process of its own (some 30 ms of it is its start):
# the median of 5 is what the daemon costs.
times=()
for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    out=$($ASK "unix:$T/policy.sock" recipient=bob@example.org)
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$out" = "action=DUNNO" ] || ms=99999
    times+=("$ms")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
echo "# outpostd ask on the unix listener under the flood: ${times[*]} ms (median $median)"
check "outpostd ask on the unix listener answers within 100 ms under the flood" test "$median" -lt 100

for ((i = 0; i < 200; i++)); do [ -e "$T/flood.done" ] && break; sleep 0.05; done
wait "$FLOOD"
out=$(cat "$T/flood.out")
echo "# $out"
refused=$(sed -nE 's/.*refused=([0-9]+).*/\1/p' <<<"$out")
unix_worst=$(sed -nE 's/.*unix_worst_ms=([0-9.]+).*/\1/p' <<<"$out")
check "a request on the unix socket, 20 times under the flood: the slowest took ${unix_worst:-?} ms (< 100)" \
    awk -v w="${unix_worst:-99999}" 'BEGIN { exit !(w < 100) }'
died=$(sed -nE 's/.*slowloris_died=([0-9.]+).*/\1/p' <<<"$out")
check "TCP took at most three quarters of max_connections (1,233 of 2,001 refused)" test "${refused:-0}" -eq 1233
check "the slowloris was closed by request_timeout (after ${died:-never} s)" \
    awk -v d="${died:-99}" 'BEGIN { exit !(d >= 0.9 && d < 3.5) }'
check "its closing is logged" log_has "request not complete after"

out=$(printf 'request=smtpd_access_policy\n\n' | $RAW "tcp:127.0.0.1:$CLOSED_PORT" --wait 1 | tr '\n' ' ')
check "allow_from closes a client outside it, unanswered" test "$out" = "b'' CLOSED "
check "... and says why" log_has "127.0.0.1:[0-9]+: not in the listener's allow_from"

n=$(grep -c "connection refused" "$T/daemon.log")
echo "# refusal lines logged: $n for 1,233 refusals"
check "refusals are rate-limited (at most 10 a second)" test "$n" -lt 60
check "the daemon raised its descriptor limit: no accept failed" bash -c "! grep -q 'accept failed' $T/daemon.log"
check "with a count of what was suppressed" log_has "more lines like the last \"connection refused\" suppressed|more like it suppressed"
sleep 0.3
check "the unix listener still answers after the flood" bash -c "$ASK unix:$T/policy.sock | grep -qx action=DUNNO"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

#!/bin/bash
# Bad input closes that connection without a reply (Postfix then retries),
# never the daemon, and never blocks other connections.  Good input that
# arrives oddly (CRLF, pipelined, byte by byte) is answered in order.
. "$(dirname "$0")/lib.sh"
e2e_setup

e2e_config <<'EOF'
request_limits {
    max_line = 2048
    max_attrs = 64
    max_request = 16k
}
listener unix {
    listen = unix:@T@/policy.sock
    service = echo
}
service echo { }
EOF
e2e_policy echo <<'EOF'
local A = require "outpost.action"
local outpost = require "outpost"
return { on_request = function(req)
    local a = req.attrs
    if a.sleep_ms then outpost.sleep(tonumber(a.sleep_ms) / 1000) end
    return A.warn("n=%s empty=[%s]", a.n or "-", a.empty or "nil")
end }
EOF
e2e_start || exit 1
S=unix:$T/policy.sock

raw() { $RAW "$S" "$@"; }
closed_silently() { # input on stdin; passes when no byte came back and the server closed
    local out
    out=$(raw --wait 3)
    [ "$(echo "$out" | sed -n 1p)" = "b''" ] && [ "$(echo "$out" | sed -n 2p)" = CLOSED ]
}

# Meanwhile a slow, valid request on its own connection must be answered.
printf 'n=slow\nsleep_ms=1500\n\n' | raw --wait 4 > "$T/slow.out" &
slow_pid=$!
sleep 0.2

check "binary garbage: closed, no reply" closed_silently < <(head -c 4096 /dev/urandom)
check "NUL byte in a value: closed, no reply" closed_silently < <(printf 'n=1\nsender=a\0b\n\n')
check "NUL byte in a name: closed, no reply" closed_silently < <(printf 'n=1\nsen\0der=a\n\n')
check "a line without '=': closed, no reply" closed_silently < <(printf 'n=1\nhello\n\n')
check "an empty name: closed, no reply" closed_silently < <(printf '=x\n\n')
check "a duplicated name: closed, no reply" closed_silently < <(printf 'n=1\nn=2\n\n')
check "a lone empty line: closed, no reply" closed_silently < <(printf '\n')
check "a bare CR inside a line: closed, no reply" closed_silently < <(printf 'n=1\rx\n\n')
check "a 1 MB line: closed, no reply" closed_silently < <(head -c 1048576 /dev/zero | tr '\0' 'a')
check "100k attributes: closed, no reply" closed_silently < <(for i in $(seq 1 100000); do echo "a$i=x"; done)
check "a request over max_request: closed, no reply" closed_silently < <(for i in $(seq 1 60); do printf 'a%d=%0300d\n' "$i" 0; done; echo)
out=$(printf 'n=1\nsender=a@b\n' | raw --half-close --wait 2)
check "missing blank line, then EOF: no reply" test "$(echo "$out" | sed -n 1p)" = "b''"
check "... and the log says the client closed mid-request" log_has "closed by the client in the middle of a request"
check "a malformed request is logged with the reason" log_has "malformed request: .*NUL"

out=$(printf 'n=1\r\nempty=\r\n\r\n' | raw --wait 1 | sed -n 1p)
check "CRLF line ends are accepted; empty values reach Lua" test "$out" = "b'action=WARN n=1 empty=[]\\n\\n'"

# Three queries in one write; the first finishes last.  Answers must come in
# the order of the queries.
out=$(printf 'n=1\nsleep_ms=300\n\nn=2\nsleep_ms=100\n\nn=3\n\n' | raw --wait 1.5 | sed -n 1p)
check "pipelined queries are answered in order" \
    test "$out" = "b'action=WARN n=1 empty=[nil]\\n\\naction=WARN n=2 empty=[nil]\\n\\naction=WARN n=3 empty=[nil]\\n\\n'"

out=$(python3 - "$T/policy.sock" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
for b in b"n=7\nsender=x@y\n\n":
    s.send(bytes([b])); time.sleep(0.001)
s.settimeout(2); print(s.recv(100))
EOF
)
check "a query arriving byte by byte is answered" test "$out" = "b'action=WARN n=7 empty=[nil]\\n\\n'"

wait $slow_pid
check "a slow query on another connection was answered meanwhile" \
    test "$(sed -n 1p "$T/slow.out")" = "b'action=WARN n=slow empty=[nil]\\n\\n'"
check "the daemon still answers" bash -c "$ASK $S n=9 | grep -qx 'action=WARN n=9 empty=\[nil\]'"
check "SIGTERM stops it with status 0" e2e_stop
check_log_clean
e2e_finish

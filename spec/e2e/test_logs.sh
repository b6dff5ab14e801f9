#!/bin/bash
# The log's targets on a running daemon (log { }, docs/operations.md#logs):
# stderr under systemd (JOURNAL_STREAM naming it: the <N> prefix) and not
# (an RFC 3339 time per line); then, by reloads of one daemon, syslog and
# the journal on sockets of the test's own (spec/e2e/logs/dgram_sink.py),
# and JSON lines on stderr read back by Python's json.loads, with request
# values holding quotes, control bytes and bytes that are not UTF-8.
. "$(dirname "$0")/lib.sh"
e2e_setup

PORT=$((${OUTPOSTD_TCP_PORT:-$((20000 + RANDOM % 20000))}))
SINK_PID=
stop_sink() { [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null; SINK_PID=; }
trap 'stop_sink; e2e_cleanup' EXIT
start_sink() { # path out [--journal]
    rm -f "$2"
    python3 "$ROOT/spec/e2e/logs/dgram_sink.py" "$@" --seconds 120 &
    SINK_PID=$!
    wait_for_socket "$1" 10
}

write_config() { # the log { } block's lines
    e2e_config <<EOF
listener tcp {
    listen = tcp:127.0.0.1:$PORT
    service = dunno
    tenant = lrz
}
service dunno { }
log {
$(printf '    %s\n' "$@")
}
EOF
}
ask() { $ASK "tcp:127.0.0.1:$PORT" "$@" >/dev/null; }
REQ=(sasl_username=alice sender=a@example.org recipient=r@example.net queue_id=4Q7Jrx2hM1z9
     instance=1a2b.6b16e24f.8e3b9.0 protocol_state=RCPT)

# 1. Under systemd: stderr is the journal's stream, lines keep "<N>".
write_config "target = stderr"
: > "$T/daemon.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/daemon.log") e2e_start || exit 1
ask "${REQ[@]}"
e2e_stop
check "JOURNAL_STREAM names stderr: <N>level: lines (the journal adds the time)" \
    grep -qE '^<6>info: decision req=[0-9]+ service=dunno tenant=lrz .* queue_id=4Q7Jrx2hM1z9 instance=1a2b\.6b16e24f\.8e3b9\.0 protocol_state=RCPT$' "$T/daemon.log"
check "... every line" bash -c "! grep -vE '^<[0-7]>' '$T/daemon.log'"

# 2. stderr to a file, JOURNAL_STREAM inherited but naming another stream:
# an RFC 3339 time per line.
JOURNAL_STREAM=1:2 e2e_start || exit 1
ask "${REQ[@]}"
RFC3339='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2}'
check "stderr not a terminal: an RFC 3339 time, then level: message" \
    grep -qE "^$RFC3339 info: decision req=[0-9]+ service=dunno .* protocol_state=RCPT\$" "$T/daemon.log"
check "... every line" bash -c "! grep -vE '^$RFC3339 (debug|info|notice|warning|error|crit): ' '$T/daemon.log'"
stamp=$(grep -m1 -oE "^$RFC3339" "$T/daemon.log")
check "... the time is now (within 60 s): $stamp" python3 -c "
import datetime, sys
t = datetime.datetime.fromisoformat(sys.argv[1])
sys.exit(abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 60)" "$stamp"

# 3. syslog, by a reload: facility local3, our own ident and socket.
start_sink "$T/syslog.sock" "$T/syslog.out" || { not_ok "the syslog sink listens"; e2e_finish; }
write_config "target = syslog" "socket = @T@/syslog.sock" "facility = local3" "ident = outpost-e2e"
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do grep -q "reload: generation 2 is current" "$T/syslog.out" 2>/dev/null && break; sleep 0.1; done
ask "${REQ[@]}"
sleep 0.3
stop_sink
check "syslog: the reload's notice arrives as <157> (local3.notice), ident[pid]" \
    grep -qE "^<157>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} outpost-e2e\[$DAEMON_PID\]: notice: reload: generation 2 is current" "$T/syslog.out"
check "syslog: the decision line as <158> (local3.info), with queue_id, instance, protocol_state" \
    grep -qE "^<158>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} outpost-e2e\[$DAEMON_PID\]: info: decision req=[0-9]+ service=dunno tenant=lrz client=127\.0\.0\.1 sasl_user=alice sender=a@example.org rcpt=r@example.net action=DUNNO check=- reason=policy elapsed_us=[0-9]+ gen=2 queue_id=4Q7Jrx2hM1z9 instance=1a2b\.6b16e24f\.8e3b9\.0 protocol_state=RCPT$" "$T/syslog.out"
# The same header from glibc's syslog(3) (Python's syslog module calls it),
# sent to a /dev/log of our own in a private mount namespace: what
# rsyslog, syslog-ng and journald read from every local program.
unshare -m bash -c "mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 &&
    { python3 '$ROOT/spec/e2e/logs/dgram_sink.py' /dev/log '$T/glibc.out' --seconds 10 & } &&
    for i in \$(seq 100); do [ -S /dev/log ] && break; sleep 0.1; done &&
    python3 -c 'import syslog; syslog.openlog(\"outpost-e2e\", syslog.LOG_PID, syslog.LOG_LOCAL3); syslog.syslog(syslog.LOG_INFO, \"info: hello\")' &&
    sleep 0.3; kill %1" 2>/dev/null
check "syslog: glibc's syslog(3) sends the same form ($(cat "$T/glibc.out" 2>/dev/null))" \
    grep -qE "^<158>[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} outpost-e2e\[[0-9]+\]: info: hello$" "$T/glibc.out"
check "syslog: nothing of it on stderr" bash -c "! grep -q 'gen=2 queue_id' '$T/daemon.log'"

# 4. The syslog socket gone (syslogd stopped): lines go to stderr, after a
# warning that says so.
ask "${REQ[@]}"
check "no syslog reader: a warning on stderr, and the line there" bash -c \
    "grep -qE 'warning: log: cannot send to $T/syslog.sock \\((Connection refused|No such file or directory)\\); lines go to stderr' '$T/daemon.log' &&
     grep -qE 'info: decision req=[0-9]+ service=dunno .*gen=2 queue_id=4Q7Jrx2hM1z9' '$T/daemon.log'"

# 5. The journal, by a reload: native protocol, each field a journal field.
start_sink "$T/journal.sock" "$T/journal.out" --journal || { not_ok "the journal sink listens"; e2e_finish; }
write_config "target = journal" "socket = @T@/journal.sock"
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do grep -q "reload: generation 3 is current" "$T/journal.out" 2>/dev/null && break; sleep 0.1; done
ask "${REQ[@]}" 'client_address=192.0.2.7'
sleep 0.3
stop_sink
check "journal: the decision's fields (QUEUE_ID, CHECK, SERVICE, TENANT, REQ, ...) and MESSAGE" python3 -c "
import json, sys
for line in open('$T/journal.out'):
    f = json.loads(line)
    if f.get('MESSAGE', '').startswith('decision '):
        break
else:
    sys.exit('no decision')
want = {'QUEUE_ID': '4Q7Jrx2hM1z9', 'INSTANCE': '1a2b.6b16e24f.8e3b9.0', 'PROTOCOL_STATE': 'RCPT',
        'CHECK': '-', 'SERVICE': 'dunno', 'TENANT': 'lrz', 'ACTION': 'DUNNO', 'REASON': 'policy',
        'CLIENT': '192.0.2.7', 'SASL_USER': 'alice', 'SENDER': 'a@example.org',
        'RCPT': 'r@example.net', 'GEN': '3', 'PRIORITY': '6', 'SYSLOG_FACILITY': '2',
        'SYSLOG_IDENTIFIER': 'outpostd'}
bad = {k: (f.get(k), v) for k, v in want.items() if f.get(k) != v}
if bad or not f['REQ'].isdigit() or not f['MESSAGE'].endswith(' queue_id=4Q7Jrx2hM1z9 instance=1a2b.6b16e24f.8e3b9.0 protocol_state=RCPT'):
    sys.exit('%r / %r' % (bad, f))"
check "journal: plain lines have MESSAGE, PRIORITY and SYSLOG_IDENTIFIER" python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$T/journal.out')]
sys.exit(not any(r.get('MESSAGE', '').startswith('reload: generation 3 is current') and r['PRIORITY'] == '5'
                 and r['SYSLOG_IDENTIFIER'] == 'outpostd' for r in rows))"

# 6. JSON lines on stderr, by a reload; values a client can send: quotes,
# backslashes, control bytes, bytes that are not UTF-8, UTF-8.
write_config "target = stderr" "format = json"
mark=$(wc -l < "$T/daemon.log")
kill -HUP "$DAEMON_PID"
for ((i = 0; i < 100; i++)); do grep -q '"msg":"reload: generation 4 is current' "$T/daemon.log" && break; sleep 0.1; done
ask sasl_username=$'j\xc3\xbcrgen' $'sender=q"u\\o\x01\x1b[2J\xff\xfe@example.org' recipient=r@example.net \
    queue_id=4Q7Jrx2hM1z9 instance=2c.6b16e24f.8e3b9.0 protocol_state=RCPT
sleep 0.2
# from the reload's first line under the new generation: the lines before
# it (the reload's "loading", and the journal's absence) are still text
tail -n +$((mark + 1)) "$T/daemon.log" | sed -n '/"msg":"reload: generation 4 is current/,$p' > "$T/json.log"
check "json: every line from the reload on is a JSON object (json.loads line by line)" python3 -c "
import json, sys
n = 0
for line in open('$T/json.log', 'rb'):
    o = json.loads(line)
    assert set(o) >= {'ts', 'level', 'msg'}, o
    n += 1
sys.exit(n < 2)"
check "json: the decision's fields are keys; bytes escaped, invalid UTF-8 as U+FFFD" python3 -c "
import json, sys
for line in open('$T/json.log', 'rb'):
    o = json.loads(line)
    if o['msg'] == 'decision':
        break
else:
    sys.exit('no decision')
want = {'level': 'info', 'service': 'dunno', 'tenant': 'lrz', 'action': 'DUNNO', 'check': '-',
        'sasl_user': 'j\u00fcrgen', 'sender': 'q\"u\\\\o\x01\x1b[2J\ufffd\ufffd@example.org',
        'queue_id': '4Q7Jrx2hM1z9', 'protocol_state': 'RCPT', 'instance': '2c.6b16e24f.8e3b9.0', 'gen': 4}
bad = {k: (o.get(k), v) for k, v in want.items() if o.get(k) != v}
if bad or not isinstance(o['req'], int) or not isinstance(o['elapsed_us'], int):
    sys.exit('%r / %r' % (bad, o))"
check "json: ts is RFC 3339" grep -qE "^\\{\"ts\":\"$RFC3339\",\"level\":\"info\",\"msg\":\"decision\"," "$T/json.log"

e2e_stop
check_log_clean
e2e_finish

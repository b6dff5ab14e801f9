#!/bin/bash
# outpostctl against a running daemon: every command, --json, bad input,
# exit codes, and who may use the control socket.
. "$(dirname "$0")/lib.sh"
e2e_setup
OUTPOSTCTL=$ROOT/build/outpostctl
SOCK=$T/ctl/control.sock
CTL="$OUTPOSTCTL -s $SOCK"

write_config() { # control mode, then extra lines for control { }
    e2e_config <<EOF2
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
}
listener p {
    listen = unix:@T@/p.sock
    service = count
}
service count { }
limit rcpt {
    max = 5
    window = 1h
    resolution = 1m
    max_override = 8
}
control {
    socket = @T@/ctl/control.sock
    mode = $1
    $2
}
EOF2
}
write_config 0660 ""
e2e_policy count <<'EOF2'
local A = require "outpost.action"
local limit = require "outpost.limit"
local address = require "site.address"
return function(req)
    local r = assert(limit.add("rcpt", address.subject(req)))
    if r.ok then return A.dunno() end
    return A.defer("4.7.1", "limit of %d reached (%s)", r.max, r.source)
end
EOF2
mkdir -p "$T/ctl"
chmod 711 "$T"
chmod 755 "$T/ctl"
e2e_start || exit 1
ask() { $ASK "unix:$T/p.sock" "$@" | sed -n 's/^action=//p'; }
status_of() { "$@" >/dev/null 2>&1; echo $?; }
quiet() { "$@" >/dev/null; }
json_ok() { "$@" | python3 -c 'import json,sys; json.load(sys.stdin)'; }

check "--help is a man page with EXIT STATUS" bash -c "$OUTPOSTCTL --help | grep -q '^EXIT STATUS'"
check "status: generation and connections" bash -c "$CTL status | grep -q '^generation 1'"
check "status --json" json_ok $CTL --json status
check "--version" bash -c "$OUTPOSTCTL --version | grep -qE '^outpostctl [0-9]+\.[0-9]+'"
check "-c FILE finds the control socket the configuration names" bash -c "$OUTPOSTCTL -c $T/outpost.conf status | grep -q '^generation 1'"
check "--config=FILE too, with options in any order" json_ok $OUTPOSTCTL --json --config=$T/outpost.conf status
check "--socket=SOCKET" bash -c "$OUTPOSTCTL --socket=$SOCK status | grep -q '^generation 1'"
printf 'daemon { state_dir = "%s/ctl" }  # a comment\nlistener "x" { listen = tcp:[::1]:1; service = s }\n' "$T" > "$T/other.conf"
check "-c FILE without control { socket }: STATE_DIR/control.sock" bash -c "$OUTPOSTCTL -c $T/other.conf status | grep -q '^generation 1'"
check "-c with an unreadable file: 2" test "$(status_of $OUTPOSTCTL -c $T/nope.conf status)" = 2

for i in 1 2 3; do ask sasl_username=alice@example.org >/dev/null; done
check "counter show: used 3 of 5" bash -c "$CTL counter show rcpt alice@example.org | grep -qE '^used +3 '"
check "counter show --json" bash -c "$CTL --json counter show rcpt alice@example.org | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"used\"]==3 and d[\"max\"]==5 and d[\"remaining\"]==2 and d[\"source\"]==\"default\", d'"
ask sasl_username=bob@example.org >/dev/null
check "counter top: alice first" bash -c "$CTL counter top rcpt | sed -n 2p | grep -qE '^3 +5 +alice@example.org'"
check "counter top --json, COUNT 1" bash -c "$CTL --json counter top rcpt 1 | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d)==1 and d[0][\"subject\"]==\"alice@example.org\", d'"
check "counter reset" quiet $CTL counter reset rcpt alice@example.org
check "... the counter is 0" bash -c "$CTL counter show rcpt alice@example.org | grep -qE '^used +0 '"

for i in 1 2 3 4 5; do ask sasl_username=carol@example.org >/dev/null; done
check "carol at her limit" test "$(ask sasl_username=carol@example.org)" = "DEFER 4.7.1 limit of 5 reached (default)"
check "limit set raises it without a reload" quiet $CTL limit set rcpt carol@example.org 7 --until +1h --reason "ticket 4711"
check "... the next request passes" test "$(ask sasl_username=carol@example.org)" = DUNNO
check "limit show: who, why, until" bash -c "$CTL limit show | grep -qE '^rcpt carol@example.org max 7 until [0-9-]+ [0-9:]+ UTC; set .* by root: ticket 4711'"
check "limit show --json" bash -c "$CTL --json limit show rcpt | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0][\"who\"]==\"root\" and d[0][\"reason\"]==\"ticket 4711\" and d[0][\"max\"]==7, d'"
check "the override is in the log (audit)" log_has "override rcpt carol@example.org max=7 .* by root: ticket 4711"
check "counter show names the operator as the source" bash -c "$CTL counter show rcpt carol@example.org | grep -qE '^max +7 \(operator\)'"
check "limit clear" quiet $CTL limit clear rcpt carol@example.org
check "... back to the default" test "$(ask sasl_username=carol@example.org)" = "DEFER 4.7.1 limit of 5 reached (default)"
check "limit show with nothing set" bash -c "$CTL limit show | grep -q 'no overrides'"

# --- bad input and exit codes
check "no command: 2" test "$(status_of $CTL)" = 2
check "unknown command: 2" test "$(status_of $CTL frobnicate)" = 2
check "unknown option: 2" test "$(status_of $CTL --frob status)" = 2
check "counter show without a subject: 2" test "$(status_of $CTL counter show rcpt)" = 2
check "limit set without --reason: 2" test "$(status_of $CTL limit set rcpt x@y.org 6)" = 2
check "limit set with a bad MAX: 2" test "$(status_of $CTL limit set rcpt x@y.org many --reason r)" = 2
check "limit set with a bad --until: 2" test "$(status_of $CTL limit set rcpt x@y.org 6 --until tomorrow --reason r)" = 2
out=$($CTL limit set rcpt x@y.org 9 --reason r 2>&1); rc=$?
check "limit set above max_override: 1" test "$rc" = 1
check "... and says so" grep -q 'above max_override 8' <<<"$out"
check "an unknown limit: 1" test "$(status_of $CTL counter show nope x@y.org)" = 1
check "limit clear of nothing: 1" test "$(status_of $CTL limit clear rcpt nobody@y.org)" = 1
check "counter top with a bad COUNT: 2" test "$(status_of $CTL counter top rcpt 0)" = 2
check "an error with --json is JSON too" bash -c "$CTL --json counter show nope x 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"exit\"]==1, d'"
check "no daemon on the socket: 3" test "$(status_of $OUTPOSTCTL -s $T/none.sock status)" = 3

# --- the protocol itself refuses what outpostctl would never send
raw() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()); d=s.recv(200); sys.exit(0 if d.startswith(sys.argv[3].encode()) else 1)' "$SOCK" "$@"; }
check "a request line over 64 KiB is refused" raw "$(head -c 70000 /dev/zero | tr '\0' x)" "error 2 request line too long"
check "a request without the format word is refused" raw $'status\n' "error 2 malformed request"
check "an unknown command over the socket" raw $'text\tfly\n' "error 2 unknown command 'fly'"

# --- reload: success, and the error of a broken config
check "reload prints the new generation" bash -c "$CTL reload | grep -q 'generation 2 is current'"
cp "$T/outpost.conf" "$T/outpost.conf.good"
echo "limit broken { window = 1h }" >> "$T/outpost.conf"
out=$($CTL reload 2>&1); rc=$?
check "a broken reload exits 1" test "$rc" = 1
check "... and prints FILE:LINE and the error" grep -q "outpost.conf:[0-9]*: limit 'broken': missing required key 'max'" <<<"$out"
check "... the running generation keeps serving" test "$(ask sasl_username=dave@example.org)" = DUNNO
cp "$T/outpost.conf.good" "$T/outpost.conf"

# --- the daemon's state is its own
mkdir -p "$T/spec"
cat > "$T/spec/count_spec.lua" <<'EOF2'
local limit = require "outpost.limit"
describe("outpostd test beside a running daemon", function()
    it("counts in a private store", function()
        assert.equal(1, limit.add("rcpt", "zoe@example.org").used)
    end)
end)
EOF2
ask sasl_username=zoe@example.org >/dev/null
check "outpostd test with the daemon's config runs beside it" \
    bash -c "'$OUTPOSTD' test -c '$T/outpost.conf' '$T/spec' 2>&1 | grep -q '^1 passed, 0 failed'"
check "... without touching the daemon's counters" bash -c "$CTL counter show rcpt zoe@example.org | grep -qE '^used +1 '"
check "... nor its control socket" quiet $CTL status
sed -e "s|unix:$T/p.sock|unix:$T/p2.sock|" "$T/outpost.conf" > "$T/second.conf"
"$OUTPOSTD" -c "$T/second.conf" > "$T/second.log" 2>&1
check "a second daemon on the same state refuses to start" grep -qE "in use|lock" "$T/second.log"
check "... and the first keeps its control socket" quiet $CTL status

# --- who may connect
check "nobody cannot connect to a 0660 socket: 4" \
    test "$(status_of setpriv --reuid nobody --regid nogroup --clear-groups $CTL status)" = 4
write_config 0666 ""
$CTL reload >/dev/null
check "reload applied mode 0666" test "$(stat -c %a "$SOCK")" = 666
out=$(setpriv --reuid nobody --regid nogroup --clear-groups $CTL status 2>&1); rc=$?
check "nobody on a 0666 socket is refused by credentials: 4 ($out)" test "$rc" = 4
check "... with a clear message" grep -q 'permission denied' <<<"$out"
check "... and the refusal is logged" log_has "control: refused uid 65534"
write_config 0660 "group = nogroup"
$CTL reload >/dev/null
check "the admin group owns the socket" test "$(stat -c %G "$SOCK")" = nogroup
check "a member of the admin group may" \
    test "$(status_of setpriv --reuid nobody --regid nogroup --clear-groups $CTL status)" = 0
check "... and is named in the audit" bash -c "setpriv --reuid nobody --regid nogroup --clear-groups $CTL limit set rcpt erin@example.org 6 --reason 'by the admin group' >/dev/null && $CTL limit show | grep -q 'by nobody: by the admin group'"

e2e_stop
check "clean exit after SIGTERM, control socket removed" test ! -e "$SOCK"
check_log_clean
e2e_finish

#!/bin/bash
# The daemon as an admin first meets it: command line, check mode, both
# socket kinds, the decision log.
. "$(dirname "$0")/lib.sh"
e2e_setup

check "--help prints a man-page style text" bash -c "'$OUTPOSTD' --help | grep -q '^SYNOPSIS'"
check "--version prints the version" bash -c "'$OUTPOSTD' --version | grep -qE '^outpostd [0-9]+\.[0-9]+'"
check "an unknown option is a usage error (2)" bash -c "'$OUTPOSTD' --frobnicate 2>/dev/null; [ \$? -eq 2 ]"
# The shipped configuration where `make run` starts it: beside the example
# directory's bind password, which make run writes (a copy here, with the
# paths that were relative to conf/ made absolute).
printf 'policyd-secret\n' > "$T/bind.pw"
sed -e "s|\.\./var/example/ldap/bind.pw|$T/bind.pw|" -e "s|= \.\./|= $ROOT/|" -e "s|unix:\.\./|unix:$ROOT/|" \
    -e "s|^daemon {|daemon {\n    lists_dir = $ROOT/conf/lists|" "$ROOT/conf/outpost.conf" > "$T/shipped.conf"
check "--check accepts the shipped configuration" "$OUTPOSTD" --check -c "$T/shipped.conf"
check "--config=FILE is the long form of -c FILE" "$OUTPOSTD" --check --config="$T/shipped.conf"
check "-t is --check" "$OUTPOSTD" -t -c "$T/shipped.conf"
check "-c without a FILE is a usage error (2)" bash -c "'$OUTPOSTD' -c 2>/dev/null; [ \$? -eq 2 ]"
check "a stray argument is a usage error (2)" bash -c "'$OUTPOSTD' --check stray 2>/dev/null; [ \$? -eq 2 ]"

PORT=$((20000 + RANDOM % 20000))
e2e_config <<EOF
listener unix {
    listen = unix:@T@/run/policy.sock
    service = dunno
    tenant = lrz
    socket_mode = 0600
}
listener tcp {
    listen = tcp:127.0.0.1:$PORT
    service = dunno
    allow_context = [other, "other:t1"]
}
service dunno { }
service other {
    policy = other
}
service attrs {
    policy = attrs
}
listener attrs {
    listen = unix:@T@/run/attrs.sock
    service = attrs
}
EOF
e2e_policy attrs <<'EOF'
-- Logs every attribute it got, sorted, so the test sees all of them, and
-- answers with their number.
local A = require "outpost.action"
local outpost = require "outpost"
return function(req)
    local parts = {}
    for k, v in pairs(req.attrs) do parts[#parts + 1] = k .. "=" .. v end
    table.sort(parts)
    outpost.log("info", "attrs: " .. table.concat(parts, ","))
    return A.warn("%d attributes", #parts)
end
EOF
e2e_policy other <<'EOF'
local A = require "outpost.action"
return { on_request = function(req)
    return A.warn("service=%s tenant=%s listener=%s sender=%s", req.service, req.tenant,
        req.listener, req.attrs.sender)
end }
EOF

# --check names the file and line of a mistake.
sed 's/service = dunno/servise = dunno/' "$T/outpost.conf" > "$T/typo.conf"
check "--check reports an unknown key with its line" bash -c \
    "'$OUTPOSTD' --check -c '$T/typo.conf' 2>&1 | grep -qE 'typo.conf:[0-9]+:.*servise'"
check "--check exits non-zero on a mistake" bash -c "! '$OUTPOSTD' --check -c '$T/typo.conf' 2>/dev/null"

# --check fails on whatever a start would fail on (or every request would
# answer its default action for), at the key's own line.
refused() { # what, the config's tail, pattern of the message
    { cat "$T/outpost.conf"; printf '%s\n' "$2"; } > "$T/broken.conf"
    check "--check refuses $1" bash -c \
        "! out=\$('$OUTPOSTD' --check -c '$T/broken.conf' 2>&1) && grep -qE -- \"\$2\" <<<\"\$out\" || { echo \"#   \$out\"; false; }" _ "$3"
}
N=$(($(wc -l < "$T/outpost.conf") + 1)) # the first line of the tail
refused "an unbalanced filter template" 'directory { user_filter = "(&(uid=%s)(objectClass=person)" }' \
    "broken.conf:$N: directory: user_filter: unbalanced '\('"
refused "an unknown placeholder" 'directory { address_filter = "(mail=%a)" }' \
    "broken.conf:$N: directory: address_filter: unknown placeholder '%a'"
refused "an LDAP URI of another scheme" 'ldap { uris = ["https://ldap.example.org/"] }' \
    "broken.conf:$N: ldap: uris: 'https://ldap.example.org/': unsupported scheme"
refused "an unreadable bind_password_file" "ldap {
    uris = [ldap://127.0.0.1:1/]
    bind_password_file = $T/no-such.pw
}" "broken.conf:$((N + 2)): ldap: bind_password_file $T/no-such.pw is not readable"
refused "a missing ca_file" 'ldap { uris = [ldaps://127.0.0.1:1/]; ca_file = /nonexistent/ca.pem }' \
    "broken.conf:$N: ldap: ca_file /nonexistent/ca.pem is not readable"
sed 's|^daemon {|daemon {\n    user = no-such-user-x|' "$T/outpost.conf" > "$T/user.conf"
check "--check refuses an unknown user at its line" bash -c \
    "'$OUTPOSTD' --check -c '$T/user.conf' 2>&1 | grep -q 'user.conf:2: daemon: user .no-such-user-x. does not exist'"
sed "s|unix:$T/run/policy.sock|unix:$T/bind.pw/run/policy.sock|" \
    "$T/outpost.conf" > "$T/sock.conf"
check "--check refuses a socket whose directory cannot be made" bash -c \
    "'$OUTPOSTD' --check -c '$T/sock.conf' 2>&1 | grep -qE 'sock.conf:[0-9]+: listener .unix.: the directory of the socket .* cannot be created'"

e2e_start || exit 1

check "answers DUNNO on the unix socket" bash -c "$ASK unix:$T/run/policy.sock | grep -qx 'action=DUNNO'"
check "answers DUNNO over TCP" bash -c "$ASK tcp:127.0.0.1:$PORT | grep -qx 'action=DUNNO'"
check "policy_context selects an allowed service" bash -c \
    "$ASK tcp:127.0.0.1:$PORT policy_context=other sender=a@b.example | grep -qx 'action=WARN service=other tenant= listener=tcp sender=a@b.example'"
check "policy_context SERVICE:TENANT selects the service with that tenant" bash -c \
    "$ASK tcp:127.0.0.1:$PORT policy_context=other:t1 sender=a@b.example | grep -qx 'action=WARN service=other tenant=t1 listener=tcp sender=a@b.example'"
check "... and the decision line names that tenant" \
    log_has 'decision req=[0-9]+ service=other tenant=t1 .*action="?WARN service=other tenant=t1'
check "policy_context equal to the listener's service is that service" bash -c \
    "$ASK tcp:127.0.0.1:$PORT policy_context=dunno | grep -qx 'action=DUNNO'"
# A context the listener does not list: answered 4xx, never by the
# listener's own service (today's DUNNO) or any other.
check "an unlisted policy_context is answered 4xx, by no policy" bash -c \
    "$ASK tcp:127.0.0.1:$PORT policy_context=nosuch | grep -qx 'action=451 4.3.5 policy service: unknown policy_context'"
for i in 1 2 3; do $ASK tcp:127.0.0.1:$PORT policy_context=nosuch >/dev/null; done
$ASK tcp:127.0.0.1:$PORT policy_context=other:lrz >/dev/null
check "... logged once per value per minute, however often it comes" bash -c \
    "[ \$(grep -c 'listener tcp: connection .*: policy_context \"nosuch\" is not in allow_context; answering \"451 4.3.5' '$T/daemon.log') = 1 ]"
check "... each distinct value gets its own line" \
    grep -q 'policy_context "other:lrz" is not in allow_context' "$T/daemon.log"
check "the unix socket has the configured mode" bash -c "[ \$(stat -c %a '$T/run/policy.sock') = 600 ]"
check "the state directory was created" test -d "$T/state"
$ASK unix:$T/run/policy.sock sasl_username=alice sender=s@example.org recipient=r@example.net >/dev/null
check "a decision line names service, tenant, client, user, sender, rcpt, action, check, time" \
    log_has 'decision req=[0-9]+ service=dunno tenant=lrz client=127.0.0.1 sasl_user=alice sender=s@example.org rcpt=r@example.net action=DUNNO check=- reason=policy elapsed_us=[0-9]+ gen=1'
check "attribute values with spaces reach Lua intact" bash -c \
    "$ASK tcp:127.0.0.1:$PORT policy_context=other 'sender=x y@z' | grep -qx 'action=WARN service=other tenant= listener=tcp sender=x y@z'"

# A request exactly as Postfix 3.7 sends it at RCPT time after STARTTLS+AUTH.
POSTFIX_REQUEST='request=smtpd_access_policy
protocol_state=RCPT
protocol_name=ESMTP
client_address=192.0.2.10
client_name=mua.example.org
client_port=44638
reverse_client_name=mua.example.org
server_address=127.0.0.1
server_port=587
helo_name=laptop
sender=alice@example.org
recipient=bob@example.net
recipient_count=0
queue_id=
instance=583a.6b0a6fe8.6ec56.0
size=0
etrn_domain=
stress=
sasl_method=PLAIN
sasl_username=alice@example.org
sasl_sender=
ccert_subject=
ccert_issuer=
ccert_fingerprint=
ccert_pubkey_fingerprint=
encryption_protocol=TLSv1.3
encryption_cipher=TLS_AES_256_GCM_SHA384
encryption_keysize=256
policy_context=attrs
'
want="attrs: $(printf '%s' "$POSTFIX_REQUEST" | LC_ALL=C sort | paste -sd, -)"
got=$(printf '%s\n' "$POSTFIX_REQUEST" | $RAW "unix:$T/run/attrs.sock" --wait 1 | sed -n 1p)
check "a real Postfix 3.7 request is answered" test "$got" = "b'action=WARN 29 attributes\\n\\n'"
check "all 29 of its attributes reach Lua with their values" grep -qF -- "$want" "$T/daemon.log"

check "a second daemon on the same socket is refused" bash -c \
    "! timeout 5 '$OUTPOSTD' -c '$T/outpost.conf' 2>&1 | grep -q 'ready:'"
check "SIGTERM stops it with status 0" e2e_stop
check "the unix socket is removed on exit" test ! -e "$T/run/policy.sock"
check_log_clean
e2e_finish

#!/bin/bash
# outpostctl explain and outpostd ask --dry-run (docs/operations.md,
# "Explain"): a request run through the running daemon's current generation
# in dry-run mode.  Every check of postout listed in order with its id and
# mode; the limit's verdict and the count it saw, and the counter the same
# afterwards; a lookup from the server first, from the cache the second
# time; a transaction link never written; a file of Postfix request dumps
# (one explanation per block); malformed input refused with exit status 2.
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
# shellcheck source=spec/e2e/postout_rig.sh
. "$ROOT/spec/e2e/postout_rig.sh"
e2e_setup
postout_alone_conf | e2e_config
e2e_start || { e2e_finish; exit 1; }

CTL="$ROOT/build/outpostctl -s $T/state/control.sock"
P=unix:$T/postout.sock
BASE=(request=smtpd_access_policy encryption_protocol=TLSv1.3 sasl_method=PLAIN
    client_address=192.0.2.10 client_port=4711)
RCPT=("${BASE[@]}" protocol_state=RCPT)

# carol is held at 2 by an operator and has sent 2: the limit refuses her.
$CTL limit set postout_rcpt carol 2 --reason "e2e explain" >/dev/null
for i in 1 2; do
    $ASK "$P" "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
        recipient="r$i@withmx.test" instance="e2e.carol.$i" >/dev/null
done
$ASK "$P" "${BASE[@]}" protocol_state=DATA sasl_username=carol sender=carol@example.org \
    recipient= instance=e2e.carol.1 recipient_count=2 >/dev/null
before=$($CTL counter show postout_rcpt carol)
echo "$before" | sed 's/^/#   /'

out=$($CTL explain --service postout "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
    recipient=dave@withmx.test instance=e2e.explain.1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "explain exits 0" test "$rc" = 0
check "the final answer is what Postfix would get: PO7's 452 4.5.3" \
    grep -qE '^action=452 4\.5\.3 you have reached your limit of 2 recipients' <<<"$out"
check "the limit's step shows its verdict and the count it saw" \
    grep -qE 'limit reserve postout_rcpt carol n=1 \[store.*would refuse: 2 used of 2 \(operator\)' <<<"$out"
check "PO7 is the check that answered, in enforce mode" grep -qE '^PO7 +enforce +answer ' <<<"$out"
after=$($CTL counter show postout_rcpt carol)
check "the counter is unchanged afterwards (counter show before = after)" test "$before" = "$after"
check "... and shows used 2" grep -q '^used       2 ' <<<"$after"

# every check of postout, in the policy's order, with its id
ids=$(grep -oE '^(PO[0-9]|G[0-9]) ' <<<"$out" | tr -d ' ' | paste -sd,)
check "every check of postout listed in order (got $ids)" test "$ids" = PO1,PO2,PO3,PO4,PO5,PO6,PO7,PO8,G3,G4
check "the end-of-message checks say why they did not run" \
    grep -qE '^PO8 +enforce +skipped' <<<"$out"

# a lookup: from the server the first time, from the cache the second
a=$($CTL explain --service postout "${RCPT[@]}" sasl_username=alice sender=alice@example.org \
    recipient=someone@target.test instance=e2e.explain.2)
echo "$a" | grep -E 'dns|ldap' | sed 's/^/#   /'
b=$($CTL explain --service postout "${RCPT[@]}" sasl_username=alice sender=alice@example.org \
    recipient=someone@target.test instance=e2e.explain.3)
check "a DNS lookup comes from the server the first time" \
    grep -qE 'dns mx target\.test \[server, ' <<<"$a"
check "... and from the cache the second time" \
    grep -qE 'dns mx target\.test \[cache, ' <<<"$b"
check "the LDAP search for alice is traced with its source" \
    grep -qE 'ldap .*alice.* \[(server|cache), .*1 entry' <<<"$a"
check "a passing request answers DUNNO" grep -qx 'action=DUNNO' <<<"$b"
check "alice's reservation was only peeked (would add 1, not added)" \
    grep -qE 'limit reserve postout_rcpt alice n=1 .*would pass: 0 used of .*would add 1 \(not added: dry run\)' <<<"$b"
check "alice's counter is untouched" bash -c "$CTL counter show postout_rcpt alice | grep -q '^used       0 '"

# JSON for machines
j=$($CTL --json explain --service postout "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
    recipient=dave@withmx.test instance=e2e.explain.4)
check "--json is one JSON document with checks in order and the answer" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["dry_run"] is True and d["service"] == "postout"
ids = [c["id"] for c in d["checks"]]
assert ids[:7] == ["PO1","PO2","PO3","PO4","PO5","PO6","PO7"], ids
po7 = d["checks"][6]
assert po7["verdict"] == "answer" and po7["mode"] == "enforce"
lim = [s for s in po7["steps"] if s["kind"] == "limit"][0]
assert lim["would"] == "refuse" and lim["used"] == 2 and lim["max"] == 2 and lim["would_add"] == 1, lim
assert d["answer"]["check"] == "PO7" and d["answer"]["action"].startswith("452 4.5.3")
' "$j"

# a file of Postfix request dumps: two blocks, two explanations
cat > "$T/two.req" <<EOF
# a request Postfix sent (spec/replay/ keeps such files)
request=smtpd_access_policy
protocol_state=RCPT
encryption_protocol=TLSv1.3
sasl_username=alice
sender=alice@example.org
recipient=bbo@example.org
instance=e2e.file.1
client_address=192.0.2.10

request=smtpd_access_policy
protocol_state=RCPT
sasl_username=alice
sender=alice@example.org
recipient=bob@example.org
instance=e2e.file.2
client_address=192.0.2.10
EOF
f=$($CTL explain --service postout -f "$T/two.req")
rc=$?
check "a file of two requests: exit 0" test "$rc" = 0
check "... two explanations" test "$(grep -c '^action=' <<<"$f")" = 2
check "... the first: PO6, no mailbox bbo@" grep -qE '^action=550 5\.1\.1 there is no mailbox <bbo@example\.org>' <<<"$f"
check "... the second: PO1, not encrypted" grep -qE '^action=530 5\.7\.10 ' <<<"$f"
s=$($CTL explain --service postout -f - < "$T/two.req" | grep -c '^action=')
check "the same from stdin (-f -)" test "$s" = 2
r=$($CTL explain --service postout -f "$ROOT/spec/replay/postout/good-transaction.req" | grep -c '^action=')
check "a recorded transaction of spec/replay/ (5 requests) explained request by request" test "$r" = 5

# malformed input
printf 'request=smtpd_access_policy\nthis line has no equals sign\n\n' > "$T/bad.req"
err=$($CTL explain --service postout -f "$T/bad.req" 2>&1 >/dev/null)
rc=$?
check "a malformed dump: exit status 2" test "$rc" = 2
check "... naming the file and line" grep -q "bad.req:2: not NAME=VALUE" <<<"$err"
err=$($CTL explain --service postout sender 2>&1 >/dev/null)
rc=$?
check "a word that is no NAME=VALUE: exit status 2" test "$rc" = 2
err=$($CTL explain --service nosuch sender=a@b 2>&1 >/dev/null)
rc=$?
check "an unknown service: exit status 1, said plainly" \
    bash -c "test $rc = 1 && grep -q \"no service 'nosuch'\" <<<\"\$1\"" _ "$err"
err=$($CTL explain 2>&1 >/dev/null)
check "no request at all: exit status 2" test $? = 2

# nothing an explain did reached the counters or the decision log
check "no decision line for an explain (they are not answers to Postfix)" \
    bash -c "! grep -q 'decision .*instance=e2e.explain' '$T/daemon.log'"
check "each explain is logged as a dry run" log_has "explain req=[0-9]+ service=postout .*\(dry run\)"
check "carol's counter is still what it was" test "$before" = "$($CTL counter show postout_rcpt carol)"

# outpostd ask --dry-run: the same without the daemon, beside it or alone
DRY=("$OUTPOSTD" ask --dry-run -c "$T/outpost.conf" --service postout)
d=$("${DRY[@]}" "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
    recipient=dave@withmx.test instance=e2e.dry.1 2>"$T/dry.err")
rc=$?
sed 's/^/#   /' "$T/dry.err"
check "ask --dry-run while the daemon runs and holds the store: exit 0" test "$rc" = 0
check "... PO7's verdict and the count it read from the held store" \
    grep -qE 'limit reserve postout_rcpt carol n=1 \[store.*would refuse: 2 used of 2 \(operator\)' <<<"$d"
check "... the action line" grep -qE '^action=452 4\.5\.3 ' <<<"$d"
check "... the daemon's counter is unchanged" test "$before" = "$($CTL counter show postout_rcpt carol)"
check "... and the daemon still answers" \
    bash -c "$ASK $P ${RCPT[*]} sasl_username=alice sender=alice@example.org recipient=x@withmx.test instance=e2e.after | grep -qx action=DUNNO"
check "SIGTERM stops it with status 0" e2e_stop
d=$("${DRY[@]}" "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
    recipient=dave@withmx.test instance=e2e.dry.2 2>/dev/null)
check "ask --dry-run with the daemon stopped: the same verdict and count" \
    grep -qE 'would refuse: 2 used of 2 \(operator\)' <<<"$d"
two=$("${DRY[@]}" -f "$T/two.req" 2>/dev/null | grep -c '^action=')
check "ask --dry-run -f: one explanation per request of the dump" test "$two" = 2
"${DRY[@]}" -f "$T/bad.req" >/dev/null 2>&1
check "ask --dry-run, a malformed dump: exit status 2" test $? = 2
sed "s|^limit postout_rcpt {|counters {\n    path = $T/no-store\n}\nlimit postout_rcpt {|" \
    "$T/outpost.conf" > "$T/nostore.conf"
d=$("$OUTPOSTD" ask --dry-run -c "$T/nostore.conf" --service postout "${RCPT[@]}" \
    sasl_username=carol sender=carol@example.org recipient=dave@withmx.test instance=e2e.dry.3 \
    2>"$T/dry.err")
rc=$?
sed 's/^/#   /' "$T/dry.err"
check "without a store to read: it says the counts are not available" \
    grep -q "the counts are not available" "$T/dry.err"
check "... the limit is reported as not evaluated, not guessed (exit $rc)" \
    grep -qE 'limit reserve postout_rcpt carol n=1 \[none.*not evaluated' <<<"$d"
check "... and the read-only open made no store" test ! -e "$T/no-store"
check_log_clean

# The same on Redis: a daemon counts there, ask --dry-run reads beside it
# and changes no key (its reservation sweep does not run).
RP="explain-e2e-$$:"
rkeys() { # every key of the prefix with its content, sorted
    local k
    for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern "$RP*" | sort); do
        echo "$k $(redis-cli -p "$REDIS_PORT" --raw DUMP "$k" | od -An -tx1 | tr -d ' \n')"
    done
}
rclean() { redis-cli -p "$REDIS_PORT" --scan --pattern "$RP*" | xargs -r redis-cli -p "$REDIS_PORT" DEL >/dev/null; }
trap 'rclean; e2e_cleanup' EXIT
cat >> "$T/outpost.conf" <<EOF
counters {
    backend = redis
}
redis {
    servers = [127.0.0.1:$REDIS_PORT]
    prefix = "$RP"
}
EOF
rm -rf "$T/state"
e2e_start || { e2e_finish; exit 1; }
$CTL limit set postout_rcpt carol 2 --reason "e2e explain on redis" >/dev/null
for i in 1 2; do
    $ASK "$P" "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
        recipient="r$i@withmx.test" instance="e2e.redis.$i" >/dev/null
done
before=$($CTL counter show postout_rcpt carol)
keys_before=$(rkeys)
d=$("${DRY[@]}" "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
    recipient=dave@withmx.test instance=e2e.redis.dry 2>"$T/dry.err")
rc=$?
sed 's/^/#   /' "$T/dry.err"
check "ask --dry-run on Redis beside the daemon: exit 0" test "$rc" = 0
check "... PO7's verdict and the count it read from Redis" \
    grep -qE 'limit reserve postout_rcpt carol n=1 \[store.*would refuse: 2 used of 2 \(operator\)' <<<"$d"
check "... no Redis key changed (DUMP of every key before = after; $(wc -l <<<"$keys_before") keys)" \
    test "$keys_before" = "$(rkeys)"
c=$($CTL explain --service postout "${RCPT[@]}" sasl_username=carol sender=carol@example.org \
    recipient=dave@withmx.test instance=e2e.redis.explain)
check "outpostctl explain on Redis: the same verdict and count" \
    grep -qE 'would refuse: 2 used of 2 \(operator\)' <<<"$c"
check "... no Redis key changed" test "$keys_before" = "$(rkeys)"
check "... the counter is unchanged" test "$before" = "$($CTL counter show postout_rcpt carol)"
check "SIGTERM stops the Redis daemon with status 0" e2e_stop
check_log_clean
e2e_finish

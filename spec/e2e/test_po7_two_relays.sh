#!/bin/bash
# PO7 through two postout relays that share one Redis (OP7, issue 16), as a
# campus runs them: two real Postfix instances built from
# conf/postfix/postout/ (STARTTLS + SASL AUTH on the submission port), each
# asking its own outpostd (the shipped postout service and limit, the
# harness's slapd and unbound), both outpostd counting on one redis-server
# of the test's own (counters { backend = redis }).  alice submits through
# both relays with swaks; her PO7 limit is L (the round's directory { }
# with default_limit = L: alice has no tier of her own in either fixture).
#
#   swaks --> relay A (Postfix, POSTFIX_BASE_PORT+5) --> outpostd a --\
#                                                                      +--> redis-server
#   swaks --> relay B (Postfix, POSTFIX_BASE_PORT+6) --> outpostd b --/    (REDIS_E2E_PORT)
#
# Asserted: exactly L recipients accepted in total across the relays, the
# (L+1)-th refused at RCPT with PO7's 452 4.5.3 on whichever relay it
# came to, the decision line naming PO7 in that relay's outpostd; a session
# on relay B that quits after RCPT holds its reservations (relay A refuses)
# until reservation_timeout gives them back, while what DATA committed
# stays; an override set on one node holds on both (these two in the first
# round only: see aborted_session); 6 sessions at once over both relays
# still get exactly L.  Each round (lib.sh: E2E_FIXTURES, attrs then
# groups, with the round's policy endpoint) on a fresh Redis prefix.
# Then the control round: the same sum and race with each node on its own
# RocksDB (counters { backend = rocksdb }, as before issue 16): the two
# relays together accept more than L, so the exact-sum checks above fail
# where nodes count separately.  docs/testing.md, "PO7 on two relays".
. "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
. "$ROOT/build/harness/env"
# shellcheck disable=SC1091
. "$ROOT/spec/e2e/redis_rig.sh"
e2e_setup
redis_rig_setup
# shellcheck disable=SC1091
. "$ROOT/spec/e2e/postfix.sh"

# OUTPOST_E2E_BACKEND=rocksdb runs the rounds on separate stores, as before
# issue 16: their exact-sum checks then fail (the control round shows why)
BACKEND=${OUTPOST_E2E_BACKEND:-redis}
L=10                                  # alice's PO7 limit in this test
RTO=10                                # counters { reservation_timeout }, s: the hold
                                      # must outlast a few swaks sessions on a loaded machine
RA_PORT=$((POSTFIX_BASE_PORT + 5))   # relay A's submission port
RB_PORT=$((POSTFIX_BASE_PORT + 6))   # relay B's
PF_A=$T/pf-a
PF_B=$T/pf-b
mkdir -p "$T/a" "$T/b" "$T/lists"
cp "$ROOT"/conf/lists/*.txt "$T/lists/"

redis_start "$T/redis" "$REDIS_E2E_PORT" || exit 1
RIG_PIDS+=" $(cat "$T/redis/redis.pid")"

# relay NAME: PF, PF_PORT and the policy endpoint (lib.sh, on a
# one-endpoint round) of relay NAME and its node
relay() {
    case $1 in
    a) PF=$PF_A PF_PORT=$RA_PORT ;;
    b) PF=$PF_B PF_PORT=$RB_PORT ;;
    esac
    ENDPOINT_DIR=$T/$1   # lib.sh: endpoint_address
}

# A postout relay: the shipped main.cf (its node's milter socket, this
# instance's certificate) and the shipped submission service on the relay's
# port, unchrooted (the private queue has no chroot tree).
relay_up() { # NAME
    relay "$1"
    pf_setup "$PF" "relay-$1.postout.test"
    redis_rig_trap
    {
        sed "s|^smtpd_milters = inet:127.0.0.1:10046|smtpd_milters = unix:$T/$1/milter.sock|" \
            "$ROOT/conf/postfix/postout/main.cf"
        printf 'smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\n' "$PF/etc/cert.pem" "$PF/etc/key.pem"
    } >> "$PF/etc/main.cf"
    grep -q "^smtpd_milters = unix:$T/$1/milter.sock" "$PF/etc/main.cf" || { echo "no milter line"; return 1; }
    pf_sasl_user alice@example.org alice-secret
    sed -n '/^submission /,/^[^ ]/p' "$ROOT/conf/postfix/postout/master.cf" | sed '$d' |
        sed "s|^submission inet n - y - - smtpd|127.0.0.1:$PF_PORT inet n - n - - smtpd|" > "$PF/etc/master.cf"
    grep -q "^127.0.0.1:$PF_PORT inet" "$PF/etc/master.cf" || { echo "no submission in master.cf"; return 1; }
    pf_policy_round postout_policy unix:private/outpost || return 1
    pf_start || return 1
    # stopped by PID on exit too, should its directory be gone by then
    RIG_PIDS+=" $(cat "$PF/queue/pid/master.pid")"
}
# pf_setup's trap stops only the last instance: the rig's stops both
# shellcheck disable=SC2016
RIG_CLEANUP_EXTRA='PF=$PF_A; pf_stop; PF=$PF_B; pf_stop'
# how long each phase took, as comment lines (where the time goes)
PHASE_T0=${EPOCHREALTIME/./}
phase() {
    local now=${EPOCHREALTIME/./}
    printf '# %s%s: %d ms\n' "$(fixture_tag)" "$1" $(((now - PHASE_T0) / 1000))
    PHASE_T0=$now
}
relay_up a || exit 1
relay_up b || exit 1
phase "Redis and both relays started"

# outpostd of relay NAME: the shipped postout service and limit, its
# listener in its relay's private/ (or its own one endpoint), its milter
# on a socket of its own, the round's directory { } with alice's limit L.
node_up() { # NAME BACKEND
    relay "$1"
    pf_policy_round postout_policy unix:private/outpost || return 1
    {
        cat <<EOF
daemon {
    state_dir = @T@/$1/state
    lua_dir = @T@/lua
    lists_dir = @T@/lists
}
EOF
        policy_listener <<EOF
listener postout {
    listen = unix:$PF/queue/private/outpost
    service = postout
    allow_context = [postout]
    socket_mode = 0666
}
EOF
        cat <<EOF
listener postout-milter {
    listen = unix:$T/$1/milter.sock
    protocol = milter
    service = postout
    socket_mode = 0666
}
dns {
    servers = [127.0.0.1:$DNS_PORT]
    timeout = 500ms
    tries = 1
}
counters {
    backend = $2
    reservation_timeout = ${RTO}s
}
EOF
        node_redis_section "e2e-$$-$FIXTURE:"
        harness_sections ldap
        sed -n '/^service postout {/,/^}/p; /^limit postout_rcpt {/,/^}/p' "$ROOT/conf/outpost.conf"
        fixture_directory | sed -E "s/^( *default_limit = ).*/\1$L/"
    } | e2e_config
    grep -q "default_limit = $L\$" "$T/outpost.conf" || { echo "no default_limit in the directory"; return 1; }
    # $T/outpost.conf stays: endpoint_listener_check reads the last node's
    cp "$T/outpost.conf" "$T/$1.conf"
    node_start "$1"
}

# send RELAY ARGS...: alice through the relay's submission port (STARTTLS,
# AUTH); ARGS add --to, --quit-after, ...; prints swaks's dialogue
send() {
    local port=$RA_PORT
    [ "$1" = b ] && port=$RB_PORT
    shift
    swaks --server 127.0.0.1 --port "$port" --tls --helo client.example.org \
        --auth PLAIN --auth-user alice@example.org --auth-password alice-secret \
        --from alice@example.org "$@" 2>&1
}
rcpts() { seq -f "$1%g@withmx.test" "$2" "$3" | paste -sd, -; }
n_accepted() { grep -c '^<~  250 2\.1\.5' <<<"$1"; }
# all of OUT's first N recipients accepted, the message queued
accepted_queued() { [ "$(n_accepted "$2")" = "$1" ] && grep -qE '^<~  250 2\.0\.0 Ok: queued' <<<"$2"; }
refused_po7() { # OUT MAX RCPT: RCPT got PO7's 452 4.5.3 naming MAX
    grep -qE "^<~\* 452 4\.5\.3 <$3>: .*you have reached your limit of $2 recipients per 24 hours; the next recipient can be sent from " <<<"$1"
}
# decided by PO7 in NODE's log (this round's)
po7_on() { grep -qE "decision .*sasl_user=alice@example.org .*rcpt=$2 .*check=PO7" "$T/$1.log"; }
# deliveries to recipients matching ERE in both sinks, once both queues are empty
sink() {
    local n=0 p
    for p in "$PF_A" "$PF_B"; do PF=$p pf_drained 10 >/dev/null; done
    sleep 0.2
    for p in "$PF_A" "$PF_B"; do n=$((n + $(PF=$p pf_delivered_re "$1"))); done
    echo "$n"
}
dialogue() { grep -E '^(<~|<\*\*|<~\*|\*\*\*)' <<<"$1" | tail -"${2:-4}" | sed 's/^/#   /'; }

# --- the sum, one relay after the other: A 4, B 4, A 3 (2 + the 11th), B 1
sum_sequence() {
    S1=$(send a --to "$(rcpts s 1 4)")
    S2=$(send b --to "$(rcpts s 5 8)")
    S3=$(send a --to "$(rcpts s 9 11)")
    S4=$(send b --to s12@withmx.test)
    SUM_A=$(($(n_accepted "$S1") + $(n_accepted "$S3")))
    SUM_B=$(($(n_accepted "$S2") + $(n_accepted "$S4")))
}

# --- six sessions at once, three per relay, four recipients each (24 > L)
race() { # PREFIX
    local i pids=()
    for i in 1 2 3 4 5 6; do
        local r=a
        ((i % 2)) || r=b
        send $r --to "$(rcpts "$1$i-" 1 4)" > "$T/race-$1$i.$r" &
        pids+=($!)
    done
    wait "${pids[@]}"
    RACE_ACC=$(cat "$T"/race-"$1"?.? | grep -c '^<~  250 2\.1\.5')
    RACE_PO7=$(cat "$T"/race-"$1"?.? | grep -cE '^<~\* 452 4\.5\.3 ')
}

round_end() { # stop both nodes (clean exit), keep their logs, empty the sinks
    local n
    for n in a b; do
        node_stop $n
        check "node $n: clean exit after SIGTERM" test $? = 0
        mv "$T/$n.log" "$T/$n.log.$1"
        rm -rf "$T/$n/state"
    done
    for n in "$PF_A" "$PF_B"; do PF=$n pf_drained 10 >/dev/null; : > "$n/log/maillog"; done
}

# --- the reservations of a session that quits before DATA, across relays
aborted_session() {
    # --- the operator raises alice to 2L on node a; relay B enforces it
    node_ctl a limit set postout_rcpt alice $((2 * L)) --reason "e2e: two relays" >/dev/null
    check "an override set on node a: node b reports max $((2 * L)) (operator)" \
        bash -c "$ROOT/build/outpostctl -s $T/b/state/control.sock counter show postout_rcpt alice | grep -qE '^max +$((2 * L)) \(operator\)'"
    # --- a session on relay B reserves the next L and quits before DATA
    # (the checks while they hold come first, well within reservation_timeout)
    t0=$(date +%s%3N)
    Q=$(send b --to "$(rcpts q 1 $L)" --quit-after RCPT)
    O=$(send a --to q-held@withmx.test)
    held=$(node_used a postout_rcpt alice)-$(node_counter a postout_rcpt alice reserved)
    t1=$(date +%s%3N)
    check "relay B: $L more recipients accepted at RCPT, then QUIT before DATA" \
        test "$(n_accepted "$Q")" = $L
    if refused_po7 "$O" $((2 * L)) q-held@withmx.test; then ok "relay A: refused while relay B's reservations hold (452 4.5.3, limit of $((2 * L)))"
    else not_ok "relay A: refused while relay B's reservations hold (452 4.5.3, limit of $((2 * L)))"; dialogue "$O"; fi
    check "... decided by PO7 on node a" po7_on a 'q-held@withmx\.test'
    check "... node a counts $((2 * L)), of which $L reserved (got $held; $((t1 - t0)) ms after the session began)" \
        test "$held" = "$((2 * L))-$L"
    # reservation_timeout gives the aborted session's recipients back (the
    # sweep of either node); what DATA committed stays
    until [ "$(node_used a postout_rcpt alice)" = $L ] || [ "$(date +%s%3N)" -gt $((t0 + RTO * 1000 + 20000)) ]; do
        sleep 0.2
    done
    t1=$(date +%s%3N)
    check "after reservation_timeout (${RTO} s) the $L reserved are given back: node a counts $L ($((t1 - t0)) ms after the session began)" \
        test "$(node_used a postout_rcpt alice)-$(node_counter a postout_rcpt alice reserved)" = "$L-0"
    check "... by one node's sweep, logged once" \
        test "$(cat "$T/a.log" "$T/b.log" | grep -c "counters: released $L of postout_rcpt for alice (instance ")" = 1
    check "... the $L committed at DATA were not given back" test "$(node_used b postout_rcpt alice)" = $L
    O=$(send a --to "$(rcpts r 1 $((L + 1)))")
    check "relay A: the freed $L accepted, queued" \
        accepted_queued $L "$O"
    check "... the one past them refused by PO7 (452 4.5.3)" refused_po7 "$O" $((2 * L)) "r$((L + 1))@withmx.test"
    n=$(sink '(q[0-9]+|q-held|r[0-9]+)@withmx\.test')
    check "... $L delivered; nothing of the aborted session nor the refused (got $n)" test "$n" = $L
    O=$(send b --to q-last@withmx.test)
    check "relay B: full at $((2 * L)) as well (452 4.5.3)" refused_po7 "$O" $((2 * L)) q-last@withmx.test
    check "... decided by PO7 on node b" po7_on b 'q-last@withmx\.test'
    phase "the reservations of an aborted session"
}

redis_round() {
    node_up a "$BACKEND" || { not_ok "node a starts"; return; }
    endpoint_listener_check
    node_up b "$BACKEND" || { not_ok "node b starts"; return; }
    endpoint_listener_check
    for n in a b; do relay $n; pf_endpoint_check postout_policy postout; done
    phase "both nodes started"

    sum_sequence
    check "relay A: alice's first 4 recipients accepted, queued" \
        accepted_queued 4 "$S1"
    check "relay B: the next 4 accepted, queued" \
        accepted_queued 4 "$S2"
    check "relay A: recipients 9 and 10 accepted, the message queued" \
        accepted_queued 2 "$S3"
    if refused_po7 "$S3" $L s11@withmx.test; then ok "relay A: the 11th recipient in total gets 452 4.5.3 at RCPT, naming the limit of $L"
    else not_ok "relay A: the 11th recipient in total gets 452 4.5.3 at RCPT, naming the limit of $L"; dialogue "$S3"; fi
    check "... decided by PO7 on node a" po7_on a 's11@withmx\.test'
    if refused_po7 "$S4" $L s12@withmx.test; then ok "relay B: the 12th gets 452 4.5.3 too"
    else not_ok "relay B: the 12th gets 452 4.5.3 too"; dialogue "$S4"; fi
    check "... decided by PO7 on node b" po7_on b 's12@withmx\.test'
    check "... and node b did not answer for relay A, nor node a for relay B" \
        bash -c "! grep -q 'rcpt=s11@' '$T/b.log' && ! grep -q 'rcpt=s12@' '$T/a.log'"
    check "exactly L = $L recipients accepted across both relays (A $SUM_A + B $SUM_B)" \
        test $((SUM_A + SUM_B)) = $L
    n=$(sink 's[0-9]+@withmx\.test')
    check "... and exactly $L delivered by the two relays together (got $n)" test "$n" = $L
    check "both nodes' outpostctl: alice used $L, none reserved (committed at DATA)" \
        test "$(node_used a postout_rcpt alice)-$(node_used b postout_rcpt alice)-$(node_counter a postout_rcpt alice reserved)" = "$L-$L-0"

    phase "the sum in sequence"
    # the reservations of an aborted session: in the first round only (the
    # sweep of reservation_timeout, which gives them back, is the counters'
    # alone: neither the directory nor the policy endpoint of a round has a
    # part in it, and each round would wait reservation_timeout for it)
    [ "$FIXTURE" = "${E2E_FIXTURES%% *}" ] && aborted_session
    node_ctl b limit clear postout_rcpt alice >/dev/null 2>&1
    node_ctl b counter reset postout_rcpt alice >/dev/null
    check "override cleared and counter reset on node b: node a counts 0" \
        test "$(node_used a postout_rcpt alice)" = 0

    # --- six sessions at once over both relays
    race c
    check "6 sessions at once (3 per relay, 24 recipients): exactly $L accepted (got $RACE_ACC)" \
        test "$RACE_ACC" = $L
    check "... the other $((24 - L)) refused by PO7 with 452 4.5.3 (got $RACE_PO7)" \
        test "$RACE_PO7" = $((24 - L))
    n=$(sink 'c[0-9]-[0-9]+@withmx\.test')
    check "... exactly $L delivered (got $n)" test "$n" = $L
    check "... both nodes count $L" \
        test "$(node_used a postout_rcpt alice)-$(node_used b postout_rcpt alice)" = "$L-$L"
    phase "six sessions at once"
    round_end "$FIXTURE"
    phase "both nodes stopped"
}

for FIXTURE in $E2E_FIXTURES; do redis_round; done

# --- the control round: each node on its own RocksDB (before issue 16) -------
FIXTURE=attrs
node_up a rocksdb || not_ok "rocksdb: node a starts"
node_up b rocksdb || not_ok "rocksdb: node b starts"
sum_sequence
check "rocksdb, separate stores: the same sequence accepts more than L = $L (A $SUM_A + B $SUM_B): the exact-sum check fails there" \
    test $((SUM_A + SUM_B)) -gt $L
check "... each node counted only its own relay's (a: $(node_used a postout_rcpt alice), b: $(node_used b postout_rcpt alice))" \
    test "$(node_used a postout_rcpt alice)-$(node_used b postout_rcpt alice)" = "$SUM_A-$SUM_B"
node_ctl a counter reset postout_rcpt alice >/dev/null
node_ctl b counter reset postout_rcpt alice >/dev/null
race d
check "rocksdb: 6 sessions at once accept more than $L (got $RACE_ACC)" test "$RACE_ACC" -gt $L
round_end rocksdb
phase "the control round on RocksDB"

nodes_log_clean
e2e_finish

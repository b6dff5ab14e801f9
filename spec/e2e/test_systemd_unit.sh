#!/bin/bash
# The man pages and the systemd unit, offline (systemd is not PID 1 here):
# man -l renders outpostd(8), outpostctl(8) and outpost.conf(5) without a
# warning, each names what the program or the schema knows; systemd-analyze
# verify accepts outpostd.service and systemd-analyze security --offline
# rates its exposure "OK" or better.
. "$(dirname "$0")/lib.sh"
e2e_setup
make -s -C "$ROOT" man >"$T/make.log" 2>&1
check "make man builds the three pages" test -s "$ROOT/build/man/outpost.conf.5"
for page in outpostd.8 outpostctl.8 outpost.conf.5; do
    f=$ROOT/build/man/$page
    check "man -l renders $page" bash -c "MANWIDTH=80 man -l '$f' > '$T/$page.txt' 2>'$T/$page.err' && [ -s '$T/$page.txt' ]"
    check "... with no warning from groff" bash -c "LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 '$f' 2>&1 | { ! grep -q .; }"
done
keys=$("$ROOT/build/outpostd" --config-reference | sed -nE 's/^\| `([a-z_]+)` \|.*/\1/p' | sort -u)
missing=$(for k in $keys; do grep -qE "^ {7}$k( |$)" "$T/outpost.conf.5.txt" || echo "$k"; done)
check "outpost.conf(5) has every key of the schema ($(wc -w <<<"$keys") keys)" test -z "$missing"
check "outpostd(8) has every option of --help" bash -c "for o in --config= --check --config-reference --version; do grep -q -- \"\$o\" '$T/outpostd.8.txt' || exit 1; done"
check "outpostctl(8) has the exit status 5 of a reload that needs a restart" grep -qE '^ +5 +reloaded' "$T/outpostctl.8.txt"

# The unit as installed, its programs pointed at this build.
mkdir -p "$T/man/man8" "$T/man/man5"
cp "$ROOT"/build/man/*.8 "$T/man/man8/"; cp "$ROOT"/build/man/*.5 "$T/man/man5/"
sed -e "s|/usr/sbin/outpostd|$ROOT/build/outpostd|g" -e "s|/usr/bin/outpostctl|$ROOT/build/outpostctl|g" \
    "$ROOT/conf/systemd/outpostd.service" > "$T/outpostd.service"
MANPATH=$T/man: systemd-analyze verify "$T/outpostd.service" > "$T/verify.out" 2>&1
rc=$?
grep 'outpostd' "$T/verify.out" | sed 's/^/# /'
check "systemd-analyze verify outpostd.service: nothing to say about it" \
    bash -c "[ $rc -eq 0 ] || ! grep -q outpostd '$T/verify.out'"
systemd-analyze security --offline=true "$T/outpostd.service" > "$T/security.out" 2>&1
score=$(sed -nE 's/.*Overall exposure level for outpostd.service: ([0-9.]+) ([A-Z]+).*/\1 \2/p' "$T/security.out")
echo "# systemd-analyze security: $score"
check "systemd-analyze security: exposure OK or better ($score)" \
    bash -c "awk -v s='${score%% *}' 'BEGIN { exit !(s != \"\" && s + 0 <= 3.9) }'"
for opt in Type=notify WatchdogSec= 'ExecStartPre=/usr/sbin/outpostd --check' 'ExecReload=/usr/bin/outpostctl reload' \
           StateDirectory=outpost RuntimeDirectory=outpost User=outpost NoNewPrivileges=yes ProtectSystem=strict \
           ProtectHome=yes PrivateTmp=yes 'CapabilityBoundingSet=' 'SystemCallFilter=@system-service'; do
    check "the unit sets $opt" grep -qE "^${opt}" "$ROOT/conf/systemd/outpostd.service"
done
e2e_finish

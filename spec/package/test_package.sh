#!/bin/bash
# The Debian package end to end, on this machine (root, systemd not PID 1):
# make deb, lintian, dpkg -i, outpostd --check on the installed config, the
# installed daemon started as the unit's ExecStart under its own user (in
# the directories systemd's StateDirectory= and RuntimeDirectory= would
# make) answers a request, outpostctl status works for a member of the
# control group, reload works; dpkg -r keeps the state, dpkg --purge leaves
# nothing of the package behind.
#
# It changes the machine (/usr, /etc/outpost, the user outpost) and undoes
# it on any exit.  It refuses to run where outpost is installed, or a user
# or group outpost exists, that it did not make.  OUTPOST_SKIP_PACKAGE=1
# skips it (one package build: about 1.5 min on 2 busy cores).
. "$(dirname "$0")/../e2e/lib.sh"
e2e_setup
skip() { echo "# skipped: $1"; e2e_finish; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root"
[ -z "${OUTPOST_SKIP_PACKAGE:-}" ] || skip "OUTPOST_SKIP_PACKAGE is set"
command -v dpkg-buildpackage >/dev/null || skip "no dpkg-buildpackage (scripts/deps.sh installs it)"
if dpkg-query -W -f='${Status}' outpost 2>/dev/null | grep -q installed || getent passwd outpost >/dev/null ||
   getent group outpost >/dev/null || [ -e /etc/outpost ]; then
    skip "outpost is installed here, or a user, group or /etc/outpost of that name exists: not touching it"
fi

BASE=${OUTPOST_PORT_BASE:-45000}
ADMIN=op-pkg-adm$$
DAEMON_AS=
cleanup_package() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null
    fi
    DAEMON_PID=
    if dpkg-query -W -f='${Status}' outpost 2>/dev/null | grep -qv 'not-installed'; then
        dpkg --purge outpost >/dev/null 2>&1
    fi
    userdel "$ADMIN" 2>/dev/null
    [ -n "$OWN_POLICY" ] && rm -f /usr/sbin/policy-rc.d
    e2e_cleanup
}
OWN_POLICY=
trap cleanup_package EXIT
# The packages' maintainer scripts must not start services on this machine.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    OWN_POLICY=1
fi

start=$(date +%s.%N)
make -s -C "$ROOT" deb > "$T/deb.log" 2>&1
rc=$?
t_build=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }')
check "make deb builds the package (${t_build}s)" test $rc -eq 0 || tail -30 "$T/deb.log"
DEB=$(ls "$ROOT"/build/deb/outpost_*_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || { e2e_finish; exit 1; }
start=$(date +%s.%N)
lintian --fail-on error "$DEB" > "$T/lintian.out" 2>&1
rc=$?
t_lint=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }')
sed 's/^/# lintian: /' "$T/lintian.out" | grep -v 'root privileges'
check "lintian: no errors (${t_lint}s)" bash -c "[ $rc -eq 0 ] && ! grep -q '^E:' '$T/lintian.out'"

# Runtime Depends: exactly the packages of the libraries the binaries link.
deps=$(dpkg-deb -f "$DEB" Depends | tr ',|' '\n\n' | sed -E 's/^ *([^ ]+).*/\1/' | sort -u)
libs=$(dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - ./usr/sbin/outpostd > "$T/outpostd.bin"; \
       objdump -p "$T/outpostd.bin" | awk '/NEEDED/ { print $2 }' | while read -r so; do
           p=$(ldconfig -p | awk -v so="$so" '$1 == so { print $NF; exit }')
           { dpkg -S "$p" 2>/dev/null || dpkg -S "$(readlink -f "$p")"; } | head -1 | cut -d: -f1
       done | sort -u)
echo "# Depends: $(echo $deps)"
echo "# linked:  $(echo $libs)"
check "Depends names the package of every library outpostd links" \
    bash -c "for l in $(echo $libs); do grep -qx \"\$l\" <<<'$deps' || { echo \"missing \$l\"; exit 1; }; done"
extra=$(comm -23 <(echo "$deps") <(echo "$libs") | grep -vE '^(libluajit2-5\.1-2)$' || true)
check "... and nothing else (alternatives of the same library aside)" test -z "$extra"

# README's "Install on a server": apt install ./outpost_*.deb (dpkg -i
# underneath), then systemctl enable --now outpostd, of which only the
# enable works without systemd as PID 1; the start is done below as the
# unit's ExecStart would.
check "make deb leaves the package in the tree's top directory" test -e "$ROOT/$(basename "$DEB")"
(cd "$ROOT" && apt-get install -y -q -o DPkg::Lock::Timeout=600 "./$(basename "$DEB")") > "$T/apt.log" 2>&1
check "apt install ./outpost_*.deb installs it" test $? -eq 0 || cat "$T/apt.log"
systemctl enable outpostd > "$T/enable.log" 2>&1
check "systemctl enable outpostd works offline" test "$(systemctl is-enabled outpostd 2>&1)" = enabled
check "the system user outpost exists, with no login" bash -c "getent passwd outpost | grep -q ':/usr/sbin/nologin$'"
if getent group postfix >/dev/null; then
    check "outpost is in group postfix" bash -c "id -nG outpost | grep -qw postfix"
fi
conffiles=$(dpkg-query -W -f='${Conffiles}' outpost)
check "/etc/outpost/outpost.conf is a conffile" grep -q ' /etc/outpost/outpost.conf ' <<<"$conffiles"
check "... and the lists" grep -q ' /etc/outpost/lists/campus_networks.txt ' <<<"$conffiles"
check "the unit is enabled (deb-systemd-helper)" test -L /etc/systemd/system/multi-user.target.wants/outpostd.service
check "man outpostd finds the page" bash -c "man -w outpostd >/dev/null && man -w 5 outpost.conf >/dev/null"
check "systemd-analyze verify on the installed unit" \
    bash -c "systemd-analyze verify /lib/systemd/system/outpostd.service 2>&1 | { ! grep -q outpostd; }"

# What systemd's StateDirectory= and RuntimeDirectory= make, before any
# Exec* line runs (ExecStartPre's --check refuses a state_dir the user
# cannot create, as the start would).
install -d -o outpost -g outpost -m 0750 /var/lib/outpost
install -d -o outpost -g outpost -m 0755 /run/outpost
# ExecStartPre: outpostd --check, no -c, as the user outpost.
check "outpostd --check as outpost on the installed config (ExecStartPre)" \
    runuser -u outpost -- /usr/sbin/outpostd --check
# The TCP ports of the installed file are fixed (10045-10050); another
# checkout's `make run` may hold them, so this run moves them to ours.
for p in 45 46 47 48 49 50; do
    sed -i "s/127\.0\.0\.1:100$p\b/127.0.0.1:$((BASE + 60 + p - 45))/" /etc/outpost/outpost.conf
done
# As systemd's User=outpost does it: that user with its groups, exec'ed.
setpriv --reuid=outpost --regid=outpost --init-groups /usr/sbin/outpostd 2> "$T/daemon.log" &
DAEMON_PID=$!
for ((i = 0; i < 200; i++)); do
    grep -q "ready: generation" "$T/daemon.log" 2>/dev/null && break
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
done
check "the installed daemon starts as outpost with no -c (ExecStart)" log_has "ready: generation 1"
sed 's/^/# /' "$T/daemon.log" | head -20
check "... as the user outpost" test "$(ps -o user= -p "$DAEMON_PID" | tr -d ' ')" = outpost
check "... with no warning about root" bash -c "! grep -q 'RUNNING AS ROOT' '$T/daemon.log'"
check "it answers a request on /run/outpost/policy.sock" \
    bash -c "/usr/sbin/outpostd ask unix:/run/outpost/policy.sock policy_context=dunno | grep -qx action=DUNNO"
check "the socket belongs to outpost:postfix" test "$(stat -c %U:%G /run/outpost/policy.sock)" = outpost:postfix
useradd --system --no-create-home --shell /usr/sbin/nologin --groups outpost "$ADMIN"
check "outpostctl status from a member of group outpost (the socket found in outpost.conf)" \
    bash -c "runuser -u $ADMIN -- /usr/bin/outpostctl status | grep -q '^generation 1'"
check "outpostctl reload (ExecReload) exits 0" bash -c "runuser -u $ADMIN -- /usr/bin/outpostctl reload | grep -q 'generation 2 is current'"
check "another user may not" bash -c "runuser -u nobody -- /usr/bin/outpostctl status 2>/dev/null; [ \$? -eq 4 ]"
check "SIGTERM stops it with status 0" e2e_stop
check "the counters are in /var/lib/outpost" test -d /var/lib/outpost/counters

dpkg-query -L outpost > "$T/files"
dpkg -r outpost > "$T/dpkg-r.log" 2>&1
check "dpkg -r removes it" test $? -eq 0
check "... the binaries are gone" test ! -e /usr/sbin/outpostd
check "... the state is kept" test -d /var/lib/outpost/counters
check "... and the configuration" test -e /etc/outpost/outpost.conf
dpkg --purge outpost > "$T/dpkg-purge.log" 2>&1
check "dpkg --purge purges it" test $? -eq 0
left=$(while read -r f; do
    if [ -d "$f" ]; then
        case "$f" in /etc/outpost*|/usr/share/outpost*|/usr/share/doc/outpost*) echo "$f" ;; esac
    elif [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
done < "$T/files")
check "nothing of the package is left ($(wc -l < "$T/files") paths checked)" test -z "$left"
[ -n "$left" ] && echo "$left" | sed 's/^/# left: /'
check "no /etc/outpost, /var/lib/outpost, /run/outpost" \
    bash -c "[ ! -e /etc/outpost ] && [ ! -e /var/lib/outpost ] && [ ! -e /run/outpost ]"
check "no user or group outpost" bash -c "! getent passwd outpost && ! getent group outpost"
check "the unit is no longer enabled" test ! -e /etc/systemd/system/multi-user.target.wants/outpostd.service
echo "# times: make deb ${t_build}s, lintian ${t_lint}s"
e2e_finish

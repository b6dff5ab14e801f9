#!/bin/bash
# make install into a DESTDIR: the FHS layout, the configuration made from
# conf/outpost.conf for a server, never overwriting an admin's files, and
# the site's Lua files (daemon { site_lua_dir }) overriding the shipped
# ones.  The package test (test_package.sh) runs an installed daemon for
# real.
. "$(dirname "$0")/lib.sh"
e2e_setup
D=$T/dest
make -s -C "$ROOT" install DESTDIR="$D" >"$T/install.log" 2>&1
check "make install DESTDIR=... succeeds" test $? -eq 0
for f in usr/sbin/outpostd usr/bin/outpostctl usr/share/outpost/lua/lib/outpost/pipeline.lua \
         usr/share/outpost/lua/policies/postout.lua etc/outpost/outpost.conf \
         etc/outpost/lists/campus_networks.txt etc/outpost/lua/README; do
    check "installs /$f" test -e "$D/$f"
done
check "the site's lua/lib and lua/policies are there, empty" \
    bash -c "[ -d '$D/etc/outpost/lua/lib' ] && [ -z \"\$(ls '$D/etc/outpost/lua/policies')\" ]"
check "the binaries default to /etc/outpost/outpost.conf" \
    bash -c "'$D/usr/sbin/outpostd' --help | grep -q 'default /etc/outpost/outpost.conf'"
check "... and to /usr/share/outpost/lua and /var/lib/outpost" \
    bash -c "'$D/usr/sbin/outpostd' --config-reference | grep -q '| \`lua_dir\` | path | \`/usr/share/outpost/lua\`' &&
             '$D/usr/sbin/outpostd' --config-reference | grep -q '| \`state_dir\` | path | \`/var/lib/outpost\`'"
C=$D/etc/outpost/outpost.conf
check "the installed config runs as outpost" grep -qx '    user = outpost' "$C"
check "... with its sockets in /run/outpost, group postfix" \
    bash -c "grep -q 'listen = unix:/run/outpost/policy.sock' '$C' && grep -qx '    socket_group = postfix' '$C'"
check "... the control socket in /run/outpost for group outpost" \
    bash -c "grep -q 'socket = /run/outpost/control.sock' '$C' && grep -qx '    group = outpost' '$C'"
check "... the site's Lua in /etc/outpost/lua" grep -q '^    site_lua_dir = /etc/outpost/lua' "$C"
check "... nothing of the checkout (../var, the example servers)" \
    bash -c "! grep -vE '^ *#' '$C' | grep -qE '\.\./|25300|25310'"
# --check of the installed file, its compiled-in lua_dir pointed into DESTDIR.
sed -e "s|^    site_lua_dir = /etc/outpost/lua|    site_lua_dir = $D/etc/outpost/lua\n    lua_dir = $D/usr/share/outpost/lua|" "$C" > "$D/etc/outpost/check.conf"
if getent group postfix >/dev/null && getent passwd outpost >/dev/null; then
    check "outpostd --check accepts the installed configuration" "$D/usr/sbin/outpostd" --check -c "$D/etc/outpost/check.conf"
else
    check "outpostd --check: only the missing user or group outpost/postfix is wrong" \
        bash -c "'$D/usr/sbin/outpostd' --check -c '$D/etc/outpost/check.conf' 2>&1 | grep -qE 'OK|outpost|postfix'"
fi

# An admin's edit survives a second install.
echo "# edited by the admin" >> "$C"
echo "10.99.0.0/16 admin" >> "$D/etc/outpost/lists/campus_networks.txt"
make -s -C "$ROOT" install DESTDIR="$D" >>"$T/install.log" 2>&1
check "a second make install keeps the admin's outpost.conf" grep -q 'edited by the admin' "$C"
check "... and lists" grep -q '10.99.0.0/16 admin' "$D/etc/outpost/lists/campus_networks.txt"

# The overlay: a site's policy and library module win over the shipped ones.
mkdir -p "$T/site/policies" "$T/site/lib" "$T/lua/lib"
cat > "$T/lua/lib/flavour.lua" <<'EOF2'
return { name = "shipped" }
EOF2
cat > "$T/site/lib/flavour.lua" <<'EOF2'
return { name = "site" }
EOF2
e2e_policy which <<'EOF2'
local A = require "outpost.action"
local flavour = require "flavour"
return function(req) return A.warn("policy=shipped lib=%s", flavour.name) end
EOF2
e2e_config <<'EOF2'
daemon {
    state_dir = @T@/state
    lua_dir = @T@/lua
    site_lua_dir = @T@/site
}
listener unix {
    listen = unix:@T@/policy.sock
    service = which
}
service which { }
EOF2
e2e_start || exit 1
check "a library module of site_lua_dir wins over lua_dir's" \
    bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=shipped lib=site'"
cat > "$T/site/policies/which.lua" <<'EOF2'
local A = require "outpost.action"
local flavour = require "flavour"
return function(req) return A.warn("policy=site lib=%s", flavour.name) end
EOF2
kill -HUP "$DAEMON_PID"; sleep 0.5
check "a policy put in site_lua_dir wins after a reload" \
    bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=site lib=site'"
rm "$T/site/lib/flavour.lua"
kill -HUP "$DAEMON_PID"; sleep 0.5
check "removed from the site, the shipped module is back" \
    bash -c "$ASK unix:$T/policy.sock | grep -qx 'action=WARN policy=site lib=shipped'"
check "SIGTERM stops it" e2e_stop
check_log_clean
e2e_finish

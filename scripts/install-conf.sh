#!/bin/sh
# The configuration `make install` puts in /etc/outpost/outpost.conf:
# conf/outpost.conf (the one `make run` starts, so the two cannot drift
# apart) with what a server needs instead of a checkout: the compiled-in
# state_dir and lua_dir, the site's overrides in /etc/outpost/lua, user and
# group outpost, unix sockets in /run/outpost (group postfix), the control
# socket there for the admin group, the system's resolvers, and the
# example directory's servers left to the admin.
#   scripts/install-conf.sh SYSCONFDIR RUNDIR < conf/outpost.conf
set -eu
etc=$1 run=$2
sed -e '1,2c\
# outpostd configuration, installed by the package (a conffile: your edits\
# are kept on upgrades).  Reference: outpost.conf(5), docs/config.md.\
# Check it with `outpostd --check`, apply it with `systemctl reload outpostd`.' \
    -e '/^    state_dir = \.\.\/var/d' \
    -e "s|^    lua_dir = \.\./lua .*|    site_lua_dir = $etc/outpost/lua   # your copies of lib/ and policies/ files override the shipped ones|" \
    -e 's|^    # user = outpost .*|    user = outpost|' \
    -e 's|^    # group = outpost|    group = outpost|' \
    -e "s|unix:\.\./var/run/|unix:$run/|" \
    -e 's|^    # socket_group = postfix|    socket_group = postfix|' \
    -e 's|^    servers = \[127\.0\.0\.1:25300\]|    # servers = [192.0.2.53, 192.0.2.54]   # default: /etc/resolv.conf|' \
    -e 's|^# DNS (outpost.dns): `make run` starts the example zones on 127.0.0.1:25300.|# DNS (outpost.dns).|' \
    -e 's|^    uris = \["ldap://127\.0\.0\.1:25310/"\]|    # uris = ["ldaps://ldap1.example.org/", "ldaps://ldap2.example.org/"]   # no uris: no LDAP|' \
    -e "s|^    bind_password_file = \.\./var/example/ldap/bind.pw|    # bind_password_file = $etc/outpost/ldap.pw   # one line, mode 0640 root:outpost|" \
    -e 's|^    bind_dn = |    # bind_dn = |'
cat <<EOF2

# outpostctl: root, the daemon's user and the members of group outpost
# (adduser ADMIN outpost) may use it; outpostctl finds the socket here.
control {
    socket = $run/control.sock
    group = outpost
}
EOF2

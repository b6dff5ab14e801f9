#!/bin/sh
# Installs the Debian 12 packages outpost needs to build, run and test.
# Costs one dpkg query when everything is already there; runs apt-get update
# only when something is missing.  The packages' own services are never
# started (policy-rc.d below): tests and benches run private instances.
#
#   scripts/deps.sh            the packages below
#   scripts/deps.sh PKG...     these instead (bench/deps.sh: the peers)
set -eu

# build and run
PACKAGES="
gcc g++ make pkg-config
libluajit-5.1-dev luajit
libuv1-dev libc-ares-dev libldap-dev librocksdb-dev libidn2-dev libsystemd-dev libhiredis-dev
lua-busted libopendkim-dev
"
# tests: the real servers the harness starts on loopback (spec/harness/),
# the mail client (swaks: --tls needs libnet-ssleay-perl, --auth
# libauthen-sasl-perl), the DKIM signer and verifier of MO8's tests
# (python3-dkim; python3-nacl for Ed25519), promtool (prometheus: the
# metrics endpoint's text and docs/operations.md's alert rules are checked
# with it; its server is never started), and the tools the scripts use
PACKAGES="$PACKAGES
python3 iproute2 openssl
clang-14 libclang-rt-14-dev
unbound bind9-dnsutils
slapd ldap-utils
redis-server redis-sentinel redis-tools
postfix swaks sasl2-bin libsasl2-modules
libnet-ssleay-perl libauthen-sasl-perl
miltertest
python3-dkim python3-nacl
clamav-daemon rspamd xxd bc curl
prometheus
"
# packaging (make deb, make man, the package and unit tests): debhelper,
# lintian, systemd-analyze, man -l
PACKAGES="$PACKAGES
dpkg-dev debhelper lintian systemd man-db groff-base
"

[ $# -gt 0 ] && PACKAGES="$*"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run 'make' as root, or: apt-get install$missing" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# No system-wide setup: the tests run private instances with their own
# configuration; nothing may listen on the machine's mail, DNS or LDAP ports.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
# Keep the packages' init scripts from starting system-wide daemons on the
# machine's ports while installing (many build images already do this).
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
fi
trap '[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends $missing

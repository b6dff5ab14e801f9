#!/bin/sh
# The peers `make bench` compares outpostd with, from Debian 12: postfwd and
# policyd-rate-limit.  Only `make bench` needs them, so `make test` (and
# scripts/deps.sh) does not install them.  Costs one dpkg query each when
# they are there.  The packages' own services are never started: the bench
# runs private instances on loopback ports and stops them by PID.
set -eu

PACKAGES="postfwd policyd-rate-limit"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "bench deps: missing Debian packages:$missing" >&2
    echo "bench deps: run 'make bench' as root, or: apt-get install$missing" >&2
    exit 1
fi
echo "bench deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Keep the packages' init scripts from starting system-wide daemons (postfwd
# on 10040, policyd-rate-limit on its socket) while installing.
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
fi
trap '[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
# shellcheck disable=SC2086
if ! apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends $missing; then
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends $missing
fi

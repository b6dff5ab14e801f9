#!/bin/sh
# Installs the Debian 12 packages outpost needs to build, run and test.
# Costs one dpkg query when everything is already there; runs apt-get update
# only when something is missing.
set -eu

PACKAGES="
gcc make pkg-config
libluajit-5.1-dev luajit
libuv1-dev libc-ares-dev libldap-dev librocksdb-dev libidn2-dev
lua-busted
python3
"

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
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends $missing

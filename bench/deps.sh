#!/bin/sh
# The peers `make bench` compares outpostd with, from Debian 12: postfwd and
# policyd-rate-limit.  Only `make bench` needs them, so `make test` does not
# install them.  scripts/deps.sh installs them the same way as the rest
# (one dpkg query each when they are there, their own services never
# started: the bench runs private instances on loopback ports).
exec "$(dirname "$0")/../scripts/deps.sh" postfwd policyd-rate-limit

#!/bin/sh
# The demo: installs dependencies, builds, and plays the built-in story of
# two LAN hosts and one remote gateway through the masquerade engine,
# printing every decision. Run as root from the top of the source tree.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh scripts/deps.sh
autoreconf -fi >/dev/null 2>&1
mkdir -p build/demo
(cd build/demo && "$top/configure" -q && make -s -j2)
exec build/demo/ipsec-masqd-replay

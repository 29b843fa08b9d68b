#!/bin/sh
# Installs what building, testing and the demo need on Debian 12. Run as root.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/deps.sh: run as root (it calls apt-get install)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Everything a test needs is listed, even what another package only
# recommends: --no-install-recommends below would leave it out, and the test
# would skip (CI fails on skips, IPSEC_MASQD_REQUIRE_ALL). python3-scapy only
# recommends python3-cryptography (real ESP crypto); strace: test_privilege;
# dpkg-dev: dpkg-buildflags (the distribution-flags build); util-linux:
# setpriv, taskset; coreutils: timeout; musl-tools: the musl build of
# contrib/openwrt/musl-build.sh.
packages="build-essential dpkg-dev autoconf automake pkg-config clang libclang-rt-14-dev valgrind mandoc groff-base
	libnetfilter-queue-dev libmnl-dev libnfnetlink-dev libnftnl-dev libconfig-dev check libsystemd-dev libssl-dev
	iproute2 iptables nftables tcpdump python3-scapy python3-cryptography systemd ethtool iputils-ping
	strace util-linux coreutils musl-tools
	charon-systemd strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins"
# apt-get update only when something is missing: keeps repeated runs fast.
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing
fi

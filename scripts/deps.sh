#!/bin/sh
# Installs what building, testing and the demo need on Debian 12. Run as root.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again.
set -eu
if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/deps.sh: run as root (it calls apt-get install)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
packages="build-essential autoconf automake pkg-config clang libclang-rt-14-dev valgrind mandoc groff-base
	libnetfilter-queue-dev libmnl-dev libnfnetlink-dev libconfig-dev check libsystemd-dev
	iproute2 iptables nftables tcpdump python3-scapy systemd ethtool iputils-ping
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

# tests/lib/netns.sh: network-namespace topology for the ipsec-masqd
# integration tests. Sourced by bash test scripts (it uses arrays).
#
#   h1 h2 h3 (LAN hosts, 192.168.1.11-13)            r1 (198.51.100.20)
#       \  |  /                                       /
#      [lan0 bridge] rtr: ipsec-masqd  wan0 ---- [br0 in "wan"] up0
#       192.168.1.1/24                 198.51.100.1/24    \
#                                                         r2 (198.51.100.30)
#
# The remotes have no route to the LAN: only masqueraded traffic can be
# answered. The router loads the shipped rules (etc/ipsec-masqd.iptables)
# through the shipped helper (src/ipsec-masqd-firewall.in), filled in from
# the daemon's own -P. Every namespace is named "$NL_PREFIX<name>": stale
# ones of that prefix (and the processes still in them, by PID) are removed
# first, and a trap removes everything this script made.
#
# Usage:
#   NL_PREFIX=imesp-; . "$srcdir/tests/lib/netns.sh"
#   nl_init                 # root/tool checks (exit 77), TMP, trap, stale cleanup
#   nl_topology             # namespaces, links, addresses, routes
#   nl_rules CONF           # the shipped rules, via the helper
#   nl_daemon_start CONF LOG / nl_daemon_stop
#   nl_spawn NS CMD... (PID in NL_LAST), nl_stop PID, nl_capture_start ...
#   nl_add_addrs NS ADDR... # more LAN addresses on a host (after nl_topology)
#
# Variables set: NL_TMP, NL_BIN, NL_SRC, NL_PY, NL_FAILS, and the names
# NL_RTR NL_WAN NL_H1 NL_H2 NL_H3 NL_R1 NL_R2; addresses NL_EXT, NL_LAN_NET,
# NL_H1_IP..NL_H3_IP, NL_R1_IP, NL_R2_IP.

: "${NL_PREFIX:?set NL_PREFIX before sourcing netns.sh}"

NL_RTR=${NL_PREFIX}rtr NL_WAN=${NL_PREFIX}wan
NL_H1=${NL_PREFIX}h1 NL_H2=${NL_PREFIX}h2 NL_H3=${NL_PREFIX}h3
NL_R1=${NL_PREFIX}r1 NL_R2=${NL_PREFIX}r2
NL_EXT=198.51.100.1 NL_LAN_NET=192.168.1.0/24
NL_H1_IP=192.168.1.11 NL_H2_IP=192.168.1.12 NL_H3_IP=192.168.1.13
NL_R1_IP=198.51.100.20 NL_R2_IP=198.51.100.30
NL_PY=/usr/bin/python3          # the system python, where python3-scapy lives
NL_SRC=${top_srcdir:-$(dirname "$0")/..}
NL_BIN=${IPSEC_MASQD:-${top_builddir:-.}/ipsec-masqd}
NL_TMP= NL_DPID= NL_DLOG= NL_LAST= NL_FAILS=0
NL_PIDS=()
. "$(dirname "${BASH_SOURCE[0]}")/fastpath.sh" || { echo "cannot source tests/lib/fastpath.sh"; exit 99; }

nl_skip() { echo "SKIP: $*"; exit 77; }
nl_ok()   { echo "ok   - $*"; }
nl_fail() { echo "FAIL - $*"; NL_FAILS=$((NL_FAILS + 1)); }
# nl_check WHAT CMD...: ok or fail by CMD's status; returns that status.
nl_check() {
	local what=$1; shift
	if "$@"; then nl_ok "$what"; return 0; fi
	nl_fail "$what"; return 1
}
nl_in() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Our namespaces (prefix match), one a line.
nl_namespaces() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -F -- "$NL_PREFIX" |
		awk -v p="$NL_PREFIX" 'index($0, p) == 1'
}

# Removes namespaces of our prefix, ending the processes still inside them
# (left by a run that was killed) by PID first.
nl_remove_namespaces() {
	local ns pid pids=
	for ns in $(nl_namespaces); do
		pids="$pids $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
	done
	if [ -n "${pids// /}" ]; then
		for pid in $pids; do kill "$pid" 2>/dev/null; done
		sleep 0.5
		for pid in $pids; do kill -9 "$pid" 2>/dev/null; done
	fi
	for ns in $(nl_namespaces); do
		ip netns del "$ns" 2>/dev/null
	done
}

# Ends what this script started, by PID only, then removes the namespaces.
nl_cleanup() {
	local p
	for p in ${NL_PIDS[@]+"${NL_PIDS[@]}"} $NL_DPID; do
		kill "$p" 2>/dev/null
	done
	sleep 0.3
	for p in ${NL_PIDS[@]+"${NL_PIDS[@]}"} $NL_DPID; do
		kill -9 "$p" 2>/dev/null
	done
	nl_remove_namespaces
	if [ -n "$NL_TMP" ] && [ "$NL_FAILS" = 0 ] && [ -z "${KEEP:-}" ]; then
		rm -rf "$NL_TMP"
	elif [ -n "$NL_TMP" ]; then
		echo "logs kept in $NL_TMP"
	fi
}

# Checks root and tools (exit 77 with the reason), makes NL_TMP, removes
# stale objects of our prefix and installs the cleanup trap.
nl_init() {
	local t
	[ "$(id -u)" = 0 ] || nl_skip "needs root (network namespaces, iptables, NFQUEUE)"
	for t in ip iptables iptables-restore tcpdump ethtool; do
		command -v "$t" >/dev/null 2>&1 ||
			nl_skip "$t not installed (apt-get install iproute2 iptables tcpdump ethtool)"
	done
	[ -x "$NL_PY" ] && "$NL_PY" -c 'import scapy.all, scapy.layers.ipsec, cryptography' 2>/dev/null ||
		nl_skip "scapy with cryptography missing for $NL_PY (apt-get install python3-scapy)"
	[ -x "$NL_BIN" ] || nl_skip "$NL_BIN not built"
	[ -f "$NL_SRC/src/ipsec-masqd-firewall.in" ] || nl_skip "no $NL_SRC/src/ipsec-masqd-firewall.in"
	NL_BIN=$(cd "$(dirname "$NL_BIN")" && pwd)/$(basename "$NL_BIN")
	NL_SRC=$(cd "$NL_SRC" && pwd)
	ip netns add "${NL_PREFIX}probe" 2>/dev/null && ip netns del "${NL_PREFIX}probe" ||
		nl_skip "cannot create network namespaces here"
	nl_remove_namespaces
	trap nl_cleanup EXIT
	trap 'exit 1' INT TERM
	NL_TMP=$(mktemp -d "/tmp/${NL_PREFIX}XXXXXX")
}

# Starts "$@" in namespace $1 in the background (ip execs it, so $! is the
# command itself); its PID goes to NL_PIDS and NL_LAST.
nl_spawn() {
	local ns=$1; shift
	ip netns exec "$ns" "$@" &
	NL_LAST=$!
	NL_PIDS+=("$NL_LAST")
}

# Ends one process we started (TERM, then KILL after $2 tenths, default 30)
# and reaps it; returns its exit status.
nl_stop() {
	local pid=$1 n=${2:-30} i rc
	kill "$pid" 2>/dev/null
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null; rc=$?
	nl_forget "$pid"
	return $rc
}

# Waits (bounded: $2 seconds) for a process we started to exit by itself.
nl_wait_pid() {
	local pid=$1 n=$(($2 * 10)) i
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && { nl_stop "$pid"; return 124; }
	wait "$pid" 2>/dev/null
	local rc=$?
	nl_forget "$pid"
	return $rc
}

nl_forget() {
	local p keep=()
	for p in ${NL_PIDS[@]+"${NL_PIDS[@]}"}; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	NL_PIDS=(${keep[@]+"${keep[@]}"})
}

# Waits up to $2 tenths of a second for a line matching ERE $1 in file $3.
nl_wait_log() {
	local i
	for ((i = 0; i < $2; i++)); do
		grep -qE -- "$1" "$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Brings an interface up with checksum offload off: veth leaves UDP
# checksums unfinished (CHECKSUM_PARTIAL) otherwise (design.md, "Checksums").
nl_link_up() {
	nl_in "$1" ip link set "$2" up || return 1
	nl_in "$1" ethtool -K "$2" tx off rx off >/dev/null 2>&1
	return 0
}

# A quiet namespace: lo up, no IPv6 (no RS/MLD noise in the captures).
nl_ns_add() {
	ip netns add "$1" || return 1
	nl_in "$1" ip link set lo up
	nl_in "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
	nl_in "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
	return 0
}

# The endpoint namespaces handle ESP and ISAKMP in user space (scapy): the
# kernel must not answer them with ICMP errors, so it drops them on input.
# The AF_PACKET capture the peers read sees them before that.
nl_endpoint_quiet() {
	nl_in "$1" iptables -w -A INPUT -p esp -j DROP &&
	nl_in "$1" iptables -w -A INPUT -p udp --dport 500 -j DROP
}

nl_topology() {
	local ns i h r
	for ns in "$NL_RTR" "$NL_WAN" "$NL_H1" "$NL_H2" "$NL_H3" "$NL_R1" "$NL_R2"; do
		nl_ns_add "$ns" || return 1
	done
	# LAN: three hosts on the router's bridge lan0.
	nl_in "$NL_RTR" ip link add lan0 type bridge || return 1
	i=1
	for h in "$NL_H1" "$NL_H2" "$NL_H3"; do
		ip link add eth0 netns "$h" type veth peer name lanp$i netns "$NL_RTR" || return 1
		nl_in "$NL_RTR" ip link set lanp$i master lan0 || return 1
		nl_link_up "$NL_RTR" lanp$i || return 1
		nl_in "$h" ip addr add 192.168.1.1$i/24 dev eth0 || return 1
		nl_link_up "$h" eth0 || return 1
		nl_in "$h" ip route add default via 192.168.1.1 || return 1
		nl_endpoint_quiet "$h" || return 1
		i=$((i + 1))
	done
	nl_in "$NL_RTR" ip addr add 192.168.1.1/24 dev lan0 || return 1
	nl_link_up "$NL_RTR" lan0 || return 1
	# WAN: the router's wan0 and the two remotes on a bridge in "wan".
	nl_in "$NL_WAN" ip link add br0 type bridge || return 1
	nl_link_up "$NL_WAN" br0 || return 1
	ip link add wan0 netns "$NL_RTR" type veth peer name up0 netns "$NL_WAN" || return 1
	nl_in "$NL_WAN" ip link set up0 master br0 && nl_link_up "$NL_WAN" up0 || return 1
	nl_in "$NL_RTR" ip addr add "$NL_EXT/24" dev wan0 && nl_link_up "$NL_RTR" wan0 || return 1
	i=1
	for r in "$NL_R1:$NL_R1_IP" "$NL_R2:$NL_R2_IP"; do
		ip link add eth0 netns "${r%%:*}" type veth peer name p$i netns "$NL_WAN" || return 1
		nl_in "$NL_WAN" ip link set p$i master br0 && nl_link_up "$NL_WAN" p$i || return 1
		nl_in "${r%%:*}" ip addr add "${r#*:}/24" dev eth0 || return 1
		nl_link_up "${r%%:*}" eth0 || return 1
		nl_endpoint_quiet "${r%%:*}" || return 1
		# no route to 192.168.1.0/24: a leaked LAN source gets no answer
		i=$((i + 1))
	done
	nl_in "$NL_RTR" sysctl -qw net.ipv4.ip_forward=1 || return 1
	# Every address answers ARP before the first test packet.
	for h in "$NL_H1" "$NL_H2" "$NL_H3"; do
		nl_in "$h" ping -c1 -W2 192.168.1.1 >/dev/null 2>&1
	done
	for r in "$NL_R1" "$NL_R2"; do
		nl_in "$r" ping -c1 -W2 "$NL_EXT" >/dev/null 2>&1
	done
	return 0
}

# Adds LAN addresses (/24, on eth0) to host namespace $1, for tests that
# need more LAN hosts than three: each is a host of its own to the router
# (the endpoint sends from it and listens for it); each answers ARP before
# this returns.
nl_add_addrs() {
	local ns=$1 a; shift
	for a in "$@"; do
		nl_in "$ns" ip addr add "$a/24" dev eth0 || return 1
	done
	for a in "$@"; do
		nl_in "$ns" ping -c1 -W2 -I "$a" 192.168.1.1 >/dev/null 2>&1
	done
	return 0
}

# Loads the shipped rules through the shipped helper, rendered from this
# tree and fed by the daemon's own -P on config $1.
nl_rules() {
	sed -e "s|@sbindir@|$NL_TMP|g" -e "s|@sysconfdir@|$NL_TMP|g" \
	    -e "s|@pkgdatadir@|$NL_SRC/etc|g" \
	    "$NL_SRC/src/ipsec-masqd-firewall.in" > "$NL_TMP/ipsec-masqd-firewall" &&
	chmod +x "$NL_TMP/ipsec-masqd-firewall" &&
	nl_in "$NL_RTR" env IPSEC_MASQD="$NL_BIN" IPSEC_MASQD_RULES_DIR="$NL_SRC/etc" \
		"$NL_TMP/ipsec-masqd-firewall" -c "$1" up
}

# Starts the daemon in the router on config $1 (the fast path switch
# IPSEC_MASQD_TEST_FASTPATH applied to it, tests/lib/fastpath.sh), logging
# (stderr, -v) to $2, as root with its two capabilities: -u root
# (NL_DAEMON_USER, empty for none), since the tests keep their files in
# 0700 directories of root's that the ipsec-masqd user, where it exists,
# could not reach (tests/test_privilege.sh tests the switch itself);
# NL_DPID and NL_DLOG set. Returns 1 if it does not say "started" within
# 5 s, or, under IPSEC_MASQD_TEST_FASTPATH=on, if it started without its
# fast path table (a run "with the fast path" that queued everything would
# prove nothing about it).
NL_DAEMON_USER=root NL_DCONF_SRC= NL_DCONF=
nl_daemon_start() {
	NL_DCONF_SRC=$1 NL_DCONF=$1
	NL_DLOG=$2
	nl_daemon_reconf || return 1
	ip netns exec "$NL_RTR" "$NL_BIN" -c "$NL_DCONF" ${NL_DAEMON_USER:+-u "$NL_DAEMON_USER"} -v >>"$2" 2>&1 &
	NL_DPID=$!
	nl_wait_log "started" 50 "$2" && nl_fastpath_started "$2"
}

# The file the daemon reads (NL_DCONF, the one the test wrote): the fast
# path switch applied to it in place (nl_fastpath_conf), so that a SIGHUP
# reads the test's change and "reloaded config file FILE" names its file. A
# test that rewrites its config for a SIGHUP calls it again.
nl_daemon_reconf() {
	[ -n "$NL_DCONF_SRC" ] || return 0
	NL_DCONF=$NL_DCONF_SRC
	nl_fastpath_conf "$NL_DCONF"
}

# Sanitizer reports (ASan, LSan, UBSan) in the daemon's log.
NL_SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|LeakSanitizer|runtime error:|SUMMARY: [A-Za-z]*Sanitizer'

# SIGTERM to the daemon; returns its exit status. A status other than 0 and
# any sanitizer report in its log (scripts/test.sh runs these tests against
# the ASan/UBSan build too) are failures of the test.
nl_daemon_stop() {
	local rc
	[ -n "$NL_DPID" ] || return 0
	kill -TERM "$NL_DPID" 2>/dev/null
	wait "$NL_DPID"; rc=$?
	NL_DPID=
	[ "$rc" = 0 ] || nl_fail "the daemon exited with status $rc"
	if [ -n "${NL_DLOG:-}" ] && grep -qE "$NL_SANITIZER_RE" "$NL_DLOG" 2>/dev/null; then
		nl_fail "sanitizer report in the daemon log $NL_DLOG"
		grep -E -A 30 "$NL_SANITIZER_RE" "$NL_DLOG" | head -n 60
		[ "$rc" = 0 ] && rc=1
	fi
	return $rc
}

# Starts a capture in namespace $1 on $2 into pcap $3 (optional BPF $4);
# the PID is in NL_LAST. Returns 1 if tcpdump is not listening within 5 s.
# --immediate-mode: libpcap's TPACKET_V3 ring otherwise hands packets over
# in blocks, up to a second late, and a capture stopped right after the
# traffic would lose its last block (and "zero packets" would lie). Stop it
# with nl_capture_stop, which leaves a second for the last packets.
nl_capture_start() {
	nl_spawn "$1" tcpdump -i "$2" -n -U --immediate-mode -s 256 -w "$3" ${4:+"$4"} 2>"$3.err"
	nl_wait_log "listening on" 50 "$3.err"
}

nl_capture_stop() { sleep 1; nl_stop "$1"; }

# Packets in pcap $1 matching BPF $2; -1 if the file cannot be read or the
# filter does not compile (a typo must not count as "zero packets").
nl_pcap_count() {
	local out
	[ -r "$1" ] || { echo -1; return; }
	out=$(tcpdump -n -r "$1" "$2" 2>/dev/null) || { echo -1; return; }
	[ -z "$out" ] && echo 0 || printf '%s\n' "$out" | wc -l
}

# BPF for ESP with SPI $1 (the 4 bytes after the IP header).
nl_bpf_spi() { echo "ip proto 50 and ip[((ip[0] & 0xf) << 2):4] = $1"; }

# nl_jget FILE EXPR: EXPR (Python) evaluated on the JSON object d of FILE's
# last line; -1 on any error, so that a missing value fails a comparison.
nl_jget() {
	"$NL_PY" - "$@" <<'PYEOF' 2>/dev/null || echo -1
import json, sys
try:
    d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    v = eval(sys.argv[2])
    print(int(v) if isinstance(v, bool) else v)
except Exception:
    print(-1)
PYEOF
}

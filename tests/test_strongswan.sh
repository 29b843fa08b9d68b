#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# strongSwan IKEv2 through ipsec-masqd (issue 4): two LAN hosts, each in its
# own namespace with its own charon-systemd, bring up IKE and CHILD SAs with
# the same remote gateway at the same time, through the real daemon and the
# shipped rules in the router, and a ping passes through each tunnel.
#
#   h1 192.168.1.10 (inner 10.10.1.1) \
#                                      [lan0] rtr: ipsec-masqd [wan0] --- gw
#   h2 192.168.1.11 (inner 10.10.2.1) / 192.168.1.1   198.51.100.1   198.51.100.20
#                                                                (inner 10.20.0.1)
#
# This kernel has no in-kernel ESP: every charon uses kernel-libipsec
# (user-space ESP over a TUN device), which requires UDP encapsulation, so
# after IKE_SA_INIT on UDP/500 charon moves to UDP/4500, which the shipped
# rules MASQUERADE like any UDP. What this test proves about the daemon is
# the UDP/500 path: both hosts' IKE_SA_INIT leave from 198.51.100.1 with
# source port 500, and each host gets its own replies (by IKE SPI). Then
# both tunnels carry pings (both ways), the gateway has no route to the LAN,
# and a capture on the WAN sees no 192.168.0.0/16 source and no inner
# (10.0.0.0/8) packet at all. strongSwan alone copes with plain MASQUERADE
# (it floats to UDP/4500 either way; the second host's IKE_SA_INIT then
# leaves with a remapped source port): the SAs and pings passing prove the
# path works, the wire and table checks prove it went through ipsec-masqd.
#
# The charon configs are the templates in tests/strongswan/. Each charon
# reads only its own STRONGSWAN_CONF (vici socket, log file, plugin list);
# charon-systemd writes no pid file: its PID is the one we start.
# Exit 77 (skip) when not root or a tool is missing. KEEP=1 keeps the logs.

# make check runs it as "$(SHELL) test_strongswan.sh": it needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

P=imsw-                       # this test's namespace prefix
H1=${P}h1 H2=${P}h2 RTR=${P}rtr GW=${P}gw
H1_IP=192.168.1.10 H2_IP=192.168.1.11 EXT=198.51.100.1 GW_IP=198.51.100.20
H1_IN=10.10.1.1 H2_IN=10.10.2.1 GW_IN=10.20.0.1
SRC=${top_srcdir:-$(dirname "$0")/..}
BIN=${IPSEC_MASQD:-${top_builddir:-.}/ipsec-masqd}
CHARON=${CHARON:-/usr/sbin/charon-systemd}
PLUGINDIR=/usr/lib/ipsec/plugins
TMP= DPID=
PIDS=()
FAILS=0
T0=$SECONDS

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, iptables, NFQUEUE)"
for t in ip iptables iptables-restore tcpdump ethtool ping timeout; do
	command -v "$t" >/dev/null 2>&1 ||
		skip "$t not installed (apt-get install iproute2 iptables tcpdump ethtool iputils-ping)"
done
[ -x "$CHARON" ] || skip "$CHARON missing (apt-get install charon-systemd)"
command -v swanctl >/dev/null 2>&1 || skip "swanctl missing (apt-get install strongswan-swanctl)"
for p in kernel-libipsec kernel-netlink socket-default vici openssl kdf random nonce aes sha2 hmac; do
	[ -f "$PLUGINDIR/libstrongswan-$p.so" ] ||
		skip "strongSwan plugin $p missing in $PLUGINDIR (apt-get install charon-systemd strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins)"
done
[ -c /dev/net/tun ] || skip "no /dev/net/tun (kernel-libipsec needs a TUN device)"
[ -x "$BIN" ] || skip "$BIN not built"
[ -f "$SRC/src/ipsec-masqd-firewall.in" ] || skip "no $SRC/src/ipsec-masqd-firewall.in"
[ -f "$SRC/tests/strongswan/strongswan.conf.in" ] || skip "no $SRC/tests/strongswan templates"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
SRC=$(cd "$SRC" && pwd)
TPL=$SRC/tests/strongswan

ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

namespaces() {
	ip netns list 2>/dev/null | awk -v p="$P" 'index($1, p) == 1 {print $1}'
}

# Removes our namespaces; processes still inside them (a killed run's
# charons, daemon, captures) are ended by PID first.
remove_namespaces() {
	local ns pid
	for ns in $(namespaces); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
	done
	for ns in $(namespaces); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			sleep 0.3; kill -9 "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
}

# Ends what this script started, by PID only.
cleanup() {
	local p
	for p in ${PIDS[@]+"${PIDS[@]}"} $DPID; do kill "$p" 2>/dev/null; done
	for p in ${PIDS[@]+"${PIDS[@]}"} $DPID; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
	done
	remove_namespaces
	if [ -n "$TMP" ] && [ "$FAILS" = 0 ] && [ -z "${KEEP:-}" ]; then
		rm -rf "$TMP"
	elif [ -n "$TMP" ]; then
		echo "logs kept in $TMP"
	fi
}

# Starts "$@" in namespace $1 in the background (ip execs it, so $! is
# the command itself); the PID goes to PIDS and LAST.
spawn() { local ns=$1; shift; ip netns exec "$ns" "$@" & LAST=$!; PIDS+=("$LAST"); }

# Ends one process we started and forgets it.
stop() {
	local pid=$1 keep=() p
	kill "$pid" 2>/dev/null
	for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	for p in ${PIDS[@]+"${PIDS[@]}"}; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=(${keep[@]+"${keep[@]}"})
}

# Waits up to $2 tenths of a second for a line matching ERE $1 in file $3.
wait_log() {
	local i
	for ((i = 0; i < $2; i++)); do
		grep -qE -- "$1" "$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

remove_namespaces
trap cleanup EXIT
trap 'exit 1' INT TERM
TMP=$(mktemp -d "/tmp/${P}XXXXXX")
echo "# logs in $TMP"

# --- topology ----------------------------------------------------------------
link_up() {   # veth checksum offload leaves UDP checksums unfinished
	in_ns "$1" ip link set "$2" up && { in_ns "$1" ethtool -K "$2" tx off rx off >/dev/null 2>&1; :; }
}

setup_net() {
	local ns h ip inner i
	for ns in "$H1" "$H2" "$RTR" "$GW"; do
		ip netns add "$ns" || return 1
		in_ns "$ns" ip link set lo up
		in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
		in_ns "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
	done
	in_ns "$RTR" ip link add lan0 type bridge || return 1
	i=1
	for h in "$H1:$H1_IP:$H1_IN" "$H2:$H2_IP:$H2_IN"; do
		IFS=: read -r ns ip inner <<<"$h"
		ip link add eth0 netns "$ns" type veth peer name lanp$i netns "$RTR" || return 1
		in_ns "$RTR" ip link set lanp$i master lan0 && link_up "$RTR" lanp$i || return 1
		in_ns "$ns" ip addr add "$ip/24" dev eth0 && link_up "$ns" eth0 || return 1
		in_ns "$ns" ip route add default via 192.168.1.1 || return 1
		# the tunnel's inner address (no dummy driver here: on lo)
		in_ns "$ns" ip addr add "$inner/32" dev lo || return 1
		i=$((i + 1))
	done
	in_ns "$RTR" ip addr add 192.168.1.1/24 dev lan0 && link_up "$RTR" lan0 || return 1
	ip link add wan0 netns "$RTR" type veth peer name eth0 netns "$GW" || return 1
	in_ns "$RTR" ip addr add "$EXT/24" dev wan0 && link_up "$RTR" wan0 || return 1
	in_ns "$GW" ip addr add "$GW_IP/24" dev eth0 && link_up "$GW" eth0 || return 1
	in_ns "$GW" ip addr add "$GW_IN/32" dev lo || return 1
	# The gateway gets no route to 192.168.1.0/24 (nor to 10.10.0.0/16 but
	# through its tunnels): only masqueraded traffic can be answered.
	in_ns "$RTR" sysctl -qw net.ipv4.ip_forward=1 || return 1
	for ns in "$H1" "$H2"; do in_ns "$ns" ping -c1 -W2 192.168.1.1 >/dev/null 2>&1; done
	in_ns "$GW" ping -c1 -W2 "$EXT" >/dev/null 2>&1
	return 0
}

# The shipped rules through the shipped helper, rendered from this tree and
# fed by the daemon's own -P.
setup_rules() {
	sed -e "s|@sbindir@|$TMP|g" -e "s|@sysconfdir@|$TMP|g" \
	    -e "s|@pkgdatadir@|$SRC/etc|g" \
	    "$SRC/src/ipsec-masqd-firewall.in" > "$TMP/ipsec-masqd-firewall" &&
	chmod +x "$TMP/ipsec-masqd-firewall" &&
	in_ns "$RTR" env IPSEC_MASQD="$BIN" IPSEC_MASQD_RULES_DIR="$SRC/etc" \
		"$TMP/ipsec-masqd-firewall" -c "$TMP/masqd.conf" up
}

cat > "$TMP/masqd.conf" <<CONF
# ipsec-masqd for tests/test_strongswan.sh
queue = 0;
external = { address = "$EXT"; };
internal = [ "192.168.1.0/24" ];
esp = { parallel_sessions = true; lifetime = 1800.0; };
isakmp = { lifetime = 1800.0; };
control = { socket = "$TMP/control"; };
state = { file = "$TMP/state"; };
log = { level = "info"; };
CONF
# the fast path switch of the namespace tests (tests/lib/fastpath.sh)
. "$SRC/tests/lib/fastpath.sh" || { echo "cannot source tests/lib/fastpath.sh"; exit 99; }
nl_fastpath_conf "$TMP/masqd.conf" || exit 99

setup_net || { echo "cannot build the namespaces"; exit 99; }
setup_rules || { echo "cannot load the rules"; exit 99; }
LOG=$TMP/daemon.log
# ip execs the daemon, so $! is the daemon (a shell function would fork)
ip netns exec "$RTR" "$BIN" -c "$TMP/masqd.conf" -u root -v >>"$LOG" 2>&1 &
DPID=$!
wait_log "started" 50 "$LOG" && nl_fastpath_started "$LOG" || { fail "ipsec-masqd did not start"; cat "$LOG"; exit 1; }
ok "namespaces, shipped rules, ipsec-masqd (pid $DPID)"

# --- captures ----------------------------------------------------------------
# --immediate-mode: libpcap's TPACKET_V3 ring otherwise hands packets over
# in blocks, up to a second late, and a capture stopped right after the
# traffic (this test is quick) loses its last block.
capture() {   # $1 ns, $2 iface, $3 pcap
	spawn "$1" tcpdump -i "$2" -n -U --immediate-mode -s 512 -w "$3" 2>"$3.err"
	wait_log "listening on" 50 "$3.err"
}
CAPS=()
capture "$GW" eth0 "$TMP/wan.pcap" && CAPS+=("$LAST") || fail "capture on the WAN"
capture "$H1" eth0 "$TMP/h1.pcap" && CAPS+=("$LAST") || fail "capture on h1"
capture "$H2" eth0 "$TMP/h2.pcap" && CAPS+=("$LAST") || fail "capture on h2"

# --- charons -----------------------------------------------------------------
PSK_A="h1-$RANDOM$RANDOM-$$" PSK_B="h2-$RANDOM$RANDOM-$$"
render() {   # $1 template, $2 output, then NAME=VALUE pairs for @NAME@
	local tpl=$1 out=$2 args=() kv; shift 2
	for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
	sed "${args[@]}" "$tpl" > "$out" && ! grep -q '@[A-Z_]*@' "$out"
}

# Starts charon-systemd in namespace $1 with the config in $TMP/$1;
# CH_<name> is its PID. Ready once its vici socket answers.
start_charon() {
	local ns=$1 dir=$TMP/$1 i
	env -u NOTIFY_SOCKET STRONGSWAN_CONF="$dir/strongswan.conf" \
		ip netns exec "$ns" "$CHARON" >"$dir/stderr" 2>&1 &
	PIDS+=("$!")
	eval "CH_${ns//-/_}=$!"
	for ((i = 0; i < 100; i++)); do
		[ -S "$dir/charon.vici" ] && swan "$ns" --stats >/dev/null 2>&1 && return 0
		kill -0 "$!" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# swanctl against the charon of namespace $1 (run in that namespace too).
swan() {
	local ns=$1 dir=$TMP/$1; shift
	in_ns "$ns" env STRONGSWAN_CONF="$dir/strongswan.conf" SWANCTL_DIR="$dir" \
		timeout 40 swanctl "$@" --uri "unix://$dir/charon.vici"
}

# Loads the instance's swanctl.conf (no certificate directories: PSK only,
# swanctl notes their absence in load.out).
load_all() {
	local out=$TMP/$1/load.out
	swan "$1" --load-all --noprompt --file "$TMP/$1/swanctl.conf" >"$out" 2>&1 &&
	grep -q "^loaded ike secret" "$out" &&
	grep -q "^successfully loaded [1-9][0-9]* connections, 0 unloaded" "$out"
}

for ns in "$H1" "$H2" "$GW"; do
	mkdir -p "$TMP/$ns" && render "$TPL/strongswan.conf.in" "$TMP/$ns/strongswan.conf" "DIR=$TMP/$ns" ||
		{ echo "cannot render $TPL/strongswan.conf.in"; exit 99; }
done
render "$TPL/host.swanctl.conf.in" "$TMP/$H1/swanctl.conf" \
	"LAN_IP=$H1_IP" "ID=host-a" "INNER_NET=10.10.1.0/24" "PSK=$PSK_A" &&
render "$TPL/host.swanctl.conf.in" "$TMP/$H2/swanctl.conf" \
	"LAN_IP=$H2_IP" "ID=host-b" "INNER_NET=10.10.2.0/24" "PSK=$PSK_B" &&
render "$TPL/gw.swanctl.conf.in" "$TMP/$GW/swanctl.conf" "PSK_A=$PSK_A" "PSK_B=$PSK_B" ||
	{ echo "cannot render the swanctl.conf templates"; exit 99; }

for ns in "$GW" "$H1" "$H2"; do
	if start_charon "$ns"; then
		ok "charon-systemd in $ns answers on its vici socket"
	else
		fail "charon-systemd in $ns did not come up"
		cat "$TMP/$ns/stderr" "$TMP/$ns/charon.log" 2>/dev/null | tail -30
		exit 1
	fi
	check "$ns: kernel-libipsec loaded, its TUN device ipsec0 created" \
		grep -q "created TUN device: ipsec0" "$TMP/$ns/charon.log"
	check "$ns: swanctl --load-all loads the PSKs and connections" load_all "$ns"
done

# --- both hosts at the same time ---------------------------------------------
T1=$SECONDS
swan "$H1" --initiate --child tun --timeout 30 >"$TMP/$H1/initiate.out" 2>&1 &
I1=$!
swan "$H2" --initiate --child tun --timeout 30 >"$TMP/$H2/initiate.out" 2>&1 &
I2=$!
wait $I1; R1=$?
wait $I2; R2=$?
check "h1 ($H1_IP) initiates IKE and CHILD SA (rc $R1, $((SECONDS - T1)) s)" [ $R1 = 0 ]
check "h2 ($H2_IP) initiates IKE and CHILD SA (rc $R2, $((SECONDS - T1)) s)" [ $R2 = 0 ]

swan "$GW" --list-sas >"$TMP/gw.sas" 2>&1
# "host-a: #1, ESTABLISHED, IKEv2, ..." then "  local  'gw.example' @ 198.51.100.20[4500]"
# and "  remote 'host-a' @ 198.51.100.1[4500]", then the CHILD SA "tun-a: #1, ..., INSTALLED, TUNNEL-in-UDP"
sa_up() {   # $1 conn, $2 child: established from the router's address, child installed
	awk -v c="$1" -v ch="$2" -v ext="$EXT" '
		$1 == c":" && /ESTABLISHED/ { in_sa = 1; next }
		/^[^ ]/ { in_sa = 0 }
		in_sa && $1 == "remote" && index($0, "@ " ext "[") { from_ext = 1 }
		in_sa && $1 == ch":" && /INSTALLED/ { child = 1 }
		END { exit !(from_ext && child) }' "$TMP/gw.sas"
}
check "the gateway has host-a's IKE SA from $EXT with CHILD SA tun-a installed" sa_up host-a tun-a
check "the gateway has host-b's IKE SA from $EXT with CHILD SA tun-b installed" sa_up host-b tun-b

# --- pings through each tunnel -----------------------------------------------
# Up to 10 single pings (1 s each), at least 3 answers.
pings() {   # $1 ns, $2 from, $3 to
	local n=0 i
	for ((i = 0; i < 10 && n < 3; i++)); do
		in_ns "$1" ping -n -c1 -W1 -I "$2" "$3" >/dev/null 2>&1 && n=$((n + 1))
	done
	echo "$n"
	[ "$n" -ge 3 ]
}
n=$(pings "$H1" "$H1_IN" "$GW_IN")
check "ping $H1_IN -> $GW_IN through h1's tunnel ($n answers)" [ "$n" -ge 3 ]
n=$(pings "$H2" "$H2_IN" "$GW_IN")
check "ping $H2_IN -> $GW_IN through h2's tunnel ($n answers)" [ "$n" -ge 3 ]
n=$(pings "$GW" "$GW_IN" "$H1_IN")
check "ping $GW_IN -> $H1_IN from the gateway into h1's tunnel ($n answers)" [ "$n" -ge 3 ]
n=$(pings "$GW" "$GW_IN" "$H2_IN")
check "ping $GW_IN -> $H2_IN from the gateway into h2's tunnel ($n answers)" [ "$n" -ge 3 ]
check "the gateway has no route to the LAN" \
	bash -c "! ip netns exec $GW ip route get $H1_IP >/dev/null 2>&1"

# the daemon's own view: ISAKMP entries for both hosts
kill -USR1 "$DPID"
wait_log "isakmp remote=$GW_IP host=$H2_IP " 30 "$LOG"
sleep 1
for p in "${CAPS[@]}"; do stop "$p"; done

# --- what the wires saw ------------------------------------------------------
# IKE headers of UDP/500 packets, one a line: "src sport dst dport spi_i spi_r
# exchange flags" (the IKE header follows the 8-byte UDP header; no
# non-ESP marker on port 500).
ike500() {
	tcpdump -n -r "$1" -x 'ip and udp port 500' 2>/dev/null | awk '
		function num(h,   v, k) {   # hex string to number (no strtonum in mawk)
			v = 0
			for (k = 1; k <= length(h); k++)
				v = v * 16 + index("0123456789abcdef", substr(h, k, 1)) - 1
			return v
		}
		function flush() {
			if (hdr == "") return
			gsub(/ /, "", hex)
			u = num(substr(hex, 2, 1)) * 8; i = u + 16
			print src, num(substr(hex, u + 1, 4)), dst, num(substr(hex, u + 5, 4)), \
			      substr(hex, i + 1, 16), substr(hex, i + 17, 16), \
			      num(substr(hex, i + 37, 2)), substr(hex, i + 39, 2)
			hdr = ""; hex = ""
		}
		/^[0-9]/ { flush(); hdr = $0; split($3, a, "."); src = a[1]"."a[2]"."a[3]"."a[4]
		           split($5, b, "."); dst = b[1]"."b[2]"."b[3]"."b[4]; next }
		/^\t0x/ { $1 = ""; hex = hex $0 }
		END { flush() }'
}
ike500 "$TMP/wan.pcap" >"$TMP/wan.ike"
ike500 "$TMP/h1.pcap" >"$TMP/h1.ike"
ike500 "$TMP/h2.pcap" >"$TMP/h2.ike"

# exchange 34 = IKE_SA_INIT; flags 08 = initiator request, 20 = response
spis_out() {   # initiator SPIs of the IKE_SA_INITs host $2 sent (file $1)
	awk -v h="$2" '$1 == h && $2 == 500 && $7 == 34 && $8 == "08" {print $5}' "$1" | sort -u
}
A=$(spis_out "$TMP/h1.ike" "$H1_IP")
B=$(spis_out "$TMP/h2.ike" "$H2_IP")
check "h1 sent IKE_SA_INIT from $H1_IP:500 (SPI ${A:-none})" [ -n "$A" ]
check "h2 sent IKE_SA_INIT from $H2_IP:500 (SPI ${B:-none})" [ -n "$B" ]
both_distinct() { [ -n "$A" ] && [ -n "$B" ] && ! grep -qxFf <(echo "$A") <(echo "$B"); }
check "the two hosts' IKE SAs have different initiator SPIs" both_distinct

# On the WAN: each host's IKE_SA_INIT from 198.51.100.1:500, and the reply.
wan_init() {   # $1 SPI list: an IKE_SA_INIT with one of these SPIs, from EXT:500 to GW:500
	awk -v ext="$EXT" -v gw="$GW_IP" 'NR == FNR { s[$1] = 1; next }
		$1 == ext && $2 == 500 && $3 == gw && $4 == 500 && $7 == 34 && $8 == "08" && ($5 in s) { n++ }
		END { exit !n }' <(echo "$1") "$TMP/wan.ike"
}
check "WAN: h1's IKE_SA_INIT leaves from $EXT with source port 500" wan_init "$A"
check "WAN: h2's IKE_SA_INIT leaves from $EXT with source port 500" wan_init "$B"
n=$(awk -v ext="$EXT" '$1 == ext && $2 != 500' "$TMP/wan.ike" | wc -l)
check "WAN: no UDP/500 packet from $EXT with another source port ($n)" [ "$n" = 0 ]

# Each host: at least one IKE_SA_INIT response for its SPI, and every
# UDP/500 packet it received carries one of its own SPIs.
replies() {   # $1 file, $2 host, $3 own SPIs: prints "own foreign"
	awk -v gw="$GW_IP" -v h="$2" 'NR == FNR { s[$1] = 1; next }
		$1 == gw && $3 == h { if ($5 in s) { if ($7 == 34 && $8 == "20") own++ } else foreign++ }
		END { print own + 0, foreign + 0 }' <(echo "$3") "$1"
}
read -r own foreign < <(replies "$TMP/h1.ike" "$H1_IP" "$A")
check "h1 receives its IKE_SA_INIT reply on port 500 ($own)" [ "$own" -ge 1 ]
check "h1 receives no IKE packet of another SA ($foreign)" [ "$foreign" = 0 ]
read -r own foreign < <(replies "$TMP/h2.ike" "$H2_IP" "$B")
check "h2 receives its IKE_SA_INIT reply on port 500 ($own)" [ "$own" -ge 1 ]
check "h2 receives no IKE packet of another SA ($foreign)" [ "$foreign" = 0 ]

# The daemon's table: each host's entry under its own SPI.
dump_has() {   # $1 host, $2 SPI list
	local s
	for s in $2; do
		grep -qE "isakmp remote=$GW_IP host=$1 cookie_i=$s cookie_r=[0-9a-f]*[1-9a-f]" "$LOG" && return 0
	done
	return 1
}
check "ipsec-masqd's table: h1's IKE SA (SPI $A) -> $H1_IP" dump_has "$H1_IP" "$A"
check "ipsec-masqd's table: h2's IKE SA (SPI $B) -> $H2_IP" dump_has "$H2_IP" "$B"

# After IKE_SA_INIT, UDP/4500 (kernel-libipsec forces UDP encapsulation)
n=$(tcpdump -n -r "$TMP/wan.pcap" "src host $EXT and udp dst port 4500" 2>/dev/null | wc -l)
check "WAN: IKE_AUTH and ESP-in-UDP left $EXT towards UDP/4500 ($n packets)" [ "$n" -ge 4 ]

# Exact: nothing with a LAN source, nothing of the inner networks.
n=$(tcpdump -n -r "$TMP/wan.pcap" 'src net 192.168.0.0/16' 2>/dev/null | wc -l)
m=$(tcpdump -n -r "$TMP/wan.pcap" 2>/dev/null | wc -l)
check "WAN: zero packets with a 192.168.0.0/16 source ($n of $m)" [ "$n" = 0 -a "$m" -gt 0 ]
n=$(tcpdump -n -r "$TMP/wan.pcap" 'ip and net 10.0.0.0/8' 2>/dev/null | wc -l)
check "WAN: zero unencrypted inner packets ($n)" [ "$n" = 0 ]

check "ipsec-masqd is still running" kill -0 "$DPID"
kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=
check "ipsec-masqd exits 0 on SIGTERM ($rc)" [ "$rc" = 0 ]

echo "# $((SECONDS - T0)) s"
if [ "$FAILS" != 0 ]; then
	for ns in "$H1" "$H2" "$GW"; do
		echo "--- $ns charon log (tail)"; tail -40 "$TMP/$ns/charon.log" 2>/dev/null
	done
	echo "--- daemon log"; cat "$LOG"
	exit 1
fi
echo "all passed"
exit 0

#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# The strongSwan updown script (contrib/strongswan/ipsec-masqd-updown) on a
# LAN host behind ipsec-masqd (issue 16): h1's charon (tests/lib/strongswan.sh)
# brings up an IKEv2 CHILD SA with the gateway r1 through the real daemon
# and the shipped rules; the script, enabled by the updown line in the CHILD
# section, announces the SPIs to the router; `ipsec-masqctl show` then lists
# exactly the SPIs `swanctl --list-sas` shows on h1, as one announced entry.
# Terminating the CHILD SA withdraws it: the entry goes. The WAN sees no LAN
# source. Exit 77 (skip) when not root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imanw-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
. "$NL_SRC/tests/lib/strongswan.sh" || { echo "cannot source tests/lib/strongswan.sh"; exit 99; }
sw_init
BUILD=$(dirname "$NL_BIN")
CTL=$BUILD/ipsec-masqctl
UPDOWN=$BUILD/contrib/strongswan/ipsec-masqd-updown
for f in "$CTL" "$BUILD/ipsec-masqd-announce" "$UPDOWN"; do
	[ -x "$f" ] || nl_skip "$f not built"
done
TMP=$NL_TMP
T0=$(date +%s)
KEY_NET=$(printf 'ipsec-masqd announce strongswan test' | sha256sum | cut -c1-64)
printf '%s\n' "$KEY_NET" > "$TMP/net.keys"
chmod 600 "$TMP/net.keys"
ctl() { "$CTL" -s "$TMP/control" "$@"; }

cat > "$TMP/a.conf" <<CONF
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$NL_LAN_NET" ];
esp = { parallel_sessions = true; };
control = { socket = "$TMP/control"; };
announce = { listen = "192.168.1.1"; key_file = "$TMP/net.keys"; };
log = { level = "info"; };
CONF

nl_topology || { echo "cannot build the namespaces"; exit 99; }
# h1 and r1 run IKE themselves here (netns.sh drops it for the scapy peers)
for ns in "$NL_H1" "$NL_R1"; do
	nl_in "$ns" iptables -w -F INPUT
done
nl_in "$NL_H1" ip addr add 10.10.1.1/32 dev lo
nl_in "$NL_R1" ip addr add 10.20.0.1/32 dev lo
nl_rules "$TMP/a.conf" || { echo "cannot load the rules"; exit 99; }
nl_capture_start "$NL_WAN" up0 "$TMP/wan.pcap" || { echo "cannot capture on the WAN"; exit 99; }
CAP=$NL_LAST
LOG=$TMP/daemon.log
nl_daemon_start "$TMP/a.conf" "$LOG" || { nl_fail "daemon did not start"; cat "$LOG"; exit 1; }
nl_ok "namespaces, shipped rules, ipsec-masqd with the announce listener"

# charons: r1 the gateway (host-a is h1), h1 with the updown line
PSK_A="a-$RANDOM$RANDOM-$$"
sw_prepare "$NL_R1" && sw_prepare "$NL_H1" updown || { echo "cannot render strongswan.conf"; exit 99; }
sw_render "$SW_TPL/gw.swanctl.conf.in" "$TMP/$NL_R1/swanctl.conf" "PSK_A=$PSK_A" "PSK_B=unused-$$" &&
sw_render "$SW_TPL/host.swanctl.conf.in" "$TMP/$NL_H1/swanctl.conf" \
	"LAN_IP=$NL_H1_IP" "ID=host-a" "INNER_NET=10.10.1.0/24" "PSK=$PSK_A" ||
	{ echo "cannot render the swanctl.conf templates"; exit 99; }
# The one line an admin adds; here it names the test's settings file first
# (key file, sender binary, state directory, vici socket).
cat > "$TMP/$NL_H1/announce.defaults" <<DEF
IPSEC_MASQD_KEY_FILE=$TMP/net.keys
IPSEC_MASQD_ANNOUNCE=$BUILD/ipsec-masqd-announce
IPSEC_MASQD_STATE_DIR=$TMP/$NL_H1/announced
IPSEC_MASQD_LOG=$TMP/$NL_H1/updown.log
SWANCTL_ARGS="--uri unix://$TMP/$NL_H1/charon.vici"
STRONGSWAN_CONF=$TMP/$NL_H1/strongswan.conf
export STRONGSWAN_CONF
DEF
sed -i "s|^\(\t*\)mode = tunnel|&\n\1updown = \"IPSEC_MASQD_DEFAULTS=$TMP/$NL_H1/announce.defaults $UPDOWN\"|" \
	"$TMP/$NL_H1/swanctl.conf"
nl_check "h1's swanctl.conf has the updown line" grep -q "updown = \".*ipsec-masqd-updown\"" "$TMP/$NL_H1/swanctl.conf"
for ns in "$NL_R1" "$NL_H1"; do
	if sw_start "$ns"; then
		nl_ok "charon in $ns answers on its vici socket"
	else
		nl_fail "charon in $ns did not come up"
		tail -30 "$TMP/$ns/stderr" "$TMP/$ns/charon.log" 2>/dev/null
		exit 1
	fi
	nl_check "$ns: swanctl --load-all" sw_load_all "$ns"
done

sw_swan "$NL_H1" --initiate --child tun --timeout 30 >"$TMP/initiate.out" 2>&1; rc=$?
nl_check "h1 initiates IKE and the CHILD SA tun (rc $rc)" [ $rc = 0 ]

# h1's SPIs as swanctl shows them (its plain --list-sas), one CHILD SA
sw_swan "$NL_H1" --list-sas > "$TMP/h1.sas" 2>&1
# "  tun: #1, reqid 1, INSTALLED, ..." then "    in  c9b8d1a4,  0 bytes, ..."
# and "    out c2e51f0f,  0 bytes, ..."
read -r SPI_IN SPI_OUT < <(awk '$1 == "tun:" && /INSTALLED/ { c = 1; next }
	c && $1 == "in" { si = $2 } c && $1 == "out" { so = $2 }
	c && si != "" && so != "" { sub(/,$/, "", si); sub(/,$/, "", so); print si, so; exit }' "$TMP/h1.sas")
nl_check "swanctl --list-sas on h1 shows the CHILD SA's SPIs (in ${SPI_IN:-none}, out ${SPI_OUT:-none})" \
	eval '[ -n "${SPI_IN:-}" ] && [ -n "${SPI_OUT:-}" ]'
want="[('$NL_R1_IP', '$NL_H1_IP', '0x${SPI_IN:-}', '0x${SPI_OUT:-}', 'announced')]"
v=
for i in $(seq 100); do
	ctl show --json > "$TMP/show.json" 2>/dev/null
	v=$("$NL_PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(sorted((e["remote"], e["host"], e["spi_in"], e["spi_out"], e["state"]) for e in d["esp"]))' "$TMP/show.json" 2>&1)
	[ "$v" = "$want" ] && break
	sleep 0.2
done
nl_check "ipsec-masqctl show lists exactly those SPIs, announced ($v)" [ "$v" = "$want" ]
nl_check "the daemon logged the updown's announcement" \
	grep -qE "DECISION=announce_accepted REASON=accepted LAN_ADDR=$NL_H1_IP ANNOUNCE_TYPE=announce PEER_ADDR=$NL_R1_IP ESP_SPI_IN=0x$SPI_IN ESP_SPI_OUT=0x$SPI_OUT" "$LOG"
n=$(pings=0; for i in 1 2 3 4 5; do nl_in "$NL_H1" ping -n -c1 -W1 -I 10.10.1.1 10.20.0.1 >/dev/null 2>&1 && pings=$((pings + 1)); done; echo $pings)
nl_check "the tunnel carries pings ($n of 5)" [ "$n" -ge 3 ]

sw_swan "$NL_H1" --terminate --child tun --timeout 20 >"$TMP/terminate.out" 2>&1; rc=$?
nl_check "h1 terminates the CHILD SA (rc $rc)" [ $rc = 0 ]
for i in $(seq 100); do
	ctl show --json > "$TMP/show.json" 2>/dev/null
	v=$("$NL_PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["esp"]))' "$TMP/show.json" 2>&1)
	[ "$v" = 0 ] && break
	sleep 0.2
done
nl_check "down-client withdrew it: no ESP entry left ($v)" [ "$v" = 0 ]
nl_check "the daemon logged the withdraw" \
	grep -qE "DECISION=announce_accepted REASON=accepted LAN_ADDR=$NL_H1_IP ANNOUNCE_TYPE=withdraw PEER_ADDR=$NL_R1_IP ESP_SPI_IN=0x$SPI_IN" "$LOG"

nl_daemon_stop; rc=$?
nl_check "the daemon exits 0 on SIGTERM ($rc)" [ "$rc" = 0 ]
nl_capture_stop "$CAP"
n=$(nl_pcap_count "$TMP/wan.pcap" "src net $NL_LAN_NET")
m=$(nl_pcap_count "$TMP/wan.pcap" "udp")
nl_check "no LAN source on the WAN ($n of $m UDP packets)" eval '[ "$n" = 0 ] && [ "$m" -gt 0 ]'

echo "# $(($(date +%s) - T0)) s"
if [ "$NL_FAILS" != 0 ]; then
	echo "--- updown log"; cat "$TMP/$NL_H1/updown.log" 2>/dev/null
	echo "--- h1 charon log (tail)"; tail -40 "$TMP/$NL_H1/charon.log" 2>/dev/null
	echo "--- daemon log"; cat "$LOG"
	echo "$NL_FAILS check(s) failed"
	exit 1
fi
echo "all passed"
exit 0

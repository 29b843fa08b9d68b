#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# The egress guard is exact in every backend (issue 12, found in review):
# no LAN address leaves on the WAN, as a source or quoted in an ICMP error.
# The namespaces of tests/lib/netns.sh, the shipped rules loaded by the
# shipped helper, the real daemon; once per backend this kernel allows
# ("hybrid": nft table + iptables NFQUEUE; "iptables" alone). Scenarios:
#   1 the router's own LAN address answering on the WAN: r1 routes the LAN
#     through the router and pings 192.168.1.1, sends it UDP to a closed
#     port and a TCP SYN; it also pings h1 (whose reply is forwarded)
#   2 ICMP errors quoting a LAN host: h1 does IKE with r1; r1's answer
#     arrives with TTL 1, the daemon sends it on to h1 and the router's
#     "time exceeded" to r1 quotes r1 -> 192.168.1.11
#   3 a daemon reload takes 192.168.1.0/24 out of "internal" while the rules
#     still queue it (the unit propagates a reload to the rules' unit; until
#     that ran): h1's ESP is dropped by the daemon (not_internal), never
#     sent on with its LAN source
# A capture of each run on the WAN sees no LAN source and no ICMP quoting a
# LAN address (exact), and the guard counts what it stopped.
# Exit 77 (skip) when not root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imegr-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
command -v nft >/dev/null 2>&1 || nl_skip "nft not installed (apt-get install nftables)"
command -v timeout >/dev/null 2>&1 || nl_skip "timeout (coreutils) missing"
PEER=$NL_SRC/tests/peers/leak.py
FLOOD=$NL_SRC/tests/peers/flood.py
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")
TMP=$NL_TMP
BACKENDS=${IPSEC_MASQD_EGRESS_BACKENDS:-hybrid iptables}
# ICMP errors (types 3, 4, 5, 11, 12) whose quoted source or destination is
# in 192.168.0.0/16
QUOTE_BPF='icmp and (icmp[0] = 3 or icmp[0] = 4 or icmp[0] = 5 or icmp[0] = 11 or icmp[0] = 12) and (icmp[20:2] = 0xc0a8 or icmp[24:2] = 0xc0a8)'

ge() { [ "$1" -ge "$2" ] 2>/dev/null; }
eq() { [ "$1" -eq "$2" ] 2>/dev/null; }

FW=$TMP/ipsec-masqd-firewall
fw() {   # fw ARGS...: the helper in the router, for this run's backend
	nl_in "$NL_RTR" env IPSEC_MASQD="$NL_BIN" IPSEC_MASQD_RULES_DIR="$NL_SRC/etc" \
		IPSEC_MASQD_FIREWALL_BACKEND="$BACKEND" "$FW" -c "$CONF" "$@"
}
guard_count() { fw status 2>/dev/null | awk '$1 == "guard:" { print $2 }'; }
# a reason's count from ipsec-masqctl stats --json; -1 when unreadable
reason_count() {
	"$CTL" -s "$SOCK" stats --json 2>/dev/null | tail -n1 |
		"$NL_PY" -c "import json,sys; print(json.loads(sys.stdin.read())['reasons']['$1'])" 2>/dev/null ||
		echo -1
}

write_config() {   # FILE PREFIX
	cat > "$1" <<CONF
# ipsec-masqd egress test
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$2" ];
control = { socket = "$SOCK"; };
log = { level = "info"; };
CONF
}

# --- 1: the router's own LAN address on the WAN ------------------------------------------
scenario_own_lan_address() {
	local f0=$NL_FAILS n g0 g1
	echo "# [$BACKEND] scenario 1: r1 reaches 192.168.1.1 and h1 un-NATed through the router"
	nl_in "$NL_R1" ip route replace "$NL_LAN_NET" via "$NL_EXT"
	g0=$(guard_count)
	nl_in "$NL_R1" ping -c 3 -i 0.2 -W 1 192.168.1.1 >/dev/null 2>&1
	nl_in "$NL_R1" ping -c 3 -i 0.2 -W 1 "$NL_H1_IP" >/dev/null 2>&1
	nl_in "$NL_R1" "$NL_PY" -c '
import socket, sys, time
for port in (9, 7, 13):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("192.168.1.1", port))
    time.sleep(0.2)
    s.close()
    t = socket.socket()
    t.settimeout(1)
    try:
        t.connect(("192.168.1.1", port))
    except OSError:
        pass
    t.close()
'
	sleep 0.5
	g1=$(guard_count)
	nl_in "$NL_R1" ip route del "$NL_LAN_NET" 2>/dev/null
	nl_check "s1: the guard stopped the answers (${g0:-?} -> ${g1:-?})" ge "$((g1 - g0))" 6
	[ "$NL_FAILS" = "$f0" ]
}

# --- 2: an ICMP error quoting a LAN host --------------------------------------------------
scenario_icmp_quote() {
	local f0=$NL_FAILS n g0 g1 cap
	echo "# [$BACKEND] scenario 2: r1's IKE answer to h1 arrives with TTL 1"
	nl_capture_start "$NL_H1" eth0 "$TMP/$BACKEND.s2.h1.pcap" "udp port 500" || nl_fail "s2: capture on h1"
	cap=$NL_LAST
	nl_in "$NL_H1" "$NL_PY" "$PEER" ike-send --dst "$NL_R1_IP" --cookie-i 0x5151 --count 2 >/dev/null
	g0=$(guard_count)
	# the answer to h1's exchange (cookie known to the daemon), TTL 1; then
	# the same with TTL 64, which must reach h1 (the daemon routed it)
	nl_in "$NL_R1" "$NL_PY" - "$NL_R1_IP" "$NL_EXT" <<'PYEOF'
import struct, sys, time
from scapy.all import IP, UDP, Raw, send
src, dst = sys.argv[1], sys.argv[2]
# IKEv2 IKE_SA_INIT response: SPIs, next payload, version 2.0, type 34, R flag
hdr = struct.pack("!QQBBBBII", 0x5151, 0x6262, 0, 0x20, 34, 0x20, 0, 28)
for ttl in (1, 1, 1, 64):
    send(IP(src=src, dst=dst, ttl=ttl) / UDP(sport=500, dport=500) / Raw(hdr), verbose=0)
    time.sleep(0.2)
PYEOF
	sleep 0.5
	nl_capture_stop "$cap"
	g1=$(guard_count)
	n=$(nl_pcap_count "$TMP/$BACKEND.s2.h1.pcap" "src host $NL_R1_IP and dst host $NL_H1_IP and udp port 500")
	nl_check "s2: the daemon sent r1's answer on to h1 (the TTL 64 one: $n)" ge "$n" 1
	nl_check "s2: the guard stopped the time-exceeded errors (${g0:-?} -> ${g1:-?})" ge "$((g1 - g0))" 1
	[ "$NL_FAILS" = "$f0" ]
}

# --- 3: a reload that takes a prefix out of "internal" -------------------------------------
scenario_reload_drops_prefix() {
	local f0=$NL_FAILS n r0 r1
	echo "# [$BACKEND] scenario 3: the daemon reloads without $NL_LAN_NET; the rules still queue it"
	r0=$(reason_count not_internal)
	write_config "$CONF.new" "10.20.0.0/16"
	cp "$CONF.new" "$CONF"
	nl_daemon_reconf
	kill -HUP "$NL_DPID"
	nl_check "s3: the daemon reloaded" nl_wait_log "reloaded config file" 50 "$LOG"
	nl_in "$NL_H1" timeout -k 2 30 "$NL_PY" "$FLOOD" esp --src "$NL_H1_IP" --dst "$NL_R1_IP" \
		--spi 0x7e7e0003 --count 100 --rate 100 >/dev/null
	sleep 0.5
	r1=$(reason_count not_internal)
	nl_check "s3: the daemon dropped h1's ESP as not_internal ($r0 -> $r1)" ge "$((r1 - r0))" 90
	n=$(nl_pcap_count "$TMP/$BACKEND.wan.pcap" "$(nl_bpf_spi 0x7e7e0003)")
	nl_check "s3: none of it left on the WAN, in any form ($n)" eq "$n" 0
	write_config "$CONF" "$NL_LAN_NET"
	[ "$NL_FAILS" = "$f0" ]
}

sed -e "s|@sbindir@|$TMP|g" -e "s|@sysconfdir@|$TMP|g" -e "s|@pkgdatadir@|$NL_SRC/etc|g" \
	"$NL_SRC/src/ipsec-masqd-firewall.in" > "$FW" && chmod +x "$FW" || exit 99
RESULTS=()
for BACKEND in $BACKENDS; do
	SOCK=$TMP/$BACKEND.control CONF=$TMP/$BACKEND.conf LOG=$TMP/$BACKEND.daemon.log
	nl_remove_namespaces
	nl_topology || { echo "cannot build the namespaces"; exit 99; }
	write_config "$CONF" "$NL_LAN_NET"
	fw up >/dev/null || { echo "cannot load the rules ($BACKEND)"; exit 99; }
	nl_ok "[$BACKEND] namespaces and the shipped rules: $(fw status | head -n1)"
	nl_capture_start "$NL_WAN" up0 "$TMP/$BACKEND.wan.pcap" || { echo "cannot capture on the WAN"; exit 99; }
	WAN_CAP=$NL_LAST
	nl_daemon_start "$CONF" "$LOG" || { cat "$LOG"; echo "the daemon did not start"; exit 99; }
	for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
	for s in own_lan_address icmp_quote reload_drops_prefix; do
		if scenario_$s; then RESULTS+=("$BACKEND $s: pass"); else RESULTS+=("$BACKEND $s: FAIL"); fi
	done
	nl_capture_stop "$WAN_CAP"
	d=$(grep -Eo '[0-9]+ packets? dropped by kernel' "$TMP/$BACKEND.wan.pcap.err" | grep -Eo '^[0-9]+')
	nl_check "[$BACKEND] the WAN capture lost nothing (${d:-?} dropped by kernel)" eq "${d:--1}" 0
	n=$(nl_pcap_count "$TMP/$BACKEND.wan.pcap" "src host $NL_R1_IP and dst net $NL_LAN_NET")
	nl_check "[$BACKEND] the WAN capture saw r1's probes ($n)" ge "$n" 6
	n=$(nl_pcap_count "$TMP/$BACKEND.wan.pcap" "src net 192.168.0.0/16")
	m=$(nl_pcap_count "$TMP/$BACKEND.wan.pcap" "$QUOTE_BPF")
	if ! nl_check "[$BACKEND] no LAN source ($n) and no ICMP error quoting a LAN address ($m) on the WAN" \
		eval 'eq "$n" 0 && eq "$m" 0'; then
		tcpdump -n -v -r "$TMP/$BACKEND.wan.pcap" "src net 192.168.0.0/16 or ($QUOTE_BPF)" 2>/dev/null | head -n 12
	fi
	rc=0
	nl_daemon_stop || rc=$?
	nl_check "[$BACKEND] the daemon exits 0 on SIGTERM ($rc)" eq "$rc" 0
	fw down >/dev/null
done

printf '  %s\n' "${RESULTS[@]}"
if [ "$NL_FAILS" != 0 ]; then
	echo "$NL_FAILS check(s) failed"
	exit 1
fi
echo "all passed"
exit 0

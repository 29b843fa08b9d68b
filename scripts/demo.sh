#!/bin/bash
# The demo: installs dependencies (scripts/deps.sh), builds, then, as root,
# runs ipsec-masqd live in network namespaces: two LAN hosts do IKE and ESP
# with real cryptography (scapy, AES-CBC + HMAC-SHA256) to one remote
# gateway through the daemon and the shipped rules, and the daemon's
# association decisions are printed as they happen, then the tables.
#
#   scripts/demo.sh                     deps, build (build/demo), live demo
#   scripts/demo.sh --engine            deps, build, engine-only replay of
#                                       the built-in story (no root needed)
#   scripts/demo.sh --no-build BUILDDIR live demo with the binaries already
#                                       in BUILDDIR (no deps, no build)
#
# Not root: the engine-only replay (the live demo needs namespaces,
# iptables and NFQUEUE). Namespaces are named imdemo-*; stale ones are
# removed first and everything is torn down on exit (tests/lib/netns.sh);
# IPSEC_MASQD_DEMO_PREFIX overrides the prefix (tests/test_demo.sh).
# Config: etc/demo/ipsec-masqd-demo.conf. Exit 0 when the story ran as
# expected, 1 otherwise (the logs are then kept and their place printed).
set -u
here=$(pwd)
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)

usage() { sed -n '8,13p' "$0" | sed 's/^# \{0,1\}//'; }

mode=live build=
case "${1:-}" in
"") ;;
--engine) mode=engine ;;
--no-build)
	build=${2:-}
	[ -n "$build" ] && (cd "$here" && [ -x "$build/ipsec-masqd" ]) ||
		{ echo "scripts/demo.sh: --no-build needs a build directory with ipsec-masqd" >&2; exit 2; }
	build=$(cd "$here" && cd "$build" && pwd) ;;
-h | --help) usage; exit 0 ;;
*) usage >&2; exit 2 ;;
esac

if [ "$mode" = live ] && [ "$(id -u)" != 0 ]; then
	echo "scripts/demo.sh: not root, so no live demo (it needs network namespaces, iptables and NFQUEUE);"
	echo "playing the engine-only replay of the same story instead (scripts/demo.sh --engine)."
	echo
	mode=engine
fi

# deps (as root), autoreconf, configure and make in build/demo.
build_tree() {
	if [ "$(id -u)" = 0 ]; then
		sh scripts/deps.sh || exit 1
	fi
	autoreconf -fi >/dev/null 2>&1 || { echo "scripts/demo.sh: autoreconf failed" >&2; exit 1; }
	mkdir -p build/demo
	(cd build/demo && "$top/configure" -q && make -s -j2) || exit 1
	build=$top/build/demo
}

if [ "$mode" = engine ]; then
	[ -n "$build" ] || build_tree
	exec "$build/ipsec-masqd-replay"
fi
[ -n "$build" ] || build_tree

# ---------------------------------------------------------------- live demo
T0=$(date +%s.%N)
NL_PREFIX=${IPSEC_MASQD_DEMO_PREFIX:-imdemo-}
IPSEC_MASQD=$build/ipsec-masqd top_srcdir=$top
. "$top/tests/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 1; }
nl_init
PEER=$NL_SRC/tests/peers/esp_peer.py
CTL=$build/ipsec-masqctl
TMP=$NL_TMP LOG=$NL_TMP/daemon.log CONF=$NL_TMP/ipsec-masqd-demo.conf
A=$NL_H1 A_IP=$NL_H1_IP B=$NL_H2 B_IP=$NL_H2_IP R=$NL_R1 R_IP=$NL_R1_IP
A_IN=10.1.0.11 B_IN=10.1.0.12 R_IN=10.20.0.1     # addresses inside the tunnels
# SPIs: each side picks the SPI it receives under. A's tunnel: out 0xa0000001,
# in 0xb0000001; B's: out 0xa0000002, in 0xb0000002; the remote's rekey of
# A's tunnel: in at A 0xc0000001, A answers under 0xd0000001.
SA_AO=0xa0000001 SA_AI=0xb0000001 SA_BO=0xa0000002 SA_BI=0xb0000002
SA_X=0xc0000001 SA_Y=0xd0000001
FAIL=0

# sa SPI: "SPI:ENCKEY:AUTHKEY", keys derived from the SPI.
sa() {
	local k
	k=$(printf 'ipsec-masqd demo %s' "$1" | sha256sum | cut -c1-64)
	printf '%s:%s:%s' "$1" "${k:0:32}" "$(printf '%s auth' "$k" | sha256sum | cut -c1-64)"
}
now() { awk -v t0="$T0" -v t="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", t - t0 }'; }
say() { echo; echo "$(now) == $*"; }
note() { echo "          $*"; }
# settle: give the log follower a moment to print what the step caused.
settle() { sleep "${1:-0.6}"; }
bad() { echo "          !! $*"; FAIL=$((FAIL + 1)); }
# expect ERE: the daemon logged a decision matching it (waits up to 5 s).
expect() { nl_wait_log "$1" 50 "$LOG" || bad "expected a decision matching: $1"; }
# peer NS ARGS...: esp_peer.py in a namespace, bounded; report on stdout.
peer() { local ns=$1; shift; nl_in "$ns" timeout -k 3 40 "$NL_PY" "$PEER" "$@" --duration 30; }
answered() { sed -n 's/.*"answered": \([0-9]*\).*/\1/p' "$1" | tail -n1; }

# The follower: prints each DECISION line of the daemon's log as it is
# written, as "TIME  decision  what it means" plus the fields that matter.
follow() {
	exec "$NL_PY" -u - "$LOG" "$T0" <<'PYEOF'
import re, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
path, t0 = sys.argv[1], float(sys.argv[2])
short = {"PEER_ADDR": "remote", "LAN_ADDR": "host", "ESP_SPI_OUT": "spi_out",
         "ESP_SPI_IN": "spi_in", "IKE_SPI_I": "ike_spi_i", "IKE_SPI_R": "ike_spi_r",
         "REASON": "reason", "HOLDER_ADDR": "held_by", "GUESS_HOSTS": "copies_to"}
f = open(path, errors="replace")
while True:
    line = f.readline()
    if not line or not line.endswith("\n"):
        if line:
            f.seek(f.tell() - len(line.encode()))
        time.sleep(0.05)
        continue
    i = line.find(" DECISION=")
    if i < 0:
        continue
    text = re.sub(r"^<\d>", "", line[:i])
    fields = dict(re.findall(r"(\w+)=(\S+)", line[i:]))
    what = "%-12s %s" % (fields.get("DECISION", "?"), fields.get("TABLE", ""))
    rest = " ".join("%s=%s" % (short[k], fields[k]) for k in short if k in fields)
    print("%5.1fs   daemon: %-19s %s" % (time.time() - t0, what, text))
    print("%s%s" % (" " * 38, rest))
PYEOF
}

tables() {
	echo
	echo "$(now) == the final tables"
	if [ -x "$CTL" ] && "$CTL" -s "$TMP/control" show >"$TMP/show.txt" 2>&1; then
		sed 's/^/          /' "$TMP/show.txt"
	else
		local q
		q=$(grep -c "queue: received=" "$LOG")
		kill -USR1 "$NL_DPID"
		for _ in $(seq 30); do
			[ "$(grep -c "queue: received=" "$LOG")" -gt "$q" ] && break
			sleep 0.1
		done
		awk -v q="$q" '/queue: received=/ { n++ } n == q && /(^|>)(esp|isakmp|pending|tables)/' "$LOG" |
			sed -e 's/^<[0-9]>//' -e 's/^/          /'
	fi
}

echo "ipsec-masqd live demo: the real daemon in network namespaces, real iptables and NFQUEUE,"
echo "LAN hosts A=$A_IP and B=$B_IP behind router 198.51.100.1, one remote gateway R=$R_IP"
echo "(R has no route to the LAN: only masqueraded traffic can be answered)."
nl_topology || { echo "cannot build the namespaces"; exit 1; }
sed -e "s|^\([[:space:]]*socket = \)\"[^\"]*\"|\1\"$TMP/control\"|" \
	"$top/etc/demo/ipsec-masqd-demo.conf" >"$CONF"
nl_rules "$CONF" >"$TMP/rules.out" 2>&1 || { cat "$TMP/rules.out"; echo "cannot load the rules"; exit 1; }
nl_capture_start "$NL_WAN" up0 "$TMP/wan.pcap" || { echo "cannot capture on the WAN"; exit 1; }
CAP=$NL_LAST
: >"$LOG"
follow &
NL_PIDS+=("$!")
nl_daemon_start "$CONF" "$LOG" || { cat "$LOG"; echo "the daemon did not start"; exit 1; }
note "router: ipsec-masqd started on $build/ipsec-masqd with etc/demo/ipsec-masqd-demo.conf"
note "(parallel_sessions = false, ESP lifetime 6 s) and the shipped rules (ipsec-masqd-firewall up)"
resp_pid=
rm -f "$TMP/r.ready"
nl_spawn "$R" "$NL_PY" "$PEER" respond --local "$R_IP" --ready "$TMP/r.ready" --duration 60 \
	--pair "$(sa $SA_AO)/$(sa $SA_AI)" --pair "$(sa $SA_BO)/$(sa $SA_BI)" >"$TMP/r.json" 2>"$TMP/r.err"
resp_pid=$NL_LAST
nl_wait_log ready 200 "$TMP/r.ready" || { cat "$TMP/r.err"; echo "the remote's ESP endpoint did not start"; exit 1; }

say "A and B each start IKEv2 with R (IKE_SA_INIT from UDP port 500)"
note "ISAKMP entries are keyed by the initiator SPI: never serialized, port 500 kept"
peer "$A" ike --local "$A_IP" --peer "$R_IP" --cookie 0xaaaa00000000a001 --count 1 >/dev/null
peer "$B" ike --local "$B_IP" --peer "$R_IP" --cookie 0xbbbb00000000b002 --count 1 >/dev/null
expect "DECISION=created TABLE=isakmp PEER_ADDR=$R_IP LAN_ADDR=$A_IP"
expect "DECISION=created TABLE=isakmp PEER_ADDR=$R_IP LAN_ADDR=$B_IP"
settle

say "A opens its ESP tunnel to R (out-SPI $SA_AO) and keeps it busy in the background"
note "nothing in A's ESP says which SPI R will answer under: A's init is pending until R's"
note "first packet with an unknown SPI arrives, and that SPI is then bound to A"
nl_spawn "$A" timeout -k 3 40 "$NL_PY" "$PEER" initiate --local "$A_IP" --peer "$R_IP" \
	--inner-local "$A_IN" --inner-peer "$R_IN" --sa-out "$(sa $SA_AO)" --sa-in "$(sa $SA_AI)" \
	--count 200 --interval 0.25 --stop-file "$TMP/a.stop" --duration 30 >"$TMP/a.json" 2>"$TMP/a.err"
a_pid=$NL_LAST
expect "DECISION=associated TABLE=esp PEER_ADDR=$R_IP LAN_ADDR=$A_IP ESP_SPI_OUT=$SA_AO ESP_SPI_IN=$SA_AI"
settle

say "B opens its own ESP tunnel to the same R (out-SPI $SA_BO) while A holds R"
note "parallel sessions are off: B's packets are dropped, not sent with a wrong mapping"
peer "$B" initiate --local "$B_IP" --peer "$R_IP" --inner-local "$B_IN" --inner-peer "$R_IN" \
	--sa-out "$(sa $SA_BO)" --sa-in "$(sa $SA_BI)" --count 3 --timeout 0.3 --interval 0.1 \
	--linger 0.2 >"$TMP/b1.json" 2>"$TMP/b1.err"
expect "DECISION=(blocked|serialized) TABLE=esp PEER_ADDR=$R_IP LAN_ADDR=$B_IP"
n=$(answered "$TMP/b1.json")
note "B: ${n:-?} of 3 probes answered (none can be: none left the router)"
[ "${n:-x}" = 0 ] || bad "B was answered while blocked"
settle 0.3

say "the admin allows parallel sessions: rewrite the config (parallel_sessions = true), SIGHUP"
sed -i 's/parallel_sessions = false;/parallel_sessions = true; /' "$CONF"
kill -HUP "$NL_DPID"
if nl_wait_log "reloaded config file" 50 "$LOG"; then
	note "daemon: $(grep "reloaded config file" "$LOG" | tail -n1 | sed 's/^<[0-9]>//')"
else
	bad "the daemon did not report the reload"
fi

say "B tries again: its init is pending, then R's new SPI is bound to B"
peer "$B" initiate --local "$B_IP" --peer "$R_IP" --inner-local "$B_IN" --inner-peer "$R_IN" \
	--sa-out "$(sa $SA_BO)" --sa-in "$(sa $SA_BI)" --count 5 --interval 0.1 >"$TMP/b2.json" 2>"$TMP/b2.err"
expect "DECISION=associated TABLE=esp PEER_ADDR=$R_IP LAN_ADDR=$B_IP ESP_SPI_OUT=$SA_BO ESP_SPI_IN=$SA_BI"
n=$(answered "$TMP/b2.json")
note "B: ${n:-?} of 5 probes answered, decrypted and verified at B; A's tunnel runs alongside"
[ "${n:-0}" -ge 4 ] 2>/dev/null || bad "B's tunnel did not work"
settle 0.3
: >"$TMP/a.stop"
nl_wait_pid "$a_pid" 10
n=$(answered "$TMP/a.json")
note "A stops its old tunnel: ${n:-?} probes answered, decrypted and verified at A"
nl_stop "$resp_pid" 30

say "R rekeys A's tunnel first: a new SPI ($SA_X) nobody initiated arrives from R"
note "the daemon copies it (rate-limited) to the hosts that last did IKE with R; B cannot"
note "decrypt it and drops it, A can and answers under its new SPI $SA_Y: that associates"
rm -f "$TMP/a2.ready"
nl_spawn "$A" "$NL_PY" "$PEER" respond --local "$A_IP" --ready "$TMP/a2.ready" --duration 30 \
	--pair "$(sa $SA_X)/$(sa $SA_Y)" >"$TMP/a2.json" 2>"$TMP/a2.err"
a2_pid=$NL_LAST
nl_wait_log ready 200 "$TMP/a2.ready" || bad "A's responder did not start"
peer "$R" initiate --local "$R_IP" --peer "$NL_EXT" --inner-local "$R_IN" --inner-peer "$A_IN" \
	--sa-out "$(sa $SA_X)" --sa-in "$(sa $SA_Y)" --count 5 --interval 0.1 >"$TMP/r2.json" 2>"$TMP/r2.err"
expect "DECISION=guessed TABLE=esp PEER_ADDR=$R_IP .*ESP_SPI_IN=$SA_X"
expect "DECISION=associated TABLE=esp PEER_ADDR=$R_IP LAN_ADDR=$A_IP ESP_SPI_OUT=$SA_Y ESP_SPI_IN=$SA_X"
n=$(answered "$TMP/r2.json")
note "R: ${n:-?} of 5 probes under the new SA answered by A"
[ "${n:-0}" -ge 4 ] 2>/dev/null || bad "the rekeyed tunnel did not work"
nl_stop "$a2_pid" 30
settle 0.3

say "A sends AH to R: AH's ICV covers the IP addresses, so it cannot be masqueraded: refused"
note "(dropped at the router and logged; nothing leaves with a LAN source)"
nl_in "$A" "$NL_PY" - "$R_IP" <<'PYEOF'
import socket, struct, sys
# AH (RFC 4302): next header 4 (IPv4), length 4 (24 bytes), SPI, seq, 12-byte ICV.
ah = struct.pack("!BBHII", 4, 4, 0, 0xe0000001, 1) + bytes(12)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 51)
s.sendto(ah + bytes(20), (sys.argv[1], 0))
PYEOF
expect "DECISION=dropped .*LAN_ADDR=$A_IP .*REASON=ah_outbound"
settle

say "nothing more is sent: entries expire 6 s after their last packet"
expect_exp() { nl_wait_log "$1" 120 "$LOG" || bad "expected a decision matching: $1"; }
expect_exp "DECISION=expired TABLE=esp PEER_ADDR=$R_IP LAN_ADDR=$A_IP ESP_SPI_OUT=$SA_AO"
settle 0.5

tables
nl_capture_stop "$CAP"
esp=$(nl_pcap_count "$TMP/wan.pcap" "ip proto 50 and src host $NL_EXT")
lan=$(nl_pcap_count "$TMP/wan.pcap" "ip proto 50 and src net $NL_LAN_NET")
any=$(nl_pcap_count "$TMP/wan.pcap" "src net $NL_LAN_NET")
echo
echo "$(now) == the WAN capture: $esp ESP packets left from $NL_EXT; $lan with a LAN source"
[ "$any" = 0 ] || bad "$any packets with a LAN source on the WAN"
[ "${esp:-0}" -gt 0 ] 2>/dev/null || bad "no ESP left the router"
nl_daemon_stop || bad "the daemon did not exit cleanly"
echo
if [ "$FAIL" != 0 ]; then
	NL_FAILS=$FAIL
	echo "demo: $FAIL step(s) did not go as expected; daemon log: $LOG"
	exit 1
fi
echo "$(now) == done; namespaces, rules and processes are removed on exit"
exit 0

#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# The SPI announcement listener's life (issue 16, found in review), in
# namespaces (tests/lib/netns.sh) with the real daemon and sender:
#   l1 the daemon starts while announce.listen is not on the router yet (the
#      unit starts before the network): the listener is up (IP_FREEBIND);
#      once the address is there, an announcement is accepted
#   l2 the listen address moves to the external interface: datagrams from
#      the WAN are refused as wrong_interface, every one of them (the
#      re-lookup used to leave the WAN interface as "the LAN" for the next)
#   l3 a reload without the announce group closes the listener: the sender
#      gets no answer, the stats lose the section
#   l4 a state file with three announced entries, restarted with
#      announce.max_entries = 2: the one with the least time left is removed
# No rules are loaded (the daemon's own checks are under test; the rules'
# anti-spoofing drop is tests/test_announce.sh's). Exit 77 (skip) when not
# root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imanl-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
APEER=$NL_SRC/tests/peers/announce_peer.py
BUILD=$(dirname "$NL_BIN")
ANNOUNCE=$BUILD/ipsec-masqd-announce
CTL=$BUILD/ipsec-masqctl
[ -f "$APEER" ] || nl_skip "$APEER missing"
[ -x "$ANNOUNCE" ] || nl_skip "$ANNOUNCE not built"
[ -x "$CTL" ] || nl_skip "$CTL not built"
TMP=$NL_TMP
T0=$(date +%s)
KEY_NET=$(printf 'ipsec-masqd announce listener test' | sha256sum | cut -c1-64)
printf '%s\n' "$KEY_NET" > "$TMP/net.keys"
chmod 600 "$TMP/net.keys"
ctl() { "$CTL" -s "$TMP/control" "$@"; }
stat() {
	ctl stats --json > "$TMP/stats.json" &&
	"$NL_PY" -c 'import json,sys
try: print(json.load(open(sys.argv[1]))["announce"][sys.argv[2]])
except Exception: print(-1)' "$TMP/stats.json" "$1"
}
announce() {   # NS SPI-IN: the real sender, exit status in $?
	nl_in "$1" "$ANNOUNCE" announce --router 192.168.1.1 --key-file "$TMP/net.keys" \
		--remote "$NL_R1_IP" --spi-in "$2" --ttl 600 --tries 2 "${@:3}"
}

until_s() {   # sleeps until the epoch second $1
	local d=$(($1 - $(date +%s)))
	[ "$d" -gt 0 ] && sleep "$d"
	return 0
}
mkconf() {   # FILE [announce group]
	cat > "$1" <<CONF
queue = 0;
external = { interface = "wan0"; };
internal = [ "$NL_LAN_NET" ];
control = { socket = "$TMP/control"; };
log = { level = "info"; };
CONF
	[ "${2:-}" = announce ] &&
		echo "announce = { listen = \"192.168.1.1\"; key_file = \"$TMP/net.keys\"; };" >> "$1"
	return 0
}
mkconf "$TMP/a.conf" announce
mkconf "$TMP/none.conf"

nl_topology || { echo "cannot build the namespaces"; exit 99; }
LOG=$TMP/daemon.log

# --- l1: the address comes after the daemon ------------------------------------
echo "# l1: start before the LAN address"
nl_in "$NL_RTR" ip addr del 192.168.1.1/24 dev lan0
nl_daemon_start "$TMP/a.conf" "$LOG"; rc=$?
nl_check "l1: the daemon starts although 192.168.1.1 is not on the router (IP_FREEBIND)" [ $rc = 0 ]
if [ $rc != 0 ]; then cat "$LOG"; exit 1; fi
nl_check "l1: it says the address is not there yet" \
	grep -q "announce: listening on 192.168.1.1:4510 (interface none yet" "$LOG"
started=$(date +%s)
nl_in "$NL_RTR" ip addr add 192.168.1.1/24 dev lan0
# the interface is looked for again at most every 10 s
until_s $((started + 11))
out=$(announce "$NL_H1" 0x5b000011 2>&1); rc=$?
nl_check "l1: with the address there, h1's announcement is accepted ($rc: $out)" [ $rc = 0 ]

# --- l2: the listen address on the external interface ----------------------------
echo "# l2: the listen address moves to wan0"
nl_in "$NL_RTR" ip addr del 192.168.1.1/24 dev lan0
nl_in "$NL_RTR" ip addr add 192.168.1.1/32 dev wan0
nl_in "$NL_RTR" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.wan0.rp_filter=0
moved=$(date +%s)
mac=$(nl_in "$NL_RTR" cat /sys/class/net/wan0/address)
until_s $((moved + 11))
w0=$(stat wrong_interface)
for i in 1 2 3; do
	nl_in "$NL_R1" "$NL_PY" "$APEER" spoof --router 192.168.1.1 --key "$KEY_NET" \
		--local "$NL_H1_IP" --remote "$NL_R1_IP" --spi-in 0x5f000014 --cookie none \
		--dst-mac "$mac" >/dev/null 2>>"$TMP/apeer.err"
	sleep 0.3
done
ok=no
for i in $(seq 30); do [ "$(stat wrong_interface)" = $((w0 + 3)) ] && { ok=yes; break; }; sleep 0.1; done
nl_check "l2: three datagrams from the WAN to the moved address: all wrong_interface ($w0 -> $(stat wrong_interface))" [ $ok = yes ]
n=$(grep -cE "REASON=(cookie_required|bad_cookie|bad_mac|accepted)" "$LOG")
nl_check "l2: none got past the interface check ($n records beyond it: l1's cookie_required and accepted)" [ "$n" = 2 ]
nl_in "$NL_RTR" ip addr del 192.168.1.1/32 dev wan0
nl_in "$NL_RTR" ip addr add 192.168.1.1/24 dev lan0

# --- l3: a reload without the announce group --------------------------------------
echo "# l3: reload without the announce group"
cp "$TMP/none.conf" "$TMP/a.conf"
nl_daemon_reconf
n0=$(grep -c "reloaded config file" "$LOG")
kill -HUP "$NL_DPID"
ok=no
for i in $(seq 50); do [ "$(grep -c "reloaded config file" "$LOG")" -gt "$n0" ] && { ok=yes; break; }; sleep 0.1; done
nl_check "l3: reloaded" [ $ok = yes ]
nl_check "l3: the listener is closed (logged)" grep -q "announce: listener closed" "$LOG"
v=$(nl_in "$NL_RTR" ss -Huln "sport = :4510" | wc -l)
nl_check "l3: nothing listens on UDP 4510 ($v)" [ "$v" = 0 ]
out=$(announce "$NL_H2" 0x5b000012 2>&1); rc=$?
nl_check "l3: h2's announcement gets no answer, exit 4 ($rc: $out)" [ $rc = 4 ]
v=$(stat accepted)
nl_check "l3: ipsec-masqctl stats has no announce section ($v)" [ "$v" = -1 ]

nl_daemon_stop; rc=$?
nl_check "l3: the daemon exits 0 on SIGTERM ($rc)" [ "$rc" = 0 ]

# --- l4: a state file with more announced entries than the cap --------------------
echo "# l4: restored announced entries over announce.max_entries"
mkconf "$TMP/b.conf" announce
echo "state = { file = \"$TMP/state\"; };" >> "$TMP/b.conf"
LOG4=$TMP/daemon4.log
nl_daemon_start "$TMP/b.conf" "$LOG4" || { nl_fail "l4: daemon did not start"; cat "$LOG4"; exit 1; }
for i in 1 2 3; do
	out=$(announce "$NL_H1" 0x5c00000$i --ttl $((600 + i)) 2>&1) || nl_fail "l4: announce $i: $out"
done
nl_daemon_stop
sed 's/^announce = { /announce = { max_entries = 2; /' "$TMP/b.conf" > "$TMP/c.conf"
LOG5=$TMP/daemon5.log
nl_daemon_start "$TMP/c.conf" "$LOG5" || { nl_fail "l4: daemon did not start again"; cat "$LOG5"; exit 1; }
nl_check "l4: the excess is logged" \
	grep -q "announce: 1 restored announced entry over announce.max_entries (2) removed" "$LOG5"
ctl show --json > "$TMP/show.json"
v=$("$NL_PY" -c 'import json,sys
print(sorted(e["spi_in"] for e in json.load(open(sys.argv[1]))["esp"] if e["state"] == "announced"))' "$TMP/show.json")
nl_check "l4: the two with the most time left stay announced ($v)" \
	[ "$v" = "['0x5c000002', '0x5c000003']" ]
nl_daemon_stop; rc=$?
nl_check "the daemon exits 0 on SIGTERM ($rc)" [ "$rc" = 0 ]
echo "# summary ($(($(date +%s) - T0)) s)"
if [ "$NL_FAILS" != 0 ]; then
	for l in "$LOG" "${LOG4:-}" "${LOG5:-}"; do [ -f "$l" ] && { echo "--- $l"; cat "$l"; }; done
	echo "$NL_FAILS check(s) failed"
	exit 1
fi
echo "all passed"
exit 0

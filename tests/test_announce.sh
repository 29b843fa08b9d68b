#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# SPI announcements from the LAN (issue 16), in namespaces (tests/lib/netns.sh)
# with the real daemon, the shipped rules, real-crypto scapy ESP peers
# (tests/peers/esp_peer.py), the sender ipsec-masqd-announce, and hostile
# messages built independently in Python (tests/peers/announce_peer.py):
#   a1 three hosts announce their SA pairs with r1 (h1, h2: the network key;
#      h3: its own key); ipsec-masqctl show lists exactly those, announced
#   a2 all three open ESP to r1 at the same moment, parallel sessions on:
#      every tunnel answers its very first probe, no init, no serialized or
#      blocked decision, no guess, no copy
#   a3 hostile: forged (wrong key), replayed (same bytes twice), wrong
#      source (h2 speaks for h1), foreign SPI (h2 claims h1's), stale
#      timestamp, wrong version (1, the protocol before the cookie),
#      truncated, h2 forging h1's source address with the network key to
#      withdraw h1's SPI (without h1's cookie: bad_cookie, cookie_required),
#      and from the WAN with a LAN source: each refused, with its reason in
#      the log and its counter, and none changes the table
#   a4 withdraw: another host's refused, the owner's removes the entry
#   a5 over the whole run the WAN sees no LAN source (exact)
# Exit 77 (skip) when not root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imann-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
PEER=$NL_SRC/tests/peers/esp_peer.py
APEER=$NL_SRC/tests/peers/announce_peer.py
BUILD=$(dirname "$NL_BIN")
ANNOUNCE=$BUILD/ipsec-masqd-announce
CTL=$BUILD/ipsec-masqctl
for f in "$PEER" "$APEER"; do [ -f "$f" ] || nl_skip "$f missing"; done
[ -x "$ANNOUNCE" ] || nl_skip "$ANNOUNCE not built"
[ -x "$CTL" ] || nl_skip "$CTL not built"
TMP=$NL_TMP
T0=$(date +%s)

R1_IN=10.20.0.1 H1_IN=10.1.0.11 H2_IN=10.1.0.12 H3_IN=10.1.0.13
KEY_NET=$(printf 'ipsec-masqd announce test network' | sha256sum | cut -c1-64)
KEY_H3=$(printf 'ipsec-masqd announce test h3' | sha256sum | cut -c1-64)
BAD_KEY=$(printf 'not the key' | sha256sum | cut -c1-64)
# SA pairs: A* out (host -> r1), B* in (r1 -> host)
A1=0x5a000011 B1=0x5b000011 A2=0x5a000012 B2=0x5b000012 A3=0x5a000013 B3=0x5b000013

sa() {
	local k
	k=$(printf 'ipsec-masqd esp test %s %s' "$1" "${2:-}" | sha256sum | cut -c1-64)
	printf '%s:%s:%s' "$1" "${k:0:32}" "$(printf '%s auth' "$k" | sha256sum | cut -c1-64)"
}
json() {
	"$NL_PY" - "$@" <<'PYEOF' 2>/dev/null || echo -1
import json, sys
try:
    v = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    for k in sys.argv[2:]:
        v = v[k]
    print(v)
except Exception:
    print(-1)
PYEOF
}
jexpr() {   # FILE PYTHON-EXPR over d
	"$NL_PY" -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
    print(eval(sys.argv[2]))
except Exception as e:
    print("ERR", e)' "$1" "$2"
}
eq() { [ "$1" -eq "$2" ] 2>/dev/null; }
ge() { [ "$1" -ge "$2" ] 2>/dev/null; }
spi8() { printf '0x%08x' "$1"; }
ctl() { "$CTL" -s "$TMP/control" "$@"; }

# The router's key file: the network's key, h3's own.
printf '# test keys\n%s\n%s %s\n' "$KEY_NET" "$NL_H3_IP" "$KEY_H3" > "$TMP/router.keys"
printf '%s\n' "$KEY_NET" > "$TMP/net.keys"
printf '%s %s\n' "$NL_H3_IP" "$KEY_H3" > "$TMP/h3.keys"
chmod 600 "$TMP"/*.keys

cat > "$TMP/a.conf" <<CONF
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$NL_LAN_NET" ];
esp = { parallel_sessions = true; };
control = { socket = "$TMP/control"; };
announce = { listen = "192.168.1.1"; key_file = "$TMP/router.keys"; };
log = { level = "info"; };
CONF

nl_topology || { echo "cannot build the namespaces"; exit 99; }
nl_rules "$TMP/a.conf" || { echo "cannot load the rules"; exit 99; }
nl_ok "namespaces and the shipped rules"
nl_capture_start "$NL_WAN" up0 "$TMP/all.wan.pcap" || { echo "cannot capture on the WAN"; exit 99; }
CAP=$NL_LAST
LOG=$TMP/daemon.log
nl_daemon_start "$TMP/a.conf" "$LOG" || { nl_fail "daemon did not start"; cat "$LOG"; exit 1; }
nl_check "the listener is up on 192.168.1.1:4510, interface lan0" \
	grep -q "announce: listening on 192.168.1.1:4510 (interface lan0)" "$LOG"

# announce NS KEYFILE IN OUT: the real sender, exit status in $?
announce() {
	nl_in "$1" "$ANNOUNCE" announce --router 192.168.1.1 --key-file "$2" \
		--remote "$NL_R1_IP" --spi-in "$3" --spi-out "$4" --ttl 600
}
# hostile NS ARGS...: one message from announce_peer.py; prints its replies
hostile() {
	local ns=$1; shift
	nl_in "$ns" "$NL_PY" "$APEER" "$@" --router 192.168.1.1 --remote "$NL_R1_IP" 2>>"$TMP/apeer.err"
}
# stat NAME: a counter of the "announce" stats section
stat() { ctl stats --json > "$TMP/stats.json" && jexpr "$TMP/stats.json" "d['announce']['$1']"; }
# the ESP table as (host, spi_in, spi_out, state) tuples, sorted
table() {
	ctl show --json > "$TMP/show.json" &&
	jexpr "$TMP/show.json" 'sorted((e["host"], e["spi_in"], e["spi_out"], e["state"]) for e in d["esp"])'
}

# --- a1: three hosts announce -----------------------------------------------
echo "# a1: announcements"
out=$(announce "$NL_H1" "$TMP/net.keys" $B1 $A1 2>&1); rc=$?
nl_check "a1: h1 announces $B1/$A1: exit 0 ($rc: $out)" [ $rc = 0 ]
out=$(announce "$NL_H2" "$TMP/net.keys" $B2 $A2 2>&1); rc=$?
nl_check "a1: h2 announces $B2/$A2: exit 0 ($rc: $out)" [ $rc = 0 ]
out=$(announce "$NL_H3" "$TMP/h3.keys" $B3 $A3 2>&1); rc=$?
nl_check "a1: h3 announces with its own key: exit 0 ($rc: $out)" [ $rc = 0 ]
want="[('$NL_H1_IP', '$(spi8 $B1)', '$(spi8 $A1)', 'announced'), ('$NL_H2_IP', '$(spi8 $B2)', '$(spi8 $A2)', 'announced'), ('$NL_H3_IP', '$(spi8 $B3)', '$(spi8 $A3)', 'announced')]"
v=$(table)
nl_check "a1: ipsec-masqctl show lists exactly the three, announced ($v)" [ "$v" = "$want" ]
nl_check "a1: show's text table says announced" \
	eval 'ctl show | grep -qE "^$NL_R1_IP +$NL_H1_IP +$(spi8 $A1) +$(spi8 $B1) +announced "'
n=$(grep -cE "DECISION=announce_accepted REASON=accepted LAN_ADDR=192\.168\.1\.1[123] ANNOUNCE_TYPE=announce PEER_ADDR=$NL_R1_IP" "$LOG")
nl_check "a1: three announce_accepted records with their fields ($n)" eq "$n" 3
nl_check "a1: stats: accepted 3, announced 3" eval '[ "$(stat accepted)" = 3 ] && [ "$(stat announced)" = 3 ]'

# --- a2: all three start at once ----------------------------------------------
echo "# a2: three tunnels to one remote at once"
rm -f "$TMP/r1.ready"
nl_spawn "$NL_R1" "$NL_PY" "$PEER" respond --ready "$TMP/r1.ready" --duration 120 \
	--local "$NL_R1_IP" --pair "$(sa $A1)/$(sa $B1)" --pair "$(sa $A2)/$(sa $B2)" \
	--pair "$(sa $A3)/$(sa $B3)" >"$TMP/r1.json" 2>"$TMP/r1.err"
RPID=$NL_LAST
nl_wait_log ready 200 "$TMP/r1.ready" || nl_fail "a2: responder did not start"
at=$(($(date +%s) + 4))
declare -A IPID
for i in 1 2 3; do
	eval "h=\$NL_H$i ip=\$NL_H${i}_IP in=\$H${i}_IN a=\$A$i b=\$B$i"
	nl_spawn "$h" timeout -k 5 100 "$NL_PY" "$PEER" initiate --duration 90 \
		--local "$ip" --peer "$NL_R1_IP" --start-at $at --inner-local "$in" \
		--inner-peer "$R1_IN" --sa-out "$(sa $a)" --sa-in "$(sa $b)" --count 20 \
		--timeout 2.0 >"$TMP/h$i.json" 2>"$TMP/h$i.err"
	IPID[$i]=$NL_LAST
done
for i in 1 2 3; do
	nl_wait_pid "${IPID[$i]}" 110
	echo "  h$i: $(tail -n1 "$TMP/h$i.json" 2>/dev/null)"
done
nl_stop "$RPID" 50
echo "  r1: $(tail -n1 "$TMP/r1.json")"
for i in 1 2 3; do
	n=$(json "$TMP/h$i.json" first_answered)
	nl_check "a2: h$i's tunnel is up at its first packet (first probe answered: $n)" eq "$n" 1
	n=$(json "$TMP/h$i.json" answered)
	nl_check "a2: h$i: >= 18 of 20 answered and verified ($n)" ge "$n" 18
	n=$(($(json "$TMP/h$i.json" bad_icv) + $(json "$TMP/h$i.json" unknown_spi)))
	nl_check "a2: h$i: nothing misrouted ($n bad ICV / unknown SPI)" eq "$n" 0
done
n=$(($(json "$TMP/r1.json" bad_icv) + $(json "$TMP/r1.json" unknown_spi)))
nl_check "a2: r1: no bad ICV, no unknown SPI ($n)" eq "$n" 0
ctl stats --json > "$TMP/stats.a2.json"
v=$(jexpr "$TMP/stats.a2.json" '[d["decisions"][k] for k in ("created", "serialized", "blocked", "guessed", "squelched", "associated")] + [d["decisions"]["copies"] if "copies" in d["decisions"] else d["tables"].get("copies", -1)]')
nl_check "a2: no init created, serialized, blocked, guessed, squelched or associated; no copies ($v)" \
	[ "$v" = "[0, 0, 0, 0, 0, 0, 0]" ]
n=$(grep -cE "DECISION=(serialized|blocked|guessed|created)" "$LOG")
nl_check "a2: no serialized/blocked/guessed/created record in the log ($n)" eq "$n" 0
v=$(table)
want="[('$NL_H1_IP', '$(spi8 $B1)', '$(spi8 $A1)', 'announced'), ('$NL_H2_IP', '$(spi8 $B2)', '$(spi8 $A2)', 'announced'), ('$NL_H3_IP', '$(spi8 $B3)', '$(spi8 $A3)', 'announced')]"
nl_check "a2: the table still holds exactly the three announced pairs ($v)" [ "$v" = "$want" ]

# --- a3: hostile announcements ------------------------------------------------
echo "# a3: forged, replayed, wrong source, foreign SPI, stale, wrong version, truncated, WAN"
before=$(table)
# forged: h2 signs with a key that is not the network's. No reply (the
# router does not answer what it cannot authenticate).
v=$(hostile "$NL_H2" send --key "$BAD_KEY" --local "$NL_H2_IP" --spi-in 0x5c000012 --cookie none)
nl_check "a3: forged: no reply ($v)" [ "$v" = '{"replies": [null]}' ]
out=$(nl_in "$NL_H2" "$ANNOUNCE" announce --router 192.168.1.1 --key-file "$TMP/h3.keys" \
	--remote "$NL_R1_IP" --spi-in 0x5c000012 --tries 1 2>&1); rc=$?
nl_check "a3: forged by the sender (h2 with a key file that has no key for it): exit 3 ($rc: $out)" [ $rc = 3 ]
printf '%s\n' "$BAD_KEY" > "$TMP/bad.keys"
out=$(nl_in "$NL_H2" "$ANNOUNCE" announce --router 192.168.1.1 --key-file "$TMP/bad.keys" \
	--remote "$NL_R1_IP" --spi-in 0x5c000012 --tries 1 2>&1); rc=$?
nl_check "a3: forged through ipsec-masqd-announce (wrong key): no answer, exit 4 ($rc)" [ $rc = 4 ]
nl_check "a3: forged: counted as bad_mac (2)" [ "$(stat bad_mac)" = 2 ]
nl_check "a3: forged: logged REASON=bad_mac" \
	grep -qE "DECISION=announce_refused REASON=bad_mac LAN_ADDR=$NL_H2_IP" "$LOG"
# replayed: one valid message (a new SPI for h2) sent twice, same bytes
v=$(hostile "$NL_H2" send --key "$KEY_NET" --local "$NL_H2_IP" --spi-in 0x5d000012 --count 2)
nl_check "a3: replay: first accepted (0), the same bytes again refused as replayed (11) ($v)" \
	[ "$v" = '{"replies": [0, 11]}' ]
nl_check "a3: replay: counted" [ "$(stat replayed)" = 1 ]
nl_check "a3: replay: logged REASON=replayed" \
	grep -qE "DECISION=announce_refused REASON=replayed LAN_ADDR=$NL_H2_IP ANNOUNCE_TYPE=announce PEER_ADDR=$NL_R1_IP ESP_SPI_IN=0x5d000012" "$LOG"
# wrong source: h2, with the network key, speaks for h1
v=$(hostile "$NL_H2" send --key "$KEY_NET" --local "$NL_H2_IP" --host "$NL_H1_IP" --spi-in 0x5e000011)
nl_check "a3: wrong source: h2 announcing for h1 refused (9) ($v)" [ "$v" = '{"replies": [9]}' ]
nl_check "a3: wrong source: counted, logged" eval \
	'[ "$(stat wrong_source)" = 1 ] && grep -qE "REASON=wrong_source LAN_ADDR=$NL_H2_IP" "$LOG"'
# foreign SPI: h2 claims h1's announced in-SPI, through the real sender
out=$(nl_in "$NL_H2" "$ANNOUNCE" announce --router 192.168.1.1 --key-file "$TMP/net.keys" \
	--remote "$NL_R1_IP" --spi-in $B1 2>&1); rc=$?
nl_check "a3: foreign SPI: h2 claiming h1's $B1 refused, exit 1 ($rc: $out)" \
	eval '[ $rc = 1 ] && [[ "$out" == *spi_taken* ]]'
nl_check "a3: foreign SPI: counted, logged" eval \
	'[ "$(stat spi_taken)" = 1 ] && grep -qE "REASON=spi_taken LAN_ADDR=$NL_H2_IP .*ESP_SPI_IN=$(spi8 $B1)" "$LOG"'
# stale: stamped 2 minutes ago (window 30 s)
v=$(hostile "$NL_H1" send --key "$KEY_NET" --local "$NL_H1_IP" --spi-in 0x5f000011 --ts-offset -120 --cookie none)
nl_check "a3: stale timestamp refused (10) ($v)" [ "$v" = '{"replies": [10]}' ]
# wrong version, truncated: refused before the MAC, so no reply
v=$(hostile "$NL_H1" send --key "$KEY_NET" --local "$NL_H1_IP" --spi-in 0x5f000012 --version 1 --cookie none)
nl_check "a3: version 1 (no cookie): no reply ($v)" [ "$v" = '{"replies": [null]}' ]
v=$(hostile "$NL_H1" send --key "$KEY_NET" --local "$NL_H1_IP" --spi-in 0x5f000013 --truncate 50 --cookie none)
nl_check "a3: truncated: no reply ($v)" [ "$v" = '{"replies": [null]}' ]
nl_check "a3: stale, bad_version, malformed counted once each" eval \
	'[ "$(stat stale)" = 1 ] && [ "$(stat bad_version)" = 1 ] && [ "$(stat malformed)" = 1 ]'
# spoofed on the LAN: h2 holds the network key and sends, with h1's
# address as source, a withdraw of h1's $B1 (then it could announce it as
# its own and receive h1's ESP). With h2's own cookie: bad_cookie; without
# one: cookie_required, the cookie going to h1's address, not to h2.
LAN_MAC=$(nl_in "$NL_RTR" cat /sys/class/net/lan0/address)
v=$(hostile "$NL_H2" spoof --type 2 --key "$KEY_NET" --local "$NL_H1_IP" --spi-in $B1 \
	--cookie-from "$NL_H2_IP" --dst-mac "$LAN_MAC")
ok=no
for i in $(seq 30); do [ "$(stat bad_cookie)" = 1 ] && { ok=yes; break; }; sleep 0.1; done
nl_check "a3: h2 forging h1's source to withdraw $B1 with its own cookie: bad_cookie ($v)" [ $ok = yes ]
nl_check "a3: bad_cookie logged for h1's address" \
	grep -qE "DECISION=announce_refused REASON=bad_cookie LAN_ADDR=$NL_H1_IP ANNOUNCE_TYPE=withdraw PEER_ADDR=$NL_R1_IP ESP_SPI_IN=$(spi8 $B1)" "$LOG"
c0=$(stat cookie_required)
v=$(hostile "$NL_H2" spoof --type 2 --key "$KEY_NET" --local "$NL_H1_IP" --spi-in $B1 \
	--cookie none --dst-mac "$LAN_MAC")
ok=no
for i in $(seq 30); do [ "$(stat cookie_required)" = $((c0 + 1)) ] && { ok=yes; break; }; sleep 0.1; done
nl_check "a3: ... and without a cookie: cookie_required ($v)" [ $ok = yes ]
v=$(table)
held="('$NL_H1_IP', '$(spi8 $B1)', '$(spi8 $A1)', 'announced')"
nl_check "a3: h1 still holds $B1 ($v)" eval '[[ "$v" == *"$held"* ]]'
# from the WAN: r1 sends a well-signed announcement for h1 with h1's
# address as source to the router's LAN address, through wan0
mac=$(nl_in "$NL_RTR" cat /sys/class/net/wan0/address)
R1_MAC=$(nl_in "$NL_R1" cat /sys/class/net/eth0/address)
nl_in "$NL_RTR" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.wan0.rp_filter=0
# First the shipped rules' anti-spoofing drop stops it before the daemon;
# then, with that rule deleted by hand, the daemon's own interface check.
spoofed() {
	nl_in "$NL_RTR" nft list counter inet ipsec_masqd spoofed 2>/dev/null | awk '$1 == "packets" { print $2; exit }'
}
s0=$(spoofed)
v=$(hostile "$NL_R1" spoof --key "$KEY_NET" --local "$NL_H1_IP" --spi-in 0x5f000014 --dst-mac "$mac")
s1=$(spoofed)
nl_check "a3: from the WAN with a LAN source: the rules' anti-spoofing drop counted it (${s0:-?} -> ${s1:-?})" \
	eval '[ "$((s1 - s0))" = 1 ] && [ "$(stat wrong_interface)" = 0 ]'
h=$(nl_in "$NL_RTR" nft -a list chain inet ipsec_masqd raw_prerouting | awk '/counter name "spoofed"/ { print $NF }')
nl_check "a3: deleted the anti-spoofing rules by hand (nft handle ${h:-?}, and iptables' in the hybrid backend)" \
	eval 'nl_in "$NL_RTR" nft delete rule inet ipsec_masqd raw_prerouting handle "${h:-0}" &&
	{ ! nl_in "$NL_RTR" iptables -w -t mangle -C IPSEC_MASQD_IN -i wan0 -s "$NL_LAN_NET" -j DROP 2>/dev/null ||
	  nl_in "$NL_RTR" iptables -w -t mangle -D IPSEC_MASQD_IN -i wan0 -s "$NL_LAN_NET" -j DROP; }' 
v=$(hostile "$NL_R1" spoof --key "$KEY_NET" --local "$NL_H1_IP" --spi-in 0x5f000014 --dst-mac "$mac")
ok=no
for i in $(seq 30); do [ "$(stat wrong_interface)" = 1 ] && { ok=yes; break; }; sleep 0.1; done
nl_check "a3: without it, refused by the daemon as wrong_interface ($v)" [ $ok = yes ]
nl_check "a3: wrong_interface logged" grep -qE "REASON=wrong_interface LAN_ADDR=$NL_H1_IP" "$LOG"
after=$(table)
want=$(printf '%s' "$before" | sed "s/]\$/, ('$NL_H2_IP', '0x5d000012', None, 'announced')]/")
v=$("$NL_PY" -c 'import ast,sys; print(sorted(ast.literal_eval(sys.argv[1])) == sorted(ast.literal_eval(sys.argv[2])))' "$after" "$want")
nl_check "a3: the table changed only by the one accepted message ($after)" [ "$v" = True ]
nl_check "a3: accepted 4 in all (3 + the replayed message's first copy)" [ "$(stat accepted)" = 4 ]
nl_check "a3: withdrawn 0 (the spoofed withdraw did nothing)" [ "$(stat withdrawn)" = 0 ]

# --- a4: withdraw ---------------------------------------------------------------
echo "# a4: withdraw"
out=$(nl_in "$NL_H2" "$ANNOUNCE" withdraw --router 192.168.1.1 --key-file "$TMP/net.keys" \
	--remote "$NL_R1_IP" --spi-in $B1 2>&1); rc=$?
nl_check "a4: h2 withdrawing h1's $B1 refused, exit 1 ($rc: $out)" [ $rc = 1 ]
out=$(nl_in "$NL_H1" "$ANNOUNCE" withdraw --router 192.168.1.1 --key-file "$TMP/net.keys" \
	--remote "$NL_R1_IP" --spi-in $B1 2>&1); rc=$?
nl_check "a4: h1 withdraws $B1: exit 0 ($rc: $out)" [ $rc = 0 ]
v=$(table)
nl_check "a4: $B1 is gone, the others stay ($v)" \
	eval '[[ "$v" != *"$(spi8 $B1)"* ]] && [[ "$v" == *"$(spi8 $B2)"* ]] && [[ "$v" == *"$(spi8 $B3)"* ]]'
nl_check "a4: withdrawn 1" [ "$(stat withdrawn)" = 1 ]

# --- a5: no LAN source on the WAN ------------------------------------------------
echo "# a5: the WAN"
nl_daemon_stop; rc=$?
nl_check "the daemon exits 0 on SIGTERM ($rc)" [ "$rc" = 0 ]
nl_capture_stop "$CAP"
n=$(nl_pcap_count "$TMP/all.wan.pcap" "ip proto 50")
nl_check "a5: the WAN capture saw the ESP ($n packets)" ge "$n" 54
# a3's own forged datagrams (r1 -> router, LAN source) are on the WAN by
# design: exactly those two, and nothing else with a LAN source
spoof="ether src $R1_MAC and dst host 192.168.1.1 and udp dst port 4510"
n=$(nl_pcap_count "$TMP/all.wan.pcap" "$spoof")
nl_check "a5: the WAN saw a3's two spoofed datagrams from r1 ($n)" eq "$n" 2
n=$(nl_pcap_count "$TMP/all.wan.pcap" "src net $NL_LAN_NET and not ($spoof)")
m=$(nl_pcap_count "$TMP/all.wan.pcap" "net 10.0.0.0/8")
nl_check "a5: no other LAN source on the WAN ($n), no inner packet in clear ($m)" eval 'eq "$n" 0 && eq "$m" 0'

echo "# summary ($(($(date +%s) - T0)) s)"
if [ "$NL_FAILS" != 0 ]; then
	echo "--- daemon log"; cat "$LOG"
	echo "$NL_FAILS check(s) failed"
	exit 1
fi
echo "all passed"
exit 0

#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# The kernel fast path (issue 14) in network namespaces: the real daemon with
# fastpath on, the shipped rules, real-crypto ESP (tests/peers/esp_peer.py).
#   1 a flow moves to the fast path once associated: the daemon's queue
#     counters stop growing while both ends keep receiving and verifying;
#     the IP header checksums on the WAN and at the LAN host are right;
#     show says in+out and counts the kernel's packets; the entry, used
#     only in the kernel, outlives its idle lifetime; idle, it expires on
#     time, and its elements with it
#   2 elements follow del, flush and a clean stop at once; after kill -9
#     the kernel timeout ends them within their lifetime; a new daemon
#     replaces a stale table
#   3 admission: a flood of unknown SPIs to the external address reaches
#     the daemon at no more than admit_rate x time + burst, the rest dropped
#     in the kernel and counted, while an established flow keeps >= 80 %
#   4 lifetimes with the use checks (no counter dumps): two preloads with
#     the lifetime; one carries a flow only through the kernel for three
#     lifetimes and stays (its check credits it), the idle one is removed
#     on time (show and both sets), no entry expires before its check
#   5 an association made by an SPI announcement (issue 16) is offloaded
#     like any other: both elements, its flow never queued
#   6 LAN-side admission: a LAN host flooding unknown-SPI ESP reaches the
#     daemon at no more than admit_rate x time + burst, the rest dropped in
#     the kernel and counted (admit_lan_dropped), while another host's
#     established flow keeps >= 80 %
#   over every scenario the WAN sees no LAN source (exact)
# Exit 77 (skip) when not root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imfp-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
command -v nft >/dev/null 2>&1 || nl_skip "nft not installed (apt-get install nftables)"
. "$NL_SRC/tests/lib/esp.sh" || { echo "cannot source tests/lib/esp.sh"; exit 99; }
[ -f "$ESP_PEER" ] || nl_skip "$ESP_PEER missing"
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")
ANNOUNCE=$(dirname "$CTL")/ipsec-masqd-announce
[ -x "$ANNOUNCE" ] || nl_skip "$ANNOUNCE not built"
TMP=$NL_TMP
TABLE=ipsec_masqd_fast
R1_IN=10.20.0.1 H1_IN=10.1.0.11
LIFE=4 ADMIT_RATE=100 ADMIT_BURST=20
FLOOD=$NL_SRC/tests/peers/flood.py

nl_topology || { nl_fail "topology"; exit 1; }

write_config() {   # $1 file [$2 fastpath settings]
	cat > "$1" <<CONF
# ipsec-masqd fast path test
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$NL_LAN_NET" ];
esp = { lifetime = $LIFE; init_timeout = 2; parallel_sessions = false; };
control = { socket = "$TMP/control"; };
fastpath = { enable = true; poll = 0.5; ${2:-} };
log = { level = "info"; };
CONF
}
write_config "$TMP/masqd.conf"
write_config "$TMP/admit.conf" "admit_rate = $ADMIT_RATE; admit_burst = $ADMIT_BURST;"
KEY_NET=$(printf 'ipsec-masqd fastpath test network' | sha256sum | cut -c1-64)
printf '%s\n' "$KEY_NET" > "$TMP/net.keys"
chmod 600 "$TMP/net.keys"
write_config "$TMP/announce.conf"
echo "announce = { listen = \"192.168.1.1\"; key_file = \"$TMP/net.keys\"; };" >> "$TMP/announce.conf"
nl_rules "$TMP/masqd.conf" || { nl_fail "the shipped rules did not load"; exit 1; }

ctl() { nl_in "$NL_RTR" "$CTL" -s "$TMP/control" "$@"; }

# stat SECTION KEY: one counter of `stats --json` (-1 if absent).
stat() {
	ctl stats --json 2>/dev/null | "$NL_PY" -c '
import json, sys
try:
    print(json.loads(sys.stdin.read())[sys.argv[1]][sys.argv[2]])
except Exception:
    print(-1)' "$1" "$2"
}

# entry REMOTE SPI_IN KEY: a field of one ESP entry of `show --json`.
entry() {
	ctl show --json 2>/dev/null | "$NL_PY" -c '
import json, sys
try:
    for e in json.loads(sys.stdin.read())["esp"]:
        if e["remote"] == sys.argv[1] and e["spi_in"] == sys.argv[2]:
            print(e[sys.argv[3]]); break
    else:
        print("none")
except Exception:
    print("error")' "$1" "$(printf '0x%08x' "$2")" "$3"
}

# elems SET: elements in the kernel set/map of our table (-1: no table).
elems() {
	local kind=set
	[ "$1" = in ] && kind=map
	nl_in "$NL_RTR" nft -j list $kind ip $TABLE "$1" 2>/dev/null | "$NL_PY" -c '
import json, sys
try:
    for o in json.loads(sys.stdin.read())["nftables"]:
        if "set" in o or "map" in o:
            s = o.get("set") or o.get("map")
            print(len(s.get("elem", []))); break
    else:
        print(-1)
except Exception:
    print(-1)'
}

# wait_elems SET N TENTHS: until SET holds N elements.
wait_elems() {
	local i
	for ((i = 0; i < $3; i++)); do
		[ "$(elems "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

table_exists() { nl_in "$NL_RTR" nft list table ip $TABLE >/dev/null 2>&1; }

begin() {   # NAME [CONF]
	S=$1 LOG=$TMP/$1.daemon.log CAP=$TMP/$1.wan.pcap S_FAILS=$NL_FAILS
	local conf=${2:-$TMP/masqd.conf}
	echo "# scenario $1"
	nl_capture_start "$NL_WAN" up0 "$CAP" || { nl_fail "$S: WAN capture"; return 1; }
	CAP_PID=$NL_LAST
	nl_daemon_start "$conf" "$LOG" || { nl_fail "$S: daemon did not start"; cat "$LOG"; return 1; }
}

end() {
	local n rc
	if [ -n "$NL_DPID" ]; then
		nl_daemon_stop; rc=$?
		nl_check "$S: the daemon exits 0 on SIGTERM ($rc)" [ "$rc" = 0 ]
	fi
	nl_capture_stop "$CAP_PID"
	n=$(nl_pcap_count "$CAP" "src net $NL_LAN_NET")
	nl_check "$S: no LAN source on the WAN ($n)" eq "$n" 0
	if [ "$NL_FAILS" != "$S_FAILS" ]; then
		echo "--- $S daemon log"; tail -n 60 "$LOG"
	fi
}

# --- 1: a flow moves to the fast path ------------------------------------------
scenario_flow() {
	local A=0x1a000021 B=0x1b000021 q1 q2 p1 p2 n t0 t1 bad hcap hpid
	begin s1 || { end; return; }
	hcap=$TMP/s1.h1.pcap
	nl_capture_start "$NL_H1" eth0 "$hcap" "ip proto 50" || nl_fail "s1: h1 capture"
	hpid=$NL_LAST
	esp_resp "$NL_R1" s1.r1 --local "$NL_R1_IP" --pair "$(sa $A)/$(sa $B)" || { end; return; }
	t0=$(date +%s)
	esp_init_bg "$NL_H1" s1.h1 --local "$NL_H1_IP" --peer "$NL_R1_IP" \
		--inner-local "$H1_IN" --inner-peer "$R1_IN" \
		--sa-out "$(sa $A)" --sa-in "$(sa $B)" --count 150 --interval 0.05
	nl_check "s1: h1's SA associated" nl_wait_log "DECISION=associated" 100 "$LOG"
	nl_check "s1: the association is offloaded both ways (show: $(entry "$NL_R1_IP" $B fastpath))" \
		eval '[ "$(entry "$NL_R1_IP" $B fastpath)" = "in+out" ]'
	# its packets now only in the kernel: a provisional association is
	# still confirmed soon (checked every poll, 0.5 s here, not only near
	# its expiry, 3 s after the association)
	for ((i = 0; i < 15; i++)); do
		v=$(entry "$NL_R1_IP" $B state)
		[ "$v" = established ] && break
		sleep 0.1
	done
	nl_check "s1: the association is established within 1.5 s of the log's association ($v)" \
		[ "$v" = established ]
	sleep 1
	q1=$(stat queue received) p1=$(stat packets outbound)
	esp_init_wait s1.h1
	t1=$(date +%s)
	sleep 1.5   # a poll or two: the kernel's counters credited
	q2=$(stat queue received) p2=$(stat packets outbound)
	echo "  queue received $q1 -> $q2, engine outbound packets $p1 -> $p2 over $((t1 - t0)) s"
	n=$(json "$TMP/s1.h1.json" answered)
	nl_check "s1: >= 140 of 150 probes answered, decrypted and verified at h1 ($n)" ge "$n" 140
	nl_check "s1: the daemon's queue stopped growing once offloaded ($q1 -> $q2, at most 2 more)" \
		eval 'ge "$q1" 1 && [ $((q2 - q1)) -le 2 ]'
	nl_check "s1: the engine saw no more outbound packets ($p1 -> $p2)" \
		eval 'ge "$p1" 1 && [ $((p2 - p1)) -le 1 ]'
	n=$(stat fastpath packets_out)
	nl_check "s1: stats fastpath.packets_out counts the kernel's ($n >= 130)" ge "$n" 130
	n=$(stat fastpath packets_in)
	nl_check "s1: stats fastpath.packets_in counts the kernel's ($n >= 130)" ge "$n" 130
	nl_check "s1: the run outlived the idle lifetime ($((t1 - t0)) s > $LIFE s)" \
		[ $((t1 - t0)) -gt $LIFE ]
	nl_check "s1: the entry used only in the kernel is alive after $((t1 - t0)) s ($(entry "$NL_R1_IP" $B state))" \
		eval '[ "$(entry "$NL_R1_IP" $B state)" = established ]'
	nl_check "s1: the daemon logged no expiry while the flow ran" \
		eval '! grep -q "DECISION=expired" "$LOG"'
	esp_resp_end s1.r1
	n=$(json "$TMP/s1.r1.json" verified)
	nl_check "s1: r1 verified >= 140 ($n), all it got, no bad ICV" \
		eval 'ge "$n" 140 && eq "$n" "$(json "$TMP/s1.r1.json" received)" && eq "$(json "$TMP/s1.r1.json" bad_icv)" 0'
	# idle now: the entry is checked once more (crediting the last
	# packets: show has them all then), and goes within two lifetimes
	n=0
	for ((i = 0; i < (2 * LIFE + 3) * 10; i++)); do
		v=$(entry "$NL_R1_IP" $B pkts_out)
		case $v in none|error) break ;; esac
		n=$v
		sleep 0.1
	done
	nl_check "s1: show credited the kernel's packets to the entry before it went (pkts_out $n >= 140)" ge "$n" 140
	nl_check "s1: idle, the entry expires" nl_wait_log "DECISION=expired" 20 "$LOG"
	nl_check "s1: ... and its elements with it (in $(elems in), out $(elems out))" \
		eval 'wait_elems in 0 20 && wait_elems out 0 20'
	nl_capture_stop "$hpid"
	n=$(nl_pcap_count "$CAP" "src host $NL_EXT and dst host $NL_R1_IP and $(nl_bpf_spi $A)")
	nl_check "s1: outbound ESP leaves from $NL_EXT ($n of SPI $A)" ge "$n" 140
	bad=$(tcpdump -v -n -r "$CAP" "ip proto 50" 2>/dev/null | grep -c "bad cksum")
	nl_check "s1: no bad IP header checksum on the WAN ($bad)" eq "$bad" 0
	n=$(nl_pcap_count "$hcap" "src host $NL_R1_IP and dst host $NL_H1_IP")
	bad=$(tcpdump -v -n -r "$hcap" "ip proto 50" 2>/dev/null | grep -c "bad cksum")
	nl_check "s1: h1 got $n rewritten ESP packets, no bad IP header checksum ($bad)" \
		eval 'ge "$n" 140 && eq "$bad" 0'
	end
}

# --- 2: elements follow del, flush, stop and kill -9 ---------------------------
scenario_control() {
	begin s2 || { end; return; }
	nl_check "s2: the table is there with the daemon" table_exists
	ctl add esp --remote "$NL_R1_IP" --host "$NL_H1_IP" --spi-in 0x2b000001 --spi-out 0x2a000001 --ttl 60 >/dev/null
	nl_check "s2: add esp: both elements installed (in $(elems in), out $(elems out))" \
		eval 'wait_elems in 1 20 && wait_elems out 1 20'
	nl_check "s2: show says in+out" eval '[ "$(entry "$NL_R1_IP" 0x2b000001 fastpath)" = in+out ]'
	ctl del esp --remote "$NL_R1_IP" --spi-in 0x2b000001 >/dev/null
	nl_check "s2: del esp removes them at once (in $(elems in), out $(elems out))" \
		eval 'wait_elems in 0 10 && wait_elems out 0 10'
	ctl add esp --remote "$NL_R1_IP" --host "$NL_H1_IP" --spi-in 0x2b000002 --spi-out 0x2a000002 --ttl 60 >/dev/null
	ctl add esp --remote "$NL_R2_IP" --host "$NL_H2_IP" --spi-in 0x2b000003 --ttl 60 >/dev/null
	nl_check "s2: two more: 2 in, 1 out (no out-SPI for the second)" \
		eval 'wait_elems in 2 20 && wait_elems out 1 20'
	ctl flush >/dev/null
	nl_check "s2: flush removes them at once (in $(elems in), out $(elems out))" \
		eval 'wait_elems in 0 10 && wait_elems out 0 10'
	ctl add esp --remote "$NL_R1_IP" --host "$NL_H1_IP" --spi-in 0x2b000004 --spi-out 0x2a000004 --ttl 60 >/dev/null
	wait_elems in 1 20
	nl_daemon_stop
	nl_check "s2: a clean stop removes the table" eval '! table_exists'
	# kill -9: what is left lives no longer than its lifetime
	nl_daemon_start "$TMP/masqd.conf" "$LOG.2" || nl_fail "s2: restart"
	ctl add esp --remote "$NL_R1_IP" --host "$NL_H1_IP" --spi-in 0x2b000005 --spi-out 0x2a000005 --ttl 3 >/dev/null
	nl_check "s2: a 3 s preload is installed" eval 'wait_elems in 1 20 && wait_elems out 1 20'
	kill -9 "$NL_DPID"; wait "$NL_DPID" 2>/dev/null; NL_DPID=
	nl_check "s2: after kill -9 the table stays, its elements too" eval 'table_exists && [ "$(elems in)" = 1 ]'
	sleep 3.5
	nl_check "s2: ... but not past their lifetime (in $(elems in), out $(elems out))" \
		eval '[ "$(elems in)" = 0 ] && [ "$(elems out)" = 0 ]'
	# a stale element (kill -9 with a long lifetime) is gone once a new daemon starts
	nl_daemon_start "$TMP/masqd.conf" "$LOG.3" || nl_fail "s2: restart"
	ctl add esp --remote "$NL_R1_IP" --host "$NL_H1_IP" --spi-in 0x2b000006 --ttl 60 >/dev/null
	wait_elems in 1 20
	kill -9 "$NL_DPID"; wait "$NL_DPID" 2>/dev/null; NL_DPID=
	nl_daemon_start "$TMP/masqd.conf" "$LOG.4" || nl_fail "s2: restart"
	nl_check "s2: a new daemon replaces the stale table: no element left (in $(elems in))" \
		eval '[ "$(elems in)" = 0 ]'
	end
}

# --- 3: admission in front of the queue under a flood --------------------------
# admit_rate 100/s, burst 20: 20000 ESP packets with unknown SPIs from r1 to
# the external address (each would be queued: guessed or dropped by the
# daemon) are admitted at that rate and the rest dropped in the kernel and
# counted, while h1's established flow, in the kernel, keeps its packets.
scenario_admit() {
	local A=0x1a000031 B=0x1b000031 q0 q1 d0 d1 sent secs n fpid
	begin s3 "$TMP/admit.conf" || { end; return; }
	esp_resp "$NL_R1" s3.r1 --local "$NL_R1_IP" --pair "$(sa $A)/$(sa $B)" || { end; return; }
	esp_init_bg "$NL_H1" s3.h1 --local "$NL_H1_IP" --peer "$NL_R1_IP" \
		--inner-local "$H1_IN" --inner-peer "$R1_IN" \
		--sa-out "$(sa $A)" --sa-in "$(sa $B)" --count 80 --interval 0.05
	nl_check "s3: h1's SA associated" nl_wait_log "DECISION=associated" 100 "$LOG"
	sleep 1
	q0=$(stat packets inbound) d0=$(stat fastpath admit_dropped)
	nl_spawn "$NL_R1" "$NL_PY" "$FLOOD" esp --src "$NL_R1_IP" --dst "$NL_EXT" \
		--count 20000 --duration 8 >"$TMP/s3.flood.json" 2>"$TMP/s3.flood.err"
	fpid=$NL_LAST
	nl_wait_pid "$fpid" 20
	esp_init_wait s3.h1
	sleep 1   # a poll: the admission counter read
	q1=$(stat packets inbound) d1=$(stat fastpath admit_dropped)
	sent=$(json "$TMP/s3.flood.json" sent) secs=$(json "$TMP/s3.flood.json" seconds)
	echo "  flood: sent $sent in $secs s; the engine saw $((q1 - q0)) inbound, admission dropped $((d1 - d0))"
	nl_check "s3: the flood was sent ($sent >= 10000)" ge "$sent" 10000
	n=$(awk -v s="$secs" -v r=$ADMIT_RATE -v b=$ADMIT_BURST 'BEGIN { printf "%d", r * (s + 2) + b + 20 }')
	nl_check "s3: at most rate x time + burst reached the daemon ($((q1 - q0)) <= $n)" \
		eval '[ $((q1 - q0)) -le $n ]'
	nl_check "s3: the excess was dropped in the kernel and counted ($((d1 - d0)) >= $sent - $n)" \
		eval 'ge $((d1 - d0)) $((sent - n))'
	n=$(json "$TMP/s3.h1.json" answered)
	nl_check "s3: h1's flow kept >= 80 % of its packets through the flood ($n of 80)" ge "$n" 64
	esp_resp_end s3.r1
	end
}

# --- 4: lifetimes kept by the use checks ----------------------------------------
# Two preloads with the lifetime ($LIFE s): h1's (r1) carries a flow only
# through the kernel for three lifetimes, h2's (r2) stays idle.
scenario_lifetimes() {
	local A=0x1a000041 B=0x1b000041 IA=0x1a000042 IB=0x1b000042
	local t0 q0 q1 gone= el i v n
	begin s4 || { end; return; }
	esp_resp "$NL_R1" s4.r1 --local "$NL_R1_IP" --pair "$(sa $A)/$(sa $B)" || { end; return; }
	ctl add esp --remote "$NL_R1_IP" --host "$NL_H1_IP" --spi-in $B --spi-out $A --ttl $LIFE >/dev/null
	t0=$(date +%s%N)
	ctl add esp --remote "$NL_R2_IP" --host "$NL_H2_IP" --spi-in $IB --spi-out $IA --ttl $LIFE >/dev/null
	nl_check "s4: both preloads offloaded (in $(elems in), out $(elems out))" \
		eval 'wait_elems in 2 20 && wait_elems out 2 20'
	q0=$(stat queue received)
	esp_init_bg "$NL_H1" s4.h1 --local "$NL_H1_IP" --peer "$NL_R1_IP" \
		--inner-local "$H1_IN" --inner-peer "$R1_IN" \
		--sa-out "$(sa $A)" --sa-in "$(sa $B)" --count $((LIFE * 3 * 20)) --interval 0.05
	# the idle one goes on time: within [LIFE - 0.3, LIFE + 1.5] s
	for ((i = 0; i < (LIFE + 4) * 20; i++)); do
		v=$(entry "$NL_R2_IP" $IB state)
		if [ "$v" = none ]; then gone=$(date +%s%N); break; fi
		sleep 0.05
	done
	el=$(( (${gone:-0} - t0) / 1000000 ))
	nl_check "s4: the idle preload was removed on time ($el ms after it was added, lifetime $((LIFE * 1000)) ms)" \
		eval '[ -n "$gone" ] && [ $el -ge $((LIFE * 1000 - 300)) ] && [ $el -le $((LIFE * 1000 + 1500)) ]'
	nl_check "s4: ... and its elements with it (in $(elems in), out $(elems out))" \
		eval 'wait_elems in 1 20 && wait_elems out 1 20'
	esp_init_wait s4.h1
	el=$(( ($(date +%s%N) - t0) / 1000000 ))
	q1=$(stat queue received)
	v=$(entry "$NL_R1_IP" $B state)
	nl_check "s4: the preload used only through the kernel is alive after $el ms, 3 lifetimes ($v)" \
		eval '[ $el -gt $((LIFE * 3000)) ] && [ "$v" = preloaded ]'
	nl_check "s4: ... its flow never reached the queue ($q0 -> $q1)" \
		eval 'ge "$q0" 0 && [ $((q1 - q0)) -le 2 ]'
	n=$(json "$TMP/s4.h1.json" answered)
	nl_check "s4: ... and got its answers ($n >= $((LIFE * 3 * 20 * 9 / 10)))" ge "$n" $((LIFE * 3 * 20 * 9 / 10))
	n=$(stat fastpath refreshed)
	nl_check "s4: its checks renewed it (fastpath.refreshed $n >= 2)" ge "$n" 2
	n=$(stat fastpath expired_unchecked)
	nl_check "s4: no entry expired before its check (fastpath.expired_unchecked $n)" eq "$n" 0
	n=$(stat fastpath check_errors)
	nl_check "s4: every check answered (fastpath.check_errors $n)" eq "$n" 0
	esp_resp_end s4.r1
	nl_check "s4: idle now, it goes within two lifetimes (elements too)" \
		eval 'wait_elems in 0 $(((2 * LIFE + 2) * 10)) && wait_elems out 0 20'
	end
}

# --- 5: announced associations are offloaded ----------------------------------
scenario_announce() {
	local A=0x1a000051 B=0x1b000051 q0 q1 n out rc
	begin s5 "$TMP/announce.conf" || { end; return; }
	out=$(nl_in "$NL_H1" "$ANNOUNCE" announce --router 192.168.1.1 --key-file "$TMP/net.keys" \
		--remote "$NL_R1_IP" --spi-in $B --spi-out $A --ttl 60 2>&1); rc=$?
	nl_check "s5: h1 announces $B/$A: exit 0 ($rc: $out)" [ "$rc" = 0 ]
	nl_check "s5: the announced association is offloaded (in $(elems in), out $(elems out))" \
		eval 'wait_elems in 1 20 && wait_elems out 1 20'
	nl_check "s5: show: announced, in+out ($(entry "$NL_R1_IP" $B state), $(entry "$NL_R1_IP" $B fastpath))" \
		eval '[ "$(entry "$NL_R1_IP" $B state)" = announced ] && [ "$(entry "$NL_R1_IP" $B fastpath)" = in+out ]'
	esp_resp "$NL_R1" s5.r1 --local "$NL_R1_IP" --pair "$(sa $A)/$(sa $B)" || { end; return; }
	q0=$(stat queue received)
	esp_init_bg "$NL_H1" s5.h1 --local "$NL_H1_IP" --peer "$NL_R1_IP" \
		--inner-local "$H1_IN" --inner-peer "$R1_IN" \
		--sa-out "$(sa $A)" --sa-in "$(sa $B)" --count 40 --interval 0.05
	esp_init_wait s5.h1
	q1=$(stat queue received)
	n=$(json "$TMP/s5.h1.json" answered)
	nl_check "s5: h1's flow answered ($n >= 38)" ge "$n" 38
	nl_check "s5: ... entirely in the kernel: the queue did not grow ($q0 -> $q1)" \
		eval 'ge "$q0" 0 && [ $((q1 - q0)) -le 2 ]'
	n=$(stat fastpath packets_out)
	nl_check "s5: stats fastpath.packets_out counts them ($n >= 38)" ge "$n" 38
	esp_resp_end s5.r1
	end
}

# --- 6: LAN-side admission under a LAN flood -----------------------------------
scenario_admit_lan() {
	local A=0x1a000061 B=0x1b000061 q0 q1 d0 d1 w0 w1 sent secs n fpid
	begin s6 "$TMP/admit.conf" || { end; return; }
	esp_resp "$NL_R1" s6.r1 --local "$NL_R1_IP" --pair "$(sa $A)/$(sa $B)" || { end; return; }
	esp_init_bg "$NL_H1" s6.h1 --local "$NL_H1_IP" --peer "$NL_R1_IP" \
		--inner-local "$H1_IN" --inner-peer "$R1_IN" \
		--sa-out "$(sa $A)" --sa-in "$(sa $B)" --count 80 --interval 0.05
	nl_check "s6: h1's SA associated" nl_wait_log "DECISION=associated" 100 "$LOG"
	sleep 1
	q0=$(stat packets outbound) d0=$(stat fastpath admit_lan_dropped) w0=$(stat fastpath admit_dropped)
	nl_spawn "$NL_H2" "$NL_PY" "$FLOOD" esp --src "$NL_H2_IP" --dst "$NL_R2_IP" \
		--count 20000 --duration 8 >"$TMP/s6.flood.json" 2>"$TMP/s6.flood.err"
	fpid=$NL_LAST
	nl_wait_pid "$fpid" 20
	esp_init_wait s6.h1
	q1=$(stat packets outbound) d1=$(stat fastpath admit_lan_dropped) w1=$(stat fastpath admit_dropped)
	sent=$(json "$TMP/s6.flood.json" sent) secs=$(json "$TMP/s6.flood.json" seconds)
	echo "  LAN flood: sent $sent in $secs s; the engine saw $((q1 - q0)) outbound, LAN admission dropped $((d1 - d0))"
	nl_check "s6: the flood was sent ($sent >= 10000)" ge "$sent" 10000
	n=$(awk -v s="$secs" -v r=$ADMIT_RATE -v b=$ADMIT_BURST 'BEGIN { printf "%d", r * (s + 2) + b + 20 }')
	nl_check "s6: at most rate x time + burst reached the daemon ($((q1 - q0)) <= $n)" \
		eval 'ge "$q0" 0 && [ $((q1 - q0)) -le $n ]'
	nl_check "s6: the excess was dropped in the kernel and counted ($((d1 - d0)) >= $sent - $n)" \
		eval 'ge $((d1 - d0)) $((sent - n))'
	nl_check "s6: the WAN side's bucket was not charged ($w0 -> $w1)" eq "$w1" "$w0"
	n=$(json "$TMP/s6.h1.json" answered)
	nl_check "s6: h1's flow kept >= 80 % of its packets through the flood ($n of 80)" ge "$n" 64
	esp_resp_end s6.r1
	end
}

# IMFP_SCENARIOS: a subset, by name (all by default)
for sc in ${IMFP_SCENARIOS:-flow control admit lifetimes announce admit_lan}; do
	"scenario_$sc"
done

echo "# $NL_FAILS failure(s)"
[ "$NL_FAILS" = 0 ]

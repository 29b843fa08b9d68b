#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# The bounded IKE fallback (issue 11, point 4): the real daemon and the
# shipped rules in the namespaces of tests/lib/netns.sh. Scenarios, each a
# function that can fail:
#   1 h1 has a real-crypto ESP tunnel and an IKE exchange with r1; h2 talked
#     IKE with r1 after it (the most recent ISAKMP talker). h1 and r2 run an
#     IKE responder (tests/peers/ike_peer.py) that answers every IKE_SA_INIT.
#   2 a flood of new IKE exchanges spoofed from r1's address (sent from r2;
#     unknown initiator SPIs) toward the external address, every one that
#     reaches h1 answered: what enters the LAN is at most
#     fallback_rate * time + fallback_burst (exact, counted on the router's
#     LAN side), all of it to h1 (it holds ESP with r1: ESP holders come
#     first); stats count the rest as isakmp_ratelimited, the log limits
#     their lines and counts the suppressed ones; h1's answers hold exactly
#     answer_allowance entries, the rest are dropped (isakmp_answer_limit)
#     until the oldest are 5 s old and give way (none of them followed up:
#     the spoofer never sees h1's responder SPI), none refused as host_full;
#   2b r1 itself then starts an exchange with h1 (IKE_SA_INIT to the
#     external address, resent every 1.5 s): it is answered, taking the
#     place of a spoofed answer once that is 5 s old (with the allowance
#     held for isakmp.lifetime by the flood, it was not, before)
#   3 at once afterwards h1 starts its own IKE exchange and an ESP tunnel with
#     r2, both answered, and its tunnel with r1 still works. max_per_host is
#     far below what the flood's answers would have taken without the
#     allowance.
#   4 over the whole run the WAN sees no LAN source (exact), and no more of
#     h1's answers to r1 than the allowance renewed every 5 s of the flood
#     plus r1's own.
# Knobs: IKEFLOOD_COUNT (600), IKEFLOOD_PPS (100). Exit 77 (skip) when not
# root or a tool is missing.

# make check runs it as "$(SHELL) test_ike_flood.sh": it needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imikf$$-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
# Stale namespaces of earlier runs of this test (other PIDs, now dead).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^imikf[0-9]+-'); do
	pid=${ns#imikf}; pid=${pid%%-*}
	kill -0 "$pid" 2>/dev/null && continue
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
done
nl_init
PEER=$NL_SRC/tests/peers/esp_peer.py
IKE=$NL_SRC/tests/peers/ike_peer.py
FLOOD=$NL_SRC/tests/peers/flood.py
[ -f "$PEER" ] && [ -f "$IKE" ] && [ -f "$FLOOD" ] || nl_skip "a peer script is missing"
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")
command -v timeout >/dev/null 2>&1 || nl_skip "timeout (coreutils) missing"
TMP=$NL_TMP
T0=$(date +%s)
LOG=$TMP/daemon.log
SOCK=$TMP/control

# The fallback's budget and allowance (the defaults, written out), and a
# max_per_host that the flood's answers would fill without the allowance.
RATE=10 BURST=20 ALLOW=8 MAX_PER_HOST=24
COUNT=${IKEFLOOD_COUNT:-600} PPS=${IKEFLOOD_PPS:-100}
# h1 <-> r1 (A/B) and h1 <-> r2 (C/D): inner addresses and SPIs.
A=0x7a000021 B=0x7b000021 C=0x7c000021 D=0x7d000021
R1_IN=10.20.0.1 R2_IN=10.30.0.1 H1_IN=10.1.0.11

ge() { [ "$1" -ge "$2" ] 2>/dev/null; }
eq() { [ "$1" -eq "$2" ] 2>/dev/null; }
le() { [ "$1" -le "$2" ] 2>/dev/null; }
jget() { nl_jget "$@"; }

# sa SPI: "SPI:ENCKEY:AUTHKEY", keys derived from the SPI.
sa() {
	local k
	k=$(printf 'ipsec-masqd ike flood test %s' "$1" | sha256sum | cut -c1-64)
	printf '%s:%s:%s' "$1" "${k:0:32}" "$(printf '%s auth' "$k" | sha256sum | cut -c1-64)"
}

stats() { "$CTL" -s "$SOCK" stats --json 2>"$1.err" | tail -n1 >"$1"; }
sdelta() { echo $(( $(jget "$2" "$3") - $(jget "$1" "$3") )); }

# tunnel NAME REMOTE_IP REMOTE_INNER OUT IN COUNT: h1's ESP probes, result
# in $TMP/NAME.json; prints the number answered and verified.
tunnel() {
	nl_in "$NL_H1" timeout -k 5 60 "$NL_PY" "$PEER" initiate --duration 40 \
		--local "$NL_H1_IP" --peer "$2" --inner-local "$H1_IN" --inner-peer "$3" \
		--sa-out "$(sa "$4")" --sa-in "$(sa "$5")" --count "$6" >"$TMP/$1.json" 2>"$TMP/$1.err"
	echo "  $1: $(tail -n1 "$TMP/$1.json")" >&2
	jget "$TMP/$1.json" 'd["answered"]'
}

# responder NS IP NAME ARGS...: an ESP (esp) or IKE (ike) responder in the
# background; PID in RPID[NAME], report in $TMP/NAME.json.
declare -A RPID
responder() {
	local ns=$1 ip=$2 name=$3 kind=$4; shift 4
	local script=$PEER
	[ "$kind" = ike ] && script=$IKE
	rm -f "$TMP/$name.ready"
	nl_spawn "$ns" "$NL_PY" "$script" respond --local "$ip" --duration 200 \
		--ready "$TMP/$name.ready" "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
	RPID[$name]=$NL_LAST
	nl_wait_log ready 200 "$TMP/$name.ready" ||
		{ nl_fail "responder $name did not start"; cat "$TMP/$name.err"; return 1; }
}
responder_end() {
	nl_stop "${RPID[$1]}" 50
	echo "  $1: $(tail -n1 "$TMP/$1.json" 2>/dev/null)"
}

write_config() {
	cat > "$1" <<CONF
# ipsec-masqd IKE flood test
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$NL_LAN_NET" ];
esp = { lifetime = 600.0; init_timeout = 5.0; };
isakmp = {
	lifetime = 300.0;
	fallback_rate = $RATE;
	fallback_burst = $BURST;
	answer_allowance = $ALLOW;
};
limits = { max_per_host = $MAX_PER_HOST; };
control = { socket = "$SOCK"; };
log = { level = "info"; };
CONF
}

# --- 1: h1 holds ESP with r1, h2 talked IKE with r1 last; responders ---------------------
scenario_setup() {
	local f0=$NL_FAILS n
	echo "# scenario 1: h1's tunnel and IKE with r1, h2's IKE with r1; IKE responders in h1 and r2"
	responder "$NL_R1" "$NL_R1_IP" r1.esp esp --pair "$(sa $A)/$(sa $B)" || return 1
	responder "$NL_R2" "$NL_R2_IP" r2.esp esp --pair "$(sa $C)/$(sa $D)" || return 1
	responder "$NL_R2" "$NL_R2_IP" r2.ike ike || return 1
	responder "$NL_H1" "$NL_H1_IP" h1.ike ike || return 1
	nl_in "$NL_H1" "$NL_PY" "$PEER" ike --local "$NL_H1_IP" --peer "$NL_R1_IP" \
		--cookie 0x7100000000000001 --count 1 >/dev/null
	n=$(tunnel s1.tunnel "$NL_R1_IP" "$R1_IN" $A $B 5)
	nl_check "s1: h1's tunnel with r1 works (>= 4 of 5 answered: $n)" ge "$n" 4
	nl_in "$NL_H2" "$NL_PY" "$PEER" ike --local "$NL_H2_IP" --peer "$NL_R1_IP" \
		--cookie 0x7100000000000002 --count 1 >/dev/null
	nl_check "s1: ISAKMP entries with r1 for h1 and h2" eval \
		'nl_wait_log "DECISION=created TABLE=isakmp PEER_ADDR=$NL_R1_IP LAN_ADDR=$NL_H1_IP( |\$)" 50 "$LOG" &&
		 nl_wait_log "DECISION=created TABLE=isakmp PEER_ADDR=$NL_R1_IP LAN_ADDR=$NL_H2_IP( |\$)" 50 "$LOG"'
	[ "$NL_FAILS" = "$f0" ]
}

# --- 2: new exchanges spoofed from r1, answered by h1 -------------------------------------
scenario_flood() {
	local f0=$NL_FAILS cap fpid t0 t1 ms sent in to_h1 bound rl g al hf ans sup lines
	echo "# scenario 2: $COUNT new IKE exchanges spoofed from r1 ($PPS a second), h1 answers"
	# What of r1's address on UDP 500 enters the LAN: the flood's packets
	# the fallback let through (r1 itself sends no IKE in this test).
	nl_capture_start "$NL_RTR" lan0 "$TMP/s2.lan.pcap" "src host $NL_R1_IP and udp port 500" ||
		{ nl_fail "s2: LAN-side capture"; return 1; }
	cap=$NL_LAST
	stats "$TMP/s2.before"
	t0=$(date +%s%N)
	nl_spawn "$NL_R2" timeout -k 2 100 "$NL_PY" "$FLOOD" isakmp --src "$NL_R1_IP" --dst "$NL_EXT" \
		--count "$COUNT" --rate "$PPS" --duration 60 --variants "$COUNT" --seed 11 \
		>"$TMP/s2.flood.json" 2>"$TMP/s2.flood.err"
	fpid=$NL_LAST
	nl_wait_pid "$fpid" 90
	echo "  flood: $(tail -n1 "$TMP/s2.flood.json" 2>/dev/null)"
	sent=$(jget "$TMP/s2.flood.json" 'd["sent"]')
	sleep 1
	nl_capture_stop "$cap"
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	FLOOD_MS=$ms
	stats "$TMP/s2.after"
	in=$(nl_pcap_count "$TMP/s2.lan.pcap" "ip")
	to_h1=$(nl_pcap_count "$TMP/s2.lan.pcap" "dst host $NL_H1_IP")
	g=$(sdelta "$TMP/s2.before" "$TMP/s2.after" 'd["decisions"]["guessed"]')
	rl=$(sdelta "$TMP/s2.before" "$TMP/s2.after" 'd["reasons"]["isakmp_ratelimited"]')
	al=$(sdelta "$TMP/s2.before" "$TMP/s2.after" 'd["reasons"]["isakmp_answer_limit"]')
	hf=$(sdelta "$TMP/s2.before" "$TMP/s2.after" 'd["reasons"]["host_full"]')
	ans=$(jget "$TMP/s2.after" 'd["tables"]["isakmp_answers"]')
	echo "  flood: $sent packets in; into the LAN: $in (to h1: $to_h1) in $ms ms;" \
		"guessed $g, isakmp_ratelimited $rl, isakmp_answer_limit $al, answer entries $ans"
	nl_check "s2: the flood was sent (${sent:-0} >= $((COUNT * 9 / 10)))" ge "${sent:--1}" $((COUNT * 9 / 10))
	nl_check "s2: some of it reached the LAN ($in)" ge "$in" 1
	bound=$(( RATE * ms / 1000 + BURST ))
	nl_check "s2: into the LAN <= fallback_rate*${ms}ms + fallback_burst = $bound ($in)" le "$in" "$bound"
	nl_check "s2: all of it to h1, which holds ESP with r1 ($to_h1 of $in)" eq "$to_h1" "$in"
	nl_check "s2: stats: guessed = what reached the LAN ($g = $in)" eq "$g" "$in"
	nl_check "s2: stats: the rest dropped as isakmp_ratelimited ($rl >= 95% of $sent - $in)" \
		ge "$((rl * 100))" "$(( (sent - in) * 95 ))"
	nl_check "s2: h1's answers hold exactly answer_allowance entries ($ans = $ALLOW)" eq "$ans" "$ALLOW"
	nl_check "s2: the answers beyond it were dropped as isakmp_answer_limit ($al >= 1)" ge "$al" 1
	nl_check "s2: none refused as host_full ($hf)" eq "$hf" 0
	nl_check "s2: the log names the drops (REASON=isakmp_ratelimited)" \
		grep -qE "DECISION=dropped TABLE=isakmp PEER_ADDR=$NL_R1_IP .*REASON=isakmp_ratelimited" "$LOG"
	# The log's limiter (per decision and reason: 10 at once, then one a
	# second) says how many it suppressed when the next line gets through;
	# the drops of the flood's last second or two may still be pending.
	lines=$(grep -cE "DECISION=dropped TABLE=isakmp PEER_ADDR=$NL_R1_IP .*REASON=isakmp_ratelimited" "$LOG")
	sup=$(grep -E "similar messages suppressed .*REASON=isakmp_ratelimited" "$LOG" |
		grep -o "SUPPRESSED=[0-9]*" | grep -o "[0-9]*" | awk '{s += $1} END {print s + 0}')
	nl_check "s2: the log limits those lines: $lines <= 10 + one a second (${ms} ms)" \
		le "$lines" $(( 10 + ms / 1000 + 1 ))
	nl_check "s2: and counts the rest as suppressed ($sup; $lines + $sup <= $rl, >= $rl - $((2 * PPS)))" \
		eval 'ge "$sup" 1 && le "$((lines + sup))" "$rl" && ge "$((lines + sup))" "$((rl - 2 * PPS))"'
	[ "$NL_FAILS" = "$f0" ]
}

# --- 2b: the real r1 starts an exchange with h1 -------------------------------------------
scenario_real_remote() {
	local f0=$NL_FAILS n rtt
	echo "# scenario 2b: r1 itself starts an IKE exchange with h1 (to $NL_EXT)"
	nl_in "$NL_R1" timeout -k 5 40 "$NL_PY" "$IKE" initiate --local "$NL_R1_IP" --peer "$NL_EXT" \
		--cookie 0x7300000000000001 --count 12 --timeout 1.5 >"$TMP/s2b.ike.json" 2>"$TMP/s2b.ike.err"
	echo "  s2b.ike: $(tail -n1 "$TMP/s2b.ike.json")"
	n=$(jget "$TMP/s2b.ike.json" 'd["answered"]')
	rtt=$(jget "$TMP/s2b.ike.json" 'd["rtt_ms"]')
	nl_check "s2b: r1's exchange was answered by h1 despite the allowance the flood holds ($n, after $rtt ms)" eq "$n" 1
	nl_check "s2b: the daemon made room by dropping a spoofed answer entry" \
		grep -qE "DECISION=expired TABLE=isakmp PEER_ADDR=$NL_R1_IP LAN_ADDR=$NL_H1_IP .*REASON=isakmp_answer_limit" "$LOG"
	[ "$NL_FAILS" = "$f0" ]
}

# --- 3: at once, h1's own IKE and ESP with r2 ---------------------------------------------
scenario_after() {
	local f0=$NL_FAILS n m
	echo "# scenario 3: at once, h1 starts IKE and a tunnel with r2"
	nl_in "$NL_H1" timeout -k 5 30 "$NL_PY" "$IKE" initiate --local "$NL_H1_IP" --peer "$NL_R2_IP" \
		--cookie 0x7200000000000001 --count 4 --timeout 1.0 >"$TMP/s3.ike.json" 2>"$TMP/s3.ike.err"
	echo "  s3.ike: $(tail -n1 "$TMP/s3.ike.json")"
	n=$(jget "$TMP/s3.ike.json" 'd["answered"]')
	m=$(jget "$TMP/s3.ike.json" 'd["sent"]')
	nl_check "s3: h1's own IKE exchange with r2 is answered ($n, $m sent)" eq "$n" 1
	n=$(tunnel s3.tunnel2 "$NL_R2_IP" "$R2_IN" $C $D 10)
	nl_check "s3: h1's new tunnel with r2 works (>= 9 of 10 answered: $n)" ge "$n" 9
	n=$(tunnel s3.tunnel1 "$NL_R1_IP" "$R1_IN" $A $B 5)
	nl_check "s3: h1's tunnel with r1 still works (>= 4 of 5 answered: $n)" ge "$n" 4
	stats "$TMP/s3.stats"
	n=$(jget "$TMP/s3.stats" 'd["reasons"]["host_full"] + d["reasons"]["table_full"]')
	nl_check "s3: no host_full or table_full refusal in the whole run ($n)" eq "$n" 0
	responder_end h1.ike
	n=$(jget "$TMP/h1.ike.json" 'd["answered"]')
	nl_check "s3: h1's responder answered more exchanges than the allowance ($n > $ALLOW)" \
		ge "$n" $((ALLOW + 1))
	[ "$NL_FAILS" = "$f0" ]
}

# --- 4: no LAN source on the WAN, over the whole run --------------------------------------
scenario_noleak() {
	local f0=$NL_FAILS n m d
	echo "# scenario 4: the WAN capture over the whole run"
	nl_capture_stop "$ALL_CAP"
	d=$(grep -Eo '[0-9]+ packets? dropped by kernel' "$TMP/all.wan.pcap.err" | grep -Eo '^[0-9]+')
	nl_check "s4: the WAN capture lost nothing (${d:-?} dropped by kernel)" eq "${d:--1}" 0
	# h1's answers (IKE header flags at UDP payload byte 19: response 0x20)
	# each spoofed answer entry gives way at 5 s at the earliest: the
	# allowance is renewed at most once per 5 s of the flood; r1's own
	# exchange may be answered once per resend
	local most=$(( ALLOW * (1 + ${FLOOD_MS:-0} / 5000 + 1) + 12 ))
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "src host $NL_EXT and dst host $NL_R1_IP and udp port 500 and udp[27] & 0x20 != 0")
	nl_check "s4: h1's answers to r1 on the WAN: at least one, at most $most ($n)" \
		eval 'ge "$n" 1 && le "$n" "$most"'
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "src host $NL_EXT and dst host $NL_R2_IP and udp port 500")
	nl_check "s4: h1's IKE to r2 left from $NL_EXT ($n)" ge "$n" 1
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "src net 192.168.0.0/16")
	m=$(nl_pcap_count "$TMP/all.wan.pcap" "net 10.0.0.0/8")
	if ! nl_check "s4: no LAN source on the WAN in the whole run ($n), no inner address in clear ($m)" \
		eval 'eq "$n" 0 && eq "$m" 0'; then
		tcpdump -n -r "$TMP/all.wan.pcap" "src net 192.168.0.0/16 or net 10.0.0.0/8" 2>/dev/null | head -n 20
	fi
	[ "$NL_FAILS" = "$f0" ]
}

# --- setup -------------------------------------------------------------------------------
nl_topology || { echo "cannot build the namespaces"; exit 99; }
write_config "$TMP/ikeflood.conf"
nl_rules "$TMP/ikeflood.conf" || { echo "cannot load the rules"; exit 99; }
nl_ok "namespaces (3 LAN hosts, router, 2 remotes) and the shipped rules"
# The WAN capture keeps, in the kernel, what could be a leak and what the
# router sends on UDP 500: the flood's own packets stay out.
nl_capture_start "$NL_WAN" up0 "$TMP/all.wan.pcap" \
	"src net 192.168.0.0/16 or net 10.0.0.0/8 or (src host $NL_EXT and udp port 500)" ||
	{ echo "cannot capture on the WAN"; exit 99; }
ALL_CAP=$NL_LAST
nl_daemon_start "$TMP/ikeflood.conf" "$LOG" || { cat "$LOG"; echo "the daemon did not start"; exit 99; }
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done

RESULTS=()
if scenario_setup; then
	RESULTS+=("setup: pass")
	for s in flood real_remote after; do
		if scenario_$s; then RESULTS+=("$s: pass"); else RESULTS+=("$s: FAIL"); fi
	done
else
	RESULTS+=("setup: FAIL (the rest needs it)")
fi
scenario_noleak && RESULTS+=("noleak: pass") || RESULTS+=("noleak: FAIL")
for r in "${!RPID[@]}"; do kill -0 "${RPID[$r]}" 2>/dev/null && responder_end "$r"; done
rc=0
nl_daemon_stop || rc=$?
nl_check "the daemon exits 0 on SIGTERM ($rc)" eq "$rc" 0

echo "# summary ($(($(date +%s) - T0)) s)"
printf '  %s\n' "${RESULTS[@]}"
if [ "$NL_FAILS" != 0 ]; then
	echo "$NL_FAILS check(s) failed"
	echo "--- daemon log (last 60 lines)"; tail -n 60 "$LOG"
	exit 1
fi
echo "all passed"
exit 0

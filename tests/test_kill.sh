#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# Queue pressure and daemon death (issue 7): the real daemon and the shipped
# rules in the namespaces of tests/lib/netns.sh (no --queue-bypass, no
# fail-open: design.md, "Packet path"). A steady real-crypto ESP stream h1 -> r1
# (tests/peers/esp_peer.py) runs through it all. Scenarios, each a function
# that can fail:
#   1 the stream is up
#   2 the daemon falls behind: SIGSTOP, a burst of ESP from h1 under a new
#     SPI (more than io.queue_maxlen), SIGCONT. While it is stopped nothing
#     of it leaves; the kernel holds queue_maxlen packets and drops the
#     rest, counted in /proc/net/netfilter/nfnetlink_queue and in
#     `ipsec-masqctl stats`; at most queue_maxlen of the burst leave
#     afterwards, all masqueraded; the stream answers again. The stream
#     while the daemon is stopped: queued, nothing of it leaves; with the
#     fast path it is rewritten in the kernel and goes on
#   3 kill -9 mid-stream: the queue loses its listener; h1 keeps sending.
#     Without the fast path not one packet that reached the router after
#     the death leaves on the WAN (by ESP sequence number, exact; and
#     nothing at all from the router a moment later). With it the kernel's
#     elements may carry the stream on, masqueraded, but not past their
#     timeout, which is at most the entry's lifetime (esp.lifetime $LIFE s):
#     from then on not one packet leaves (exact), and nothing at all from
#     the router
#   4 a restarted daemon: the stream's SA is associated again and a new
#     tunnel works (>= 18 of 20)
#   5 over the whole run the WAN sees no LAN source (exact)
# Exit 77 (skip) when not root or a tool is missing.

# make check runs it as "$(SHELL) test_kill.sh": it needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imkil$$-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
# Stale namespaces of earlier runs of this test (other PIDs, now dead).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^imkil[0-9]+-'); do
	pid=${ns#imkil}; pid=${pid%%-*}
	kill -0 "$pid" 2>/dev/null && continue
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
done
nl_init
PEER=$NL_SRC/tests/peers/esp_peer.py
FLOOD=$NL_SRC/tests/peers/flood.py
[ -f "$PEER" ] && [ -f "$FLOOD" ] || nl_skip "$PEER or $FLOOD missing"
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")
command -v timeout >/dev/null 2>&1 || nl_skip "timeout (coreutils) missing"
TMP=$NL_TMP
T0=$(date +%s)
LOG=$TMP/daemon.log
SOCK=$TMP/control

QMAX=64                      # io.queue_maxlen
LIFE=10                      # esp.lifetime: bounds the fast path after kill -9
BURST=3000                   # packets sent while the daemon is stopped
A=0x8a000011 B=0x8b000011    # the stream's SAs
A2=0x8a000012 B2=0x8b000012  # the tunnel after the restart
A3=0x8c000011                # the burst's SPI (junk, never answered)
R1_IN=10.20.0.1 H1_IN=10.1.0.11

# --- helpers -------------------------------------------------------------------
ge() { [ "$1" -ge "$2" ] 2>/dev/null; }
eq() { [ "$1" -eq "$2" ] 2>/dev/null; }
le() { [ "$1" -le "$2" ] 2>/dev/null; }
spi8() { printf '0x%08x' "$1"; }

sa() {
	local k
	k=$(printf 'ipsec-masqd kill test %s' "$1" | sha256sum | cut -c1-64)
	printf '%s:%s:%s' "$1" "${k:0:32}" "$(printf '%s auth' "$k" | sha256sum | cut -c1-64)"
}

jget() {
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

stats() { "$CTL" -s "$SOCK" stats --json 2>"$1.err" | tail -n1 >"$1"; }

# qline: the router's line for queue 0 in /proc/net/netfilter/nfnetlink_queue
# (queue portid waiting copy_mode copy_range queue_full socket_full id 1),
# empty when nobody listens on it.
qline() { nl_in "$NL_RTR" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null | awk '$1 == 0'; }
qfield() { echo "${2:-}" | awk -v f="$1" '{print $f}'; }

now() { date +%s.%N; }

# pcap_rows PCAP BPF: "EPOCH SEQ" per ESP packet (the ESP sequence number in
# decimal), from tcpdump's own decoding.
pcap_rows() {
	tcpdump -tt -n -r "$1" "$2" 2>/dev/null |
		sed -nE 's/^([0-9]+\.[0-9]+) .*ESP\(spi=0x[0-9a-f]+,seq=(0x[0-9a-f]+)\).*/\1 \2/p' |
		while read -r t s; do echo "$t $((s))"; done
}

write_config() {
	cat > "$1" <<CONF
# ipsec-masqd kill test
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$NL_LAN_NET" ];
esp = { parallel_sessions = false; lifetime = $LIFE; init_timeout = 5; };
io = { queue_maxlen = $QMAX; };
control = { socket = "$SOCK"; };
log = { level = "info"; };
CONF
}

# --- 1: the stream is up -----------------------------------------------------------
scenario_stream() {
	local f0=$NL_FAILS
	echo "# scenario 1: a steady ESP stream h1 -> r1"
	rm -f "$TMP/r1.ready"
	nl_spawn "$NL_R1" "$NL_PY" "$PEER" respond --ready "$TMP/r1.ready" --duration 150 \
		--local "$NL_R1_IP" --pair "$(sa $A)/$(sa $B)" --pair "$(sa $A2)/$(sa $B2)" \
		>"$TMP/r1.json" 2>"$TMP/r1.err"
	RESP=$NL_LAST
	nl_wait_log ready 200 "$TMP/r1.ready" ||
		{ nl_fail "s1: responder on r1 did not start"; cat "$TMP/r1.err"; return 1; }
	# A probe every ~0.05 s while answered, every ~0.15 s when not.
	nl_spawn "$NL_H1" timeout -k 5 140 "$NL_PY" "$PEER" initiate --duration 130 \
		--local "$NL_H1_IP" --peer "$NL_R1_IP" --inner-local "$H1_IN" --inner-peer "$R1_IN" \
		--sa-out "$(sa $A)" --sa-in "$(sa $B)" --count 1000 --interval 0.05 --timeout 0.1 \
		--stop-file "$TMP/stream.stop" >"$TMP/stream.json" 2>"$TMP/stream.err"
	STREAM=$NL_LAST
	nl_check "s1: the stream's SA is associated" nl_wait_log \
		"DECISION=associated TABLE=esp PEER_ADDR=$NL_R1_IP LAN_ADDR=$NL_H1_IP ESP_SPI_OUT=$(spi8 $A) ESP_SPI_IN=$(spi8 $B)( |\$)" 200 "$LOG"
	sleep 2
	[ "$NL_FAILS" = "$f0" ]
}

# --- 2: the daemon falls behind --------------------------------------------------------------
scenario_stop() {
	local f0=$NL_FAILS q0 q1 q2 n m sent t
	echo "# scenario 2: SIGSTOP, a burst of $BURST from h1, SIGCONT (io.queue_maxlen $QMAX)"
	stats "$TMP/s2.before"
	q0=$(qline)
	echo "  queue before: $q0"
	nl_check "s2: the daemon listens on queue 0" [ -n "$q0" ]
	kill -STOP "$NL_DPID"
	TSTOP=$(now)
	sleep 0.5
	nl_in "$NL_H1" timeout -k 2 30 "$NL_PY" "$FLOOD" esp --src "$NL_H1_IP" --dst "$NL_R1_IP" \
		--spi $A3 --count $BURST >"$TMP/s2.burst.json" 2>"$TMP/s2.burst.err"
	sent=$(jget "$TMP/s2.burst.json" 'd["sent"]')
	sleep 1
	q1=$(qline)
	echo "  burst: $(cat "$TMP/s2.burst.json"); queue while stopped: $q1"
	nl_check "s2: h1 sent the burst ($sent)" eq "$sent" $BURST
	n=$(qfield 3 "$q1")
	nl_check "s2: the kernel holds queue_maxlen packets for the stopped daemon ($n = $QMAX)" eq "$n" $QMAX
	n=$(( $(qfield 6 "$q1") + $(qfield 7 "$q1") - $(qfield 6 "$q0") - $(qfield 7 "$q0") ))
	nl_check "s2: and dropped the rest, counted in /proc ($n >= $BURST - $QMAX)" ge "$n" $((BURST - QMAX))
	sleep 0.5
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "$(nl_bpf_spi $A3)")
	m=$(nl_pcap_count "$TMP/all.wan.pcap" "src net 192.168.0.0/16")
	nl_check "s2: while stopped, nothing of the burst on the WAN ($n), no LAN source ($m)" \
		eval 'eq "$n" 0 && eq "$m" 0'
	# The stream while the daemon was stopped (from 0.3 s after SIGSTOP:
	# a verdict given just before may still be on its way).
	n=$(tcpdump -tt -n -r "$TMP/all.wan.pcap" "src host $NL_EXT and $(nl_bpf_spi $A)" 2>/dev/null |
		awk -v a="$TSTOP" -v b="$(now)" '$1 > a + 0.3 && $1 < b' | wc -l)
	if [ $FASTPATH = yes ]; then
		nl_check "s2: fast path: the stream goes on while the daemon is stopped ($n packets)" ge "$n" 5
	else
		nl_check "s2: queued: nothing of the stream leaves while the daemon is stopped ($n)" eq "$n" 0
	fi
	kill -CONT "$NL_DPID"
	for t in $(seq 50); do
		q2=$(qline)
		[ "$(qfield 3 "$q2")" = 0 ] && break
		sleep 0.1
	done
	sleep 1
	stats "$TMP/s2.after"
	echo "  queue after SIGCONT: $q2"
	nl_check "s2: the daemon caught up (nothing waiting: $(qfield 3 "$q2"))" eq "$(qfield 3 "$q2")" 0
	n=$(( $(jget "$TMP/s2.after" 'd["queue"]["kernel_queue_full"] + d["queue"]["kernel_socket_full"]') -
	      $(jget "$TMP/s2.before" 'd["queue"]["kernel_queue_full"] + d["queue"]["kernel_socket_full"]') ))
	nl_check "s2: ipsec-masqctl stats counts the kernel's drops ($n >= $BURST - $QMAX)" ge "$n" $((BURST - QMAX))
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "$(nl_bpf_spi $A3)")
	m=$(nl_pcap_count "$TMP/all.wan.pcap" "src host $NL_EXT and $(nl_bpf_spi $A3)")
	nl_check "s2: afterwards at most queue_maxlen of the burst left, all from $NL_EXT ($n, $m <= $QMAX)" \
		eval 'ge "$n" 1 && le "$n" $QMAX && eq "$n" "$m"'
	nl_check "s2: the daemon still runs" kill -0 "$NL_DPID"
	# The stream answers again: the responder's count grows.
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "src host $NL_EXT and $(nl_bpf_spi $A)")
	sleep 2
	m=$(nl_pcap_count "$TMP/all.wan.pcap" "src host $NL_EXT and $(nl_bpf_spi $A)")
	nl_check "s2: the stream flows again ($((m - n)) packets in 2 s)" ge "$((m - n))" 5
	[ "$NL_FAILS" = "$f0" ]
}

# --- 3: kill -9 mid-stream ---------------------------------------------------------------------
scenario_kill() {
	local f0=$NL_FAILS rc tdead first n m lan_after q
	echo "# scenario 3: kill -9 while the stream flows"
	nl_capture_start "$NL_RTR" lan0 "$TMP/s3.lan.pcap" "src host $NL_H1_IP and ip proto 50" ||
		{ nl_fail "s3: LAN-side capture"; return 1; }
	S3CAP=$NL_LAST
	sleep 1
	kill -9 "$NL_DPID"
	{ wait "$NL_DPID"; } 2>/dev/null; rc=$?
	NL_DPID=
	tdead=$(now)
	echo "  killed (status $rc) at $tdead"
	nl_check "s3: the daemon died of SIGKILL ($rc = 137)" eq "$rc" 137
	# The stream goes on. Without the fast path, from the death on
	# (tdead) nothing may leave; with it, from the end of the elements'
	# timeout (at most the lifetime after the last renewal, which came
	# before the death), 0.5 s of slack for the kernel's timers: tend.
	if [ $FASTPATH = yes ]; then
		tend=$(awk -v a="$tdead" -v l="$LIFE" 'BEGIN { printf "%.6f", a + l + 0.5 }')
		sleep $((LIFE + 4))
	else
		tend=$tdead
		sleep 4
	fi
	q=$(qline)
	nl_check "s3: nobody listens on queue 0 any more (${q:-no line})" [ -z "$q" ]
	nl_capture_stop "$S3CAP"
	TRESTART=$(now)
	# The first of h1's packets that reached the router after tend, and its
	# sequence number: none from it on must leave (it is a stream).
	lan_after=$(pcap_rows "$TMP/s3.lan.pcap" "$(nl_bpf_spi $A)" | awk -v t="$tend" '$1 > t' | wc -l)
	first=$(pcap_rows "$TMP/s3.lan.pcap" "$(nl_bpf_spi $A)" | awk -v t="$tend" '$1 > t {print $2; exit}')
	echo "  h1 sent $lan_after packets after $tend (death at $tdead), the first with sequence number ${first:-none}"
	nl_check "s3: h1 kept sending after the death ($lan_after >= 5)" ge "$lan_after" 5
	sleep 0.5
	if [ $FASTPATH = yes ]; then
		n=$(tcpdump -tt -n -r "$TMP/all.wan.pcap" "src host $NL_EXT and $(nl_bpf_spi $A)" 2>/dev/null |
			awk -v a="$tdead" -v b="$tend" '$1 > a && $1 < b' | wc -l)
		echo "  fast path: $n of the stream's packets left after the death, within the elements' timeout"
	fi
	n=$(pcap_rows "$TMP/all.wan.pcap" "$(nl_bpf_spi $A)" | awk -v t="$TRESTART" -v s="${first:-0}" \
		'$1 < t && $2 >= s' | wc -l)
	nl_check "s3: not one of them left on the WAN (sequence >= ${first:-?}: $n)" \
		eval '[ -n "$first" ] && eq "$n" 0'
	m=$(tcpdump -tt -n -r "$TMP/all.wan.pcap" "ip proto 50 and not (src host $NL_R1_IP or src host $NL_R2_IP)" \
		2>/dev/null | awk -v a="$tend" -v b="$TRESTART" '$1 > a + 0.5 && $1 < b' | wc -l)
	nl_check "s3: no ESP from the router's side on the WAN from 0.5 s after $tend on ($m)" eq "$m" 0
	n=$(tcpdump -tt -n -r "$TMP/all.wan.pcap" "src host $NL_EXT" 2>/dev/null |
		awk -v a="$tdead" '$1 < a' | wc -l)
	nl_check "s3: (the stream did leave before: $n packets)" ge "$n" 20
	nl_check "s3: the rules have no --queue-bypass" eval \
		'nl_in "$NL_RTR" iptables-save | grep -q NFQUEUE && ! nl_in "$NL_RTR" iptables-save | grep -q -- "--queue-bypass"'
	[ "$NL_FAILS" = "$f0" ]
}

# Whether the stream's SA was associated a second time (within 20 s).
associated_twice() {
	local i re="DECISION=associated TABLE=esp PEER_ADDR=$NL_R1_IP LAN_ADDR=$NL_H1_IP ESP_SPI_OUT=$(spi8 $A) ESP_SPI_IN=$(spi8 $B)( |\$)"
	for i in $(seq 100); do
		[ "$(grep -cE "$re" "$LOG")" -ge 2 ] && return 0
		sleep 0.2
	done
	return 1
}

# --- 4: restarted ------------------------------------------------------------------------------
scenario_restart() {
	local f0=$NL_FAILS n m
	echo "# scenario 4: the daemon restarted"
	nl_check "s4: the daemon starts again" nl_daemon_start "$TMP/kill.conf" "$LOG" || return 1
	nl_check "s4: the stream's SA is associated again" associated_twice
	sleep 2
	n=$(tcpdump -tt -n -r "$TMP/all.wan.pcap" "src host $NL_EXT and $(nl_bpf_spi $A)" 2>/dev/null |
		awk -v a="$TRESTART" '$1 > a' | wc -l)
	nl_check "s4: the stream leaves masqueraded again ($n packets)" ge "$n" 10
	: > "$TMP/stream.stop"
	nl_wait_pid "$STREAM" 30
	echo "  stream: $(tail -n1 "$TMP/stream.json" 2>/dev/null)"
	nl_in "$NL_H1" timeout -k 5 60 "$NL_PY" "$PEER" initiate --duration 45 \
		--local "$NL_H1_IP" --peer "$NL_R1_IP" --inner-local "$H1_IN" --inner-peer "$R1_IN" \
		--sa-out "$(sa $A2)" --sa-in "$(sa $B2)" --count 20 >"$TMP/s4.h1.json" 2>"$TMP/s4.h1.err"
	echo "  h1: $(tail -n1 "$TMP/s4.h1.json")"
	n=$(jget "$TMP/s4.h1.json" 'd["answered"]')
	m=$(jget "$TMP/s4.h1.json" 'd["bad_icv"] + d["unknown_spi"]')
	nl_check "s4: a new tunnel works: >= 18 of 20 answered and verified ($n), none bad ($m)" \
		eval 'ge "$n" 18 && eq "$m" 0'
	[ "$NL_FAILS" = "$f0" ]
}

# --- 5: no LAN source on the WAN, over the whole run -------------------------------------------
scenario_noleak() {
	local f0=$NL_FAILS n d
	echo "# scenario 5: the WAN capture over the whole run"
	nl_capture_stop "$ALL_CAP"
	d=$(grep -Eo '[0-9]+ packets? dropped by kernel' "$TMP/all.wan.pcap.err" | grep -Eo '^[0-9]+')
	nl_check "s5: the WAN capture lost nothing (${d:-?} dropped by kernel)" eq "${d:--1}" 0
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "ip proto 50")
	nl_check "s5: the WAN capture saw the run's ESP ($n packets)" ge "$n" 50
	n=$(nl_pcap_count "$TMP/all.wan.pcap" "src net 192.168.0.0/16 or net 10.0.0.0/8")
	if ! nl_check "s5: no LAN source (and no inner address) on the WAN before, during or after ($n)" eq "$n" 0; then
		tcpdump -n -r "$TMP/all.wan.pcap" "src net 192.168.0.0/16 or net 10.0.0.0/8" 2>/dev/null | head -n 20
	fi
	[ "$NL_FAILS" = "$f0" ]
}

# --- setup -------------------------------------------------------------------------------------
nl_topology || { echo "cannot build the namespaces"; exit 99; }
write_config "$TMP/kill.conf"
nl_rules "$TMP/kill.conf" || { echo "cannot load the rules"; exit 99; }
nl_ok "namespaces (3 LAN hosts, router, 2 remotes) and the shipped rules"
nl_capture_start "$NL_WAN" up0 "$TMP/all.wan.pcap" "ip" || { echo "cannot capture on the WAN"; exit 99; }
ALL_CAP=$NL_LAST
nl_daemon_start "$TMP/kill.conf" "$LOG" || { cat "$LOG"; echo "the daemon did not start"; exit 99; }
FASTPATH=no; nl_fastpath_active "$LOG" && FASTPATH=yes
echo "# fast path: $FASTPATH"
for i in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done

RESULTS=()
if scenario_stream; then
	RESULTS+=("stream: pass")
	for s in stop kill restart; do
		if scenario_$s; then RESULTS+=("$s: pass"); else RESULTS+=("$s: FAIL"); fi
	done
else
	RESULTS+=("stream: FAIL (the rest needs it)")
fi
scenario_noleak && RESULTS+=("noleak: pass") || RESULTS+=("noleak: FAIL")
[ -n "${RESP:-}" ] && nl_stop "$RESP" 50
echo "  r1: $(tail -n1 "$TMP/r1.json" 2>/dev/null)"
if [ -n "$NL_DPID" ]; then
	rc=0
	nl_daemon_stop || rc=$?
	nl_check "the daemon exits 0 on SIGTERM ($rc)" eq "$rc" 0
fi

echo "# summary ($(($(date +%s) - T0)) s)"
printf '  %s\n' "${RESULTS[@]}"
if [ "$NL_FAILS" != 0 ]; then
	echo "$NL_FAILS check(s) failed"
	echo "--- daemon log (last 60 lines)"; tail -n 60 "$LOG"
	exit 1
fi
echo "all passed"
exit 0

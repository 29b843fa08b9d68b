#!/bin/bash
# ipsec-masqctl against the real daemon in network namespaces (LAN host with
# two addresses, router running ipsec-masqd, WAN remote): ping, show --json
# after real ESP traffic, an `add esp` preload routing a remote's first
# packet under a new SPI to the right host (parallel sessions on) where the
# guess goes to the other host, del, flush, stats, reload, a client flood
# that must not stall the queue, and the documented exit codes.
# Exit 77 (skip) when not root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

# This test's namespace prefix, with our PID: two runs (two build trees)
# may go at once; namespaces of runs whose process is gone are stale.
P=imctl-$$-
LAN=${P}lan RTR=${P}rtr WAN=${P}wan
BIN=${IPSEC_MASQD:-${top_builddir:-.}/ipsec-masqd}
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
PY=/usr/bin/python3
TMP=
DPID= PIDS=()
FAILS=0

skip() { echo "SKIP: $*"; exit 77; }
# The capture helpers of tests/lib/netns.sh (nl_capture_start/stop: tcpdump
# with --immediate-mode, stopped a second after the traffic); this script
# keeps its own three-namespace topology.
NL_PREFIX=$P
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }

# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
[ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ] &&
	skip "namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, iptables, NFQUEUE)"
for t in ip iptables tcpdump setpriv; do
	command -v "$t" >/dev/null 2>&1 || skip "$t not installed"
done
[ -x "$PY" ] && "$PY" -c 'import scapy.all' 2>/dev/null ||
	skip "scapy missing for $PY (apt-get install python3-scapy)"
[ -x "$BIN" ] || skip "$BIN not built"
[ -x "$CTL" ] || skip "$CTL not built"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")

ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

remove_namespaces() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P"); do
		ip netns del "$ns" 2>/dev/null
	done
}

# Ends what this script started, by PID only.
cleanup() {
	local p
	for p in ${PIDS[@]+"${PIDS[@]}"} ${NL_PIDS[@]+"${NL_PIDS[@]}"} $DPID; do
		kill "$p" 2>/dev/null
	done
	sleep 0.3
	for p in ${PIDS[@]+"${PIDS[@]}"} ${NL_PIDS[@]+"${NL_PIDS[@]}"} $DPID; do
		kill -9 "$p" 2>/dev/null
	done
	remove_namespaces
	if [ -n "$TMP" ] && [ "$FAILS" = 0 ] && [ -z "${KEEP:-}" ]; then
		rm -rf "$TMP"
	elif [ -n "$TMP" ]; then
		echo "logs kept in $TMP"
	fi
}

spawn() { local ns=$1; shift; ip netns exec "$ns" "$@" & PIDS+=("$!"); }

stop_spawned() {
	local p
	for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PIDS=()
}

wait_log() {
	local i
	for ((i = 0; i < $2; i++)); do
		grep -qE -- "$1" "$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

remove_stale() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^imctl-'); do
		pid=${ns#imctl-}; pid=${pid%%-*}
		kill -0 "$pid" 2>/dev/null || ip netns del "$ns" 2>/dev/null
	done
}

remove_stale
trap cleanup EXIT
trap 'exit 1' INT TERM
TMP=$(mktemp -d /tmp/imctl.XXXXXX)
chmod 755 "$TMP"    # so that only the socket's own mode keeps others out
SOCK=$TMP/control

setup_net() {
	ip netns add "$LAN" && ip netns add "$RTR" && ip netns add "$WAN" || return 1
	ip link add eth0 netns "$LAN" type veth peer name lan0 netns "$RTR" || return 1
	ip link add eth0 netns "$WAN" type veth peer name wan0 netns "$RTR" || return 1
	in_ns "$LAN" ip addr add 192.168.1.10/24 dev eth0
	in_ns "$LAN" ip addr add 192.168.1.11/24 dev eth0
	in_ns "$RTR" ip addr add 192.168.1.1/24 dev lan0
	in_ns "$RTR" ip addr add 198.51.100.1/24 dev wan0
	in_ns "$WAN" ip addr add 198.51.100.20/24 dev eth0
	local ns dev
	for ns in "$LAN" "$RTR" "$WAN"; do
		in_ns "$ns" ip link set lo up
		for dev in eth0 lan0 wan0; do
			in_ns "$ns" ip link show "$dev" >/dev/null 2>&1 || continue
			in_ns "$ns" ip link set "$dev" up
			in_ns "$ns" ethtool -K "$dev" tx off rx off >/dev/null 2>&1
		done
	done
	in_ns "$LAN" ip route add default via 192.168.1.1
	in_ns "$RTR" sysctl -qw net.ipv4.ip_forward=1
}

# design.md, "Packet path".
setup_rules() {
	local ipt="in_ns $RTR iptables -w"
	$ipt -t raw -A PREROUTING -p esp -j CT --notrack &&
	$ipt -t raw -A PREROUTING -p udp --dport 500 -j CT --notrack &&
	$ipt -t raw -A PREROUTING -p udp --sport 500 -j CT --notrack &&
	$ipt -t raw -A OUTPUT -m mark --mark 0x1a5ec -j CT --notrack &&
	$ipt -t mangle -A PREROUTING -i wan0 -d 198.51.100.1 -p esp -j NFQUEUE --queue-num 0 &&
	$ipt -t mangle -A PREROUTING -i wan0 -d 198.51.100.1 -p udp --dport 500 -j NFQUEUE --queue-num 0 &&
	$ipt -t mangle -A POSTROUTING -o wan0 -s 192.168.1.0/24 -p esp -j NFQUEUE --queue-num 0 &&
	$ipt -t mangle -A POSTROUTING -o wan0 -s 192.168.1.0/24 -p ah -j NFQUEUE --queue-num 0 &&
	$ipt -t mangle -A POSTROUTING -o wan0 -s 192.168.1.0/24 -p udp --dport 500 -j NFQUEUE --queue-num 0 &&
	$ipt -t filter -A FORWARD -o wan0 -s 192.168.1.0/24 -m conntrack --ctstate INVALID -j DROP &&
	$ipt -t nat -A POSTROUTING -o wan0 -j MASQUERADE
}

# The socket's group: members may use it, others may not.
GRP=$(getent group 65534 | cut -d: -f1)
[ -n "$GRP" ] || skip "no group 65534 (nogroup)"
cat > "$TMP/masqd.conf" <<CONF
queue = 0;
external = { address = "198.51.100.1"; };
internal = [ "192.168.1.0/24" ];
esp = { parallel_sessions = true; };
control = { socket = "$SOCK"; group = "$GRP"; };
log = { level = "info"; };
CONF

cat > "$TMP/pkt.py" <<'PYEOF'
import sys
from scapy.all import IP, UDP, Raw, send, rdpcap, conf
from scapy.layers.ipsec import ESP
from scapy.layers.isakmp import ISAKMP
conf.verb = 0

def esp(src, dst, spi, n=3):
    p = IP(src=src, dst=dst) / ESP(spi=int(spi, 0), seq=1) / Raw(b"\xab" * 48)
    send(p, count=int(n), inter=0.2)

def burst(src, dst, spi, n):
    send(IP(src=src, dst=dst) / ESP(spi=int(spi, 0), seq=1) / Raw(b"\xab" * 48),
         count=int(n), inter=0)

def isakmp(src, dst, ci, n=2):
    p = (IP(src=src, dst=dst) / UDP(sport=500, dport=500) /
         ISAKMP(init_cookie=int(ci, 0).to_bytes(8, "big"),
                resp_cookie=bytes(8), next_payload=0, exch_type=2) /
         Raw(b"\x00" * 32))
    send(p, count=int(n), inter=0.2)

def count(pcap, a, spi):
    s, d = a.split(">")
    n = 0
    for p in rdpcap(pcap):
        if IP in p and p[IP].proto == 50 and p[IP].src == s and p[IP].dst == d:
            n += int.from_bytes(bytes(p[IP].payload)[:4], "big") == int(spi, 0)
    print(n)

{"esp": esp, "burst": burst, "isakmp": isakmp, "count": count}[sys.argv[1]](*sys.argv[2:])
PYEOF
pkt()   { local ns=$1; shift; in_ns "$ns" "$PY" "$TMP/pkt.py" "$@"; }
count() { "$PY" "$TMP/pkt.py" count "$@" 2>/dev/null || echo -1; }

# jexpr FILE EXPR: EXPR evaluated with d = the JSON in FILE ("ERR" if not JSON).
jexpr() {
	"$PY" -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
    print(eval(sys.argv[2]))
except Exception as e:
    print("ERR", e)' "$1" "$2"
}

ctl() { "$CTL" -s "$SOCK" "$@"; }

start_capture() {   # $1 ns, $2 iface, $3 file; the PID in CAP
	nl_capture_start "$1" "$2" "$3" && CAP=$NL_LAST
	wait_log "listening on" 50 "$3.err"
}

setup_net || { echo "cannot build the namespaces"; exit 99; }
setup_rules || { echo "cannot load the rules"; exit 99; }
ok "namespaces and rules"

# --- before the daemon -------------------------------------------------------------
ctl ping >"$TMP/out" 2>"$TMP/err"; rc=$?
check "daemon not running: exit 4 ($rc: $(cat "$TMP/err"))" [ $rc = 4 ]
grep -q "not running" "$TMP/err" || fail "the message says it is not running"

LOG=$TMP/daemon.log
T_LAUNCH=$(date +%s)
ip netns exec "$RTR" "$BIN" -c "$TMP/masqd.conf" -u root >>"$LOG" 2>&1 &
DPID=$!
wait_log "started" 50 "$LOG" || { fail "daemon did not start"; cat "$LOG"; exit 1; }
ok "daemon started (pid $DPID)"

out=$(ctl ping); rc=$?
check "ping answers pong ($rc, $out)" [ $rc = 0 -a "$out" = pong ]
m=$(stat -c %a:%G "$SOCK")
check "the socket has mode 0660 and group $GRP ($m)" [ "$m" = "660:$GRP" ]

# --- an association made by traffic -----------------------------------------------
pkt "$LAN" esp 192.168.1.10 198.51.100.20 0x1000
sleep 0.3
pkt "$WAN" esp 198.51.100.20 198.51.100.1 0x2000
sleep 0.3
# bound by its first inbound packet: provisional until used both ways
v=$(ctl show --json | "$PY" -c 'import json,sys; print([e["state"] for e in json.load(sys.stdin)["esp"] if e["spi_in"] == "0x00002000"])')
check "the new association is provisional ($v)" [ "$v" = "['provisional']" ]
pkt "$LAN" esp 192.168.1.10 198.51.100.20 0x1000
sleep 0.3
pkt "$WAN" esp 198.51.100.20 198.51.100.1 0x2000
sleep 0.3
ctl show --json >"$TMP/show1.json"; rc=$?
check "show --json exits 0" [ $rc = 0 ]
v=$(jexpr "$TMP/show1.json" '[ (e["host"], e["spi_out"], e["spi_in"], e["state"], e["pkts_out"] >= 1, e["pkts_in"] >= 1, e["ttl"] > 1700) for e in d["esp"] if e["remote"] == "198.51.100.20"]')
check "show --json has the ESP association ($v)" \
	[ "$v" = "[('192.168.1.10', '0x00001000', '0x00002000', 'established', True, True, True)]" ]
v=$(jexpr "$TMP/show1.json" 'd["version"], d["pending"], d["isakmp"]')
check "show --json: version 1, nothing pending ($v)" [ "$v" = "(1, [], [])" ]
ctl show >"$TMP/show1.txt"
check "show prints an aligned table" grep -qE "^198\.51\.100\.20 +192\.168\.1\.10 +0x00001000 +0x00002000 +established " "$TMP/show1.txt"
v=$(ctl show --json --host 192.168.1.11 | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["esp"]))')
check "show --host filters ($v)" [ "$v" = 0 ]

# --- preload: the remote's first packet under a new SPI ---------------------------
# .11 has an ISAKMP exchange with the remote, .10 has not: a new inbound SPI
# with no init pending is guessed to .11. The preload sends 0x5000 to .10.
spawn "$LAN" "$PY" -c 'import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("0.0.0.0",500)); time.sleep(600)'
pkt "$LAN" isakmp 192.168.1.11 198.51.100.20 0x2233445566778899
out=$(ctl add esp --remote 198.51.100.20 --host 192.168.1.10 --spi-in 0x5000 --ttl 600 2>&1); rc=$?
check "add esp exits 0 ($rc $out)" [ $rc = 0 ]
ctl show --json --remote 198.51.100.20 >"$TMP/show2.json"
v=$(jexpr "$TMP/show2.json" '[ (e["host"], e["spi_out"], e["state"], 590 <= e["ttl"] <= 600) for e in d["esp"] if e["spi_in"] == "0x00005000"]')
check "show --json has the preloaded entry ($v)" [ "$v" = "[('192.168.1.10', None, 'preloaded', True)]" ]
v=$(jexpr "$TMP/show2.json" '[ (e["host"], e["cookie_i"]) for e in d["isakmp"]]')
check "show --json has .11's ISAKMP entry ($v)" [ "$v" = "[('192.168.1.11', '2233445566778899')]" ]
start_capture "$LAN" eth0 "$TMP/lan.pcap" || fail "capture on LAN"
pkt "$WAN" esp 198.51.100.20 198.51.100.1 0x5000 2
pkt "$WAN" esp 198.51.100.20 198.51.100.1 0x6000 3     # not preloaded
nl_capture_stop "$CAP"
stop_spawned
n=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.10" 0x5000)
m=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.11" 0x5000)
check "preloaded SPI 0x5000 reaches .10 only (.10: $n, .11: $m)" [ "$n" -ge 1 -a "$m" = 0 ]
n=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.10" 0x6000)
m=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.11" 0x6000)
# (.10 may get a guessed copy too: it has ESP with the remote)
check "without a preload the guess goes to .11 (.10: $n, .11: $m)" [ "$m" -ge 1 ]
check "the add is logged" grep -q "control: add-esp remote=198.51.100.20 spi_in=0x00005000 host=192.168.1.10" "$LOG"
out=$(ctl add esp --remote 198.51.100.20 --host 192.168.1.11 --spi-in 0x5000 2>&1); rc=$?
check "add esp of a SPI another host has: exit 1 ($rc: $out)" [ $rc = 1 ]

# --- del, flush --------------------------------------------------------------------
out=$(ctl del esp --remote 198.51.100.20 --spi-in 0x5000 2>&1); rc=$?
check "del esp exits 0 ($rc $out)" [ $rc = 0 ]
v=$(ctl show --json | "$PY" -c 'import json,sys; print([e for e in json.load(sys.stdin)["esp"] if e["spi_in"] == "0x00005000"])')
check "the deleted entry is gone ($v)" [ "$v" = "[]" ]
out=$(ctl del esp --remote 198.51.100.20 --spi-in 0x5000 2>&1); rc=$?
check "del esp of a missing entry: exit 1 ($rc: $out)" [ $rc = 1 ]
check "the del is logged" grep -q "control: del-esp remote=198.51.100.20 spi_in=0x00005000" "$LOG"

out=$(ctl flush --host 192.168.1.11 --json); rc=$?
n=$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["removed"])' 2>/dev/null)
check "flush --host removes .11's entries ($rc, $n)" [ $rc = 0 -a "${n:-0}" -ge 1 ]
v=$(ctl show --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(sorted({e["host"] for e in d["esp"] + d["isakmp"]}))')
check "only .10 is left ($v)" [ "$v" = "['192.168.1.10']" ]
out=$(ctl flush); rc=$?
v=$(ctl show --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(len(d["esp"]), len(d["isakmp"]))')
check "flush empties the tables ($rc, $out, $v)" [ $rc = 0 -a "$v" = "0 0" ]
check "the flush is logged" grep -q "control: flush remote=any host=any" "$LOG"

# --- stats ------------------------------------------------------------------------------
T_A=$(date +%s)
ctl stats --json >"$TMP/stats.json"; rc=$?
T_B=$(date +%s)
v=$(jexpr "$TMP/stats.json" '(d["version"], d["packets"]["inbound"] >= 4, d["packets"]["outbound"] >= 3, d["queue"]["received"] >= 7, d["queue"]["verdicts_lost"], d["decisions"]["preloaded"] >= 1, d["decisions"]["removed"] >= 3, d["decisions"]["guessed"] >= 1, d["tables"]["esp"], d["tables"]["max_entries"], "esp_spi_zero" in d["malformed"], d["daemon"]["control_requests"] >= 10)')
check "stats --json counts packets, decisions, queue and tables ($rc, $v)" \
	[ $rc = 0 -a "$v" = "(1, True, True, True, 0, True, True, True, 0, 65536, True, True)" ]
# uptime: the seconds since the launch, as the script's own clock saw them
# (the daemon started after T_LAUNCH and the stats came between T_A and T_B)
v=$(jexpr "$TMP/stats.json" 'd["uptime"]')
check "stats --json: uptime $v s lies within $((T_A - T_LAUNCH - 1))..$((T_B - T_LAUNCH + 1)) s of the launch" \
	eval '[ "$v" -ge $((T_A - T_LAUNCH - 1)) ] && [ "$v" -le $((T_B - T_LAUNCH + 1)) ] && [ "$v" -ge 1 ]'
check "the changes are logged with the client's uid and pid" \
	grep -qE "control: flush remote=any host=any: [0-9]+ entries removed \(by uid=0 pid=[0-9]+\)" "$LOG"
ctl stats >"$TMP/stats.txt"
check "stats prints aligned counters" grep -qE "^queue\.enobufs +0$" "$TMP/stats.txt"

# --- reload ------------------------------------------------------------------------------
out=$(ctl reload); rc=$?
check "reload exits 0 ($rc $out)" [ $rc = 0 ]
check "reload is logged" wait_log "reloaded config file $TMP/masqd.conf" 20 "$LOG"
# io settings apply to the live queue: with queue_maxlen = 16 and the daemon
# stopped, a burst of 60 overflows the kernel queue; the kernel drops the
# rest (counted, read back from /proc), nothing passes unmasqueraded.
sed -i 's/^log = /io = { queue_maxlen = 16; batch = 4; };\nlog = /' "$TMP/masqd.conf"
out=$(ctl reload); rc=$?
check "reload with io settings exits 0 ($rc $out)" [ $rc = 0 ]
start_capture "$WAN" eth0 "$TMP/wanq.pcap" || fail "capture on WAN"
kill -STOP "$DPID"
pkt "$LAN" burst 192.168.1.10 198.51.100.20 0x7000 60
kill -CONT "$DPID"
sleep 1
nl_capture_stop "$CAP"
n=$(count "$TMP/wanq.pcap" "198.51.100.1>198.51.100.20" 0x7000)
leak=$(tcpdump -r "$TMP/wanq.pcap" -n "src net 192.168.1.0/24" 2>/dev/null | wc -l)
check "a queue of 16 lets at most 16 of a burst of 60 through ($n), no LAN source ($leak)" \
	[ "$n" -ge 1 -a "$n" -le 16 -a "$leak" = 0 ]
ctl stats --json >"$TMP/stats2.json"
v=$(jexpr "$TMP/stats2.json" '(d["queue"]["kernel_queue_full"] >= 60 - 16, d["queue"]["kernel_waiting"], d["queue"]["batches"] >= 1, d["queue"]["batches_full"] >= 1)')
check "stats show the kernel's queue drops and full batches ($v)" [ "$v" = "(True, 0, True, True)" ]
ctl flush --remote 198.51.100.20 >/dev/null   # the burst's pending init would serialize what follows

# --- argument errors -------------------------------------------------------------------
ctl add esp --remote 198.51.100 --host 192.168.1.10 --spi-in 0x5000 2>"$TMP/err"; rc=$?
check "malformed address: exit 3 ($rc: $(cat "$TMP/err"))" [ $rc = 3 ]
ctl add esp --remote 198.51.100.20 --host 192.168.1.10 --spi-in 0xff 2>"$TMP/err"; rc=$?
check "reserved SPI: exit 3 ($rc: $(cat "$TMP/err"))" [ $rc = 3 ]
ctl del esp --remote 198.51.100.20 --spi-in 5k 2>"$TMP/err"; rc=$?
check "malformed SPI: exit 3 ($rc: $(cat "$TMP/err"))" [ $rc = 3 ]
ctl frobnicate 2>/dev/null; rc=$?
check "unknown command: exit 2 ($rc)" [ $rc = 2 ]
ctl add esp --remote 198.51.100.20 2>/dev/null; rc=$?
check "missing arguments: exit 2 ($rc)" [ $rc = 2 ]
setpriv --reuid=65533 --regid=65533 --clear-groups "$CTL" -s "$SOCK" ping 2>"$TMP/err"; rc=$?
check "socket without permission: exit 5 ($rc: $(cat "$TMP/err"))" [ $rc = 5 ]
out=$(setpriv --reuid=65533 --regid=65534 --clear-groups "$CTL" -s "$SOCK" ping 2>&1); rc=$?
check "a member of the socket's group may use it ($rc: $out)" [ $rc = 0 -a "$out" = pong ]

# --- slow and hostile clients ------------------------------------------------------------
# 8 clients that never send: the 9th is refused at once, packets still pass,
# and after the 5 s timeout the slots are free again.
"$PY" -c 'import socket,sys,time
ss=[]
for i in range(8):
    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); ss.append(s)
time.sleep(30)' "$SOCK" &
PIDS+=("$!")
sleep 0.5
out=$(ctl ping 2>&1); rc=$?
check "a 9th client is refused while 8 hang ($rc: $out)" [ $rc = 1 ]
start_capture "$WAN" eth0 "$TMP/wan.pcap" || fail "capture on WAN"
pkt "$LAN" esp 192.168.1.10 198.51.100.20 0x1000 3
nl_capture_stop "$CAP"
n=$(count "$TMP/wan.pcap" "198.51.100.1>198.51.100.20" 0x1000)
check "packets pass while the control clients hang ($n)" [ "$n" -ge 1 ]
check "hanging clients are dropped after the timeout" wait_log "control client dropped: no request" 80 "$LOG"
out=$(ctl ping 2>&1); rc=$?
check "ping works again ($rc $out)" [ $rc = 0 ]
# A client that asks for a large answer and never reads it: the daemon's
# writes stop at the full socket, packets and other clients go on, and the
# reader is dropped after the timeout with no progress.
v=$("$PY" -c 'import socket,sys
n = 0
for i in range(1500):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.sendall(("v1 add-esp remote=203.0.113.%d host=192.168.1.%d spi_in=%d\n"
               % (1 + i % 50, 100 + i % 50, 0x10000 + i)).encode())
    n += s.recv(100).startswith(b"ok")
    s.close()
print(n)' "$SOCK" 2>&1)
check "1500 preloads over the socket ($v)" [ "$v" = 1500 ]
"$PY" -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1]); s.sendall(b"v1 show format=json\n"); time.sleep(45)' "$SOCK" &
PIDS+=("$!")
sleep 0.5
out=$(ctl ping 2>&1); rc=$?
check "ping answers while a reader stalls ($rc $out)" [ $rc = 0 ]
start_capture "$WAN" eth0 "$TMP/wan2.pcap" || fail "capture on WAN"
pkt "$LAN" esp 192.168.1.10 198.51.100.20 0x1000 3
nl_capture_stop "$CAP"
n=$(count "$TMP/wan2.pcap" "198.51.100.1>198.51.100.20" 0x1000)
check "packets pass while a reader stalls ($n)" [ "$n" -ge 1 ]
# (30 s from its request: reading would not have extended it either)
check "the stalled reader is dropped" wait_log "control client dropped: answer not read in 30000 ms by uid=0 pid=" 400 "$LOG"
out=$(ctl flush --remote 203.0.113.7); rc=$?
check "flush --remote removes that remote's 30 preloads ($rc, $out)" [ $rc = 0 -a "$out" = "30 entries removed" ]
# an over-long request line is refused with a protocol error
v=$("$PY" -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
try:
    s.sendall(b"v1 ping" + b" " * 5000 + b"\n")
except OSError:
    pass
print(s.recv(200).decode().strip())' "$SOCK" 2>&1)
check "an over-long request gets an error ($v)" [ "$v" = "error protocol request longer than 4096 bytes" ]
v=$("$PY" -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"v9 ping\n")
print(s.recv(200).decode().strip())' "$SOCK" 2>&1)
case $v in "error protocol version not supported"*) r=0 ;; *) r=1 ;; esac
check "an unknown protocol version gets an error ($v)" [ $r = 0 ]
stop_spawned

# --- stop ----------------------------------------------------------------------------------
kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=
check "SIGTERM exits 0 ($rc)" [ $rc = 0 ]
check "the socket is removed at exit" [ ! -e "$SOCK" ]
ctl ping 2>/dev/null; rc=$?
check "after the stop: exit 4 ($rc)" [ $rc = 4 ]

if [ "$FAILS" != 0 ]; then
	echo "--- daemon log"; cat "$LOG"
	exit 1
fi
echo "all passed"
exit 0

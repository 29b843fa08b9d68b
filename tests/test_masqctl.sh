#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# ipsec-masqctl against the real daemon in the namespaces of
# tests/lib/netns.sh (h1 and h2 on the LAN, the router running ipsec-masqd
# behind the shipped rules, r1 on the WAN): ping, show --json after real
# ESP traffic, an `add esp` preload routing a remote's first packet under a
# new SPI to the right host (parallel sessions on) where the guess goes to
# the other host, del, flush, stats, reload, a client flood that must not
# stall the queue, and the documented exit codes.
# Exit 77 (skip) when not root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imctl-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
command -v setpriv >/dev/null 2>&1 || nl_skip "setpriv not installed (apt-get install util-linux)"
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")
PY=$NL_PY TMP=$NL_TMP
H1=$NL_H1_IP H2=$NL_H2_IP R1=$NL_R1_IP EXT=$NL_EXT
chmod 755 "$TMP"    # so that only the socket's own mode keeps others out
SOCK=$TMP/control
SPAWNED=()

# Python clients in the root namespace (hanging, stalled), ended by PID.
bg_py() { "$PY" "$@" & NL_NL_PIDS+=("$!"); SPAWNED+=("$!"); SPAWNED+=("$!"); }
stop_spawned() {
	local p
	for p in ${SPAWNED[@]+"${SPAWNED[@]}"}; do nl_stop "$p" 10; done
	SPAWNED=()
}

# The socket's group: members may use it, others may not.
GRP=$(getent group 65534 | cut -d: -f1)
[ -n "$GRP" ] || nl_skip "no group 65534 (nogroup)"
cat > "$TMP/masqd.conf" <<CONF
queue = 0;
external = { address = "$EXT"; };
internal = [ "$NL_LAN_NET" ];
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
pkt()   { local ns=$1; shift; nl_in "$ns" "$PY" "$TMP/pkt.py" "$@"; }
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

# start_capture NS IFACE FILE: tests/lib/netns.sh's capture (tcpdump with
# --immediate-mode; nl_capture_stop leaves a second); the PID in CAP.
start_capture() { nl_capture_start "$1" "$2" "$3" && CAP=$NL_LAST; }

nl_topology || { echo "cannot build the namespaces"; exit 99; }
nl_rules "$TMP/masqd.conf" || { echo "cannot load the rules"; exit 99; }
nl_ok "namespaces and the shipped rules"

# --- before the daemon -------------------------------------------------------------
ctl ping >"$TMP/out" 2>"$TMP/err"; rc=$?
nl_check "daemon not running: exit 4 ($rc: $(cat "$TMP/err"))" [ $rc = 4 ]
grep -q "not running" "$TMP/err" || nl_fail "the message says it is not running"

LOG=$TMP/daemon.log
T_LAUNCH=$(date +%s)
nl_daemon_start "$TMP/masqd.conf" "$LOG" || { nl_fail "daemon did not start"; cat "$LOG"; exit 1; }
DPID=$NL_DPID
nl_ok "daemon started (pid $DPID)"

out=$(ctl ping); rc=$?
nl_check "ping answers pong ($rc, $out)" [ $rc = 0 -a "$out" = pong ]
m=$(stat -c %a:%G "$SOCK")
nl_check "the socket has mode 0660 and group $GRP ($m)" [ "$m" = "660:$GRP" ]

# --- an association made by traffic -----------------------------------------------
pkt "$NL_H1" esp 192.168.1.11 198.51.100.20 0x1000
sleep 0.3
pkt "$NL_R1" esp 198.51.100.20 198.51.100.1 0x2000
sleep 0.3
# bound by its first inbound packet: provisional until used both ways
v=$(ctl show --json | "$PY" -c 'import json,sys; print([e["state"] for e in json.load(sys.stdin)["esp"] if e["spi_in"] == "0x00002000"])')
nl_check "the new association is provisional ($v)" [ "$v" = "['provisional']" ]
pkt "$NL_H1" esp 192.168.1.11 198.51.100.20 0x1000
sleep 0.3
pkt "$NL_R1" esp 198.51.100.20 198.51.100.1 0x2000
sleep 0.3
ctl show --json >"$TMP/show1.json"; rc=$?
nl_check "show --json exits 0" [ $rc = 0 ]
v=$(jexpr "$TMP/show1.json" '[ (e["host"], e["spi_out"], e["spi_in"], e["state"], e["pkts_out"] >= 1, e["pkts_in"] >= 1, e["ttl"] > 1700) for e in d["esp"] if e["remote"] == "198.51.100.20"]')
nl_check "show --json has the ESP association ($v)" \
	[ "$v" = "[('192.168.1.11', '0x00001000', '0x00002000', 'established', True, True, True)]" ]
v=$(jexpr "$TMP/show1.json" 'd["version"], d["pending"], d["isakmp"]')
nl_check "show --json: version 1, nothing pending ($v)" [ "$v" = "(1, [], [])" ]
ctl show >"$TMP/show1.txt"
nl_check "show prints an aligned table" grep -qE "^198\.51\.100\.20 +192\.168\.1\.11 +0x00001000 +0x00002000 +established " "$TMP/show1.txt"
v=$(ctl show --json --host 192.168.1.12 | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["esp"]))')
nl_check "show --host filters ($v)" [ "$v" = 0 ]

# --- preload: the remote's first packet under a new SPI ---------------------------
# h2 has an ISAKMP exchange with the remote, h1 has not: a new inbound SPI
# with no init pending is guessed to h2. The preload sends 0x5000 to h1.
# (The hosts drop incoming ESP and UDP/500 before the stack: no ICMP.)
pkt "$NL_H2" isakmp 192.168.1.12 198.51.100.20 0x2233445566778899
out=$(ctl add esp --remote 198.51.100.20 --host 192.168.1.11 --spi-in 0x5000 --ttl 600 2>&1); rc=$?
nl_check "add esp exits 0 ($rc $out)" [ $rc = 0 ]
ctl show --json --remote 198.51.100.20 >"$TMP/show2.json"
v=$(jexpr "$TMP/show2.json" '[ (e["host"], e["spi_out"], e["state"], 590 <= e["ttl"] <= 600) for e in d["esp"] if e["spi_in"] == "0x00005000"]')
nl_check "show --json has the preloaded entry ($v)" [ "$v" = "[('192.168.1.11', None, 'preloaded', True)]" ]
v=$(jexpr "$TMP/show2.json" '[ (e["host"], e["cookie_i"]) for e in d["isakmp"]]')
nl_check "show --json has h2's ISAKMP entry ($v)" [ "$v" = "[('192.168.1.12', '2233445566778899')]" ]
start_capture "$NL_RTR" lan0 "$TMP/lan.pcap" || nl_fail "capture on LAN"
pkt "$NL_R1" esp 198.51.100.20 198.51.100.1 0x5000 2
pkt "$NL_R1" esp 198.51.100.20 198.51.100.1 0x6000 3     # not preloaded
nl_capture_stop "$CAP"
stop_spawned
n=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.11" 0x5000)
m=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.12" 0x5000)
nl_check "preloaded SPI 0x5000 reaches h1 only (h1: $n, h2: $m)" [ "$n" -ge 1 -a "$m" = 0 ]
n=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.11" 0x6000)
m=$(count "$TMP/lan.pcap" "198.51.100.20>192.168.1.12" 0x6000)
# (h1 may get a guessed copy too: it has ESP with the remote)
nl_check "without a preload the guess goes to h2 (h1: $n, h2: $m)" [ "$m" -ge 1 ]
nl_check "the add is logged" grep -q "control: add-esp remote=198.51.100.20 spi_in=0x00005000 host=192.168.1.11" "$LOG"
out=$(ctl add esp --remote 198.51.100.20 --host 192.168.1.12 --spi-in 0x5000 2>&1); rc=$?
nl_check "add esp of a SPI another host has: exit 1 ($rc: $out)" [ $rc = 1 ]

# --- del, flush --------------------------------------------------------------------
out=$(ctl del esp --remote 198.51.100.20 --spi-in 0x5000 2>&1); rc=$?
nl_check "del esp exits 0 ($rc $out)" [ $rc = 0 ]
v=$(ctl show --json | "$PY" -c 'import json,sys; print([e for e in json.load(sys.stdin)["esp"] if e["spi_in"] == "0x00005000"])')
nl_check "the deleted entry is gone ($v)" [ "$v" = "[]" ]
out=$(ctl del esp --remote 198.51.100.20 --spi-in 0x5000 2>&1); rc=$?
nl_check "del esp of a missing entry: exit 1 ($rc: $out)" [ $rc = 1 ]
nl_check "the del is logged" grep -q "control: del-esp remote=198.51.100.20 spi_in=0x00005000" "$LOG"

out=$(ctl flush --host 192.168.1.12 --json); rc=$?
n=$(echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["removed"])' 2>/dev/null)
nl_check "flush --host removes h2's entries ($rc, $n)" [ $rc = 0 -a "${n:-0}" -ge 1 ]
v=$(ctl show --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(sorted({e["host"] for e in d["esp"] + d["isakmp"]}))')
nl_check "only h1 is left ($v)" [ "$v" = "['192.168.1.11']" ]
out=$(ctl flush); rc=$?
v=$(ctl show --json | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(len(d["esp"]), len(d["isakmp"]))')
nl_check "flush empties the tables ($rc, $out, $v)" [ $rc = 0 -a "$v" = "0 0" ]
nl_check "the flush is logged" grep -q "control: flush remote=any host=any" "$LOG"

# --- stats ------------------------------------------------------------------------------
T_A=$(date +%s)
ctl stats --json >"$TMP/stats.json"; rc=$?
T_B=$(date +%s)
v=$(jexpr "$TMP/stats.json" '(d["version"], d["packets"]["inbound"] >= 4, d["packets"]["outbound"] >= 3, d["queue"]["received"] >= 7, d["queue"]["verdicts_lost"], d["decisions"]["preloaded"] >= 1, d["decisions"]["removed"] >= 3, d["decisions"]["guessed"] >= 1, d["tables"]["esp"], d["tables"]["max_entries"], "esp_spi_zero" in d["malformed"], d["daemon"]["control_requests"] >= 10)')
nl_check "stats --json counts packets, decisions, queue and tables ($rc, $v)" \
	[ $rc = 0 -a "$v" = "(1, True, True, True, 0, True, True, True, 0, 65536, True, True)" ]
# uptime: the seconds since the launch, as the script's own clock saw them
# (the daemon started after T_LAUNCH and the stats came between T_A and T_B)
v=$(jexpr "$TMP/stats.json" 'd["uptime"]')
nl_check "stats --json: uptime $v s lies within $((T_A - T_LAUNCH - 1))..$((T_B - T_LAUNCH + 1)) s of the launch" \
	eval '[ "$v" -ge $((T_A - T_LAUNCH - 1)) ] && [ "$v" -le $((T_B - T_LAUNCH + 1)) ] && [ "$v" -ge 1 ]'
nl_check "the changes are logged with the client's uid and pid" \
	grep -qE "control: flush remote=any host=any: [0-9]+ entries removed \(by uid=0 pid=[0-9]+\)" "$LOG"
ctl stats >"$TMP/stats.txt"
nl_check "stats prints aligned counters" grep -qE "^queue\.enobufs +0$" "$TMP/stats.txt"

# --- reload ------------------------------------------------------------------------------
out=$(ctl reload); rc=$?
nl_check "reload exits 0 ($rc $out)" [ $rc = 0 ]
nl_check "reload is logged" nl_wait_log "reloaded config file $TMP/masqd.conf" 20 "$LOG"
# io settings apply to the live queue: with queue_maxlen = 16 and the daemon
# stopped, a burst of 60 overflows the kernel queue; the kernel drops the
# rest (counted, read back from /proc), nothing passes unmasqueraded.
sed -i 's/^log = /io = { queue_maxlen = 16; batch = 4; };\nlog = /' "$TMP/masqd.conf"
nl_daemon_reconf
out=$(ctl reload); rc=$?
nl_check "reload with io settings exits 0 ($rc $out)" [ $rc = 0 ]
start_capture "$NL_WAN" up0 "$TMP/wanq.pcap" || nl_fail "capture on WAN"
kill -STOP "$DPID"
pkt "$NL_H1" burst 192.168.1.11 198.51.100.20 0x7000 60
kill -CONT "$DPID"
sleep 1
nl_capture_stop "$CAP"
n=$(count "$TMP/wanq.pcap" "198.51.100.1>198.51.100.20" 0x7000)
leak=$(tcpdump -r "$TMP/wanq.pcap" -n "src net 192.168.1.0/24" 2>/dev/null | wc -l)
nl_check "a queue of 16 lets at most 16 of a burst of 60 through ($n), no LAN source ($leak)" \
	[ "$n" -ge 1 -a "$n" -le 16 -a "$leak" = 0 ]
ctl stats --json >"$TMP/stats2.json"
v=$(jexpr "$TMP/stats2.json" '(d["queue"]["kernel_queue_full"] >= 60 - 16, d["queue"]["kernel_waiting"], d["queue"]["batches"] >= 1, d["queue"]["batches_full"] >= 1)')
nl_check "stats show the kernel's queue drops and full batches ($v)" [ "$v" = "(True, 0, True, True)" ]
ctl flush --remote 198.51.100.20 >/dev/null   # the burst's pending init would serialize what follows

# --- argument errors -------------------------------------------------------------------
ctl add esp --remote 198.51.100 --host 192.168.1.11 --spi-in 0x5000 2>"$TMP/err"; rc=$?
nl_check "malformed address: exit 3 ($rc: $(cat "$TMP/err"))" [ $rc = 3 ]
ctl add esp --remote 198.51.100.20 --host 192.168.1.11 --spi-in 0xff 2>"$TMP/err"; rc=$?
nl_check "reserved SPI: exit 3 ($rc: $(cat "$TMP/err"))" [ $rc = 3 ]
ctl del esp --remote 198.51.100.20 --spi-in 5k 2>"$TMP/err"; rc=$?
nl_check "malformed SPI: exit 3 ($rc: $(cat "$TMP/err"))" [ $rc = 3 ]
ctl frobnicate 2>/dev/null; rc=$?
nl_check "unknown command: exit 2 ($rc)" [ $rc = 2 ]
ctl add esp --remote 198.51.100.20 2>/dev/null; rc=$?
nl_check "missing arguments: exit 2 ($rc)" [ $rc = 2 ]
setpriv --reuid=65533 --regid=65533 --clear-groups "$CTL" -s "$SOCK" ping 2>"$TMP/err"; rc=$?
nl_check "socket without permission: exit 5 ($rc: $(cat "$TMP/err"))" [ $rc = 5 ]
out=$(setpriv --reuid=65533 --regid=65534 --clear-groups "$CTL" -s "$SOCK" ping 2>&1); rc=$?
nl_check "a member of the socket's group may use it ($rc: $out)" [ $rc = 0 -a "$out" = pong ]

# --- slow and hostile clients ------------------------------------------------------------
# 8 clients that never send: the 9th is refused at once, packets still pass,
# and after the 5 s timeout the slots are free again.
"$PY" -c 'import socket,sys,time
ss=[]
for i in range(8):
    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); ss.append(s)
time.sleep(30)' "$SOCK" &
NL_PIDS+=("$!"); SPAWNED+=("$!")
sleep 0.5
out=$(ctl ping 2>&1); rc=$?
nl_check "a 9th client is refused while 8 hang ($rc: $out)" [ $rc = 1 ]
start_capture "$NL_WAN" up0 "$TMP/wan.pcap" || nl_fail "capture on WAN"
pkt "$NL_H1" esp 192.168.1.11 198.51.100.20 0x1000 3
nl_capture_stop "$CAP"
n=$(count "$TMP/wan.pcap" "198.51.100.1>198.51.100.20" 0x1000)
nl_check "packets pass while the control clients hang ($n)" [ "$n" -ge 1 ]
nl_check "hanging clients are dropped after the timeout" nl_wait_log "control client dropped: no request" 80 "$LOG"
out=$(ctl ping 2>&1); rc=$?
nl_check "ping works again ($rc $out)" [ $rc = 0 ]
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
nl_check "1500 preloads over the socket ($v)" [ "$v" = 1500 ]
"$PY" -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1]); s.sendall(b"v1 show format=json\n"); time.sleep(45)' "$SOCK" &
NL_PIDS+=("$!"); SPAWNED+=("$!")
sleep 0.5
out=$(ctl ping 2>&1); rc=$?
nl_check "ping answers while a reader stalls ($rc $out)" [ $rc = 0 ]
start_capture "$NL_WAN" up0 "$TMP/wan2.pcap" || nl_fail "capture on WAN"
pkt "$NL_H1" esp 192.168.1.11 198.51.100.20 0x1000 3
nl_capture_stop "$CAP"
n=$(count "$TMP/wan2.pcap" "198.51.100.1>198.51.100.20" 0x1000)
nl_check "packets pass while a reader stalls ($n)" [ "$n" -ge 1 ]
# (30 s from its request: reading would not have extended it either)
nl_check "the stalled reader is dropped" nl_wait_log "control client dropped: answer not read in 30000 ms by uid=0 pid=" 400 "$LOG"
out=$(ctl flush --remote 203.0.113.7); rc=$?
nl_check "flush --remote removes that remote's 30 preloads ($rc, $out)" [ $rc = 0 -a "$out" = "30 entries removed" ]
# an over-long request line is refused with a protocol error
v=$("$PY" -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
try:
    s.sendall(b"v1 ping" + b" " * 5000 + b"\n")
except OSError:
    pass
print(s.recv(200).decode().strip())' "$SOCK" 2>&1)
nl_check "an over-long request gets an error ($v)" [ "$v" = "error protocol request longer than 4096 bytes" ]
v=$("$PY" -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"v9 ping\n")
print(s.recv(200).decode().strip())' "$SOCK" 2>&1)
case $v in "error protocol version not supported"*) r=0 ;; *) r=1 ;; esac
nl_check "an unknown protocol version gets an error ($v)" [ $r = 0 ]
stop_spawned

# --- stop ----------------------------------------------------------------------------------
nl_daemon_stop; rc=$?
nl_check "SIGTERM exits 0, no sanitizer report ($rc)" [ $rc = 0 ]
nl_check "the socket is removed at exit" [ ! -e "$SOCK" ]
ctl ping 2>/dev/null; rc=$?
nl_check "after the stop: exit 4 ($rc)" [ $rc = 4 ]

if [ "$NL_FAILS" != 0 ]; then
	echo "--- daemon log"; cat "$LOG"
	exit 1
fi
echo "all passed"
exit 0

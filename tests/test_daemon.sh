#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# End-to-end smoke test of ipsec-masqd in the namespaces of tests/lib/netns.sh
# (LAN hosts h1 .11 and h2 .12, the router with the shipped rules, remote r1):
# real ESP and ISAKMP packets through NFQUEUE, -t/-P, a stopped daemon
# (nothing it must decide leaves while it is stopped, an associated flow only
# with the fast path, which does not wait for it; LAN sources counted on a
# finished capture), SIGHUP reloads, SIGUSR1, and the state file: saved at SIGTERM,
# after every ipsec-masqctl add/del (a kill -9 afterwards brings back what
# was added and not what was deleted), periodically; a restart's traffic uses
# the restored SPIs (inbound ESP goes to its host alone, not guessed); stale
# temporary files are removed; a SIGHUP reload is saved; the config's own
# preloads are not in the file and win over what it restores.
# Exit 77 (skip) when not root or a tool is missing.

# make check runs it as "$(SHELL) test_daemon.sh": it needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imds-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")
BIN=$NL_BIN TMP=$NL_TMP PY=$NL_PY
H1=$NL_H1_IP H2=$NL_H2_IP R1=$NL_R1_IP EXT=$NL_EXT
SOCK=$TMP/control
check() { nl_check "$@"; }

write_config() {   # $1 file, $2 esp lifetime, $3 log level, [$4 more lines]
	cat > "$1" <<CONF
# ipsec-masqd smoke test
queue = 0;
external = { address = "$EXT"; };
internal = [ "$NL_LAN_NET" ];
esp = { lifetime = $2; init_timeout = 120.0; };
isakmp = { lifetime = 1800.0; };
control = { socket = "$SOCK"; };
state = { file = "$TMP/state"; interval = 3.0; };
log = { level = "$3"; };
${4:-}
CONF
	nl_fastpath_conf "$1"
}

# The packet tool: send ESP/ISAKMP, and check ISAKMP checksums in captures.
cat > "$TMP/pkt.py" <<'PYEOF'
import sys
from scapy.all import IP, UDP, Raw, send, rdpcap, conf
from scapy.layers.ipsec import ESP
from scapy.layers.isakmp import ISAKMP
conf.verb = 0

def esp(src, dst, spi, n=3):
    p = IP(src=src, dst=dst) / ESP(spi=int(spi, 0), seq=1) / Raw(b"\xab" * 48)
    send(p, count=int(n), inter=0.2 if int(n) <= 5 else 0)

def isakmp(src, dst, ci, cr="0", n=3):
    p = (IP(src=src, dst=dst) / UDP(sport=500, dport=500) /
         ISAKMP(init_cookie=int(ci, 0).to_bytes(8, "big"),
                resp_cookie=int(cr, 0).to_bytes(8, "big"),
                next_payload=0, exch_type=2) / Raw(b"\x00" * 32))
    send(p, count=int(n), inter=0.2)

def udp_ok(p):
    """the UDP checksum as sent equals a fresh computation (0 = none)"""
    got = p[UDP].chksum
    if got == 0:
        return True
    q = p[IP].copy()
    del q[UDP].chksum
    return IP(bytes(q))[UDP].chksum == got

def isakmp_count(pcap, a, b):
    """ISAKMP packets src>dst (a) with initiator cookie b and a valid UDP
    checksum"""
    n = 0
    s, d = a.split(">")
    for p in rdpcap(pcap):
        if IP in p and UDP in p and p[IP].src == s and p[IP].dst == d and \
           p[UDP].sport == 500 and p[UDP].dport == 500:
            body = bytes(p[UDP].payload)
            n += (body[:8] == int(b, 0).to_bytes(8, "big") and udp_ok(p))
    print(n)

{"esp": esp, "isakmp": isakmp, "isakmp_count": isakmp_count}[sys.argv[1]](*sys.argv[2:])
PYEOF

pkt() { local ns=$1; shift; nl_in "$ns" "$PY" "$TMP/pkt.py" "$@"; }
# ESP packets src $2 -> dst $3 with SPI $4 in pcap $1.
esp_count() { nl_pcap_count "$1" "src host $2 and dst host $3 and $(nl_bpf_spi "$4")"; }
lansrc_count() { nl_pcap_count "$1" "src net $NL_LAN_NET"; }
isakmp_count() { "$PY" "$TMP/pkt.py" isakmp_count "$@" 2>/dev/null || echo -1; }
ge() { [ "$1" -ge "$2" ] 2>/dev/null; }
eq() { [ "$1" -eq "$2" ] 2>/dev/null; }
# Captures on the router's two sides: what leaves on the WAN, what the LAN
# hosts get (the bridge lan0 carries both hosts' traffic).
wan_capture() { nl_capture_start "$NL_RTR" wan0 "$1" && WANCAP=$NL_LAST; }
lan_capture() { nl_capture_start "$NL_RTR" lan0 "$1" && LANCAP=$NL_LAST; }
# kill -9: a crash, nothing saved at stop.
crash_daemon() {
	kill -9 "$NL_DPID" 2>/dev/null
	wait "$NL_DPID" 2>/dev/null
	NL_DPID=
}

nl_topology || { echo "cannot build the namespaces"; exit 99; }
write_config "$TMP/masqd.conf" 1800.0 info
nl_rules "$TMP/masqd.conf" || { echo "cannot load the rules"; exit 99; }
nl_ok "namespaces and rules"

# --- config check and shell export -------------------------------------------
out=$("$BIN" -t -c "$TMP/masqd.conf" 2>/dev/null); rc=$?
check "-t on a good config prints FILE: OK" [ $rc = 0 -a "$out" = "$TMP/masqd.conf: OK" ]
printf 'queue = 0;\nexternal = { address = "198.51.100.1"; };\nbogus_key = 3;\n' > "$TMP/bad.conf"
err=$("$BIN" -t -c "$TMP/bad.conf" 2>&1 >/dev/null); rc=$?
good=no; [ $rc = 1 ] && [[ "$err" == "$TMP/bad.conf:"[0-9]* ]] && good=yes
check "-t on a bad config exits 1 with FILE:LINE ($err)" [ $good = yes ]
out=$("$BIN" -P -c "$TMP/masqd.conf")
want="QUEUE=0
EXT_INTERFACE=''
EXT_ADDRESS='198.51.100.1'
INTERNAL='192.168.1.0/24'
MARK=0x1a5ec"
check "-P prints the firewall variables" [ "$out" = "$want" ]
nl_in "$NL_RTR" "$BIN" -c "$TMP/bad.conf" >"$TMP/bad.log" 2>&1; rc=$?
check "a bad config at start exits 78" [ $rc = 78 ]

# --- traffic -------------------------------------------------------------------
LOG=$TMP/daemon.log
nl_daemon_start "$TMP/masqd.conf" "$LOG" || { nl_fail "daemon did not start"; cat "$LOG"; exit 1; }
nl_ok "daemon started (pid $NL_DPID)"
wan_capture "$TMP/wan.pcap" || nl_fail "capture on WAN"
lan_capture "$TMP/lan.pcap" || nl_fail "capture on LAN"
pkt "$NL_H1" esp "$H1" "$R1" 0x1000
pkt "$NL_H1" isakmp "$H1" "$R1" 0x1122334455667788
sleep 0.5
pkt "$NL_R1" esp "$R1" "$EXT" 0x2000
pkt "$NL_R1" isakmp "$R1" "$EXT" 0x1122334455667788 0x99aabbccddeeff00
# The remote rekeys first (an unknown SPI, no init pending): the packet is
# guessed to the hosts with ISAKMP entries with it, the extra copies leave
# through the raw socket. The second LAN host h2 needs an ISAKMP entry first.
pkt "$NL_H2" isakmp "$H2" "$R1" 0x2233445566778899 0 1
sleep 0.3
pkt "$NL_R1" esp "$R1" "$EXT" 0x3000 1
# a burst: every packet needs its verdict, none may be lost
pkt "$NL_H1" esp "$H1" "$R1" 0x1000 500
nl_capture_stop "$WANCAP"
nl_capture_stop "$LANCAP"

n=$(esp_count "$TMP/wan.pcap" "$EXT" "$R1" 0x1000)
check "outbound ESP reaches the remote from $EXT ($n)" ge "$n" 1
check "a burst of 500 ESP packets gets through (allowing 2% loss)" ge "$n" 493
n=$(isakmp_count "$TMP/wan.pcap" "$EXT>$R1" 0x1122334455667788)
check "outbound ISAKMP reaches the remote from $EXT:500, valid checksum ($n)" ge "$n" 1
n=$(esp_count "$TMP/lan.pcap" "$R1" "$H1" 0x2000)
check "the remote's ESP with a new SPI reaches $H1 ($n)" ge "$n" 1
n=$(isakmp_count "$TMP/lan.pcap" "$R1>$H1" 0x1122334455667788)
check "the remote's ISAKMP reply reaches $H1:500 ($n)" ge "$n" 1
n=$(esp_count "$TMP/lan.pcap" "$R1" "$H1" 0x3000)
m=$(esp_count "$TMP/lan.pcap" "$R1" "$H2" 0x3000)
check "a guessed inbound SPI reaches both candidate hosts (.11: $n, .12: $m)" [ "$n" -ge 1 -a "$m" -ge 1 ]
n=$(lansrc_count "$TMP/wan.pcap")
check "no $NL_LAN_NET source on the WAN ($n)" eq "$n" 0

# --- a stalled daemon: the queue holds the packets, each gets its verdict ------
# Two bursts from h1 while the daemon is stopped: 200 under its associated
# out-SPI 0x1000 and 200 under a new one, 0x1100 (an init: only the daemon
# can decide it). The capture of the stopped period ends (nl_capture_stop
# waits a second for the last packets) before SIGCONT. In it nothing of the
# new SPI may leave, neither masqueraded nor with its LAN source; after
# SIGCONT its 200 queued packets go out. The associated flow: queued like
# the rest without the fast path (nothing leaves while stopped, all after
# SIGCONT); with it, rewritten in the kernel, it does not wait for the
# daemon at all (it leaves, masqueraded, while the daemon is stopped).
FASTPATH=no; nl_fastpath_active "$LOG" && FASTPATH=yes
echo "# fast path: $FASTPATH"
wan_capture "$TMP/stall.pcap" || nl_fail "capture on WAN"
STALLCAP=$WANCAP
wan_capture "$TMP/resume.pcap" || nl_fail "capture on WAN"
kill -STOP "$NL_DPID"
pkt "$NL_H1" esp "$H1" "$R1" 0x1000 200
pkt "$NL_H1" esp "$H1" "$R1" 0x1100 200
sleep 0.5
nl_capture_stop "$STALLCAP"
kill -CONT "$NL_DPID"
sleep 1
nl_capture_stop "$WANCAP"
n=$(nl_pcap_count "$TMP/stall.pcap" "$(nl_bpf_spi 0x1100)")
m=$(lansrc_count "$TMP/stall.pcap")
check "nothing of a new SPI passes while the daemon is stopped ($n), no LAN source at all ($m)" [ "$n" = 0 -a "$m" = 0 ]
n=$(esp_count "$TMP/resume.pcap" "$EXT" "$R1" 0x1100)
check "after SIGCONT the 200 queued packets of the new SPI go out ($n)" ge "$n" 196
n=$(esp_count "$TMP/stall.pcap" "$EXT" "$R1" 0x1000)
m=$(nl_pcap_count "$TMP/stall.pcap" "$(nl_bpf_spi 0x1000)")
if [ $FASTPATH = yes ]; then
	check "fast path: the associated flow leaves while the daemon is stopped ($n of 200 from $EXT, $m in all)" \
		[ "$n" -ge 196 -a "$n" = "$m" ]
else
	check "queued: nothing of the associated flow passes while the daemon is stopped ($m)" [ "$m" = 0 ]
	n=$(esp_count "$TMP/resume.pcap" "$EXT" "$R1" 0x1000)
	check "queued: after SIGCONT its 200 queued packets go out ($n)" ge "$n" 196
fi
n=$(lansrc_count "$TMP/resume.pcap")
check "no LAN source after SIGCONT either ($n)" eq "$n" 0

# --- signals ---------------------------------------------------------------------
kill -USR1 "$NL_DPID"
check "SIGUSR1 dumps the ESP entry" nl_wait_log "esp remote=$R1 host=$H1 .*spi_in=0x00002000" 30 "$LOG"
check "SIGUSR1 dumps the queue counters: no verdict lost" nl_wait_log "queue: received=[0-9]+ .* verdict_errors=0 verdicts_lost=0" 30 "$LOG"

write_config "$TMP/masqd.conf" 2400.0 info
kill -HUP "$NL_DPID"
check "SIGHUP reloads a changed config" nl_wait_log "reloaded config file $TMP/masqd.conf" 30 "$LOG"
printf 'queue = 0;\nexternal = { address = "198.51.100.1"; };\ninternal = [ "192.168.1.0/24" ];\nesp = { lifetime = -5.0; };\n' > "$TMP/masqd.conf"
kill -HUP "$NL_DPID"
check "SIGHUP with a broken file logs FILE:LINE and keeps running" \
	nl_wait_log "config file $TMP/masqd.conf has errors, not reloading: $TMP/masqd.conf:[0-9]+" 30 "$LOG"
sleep 0.2
check "the daemon is still running" kill -0 "$NL_DPID"

write_config "$TMP/masqd.conf" 2400.0 info
nl_daemon_stop; rc=$?
check "SIGTERM exits 0 ($rc)" [ $rc = 0 ]
check "SIGTERM saves the state file" grep -qE "saved state to $TMP/state \(stop\): [1-9][0-9]* ESP" "$LOG"
check "the state file exists" [ -s "$TMP/state" ]

# --- restart: the restored entries carry the traffic ----------------------------
# The restart also listens on a notify socket, as systemd would.
NOTIFY=$TMP/notify.sock
"$PY" -c 'import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(sys.argv[1])
f=open(sys.argv[2],"a")
while True:
    f.write(s.recv(4096).decode()+"\n--\n"); f.flush()' "$NOTIFY" "$TMP/notify.log" &
NL_PIDS+=("$!")
sleep 0.3
: > "$TMP/state.tmp.Ab12cD"   # what a save cut short by a crash leaves
: > "$TMP/state.backup"       # an admin's copy: kept
LOG2=$TMP/daemon2.log
NOTIFY_SOCKET=$NOTIFY nl_daemon_start "$TMP/masqd.conf" "$LOG2" || nl_fail "restart"
check "a restart restores the ESP entry" grep -qE "restored state from $TMP/state: [1-9][0-9]* ESP" "$LOG2"
check "a stale temporary state file is removed" [ ! -e "$TMP/state.tmp.Ab12cD" ]
check "an admin's state.backup beside it is kept" [ -e "$TMP/state.backup" ]
check "and logged" grep -q "removed 1 stale temporary state file beside $TMP/state" "$LOG2"
# The restored association (r1's SPI 0x2000 -> h1) routes r1's ESP to h1
# alone: a guess would reach h2 as well (both have ISAKMP entries with r1),
# and without any restored entry nothing would reach the LAN.
lan_capture "$TMP/lan2.pcap" || nl_fail "capture on LAN"
pkt "$NL_R1" esp "$R1" "$EXT" 0x2000
nl_capture_stop "$LANCAP"
n=$(esp_count "$TMP/lan2.pcap" "$R1" "$H1" 0x2000)
m=$(esp_count "$TMP/lan2.pcap" "$R1" "$H2" 0x2000)
check "after the restart r1's ESP (SPI 0x2000) reaches h1 ($n of 3) and not h2 ($m)" [ "$n" -ge 1 -a "$m" = 0 ]
check "... by the restored entry, not by a guess" bash -c "! grep -q 'DECISION=guessed.*ESP_SPI_IN=0x00002000' '$LOG2'"

# --- control changes are saved at once: a crash keeps them ----------------------
"$CTL" -s "$SOCK" add esp --remote "$R1" --host "$H2" --spi-in 0x5000 >/dev/null 2>&1
"$CTL" -s "$SOCK" add esp --remote "$R1" --host "$H2" --spi-in 0x6000 >/dev/null 2>&1
"$CTL" -s "$SOCK" del esp --remote "$R1" --spi-in 0x6000 >/dev/null 2>&1
check "an add is saved at once" nl_wait_log "saved state to $TMP/state \(tables or config changed by an admin\)" 30 "$LOG2"
sleep 0.3
check "the file has the added entry" grep -q "spi_in=0x00005000" "$TMP/state"
check "and not the deleted one" bash -c "! grep -q 'spi_in=0x00006000' '$TMP/state'"
check "the state is also written every state.interval" nl_wait_log "saved state to $TMP/state \(periodic\)" 60 "$LOG2"
crash_daemon
LOG3=$TMP/daemon3.log
NOTIFY_SOCKET=$NOTIFY nl_daemon_start "$TMP/masqd.conf" "$LOG3" || nl_fail "start after kill -9"
out=$("$CTL" -s "$SOCK" show 2>&1)
echo "$out" | grep -q "0x00005000" ; a=$?
echo "$out" | grep -q "0x00006000" ; b=$?
check "after kill -9 the added entry is back ($a) and the deleted one is not ($b)" [ $a = 0 -a $b = 1 ]
lan_capture "$TMP/lan3.pcap" || nl_fail "capture on LAN"
pkt "$NL_R1" esp "$R1" "$EXT" 0x5000
nl_capture_stop "$LANCAP"
n=$(esp_count "$TMP/lan3.pcap" "$R1" "$H2" 0x5000)
m=$(esp_count "$TMP/lan3.pcap" "$R1" "$H1" 0x5000)
check "after kill -9 r1's ESP (SPI 0x5000) reaches h2 ($n of 3) and not h1 ($m)" [ "$n" -ge 1 -a "$m" = 0 ]

# --- config preloads: reach the engine, applied once, removed with their line ---
PRE='preload = ( { remote = "198.51.100.20"; host = "192.168.1.12"; spi_in = 0x7000; } );'
npre() { grep -c "DECISION=preloaded .*ESP_SPI_IN=0x00007000" "$LOG3"; }
nrel() { grep -c "reloaded config file" "$LOG3"; }
write_config "$TMP/masqd.conf" 2400.0 info "$PRE"
kill -HUP "$NL_DPID"
check "SIGHUP applies a new config preload" nl_wait_log "DECISION=preloaded .*LAN_ADDR=$H2 .*ESP_SPI_IN=0x00007000" 50 "$LOG3"
lan_capture "$TMP/lan4.pcap" || nl_fail "capture on LAN"
pkt "$NL_R1" esp "$R1" "$EXT" 0x7000
nl_capture_stop "$LANCAP"
n=$(esp_count "$TMP/lan4.pcap" "$R1" "$H2" 0x7000)
m=$(esp_count "$TMP/lan4.pcap" "$R1" "$H1" 0x7000)
check "the config preload carries r1's ESP (SPI 0x7000) to h2 ($n of 3) and not h1 ($m)" [ "$n" -ge 1 -a "$m" = 0 ]
r=$(nrel)
kill -HUP "$NL_DPID"
for i in $(seq 50); do [ "$(nrel)" -gt "$r" ] && break; sleep 0.1; done
check "an unchanged preload is not applied (nor logged) again on reload ($(npre) preloaded lines, $(nrel) reloads)" \
	[ "$(npre)" = 1 -a "$(nrel)" -gt "$r" ]
write_config "$TMP/masqd.conf" 2400.0 info
kill -HUP "$NL_DPID"
check "a preload that left the config is removed on reload" \
	nl_wait_log "preload of remote $R1 SPI 0x00007000 left the config: removed" 50 "$LOG3"
out=$("$CTL" -s "$SOCK" show 2>&1)
check "and is gone from the tables" eval '! printf "%s\n" "$out" | grep -q 0x00007000' 

# Follow the interface instead of a fixed address: reload, lose, regain.
sed -i 's/address = "198.51.100.1"/interface = "wan0"/' "$TMP/masqd.conf"
out=$("$BIN" -P -c "$TMP/masqd.conf" | sed -n '2,3p' | tr '\n' ' ')
check "-P with an interface ($out)" [ "$out" = "EXT_INTERFACE='wan0' EXT_ADDRESS='' " ]
kill -HUP "$NL_DPID"
check "reload to interface wan0 finds its address" nl_wait_log "external address of wan0 is now 198.51.100.1" 30 "$LOG3"
nl_in "$NL_RTR" ip addr del 198.51.100.1/24 dev wan0
check "losing the address is logged" nl_wait_log "wan0 lost its address" 30 "$LOG3"
nl_in "$NL_RTR" ip addr add 198.51.100.1/24 dev wan0
for i in $(seq 30); do [ "$(grep -c "external address of wan0 is now 198.51.100.1" "$LOG3")" -ge 2 ] && break; sleep 0.1; done
check "the regained address is logged" [ "$(grep -c "external address of wan0 is now 198.51.100.1" "$LOG3")" -ge 2 ]
# r1 learns the address again (ARP) before the next probe
nl_in "$NL_R1" ping -c1 -W2 "$EXT" >/dev/null 2>&1

# --- the config's preloads win over the state file and leave with their line ---
# A reload is saved like a control change; the config's own preloads are not
# in the file (every start applies them from the config), so one removed
# from the file while the daemon is down stays removed, and one moved to
# another host replaces what the file restores for its SPI.
write_config "$TMP/masqd.conf" 2400.0 info \
	"preload = ( { remote = \"$R1\"; host = \"$H2\"; spi_in = 0x7200; } );"
nsaved() { grep -c "saved state to $TMP/state (tables or config changed by an admin)" "$LOG3"; }
s=$(nsaved)
kill -HUP "$NL_DPID"
check "SIGHUP applies preload 0x7200" nl_wait_log "DECISION=preloaded .*ESP_SPI_IN=0x00007200" 50 "$LOG3"
for i in $(seq 50); do [ "$(nsaved)" -gt "$s" ] && break; sleep 0.1; done
check "a SIGHUP reload is saved as an admin's change ($s such saves before, $(nsaved) after)" \
	[ "$(nsaved)" -gt "$s" ]
"$CTL" -s "$SOCK" add esp --remote "$R1" --host "$H2" --spi-in 0x7100 >/dev/null 2>&1
for i in $(seq 50); do grep -q "spi_in=0x00007100" "$TMP/state" 2>/dev/null && break; sleep 0.1; done
check "the added 0x7100 is in the state file" grep -q "spi_in=0x00007100" "$TMP/state"
check "the config's own preload 0x7200 is not" bash -c "! grep -q 'spi_in=0x00007200' '$TMP/state'"
crash_daemon
write_config "$TMP/masqd.conf" 2400.0 info \
	"preload = ( { remote = \"$R1\"; host = \"$H1\"; spi_in = 0x7100; } );"
LOG4=$TMP/daemon4.log
NOTIFY_SOCKET=$NOTIFY nl_daemon_start "$TMP/masqd.conf" "$LOG4" || nl_fail "start with moved preloads"
check "the config's preload of 0x7100 to h1 replaces the restored one to h2" \
	nl_wait_log "preload of remote $R1 SPI 0x00007100 to $H1 replaces the restored entry" 30 "$LOG4"
out=$("$CTL" -s "$SOCK" show 2>&1)
check "0x7200, gone from the config while the daemon was down, stays gone" \
	eval '! printf "%s\n" "$out" | grep -q 0x00007200'
lan_capture "$TMP/lan5.pcap" || nl_fail "capture on LAN"
pkt "$NL_R1" esp "$R1" "$EXT" 0x7100
nl_capture_stop "$LANCAP"
n=$(esp_count "$TMP/lan5.pcap" "$R1" "$H1" 0x7100)
m=$(esp_count "$TMP/lan5.pcap" "$R1" "$H2" 0x7100)
check "r1's ESP (SPI 0x7100) reaches h1 as the config says ($n of 3), not h2 ($m)" [ "$n" -ge 1 -a "$m" = 0 ]

nl_daemon_stop; rc=$?
check "second SIGTERM exits 0" [ $rc = 0 ]

# Fail closed: with no daemon the queue has no listener and ESP stops.
wan_capture "$TMP/down.pcap" || nl_fail "capture on WAN"
pkt "$NL_H1" esp "$H1" "$R1" 0x1000 5
nl_capture_stop "$WANCAP"
n=$(esp_count "$TMP/down.pcap" "$EXT" "$R1" 0x1000)
m=$(lansrc_count "$TMP/down.pcap")
check "daemon down: no ESP reaches the WAN ($n masqueraded, $m LAN-sourced)" [ "$n" = 0 -a "$m" = 0 ]
if ldd "$BIN" 2>/dev/null | grep -q libsystemd; then
	check "sd_notify: READY=1" grep -q "^READY=1" "$TMP/notify.log"
	check "sd_notify: RELOADING=1 with MONOTONIC_USEC" grep -q "^MONOTONIC_USEC=[0-9]" "$TMP/notify.log"
	check "sd_notify: STOPPING=1" grep -q "^STOPPING=1" "$TMP/notify.log"
elif [ "${IPSEC_MASQD_REQUIRE_ALL:-0}" = 1 ]; then
	fail "sd_notify checks: the daemon is built without libsystemd (apt-get install libsystemd-dev)"
else
	echo "skip - sd_notify checks: built without libsystemd"
fi

if [ "$NL_FAILS" != 0 ]; then
	echo "--- daemon log"; cat "$LOG"
	echo "--- restart log"; cat "$LOG2" 2>/dev/null
	echo "--- log after kill -9"; cat "$LOG3" 2>/dev/null
	echo "--- log after the second kill -9"; cat "$LOG4" 2>/dev/null
	exit 1
fi
echo "all passed"
exit 0

#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# Ten tunnels to one gateway (issue 11): ten LAN addresses (on h1, each a
# host of its own to the router) open ESP to r1 at the same moment, with the
# real daemon, the shipped rules, parallel sessions on and the default
# retries, squelch and init_min_age; r1 (tests/peers/esp_peer.py, real
# crypto) answers every probe 50 ms late, and every host sends a probe every
# 200 ms until one is answered (5 packets a second). Checks:
#   - every tunnel carries round trips within 10 s of the common start;
#   - `ipsec-masqctl show --json`: every inbound SPI bound to its own host,
#     none to another (the misassociation count, must be 0);
#   - r1 verified every probe it got; no host got another's SPI bound;
#   - no LAN source on the WAN (exact, from a capture).
# Prints how long the tenth tunnel took to come up. Exit 77 (skip) when not
# root or a tool is missing.

# make check runs it as "$(SHELL) test_contention.sh": it needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imcon-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
PEER=$NL_SRC/tests/peers/esp_peer.py
[ -f "$PEER" ] || nl_skip "$PEER missing"
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
TMP=$NL_TMP
N=10
R1_IN=10.20.0.1
UP_LIMIT=10          # seconds: every tunnel carries round trips by then

# sa SPI: "SPI:ENCKEY:AUTHKEY", keys derived from the SPI.
sa() {
	local k
	k=$(printf 'ipsec-masqd contention test %s' "$1" | sha256sum | cut -c1-64)
	printf '%s:%s:%s' "$1" "${k:0:32}" "$(printf '%s auth' "$k" | sha256sum | cut -c1-64)"
}
host_ip() { echo "192.168.1.$((100 + $1))"; }
spi_out() { printf '0x%x' $((0x1c000000 + $1)); }
spi_in() { printf '0x%x' $((0x2c000000 + $1)); }

# json FILE KEY: a value of a peer's JSON report (-1 if absent).
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
ge() { [ "$1" -ge "$2" ] 2>/dev/null; }
eq() { [ "$1" -eq "$2" ] 2>/dev/null; }

nl_topology || { nl_fail "topology"; exit 1; }
addrs=()
for ((i = 1; i <= N; i++)); do addrs+=("$(host_ip $i)"); done
nl_add_addrs "$NL_H1" "${addrs[@]}" || { nl_fail "LAN addresses"; exit 1; }

CONF=$TMP/contention.conf LOG=$TMP/daemon.log CAP=$TMP/wan.pcap
cat > "$CONF" <<CONF
# ipsec-masqd contention test: defaults but for parallel sessions
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$NL_LAN_NET" ];
esp = { parallel_sessions = true; };
control = { socket = "$TMP/control"; };
log = { level = "info"; };
CONF
nl_rules "$CONF" || { nl_fail "shipped rules"; exit 1; }
nl_capture_start "$NL_WAN" up0 "$CAP" || { nl_fail "WAN capture"; exit 1; }
CAP_PID=$NL_LAST
nl_daemon_start "$CONF" "$LOG" || { nl_fail "daemon did not start"; cat "$LOG"; exit 1; }

# r1 answers every probe of every host 50 ms late.
pairs=()
for ((i = 1; i <= N; i++)); do
	pairs+=(--pair "$(sa "$(spi_out $i)")/$(sa "$(spi_in $i)")")
done
rm -f "$TMP/r1.ready"
nl_spawn "$NL_R1" "$NL_PY" "$PEER" respond --local "$NL_R1_IP" --delay 0.05 \
	--duration 120 --ready "$TMP/r1.ready" "${pairs[@]}" \
	>"$TMP/r1.json" 2>"$TMP/r1.err"
R1_PID=$NL_LAST
nl_wait_log ready 300 "$TMP/r1.ready" || { nl_fail "responder did not start"; cat "$TMP/r1.err"; exit 1; }

# Ten initiators, one per address, all starting at the same wall-clock time
# (scapy takes seconds to start on a busy machine): a probe every 200 ms
# until answered, then round trips, 60 probes in all.
START=$(($(date +%s) + 20))
declare -a IPID
for ((i = 1; i <= N; i++)); do
	nl_spawn "$NL_H1" timeout -k 5 90 "$NL_PY" "$PEER" initiate \
		--local "$(host_ip $i)" --peer "$NL_R1_IP" \
		--inner-local "10.1.0.$((100 + i))" --inner-peer "$R1_IN" \
		--sa-out "$(sa "$(spi_out $i)")" --sa-in "$(sa "$(spi_in $i)")" \
		--count 60 --timeout 0.2 --interval 0 --linger 1 --duration 70 \
		--start-at "$START" >"$TMP/h$i.json" 2>"$TMP/h$i.err"
	IPID[$i]=$NL_LAST
done
late=0
for ((i = 1; i <= N; i++)); do
	nl_wait_log ready $(((START - $(date +%s)) * 10)) "$TMP/h$i.err" || late=$((late + 1))
done
nl_check "all $N initiators ready before the common start ($late late)" eq "$late" 0
for ((i = 1; i <= N; i++)); do nl_wait_pid "${IPID[$i]}" 100; done

# The tables while the tunnels live.
nl_in "$NL_RTR" "$CTL" -s "$TMP/control" show --json >"$TMP/show.json" 2>"$TMP/show.err"
nl_check "ipsec-masqctl show --json" [ -s "$TMP/show.json" ]
nl_stop "$R1_PID" 50
nl_capture_stop "$CAP_PID"
nl_daemon_stop
nl_check "the daemon exits 0 on SIGTERM" [ $? = 0 ]

# Per host: when its tunnel first carried a round trip, and how many.
tenth=-1 ups=
for ((i = 1; i <= N; i++)); do
	f=$TMP/h$i.json
	up=$(json "$f" first_answer_s) n=$(json "$f" answered)
	echo "  h$i $(host_ip $i): first answer after ${up} s, $n of $(json "$f" sent) probes answered"
	nl_check "h$i: round trips within $UP_LIMIT s (first after $up s, $n answered)" \
		"$NL_PY" -c "import sys; up=float('$up'); sys.exit(not (0 <= up <= $UP_LIMIT and $n >= 10))"
	nl_check "h$i: nothing misrouted to it (bad ICV $(json "$f" bad_icv))" eq "$(json "$f" bad_icv)" 0
	ups="$ups $up"
done
tenth=$("$NL_PY" -c "import sys; v=[float(x) for x in sys.argv[1:]]; print(max(v) if min(v) >= 0 else -1)" $ups)
echo "CONTENTION: tenth tunnel up after $tenth s"
nl_check "r1: every probe it got verified, no bad ICV or unknown SPI" \
	eq "$(($(json "$TMP/r1.json" bad_icv) + $(json "$TMP/r1.json" unknown_spi)))" 0

# Misassociations: an inbound SPI bound to any host but its own.
mis=$("$NL_PY" - "$TMP/show.json" "$N" <<'PYEOF'
import json, sys
t = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
want = {"192.168.1.%d" % (100 + i): ("0x%08x" % (0x1c000000 + i),
                                      "0x%08x" % (0x2c000000 + i))
        for i in range(1, n + 1)}
wrong = bound = 0
for e in t["esp"]:
    if e["spi_in"] is None:
        continue
    bound += 1
    if want.get(e["host"]) != (e["spi_out"], e["spi_in"]):
        wrong += 1
        print("wrong: %s" % e, file=sys.stderr)
print(wrong, bound)
PYEOF
)
echo "CONTENTION: misassociations ${mis% *} of ${mis#* } bound inbound SPIs"
nl_check "show --json: no inbound SPI bound to the wrong host (${mis% *})" eq "${mis% *}" 0
nl_check "show --json: all $N inbound SPIs bound (${mis#* })" eq "${mis#* }" "$N"

n=$(nl_pcap_count "$CAP" "src net $NL_LAN_NET")
nl_check "no LAN source on the WAN ($n)" eq "$n" 0
n=$(nl_pcap_count "$CAP" "ip proto 50 and src host $NL_EXT")
nl_check "ESP left masqueraded ($n packets from $NL_EXT)" ge "$n" $((N * 10))
grep -E "DECISION=(squelched|reassociated|guessed)" "$LOG" | head -n 20
if [ "$NL_FAILS" != 0 ]; then
	echo "--- daemon log (tail)"; tail -n 80 "$LOG"
	exit 1
fi
exit 0

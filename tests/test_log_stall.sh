#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# A stalled journald never stalls the packet loop (issue 13, item 6): the
# real daemon and the shipped rules in the namespaces of tests/lib/netns.sh,
# logging to a journal stand-in (tests/peers/fake_journal.py, named by
# IPSEC_MASQD_JOURNAL_SOCKET, chosen as under systemd by JOURNAL_STREAM
# naming the daemon's stderr) that reads nothing: its queue holds 10
# records. 300 config preloads, -v, and five SIGUSR1 dumps of them log
# thousands of lines meanwhile. Checked:
#   1 ESP from h1 to r2 is masqueraded all along (at least 95 of 100 at r2,
#     from the external address), the control socket answers
#   2 the lines that did not fit are counted: stats daemon.log_dropped > 0
#   3 once the journal reads again, a warning record says how many were
#     dropped (DROPPED=, at least the count read before), and records flow
#     (an add esp's line arrives)
#   4 exit status 0 at stop, no LAN source on the WAN (exact)
# Exit 77 (skip) when not root or a tool is missing.

# make check runs it as "$(SHELL) test_log_stall.sh": it needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u

NL_PREFIX=imlgs-
. "$(dirname "$0")/lib/netns.sh" || { echo "cannot source tests/lib/netns.sh"; exit 99; }
nl_init
PEER=$NL_SRC/tests/peers/bigdgram.py
CTL=${IPSEC_MASQCTL:-${top_builddir:-.}/ipsec-masqctl}
[ -x "$CTL" ] || nl_skip "$CTL not built"
CTL=$(cd "$(dirname "$CTL")" && pwd)/$(basename "$CTL")
TMP=$NL_TMP
LOG=$TMP/daemon.log
SOCK=$TMP/control
JSOCK=$TMP/journal.sock
JOUT=$TMP/journal.out

sget() {
	"$CTL" -s "$SOCK" stats --json 2>/dev/null | tail -n1 | "$NL_PY" -c 'import json,sys
try: print(int(json.load(sys.stdin)[sys.argv[1]][sys.argv[2]]))
except Exception: print(-1)' "$1" "$2"
}

{
	cat <<CONF
queue = 0;
external = { address = "$NL_EXT"; };
internal = [ "$NL_LAN_NET" ];
control = { socket = "$SOCK"; };
log = { level = "debug"; };
preload = (
CONF
	for ((i = 0; i < 300; i++)); do
		printf '\t{ remote = "203.0.113.%d"; host = "%s"; spi_in = 0x%08x; }%s\n' \
			$((i % 200 + 1)) "$NL_H2_IP" $((0x51000000 + i)) "$([ $i -lt 299 ] && echo ,)"
	done
	echo ");"
} > "$TMP/masqd.conf"
nl_fastpath_conf "$TMP/masqd.conf" || exit 99   # IPSEC_MASQD_TEST_FASTPATH

nl_topology || { echo "FAIL - topology"; exit 1; }
nl_in "$NL_R2" iptables -w -F INPUT
nl_rules "$TMP/masqd.conf" || { echo "FAIL - rules"; exit 1; }

nl_spawn "$NL_RTR" "$NL_PY" "$NL_SRC/tests/peers/fake_journal.py" "$JSOCK" "$TMP/go" "$JOUT" "$TMP/j.ready"
JPID=$NL_LAST
nl_wait_log ready 100 "$TMP/j.ready" || { echo "FAIL - journal stand-in did not start"; exit 1; }

: > "$LOG"
NL_DLOG=$LOG
ip netns exec "$NL_RTR" env JOURNAL_STREAM="$(stat -c '%d:%i' "$LOG")" IPSEC_MASQD_JOURNAL_SOCKET="$JSOCK" \
	"$NL_BIN" -c "$TMP/masqd.conf" -u root -v >>"$LOG" 2>&1 &
NL_DPID=$!
for ((i = 0; i < 100; i++)); do
	"$CTL" -s "$SOCK" ping >/dev/null 2>&1 && break
	sleep 0.1
done
nl_check "the daemon answers ping with the journal stalled" eval "\"\$CTL\" -s \"\$SOCK\" ping >/dev/null"
nl_capture_start "$NL_WAN" up0 "$TMP/wan.pcap" "ip" || { echo "FAIL - capture"; exit 1; }
CAP=$NL_LAST

rm -f "$TMP/r2.ready"
nl_spawn "$NL_R2" "$NL_PY" "$PEER" sink --local "$NL_R2_IP" --spi-in 0x9b000002 --size 200 \
	--expect-src "$NL_EXT" --ready "$TMP/r2.ready" --duration 60 >"$TMP/r2.json" 2>"$TMP/r2.err"
SINK=$NL_LAST
nl_wait_log ready 100 "$TMP/r2.ready" || nl_fail "sink on r2 did not start"
nl_in "$NL_H1" "$NL_PY" "$PEER" send --local "$NL_H1_IP" --peer "$NL_R2_IP" --spi-out 0x9b000002 \
	--size 200 --count 100 --interval 0.03 >/dev/null 2>"$TMP/send.err" &
SENDER=$!
for ((i = 0; i < 5; i++)); do
	kill -USR1 "$NL_DPID"; sleep 0.4
done
wait "$SENDER"
sleep 1
nl_stop "$SINK"
n=$(nl_jget "$TMP/r2.json" 'd["intact"]')
nl_check "1: ESP is masqueraded while the journal is stalled (r2 got $n of 100 from $NL_EXT)" \
	eval '[ "$n" -ge 95 ]'
nl_check "1: the control socket answers" eval "\"\$CTL\" -s \"\$SOCK\" ping >/dev/null"
dropped=$(sget daemon log_dropped)
echo "# log_dropped with the journal stalled: $dropped"
nl_check "2: the lines that did not fit are counted (log_dropped $dropped)" eval '[ "$dropped" -gt 0 ]'

touch "$TMP/go"
sleep 1   # the stand-in reads what is queued
# one change, three lines (the dropped count, the preload, the note): fewer
# than the queue holds, so none is dropped while the stand-in keeps up
"$CTL" -s "$SOCK" add esp --remote 198.51.100.77 --host "$NL_H3_IP" --spi-in 0x7777 >/dev/null 2>&1
for ((i = 0; i < 50; i++)); do
	grep -a -q "control: add-esp remote=198.51.100.77" "$JOUT" 2>/dev/null && break
	sleep 0.1
done
note=$(grep -a -o '^DROPPED=[0-9]*' "$JOUT" | head -n1 | cut -d= -f2)
echo "# the first dropped-lines record says DROPPED=${note:-none}"
nl_check "3: the journal is told how many lines were dropped (${note:-none} >= $dropped)" \
	eval '[ -n "$note" ] && [ "$note" -ge "$dropped" ]'
nl_check "3: a warning with its MESSAGE_ID" \
	grep -a -q '^MESSAGE_ID=1eb2a76c61ca48cd92f7d73392fa0b2b$' "$JOUT"
nl_check "3: records flow again (the add's log line reached the journal)" \
	grep -a -q '^MESSAGE=control: add-esp remote=198.51.100.77 ' "$JOUT"

nl_daemon_stop; rc=$?
nl_check "4: exit status 0 ($rc)" [ "$rc" = 0 ]
nl_capture_stop "$CAP"
n=$(nl_pcap_count "$TMP/wan.pcap" "src net $NL_LAN_NET")
nl_check "4: no LAN source on the WAN ($n)" [ "$n" = 0 ]
nl_stop "$JPID"

[ "$NL_FAILS" = 0 ] || { echo "$NL_FAILS check(s) failed"; tail -n 20 "$LOG"; exit 1; }
echo "all checks passed"

#!/bin/bash
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"; exit 77; fi
# The live demo (scripts/demo.sh, README command one) runs and tells its
# story: it is run against the binaries of this build tree (--no-build, so
# no apt-get and no build) and its output must show, in order, both hosts'
# IKE, A's ESP associated, B blocked while A holds the remote, the reload
# with parallel sessions, B associated, the remote-started rekey's guess and
# then its association, AH dropped, an expiry, the final tables, and a WAN
# capture with ESP from the external address and no LAN source.
# Exit 77 (skip) when not root or a tool is missing.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, iptables, NFQUEUE)"; exit 77; }
SRC=${top_srcdir:-$(dirname "$0")/..}
BUILD=${top_builddir:-.}
[ -x "$BUILD/ipsec-masqd" ] || { echo "SKIP: $BUILD/ipsec-masqd not built"; exit 77; }
for t in ip iptables iptables-restore tcpdump ethtool; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
done
/usr/bin/python3 -c 'import scapy.all, scapy.layers.ipsec, cryptography' 2>/dev/null ||
	{ echo "SKIP: scapy with cryptography missing for /usr/bin/python3"; exit 77; }

# Our own namespace prefix, with our PID (two build trees may run at once);
# namespaces of runs whose process is gone are stale: their processes are
# ended by PID and the namespaces removed.
P=imdemot-$$-
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^imdemot-[0-9]+-'); do
	pid=${ns#imdemot-}; pid=${pid%%-*}
	kill -0 "$pid" 2>/dev/null && continue
	for q in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$q" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
done

OUT=$(mktemp /tmp/test_demo.XXXXXX)
trap 'rm -f "$OUT"' EXIT
FAILS=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }

T0=$(date +%s)
IPSEC_MASQD_DEMO_PREFIX=$P timeout -k 10 150 bash "$SRC/scripts/demo.sh" --no-build "$BUILD" >"$OUT" 2>&1
rc=$?
secs=$(($(date +%s) - T0))
[ "$rc" = 0 ] && ok "scripts/demo.sh --no-build exits 0 (${secs} s)" || fail "scripts/demo.sh exits $rc"
[ "$secs" -le 60 ] && ok "the demo took at most 60 s ($secs)" || fail "the demo took $secs s"

A=192.168.1.11 B=192.168.1.12 R=198.51.100.20
# step WHAT ERE: ok if a line after line $LAST matches ERE, which becomes
# the new $LAST: the steps must appear in this order.
LAST=0
step() {
	local what=$1 re=$2 n
	n=$(awk -v from="$LAST" -v re="$re" 'NR > from && $0 ~ re { print NR; exit }' "$OUT")
	if [ -n "$n" ]; then
		ok "$what (line $n)"
		LAST=$n
	else
		fail "$what: no line matching /$re/ after line $LAST"
	fi
}
# The demo prints each DECISION as "TIME daemon: KIND TABLE SENTENCE" and
# its fields on the next line.
D='daemon: '
step "A's IKE_SA_INIT: isakmp entry created" "${D}created +isakmp ISAKMP exchange from $A to $R"
step "B's IKE_SA_INIT: isakmp entry created" "${D}created +isakmp ISAKMP exchange from $B to $R"
step "A's ESP init created" "${D}created +esp +ESP init from $A to $R"
step "A's ESP associated" "${D}associated +esp"
step "  ... with A's SPIs" "remote=$R host=$A spi_out=0xa0000001 spi_in=0xb0000001"
step "B blocked while A holds R (parallel sessions off)" "${D}blocked +esp +ESP from $B to $R blocked"
step "  ... held by A" "host=$B spi_out=0xa0000002 reason=esp_blocked held_by=$A"
step "the admin's reload (SIGHUP) applied" "daemon: reloaded config file "
step "B's ESP associated after the reload" "${D}associated +esp"
step "  ... with B's SPIs" "remote=$R host=$B spi_out=0xa0000002 spi_in=0xb0000002"
step "the remote-started rekey: guessed" "${D}guessed +esp"
step "  ... copies to both hosts that did IKE with R" "spi_in=0xc0000001 copies_to=($A,$B|$B,$A)$"
step "  ... then associated to A" "remote=$R host=$A spi_out=0xd0000001 spi_in=0xc0000001"
step "AH from A dropped (ah_outbound)" "${D}dropped +esp .*\\(ah_outbound\\)"
step "an entry expired within the run" "${D}expired +esp"
step "the final tables" "== the final tables"
step "  ... with B's ISAKMP entry (still live)" "($R +$B +bbbb00000000b002|isakmp remote=$R host=$B)"

line=$(grep -E "ESP packets left from 198\.51\.100\.1; [0-9]+ with a LAN source" "$OUT" | tail -n1)
esp=$(printf '%s\n' "$line" | sed -n 's/.* \([0-9][0-9]*\) ESP packets left from .*/\1/p')
leak=$(printf '%s\n' "$line" | sed -n 's/.*; \([0-9][0-9]*\) with a LAN source.*/\1/p')
[ "${esp:-0}" -ge 20 ] 2>/dev/null && ok "ESP left from the external address ($esp packets)" ||
	fail "too few ESP packets on the WAN (${esp:-none})"
[ "${leak:-x}" = 0 ] && ok "no LAN source on the WAN ($leak)" || fail "LAN sources on the WAN (${leak:-none})"
grep -q '!!' "$OUT" && fail "the demo reported a step that went wrong" || ok "no step went wrong"
[ -z "$(ip netns list 2>/dev/null | awk '{print $1}' | grep -F -- "$P")" ] &&
	ok "the demo removed its namespaces" || fail "namespaces of $P left behind"

if [ "$FAILS" != 0 ]; then
	echo "--- demo output"
	cat "$OUT"
	echo "$FAILS check(s) failed"
	exit 1
fi
echo "all passed"
exit 0

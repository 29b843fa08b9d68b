#!/bin/bash
# A namespace test: opt-in for make check (IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests).
if [ "${IPSEC_MASQD_NETNS_TESTS:-run}" = skip ]; then
	echo "SKIP: namespace tests not requested (IPSEC_MASQD_NETNS_TESTS=skip; IPSEC_MASQD_NETNS_TESTS=run or configure --enable-netns-tests runs them)"
	exit 77
fi
# The network benchmark still works (issue 6): tests/bench/net.sh --quick on
# this build (one short repetition of each case at 64 bytes, in namespaces
# prefixed imbtest-), then checks that packets went through the kernel and
# through ipsec-masqd, that each case has a sustainable rate and latency
# figures, that the daemon rewrote what it received with no verdict error,
# that beside a WAN flood the admission limit cut the flood in the kernel
# (issue 14), and that --write puts a Network section into a scratch
# BENCHMARKS.md without touching the rest. Speed is not checked. Exit 77
# when not root.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces, iptables, NFQUEUE)"; exit 77; }
src=$(cd "${top_srcdir:-$(dirname "$0")/..}" && pwd)
build=$(cd "${top_builddir:-.}" && pwd)
[ -x "$build/ipsec-masqd" ] || { echo "SKIP: $build/ipsec-masqd not built"; exit 77; }
for t in ip iptables nft taskset python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
done
[ "$(nproc)" -ge 2 ] || { echo "SKIP: the benchmark needs two CPUs"; exit 77; }

tmp=$(mktemp -d /tmp/imbtest-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

# nine cases since issue 14 (the fast path, the RPS placement, the flood
# beside a flow with and without admission): about 3 minutes on a busy
# two-core machine, so the bound leaves room
printf '# Benchmarks\n\n## Engine\n\nengine figures stay\n\n## Network\n\nold text\n\n## Later\n\nkept\n' \
	> "$tmp/BENCHMARKS.md"
IPSEC_MASQD_BENCH_PREFIX=imbtest- timeout -k 5 400 \
	bash "$src/tests/bench/net.sh" --quick --build-dir "$build" --results "$tmp/r" \
	--write "$tmp/BENCHMARKS.md" > "$tmp/out.txt" 2>&1
rc=$?
cat "$tmp/out.txt"
check "net.sh --quick exits 0 ($rc)" [ "$rc" = 0 ]
R=$tmp/r/results.txt

# field CASE KIND KEY: KEY of the first trial line of CASE and KIND.
field() {
	grep -E "^trial rep=1 case=$1 kind=$2 " "$R" 2>/dev/null | head -n1 |
		sed -n "s/.* $3=\([^ ]*\).*/\1/p"
}
gt0() { awk -v x="${1:-0}" 'BEGIN { exit !(x > 0) }'; }
for c in kernel shared own; do
	n=$(field "$c" max unique)
	check "$c: packets delivered at full speed (${n:-none})" gt0 "$n"
	s=$(sed -n "s/^result rep=1 size=64 case=$c sustainable=\([^ ]*\).*/\1/p" "$R")
	check "$c: a sustainable rate (${s:-none} pps)" gt0 "$s"
	p=$(field "$c" lat lat_p50_us)
	check "$c: latency measured at 50 % load (p50 ${p:-none} us, $(field "$c" lat lat_src))" gt0 "$p"
	check "$c: 2x and 4x trials ran" eval '[ -n "$(field "$c" x2 offered_rate)" ] && [ -n "$(field "$c" x4 offered_rate)" ]'
done
for c in shared own; do
	p=$(field kernel "lat_$c" lat_p50_us)
	check "kernel latency at the $c case's rate (p50 ${p:-none} us)" gt0 "$p"
	j=$(grep "^stats rep=1 size=64 case=$c " "$R" | sed 's/^[^{]*//')
	check "$c: the daemon rewrote packets, no verdict errors" python3 -c '
import json, sys
q = json.loads(sys.argv[1])["queue"]
sys.exit(not (q["modified"] > 0 and q["verdict_errors"] == 0 and q["received"] >= q["modified"]))' "$j"
done
# the fast path cases (issue 14): the flow is forwarded, nothing is queued,
# and the daemon counts what the kernel rewrote
for c in fast rpskernel rps rpsfast; do
	n=$(field "$c" max unique)
	check "$c: packets delivered at full speed (${n:-none})" gt0 "$n"
done
for c in fast rpsfast; do
	j=$(grep "^stats rep=1 size=64 case=$c " "$R" | sed 's/^[^{]*//')
	check "$c: nothing queued, the kernel's packets counted (fastpath section)" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(not (d["queue"]["received"] == 0 and d["fastpath"]["packets_out"] > 0
              and d["fastpath"]["entries"] == 1))' "$j"
done
# the flood beside the established flow (issue 14): the flow still gets
# through, the flood was offered, and with fastpath.admit_rate (net.sh's
# default 10000/s, burst a tenth) the daemon received no more than the limit
# lets through while the kernel dropped and counted the excess; without
# the limit nothing is dropped by it
for c in rpsflood rpsflood0; do
	n=$(field "$c" flood unique)
	check "$c: the established flow delivered beside the flood (${n:-none})" gt0 "$n"
	n=$(field "$c" flood flood_offered)
	check "$c: the flood was offered (${n:-none} packets)" gt0 "$n"
done
ad=$(field rpsflood flood flood_admit_dropped) rcv=$(field rpsflood flood flood_daemon_received)
fs=$(field rpsflood flood flood_seconds)
check "rpsflood: the admission limit dropped flood packets in the kernel (${ad:-none})" gt0 "$ad"
lim=$(awk -v s="${fs:-0}" 'BEGIN { printf "%d", 10000 * (s + 1) + 1000 }')
check "rpsflood: the daemon received at most the limit's share (${rcv:-none} <= $lim)" \
	eval '[ -n "$rcv" ] && [ "$rcv" -le "$lim" ]'
ad=$(field rpsflood0 flood flood_admit_dropped) rcv=$(field rpsflood0 flood flood_daemon_received)
n=$(field rpsflood flood flow_daemon_outbound)
check "rpsflood: the flow stayed in the kernel beside the flood (${n:-none} of its packets queued)" [ "${n:-x}" = 0 ]
check "rpsflood0: no admission limit, nothing dropped by it (${ad:-none})" [ "${ad:-x}" = 0 ]
check "rpsflood0: the daemon received flood packets (${rcv:-none})" gt0 "$rcv"
check "the report judges the flow beside the flood" \
	grep -q "verdict: RPS: fast path + WAN flood, admission limit, flow and flood at full speed: the flow kept" "$tmp/out.txt"
# a new SA beside the offloaded flow is queued (not offloaded), and gets through
n=$(field fast lat_newsa unique) q=$(field fast lat_newsa flow_daemon_outbound)
check "fast: a new SA's packets delivered (${n:-none})" gt0 "$n"
check "fast: ... through the queue (${q:-none} outbound seen by the engine)" gt0 "$q"
check "the report judges the fast path" grep -q "verdict: fast path / kernel forwarding" "$tmp/out.txt"
check "the report has the table" grep -q "sustainable rate, kpps" "$tmp/out.txt"
check "--write: one Network section, with the markers" \
	eval '[ "$(grep -c "^## Network" "$tmp/BENCHMARKS.md")" = 1 ] && grep -q "^<!-- netbench:end -->" "$tmp/BENCHMARKS.md"'
check "--write: the old Network text replaced" eval '! grep -q "old text" "$tmp/BENCHMARKS.md"'
check "--write: the other sections untouched" \
	eval 'grep -q "engine figures stay" "$tmp/BENCHMARKS.md" && grep -q "^## Later" "$tmp/BENCHMARKS.md" && grep -q "^kept" "$tmp/BENCHMARKS.md"'
cp "$tmp/BENCHMARKS.md" "$tmp/first.md"
python3 "$src/tests/bench/net_report.py" "$R" --write "$tmp/BENCHMARKS.md" >/dev/null
check "--write again: same file (the block is replaced, not added)" cmp -s "$tmp/first.md" "$tmp/BENCHMARKS.md"
if [ "$fails" != 0 ]; then
	echo "$fails check(s) failed"; cat "$tmp/BENCHMARKS.md"
	exit 1
fi
echo "all passed"

#!/bin/bash
# The network benchmark (issue 6): plain kernel forwarding against
# ipsec-masqd, in network namespaces, with a C generator and counter.
#
#   tests/bench/net.sh [--build-dir DIR] [--reps N] [--quick] [--write FILE]
#
# Run as root from anywhere in the source tree. Without --build-dir it
# installs the dependencies (scripts/deps.sh), configures and builds
# build/netbench (gcc -O2 -g); with it, it makes the binaries it needs there.
#
# Two identical topologies, one for each mode, each three namespaces over
# veth (prefix imbench-, removed first if stale and again at the end):
#
#   klan 192.168.1.11 -- 192.168.1.1 krtr 198.51.100.1 -- 198.51.100.20 krem
#   dlan 192.168.1.11 -- 192.168.1.1 drtr 198.51.100.1 -- 198.51.100.20 drem
#
# "kernel": krtr forwards (ip_forward=1) with no netfilter rules at all; it
# never had any (iptables-nft leaves its base chains, and the nat table
# conntrack, behind when rules are removed). "ipsec-masqd": drtr has the
# shipped rules loaded by the shipped helper (ipsec-masqd-firewall up, as
# tests/lib/netns.sh does) and the real daemon, with the flow preloaded
# (remote, host, in-SPI, out-SPI): what is measured is one established ESP
# flow, outbound (LAN to WAN), each packet queued in mangle POSTROUTING,
# looked up and source-rewritten by the daemon and sent on with the
# verdict. Inbound, ISAKMP and table misses are not measured here.
#
# The generator (gen.c) sends ESP from the LAN namespace with sendmmsg on an
# AF_PACKET socket, paced, pinned to the receive core; the counter (sink.c)
# reads a TPACKET_V3 ring on the remote's interface, and an nftables
# ingress rule there drops the packets once counted, so the remote spends
# little time on them. The counter, and the remote's receive work (steered
# there with RPS: veth would otherwise do it on the core that forwarded the
# packet, which a router's NIC does not), go to a core the daemon is not on
# (the other core; the receive core when the daemon has the other one):
# there they would delay the daemon, whereas delaying the generator costs
# nothing measured (the send time is taken as the packet enters the router). veth hands a packet to the peer
# namespace on the sending CPU (netif_rx), so the generator's core is also
# the core that takes the router's receive softirq. Placements:
#   shared  the daemon pinned to the receive core (the generator's)
#   own     the daemon pinned to the other core, the one that does not take
#           the receive softirq (it then also runs the forwarding that
#           follows each verdict)
#   fast    the kernel fast path (fastpath.enable): the flow's elements are
#           installed at start from the preload, the router's nftables
#           rewrites every packet and none is queued; the daemon on the
#           other core (it has nothing to do per packet)
# and, with the router's receive softirq steered by RPS (rps_cpus of its
# LAN interface) onto the other core, the generator's core then doing only
# the sending (so it can offer more than that core could forward):
#   rpskernel  kernel forwarding, forwarding on the other core
#   rps        the daemon pinned to that same core: softirq and daemon
#              share it, as on a one-core router or with NIC interrupts on
#              the daemon's core; at full offered load the softirq can
#              starve the daemon (receive livelock)
#   rpsfast    the fast path in that placement
#   rpsflood   the fast path in that placement, and beside the flow a flood
#              of ESP under an unknown SPI from the WAN (a second generator
#              in the remote namespace, on the generator's core, aimed at
#              the external address, its receive softirq steered onto the
#              daemon's core too): what the fast path cannot explain goes
#              towards the queue, and fastpath.admit_rate (--flood-admit)
#              cuts it in the kernel. Trials: flow and flood both at full
#              speed; and the flow paced at half the rpsfast case's
#              sustainable rate of the same repetition (when that case ran
#              before), the flood at full speed. Per trial: the flow's
#              delivered fraction, the flood offered, dropped by the
#              admission limit (its nft counter, read directly), received
#              by the daemon (its queue counter) and dropped at the queue.
#   rpsflood0  the same with fastpath.admit_rate = 0 (no admission limit):
#              what the limit buys
# The NFQUEUE cases run with fastpath.enable = false, the fast cases with
# true (the flow, preloaded complete, is offloaded at start).
# On a two-core machine the generator shares its core with the receive
# softirq, so it cannot offer more than that core can take in: a rate that
# holds with <= 1 % loss at the generator's maximum is reported as a lower
# bound (">="), and the 2x/4x loads then offer what the generator can.
#
# Per repetition, payload size and case, after a short warm-up: the
# sustainable rate (highest achieved offered rate with <= 1 % loss: a probe
# at full speed, then a bounded search), the delivered rate at 2x and 4x the sustainable offered
# load, and the one-way latency at 50 % of the sustainable rate (transmit
# timestamps at the LAN veth to receive timestamps at the remote's ring).
# The kernel's latency is also measured at each daemon case's 50 % rate:
# "added latency" is daemon minus kernel at the same offered rate.
# Medians of the repetitions, with min and max, are printed as a table and
# (--write FILE) written into FILE's "## Network" section, between the
# netbench markers, leaving the rest of the file alone.
#
# Options:
#   --build-dir DIR  binaries from DIR (made there if missing)
#   --reps N         repetitions (3)
#   --sizes "A B"    ESP payload sizes in bytes ("64 1400")
#   --cases "..."    any of kernel shared own fast rpskernel rps rpsfast
#                    rpsflood rpsflood0 (all of them)
#   --flood-admit N  fastpath.admit_rate of the rpsflood case (10000)
# In the fast case (after the own case), a latency trial of a new SA's
# packets (out-SPI not preloaded: a pending init, each packet queued) at the
# own case's latency rate: the queued path's latency with the fast path on.
#   --trial S        seconds per trial (2)
#   --steps N        search trials after the full-speed probe (6)
#   --lat-batch N    packets per send in the latency trials (8)
#   --cpus R,O       receive core and other core (0,1)
#   --conf-extra S   text appended to the daemon's config
#   --quick          1 rep, 64 B, 0.5 s trials, 2 search steps (options after
#                    it override these): checks the harness works, not speed
#   --write FILE     put the results into FILE's "## Network" section
#   --results DIR    keep the raw results there: trial lines, daemon
#                    stats, per-packet latencies (latency-RUN.txt)
# Exit status: 0 done; 1 a setup or run failure; 2 usage; 77 not root.

set -u
here=$(pwd)
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
cmdline="tests/bench/net.sh$([ $# = 0 ] || printf ' %q' "$@")"   # quoted: it can be run again as shown

usage() { sed -n '/^# Options:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "net.sh: $*" >&2; NL_FAILS=1; exit 1; }

BUILD= REPS=3 SIZES="64 1400" TRIAL=2 STEPS=6
CASES="kernel shared own fast rpskernel rps rpsfast rpsflood rpsflood0"
LAT_BATCH=8 CPUS=0,1 CONF_EXTRA= QUICK=0 WRITE= RESULTS= FLOOD_ADMIT=10000
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD=${2:?}; shift ;;
	--reps) REPS=${2:?}; shift ;;
	--sizes) SIZES=${2:?}; shift ;;
	--cases) CASES=${2:?}; shift ;;
	--trial) TRIAL=${2:?}; shift ;;
	--steps) STEPS=${2:?}; shift ;;
	--lat-batch) LAT_BATCH=${2:?}; shift ;;
	--cpus) CPUS=${2:?}; shift ;;
	--conf-extra) CONF_EXTRA=${2?}; shift ;;
	--flood-admit) FLOOD_ADMIT=${2:?}; shift ;;
	--quick) QUICK=1 REPS=1 SIZES=64 TRIAL=0.5 STEPS=2 ;;
	--write) WRITE=${2:?}; shift ;;
	--results) RESULTS=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
[[ "$REPS" =~ ^[1-9][0-9]*$ && "$STEPS" =~ ^[0-9]+$ && "$LAT_BATCH" =~ ^[1-9][0-9]*$ &&
   "$FLOOD_ADMIT" =~ ^[1-9][0-9]*$ ]] ||
	{ usage >&2; exit 2; }
[[ "$CPUS" =~ ^([0-9]+),([0-9]+)$ ]] || { usage >&2; exit 2; }
RX_CPU=${BASH_REMATCH[1]} OTHER_CPU=${BASH_REMATCH[2]}
for s in $SIZES; do
	[[ "$s" =~ ^[0-9]+$ ]] && [ "$s" -ge 24 ] && [ "$s" -le 1472 ] ||
		{ echo "net.sh: payload sizes are 24..1472 bytes" >&2; exit 2; }
done
for c in $CASES; do
	case $c in
	kernel | shared | own | fast | rpskernel | rps | rpsfast | rpsflood | rpsflood0) ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -n "$WRITE" ] && WRITE=$(cd "$here" && mkdir -p "$(dirname "$WRITE")" &&
	echo "$(cd "$(dirname "$WRITE")" && pwd)/$(basename "$WRITE")")
[ -n "$RESULTS" ] && RESULTS=$(cd "$here" && mkdir -p "$RESULTS" && cd "$RESULTS" && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: net.sh needs root (network namespaces, iptables, NFQUEUE)"
	exit 77
fi
[ "$(nproc)" -gt "$OTHER_CPU" ] && [ "$(nproc)" -gt "$RX_CPU" ] ||
	die "CPUs $CPUS: this machine has $(nproc)"
[ "$RX_CPU" != "$OTHER_CPU" ] || die "--cpus: two different cores"

# ---------------------------------------------------------------- build
if [ -z "$BUILD" ]; then
	sh scripts/deps.sh || exit 1
	[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || die "autoreconf failed"
	mkdir -p build/netbench
	(cd build/netbench &&
	 { [ -f Makefile ] || "$top/configure" -q CFLAGS="-O2 -g"; }) || die "configure failed"
	BUILD=$top/build/netbench
else
	BUILD=$(cd "$here" && cd "$BUILD" && pwd) || die "no build directory $BUILD"
fi
make -s -C "$BUILD" -j2 ipsec-masqd ipsec-masqctl tests/bench/gen tests/bench/sink \
	>/dev/null || die "make in $BUILD failed"
GEN=$BUILD/tests/bench/gen SINK=$BUILD/tests/bench/sink
DAEMON=$BUILD/ipsec-masqd CTL=$BUILD/ipsec-masqctl
for t in ip iptables iptables-restore nft taskset python3; do
	command -v "$t" >/dev/null 2>&1 || die "$t not installed (scripts/deps.sh installs it)"
done

# ---------------------------------------------------------------- namespaces
NL_PREFIX=${IPSEC_MASQD_BENCH_PREFIX:-imbench-}
IPSEC_MASQD=$DAEMON top_srcdir=$top
. "$top/tests/lib/netns.sh" || die "cannot source tests/lib/netns.sh"
NL_BIN=$DAEMON NL_SRC=$top
ip netns add "${NL_PREFIX}probe" 2>/dev/null && ip netns del "${NL_PREFIX}probe" ||
	die "cannot create network namespaces here"
nl_remove_namespaces
trap nl_cleanup EXIT
trap 'exit 1' INT TERM
NL_TMP=$(mktemp -d "/tmp/${NL_PREFIX}XXXXXX")
TMP=$NL_TMP
R=${RESULTS:-$TMP}
OUT=$R/results.txt
: > "$OUT"

LAN_IP=192.168.1.11 RTR_LAN=192.168.1.1 EXT=198.51.100.1 REM_IP=198.51.100.20
SPI_OUT=0xbe000001 SPI_IN=0xbf000001
SPI_FLOOD=0xbd000001   # no association has it: the flood's packets miss
SPI_NEW=0xbc000001     # a new SA's out-SPI: not preloaded, so queued

# topo M: namespaces ${NL_PREFIX}M{lan,rtr,rem} (M: k or d), linked and
# addressed; the remote drops ESP at ingress, after the counter's tap.
topo() {
	local m=$1 lan=${NL_PREFIX}$1lan rtr=${NL_PREFIX}$1rtr rem=${NL_PREFIX}$1rem mac
	for ns in "$lan" "$rtr" "$rem"; do nl_ns_add "$ns" || return 1; done
	ip link add eth0 netns "$lan" type veth peer name lan0 netns "$rtr" || return 1
	ip link add wan0 netns "$rtr" type veth peer name eth0 netns "$rem" || return 1
	nl_in "$lan" ip addr add "$LAN_IP/24" dev eth0 && nl_in "$lan" ip link set eth0 up &&
	nl_in "$lan" ip route add default via "$RTR_LAN" &&
	nl_in "$rtr" ip addr add "$RTR_LAN/24" dev lan0 && nl_in "$rtr" ip link set lan0 up &&
	nl_in "$rtr" ip addr add "$EXT/24" dev wan0 && nl_in "$rtr" ip link set wan0 up &&
	nl_in "$rem" ip addr add "$REM_IP/24" dev eth0 && nl_in "$rem" ip link set eth0 up &&
	nl_in "$rtr" sysctl -qw net.ipv4.ip_forward=1 || return 1
	# no neighbour resolution in the middle of a trial
	mac=$(nl_in "$rem" cat /sys/class/net/eth0/address) &&
	nl_in "$rtr" ip neigh replace "$REM_IP" lladdr "$mac" dev wan0 nud permanent || return 1
	mac=$(nl_in "$lan" cat /sys/class/net/eth0/address) &&
	nl_in "$rtr" ip neigh replace "$LAN_IP" lladdr "$mac" dev lan0 nud permanent || return 1
	nl_in "$rem" nft -f - <<-EOF || return 1
	table netdev imbench {
		chain in {
			type filter hook ingress device "eth0" priority 0; policy accept;
			ip protocol esp drop
		}
	}
	EOF
	eval "RTR_MAC_$m=\$(nl_in \"\$rtr\" cat /sys/class/net/lan0/address)"
	eval "RTR_WAN_MAC_$m=\$(nl_in \"\$rtr\" cat /sys/class/net/wan0/address)"
}
topo k || die "cannot build the kernel topology"
topo d || die "cannot build the daemon topology"

CONF=$TMP/bench.conf
cat > "$CONF" <<EOF
# ipsec-masqd network benchmark: one preloaded flow
queue = 0;
external = { address = "$EXT"; };
internal = [ "192.168.1.0/24" ];
control = { socket = "$TMP/control"; };
log = { level = "notice"; };
preload = ( { remote = "$REM_IP"; host = "$LAN_IP"; spi_in = $SPI_IN; spi_out = $SPI_OUT; } );
$CONF_EXTRA
EOF
# the same with the fast path on, for the fast cases, and with its
# admission limit for the flood (the counters read every 0.2 s there, so
# that the stats after a trial are the trial's)
CONF_FP=$TMP/bench-fast.conf CONF_FLOOD=$TMP/bench-flood.conf CONF_FLOOD0=$TMP/bench-flood0.conf
sed 's/^# ipsec-masqd network benchmark: one preloaded flow$/&, fast path/' "$CONF" > "$CONF_FP"
cp "$CONF_FP" "$CONF_FLOOD"
cp "$CONF_FP" "$CONF_FLOOD0"
echo 'fastpath = { enable = true; };' >> "$CONF_FP"
echo "fastpath = { enable = true; poll = 0.2; admit_rate = $FLOOD_ADMIT; };" >> "$CONF_FLOOD"
echo 'fastpath = { enable = true; poll = 0.2; admit_rate = 0; };' >> "$CONF_FLOOD0"
echo 'fastpath = { enable = false; };' >> "$CONF"
for f in "$CONF" "$CONF_FP" "$CONF_FLOOD" "$CONF_FLOOD0"; do
	"$DAEMON" -t -c "$f" >/dev/null || die "the daemon refuses $f"
done
NL_RTR=${NL_PREFIX}drtr
nl_rules "$CONF" >/dev/null || die "cannot load the rules"

# ---------------------------------------------------------------- machine
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
virt=$(systemd-detect-virt 2>/dev/null || true)
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$top" diff --quiet HEAD -- src include 2>/dev/null || commit="$commit+changes"
cc_ver=$(sed -n 's/^CC=.\(.*\).$/\1/p' "$BUILD/config.log" 2>/dev/null | head -n1)
cc_ver="$(${cc_ver:-cc} --version 2>/dev/null | head -n1)"
cflags=$(sed -n "s/^CFLAGS='\(.*\)'$/\1/p" "$BUILD/config.log" 2>/dev/null | head -n1)
{
	echo "meta date=$(date -u +%Y-%m-%d) time=$(date -u +%H:%M:%SZ)"
	echo "meta nproc=$(nproc)"
	echo "meta cpu=$cpu_model"
	echo "meta kernel=$(uname -r)"
	echo "meta mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "meta virt=${virt:-none}"
	echo "meta commit=$commit"
	echo "meta compiler=$cc_ver"
	echo "meta cflags=$cflags"
	echo "meta command=$cmdline"
	echo "meta reps=$REPS trial=$TRIAL steps=$STEPS lat_batch=$LAT_BATCH cpus=$CPUS quick=$QUICK flood_admit=$FLOOD_ADMIT"
	[ -n "$CONF_EXTRA" ] && echo "meta conf_extra=$CONF_EXTRA"
	echo "meta load=$(cut -d' ' -f1-3 /proc/loadavg)"
} >> "$OUT"

# ---------------------------------------------------------------- trials
RUN=0
# kv KEY LINE: the value of KEY=... in a key=value line (empty if absent).
kv() { sed -n "s/.*\(^\| \)$1=\([^ ]*\).*/\2/p" <<<"$2"; }
# calc EXPR: awk arithmetic, printed as a number.
calc() { awk "BEGIN { printf \"%.10g\", $1 }"; }

# nfq_counters NS: "dropped user_dropped" of queue 0 in NS (0 0 if none).
nfq_counters() {
	nl_in "$1" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null |
		awk '$1 == 0 { d = $6; u = $7 } END { print d + 0, u + 0 }'
}
# backlog_drops: netif_rx backlog drops, all CPUs (machine-wide).
backlog_drops() {
	local a b rest s=0
	while read -r a b rest; do s=$((s + 16#$b)); done < /proc/net/softnet_stat
	echo $s
}

# rem_rps MODE CPU: the remote's receive processing on CPU.
rem_rps() {
	nl_in "${NL_PREFIX}$1rem" sh -c "echo $(printf %x $((1 << $2))) > /sys/class/net/eth0/queues/rx-0/rps_cpus"
}

# rtr_rps MODE CPU|-: the router's receive processing of its LAN interface
# on CPU (RPS), or where veth puts it (the sending core) with "-".
rtr_rps() {
	local mask=0
	[ "$2" = - ] || mask=$(printf %x $((1 << $2)))
	nl_in "${NL_PREFIX}$1rtr" sh -c "echo $mask > /sys/class/net/lan0/queues/rx-0/rps_cpus"
}

# rtr_rps_wan MODE CPU|-: the same for the router's WAN interface (where
# the flood comes in).
rtr_rps_wan() {
	local mask=0
	[ "$2" = - ] || mask=$(printf %x $((1 << $2)))
	nl_in "${NL_PREFIX}$1rtr" sh -c "echo $mask > /sys/class/net/wan0/queues/rx-0/rps_cpus"
}

# admit_dropped: packets the fast path's admission limit dropped so far
# (its nft counter in the router, read directly: 0 if there is none).
admit_dropped() {
	nl_in "${NL_PREFIX}drtr" nft list counter ip ipsec_masqd_fast admit_dropped 2>/dev/null |
		sed -n 's/.*packets \([0-9]*\).*/\1/p' | head -n1 | grep . || echo 0
}

# daemon_queue: "received inbound outbound" of the daemon's stats (what
# reached it through the queue; inbound and outbound packets the engine
# saw: outbound ones beside the flood would be the flow, fallen out of the
# fast path).
daemon_queue() {
	nl_in "${NL_PREFIX}drtr" "$CTL" -s "$TMP/control" stats --json 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
    print(d["queue"]["received"], d["packets"]["inbound"], d["packets"]["outbound"])
except Exception:
    print("? ? ?")'
}

# trial MODE SIZE RATE BATCH LATENCY: one run of the generator against the
# counter; MODE k or d. Sets T (the joined key=value line), T_OFF (achieved
# offered pps), T_DEL (delivered pps: what reached the remote, the
# counter's own ring drops included, since the router did deliver those),
# T_LOSS (the router's loss: offered minus delivered, over offered), and
# appends the line, tagged with $TAG, to the results. With FLOOD_RATE set
# (d only): a second generator floods the router's external address from
# the remote's namespace with ESP under SPI_FLOOD at that rate (0: full
# speed), on the generator's core, from just before the flow to just after
# it; its figures go into the line prefixed flood_, with the admission
# drops (nft) and what the daemon received meanwhile.
trial() {
	local m=$1 size=$2 rate=$3 batch=$4 lat=$5 sink_pid g s lat_args=() gen_args=()
	local nfq0 nfq1 bl0 bl1 mac fpid= fl= ad0 ad1 dq0 dq1
	RUN=$((RUN + 1))
	rm -f "$TMP/ready" "$TMP/tx"
	if [ "$lat" = 1 ]; then
		lat_args=(--latency --txstamp "$TMP/tx" --lat-skip "$(calc "int($rate * $TRIAL / 10)")")
		[ -n "$RESULTS" ] && lat_args+=(--dump "$R/latency-$RUN.txt")
		gen_args=(--txstamp "$TMP/tx")
	fi
	nl_spawn "${NL_PREFIX}${m}rem" "$SINK" --dev eth0 --spi "${FLOW_SPI:-$SPI_OUT}" --run "$RUN" \
		--cpu "$SINK_CPU" --ready "$TMP/ready" "${lat_args[@]}" \
		>"$TMP/sink.out" 2>"$TMP/sink.err"
	sink_pid=$NL_LAST
	nl_wait_log ready 100 "$TMP/ready" || { cat "$TMP/sink.err" >&2; return 1; }
	nfq0=$(nfq_counters "${NL_PREFIX}${m}rtr") bl0=$(backlog_drops)
	eval "mac=\$RTR_MAC_$m"
	[ -n "${FLOOD_RATE:-}${COUNT_QUEUE:-}" ] && dq0=$(daemon_queue)
	if [ -n "${FLOOD_RATE:-}" ]; then
		ad0=$(admit_dropped)
		eval "fl=\$RTR_WAN_MAC_$m"
		nl_spawn "${NL_PREFIX}${m}rem" timeout -k 2 "$(calc "$TRIAL + 30")" "$GEN" --dev eth0 \
			--dmac "$fl" --src "$REM_IP" --dst "$EXT" --spi "$SPI_FLOOD" --size "$size" \
			--rate "$FLOOD_RATE" --duration "$(calc "$TRIAL + 0.4")" --batch 32 \
			--cpu "$RX_CPU" --run "$RUN" >"$TMP/flood.out" 2>"$TMP/flood.err"
		fpid=$NL_LAST
		sleep 0.2                # the flood is on before the flow starts
	fi
	g=$(nl_in "${NL_PREFIX}${m}lan" timeout -k 2 "$(calc "$TRIAL + 30")" "$GEN" --dev eth0 \
		--dmac "$mac" --src "$LAN_IP" --dst "$REM_IP" --spi "${FLOW_SPI:-$SPI_OUT}" --size "$size" \
		--rate "$rate" --duration "$TRIAL" --batch "$batch" --cpu "$RX_CPU" --run "$RUN" \
		"${gen_args[@]}" 2>"$TMP/gen.err") ||
		{ cat "$TMP/gen.err" >&2; nl_stop "$sink_pid"; [ -z "$fpid" ] || nl_stop "$fpid"; return 1; }
	if [ -n "$fpid" ]; then
		nl_wait_pid "$fpid" 30 || { cat "$TMP/flood.err" >&2; nl_stop "$sink_pid"; return 1; }
		fl=$(cat "$TMP/flood.out")
	fi
	sleep 0.3                        # what is queued drains
	kill -INT "$sink_pid"
	nl_wait_pid "$sink_pid" 20 || { cat "$TMP/sink.err" >&2; return 1; }
	s=$(cat "$TMP/sink.out")
	nfq1=$(nfq_counters "${NL_PREFIX}${m}rtr") bl1=$(backlog_drops)
	local offered secs unique ring delivered
	offered=$(kv offered "$g") secs=$(kv seconds "$g") unique=$(kv unique "$s")
	ring=$(kv ring_drops "$s")
	[ -n "$offered" ] && [ -n "$unique" ] && [ "$offered" -gt 0 ] ||
		{ echo "net.sh: no result from the trial: gen: $g; sink: $s" >&2; return 1; }
	# the counter's ring drops passed its filter (our SPI): the router
	# delivered them; never more than offered (a late packet of another run)
	delivered=$(calc "($unique + ${ring:-0} > $offered) ? $offered : $unique + ${ring:-0}")
	T_OFF=$(calc "$offered / $secs")
	T_DEL=$(calc "$delivered / $secs")
	T_LOSS=$(calc "($offered - $delivered) / $offered")
	T="$TAG mode=$m run=$RUN size=$size target=$rate offered_rate=$T_OFF delivered_rate=$T_DEL loss=$T_LOSS"
	T="$T counted_rate=$(calc "$unique / $secs")"
	T="$T nfq_dropped=$(( ${nfq1% *} - ${nfq0% *} )) nfq_user_dropped=$(( ${nfq1#* } - ${nfq0#* } ))"
	T="$T backlog_drops=$((bl1 - bl0))"
	if [ -n "$fpid" ]; then
		ad1=$(admit_dropped)
		T="$T flood_offered=$(kv offered "$fl") flood_seconds=$(kv seconds "$fl")"
		T="$T flood_offered_rate=$(kv rate "$fl") flood_enobufs=$(kv enobufs "$fl")"
		T="$T flood_admit_dropped=$((ad1 - ad0))"
	fi
	if [ -n "${FLOOD_RATE:-}${COUNT_QUEUE:-}" ]; then
		dq1=$(daemon_queue)
		read -r -a dq0 <<<"$dq0"
		read -r -a dq1 <<<"$dq1"
		if [ "${dq0[0]}" != "?" ] && [ "${dq1[0]}" != "?" ]; then
			T="$T flood_daemon_received=$((dq1[0] - dq0[0]))"
			T="$T flood_daemon_inbound=$((dq1[1] - dq0[1])) flow_daemon_outbound=$((dq1[2] - dq0[2]))"
		fi
	fi
	T="$T gen: $g sink: $s"
	echo "trial $T" >> "$OUT"
	return 0
}

pct() { calc "$1 * 100"; }
show() {   # one line per trial on stdout
	printf '    %-8s target %8s  offered %8.0f  delivered %8.0f pps  loss %6.2f%%%s\n' \
		"$1" "$([ "$2" = 0 ] && echo max || echo "$2")" "$T_OFF" "$T_DEL" "$(pct "$T_LOSS")" \
		"$(lat=$(kv lat_p50_us "$T"); [ -n "$lat" ] &&
		   echo "  latency p50/p99/p99.9 $lat/$(kv lat_p99_us "$T")/$(kv lat_p999_us "$T") us")"
}

# pass: the last trial offered what was asked (3 %) and lost <= 1 %.
pass() {
	awk -v o="$T_OFF" -v t="$1" -v l="$T_LOSS" 'BEGIN { exit !(l <= 0.01 && (t == 0 || o >= 0.97 * t)) }'
}

# measure MODE CASE SIZE: search, overload, latency; sets SUST.
measure() {
	local m=$1 c=$2 size=$3 lo=0 hi r i bound=search g_max trial_s=$TRIAL
	# warm-up at full speed (caches, the daemon's buffers), not reported
	TAG="rep=$rep case=$c kind=warmup" TRIAL=$(calc "($TRIAL < 1) ? $TRIAL : 1")
	trial "$m" "$size" 0 32 0 || return 1
	TRIAL=$trial_s
	TAG="rep=$rep case=$c kind=max"
	trial "$m" "$size" 0 32 0 || return 1; show max 0
	g_max=$T_OFF
	if pass 0; then
		lo=$T_OFF bound=generator
	else
		hi=$T_OFF
		r=$(calc "int($T_DEL * 0.98)")
		[ "$r" -ge 1000 ] || r=1000
		for ((i = 0; i < STEPS; i++)); do
			TAG="rep=$rep case=$c kind=search"
			trial "$m" "$size" "$r" 32 0 || return 1; show search "$r"
			if pass "$r"; then
				lo=$(calc "($T_OFF > $lo) ? $T_OFF : $lo")
			else
				hi=$r
			fi
			awk -v l="$lo" -v h="$hi" 'BEGIN { exit !((h - l) / h < 0.02) }' && break
			if awk -v l="$lo" 'BEGIN { exit !(l == 0) }'; then
				r=$(calc "int($hi * 0.7)")
				[ "$r" -ge 1000 ] || r=1000
			else
				r=$(calc "int(($lo + $hi) / 2)")
			fi
		done
		# nothing held yet: halve until something does (bounded)
		for ((i = 0; i < 8; i++)); do
			awk -v l="$lo" 'BEGIN { exit !(l == 0) }' || break
			r=$(calc "int($hi / 2)")
			[ "$r" -ge 1000 ] || break
			TAG="rep=$rep case=$c kind=search"
			trial "$m" "$size" "$r" 32 0 || return 1; show search "$r"
			if pass "$r"; then lo=$T_OFF; else hi=$r; fi
		done
	fi
	SUST=$lo
	# fail: the lowest offered rate that lost more than 1 % (none when the
	# generator's maximum held): the sustainable rate lies in [SUST, fail)
	echo "result rep=$rep size=$size case=$c sustainable=$SUST bound=$bound gen_max=$g_max fail=${hi:-none}" >> "$OUT"
	echo "    -> sustainable $(calc "int($SUST)") pps ($bound)"
	if awk -v s="$SUST" 'BEGIN { exit !(s > 0) }'; then
		for x in 2 4; do
			TAG="rep=$rep case=$c kind=x$x"
			trial "$m" "$size" "$(calc "int($SUST * $x)")" 32 0 || return 1
			show "${x}x" "$(calc "int($SUST * $x)")"
		done
		TAG="rep=$rep case=$c kind=lat"
		trial "$m" "$size" "$(calc "int($SUST / 2)")" "$LAT_BATCH" 1 || return 1
		show "lat 50%" "$(calc "int($SUST / 2)")"
	fi
	return 0
}

# flood_measure CASE SIZE: the established flow beside a WAN flood (the
# rpsflood cases): a warm-up, then the flow and the flood both at full
# speed, then (when the rpsfast case of this repetition gave a rate) the
# flow at half that rate with the flood at full speed. SUST is left 0: no
# search here.
flood_measure() {
	local c=$1 size=$2 trial_s=$TRIAL half=${HALF[rpsfast]:-0}
	SUST=0
	TAG="rep=$rep case=$c kind=warmup" TRIAL=$(calc "($TRIAL < 1) ? $TRIAL : 1")
	FLOOD_RATE=0 trial d "$size" 0 32 0 || return 1
	TRIAL=$trial_s
	TAG="rep=$rep case=$c kind=flood"
	FLOOD_RATE=0 trial d "$size" 0 32 0 || return 1; show_flood max 0
	if [ "$half" -gt 0 ]; then
		TAG="rep=$rep case=$c kind=flood_half"
		FLOOD_RATE=0 trial d "$size" "$half" 32 0 || return 1; show_flood "50% fast" "$half"
	fi
	echo "result rep=$rep size=$size case=$c sustainable=0 bound=none gen_max=0 flood=1" >> "$OUT"
	return 0
}

# show_flood LABEL RATE: one line per flood trial on stdout.
show_flood() {
	show "$1" "$2"
	printf '      flood offered %8.0f pps: admission dropped %s, the daemon received %s\n' \
		"$(kv flood_offered_rate "$T")" "$(kv flood_admit_dropped "$T")" \
		"$(kv flood_daemon_received "$T")"
}

# daemon_run CASE SIZE CPU: a fresh daemon pinned to CPU, measure, stats.
daemon_run() {
	local c=$1 size=$2 cpu=$3 i rc=0 conf=$CONF
	case $c in
	fast | rpsfast) conf=$CONF_FP ;;
	rpsflood) conf=$CONF_FLOOD ;;
	rpsflood0) conf=$CONF_FLOOD0 ;;
	esac
	rem_rps d "$SINK_CPU" || return 1
	case $c in rps*) rtr_rps d "$cpu" ;; *) rtr_rps d - ;; esac || return 1
	case $c in rpsflood*) rtr_rps_wan d "$cpu" ;; *) rtr_rps_wan d - ;; esac || return 1
	# not through nl_in: $! must be the daemon (ip and taskset exec it)
	ip netns exec "${NL_PREFIX}drtr" taskset -c "$cpu" "$DAEMON" -c "$conf" -u root >>"$TMP/daemon.log" 2>&1 &
	NL_DPID=$!
	for i in $(seq 50); do
		nl_in "${NL_PREFIX}drtr" "$CTL" -s "$TMP/control" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	[ "$i" -lt 50 ] || { cat "$TMP/daemon.log" >&2; return 1; }
	case $c in
	rpsflood*) flood_measure "$c" "$size" || rc=1 ;;
	*) measure d "$c" "$size" || rc=1 ;;
	esac
	{
		printf 'stats rep=%s size=%s case=%s json=' "$rep" "$size" "$c"
		nl_in "${NL_PREFIX}drtr" "$CTL" -s "$TMP/control" stats --json | tr -d '\n'
		echo
		printf 'nfqueue rep=%s size=%s case=%s line=%s\n' "$rep" "$size" "$c" \
			"$(nl_in "${NL_PREFIX}drtr" cat /proc/net/netfilter/nfnetlink_queue | tr ' ' '_' | tr '\n' ';')"
	} >> "$OUT"
	# the fast case, after its counters were taken: a new SA's packets (an
	# out-SPI nobody preloaded, so a pending init, every packet queued)
	# beside the offloaded flow, at the rate of the own-core case's latency
	# trial (same placement: the daemon on the other core), for its latency
	if [ "$c" = fast ] && [ "$rc" = 0 ] && [ "${HALF[own]:-0}" -gt 0 ]; then
		TAG="rep=$rep case=$c kind=lat_newsa"
		FLOW_SPI=$SPI_NEW COUNT_QUEUE=1 trial d "$size" "${HALF[own]}" "$LAT_BATCH" 1 || rc=1
		[ "$rc" = 0 ] && show "new SA" "${HALF[own]}"
	fi
	nl_daemon_stop || { echo "net.sh: the daemon did not exit cleanly" >&2; rc=1; }
	return $rc
}

T0=$(date +%s)
echo "network benchmark: $REPS rep(s), payloads $SIZES, cases $CASES, $TRIAL s trials, cores rx=$RX_CPU other=$OTHER_CPU"
echo "raw results: $OUT"
for ((rep = 1; rep <= REPS; rep++)); do
	for size in $SIZES; do
		declare -A HALF=()
		for c in $CASES; do
			case $c in kernel | rpskernel) continue ;; esac
			cpu=$RX_CPU SINK_CPU=$OTHER_CPU
			case $c in own | fast | rps*) cpu=$OTHER_CPU SINK_CPU=$RX_CPU ;; esac
			echo "rep $rep, ${size} B, ipsec-masqd, $c core (daemon on CPU $cpu)"
			daemon_run "$c" "$size" "$cpu" || die "ipsec-masqd $c run failed (logs in $TMP)"
			HALF[$c]=$(calc "int($SUST / 2)")
		done
		for c in $CASES; do
			case $c in kernel | rpskernel) ;; *) continue ;; esac
			echo "rep $rep, ${size} B, kernel forwarding ($c)"
			SINK_CPU=$OTHER_CPU
			if [ "$c" = rpskernel ]; then
				SINK_CPU=$RX_CPU
				rtr_rps k "$OTHER_CPU" || die "cannot set RPS in the router"
			else
				rtr_rps k - || die "cannot set RPS in the router"
			fi
			rem_rps k "$SINK_CPU" || die "cannot set RPS in the remote"
			measure k "$c" "$size" || die "kernel run failed"
			for d in "${!HALF[@]}"; do
				[ "${HALF[$d]}" -gt 0 ] || continue
				# each daemon case's latency against the kernel of its placement
				case $c:$d in kernel:rps* | rpskernel:shared | rpskernel:own | rpskernel:fast) continue ;; esac
				TAG="rep=$rep case=$c kind=lat_$d"
				trial k "$size" "${HALF[$d]}" "$LAT_BATCH" 1 || die "kernel latency trial failed"
				show "lat@$d" "${HALF[$d]}"
			done
		done
	done
done
echo "meta seconds=$(($(date +%s) - T0)) load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT"

# without --results the raw results go with the namespaces: markdown on stdout
python3 "$top/tests/bench/net_report.py" "$OUT" ${WRITE:+--write "$WRITE"} \
	$([ -n "$RESULTS" ] || echo --markdown) || die "report failed"
exit 0

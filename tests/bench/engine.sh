#!/bin/bash
# The engine benchmark (issue 6): the engine alone, no I/O, with 1k, 100k
# and 1M live established ESP entries.
#
#   tests/bench/engine.sh [--build-dir DIR] [--sizes "N..."] [--reps N]
#                         [--packets N] [--count N] [--quick] [--write FILE]
#
# Run from anywhere in the source tree; no root needed. Without --build-dir
# it configures and builds build/enginebench (gcc -O2 -g); with it, it makes
# tests/bench/engine_bench there.
#
# For each size, tests/bench/engine_bench (see its head comment) makes the
# entries through the real packet path and reports:
#   - memory: VmRSS growth per entry (what the process really paid: entries,
#     their share of the hash buckets, hosts and remotes, allocator
#     overhead), the bytes the engine allocated per entry (pool chunks and
#     bucket arrays, touched or not), and the size of one ESP entry;
#   - ns per packet: outbound and inbound packets of established flows to
#     entries drawn at random among all of them, and one hot flow (out and
#     in alternately); --packets packets per run, --reps runs, each a
#     process of its own, in rounds over the sizes (so a noisy neighbour
#     spreads over all of them): median, min and max;
#   - instructions per packet: callgrind (--toggle-collect=engine_process,
#     so only the engine counts) on engine_bench running --count and then
#     2 x --count packets of a case; the difference divided by --count
#     removes the set-up. --reps runs with different random draws; median,
#     min, max. Skipped when valgrind is not installed.
# A table goes to stdout; --write FILE puts it into FILE's "## Engine"
# section between the enginebench markers, leaving the rest alone.
#
# Options:
#   --build-dir DIR  engine_bench from DIR (made there if missing)
#   --sizes "A B"    live ESP entries ("1000 100000 1000000")
#   --reps N         repetitions (3)
#   --packets N      packets per timed repetition (2000000)
#   --count N        packets per callgrind run (200000)
#   --quick          --sizes 1000 --packets 20000 --count 2000 (options
#                    after it override these): checks the bench works, not
#                    speed
#   --write FILE     put the results into FILE's "## Engine" section
# Exit status: 0 done; 1 a build or run failure (or no figures); 2 usage.

set -u
here=$(pwd)
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
cmdline="tests/bench/engine.sh${*:+ $*}"

usage() { sed -n '/^# Options:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "engine.sh: $*" >&2; exit 1; }

BUILD= SIZES="1000 100000 1000000" REPS=3 PACKETS=2000000 COUNT=200000 WRITE=
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) BUILD=${2:?}; shift ;;
	--sizes) SIZES=${2:?}; shift ;;
	--reps) REPS=${2:?}; shift ;;
	--packets) PACKETS=${2:?}; shift ;;
	--count) COUNT=${2:?}; shift ;;
	--quick) SIZES=1000 PACKETS=20000 COUNT=2000 ;;
	--write) WRITE=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
for v in $SIZES $REPS $PACKETS $COUNT; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || { usage >&2; exit 2; }
done
[ "$REPS" -le 64 ] || { echo "engine.sh: at most 64 repetitions" >&2; exit 2; }
[ -n "$WRITE" ] && WRITE=$(cd "$here" && mkdir -p "$(dirname "$WRITE")" &&
	echo "$(cd "$(dirname "$WRITE")" && pwd)/$(basename "$WRITE")")

# ---------------------------------------------------------------- build
if [ -z "$BUILD" ]; then
	[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || die "autoreconf failed"
	mkdir -p build/enginebench
	(cd build/enginebench &&
	 { [ -f Makefile ] || "$top/configure" -q CFLAGS="-O2 -g"; }) || die "configure failed"
	BUILD=$top/build/enginebench
else
	BUILD=$(cd "$here" && cd "$BUILD" && pwd) || die "no build directory $BUILD"
fi
make -s -C "$BUILD" -j2 tests/bench/engine_bench >/dev/null || die "make failed"
BENCH=$BUILD/tests/bench/engine_bench

tmp=$(mktemp -d /tmp/enginebench-XXXXXX) || die "mktemp"
trap 'rm -rf "$tmp"' EXIT

have_valgrind=0
command -v valgrind >/dev/null 2>&1 && have_valgrind=1

# stats "v1 v2 ...": "median min max" (median of an even count: the mean of
# the middle two)
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
		      printf "%s %s %s\n", m, v[1], v[NR] }'
}

# field FILE KEY N: the Nth word after KEY on the line starting with KEY
field() { awk -v k="$1" -v n="$2" '$1 == k { print $(n + 1); exit }' "$3"; }

# Ir collected in a callgrind output file (the "summary:" or "totals:" line)
ir_of() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# instructions N CASE SEED: engine_process instructions per packet
instructions() {
	local n=$1 c=$2 seed=$3 ir1 ir2 start=--instr-atstart=yes k
	# the set-up runs uninstrumented when engine_bench can start
	# instrumentation itself
	grep -q '^callgrind_start yes' "$tmp/run-$n.txt" && start=--instr-atstart=no
	for k in 1 2; do
		valgrind --tool=callgrind "$start" --toggle-collect=engine_process \
			--callgrind-out-file="$tmp/cg-$k.out" \
			"$BENCH" -n "$n" -S "$seed" -c "$c" -m $((COUNT * k)) \
			>"$tmp/cg-$k.txt" 2>"$tmp/cg-$k.err" ||
			{ cat "$tmp/cg-$k.err" >&2; return 1; }
	done
	ir1=$(ir_of "$tmp/cg-1.out") ir2=$(ir_of "$tmp/cg-2.out")
	[ -n "$ir1" ] && [ -n "$ir2" ] && [ "$ir2" -gt "$ir1" ] || return 1
	awk -v a="$ir1" -v b="$ir2" -v m="$COUNT" 'BEGIN { printf "%.1f\n", (b - a) / m }'
}

CASES="out_random in_random hot_flow"
declare -A R
for r in $(seq 1 "$REPS"); do
	for n in $SIZES; do
		echo "engine.sh: round $r of $REPS: $n entries" >&2
		"$BENCH" -n "$n" -p "$PACKETS" -r 1 >"$tmp/run-$n-$r.txt" ||
			die "engine_bench -n $n failed"
	done
done
for n in $SIZES; do
	# memory: the first run's (the same set-up every time)
	cp "$tmp/run-$n-1.txt" "$tmp/run-$n.txt"
	R[$n,slot]=$(field esp_entry_bytes 1 "$tmp/run-$n.txt")
	R[$n,rss]=$(field rss_bytes_per_entry 1 "$tmp/run-$n.txt")
	R[$n,alloc]=$(field alloc_bytes_per_entry 1 "$tmp/run-$n.txt")
	R[$n,remotes]=$(field remotes 1 "$tmp/run-$n.txt")
	R[$n,hosts]=$(field hosts 1 "$tmp/run-$n.txt")
	for k in slot rss alloc; do
		[ -n "${R[$n,$k]}" ] || die "no $k figure with $n entries"
	done
	for c in $CASES; do
		vals=()
		for r in $(seq 1 "$REPS"); do
			v=$(awk -v c="$c" '$1 == "ns_per_packet" && $2 == c {
				print $4; exit }' "$tmp/run-$n-$r.txt")
			[ -n "$v" ] || die "no ns figure for $c with $n entries"
			vals+=("$v")
		done
		R[$n,ns,$c]=$(stats "${vals[@]}")
	done
done
for n in $SIZES; do
	[ "$have_valgrind" = 1 ] || continue
	echo "engine.sh: $n entries: instructions per packet (callgrind)" >&2
	for c in $CASES; do
		vals=()
		for seed in $(seq 1 "$REPS"); do
			v=$(instructions "$n" "$c" "$seed") ||
				die "callgrind run of $c with $n entries failed"
			vals+=("$v")
		done
		R[$n,ir,$c]=$(stats "${vals[@]}")
	done
done

# ---------------------------------------------------------------- report
fmt3() {   # "median min max" -> "median (min–max)"
	[ -n "${1:-}" ] || { echo "n/a"; return; }
	set -- $1
	echo "$1 ($2–$3)"
}

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cc=$(sed -n 's/^CC = //p' "$BUILD/Makefile" | head -1)
ccv=$($cc --version 2>/dev/null | head -1)
cflags=$(sed -n 's/^CFLAGS = //p' "$BUILD/Makefile" | head -1)
commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$top" status --porcelain -- src include 2>/dev/null | head -1)
[ -n "$dirty" ] && commit="$commit (engine sources modified)"

{
	echo "Command: \`$cmdline\`"
	echo
	echo "Machine: $(nproc) CPUs, $cpu; $(uname -sr); $ccv, CFLAGS $cflags;" \
		"commit $commit; $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo
	printf '| live established ESP entries |'
	for n in $SIZES; do printf ' %s |' "$n"; done
	printf '\n|---|'
	for n in $SIZES; do printf -- '---:|'; done
	printf '\n| remotes / LAN hosts |'
	for n in $SIZES; do printf ' %s / %s |' "${R[$n,remotes]}" "${R[$n,hosts]}"; done
	printf '\n| ESP entry (pool slot), bytes |'
	for n in $SIZES; do printf ' %s |' "${R[$n,slot]}"; done
	printf '\n| RSS growth per entry, bytes |'
	for n in $SIZES; do printf ' %s |' "${R[$n,rss]}"; done
	printf '\n| allocated per entry (pools + buckets), bytes |'
	for n in $SIZES; do printf ' %s |' "${R[$n,alloc]}"; done
	for c in $CASES; do
		printf '\n| ns/packet, %s |' "$c"
		for n in $SIZES; do printf ' %s |' "$(fmt3 "${R[$n,ns,$c]}")"; done
	done
	for c in $CASES; do
		printf '\n| instructions/packet, %s |' "$c"
		for n in $SIZES; do printf ' %s |' "$(fmt3 "${R[$n,ir,$c]:-}")"; done
	done
	echo
	echo
	echo "ns and instructions: median of $REPS runs (min–max). ns: wall clock over" \
		"$PACKETS packets per run, each run a process of its own, in rounds over" \
		"the sizes. Instructions: engine_process() alone, from callgrind" \
		"($COUNT and $((2 * COUNT)) packets, differenced; one random draw per run)."
	[ "$have_valgrind" = 1 ] || echo "valgrind not installed: no instruction counts."
	# issue 6's targets, judged on this run's medians
	big=$(printf '%s\n' $SIZES | sort -n | tail -1)
	echo
	printf 'Targets (issue 6), this run: ESP entry <= 128 bytes: %s (%s).' \
		"$(awk -v v="${R[$big,slot]}" 'BEGIN { print (v <= 128 ? "met" : "missed") }')" \
		"${R[$big,slot]}"
	if [ "$have_valgrind" = 1 ] && [ "$big" -ge 1000000 ]; then
		worst=0
		for c in $CASES; do
			set -- ${R[$big,ir,$c]}
			worst=$(awk -v a="$worst" -v b="$1" 'BEGIN { print (b > a ? b : a) }')
		done
		printf ' <= 300 instructions per established packet with %s entries: %s (at most %s).' \
			"$big" "$(awk -v w="$worst" 'BEGIN { print (w <= 300 ? "met" : "missed") }')" "$worst"
	fi
	echo
} >"$tmp/table.md"
cat "$tmp/table.md"

if [ -n "$WRITE" ]; then
	python3 - "$WRITE" "$tmp/table.md" <<'EOF' || die "could not write $WRITE"
import os, sys
path, block = sys.argv[1], open(sys.argv[2]).read().rstrip("\n").split("\n")
BEGIN = "<!-- enginebench:begin (tests/bench/engine.sh --write replaces this block) -->"
END = "<!-- enginebench:end -->"
new = [BEGIN] + block + [END]
try:
    lines = open(path).read().split("\n")
except FileNotFoundError:
    lines = ["# Benchmarks", ""]
b = next((i for i, l in enumerate(lines) if l.strip() == BEGIN), None)
e = next((i for i, l in enumerate(lines) if l.strip() == END), None)
if b is not None and e is not None and e > b:
    lines[b:e + 1] = new
else:
    h = next((i for i, l in enumerate(lines) if l.strip() == "## Engine"), None)
    if h is None:
        while lines and lines[-1] == "":
            lines.pop()
        lines += ["", "## Engine", ""] + new + [""]
    else:
        j = next((i for i in range(h + 1, len(lines)) if lines[i].startswith("## ")),
                 len(lines))
        tail = lines[j:]
        lines[h:] = ["## Engine", ""] + new + ([""] + tail if tail else [""])
text = "\n".join(lines)
if not text.endswith("\n"):
    text += "\n"
with open(path + ".tmp", "w") as f:
    f.write(text)
os.replace(path + ".tmp", path)
EOF
	echo "written into the \"## Engine\" section of $WRITE"
fi
exit 0

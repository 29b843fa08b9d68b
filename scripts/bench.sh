#!/bin/sh
# Every figure in BENCHMARKS.md, in one run (issue 6): installs the
# dependencies, builds build/bench (gcc -O2 -g), then runs the engine
# benchmark (tests/bench/engine.sh: memory per entry, ns and instructions per
# packet with 1k/100k/1M entries) and the network benchmark (tests/bench/net.sh:
# kernel forwarding against ipsec-masqd in namespaces), each writing its own
# section of BENCHMARKS.md. Run as root (the network part needs namespaces),
# on an otherwise idle machine; about 15 to 25 minutes on two cores.
#
#   scripts/bench.sh [--quick] [--output FILE]
#
# --quick runs both benchmarks' short versions (checks they work, not speed)
# and, unless --output is given, writes to build/bench/BENCHMARKS.quick.md
# instead of BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
quick= out=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=--quick ;;
	--output) out=${2:?--output needs a file}; shift ;;
	*) echo "usage: scripts/bench.sh [--quick] [--output FILE]" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "scripts/bench.sh: run as root (network namespaces)" >&2; exit 77; }
sh scripts/deps.sh
[ -f configure ] || autoreconf -fi
mkdir -p build/bench
(cd build/bench && { [ -f Makefile ] || "$top/configure" -q CFLAGS="-O2 -g"; } && make -s -j2)
if [ -z "$out" ]; then
	if [ -n "$quick" ]; then out=build/bench/BENCHMARKS.quick.md; else out=BENCHMARKS.md; fi
fi
echo "==== engine benchmark"
tests/bench/engine.sh --build-dir build/bench $quick --write "$out"
echo "==== network benchmark"
tests/bench/net.sh --build-dir build/bench $quick --write "$out"
echo "written: $out"

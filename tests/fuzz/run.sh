#!/bin/sh
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined,
# the engine sources compiled in directly) and runs each over its seed
# corpus for a short, fixed number of runs. Exits non-zero on any crash,
# leak or failed invariant; 77 (skip) only when clang or its fuzzer runtime
# (Debian: libclang-rt-14-dev) is missing, not on other link failures.
#
#   tests/fuzz/run.sh               build, then FUZZ_RUNS (20000) runs each
#   tests/fuzz/run.sh --build-only  build only (make fuzz)
#
# Environment: CLANG (clang), FUZZ_RUNS, FUZZ_TARGETS (all three),
# top_srcdir / top_builddir (make check sets them; default: this tree and
# the current directory). Binaries, new corpus units and crash files go to
# $top_builddir/tests/fuzz; the committed corpus is only read. To fuzz for
# longer, run a binary yourself, e.g.
#   tests/fuzz/fuzz_engine -jobs=1 -max_total_time=3600 NEW_DIR \
#       $top_srcdir/tests/fuzz/corpus/fuzz_engine
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=.}"
: "${CLANG:=clang}"
: "${FUZZ_RUNS:=20000}"
: "${FUZZ_TARGETS:=fuzz_packet fuzz_engine fuzz_config}"
src=$(cd "$top_srcdir" && pwd)
out=$top_builddir/tests/fuzz
build_only=0
[ "${1:-}" = "--build-only" ] && build_only=1

skip() {
	echo "tests/fuzz/run.sh: SKIP: $*" >&2
	[ $build_only = 1 ] && exit 1
	exit 77
}

mkdir -p "$out" || exit 1
command -v "$CLANG" >/dev/null 2>&1 || skip "$CLANG not found (apt-get install clang)"
probe=$out/probe
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe.c"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" > "$probe.log" 2>&1; then
	cat "$probe.log" >&2
	# Only a missing runtime is a skip; any other link failure is a failure.
	runtime=$("$CLANG" --print-runtime-dir 2>/dev/null)
	if [ -z "$runtime" ] || ! ls "$runtime"/libclang_rt.fuzzer*.a >/dev/null 2>&1; then
		skip "$CLANG has no fuzzer runtime in ${runtime:-its runtime directory} (apt-get install libclang-rt-14-dev)"
	fi
	echo "tests/fuzz/run.sh: $CLANG has its fuzzer runtime in $runtime but cannot link with it" >&2
	exit 1
fi
rm -f "$probe" "$probe.c" "$probe.log"

cflags="-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=all -Wall -Wextra -Wshadow -Werror -I$src/include"
engine="$src/src/csum.c $src/src/reason.c $src/src/packet.c $src/src/htab.c
	$src/src/pool.c $src/src/timer_wheel.c $src/src/engine.c
	$src/src/engine_esp.c $src/src/engine_isakmp.c"
libconfig=$(pkg-config --cflags --libs libconfig 2>/dev/null || echo -lconfig)

for t in $FUZZ_TARGETS; do
	case $t in
	fuzz_packet) srcs="$src/src/csum.c $src/src/reason.c $src/src/packet.c" libs="" ;;
	fuzz_engine) srcs=$engine libs="" ;;
	fuzz_config) srcs="$engine $src/src/conffile.c" libs=$libconfig ;;
	*) echo "tests/fuzz/run.sh: unknown target $t" >&2; exit 1 ;;
	esac
	echo "  CLANG    $out/$t"
	# shellcheck disable=SC2086
	"$CLANG" $cflags "$src/tests/fuzz/$t.c" $srcs $libs -o "$out/$t" || exit 1
done
[ $build_only = 1 ] && exit 0

# libconfig 1.5 (Debian 12) leaks a string token dropped in syntax error
# recovery (hyperrealm/libconfig#142, fixed in 1.7.3): suppressed by name.
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
LSAN_OPTIONS="suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

fail=0
for t in $FUZZ_TARGETS; do
	work=$out/corpus-$t
	rm -rf "$work"
	mkdir -p "$work"
	case $t in
	fuzz_config) maxlen=4096 ;;
	fuzz_engine) maxlen=1024 ;;
	*) maxlen=2048 ;;
	esac
	# new units go to the scratch dir (first), the seeds are only read
	if "$out/$t" -runs="$FUZZ_RUNS" -max_len=$maxlen -seed=1 \
		-artifact_prefix="$out/$t-" -print_final_stats=1 \
		"$work" "$src/tests/fuzz/corpus/$t" > "$out/$t.log" 2>&1; then
		echo "$t: $(grep -E '^#[0-9]+.*(DONE|cov:)' "$out/$t.log" | tail -1)"
		rm -rf "$work"
	else
		echo "$t: FAILED (log: $out/$t.log)" >&2
		tail -40 "$out/$t.log" >&2
		fail=1
	fi
done
exit $fail

#!/bin/sh
# The engine benchmark still works (issue 6): tests/bench/engine.sh --quick
# on this build (1000 entries, short runs), then checks that it printed
# every figure (bytes per entry, ns per packet for each case, and the
# instruction counts when valgrind is installed) and that --write puts an
# Engine section into a scratch BENCHMARKS.md without touching the rest.
# Fails if engine_bench crashes, refuses a packet or prints no figures.
# Speed is not checked.
src=$(cd "${top_srcdir:-$(dirname "$0")/..}" && pwd)
build=$(cd "${top_builddir:-.}" && pwd)
tmp=$(mktemp -d /tmp/enginebench-test-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }

printf '# Benchmarks\n\n## Network\n\nkeep me\n' >"$tmp/B.md"
if bash "$src/tests/bench/engine.sh" --quick --build-dir "$build" \
	--write "$tmp/B.md" >"$tmp/out.txt" 2>"$tmp/err.txt"; then
	ok "engine.sh --quick ran"
else
	fail "engine.sh --quick failed"
fi
cat "$tmp/out.txt" "$tmp/err.txt"

num='[0-9][0-9.]*'
for row in "ESP entry (pool slot), bytes" "RSS growth per entry, bytes" \
	"allocated per entry (pools + buckets), bytes"; do
	grep -q "^| $row | $num |$" "$tmp/out.txt" && ok "$row" || fail "no figure: $row"
done
for c in out_random in_random hot_flow; do
	grep -q "^| ns/packet, $c | $num ($num–$num) |$" "$tmp/out.txt" &&
		ok "ns/packet $c" || fail "no figure: ns/packet $c"
	if command -v valgrind >/dev/null 2>&1; then
		grep -q "^| instructions/packet, $c | $num ($num–$num) |$" "$tmp/out.txt" &&
			ok "instructions/packet $c" || fail "no figure: instructions/packet $c"
	fi
done
# The hot path's regression gate (issue 14): with IPSEC_MASQD_INSNS_MAX set
# (scripts/test.sh: 300 for the gcc and clang -O2 builds), the engine's
# instructions per established packet (callgrind, deterministic; the median
# of each case) must not exceed it. Other builds (sanitizers, hardening
# flags) count differently and are not gated.
if [ -n "${IPSEC_MASQD_INSNS_MAX:-}" ] && command -v valgrind >/dev/null 2>&1; then
	for c in out_random in_random hot_flow; do
		v=$(sed -n "s/^| instructions\/packet, $c | \([0-9.]*\) (.*/\1/p" "$tmp/out.txt")
		if [ -n "$v" ] && awk -v v="$v" -v m="$IPSEC_MASQD_INSNS_MAX" 'BEGIN { exit !(v <= m) }'; then
			ok "instructions/packet $c: $v <= $IPSEC_MASQD_INSNS_MAX"
		else
			fail "instructions/packet $c: ${v:-none} > $IPSEC_MASQD_INSNS_MAX (the engine's hot path regressed)"
		fi
	done
fi
grep -q '^## Engine$' "$tmp/B.md" && grep -q '^| ns/packet, hot_flow |' "$tmp/B.md" &&
	ok "--write: Engine section written" || fail "--write: no Engine section"
grep -q '^keep me$' "$tmp/B.md" && grep -q '^## Network$' "$tmp/B.md" &&
	ok "--write: the rest kept" || fail "--write: the Network section is gone"
# a second --write replaces the block instead of adding one
bash "$src/tests/bench/engine.sh" --quick --build-dir "$build" --reps 1 \
	--write "$tmp/B.md" >/dev/null 2>&1 || fail "second run failed"
[ "$(grep -c '^## Engine$' "$tmp/B.md")" = 1 ] &&
	[ "$(grep -c 'enginebench:begin' "$tmp/B.md")" = 1 ] &&
	ok "--write again: one Engine section" || fail "--write again: duplicated"
[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }

#!/bin/sh
# Every program answers --help and --version (and -h, -V) on stdout with
# status 0, names this version, and turns an unknown option into its
# documented usage status with the usage on stderr; every program has a man
# page that lists --help and --version, documents the usage status, and has
# EXAMPLES and a SEE ALSO naming every other page of the project; the
# control socket path the programs use is the one the man pages name.
# No root, no network.
set -u
: "${top_builddir:=.}"
: "${PACKAGE_VERSION:?make check sets PACKAGE_VERSION}"
b=$top_builddir
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# program, its man page (section), the status of a usage error
progs="ipsec-masqd:8:2 ipsec-masqctl:8:2 ipsec-masqd-replay:1:2 ipsec-masqd-firewall:8:1
	ipsec-masqd-announce:8:2"
pages="ipsec-masqd.8 ipsec-masqctl.8 ipsec-masqd-replay.1 ipsec-masqd-firewall.8 ipsec-masqd.conf.5
	ipsec-masqd-announce.8"

for entry in $progs; do
	prog=${entry%%:*} rest=${entry#*:}
	sect=${rest%%:*} usage_rc=${rest#*:}
	bin=$b/$prog
	[ -x "$bin" ] || { fail "$prog: $bin not built"; continue; }
	for opt in --help -h; do
		"$bin" $opt > "$tmp/out" 2> "$tmp/err"; rc=$?
		check "$prog $opt: status 0 ($rc)" [ "$rc" = 0 ]
		check "$prog $opt: usage on stdout" grep -q "^usage: " "$tmp/out"
		check "$prog $opt: nothing on stderr" [ ! -s "$tmp/err" ]
		check "$prog $opt: names --help and --version" \
			sh -c "grep -q -- '--help' '$tmp/out' && grep -q -- '--version' '$tmp/out'"
	done
	for opt in --version -V; do
		"$bin" $opt > "$tmp/out" 2> "$tmp/err"; rc=$?
		check "$prog $opt: status 0 ($rc)" [ "$rc" = 0 ]
		first=$(head -n 1 "$tmp/out")
		case $first in
		"$prog $PACKAGE_VERSION" | "$prog $PACKAGE_VERSION "*) ok "$prog $opt: \"$first\"" ;;
		*) fail "$prog $opt: \"$first\" is not \"$prog $PACKAGE_VERSION\"" ;;
		esac
	done
	"$bin" --no-such-option > "$tmp/out" 2> "$tmp/err"; rc=$?
	check "$prog --no-such-option: status $usage_rc ($rc)" [ "$rc" = "$usage_rc" ]
	check "$prog --no-such-option: usage on stderr, not stdout" \
		sh -c "grep -q '^usage: ' '$tmp/err' && ! grep -q '^usage: ' '$tmp/out'"

	page=$b/man/$prog.$sect
	if [ ! -f "$page" ]; then fail "$prog: no man page $page"; continue; fi
	# the synopsis/options in the page's source form: \-\-help
	check "$prog.$sect lists --help and --version" \
		sh -c "grep -q 'BR \\\\-h \", \" \\\\-\\\\-help' '$page' && grep -q 'BR \\\\-V \", \" \\\\-\\\\-version' '$page'"
	# the usage status is a .B line in EXIT STATUS (a tbl row for masqctl)
	check "$prog.$sect: EXIT STATUS documents usage errors ($usage_rc)" \
		sh -c "sed -n '/^\\.SH EXIT STATUS/,/^\\.SH /p' '$page' |
			grep -A1 -E '^(\\.B $usage_rc|$usage_rc	)' | grep -qi usage"
done

# the daemon's own help lists every exit status of ipsec-masqd(8)
"$b/ipsec-masqd" --help > "$tmp/out" 2>&1
check "ipsec-masqd --help lists the exit statuses 0, 1, 2 and 78" \
	sh -c "grep -q '0 normal exit' '$tmp/out' && grep -q '1 run-time failure' '$tmp/out' &&
		grep -q '2 usage error' '$tmp/out' && grep -q '78 bad config' '$tmp/out'"

for p in $pages; do
	page=$b/man/$p
	[ -f "$page" ] || { fail "no man page $page"; continue; }
	check "$p has EXAMPLES" grep -q '^\.SH EXAMPLES' "$page"
	see=$(sed -n '/^\.SH SEE ALSO/,/^\.SH /p' "$page")
	for other in $pages; do
		[ "$other" = "$p" ] && continue
		name=${other%.*} sect=${other##*.}
		esc=$(printf '%s' "$name" | sed 's/-/\\\\-/g')
		printf '%s\n' "$see" | grep -q "^\.BR $esc ($sect)" ||
			fail "$p: SEE ALSO lacks $name($sect)"
	done
done
ok "SEE ALSO checked for every pair of pages"

# /run vs /var/run: ipsec-masqctl's default socket is the one the pages name
sock=$("$b/ipsec-masqctl" --help 2>&1 | sed -n 's/.* or \(\/[^ ]*\/ipsec-masqd\/control\).*/\1/p' | head -n 1)
check "ipsec-masqctl's default socket is known ($sock)" [ -n "$sock" ]
for p in ipsec-masqd.8 ipsec-masqctl.8 ipsec-masqd.conf.5; do
	check "$p names the same socket" grep -qF "$(printf '%s' "$sock" | sed 's/-/\\-/g')" "$b/man/$p"
done

echo "$fails failure(s)"
[ "$fails" = 0 ]

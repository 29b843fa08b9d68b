#!/bin/sh
# The project cites only documents it contains. In make distcheck this runs
# in the unpacked tarball, so "contains" means "ships":
#   - doc/design.md and BENCHMARKS.md are there (installed files, comments
#     and man pages cite them);
#   - no file cites a design document under another name (the team's notes
#     are not part of the project);
#   - every citation of a design.md section (design.md, a comma, the
#     section's name in double quotes) names a "## " heading of it;
#   - the man pages that cite design.md and BENCHMARKS.md name where they
#     are installed;
#   - README's Debian Build-Depends name every package configure.ac requires.
set -u
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
src=$top_srcdir
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }

for f in doc/design.md BENCHMARKS.md README.md NEWS; do
	if [ -s "$src/$f" ]; then ok "$f is in the tree"; else fail "$f missing from $src"; fi
done

# Where citations live: everything but the tests' own fixtures and corpus.
files=$(cd "$src" && find src include etc man systemd scripts tests doc contrib README.md \
	-type f \( -name '*.c' -o -name '*.h' -o -name '*.in' -o -name '*.sh' -o -name '*.py' \
	-o -name '*.md' -o -name '*.conf' -o -name '*.iptables' -o -name '*.nft' -o -name 'Makefile' \
	-o -name '*.init' -o -name '*.uci' \) 2>/dev/null | grep -v -e '^tests/data/' -e '^tests/fuzz/corpus/')
upper=DESI''GN.md   # split, or this file would cite it itself
n=0
for f in $files; do
	if grep -n "$upper" "$src/$f" > /dev/null 2>&1; then
		fail "$f cites $upper, which the project does not contain"; grep -n "$upper" "$src/$f"
		n=$((n + 1))
	fi
done
[ "$n" = 0 ] && ok "no file cites $upper ($(echo "$files" | wc -l) files read)"

headings=$(sed -n 's/^## //p' "$src/doc/design.md")
cited=$(cd "$src" && cat $files | grep -o 'design\.md, "[^"]*"' | sed 's/^design\.md, "//; s/"$//' | sort -u)
[ -n "$cited" ] || fail "no section citations of design.md found"
echo "$cited" | while IFS= read -r sect; do
	[ -n "$sect" ] || continue
	if printf '%s\n' "$headings" | grep -qxF "$sect"; then
		echo "ok   - design.md has the cited section \"$sect\""
	else
		echo "FAIL - design.md has no section \"$sect\" (cited)"
	fi
done > "${TMPDIR:-/tmp}/test_docs.$$"
cat "${TMPDIR:-/tmp}/test_docs.$$"
fails=$((fails + $(grep -c '^FAIL' "${TMPDIR:-/tmp}/test_docs.$$")))
rm -f "${TMPDIR:-/tmp}/test_docs.$$"

# NEWS: its newest entry is this version's (a release bumps both)
if [ -n "${PACKAGE_VERSION:-}" ] && [ -s "$src/NEWS" ]; then
	first=$(grep -m1 '^ipsec-masqd [0-9]' "$src/NEWS")
	case $first in
	"ipsec-masqd $PACKAGE_VERSION "*) ok "NEWS starts with this version: $first" ;;
	*) fail "NEWS's newest entry \"$first\" is not ipsec-masqd $PACKAGE_VERSION" ;;
	esac
fi

page=$top_builddir/man/ipsec-masqd.8
docdir=$(sed -n 's/^docdir = //p' "$top_builddir/Makefile")
if [ -f "$page" ]; then
	if grep -q '/design\.md$' "$page" && grep -q '/BENCHMARKS\.md$' "$page" && ! grep -q '@docdir@' "$page"; then
		ok "ipsec-masqd(8) names the installed design.md and BENCHMARKS.md"
	else
		fail "ipsec-masqd(8) does not name the installed design.md and BENCHMARKS.md"
	fi
fi
[ -n "$docdir" ] && ok "docdir is $docdir"

# README's Debian Build-Depends name every package configure.ac requires
# (MASQD_REQUIRE's third argument), so a packager following it configures.
bd=$(sed -n '/Build-Depends:/,/check <!nocheck>/p' "$src/README.md" | tr '\n`,' '   ')
for pkg in $(sed -n 's/^MASQD_REQUIRE(\[[^]]*\], \[[^]]*\], \[\([^]]*\)\]).*/\1/p' "$src/configure.ac"); do
	case " $bd " in
	*" $pkg "*) ok "README's Build-Depends name $pkg" ;;
	*) fail "README's Build-Depends lack $pkg (configure.ac requires it)" ;;
	esac
done

echo "$fails failure(s)"
[ "$fails" = 0 ]

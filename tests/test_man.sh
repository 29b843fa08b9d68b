#!/bin/sh
# Every generated man page is clean under mandoc -Tlint and groff -ww
# (warnings are failures; groff's line-breaking warnings excepted, see
# below). Skips (77) only when neither linter is installed.
set -u
: "${top_builddir:=.}"
pages=$(ls "$top_builddir"/man/*.[158] 2>/dev/null)
if [ -z "$pages" ]; then
	echo "test_man: no generated man pages under $top_builddir/man" >&2
	exit 1
fi
if ! command -v mandoc >/dev/null && ! command -v groff >/dev/null; then
	echo "test_man: SKIP: neither mandoc nor groff is installed" >&2
	exit 77
fi
fail=0
for page in $pages; do
	if command -v mandoc >/dev/null; then
		out=$(mandoc -Tlint -W warning "$page" 2>&1)
		if [ -n "$out" ]; then
			echo "mandoc -Tlint $page:"; echo "$out"; fail=1
		fi
	fi
	if command -v groff >/dev/null; then
		# -Wbreak: "cannot adjust/break line" depends on the length of
		# the install paths substituted into the page (make distcheck's
		# prefix is the checkout's path plus _inst), not on the page.
		out=$(groff -t -ww -Wbreak -z -man "$page" 2>&1)
		if [ -n "$out" ]; then
			echo "groff -ww $page:"; echo "$out"; fail=1
		fi
	fi
	echo "linted $page"
done
exit $fail

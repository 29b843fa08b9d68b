#!/bin/sh
# The journal catalog (systemd/ipsec-masqd.catalog) explains every
# MESSAGE_ID the daemon logs, and only those:
#   - the IDs in the source (every 32-hex-digit string in src/ and
#     include/: src/log.c has one per kind of decision and the
#     suppressed-count record, include/log.h the daemon's own events) and
#     the catalog's entries are the same set, each entry once;
#   - ipsec-masqd(8)'s MESSAGE_ID table lists the same set;
#   - journalctl --update-catalog --root (the lint: it builds the binary
#     database as a package trigger would) accepts the file without a
#     message, and journalctl --list-catalog then lists exactly those IDs,
#     each with a Subject, "Defined-By: ipsec-masqd" and a man page.
# No root needed. Skips (77) only without journalctl.
set -u
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
src=$top_srcdir
cat_file=$src/systemd/ipsec-masqd.catalog
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
command -v journalctl >/dev/null 2>&1 ||
	{ echo "SKIP: journalctl not installed (apt-get install systemd)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_catalog.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# every 32-hex-digit string literal of the daemon's sources is a MESSAGE_ID
grep -ohE '"[0-9a-f]{32}"' "$src"/src/*.c "$src"/include/*.h | tr -d '"' | sort > "$tmp/src.ids"
sort -u "$tmp/src.ids" > "$tmp/src.uniq"
n_src=$(wc -l < "$tmp/src.uniq")
if [ "$n_src" -ge 19 ] && cmp -s "$tmp/src.ids" "$tmp/src.uniq"; then
	ok "the source has $n_src MESSAGE_IDs, none twice"
else
	fail "the source's MESSAGE_IDs: $n_src, or one used twice"; uniq -d "$tmp/src.ids"
fi
sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$cat_file" | sort > "$tmp/cat.ids"
sort -u "$tmp/cat.ids" > "$tmp/cat.uniq"
if cmp -s "$tmp/cat.ids" "$tmp/cat.uniq"; then
	ok "no catalog entry twice"
else
	fail "a catalog entry twice: $(uniq -d "$tmp/cat.ids" | tr '\n' ' ')"
fi
n_bad=$(grep -c '^-- ' "$cat_file")
[ "$n_bad" = "$(wc -l < "$tmp/cat.ids")" ] && ok "every '-- ' line is an ID line" ||
	fail "a '-- ' line that is not '-- ' + 32 hex digits"
missing=$(comm -23 "$tmp/src.uniq" "$tmp/cat.uniq")
stale=$(comm -13 "$tmp/src.uniq" "$tmp/cat.uniq")
[ -z "$missing" ] && ok "every MESSAGE_ID of the source has a catalog entry" ||
	fail "MESSAGE_IDs without a catalog entry: $missing"
[ -z "$stale" ] && ok "every catalog entry is a MESSAGE_ID of the source" ||
	fail "catalog entries no source logs: $stale"

page=$top_builddir/man/ipsec-masqd.8
if [ -f "$page" ]; then
	sed -n '/^\.SH JOURNAL FIELDS/,/^\.SH /p' "$page" | grep -oE '[0-9a-f]{32}' | sort -u > "$tmp/man.ids"
	if cmp -s "$tmp/man.ids" "$tmp/src.uniq"; then
		ok "ipsec-masqd(8) lists the same $(wc -l < "$tmp/man.ids") MESSAGE_IDs"
	else
		fail "ipsec-masqd(8) JOURNAL FIELDS and the source differ:"; diff "$tmp/man.ids" "$tmp/src.uniq"
	fi
else
	fail "$page not built"
fi

# The lint: what a package's trigger runs, into a scratch root.
root=$tmp/root
mkdir -p "$root/usr/lib/systemd/catalog"
cp "$cat_file" "$root/usr/lib/systemd/catalog/"
if journalctl --update-catalog --root="$root" > "$tmp/update.out" 2>&1 && [ ! -s "$tmp/update.out" ]; then
	ok "journalctl --update-catalog --root accepts the catalog silently"
else
	fail "journalctl --update-catalog --root:"; cat "$tmp/update.out"
fi
journalctl --root="$root" --list-catalog > "$tmp/list" 2>&1
awk '{print $1}' "$tmp/list" | sort > "$tmp/list.ids"
if cmp -s "$tmp/list.ids" "$tmp/src.uniq"; then
	ok "journalctl --list-catalog lists exactly the $n_src IDs"
else
	fail "journalctl --list-catalog differs from the source:"; diff "$tmp/list.ids" "$tmp/src.uniq"
fi
bad=0
for id in $(cat "$tmp/src.uniq"); do
	journalctl --root="$root" --dump-catalog "$id" > "$tmp/entry" 2>&1
	if ! grep -q '^Subject: .' "$tmp/entry" || ! grep -q '^Defined-By: ipsec-masqd$' "$tmp/entry" ||
	   ! grep -q '^Documentation: man:' "$tmp/entry" || [ "$(wc -l < "$tmp/entry")" -lt 8 ]; then
		fail "entry $id incomplete:"; cat "$tmp/entry"; bad=1
	fi
done
[ "$bad" = 0 ] && ok "every entry has a Subject, Defined-By, Documentation and an explanation"

echo "$fails failure(s)"
[ "$fails" = 0 ]

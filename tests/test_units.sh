#!/bin/sh
# The systemd units as installed: both start only when the config exists
# (ConditionPathExists=, evaluated by systemd-analyze condition: a fresh
# install without a config leaves them skipped, not failed), and
# systemd-analyze verify accepts them. No root, no running systemd needed.
# Skips (77) only without systemd-analyze.
set -u
: "${top_builddir:=.}"
b=$top_builddir
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
command -v systemd-analyze >/dev/null 2>&1 ||
	{ echo "SKIP: systemd-analyze not installed (apt-get install systemd)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# The built units, with the config directory moved to $tmp/etc and the
# programs (verify wants existing executables) to links to /bin/true.
mkdir -p "$tmp/units" "$tmp/etc" "$tmp/sbin"
ln -s /bin/true "$tmp/sbin/ipsec-masqd"
ln -s /bin/true "$tmp/sbin/ipsec-masqd-firewall"
sysconfdir=$(sed -n 's/^sysconfdir = //p' "$b/Makefile")
sbindir=$(sed -n 's/^sbindir = //p' "$b/Makefile")
prefix=$(sed -n 's/^prefix = //p' "$b/Makefile")
exec_prefix=$(sed -n 's/^exec_prefix = //p' "$b/Makefile")
sysconfdir=$(echo "$sysconfdir" | sed "s|\${prefix}|$prefix|")
sbindir=$(echo "$sbindir" | sed "s|\${exec_prefix}|$exec_prefix|; s|\${prefix}|$prefix|")
units="ipsec-masqd.service ipsec-masqd-firewall.service"
for u in $units; do
	[ -f "$b/systemd/$u" ] || { fail "$b/systemd/$u not built"; continue; }
	sed -e "s|$sysconfdir/|$tmp/etc/|g" -e "s|$sbindir/|$tmp/sbin/|g" "$b/systemd/$u" > "$tmp/units/$u"
	if grep -q "^ConditionPathExists=$tmp/etc/ipsec-masqd.conf\$" "$tmp/units/$u"; then
		ok "$u: ConditionPathExists= the config"
	else
		fail "$u: no ConditionPathExists=$sysconfdir/ipsec-masqd.conf"
	fi
done

cond() {   # cond UNIT: systemd-analyze's verdict on the unit's conditions
	SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze condition --unit="$1" > "$tmp/cond.out" 2>&1
}
for u in $units; do
	if cond "$u"; then
		fail "$u: would start without a config"; cat "$tmp/cond.out"
	else
		ok "$u: skipped without a config ($(grep -o 'ConditionPathExists=[^ ]* failed' "$tmp/cond.out"))"
	fi
done
touch "$tmp/etc/ipsec-masqd.conf"
for u in $units; do
	if cond "$u"; then
		ok "$u: starts once the config exists"
	else
		fail "$u: conditions fail with a config"; cat "$tmp/cond.out"
	fi
done
if (cd "$tmp/units" && systemd-analyze verify --man=no ./ipsec-masqd.service \
	./ipsec-masqd-firewall.service) > "$tmp/verify.out" 2>&1; then
	ok "systemd-analyze verify (both units)"
else
	fail "systemd-analyze verify"; cat "$tmp/verify.out"
fi
echo "$fails failure(s)"
[ "$fails" = 0 ]

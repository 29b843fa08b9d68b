# tests/lib/fastpath.sh: the namespace tests' switch for the kernel fast path
# (issue 14). Sourced by tests/lib/netns.sh and by the tests that keep their
# own topology. POSIX sh.
#
# IPSEC_MASQD_TEST_FASTPATH=on|off runs the suite with the fast path on or
# off whatever the daemon's default (scripts/test.sh runs the suite with the
# default and a reduced set the other way). Unset: the configs say nothing
# and the daemon's default applies.

# nl_fastpath_conf FILE: appends "fastpath = { enable = ...; };" to config
# FILE, in place (a SIGHUP reload reads the same file, and the tests that
# look for "reloaded config file FILE" see its name), when the switch is set
# and FILE has no fastpath group of its own (a test that chooses keeps its
# choice). A test that rewrites its config calls it again before the reload.
nl_fastpath_conf() {
	case "${IPSEC_MASQD_TEST_FASTPATH:-}" in
	'') return 0 ;;
	on) set -- "$1" true ;;
	off) set -- "$1" false ;;
	*) echo "IPSEC_MASQD_TEST_FASTPATH=$IPSEC_MASQD_TEST_FASTPATH: on or off" >&2; return 1 ;;
	esac
	grep -q '^[[:space:]]*fastpath[[:space:]]*[=:]' "$1" && return 0
	printf '# IPSEC_MASQD_TEST_FASTPATH=%s\nfastpath = { enable = %s; };\n' \
		"$IPSEC_MASQD_TEST_FASTPATH" "$2" >> "$1"
}

# nl_fastpath_active LOG: whether the daemon logging (-v) to LOG runs with
# the fast path: it says so once its table is loaded, before "started". With
# the fast path wanted but refused by the kernel it logs "fastpath: off" and
# queues everything: that is not the fast path (nl_daemon_start fails then
# under IPSEC_MASQD_TEST_FASTPATH=on).
nl_fastpath_active() {
	grep -q 'fastpath: table ip ipsec_masqd_fast loaded' "$1" 2>/dev/null
}

# nl_fastpath_started LOG: after "started", fails (with the reason) when the
# switch asked for the fast path and the daemon logging to LOG runs without.
nl_fastpath_started() {
	[ "${IPSEC_MASQD_TEST_FASTPATH:-}" != on ] && return 0
	nl_fastpath_active "$1" && return 0
	echo "IPSEC_MASQD_TEST_FASTPATH=on: the daemon started without its fast path table ($1)"
	return 1
}

#!/bin/sh
# The OpenWrt recipe (contrib/openwrt/) as far as it can be checked without
# OpenWrt: the UCI -> libconfig glue run on the shipped UCI file and on a
# full one through a stand-in for uci(1), its output accepted by the real
# daemon (ipsec-masqd -t) with the values where they belong (-P and the
# file); hostile and broken UCI values refused with the option named and no
# output; the nftables include rendered from the shipped template with no
# placeholder left (and, as root, accepted by nft --check in a scratch
# network namespace, queue replaced by drop where the kernel lacks
# nft_queue); the init scripts parse; the Makefile installs files that exist
# and passes configure options configure knows. What it cannot check (procd,
# fw4, the SDK build) is listed in contrib/openwrt/README.md.
set -u
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
src=$(cd "$top_srcdir" && pwd)
ow=$src/contrib/openwrt
GLUE=$ow/files/ipsec-masqd-openwrt
DAEMON=$(cd "$top_builddir" && pwd)/ipsec-masqd
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
[ -x "$DAEMON" ] || { echo "FAIL - $DAEMON not built"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_openwrt.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# A stand-in for `uci -q get KEY` over a UCI file ($UCI_FILE): named and
# anonymous (@type[i]) sections, options, lists (space-joined, as uci does).
cat > "$tmp/uci" <<'UCI'
#!/bin/sh
[ "$1" = -q ] && shift
[ "$1" = get ] || exit 1
awk -v key="$2" -v pkg="${UCI_PACKAGE:-ipsec_masqd}" '
	function unq(s) { gsub(/^'\''|'\''$/, "", s); return s }
	$1 == "config" { t = $2; n = (NF >= 3) ? unq($3) : "@" t "[" (cnt[t]++) "]";
		val[pkg "." n] = t; next }
	$1 == "option" || $1 == "list" {
		v = $0; sub(/^[ \t]*(option|list)[ \t]+[^ \t]+[ \t]+/, "", v); sub(/[ \t]+#.*$/, "", v)
		k = pkg "." n "." $2; v = unq(v)
		val[k] = ($1 == "list" && (k in val)) ? val[k] " " v : v; next }
	END { if (key in val) { print val[key]; exit 0 } exit 1 }' "$UCI_FILE"
UCI
chmod +x "$tmp/uci"
export UCI="$tmp/uci" IPSEC_MASQD="$DAEMON"

run_conf() {   # run_conf UCIFILE OUT [DEVICE]
	UCI_FILE=$1 "$GLUE" conf ${3:+"$3"} > "$2" 2> "$2.err"
}
pvar() { "$DAEMON" -P -c "$1" | sed -n "s/^$2=//p" | tr -d "'"; }

# 1: the shipped /etc/config/ipsec_masqd, network 'wan' resolved to eth1
if run_conf "$ow/files/ipsec_masqd.config" "$tmp/default.conf" eth1; then
	check "shipped UCI file: ipsec-masqd -t accepts the output" sh -c "'$DAEMON' -t -c '$tmp/default.conf' >/dev/null"
	check "shipped UCI file: the WAN interface is the resolved device" [ "$(pvar "$tmp/default.conf" EXT_INTERFACE)" = eth1 ]
	check "shipped UCI file: the LAN prefix" [ "$(pvar "$tmp/default.conf" INTERNAL)" = 192.168.1.0/24 ]
else
	fail "shipped UCI file: glue failed: $(cat "$tmp/default.conf.err")"
fi

# 2: every option and two preloads
cat > "$tmp/full" <<'FULL'
config ipsec_masqd 'main'
	option enabled '1'
	option address '198.51.100.1'
	list internal '192.168.1.0/24'
	list internal '10.20.0.0/16'
	option queue '3'
	option user 'root'
	option parallel_sessions '1'
	option esp_lifetime '3900'
	option esp_init_timeout '60.5'
	option esp_init_retries '7'
	option esp_squelch '15'
	option guess_copies '3'
	option guess_rate '4'
	option guess_burst '6'
	option isakmp_lifetime '3900'
	option max_entries '5000'
	option max_per_host '100'
	option state_file '/etc/ipsec-masqd.state'
	option control_socket '/var/run/ipsec-masqd/control'
	option control_mode '0660'
	option log_level 'notice'

config preload
	option remote '203.0.113.20'
	option host '192.168.1.10'
	option spi_in '0xc1a2b3c4'
	option spi_out '0x0badf00d'

config preload
	option remote '203.0.113.30'
	option host '10.20.0.5'
	option spi_in '4096'
FULL
if run_conf "$tmp/full" "$tmp/full.conf"; then
	check "every option: ipsec-masqd -t accepts the output" sh -c "'$DAEMON' -t -c '$tmp/full.conf' >/dev/null"
	check "every option: queue, address, both prefixes (-P)" \
		[ "$(pvar "$tmp/full.conf" QUEUE) $(pvar "$tmp/full.conf" EXT_ADDRESS) $(pvar "$tmp/full.conf" INTERNAL)" = \
		  "3 198.51.100.1 192.168.1.0/24 10.20.0.0/16" ]
	for want in 'user = "root";' 'parallel_sessions = true;' 'lifetime = 3900;' 'init_timeout = 60.5;' 'init_retries = 7;' \
		'squelch = 15;' 'guess_copies = 3;' 'guess_rate = 4;' 'guess_burst = 6;' 'max_entries = 5000;' \
		'max_per_host = 100;' 'file = "/etc/ipsec-masqd.state";' 'mode = "0660";' 'level = "notice";' \
		'spi_in = 0xc1a2b3c4; spi_out = 0x0badf00d;' 'remote = "203.0.113.30"; host = "10.20.0.5"; spi_in = 4096;'; do
		grep -qF "$want" "$tmp/full.conf" || fail "every option: '$want' missing from the output"
	done
	ok "every option: each value in its key"
else
	fail "every option: glue failed: $(cat "$tmp/full.conf.err")"
fi

# 3: hostile and broken values are refused, naming the option, with no output
bad() {   # bad WHAT OPTION-LINE EXPECTED-OPTION-NAME
	{ echo "config ipsec_masqd 'main'"; echo "	list internal '192.168.1.0/24'"
	  echo "	option device 'eth1'"; echo "	$2"; } > "$tmp/bad"
	if UCI_FILE=$tmp/bad "$GLUE" conf > "$tmp/bad.out" 2> "$tmp/bad.err"; then
		fail "$1: accepted"; cat "$tmp/bad.out"
	elif ! grep -q "$3" "$tmp/bad.err"; then
		fail "$1: the error does not name $3: $(cat "$tmp/bad.err")"
	else
		ok "$1: refused ($(cat "$tmp/bad.err"))"
	fi
}
bad "libconfig injected through a string" "option log_level 'info\"; }; queue = 9; log = { level = \"debug'" log_level
bad "a non-number" "option max_entries '10; queue = 7'" max_entries
bad "a prefix that is not one" "list internal '192.168.1.0/24; x'" internal
bad "a preload without its SPI" "option queue '1'
config preload
	option remote '203.0.113.20'
	option host '192.168.1.10'" "spi_in"
printf "config ipsec_masqd 'main'\n\toption device 'eth1'\n" > "$tmp/nolan"
check "no LAN prefix: refused" sh -c "! UCI_FILE='$tmp/nolan' '$GLUE' conf >/dev/null 2>&1"
printf "config ipsec_masqd 'main'\n\tlist internal '192.168.1.0/24'\n" > "$tmp/nowan"
check "no device, address or network: refused" sh -c "! UCI_FILE='$tmp/nowan' '$GLUE' conf >/dev/null 2>&1"
# a value the glue lets through but the daemon's range check refuses
printf "config ipsec_masqd 'main'\n\tlist internal '192.168.1.0/24'\n\toption device 'eth1'\n\toption guess_copies '99'\n" > "$tmp/range"
if run_conf "$tmp/range" "$tmp/range.conf"; then
	check "an out-of-range value reaches ipsec-masqd -t, which refuses it with the line" \
		sh -c "! '$DAEMON' -t -c '$tmp/range.conf' 2>&1 | grep -q OK && '$DAEMON' -t -c '$tmp/range.conf' 2>&1 | grep -q 'range.conf:[0-9]*: esp.guess_copies'"
fi

# 4: the fw4 include from the shipped template
if UCI_FILE=$tmp/full "$GLUE" nft "$tmp/default.conf" "$src/etc/ipsec-masqd.nft" > "$tmp/fw4.nft" 2> "$tmp/fw4.err"; then
	ok "nft include rendered from etc/ipsec-masqd.nft"
	check "the include names the WAN device and the LAN prefix" \
		sh -c "grep -q 'iifname \"eth1\"' '$tmp/fw4.nft' && grep -q '192.168.1.0/24' '$tmp/fw4.nft'"
	if [ "$(id -u)" = 0 ] && command -v nft >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1; then
		sed 's/queue num [0-9]*/drop/' "$tmp/fw4.nft" > "$tmp/fw4.noqueue.nft"
		# iifname/oifname match names: the device need not exist
		if unshare -n nft -c -f "$tmp/fw4.nft" > "$tmp/nft.out" 2>&1; then
			ok "nft --check accepts the include (nft_queue present)"
		elif unshare -n nft -c -f "$tmp/fw4.noqueue.nft" > "$tmp/nft2.out" 2>&1; then
			ok "nft --check accepts the include with queue -> drop (this kernel lacks nft_queue)"
		else
			fail "nft --check rejects the include:"; cat "$tmp/nft.out" "$tmp/nft2.out"
		fi
	elif [ "${IPSEC_MASQD_REQUIRE_ALL:-0}" = 1 ]; then
		fail "nft --check of the include needs root, nft and unshare"
	else
		echo "skip - nft --check of the include (needs root, nft, unshare)"
	fi
else
	fail "nft include: $(cat "$tmp/fw4.err")"
fi
printf 'table inet t {\n\tchain c { @NEW_THING@ }\n}\n' > "$tmp/future.nft"
check "a placeholder the glue does not know stops the rendering" \
	sh -c "! UCI_FILE='$tmp/full' '$GLUE' nft '$tmp/default.conf' '$tmp/future.nft' >/dev/null 2>&1"

# 5: the init scripts parse; the Makefile's files and configure options exist
check "the feed Makefile is there" [ -s "$ow/Makefile" ]
for f in ipsec-masqd.init ipsec-masqd.uci-defaults ipsec-masqd-openwrt; do
	check "sh -n $f" sh -n "$ow/files/$f"
done
for f in $(sed -n 's|.*\./files/\([^ ]*\).*|\1|p' "$ow/Makefile" | sort -u); do
	check "Makefile installs files/$f, which exists" [ -f "$ow/files/$f" ]
done
"$src/configure" --help > "$tmp/help" 2>&1
for o in $(sed -n '/^CONFIGURE_ARGS/,/^$/p' "$ow/Makefile" | grep -o -- '--[a-z-]*'); do
	name=$(echo "$o" | sed 's/^--\(without\|with\|disable\|enable\)-/--/')
	check "configure knows $o" grep -q -- "${name#--}" "$tmp/help"
done

echo "$fails failure(s)"
[ "$fails" = 0 ]

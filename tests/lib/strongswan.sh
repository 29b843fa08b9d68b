# tests/lib/strongswan.sh: charon-systemd instances in the namespaces of
# tests/lib/netns.sh (source that first). Each charon reads only its own
# STRONGSWAN_CONF, rendered from tests/strongswan/strongswan.conf.in into
# $NL_TMP/NS/ (vici socket, log file, plugin list); kernel-libipsec does ESP
# in user space over a TUN device (this kernel has no in-kernel ESP), so
# the tunnels are UDP-encapsulated. (tests/test_strongswan.sh predates this
# file and still carries its own copy of these helpers.)
#
#   sw_init                      skip (77) unless charon, swanctl, plugins, TUN
#   sw_render TPL OUT K=V...     @K@ -> V; fails if a placeholder is left
#   sw_prepare NS [PLUGINS]      $NL_TMP/NS/strongswan.conf (extra plugins loaded)
#   sw_start NS                  charon in NS, ready when vici answers
#   sw_swan NS ARGS...           swanctl against NS's charon
#   sw_load_all NS               swanctl --load-all of $NL_TMP/NS/swanctl.conf

SW_CHARON=${CHARON:-/usr/sbin/charon-systemd}
SW_PLUGINDIR=/usr/lib/ipsec/plugins
SW_TPL=$NL_SRC/tests/strongswan

sw_init() {
	local p
	[ -x "$SW_CHARON" ] || nl_skip "$SW_CHARON missing (apt-get install charon-systemd)"
	command -v swanctl >/dev/null 2>&1 || nl_skip "swanctl missing (apt-get install strongswan-swanctl)"
	for p in kernel-libipsec kernel-netlink socket-default vici openssl kdf random nonce aes sha2 hmac updown; do
		[ -f "$SW_PLUGINDIR/libstrongswan-$p.so" ] ||
			nl_skip "strongSwan plugin $p missing in $SW_PLUGINDIR (apt-get install charon-systemd strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins)"
	done
	[ -c /dev/net/tun ] || nl_skip "no /dev/net/tun (kernel-libipsec needs a TUN device)"
	SW_TPL=$NL_SRC/tests/strongswan
}

sw_render() {
	local tpl=$1 out=$2 args=() kv; shift 2
	for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
	sed "${args[@]}" "$tpl" > "$out" && ! grep -q '@[A-Z_]*@' "$out"
}

sw_prepare() {
	local dir=$NL_TMP/$1
	mkdir -p "$dir" &&
	sw_render "$SW_TPL/strongswan.conf.in" "$dir/strongswan.conf" "DIR=$dir" || return 1
	[ -z "${2:-}" ] || sed -i "s|^\(\tload = \)|\1$2 |" "$dir/strongswan.conf"
}

sw_swan() {
	local ns=$1 dir=$NL_TMP/$1; shift
	nl_in "$ns" env STRONGSWAN_CONF="$dir/strongswan.conf" SWANCTL_DIR="$dir" \
		timeout 40 swanctl "$@" --uri "unix://$dir/charon.vici"
}

sw_start() {
	local ns=$1 dir=$NL_TMP/$1 i pid
	env -u NOTIFY_SOCKET STRONGSWAN_CONF="$dir/strongswan.conf" \
		ip netns exec "$ns" "$SW_CHARON" >"$dir/stderr" 2>&1 &
	pid=$!
	NL_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		[ -S "$dir/charon.vici" ] && sw_swan "$ns" --stats >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

sw_load_all() {
	local out=$NL_TMP/$1/load.out
	sw_swan "$1" --load-all --noprompt --file "$NL_TMP/$1/swanctl.conf" >"$out" 2>&1 &&
	grep -q "^loaded ike secret" "$out" &&
	grep -q "^successfully loaded [1-9][0-9]* connections, 0 unloaded" "$out"
}

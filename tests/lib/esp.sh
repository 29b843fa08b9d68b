# tests/lib/esp.sh: real-crypto ESP endpoints (tests/peers/esp_peer.py) for
# the namespace tests, sourced after tests/lib/netns.sh and nl_init.
#
#   sa SPI [TAG]                 "SPI:ENCKEY:AUTHKEY" (keys from SPI and TAG)
#   json FILE KEY [SUBKEY]       a value of a peer's JSON report (-1 absent)
#   esp_resp NS NAME ARGS...     a responder in the background (RPID[NAME])
#   esp_resp_end NAME            stop it (its report in $NL_TMP/NAME.json)
#   esp_init_bg NS NAME ARGS...  an initiator in the background (IPID[NAME])
#   esp_init_wait NAME           wait for it (bounded)
#   ge A B / eq A B              integer tests where -1 (missing) fails

ESP_PEER=$NL_SRC/tests/peers/esp_peer.py

sa() {
	local k
	k=$(printf 'ipsec-masqd esp test %s %s' "$1" "${2:-}" | sha256sum | cut -c1-64)
	printf '%s:%s:%s' "$1" "${k:0:32}" "$(printf '%s auth' "$k" | sha256sum | cut -c1-64)"
}

json() {
	"$NL_PY" - "$@" <<'PYEOF' 2>/dev/null || echo -1
import json, sys
try:
    v = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    for k in sys.argv[2:]:
        v = v[k]
    print(v)
except Exception:
    print(-1)
PYEOF
}

declare -A RPID IPID

esp_resp() {
	local ns=$1 name=$2; shift 2
	rm -f "$NL_TMP/$name.ready"
	nl_spawn "$ns" "$NL_PY" "$ESP_PEER" respond --ready "$NL_TMP/$name.ready" \
		--duration 120 "$@" >"$NL_TMP/$name.json" 2>"$NL_TMP/$name.err"
	RPID[$name]=$NL_LAST
	nl_wait_log ready 200 "$NL_TMP/$name.ready" ||
		{ nl_fail "responder $name did not start"; cat "$NL_TMP/$name.err"; return 1; }
}

esp_resp_end() {
	[ -n "${RPID[$1]:-}" ] && nl_stop "${RPID[$1]}" 50
	RPID[$1]=
	echo "  $1: $(tail -n1 "$NL_TMP/$1.json" 2>/dev/null)"
}

esp_init_bg() {
	local ns=$1 name=$2; shift 2
	nl_spawn "$ns" timeout -k 5 100 "$NL_PY" "$ESP_PEER" initiate --duration 90 "$@" \
		>"$NL_TMP/$name.json" 2>"$NL_TMP/$name.err"
	IPID[$name]=$NL_LAST
}

esp_init_wait() {
	nl_wait_pid "${IPID[$1]}" 110
	echo "  $1: $(tail -n1 "$NL_TMP/$1.json" 2>/dev/null)"
}

ge() { [ "$1" -ge "$2" ] 2>/dev/null; }
eq() { [ "$1" -eq "$2" ] 2>/dev/null; }

#!/bin/bash
# ipsec-masqd-announce against a stand-in router on 127.0.0.1
# (tests/peers/fake_announce_router.py; no root, no namespaces):
#   c1 a router that answers only with unrelated datagrams: the sender gives
#      up after its tries (one deadline a second from each send, which the
#      junk does not push back), exit 4, well before the junk stops
#   c2 cookie_required, then replayed, then accepted: the sender echoes the
#      cookie, sends again with a higher sequence number after "replayed",
#      and exits 0
# Skips (77) without python3.
set -u
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: $PY missing"; exit 77; }
FAKE=$top_srcdir/tests/peers/fake_announce_router.py
ANNOUNCE=$top_builddir/ipsec-masqd-announce
[ -x "$ANNOUNCE" ] || { echo "FAIL - $ANNOUNCE not built"; exit 1; }
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_announce_client.XXXXXX") || exit 1
FPID=
trap '[ -n "$FPID" ] && kill "$FPID" 2>/dev/null; rm -rf "$tmp"' EXIT
KEY=$(printf 'ipsec-masqd announce client test' | sha256sum | cut -c1-64)
printf '%s\n' "$KEY" > "$tmp/keys"
chmod 600 "$tmp/keys"
# a free port: the kernel's choice for a socket we then close
PORT=$("$PY" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

fake() {   # SCENARIO SECONDS: the stand-in in the background, FPID set
	rm -f "$tmp/ready"
	"$PY" "$FAKE" "$1" --port "$PORT" --key "$KEY" --ready "$tmp/ready" --seconds "$2" > "$tmp/$1.json" &
	FPID=$!
	for i in $(seq 50); do [ -e "$tmp/ready" ] && return 0; sleep 0.1; done
	return 1
}
announce() {
	"$ANNOUNCE" announce --router 127.0.0.1 --port "$PORT" --key-file "$tmp/keys" \
		--remote 203.0.113.20 --spi-in 0x5b000011 "$@"
}
jexpr() { "$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null; }

# --- c1 ----------------------------------------------------------------------
fake junk 12 || fail "c1: the stand-in did not start"
t0=$(date +%s%N)
timeout 30 "$ANNOUNCE" announce --router 127.0.0.1 --port "$PORT" --key-file "$tmp/keys" \
	--remote 203.0.113.20 --spi-in 0x5b000011 --tries 2 > "$tmp/c1.out" 2>&1; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "c1: junk only: no answer, exit 4 ($rc: $(cat "$tmp/c1.out"))" [ "$rc" = 4 ]
# two tries of one second each; the junk goes on for 12 s
in_range() { [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; }
check "c1: it gave up after its two deadlines, not when the junk stopped ($ms ms)" \
	in_range "$ms" 1900 6000
kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null; FPID=

# --- c2 ----------------------------------------------------------------------
fake replayed 10 || fail "c2: the stand-in did not start"
out=$(announce --tries 1 2>&1); rc=$?
wait "$FPID"; FPID=
check "c2: cookie_required, replayed, then accepted: exit 0 ($rc: $out)" [ "$rc" = 0 ]
v=$(jexpr "$tmp/replayed.json" '[(s["ok"], s["cookie"]) for s in d["seen"]]')
check "c2: three signed messages: without the cookie, then twice with it ($v)" \
	[ "$v" = "[(True, False), (True, True), (True, True)]" ]
v=$(jexpr "$tmp/replayed.json" 'd["seen"][0]["seq"] < d["seen"][1]["seq"] < d["seen"][2]["seq"]')
check "c2: each with a higher sequence number ($v)" [ "$v" = True ]

echo "$fails failure(s)"
[ "$fails" = 0 ]

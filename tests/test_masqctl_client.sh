#!/bin/sh
# ipsec-masqctl against a stand-in daemon (a Unix socket served by python3)
# that answers `show` whole or cut short, as a daemon stopped in the middle
# of a large table would (issue 13, item 7): a complete table, text or
# JSON, exits 0 and is printed (text without its last line "(end)"); a cut
# one exits 6 (communication error) and prints nothing on stdout. A whole
# text table whose rows are fewer than its header counted (entries removed
# while a large table streamed) is whole. No root, no network.
set -u
: "${top_builddir:=.}"
CTL=${IPSEC_MASQCTL:-$top_builddir/ipsec-masqctl}
PY=/usr/bin/python3
[ -x "$CTL" ] || { echo "SKIP: $CTL not built"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: $PY missing"; exit 77; }
fails=0
ok()   { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_masqctl_client.XXXXXX") || exit 1
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT

# The stand-in: for each connection, reads the request line and sends the
# next answer file of its list as is, then closes.
cat > "$tmp/serve.py" <<'PYEOF'
import os, socket, sys
path, answers = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(4)
open(path + ".ready", "w").close()
for a in answers:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(open(a, "rb").read())
    c.close()
PYEOF

row_isa="198.51.100.20  192.168.1.11  0102030405060708  0000000000000000  1s  1799s"
row_esp="198.51.100.20  192.168.1.11  0x00001000  0x00002000  established  1  1  72  72  1s  1799s  -"
text_whole=$(printf 'ISAKMP entries: 2\nremote  host  cookie_i  cookie_r  idle  ttl\n%s\n%s\n\nESP entries: 1\nremote  host  spi_out  spi_in  state  pkts_out  pkts_in  bytes_out  bytes_in  idle  ttl  offloaded\n%s\n\nPending inits: 0\nremote  host  spi_out  idle  ttl\n' "$row_isa" "$row_isa" "$row_esp")
printf 'ok\n%s\n(end)\n' "$text_whole" > "$tmp/whole.txt"
# rows fewer than counted (two ISAKMP entries went while it streamed)
text_changed=$(printf 'ISAKMP entries: 4\nremote  host  cookie_i  cookie_r  idle  ttl\n%s\n%s\n\nESP entries: 1\nremote  host\n%s\n\nPending inits: 0\nremote  host  spi_out  idle  ttl\n' "$row_isa" "$row_isa" "$row_esp")
printf 'ok\n%s\n(end)\n' "$text_changed" > "$tmp/changed.txt"
# whole but for the end line: cut just before it
printf 'ok\n%s\n' "$text_whole" > "$tmp/cut4.txt"
# cut in the ISAKMP rows, after the ESP header, and before the pending section
printf 'ok\nISAKMP entries: 2\nremote  host  cookie_i  cookie_r  idle  ttl\n%s\n' "$row_isa" > "$tmp/cut1.txt"
printf 'ok\nISAKMP entries: 0\nremote  host  cookie_i  cookie_r  idle  ttl\n\nESP entries: 3\nremote  host\n%s\n' "$row_esp" > "$tmp/cut2.txt"
printf 'ok\nISAKMP entries: 0\nremote  host\n\nESP entries: 1\nremote  host\n%s\n' "$row_esp" > "$tmp/cut3.txt"
printf 'ok\n{"version":1,"isakmp":[],"esp":[],"pending":[]}\n' > "$tmp/whole.json"
printf 'ok\n{"version":1,"isakmp":[],"esp":[{"remote":"198.51.100.20"},' > "$tmp/cut.json"
printf 'ok\npong\n' > "$tmp/pong"

"$PY" "$tmp/serve.py" "$tmp/sock" "$tmp/whole.txt" "$tmp/changed.txt" "$tmp/cut1.txt" \
	"$tmp/cut2.txt" "$tmp/cut3.txt" "$tmp/cut4.txt" "$tmp/whole.json" "$tmp/cut.json" "$tmp/pong" &
srv=$!
for i in $(seq 50); do [ -e "$tmp/sock.ready" ] && break; sleep 0.1; done

"$CTL" -s "$tmp/sock" show > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" = 0 ] && [ "$(cat "$tmp/out")" = "$text_whole" ]; then
	ok "a whole text table: status 0, printed"
else
	fail "a whole text table: status $rc: $(cat "$tmp/err")"
fi
"$CTL" -s "$tmp/sock" show > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" = 0 ] && [ "$(cat "$tmp/out")" = "$text_changed" ]; then
	ok "a whole text table whose rows changed while it streamed: status 0, printed"
else
	fail "a whole text table whose rows changed while it streamed: status $rc: $(cat "$tmp/err")"
fi
for cut in cut1 cut2 cut3 cut4; do
	"$CTL" -s "$tmp/sock" show > "$tmp/out" 2> "$tmp/err"; rc=$?
	if [ "$rc" = 6 ] && [ ! -s "$tmp/out" ] && grep -q "cut short" "$tmp/err"; then
		ok "a text table cut short ($cut): status 6, nothing printed"
	else
		fail "a text table cut short ($cut): status $rc, $(wc -c < "$tmp/out") bytes out: $(cat "$tmp/err")"
	fi
done
"$CTL" -s "$tmp/sock" show --json > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" = 0 ] && grep -q '"pending":\[\]}' "$tmp/out"; then
	ok "a whole JSON table: status 0"
else
	fail "a whole JSON table: status $rc: $(cat "$tmp/err")"
fi
"$CTL" -s "$tmp/sock" show --json > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" = 6 ] && [ ! -s "$tmp/out" ]; then
	ok "a JSON table cut short: status 6, nothing printed"
else
	fail "a JSON table cut short: status $rc: $(cat "$tmp/err")"
fi
"$CTL" -s "$tmp/sock" ping > "$tmp/out" 2> "$tmp/err"; rc=$?
if [ "$rc" = 0 ] && [ "$(cat "$tmp/out")" = pong ]; then ok "ping: status 0"; else fail "ping: status $rc"; fi

[ "$fails" = 0 ] || exit 1
echo "all passed"

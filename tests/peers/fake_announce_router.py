#!/usr/bin/python3
"""A stand-in for the router's announcement listener (ipsec-masqd-announce(8),
protocol version 2), for tests/test_announce_client.sh: it answers the
sender's datagrams on a UDP address the way a scenario says, built with
Python's hmac independently of the C code, and prints one JSON line of what
it received.

  junk      answer every datagram with a stream of unrelated datagrams
            (one every 0.2 s for --seconds), never with a reply
  replayed  first cookie_required with a cookie, then "replayed" to the
            first message that echoes it, then accepted
"""
import argparse
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time

MAGIC = b"IMSA"
BODY = 60
LEN = 92
ACCEPTED, REPLAYED, COOKIE_REQUIRED = 0, 11, 17


def reply(key, msg, status, cookie):
    body = bytearray(msg[:BODY])
    body[5] = 3
    body[6] = status
    body[8:16] = struct.pack("!Q", int(time.time() * 1000))
    body[44:60] = cookie
    return bytes(body) + hmac.new(key, bytes(body), hashlib.sha256).digest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=("junk", "replayed"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    key = bytes.fromhex(a.key)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", a.port))
    open(a.ready, "w").close()
    cookie = os.urandom(16)
    seen = []
    end = time.monotonic() + a.seconds
    s.settimeout(0.2)
    peer = None
    replayed_sent = False
    while time.monotonic() < end:
        try:
            msg, peer = s.recvfrom(256)
        except socket.timeout:
            if a.scenario == "junk" and peer:
                s.sendto(b"not a reply", peer)
            continue
        ok = (len(msg) == LEN and msg[:4] == MAGIC and msg[4] == 2 and
              hmac.compare_digest(hmac.new(key, msg[:BODY], hashlib.sha256).digest(), msg[BODY:]))
        seq = struct.unpack("!Q", msg[16:24])[0] if len(msg) >= 24 else None
        echoed = msg[44:60] == cookie
        seen.append({"ok": ok, "seq": seq, "cookie": echoed})
        if not ok or a.scenario == "junk":
            if peer:
                s.sendto(b"not a reply", peer)
            continue
        if not echoed:
            st = COOKIE_REQUIRED
        elif not replayed_sent:
            st, replayed_sent = REPLAYED, True
        else:
            st = ACCEPTED
        s.sendto(reply(key, msg, st, cookie), peer)
        if st == ACCEPTED:
            break
    print(json.dumps({"seen": seen}))


if __name__ == "__main__":
    sys.exit(main())

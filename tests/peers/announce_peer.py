#!/usr/bin/python3
"""SPI announcements (ipsec-masqd-announce(8), protocol version 2) built
independently of the C code, with Python's hmac, for the namespace tests:
good ones, and the hostile kinds the router must refuse.

  send   with --cookie auto (the default) first ask the router for our
         address's cookie (a valid message without one: the router answers
         cookie_required with the cookie); then build one message with it
         and send it COUNT times (the same bytes: a replay from the second
         on) from a UDP socket; after each, wait up to TIMEOUT for the
         router's signed reply. Prints one JSON line:
         {"replies": [status or null, ...]}; a reply whose MAC does not
         verify under the key counts as null. --cookie none sends no
         cookie, --cookie HEX that one.
  spoof  send it once as a raw IP packet with source --local out of IFACE
         to the Ethernet address DST_MAC (from the WAN with a LAN source,
         or from one LAN host with another's); --cookie as for send, but
         auto fetches the cookie of --cookie-from (our real address).

Fields default to a valid announcement for the sending address; --host,
--ts-offset, --seq, --version, --key, --truncate, --cookie make it hostile.
"""
import argparse
import hashlib
import hmac
import json
import select
import socket
import struct
import sys
import time

MAGIC = b"IMSA"
BODY = 60           # what the MAC covers; the cookie is bytes 44..59
LEN = 92
COOKIE_REQUIRED = 17


def build(a, cookie, version=None, seq=None, host=None):
    ts = int(time.time() * 1000) + int(a.ts_offset * 1000)
    if seq is None:
        seq = a.seq if a.seq is not None else time.time_ns()
    body = MAGIC + struct.pack(
        "!BBBBQQ4s4sIII16s", a.version if version is None else version,
        a.type, 0, 0, ts, seq, socket.inet_aton(host or a.host),
        socket.inet_aton(a.remote), int(a.spi_in, 0), int(a.spi_out, 0),
        a.ttl, cookie)
    msg = body + hmac.new(bytes.fromhex(a.key), body, hashlib.sha256).digest()
    return msg[:a.truncate] if a.truncate else msg, seq


def verify_reply(data, key, seq):
    """(status, cookie) of an authentic reply to seq, else None."""
    if len(data) != LEN or data[:4] != MAGIC or data[5] != 3:
        return None
    mac = hmac.new(bytes.fromhex(key), data[:BODY], hashlib.sha256).digest()
    if not hmac.compare_digest(mac, data[BODY:]):
        return None
    if struct.unpack("!Q", data[16:24])[0] != seq:
        return None
    return data[6], data[44:60]


def exchange(s, a, msg, seq):
    """Sends msg, waits for the reply to seq: (status, cookie) or None."""
    s.sendto(msg, (a.router, a.port))
    end = time.monotonic() + a.timeout
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return None
        try:
            data = s.recv(256)
        except ConnectionRefusedError:
            return None
        got = verify_reply(data, a.key, seq)
        if got is not None:
            return got


def get_cookie(a, local):
    """The router's cookie for local: a valid version 2 message from it
    without one, answered cookie_required. 16 zero bytes if none came."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((local, 0))
    msg, seq = build(a, bytes(16), version=2, seq=time.time_ns(), host=local)
    got = exchange(s, a, msg, seq)
    s.close()
    if got is None or got[0] != COOKIE_REQUIRED:
        return bytes(16)
    return got[1]


def cookie_of(a, local):
    if a.cookie == "none":
        return bytes(16)
    if a.cookie == "auto":
        return get_cookie(a, local)
    return bytes.fromhex(a.cookie)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("send", "spoof"))
    ap.add_argument("--router", required=True)
    ap.add_argument("--port", type=int, default=4510)
    ap.add_argument("--key", required=True, help="64 hex digits")
    ap.add_argument("--local", required=True, help="our address")
    ap.add_argument("--host", help="the host field (default: --local)")
    ap.add_argument("--remote", required=True)
    ap.add_argument("--spi-in", required=True)
    ap.add_argument("--spi-out", default="0")
    ap.add_argument("--ttl", type=int, default=600)
    ap.add_argument("--type", type=int, default=1, help="1 announce, 2 withdraw")
    ap.add_argument("--version", type=int, default=2)
    ap.add_argument("--cookie", default="auto", help="auto, none or 32 hex digits")
    ap.add_argument("--cookie-from", help="spoof: the address whose cookie auto fetches")
    ap.add_argument("--ts-offset", type=float, default=0.0, help="seconds")
    ap.add_argument("--seq", type=int)
    ap.add_argument("--truncate", type=int, default=0)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--dst-mac")
    a = ap.parse_args()
    a.host = a.host or a.local
    if a.type == 2:
        a.ttl = 0
    if a.mode == "spoof":
        msg, seq = build(a, cookie_of(a, a.cookie_from) if a.cookie_from or a.cookie != "auto" else bytes(16))
        from scapy.all import Ether, IP, UDP, Raw, sendp, conf, get_if_hwaddr
        conf.verb = 0
        # our own MAC: a bridge drops frames from 00:00:00:00:00:00
        sendp(Ether(src=get_if_hwaddr(a.iface), dst=a.dst_mac) /
              IP(src=a.local, dst=a.router) /
              UDP(sport=4511, dport=a.port) / Raw(msg), iface=a.iface)
        print(json.dumps({"spoofed": 1}))
        return
    cookie = cookie_of(a, a.local)
    msg, seq = build(a, cookie)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.local, 0))
    replies = []
    for _ in range(a.count):
        got = exchange(s, a, msg, seq)
        replies.append(None if got is None else got[0])
    print(json.dumps({"replies": replies}))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Minimal IKEv2 endpoint (headers only) for the namespace tests.

Run with /usr/bin/python3 (Debian's python3-scapy) inside a test namespace.
Only the 28-byte IKE header is exchanged: enough for the masquerade, which
routes ISAKMP by its SPIs ("cookies") and never looks further. Packets are
read from an AF_PACKET capture (tests/lib/netns.sh drops UDP 500 on the
endpoints' INPUT so that the kernel sends no ICMP errors) and sent from a
UDP socket bound to port 500.

Modes
  respond   answer every IKE_SA_INIT request that reaches LOCAL (initiator
            flag, responder SPI 0) with a response under a fresh responder
            SPI, and a retransmitted request (an initiator SPI seen before)
            with the same response again, as an IKE daemon does (RFC 7296,
            2.1); stop on SIGTERM/SIGINT or after DURATION.
  initiate  send an IKE_SA_INIT request with initiator SPI COOKIE to PEER
            and wait up to TIMEOUT for its response (same initiator SPI, a
            responder SPI, from PEER); resend up to COUNT times in all.

Prints one JSON line: respond: received (requests), answered (new
exchanges), resent (responses sent again), distinct (initiator SPIs seen),
peers (requests per source address); initiate: sent,
answered (0 or 1), cookie_r (hex), rtt_ms (first send to the answer).
"""
import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import time

from scapy.all import conf
from scapy.layers.inet import IP, UDP

conf.verb = 0

IKE_SA_INIT = 34
FLAG_INITIATOR = 0x08
FLAG_RESPONSE = 0x20
HDR = struct.Struct("!QQBBBBII")


class Stop(Exception):
    pass


def header(ci, cr, flags):
    return HDR.pack(ci, cr, 0, 0x20, IKE_SA_INIT, flags, 0, HDR.size)


def parse(p, local):
    """(src, sport, ci, cr, flags) of an IKE header to LOCAL:500, or None."""
    if p is None or IP not in p or UDP not in p:
        return None
    ip, udp = p[IP], p[UDP]
    if ip.dst != local or udp.dport != 500:
        return None
    body = bytes(udp.payload)
    if len(body) < HDR.size:
        return None
    ci, cr, _, _, xchg, flags, _, _ = HDR.unpack_from(body)
    if xchg != IKE_SA_INIT:
        return None
    return ip.src, udp.sport, ci, cr, flags


def sockets(args):
    rx = conf.L2listen(iface=args.iface,
                       filter="udp dst port 500 and dst host %s" % args.local)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tx.bind((args.local, 500))
    return rx, tx


def respond(args):
    rx, tx = sockets(args)
    rnd = random.Random(os.getpid() ^ int(time.time()))
    st = {"role": "respond", "received": 0, "answered": 0, "resent": 0,
          "distinct": 0, "peers": {}}
    seen = {}   # initiator SPI -> our responder SPI
    deadline = time.monotonic() + args.duration

    def stop(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([rx], [], [], left)
            if not r:
                continue
            m = parse(rx.recv(), args.local)
            if m is None:
                continue
            src, sport, ci, cr, flags = m
            if cr or flags & FLAG_RESPONSE or not flags & FLAG_INITIATOR:
                continue
            st["received"] += 1
            st["peers"][src] = st["peers"].get(src, 0) + 1
            if ci in seen:
                tx.sendto(header(ci, seen[ci], FLAG_RESPONSE), (src, sport))
                st["resent"] += 1
                continue
            seen[ci] = rnd.getrandbits(64) | 1
            tx.sendto(header(ci, seen[ci], FLAG_RESPONSE), (src, sport))
            st["answered"] += 1
    except Stop:
        pass
    st["distinct"] = len(seen)
    print(json.dumps(st, sort_keys=True), flush=True)


def initiate(args):
    rx, tx = sockets(args)
    ci = int(args.cookie, 0)
    st = {"role": "initiate", "sent": 0, "answered": 0, "cookie_r": None,
          "rtt_ms": None}
    t0 = time.monotonic()
    for _ in range(args.count):
        tx.sendto(header(ci, 0, FLAG_INITIATOR), (args.peer, 500))
        st["sent"] += 1
        until = time.monotonic() + args.timeout
        while not st["answered"]:
            left = until - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([rx], [], [], left)
            if not r:
                continue
            m = parse(rx.recv(), args.local)
            if m is None:
                continue
            src, _, mci, mcr, flags = m
            if src == args.peer and mci == ci and mcr and \
                    flags & FLAG_RESPONSE:
                st["answered"] = 1
                st["cookie_r"] = "%016x" % mcr
                st["rtt_ms"] = int((time.monotonic() - t0) * 1000)
        if st["answered"]:
            break
    print(json.dumps(st, sort_keys=True), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("respond", "initiate"))
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--local", required=True, help="local address")
    ap.add_argument("--peer", help="initiate: the responder's address")
    ap.add_argument("--cookie", default="0x1",
                    help="initiate: initiator SPI")
    ap.add_argument("--count", type=int, default=4,
                    help="initiate: sends in all")
    ap.add_argument("--timeout", type=float, default=1.0,
                    help="initiate: wait after each send (s)")
    ap.add_argument("--duration", type=float, default=60.0,
                    help="respond: hard limit on the run (s)")
    ap.add_argument("--ready", help="respond: file written when listening")
    args = ap.parse_args()
    args.count = max(1, min(args.count, 100))
    args.duration = max(1.0, min(args.duration, 300.0))
    if args.mode == "initiate":
        if not args.peer:
            ap.error("initiate needs --peer")
        initiate(args)
    else:
        respond(args)


if __name__ == "__main__":
    main()

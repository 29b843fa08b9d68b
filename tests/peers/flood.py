#!/usr/bin/python3
"""Fast raw-socket packet sender for the namespace flood tests.

Run with /usr/bin/python3 inside a test namespace. Packets are built once
(struct, not scapy: scapy sends a few thousand a second, this sends tens of
thousands) and sent through one raw IP socket (IP_HDRINCL: the source may
be spoofed; the kernel fills in the header checksum and the total length).

Kinds
  esp     ESP (protocol 50): an SPI, a sequence number, 48 bytes of junk.
          Without --spi every variant draws a random SPI from --spi-range.
  isakmp  UDP 500 -> 500, an IKEv2 IKE_SA_INIT header (28 bytes, initiator
          flag, no payloads), a random initiator SPI ("cookie") per variant;
          --cookie-r also gives each a random responder cookie.

Sources and destinations are ADDR or FIRST-LAST (inclusive ranges); the
variants take them round robin. --variants packets are built and sent over
and over until --count are sent or --duration has passed. --rate paces the
sending (packets a second; 0: as fast as the socket takes them).

Prints one JSON line: sent, errors (send failures, e.g. ENOBUFS), seconds,
pps, first_seq (the first ESP sequence number used).
"""
import argparse
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import time


def addr_list(spec):
    """ADDR or FIRST-LAST -> list of dotted quads."""
    lo, _, hi = spec.partition("-")
    a = int(ipaddress.IPv4Address(lo))
    b = int(ipaddress.IPv4Address(hi)) if hi else a
    if b < a or b - a > 65535:
        sys.exit("bad address range %r" % spec)
    return [str(ipaddress.IPv4Address(x)) for x in range(a, b + 1)]


def ip_header(src, dst, proto, payload_len, ident):
    # version/IHL, TOS, total length, id, frag, TTL, proto, checksum (the
    # kernel fills it in for IP_HDRINCL), addresses
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, 0,
                       64, proto, 0, socket.inet_aton(src),
                       socket.inet_aton(dst))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=("esp", "isakmp"))
    ap.add_argument("--src", required=True, help="ADDR or FIRST-LAST")
    ap.add_argument("--dst", required=True, help="ADDR or FIRST-LAST")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--variants", type=int, default=4096)
    ap.add_argument("--spi", type=lambda s: int(s, 0), default=0,
                    help="esp: one SPI for every packet")
    ap.add_argument("--spi-range", default="0xf0000000-0xfeffffff",
                    help="esp: random SPIs from LO-HI")
    ap.add_argument("--seq", type=lambda s: int(s, 0), default=1,
                    help="esp: first sequence number")
    ap.add_argument("--cookie-r", action="store_true",
                    help="isakmp: a random responder cookie too")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    a.count = max(0, min(a.count, 10000000))
    a.duration = max(0.1, min(a.duration, 300.0))
    a.variants = max(1, min(a.variants, 65536))
    rnd = random.Random(a.seed)
    srcs, dsts = addr_list(a.src), addr_list(a.dst)
    slo, _, shi = a.spi_range.partition("-")
    slo, shi = int(slo, 0), int(shi, 0)

    pkts = []
    for i in range(a.variants):
        src, dst = srcs[i % len(srcs)], dsts[i % len(dsts)]
        ident = rnd.randrange(1, 65536)
        if a.kind == "esp":
            spi = a.spi or rnd.randrange(slo, shi + 1)
            # the sequence number is patched in per packet below
            body = struct.pack("!II", spi, 0) + rnd.randbytes(48)
            pkts.append((bytearray(ip_header(src, dst, 50, len(body), ident)
                                   + body), (dst, 0)))
        else:
            ci = rnd.getrandbits(64) | 1
            cr = (rnd.getrandbits(64) | 1) if a.cookie_r else 0
            ike = struct.pack("!QQBBBBII", ci, cr, 33, 0x20, 34, 0x08, 0, 28)
            udp = struct.pack("!HHHH", 500, 500, 8 + len(ike), 0) + ike
            pkts.append((bytes(ip_header(src, dst, 17, len(udp), ident)
                               + udp), (dst, 0)))

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = errors = 0
    seq = a.seq
    n = len(pkts)
    esp = a.kind == "esp"
    pack_into = struct.pack_into
    sendto = s.sendto
    t0 = time.monotonic()
    deadline = t0 + a.duration
    while sent + errors < a.count:
        now = time.monotonic()
        if now >= deadline:
            break
        if a.rate > 0:
            ahead = t0 + (sent + errors) / a.rate - now
            if ahead > 0:
                time.sleep(ahead)
        # a chunk between clock reads
        for _ in range(min(64, a.count - sent - errors)):
            b, to = pkts[(sent + errors) % n]
            if esp:
                pack_into("!I", b, 24, seq & 0xFFFFFFFF)
                seq += 1
            try:
                sendto(b, to)
                sent += 1
            except OSError:
                errors += 1
    t = time.monotonic() - t0
    print(json.dumps({"sent": sent, "errors": errors, "seconds": round(t, 3),
                      "pps": int(sent / t) if t > 0 else 0,
                      "first_seq": a.seq}), flush=True)


if __name__ == "__main__":
    main()

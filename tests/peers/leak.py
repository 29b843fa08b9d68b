#!/usr/bin/python3
"""Packets for tests/test_leak.sh (run with /usr/bin/python3 in a namespace).

Modes
  ike-send   one IKE header (28 bytes, IKEv2 IKE_SA_INIT) from a UDP socket
             bound to --sport, to --dst:--dport, --count times --interval
             apart. The kernel builds the UDP header: a real peer's packet.
  ike-recv   binds --sport; with --dst first sends --count IKE headers like
             ike-send from that socket; then prints one JSON line per
             datagram received within --timeout:
             {"src": ..., "sport": ..., "cookie_i": ...}.
  ike-echo   binds --sport, sends back every datagram received within
             --timeout to where it came from.
  barrage    malformed and fragmented packets from --src to --dst through a
             raw socket (IP_HDRINCL; the kernel fills in the total length and
             header checksum only): UDP headers cut short after the source
             port and after the ports, bad UDP lengths, with port 500 as the
             source, the destination and both; ESP and AH cut short; ESP and
             AH in fragments (complete sets, a first fragment alone, a later
             fragment alone). Prints {"sent": N, "kinds": {...}}.
"""
import argparse
import json
import random
import socket
import struct
import sys
import time


def ike_header(cookie_i, cookie_r=0, body=b""):
    return (struct.pack(">QQBBBB", cookie_i, cookie_r, 33, 0x20, 34,
                        0x08 if not cookie_r else 0x20)
            + struct.pack(">II", 0, 28 + len(body)) + body)


def ike_send(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.sport))
    for i in range(a.count):
        s.sendto(ike_header(a.cookie_i, a.cookie_r), (a.dst, a.dport))
        time.sleep(a.interval)
    print(json.dumps({"sent": a.count}))


def ike_recv(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.sport))
    if a.dst:
        for i in range(a.count):
            s.sendto(ike_header(a.cookie_i, a.cookie_r), (a.dst, a.dport))
            time.sleep(a.interval)
    end = time.time() + a.timeout
    if a.ready:
        open(a.ready, "w").write("ready\n")
    while True:
        left = end - time.time()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, (src, sport) = s.recvfrom(4096)
        except socket.timeout:
            break
        ci = struct.unpack(">Q", data[:8])[0] if len(data) >= 8 else -1
        print(json.dumps({"src": src, "sport": sport, "cookie_i": ci}), flush=True)


def ike_echo(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", a.sport))
    end = time.time() + a.timeout
    if a.ready:
        open(a.ready, "w").write("ready\n")
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            data, peer = s.recvfrom(4096)
        except socket.timeout:
            break
        s.sendto(data, peer)


def ip_header(src, dst, proto, payload_len, ident, frag=0, mf=False):
    flags_frag = (0x2000 if mf else 0) | (frag // 8)
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident,
                       flags_frag, 64, proto, 0, socket.inet_aton(src),
                       socket.inet_aton(dst))


def barrage(a):
    rnd = random.Random(a.seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    kinds = {}
    pkts = []

    def add(kind, proto, payload, frag=0, mf=False, ident=None):
        ident = rnd.randrange(1, 65536) if ident is None else ident
        pkts.append((kind, ip_header(a.src, a.dst, proto, len(payload), ident,
                                     frag, mf) + payload))

    other = lambda: rnd.randrange(1024, 65536)
    for _ in range(a.per_kind):
        for sp, dp in ((500, other()), (other(), 500), (500, 500)):
            tag = "s500" if dp != 500 else ("d500" if sp != 500 else "both")
            add("udp_2_bytes_" + tag, 17, struct.pack(">H", sp))
            add("udp_4_bytes_" + tag, 17, struct.pack(">HH", sp, dp))
            add("udp_6_bytes_" + tag, 17, struct.pack(">HHH", sp, dp, 8))
            body = ike_header(rnd.getrandbits(64) | 1)
            for ulen in (0, 7, 9, 8 + len(body) + 40, 65535):
                add("udp_len_%d_%s" % (ulen, tag), 17,
                    struct.pack(">HHHH", sp, dp, ulen, 0) + body)
        add("esp_3_bytes", 50, bytes(3))
        add("ah_5_bytes", 51, bytes([4, 4, 0, 0, 1]))
        # ESP and AH in fragments: a complete set of two, a first fragment
        # alone, a later fragment alone.
        for proto, name in ((50, "esp"), (51, "ah")):
            if proto == 50:
                whole = struct.pack(">II", 0x100 + rnd.randrange(1 << 20), 1) + bytes(120)
            else:
                whole = bytes([50, 4, 0, 0]) + struct.pack(">II", 0x200, 1) + bytes(124)
            ident = rnd.randrange(1, 65536)
            add(name + "_frag_complete", proto, whole[:64], 0, True, ident)
            add(name + "_frag_complete", proto, whole[64:], 64, False, ident)
            add(name + "_frag_first_only", proto, whole[:64], 0, True)
            add(name + "_frag_later_only", proto, whole[64:], 64, False)
    rnd.shuffle(pkts)
    interval = 1.0 / a.rate if a.rate > 0 else 0
    sent = 0
    for kind, p in pkts:
        try:
            s.sendto(p, (a.dst, 0))
            kinds[kind] = kinds.get(kind, 0) + 1
            sent += 1
        except OSError:
            pass
        if interval:
            time.sleep(interval)
    print(json.dumps({"sent": sent, "kinds": kinds}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("ike-send", "ike-recv", "ike-echo", "barrage"))
    ap.add_argument("--src")
    ap.add_argument("--dst")
    ap.add_argument("--sport", type=int, default=500)
    ap.add_argument("--dport", type=int, default=500)
    ap.add_argument("--cookie-i", type=lambda v: int(v, 0), default=1)
    ap.add_argument("--cookie-r", type=lambda v: int(v, 0), default=0)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--ready")
    ap.add_argument("--per-kind", type=int, default=10)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    {"ike-send": ike_send, "ike-recv": ike_recv, "ike-echo": ike_echo,
     "barrage": barrage}[a.mode](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())

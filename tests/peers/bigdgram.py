#!/usr/bin/python3
"""Large ESP and ISAKMP datagrams (up to ~64 KB, fragmented on the wire), for
the namespace tests.

Run with /usr/bin/python3. Plain sockets, no scapy: ESP through a raw
IPPROTO_ESP socket (the kernel adds the IP header and fragments), ISAKMP
through a UDP socket on port 500 (the kernel fragments, and checks the UDP
checksum of what it receives). The payload is not encrypted: it is a pattern
derived from the SPI or cookie and a sequence number, so the receiver can
tell an intact datagram from a damaged one.

Modes
  respond   answer every intact ESP datagram to LOCAL with SPI --spi-in by
            one of the same size under --spi-out to its sender, and every
            intact ISAKMP request by a response with the same cookies;
            stop on SIGTERM or after --duration. Counts what came from an
            address other than --expect-src (bad_src).
  sink      count the intact ESP datagrams to LOCAL with SPI --spi-in of
            --size bytes (received, intact), until SIGTERM or --duration.
  send      --count ESP datagrams (SPI --spi-out) of --size bytes to --peer,
            --interval apart, no answer awaited.
  initiate  --count ESP datagrams (SPI --spi-out) and --count ISAKMP
            requests (cookie --cookie) of --size bytes to --peer, each
            waiting --timeout for its answer, sent again up to --tries
            times; an answer counts when it comes from --peer to LOCAL,
            intact, with the right SPI/cookie and sequence number.

Each prints one JSON line: sent, received, intact, answered (per protocol),
bad_src, bad_data.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

IPPROTO_ESP = 50
HDR = 28   # ISAKMP header


def pattern(key, seq, n):
    """n bytes that depend on key and seq."""
    seed = (key * 2654435761 + seq * 40503) & 0xffffffff
    block = bytes(((seed >> (8 * (i % 4))) + i) & 0xff for i in range(251))
    reps = n // len(block) + 1
    return (block * reps)[:n]


def esp_make(spi, seq, size):
    return struct.pack("!II", spi, seq) + pattern(spi, seq, size - 8)


def esp_check(data, size=None):
    """(spi, seq) of an intact ESP payload, or None."""
    if len(data) < 8:
        return None
    spi, seq = struct.unpack("!II", data[:8])
    if size is not None and len(data) != size:
        return None
    if data[8:] != pattern(spi, seq, len(data) - 8):
        return None
    return spi, seq


def ike_make(cookie_i, cookie_r, seq, size, response):
    flags = 0x20 if response else 0x08
    hdr = struct.pack("!QQBBBBII", cookie_i, cookie_r, 0, 0x20, 34, flags,
                      seq, size)
    return hdr + pattern(cookie_i & 0xffffffff, seq, size - HDR)


def ike_check(data):
    """(cookie_i, cookie_r, seq, response) of an intact message, or None."""
    if len(data) < HDR:
        return None
    ci, cr, _np, _ver, _ex, flags, seq, length = struct.unpack(
        "!QQBBBBII", data[:HDR])
    if length != len(data):
        return None
    if data[HDR:] != pattern(ci & 0xffffffff, seq, len(data) - HDR):
        return None
    return ci, cr, seq, bool(flags & 0x20)


def sockets(local):
    esp = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_ESP)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((local, 500))
    for s in (esp, udp):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        # fragment locally, never set DF
        s.setsockopt(socket.IPPROTO_IP, 10, 0)   # IP_MTU_DISCOVER, DONT
    return esp, udp


def ip_addrs(pkt):
    """(src, dst, payload) of a raw-socket read (IP header included)."""
    ihl = (pkt[0] & 0x0f) * 4
    return (socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20]),
            pkt[ihl:])


def respond(a):
    esp, udp = sockets(a.local)
    st = {"received": 0, "intact": 0, "answered": 0, "bad_src": 0,
          "bad_data": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    end = time.time() + a.duration
    while not stop and time.time() < end:
        try:
            r, _, _ = select.select([esp, udp], [], [], 0.2)
        except InterruptedError:
            continue
        for s in r:
            if s is esp:
                src, dst, data = ip_addrs(esp.recv(70000))
                if dst != a.local:
                    continue
                got = esp_check(data)
                if got is None or got[0] != a.spi_in:
                    st["received"] += 1
                    st["bad_data"] += 1
                    continue
                st["received"] += 1
                if src != a.expect_src:
                    st["bad_src"] += 1
                    continue
                st["intact"] += 1
                esp.sendto(esp_make(a.spi_out, got[1], len(data)), (src, 0))
                st["answered"] += 1
            else:
                data, (src, port) = udp.recvfrom(70000)
                st["received"] += 1
                got = ike_check(data)
                if got is None or got[3]:
                    st["bad_data"] += 1
                    continue
                if src != a.expect_src:
                    st["bad_src"] += 1
                    continue
                st["intact"] += 1
                udp.sendto(ike_make(got[0], a.cookie_r, got[2], len(data),
                                    True), (src, port))
                st["answered"] += 1
    print(json.dumps(st), flush=True)


def wait_answer(a, esp, udp, proto, seq, st):
    """True when the answer to (proto, seq) arrives within the timeout."""
    end = time.time() + a.timeout
    while True:
        left = end - time.time()
        if left <= 0:
            return False
        r, _, _ = select.select([esp, udp], [], [], left)
        for s in r:
            if s is esp:
                src, dst, data = ip_addrs(esp.recv(70000))
                if dst != a.local:
                    continue
                st["received"] += 1
                got = esp_check(data, a.size)
                if got is None:
                    st["bad_data"] += 1
                elif src != a.peer:
                    st["bad_src"] += 1
                elif proto == "esp" and got == (a.spi_in, seq):
                    return True
            else:
                data, (src, _port) = udp.recvfrom(70000)
                st["received"] += 1
                got = ike_check(data)
                if got is None or len(data) != a.size:
                    st["bad_data"] += 1
                elif src != a.peer:
                    st["bad_src"] += 1
                elif (proto == "isakmp" and got[3] and got[0] == a.cookie
                      and got[1] == a.cookie_r and got[2] == seq):
                    return True


def initiate(a):
    esp, udp = sockets(a.local)
    st = {"sent": 0, "received": 0, "answered_esp": 0, "answered_isakmp": 0,
          "bad_src": 0, "bad_data": 0}
    for seq in range(1, a.count + 1):
        for proto in ((a.only,) if a.only else ("esp", "isakmp")):
            for _ in range(a.tries):
                if proto == "esp":
                    esp.sendto(esp_make(a.spi_out, seq, a.size), (a.peer, 0))
                else:
                    udp.sendto(ike_make(a.cookie, 0, seq, a.size, False),
                               (a.peer, 500))
                st["sent"] += 1
                if wait_answer(a, esp, udp, proto, seq, st):
                    st["answered_" + proto] += 1
                    break
    print(json.dumps(st), flush=True)


def sink(a):
    esp, _udp = sockets(a.local)
    st = {"received": 0, "intact": 0, "bad_src": 0, "bad_data": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    end = time.time() + a.duration
    while not stop and time.time() < end:
        try:
            r, _, _ = select.select([esp], [], [], 0.2)
        except InterruptedError:
            continue
        if not r:
            continue
        src, dst, data = ip_addrs(esp.recv(70000))
        if dst != a.local:
            continue
        got = esp_check(data, a.size)
        if got is None or got[0] != a.spi_in:
            if len(data) >= 4 and struct.unpack("!I", data[:4])[0] == a.spi_in:
                st["received"] += 1
                st["bad_data"] += 1
            continue
        st["received"] += 1
        if a.expect_src and src != a.expect_src:
            st["bad_src"] += 1
            continue
        st["intact"] += 1
    print(json.dumps(st), flush=True)


def send(a):
    esp, _udp = sockets(a.local)
    for seq in range(1, a.count + 1):
        esp.sendto(esp_make(a.spi_out, seq, a.size), (a.peer, 0))
        time.sleep(a.interval)
    print(json.dumps({"sent": a.count}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["respond", "initiate", "sink", "send"])
    p.add_argument("--local", required=True)
    p.add_argument("--peer")
    p.add_argument("--expect-src")
    p.add_argument("--spi-out", type=lambda x: int(x, 0), default=0)
    p.add_argument("--spi-in", type=lambda x: int(x, 0), default=0)
    p.add_argument("--cookie", type=lambda x: int(x, 0), default=0)
    p.add_argument("--cookie-r", type=lambda x: int(x, 0),
                   default=0x5252525252525252)
    p.add_argument("--size", type=int, default=60000)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--tries", type=int, default=4)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--ready")
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--only", choices=["esp", "isakmp"])
    a = p.parse_args()
    if a.size < HDR or a.size > 65000:
        sys.exit("size out of range")
    {"respond": respond, "initiate": initiate, "sink": sink,
     "send": send}[a.mode](a)


if __name__ == "__main__":
    main()

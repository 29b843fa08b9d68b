#!/usr/bin/python3
"""ESP tunnel-mode endpoint with real cryptography, for the namespace tests.

Run with /usr/bin/python3 (Debian's python3-scapy). Uses
scapy.layers.ipsec.SecurityAssociation, AES-CBC + HMAC-SHA256-128, tunnel
mode. Nothing here talks to the kernel's IPsec: packets are built, encrypted
and decrypted in this process, sent through a raw IP socket and received
from an AF_PACKET socket with a BPF filter on one interface.

Modes
  initiate  send COUNT encrypted probes (ICMP echo, then UDP) under the out
            SA to the peer's inner address, one at a time, waiting up to
            TIMEOUT for each answer; decrypt and verify every ESP packet
            that reaches LOCAL from PEER with the in SA.
  respond   decrypt and verify every ESP packet that reaches LOCAL; answer
            echo requests and UDP under the out SA paired with the packet's
            in SA (its own SPI, not the sender's), DELAY seconds later (a
            long path: there is no netem here); stop on SIGTERM/SIGINT or
            after DURATION.
  ike       send one IKEv2 IKE_SA_INIT header from UDP port 500 (no
            payloads): enough for the masquerade to record an ISAKMP entry.

SAs are SPI:ENCKEY:AUTHKEY, the keys in hex (16 bytes AES-128, 32 bytes
HMAC-SHA256). A responder takes pairs IN/OUT (one --pair each).

Every mode prints one JSON line on stdout and exits within DURATION seconds:
  sent, received (ESP packets addressed to LOCAL), verified (ICV good,
  decrypted, inner packet well formed), bad_icv (known SPI, ICV or
  decryption failed), unknown_spi (no SA for it), answered (probes answered,
  initiator; replies sent, responder), replayed (sequence numbers seen
  twice), by_spi (verified per in-SPI, hex); an initiator also reports
  first_answered (1 when its very first probe came back) and
  first_answer_s, seconds from its first probe to its first answer (-1 if
  none came).
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

from scapy.all import conf
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation
from scapy.packet import Raw

conf.verb = 0

CRYPT = "AES-CBC"
AUTH = "SHA2-256-128"
MARK = b"ipsec-masqd-esp-test "


class Stop(Exception):
    pass


def parse_sa(text, src, dst):
    """SPI:ENCKEY:AUTHKEY -> SecurityAssociation (tunnel src -> dst)."""
    try:
        spi, ek, ak = text.split(":")
        spi = int(spi, 0)
        ek, ak = bytes.fromhex(ek), bytes.fromhex(ak)
    except ValueError:
        sys.exit("bad SA %r: want SPI:ENCKEY:AUTHKEY (hex keys)" % text)
    if not 256 <= spi <= 0xFFFFFFFF or len(ek) != 16 or len(ak) != 32:
        sys.exit("bad SA %r: SPI 256..2^32-1, 16-byte key, 32-byte key" % text)
    return SecurityAssociation(ESP, spi=spi, crypt_algo=CRYPT, crypt_key=ek,
                               auth_algo=AUTH, auth_key=ak,
                               tunnel_header=IP(src=src, dst=dst))


class Endpoint:
    """The sockets, the counters and the in-SA table of one endpoint."""

    def __init__(self, args, bpf):
        self.local = args.local
        self.deadline = time.monotonic() + args.duration
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                socket.IPPROTO_RAW)
        # Open (and filter) the capture before anything is sent, so that no
        # answer can arrive unseen.
        self.rx = conf.L2listen(iface=args.iface, filter=bpf)
        self.sa_in = {}      # in-SPI -> (SA, out SA or None)
        self.seen = {}       # in-SPI -> set of sequence numbers
        self.stats = {"sent": 0, "received": 0, "verified": 0, "bad_icv": 0,
                      "unknown_spi": 0, "answered": 0, "replayed": 0,
                      "by_spi": {}}

    def send(self, sa, inner, dst):
        sa.tunnel_header = IP(src=self.local, dst=dst)
        pkt = sa.encrypt(inner)
        self.tx.sendto(bytes(pkt), (dst, 0))
        self.stats["sent"] += 1

    def poll(self, until, handler):
        """Reads packets until `until` (monotonic) or the deadline; each one
        verified goes to handler(inner, outer_src, spi); handler returns
        True to stop early."""
        until = min(until, self.deadline)
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.rx], [], [], left)
            if not r:
                continue
            p = self.rx.recv()
            if p is None or IP not in p or ESP not in p:
                continue
            if self.check(p[IP], handler):
                return True

    def check(self, ip, handler):
        st = self.stats
        if ip.dst != self.local:
            return False
        st["received"] += 1
        spi, seq = ip[ESP].spi, ip[ESP].seq
        if spi not in self.sa_in:
            st["unknown_spi"] += 1
            return False
        sa = self.sa_in[spi][0]
        try:
            inner = sa.decrypt(IP(bytes(ip)))
        except IPSecIntegrityError as e:
            st["bad_icv"] += 1
            print("bad ICV, spi 0x%x: %s" % (spi, e), file=sys.stderr)
            return False
        except Exception as e:  # ICV good but the plaintext is garbage
            st["bad_icv"] += 1
            print("undecryptable, spi 0x%x: %r" % (spi, e), file=sys.stderr)
            return False
        if not isinstance(inner, IP):
            st["bad_icv"] += 1
            return False
        seen = self.seen.setdefault(spi, set())
        if seq in seen:
            st["replayed"] += 1
        seen.add(seq)
        st["verified"] += 1
        key = "0x%x" % spi
        st["by_spi"][key] = st["by_spi"].get(key, 0) + 1
        return handler(inner, ip.src, spi)

    def report(self, **extra):
        self.stats.update(extra)
        print(json.dumps(self.stats, sort_keys=True), flush=True)


def probe(i, n_icmp, ident, src, dst):
    """Probe i: an ICMP echo request, or a UDP datagram after n_icmp."""
    body = MARK + b"%d %d " % (ident, i) + b"x" * 40
    if i < n_icmp:
        return IP(src=src, dst=dst) / ICMP(type=8, id=ident, seq=i) / Raw(body)
    return (IP(src=src, dst=dst) / UDP(sport=40000 + ident % 1000, dport=7) /
            Raw(body))


def answer_of(inner, ident, n_icmp, inner_local, inner_peer):
    """The probe number an inner packet answers, or None."""
    if inner.src != inner_peer or inner.dst != inner_local:
        return None
    if ICMP in inner and inner[ICMP].type == 0 and inner[ICMP].id == ident:
        body, i = bytes(inner[ICMP].payload), inner[ICMP].seq
        return i if i < n_icmp and body.startswith(MARK) else None
    if UDP in inner and inner[UDP].dport == 40000 + ident % 1000:
        body = bytes(inner[UDP].payload)
        if not body.startswith(MARK):
            return None
        try:
            got_id, i = body[len(MARK):].split(b" ")[:2]
            i = int(i)
        except ValueError:
            return None
        return i if int(got_id) == ident and i >= n_icmp else None
    return None


def initiate(args):
    ep = Endpoint(args, "ip proto 50 and src host %s and dst host %s"
                  % (args.peer, args.local))
    out = parse_sa(args.sa_out, args.local, args.peer)
    sin = parse_sa(args.sa_in, args.peer, args.local)
    ep.sa_in[sin.spi] = (sin, None)
    total = args.count + args.udp
    ident = out.spi & 0xFFFF
    answered = set()
    first = {"probe": None, "answer": None}

    def handler(inner, src, spi):
        i = answer_of(inner, ident, args.count, args.inner_local,
                      args.inner_peer)
        if i is None:
            return False
        answered.add(i)
        if first["answer"] is None:
            first["answer"] = time.monotonic()
        return i == current[0]

    current = [None]
    print("ready", file=sys.stderr, flush=True)
    if args.start_at:
        time.sleep(max(0.0, min(args.start_at - time.time(), 30.0)))
    for i in range(total):
        if time.monotonic() >= ep.deadline:
            break
        if args.stop_file and os.path.exists(args.stop_file):
            break
        current[0] = i
        if first["probe"] is None:
            first["probe"] = time.monotonic()
        ep.send(out, probe(i, args.count, ident, args.inner_local,
                           args.inner_peer), args.peer)
        ep.poll(time.monotonic() + args.timeout, handler)
        ep.poll(time.monotonic() + args.interval, handler)
    current[0] = None
    ep.poll(time.monotonic() + args.linger, handler)
    ep.stats["answered"] = len(answered)
    took = -1
    if first["probe"] is not None and first["answer"] is not None:
        took = round(first["answer"] - first["probe"], 3)
    ep.report(role="initiate", probes=ep.stats["sent"],
              first_answered=int(0 in answered), first_answer_s=took)


def reply_to(inner):
    """The answer to an inner probe, or None."""
    if ICMP in inner and inner[ICMP].type == 8:
        return (IP(src=inner.dst, dst=inner.src) /
                ICMP(type=0, id=inner[ICMP].id, seq=inner[ICMP].seq) /
                Raw(bytes(inner[ICMP].payload)))
    if UDP in inner:
        return (IP(src=inner.dst, dst=inner.src) /
                UDP(sport=inner[UDP].dport, dport=inner[UDP].sport) /
                Raw(bytes(inner[UDP].payload)))
    return None


def respond(args):
    ep = Endpoint(args, "ip proto 50 and dst host %s" % args.local)
    for pair in args.pair:
        try:
            sa_in, sa_out = pair.split("/")
        except ValueError:
            sys.exit("bad --pair %r: want IN_SA/OUT_SA" % pair)
        sin = parse_sa(sa_in, "0.0.0.0", args.local)
        ep.sa_in[sin.spi] = (sin, parse_sa(sa_out, args.local, "0.0.0.0"))

    later = []      # (due, out SA, answer, destination), oldest first

    def handler(inner, src, spi):
        ans = reply_to(inner)
        if ans is None:
            return False
        if args.delay <= 0:
            ep.send(ep.sa_in[spi][1], ans, src)
            ep.stats["answered"] += 1
            return False
        later.append((time.monotonic() + args.delay, ep.sa_in[spi][1], ans,
                      src))
        return len(later) == 1      # wake up for it

    def stop(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("ready\n")
    try:
        while time.monotonic() < ep.deadline:
            ep.poll(later[0][0] if later else ep.deadline, handler)
            now = time.monotonic()
            while later and later[0][0] <= now:
                _, sa, ans, dst = later.pop(0)
                ep.send(sa, ans, dst)
                ep.stats["answered"] += 1
    except Stop:
        pass
    ep.report(role="respond")


def ike(args):
    """One IKEv2 IKE_SA_INIT header, initiator flag, no payloads."""
    ci = int(args.cookie, 0).to_bytes(8, "big")
    hdr = ci + bytes(8) + struct.pack("!BBBBII", 0, 0x20, 34, 0x08, 0, 28)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.local, 500))
    for _ in range(args.count):
        s.sendto(hdr, (args.peer, 500))
        time.sleep(args.interval)
    print(json.dumps({"role": "ike", "sent": args.count}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("initiate", "respond", "ike"))
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--local", required=True, help="outer local address")
    ap.add_argument("--peer", help="outer peer address")
    ap.add_argument("--inner-local", help="inner (tunnelled) local address")
    ap.add_argument("--inner-peer", help="inner (tunnelled) peer address")
    ap.add_argument("--sa-out", help="initiate: SPI:ENCKEY:AUTHKEY")
    ap.add_argument("--sa-in", help="initiate: SPI:ENCKEY:AUTHKEY")
    ap.add_argument("--pair", action="append", default=[],
                    help="respond: IN_SA/OUT_SA (repeatable)")
    ap.add_argument("--count", type=int, default=20,
                    help="ICMP probes (ike: headers)")
    ap.add_argument("--udp", type=int, default=0, help="UDP probes after")
    ap.add_argument("--timeout", type=float, default=1.0,
                    help="wait for each answer (s)")
    ap.add_argument("--interval", type=float, default=0.05,
                    help="pause between probes (s)")
    ap.add_argument("--linger", type=float, default=0.5,
                    help="wait for late answers at the end (s)")
    ap.add_argument("--duration", type=float, default=60.0,
                    help="hard limit on the run (s)")
    ap.add_argument("--start-at", type=float, default=0.0,
                    help="initiate: wall-clock time of the first probe")
    ap.add_argument("--stop-file", help="initiate: stop once this exists")
    ap.add_argument("--ready", help="respond: file written when listening")
    ap.add_argument("--delay", type=float, default=0.0,
                    help="respond: answer this many seconds later")
    ap.add_argument("--cookie", default="0x1", help="ike: initiator SPI")
    args = ap.parse_args()
    args.count = max(0, min(args.count, 1000))
    args.udp = max(0, min(args.udp, 1000))
    args.duration = max(1.0, min(args.duration, 300.0))
    args.delay = max(0.0, min(args.delay, 10.0))
    if args.mode == "initiate":
        for k in ("peer", "inner_local", "inner_peer", "sa_out", "sa_in"):
            if not getattr(args, k):
                ap.error("initiate needs --%s" % k.replace("_", "-"))
        initiate(args)
    elif args.mode == "respond":
        if not args.pair:
            ap.error("respond needs at least one --pair")
        respond(args)
    else:
        if not args.peer:
            ap.error("ike needs --peer")
        ike(args)


if __name__ == "__main__":
    main()

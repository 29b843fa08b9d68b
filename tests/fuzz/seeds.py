#!/usr/bin/env python3
"""Regenerates the seed corpora under tests/fuzz/corpus/ (run from the top
of the tree): fuzz_packet from tests/data/packets/*.hex, fuzz_config from
tests/data/conf/{good,bad}/*.conf, fuzz_engine from the hand-made sequences
below, written in the step encoding fuzz_engine.c decodes. Files named
crash-* (regression reproducers) are left alone."""
import glob
import os
import re

TOP = os.getcwd()
CORPUS = os.path.join(TOP, "tests/fuzz/corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def hex_packet(path):
    out = bytearray()
    for line in open(path):
        line = line.split("#", 1)[0]
        out += bytes(int(x, 16) for x in line.split())
    return bytes(out)


def clear(target):
    for p in glob.glob(os.path.join(CORPUS, target, "*")):
        if not os.path.basename(p).startswith("crash-"):
            os.remove(p)


# ---- fuzz_engine step encoding (see fuzz_engine.c) ----------------------------
# packet op values: kind (0 ESP, 1 ISAKMP, 2 AH, 3 UDP, 4 other, 5 raw) x dir
OP = {("esp", "out"): 0, ("esp", "in"): 12, ("ike", "out"): 1,
      ("ike", "in"): 13, ("ah", "out"): 2, ("ah", "in"): 14,
      ("udp", "out"): 3, ("udp", "in"): 15, ("proto", "out"): 4,
      ("proto", "in"): 28, ("raw", "out"): 5, ("raw", "in"): 29}
TIMERS, PRELOAD, FLUSH, RECONF, EXTERNAL = 0xb0, 0xc0, 0xd0, 0xe0, 0xf0
MS, SEC16, SEC1, MIN1 = 0x01, 0x41, 0x81, 0xc1   # 1 ms, 16 ms, ~1 s, ~65 s


class Seq:
    def __init__(self, parallel=0, esp_life=0, ike_life=0, init=0, squelch=0,
                 retries=5, copies=4, rate=1, burst=1):
        a = parallel | esp_life << 1 | ike_life << 4
        b = init | squelch << 2 | retries << 4
        g = (copies - 1) | rate << 4 | burst << 6
        self.b = bytearray([a, b, g, 0x5e, 0xed, 0x00, 0x01, 0x00])

    def step(self, op, clock, *operands):
        self.b += bytes([op, clock]) + bytes(operands)
        return self

    def esp_out(self, host, remote, spi, clock=MS, flags=0x08):
        return self.step(OP["esp", "out"], clock, flags, host | remote << 3,
                         spi, 1)

    def esp_in(self, remote, spi, clock=MS, flags=0x08):
        return self.step(OP["esp", "in"], clock, flags, remote << 3, spi, 1)

    def ike_out(self, host, remote, c, clock=MS, flags=0x08):
        return self.step(OP["ike", "out"], clock, flags, host | remote << 3, c)

    def ike_in(self, remote, c, clock=MS, flags=0x08):
        return self.step(OP["ike", "in"], clock, flags, remote << 3, c)

    def timers(self, clock):
        return self.step(TIMERS, clock)

    def preload(self, host, remote, spi_in, spi_out=None, ttl=None):
        t = (1 if spi_out is not None else 0) | \
            ((2 | ttl << 2) if ttl is not None else 0)
        ops = [remote | host << 3, t, spi_in]
        if spi_out is not None:
            ops.append(spi_out)
        return self.step(PRELOAD, MS, *ops)

    def flush(self, remote=None, host=None):
        w = (8 if remote is None else remote) | \
            (0x80 if host is None else host << 4)
        return self.step(FLUSH, MS, w)

    def delete(self, remote, spi):
        return self.step(FLUSH, MS, 0x40 | remote, spi)

    def reconf(self, parallel, esp_life, ike_life, init=0, squelch=0,
               retries=5, copies=4, rate=1, burst=1):
        return self.step(RECONF, MS, parallel | esp_life << 1 | ike_life << 4,
                         init | squelch << 2 | retries << 4,
                         (copies - 1) | rate << 4 | burst << 6)

    def raw(self, data, inbound=False, fix=False):
        self.b += bytes([OP["raw", "in" if inbound else "out"], MS,
                         0x10 if fix else 0, 0, len(data)]) + data
        return self


def engine_seeds(packets):
    s = {}
    # one host's init, the remote's answer, traffic both ways, expiry
    s["establish"] = Seq().esp_out(0, 0, 1).esp_in(0, 2).esp_out(0, 0, 1) \
        .esp_in(0, 2).timers(0xff).timers(0xff)
    # ISAKMP exchange then ESP, IKEv1 and IKEv2, responder cookie learnt
    s["ike_then_esp"] = Seq().ike_out(0, 0, 0x01).ike_in(0, 0x19) \
        .ike_out(0, 0, 0x19).ike_out(1, 0, 0x81).ike_in(0, 0x81) \
        .esp_out(0, 0, 3).esp_in(0, 4)
    # two hosts, one remote: the second init is serialized, then squelch
    q = Seq(retries=2).esp_out(0, 1, 1)
    for i in range(4):
        q.esp_out(1, 1, 2, clock=SEC1)
    s["serialize_squelch"] = q.timers(MIN1).esp_out(1, 1, 2).esp_in(1, 5)
    # parallel sessions off: an association blocks other hosts
    s["blocked"] = Seq().esp_out(0, 2, 1).esp_in(2, 2).esp_out(1, 2, 3) \
        .esp_in(2, 4)
    # remote rekeys first: unknown SPI guessed to recent ISAKMP hosts
    g = Seq(parallel=1, copies=5, rate=3, burst=3)
    for h in range(5):
        g.ike_out(h, 3, h)
    for i in range(30):
        g.esp_in(3, 0xf1 if i % 2 else 6, clock=SEC16)
    s["guess_flood"] = g
    # init timeout, then a late answer
    s["init_timeout"] = Seq(init=2).esp_out(0, 0, 1).timers(0x82) \
        .esp_in(0, 2).esp_out(0, 0, 1).esp_in(0, 2)
    # preloads: own mapping, conflict, with out-SPI, ttl, delete, flush
    s["preload"] = Seq().preload(0, 0, 3).esp_in(0, 3).esp_out(0, 0, 4) \
        .preload(1, 0, 3).preload(2, 1, 5, 6, ttl=4).esp_out(2, 1, 6) \
        .delete(1, 5).flush(0, 0).flush()
    # preload onto a pending init
    s["preload_pending"] = Seq().esp_out(3, 4, 1).preload(3, 4, 2, 1) \
        .esp_in(4, 2).esp_out(3, 4, 1)
    # fill the table: 8 hosts x 6 remotes x SPIs, ISAKMP cookies
    f = Seq(parallel=1)
    for h in range(8):
        for r in range(6):
            f.ike_out(h, r, h % 7)
            f.esp_out(h, r, (h + r) % 8)
            f.esp_in(r, (h + 3) % 8)
    s["table_full"] = f
    # reconfigure: shrink lifetimes, toggle parallel, timers catch up
    s["reconfigure"] = Seq().esp_out(0, 0, 1).esp_in(0, 2).ike_out(0, 0, 1) \
        .reconf(1, 5, 6, init=3, squelch=3).esp_out(1, 0, 3) \
        .timers(0x85).reconf(0, 0, 0).esp_out(2, 0, 4).timers(MIN1)
    # restart from the walked state (restore), then traffic continues
    s["restart"] = Seq().esp_out(0, 0, 1).esp_in(0, 2).ike_out(0, 0, 1) \
        .ike_in(0, 0x19).preload(1, 1, 3, ttl=3).esp_out(2, 2, 4) \
        .step(EXTERNAL, MS, 0x80).esp_in(0, 2).esp_out(0, 0, 1) \
        .esp_in(1, 3).ike_in(0, 0x19).timers(MIN1)
    # external address goes away and comes back
    s["external"] = Seq().esp_out(0, 0, 1).step(EXTERNAL, MS, 2) \
        .esp_out(0, 0, 1).esp_in(0, 2).step(EXTERNAL, MS, 1) \
        .esp_in(0, 2, flags=0x88).esp_out(0, 0, 1)
    # AH, other protocols, fragments, IP options, no UDP checksum, damage
    m = Seq()
    m.step(OP["ah", "out"], MS, 0, 0, 1).step(OP["ah", "in"], MS, 0, 0, 1)
    m.step(OP["proto", "out"], MS, 0, 0, 6).step(OP["udp", "out"], MS, 0, 0, 1)
    m.esp_out(0, 0, 1, flags=0x20).esp_out(0, 0, 1, flags=0x40)
    m.ike_out(0, 0, 1, flags=0x10).ike_out(0, 0, 1, flags=0x41)
    m.ike_out(0, 0, 1, flags=0x20).ike_in(0, 1, flags=0x10)
    m.step(OP["esp", "out"], MS, 0x01, 0, 1, 1, 0x95, 0x10)
    m.step(OP["esp", "out"], MS, 0x01, 0, 1, 1, 0x15, 0x10)
    s["malformed"] = m
    # non-LAN sources pass, LAN sources never leave unmasqueraded
    s["foreign"] = Seq().step(OP["esp", "out"], MS, 0, 0x80, 1, 1) \
        .step(OP["esp", "out"], MS, 0, 0x81, 1, 1) \
        .step(OP["ike", "out"], MS, 0, 0x82, 1)
    # regression: a preload naming both SPIs of an entry that expired
    # before its timer ran removed the entry twice (engine_esp.c)
    s["crash-preload-expired-both-spis"] = Seq() \
        .preload(0, 0, 1, 2, ttl=2).step(PRELOAD, MIN1, 0, 1, 1, 2)
    # the packet fixtures, raw, in both directions
    for name, data in packets.items():
        if len(data) <= 255:
            s["raw_" + name] = Seq().esp_out(0, 0, 1).raw(data) \
                .raw(data, inbound=True)
    return {k: bytes(v.b) for k, v in s.items()}


def main():
    packets = {}
    for p in sorted(glob.glob(os.path.join(TOP, "tests/data/packets/*.hex"))):
        packets[os.path.basename(p)[:-4]] = hex_packet(p)
    clear("fuzz_packet")
    for name, data in packets.items():
        write("fuzz_packet", name, data)
    clear("fuzz_config")
    for p in sorted(glob.glob(os.path.join(TOP, "tests/data/conf/*/*.conf"))):
        kind = os.path.basename(os.path.dirname(p))
        with open(p, "rb") as f:
            write("fuzz_config", kind + "-" + os.path.basename(p), f.read())
    clear("fuzz_engine")
    for name, data in engine_seeds(packets).items():
        write("fuzz_engine", name, data)


if __name__ == "__main__":
    main()

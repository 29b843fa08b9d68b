#!/usr/bin/env python3
"""tests/bench/net_report.py: the network benchmark's report (issue 6).

Reads the raw results tests/bench/net.sh writes (one line per trial, per
search result, per daemon run's counters), prints a table of medians over
the repetitions with min and max, writes the same as markdown next to the
results (network.md), and with --write FILE puts it into FILE's
"## Network" section, between the netbench markers, leaving the rest of the
file as it is.

    python3 tests/bench/net_report.py RESULTS... [--write BENCHMARKS.md] [--markdown]

--markdown prints the markdown after the table instead of writing network.md.
Several RESULTS files (runs of net.sh, e.g. one per payload size, so that
each stays short) make one report: each run's command, time and machine
load are listed, and the repetitions of different runs are kept apart.
"""
import json
import os
import re
import statistics
import sys

BEGIN = "<!-- netbench:begin (tests/bench/net.sh --write replaces this block) -->"
BEGIN_RE = re.compile(r"^<!-- netbench:begin\b.*-->\s*$")
END = "<!-- netbench:end -->"
CASES = ("kernel", "shared", "own", "fast", "rpskernel", "rps", "rpsfast")
FLOODS = ("rpsflood", "rpsflood0")
TITLE = {"kernel": "kernel forwarding", "shared": "ipsec-masqd, shared core",
         "own": "ipsec-masqd, own core", "fast": "fast path",
         "rpskernel": "RPS: kernel forwarding", "rps": "RPS: ipsec-masqd",
         "rpsfast": "RPS: fast path", "rpsflood": "RPS: fast path + WAN flood, admission limit",
         "rpsflood0": "RPS: fast path + WAN flood, no admission limit"}
KERNELS = ("kernel", "rpskernel")
FLOW_TARGET = 0.80      # issue 14: the established flow keeps >= 80 % beside a flood
OVERLOAD_MIN = 1.9      # offered / sustainable below this: no overload reached
FAST_TARGET = 0.85      # issue 14: fast path / kernel forwarding
OVERLOAD_TARGET = 0.80  # issue 14: delivered at full load / sustainable


def base_of(case):
    """The kernel forwarding case of the same placement."""
    return "rpskernel" if case.startswith("rps") else "kernel"


def kv(text):
    return dict(m.groups() for m in re.finditer(r"(?:^| )([A-Za-z0-9_]+)=(\S*)", text))


def parse(path):
    meta, trials, results, stats = {}, [], [], []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            kind, _, rest = line.partition(" ")
            if kind == "meta":
                for part in re.finditer(r"([a-z_]+)=(.*?)(?= [a-z_]+=|$)", rest):
                    meta[part.group(1)] = part.group(2)
            elif kind == "trial":
                trials.append(kv(rest))
            elif kind == "result":
                results.append(kv(rest))
            elif kind == "stats":
                head, _, js = rest.partition(" json=")
                d = kv(head)
                try:
                    d["json"] = json.loads(js)
                except ValueError:
                    d["json"] = {}
                stats.append(d)
    return meta, trials, results, stats


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None


class Agg:
    """Values of one figure over the repetitions."""

    def __init__(self, values):
        self.v = [x for x in values if x is not None]

    def __bool__(self):
        return bool(self.v)

    @property
    def med(self):
        return statistics.median(self.v)

    def fmt(self, scale=1.0, digits=0, rng=True):
        if not self.v:
            return "—"
        f = "%%.%df" % digits
        s = f % (self.med / scale)
        if rng and len(self.v) > 1:
            s += " (%s–%s)" % (f % (min(self.v) / scale), f % (max(self.v) / scale))
        return s


def collect(trials, results, size, case):
    """The figures of one case at one size, each an Agg over the reps."""
    out = {}
    res = [r for r in results if r.get("size") == size and r.get("case") == case]
    out["sust"] = Agg(num(r, "sustainable") for r in res)
    out["fail"] = Agg(num(r, "fail") for r in res)
    out["fail_by_rep"] = {r.get("rep"): num(r, "fail") for r in res}
    bounds = [r.get("bound") == "generator" for r in res]
    out["genbound"] = "all" if bounds and all(bounds) else "some" if any(bounds) else ""
    tr = [t for t in trials if t.get("size") == size and t.get("case") == case]
    sust_by_rep = {r.get("rep"): num(r, "sustainable") for r in res}
    for kind in ("max", "x2", "x4"):
        # one repetition's trial, the one with the median delivered rate, so
        # that delivered, offered and loss come from the same trial
        ts = sorted((t for t in tr if t.get("kind") == kind and num(t, "delivered_rate") is not None),
                    key=lambda t: num(t, "delivered_rate"))
        out[kind + "_trial"] = ts[(len(ts) - 1) // 2] if ts else None
        out[kind + "_sust"] = sust_by_rep.get(ts[(len(ts) - 1) // 2].get("rep")) if ts else None
        out[kind + "_all"] = ts
        out[kind + "_fracs"] = Agg(num(t, "delivered_rate") / sust_by_rep[t.get("rep")]
                                   for t in ts if sust_by_rep.get(t.get("rep")))
    for kind in ("x2", "x4", "lat", "lat_newsa"):
        ts = [t for t in tr if t.get("kind") == kind]
        out[kind + "_off"] = Agg(num(t, "offered_rate") for t in ts)
        out[kind + "_del"] = Agg(num(t, "delivered_rate") for t in ts)
        out[kind + "_loss"] = Agg(num(t, "loss") for t in ts)
        for p in ("p50", "p99", "p999"):
            out["%s_%s" % (kind, p)] = Agg(num(t, "lat_%s_us" % p) for t in ts)
    return out


def kernel_same_rate(trials, size, case):
    """Kernel forwarding's latency at the offered rate of a daemon case's
    latency trial (its own trials, lat_CASE), per percentile over the reps.
    Shown beside the daemon's, not subtracted from it: the difference of
    the same percentile of two separate trials is not the latency any
    packet gained, so no "added latency" is computed."""
    out = {}
    ts = [u for u in trials if u.get("size") == size and u.get("case") == base_of(case)
          and u.get("kind") == "lat_" + case]
    for p in ("p50", "p99", "p999"):
        out[p] = Agg(num(u, "lat_%s_us" % p) for u in ts)
    out["off"] = Agg(num(u, "offered_rate") for u in ts)
    return out


def counters(stats, size, case):
    """Sums of the daemon's queue counters over the runs of one case."""
    keys = ("received", "batches", "batches_full", "kernel_queue_full",
            "kernel_socket_full", "enobufs", "verdict_errors")
    runs = [s["json"].get("queue", {}) for s in stats
            if s.get("size") == size and s.get("case") == case]
    if not runs:
        return None
    return {k: (sum(r[k] for r in runs) if all(k in r for r in runs) else None) for k in keys}


def flood_trial(trials, size, case, kind):
    """The flood trials of one case and kind; the one with the median flow
    fraction (delivered/offered), and the fractions of all."""
    ts = sorted((t for t in trials if t.get("size") == size and t.get("case") == case
                 and t.get("kind") == kind and num(t, "offered_rate")),
                key=lambda t: num(t, "delivered_rate") / num(t, "offered_rate"))
    if not ts:
        return None, []
    return ts[(len(ts) - 1) // 2], [num(t, "delivered_rate") / num(t, "offered_rate") for t in ts]


def flood_cells(t, fracs, rps_sust, admit, rps_fail=None):
    """Cells of one flood trial, every figure from that one trial."""
    secs = num(t, "flood_seconds") or 0
    foff = num(t, "flood_offered_rate") or 0
    fo = num(t, "flood_offered") or 0
    ad = num(t, "flood_admit_dropped")
    rcv = num(t, "flood_daemon_received")
    qd = (num(t, "nfq_dropped") or 0) + (num(t, "nfq_user_dropped") or 0)
    d, o = num(t, "delivered_rate"), num(t, "offered_rate")
    flow = "%.0f of %.0f offered: %.1f %%" % (d / 1000, o / 1000, 100 * d / o)
    if len(fracs) > 1:
        flow += " (%.1f–%.1f %%)" % (100 * min(fracs), 100 * max(fracs))
    ring = num(t, "ring_drops")
    if ring:
        flow += "; counter ring drops %d (not the router's)" % ring
    fl = "%.0f" % (foff / 1000)
    mult = []
    if admit:
        mult.append("%.1f× the admission limit" % (foff / admit))
    if rps_sust:
        m = "%.2f" % (foff / rps_sust) if not rps_fail or rps_fail <= rps_sust * 1.02 else \
            "%.1f–%.1f" % (foff / rps_fail, foff / rps_sust)
        mult.append("%s× the queued path's sustainable rate (RPS: ipsec-masqd, same repetition)" % m)
    if mult:
        fl += " (" + ", ".join(mult) + ")"

    def part(n):
        if n is None or not secs or not fo:
            return "?"
        return "%.1f (%.1f %%)" % (n / secs / 1000, 100 * n / fo)
    rest = None
    if ad is not None and rcv is not None and fo:
        rest = max(0.0, fo - ad - rcv - qd)
    fq = num(t, "flow_daemon_outbound")
    return {"flow": flow, "flowq": "?" if fq is None else "%d" % fq, "flood": fl, "admit": part(ad), "received": part(rcv),
            "queue": part(qd), "rest": part(rest),
            "backlog": "%d" % (num(t, "backlog_drops") or 0)}


def cell_rate(a, genbound=""):
    if not a:
        return "—"
    return ("≥ " if genbound == "all" else "") + a.fmt(1000) + (" *" if genbound == "some" else "")


def cell_load(c, kind):
    """Delivered, offered and loss of one trial (the repetition with the
    median delivered rate), the delivered range over all, and for the 2x and
    4x rows whether the load offered really was that multiple."""
    t = c.get(kind + "_trial")
    if t is None:
        return "—"
    d, o, l = num(t, "delivered_rate"), num(t, "offered_rate"), num(t, "loss")
    dels = [num(u, "delivered_rate") for u in c[kind + "_all"]]
    s = "%.0f of %.0f offered, loss %.1f %%" % (d / 1000, o / 1000, l * 100)
    if len(dels) > 1:
        s += " (delivered %.0f–%.0f)" % (min(dels) / 1000, max(dels) / 1000)
    sust = c.get(kind + "_sust")
    if sust:
        f = o / sust
        need = {"x2": 2, "x4": 4}.get(kind)
        if need and f < 0.95 * need:
            s += "; only %.2f× offered: %d× not reached" % (f, need)
        elif not need:
            s += "; %.2f× the sustainable rate offered" % f
    ring = num(t, "ring_drops")
    if ring:
        s += "; counter ring drops %d (not the router's)" % ring
    return s


def verdict_ratio(figs, c, target):
    """The fast path's ratio to kernel forwarding, honestly bounded."""
    k = base_of(c)
    if c not in figs or k not in figs or not figs[c]["sust"] or not figs[k]["sust"]:
        return None
    f, kk = figs[c], figs[k]
    r = f["sust"].med / kk["sust"].med if kk["sust"].med else 0
    # one repetition at the generator's limit is enough: the median of
    # figures some of which are lower bounds is itself only a lower bound
    fb, kb = bool(f["genbound"]), bool(kk["genbound"])
    if fb and kb:
        return ("%s / %s: both at the generator's limit (%.2f×, a ratio of two lower bounds): "
                "undetermined" % (TITLE[c], TITLE[k], r))
    if kb:   # kernel is a lower bound: the ratio is at most r
        return "%s / %s: at most %.2f×: %s" % (
            TITLE[c], TITLE[k], r, "missed" if r < target else "undetermined (≥ target not shown)")
    if fb:   # fast is a lower bound: the ratio is at least r
        return "%s / %s: at least %.2f×: %s" % (
            TITLE[c], TITLE[k], r, "met" if r >= target else "undetermined")
    return "%s / %s: %.2f×: %s" % (TITLE[c], TITLE[k], r, "met" if r >= target else "missed")


def verdict_overload(figs, c, target):
    """Delivered at the generator's full speed over the sustainable rate, per
    repetition (median), and whether that load was an overload at all."""
    f = figs.get(c)
    if not f or f["max_trial"] is None or not f["max_sust"]:
        return None
    # offered, delivered and the sustainable rate all of one repetition
    # (the one with the median delivered rate at full load); the search
    # leaves the sustainable rate in [sust, fail): the fraction delivered
    # lies in (delivered/fail, delivered/sust], the overload in
    # (offered/fail, offered/sust]
    t = f["max_trial"]
    sust = f["max_sust"]
    fail = f["fail_by_rep"].get(t.get("rep")) or sust
    o, d = num(t, "offered_rate"), num(t, "delivered_rate")
    gen = " (the generator's maximum: the most this machine could offer)"
    span = "" if fail <= sust * 1.02 else \
        " (the search left the sustainable rate between %.0f and %.0f kpps)" % (sust / 1000, fail / 1000)
    if o / fail < OVERLOAD_MIN:
        return ("%s at full offered load: %s of the sustainable rate delivered, but only %s× "
                "offered%s%s: overload not reached, not judged" % (
                    TITLE[c],
                    "%.0f%%" % (100 * d / sust) if not span else
                    "%.0f–%.0f%%" % (100 * d / fail, 100 * d / sust),
                    "%.2f" % (o / sust) if not span else "%.1f–%.1f" % (o / fail, o / sust),
                    gen, span))
    lo_fr, hi_fr = d / fail, d / sust
    if lo_fr >= target:
        res = "met"
    elif hi_fr < target:
        res = "missed"
    else:
        res = "undetermined"
    fr = "%.0f%%" % (100 * hi_fr) if not span else "%.0f–%.0f%%" % (100 * lo_fr, 100 * hi_fr)
    return "%s at full offered load (%s× the sustainable rate%s): %s of it delivered: %s" % (
        TITLE[c], "%.2f" % (o / sust) if not span else "%.1f–%.1f" % (o / fail, o / sust), span,
        fr, res)


def merge(paths):
    """Several runs' results as one: repetitions tagged by run (r1.1, ...)
    when there is more than one, the metas kept in order."""
    metas, trials, results, stats = [], [], [], []
    for i, p in enumerate(paths):
        m, t, r, s = parse(p)
        metas.append(m)
        for lst, out in ((t, trials), (r, results), (s, stats)):
            for d in lst:
                if len(paths) > 1 and "rep" in d:
                    d["rep"] = "r%d.%s" % (i + 1, d["rep"])
                out.append(d)
    return metas, trials, results, stats


def runs_line(metas):
    """The command, time, load and duration of each run."""
    parts = []
    for m in metas:
        parts.append("`%s` — %s, %s; load average at the start %s, at the end %s; %s s" % (
            m.get("command", "?"), m.get("date", "?"), m.get("time", "?"), m.get("load", "?"),
            m.get("load_end", "?"), m.get("seconds", "?")))
    return ("Command: " if len(parts) == 1 else "Commands (one report from %d runs): " % len(parts)) \
        + "; ".join(parts) + "."


def verdict_newsa(figs):
    """A new SA's queued packets with the fast path on against the queued
    path without it (own core, same placement and rate): each percentile's
    median within the own-core case's range over the repetitions, or not."""
    f, o = figs.get("fast"), figs.get("own")
    if not f or not o or not f["lat_newsa_p50"] or not o["lat_p50"]:
        return None
    parts, ok = [], True
    for p, name in (("p50", "p50"), ("p99", "p99")):
        a, b = f["lat_newsa_" + p], o["lat_" + p]
        within = a.med <= max(b.v)
        ok = ok and within
        parts.append("%s %.1f µs against %.1f (%.1f–%.1f)" % (name, a.med, b.med, min(b.v), max(b.v)))
    return ("a new SA's queued packets with the fast path on / the queued path without it (own core, "
            "same rate): %s: %s" % (", ".join(parts),
                                    "within today's figures" if ok else "above today's figures"))


def build(metas, trials, results, stats):
    meta = metas[0]
    sizes = []
    for r in results:
        if r["size"] not in sizes:
            sizes.append(r["size"])
    cases = [c for c in CASES if any(r.get("case") == c for r in results)]
    floods = [c for c in FLOODS if any(r.get("case") == c for r in results)]
    reps = max(len({r.get("rep") for r in results if (r.get("size"), r.get("case")) == k})
               for k in {(r.get("size"), r.get("case")) for r in results})
    md, txt = [], []
    md.append(BEGIN)
    md.append("")
    md.append(runs_line(metas) + " Machine: %s CPU(s), %s; %s RAM; kernel %s%s. "
              "Build: %s, CFLAGS `%s`, commit %s." % (
                  meta.get("nproc", "?"), meta.get("cpu", "?"), meta.get("mem", "?"),
                  meta.get("kernel", "?"),
                  "" if meta.get("virt", "none") == "none" else ", virtualized (%s)" % meta["virt"],
                  meta.get("compiler", "?"), meta.get("cflags", "?"),
                  " / ".join(dict.fromkeys(m.get("commit", "?") for m in metas))))
    if meta.get("conf_extra"):
        md.append("")
        md.append("Daemon config additions: `%s`." % meta["conf_extra"])
    md.append("")
    md.append(
        "One established (preloaded) ESP flow, LAN to WAN: the generator (`tests/bench/gen.c`, "
        "sendmmsg on AF_PACKET) in a LAN namespace, the router namespace forwarding it, the "
        "counter (`tests/bench/sink.c`, a TPACKET_V3 ring) in a remote namespace, over veth. "
        "*Kernel forwarding*: the router with `ip_forward=1` and no netfilter rules. "
        "*ipsec-masqd*: the shipped rules and the daemon, which rewrites every packet's source. "
        "veth hands a packet on on the sending CPU, so the generator's core (CPU %s) also takes "
        "the router's receive softirq; *shared core*: the daemon pinned to that core; *own "
        "core*: pinned to the other one (CPU %s), which then also carries the forwarding after "
        "each verdict; the counter, and the remote's receive work (steered there with RPS, "
        "as veth would otherwise do it on the forwarding core), run on the core the daemon "
        "is not on. Medians of %d repetition(s), (min–max); rates in thousands "
        "of packets per second (kpps), %s s trials. *Sustainable*: highest achieved offered "
        "rate with ≤ 1 %% loss (a full-speed probe, then a search of up to %s steps); "
        "\"≥\": no loss even at the generator's full speed, which on this machine is bounded "
        "by the core it shares with the receive softirq, so the figure is a lower bound and "
        "the 2×/4× loads can only offer that much (\"*\": so in some repetitions). Latency: one way, from the transmit "
        "timestamp at the LAN veth to the receive timestamp in the remote, at 50 %% of the "
        "case's sustainable rate (bursts of %s); *kernel forwarding at the same rate*: kernel "
        "forwarding's own trials at the offered rate of that case's latency trials, shown beside "
        "it (the difference of a percentile of two separate trials is not the latency any packet "
        "gained, so none is computed)." % (
            meta.get("cpus", "0,1").split(",")[0], meta.get("cpus", "0,1").split(",")[-1],
            reps, meta.get("trial", "?"), meta.get("steps", "?"), meta.get("lat_batch", "?")))
    md.append("")
    md.append(
        "*Fast path*: `fastpath.enable = true`, the preloaded flow offloaded at start: the router's "
        "nftables set rewrites every packet and none is queued (the daemon on the other core). "
        "*RPS*: the router's receive softirq steered with RPS onto the other core (CPU %s), the "
        "generator's core then only sending, so it can offer more than that core could forward; "
        "*RPS: ipsec-masqd* pins the daemon to that same core (a one-core router, or NIC "
        "interrupts on the daemon's core), where at full offered load the softirq competes with the "
        "daemon; its ratio is to *RPS: kernel forwarding*. NFQUEUE cases run with "
        "`fastpath.enable = false`. *Full offered load*: the generator at its maximum, the trial of "
        "the repetition with the median delivered rate (delivered, offered and loss all from that "
        "trial), with the range of delivered over the repetitions; a 2×/4× row says when the load "
        "offered fell short of that multiple (below %.1f× of the sustainable rate an overload is "
        "\"not reached\" and not judged). The counter's own ring drops are shown when there "
        "were any; the router delivered those packets, so they count as delivered, not as its "
        "loss." % (meta.get("cpus", "0,1").split(",")[-1], OVERLOAD_MIN))
    if meta.get("quick") == "1":
        md.append("")
        md.append("**--quick run: a check that the harness works, not a measurement.**")
    all_cases, all_floods = cases, floods
    for size in sizes:
        n = int(size)
        # the columns of this size: the cases measured at it (runs may
        # differ in their cases)
        cases = [c for c in all_cases
                 if any(r.get("case") == c and r.get("size") == size for r in results)]
        floods = [c for c in all_floods
                  if any(r.get("case") == c and r.get("size") == size for r in results)]
        figs = {c: collect(trials, results, size, c) for c in cases}
        ksame = {c: kernel_same_rate(trials, size, c) for c in cases if c not in KERNELS}
        def ksust_of(c):
            k = base_of(c)
            return figs[k]["sust"] if k in figs else None
        head = ["%d-byte ESP payload (%d-byte IP packets)" % (n, n + 28)]
        cols = []
        for c in cases:
            cols.append(TITLE[c])
            if c not in KERNELS and ksust_of(c):
                cols.append("× " + base_of(c))
        rows = []

        def row(label, fn, ratio=None):
            cells = [label]
            for c in cases:
                cells.append(fn(c))
                if c not in KERNELS and ksust_of(c):
                    cells.append(ratio(c) if ratio else "")
            rows.append(cells)

        def ratio_sust(c):
            s, ks = figs[c]["sust"], ksust_of(c)
            if not s or not ks or ks.med == 0:
                return "—"
            bound = bool(figs[c]["genbound"] or figs[base_of(c)]["genbound"])
            return "%.2f%s" % (s.med / ks.med, " †" if bound else "")

        row("sustainable rate, kpps (≤ 1 % loss)",
            lambda c: cell_rate(figs[c]["sust"], figs[c]["genbound"]), ratio_sust)
        row("lowest offered rate that lost > 1 %, kpps (the sustainable rate lies below)",
            lambda c: figs[c]["fail"].fmt(1000) if figs[c]["fail"] else "none")
        row("full offered load (generator's maximum), kpps", lambda c: cell_load(figs[c], "max"))
        row("delivered at 2× that offered load, kpps", lambda c: cell_load(figs[c], "x2"))
        row("delivered at 4× that offered load, kpps", lambda c: cell_load(figs[c], "x4"))
        row("latency trials: offered rate achieved, kpps",
            lambda c: figs[c]["lat_off"].fmt(1000))
        for p, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            row("latency %s at 50 %% load, µs" % name,
                lambda c, p=p: figs[c]["lat_" + p].fmt(1, 1))
        if any(figs[c]["lat_newsa_off"] for c in cases):
            row("a new SA's packets beside it (not offloaded: queued), at the own-core case's "
                "latency rate: offered rate achieved, kpps", lambda c: figs[c]["lat_newsa_off"].fmt(1000))
            for p, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
                row("a new SA's queued packets: latency %s, µs" % name,
                    lambda c, p=p: figs[c]["lat_newsa_" + p].fmt(1, 1))
        row("kernel forwarding at the same rate: offered rate achieved, kpps",
            lambda c: "—" if c in KERNELS else ksame[c]["off"].fmt(1000))
        for p, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            row("kernel forwarding at the same rate: latency %s, µs" % name,
                lambda c, p=p: "—" if c in KERNELS else ksame[c][p].fmt(1, 1))
        md.append("")
        md.append("### " + head[0])
        md.append("")
        md.append("| | " + " | ".join(cols) + " |")
        md.append("|---|" + "---:|" * len(cols))
        for r in rows:
            md.append("| " + " | ".join(r) + " |")
        txt.append("")
        txt.append(head[0])
        widths = [max(len(r[i]) for r in rows + [[""] + cols]) for i in range(len(cols) + 1)]
        txt.append("  ".join(h.rjust(w) if i else h.ljust(w)
                             for i, (h, w) in enumerate(zip([""] + cols, widths))))
        for r in rows:
            txt.append("  ".join(x.rjust(w) if i else x.ljust(w)
                                 for i, (x, w) in enumerate(zip(r, widths))))
        crow = []
        for c in cases + floods:
            if c in KERNELS:
                continue
            q = counters(stats, size, c)
            if not q:
                continue

            def v(k):
                return "?" if q[k] is None else str(q[k])
            crow.append("%s: received %s, batches %s (full %s), kernel queue full %s, "
                        "socket full %s, ENOBUFS %s, verdict errors %s" % (
                            TITLE[c], v("received"), v("batches"), v("batches_full"),
                            v("kernel_queue_full"), v("kernel_socket_full"), v("enobufs"),
                            v("verdict_errors")))
        verdicts = [v for v in (
            verdict_ratio(figs, "fast", FAST_TARGET), verdict_ratio(figs, "rpsfast", FAST_TARGET),
            verdict_newsa(figs),
            verdict_overload(figs, "rpsfast", OVERLOAD_TARGET),
            verdict_overload(figs, "rps", OVERLOAD_TARGET)) if v]
        if verdicts:
            md.append("")
            md.append("Verdicts (computed by `tests/bench/net_report.py` from the data above; targets "
                      "of issue 14: fast path ≥ %.2f× kernel forwarding, ≥ %d %% of the sustainable "
                      "rate delivered at full offered load): " % (FAST_TARGET, OVERLOAD_TARGET * 100)
                      + "; ".join(verdicts) + ". († a ratio involving a lower bound.)")
            txt.extend("  verdict: " + v for v in verdicts)
        if floods:
            fm, ft, fv = flood_section(meta, trials, results, size, floods)
            md.extend(fm)
            txt.extend(ft)
            txt.extend("  verdict: " + v for v in fv)
        if crow:
            md.append("")
            md.append("Daemon counters, summed over the runs (`ipsec-masqctl stats --json`, "
                      "queue section): " + "; ".join(crow) + ".")
            txt.extend("  " + x for x in crow)
    md.append("")
    md.append(END)
    return "\n".join(md) + "\n", "\n".join(txt) + "\n"


def flood_section(meta, trials, results, size, floods):
    """The flood table of one size (markdown lines, text lines, verdicts):
    per flood case and kind, the trial with the median flow fraction, every
    figure from that trial."""
    try:
        admit = float(meta.get("flood_admit", "0"))
    except ValueError:
        admit = 0.0
    rps_by_rep = {r.get("rep"): num(r, "sustainable") for r in results
                  if r.get("size") == size and r.get("case") == "rps"}
    rps_bound = {r.get("rep"): r.get("bound") == "generator" for r in results
                 if r.get("size") == size and r.get("case") == "rps"}
    # the search leaves the queued path's sustainable rate in [rs, fail)
    rps_fail = {r.get("rep"): num(r, "fail") for r in results
                if r.get("size") == size and r.get("case") == "rps"}
    kinds = (("flood", "flow and flood at full speed"),
             ("flood_half", "flow at half the RPS: fast path sustainable rate, flood at full speed"))
    cols, cells, verdicts = [], [], []
    for c in floods:
        lim = admit if c == "rpsflood" else 0
        for kind, label in kinds:
            t, fracs = flood_trial(trials, size, c, kind)
            if t is None:
                continue
            rs = rps_by_rep.get(t.get("rep"))
            rf = rps_fail.get(t.get("rep")) or rs
            cols.append("%s: %s" % ("admission limit %.0f/s" % lim if lim else "no admission limit",
                                    label))
            cells.append(flood_cells(t, fracs, rs, lim, rf))
            frac = num(t, "delivered_rate") / num(t, "offered_rate")
            foff = num(t, "flood_offered_rate") or 0
            v = "%s, %s: the flow kept %.1f %% of its packets (target ≥ %d %%): %s" % (
                TITLE[c], label, 100 * frac, FLOW_TARGET * 100,
                "met" if frac >= FLOW_TARGET else "missed")
            if rs and not rps_bound.get(t.get("rep")):
                m = foff / rf
                v += "; the flood was %s× the queued path's sustainable rate%s" % (
                    "%.2f" % m if rf <= rs * 1.02 else "%.1f–%.1f" % (foff / rf, foff / rs),
                    "" if m >= OVERLOAD_MIN else
                    " (overload of the queued path not shown; the verdict is for this load)")
            elif rs:
                v += "; the flood was at most %.2f× the queued path's sustainable rate (a lower " \
                     "bound there)" % (foff / rs)
            else:
                v += "; the queued path's sustainable rate not measured in this repetition"
            rcv, secs = num(t, "flood_daemon_received"), num(t, "flood_seconds")
            if kind == "flood" and rcv is not None and secs:
                served = rcv / secs
                # the queued path's sustainable rate: the admission limit
                # where set, else the RPS: ipsec-masqd search's [rs, rf)
                lo, hi = (lim, lim) if lim else (rs, rf)
                what = "the admission limit" if lim else "the queued path's sustainable rate"
                if lo and (lim or not rps_bound.get(t.get("rep"))):
                    pct = "%.0f %%" % (100 * served / lo) if hi <= lo * 1.02 else \
                        "%.0f–%.0f %%" % (100 * served / hi, 100 * served / lo)
                    if foff < OVERLOAD_MIN * hi:
                        v += "; the daemon received %.1f kpps of the flood, %s of %s, " \
                             "which the flood did not surely offer %.1f× of: not judged" % (
                                 served / 1000, pct, what, OVERLOAD_MIN)
                    else:
                        res = "met" if served >= OVERLOAD_TARGET * hi else \
                            "missed" if served < OVERLOAD_TARGET * lo else "undetermined"
                        v += "; the daemon received %.1f kpps of the flood, %s of %s " \
                             "(target ≥ %d %%): %s" % (
                                 served / 1000, pct, what, OVERLOAD_TARGET * 100, res)
            verdicts.append(v)
    if not cols:
        return [], [], []
    rows = [("the established flow: delivered of offered, kpps (fraction)", "flow"),
            ("the flow's packets that went to the daemon instead (outbound seen by the engine)", "flowq"),
            ("the flood (ESP, unknown SPI, to the external address): offered, kpps", "flood"),
            ("flood dropped by the admission limit (nft counter), kpps (% of the flood)", "admit"),
            ("flood received by the daemon (queue counter), kpps (%)", "received"),
            ("flood dropped at the queue (kernel queue full), kpps (%)", "queue"),
            ("flood lost before the rules (the rest: input backlog, send errors), kpps (%)", "rest"),
            ("input backlog drops on the machine during the trial, packets", "backlog")]
    md = ["", "#### Flood alongside the established flow, %s-byte payloads" % size, "",
          "RPS placement (the router's receive softirq for both of its interfaces and the daemon "
          "on CPU %s), the fast path on and the flow offloaded; a second generator in the remote's "
          "namespace, on the first generator's core, floods the external address with ESP under "
          "an SPI nothing knows, which misses the fast path's map and goes towards the queue, "
          "through `fastpath.admit_rate` where set. Both generators share one core, so at full speed "
          "the flow is offered less than alone (*RPS: fast path* above). Each column: the trial (one per repetition) "
          "with the median flow fraction, every figure from that same trial, with the range of "
          "the flow's fraction over the repetitions." % meta.get("cpus", "0,1").split(",")[-1],
          "", "| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    txt = ["", "flood alongside the established flow, %s B" % size]
    for label, k in rows:
        md.append("| " + label + " | " + " | ".join(x[k] for x in cells) + " |")
        txt.append("  " + label + ": " + " | ".join(x[k] for x in cells))
    md.append("")
    md.append("Flood verdicts (computed by `tests/bench/net_report.py` from that table; issue 14: "
              "the flow keeps ≥ %d %% of its packets; the queued path keeps serving ≥ %d %% of "
              "what it can sustain): " % (FLOW_TARGET * 100, OVERLOAD_TARGET * 100)
              + "; ".join(verdicts) + ".")
    return md, txt, verdicts


def splice(path, block):
    """Puts block into path's "## Network" section (created if missing)."""
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        lines = ["# Benchmarks", ""]
    new = block.rstrip("\n").split("\n")
    b = next((i for i, l in enumerate(lines) if BEGIN_RE.match(l)), None)
    e = next((i for i, l in enumerate(lines) if l.strip() == END), None)
    if b is not None and e is not None and e > b:
        lines[b:e + 1] = new
    else:
        h = next((i for i, l in enumerate(lines) if l.strip() == "## Network"), None)
        if h is None:
            while lines and lines[-1] == "":
                lines.pop()
            lines += ["", "## Network", ""] + new + [""]
        else:
            j = next((i for i in range(h + 1, len(lines)) if lines[i].startswith("## ")),
                     len(lines))
            tail = lines[j:]
            lines[h:] = ["## Network", ""] + new + ([""] + tail if tail else [""])
    text = "\n".join(lines)
    if not text.endswith("\n"):
        text += "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    args, write, md_stdout = argv[1:], None, False
    if "--markdown" in args:
        args.remove("--markdown")
        md_stdout = True
    if "--write" in args:
        i = args.index("--write")
        if i + 1 >= len(args):
            sys.stderr.write("usage: net_report.py RESULTS... [--write FILE] [--markdown]\n")
            return 2
        write = args[i + 1]
        del args[i:i + 2]
    if not args:
        sys.stderr.write("usage: net_report.py RESULTS... [--write FILE] [--markdown]\n")
        return 2
    metas, trials, results, stats = merge(args)
    if not results:
        sys.stderr.write("net_report.py: no results in %s\n" % " ".join(args))
        return 1
    md, txt = build(metas, trials, results, stats)
    sys.stdout.write(txt)
    if md_stdout:
        sys.stdout.write("\n---- markdown ----\n## Network\n\n" + md)
    else:
        out = os.path.join(os.path.dirname(os.path.abspath(args[0])), "network.md")
        with open(out, "w") as f:
            f.write("## Network\n\n" + md)
        print("\nmarkdown: %s" % out)
    if write:
        splice(write, md)
        print("written into the \"## Network\" section of %s" % write)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""tests/bench/net_report.py: the network benchmark's report (issue 6).

Reads the raw results tests/bench/net.sh writes (one line per trial, per
search result, per daemon run's counters), prints a table of medians over
the repetitions with min and max, writes the same as markdown next to the
results (network.md), and with --write FILE puts it into FILE's
"## Network" section, between the netbench markers, leaving the rest of the
file as it is.

    python3 tests/bench/net_report.py RESULTS [--write BENCHMARKS.md] [--markdown]

--markdown prints the markdown after the table instead of writing network.md.
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
TITLE = {"kernel": "kernel forwarding", "shared": "ipsec-masqd, shared core",
         "own": "ipsec-masqd, own core", "fast": "fast path",
         "rpskernel": "RPS: kernel forwarding", "rps": "RPS: ipsec-masqd",
         "rpsfast": "RPS: fast path"}
KERNELS = ("kernel", "rpskernel")
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
    for kind in ("x2", "x4", "lat"):
        ts = [t for t in tr if t.get("kind") == kind]
        out[kind + "_off"] = Agg(num(t, "offered_rate") for t in ts)
        out[kind + "_del"] = Agg(num(t, "delivered_rate") for t in ts)
        out[kind + "_loss"] = Agg(num(t, "loss") for t in ts)
        for p in ("p50", "p99", "p999"):
            out["%s_%s" % (kind, p)] = Agg(num(t, "lat_%s_us" % p) for t in ts)
    return out


def added(trials, size, case):
    """Daemon latency minus the kernel's at the same offered rate, per rep
    (the same percentile of two separate trials: an estimate, not the
    added latency of a packet)."""
    out = {}
    for p in ("p50", "p99", "p999"):
        diffs = []
        for t in trials:
            if t.get("size") != size or t.get("case") != case or t.get("kind") != "lat":
                continue
            k = [u for u in trials if u.get("size") == size and u.get("case") == base_of(case)
                 and u.get("kind") == "lat_" + case and u.get("rep") == t.get("rep")]
            a = num(t, "lat_%s_us" % p)
            b = num(k[0], "lat_%s_us" % p) if k else None
            if a is not None and b is not None:
                diffs.append(a - b)
        out[p] = Agg(diffs)
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
    fb, kb = f["genbound"] == "all", kk["genbound"] == "all"
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
    if not f or not f["max_fracs"]:
        return None
    t = f["max_trial"]
    sust = f["max_sust"] or 0
    off = num(t, "offered_rate") / sust if sust else 0
    fr = f["max_fracs"].med
    if off < 1.9:
        return ("%s at full offered load: %.0f%% of the sustainable rate delivered, but only %.2f× "
                "offered: no overload reached, not judged" % (TITLE[c], fr * 100, off))
    return "%s at full offered load (%.2f× the sustainable rate): %.0f%% delivered: %s" % (
        TITLE[c], off, fr * 100, "met" if fr >= target else "missed")


def build(meta, trials, results, stats):
    sizes = []
    for r in results:
        if r["size"] not in sizes:
            sizes.append(r["size"])
    cases = [c for c in CASES if any(r.get("case") == c for r in results)]
    reps = len({r.get("rep") for r in results})
    md, txt = [], []
    md.append(BEGIN)
    md.append("")
    md.append("Command: `%s` — %s, %s. Machine: %s CPU(s), %s; %s RAM; kernel %s%s. "
              "Build: %s, CFLAGS `%s`, commit %s. Load average at the start: %s. "
              "The run took %s s." % (
                  meta.get("command", "?"), meta.get("date", "?"), meta.get("time", "?"),
                  meta.get("nproc", "?"), meta.get("cpu", "?"), meta.get("mem", "?"),
                  meta.get("kernel", "?"),
                  "" if meta.get("virt", "none") == "none" else ", virtualized (%s)" % meta["virt"],
                  meta.get("compiler", "?"), meta.get("cflags", "?"), meta.get("commit", "?"),
                  meta.get("load", "?"), meta.get("seconds", "?")))
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
        "case's sustainable rate (bursts of %s); *added* is ipsec-masqd minus kernel "
        "forwarding measured at the same rate." % (
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
        "offered fell short of that multiple. The counter's own ring drops are shown when there "
        "were any and are not the router's." % meta.get("cpus", "0,1").split(",")[-1])
    if meta.get("quick") == "1":
        md.append("")
        md.append("**--quick run: a check that the harness works, not a measurement.**")
    for size in sizes:
        n = int(size)
        figs = {c: collect(trials, results, size, c) for c in cases}
        adds = {c: added(trials, size, c) for c in cases if c not in KERNELS}
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
            bound = figs[c]["genbound"] == "all" or figs[base_of(c)]["genbound"] == "all"
            return "%.2f%s" % (s.med / ks.med, " †" if bound else "")

        row("sustainable rate, kpps (≤ 1 % loss)",
            lambda c: cell_rate(figs[c]["sust"], figs[c]["genbound"]), ratio_sust)
        row("full offered load (generator's maximum), kpps", lambda c: cell_load(figs[c], "max"))
        row("delivered at 2× that offered load, kpps", lambda c: cell_load(figs[c], "x2"))
        row("delivered at 4× that offered load, kpps", lambda c: cell_load(figs[c], "x4"))
        row("latency trials: offered rate achieved, kpps",
            lambda c: figs[c]["lat_off"].fmt(1000))
        for p, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            row("latency %s at 50 %% load, µs" % name,
                lambda c, p=p: figs[c]["lat_" + p].fmt(1, 1))
        for p, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            row("added latency %s (same rate), µs" % name,
                lambda c, p=p: "—" if c in KERNELS else adds[c][p].fmt(1, 1))
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
        for c in cases:
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
            verdict_overload(figs, "rpsfast", OVERLOAD_TARGET),
            verdict_overload(figs, "rps", OVERLOAD_TARGET)) if v]
        if verdicts:
            md.append("")
            md.append("Verdicts (computed by `tests/bench/net_report.py` from the data above; targets "
                      "of issue 14: fast path ≥ %.2f× kernel forwarding, ≥ %d %% of the sustainable "
                      "rate delivered at full offered load): " % (FAST_TARGET, OVERLOAD_TARGET * 100)
                      + "; ".join(verdicts) + ". († a ratio involving a lower bound.)")
            txt.extend("  verdict: " + v for v in verdicts)
        if crow:
            md.append("")
            md.append("Daemon counters, summed over the runs (`ipsec-masqctl stats --json`, "
                      "queue section): " + "; ".join(crow) + ".")
            txt.extend("  " + x for x in crow)
    md.append("")
    md.append(END)
    return "\n".join(md) + "\n", "\n".join(txt) + "\n"


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
    if len(args) == 3 and args[1] == "--write":
        write = args[2]
        args = args[:1]
    if len(args) != 1:
        sys.stderr.write("usage: net_report.py RESULTS [--write FILE] [--markdown]\n")
        return 2
    meta, trials, results, stats = parse(args[0])
    if not results:
        sys.stderr.write("net_report.py: no results in %s\n" % args[0])
        return 1
    md, txt = build(meta, trials, results, stats)
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

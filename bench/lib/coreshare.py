#!/usr/bin/env python3
"""bench/coreshare: where the server's core goes per request, epoll against io_uring.

wharfd (--workers 1, CPU 0) serves frame://; `wharf bench -t1 --size 64 -P 1` (CPU 1)
loads it at --conns connections (--workload http: `wrk -t1` keep-alive with
bench/lua/json.lua on wharfd's HTTP listener instead). After a warm-up,
`perf record -e cpu-clock -g` samples both CPUs for --duration seconds while wharfd's
/stats counts the requests. Samples of other processes (a shared machine) are a row of
their own, left out of busy time. Every sample is given one category by its call stack
(bench/lib/stackclass.py): the server's own TCP send and receive, the peer's TCP
receive that loopback runs inside the sender's send (softirq), the event loop (epoll
or io_uring, and the syscall entry/exit, file and socket layers around them), user
space, other kernel work, idle. Each category is reported in CPU µs per request, for
the server's core and for the load generator's.

What this tells about requests/s: a backend can only change the event-loop rows
(to first order: the rows of its peer's wake-ups run in the other CPU's softirq).
The table says which core was saturated (the one without idle time): requests/s is
that side's figure. If it were the server's, a backend whose event loop cost nothing
would serve about busy / (busy - event loop) times epoll's requests/s; that estimate
is printed next to io_uring's measured busy-time ratio. (Issue 8's 1,000-connection
bar asks io_uring for 1.2x epoll's requests/s.) perf runs on the server's CPU, which
has idle time here; its own samples are a row of their own, not busy time.

--workload udp: wharfd serves udp:// and `wharf bench udp:// -t1 -c 100 -P 16 --size 64`
loads it (--conns sockets); --backends then names configurations: a backend, or a
backend with -b1 (--udp-batch 1: one recvmsg and one sendmsg per datagram), default
epoll,epoll-b1. The table compares each batched configuration with its -b1: batching
can only shrink the event-loop rows (system-call entry/exit, the socket layers
around each call, the loop's waits); the UDP rows (own send and receive, and the
peer's receive that loopback runs in the sender's softirq) are per datagram either way.

Writes coreshare.md, coreshare.csv, summary.json and meta.txt to --out (default
bench/results/DATE-coreshare/, or DATE-coreshare-http/, DATE-coreshare-udp/). Exit status: 0, 1 when a run failed, 2 on a
usage error or a missing tool.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import benchlib as bl
import stackclass as sc

FREQ = 2999  # samples per second per CPU (not a multiple of the timer tick)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--workload", choices=("frame", "http", "udp"), default="frame",
                    help="frame (wharf bench), http (wrk keep-alive) or udp (wharf bench "
                         "udp://) (default frame)")
    ap.add_argument("--conns", type=int,
                    help="connections (default 1000; http: 256; udp: 100 sockets)")
    ap.add_argument("--rounds", type=int, default=2, help="A B rounds (default 2)")
    ap.add_argument("--duration", type=float, default=3.0,
                    help="sampled seconds per run (default 3)")
    ap.add_argument("--backends", help="default epoll,io_uring (udp: epoll,epoll-b1)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: 1 round, 1 s, 100 conns")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-coreshare/)")
    a = ap.parse_args()
    a.conns = a.conns or {"http": 256, "udp": 100}.get(a.workload, 1000)
    a.backends = a.backends or ("epoll,epoll-b1" if a.workload == "udp" else "epoll,io_uring")
    if a.quick:
        a.rounds, a.duration = 1, 1.0
        a.conns = min(a.conns, 100)
    a.backends = [b for b in a.backends.split(",") if b]
    if a.rounds < 1 or a.duration <= 0 or a.conns < 1 or not a.backends:
        bl.die("--rounds, --duration, --conns and --backends must be positive")
    kind = "coreshare" + ("" if a.workload == "frame" else "-" + a.workload)
    a.out = a.out or bl.default_out(("quick-" if a.quick else "") + kind)
    return a


def served(srv, workload):
    """Requests (datagrams: replies) wharfd has answered so far, and the monotonic time
    of the reading."""
    t0 = time.monotonic()
    st = stats(srv)
    t = (t0 + time.monotonic()) / 2  # the middle of the request
    if not st:
        raise RuntimeError("GET /stats failed")
    return st["totals"]["udp_datagrams_out" if workload == "udp" else "messages"], t


def config(name):
    """A configuration's backend and its extra wharfd arguments: io_uring-b1 is
    io_uring with --udp-batch 1."""
    if name.endswith("-b1"):
        return name[:-3], ["--udp-batch", "1"]
    return name, []


def stats(srv):
    """wharfd's /stats, or None when it did not answer."""
    try:
        return srv.stats()
    except (OSError, ValueError):
        return None


def busy_seconds():
    """{cpu: non-idle seconds so far} of the two CPUs, from /proc/stat. A tickless idle
    CPU takes no cpu-clock samples, so a CPU's samples follow its busy time, not the
    window: this is what they are checked against."""
    return {cpu: bl.core_busy_seconds(cpu) for cpu in (bl.SERVER_CPU, bl.LOAD_CPU)}


def wait_connected(srv, conns, load, limit_s):
    """Until wharfd has the load's connections open, or limit_s passes."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and load.poll() is None:
        st = stats(srv)
        if st and st["totals"]["active"] - 1 >= conns:  # not counting the /stats request
            return True
        time.sleep(0.05)
    return False


class Load:
    """The load generator of one run, on the load CPU: `wharf bench` (frame) as a
    process, or wrk (http) run by bl.run_wrk in a thread."""

    def __init__(self, a, srv, wharf, total_s):
        self.proc = self.thread = None
        self.result = self.failure = None
        if a.workload in ("frame", "udp"):
            proto = a.workload
            cmd = [wharf, "bench", "-t", "1", "-c", str(a.conns), "--size", "64", "-P",
                   "16" if proto == "udp" else "1", "-d", f"{int(total_s * 1000)}ms", "--json",
                   "--allow-errors", f"{proto}://127.0.0.1:{srv.port[proto]}"]
            self.proc = bl.spawn(bl.taskset(bl.LOAD_CPU, cmd), stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
        else:
            self.thread = threading.Thread(target=self._wrk, args=(srv.url("/"), a.conns,
                                                                    total_s), daemon=True)
            self.thread.start()

    def _wrk(self, url, conns, total_s):
        try:
            self.result = bl.run_wrk(url, "json.lua", conns=conns, duration=total_s)
        except RuntimeError as e:
            self.failure = e

    def poll(self):
        """None while running, as Popen.poll."""
        if self.proc:
            return self.proc.poll()
        return None if self.thread.is_alive() else 0

    def errors(self, timeout):
        """Wait for the end; the errors the load generator counted."""
        if self.proc:
            out, _ = self.proc.communicate(timeout=timeout)
            return json.loads(out)["errors"]["total"]
        self.thread.join(timeout)
        if self.thread.is_alive() or self.failure:
            raise RuntimeError(f"wrk: {self.failure or 'did not stop'}")
        return self.result["errors"]["total"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            bl.stop_process(self.proc, grace=2)


def usable_backends(wharfd, backends):
    """The backends this wharfd runs here: io_uring can be built in but refused by the
    kernel (or a seccomp filter); it is then left out, with a note."""
    usable = []
    for name in backends:
        be = config(name)[0]
        srv = bl.wharfd(wharfd, protos=("http",), extra=["--backend", be])
        try:
            srv.start(tries=1)
            got = srv.backend()
        except RuntimeError as e:
            got = f"none ({str(e).strip()[-200:]})"
        finally:
            srv.stop()
        if got == be:
            usable.append(name)
        else:
            bl.log(f"coreshare: wharfd --backend {be} is not usable here: it runs {got}")
    if not usable:
        bl.die("no backend usable")
    return usable


def start_perf(path):
    """perf record on both CPUs until SIGINT, timed with CLOCK_MONOTONIC (the clock of
    time.monotonic), so that only the samples between two /stats readings count. It
    runs on the server's CPU, which has idle time here (the load generator's has none);
    its own samples there are reported apart."""
    p = bl.spawn(bl.taskset(bl.SERVER_CPU, [
        "perf", "record", "-q", "-e", "cpu-clock", "-F", str(FREQ), "-g", "-k",
        "CLOCK_MONOTONIC", "-m", "1024", "-C", f"{bl.SERVER_CPU},{bl.LOAD_CPU}", "-o", path]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.poll() is None and \
            not (os.path.exists(path) and os.path.getsize(path) > 0):
        time.sleep(0.05)
    time.sleep(0.3)  # its buffers are mapped and sampling
    if p.poll() is not None:
        raise RuntimeError(f"perf record failed: {p.stderr.read().decode()[-300:]}")
    return p


def stop_perf(p):
    p.send_signal(2)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        bl.stop_process(p, grace=2)
        raise RuntimeError("perf record did not stop")


def one_run(a, wharfd, wharf, name, rnd):
    backend, extra = config(name)
    srv = bl.wharfd(wharfd, protos=("http", "udp" if a.workload == "udp" else "frame"),
                    extra=["--backend", backend, *extra])
    srv.start()
    data = os.path.join(a.tmp, f"r{rnd}-{name}.data")
    load = perf = None
    try:
        if srv.backend() != backend:
            raise RuntimeError(f"wharfd runs {srv.backend() or '?'}, not {backend}")
        total_s = a.conns / 10000 + 1.0 + a.duration + 5
        load = Load(a, srv, wharf, total_s)
        if a.workload != "udp" and not wait_connected(srv, a.conns, load, a.conns / 1000 + 10):
            raise RuntimeError("the load's connections did not all arrive")
        perf = start_perf(data)
        time.sleep(1.0)  # warm-up
        busy0 = busy_seconds()
        n0, t0 = served(srv, a.workload)
        time.sleep(a.duration)
        n1, t1 = served(srv, a.workload)
        busy1 = busy_seconds()
        stop_perf(perf)
        perf = None
        errors = load.errors(timeout=total_s + 30)
        if errors:
            raise RuntimeError(f"the load generator saw {errors} errors")
    finally:
        if perf:
            bl.stop_process(perf, grace=2)
        if load:
            load.stop()
        srv.stop()
    text = subprocess.run(["perf", "script", "-i", data, "-F", "comm,cpu,time,ip,sym"],
                          capture_output=True, text=True, timeout=300).stdout
    os.remove(data)
    reqs, window = n1 - n0, t1 - t0
    if reqs <= 0:
        raise RuntimeError("no requests counted while sampling")
    row = {"round": rnd, "backend": name, "workload": a.workload, "conns": a.conns,
           "requests": reqs, "window_s": round(window, 4), "freq": FREQ,
           "rps": round(reqs / window)}
    for side, cpu in (("server", bl.SERVER_CPU), ("load", bl.LOAD_CPU)):
        counts, n = sc.shares(text, cpu, t0, t1, ours=("wharf", "wrk", "iou-"))
        busy_s = busy1[cpu] - busy0[cpu]
        row[f"{side}_samples"] = n
        row[f"{side}_busy_s"] = round(busy_s, 3)
        if n < 0.5 * FREQ * busy_s:
            bl.log(f"coreshare: CPU {cpu}: {n} samples where its {busy_s:.2f} busy seconds "
                   f"call for {FREQ * busy_s:.0f} (perf lost some)")
        for cat in sc.CATEGORIES:
            # the CPU's share in this category x the window, per request
            share = counts[cat] / n if n else None
            row[f"{side}:{cat}"] = round(share * window * 1e6 / reqs, 4) if n else None
    return row


def mean_rows(rows, backend):
    rs = [r for r in rows if r["backend"] == backend]
    keys = [k for k in rs[0] if ":" in k] if rs else []
    return {k: sum(r[k] for r in rs) / len(rs) for k in keys} if rs else {}


def busy(m, side):
    return sum(m[f"{side}:{c}"] for c in sc.CATEGORIES if c not in sc.NOT_BUSY)


def loop_cost(m, side):
    return sum(m[f"{side}:{c}"] for c in sc.EVENT_LOOP)


def udp_lines(a, means, summary):
    """Each batched configuration against its own -b1: what batching saved, by rows."""
    out = []
    for b in a.backends:
        if b.endswith("-b1") or b + "-b1" not in means:
            continue
        m, u = means[b], means[b + "-b1"]
        stack = [sum(x[f"server:{c}"] for c in sc.UDP) for x in (m, u)]
        loop = [loop_cost(x, "server") for x in (m, u)]
        user = [x[f"server:{sc.USER}"] for x in (m, u)]
        busy_mu = [busy(m, "server"), busy(u, "server")]
        summary[f"{b}_vs_b1"] = {"busy": busy_mu, "udp_stack": stack, "event_loop": loop,
                                 "user": user}
        out.append(f"- {b} against {b}-b1, server µs per datagram: busy {busy_mu[0]:.2f} vs "
                   f"{busy_mu[1]:.2f} ({busy_mu[0] / busy_mu[1]:.2f}×); UDP stack (own send "
                   f"and receive, the peer's receive) {stack[0]:.2f} vs {stack[1]:.2f}; event "
                   f"loop and system-call layers {loop[0]:.2f} vs {loop[1]:.2f}; user space "
                   f"{user[0]:.2f} vs {user[1]:.2f}. Batching shrinks the event-loop rows; "
                   f"the UDP stack's work stays per datagram.")
    return out


def summarize(a, rows):
    means = {b: mean_rows(rows, b) for b in a.backends}
    head = " | ".join(f"{b} server" for b in a.backends)
    head_load = " | ".join(f"{b}: load" for b in a.backends)
    load = {"frame": f"`wharf bench -t1 -c{a.conns} -s64 -P1` frame",
            "udp": f"`wharf bench udp:// -t1 -c{a.conns} -P16 --size 64`"}.get(
                a.workload, f"`wrk -t1 -c{a.conns}` keep-alive (json.lua)")
    lines = [f"wharfd `--workers 1` on CPU {bl.SERVER_CPU}, {load} on CPU {bl.LOAD_CPU}; "
             f"`perf record -e cpu-clock -g` at {FREQ} Hz "
             f"for {a.duration:g} s, {a.rounds} round(s) per backend, means. CPU µs per "
             f"request served.", "",
             f"| category | {head} | {head_load} |",
             "|---|" + "---|" * (2 * len(a.backends))]
    for cat in sc.CATEGORIES:
        cells = [f"{means[b][f'server:{cat}']:.2f}" for b in a.backends] + \
                [f"{means[b][f'load:{cat}']:.2f}" for b in a.backends]
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    lines.append("| **busy (all but idle and perf)** | " + " | ".join(
        [f"**{busy(means[b], 'server'):.2f}**" for b in a.backends] +
        [f"**{busy(means[b], 'load'):.2f}**" for b in a.backends]) + " |")
    rps = {b: bl.median([r["rps"] for r in rows if r["backend"] == b]) for b in a.backends}
    lines.append("| requests/s (median) | " + " | ".join(
        [bl.fmt_num(rps[b]) for b in a.backends] + [""] * len(a.backends)) + " |")
    summary = {"workload": a.workload, "conns": a.conns, "rounds": a.rounds, "means": means,
               "rps": rps}
    lines.append("")
    for b in a.backends:
        m = means[b]
        idle = {side: m[f"{side}:{sc.IDLE}"] / (busy(m, side) + m[f"{side}:{sc.IDLE}"])
                for side in ("server", "load")}
        summary[f"{b}_idle"] = idle
        if max(idle.values()) < 0.02:
            limit = "both cores are saturated"
        elif idle["load"] < idle["server"]:
            limit = "requests/s here is the load generator's figure"
        else:
            limit = "requests/s here is the server's figure"
        lines.append(f"- {b}: the server's core {100 * idle['server']:.0f}% idle, the load "
                     f"generator's {100 * idle['load']:.0f}%: {limit}.")
    if a.workload == "udp":
        lines += udp_lines(a, means, summary)
    elif "epoll" in means:
        e = means["epoll"]
        eb, el = busy(e, "server"), loop_cost(e, "server")
        bound = eb / (eb - el) if eb > el else None
        summary.update(epoll_busy=eb, epoll_loop=el, free_loop_estimate=bound)
        lines.append(f"- epoll's event loop: {el:.2f} of {eb:.2f} busy µs per request "
                     f"({100 * el / eb:.0f}%). An estimate, if the server were the "
                     f"bottleneck and only the event-loop rows moved: a backend whose event "
                     f"loop cost nothing would serve about {bound:.2f}× epoll's requests/s.")
        for b in a.backends:
            if b == "epoll":
                continue
            ub, ul = busy(means[b], "server"), loop_cost(means[b], "server")
            summary[f"{b}_busy"], summary[f"{b}_loop"] = ub, ul
            lines.append(f"- {b}'s event loop: {ul:.2f} µs per request ({ul / el:.2f}× "
                         f"epoll's); its busy time per request is {ub / eb:.2f}× epoll's, "
                         f"about {eb / ub:.2f}× epoll's requests/s if the server were the "
                         f"bottleneck.")
    return "\n".join(lines) + "\n", summary


def main():
    a = parse_args()
    bl.check_tools(["perf", "taskset"])
    bl.install_cleanup(deadline_s=len(a.backends) * a.rounds * (a.duration + 60) + 120)
    b = bl.build_dir()
    wharfd, wharf = bl.snapshot(os.path.join(b, "wharfd")), bl.snapshot(os.path.join(b, "wharf"))
    os.makedirs(a.out, exist_ok=True)
    a.tmp = bl.tmpdir("wharf-coreshare-")
    a.backends = usable_backends(wharfd, a.backends)
    rows, failed = [], 0
    for rnd in range(1, a.rounds + 1):
        for be in a.backends if rnd % 2 else list(reversed(a.backends)):
            bl.log(f"round {rnd}: {be}, {a.workload}, {a.conns} connections, "
                   f"{a.duration:g} s ...", end=" ")
            try:
                row = one_run(a, wharfd, wharf, be, rnd)
                rows.append(row)
                server_busy = sum(row[f"server:{c}"] for c in sc.CATEGORIES
                                  if c not in sc.NOT_BUSY)
                bl.log(f"{row['rps']:,} req/s, server busy {server_busy:.2f} µs/req")
            except (RuntimeError, OSError, ValueError, KeyError,
                    subprocess.TimeoutExpired) as e:
                failed += 1
                bl.log(f"failed: {e}")
    if not rows or any(not [r for r in rows if r["backend"] == be] for be in a.backends):
        bl.log("coreshare: no complete set of runs")
        return 1
    fields = list(rows[0].keys())
    bl.write_csv(os.path.join(a.out, "coreshare.csv"), rows, fields)
    table, summary = summarize(a, rows)
    with open(os.path.join(a.out, "coreshare.md"), "w") as f:
        f.write(table)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    bl.write_meta(a.out, sys.argv, {"wharfd": bl.wharfd_version(wharfd)})
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bl.Interrupted as e:
        bl.log(f"coreshare: stopped: {e}")
        sys.exit(1)

#!/usr/bin/env python3
"""bench/backends: wharfd's io_uring backend against its epoll backend, in one run.

Two wharfd processes (--workers 1, CPU 0), one per backend, take turns A B A B over
--rounds under the same load on CPU 1:
  - frame, 64 B payload, pipeline 1, at {10, 100, 1000, 10000} connections (wharf bench,
    every reply checked), and
  - HTTP keep-alive with wrk (-t1 -c256, bench/lua/json.lua).
Per run: requests/s, p99, the server's CPU µs per request and its syscalls per request
(perf stat -e raw_syscalls:sys_enter on the server's threads, steady state).

Bars (issue 8): frame 1,000 connections io_uring >= 1.2x epoll requests/s; 10
connections >= 0.95x; wrk keep-alive 256 connections >= 1.1x. Both load generator and
server saturate their cores here, so the server's CPU per request is reported next to
requests/s: it is what the backend changes, and what a faster client would turn into
requests/s.

Writes runs.csv, table.md, summary.json, meta.txt and raw/ to --out
(default bench/results/DATE-backends/). Exit status: 0, 1 when a run failed, 2 on a
usage error or when io_uring is not built in, 3 when it is built in but the kernel
refuses it here.
"""

import argparse
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
import benchlib as bl


def load_echo():
    """bench/echo's one_run: the frame runs here are measured exactly as there."""
    loader = importlib.machinery.SourceFileLoader("bench_echo", os.path.join(HERE, "echo.py"))
    spec = importlib.util.spec_from_loader("bench_echo", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


BACKENDS = ("epoll", "io_uring")
BARS = [  # (workload key, minimum io_uring/epoll requests/s)
    ("frame-c1000", 1.2),
    ("frame-c10", 0.95),
    ("http-c256", 1.1),
]
FIELDS = ["round", "backend", "workload", "conns", "rps", "p99_us", "mean_us", "errors",
          "cpu_us", "syscalls_per_req", "ctxsw_per_req", "client_cpu_us"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--rounds", type=int, default=3, help="A B rounds (default 3)")
    ap.add_argument("--duration", type=float, default=3.0,
                    help="measured seconds per run (default 3)")
    ap.add_argument("--conns", default="10,100,1000,10000",
                    help="frame connection counts (default 10,100,1000,10000)")
    ap.add_argument("--http-conns", type=int, default=256, help="wrk connections (default 256)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: 1 round, 1 s, 10 and 100")
    ap.add_argument("--no-perf", action="store_true", help="do not count syscalls")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-backends/)")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.duration = 1, 1.0
        if a.conns == ap.get_default("conns"):
            a.conns = "10,100"
        a.http_conns = min(a.http_conns, 64)
    a.conns = [int(c) for c in a.conns.split(",") if c]
    a.warmup = 0.5 if a.quick else 1.0
    a.out = a.out or bl.default_out("quick-backends" if a.quick else "backends")
    return a


def perf_counts(pids, path):
    """Start perf stat on the server's threads; returns the process (stop with SIGINT)."""
    ev = "raw_syscalls:sys_enter,context-switches"
    return bl.spawn(bl.taskset(bl.LOAD_CPU, ["perf", "stat", "-x", ",", "-o", path, "-e", ev,
                                             "-p", ",".join(map(str, pids))]),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_read(p, path):
    p.send_signal(2)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        bl.stop_process(p, grace=2)
    return bl.perf_stat_counts(path)


def http_run(a, srv, be, rnd):
    """wrk keep-alive against one backend; syscalls and CPU over wrk's whole run."""
    tag = f"r{rnd}-{be}-http-c{a.http_conns}"
    pids = srv.pids()
    perf, path = None, os.path.join(a.tmp, tag + ".perf")
    if not a.no_perf:
        perf = perf_counts(pids, path)
        time.sleep(0.15)
    c0 = bl.cpu_seconds(pids)
    r = bl.run_wrk(srv.url("/"), "json.lua", conns=a.http_conns, duration=a.duration,
                   raw_path=os.path.join(a.out, "raw", tag + ".txt"))
    cpu = bl.cpu_seconds(pids) - c0
    counts = perf_read(perf, path) if perf else {}
    n = r["requests"]
    errs = r["errors"]["total"]
    lat = r["latency_us"]
    return {"round": rnd, "backend": be, "workload": f"http-c{a.http_conns}",
            "conns": a.http_conns, "rps": round(r["rps"], 1),
            "p99_us": lat["p99"], "mean_us": lat["mean"], "errors": errs,
            "cpu_us": round(cpu * 1e6 / n, 3) if n else None,
            "syscalls_per_req": round(counts["raw_syscalls:sys_enter"] / n, 4)
            if n and "raw_syscalls:sys_enter" in counts else None,
            "ctxsw_per_req": round(counts.get("context-switches", 0) / n, 4) if n else None}


def frame_run(a, echo, srv, wharf, be, conns, rnd):
    row = echo.one_run(a, srv, wharf, "frame", conns, 64, 1, f"{rnd}-{be}", [])
    return {"round": rnd, "backend": be, "workload": f"frame-c{conns}", "conns": conns,
            "rps": row["rps"], "p99_us": row["p99_us"], "mean_us": row["mean_us"],
            "errors": row["errors"], "cpu_us": row.get("cpu_us"),
            "syscalls_per_req": row.get("syscalls_per_req"),
            "ctxsw_per_req": row.get("ctxsw_per_req"), "client_cpu_us": row.get("client_cpu_us")}


def medians(rows, workload, be):
    rs = [r for r in rows if r["workload"] == workload and r["backend"] == be]
    return {f: bl.median([r.get(f) for r in rs]) for f in
            ("rps", "p99_us", "mean_us", "cpu_us", "syscalls_per_req")}, \
        sum(r["errors"] or 0 for r in rs)


def ratio(x, y):
    return round(x / y, 3) if x is not None and y else None


def summarize(a, rows):
    workloads = [f"frame-c{c}" for c in a.conns] + [f"http-c{a.http_conns}"]
    lines = [f"wharfd `--workers 1` (CPU 0), io_uring vs epoll, load on CPU 1: "
             f"{a.rounds} round(s) A B, {a.duration:g} s each, medians. frame: `wharf bench "
             f"-t1 --size 64 -P 1` (replies checked); http: `wrk -t1` keep-alive. CPU and "
             f"syscalls: the server's, per request.", "",
             "| workload | epoll req/s | io_uring req/s | ratio | epoll p99 µs | "
             "io_uring p99 µs | epoll CPU µs/req | io_uring CPU µs/req | CPU ratio | "
             "epoll syscalls/req | io_uring syscalls/req | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = {}
    for w in workloads:
        e, ee = medians(rows, w, "epoll")
        u, ue = medians(rows, w, "io_uring")
        # ratio of medians of per-round ratios is steadier than ratio of medians
        per_round = []
        for rnd in range(1, a.rounds + 1):
            re = [r for r in rows if r["workload"] == w and r["round"] == rnd]
            x = {r["backend"]: r for r in re}
            if "epoll" in x and "io_uring" in x:
                per_round.append(ratio(x["io_uring"]["rps"], x["epoll"]["rps"]))
        rr = bl.median(per_round)
        ratios[w] = {"rps_ratio": rr, "per_round": per_round,
                     "cpu_ratio": ratio(u["cpu_us"], e["cpu_us"])}

        def sc(v):
            return "—" if v is None else f"{v:.3f}"
        lines.append(f"| {w} | {bl.fmt_num(e['rps'])} | {bl.fmt_num(u['rps'])} | "
                     f"{'—' if rr is None else f'{rr:.2f}×'} | {bl.fmt_num(e['p99_us'])} | "
                     f"{bl.fmt_num(u['p99_us'])} | {bl.fmt_num(e['cpu_us'])} | "
                     f"{bl.fmt_num(u['cpu_us'])} | "
                     f"{'—' if ratios[w]['cpu_ratio'] is None else str(ratios[w]['cpu_ratio']) + '×'}"
                     f" | {sc(e['syscalls_per_req'])} | {sc(u['syscalls_per_req'])} | {ee + ue} |")
    bars = []
    lines += ["", "| bar | measured (median of per-round ratios) | per round | |", "|---|---|---|---|"]
    for w, limit in BARS:
        if w not in ratios:
            continue
        v = ratios[w]["rps_ratio"]
        met = None if v is None else v >= limit
        bars.append({"workload": w, "limit": limit, "value": v, "met": met,
                     "per_round": ratios[w]["per_round"]})
        lines.append(f"| {w}: io_uring >= {limit}× epoll req/s | "
                     f"{'—' if v is None else f'{v:.2f}×'} | {ratios[w]['per_round']} | "
                     f"{'met' if met else '**missed**' if met is False else 'n/a'} |")
    return "\n".join(lines) + "\n", bars, ratios


def main():
    a = parse_args()
    bl.check_tools(["taskset", "wrk"] + ([] if a.no_perf else ["perf"]))
    echo = load_echo()
    wharf = bl.snapshot(os.path.join(bl.build_dir(), "wharf"))
    wharfd = bl.snapshot(os.path.join(bl.build_dir(), "wharfd"))
    out = subprocess.run([wharfd, "--version"], capture_output=True, text=True, timeout=10)
    if "io_uring" not in out.stdout:
        bl.die("this wharfd has no io_uring backend (liburing-dev missing at build time?)")
    servers = {be: bl.wharfd(wharfd, protos=("http", "frame"), extra=["--backend", be])
               for be in BACKENDS}
    per_round = sum(c / echo.CONNECT_RATE + a.warmup + a.duration + 2 for c in a.conns) + \
        a.duration + 3
    budget = per_round * 2 * a.rounds
    bl.install_cleanup(budget * 2 + 60)
    a.tmp = bl.tmpdir("wharf-backends-")
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    bl.log(f"bench/backends: {a.rounds} round(s) x 2 backends x {len(a.conns) + 1} loads, "
           f"about {budget / 60:.1f} min; results in {a.out}")
    rows, failures = [], []
    try:
        for be, s in servers.items():
            try:
                s.start(tries=1)
            except RuntimeError as e:
                if be != "io_uring":
                    raise
                bl.log(f"bench/backends: io_uring is built in but not usable here: {e}")
                return 3
            got = s.backend()
            if got != be:
                bl.die(f"wharfd --backend {be} runs '{got}' (see its log): "
                       f"{s.log()[-300:]}")
        bl.write_meta(a.out, sys.argv, {"servers": servers["epoll"].version})
        for rnd in range(1, a.rounds + 1):
            order = BACKENDS if rnd % 2 else tuple(reversed(BACKENDS))
            loads = [("frame", c) for c in a.conns] + [("http", a.http_conns)]
            for kind, conns in loads:
                for be in order:
                    srv = servers[be]
                    try:
                        if kind == "frame":
                            row = frame_run(a, echo, srv, wharf, be, conns, rnd)
                        else:
                            row = http_run(a, srv, be, rnd)
                    except RuntimeError as e:
                        failures.append(f"round {rnd} {be} {kind} c{conns}: {e}")
                        continue
                    rows.append(row)
                    bl.log(f"r{rnd} {be:8} {row['workload']:12} {bl.fmt_num(row['rps'])} req/s "
                           f"p99 {bl.fmt_num(row['p99_us'])} µs CPU {bl.fmt_num(row['cpu_us'])} "
                           f"µs/req syscalls/req {row['syscalls_per_req']} errors {row['errors']}")
                    if row["errors"]:
                        failures.append(f"round {rnd} {be} {row['workload']}: "
                                        f"{row['errors']} errors")
                    time.sleep(0.3)
    except bl.Interrupted as e:
        failures.append(f"interrupted: {e}")
    finally:
        for s in servers.values():
            s.stop()
    bl.write_csv(os.path.join(a.out, "runs.csv"), rows, FIELDS)
    md, bars, ratios = summarize(a, rows)
    if failures:
        md += "\nFailures:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"bars": bars, "ratios": ratios, "failures": failures, "rows": rows}, f,
                  indent=1)
    print(md)
    bl.log(f"bench/backends: wrote {a.out}/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

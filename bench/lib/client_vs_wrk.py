#!/usr/bin/env python3
"""bench/client-vs-wrk: wharf bench against wrk as HTTP load generators.

The server runs pinned to CPU 0 (nginx with one worker, or wharfd --workers 1); wrk
and `wharf bench` take turns on CPU 1 (wrk first, then wharf, in each round), both with
one thread, over R rounds. Workloads: nginx keep-alive (-c100), wharfd pipelined x16
(-c100), wharfd connection-close (-c100, 'Connection: close', so each request is a
connection) and wharfd keep-alive with a script whose request() runs per request
(bench/lua/rotate.lua, -s under both: `--workloads script`). Per run: requests/s (connections/s for close) and the client's own CPU
time per request (user + system of the generator process, from getrusage of the
children, around each run). Every figure is compared as the ratio wharf/wrk within a
round; the table shows the median of those ratios.

The bars (issue 18): keep-alive: client CPU/request <= 1.0x wrk's; pipelined: requests/s
>= 1.0x wrk's and client CPU/request <= 1.0x; close: connections/s >= 1.0x wrk's. Issue
19: script: client CPU/request <= 1.0x wrk's with the same script.

Writes runs.csv, table.md, summary.json, meta.txt and raw/ (each generator's output)
to --out (default bench/results/DATE-client-vs-wrk/). Exit status 0 when every run
completed (bars missed are reported in table.md, not failed), 1 when runs failed.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import benchlib as bl

WORKLOADS = {
    "keepalive": dict(title="nginx keep-alive, -c100", server="nginx", script="json.lua",
                      args=(), wharf=[], per="request", rate="requests/s"),
    "pipeline": dict(title="wharfd pipelined x16, -c100", server="wharfd", script="pipeline.lua",
                     args=(16,), wharf=["-P", "16"], per="request", rate="requests/s"),
    "close": dict(title="wharfd connection-close, -c100", server="wharfd", script="close.lua",
                  args=(), wharf=["-H", "Connection: close", "--connect-rate", "0"],
                  per="connection", rate="connections/s"),
    # The same script under both: wharf bench runs it with -s (issue 19).
    "script": dict(title="wharfd keep-alive, request() script, -c100", server="wharfd",
                   script="rotate.lua", args=(), wharf=["-s", os.path.join(bl.LUA, "rotate.lua")],
                   per="request", rate="requests/s"),
}

BARS = [
    ("keepalive", "cpu_us", "<=", 1.0, "client CPU/request <= 1.0x wrk"),
    ("pipeline", "rps", ">=", 1.0, "requests/s >= 1.0x wrk"),
    ("pipeline", "cpu_us", "<=", 1.0, "client CPU/request <= 1.0x wrk"),
    ("close", "rps", ">=", 1.0, "connections/s >= 1.0x wrk"),
    ("script", "cpu_us", "<=", 1.0, "client CPU/request <= 1.0x wrk"),
]

FIELDS = ["round", "workload", "client", "duration_s", "requests", "rps", "errors",
          "cpu_s", "cpu_us", "p50_us", "p99_us"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    ap.add_argument("--workloads", default="keepalive,pipeline,close",
                    help="comma list of: " + ", ".join(WORKLOADS))
    ap.add_argument("--out", help="results directory (default bench/results/DATE-client-vs-wrk/)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between runs")
    a = ap.parse_args()
    a.workloads = [w for w in a.workloads.split(",") if w]
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    if a.rounds < 1 or a.duration < 1:
        ap.error("--rounds and --duration must be at least 1")
    a.out = a.out or bl.default_out("client-vs-wrk")
    return a


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_wrk(a, srv, wl, raw):
    c0 = children_cpu()
    r = bl.run_wrk(srv.url("/"), wl["script"], wl["args"], conns=100, threads=1,
                   duration=a.duration, raw_path=raw)
    cpu = children_cpu() - c0
    n, lat = r["requests"], r["latency_us"]
    return {"duration_s": r["duration_us"] / 1e6, "requests": n, "rps": r["rps"],
            "errors": r["errors"]["total"], "cpu_s": cpu,
            "p50_us": lat.get("p50"), "p99_us": lat.get("p99")}


def run_wharf(a, wharf, srv, wl, raw):
    d = max(1, int(round(a.duration)))
    args = [wharf, "bench", "-t", "1", "-c", "100", "-d", f"{d}s", "--json", *wl["wharf"],
            srv.url("/")]
    c0 = children_cpu()
    p = bl.spawn(bl.taskset(bl.LOAD_CPU, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=d + 40)
    except subprocess.TimeoutExpired:
        bl.stop_process(p, grace=2)
        raise RuntimeError(f"wharf bench did not stop within {d + 40} s")
    cpu = children_cpu() - c0
    with open(raw, "w") as f:
        f.write(" ".join(args) + "\n" + out.decode(errors="replace") + err.decode(errors="replace"))
    try:
        r = json.loads(out)
    except ValueError:
        raise RuntimeError(f"wharf bench printed no JSON (exit {p.returncode}): {err[-600:]!r}")
    n = r["requests"]["ok"]
    return {"duration_s": r["duration_s"], "requests": n, "rps": r["requests_per_sec"],
            "errors": r["errors"]["total"], "cpu_s": cpu,
            "p50_us": r["latency"]["p50_us"], "p99_us": r["latency"]["p99_us"]}


def summarize(rows, workloads):
    out = {}
    for wl in workloads:
        out[wl] = {}
        for fig in ("rps", "cpu_us"):
            med = {c: bl.median([r[fig] for r in rows if r["workload"] == wl and r["client"] == c])
                   for c in ("wrk", "wharf")}
            ratios = []
            for rnd in sorted({r["round"] for r in rows if r["workload"] == wl}):
                x = {r["client"]: r[fig] for r in rows if r["workload"] == wl and r["round"] == rnd}
                if x.get("wharf") is not None and x.get("wrk"):
                    ratios.append(x["wharf"] / x["wrk"])
            out[wl][fig] = {"median": med, "ratio": bl.median(ratios) if ratios else None,
                            "ratios": ratios}
    return out


def markdown(summary, a, versions):
    lines = ["| workload | figure | wrk | wharf bench | wharf/wrk (rounds) | bar |",
             "|---|---|---|---|---|---|"]
    for wl in summary:
        w = WORKLOADS[wl]
        for fig, label in (("rps", w["rate"]), ("cpu_us", f"client CPU µs/{w['per']}")):
            s = summary[wl][fig]
            bar = [b for b in BARS if b[0] == wl and b[1] == fig]
            mark = ""
            if bar and s["ratio"] is not None:
                _, _, op, lim, text = bar[0]
                met = s["ratio"] >= lim if op == ">=" else s["ratio"] <= lim
                mark = f"{text}: {'met' if met else '**missed**'}"
            ratio = "—" if s["ratio"] is None else (
                f"{s['ratio']:.2f}× (" + ", ".join(f"{x:.2f}" for x in s["ratios"]) + ")")
            lines.append(f"| {w['title'] if fig == 'rps' else ''} | {label} | "
                         f"{bl.fmt_num(s['median']['wrk'])} | {bl.fmt_num(s['median']['wharf'])} "
                         f"| {ratio} | {mark} |")
    intro = (f"Server on CPU 0 ({', '.join(versions)}); wrk -t1 and `wharf bench -t 1` "
             f"alternating on CPU 1; {a.rounds} round(s) of {a.duration:g} s per run. "
             f"Client CPU: the generator's user + system time (getrusage of the children) "
             f"per completed request. wharf/wrk: the median over rounds of the ratio within "
             f"each round (each round's ratio in brackets).")
    return intro + "\n\n" + "\n".join(lines) + "\n"


def run_all(a, wharf, servers, raw_dir, rows, failures):
    for rnd in range(1, a.rounds + 1):
        for wl_name in a.workloads:
            wl = WORKLOADS[wl_name]
            srv = servers[wl["server"]]
            for client in ("wrk", "wharf"):
                raw = os.path.join(raw_dir, f"r{rnd}-{wl_name}-{client}.txt")
                try:
                    r = run_wrk(a, srv, wl, raw) if client == "wrk" else \
                        run_wharf(a, wharf, srv, wl, raw)
                except RuntimeError as e:
                    failures.append(f"round {rnd} {wl_name} {client}: {e}")
                    bl.log(f"round {rnd} {wl_name} {client} FAILED: {e}")
                    continue
                r.update(round=rnd, workload=wl_name, client=client,
                         cpu_us=r["cpu_s"] * 1e6 / r["requests"] if r["requests"] else None)
                rows.append(r)
                bl.log(f"round {rnd}/{a.rounds} {wl_name:<9} {client:<5} "
                       f"{bl.fmt_num(r['rps']):>7} {wl['rate']}, client CPU "
                       f"{r['cpu_us'] or 0:.3f} µs/{wl['per']}, errors {r['errors']}")
                time.sleep(a.pause)


def main():
    a = parse_args()
    bl.check_tools(["wrk", "taskset"])
    if not bl.Nginx.available() and "keepalive" in a.workloads:
        bl.die("nginx is not installed (apt-get install nginx-light)")
    wharf = bl.snapshot(os.path.join(bl.build_dir(), "wharf"))
    binary = bl.snapshot(os.path.join(bl.build_dir(), "wharfd"))
    n_runs = a.rounds * len(a.workloads) * 2
    bl.install_cleanup(n_runs * (a.duration + a.pause + 2) * 2 + 60)
    raw_dir = os.path.join(a.out, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    bl.log(f"bench/client-vs-wrk: {n_runs} runs of {a.duration:g} s; results in {a.out}")
    servers, rows, failures = {}, [], []
    try:
        if "keepalive" in a.workloads:
            servers["nginx"] = bl.Nginx()
        if {"pipeline", "close", "script"} & set(a.workloads):
            servers["wharfd"] = bl.wharfd(binary)
        for s in servers.values():
            s.start()
        bl.write_meta(a.out, sys.argv, {"servers": ", ".join(s.version or s.name
                                                              for s in servers.values()),
                                        "wrk": bl.wrk_version()})
        run_all(a, wharf, servers, raw_dir, rows, failures)
    except bl.Interrupted as e:
        failures.append(f"interrupted: {e}")
    finally:
        for s in servers.values():
            s.stop()
    bl.write_csv(os.path.join(a.out, "runs.csv"), rows, FIELDS)
    workloads = [w for w in a.workloads if any(r["workload"] == w for r in rows)]
    summary = summarize(rows, workloads)
    md = markdown(summary, a, [s.version or s.name for s in servers.values()])
    if failures:
        md += "\nFailures:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"summary": summary, "failures": failures, "rounds": a.rounds,
                   "duration_s": a.duration}, f, indent=1)
    print(md)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""bench/latency: latency as HdrHistogram results and charts.

wharfd (--workers 1, CPU 0) serves frame://; `wharf bench -t 1` (CPU 1) loads it at
10, 100 and 1000 connections (closed loop, 64-byte payload), each run with a warm-up
second, --hdr-log (an interval log, 1 s intervals) and --hgrm. Then, with gnuplot:
percentiles.png, the three runs' latency by percentile on the 1/(1-p) axis, and
timeseries.png, requests/s and p50/p99/max per interval of the 100-connection run.

Writes RUN.log, RUN.hgrm, RUN.json, runs.csv, table.md, the charts (with their .dat
and .gp) and meta.txt to --out (default bench/results/DATE-latency/).
"""

import argparse
import json
import os
import subprocess
import sys

import benchlib as bl
from wharfkit.charts import percentile_chart, timeseries_chart

CONNS = [10, 100, 1000]
SERIES = 100  # the run whose intervals are charted over time


def parse_args():
    ap = argparse.ArgumentParser(prog="bench/latency", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    ap.add_argument("--rounds", type=int, default=1, help="accepted; one round is run")
    ap.add_argument("--quick", action="store_true", help="1 s per run (smoke mode)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.quick:
        a.duration = 1.0
    a.out = a.out or bl.default_out("latency")
    return a


def one_run(wharf, srv, a, conns):
    name = f"c{conns}"
    log, hgrm = os.path.join(a.out, f"{name}.log"), os.path.join(a.out, f"{name}.hgrm")
    cmd = bl.taskset(bl.LOAD_CPU, [wharf, "bench", "-t", "1", "-c", str(conns), "-d",
                                   f"{a.duration}s", "--warmup", "1s", "--hdr-log", log,
                                   "--hgrm", hgrm, "--json",
                                   f"frame://127.0.0.1:{srv.port['frame']}"])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.duration + 60)
    with open(os.path.join(a.out, f"{name}.json"), "w") as f:
        f.write(r.stdout)
    rep = json.loads(r.stdout)
    lat = rep["latency"]
    bl.log(f"  {conns:5d} connections: {rep['requests_per_sec']:10.0f} req/s  p50 "
           f"{lat['p50_us']:.1f} us  p99 {lat['p99_us']:.1f} us  max {lat['max_us']:.1f} us")
    return {"conns": conns, "rps": round(rep["requests_per_sec"]), "p50_us": lat["p50_us"],
            "p99_us": lat["p99_us"], "p999_us": lat["p99_9_us"], "max_us": lat["max_us"],
            "errors": rep["errors"]["total"]}, (f"{conns} connections", hgrm), log


def main():
    a = parse_args()
    bl.check_tools(["taskset", "gnuplot"])
    os.makedirs(a.out, exist_ok=True)
    wharf = bl.snapshot(os.path.join(bl.build_dir(), "wharf"))
    srv = bl.wharfd(bl.snapshot(os.path.join(bl.build_dir(), "wharfd")),
                    protos=("http", "frame"), extra=["--max-conns", "5000"])
    bl.install_cleanup((a.duration + 5) * len(CONNS) * 2 + 60)
    bl.log(f"bench/latency: {len(CONNS)} runs of {a.duration:g} s (+1 s warm-up); "
           f"results in {a.out}")
    rows, runs, series = [], [], None
    try:
        srv.start()
        bl.write_meta(a.out, sys.argv, {"servers": srv.version})
        for c in CONNS:
            row, run, log = one_run(wharf, srv, a, c)
            rows.append(row)
            runs.append(run)
            series = log if c == SERIES else series
    finally:
        srv.stop()
    bl.write_csv(os.path.join(a.out, "runs.csv"), rows, list(rows[0]))
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write("| connections | requests/s | p50 us | p99 us | p99.9 us | max us | errors |\n"
                "|---:|---:|---:|---:|---:|---:|---:|\n")
        for r in rows:
            f.write(f"| {r['conns']} | {r['rps']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | "
                    f"{r['p999_us']:.1f} | {r['max_us']:.1f} | {r['errors']} |\n")
    ok = percentile_chart(os.path.join(a.out, "percentiles.png"), runs,
                          "wharfd frame://, wharf bench -t1, 64 B: latency by percentile")
    ok &= timeseries_chart(os.path.join(a.out, "timeseries.png"), series,
                           title=f"wharfd frame://, {SERIES} connections: per second")
    bl.log("bench/latency: charts " + ("drawn" if ok else "FAILED (gnuplot)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

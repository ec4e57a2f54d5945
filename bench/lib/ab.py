#!/usr/bin/env python3
"""bench/ab: one wharfd build against another (a change against the tree before it).

    bench/ab OLD_BUILD NEW_BUILD [--rounds 3] [--duration 5] [--out DIR]

OLD_BUILD and NEW_BUILD are build directories (each with wharfd and wharf, e.g. a
`git worktree` of the old commit built with make). Each round runs bench/http (wharfd
only: keep-alive, pipelined x16, connection-close, 10,000 connections) and bench/echo's
1,000-connection rows (frame and line, 64 B and 4 KiB, pipeline 1 and 16) once for each
build, the two builds alternating and swapping who goes first every round. Every row's
server CPU per request is compared as new/old within the round; the table shows the
median of those ratios and its range over the rounds. Pinning, timing and server
handling are the harnesses' own (bench/README.md)."""
import argparse
import csv
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)


def harness_rows(name, build, out, args):
    """Run bench/NAME against build; its runs.csv rows keyed by row name -> CPU us/request."""
    env = dict(os.environ, WHARF_BUILD=os.path.abspath(build))
    cmd = [os.path.join(BENCH, name), "--rounds", "1", "--duration", str(args.duration),
           "--out", out]
    if name == "http":
        cmd += ["--servers", "wharfd"]
    else:
        cmd += ["--conns", "1000", "--protos", "frame,line", "--sizes", "64,4096",
                "--pipelines", "1,16", "--no-perf"]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    rows = {}
    with open(os.path.join(out, "runs.csv")) as f:
        for r in csv.DictReader(f):
            if r.get("disturbed") == "1":
                continue
            key = (f"http {r['workload']}" if name == "http" else
                   f"echo {r['proto']} c{r['conns']} {r['size']}B P{r['pipeline']}")
            rows[key] = float(r["cpu_us"])
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--out", default="/tmp/wharf-ab")
    args = ap.parse_args()
    ratios, cpu = {}, {"old": {}, "new": {}}
    for rnd in range(args.rounds):
        order = ["old", "new"] if rnd % 2 == 0 else ["new", "old"]
        got = {}
        for name in ("http", "echo"):
            for who in order:
                out = os.path.join(args.out, f"r{rnd + 1}-{name}-{who}")
                got.setdefault(who, {}).update(
                    harness_rows(name, getattr(args, who), out, args))
                print(f"round {rnd + 1}: {name} {who} done", file=sys.stderr)
        for key in got["old"]:
            if key in got["new"] and got["old"][key] > 0:
                ratios.setdefault(key, []).append(got["new"][key] / got["old"][key])
                cpu["old"].setdefault(key, []).append(got["old"][key])
                cpu["new"].setdefault(key, []).append(got["new"][key])
    print("| row | old CPU us/req | new CPU us/req | new/old (median) | range |")
    print("|---|---|---|---|---|")
    for key, rs in ratios.items():
        print(f"| {key} | {statistics.median(cpu['old'][key]):.2f} | "
              f"{statistics.median(cpu['new'][key]):.2f} | {statistics.median(rs):.3f} | "
              f"{min(rs):.3f}-{max(rs):.3f} |")


if __name__ == "__main__":
    main()

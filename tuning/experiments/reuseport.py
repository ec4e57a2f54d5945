#!/usr/bin/env python3
"""reuseport: the same `wharf bench` load against wharfd with --dispatch rr, least and
reuseport: throughput, p99 latency, and how evenly connections (and the requests on
them) spread across the workers, from the per-worker counters of wharfd's /stats.

  rr         one listener; the acceptor hands connections to workers in turn
  least      one listener; the acceptor picks the worker with the fewest live ones
  reuseport  one SO_REUSEPORT listener per worker; the kernel picks by a hash of
             the 4-tuple, blind to how busy each worker is

Two loads per dispatch, in one fresh namespace per dispatch (wharfd -w WORKERS):
  many  wharf bench -c 100 -t 1 -d 8s   (after a 1 s warmup)
  few   wharf bench -c 8   -t 1 -d 4s   (few connections: where a hash is lumpy)
Per-worker figures are deltas of /stats taken before and after each load.
Writes tuning/results/reuseport-DATE.{csv,md,png}.
"""
import os
import statistics
import sys

import wxlib
from wxlib import Lab, Wharfd, log, md_table

DISPATCH = ("rr", "least", "reuseport")


def spread(values):
    """max/mean and coefficient of variation (stdev/mean) of per-worker counts."""
    m = statistics.mean(values) if values else 0
    if not m:
        return 0.0, 0.0
    return max(values) / m, statistics.pstdev(values) / m


def main():
    ap = wxlib.base_args(__doc__, "50 s (--quick: 12 s)")
    ap.add_argument("--workers", type=int, default=4, help="wharfd -w [default: 4]")
    args = ap.parse_args()
    loads = [("many", 100, 3 if args.quick else 8, 0 if args.quick else 1),
             ("few", 8, 1 if args.quick else 4, 0)]
    with Lab("reuseport", args) as lab:
        runs = []
        for d in DISPATCH:
            lab.check_time()
            ns = lab.netns(f"rp-{d}")
            srv = Wharfd(lab, ns, ["frame://127.0.0.1:9100", "http://127.0.0.1:8080"],
                         ["-w", str(args.workers), "--dispatch", d])
            for name, conns, secs, warm in loads:
                before = srv.stats()
                log(f"reuseport: --dispatch {d}, {conns} connections, {secs} s")
                cmd = ["bench", "-c", str(conns), "-t", "1", "-d", f"{secs}s"]
                if warm:
                    cmd += ["--warmup", f"{warm}s"]
                rep = wxlib.wharf(lab, ns, cmd + ["frame://127.0.0.1:9100"], timeout=60)
                after = srv.stats()
                acc, msg = [], []
                for wb, wa in zip(before["workers"], after["workers"]):
                    acc.append(wa["accepted"] - wb["accepted"])
                    msg.append(wa["messages"] - wb["messages"])
                a_max, a_cv = spread(acc)
                m_max, m_cv = spread(msg)
                r = dict(dispatch=d, load=name, connections=conns, seconds=secs,
                         workers=args.workers,
                         requests_per_sec=rep["requests_per_sec"],
                         p50_us=rep["latency"]["p50_us"], p99_us=rep["latency"]["p99_us"],
                         errors=rep["errors"]["total"],
                         accepted_per_worker=" ".join(map(str, acc)),
                         messages_per_worker=" ".join(map(str, msg)),
                         acc_max_over_mean=a_max, acc_cv=a_cv,
                         msg_max_over_mean=m_max, msg_cv=m_cv, acc=acc, msg=msg)
                runs.append(r)
                log(f"  {r['requests_per_sec']:.0f} req/s, p99 {r['p99_us']:.0f} us, connections per "
                    f"worker {r['accepted_per_worker']}, requests per worker {r['messages_per_worker']}")
            srv.stop()
            lab.drop(ns)
        fields = ["dispatch", "load", "connections", "seconds", "workers", "requests_per_sec",
                  "p50_us", "p99_us", "errors", "accepted_per_worker", "messages_per_worker",
                  "acc_max_over_mean", "acc_cv", "msg_max_over_mean", "msg_cv"]
        csv_p = lab.write_csv(runs, fields)
        png = chart(lab, runs, args.workers)
        write_md(lab, runs, args, loads, png)
        log(f"reuseport: wrote {csv_p} and .md{' and .png' if png else ''}")


def chart(lab, runs, workers):
    rows = []
    for r in runs:
        row = {"label": f"{r['dispatch']}/{r['connections']}"}
        for i in range(workers):
            row[f"a{i}"] = r["acc"][i]
            row[f"m{i}"] = 100.0 * r["msg"][i] / max(1, sum(r["msg"]))
        row["rps"] = r["requests_per_sec"]
        row["p99"] = r["p99_us"] / 1000
        rows.append(row)
    d = lab.write_dat("rp.dat", rows, ["label"] + [f"a{i}" for i in range(workers)]
                      + [f"m{i}" for i in range(workers)] + ["rps", "p99"])
    acc_cols = ", ".join(f"'' using {2 + i} title 'worker {i}'" for i in range(1, workers))
    msg_cols = ", ".join(f"'' using {2 + workers + i} title 'worker {i}'" for i in range(1, workers))
    body = f"""set multiplot layout 3,1 title 'reuseport: wharf bench against wharfd -w {workers} per --dispatch (Linux {wxlib.kernel()})'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key outside right
set title 'connections accepted per worker (dispatch / connections of the load)'
set ylabel 'connections'
plot '{d}' using 2:xtic(1) title 'worker 0', {acc_cols}
set title 'share of requests served per worker'
set ylabel '% of requests'
plot '{d}' using {2 + workers}:xtic(1) title 'worker 0', {msg_cols}
set title 'throughput (timing: the machine is shared) and p99 latency'
set yrange [0:*]
set ylabel 'requests/s'
set y2label 'p99 ms'
set y2tics
set ytics nomirror
plot '{d}' using {2 + 2 * workers}:xtic(1) title 'requests/s', '' using ($0):{3 + 2 * workers} with linespoints lw 2 pt 7 axes x1y2 title 'p99 ms'
unset multiplot
"""
    return lab.chart({"height": 1000, "body": body})


def write_md(lab, runs, args, loads, png):
    cols = [("dispatch", "dispatch", ""), ("connections", "connections", "d"),
            ("requests/s", "requests_per_sec", ".0f"), ("p50 µs", "p50_us", ".0f"),
            ("p99 µs", "p99_us", ".0f"), ("errors", "errors", "d"),
            ("connections per worker", "accepted_per_worker", ""),
            ("max/mean", "acc_max_over_mean", ".2f"),
            ("requests per worker", "messages_per_worker", ""),
            ("max/mean ", "msg_max_over_mean", ".2f")]
    t = wxlib.header("reuseport: rr, least and SO_REUSEPORT dispatch", lab,
                     f"wharfd `-w {args.workers}`, one namespace per dispatch mode.")
    t += "Loads (wharf pinned nowhere; wharfd and wharf share the 2 CPUs with whatever else runs):\n\n"
    for name, conns, secs, warm in loads:
        t += (f"    wharf bench -c {conns} -t 1 -d {secs}s"
              + (f" --warmup {warm}s" if warm else "") + " frame://127.0.0.1:9100\n")
    t += ("\nPer-worker connections and requests are deltas of `/stats` (`workers[].accepted`, "
          "`workers[].messages`) over each load; max/mean = the busiest worker against the "
          "average (1.00 = perfectly even). Requests/s and latency are timings on a shared "
          "2-CPU machine: compare them with care; the spread columns are counts.\n\n")
    t += md_table(runs, cols) + "\n\n"
    t += "What the numbers say:\n\n"
    for name, conns, _, _ in loads:
        rs = [r for r in runs if r["load"] == name]
        t += (f"- {conns} connections: connections per worker "
              + "; ".join(f"{r['dispatch']} {r['accepted_per_worker']} (max/mean "
                          f"{r['acc_max_over_mean']:.2f})" for r in rs) + ".\n")
    t += ("\nrr and least place connections exactly; SO_REUSEPORT hashes each 4-tuple to a "
          "listener, so its spread is that of a random draw: close to even for many "
          "connections, lumpy for few, and it cannot steer away from a busy worker. Its gain — "
          "no single acceptor thread, no hand-off — matters for connection *rate*, which this "
          "request/response load does not stress.\n\n")
    if png:
        t += f"![reuseport]({png.name})\n"
    lab.write_md(t)


if __name__ == "__main__":
    wxlib.main_wrapper(main)

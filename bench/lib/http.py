#!/usr/bin/env python3
"""bench/http: wharfd against nginx, h2o and the floor server over HTTP/1.1.

Each server runs pinned to CPU 0 (wharfd with --workers 1, nginx with one worker);
wrk runs pinned to CPU 1. Workloads: keep-alive (-t1 -c100), pipelined x16 (-c100),
the same pipelined load from `wharf bench -t 1 -P 16` (per-request percentiles; wrk's
are per batch), connection-close (-c100), and 10,000 keep-alive connections
(-c10000). The servers take turns, A B A B, over R rounds; every figure is compared as the ratio
wharfd/nginx of two adjacent runs, and the table shows the median of those ratios.
h2o (one thread, peers/h2o.conf) and the floor (build/floor, bench/floor/floor.c: the
least a server can do per request) take their turns too and get ratio columns of
their own; the -c10000 workload is wharfd against nginx only (SKIP).

Per run: requests/s, latency (p50/p99 per request; the mean per batch when
pipelined), errors, the server's own CPU time per request (utime+stime of all the
server's processes and threads, from /proc, before and after the run, divided by
the requests wrk counted), CPU 0's busy time per request, and the server's memory.

Writes runs.csv, table.md, summary.json, chart.png, meta.txt and raw/ (wrk's
output) to --out (default bench/results/DATE-http/). Exit status: 0 when every run
completed (bars missed are reported, not failed: see table.md), 1 when runs failed.
"""

import argparse
import json
import os
import sys
import time

import benchlib as bl

WORKLOADS = {
    "keepalive": dict(title="keep-alive, -c100", short="keep-alive", script="json.lua", conns=100,
                      rate="requests/s", per="request"),
    "pipeline": dict(title="pipelined x16, -c100", short="pipelined", script="pipeline.lua",
                     conns=100, rate="requests/s", per="request", pipelined=True),
    # The same pipelined load from wharf bench: latency per request, not per batch.
    "pipeline_wharf": dict(title="pipelined x16, -c100, wharf bench", short="pipelined (wharf)",
                           generator="wharf", conns=100, rate="requests/s", per="request",
                           pipelined=True, per_request=True),
    "close": dict(title="connection-close, -c100", short="close", script="close.lua", conns=100,
                  rate="connections/s", per="connection"),
    "c10k": dict(title="keep-alive, -c10000", short="10k conns", script="json.lua", conns=10000,
                 rate="requests/s", per="request"),
}

# The performance bars (bench/README.md): (workload, figure, peer, op, limit, text).
# figure names a ratio wharfd/peer, except "errors" (wharfd's own total).
BARS = [
    ("pipeline", "rps", "nginx", ">=", 5.0, "requests/s >= 5x nginx"),
    ("pipeline", "cpu_us", "nginx", "<=", 0.15, "server CPU/request <= 0.15x nginx"),
    ("keepalive", "cpu_us", "nginx", "<=", 0.9, "server CPU/request <= 0.9x nginx"),
    ("keepalive", "p99_us", "nginx", "<=", 1.0, "p99 <= nginx's"),
    ("close", "cpu_us", "nginx", "<=", 1.0, "server CPU/connection <= nginx's"),
    ("close", "rps", "nginx", ">=", 0.95, "connections/s >= 0.95x nginx"),
    ("close", "cpu_us", "h2o", "<=", 1.0, "server CPU/connection <= h2o's"),
    ("close", "rps", "h2o", ">=", 1.0, "connections/s >= h2o's"),
    ("c10k", "errors", "wharfd", "==", 0, "errors 0"),
    ("c10k", "p99_us", "nginx", "<=", 1.0, "p99 <= nginx's"),
]
PEERS = ["nginx", "h2o", "floor"]  # ratio columns wharfd/PEER, in this order
SKIP = {"c10k": {"h2o", "floor"}}  # servers a workload does not run (time: make bench)

FIELDS = ["round", "workload", "server", "conns", "pipeline", "duration_s", "requests", "rps",
          "errors", "errors_connect", "errors_read", "errors_write", "errors_status",
          "errors_timeout", "lat_mean_us", "lat_p50_us", "lat_p90_us", "lat_p99_us",
          "lat_p999_us", "lat_max_us", "latency_raw", "cpu_s", "cpu_us", "core_s",
          "core_us", "rss_kib", "pss_kib", "server_alive", "disturbed", "attempt"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--rounds", type=int, default=3, help="A B rounds (default 3)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: 1 round of 1 s, no -c10000 (about 15 s)")
    ap.add_argument("--workloads", default="keepalive,pipeline,pipeline_wharf,close,c10k",
                    help="comma list of: " + ", ".join(WORKLOADS))
    ap.add_argument("--servers", default="wharfd,nginx,h2o,floor",
                    help="comma list: wharfd, nginx, h2o, floor (default: all four)")
    ap.add_argument("--pipeline", type=int, default=16, help="requests per write (default 16)")
    ap.add_argument("--wharfd-args", default="", help="extra wharfd arguments (one string)")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-http/)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    ap.add_argument("--retries", type=int, default=6,
                    help="pairs run again at most, when other processes took CPU 0 during "
                         "one of their runs (its busy time exceeds the server's CPU time by "
                         "15%% + 0.2 s); default 6")
    a = ap.parse_args()
    if a.quick:
        a.rounds = 1
        a.duration = 1.0
        if a.workloads == ap.get_default("workloads"):
            a.workloads = "keepalive,pipeline,pipeline_wharf,close"
        a.pause = 0.3
        a.retries = 0
    a.workloads = [w for w in a.workloads.split(",") if w]
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    a.servers = [s for s in a.servers.split(",") if s]
    if a.rounds < 1 or a.duration < 1:
        ap.error("--rounds and --duration must be at least 1")
    a.out = a.out or bl.default_out("quick-http" if a.quick else "http")
    return a


def make_servers(a):
    servers = []
    for name in a.servers:
        if name == "wharfd":
            binary = bl.snapshot(os.path.join(bl.build_dir(), "wharfd"))
            servers.append(bl.wharfd(binary, extra=a.wharfd_args.split()))
        elif name == "nginx":
            if not bl.Nginx.available():
                bl.log("nginx is not installed: skipped (apt-get install nginx-light)")
                continue
            servers.append(bl.Nginx())
        elif name == "h2o":
            if not bl.H2o.available():
                bl.log("h2o is not installed: skipped (apt-get install h2o)")
                continue
            servers.append(bl.H2o())
        elif name == "floor":
            servers.append(bl.Floor(bl.snapshot(os.path.join(bl.build_dir(), "floor"))))
        else:
            bl.die(f"unknown server {name}")
    return servers


def one_run(a, srv, wl_name, rnd, raw_dir):
    wl = WORKLOADS[wl_name]
    args = (a.pipeline,) if wl.get("pipelined") else ()
    pids = srv.pids()
    cpu0 = bl.cpu_seconds(pids)
    core0 = bl.core_busy_seconds(bl.SERVER_CPU)
    raw = os.path.join(raw_dir, f"r{rnd}-{wl_name}-{srv.name}.txt")
    if wl.get("generator") == "wharf":
        r = bl.run_wharf_bench(a.wharf, srv.url("/"), ["-P", str(a.pipeline)],
                               conns=wl["conns"], duration=a.duration, raw_path=raw)
    else:
        r = bl.run_wrk(srv.url("/"), wl["script"], args, conns=wl["conns"], threads=1,
                       duration=a.duration, raw_path=raw)
    cpu1 = bl.cpu_seconds(pids)
    core1 = bl.core_busy_seconds(bl.SERVER_CPU)
    rss, pss = bl.memory_kib(srv.pids())
    n = r["requests"]
    lat = r["latency_us"]
    e = r["errors"]
    return {
        "round": rnd, "workload": wl_name, "server": srv.name, "conns": wl["conns"],
        "pipeline": a.pipeline if wl.get("pipelined") else 1,
        "duration_s": r["duration_us"] / 1e6, "requests": n, "rps": round(r["rps"], 1),
        "errors": e["total"], "errors_connect": e["connect"], "errors_read": e["read"],
        "errors_write": e["write"], "errors_status": e["status"], "errors_timeout": e["timeout"],
        "lat_mean_us": round(lat.get("mean", 0), 1), "lat_p50_us": lat.get("p50"),
        "lat_p90_us": lat.get("p90"), "lat_p99_us": lat.get("p99"),
        "lat_p999_us": lat.get("p999"), "lat_max_us": lat.get("max"),
        "latency_raw": int(bool(r.get("latency_raw"))),
        "cpu_s": round(cpu1 - cpu0, 3),
        "cpu_us": round((cpu1 - cpu0) * 1e6 / n, 3) if n else None,
        "core_s": round(core1 - core0, 3),
        "core_us": round((core1 - core0) * 1e6 / n, 3) if n else None,
        "rss_kib": rss, "pss_kib": pss, "server_alive": int(srv.alive()),
        # CPU 0 ran much more than the server: another process competed for the core
        "disturbed": int((core1 - core0) - (cpu1 - cpu0) > 0.15 * (cpu1 - cpu0) + 0.2),
    }


# ---- summary ---------------------------------------------------------------------------

def figures(wl_name):
    wl = WORKLOADS[wl_name]
    per = wl["per"]
    f = [("rps", wl["rate"], "higher")]
    f.append(("cpu_us", f"server CPU µs/{per}", "lower"))
    f.append(("core_us", f"CPU 0 busy µs/{per}", "lower"))
    if wl.get("pipelined") and not wl.get("per_request"):
        f.append(("lat_mean_us", "mean latency per batch µs", "lower"))
    else:
        f.append(("p50_us", "p50 latency µs", "lower"))
        f.append(("p99_us", "p99 latency µs", "lower"))
    f.append(("errors", "errors", "lower"))
    f.append(("rss_mib", "server RSS MiB", "lower"))
    return f


def value(row, fig):
    return {
        "rps": row["rps"], "cpu_us": row["cpu_us"], "core_us": row["core_us"],
        "lat_mean_us": row["lat_mean_us"], "p50_us": row["lat_p50_us"],
        "p99_us": row["lat_p99_us"], "errors": row["errors"],
        "rss_mib": row["rss_kib"] / 1024 if row["rss_kib"] else None,
    }[fig]


def ratios_of(rows, wl, fig, subject, ref):
    ratios = []
    rounds = sorted({r["round"] for r in rows if r["workload"] == wl})
    for rnd in rounds:
        a = [value(r, fig) for r in rows if r["workload"] == wl and r["round"] == rnd
             and r["server"] == subject]
        b = [value(r, fig) for r in rows if r["workload"] == wl and r["round"] == rnd
             and r["server"] == ref]
        if a and b and a[0] is not None and b[0]:
            ratios.append(a[0] / b[0])
    if not ratios or fig == "errors":
        return None
    return {"ratio": bl.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def summarize(rows, workloads, servers, ref="nginx", subject="wharfd"):
    out = {}
    for wl in workloads:
        out[wl] = {}
        for fig, label, _ in figures(wl):
            med = {}
            for s in servers:
                med[s] = bl.median([value(r, fig) for r in rows
                                    if r["workload"] == wl and r["server"] == s])
            ratios = []
            rounds = sorted({r["round"] for r in rows if r["workload"] == wl})
            for rnd in rounds:
                a = [value(r, fig) for r in rows if r["workload"] == wl and r["round"] == rnd
                     and r["server"] == subject]
                b = [value(r, fig) for r in rows if r["workload"] == wl and r["round"] == rnd
                     and r["server"] == ref]
                if a and b and a[0] is not None and b[0]:
                    ratios.append(a[0] / b[0])
            out[wl][fig] = {
                "label": label, "median": med,
                "ratio": bl.median(ratios) if ratios and fig != "errors" else None,
                "ratio_min": min(ratios) if ratios else None,
                "ratio_max": max(ratios) if ratios else None,
                "errors_total": {s: sum(r["errors"] for r in rows
                                        if r["workload"] == wl and r["server"] == s)
                                 for s in servers} if fig == "errors" else None,
                "vs": {p: ratios_of(rows, wl, fig, subject, p) for p in servers
                       if p != subject},
            }
    return out


def check_bars(summary, servers):
    results = []
    for wl, fig, peer, op, limit, text in BARS:
        if wl not in summary or peer not in servers or "wharfd" not in servers:
            continue
        s = summary[wl][fig]
        if fig == "errors":
            v = s["errors_total"]["wharfd"]
        else:
            v = (s["vs"].get(peer) or {}).get("ratio")
        if v is None:
            ok = None
        elif op == ">=":
            ok = v >= limit
        elif op == "<=":
            ok = v <= limit
        else:
            ok = v == limit
        results.append({"workload": wl, "figure": fig, "peer": peer, "bar": text, "value": v,
                        "met": ok})
    return results


def ratio_text(s):
    if s is None or s["ratio"] is None:
        return "—"
    t = f"{s['ratio']:.2f}×"
    if s["ratio_min"] is not None and s["ratio_max"] != s["ratio_min"]:
        t += f" ({s['ratio_min']:.2f}–{s['ratio_max']:.2f})"
    return t


def markdown(summary, bars, servers, a, versions):
    peers = [p for p in PEERS if p in servers and "wharfd" in servers]
    head = ["workload", "figure"] + servers + [f"wharfd/{p}" for p in peers] + ["bars"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for wl in summary:
        first = True
        for fig, label, _ in figures(wl):
            s = summary[wl][fig]
            cells = [WORKLOADS[wl]["title"] if first else "", label]
            first = False
            for sv in servers:
                if fig == "errors":
                    cells.append(str(s["errors_total"][sv]))
                elif sv in SKIP.get(wl, ()):
                    cells.append("—")
                else:
                    cells.append(bl.fmt_num(s["median"].get(sv)))
            for p in peers:
                cells.append(ratio_text(s["vs"].get(p)) if fig != "errors" else "")
            marks = []
            for b in bars:
                if b["workload"] == wl and b["figure"] == fig:
                    mark = "met" if b["met"] else ("**missed**" if b["met"] is False else "n/a")
                    marks.append(f"{b['bar']}: {mark}")
            cells.append("; ".join(marks))
            lines.append("| " + " | ".join(cells) + " |")
    be = f", {a.backend} backend" if getattr(a, "backend", "") else ""
    intro = (f"wharfd (`--workers 1`{be}, CPU 0) against {', '.join(versions)} (one worker "
             f"or thread, CPU 0; the floor: bench/floor/floor.c); "
             f"wrk -t1 on CPU 1; {a.rounds} round(s) of {a.duration:g} s per run, servers "
             f"alternating. Server columns: medians over rounds (errors: totals). "
             f"wharfd/PEER: the median over rounds of the ratio within each round "
             f"(min–max in brackets). Latency per request, with wrk's "
             f"coordinated-omission correction undone (bench/lua/json.lua); pipelined: "
             f"the mean per batch of {a.pipeline} (wrk); with wharf bench, per request.")
    return intro + "\n\n" + "\n".join(lines) + "\n"


def chart(out_dir, summary, servers, a):
    if not bl.gnuplot_available():
        bl.log("gnuplot is not installed: no chart (apt-get install gnuplot-nox)")
        return False
    dat = os.path.join(out_dir, "chart.dat")
    with open(dat, "w") as f:
        f.write("# workload " + " ".join(f"cpu_{s} rps_{s} lat_{s}" for s in servers) + "\n")
        for wl in summary:
            cells = [WORKLOADS[wl]["short"]]
            w = WORKLOADS[wl]
            latfig = "lat_mean_us" if w.get("pipelined") and not w.get("per_request") else "p99_us"
            for s in servers:
                for fig in ("cpu_us", "rps", latfig):
                    v = summary[wl][fig]["median"].get(s)
                    if fig == "rps" and v is not None:
                        v /= 1000
                    cells.append("NaN" if v is None else f"{v:.4f}")
            f.write(f'"{cells[0]}" ' + " ".join(cells[1:]) + "\n")

    def plot(col):
        parts = []
        for i, s in enumerate(servers):
            c = 2 + i * 3 + col
            parts.append(f"'chart.dat' using {c}{':xtic(1)' if i == 0 else ''} title '{s}'")
        return "plot " + ", ".join(parts)

    script = f"""
set terminal pngcairo size 1500,480 font ",10"
set output 'chart.png'
set multiplot layout 1,3 title "wharfd and its peers, HTTP/1.1 — medians of {a.rounds} round(s) x {a.duration:g} s (server on CPU 0, wrk on CPU 1)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics nomirror
set yrange [0:*]
set title "server CPU time per request (µs, lower is better)"
{plot(0)}
set title "requests/s (thousands, log scale)"
set logscale y
set yrange [*:*]
{plot(1)}
unset logscale y
set yrange [0:*]
set title "latency µs, log scale: p99 (pipelined with wrk: mean per batch)"
set logscale y
set yrange [*:*]
{plot(2)}
unset logscale y
unset multiplot
"""
    return bl.run_gnuplot(script, out_dir)


def main():
    a = parse_args()
    bl.check_tools(["wrk", "taskset"])
    a.wharf = bl.snapshot(os.path.join(bl.build_dir(), "wharf"))
    servers = make_servers(a)
    names = [s.name for s in servers]
    n_runs = a.rounds * sum(len([s for s in servers if s.name not in SKIP.get(w, ())])
                            for w in a.workloads)
    per_run = a.duration + a.pause + 1
    budget = (n_runs + a.retries * len(servers)) * per_run + \
        sum(10 for w in a.workloads if w == "c10k") * a.rounds * 2
    deadline = budget * 2 + 60
    bl.install_cleanup(deadline)
    os.makedirs(a.out, exist_ok=True)
    raw_dir = os.path.join(a.out, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    bl.log(f"bench/http: {n_runs} runs of {a.duration:g} s ({', '.join(a.workloads)}; "
           f"{' vs '.join(names)}), about {budget / 60:.1f} min; stops by itself within "
           f"{deadline / 60:.1f} min; results in {a.out}")
    rows, failures, retried = [], [], []
    try:
        backend = ""
        for s in servers:
            s.start()
            bl.log(f"  started {s.name} {s.version} on {s.url()} (pids {s.pids()})")
            if isinstance(s, bl.Wharfd):
                backend = s.backend()
        a.backend = backend
        bl.write_meta(a.out, sys.argv, {"servers": ", ".join(s.version or s.name
                                                              for s in servers)})
        i = 0
        t0 = time.monotonic()
        retries = a.retries
        for rnd in range(1, a.rounds + 1):
            for wl in a.workloads:
                attempt = 0
                while True:
                    attempt += 1
                    pair = []
                    for s in servers:
                        if s.name in SKIP.get(wl, ()):
                            continue
                        i += 1
                        tag = f"[{i}/{n_runs}] round {rnd}/{a.rounds} {wl:<9} {s.name:<6}"
                        if not s.alive():
                            bl.log(f"{tag} {s.name} died; restarting: {s.log()[-300:]}")
                            failures.append(f"{s.name} died before {wl} round {rnd}")
                            s.start()
                        try:
                            row = one_run(a, s, wl, rnd, raw_dir)
                        except RuntimeError as e:
                            failures.append(f"{tag}: {e}")
                            bl.log(f"{tag} FAILED: {e}")
                            continue
                        row["attempt"] = attempt
                        pair.append(row)
                        left = (n_runs - i) * per_run
                        bl.log(f"{tag} {bl.fmt_num(row['rps']):>7} {WORKLOADS[wl]['rate']}, "
                               f"CPU {row['cpu_us']:.2f} µs/{WORKLOADS[wl]['per']}, "
                               f"p99 {row['lat_p99_us']} µs, errors {row['errors']}"
                               f"{', DISTURBED' if row['disturbed'] else ''}"
                               f"  ({time.monotonic() - t0:.0f} s, ~{left:.0f} s left)")
                        if not row["server_alive"]:
                            failures.append(f"{s.name} died during {wl} round {rnd}")
                        time.sleep(a.pause)
                    if any(r["disturbed"] for r in pair) and retries > 0:
                        # Another process took CPU 0 during this pair: its ratio says
                        # little. Keep its rows in disturbed.csv and run the pair again.
                        retries -= 1
                        retried.extend(pair)
                        n_runs += len(pair)
                        bl.log(f"  round {rnd} {wl}: CPU 0 was busy with other processes; "
                               f"running this pair again ({retries} retries left)")
                        continue
                    rows.extend(pair)
                    break
        for s in servers:
            if isinstance(s, bl.Wharfd) and s.alive():
                r = bl.http_get(s.port["http"], "/stats")
                if r:
                    with open(os.path.join(a.out, "wharfd-stats.json"), "wb") as f:
                        f.write(r[2])
    except bl.Interrupted as e:
        failures.append(f"interrupted: {e}")
        bl.log(f"bench/http: interrupted ({e}); writing what was measured")
    finally:
        for s in servers:
            s.stop()

    bl.write_csv(os.path.join(a.out, "runs.csv"), rows, FIELDS)
    if retried:
        bl.write_csv(os.path.join(a.out, "disturbed.csv"), retried, FIELDS)
    workloads = [w for w in a.workloads if any(r["workload"] == w for r in rows)]
    summary = summarize(rows, workloads, names)
    bars = check_bars(summary, names)
    versions = [s.version or s.name for s in servers if s.name != "wharfd"]
    md = markdown(summary, bars, names, a, versions or ["no peer"])
    still = sum(r["disturbed"] for r in rows)
    if retried or still:
        md += (f"\n{len(retried) // max(1, len(names))} pair(s) of runs were repeated because "
               f"other processes used CPU 0 during them (disturbed.csv); {still} run(s) in "
               f"the table were still disturbed (runs.csv, column disturbed).\n")
    if failures:
        md += "\nFailures:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"summary": summary, "bars": bars, "failures": failures,
                   "rounds": a.rounds, "duration_s": a.duration}, f, indent=1)
    chart(a.out, summary, names, a)
    print(md)
    bl.log(f"bench/http: wrote {a.out}/ (runs.csv, table.md, summary.json, chart.png, meta.txt)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

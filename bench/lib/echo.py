#!/usr/bin/env python3
"""bench/echo: wharfd's frame and line listeners under `wharf bench`.

wharfd (--workers 1, CPU 0) serves frame:// and line:// (upper-casing, its default
mode); `wharf bench -t1` (CPU 1) loads it for every combination of connections
{10, 100, 1000, 10000} x payload {64 B, 4 KiB} x pipeline {1, 16}, and checks every
reply. Per run: requests/s, MiB/s (replies), latency p50/p99/p99.9, errors, and, in
steady state (after the connections are up and a warm-up second has passed), the
server's CPU µs per request (utime+stime from /proc) and its syscalls per request
(perf stat -e raw_syscalls:sys_enter on the server's threads), both taken over the
same window and divided by the request rate wharf bench measured.

Bar (bench/README.md): frame, 1,000 connections, 64 B: <= 2.4 syscalls per request
at pipeline 1 and <= 0.15 at pipeline 16.

The floor (build/floor frame, bench/floor/floor.c: one thread, epoll, one read and one
write per wake-up) runs the same frame loads right after wharfd at the connection
counts of --floor-conns (default 1000); the table gives its CPU per request and
wharfd's ratio to it (bar: <= 1.15x at 1,000 connections, 64 B, pipeline 16).

Writes runs.csv, table.md, summary.json, chart.png, meta.txt and raw/ to --out
(default bench/results/DATE-echo/).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import benchlib as bl

BARS = [  # (proto, conns, size, pipeline, limit on syscalls/request)
    ("frame", 1000, 64, 1, 2.4),
    ("frame", 1000, 64, 16, 0.15),
]
FLOOR_BARS = [  # (proto, conns, size, pipeline, limit on wharfd/floor CPU per request)
    ("frame", 1000, 64, 16, 1.15),
]
FIELDS = ["round", "server", "proto", "conns", "size", "pipeline", "duration_s", "requests", "rps",
          "mib_s", "p50_us", "p99_us", "p999_us", "mean_us", "errors", "cpu_us",
          "syscalls_per_req", "read_per_req", "write_per_req", "epoll_wait_per_req",
          "ctxsw_per_req", "window_s", "client_cpu_us", "server_alive"]
SYSCALLS = ["read", "write", "epoll_wait", "readv", "writev", "recvfrom", "sendto",
            "recvmsg", "sendmsg", "epoll_ctl", "accept4", "close", "io_uring_enter"]
CONNECT_RATE = 10000


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--rounds", type=int, default=1, help="passes over the matrix (default 1)")
    ap.add_argument("--duration", type=float, default=3.0,
                    help="measured seconds per run, after a 1 s warm-up (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: frame only, 100 connections, 64 B, 1 s")
    ap.add_argument("--protos", default="frame,line")
    ap.add_argument("--conns", default="10,100,1000,10000")
    ap.add_argument("--sizes", default="64,4096")
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--no-perf", action="store_true", help="do not count syscalls")
    ap.add_argument("--floor-conns", default="1000",
                    help="connection counts at which the floor server runs the frame loads "
                         "too (comma list; empty: never)")
    ap.add_argument("--wharfd-args", default="", help="extra wharfd arguments (one string)")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-echo/)")
    a = ap.parse_args()
    if a.quick:
        a.duration = 1.0
        a.rounds = 1
        for k, v in (("protos", "frame"), ("conns", "100"), ("sizes", "64"),
                     ("floor_conns", "100")):
            if getattr(a, k) == ap.get_default(k):
                setattr(a, k, v)
    a.protos = [p for p in a.protos.split(",") if p]
    a.conns = [int(c) for c in a.conns.split(",") if c]
    a.sizes = [int(s) for s in a.sizes.split(",") if s]
    a.pipelines = [int(p) for p in a.pipelines.split(",") if p]
    a.floor_conns = [int(c) for c in a.floor_conns.split(",") if c]
    a.warmup = 0.5 if a.quick else 1.0
    a.out = a.out or bl.default_out("quick-echo" if a.quick else "echo")
    return a


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def one_run(a, srv, wharf, proto, conns, size, pipe, rnd, tps):
    target = f"{proto}://127.0.0.1:{srv.port[proto]}"
    d = a.duration
    cmd = [wharf, "bench", "-t", "1", "-c", str(conns), "-P", str(pipe), "--size", str(size),
           "-d", f"{int(d * 1000)}ms", "--warmup", f"{int(a.warmup * 1000)}ms",
           "--connect-rate", str(CONNECT_RATE), "--json", "--allow-errors", target]
    tag = f"r{rnd}-{srv.name}-{proto}-c{conns}-s{size}-p{pipe}"
    raw = os.path.join(a.out, "raw", tag + ".json")
    err = open(os.path.join(a.out, "raw", tag + ".err"), "wb")
    limit = conns / CONNECT_RATE + a.warmup + d + 30
    base_fds = fd_count(srv.pid)
    p = bl.spawn(bl.taskset(bl.LOAD_CPU, cmd), stdout=subprocess.PIPE, stderr=err)
    err.close()
    t_start = time.monotonic()
    window = None
    cpu_d = None
    counts = {}
    try:
        # steady state: every connection is up, and the warm-up has passed
        while fd_count(srv.pid) - base_fds < conns * 0.98 and p.poll() is None \
                and time.monotonic() - t_start < conns / CONNECT_RATE * 3 + 10:
            time.sleep(0.02)
        time.sleep(a.warmup + 0.2)
        perf = None
        out_csv = os.path.join(a.tmp, tag + ".perf")
        pids = srv.pids()
        if not a.no_perf and p.poll() is None:
            ev = ["raw_syscalls:sys_enter", "context-switches"] + \
                 [f"syscalls:sys_enter_{s}" for s in tps]
            perf = bl.spawn(bl.taskset(bl.LOAD_CPU, ["perf", "stat", "-x", ",", "-o", out_csv,
                                                     "-e", ",".join(ev), "-p",
                                                     ",".join(map(str, pids))]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.15)  # attached
        c0, w0 = bl.cpu_seconds(pids), time.monotonic()
        time.sleep(max(0.3, d - 0.6))
        c1, w1 = bl.cpu_seconds(pids), time.monotonic()
        if perf:
            perf.send_signal(2)
            try:
                perf.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            bl.stop_process(perf, grace=2)
            counts = bl.perf_stat_counts(out_csv)
        window = w1 - w0
        cpu_d = c1 - c0
        out, _ = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        bl.stop_process(p, grace=2)
        raise RuntimeError(f"wharf bench did not stop within {limit:.0f} s")
    finally:
        if p.poll() is None:
            bl.stop_process(p, grace=2)
    with open(raw, "wb") as f:
        f.write(out)
    try:
        r = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"wharf bench printed no JSON (exit {p.returncode})")
    rps = r["requests_per_sec"]
    lat = r["latency"]
    row = {"round": rnd, "server": srv.name, "proto": proto, "conns": conns, "size": size, "pipeline": pipe,
           "duration_s": r["duration_s"], "requests": r["requests"]["ok"], "rps": round(rps, 1),
           "mib_s": r["mib_per_sec"]["in"], "p50_us": lat["p50_us"], "p99_us": lat["p99_us"],
           "p999_us": lat["p99_9_us"], "mean_us": lat["mean_us"], "errors": r["errors"]["total"],
           "window_s": round(window, 3), "client_cpu_us": r["cpu"]["us_per_request"],
           "server_alive": int(srv.alive())}
    served = rps * window if rps and window else 0
    row["cpu_us"] = round(cpu_d * 1e6 / served, 3) if served else None
    if counts and served:
        row["syscalls_per_req"] = round(counts.get("raw_syscalls:sys_enter", 0) / served, 4)
        row["ctxsw_per_req"] = round(counts.get("context-switches", 0) / served, 4)
        for s in ("read", "write", "epoll_wait"):
            row[f"{s}_per_req"] = round(counts.get(f"syscalls:sys_enter_{s}", 0) / served, 4)
    return row


def floor_ratio(rows, k):
    """wharfd's CPU per request over the floor's, for the key k: the median of the
    ratios within each round (None when the floor did not run k)."""
    ratios = []
    for rnd in sorted({r["round"] for r in rows}):
        w = [r.get("cpu_us") for r in rows if r["round"] == rnd and r["server"] == "wharfd"
             and (r["proto"], r["conns"], r["size"], r["pipeline"]) == k]
        f = [r.get("cpu_us") for r in rows if r["round"] == rnd and r["server"] == "floor"
             and (r["proto"], r["conns"], r["size"], r["pipeline"]) == k]
        if w and f and w[0] and f[0]:
            ratios.append(w[0] / f[0])
    return bl.median(ratios)


def markdown(rows, bars, a):
    lines = [f"wharfd (`--workers 1`, CPU 0) under `wharf bench -t1` (CPU 1), every reply "
             f"checked; {a.rounds} round(s), {a.duration:g} s measured after {a.warmup:g} s of "
             f"warm-up (medians). CPU and syscalls: the server's, in steady state, per request.",
             "",
             "| proto | conns | payload | pipeline | requests/s | MiB/s | p50 µs | p99 µs | "
             "p99.9 µs | errors | server CPU µs/req | syscalls/req | floor CPU µs/req | "
             "wharfd/floor CPU | bar |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    floor_rows = [r for r in rows if r["server"] == "floor"]
    rows = [r for r in rows if r["server"] == "wharfd"]
    keys = []
    for r in rows:
        k = (r["proto"], r["conns"], r["size"], r["pipeline"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        rs = [r for r in rows if (r["proto"], r["conns"], r["size"], r["pipeline"]) == k]
        med = {f: bl.median([r.get(f) for r in rs]) for f in
               ("rps", "mib_s", "p50_us", "p99_us", "p999_us", "cpu_us", "syscalls_per_req")}
        errs = sum(r["errors"] for r in rs)
        bar = [b for b in bars if b["key"] == list(k)]
        marks = []
        for b in bar:
            marks.append(f"{b['what']} <= {b['limit']}: " + ("met" if b["met"] else "**missed**"
                                                            if b["met"] is False else "n/a"))
        bartext = "; ".join(marks)
        fcpu = bl.median([r.get("cpu_us") for r in floor_rows
                          if (r["proto"], r["conns"], r["size"], r["pipeline"]) == k])
        fr = floor_ratio(rows + floor_rows, k)
        size = f"{k[2] // 1024} KiB" if k[2] >= 1024 and k[2] % 1024 == 0 else f"{k[2]} B"
        sc = med["syscalls_per_req"]
        lines.append(f"| {k[0]} | {k[1]:,} | {size} | {k[3]} | {bl.fmt_num(med['rps'])} | "
                     f"{bl.fmt_num(med['mib_s'])} | {bl.fmt_num(med['p50_us'])} | "
                     f"{bl.fmt_num(med['p99_us'])} | {bl.fmt_num(med['p999_us'])} | {errs} | "
                     f"{bl.fmt_num(med['cpu_us'])} | "
                     f"{'—' if sc is None else f'{sc:.3f}'} | {bl.fmt_num(fcpu)} | "
                     f"{'—' if fr is None else f'{fr:.2f}×'} | {bartext} |")
    return "\n".join(lines) + "\n"


def check_bars(rows):
    out = []
    for proto, conns, size, pipe, limit in BARS:
        rs = [r for r in rows if (r["proto"], r["conns"], r["size"], r["pipeline"]) ==
              (proto, conns, size, pipe) and r["server"] == "wharfd"]
        v = bl.median([r.get("syscalls_per_req") for r in rs])
        out.append({"key": [proto, conns, size, pipe], "limit": limit, "value": v,
                    "what": "syscalls/req",
                    "met": None if v is None else v <= limit,
                    "bar": f"{proto}, {conns} connections, {size} B, pipeline {pipe}: "
                           f"<= {limit} syscalls/request"})
    for proto, conns, size, pipe, limit in FLOOR_BARS:
        v = floor_ratio(rows, (proto, conns, size, pipe))
        out.append({"key": [proto, conns, size, pipe], "limit": f"{limit}× floor", "value": v,
                    "what": "CPU/req", "met": None if v is None else v <= limit,
                    "bar": f"{proto}, {conns} connections, {size} B, pipeline {pipe}: "
                           f"server CPU/request <= {limit}x the floor's"})
    return out


def chart(a, rows):
    if not bl.gnuplot_available():
        bl.log("gnuplot is not installed: no chart")
        return
    series = []
    for proto in a.protos:
        for size in a.sizes:
            for pipe in a.pipelines:
                name = f"{proto}-{size}-{pipe}"
                path = os.path.join(a.out, f"chart-{name}.dat")
                with open(path, "w") as f:
                    for c in a.conns:
                        rs = [r for r in rows if (r["proto"], r["conns"], r["size"],
                                                  r["pipeline"]) == (proto, c, size, pipe)
                              and r["server"] == "wharfd"]
                        rps = bl.median([r["rps"] for r in rs])
                        cpu = bl.median([r.get("cpu_us") for r in rs])
                        f.write(f"{c} {rps if rps is not None else 'NaN'} "
                                f"{cpu if cpu is not None else 'NaN'}\n")
                label = f"{proto} {size if size < 1024 else str(size // 1024) + 'K'}B x{pipe}"
                series.append((os.path.basename(path), label, proto))

    def plot(col):
        return "plot " + ", ".join(
            f"'{p}' using 1:{col} with linespoints lw 2 dt {1 if proto == 'frame' else 2} "
            f"title '{lab}'" for p, lab, proto in series)

    script = f"""
set terminal pngcairo size 1300,500 font ",10"
set output 'chart.png'
set multiplot layout 1,2 title "wharfd echo (--workers 1, CPU 0) under wharf bench -t1 (CPU 1)"
set logscale x
set xlabel "connections"
set grid
set key outside bottom center horizontal maxrows 2
set title "requests/s (log scale)"
set logscale y
set format y "%.0s%c"
{plot(2)}
set format y "%g"
set title "server CPU µs per request"
unset logscale y
set yrange [0:*]
{plot(3)}
unset multiplot
"""
    bl.run_gnuplot(script, a.out)


def main():
    a = parse_args()
    bl.check_tools(["taskset"] + ([] if a.no_perf else ["perf"]))
    wharf_path = os.path.join(bl.build_dir(), "wharf")
    wharf = bl.snapshot(wharf_path)
    r = subprocess.run([wharf, "bench", "--help"], capture_output=True, timeout=10)
    if r.returncode != 0:
        bl.die("'wharf bench' is not available in this build")
    srv = bl.wharfd(bl.snapshot(os.path.join(bl.build_dir(), "wharfd")),
                    protos=("http",) + tuple(a.protos), extra=a.wharfd_args.split())
    floor = bl.Floor(bl.snapshot(os.path.join(bl.build_dir(), "floor")), "frame")
    combos = [(x, p, c, s, pp) for p in a.protos for c in a.conns for s in a.sizes
              for pp in a.pipelines for x in ((srv, floor) if p == "frame" and
                                              c in a.floor_conns else (srv,))]
    n = len(combos) * a.rounds
    per = [c / CONNECT_RATE + a.warmup + a.duration + 1.5 for _, _, c, _, _ in combos]
    budget = sum(per) * a.rounds
    deadline = budget * 2 + 60
    bl.install_cleanup(deadline)
    a.tmp = bl.tmpdir("wharf-echo-")
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    tps = [s for s in SYSCALLS if os.path.isdir(f"/sys/kernel/tracing/events/syscalls/sys_enter_{s}")]
    bl.log(f"bench/echo: {n} runs ({', '.join(a.protos)}; connections {a.conns}; payload "
           f"{a.sizes}; pipeline {a.pipelines}), about {budget / 60:.1f} min; stops by itself "
           f"within {deadline / 60:.1f} min; results in {a.out}")
    rows, failures = [], []
    try:
        srv.start()
        if any(s is floor for s, *_ in combos):
            floor.start()
        bl.write_meta(a.out, sys.argv, {"servers": srv.version})
        i = 0
        t0 = time.monotonic()
        for rnd in range(1, a.rounds + 1):
            for s, proto, conns, size, pipe in combos:
                i += 1
                tag = f"[{i}/{n}] {s.name:<6} {proto} c{conns} {size}B x{pipe}"
                if not s.alive():
                    failures.append(f"{s.name} died before {tag}: {s.log()[-300:]}")
                    s.start()
                try:
                    row = one_run(a, s, wharf, proto, conns, size, pipe, rnd, tps)
                except RuntimeError as e:
                    failures.append(f"{tag}: {e}")
                    bl.log(f"{tag} FAILED: {e}")
                    continue
                rows.append(row)
                sc = row.get("syscalls_per_req")
                bl.log(f"{tag}: {bl.fmt_num(row['rps'])} requests/s, {row['mib_s']:.1f} MiB/s, "
                       f"p99 {bl.fmt_num(row['p99_us'])} µs, CPU {bl.fmt_num(row['cpu_us'])} µs/req, "
                       f"{'—' if sc is None else f'{sc:.3f}'} syscalls/req, errors {row['errors']}"
                       f"  ({time.monotonic() - t0:.0f} s)")
                if row["errors"]:
                    failures.append(f"{tag}: {row['errors']} errors")
                time.sleep(0.3)
    except bl.Interrupted as e:
        failures.append(f"interrupted: {e}")
    finally:
        srv.stop()
        floor.stop()
    bl.write_csv(os.path.join(a.out, "runs.csv"), rows, FIELDS)
    bars = check_bars(rows)
    md = markdown(rows, bars, a)
    if failures:
        md += "\nFailures:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"bars": bars, "failures": failures, "rows": rows}, f, indent=1)
    chart(a, rows)
    print(md)
    bl.log(f"bench/echo: wrote {a.out}/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

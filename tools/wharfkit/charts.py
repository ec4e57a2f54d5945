"""Latency charts with gnuplot (Debian's gnuplot-nox), from wharf's own files:

    percentile_chart("pct.png", [("wharfd c=10", "a.hgrm"), ("wharfd c=100", "b.hgrm")])
    timeseries_chart("ts.png", "run.log", events=[(12.5, "backend restart")])

percentile_chart: latency against percentile on the usual 1/(1-p) axis (the .hgrm
layout's fourth column), several runs overlaid -- the picture servers are compared by.
timeseries_chart: per interval of an interval log, requests/s (top) and p50, p99 and max
latency (bottom, log scale), with events (seconds from the log's first measured
interval) marked by vertical lines. Warm-up intervals, and a last interval cut to less
than half the others, are left out. Each writes its data
(.dat) and gnuplot script (.gp) next to the PNG so the chart can be redrawn; returns
True when gnuplot drew it.
"""
import os
import subprocess

from .hdrlog import read_log


def _gnuplot(script_path):
    try:
        r = subprocess.run(["gnuplot", os.path.basename(script_path)], capture_output=True,
                           text=True, timeout=60, cwd=os.path.dirname(script_path) or ".")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _hgrm_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#"):
                try:
                    rows.append((float(parts[0]), float(parts[3])))
                except ValueError:
                    pass  # the header line
    return rows


def percentile_chart(png, runs, title="Latency by percentile"):
    base = os.path.splitext(png)[0]
    plots = []
    for i, (label, hgrm) in enumerate(runs):
        dat = f"{base}.{i}.dat"
        with open(dat, "w") as f:
            f.write("# inverse(1/(1-p)) latency_ms\n")
            for ms, inv in _hgrm_rows(hgrm):
                f.write(f"{inv} {ms}\n")
        plots.append(f"'{os.path.basename(dat)}' using 1:2 with lines lw 2 title '{label}'")
    gp = f"""set terminal pngcairo size 900,480 font ",10"
set output '{os.path.basename(png)}'
set title '{title}'
set logscale x
set xrange [1:*]
set xtics ("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set xlabel 'percentile'
set ylabel 'latency (ms)'
set grid
set key top left
plot {", ".join(plots)}
"""
    with open(f"{base}.gp", "w") as f:
        f.write(gp)
    return _gnuplot(f"{base}.gp")


def timeseries_chart(png, log, events=(), title="Requests/s and latency per interval"):
    base = os.path.splitext(png)[0]
    ivs = [iv for iv in read_log(log) if iv.tag != "warmup" and iv.length > 0]
    # A last interval cut short (the run's end) holds a handful of requests: its rate
    # says nothing about the run, so it is not drawn.
    full = max((iv.length for iv in ivs), default=0)
    ivs = [iv for iv in ivs if iv.length >= full / 2]
    t0 = ivs[0].start if ivs else 0
    with open(f"{base}.dat", "w") as f:
        f.write("# t_s req_per_s p50_ms p99_ms max_ms\n")
        for iv in ivs:
            f.write(f"{iv.start - t0 + iv.length / 2:.3f} {iv.count / iv.length:.1f} "
                    f"{iv.percentile(50) / 1e6:.4f} {iv.percentile(99) / 1e6:.4f} "
                    f"{iv.max() / 1e6:.4f}\n")
    marks = "".join(f"set arrow from {t},graph 0 to {t},graph 1 nohead dt 2 lc rgb 'red'\n"
                    f"set label '{label}' at {t},graph 0.95 offset 0.5,0 tc rgb 'red'\n"
                    for t, label in events)
    dat = os.path.basename(f"{base}.dat")
    gp = f"""set terminal pngcairo size 900,600 font ",10"
set output '{os.path.basename(png)}'
set multiplot layout 2,1 title '{title}'
set grid
set xlabel 'seconds'
set xrange [0:*]
{marks}set ylabel 'requests/s'
set yrange [0:*]
plot '{dat}' using 1:2 with linespoints lw 2 pt 7 ps 0.5 title 'requests/s'
set ylabel 'latency (ms)'
set logscale y
set yrange [*:*]
plot '{dat}' using 1:3 with lines lw 2 title 'p50', '' using 1:4 with lines lw 2 title 'p99', \\
     '' using 1:5 with lines lw 1 title 'max'
unset multiplot
"""
    with open(f"{base}.gp", "w") as f:
        f.write(gp)
    return _gnuplot(f"{base}.gp")

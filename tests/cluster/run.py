"""tests/cluster/run: build the cluster (cluster.py), run scenarios in full, tear it all
down, and write their figures to bench/results/<stamp>-cluster/ (cluster.md, cluster.csv,
meta.txt).

    tests/cluster/run                        # every scenario, full size
    tests/cluster/run crash rolling          # some of them
    tests/cluster/run noise cost profile     # what the figures rest on (costs.py)
    tests/cluster/run --short spread         # the size make test runs
    tests/cluster/run --print-config         # the example haproxy.cfg, on stdout

Each scenario gets a topology of its own. Ctrl-C stops the load, HAProxy and every
wharfd by PID and deletes every namespace. Needs root, HAProxy and wrk."""

import argparse
import csv
import datetime
import os
import platform
import subprocess
import sys

from cluster import HAPROXY, ROOT, Cluster, example_cfg
from costs import cost, noise, profile
from scenarios import FULL, SCENARIOS, SHORT

SCENARIOS = dict(SCENARIOS, noise=noise, cost=cost, profile=profile)


class Checks:
    """check() for a full run: record and print, never stop half-way."""

    def __init__(self):
        self.failed = []

    def __call__(self, cond, what, detail=None):
        print(f"{'ok' if cond else 'FAIL'} - {what}" + ("" if cond else f" ({detail!r})"[:600]),
              flush=True)
        if not cond:
            self.failed.append(what)


def cmd_out(args):
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=ROOT)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return ""


def write_results(out, rows, argv, size, failed, backend):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "cluster.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scenario", "figure", "value"])
        for name, figures in rows:
            for k, v in figures.items():
                w.writerow([name, k, v])
    with open(os.path.join(out, "cluster.md"), "w") as f:
        f.write(f"Three wharfd behind one HAProxy (tests/cluster/run), per client host: "
                f"{size.rate} HTTP requests/s over {size.conns} connections, "
                f"{size.frate} frames/s over {size.fconns} connections with -P "
                f"{size.pipeline} (wharf bench -R); phases of {size.seconds} s. Crash: one "
                f"HTTP run per host at {size.crash_rate}/s across the kill, latency logged "
                f"every 100 ms, both hosts merged per window of {size.window} s: control "
                f"(the window before 'before'), before (up to the kill), event (the kill to "
                f"1 s after HAProxy had it DOWN), after (from there); *_window_s: the "
                f"window's span in seconds from the kill, *_count: requests p99 rests on "
                f"(1 % of them beyond it). noise: consecutive windows of one steady run, no "
                f"event. cost: see tests/cluster/costs.py.\n\n")
        for name, figures in rows:
            f.write(f"## {name}\n\n| figure | value |\n|---|---|\n")
            f.writelines(f"| {k} | {v} |\n" for k, v in figures.items())
            f.write("\n")
        f.write(f"Checks failed: {', '.join(failed) if failed else 'none'}\n")
    with open(os.path.join(out, "meta.txt"), "w") as f:
        f.write("\n".join([
            f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"command: {' '.join(argv)}", f"wharfd --backend: {backend}",
            f"cpus: {os.cpu_count()}",
            f"kernel: {platform.release()}",
            f"git commit: {cmd_out(['git', 'rev-parse', 'HEAD'])}",
            f"haproxy: {cmd_out([HAPROXY, '-v'])}", f"wrk: {cmd_out(['wrk', '-v'])}",
            f"loadavg at start: {open('/proc/loadavg').read().strip()}"]) + "\n")


def crash_line(f):
    """The crash's latency comparison in words: the windows (seconds from the kill), the
    requests each p99 rests on, the ratio and the no-event ratio it reads against."""
    def w(name):
        return (f"{name} {f[name + '_window_s']} s: p99 {f[name + '_p99_ms']} ms over "
                f"{f[name + '_count']} requests")
    return (f"# crash latency, both hosts merged: {w('control')}; {w('before')}; "
            f"{w('event')} (max {f['event_max_ms']} ms); {w('after')}. after/before "
            f"{f['p99_ratio_after_before']}, before/control (no event) "
            f"{f['p99_ratio_before_control']}; busy before/after: HAProxy "
            f"{f['before_haproxy_busy']}/{f['after_haproxy_busy']}, survivors "
            f"{f['before_survivors_busy']}/{f['after_survivors_busy']}, machine "
            f"{f['before_machine_busy']}/{f['after_machine_busy']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*",
                    help=f"some of {', '.join(SCENARIOS)} (default: all, in that order)")
    ap.add_argument("--short", action="store_true", help="make test's size")
    ap.add_argument("--build", default=os.environ.get("WHARF_BUILD", "build"))
    ap.add_argument("--backend", default=os.environ.get("WHARF_BACKEND", "epoll"),
                    help="wharfd's event loop: epoll, io_uring or auto [$WHARF_BACKEND or epoll]")
    ap.add_argument("--out", help="results directory [bench/results/<stamp>-cluster]")
    ap.add_argument("--print-config", action="store_true",
                    help="print the example haproxy.cfg and exit")
    a = ap.parse_args()
    if a.print_config:
        sys.stdout.write(example_cfg())
        return 0
    unknown = [n for n in a.scenarios if n not in SCENARIOS]
    if unknown:
        ap.error(f"no scenario {', '.join(unknown)}: {', '.join(SCENARIOS)}")
    if os.geteuid() != 0:
        print("tests/cluster/run: needs root (ip netns)", file=sys.stderr)
        return 2
    size = SHORT if a.short else FULL
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    out = a.out or os.path.join(ROOT, "bench", "results", f"{stamp}-cluster")
    check, rows = Checks(), []
    for name in a.scenarios or list(SCENARIOS):
        print(f"=== {name}", flush=True)
        with Cluster(build=a.build, backend=a.backend) as c:
            figures = SCENARIOS[name](c, check, size)
        print("# " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
        if name == "crash":
            print(crash_line(figures), flush=True)
        rows.append((name, figures))
    write_results(out, rows, sys.argv, size, check.failed, a.backend)
    print(f"results: {os.path.relpath(out, ROOT)}; {len(check.failed)} check(s) failed")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""bench/multi: one wharf load command on several hosts at once, merged (wharfkit.multi).

    bench/multi --host 'lg1=ssh lg1' --host 'lg2=ssh lg2' -- bench -c 200 -d 30s \\
        frame://10.0.0.1:9100

Every host needs wharf (--remote-wharf, default `wharf` on its PATH) and a clock in step
with the others (NTP: --start-at is wall clock time). The result directory (--out,
default bench/results/DATE-multi/) gets each host's report (NAME.json), interval log
(NAME.log) and stderr, and the merge: merged.txt (the report, a row per host),
merged.log and merged.hgrm; with gnuplot also percentiles.png (every host and the
whole, by percentile) and timeseries.png (the whole, per interval; --event T=LABEL
marks T seconds into the measured time, e.g. a backend restart).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

from wharfkit.charts import percentile_chart, timeseries_chart
from wharfkit.multi import Launcher, run_multi

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(prog="bench/multi", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", action="append", required=True, metavar="[NAME=]PREFIX",
                    help="a launcher prefix, e.g. 'ssh lg1' or 'ip netns exec ns1'")
    ap.add_argument("--out", help="result directory (default bench/results/DATE-multi)")
    ap.add_argument("--remote-wharf", default="wharf", help="wharf on the hosts")
    ap.add_argument("--lead", type=float, default=3.0,
                    help="seconds from now to the common start (ssh, the ramp)")
    ap.add_argument("--event", action="append", default=[], metavar="T=LABEL",
                    help="mark T seconds into the measured time on the time-series chart")
    ap.add_argument("wharf_args", nargs=argparse.REMAINDER,
                    help="-- then the command: bench ARGS (or churn ARGS)")
    a = ap.parse_args()
    args = a.wharf_args[1:] if a.wharf_args[:1] == ["--"] else a.wharf_args
    if not args or args[0] not in ("bench", "churn"):
        ap.error("give the command after --: bench ... or churn ...")
    build = os.environ.get("WHARF_BUILD", os.path.join(HERE, "..", "..", "build"))
    local = os.path.join(build, "wharf")
    out = a.out or os.path.join(HERE, "..", "results", time.strftime("%Y%m%d-%H%M%S-multi"))
    hosts = [Launcher.parse(h, i) for i, h in enumerate(a.host)]
    res = run_multi(hosts, args, out, remote_wharf=a.remote_wharf,
                    local_wharf=local if os.path.exists(local) else "wharf", lead=a.lead)
    print(res.merged_text, end="")
    if res.merge_status == 0 and shutil.which("gnuplot"):
        charts(res, hosts, local if os.path.exists(local) else "wharf", a.event)
    for name, why in res.failed.items():
        print(f"bench/multi: {name}: {why}", file=sys.stderr)
    print(f"bench/multi: results in {out}")
    return 1 if res.failed or res.merge_status else 0


def charts(res, hosts, wharf, events):
    """percentiles.png (each host's .hgrm, from its log, and the merged one) and
    timeseries.png (the merged log)."""
    runs = []
    for h in hosts:
        if h.name in res.failed:
            continue
        hgrm = os.path.join(res.out_dir, f"{h.name}.hgrm")
        subprocess.run([wharf, "merge", "--hgrm", hgrm, os.path.join(res.out_dir, f"{h.name}.log")],
                       capture_output=True, timeout=60)
        runs.append((h.name, hgrm))
    runs.append(("all hosts", os.path.join(res.out_dir, "merged.hgrm")))
    marks = [(float(t), label) for t, _, label in (e.partition("=") for e in events)]
    ok = percentile_chart(os.path.join(res.out_dir, "percentiles.png"), runs)
    ok &= timeseries_chart(os.path.join(res.out_dir, "timeseries.png"),
                           os.path.join(res.out_dir, "merged.log"), events=marks)
    if not ok:
        print("bench/multi: gnuplot could not draw the charts", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

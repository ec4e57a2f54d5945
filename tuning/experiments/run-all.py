#!/usr/bin/env python3
"""run-all: run the tuning experiments one after the other and write one report,
tuning/results/REPORT.md, with every experiment's tables and its chart embedded.

    tuning/experiments/run-all                 # all, about 8 minutes
    tuning/experiments/run-all --quick         # shortened runs, about 1.5 minutes
    tuning/experiments/run-all nagle backlog   # only these

Every experiment cleans up its own namespaces and processes (also on Ctrl-C); the
files of one run share the DATE part of their names. Needs root.
"""
import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
import wxlib

ORDER = ["tw_reuse", "fin_timeout", "backlog", "reuseport", "nagle", "capacity", "conntrack",
         "boundaries", "rcvbuf"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"experiments to run [default: all: {' '.join(ORDER)}]")
    ap.add_argument("--quick", action="store_true", help="shortened runs")
    ap.add_argument("--out", default=str(wxlib.RESULTS), help="results directory [default: tuning/results]")
    ap.add_argument("--report-only", metavar="DATE",
                    help="run nothing: rebuild REPORT.md from the files of the run DATE in --out")
    args = ap.parse_args()
    names = args.names or ORDER
    if args.report_only:
        out = Path(args.out)
        results = [(n, 0 if (out / f"{n}-{args.report_only}.md").exists() else "missing", None)
                   for n in names]
        write_report(out, args.report_only, results, False, None, None)
        wxlib.log(f"run-all: wrote {out / 'REPORT.md'} for the run {args.report_only}")
        return
    for n in names:
        if n not in ORDER:
            sys.exit(f"run-all: unknown experiment {n!r}; known: {' '.join(ORDER)}")
    if os.geteuid() != 0:
        sys.exit("run-all: needs root (ip netns)")
    wxlib.find_build()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    host_before = wxlib.read_host_sysctls()
    results = []
    t_all = time.monotonic()
    for n in names:
        cmd = [str(HERE / n), "--out", str(out), "--stamp", stamp] + (["--quick"] if args.quick else [])
        wxlib.log(f"run-all: {' '.join(cmd)}")
        t0 = time.monotonic()
        p = subprocess.Popen(cmd)
        try:
            rc = p.wait()
        except KeyboardInterrupt:
            # the experiment got the same Ctrl-C and is cleaning up: wait for it
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            p.wait()
            wxlib.log("run-all: interrupted")
            sys.exit(130)
        results.append((n, rc, time.monotonic() - t0))
    host_after = wxlib.read_host_sysctls()
    write_report(out, stamp, results, args.quick, host_before == host_after, time.monotonic() - t_all)
    for n, rc, secs in results:
        wxlib.log(f"run-all: {n}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {secs:.0f} s")
    if host_before != host_after:
        wxlib.log("run-all: WARNING: host sysctls changed during the run")
    wxlib.log(f"run-all: wrote {out / 'REPORT.md'}")
    sys.exit(0 if all(rc == 0 for _, rc, _ in results) else 1)


def write_report(out, stamp, results, quick, host_same, total):
    t = (f"# wharf kernel tuning experiments\n\n"
         f"Run {stamp} on Linux {wxlib.kernel()}, {os.cpu_count()} CPUs"
         f"{', --quick' if quick else ''}"
         + (f", {total:.0f} s in all" if total is not None else "")
         + ". Made by `tuning/experiments/run-all`; every experiment ran in network "
         "namespaces of its own"
         + ("" if host_same is None else
            ", and the host's sysctls were "
            + ("unchanged afterwards (checked)" if host_same else "CHANGED (this is a bug)"))
         + ".\n\n")
    t += "| experiment | status | seconds | data |\n|---|---|---:|---|\n"
    for n, rc, secs in results:
        base = f"{n}-{stamp}"
        data = ", ".join(f"[{p.name}]({p.name})" for p in sorted(out.glob(base + "*.csv")))
        status = "ok" if rc == 0 else f"failed ({rc})"
        t += f"| [{n}](#{n.replace('_', '')}) | {status} | {'' if secs is None else f'{secs:.0f}'} | {data} |\n"
    t += "\n"
    for n, rc, _ in results:
        md = out / f"{n}-{stamp}.md"
        t += f'<a id="{n.replace("_", "")}"></a>\n\n'
        if md.exists():
            body = md.read_text()
            # one level down: the report has the only top-level heading
            body = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", body, flags=re.M)
            t += body.rstrip() + "\n\n"
        else:
            t += f"## {n}\n\nNo results (exit status {rc}).\n\n"
    (out / "REPORT.md").write_text(t)


if __name__ == "__main__":
    main()

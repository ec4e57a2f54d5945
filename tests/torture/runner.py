"""The torture runner: runs scenarios, prints the table, writes RESULTS-style Markdown.
`tests/torture/run` is its command line; test_torture_quick.py uses run_all."""

import argparse
import os
import sys
import time
import traceback

import torture
from scenarios import QUICK, SCENARIOS


def run_one(name, title, fn, quick, stream):
    r = torture.Result(name, title)
    t0 = time.monotonic()
    try:
        fn(r, quick)
    except torture.CheckFailed as e:
        r.error = f"{e}"
    except Exception:  # noqa: BLE001 - a crashed scenario is a failed scenario
        r.error = "exception: " + traceback.format_exc()[-2000:]
    r.seconds = time.monotonic() - t0
    for ok, text in r.checks:
        bad = "info" if r.info_only else "FAIL"
        print(f"   {'ok  ' if ok else bad} {text}", file=stream, flush=True)
    if r.error:
        print(f"   FAIL {r.error}", file=stream, flush=True)
    return r


def only_latency_failed(r):
    return r.verdict == "FAIL" and not r.error and all(
        t.startswith("p99 during") for t in r.failed)


def run_all(names, quick, stream=sys.stdout, retry=True):
    """Runs the scenarios. A scenario whose only failed check is the steady load's p99 runs
    once more (other people's work on this shared machine can stall a run for tens of
    ms): the second run decides, and the first one's figure stays in the report."""
    torture.raise_nofile()
    torture.pin_self()
    results = []
    for name, title, fn in SCENARIOS:
        if names and name not in names:
            continue
        print(f"=== {name}: {title}", file=stream, flush=True)
        r = run_one(name, title, fn, quick, stream)
        if retry and only_latency_failed(r):
            print(f"--- {name}: only the p99 check failed; running it once more", file=stream,
                  flush=True)
            first = r
            r = run_one(name, title, fn, quick, stream)
            r.retried = (f"first run: {'; '.join(first.failed)} (p99.9 "
                         f"{first.during['p999_us'] / 1000:.2f} ms, max "
                         f"{first.during['max_us'] / 1000:.2f} ms); the second run decides")
            r.seconds += first.seconds
            r.fig(r.retried)
        print(f"--- {name}: {r.verdict} ({r.seconds:.1f}s)", file=stream, flush=True)
        results.append(r)
    return results


def settings_text(quick):
    h, i = (2, 4) if quick else (5, 10)
    fifo = " SCHED_FIFO" if torture.RT else ""
    rss = "RSS bounds not checked (sanitizer build)" if torture.SANITIZED else "RSS bounds checked"
    tsan = ("; steady rate and p99 not checked (TSan)" if torture.TSAN else
            "; steady rate and p99 reported, not checked (inside make test)"
            if not torture.TIMING_CHECKED else "")
    backend = "" if torture.BACKEND == "auto" else f" --backend {torture.BACKEND}"
    return (f"build {torture.harness.BUILD}; wharfd{backend} --workers 1 on CPU "
            f"{torture.SERVER_CPU}{fifo}, --header-timeout {h}s --idle-timeout {i}s "
            f"--shutdown-timeout 5s (2s in vanish_in_shutdown); steady load `wharf bench -t 1 "
            f"-c {torture.STEADY_CONNS} -R {torture.STEADY_RATE}` frame on CPU "
            f"{torture.CLIENT_CPU}{fifo}; attackers on CPU {torture.CLIENT_CPU}; p99 bound "
            f"{torture.P99_FACTOR:g} x max(before, {torture.P99_FLOOR_US / 1000:g} ms); {rss}{tsan}")


def write_markdown(path, results, quick, total_s):
    lines = [f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{'--quick' if quick else 'full'}, {total_s:.0f} s in all.", "",
             settings_text(quick), "", torture.markdown_table(results), ""]
    for r in results:
        lines.append(f"**{r.name}** — {r.title} ({r.verdict}, {r.seconds:.0f} s)")
        lines.append("")
        if r.before and r.during:
            lines.append(f"- steady load: before {r.before['rps']:.0f} req/s, p99 "
                         f"{r.before['p99_us'] / 1000:.2f} ms, p99.9 "
                         f"{r.before['p999_us'] / 1000:.2f} ms; during {r.during['rps']:.0f} "
                         f"req/s, p99 {r.during['p99_us'] / 1000:.2f} ms, p99.9 "
                         f"{r.during['p999_us'] / 1000:.2f} ms, max "
                         f"{r.during['max_us'] / 1000:.2f} ms, errors {r.during['errors']}")
        for f in r.figures:
            lines.append(f"- {f}")
        for ok, text in r.checks:
            bad = "not met (INFO row: not counted)" if r.info_only else "**FAIL**"
            lines.append(f"- {'ok' if ok else bad}: {text}")
        if r.error:
            lines.append(f"- **FAIL**: {r.error}")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main(doc=__doc__):
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the <= 2 minute subset")
    ap.add_argument("--markdown", metavar="FILE", help="write the table and figures here")
    ap.add_argument("--list", action="store_true", help="list the scenarios")
    ap.add_argument("--no-retry", action="store_true",
                    help="never run a scenario again after a p99-only failure")
    ap.add_argument("names", nargs="*", help="run only these scenarios")
    a = ap.parse_args()
    if a.list:
        for name, title, _ in SCENARIOS:
            print(f"{name:28} {title}{'  (quick)' if name in QUICK else ''}")
        return 0
    if os.geteuid() != 0:
        print("tests/torture/run: needs root (network namespaces, SCHED_FIFO, prlimit)",
              file=sys.stderr)
        return 2
    for b in (torture.WHARFD, torture.WHARF):
        if not os.access(b, os.X_OK):
            print(f"tests/torture/run: {b} not built (make, or set WHARF_BUILD)",
                  file=sys.stderr)
            return 2
    unknown = [n for n in a.names if n not in {s[0] for s in SCENARIOS}]
    if unknown:
        print(f"unknown scenario(s): {unknown}; --list shows them", file=sys.stderr)
        return 2
    names = a.names or (QUICK if a.quick else [])
    t0 = time.monotonic()
    results = run_all(names, a.quick, retry=not a.no_retry)
    total = time.monotonic() - t0
    print()
    print(settings_text(a.quick))
    print()
    torture.print_table(results)
    failed = [r.name for r in results if r.verdict == "FAIL"]
    print()
    print(f"torture: {len(results)} scenarios in {total:.0f} s, "
          f"{len(failed)} FAIL{': ' + ', '.join(failed) if failed else ''}")
    if a.markdown:
        write_markdown(a.markdown, results, a.quick, total)
    return 1 if failed else 0


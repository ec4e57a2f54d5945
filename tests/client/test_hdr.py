"""HdrHistogram logs: wharf's --hdr-log read by an independent implementation
(hdr-histogram-js, installed by make into the build tree), a log of that library read by
wharf, `wharf merge` against one histogram of all the samples, and bad logs refused."""

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time

from clientlib import Suite, Server, WHARF, wharf, wharf_json, addr
from wharfkit.harness import BUILD, ROOT, run

t = Suite(__file__)
HERE = os.path.dirname(os.path.abspath(__file__))
PCTS = [50, 90, 99, 99.9]
# A bucket is at most 1/128 of its lowest value wide; percentiles are compared within it
# (plus the 10 ns that the text report's two decimals of a microsecond can round away).
REL = 1 / 128


def node_modules():
    for d in (BUILD, os.path.join(ROOT, "build")):
        m = os.path.join(d, "node_modules")
        if os.path.isfile(os.path.join(m, "hdr-histogram-js", "package.json")):
            return m
    return None


def node(*args):
    """Run tests/client/hdr_js.js; its JSON, or None (and why) without node or the module."""
    mods = node_modules()
    if not shutil.which("node") or not mods:
        why = "no node" if not shutil.which("node") else \
            "hdr-histogram-js not installed (npm install failed: see build/npm-install.log)"
        return None, why
    p = run(["env", f"NODE_PATH={mods}", "node", os.path.join(HERE, "hdr_js.js")] + list(args),
            timeout=30)
    t.check(p.returncode == 0, "hdr_js.js ran", p.stderr[-1500:])
    return json.loads(p.stdout), None


def csv_hist(path):
    """--latency-csv back into (value_ns, count) per bucket."""
    rows, prev = [], 0
    with open(path) as f:
        next(f)
        for line in f:
            us, _, cum, _ = line.strip().split(",")
            rows.append((round(float(us) * 1000), int(cum) - prev))
            prev = int(cum)
    return rows


def percentile(rows, p):
    """The smallest value with at least p% of the counts at or below it."""
    rows = sorted(rows)
    n = sum(c for _, c in rows)
    rank = max(1, math.ceil(p / 100 * n - 1e-9))
    seen = 0
    for v, c in rows:
        seen += c
        if seen >= rank:
            return v
    return rows[-1][0]


def near(got, want, slack_ns=0):
    return abs(got - want) <= want * REL + slack_ns + 1


@t.test
def hdr_histogram_js_reads_wharf_log():
    with Server("frame") as s, tempfile.TemporaryDirectory() as d:
        log, csv = os.path.join(d, "a.log"), os.path.join(d, "a.csv")
        rc, r, err = wharf_json(["bench", "-c", "4", "-t", "2", "-d", "2s", "--warmup", "1s",
                                 "--hdr-log", log, "--latency-csv", csv, addr(s, "frame")])
        t.check(rc == 0, "bench ran", err)
        js, why = node("read", log)
        if js is None:
            print(f"skip - hdr_histogram_js_reads_wharf_log: {why}")
            return
        ivs = js["intervals"]
        warm = sum(i["count"] for i in ivs if i["tag"] == "warmup")
        t.check(len(ivs) >= 3, "an interval a second, and the warm-up", ivs)
        # Every reply is in some interval; a reply later than the logger's grace time
        # (rare: a slow sanitizer build) is counted two intervals on, so the split
        # between warm-up and measured intervals is exact but for those few.
        t.check(warm + js["total"]["count"] == r["requests"]["warmup"] + r["requests"]["ok"],
                "every reply in the log", (warm, js["total"]["count"], r["requests"]))
        late = abs(warm - r["requests"]["warmup"])
        t.check(late <= 5 + r["requests"]["warmup"] // 1000,
                "warm-up intervals hold the warm-up requests", (warm, r["requests"]))
        t.check(r["latency"]["count"] == r["requests"]["ok"], "the report's histogram", r)
        rows = csv_hist(csv)
        for p in PCTS:
            got, want = js["total"]["pct"][str(p)], percentile(rows, p)
            t.check(near(got, want), f"p{p}: hdr-histogram-js agrees with the CSV", (got, want))


@t.test
def wharf_reads_hdr_histogram_js_log():
    with tempfile.TemporaryDirectory() as d:
        log, hgrm = os.path.join(d, "js.log"), os.path.join(d, "js.hgrm")
        js, why = node("write", log, "7")
        if js is None:
            print(f"skip - wharf_reads_hdr_histogram_js_log: {why}")
            return
        p = wharf(["merge", "--hgrm", hgrm, log])
        t.check(p.returncode == 0, "wharf merge read the library's log", p.stderr)
        t.check("15000 requests in all" in p.stdout, "every value counted", p.stdout)
        with open(hgrm) as f:
            text = f.read()
        t.check("Total count    =        15000" in text, ".hgrm footer counts 15000", text[-300:])
        got = hgrm_percentiles(text)
        for p_ in PCTS:
            want = js["total"]["pct"][str(p_)]
            # The library's log has 3 significant digits: wharf's 1/128 buckets, plus its.
            t.check(abs(got(p_) - want) <= want * (REL + 1 / 1024) + 1000,
                    f"p{p_} from wharf's reading agrees with the library", (got(p_), want))


def hgrm_percentiles(text):
    """A function p -> value (ns) from .hgrm lines: the first line at or past p."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+(\d+)", line)
        if m:
            rows.append((float(m.group(2)) * 100, float(m.group(1)) * 1e6))
    return lambda p: next(v for q, v in rows if q >= p - 1e-9)


def report_percentiles(text):
    """The text report's distribution lines: {50.0: ns, ...}."""
    unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
    out = {}
    for m in re.finditer(r"^\s+([\d.]+)%\s+([\d.]+)(ns|us|ms|s)$", text, re.M):
        out[float(m.group(1))] = float(m.group(2)) * unit[m.group(3)]
    return out


def bench_together(s, d, n, extra=()):
    """n bench runs started together (--start-at); their logs, CSVs and reports."""
    at = f"{time.time() + 1.5:.3f}"
    procs, files = [], []
    for i in range(n):
        log, csv = os.path.join(d, f"h{i}.log"), os.path.join(d, f"h{i}.csv")
        files.append((log, csv))
        procs.append(subprocess.Popen(
            [WHARF, "bench", "-c", "2", "-t", "1", "-d", "2s", "--start-at", at, "--hdr-log", log,
             "--latency-csv", csv, "--json", *extra, addr(s, "frame")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        t.check(p.returncode == 0, "bench ran", err)
        reports.append(json.loads(out))
    return files, reports


@t.test
def merge_of_logs_equals_one_histogram_of_all_samples():
    with Server("frame") as s, tempfile.TemporaryDirectory() as d:
        files, reports = bench_together(s, d, 3)
        merged_log = os.path.join(d, "m.log")
        p = wharf(["merge", "--per-host", "--hdr-log", merged_log] + [f[0] for f in files])
        t.check(p.returncode == 0, "merge ran", p.stderr)
        total = sum(r["requests"]["ok"] for r in reports)
        t.check(f"{total} requests in all" in p.stdout, "every host's requests", (total, p.stdout))
        rows = [row for f in files for row in csv_hist(f[1])]
        got = report_percentiles(p.stdout)
        for q in PCTS:
            want = percentile(rows, q)
            t.check(near(got[q], want, 10), f"p{q} of the merged logs is the p{q} of all samples",
                    (got[q], want))
        rate = sum(r["requests_per_sec"] for r in reports)
        m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
        t.check(m and abs(float(m.group(1)) - rate) < 0.1 * rate, "requests/s summed",
                (p.stdout, rate))
        t.check(p.stdout.count(".log ") >= 3, "a row per host", p.stdout)
        # The merged log read back is the same whole.
        p2 = wharf(["merge", merged_log])
        t.check(f"{total} requests in all" in p2.stdout, "the merged log holds them all",
                p2.stdout + p2.stderr)


@t.test
def bad_logs_get_one_line_errors():
    with Server("frame") as s, tempfile.TemporaryDirectory() as d:
        a, b = os.path.join(d, "a.log"), os.path.join(d, "b.log")
        for log in (a, b):  # one after the other: they cannot overlap
            p = wharf(["bench", "-c", "1", "-t", "1", "-d", "1s", "--hdr-log", log, "--json",
                       addr(s, "frame")])
            t.check(p.returncode == 0, "bench ran", p.stderr)
            with open(log + ".json", "w") as f:
                f.write(p.stdout)
        for files in ((a, b), (a + ".json", b + ".json")):
            p = wharf(["merge", *files])
            t.check(p.returncode == 1 and "does not overlap" in p.stderr,
                    f"misaligned {files[0][-4:]} files refused", (p.returncode, p.stderr))
            t.check(p.stderr.count("\n") == 1 and not p.stdout, "in one line, no report", p)
        with open(a) as f:
            text = f.read()
        cut = os.path.join(d, "cut.log")
        with open(cut, "w") as f:
            f.write(text[:len(text) - 20])
        p = wharf(["merge", cut])
        t.check(p.returncode == 1 and "truncated" in p.stderr and p.stderr.count("\n") == 1,
                "a truncated log refused in one line", p.stderr)
        bad = os.path.join(d, "bad.log")
        lines = text.splitlines(True)
        lines[-1] = lines[-1][:-30] + "*" + lines[-1][-29:]
        with open(bad, "w") as f:
            f.write("".join(lines))
        p = wharf(["merge", bad])
        t.check(p.returncode == 1 and "base64" in p.stderr and p.stderr.count("\n") == 1,
                "a damaged histogram refused in one line", p.stderr)


@t.test
def churn_logs_connect_latency():
    with Server("frame") as s, tempfile.TemporaryDirectory() as d:
        log, hgrm = os.path.join(d, "c.log"), os.path.join(d, "c.hgrm")
        rc, r, err = wharf_json(["churn", "-c", "4", "-d", "1s", "--hdr-log", log, "--hgrm", hgrm,
                                 "--interval", "250ms", addr(s, "frame")])
        t.check(rc == 0, "churn ran", err)
        p = wharf(["merge", log])
        n = r["connect_latency"]["count"]
        t.check(f"{n} connections in all" in p.stdout and "Connections/sec:" in p.stdout,
                "every connect in the log, counted as connections", (n, p.stdout))
        with open(log) as f:
            lines = [x for x in f if not x.startswith(("#", '"'))]
        t.check(len(lines) >= 4, "an interval per 250 ms", len(lines))
        with open(hgrm) as f:
            t.check(f"Total count    = {n:12d}" in f.read(), ".hgrm of the connects", n)
        p = wharf(["churn", "-c", "1", "-d", "1s", "--start-at", "1700000000", addr(s, "frame")])
        t.check(p.returncode == 1 and "has passed" in p.stderr and p.stderr.count("\n") == 1,
                "a --start-at in the past is refused in one line", p.stderr)


t.main()

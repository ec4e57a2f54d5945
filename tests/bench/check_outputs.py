"""Checks for tests/bench/test_bench_smoke.sh: is a harness's output sane?

    python3 check_outputs.py KIND PATH    (KIND: echo-json, http, profile-syscalls,
                                           profile-callgrind, csv, backends,
                                           coreshare)
Prints the problems found, one per line; nothing when all is well.
"""
import csv
import json
import sys


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def rows_of(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def echo_json(path):
    line = [ln for ln in open(path) if ln.startswith('{"wrk":')]
    if not line:
        return ["wrk printed no JSON line"]
    r = json.loads(line[-1])["wrk"]
    p = []
    if r.get("checked", 0) <= 0:
        p.append("no reply checked")
    if r.get("bad_replies"):
        p.append("%d bad replies" % r["bad_replies"])
    if r["errors"]["total"]:
        p.append("%d errors" % r["errors"]["total"])
    if not r.get("latency_raw"):
        p.append("wrk's latency correction was not undone")
    return p


def http(path):
    rows = rows_of(path)
    p = []
    for w in ("keepalive", "pipeline", "close"):
        for s in ("wharfd", "nginx"):
            if not any(r["workload"] == w and r["server"] == s for r in rows):
                p.append("no %s run for %s" % (w, s))
    for r in rows:
        tag = "%s/%s" % (r["workload"], r["server"])
        if num(r["requests"]) <= 0:
            p.append(tag + ": no requests")
        if r["server"] == "wharfd" and num(r["errors"]) > 0:
            p.append("%s: %s errors" % (tag, r["errors"]))
        if num(r["cpu_us"]) <= 0:
            p.append(tag + ": no server CPU time measured")
        if r["server_alive"] != "1":
            p.append(tag + ": the server died")
    return p


def profile_syscalls(path):
    rows = rows_of(path)
    p = [] if rows else ["no rows"]
    for r in rows:
        if not 0 < num(r["syscalls_per_req"]) < 100:
            p.append("%s: %s syscalls/request" % (r["workload"], r["syscalls_per_req"]))
        if num(r["errors"]) > 0:
            p.append("%s: %s errors" % (r["workload"], r["errors"]))
    return p


def profile_callgrind(path):
    rows = rows_of(path)
    p = [] if rows else ["no rows"]
    for r in rows:
        if not 10 < num(r["ir_per_req"]) < 1e7:
            p.append("%s: %s instructions/request" % (r["workload"], r["ir_per_req"]))
    return p


def any_csv(path):
    rows = rows_of(path)
    return [] if rows else ["no rows"]


def backends(path):
    """bench/backends: every workload ran on both backends, served, without errors."""
    rows = rows_of(path)
    p = [] if rows else ["no rows"]
    for w in sorted({r["workload"] for r in rows}):
        got = {r["backend"] for r in rows if r["workload"] == w}
        if got != {"epoll", "io_uring"}:
            p.append("%s ran on %s only" % (w, sorted(got)))
    for r in rows:
        if num(r["rps"]) <= 0 or num(r["errors"]):
            p.append("%s %s: %s req/s, %s errors" % (r["backend"], r["workload"], r["rps"],
                                                     r["errors"]))
    return p


def coreshare(path):
    """bench/coreshare: every run served requests, both CPUs were sampled about as often
    as perf was asked to within the measured window, and the server spent time in its
    own event loop. A tickless CPU takes no cpu-clock samples while idle, so the floor
    is set by each CPU's busy time over the window (/proc/stat, column <side>_busy_s),
    whichever side saturated; the ceiling by the whole window."""
    rows = rows_of(path)
    p = [] if rows else ["no rows"]
    for r in rows:
        tag = "%s round %s" % (r["backend"], r["round"])
        if num(r["requests"]) <= 0:
            p.append(tag + ": no requests")
        freq, window = num(r["freq"]), num(r["window_s"])
        for side in ("server", "load"):
            n = num(r[side + "_samples"])
            busy = num(r.get(side + "_busy_s", window))  # results from before the column
            if n <= 0 or n < 0.5 * freq * busy:
                p.append("%s: %d samples on the %s's CPU where its %.2f busy seconds call "
                         "for %d" % (tag, n, side, busy, freq * busy))
            elif n > 1.1 * freq * window:
                p.append("%s: %d samples on the %s's CPU, more than the %d of the window" %
                         (tag, n, side, freq * window))
        loop = num(r["server:event loop: " + ("io_uring" if r["backend"] == "io_uring"
                                               else "epoll")])
        if loop <= 0:
            p.append("%s: no time in its own event loop" % tag)
    return p


def shortconn(path):
    """bench/shortconn: every server's connections were captured whole (SYN to both
    FINs), each took the ten segments of a loopback close (within rounding: a few are
    cut by the run's end), with no errors and no RST per connection."""
    import json
    with open(path) as f:
        rows = json.load(f)
    p = [] if rows else ["no servers"]
    for r in rows:
        cap = r.get("pcap", {})
        if cap.get("connections", 0) <= 0:
            p.append("%s: no connection captured" % r.get("server"))
            continue
        if not 9.5 <= cap["segs"] <= 10.5:
            p.append("%s: %.2f segments per connection" % (r["server"], cap["segs"]))
        if cap["rst"] > 0.05 or r["errors"]:
            p.append("%s: RST %.2f per connection, %s errors" % (r["server"], cap["rst"],
                                                                r["errors"]))
    return p


KINDS = {"echo-json": echo_json, "shortconn": shortconn, "http": http, "profile-syscalls": profile_syscalls,
         "profile-callgrind": profile_callgrind, "csv": any_csv, "backends": backends,
         "coreshare": coreshare}

if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    try:
        problems = KINDS[kind](path)
    except Exception as e:  # a missing or broken file is a failure too
        problems = ["%s: %s" % (type(e).__name__, e)]
    print("; ".join(problems))

"""The load the cluster scenarios run from a client host, in the background.

    run = http_load(cluster.popener("client1"), "http://198.18.0.5/", workdir,
                    rate=500, conns=8, seconds=5)
    ...                                   # act on the cluster meanwhile
    run.result()   # {'requests', 'failed', 'p50_ms', 'p99_ms', 'rate', ...}

http_load is the one place that says how HTTP load is made: `wharf bench -R` (a constant
rate, latency from intended send times) where this build's wharf speaks HTTP; else wrk,
each connection sending its next request `conns / rate` seconds after the last answer
(wrk's delay() hook), about `rate` requests/s in all while latency stays well under that
gap (`wrk -R` does not exist). WHARF_CLUSTER_HTTP=wrk picks wrk always. frame_load is
`wharf bench` with -R, a constant rate from intended send times, which reconnects a
connection the server closed and counts the frames that were in flight on it ("closed"
errors).

stop() ends a run early with SIGINT, after which both tools still report.

window() is latency over a stretch of wall-clock time: the 100 ms intervals of the
client hosts' interval logs (`wharf bench --hdr-log`, started together with
--start-at) that lie inside it, their histograms added up, so that a p99 compares one
stretch of a single run with another (the crash's before and after) and says how many
requests it rests on."""

import json
import os
import re
import signal
import subprocess

from wharfkit import hdrlog, proc

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


class Run:
    def __init__(self, kind, popen, parse):
        self.kind, self.proc, self.parse = kind, popen, parse
        self.out = None

    def stop(self):
        """SIGINT (by PID): the tool stops and reports what it has."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def result(self, timeout=120):
        if self.out is None:
            try:
                self.out = self.proc.communicate(timeout=timeout)[0]
            except subprocess.TimeoutExpired:
                proc.stop(self.proc, 5)
                self.out = self.proc.communicate()[0]
        return self.parse(self.out)


def _ms(value, unit):
    return float(value) * UNITS[unit]


def parse_wrk(out):
    """wrk's text report: requests, failed (non-2xx/3xx + socket errors), latency."""
    r = {"tool": "wrk", "raw_tail": out[-600:]}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    r["requests"] = int(m.group(1)) if m else 0
    r["seconds"] = _ms(m.group(2), m.group(3)) / 1000 if m else 0
    fail = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        fail += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        fail += sum(int(x) for x in m.groups())
    r["failed"] = fail
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        r[key] = _ms(*m.groups()) if m else None
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rate"] = float(m.group(1)) if m else 0.0
    r["ran"] = r["requests"] > 0
    return r


def speaks_http(wharf):
    """This wharf's bench takes http:// URLs (and WHARF_CLUSTER_HTTP is not 'wrk')."""
    if os.environ.get("WHARF_CLUSTER_HTTP") == "wrk" or not wharf:
        return False
    try:
        out = subprocess.run([wharf, "bench", "--help"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "http://" in out


def http_load(popen, url, workdir, rate, conns, seconds, close=False, wrk="wrk", wharf=None,
              hdr_log=None, start_at=None):
    """HTTP GETs to url with popen (a client host's, which records the PID) at rate
    requests/s (0: as fast as answers come) over conns connections (close: a new
    connection per request) for seconds; a Run. With a wharf whose bench speaks HTTP:
    `wharf bench -R`, a constant rate; else wrk, about that rate. hdr_log: wharf bench
    writes its latency every 100 ms there (for window()), measured from start_at (wall
    clock seconds; connections are made before); wrk writes none."""
    if speaks_http(wharf):
        cmd = [wharf, "bench", "-t1", "-c", str(conns), "-d", f"{seconds}s", "--json",
               "--allow-errors", "--timeout", "10s"]
        cmd += ["-R", str(rate)] if rate else []
        cmd += ["--hdr-log", hdr_log, "--interval", "100ms"] if hdr_log else []
        cmd += ["--start-at", f"{start_at:.3f}"] if start_at else []
        cmd += ["-H", "Connection: close"] if close else []
        p = popen(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                  stdin=subprocess.DEVNULL, text=True)
        return Run("http", p, parse_bench)
    # --timeout: a late answer on a busy shared machine is slow, not failed (wrk: 2 s)
    cmd = [wrk, "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if rate:
        gap_ms = max(1, round(conns * 1000 / rate))
        script = os.path.join(workdir, f"delay-{gap_ms}.lua")
        if not os.path.exists(script):  # written whole, then renamed: another wrk may read it
            with open(script + ".new", "w") as f:
                f.write(f"-- wait {gap_ms} ms after each answer\n"
                        f"function delay()\n  return {gap_ms}\nend\n")
            os.replace(script + ".new", script)
        cmd += ["-s", script]
    if close:
        cmd += ["-H", "Connection: close"]
    p = popen(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
              stdin=subprocess.DEVNULL, text=True)
    return Run("http", p, parse_wrk)


def parse_bench(out):
    """wharf bench --json: answered, failed by kind, connects made, latency."""
    try:
        j = json.loads(out[out.index("{"):])
    except ValueError:
        return {"tool": "wharf bench", "ran": False, "requests": 0, "failed": 0,
                "raw_tail": out[-600:]}
    err = j.get("errors", {})
    lat = j.get("latency", {})
    http = j.get("http", {})  # HTTP: wrk's non-2xx/3xx, and requests lost at a close
    failed = err.get("total", 0) + http.get("non_2xx_3xx", 0) + http.get("lost", 0)
    return {"tool": "wharf bench", "json": out[out.index("{"):], "ran": j["requests"]["ok"] > 0,
            "requests": j["requests"]["ok"], "sent": j["requests"]["sent"],
            "failed": failed, "closed": err.get("closed", 0),
            "connect_errors": err.get("connect", 0),
            "connects": j.get("connect_latency", {}).get("count", 0),
            "connections": j["connections"], "pipeline": j["pipeline"],
            "p50_ms": lat.get("p50_us", 0) / 1000, "p99_ms": lat.get("p99_us", 0) / 1000,
            "rate": j.get("requests_per_sec", 0.0), "seconds": j.get("duration_s", 0.0)}


def frame_load(popen, addr, port, wharf, rate, conns, seconds, pipeline=1):
    """Frames to addr:port with popen (a client host's, which records the PID) at a
    constant rate over conns connections (pipeline in flight on each at most) for
    seconds; a Run."""
    cmd = [wharf, "bench", "-t1", "-c", str(conns), "-P", str(pipeline), "-R", str(rate),
           "-d", f"{seconds}s", "--json", "--allow-errors", f"frame://{addr}:{port}"]
    p = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                 stdin=subprocess.DEVNULL, text=True)
    return Run("frame", p, parse_bench)


def window(logs, t0, t1):
    """Latency of the requests answered from t0 to t1 (wall clock seconds) on every log
    in logs, as one histogram: the intervals wholly inside [t0, t1). {'count', 'p50_ms',
    'p99_ms', 'max_ms', 'from', 'to'} (from/to: the intervals' span), or None when
    no interval lies inside (or a log cannot be read)."""
    counts, span = {}, []
    try:
        ivs = [iv for path in logs for iv in hdrlog.read_log(path)]
    except (OSError, ValueError):
        return None
    for iv in ivs:
        if iv.start >= t0 - 1e-3 and iv.start + iv.length <= t1 + 1e-3:
            span += [iv.start, iv.start + iv.length]
            for low, width, n in iv.counts:
                counts[(low, width)] = counts.get((low, width), 0) + n
    if not span:
        return None
    h = hdrlog.Interval(min(span), max(span) - min(span), None,
                        [(lo, w, n) for (lo, w), n in sorted(counts.items())])
    return {"count": h.count, "p50_ms": round(h.percentile(50) / 1e6, 3),
            "p99_ms": round(h.percentile(99) / 1e6, 3), "max_ms": round(h.max() / 1e6, 3),
            "from": min(span), "to": max(span)}

"""/metrics by Prometheus's conventions, checked by Prometheus's own promtool.

promtool comes from tests/promtool.sh: unpacked from Debian's prometheus package into a
cache directory, never installed, so no Prometheus server is started on this machine.
Every test runs a real wharfd on loopback and reads its page over HTTP.
"""

import os
import re
import resource
import subprocess
import tempfile
import time

from wharfkit import ROOT
from wharfkit.harness import Server, Suite, run
from wharfkit.net import http_get

t = Suite(__file__)


def promtool():
    r = run([os.path.join(ROOT, "tests", "promtool.sh")], timeout=120)
    t.check(r.returncode == 0 and r.stdout.strip(), "promtool found or fetched", r.stderr)
    return r.stdout.strip()


def metrics(port):
    r = http_get(port, "/metrics", timeout=10)
    t.check(r and r[0] == 200, "GET /metrics answers 200", r and r[0])
    t.check(r[1].get("content-type") == "text/plain; version=0.0.4", "content type", r[1])
    return r[2].decode()


def samples(text, name):
    """{labels text: value} of every sample of metric name."""
    out = {}
    for line in text.splitlines():
        m = re.match(re.escape(name) + r"(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


@t.test
def promtool_check_metrics_passes():
    tool = promtool()
    with Server("http", "raw", workers=2) as s:
        for path in ("/", "/nothing-here", "/stats"):
            http_get(s.port["http"], path)
        page = metrics(s.port["http"])
        r = subprocess.run([tool, "check", "metrics"], input=page, capture_output=True,
                           text=True, timeout=30)
        t.check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
                "promtool check metrics finds nothing", r.stdout + r.stderr)
        # the checker itself is not a rubber stamp: a unit in the wrong form is refused
        bad = page + "# HELP wharf_wait_ms x\n# TYPE wharf_wait_ms gauge\nwharf_wait_ms 1\n"
        r = subprocess.run([tool, "check", "metrics"], input=bad, capture_output=True,
                           text=True, timeout=30)
        t.check(r.returncode != 0, "promtool refuses wharf_wait_ms", r.stdout + r.stderr)


@t.test
def readme_alert_rules_pass_promtool():
    tool = promtool()
    readme = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"```yaml\n(groups:\n.*?)```", readme, re.S)
    t.check(m is not None, "README has the alert rules")
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        f.write(m.group(1))
        f.flush()
        r = subprocess.run([tool, "check", "rules", f.name], capture_output=True, text=True,
                           timeout=30)
    t.check(r.returncode == 0 and "SUCCESS: 2 rules found" in r.stdout,
            "promtool check rules: the two rules are valid", r.stdout + r.stderr)
    for name in re.findall(r"\b(wharf_[a-z_]+)", m.group(1)):
        t.check(f"`{name}`" in readme.split("## Metrics", 1)[1].split("## ", 1)[0],
                f"{name}, which a rule uses, is in the metrics table")


@t.test
def readme_lists_every_metric():
    table = open(os.path.join(ROOT, "README.md")).read().split("## Metrics", 1)[1]
    table = table.split("\n## ", 1)[0]
    with Server("http", workers=1, extra=["--max-conns-per-ip", "5"]) as s:
        page = metrics(s.port["http"])
    names = re.findall(r"^# TYPE (\S+) ", page, re.M)
    t.check(len(names) >= 40, "the page's metrics", names)
    missing = [n for n in names if f"`{n}`" not in table]
    t.check(not missing, "every metric is in README's table", missing)


@t.test
def one_metric_per_quantity_with_labels():
    with Server("http", "raw", workers=1) as s:
        for _ in range(3):
            http_get(s.port["http"], "/nothing-here")
        page = metrics(s.port["http"])
        codes = samples(page, "wharf_http_responses_total")
        t.check(codes.get('{worker="0",code="4xx"}') == 3, "three 404s counted as 4xx", codes)
        t.check(set(codes) == {'{worker="0",code="%s"}' % c for c in ("2xx", "4xx", "5xx")},
                "one series per status class", codes)
        kinds = samples(page, "wharf_timeouts_total")
        t.check(len(kinds) == 3, "timeouts by kind", kinds)
        for old in ("wharf_http_4xx_total", "wharf_bytes_in_total", "wharf_uptime_seconds",
                    "wharf_acceptor_"):
            t.check(old not in page, f"the retired name {old} is gone")
        info = samples(page, "wharf_build_info")
        t.check(len(info) == 1 and list(info.values()) == [1.0] and
                'version="' in next(iter(info)) and 'backends="' in next(iter(info)),
                "wharf_build_info", info)
        queues = samples(page, "wharf_listen_queue_limit")
        want = {'{listener="127.0.0.1:%d",proto="%s"}' % (s.port[p], p) for p in ("http", "raw")}
        t.check(set(queues) == want and all(v > 0 for v in queues.values()),
                "a listen queue limit per listener", queues)
        depth = samples(page, "wharf_handoff_queue_length")
        t.check(depth == {'{worker="0"}': 0.0}, "handoff queue depth per worker", depth)


@t.test
def process_metrics_match_proc():
    before = time.time()
    with Server("http", workers=1) as s:
        after = time.time()
        page = metrics(s.port["http"])
        pid = s.pid
        soft = resource.prlimit(pid, resource.RLIMIT_NOFILE)[0]
        t.check(samples(page, "process_max_fds") == {"": float(soft)}, "process_max_fds", soft)
        fds = samples(page, "process_open_fds")[""]
        now = len(os.listdir(f"/proc/{pid}/fd"))
        t.check(abs(fds - now) <= 2, "process_open_fds as /proc/PID/fd", (fds, now))
        rss = samples(page, "process_resident_memory_bytes")[""]
        t.check(rss > 1 << 20, "resident memory in bytes", rss)
        start = samples(page, "process_start_time_seconds")[""]
        t.check(before - 5 <= start <= after + 5, "start time, seconds since the epoch",
                (before, start, after))
        cpu = samples(page, "process_cpu_seconds_total")
        t.check(len(cpu) == 1 and 0 <= cpu[""] < 60, "CPU seconds", cpu)


@t.test
def metrics_listener_serves_only_the_stats_routes():
    tool = promtool()
    with Server("http", "metrics", workers=1) as s:
        m = s.port["metrics"]
        for path in ("/", "/echo", "/nothing", "/__test/stall"):
            r = http_get(m, path)
            t.check(r and r[0] == 404, f"metrics:// answers 404 to {path}", r and r[:2])
        t.check(http_get(s.port["http"], "/")[0] == 200, "the service listener serves /")
        t.check(http_get(m, "/healthz")[0] == 200, "metrics:// serves /healthz")
        st = http_get(m, "/stats")
        t.check(st[0] == 200 and b'"metrics://127.0.0.1:%d"' % m in st[2],
                "metrics:// serves /stats, which names the listener by its scheme", st[2][:300])
        page = metrics(m)
        r = subprocess.run([tool, "check", "metrics"], input=page, capture_output=True,
                           text=True, timeout=30)
        t.check(r.returncode == 0, "its /metrics passes promtool", r.stdout + r.stderr)
        limits = samples(page, "wharf_listen_queue_limit")
        t.check('{listener="127.0.0.1:%d",proto="metrics"}' % m in limits,
                "the metrics listener's own queue, as proto metrics", limits)
        codes = samples(page, "wharf_http_responses_total")
        t.check(codes.get('{worker="0",code="4xx"}') == 4, "its 404s are counted", codes)


t.main()

"""wharf bench, churn and hold over HTTP: counts against wharfd's /stats and nginx's
stub_status, per-request latency under pipelining against a server that delays chosen
responses by known amounts, and --expect-status / --expect-body failing when the server
answers otherwise."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from clientlib import Suite, Server, WHARF, wharf, wharf_json, totals, addr
from wharfkit import proc

t = Suite(__file__)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def http_requests(before, after):
    """HTTP requests wharfd answered in between, without one /stats read (two reads with
    nothing between them differ by one)."""
    return after["messages"] - before["messages"] - 1


def url(s, path="/"):
    return f"{addr(s, 'http')}{path}"


@t.test
def bench_counts_match_wharfd_stats():
    with Server("http") as s:
        for extra in (["-P", "1"], ["-P", "8"], ["-m", "HEAD"]):
            before = totals(s)
            rc, r, err = wharf_json(["bench", "-c", "4", "-t", "2", "-n", "4000"] + extra + [url(s)])
            after = totals(s)
            t.check(rc == 0, f"{extra}: exit 0", (rc, err))
            t.check(r["requests"]["sent"] == 4000 and r["requests"]["ok"] == 4000,
                    f"{extra}: 4000 sent and ok", r["requests"])
            t.check(http_requests(before, after) == 4000, f"{extra}: wharfd counted 4000",
                    http_requests(before, after))
            t.check(r["latency"]["count"] == 4000, f"{extra}: every response timed", r["latency"])
            t.check(r["http"]["non_2xx_3xx"] == 0 and r["http"]["lost"] == 0, f"{extra}: clean",
                    r["http"])


@t.test
def non_2xx_counted_as_wrk_does_and_expectations_fail():
    with Server("http") as s:
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "300", url(s, "/nope")])
        t.check(rc == 0 and r["http"]["non_2xx_3xx"] == 300, "404s counted, not errors",
                (rc, r["http"], r["errors"]))
        p = wharf(["bench", "-c", "2", "-t", "1", "-n", "300", url(s, "/nope")])
        t.check("Non-2xx or 3xx responses: 300" in p.stdout, "wrk's line", p.stdout)
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "300",
                                 "--expect-status", "200", url(s, "/nope")])
        t.check(rc == 1 and r["errors"]["status"] == 300 and r["requests"]["ok"] == 0,
                "--expect-status 200 against 404: 300 status errors, exit 1", (rc, r["errors"]))
        body = ["-m", "POST", "--body", "hello"]
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "200", *body,
                                 "--expect-body", "HELLO", url(s, "/echo")])
        t.check(rc == 0 and r["requests"]["ok"] == 200, "the body wharfd returns matches",
                (rc, r["errors"]))
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "200", *body,
                                 "--expect-body", "hello", url(s, "/echo")])
        t.check(rc == 1 and r["errors"]["body"] == 200, "--expect-body hello against HELLO",
                (rc, r["errors"]))
        rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-n", "50", *body,
                                 "--expect-body", "HELLOX", url(s, "/echo")])
        t.check(rc == 1 and r["errors"]["body"] == 50, "a body shorter than expected",
                (rc, r["errors"]))


@t.test
def server_closes_are_reconnected_and_lost_requests_counted():
    with Server("http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "400", "-P", "4",
                                 "-H", "Connection: close", "--connect-rate", "0", url(s)])
        after = totals(s)
        ok, lost, closes = r["requests"]["ok"], r["http"]["lost"], r["http"]["server_closes"]
        t.check(rc == 0 and r["errors"]["total"] == 0, "closes are not errors", (rc, r["errors"]))
        t.check(closes == ok and ok > 0, "one server close per response", (closes, ok))
        t.check(ok + lost == r["requests"]["sent"], "every request answered or lost", r)
        t.check(lost > 0, "pipelined requests behind a close are lost", r["http"])
        t.check(http_requests(before, after) == ok, "wharfd answered exactly the ok ones",
                (http_requests(before, after), ok))


@t.test
def churn_and_hold_speak_http():
    with Server("http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["churn", "-c", "4", "-n", "200", url(s)])
        after = totals(s)
        t.check(rc == 0 and r["errors"]["total"] == 0, "churn over http", (rc, err, r["errors"]))
        t.check(http_requests(before, after) == 200, "200 requests reached wharfd",
                http_requests(before, after))
        rc, r, err = wharf_json(["hold", "-c", "40", "-d", "1s", url(s, "/")])
        t.check(rc == 0, "hold over http", (rc, err, r))


# ---- nginx -------------------------------------------------------------------------

NGINX_CONF = """worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log off;
    keepalive_requests 100;
    client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
    uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
    server {{
        listen 127.0.0.1:{port};
        location = /status {{ stub_status; }}
        location / {{ return 200 "Hello, World!"; }}
    }}
}}
"""


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def stub_status(port):
    """nginx's (active, accepts, requests)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5).read().decode()
    m = re.search(r"Active connections:\s*(\d+).*?\n\s*(\d+)\s+\d+\s+(\d+)", text, re.S)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def stub_requests(port):
    return stub_status(port)[2]


@t.test
def bench_counts_match_nginx_stub_status():
    if not os.access(NGINX, os.X_OK):
        print("skip: no nginx")
        return
    d = tempfile.mkdtemp(prefix="wharf-test-nginx-")
    port = free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port, user="user root;" if os.geteuid() == 0 else ""))
    p = subprocess.Popen([NGINX, "-p", d + "/", "-c", os.path.join(d, "nginx.conf"), "-g",
                          "daemon off;", "-e", os.path.join(d, "error.log")],
                         start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    p2 = None
    try:
        for _ in range(100):
            try:
                before = stub_requests(port)
                break
            except OSError:
                time.sleep(0.05)
        rc, r, err = wharf_json(["bench", "-c", "5", "-t", "1", "-n", "3000",
                                 "--expect-status", "200", "--expect-body", "Hello, World!",
                                 f"http://127.0.0.1:{port}/"])
        after = stub_requests(port)
        t.check(rc == 0 and r["requests"]["ok"] == 3000, "3000 ok, bodies checked",
                (rc, err, r["errors"]))
        # Each stub_status read counts itself: the later one is in the difference.
        t.check(after - before - 1 == 3000, "nginx counted 3000", after - before - 1)
        t.check(r["http"]["server_closes"] >= 25 and r["http"]["lost"] == 0,
                "keepalive_requests 100: nginx closed, wharf reconnected, nothing lost",
                r["http"])
        u = f"http://127.0.0.1:{port}/"
        _, acc0, req0 = stub_status(port)
        rc, r, err = wharf_json(["churn", "-c", "4", "-n", "200", "-r", "2", u])
        _, acc1, req1 = stub_status(port)
        t.check(rc == 0 and r["errors"]["total"] == 0, "churn against nginx", (rc, err, r))
        # urllib opens a connection per stub_status read: the later one is in the difference.
        t.check(acc1 - acc0 - 1 == 200 and req1 - req0 - 1 == 400,
                "nginx accepted 200 connections and answered 400 requests",
                (acc1 - acc0 - 1, req1 - req0 - 1))
        p2 = subprocess.Popen([WHARF, "hold", "-c", "30", "-d", "2s", "--json", u],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        active = stub_status(port)[0]
        out, _ = p2.communicate(timeout=30)
        t.check(p2.returncode == 0, "hold against nginx", (p2.returncode, out[-500:]))
        t.check(active >= 31, "nginx saw the 30 held connections (and the stub read)", active)
    finally:
        if p2:
            proc.stop(p2)
        proc.stop(p, group=True)
        shutil.rmtree(d, ignore_errors=True)


# ---- per-request latency under pipelining ------------------------------------------

DELAY_S = 0.040  # request k (per connection) waits this long when k % 5 == 2
P, N = 4, 60


def delay_of(k):
    return DELAY_S if k % 5 == 2 else 0.0


def expected_latencies():
    """The server answers in order, request k after its own delay and after every earlier
    answer (head-of-line); the client refills its window of P when an answer arrives:
    request k + P leaves when answer k arrives. Latency of k = answer k - send k."""
    send, done = [0.0] * N, [0.0] * N
    for k in range(N):
        if k >= P:
            send[k] = done[k - P]
        start = max(done[k - 1] if k else 0.0, send[k])
        done[k] = start + delay_of(k)
    return sorted(done[k] - send[k] for k in range(N))


class DelayServer:
    """HTTP/1.1 on loopback: answers each request of a connection in order, the k-th
    after delay_of(k) seconds (a thread per connection)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.th = threading.Thread(target=self.accept, daemon=True)
        self.th.start()

    def accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf, k = b"", 0
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                _, buf = buf.split(b"\r\n\r\n", 1)
                time.sleep(delay_of(k))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                k += 1

    def close(self):
        self.stopping = True
        self.sock.close()


def pct(sorted_v, p):
    return sorted_v[min(len(sorted_v) - 1, max(0, int(round(p / 100 * len(sorted_v) + 0.5)) - 1))]


def pipelined_run():
    """One run against the delaying server; the list of what is off (empty: all near)."""
    srv = DelayServer()
    try:
        rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-P", str(P), "-n", str(N),
                                 f"http://127.0.0.1:{srv.port}/"])
    finally:
        srv.close()
    t.check(rc == 0 and r["latency"]["count"] == N, f"{N} responses timed", (rc, err, r))
    exp = expected_latencies()
    lat, off = r["latency"], []
    for name, want in (("p50_us", pct(exp, 50)), ("p90_us", pct(exp, 90)),
                       ("mean_us", sum(exp) / N)):
        got = lat[name] / 1e6
        if abs(got - want) > 0.010 + 0.25 * want:
            off.append(f"{name} {got * 1e3:.1f} ms, want {want * 1e3:.1f}")
    # One late wake-up of the server's sleep can stretch the maximum: bound it below only.
    if lat["max_us"] / 1e6 < 0.75 * exp[-1]:
        off.append(f"max_us {lat['max_us'] / 1e3:.1f} ms, want >= {0.75 * exp[-1] * 1e3:.1f}")
    # The sorted expectation has a few zero-wait requests; so must the measurement.
    if lat["min_us"] >= 10000:
        off.append(f"min_us {lat['min_us'] / 1e3:.1f} ms, want < 10")
    return off


@t.test
def pipelined_latency_is_per_request():
    # A stall of the shared machine (a late sleep of the test server) can move a run's
    # percentiles: up to three runs, one must match. A per-batch measure (wrk's) is off in
    # every run (p50 near 0 instead of 40 ms).
    tries = []
    for _ in range(3):
        off = pipelined_run()
        if not off:
            return
        tries.append(off)
    t.check(False, "latencies per request as computed, in one of three runs", tries)

if __name__ == "__main__":
    t.main()

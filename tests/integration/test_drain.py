"""Leaving a balancer's pool without failing a request: GET /healthz and --drain-delay.

The stop sequence (server/drain_state.h) in order, watched from outside: a client
polling /healthz and /stats on fresh connections, one sending HTTP requests on
keep-alive connections, one sending frames, and one that holds a half-sent request to
look at the draining phase from inside it. Then a second SIGTERM (cuts at once),
SIGHUP (reloads, never drains), /healthz for clients --stats-allow refuses, the
shipped unit's stop timeout, and the whole point: two wharfd behind HAProxy
(`option httpchk GET /healthz`), one stopped under a steady wrk load, no request
failed. Last, --defer-accept: clients the kernel still held back at SIGTERM are served
through the grace, not reset by the listeners' close.

Every server here runs on the harness's backend (tests/run-all runs this suite once
per backend). Delays are short (0.5-1 s)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from wharfkit import proc
from wharfkit.harness import (ROOT, WHARFD, Server, Suite, frame, free_port, read_frame, run,
                              wait_until)
from wharfkit.net import http_get
from wharfkit.netns import NetNS
from wharfkit.server import duration_s

t = Suite(__file__)
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
KEEP_LISTENING = "listening on through the drain's grace"  # server/drain_state.h


def read_response(sock):
    """(status, headers lower-case, body) of one Content-Length response on sock."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response ({len(data)} bytes)")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of a body")
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:n]


def closed_by_server(sock, timeout=5):
    """The server closed sock (EOF or reset) within timeout, with nothing more sent."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except OSError:
        return False


class Poller(threading.Thread):
    """GET /healthz and /stats on fresh connections every 50 ms: samples of
    (time, /healthz status or None when refused, /stats' drain.state or None)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.samples, self.stop = port, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            h = http_get(self.port, "/healthz", timeout=2)
            st = http_get(self.port, "/stats", timeout=2)
            state = json.loads(st[2])["drain"]["state"] if st and st[0] == 200 else None
            self.samples.append((time.monotonic(), h[0] if h else None, state))
            self.stop.wait(0.05)

    def phases(self):
        """The /healthz answers in order, repeats folded: [200, 503, None] expected."""
        out = []
        for _, status, _ in self.samples:
            if not out or out[-1] != status:
                out.append(status)
        return out


class HttpClient(threading.Thread):
    """GET / on a keep-alive connection until `until`, opening a new one whenever a
    response says Connection: close. Every response: (time sent, status, that header,
    whether the server then closed). failures: requests without a complete 200."""

    def __init__(self, port, until):
        super().__init__(daemon=True)
        self.port, self.until = port, until
        self.responses, self.failures, self.connections = [], [], 0

    def run(self):
        sock = None
        while time.monotonic() < self.until:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    self.connections += 1
                sent = time.monotonic()
                sock.sendall(b"GET / HTTP/1.1\r\nHost: drain\r\n\r\n")
                status, headers, _ = read_response(sock)
                close = headers.get("connection", "").lower() == "close"
                self.responses.append((sent, status, close, close and closed_by_server(sock)))
                if status != 200:
                    self.failures.append(f"status {status}")
                if close:
                    sock.close()
                    sock = None
            except OSError as e:
                self.failures.append(repr(e))
                sock = None
            time.sleep(0.01)
        if sock:
            sock.close()


class FrameClient(threading.Thread):
    """Frames on one connection until `until` (times of the answers; failures), then
    idle: `closed_at` is when the server closed it (the drain after the delay)."""

    def __init__(self, port, until):
        super().__init__(daemon=True)
        self.port, self.until = port, until
        self.answered, self.failures, self.closed_at = [], [], None

    def run(self):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError as e:
            self.failures.append(repr(e))
            return
        i = 0
        while time.monotonic() < self.until:
            try:
                sock.sendall(frame(b"f%d" % i))
                if read_frame(sock) != b"F%d" % i:
                    self.failures.append(f"frame {i}: wrong answer")
                self.answered.append(time.monotonic())
            except Exception as e:  # noqa: BLE001 (a reset, a short read: a failure)
                self.failures.append(repr(e))
                break
            i += 1
            time.sleep(0.01)
        if closed_by_server(sock, timeout=10):
            self.closed_at = time.monotonic()
        sock.close()


def log_lines_in_order(log, *needles):
    """Each needle on a line after the previous one's."""
    at = 0
    for n in needles:
        at = log.find(n, at)
        if at < 0:
            return False
    return True


@t.test
def stop_sequence_serving_delay_draining_exit():
    delay = 1.0
    # One worker: the one that answers the first 503 is the one every later request
    # reaches, so "Connection: close from then on" is exact, not a race between workers.
    with Server("http", "frame", workers=1,
                extra=["--drain-delay", "1s", "--shutdown-timeout", "5s"]) as s:
        t.check("on SIGTERM: drain delay 1.0 s, shutdown timeout 5.0 s" in s.log(),
                "the ready line shows the delay", s.log())
        held = s.connect("http")  # a request half sent: the drain must wait for it
        held.sendall(b"GET /stats HTTP/1.1\r\nHost: drain\r\n")
        poller = Poller(s.port["http"])
        poller.start()
        time.sleep(0.3)
        # The clients stop a little before the delay ends, as clients behind a balancer
        # that has taken this server out do: after it, the listeners close.
        until = time.monotonic() + 0.3 + 0.6 * delay
        http, frames = HttpClient(s.port["http"], until), FrameClient(s.port["frame"], until)
        http.start()
        frames.start()
        time.sleep(0.3)
        sigterm = time.monotonic()
        s.signal(signal.SIGTERM)
        t.check(wait_until(lambda: None in [p[1] for p in poller.samples[-1:]], 10),
                "the listener closes after the delay", poller.phases())
        # Draining now: the held request is completed and answered, from inside the phase.
        held.settimeout(5)
        held.sendall(b"\r\n")
        status, headers, body = read_response(held)
        t.check(status == 200 and headers.get("connection") == "close",
                "draining answers what was received, with Connection: close", (status, headers))
        t.check(json.loads(body)["drain"]["state"] == "draining", "/stats: draining",
                body[:200])
        held.close()
        code = s.proc.wait(10)
        exited = time.monotonic()
        poller.stop.set()
        for th in (poller, http, frames):
            th.join(10)
        t.check(code == 0, "exit 0", code)
        t.check(exited - sigterm >= delay, "the exit comes after the delay", exited - sigterm)
        t.check(poller.phases() == [200, 503, None], "/healthz: 200, then 503, then refused",
                poller.phases())
        states = []
        for _, _, st in poller.samples:
            if st and (not states or states[-1] != st):
                states.append(st)
        # A poller connection the kernel still held (TCP_DEFER_ACCEPT) when the delay ended
        # is accepted in the drain's grace and served: it may read "draining" last.
        t.check(states in (["serving", "delay"], ["serving", "delay", "draining"]),
                "/stats: serving, then delay (then draining, at most)", states)
        first_503 = min(tm for tm, h, _ in poller.samples if h == 503)
        t.check(not http.failures and not frames.failures, "no request failed",
                (http.failures[:5], frames.failures[:5]))
        after = [r for r in http.responses if r[0] > first_503]
        print(f"# {len(http.responses)} HTTP responses on {http.connections} connections, "
              f"{len(after)} after the first 503; {len(frames.answered)} frames answered")
        t.check(after and all(r[2] for r in after),
                "every response once /healthz says 503 carries Connection: close",
                [r for r in after if not r[2]][:3])
        t.check(all(r[3] for r in after), "and the connection closes after it")
        t.check(any(tm > sigterm for tm in frames.answered),
                "frames answered during the delay on a connection opened before it")
        t.check(frames.closed_at and frames.closed_at >= sigterm + delay,
                "the frame connection stays open through the delay, closed by the drain",
                frames.closed_at and frames.closed_at - sigterm)
        t.check(log_lines_in_order(s.log(), "draining: GET /healthz answers 503",
                                   "drain delay over: shutting down", "exit: "),
                "the log: delay, drain, exit", s.log()[-1500:])


class Notify:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wharf-drain-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def wait_for(self, prefix, timeout=10):
        """The first message starting with prefix (others are skipped), or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                return None
            if msg.startswith(prefix):
                return msg
        return None

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@t.test
def second_sigterm_cuts_and_sighup_in_the_delay_does_not_reload():
    n = Notify()
    try:
        with Server("http", extra=["--drain-delay", "5s", "--shutdown-timeout", "10s"],
                    env={"NOTIFY_SOCKET": n.path}) as s:
            t.check(n.wait_for("READY=1"), "READY=1")
            held = s.connect("http")
            held.sendall(b"GET / HTTP/1.1\r\nHost: drain\r\n")  # half a request
            s.signal(signal.SIGTERM)
            stopping = n.wait_for("STOPPING=1")
            t.check(stopping and "STATUS=draining: /healthz answers 503 for 5.0 s" in stopping,
                    "systemd hears STOPPING=1 and that it drains", stopping)
            t.check(wait_until(lambda: (http_get(s.port["http"], "/healthz") or [0])[0] == 503,
                               5), "/healthz says 503")
            s.signal(signal.SIGHUP)
            t.check(wait_until(lambda: "SIGHUP while draining: not reloading" in s.log(), 5),
                    "SIGHUP in the delay: not a reload", s.log()[-500:])
            t.check(n.wait_for("RELOADING=1", timeout=0.3) is None, "no RELOADING=1")
            t.check((http_get(s.port["http"], "/healthz") or [0])[0] == 503, "still 503")
            s.signal(signal.SIGTERM)
            try:
                code = s.proc.wait(3)  # the delay alone is 5 s, the drain up to 10 s more
            except subprocess.TimeoutExpired:
                code = "still running 3 s after the second SIGTERM"
            t.check(code == 0, "the second SIGTERM cuts at once, exit 0", code)
            t.check(closed_by_server(held, 1), "the half-sent request's connection is cut")
            held.close()
            t.check("Terminated again: closing every connection now" in s.log(),
                    "the log says it cut", s.log()[-500:])
    finally:
        n.close()


@t.test
def sighup_reloads_and_does_not_drain():
    d = tempfile.mkdtemp(prefix="wharf-drain-")
    conf = os.path.join(d, "wharfd.conf")
    try:
        with open(conf, "w") as f:
            f.write("mode = upper\ndrain-delay = 500ms\n")
        with Server("http", "frame", extra=["--config", conf]) as s:
            c = s.connect("http")
            c.sendall(b"GET / HTTP/1.1\r\nHost: drain\r\n\r\n")
            t.check("connection" not in read_response(c)[1], "keep-alive before")
            with open(conf, "w") as f:
                f.write("mode = echo\ndrain-delay = 500ms\n")
            s.signal(signal.SIGHUP)
            t.check(wait_until(lambda: "reloaded " in s.log(), 5), "reloaded", s.log()[-500:])
            f = s.connect("frame")
            f.sendall(frame(b"after"))
            t.check(read_frame(f) == b"after", "the reload applied (--mode echo)")
            time.sleep(0.7)  # longer than the delay: nothing began
            h = http_get(s.port["http"], "/healthz")
            t.check(h and h[0] == 200 and h[2] == b"ok\n", "/healthz still 200 ok", h)
            t.check(s.stats()["drain"] == {"state": "serving", "delay_ms": 500},
                    "/stats: serving", s.stats()["drain"])
            c.sendall(b"GET / HTTP/1.1\r\nHost: drain\r\n\r\n")
            status, headers, _ = read_response(c)
            t.check(status == 200 and "connection" not in headers,
                    "the kept-alive connection is still kept alive", headers)
            c.close()
            f.close()
            t.check("draining" not in s.log(), "no drain in the log", s.log()[-500:])
    finally:
        shutil.rmtree(d, ignore_errors=True)


@t.test
def healthz_route_and_metrics():
    with Server("http", extra=["--drain-delay", "500ms"]) as s:
        r = run(["curl", "-sS", "--max-time", "10", "-i", s.url("/healthz?probe=1")])
        t.check(r.stdout.startswith("HTTP/1.1 200 OK") and r.stdout.endswith("\n\nok\n"),
                "GET /healthz: 200 ok", r.stdout)
        r = run(["curl", "-sS", "--max-time", "10", "-I", s.url("/healthz")])
        t.check(r.stdout.startswith("HTTP/1.1 200 OK") and "Content-Length: 3" in r.stdout,
                "HEAD /healthz", r.stdout)
        r = run(["curl", "-sS", "--max-time", "10", "-i", "-d", "x", s.url("/healthz")])
        t.check(r.stdout.startswith("HTTP/1.1 405") and "Allow: GET, HEAD" in r.stdout,
                "POST /healthz: 405 with Allow", r.stdout)
        m = http_get(s.port["http"], "/metrics")[2].decode()
        for line in ('wharf_drain_state{state="serving"} 1', 'wharf_drain_state{state="delay"} 0',
                     "wharf_drain_delay_seconds 0.500"):
            t.check("\n" + line + "\n" in m, f"/metrics: {line}", m[-600:])


@t.test
def healthz_is_open_to_clients_stats_allow_refuses():
    addr = "198.18.21.1"
    with NetNS(f"wharf-drain-{os.getpid()}") as ns:
        ns.ip("addr", "add", f"{addr}/32", "dev", "lo")
        with ns.entered():
            # The client connects from addr, which is not loopback: /stats is refused.
            with Server("http", host=addr) as s:
                st = http_get(s.port["http"], "/stats", host=addr)
                h = http_get(s.port["http"], "/healthz", host=addr)
        t.check(st and st[0] == 403, "/stats: 403 for a client not on loopback", st)
        t.check(h and h[0] == 200 and h[2] == b"ok\n", "/healthz: 200 for it all the same", h)


def unit_value(text, key):
    m = re.search(rf"^{key}=(\S+)", text, re.M)
    return m.group(1) if m else None


@t.test
def shipped_unit_waits_longer_than_delay_plus_shutdown_timeout():
    sysd = os.path.join(ROOT, "server", "systemd")
    with open(os.path.join(sysd, "wharfd.service")) as f:
        unit = f.read()
    with open(os.path.join(sysd, "wharfd.conf")) as f:
        conf = f.read()
    defaults = subprocess.run([WHARFD, "--print-defaults"], capture_output=True, text=True,
                              timeout=10, check=True).stdout

    def setting(name):
        """The shipped file's value, else the built-in default."""
        for text in (conf, defaults):
            m = re.search(rf"^{name}\s*=\s*(\S+)", text, re.M)
            if m:
                return duration_s(m.group(1))
        raise AssertionError(name)

    stop = duration_s(unit_value(unit, "TimeoutStopSec"))
    need = setting("drain-delay") + setting("shutdown-timeout")
    print(f"# TimeoutStopSec {stop:g} s; drain-delay + shutdown-timeout {need:g} s")
    t.check(stop > need, "TimeoutStopSec exceeds drain-delay + shutdown-timeout", (stop, need))
    for name, text in (("wharfd.conf", conf), ("wharfd.service", unit)):
        t.check("TimeoutStopSec" in text and "drain-delay" in text,
                f"{name} says to raise TimeoutStopSec with the delay and the timeout")


HAPROXY_CFG = """global
    maxconn 1000
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    # No retries and no redispatch: a request the backend fails reaches wrk as an error.
    retries 0

frontend web
    bind 127.0.0.1:{front}
    default_backend wharf

frontend admin
    bind 127.0.0.1:{admin}
    stats enable
    stats uri /

backend wharf
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 200ms fall 2 rise 2
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
"""


def haproxy_states(admin_port):
    """{server name: status} from HAProxy's stats page (CSV)."""
    r = http_get(admin_port, "/;csv")
    if not r or r[0] != 200:
        return {}
    rows = [line.split(",") for line in r[2].decode().splitlines() if line.startswith("wharf,")]
    return {row[1]: row[17] for row in rows if row[1] not in ("BACKEND",)}


def wrk_failures(out):
    """Non-2xx/3xx responses and socket errors in wrk's report (it prints those lines only
    when there are any)."""
    bad = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        bad += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        bad += sum(int(x) for x in m.groups())
    return bad


@t.test
def haproxy_takes_a_draining_backend_out_without_a_failed_request():
    t.check(os.access(HAPROXY, os.X_OK), "haproxy is installed ('make deps')", HAPROXY)
    extra = ["--drain-delay", "1s", "--shutdown-timeout", "3s"]
    d = tempfile.mkdtemp(prefix="wharf-drain-haproxy-")
    hp = None
    try:
        with Server("http", extra=extra) as a, Server("http", extra=extra) as b:
            front, admin = free_port(), free_port()
            cfg = os.path.join(d, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(HAPROXY_CFG.format(front=front, admin=admin, a=a.port["http"],
                                           b=b.port["http"]))
            log = open(os.path.join(d, "haproxy.log"), "w+")
            hp = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            up = wait_until(lambda: haproxy_states(admin) == {"a": "UP", "b": "UP"}, 10)
            t.check(up, "HAProxy sees both backends UP", haproxy_states(admin))
            wrk = subprocess.Popen(["wrk", "-t1", "-c10", "-d4s", f"http://127.0.0.1:{front}/"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                time.sleep(1)
                b.signal(signal.SIGTERM)
                down = wait_until(lambda: haproxy_states(admin).get("b", "").startswith("DOWN"),
                                  5)
                b_code = b.proc.wait(10)
                out = wrk.communicate(timeout=30)[0]
            finally:
                proc.stop(wrk, 5)
            log.seek(0)
            hlog = log.read()
            log.close()
            m = re.search(r"(\d+) requests in", out)
            print(f"# wrk through HAProxy: {m.group(1) if m else '?'} requests, "
                  f"{wrk_failures(out)} failed; b exited {b_code}")
            t.check(down, "HAProxy's health check took b out", haproxy_states(admin))
            t.check(re.search(r"Server wharf/b is DOWN", hlog), "HAProxy logged b DOWN",
                    hlog[-800:])
            t.check(m and int(m.group(1)) > 0, "wrk ran", out)
            t.check(wrk_failures(out) == 0, "no request failed", out)
            t.check(b_code == 0, "b exited 0 after its delay and drain", b.log()[-800:])
            t.check(a.alive(), "a still serves")
    finally:
        proc.stop(hp, 5)
        shutil.rmtree(d, ignore_errors=True)


def accepted(s):
    return sum(w["accepted"] for w in s.stats()["workers"])


def eof_not_reset(sock, timeout=5):
    """'eof' when the server closed sock cleanly, 'reset', or 'open' when it did neither."""
    sock.settimeout(timeout)
    try:
        return "eof" if sock.recv(1) == b"" else "data"
    except ConnectionResetError:
        return "reset"
    except OSError:
        return "open"


@t.test
def defer_accept_drain_serves_clients_the_kernel_still_held():
    # With TCP_DEFER_ACCEPT a client that has connected but not sent yet is in the
    # kernel's SYN queue, not accepted: the drain must keep the listeners open through
    # its grace (the option cleared) so that its request, sent 0.3 s into the drain, is
    # answered instead of reset by the listener's close. One worker accepting itself,
    # two fed by the acceptor thread, two with their own listeners (reuseport).
    for workers, more in ((1, []), (2, []), (2, ["--dispatch", "reuseport"])):
        name = f"--workers {workers} {' '.join(more)}".strip()
        extra = ["--defer-accept", "1s", "--shutdown-timeout", "10s"] + more
        with Server("http", "frame", workers=workers, check_exit=False, extra=extra) as s:
            before = accepted(s)
            t_conn = time.monotonic()
            http, frames, silent = s.connect("http"), s.connect("frame"), s.connect("http")
            time.sleep(0.2)
            delta = accepted(s) - before
            if time.monotonic() - t_conn < 0.8:  # else the kernel may have promoted them
                t.check(delta == 1, f"{name}: the silent clients are not accepted yet (only "
                        "the /stats request's connection is)", delta)
            t0 = time.monotonic()
            s.signal(signal.SIGTERM)
            time.sleep(0.3)
            try:
                http.sendall(b"GET / HTTP/1.1\r\nHost: d\r\n\r\n")
                frames.sendall(frame(b"late"))
                status, headers, body = read_response(http)
                t.check(status == 200 and headers.get("connection") == "close",
                        f"{name}: a deferred HTTP client's request is answered", (status, headers))
                t.check(read_frame(frames) == b"LATE", f"{name}: a deferred frame is answered")
            except (ConnectionError, OSError) as e:
                t.check(False, f"{name}: deferred clients answered, not reset", repr(e))
            t.check(eof_not_reset(http) == "eof" and eof_not_reset(frames) == "eof",
                    f"{name}: then closed cleanly")
            t.check(eof_not_reset(silent) == "eof",
                    f"{name}: a client silent through the grace is closed, not reset")
            code = s.wait(10)
            took = time.monotonic() - t0
            t.check(code == 0 and took < 3, f"{name}: exit 0 after the grace", (code, took))
            t.check(KEEP_LISTENING in s.log(), f"{name}: the log says why it listened on",
                    s.log()[-800:])
            for c in (http, frames, silent):
                c.close()
    # Nobody held back by the kernel: the listeners close at once, no grace is waited for.
    with Server("http", workers=1, check_exit=False, extra=["--defer-accept", "1s"]) as s:
        c = s.connect("http")
        c.sendall(b"GET / HTTP/1.1\r\nHost: d\r\n\r\n")
        read_response(c)
        c.close()
        s.signal(signal.SIGTERM)
        t.check(s.wait(10) == 0, "idle: exit 0")
        t.check(KEEP_LISTENING not in s.log(), "idle: the listeners closed at once",
                s.log()[-800:])


t.main()

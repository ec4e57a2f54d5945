"""Integration-test harness: start the real wharfd on loopback, talk to it, report.

The integration, client, systemd and torture suites use it. Every test file does:

    from wharfkit.harness import Suite, Server
    t = Suite(__file__)

    @t.test
    def seed_scenario():
        with Server("raw", mode="upper") as s:
            ...
            t.check(reply == b"HI", "upper-cased reply", reply)

    t.main()

and prints "ok - name" / "FAIL - name: why" per test, then "N passed, M failed".
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

from .net import accepts, free_port, wait_until  # noqa: F401 (for the suites)
from .server import StartFailed, Wharfd

from . import ROOT
BUILD = os.path.join(ROOT, os.environ.get("WHARF_BUILD", "build"))
WHARFD = os.path.join(BUILD, "wharfd")
WHARF = os.path.join(BUILD, "wharf")
SANITIZED = "asan" in BUILD or "tsan" in BUILD
# The event loop every Server gets (tests/run-all runs the suites once per backend):
# "epoll" (the default), "io_uring", or "auto" (no --backend flag: wharfd's own choice).
BACKEND = os.environ.get("WHARF_BACKEND", "epoll")


class CheckFailed(Exception):
    pass


class Server(Wharfd):
    """wharfkit's Wharfd on loopback with one listener per protocol asked for, on this
    build, on BACKEND, with test semantics: failures are CheckFailed, and a with-block
    that ends normally checks wharfd's exit status and (sanitized builds) its log.

    Server("raw", "http", mode="echo", extra=["--idle-timeout", "1"]) gives
    s.port["raw"], s.port["http"]; stopped (SIGTERM, SIGKILL after a grace period) when
    the with-block ends. args: a prefix (taskset, chrt) goes in front.
    """

    def __init__(self, *protos, extra=(), check_exit=True, **kw):
        extra = list(extra)
        if BACKEND != "auto" and "--backend" not in extra:
            extra = ["--backend", BACKEND] + extra
        super().__init__(*protos, binary_path=WHARFD, extra=extra, **kw)
        self.check_exit = check_exit

    def start(self, tries=3):
        try:
            return super().start(tries)
        except StartFailed as e:
            raise CheckFailed(str(e))

    def _accepts(self, proto):
        return accepts(self.host, self.port[proto])

    def connect(self, proto=None, timeout=10):
        return socket.create_connection((self.host, self.port[proto or self.protos[0]]),
                                        timeout=timeout)

    def __exit__(self, *exc):
        code = self.stop()
        if self.check_exit and exc[0] is None and code not in (0, None):
            raise CheckFailed(f"wharfd exited with status {code}: " + self.log()[-3000:])
        if SANITIZED and exc[0] is None and "Sanitizer" in self.log():
            raise CheckFailed("sanitizer report: " + self.log()[-5000:])
        if self.log_file:
            self.log_file.close()
        return False


def recv_exact(sock, n):
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise CheckFailed(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def recv_until_close(sock, limit=1 << 26):
    data = bytearray()
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def frame(payload):
    return len(payload).to_bytes(4, "big") + payload


def read_frame(sock):
    n = int.from_bytes(recv_exact(sock, 4), "big")
    return recv_exact(sock, n)


def count_frame_replies(conns, timeout=3):
    """Send one frame on each connection: (how many were answered, how many were not:
    closed, reset or silent), as when a server sheds what it cannot take."""
    served = shed = 0
    for c in conns:
        c.settimeout(timeout)
        try:
            c.sendall(frame(b"q"))
            data = c.recv(5)
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            data = b""
        if data == frame(b"Q"):
            served += 1
        else:
            shed += 1
    return served, shed


def check_sheds_then_recovers(t, s, label):
    """s (a frame server) has just had its file limit lowered to 48: 80 connections must
    be partly served and partly shed, without a busy loop or a log line per shed one, and
    a connection after they close must be served again."""
    conns = [s.connect("frame") for _ in range(80)]
    served, shed = count_frame_replies(conns)
    cpu0 = s.cpu_seconds()
    time.sleep(1.5)
    cpu = s.cpu_seconds() - cpu0
    logged = s.log().count("out of file descriptors")
    print(f"# {label}: {served} served, {shed} shed; CPU while idle {cpu:.2f}s")
    t.check(served >= 20 and shed >= 20, "some served, the rest shed", (served, shed))
    t.check(cpu < 0.3, "no busy loop", cpu)
    t.check(logged <= 2, "logged at most once a second", logged)
    for c in conns:
        c.close()
    time.sleep(0.3)
    c = s.connect("frame")
    c.settimeout(5)
    c.sendall(frame(b"back"))
    t.check(read_frame(c) == b"BACK", "recovers when connections close")
    c.close()


def restart_at_once(backend, restarts, conns=100, burst="250ms", say=print):
    """`restarts` times: a burst of load on a running wharfd (one worker, a frame and an
    HTTP listener on ports that stay the same; wharf bench, `conns` connections for
    `burst`), SIGTERM, and the same command again the moment the old process has exited,
    as systemctl restart does. The new process must bind and answer. A start that fails
    is counted and tried again 200 ms later. Returns a dict: failures (text per failed
    start), codes (the old processes' exit statuses), bench_errors, requests (answered in
    the bursts), seconds."""
    ports = {"frame": free_port(), "http": free_port()}
    extra = ["--workers", "1", "--backend", backend]
    out = {"failures": [], "codes": [], "bench_errors": 0, "requests": 0, "seconds": 0.0}
    t0 = time.monotonic()

    def ready(s):
        """Bound and serving: Server.start() waits for the "ready:" line (a connection
        alone is no proof: the old process's listener may still be there to take it)."""
        return s.start()

    def start(i):
        s = Server("frame", "http", ports=ports, extra=extra, check_exit=False)
        try:
            return ready(s)
        except CheckFailed:
            last = (s.log().strip().splitlines() or ["(no log)"])[-1]
            out["failures"].append(f"start {i}: exit {s.proc.poll()}: {last}")
            say(f"# {backend}: start {i} failed: {last}")
            s.stop()
            s.log_file.close()
            time.sleep(0.2)
            return ready(Server("frame", "http", ports=ports, extra=extra, check_exit=False))

    s = start(0)
    try:
        for i in range(1, restarts + 1):
            b = run([WHARF, "bench", "-t", "1", "-c", str(conns), "-d", burst, "--json",
                     "--allow-errors", f"frame://127.0.0.1:{ports['frame']}"], timeout=30)
            try:
                report = json.loads(b.stdout)
            except ValueError:
                raise CheckFailed(f"{backend}: wharf bench: {b.stderr[-300:]}")
            out["bench_errors"] += report["errors"]["total"]
            out["requests"] += report["requests"]["ok"]
            out["codes"].append(s.stop())
            if SANITIZED and "Sanitizer" in s.log():
                out["failures"].append(f"stop {i}: sanitizer report: {s.log()[-3000:]}")
            s.log_file.close()
            s = start(i)
            try:
                with s.connect("frame", timeout=5) as c:
                    c.sendall(frame(b"restart %d" % i))
                    reply = read_frame(c)
            except (OSError, CheckFailed) as e:
                reply = repr(e)
            if reply != b"RESTART %d" % i:
                out["failures"].append(f"start {i}: a request got {reply!r}")
    finally:
        out["codes"].append(s.stop())
        if s.log_file:
            s.log_file.close()
    out["seconds"] = time.monotonic() - t0
    return out


def http_get_raw(sock, request):
    """Send raw request bytes; return everything until the server closes."""
    sock.sendall(request)
    return recv_until_close(sock)


def run(cmd, timeout=60, input=None, check=False):
    """Run a command; returns CompletedProcess with text output."""
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                          check=check)


class Suite:
    def __init__(self, path):
        self.name = os.path.basename(path)
        self.tests = []
        self.passed = 0
        self.failed = 0

    def test(self, fn):
        self.tests.append(fn)
        return fn

    @staticmethod
    def check(cond, what, detail=None):
        if not cond:
            msg = what if detail is None else f"{what} (got {detail!r})"
            raise CheckFailed(msg[:2000])

    def main(self):
        only = sys.argv[1:]
        for fn in self.tests:
            if only and fn.__name__ not in only:
                continue
            t0 = time.monotonic()
            try:
                fn()
            except CheckFailed as e:
                self.failed += 1
                print(f"FAIL - {fn.__name__}: {e}", flush=True)
                continue
            except Exception:
                self.failed += 1
                print(f"FAIL - {fn.__name__}: exception\n{traceback.format_exc()}", flush=True)
                continue
            self.passed += 1
            print(f"ok - {fn.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)

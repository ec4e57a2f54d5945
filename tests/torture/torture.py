"""Torture-suite machinery: the server under attack, the steady load that must keep
being served while the attack runs, RSS/CPU sampling, mass connections, the result
table. The scenarios themselves are in scenarios.py; `tests/torture/run` runs them.

Layout of every scenario (see README.md):

    wharfd (1 worker, pinned to CPU 0, SCHED_FIFO when allowed)
      frame listener  <- steady load: `wharf bench -R RATE` (pinned to CPU 1, SCHED_FIFO)
      http listener   <- /stats
      attack listener(s) <- the attack (CPU 1, normal priority)

1. the steady load runs alone for a few seconds: the "before" figures;
2. the steady load runs again while the attack runs: the "during" figures;
3. PASS only when the steady client saw no error, got its fixed rate, had a p99
   within the bound, the server's RSS stayed under the scenario's stated bound and
   every scenario-specific check held (counters, closes, replies).
"""

import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

from wharfkit import harness
from wharfkit.harness import (SANITIZED, WHARF, WHARFD, CheckFailed, Server,  # noqa: F401
                     free_port, wait_until)
from wharfkit import pin
from wharfkit.netns import NetNS  # noqa: F401 (for the scenarios)
from wharfkit.sampler import Sampler, thread_cpu_seconds  # noqa: F401 (for the scenarios)

BACKEND = getattr(harness, "BACKEND", "auto")  # the event loop harness.Server asks for

STEADY_RATE = int(os.environ.get("TORTURE_RATE", "2000"))   # requests/s of the steady load
STEADY_CONNS = 20
# p99 "during" must be <= P99_FACTOR x max(p99 "before", P99_FLOOR_US). The floor: on a
# 2-core VM shared with other people's benchmarks a p99 below a millisecond is scheduler
# noise (the same steady load measured 0.16 ms and 10 ms minutes apart without SCHED_FIFO).
P99_FACTOR = 3.0
P99_FLOOR_US = float(os.environ.get("TORTURE_P99_FLOOR_US", "5000"))
# ASan makes every request a few times slower: a larger floor. TSan (5-15x) saturates the
# one server core in the bulk scenarios, so latency and rate are reported, not checked.
TSAN = "tsan" in harness.BUILD
if SANITIZED:
    P99_FLOOR_US *= 2
RATE_MIN_FRACTION = 0.97   # requests/s during >= 97% of the fixed rate
# Inside `make test` timings are never pass/fail (the CI machine is shared and its speed
# unknown). The quick subset sets this to False: rate and p99 are then reported, and
# `make torture` is where they are checked.
TIMING_CHECKED = True


def log(msg):
    print(f"# {msg}", flush=True)


# ---- CPU placement and priority ------------------------------------------------------

SERVER_CPU = str(pin.server_cpu())
CLIENT_CPU = str(pin.client_cpu())
RT = pin.rt_works()
SERVER_PREFIX = pin.prefix(SERVER_CPU, rt=True)
STEADY_PREFIX = pin.prefix(CLIENT_CPU, rt=True)
ATTACK_PREFIX = pin.prefix(CLIENT_CPU)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin_self():
    """The Python attack code runs on the client CPU too, at normal priority."""
    pin.pin_self(CLIENT_CPU)


# ---- the server ----------------------------------------------------------------------

class TServer(Server):
    """harness.Server, pinned (and SCHED_FIFO), with /proc figures."""

    def __init__(self, *protos, pin=True, **kw):
        super().__init__(*protos, **kw)
        if pin:
            self.prefix = SERVER_PREFIX + self.prefix

    def cpu_seconds(self):
        try:
            return super().cpu_seconds()
        except OSError:
            return 0.0

    def totals(self):
        return self.stats()["totals"]

    def active(self):
        return self.stats()["totals"]["active"]


def cpu_by_thread(pid, seconds):
    """Fraction of a core each thread used over the next `seconds`."""
    a = thread_cpu_seconds(pid)
    time.sleep(seconds)
    b = thread_cpu_seconds(pid)
    return {t: (b[t] - a.get(t, 0.0)) / seconds for t in b}


# ---- the steady load -----------------------------------------------------------------

class Steady:
    """`wharf bench -R RATE` on the steady listener, ended by SIGINT (which still
    reports); bounded by a duration cap in any case."""

    def __init__(self, port, host="127.0.0.1", rate=STEADY_RATE, conns=STEADY_CONNS):
        self.port, self.host, self.rate, self.conns = port, host, rate, conns
        self.proc = None
        self.result = None

    def start(self, cap_s=120):
        args = STEADY_PREFIX + [WHARF, "bench", "-t", "1", "-c", str(self.conns), "-R",
                                str(self.rate), "-d", f"{int(cap_s * 1000)}ms", "--json",
                                "--allow-errors", f"frame://{self.host}:{self.port}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        try:
            self.result = json.loads(out)
        except ValueError:
            raise CheckFailed(f"steady bench printed no report: {out[-500:]!r} {err[-500:]!r}")
        return self.result

    def run(self, seconds):
        self.start(seconds)
        try:
            self.proc.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            pass
        return self.stop()


def bench_figures(r):
    return {
        "rps": r["requests_per_sec"],
        "ok": r["requests"]["ok"],
        "sent": r["requests"]["sent"],
        "backlog": r["requests"].get("backlog", 0),
        "p99_us": r["latency"]["p99_us"],
        "p999_us": r["latency"]["p99_9_us"],
        "max_us": r["latency"]["max_us"],
        "errors": r["errors"]["total"],
        "errors_by_kind": {k: v for k, v in r["errors"].items() if k != "total" and v},
        "duration_s": r["duration_s"],
    }


# ---- results -------------------------------------------------------------------------

class Result:
    def __init__(self, name, title):
        self.name, self.title = name, title
        self.before = None       # bench_figures of the steady load alone
        self.during = None       # ... while the attack ran
        self.peak_rss_kib = 0
        self.hwm_kib = 0
        self.base_rss_kib = 0
        self.rss_bound_kib = None
        self.rss_bound_text = ""
        self.checks = []         # (ok, text)
        self.figures = []        # lines describing what was measured
        self.info_only = False   # a row shown for comparison, never a failure
        self.steady_errors_expected = False
        self.error = None
        self.seconds = 0.0
        self.base_cpu = 0.0       # server CPU (fraction of a core) under the steady load alone
        self.base_cpu_threads = {}
        self.retried = None       # set when a p99-only failure was run again
        self.softnet_drops = None  # loopback backlog drops while the attack ran

    def check(self, ok, text):
        self.checks.append((bool(ok), text))
        return ok

    def fig(self, text):
        self.figures.append(text)
        log(f"{self.name}: {text}")

    @property
    def failed(self):
        return [t for ok, t in self.checks if not ok] + ([self.error] if self.error else [])

    @property
    def verdict(self):
        if self.info_only:
            return "INFO"
        return "FAIL" if self.failed else "PASS"

    def steady_checks(self, quiet_fraction=RATE_MIN_FRACTION):
        """The common checks on the steady load."""
        b, d = self.before, self.during
        if not b or not d:
            self.check(False, "steady load measured before and during")
            return
        if not self.steady_errors_expected:
            kinds = f" {d['errors_by_kind']}" if d["errors_by_kind"] else ""
            self.check(d["errors"] == 0, f"steady client saw no error (saw {d['errors']}{kinds})")
        if TSAN or not TIMING_CHECKED:
            why = "under TSan" if TSAN else "inside make test (make torture checks them)"
            self.fig(f"steady rate {d['rps']:.0f}/s (fixed {STEADY_RATE}/s) and p99 "
                     f"{d['p99_us'] / 1000:.2f} ms (before {b['p99_us'] / 1000:.2f} ms) "
                     f"not checked {why}; reported only")
            self.check(b["errors"] == 0, f"baseline without error (saw {b['errors']})")
            return
        if not self.steady_errors_expected:
            self.check(d["rps"] >= quiet_fraction * STEADY_RATE,
                       f"steady load held its rate: {d['rps']:.0f}/s >= "
                       f"{quiet_fraction:.0%} of {STEADY_RATE}/s")
        self.check(b["errors"] == 0, f"baseline without error (saw {b['errors']})")
        bound = P99_FACTOR * max(b["p99_us"], P99_FLOOR_US)
        self.check(d["p99_us"] <= bound,
                   f"p99 during {d['p99_us'] / 1000:.2f} ms <= {P99_FACTOR:g} x "
                   f"max(before {b['p99_us'] / 1000:.2f} ms, floor {P99_FLOOR_US / 1000:g} ms)"
                   f" = {bound / 1000:.2f} ms")

    def rss_check(self):
        if self.rss_bound_kib is None:
            return
        peak = max(self.peak_rss_kib, 0)
        if SANITIZED:
            self.fig(f"RSS bound not checked under a sanitizer (peak {peak / 1024:.1f} MiB)")
            return
        self.check(peak <= self.rss_bound_kib,
                   f"peak RSS {peak / 1024:.1f} MiB <= bound {self.rss_bound_kib / 1024:.1f} MiB"
                   f" ({self.rss_bound_text})")


def fmt_ms(us):
    return "-" if us is None else f"{us / 1000:.2f}"


def table_rows(results):
    rows = []
    for r in results:
        b, d = r.before or {}, r.during or {}
        bound = "-" if r.rss_bound_kib is None else f"{r.rss_bound_kib / 1024:.0f}"
        if SANITIZED and r.rss_bound_kib is not None:
            bound += " (not checked)"
        errs = "-" if not d else str(d.get("errors", "-"))
        if d and r.steady_errors_expected and d.get("errors"):
            errs += "*"
        rows.append([
            r.name,
            f"{d.get('rps', 0):.0f} / {b.get('rps', 0):.0f}" if b and d else "-",
            f"{fmt_ms(d.get('p99_us'))} / {fmt_ms(b.get('p99_us'))}" if b and d else "-",
            f"{r.peak_rss_kib / 1024:.1f}" if r.peak_rss_kib else "-",
            bound,
            errs,
            r.verdict + (" (2nd run)" if r.retried else ""),
        ])
    return rows


HEADER = ["scenario", "req/s during / before", "p99 ms during / before", "peak RSS MiB",
          "RSS bound MiB", "steady errors", "result"]


def print_table(results, out=sys.stdout):
    rows = [HEADER] + table_rows(results)
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(HEADER))]
    line = "  ".join("-" * w for w in widths)
    for k, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)
        if k == 0:
            print(line, file=out)


def markdown_table(results):
    rows = table_rows(results)
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


# ---- many connections from Python ----------------------------------------------------

def sources(n, first=2):
    """n loopback source addresses 127.0.0.<first>..."""
    return [f"127.0.0.{first + i}" for i in range(n)]


def open_many(n, port, srcs=("127.0.0.1",), host="127.0.0.1", inflight=256, timeout=30,
              rcvbuf=None, sndbuf=None):
    """Open n TCP connections (non-blocking, at most `inflight` handshakes at a time,
    over the given source addresses). Returns (connected sockets, failures by errno)."""
    ep = select.epoll()
    pending = {}
    done, failed = [], {}
    made = 0
    deadline = time.monotonic() + timeout
    try:
        while (made < n or pending) and time.monotonic() < deadline:
            while made < n and len(pending) < inflight:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                if rcvbuf:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                if sndbuf:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
                src = srcs[made % len(srcs)]
                if src != "127.0.0.1" or len(srcs) > 1:
                    s.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
                    s.bind((src, 0))
                made += 1
                err = s.connect_ex((host, port))
                if err not in (0, 115):  # EINPROGRESS
                    failed[os.strerror(err)] = failed.get(os.strerror(err), 0) + 1
                    s.close()
                    continue
                pending[s.fileno()] = s
                ep.register(s.fileno(), select.EPOLLOUT)
            for fd, _ in ep.poll(0.05):
                s = pending.pop(fd)
                ep.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    failed[os.strerror(err)] = failed.get(os.strerror(err), 0) + 1
                    s.close()
                else:
                    done.append(s)
        for s in pending.values():
            failed["timeout"] = failed.get("timeout", 0) + 1
            s.close()
    finally:
        ep.close()
    return done, failed


def close_all(socks, linger0=False):
    for s in socks:
        try:
            if linger0:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        except OSError:
            pass


class Watch:
    """Watches sockets for the server's close (EOF or RST) with epoll, recording when
    and what arrived before it."""

    def __init__(self):
        self.ep = select.epoll()
        self.socks = {}
        self.closed_at = {}
        self.got = {}
        self.how = {}

    def add(self, s):
        self.socks[s.fileno()] = s
        self.got[s.fileno()] = b""
        self.ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)

    def poll(self, timeout):
        for fd, ev in self.ep.poll(timeout):
            s = self.socks.get(fd)
            if s is None or fd in self.closed_at:
                continue
            how = None
            try:
                while True:
                    data = s.recv(65536)
                    if not data:
                        how = "eof"
                        break
                    self.got[fd] += data[:256]
            except BlockingIOError:
                pass
            except ConnectionResetError:
                how = "rst"
            except OSError as e:
                how = e.strerror
            if how:
                self.closed_at[fd] = time.monotonic()
                self.how[fd] = how
                self.ep.unregister(fd)

    def open_count(self):
        return len(self.socks) - len(self.closed_at)

    def close(self):
        self.ep.close()
        close_all(self.socks.values())


# ---- misc ----------------------------------------------------------------------------

def proc_exit_summary(log_text):
    """The numbers of wharfd's 'exit: active=.. accepted=.. messages=..' line."""
    m = re.search(r"exit: (active=\S+(?: \w+=\S+)*)", log_text)
    if not m:
        return None
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def softnet_drops():
    """Packets the kernel dropped because a CPU's input backlog (net.core.netdev_max_backlog)
    was full: on loopback every packet goes through it, and a drop costs the sender a
    retransmission timeout (200 ms and up). Host-wide: other people's runs count too."""
    total = 0
    try:
        with open("/proc/net/softnet_stat") as f:
            for line in f:
                total += int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return total


def kernel_tcp_mem_kib():
    """Pages of memory the kernel's TCP stack holds (all sockets), from /proc/net/sockstat."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()
                    return int(parts[parts.index("mem") + 1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError):
        pass
    return 0

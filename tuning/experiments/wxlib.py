"""wxlib: what the tuning experiments share.

Every experiment builds its own network namespaces (`ip netns add`, loopback up),
sets the knobs it varies *inside* them (net.ipv4.* and net.core.somaxconn are per
namespace), starts wharfd and the client in them, samples counters, and tears
everything down again: on a normal exit, on an error, on Ctrl-C (SIGINT), SIGTERM,
SIGHUP, and when its time limit (--max-time) runs out. The host's sysctls are never
written: every `sysctl -w` here runs under `ip netns exec NAME`, and the host
values of the knobs the experiments touch are read before and after and compared.

Processes are ended by the PID recorded when they were started (wharfkit.proc.stop:
SIGTERM, a bounded wait, SIGKILL), and what is left in a namespace we created (`ip netns
pids`) when wharfkit's NetNS deletes it. Nothing is killed by name.

Python 3 standard library only; charts with gnuplot (Debian: gnuplot-nox).
"""
import argparse
import csv
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from wharfkit import server as kit_server
from wharfkit.netns import NetNS, run  # noqa: F401 (run: for the experiments)
from wharfkit.proc import stop as stop_procs
from wharfkit.sampler import Sampler

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RESULTS = REPO / "tuning" / "results"

# Host knobs the experiments change inside their namespaces. Read on the host
# before and after every experiment: a difference is a bug and is reported.
HOST_GUARD = [
    "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_tw_reuse_delay", "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_max_tw_buckets", "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies", "net.ipv4.tcp_timestamps",
    "net.core.rmem_default", "net.core.rmem_max",
]


class Interrupted(Exception):
    """Ctrl-C, SIGTERM, SIGHUP or the experiment's time limit."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_host_sysctls(keys=HOST_GUARD):
    out = {}
    for k in keys:
        p = Path("/proc/sys") / k.replace(".", "/")
        try:
            out[k] = p.read_text().strip()
        except OSError:
            out[k] = None
    return out


def find_build():
    """wharfd and wharf from $WHARF_BUILD (relative to the repository or absolute;
    default build/), as `make test` passes it."""
    b = os.environ.get("WHARF_BUILD", "build")
    d = Path(b) if os.path.isabs(b) else REPO / b
    wharfd, wharf = d / "wharfd", d / "wharf"
    for f in (wharfd, wharf):
        if not os.access(f, os.X_OK):
            sys.exit(f"{sys.argv[0]}: {f} not found: run 'make' first (or set WHARF_BUILD)")
    return str(wharfd), str(wharf)


def base_args(description, default_time):
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="a shortened run (fewer settings, shorter phases), for tests")
    ap.add_argument("--out", default=str(RESULTS),
                    help="directory for NAME-DATE.csv/.md/.png [default: tuning/results]")
    ap.add_argument("--max-time", type=float, default=120.0,
                    help="hard limit in seconds; past it the run is stopped and cleaned up "
                         "[default: 120]")
    ap.add_argument("--stamp", default=None,
                    help="the DATE part of the file names [default: now, YYYYMMDD-HHMMSS]")
    ap.epilog = f"Default run: about {default_time}. Needs root (ip netns)."
    return ap


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, int(p / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


class Lab:
    """Owns the namespaces, processes and temporary files of one experiment run."""

    def __init__(self, name, args):
        if os.geteuid() != 0:
            sys.exit(f"{name}: needs root (ip netns)")
        self.name = name
        self.args = args
        self.quick = args.quick
        self.out = Path(args.out)
        self.stamp = args.stamp or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.base = f"{name}-{self.stamp}"
        self.namespaces = []
        self.procs = []
        self.threads = []
        self.stop_event = threading.Event()
        self.tmp = None
        self.t_start = time.monotonic()
        self.wharfd_bin, self.wharf_bin = find_build()
        self.host_before = None
        self._old = {}

    # ---- lifetime -------------------------------------------------------------
    def _on_signal(self, signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    def _on_alarm(self, signum, frame):
        raise Interrupted(f"time limit of {self.args.max_time:.0f} s reached")

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix=f"wx-{self.name}-")
        self.host_before = read_host_sysctls()
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old[s] = signal.signal(s, self._on_signal)
        self._old[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.args.max_time)
        self.out.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, etype, evalue, tb):
        signal.setitimer(signal.ITIMER_REAL, 0)
        # A second Ctrl-C must not interrupt the cleanup.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        try:
            self.cleanup()
        finally:
            for s, h in self._old.items():
                signal.signal(s, h)
        after = read_host_sysctls()
        if after != self.host_before:
            changed = {k: (self.host_before[k], after[k]) for k in after
                       if after[k] != self.host_before[k]}
            log(f"WARNING: host sysctls differ from before the run: {changed}")
        if etype is Interrupted:
            log(f"{self.name}: interrupted ({evalue}); namespaces and processes cleaned up")
            sys.exit(130)
        return False

    def cleanup(self):
        """Every step is attempted even when an earlier one fails: the namespaces
        must go whatever happened."""
        self.stop_event.set()
        for t in self.threads:
            try:
                t.join(5)
            except Exception as e:
                log(f"cleanup: sampler: {e!r}")
        try:
            stop_procs(self.procs, timeout=3)
        except Exception as e:
            log(f"cleanup: processes: {e!r}")
        for ns in reversed(self.namespaces):
            try:
                ns.delete()
            except Exception as e:
                log(f"cleanup: {ns.name}: {e!r}")
        self.namespaces = []
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def check_time(self):
        """Raise Interrupted when the time limit is (nearly) gone: a loop can stop
        cleanly before SIGALRM would."""
        if time.monotonic() - self.t_start > self.args.max_time:
            raise Interrupted("time limit reached")

    # ---- building blocks ---------------------------------------------------------
    def drop(self, *namespaces):
        """Stop the processes started in these namespaces (SIGTERM, then SIGKILL) and
        delete them, e.g. between the runs of an experiment."""
        names = {ns.name for ns in namespaces}
        mine = [p for p in self.procs if isinstance(p.args, list) and len(p.args) > 3
                and p.args[:3] == ["ip", "netns", "exec"] and p.args[3] in names]
        stop_procs(mine, timeout=3)
        for ns in namespaces:
            ns.delete()
            self.namespaces.remove(ns)
        self.procs = [p for p in self.procs if p not in mine]

    def netns(self, short):
        self._ns_count = getattr(self, "_ns_count", 0) + 1
        name = f"wx-{short}-{os.getpid()}-{self._ns_count}"
        ns = NetNS(name, popen=self.popen, anchor=True)
        self.namespaces.append(ns)
        ns.create()
        return ns

    def veth_pair(self, ns_client, ns_server, client_ip="198.18.0.2", server_ip="198.18.0.1"):
        """Join two namespaces by a veth pair, 198.18.0.0/24 (benchmarking range,
        RFC 2544), addresses inside the namespaces only. The pair is created inside
        ns_client, so nothing appears in the host namespace even for an instant."""
        run(["ip", "-n", ns_client.name, "link", "add", "wxc", "type", "veth",
             "peer", "name", "wxs", "netns", ns_server.name])
        run(["ip", "-n", ns_client.name, "addr", "add", f"{client_ip}/24", "dev", "wxc"])
        run(["ip", "-n", ns_server.name, "addr", "add", f"{server_ip}/24", "dev", "wxs"])
        run(["ip", "-n", ns_client.name, "link", "set", "wxc", "up"])
        run(["ip", "-n", ns_server.name, "link", "set", "wxs", "up"])
        return client_ip, server_ip

    def popen(self, cmd, **kw):
        # WX_LAB marks every process an experiment starts, so that a test can check
        # that none is left over (/proc/PID/environ).
        kw.setdefault("env", dict(os.environ, WX_LAB=str(os.getpid())))
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def tmpfile(self, name):
        return os.path.join(self.tmp, name)

    def sampler(self, interval, fn):
        s = Sampler(fn, interval, halt=self.stop_event)
        self.threads.append(s)
        s.start()
        return s

    # ---- output -----------------------------------------------------------------
    def path(self, suffix):
        return self.out / f"{self.base}{suffix}"

    def write_csv(self, rows, fields, suffix=".csv"):
        p = self.path(suffix)
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: fmt_csv(r.get(k, "")) for k in fields})
        return p

    def write_dat(self, name, rows, fields):
        """Whitespace-separated data for gnuplot, in the temporary directory."""
        p = self.tmpfile(name)
        with open(p, "w") as f:
            for r in rows:
                f.write(" ".join(str(fmt_csv(r.get(k, 0))) for k in fields) + "\n")
        return p

    def chart(self, script):
        """Run a gnuplot script that draws into self.path('.png'). Returns the PNG
        path, or None (with a warning) when gnuplot is missing or fails."""
        png = self.path(".png")
        gp = shutil.which("gnuplot")
        if not gp:
            log("gnuplot not found (Debian: apt-get install gnuplot-nox): no chart")
            return None
        full = (f"set terminal pngcairo size 1000,{script.get('height', 600)} font 'Sans,10'\n"
                f"set output '{png}'\nset datafile separator whitespace\n" + script["body"])
        sp = self.tmpfile("chart.gp")
        Path(sp).write_text(full)
        r = subprocess.run([gp, sp], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"gnuplot failed: {r.stderr.strip()[-500:]}")
            return None
        return png

    def write_md(self, text):
        p = self.path(".md")
        p.write_text(text)
        return p


def fmt_csv(v):
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) < 1e6 else f"{v:.0f}"
    return v


STATS_HELPER = r"""
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
for _ in sys.stdin:
    try:
        c.request("GET", "/stats")
        body = c.getresponse().read().decode()
        print(body.replace("\n", ""), flush=True)
    except Exception as e:
        print("error: %r" % (e,), flush=True)
        c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
"""


class Wharfd(kit_server.Wharfd):
    """wharfkit's Wharfd inside a namespace, started at once, with its log in the lab's
    temporary directory; ready when every listener is up (`ss -ltn` in the namespace:
    the log level here hides the ready line)."""

    def __init__(self, lab, ns, listens, extra=(), name="wharfd"):
        self.lab, self.ns = lab, ns
        self.http = next((l.split("://", 1)[1] for l in listens if l.startswith("http://")), None)
        ports = [int(l.rsplit(":", 1)[1]) for l in listens]
        # The experiments read /stats from whatever address the namespace gives the
        # listener (a veth address, not loopback): allow it.
        super().__init__(binary_path=lab.wharfd_bin, listen=listens, prefix=ns.ex(),
                         extra=["--log-level", "warn", "--stats-allow", "all", *extra],
                         log_path=lab.tmpfile(f"{name}-{ns.name}.log"), popen=lab.popen,
                         probe=lambda s: set(ports) <= ns.listening())
        self._stats = None
        try:
            self.start(tries=1, timeout=10)
        except kit_server.StartFailed as e:
            raise RuntimeError(str(e))

    def stats(self):
        """GET /stats over one keep-alive connection kept for the whole run, so that
        reading the counters adds exactly one accepted connection (before the first
        snapshot) and does not disturb per-worker deltas."""
        if self._stats is None or self._stats.poll() is not None:
            host, port = self.http.rsplit(":", 1)
            self._stats = self.ns.popen(["python3", "-c", STATS_HELPER, host, port],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self._stats.stdin.write("get\n")
        self._stats.stdin.flush()
        line = self._stats.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"GET /stats failed: {line.strip()}")
        return json.loads(line)

    def stop(self, timeout=15):
        if self._stats is not None and self._stats.poll() is None:
            self._stats.stdin.close()
            self._stats.wait(5)
        return super().stop(timeout)


def wharf(lab, ns, args, timeout=150):
    """Run `wharf ARGS --json --allow-errors` in ns and return its report."""
    r = ns.run([lab.wharf_bin, *args, "--json", "--allow-errors"], check=False, timeout=timeout)
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"wharf {' '.join(args)}: exit {r.returncode}, no JSON: "
                           f"{(r.stderr or '')[-500:]}")


def md_table(rows, cols):
    """cols: (header, key or callable, format) triples."""
    out = ["| " + " | ".join(c[0] for c in cols) + " |",
           "|" + "|".join("---:" if c[2] else "---" for c in cols) + "|"]
    for r in rows:
        cells = []
        for h, k, f in cols:
            v = k(r) if callable(k) else r.get(k, "")
            if f and isinstance(v, (int, float)):
                v = format(v, f)
            cells.append(str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def kernel():
    return os.uname().release


def header(title, lab, what):
    return (f"# {title}\n\n"
            f"Run {lab.stamp} on Linux {kernel()}, {os.cpu_count()} CPUs"
            f"{' (--quick)' if lab.quick else ''}. {what}\n\n")


def main_wrapper(fn):
    """Run an experiment's main; exit 1 with a message on a failure (after cleanup)."""
    try:
        fn()
    except RuntimeError as e:
        log(f"error: {e}")
        sys.exit(1)

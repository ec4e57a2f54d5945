"""Shared pieces of the bench/ harnesses (python3 standard library only).

Servers (wharfd and its peers) are started pinned to one CPU, their process ids
are recorded, and every one of them is stopped when the harness ends, however it
ends (normal exit, an exception, Ctrl-C, SIGTERM, or the harness's own deadline).
Load generators run pinned to the other CPU. Nothing is ever killed by name.
"""

import atexit
import csv
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from wharfkit.net import free_port, http_get, wait_until  # noqa: F401 (for the harnesses)
from wharfkit.pin import taskset  # noqa: F401
from wharfkit.proc import stop as stop_procs
from wharfkit.server import Wharfd  # noqa: F401 (isinstance in the harnesses)
from wharfkit.server import supports as wharfd_supports, version as wharfd_version  # noqa: F401
from wharfkit.sampler import (children_of, core_busy_seconds, cpu_seconds,  # noqa: F401
                              memory_kib)

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH)
LUA = os.path.join(BENCH, "lua")
PEERS = os.path.join(BENCH, "peers")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
H2O = shutil.which("h2o") or "/usr/bin/h2o"

SERVER_CPU = 0  # the server's core
LOAD_CPU = 1    # the load generator's core


def log(msg, end="\n"):
    sys.stderr.write(msg + end)
    sys.stderr.flush()


def die(msg, code=2):
    log(f"{os.path.basename(sys.argv[0])}: {msg}")
    sys.exit(code)


# ---- process bookkeeping -----------------------------------------------------

_procs = []      # Popen objects we started and must stop
_servers = []    # wharfd servers (wharfkit's Wharfd) we made and must stop
_tmpdirs = []


def _cleanup():
    for s in reversed(_servers):
        s.stop(3)
    _servers.clear()
    for p in reversed(_procs):
        stop_process(p, grace=3)
    _procs.clear()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tmpdirs.clear()


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise Interrupted(f"signal {signum}")


def install_cleanup(deadline_s=None):
    """Stop everything we started on exit, signals, or when deadline_s passes."""
    atexit.register(_cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    if deadline_s:
        def on_alarm(signum, frame):
            raise Interrupted(f"the harness's own deadline ({deadline_s:.0f} s) passed")
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(int(deadline_s) + 1)


def tmpdir(prefix="wharf-bench-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def spawn(args, **kw):
    """Start a process in a session of its own and remember it for cleanup."""
    p = subprocess.Popen(args, start_new_session=True, **kw)
    _procs.append(p)
    return p


def perf_stat_counts(path):
    """`perf stat -x, -o PATH`'s counts by event name ({} when the file is missing or
    unreadable): the one reader every harness that counts system calls uses."""
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) >= 3 and parts[0][:1].isdigit():
                    counts[parts[2]] = int(float(parts[0]))
    except OSError:
        pass
    return counts


def stop_process(p, grace=12):
    """SIGTERM the process (by its id), wait, then SIGKILL its process group (the one
    spawn() made for it, by id): wharfkit.proc.stop."""
    stop_procs(p, grace, group=True)
    if p in _procs:
        _procs.remove(p)


# /proc readings: wharfkit.sampler.

# ---- servers ------------------------------------------------------------------------
#
# What the harnesses use of a server, wharfd (wharfkit's Wharfd) and nginx alike: name,
# version, start(tries=, timeout=), stop(), alive(), pid, pids() (the processes whose CPU
# and memory count as the server's), port (by protocol: port["http"]), url(path), log().

def build_dir():
    b = os.environ.get("WHARF_BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


def snapshot(binary):
    """A private copy of a binary, so a concurrent rebuild cannot swap it mid-run."""
    if not os.path.exists(binary):
        die(f"{binary} not found: run 'make' first (or set WHARF_BUILD)")
    d = tmpdir("wharf-bench-bin-")
    dst = os.path.join(d, os.path.basename(binary))
    shutil.copy2(binary, dst)
    return dst


def answers_as(header, port):
    """Something on 127.0.0.1:port answers GET / with 200 and a Server header starting
    with header (not some other program that took the port)."""
    r = http_get(port, timeout=1)
    return bool(r) and r[0] == 200 and r[1].get("server", "").lower().startswith(header)


def wharfd(binary, workers=1, protos=("http",), extra=(), wrap=(), env=None):
    """wharfkit's Wharfd as the harnesses run it: binary (a snapshot()), --workers 1
    --log-level warn, one loopback listener per protocol on free ports (http first: the
    harnesses need it), pinned to SERVER_CPU (taskset), under wrap (valgrind ...) if
    given, with env added to the environment (test hooks), in a process group of its
    own; stopped at the end like everything else."""
    protos = ("http",) + tuple(p for p in protos if p != "http")
    s = Wharfd(*protos, binary_path=binary, workers=workers,
               extra=["--log-level", "warn", *extra], prefix=taskset(SERVER_CPU, list(wrap)),
               new_session=True, probe=lambda s: answers_as("wharf", s.port["http"]), env=env)
    _servers[:] = [x for x in _servers if x.proc is None or x.alive()]  # stopped: done
    _servers.append(s)
    return s


def nginx_version():
    try:
        out = subprocess.run([NGINX, "-v"], capture_output=True, text=True, timeout=10)
        return (out.stderr or out.stdout).strip().replace("nginx version: ", "")
    except OSError:
        return ""


class Peer:
    """A peer server process: the command of a subclass on a free port, pinned to
    SERVER_CPU, in a process group of its own (spawn()), answering GET / with a Server
    header that starts with self.header. Subclasses give name, header, version,
    prepare() (writes its configuration once self.port is chosen) and command()."""

    name = header = "peer"

    def __init__(self, wrap=()):
        self.wrap = list(wrap)
        self.version = ""
        self.proc = None
        self.port = {}
        self.workdir = tmpdir(f"wharf-bench-{self.name}-")
        self.log_path = os.path.join(self.workdir, "server.log")

    def prepare(self):
        pass

    def command(self):
        raise NotImplementedError

    def ready(self):
        return bool(http_get(self.port["http"], timeout=1))

    def start(self, tries=5, timeout=15):
        last = ""
        for _ in range(tries):
            self.port = {"http": free_port()}
            self.prepare()
            with open(self.log_path, "ab") as logf:
                self.proc = spawn(taskset(SERVER_CPU, self.command()), stdout=logf,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            ok = wait_until(lambda: self.proc.poll() is not None or self.ready(), timeout)
            if ok and self.proc.poll() is None:
                if answers_as(self.header, self.port["http"]):
                    time.sleep(0.2)  # let worker processes settle
                    return self
                last = f"port {self.port['http']} answered, but not as {self.name}"
            last = last or self.log()[-2000:]
            stop_process(self.proc)
        raise RuntimeError(f"{self.name} did not start: {last}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def pids(self):
        return [self.pid] + children_of(self.pid) if self.alive() else []

    def stop(self, timeout=12):
        if self.proc:
            stop_process(self.proc, timeout)

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port['http']}{path}"

    def log(self):
        out = ""
        for name in ("server.log", "error.log"):
            try:
                with open(os.path.join(self.workdir, name), "rb") as f:
                    out += f.read()[-4000:].decode(errors="replace")
            except OSError:
                pass
        return out


def nofile_limit():
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return hard if hard != resource.RLIM_INFINITY else 1048576
    except (ImportError, ValueError):
        return 20000


class Nginx(Peer):
    """The peer: nginx from peers/nginx.conf, master and one worker."""

    name = header = "nginx"

    def __init__(self, conns=20000, master=True, wrap=()):
        super().__init__(wrap)
        self.conns = conns
        self.master = master
        self.version = nginx_version()

    @staticmethod
    def available():
        return os.access(NGINX, os.X_OK)

    def prepare(self):
        nofile = nofile_limit()
        with open(os.path.join(PEERS, "nginx.conf")) as f:
            conf = f.read()
        user = "user root;" if os.geteuid() == 0 else ""
        conns = min(self.conns, nofile)
        conf = (conf.replace("@PORT@", str(self.port["http"])).replace("@PREFIX@", self.workdir)
                .replace("@CONNS@", str(conns)).replace("@NOFILE@", str(nofile))
                .replace("@USER@", user))
        self.conf = os.path.join(self.workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def command(self):
        g = "daemon off;" + ("" if self.master else " master_process off;")
        return self.wrap + [NGINX, "-p", self.workdir + "/", "-c", self.conf, "-g", g, "-e",
                            os.path.join(self.workdir, "error.log")]


def h2o_version():
    out = cmd_out([H2O, "--version"])
    return out.splitlines()[0].replace("h2o version ", "h2o ") if out else ""


class H2o(Peer):
    """The second peer: Debian's h2o from peers/h2o.conf (one thread, serving a
    13-byte file), master process only."""

    name = header = "h2o"

    def __init__(self, conns=20000, wrap=()):
        super().__init__(wrap)
        self.conns = conns
        self.version = h2o_version()

    @staticmethod
    def available():
        return os.access(H2O, os.X_OK)

    def prepare(self):
        with open(os.path.join(self.workdir, "hello.txt"), "w") as f:
            f.write("Hello, World!")
        with open(os.path.join(PEERS, "h2o.conf")) as f:
            conf = f.read()
        user = "user: root" if os.geteuid() == 0 else ""
        conf = (conf.replace("@PORT@", str(self.port["http"])).replace("@PREFIX@", self.workdir)
                .replace("@CONNS@", str(min(self.conns, nofile_limit()))).replace("@USER@", user))
        self.conf = os.path.join(self.workdir, "h2o.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def command(self):
        return self.wrap + [H2O, "-c", self.conf]


class Floor(Peer):
    """The floor: build/floor (bench/floor/floor.c), the smallest server answering
    what the harness asks; kind "http", "frame" or "udp" (whose port["frame"] or
    port["udp"] is served, port["http"] being an HTTP floor for the start-up probe)."""

    name = "floor"
    header = "floor"

    def __init__(self, binary, kind="http", wrap=()):
        super().__init__(wrap)
        self.binary = binary
        self.kind = kind
        self.version = "floor (bench/floor)"
        self.extra = None

    def command(self):
        return self.wrap + [self.binary, "http", str(self.port["http"])]

    def start(self, tries=5, timeout=15):
        super().start(tries, timeout)
        if self.kind in ("frame", "udp"):  # a second process, in the same bookkeeping
            k = self.kind
            self.port[k] = _free_udp_port() if k == "udp" else free_port()
            self.extra = spawn(taskset(SERVER_CPU, self.wrap + [self.binary, k,
                                                                str(self.port[k])]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
            up = _answers_udp if k == "udp" else _connects
            if not wait_until(lambda: self.extra.poll() is not None or
                              up(self.port[k]), timeout) or self.extra.poll():
                raise RuntimeError(f"the {k} floor did not start")
        return self

    def pids(self):
        if self.kind in ("frame", "udp"):
            return [self.extra.pid] if self.extra and self.extra.poll() is None else []
        return super().pids()

    @property
    def pid(self):
        return self.extra.pid if self.kind in ("frame", "udp") else self.proc.pid

    def alive(self):
        return super().alive() and (self.kind == "http" or self.extra.poll() is None)

    def stop(self, timeout=12):
        if self.extra:
            stop_process(self.extra, timeout)
        super().stop(timeout)


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        return u.getsockname()[1]


def _answers_udp(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(0.3)
        try:
            u.sendto(b"ping", ("127.0.0.1", port))
            return u.recv(16) == b"PING"
        except OSError:
            return False


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# ---- wrk -----------------------------------------------------------------------------

def wrk_version():
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return ""


def run_wrk(url, script, script_args=(), conns=100, threads=1, duration=5.0, cpu=LOAD_CPU,
            timeout_s=2, raw_path=None):
    """Run wrk once; returns the dict from json.lua's line (plus 'wrk_text')."""
    d = max(1, int(round(duration)))
    args = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{d}s",
            "--timeout", f"{timeout_s}s", "-s", os.path.join(LUA, script), url]
    if script_args:
        args += ["--"] + [str(a) for a in script_args]
    env = dict(os.environ, WRK_CONNECTIONS=str(conns))
    p = subprocess.Popen(taskset(cpu, args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True)
    _procs.append(p)
    try:
        out, _ = p.communicate(timeout=d + 30 + conns / 1000)
    except subprocess.TimeoutExpired:
        stop_process(p, grace=2)
        raise RuntimeError(f"wrk did not stop within {d + 30} s")
    finally:
        if p in _procs:
            _procs.remove(p)
    text = out.decode(errors="replace")
    if raw_path:
        with open(raw_path, "w") as f:
            f.write(" ".join(args) + "\n" + text)
    for line in reversed(text.splitlines()):
        if line.startswith('{"wrk":'):
            r = json.loads(line)["wrk"]
            r["wrk_text"] = text
            return r
    raise RuntimeError(f"wrk printed no JSON line (exit {p.returncode}): {text[-800:]}")


def run_wharf_bench(wharf, url, extra=(), conns=100, duration=5.0, cpu=LOAD_CPU, raw_path=None):
    """Run `wharf bench -t 1` once (pinned to cpu); returns a dict shaped like run_wrk's
    (requests, rps, duration_us, errors, latency_us), latency per request."""
    d = max(1, int(round(duration)))
    args = [wharf, "bench", "-t", "1", "-c", str(conns), "-d", f"{d}s", "--json",
            "--allow-errors", *extra, url]
    p = spawn(taskset(cpu, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=d + 30 + conns / 1000)
    except subprocess.TimeoutExpired:
        stop_process(p, grace=2)
        raise RuntimeError(f"wharf bench did not stop within {d + 30} s")
    finally:
        if p in _procs:
            _procs.remove(p)
    if raw_path:
        with open(raw_path, "w") as f:
            f.write(" ".join(args) + "\n" + out.decode(errors="replace") +
                    err.decode(errors="replace"))
    try:
        r = json.loads(out)
    except ValueError:
        raise RuntimeError(f"wharf bench printed no JSON (exit {p.returncode}): {err[-600:]!r}")
    e, lat = r["errors"], r["latency"]
    return {"requests": r["requests"]["ok"], "rps": r["requests_per_sec"],
            "duration_us": r["duration_s"] * 1e6,
            "errors": {"total": e["total"], "connect": e["connect"],
                       "read": e["read"] + e["closed"], "write": e["write"],
                       "status": e.get("status", 0) + r["http"]["non_2xx_3xx"],
                       "timeout": e["timeout"]},
            "latency_us": {"mean": lat["mean_us"], "p50": lat["p50_us"], "p90": lat["p90_us"],
                           "p99": lat["p99_us"], "p999": lat["p99_9_us"], "max": lat["max_us"]},
            "latency_raw": True, "client_cpu_s": r["cpu"]["user_s"] + r["cpu"]["sys_s"]}


# ---- results ---------------------------------------------------------------------------

def default_out(kind):
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    return os.path.join(BENCH, "results", f"{stamp}-{kind}")


def cmd_out(args, timeout=10):
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _binary_note(path):
    """The binary's path and build time: the work tree may have moved on since."""
    try:
        built = datetime.datetime.fromtimestamp(os.path.getmtime(path)).astimezone()
        return f"{path} (built {built.isoformat(timespec='seconds')})"
    except OSError:
        return f"{path} (missing)"


def write_meta(out_dir, argv, extra=None):
    commit = cmd_out(["git", "rev-parse", "HEAD"])
    dirty = cmd_out(["git", "status", "--porcelain", "--untracked-files=no"])
    gcc = cmd_out(["gcc", "--version"]).splitlines()
    lines = [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"command: {' '.join(argv)}",
        f"cpu: {cpu_model()} ({os.cpu_count()} CPUs; server on CPU {SERVER_CPU}, load on CPU {LOAD_CPU})",
        f"kernel: {platform.release()}",
        f"os: {cmd_out(['sh', '-c', '. /etc/os-release; echo $PRETTY_NAME'])}",
        f"git commit: {commit}{' (work tree modified)' if dirty else ''}",
        f"wharfd: {_binary_note(os.path.join(build_dir(), 'wharfd'))}",
        f"wrk: {wrk_version()}",
        f"nginx: {nginx_version()}",
        f"h2o: {h2o_version()}",
        f"gcc: {gcc[0] if gcc else ''}",
        f"perf: {cmd_out(['perf', '--version'])}",
        f"valgrind: {cmd_out(['valgrind', '--version'])}",
        f"loadavg at start: {open('/proc/loadavg').read().strip()}",
    ]
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    with open(os.path.join(out_dir, "meta.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_num(v, digits=3):
    """Human figure: 3 significant digits, k/M for large numbers."""
    if v is None:
        return "—"
    if isinstance(v, int) and abs(v) < 1000:
        return str(v)
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    return f"{v:.3f}"


def gnuplot_available():
    return shutil.which("gnuplot") is not None


def run_gnuplot(script, cwd):
    try:
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, cwd=cwd,
                           timeout=60)
        if r.returncode != 0:
            log(f"gnuplot failed: {r.stderr.strip()[-500:]}")
            return False
        return True
    except (OSError, subprocess.TimeoutExpired) as e:
        log(f"gnuplot failed: {e}")
        return False


def check_tools(names):
    missing = [n for n in names if not shutil.which(n) and not (n == "nginx" and Nginx.available())]
    if missing:
        die("missing: " + ", ".join(missing) +
            " (Debian: apt-get install wrk nginx-light h2o gnuplot-nox linux-perf valgrind)")

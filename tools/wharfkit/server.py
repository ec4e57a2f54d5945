"""Wharfd: one wharfd process, and defaults(): what `wharfd --print-defaults` says.

    with Wharfd("raw", "http", mode="echo") as s:      # free ports, waits for "ready"
        s.port["raw"]; s.stats()["totals"]; s.log()
    s = Wharfd("http", prefix=pin.prefix(0), log_path="/tmp/x.log").start()
    s = Wharfd(listen=["frame://198.18.0.1:9100"], prefix=ns.ex(), popen=lab.popen,
               probe=lambda s: 9100 in ns.listening()).start()

Ready means wharfd logged its "ready:" line (it has bound every listener and its workers
run); where the log level hides that line (--log-level warn and above), the probe says
(default: the first listener accepts a connection). A port picked here that something
else took before wharfd bound it is picked again. stop() is SIGTERM to the recorded PID,
a bounded wait, then SIGKILL (wharfkit.proc.stop); with new_session=True wharfd leads a
process group of its own and the SIGKILL goes to that group.
"""
import json
import os
import re
import subprocess
import tempfile

from . import binary, proc
from .net import accepts, free_port, http_get, wait_until
from .sampler import children_of, cpu_seconds, status_kib


class StartFailed(RuntimeError):
    pass


def defaults(wharfd=None):
    """{name: value} from `wharfd --print-defaults`; 'listen' is a list."""
    out = subprocess.run([wharfd or binary("wharfd"), "--print-defaults"], capture_output=True,
                         text=True, timeout=10, check=True).stdout
    d = {}
    for line in out.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        k, _, v = line.partition("=")
        k, v = k.strip(), v.strip()
        if k == "listen":
            d.setdefault("listen", []).append(v)
        else:
            d[k] = v
    return d


def size_bytes(v):
    """A wharfd size ('1M', '64K', '512') in bytes."""
    v = v.strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(v[-1:].upper(), 1)
    return int(v[:-1] if mult > 1 else v) * mult


def duration_s(v):
    """A wharfd duration ('60s', '250ms', '2m', '1h', '30') in seconds."""
    for suffix, mult in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if v.endswith(suffix):
            return float(v[:-len(suffix)]) * mult
    return float(v)


def supports(wharfd, flag):
    """flag appears in `wharfd --help`."""
    try:
        out = subprocess.run([wharfd, "--help"], capture_output=True, text=True, timeout=10)
        return flag in out.stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def version(wharfd):
    """The first line of `wharfd --version`, or ''."""
    try:
        out = subprocess.run([wharfd, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        return out.splitlines()[0] if out else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _quiet(args):
    """The log level in args hides the ready line."""
    for i, a in enumerate(args):
        if a == "--log-level" and i + 1 < len(args):
            return args[i + 1] in ("warn", "error", "off")
        if a.startswith("--log-level="):
            return a.split("=", 1)[1] in ("warn", "error", "off")
    return False


class Wharfd:
    name = "wharfd"

    def __init__(self, *protos, binary_path=None, host="127.0.0.1", ports=None, listen=None,
                 mode=None, workers=None, extra=(), prefix=(), env=None, preexec=None,
                 log_path=None, popen=None, probe=None, new_session=False):
        self.binary = binary_path or binary("wharfd")
        self.host = host
        self.given_listen = list(listen or [])
        self.protos = protos or (() if listen else ("raw",))
        self.given_ports = dict(ports or {})
        self.port = {}
        self.listen_args = []
        self.prefix = list(prefix)
        self.args = []
        if mode:
            self.args += ["--mode", mode]
        if workers:
            self.args += ["--workers", str(workers)]
        self.args += list(extra)
        self.env = dict(os.environ, **(env or {}))
        self.preexec = preexec
        self.log_path = log_path
        self.log_file = None
        self.popen = popen or subprocess.Popen
        self.probe = probe
        self.new_session = new_session
        self.proc = None
        self.exit_code = None
        self.stats_calls = 0  # each /stats request is itself a connection and a message

    # ---- the command -----------------------------------------------------------------
    def pick_ports(self):
        """Ports for the listeners: the ones given, else free ones picked now."""
        if self.given_listen:
            self.listen_args = [a for l in self.given_listen for a in ("--listen", l)]
            for l in self.given_listen:
                proto, _, hp = l.partition("://")
                h, _, p = hp.rpartition(":")
                self.port.setdefault(proto, int(p))
                self.host = h.strip("[]") or self.host
            return
        self.port = dict(self.given_ports)
        for p in self.protos:
            self.port.setdefault(p, free_port(self.host))
        h = f"[{self.host}]" if ":" in self.host else self.host
        self.listen_args = [a for p in self.protos
                            for a in ("--listen", f"{p}://{h}:{self.port[p]}")]

    def command(self):
        return self.prefix + [self.binary] + self.listen_args + self.args

    # ---- start and stop ----------------------------------------------------------------
    def _open_log(self):
        if self.log_path:
            return open(self.log_path, "w+")
        return tempfile.TemporaryFile(mode="w+")

    def ready(self):
        """Started and serving (not: exited)."""
        if self.probe:
            return self.probe(self)
        if not _quiet(self.args):
            return " ready: " in self.log()
        first = next(iter(self.port))
        return accepts(self.host, self.port[first])

    def start(self, tries=3, timeout=15):
        for attempt in range(tries):
            self.pick_ports()
            self.log_file = self._open_log()
            self.proc = self.popen(self.command(), stdout=self.log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=self.env,
                                   preexec_fn=self.preexec, start_new_session=self.new_session)
            wait_until(lambda: self.proc.poll() is not None or self.ready(), timeout)
            if self.proc.poll() is None:
                if self.ready():
                    return self
                self.stop(5)
                raise StartFailed(f"wharfd was not ready within {timeout} s: {self.log()[-2000:]}")
            m = re.search(r"cannot bind \S*:(\d+): Address already in use", self.log())
            picked = {port for p, port in self.port.items()
                      if p not in self.given_ports and not self.given_listen}
            if not m or int(m.group(1)) not in picked or attempt == tries - 1:
                break
            print(f"# a picked port was taken before wharfd bound it; picking again: "
                  f"{self.log().strip().splitlines()[-1]}", flush=True)
            self.log_file.close()
        raise StartFailed(f"wharfd exited with {self.proc.returncode}: " + self.log()[-3000:])

    def stop(self, timeout=20):
        """SIGTERM (by PID) and wait up to timeout, then SIGKILL; the exit status."""
        if self.proc is None:
            return None
        self.exit_code = proc.stop(self.proc, timeout, group=self.new_session)[0]
        return self.exit_code

    def wait(self, timeout=20):
        self.exit_code = self.proc.wait(timeout)
        return self.exit_code

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- looking at it ------------------------------------------------------------------
    def log(self):
        if not self.log_file or self.log_file.closed:
            if self.log_path and os.path.exists(self.log_path):
                with open(self.log_path) as f:
                    return f.read()
            return ""
        self.log_file.flush()
        self.log_file.seek(0)
        return self.log_file.read()

    @property
    def pid(self):
        return self.proc.pid

    def pids(self):
        """wharfd's process and whatever it started (CPU and memory count over these)."""
        return [self.pid] + children_of(self.pid) if self.alive() else []

    @property
    def version(self):
        if not hasattr(self, "_version"):
            self._version = version(self.binary)
        return self._version

    def supports(self, flag):
        return supports(self.binary, flag)

    def backend(self):
        """The event loop the running wharfd chose (GET /stats), or ''."""
        try:
            return self.stats().get("backend", "")
        except (OSError, ValueError):
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def url(self, path="/"):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port['http']}{path}"

    def stats(self):
        """GET /stats, parsed (needs an http listener); OSError when it does not answer
        200. One connection (Connection: close), over a plain socket: no urllib, whose
        http.client a script's own http.py (bench/lib/http.py) would hide."""
        self.stats_calls += 1
        r = http_get(self.port["http"], "/stats", timeout=10, host=self.host)
        if r is None or r[0] != 200:
            raise OSError(f"GET /stats on {self.url('/stats')}: "
                          f"{'no answer' if r is None else r[0]}")
        return json.loads(r[2])

    def rss_kib(self):
        return status_kib(self.pid, "VmRSS")

    def hwm_kib(self):
        return status_kib(self.pid, "VmHWM")

    def cpu_seconds(self):
        return cpu_seconds(self.pid)

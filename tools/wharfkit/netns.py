"""NetNS: a network namespace of our own (`ip netns add`), deleted when it is done with,
when the program exits, and on Ctrl-C/SIGTERM/SIGHUP (each turned into SystemExit where
nobody else handles them, so that finally blocks and atexit run). Its sysctls (net.*) are
its own: the host's are never written.

    with NetNS("wharf-x") as ns:            # created; deleted at the end
        ns.set("net.ipv4.tcp_fin_timeout", 5)
        ns.run(["ss", "-tan"]); p = ns.popen([wharfd, ...])
        with ns.entered():                  # this thread's sockets now live in ns
            socket.create_connection(...)

Processes left inside are killed (ip netns pids: the namespace is ours) before it is
deleted. Nothing is killed by name.
"""
import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_live = []  # namespaces created and not yet deleted


def run(cmd, check=True, timeout=60, **kw):
    """subprocess.run with text output captured; RuntimeError on failure when check."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(cmd, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: "
                           f"{(r.stderr or '').strip()}")
    return r


def _delete_all():
    for ns in list(reversed(_live)):
        try:
            ns.delete()
        except Exception:
            pass


def _exit_on(signum, frame):
    raise SystemExit(128 + signum)


def _install():
    atexit.register(_delete_all)
    for s in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(s) == signal.SIG_DFL:
                signal.signal(s, _exit_on)
        except ValueError:  # not the main thread: its owner handles signals
            pass


_installed = False


class NetNS:
    def __init__(self, name, popen=subprocess.Popen, anchor=False):
        """popen: how processes in it are started (a lab's, to track them); anchor: keep
        a `sleep` inside, whose /proc/PID/net/* are this namespace's counters."""
        self.name = name
        self._popen = popen
        self.want_anchor = anchor
        self.anchor = None
        self.alive = False

    # ---- lifetime ----------------------------------------------------------------
    def create(self):
        global _installed
        if not _installed:
            _install()
            _installed = True
        run(["ip", "netns", "del", self.name], check=False)  # a stale one of ours
        run(["ip", "netns", "add", self.name])
        self.alive = True
        _live.append(self)
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        if self.want_anchor:
            self.anchor = self.popen(["sleep", "1000000"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def pids(self):
        r = run(["ip", "netns", "pids", self.name], check=False)
        return [int(p) for p in (r.stdout or "").split() if p.isdigit()]

    def delete(self):
        """Kill what is left inside (SIGKILL, by PID), then delete the namespace."""
        if not self.alive:
            return
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in range(50):
            if not self.pids():
                break
            time.sleep(0.02)
        if self.anchor is not None:
            try:
                self.anchor.wait(1)
            except subprocess.TimeoutExpired:
                pass
        run(["ip", "netns", "del", self.name], check=False)
        self.alive = False
        if self in _live:
            _live.remove(self)

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.delete()
        return False

    # ---- running inside ----------------------------------------------------------
    def ex(self, *cmd):
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd, **kw):
        return run(self.ex(*cmd), **kw)

    def popen(self, cmd, **kw):
        return self._popen(self.ex(*cmd), **kw)

    @contextlib.contextmanager
    def entered(self):
        """The calling thread inside the namespace (setns(2)) for the with-block:
        sockets it opens and processes it starts live there."""
        orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        try:
            yield self
        finally:
            _libc.setns(orig, CLONE_NEWNET)
            os.close(orig)

    # ---- links and addresses -------------------------------------------------------
    def ip(self, *args, check=True):
        return run(["ip", "-n", self.name, *args], check=check)

    def veth_to(self, other, here="veth0", there="veth1", addr=None, other_addr=None):
        """A veth pair from this namespace to other (another NetNS): created inside this
        one, so nothing appears in the host's even for an instant. addr/other_addr:
        'A.B.C.D/LEN' or None."""
        self.ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", other.name)
        for ns, dev, a in ((self, here, addr), (other, there, other_addr)):
            if a:
                ns.ip("addr", "add", a, "dev", dev)
            ns.ip("link", "set", dev, "up")

    # ---- sysctls of this namespace only --------------------------------------------
    def has(self, key):
        return self.run(["sysctl", "-n", key], check=False).returncode == 0

    def get(self, key):
        return self.run(["sysctl", "-n", key]).stdout.strip()

    def set(self, key, value):
        self.run(["sysctl", "-qw", f"{key}={value}"])
        got = " ".join(self.get(key).split())
        if got != " ".join(str(value).split()):
            raise RuntimeError(f"{self.name}: {key} is {got!r} after setting {value!r}")

    # ---- counters (through the anchor's /proc/PID/net, what nstat and ss -s read) ---
    def _proc_net(self, name):
        if self.anchor is None:
            return self.run(["cat", f"/proc/net/{name}"]).stdout
        return Path(f"/proc/{self.anchor.pid}/net/{name}").read_text()

    def nstat(self):
        """Absolute TCP/IP counters with nstat's names (TcpExtTWRecycled, ...)."""
        out = {}
        for f in ("snmp", "netstat"):
            lines = self._proc_net(f).splitlines()
            for i in range(0, len(lines) - 1, 2):
                k, v = lines[i].split(), lines[i + 1].split()
                prefix = k[0].rstrip(":")
                for name, val in zip(k[1:], v[1:]):
                    try:
                        out[prefix + name] = int(val)
                    except ValueError:
                        pass
        return out

    def sockstat(self):
        out = {}
        for line in self._proc_net("sockstat").splitlines():
            proto, _, rest = line.partition(":")
            it = rest.split()
            for k, v in zip(it[0::2], it[1::2]):
                out[f"{proto}_{k}"] = int(v)
        return out

    def tcp_states(self, server_ports=()):
        """Counts by state from `ss -tan`, split into the server side (local port in
        server_ports) and the rest. Keys like 'TIME-WAIT', 'srv:TIME-WAIT'."""
        r = self.run(["ss", "-Htan"], check=False)
        out = {}
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) < 4:
                continue
            state, local = f[0], f[3]
            out[state] = out.get(state, 0) + 1
            port = local.rsplit(":", 1)[-1]
            side = "srv" if port.isdigit() and int(port) in server_ports else "cli"
            out[f"{side}:{state}"] = out.get(f"{side}:{state}", 0) + 1
        return out

    def listening(self):
        """The TCP ports something listens on in this namespace."""
        r = self.run(["ss", "-Hltn"], check=False)
        return {int(ln.split()[3].rsplit(":", 1)[1]) for ln in r.stdout.splitlines() if ln.split()}

    def listen_queue(self, port):
        """(current accept queue, its maximum) of the listener on port."""
        r = self.run(["ss", "-Hltn", f"sport = :{port}"], check=False)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) >= 3:
                return int(f[1]), int(f[2])
        return 0, 0

"""CPU and memory of processes, read from /proc, and the one Sampler that reads them (or
anything else) every interval on a thread."""
import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def status_kib(pid, field="VmRSS"):
    """A /proc/PID/status figure in KiB (VmRSS, VmHWM, ...); 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def cpu_seconds(pids):
    """utime+stime (seconds) of a process or a list of them, all their threads."""
    total = 0
    for pid in ([pids] if isinstance(pids, int) else pids):
        try:
            f = _stat_fields(pid)
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def thread_cpu_seconds(pid):
    """CPU seconds of every thread of a process, by thread id."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            f = _stat_fields(pid, tid)
            out[int(tid)] = (int(f[11]) + int(f[12])) / CLK_TCK
        except (OSError, ValueError, IndexError):
            pass
    return out


def memory_kib(pids):
    """(sum of VmRSS, sum of Pss) over the processes, in KiB."""
    rss = pss = 0
    for pid in pids:
        rss += rss_kib(pid)
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def children_of(pid):
    """All descendants of pid (by scanning /proc for parent ids)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parent[int(d)] = int(_stat_fields(d)[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def core_busy_seconds(cpu):
    """Non-idle time of one CPU from /proc/stat (everything that ran there)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                return (sum(v[:8]) - idle) / CLK_TCK
    return 0.0


class Sampler(threading.Thread):
    """Every interval seconds, on a thread of its own: fn() -> dict, kept in .rows with
    t_s (seconds since start). With pid and no fn, the reading is the process's RSS and
    CPU: {"rss_kib", "cpu_s"}. .peak is the largest rss_kib seen. An exception in fn ends
    the sampling and is kept in .error (a namespace gone at the end, ...). halt: an extra
    threading.Event that also stops it (a lab's, set at cleanup).

        s = Sampler(pid=srv.pid).start(); ...; peak_kib = s.stop_peak()
        s = Sampler(lambda: {"q": ns.listen_queue(9100)[0]}, 0.2).start(); rows = s.stop()
    """

    def __init__(self, fn=None, interval=0.05, pid=None, halt=None):
        super().__init__(daemon=True)
        if fn is None:
            if pid is None:
                raise ValueError("Sampler needs fn or pid")
            fn = lambda: {"rss_kib": rss_kib(pid), "cpu_s": cpu_seconds(pid)}  # noqa: E731
        self.fn, self.interval, self.halt = fn, interval, halt
        self.rows = []
        self.peak = 0
        self.error = None
        self._halt = threading.Event()
        self.t0 = time.monotonic()

    def _take(self):
        row = self.fn()
        row["t_s"] = round(time.monotonic() - self.t0, 3)
        self.rows.append(row)
        self.peak = max(self.peak, row.get("rss_kib", 0))

    def start(self):
        self.t0 = time.monotonic()
        super().start()
        return self

    def run(self):
        n = 0
        while not self._halt.is_set() and not (self.halt and self.halt.is_set()):
            try:
                self._take()
            except Exception as e:
                self.error = e
                return
            n += 1
            delay = self.t0 + n * self.interval - time.monotonic()
            if delay > 0:
                self._halt.wait(delay)

    def stop(self, timeout=10):
        """Stop and return the rows."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout)
        return self.rows

    def stop_peak(self, timeout=10):
        """Stop and return the peak RSS (KiB)."""
        self.stop(timeout)
        return self.peak

"""Where processes run: the CPUs we may use, taskset/chrt prefixes (both exec, so the
process id stays the program's), and pinning this process."""
import os
import shutil
import subprocess


def cpus():
    """The CPUs this process may run on, sorted."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


def server_cpu():
    return cpus()[0]


def client_cpu():
    c = cpus()
    return c[1] if len(c) > 1 else c[0]


_rt = None


def rt_works():
    """chrt -f works here (root, and not turned off by TORTURE_RT=0)."""
    global _rt
    if _rt is None:
        _rt = False
        if os.environ.get("TORTURE_RT", "1") != "0":
            try:
                _rt = subprocess.run(["chrt", "-f", "10", "true"], capture_output=True,
                                     timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                pass
    return _rt


def prefix(cpu, rt=False):
    """The command prefix that runs a program on cpu (None: anywhere), SCHED_FIFO 10 as
    well when rt and chrt works here."""
    p = []
    if rt and rt_works():
        p += ["chrt", "-f", "10"]
    if cpu is not None and shutil.which("taskset"):
        p += ["taskset", "-c", str(cpu)]
    return p


def taskset(cpu, args):
    """args run on cpu (None: unchanged)."""
    return prefix(cpu) + list(args)


def pin_self(cpu):
    """This process (the calling thread's process) to cpu; quietly nothing if not allowed."""
    try:
        os.sched_setaffinity(0, {int(cpu)})
    except (AttributeError, OSError, ValueError):
        pass

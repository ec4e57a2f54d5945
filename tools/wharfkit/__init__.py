"""wharfkit: the Python that starts, watches and surrounds wharfd, shared by the
integration tests, torture, bench/ and the tuning experiments (python3 standard library
only).

    server.py    Wharfd: one wharfd process (free ports, ready line, /stats, stop by PID)
                 and defaults(): what `wharfd --print-defaults` says
    netns.py     NetNS: a network namespace of our own, deleted on exit and on signals
    topology.py  Topology: namespaces joined by a bridge, from a short description
    sampler.py   Sampler: CPU/RSS (or any reading) every interval on a thread; /proc readers
    proc.py      stop(): processes we started, by PID (SIGTERM, bounded wait, SIGKILL)
    net.py       free_port, wait_until, http_get
    pin.py       CPUs, taskset/chrt prefixes, pinning this process

Found through PYTHONPATH=<repo>/tools: set by build.mk's recipes and tests/run-all for
everything they run, and by tools/kitpy for the scripts users run directly (bench/*,
tuning/experiments/*, tests/torture/run are tiny sh wrappers around it). See
tools/README.md.
"""
import os

ROOT = os.environ.get("WHARF_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_dir():
    """$WHARF_BUILD (relative to the repository or absolute; default build/)."""
    b = os.environ.get("WHARF_BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


def binary(name):
    return os.path.join(build_dir(), name)

"""Restarting at once: load, SIGTERM, and the same wharfd command again the moment the
old process has exited (as systemctl restart does), 20 times per backend. The new
process must bind its ports and answer every time. (An io_uring wharfd used to leave its
listeners to the ring's asynchronous exit work, which closed them a few ms after the
process had gone: the new one failed with EADDRINUSE in about 1 restart in 8.)

This suite runs both backends itself, so tests/run-all's second pass over the
integration suites (WHARF_BACKEND=io_uring) skips it. make torture runs 100 per backend
(tests/torture, restart_at_once)."""

import os

from wharfkit.harness import BACKEND, WHARFD, Server, Suite, restart_at_once, run

t = Suite(__file__)
RESTARTS = int(os.environ.get("WHARF_RESTARTS", "20"))


def uring_usable():
    if "io_uring" not in run([WHARFD, "--version"]).stdout:
        return False
    with Server("http", extra=["--backend", "auto"]) as s:
        return s.stats()["backend"] == "io_uring"


def restart_loop(backend):
    r = restart_at_once(backend, RESTARTS)
    print(f"# {backend}: {RESTARTS} restarts in {r['seconds']:.1f}s, "
          f"{r['requests']} requests answered in the bursts, "
          f"{len(r['failures'])} failed starts")
    t.check(not r["failures"], f"{backend}: every restart bound and answered", r["failures"])
    t.check(all(c == 0 for c in r["codes"]), f"{backend}: every stop exited 0", r["codes"])
    t.check(r["bench_errors"] == 0, f"{backend}: no error in the bursts", r["bench_errors"])


@t.test
def restart_at_once_epoll():
    if BACKEND == "io_uring":
        print("# skipped: this suite picks its backends itself (it ran on the first pass)")
        return
    restart_loop("epoll")


@t.test
def restart_at_once_io_uring():
    if BACKEND == "io_uring":
        return
    if not uring_usable():
        print("# skipped: io_uring not built in or not usable here")
        return
    restart_loop("io_uring")


t.main()

"""Stopping processes we started, by the PID recorded when we started them.

    stop(p)                          # SIGTERM (+SIGCONT), up to 10 s, then SIGKILL
    stop([a, b, c], timeout=3)       # all signalled first, one shared deadline
    stop(p, group=True)              # p leads a process group of its own
                                     # (start_new_session): SIGKILL goes to the group

With group=True, the group is killed while its leader, exited or not, is still our
unreaped child: its PID (the group's id) cannot have been reused by then. What the
leader leaves behind in its group (an nginx worker whose master died) goes too; a leader
reaped before stop() (a poll() saw it exit) has its group swept all the same. Nothing is
ever signalled by name.
"""
import os
import signal
import subprocess
import time


def _send(p, sig):
    try:
        p.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def _running(p):
    """True while p runs; False once it has exited (still a zombie we hold, looked at
    with waitid WNOWAIT, so its PID stays ours) or was reaped elsewhere; None if so."""
    try:
        return os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return None


def _kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop(procs, timeout=10, group=False):
    """SIGTERM every process still running (SIGCONT too: a stopped one acts on it only
    then), wait for them all up to timeout seconds, SIGKILL what is left (group: its
    whole process group). The exit codes, in order (None: would not die)."""
    if procs is None:
        return []
    procs = [procs] if isinstance(procs, subprocess.Popen) else [p for p in procs if p]
    for p in procs:
        if p.returncode is None:
            # SIGCONT first: one sent after SIGTERM can reach a process that is already
            # exiting, and a SIGCONT discards a pending SIGSTOP, such as the one ptrace
            # sends when LeakSanitizer stops the process's threads at exit: its tracer
            # then waits forever (an ASan wharfd hung until SIGKILL). A stopped process
            # still gets the SIGTERM: it is delivered once it runs again.
            _send(p, signal.SIGCONT)
            _send(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        if p.returncode is not None:
            if group:
                _kill_group(p)  # reaped already (poll()): what it left in its group
            continue
        if group:
            # wait without reaping, so that the group's id stays this process's
            while _running(p) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _running(p) is not None:
                _kill_group(p)
        else:
            try:
                p.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _send(p, signal.SIGKILL)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
    return [p.returncode for p in procs]

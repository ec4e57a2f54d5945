"""Backend selection and the io_uring backend's own paths: --backend, --version, the
/stats backend field, auto's fallback when the kernel refuses io_uring (forced with a
test hook), and under io_uring: a receive pool too small for the load (ENOBUFS
re-arms), a completion ring too small for it (overflows), multishot accept with
--dispatch reuseport (shedding on EMFILE), and closing a connection whose send is
stuck in flight, and operations that find the submission queue full (a test hook).
Every server here picks its backend itself (WHARF_BACKEND is
ignored); tests that need io_uring say so and pass where it is not built in."""

import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from wharfkit.harness import (WHARFD, Server, Suite, check_sheds_then_recovers, frame, read_frame,
                     recv_until_close, run, wait_until)

t = Suite(__file__)

HOOKS = {"WHARFD_TEST_HOOKS": "1"}


def built_in():
    return "io_uring" in run([WHARFD, "--version"]).stdout


def uring_usable():
    """Built in and allowed by this kernel: auto picks it."""
    if not built_in():
        return False
    with Server("http", extra=["--backend", "auto"]) as s:
        return s.stats()["backend"] == "io_uring"


BUILT_IN = built_in()
USABLE = BUILT_IN and uring_usable()


def uring(*protos, extra=(), env=None, **kw):
    return Server(*protos, extra=["--backend", "io_uring"] + list(extra), env=env, **kw)


def frame_round_trips(port, n_conns, rounds, size=64, timeout=60, stop_pid=None):
    """n_conns clients, each sending `rounds` frames one at a time and checking every
    reply; all connected first, so their requests land in the same loop turns. With
    stop_pid, that process is stopped while the first requests go out, so that they all
    wait for it at once (however fast it would have served them one by one)."""
    sel = selectors.DefaultSelector()
    rng = random.Random(7)
    state = {}
    for i in range(n_conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        state[s] = {"done": 0, "buf": b"", "expect": b""}
        sel.register(s, selectors.EVENT_READ)
    def send_next(s):
        payload = bytes(rng.getrandbits(7) | 0x20 for _ in range(size))
        st = state[s]
        st["expect"] = frame(payload.upper())
        s.sendall(frame(payload))
    if stop_pid:
        os.kill(stop_pid, signal.SIGSTOP)
    try:
        for s in state:
            send_next(s)
        time.sleep(0.1 if stop_pid else 0)
    finally:
        if stop_pid:
            os.kill(stop_pid, signal.SIGCONT)
    remaining, deadline = n_conns, time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            s = key.fileobj
            st = state[s]
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("server closed a connection")
            st["buf"] += chunk
            if len(st["buf"]) < len(st["expect"]):
                continue
            if st["buf"] != st["expect"]:
                raise AssertionError(f"reply mismatch {st['buf'][:20]!r}")
            st["buf"] = b""
            st["done"] += 1
            if st["done"] == rounds:
                sel.unregister(s)
                remaining -= 1
            else:
                send_next(s)
    done = sum(st["done"] for st in state.values())
    for s in state:
        s.close()
    return done


# ---- selection ------------------------------------------------------------------

@t.test
def version_names_the_backends_built_in():
    v = run([WHARFD, "--version"])
    t.check(v.returncode == 0 and "backends: epoll" in v.stdout, "epoll always", v.stdout)
    if not BUILT_IN:
        r = run([WHARFD, "--backend", "io_uring", "--listen", "raw://127.0.0.1:0"], timeout=10)
        lines = r.stderr.strip().splitlines()
        t.check(r.returncode == 2 and len(lines) == 1 and "not built into" in lines[0],
                "--backend io_uring without it: one line, exit 2", r.stderr)
    print(f"# {v.stdout.strip()}; io_uring usable here: {USABLE}")


@t.test
def bad_backend_value_is_one_line_exit_2():
    r = run([WHARFD, "--backend", "kqueue"])
    lines = r.stderr.strip().splitlines()
    t.check(r.returncode == 2 and len(lines) == 1 and "auto, epoll or io_uring" in lines[0],
            "one line, exit 2", r.stderr)
    h = run([WHARFD, "--help"])
    t.check("--backend auto|epoll|io_uring" in h.stdout and "[default: auto]" in h.stdout,
            "--help documents it", h.stdout[:200])


@t.test
def backend_flag_selects_the_loop_and_stats_say_which():
    choices = ["epoll"] + (["io_uring"] if USABLE else [])
    for b in choices:
        with Server("http", "frame", extra=["--backend", b]) as s:
            c = s.connect("frame")
            c.sendall(frame(b"which"))
            t.check(read_frame(c) == b"WHICH", f"{b}: serves")
            c.close()
            st = s.stats()
            t.check(st["backend"] == b, f"{b}: /stats backend", st["backend"])
            t.check(f"worker ({b})" in s.log() or f"workers ({b})" in s.log(),
                    f"{b}: the ready line names it", s.log()[-400:])
            t.check("backend " not in s.log(), f"{b}: no auto line when asked explicitly")


@t.test
def auto_picks_io_uring_where_usable_and_logs_one_line():
    with Server("http", extra=["--backend", "auto"]) as s:
        st = s.stats()
        lines = [l for l in s.log().splitlines() if "backend " in l]
        t.check(len(lines) == 1, "one log line", lines)
        if USABLE:
            t.check(st["backend"] == "io_uring" and "backend io_uring (auto)" in lines[0],
                    "io_uring", (st["backend"], lines))
        else:
            t.check(st["backend"] == "epoll" and "io_uring not used: " in lines[0],
                    "epoll, and why", (st["backend"], lines))


@t.test
def auto_falls_back_to_epoll_when_the_kernel_refuses_io_uring():
    if not BUILT_IN:
        return
    for err, text in (("EPERM", "Operation not permitted"), ("ENOSYS", "Function not implemented")):
        env = dict(HOOKS, WHARFD_TEST_URING_SETUP=err)
        with Server("http", "frame", extra=["--backend", "auto"], env=env) as s:
            st = s.stats()
            lines = [l for l in s.log().splitlines() if "backend " in l]
            t.check(st["backend"] == "epoll", f"{err}: epoll serves", st["backend"])
            t.check(len(lines) == 1 and "backend epoll (auto; io_uring not used: "
                    f"io_uring_setup: {text}" in lines[0], f"{err}: one line says why", lines)
            c = s.connect("frame")
            c.sendall(frame(b"ok"))
            t.check(read_frame(c) == b"OK", f"{err}: and serves")
            c.close()


@t.test
def io_uring_flag_where_the_kernel_refuses_it_is_one_error_exit_1():
    if not BUILT_IN:
        return
    env = dict(os.environ, **HOOKS, WHARFD_TEST_URING_SETUP="EPERM")
    r = subprocess.run([WHARFD, "--backend", "io_uring", "--listen", "raw://127.0.0.1:0"],
                       capture_output=True, text=True, timeout=10, env=env)
    errors = [l for l in r.stderr.splitlines() if "error" in l]
    t.check(r.returncode == 1, "exit 1", r.returncode)
    t.check(len(errors) == 1 and "--backend io_uring: io_uring cannot run here: io_uring_setup: "
            "Operation not permitted" in errors[0], "one clear line", r.stderr)


# A seccomp filter like the one systemd installs for SystemCallFilter= when io_uring is
# not allowed (SystemCallErrorNumber=EPERM): io_uring_setup fails with EPERM, then exec.
SECCOMP_EXEC_C = r"""
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("seccomp");
        return 127;
    }
    execv(argv[1], argv + 1);
    perror("execv");
    return 127;
}
"""


@t.test
def auto_falls_back_to_epoll_under_a_seccomp_filter():
    if not BUILT_IN:
        return
    d = tempfile.mkdtemp(prefix="wharf-seccomp-")
    try:
        seccomp_fallback(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def seccomp_fallback(d):
    src, exe = os.path.join(d, "seccomp_exec.c"), os.path.join(d, "seccomp_exec")
    with open(src, "w") as f:
        f.write(SECCOMP_EXEC_C)
    cc = run(["cc", "-O1", "-o", exe, src])
    if cc.returncode != 0:
        print(f"# no C compiler for the seccomp helper, skipped: {cc.stderr[:200]}")
        return
    s = Server("http", "frame", extra=["--backend", "auto"])
    s.prefix = [exe] + s.prefix
    with s:
        st = s.stats()
        lines = [l for l in s.log().splitlines() if "backend " in l]
        t.check(st["backend"] == "epoll", "epoll serves", st["backend"])
        t.check(len(lines) == 1 and "io_uring_setup: Operation not permitted" in lines[0] and
                "seccomp" in lines[0], "one line says why", lines)
        c = s.connect("frame")
        c.sendall(frame(b"filtered"))
        t.check(read_frame(c) == b"FILTERED", "and serves")
        c.close()
    r = run([exe, WHARFD, "--backend", "io_uring", "--listen", "raw://127.0.0.1:0"], timeout=10)
    errors = [l for l in r.stderr.splitlines() if "error" in l]
    t.check(r.returncode == 1 and len(errors) == 1 and "cannot run here" in errors[0],
            "--backend io_uring under the filter: one error line, exit 1", r.stderr)


# ---- io_uring paths ---------------------------------------------------------------

@t.test
def tiny_receive_pool_rearms_on_enobufs_and_loses_nothing():
    if not USABLE:
        return
    for mode, env in (("whole buffers", {"WHARFD_TEST_URING_NO_INC": "1",
                                          "WHARFD_TEST_URING_BUFS": "2"}),
                      ("incremental", {"WHARFD_TEST_URING_BUFS": "1"})):
        with uring("frame", "http", workers=1, env=dict(HOOKS, **env)) as s:
            done = frame_round_trips(s.port["frame"], 200, 20, size=1024, stop_pid=s.pid)
            st = s.stats()["totals"]
            print(f"# {mode}: {done} round-trips, enobufs={st['uring_enobufs']} "
                  f"rearms={st['uring_recv_rearms']}")
            t.check(done == 200 * 20, f"{mode}: every reply right", done)
            t.check(st["uring_enobufs"] > 0 and st["uring_recv_rearms"] > 0,
                    f"{mode}: ENOBUFS happened and receives were re-armed", st)
            t.check(st["protocol_errors"] == 0 and st["resets"] == 0, f"{mode}: no errors", st)


@t.test
def tiny_completion_ring_overflows_counted_and_nothing_lost():
    if not USABLE:
        return
    with uring("frame", "http", workers=1, env=dict(HOOKS, WHARFD_TEST_URING_CQ="16")) as s:
        done = frame_round_trips(s.port["frame"], 300, 20, stop_pid=s.pid)
        st = s.stats()["totals"]
        print(f"# 16-entry CQ: {done} round-trips, cq_overflows={st['uring_cq_overflows']} "
              f"dropped={st['uring_cq_dropped']} sq_full={st['uring_sq_full']} "
              f"rearms={st['uring_recv_rearms']}")
        t.check(done == 300 * 20, "every reply right", done)
        t.check(st["uring_cq_overflows"] > 0, "overflows counted", st)
        t.check(st["uring_cq_dropped"] == 0, "none dropped (the kernel queues them)", st)


@t.test
def reuseport_multishot_accept_serves_and_sheds_on_emfile():
    if not USABLE:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with uring("frame", "http", workers=2, extra=["--dispatch", "reuseport"]) as s:
        t.check(frame_round_trips(s.port["frame"], 100, 5) == 500, "serves on both workers")
        per_worker = [w["accepted"] for w in s.stats()["workers"]]
        t.check(all(n > 0 for n in per_worker), "each worker accepted", per_worker)
    # A multishot accept keeps the file limit it was armed with; one-shot accepts (a test
    # hook) re-read it, as a multishot one does after any error ends it.
    env = dict(HOOKS, WHARFD_TEST_URING_ACCEPT_ONESHOT="1")
    with uring("frame", workers=1, extra=["--dispatch", "reuseport"], env=env) as s:
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (48, 48))
        c = s.connect("frame")  # completes the accept armed under the old limit
        c.close()
        time.sleep(0.2)
        check_sheds_then_recovers(t, s, "reuseport, 48-file limit")


@t.test
def reuseport_max_conns_closes_the_excess():
    if not USABLE:
        return
    with uring("frame", workers=1, extra=["--dispatch", "reuseport", "--max-conns", "5"]) as s:
        time.sleep(0.3)  # the harness's readiness probe connection goes first
        keep = [s.connect("frame") for _ in range(5)]
        for c in keep:
            c.sendall(frame(b"k"))
            t.check(read_frame(c) == b"K", "within the limit")
        extra = s.connect("frame")
        extra.settimeout(5)
        try:
            data = extra.recv(10)
        except ConnectionResetError:
            data = b""
        t.check(data == b"", "over the limit: closed at once")
        for c in keep + [extra]:
            c.close()


@t.test
def closing_with_a_send_in_flight_cancels_it_and_frees_the_connection():
    if not USABLE:
        return
    with uring("line", "http", workers=1,
               extra=["--idle-timeout", "1s", "--max-output", "64K"]) as s:
        hog = s.connect("line")
        hog.setblocking(False)
        line = b"y" * 1023 + b"\n"
        deadline = time.monotonic() + 10
        stalled = None
        while time.monotonic() < deadline:
            try:
                hog.send(line * 64)
                stalled = None
            except BlockingIOError:
                stalled = stalled or time.monotonic()
                if time.monotonic() - stalled > 0.5:
                    break
                time.sleep(0.01)
        # The server's send to it is stuck (nobody reads); the idle timeout must still
        # close it, cancelling the send, and the struct must go once it completes.
        st = wait_until(lambda: (lambda x: x if x["totals"]["idle_timeouts"] >= 1 else None)(
            s.stats()), 10)
        t.check(st is not None, "closed by the idle timeout despite the stuck send")
        t.check(st["totals"]["active"] <= 1, "only the /stats connection left", st["totals"])
        hog.setblocking(True)
        hog.settimeout(10)
        try:
            while hog.recv(1 << 20):
                pass
            ended = True
        except ConnectionResetError:
            ended = True
        except socket.timeout:
            ended = False
        t.check(ended, "the client's socket ends (EOF or reset)")
        hog.close()
        c = s.connect("line")
        c.sendall(b"still\n")
        c.settimeout(5)
        t.check(c.recv(16) == b"STILL\n", "serves on")
        c.close()
    # Leaks (a connection never freed) show in the ASan run's exit report, which the
    # harness turns into a failure.


def ring_files(pid, tries=200):
    """Inodes of the sockets in the io_uring file tables of process pid (fdinfo's
    UserFiles list), per ring. The kernel prints a ring's fdinfo only when it gets the
    ring's lock at that moment (else nothing after the first lines), so read again
    until every ring has printed its list."""
    for _ in range(tries):
        rings, complete = [], True
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if "io_uring" not in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    text = f.read()
            except OSError:
                continue
            if "UserFiles:" not in text:
                complete = False
                break
            files = set()
            for ln in text.split("UserFiles:", 1)[1].splitlines()[1:]:
                m = re.match(r"^\s*\d+: (.*)$", ln)  # "%5u: %s": no space from 10000 on
                if not m:
                    break
                if m.group(1).startswith("socket:["):
                    files.add(m.group(1)[8:-1])
            rings.append(files)
        if complete:
            return rings
        time.sleep(0.01)
    raise AssertionError("the ring's fdinfo never listed its files")


def socket_inodes(pid):
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out[int(fd)] = link[8:-1]
    return out


@t.test
def io_uring_sockets_sit_in_the_ring_file_table_until_closed():
    """From its second receive on, a connection's socket is registered at its
    descriptor's index (sends and receives skip the file lookup), and it is taken out
    when the connection closes: a slot left behind would hold the socket open. A
    connection that sent once is not registered (it would not pay back). Past the
    table's size (a 24-slot table here) the plain descriptors serve as well."""
    if not USABLE:
        return
    for slots, env in (("default table", HOOKS),
                       ("24 slots", dict(HOOKS, WHARFD_TEST_URING_FIXED_SLOTS="24"))):
        with uring("frame", "http", workers=1, env=env) as s:
            before = set(socket_inodes(s.pid).values())  # listeners, the start-up probe
            conns = [s.connect("frame") for _ in range(40)]
            for i, c in enumerate(conns):
                c.sendall(frame(b"ping %d" % i))
            replies = [read_frame(c) for c in conns]
            t.check(replies == [b"PING %d" % i for i in range(40)], f"{slots}: all answered")
            t.check(ring_files(s.pid) == [set()], f"{slots}: none registered after one request",
                    ring_files(s.pid))
            for i, c in enumerate(conns):
                c.sendall(frame(b"again %d" % i))
            replies = [read_frame(c) for c in conns]
            t.check(replies == [b"AGAIN %d" % i for i in range(40)], f"{slots}: all answered")
            mine = {fd: ino for fd, ino in socket_inodes(s.pid).items() if ino not in before}
            rings = ring_files(s.pid)
            t.check(len(rings) == 1, f"{slots}: one ring (one worker)", len(rings))
            table = rings[0] if rings else set()
            want = {ino for fd, ino in mine.items() if slots == "default table" or fd < 24}
            print(f"# {slots}: {len(mine)} connections, {len(table)} registered")
            t.check(len(mine) == 40 and table == want,
                    f"{slots}: exactly the connections inside the table are registered",
                    (sorted(mine), len(table), len(want)))
            for c in conns:
                c.close()
            wait_until(lambda: ring_files(s.pid) == [set()], 10)
            t.check(ring_files(s.pid) == [set()], f"{slots}: closed sockets left the table",
                    ring_files(s.pid))
    with uring("frame", "http", workers=1,
               env=dict(HOOKS, WHARFD_TEST_URING_NO_FIXED="1")) as s:
        c = s.connect("frame")
        c.sendall(frame(b"plain"))
        t.check(read_frame(c) == b"PLAIN" and ring_files(s.pid) == [set()],
                "no file table: served on plain descriptors")
        c.close()


@t.test
def io_uring_registered_socket_rearms_its_receive_and_the_server_closes_it():
    """A registered connection's receive, armed again on its slot (an 840 KB frame
    ends a multishot receive at its byte limit, or at ENOBUFS, many times over), still
    reads everything; and when the server closes it (idle timeout) the slot goes too,
    so the client sees the close."""
    if not USABLE:
        return
    big = b"registered, re-armed " * 40000  # 840 KB: under --max-message (1 MiB)
    with uring("frame", "http", workers=1, extra=["--idle-timeout", "1s"]) as s:
        c = s.connect("frame")
        for word in (b"one", b"two"):
            c.sendall(frame(word))
            t.check(read_frame(c) == word.upper(), "answered")
        t.check(sum(len(r) for r in ring_files(s.pid)) == 1, "registered", ring_files(s.pid))
        rearms = s.stats()["totals"]["uring_recv_rearms"]
        c.sendall(frame(big))
        t.check(read_frame(c) == big.upper(), "an 840 KB frame through the registered socket")
        st = s.stats()["totals"]
        print(f"# receive re-armed {st['uring_recv_rearms'] - rearms} times for the frame")
        t.check(st["uring_recv_rearms"] > rearms, "its receive was armed again", st)
        c.settimeout(5)
        t.check(recv_until_close(c) == b"", "idle timeout: the client sees the close")
        c.close()
        t.check(wait_until(lambda: ring_files(s.pid) == [set()], 5), "and the slot is clear",
                ring_files(s.pid))


@t.test
def io_uring_operations_that_find_no_sqe_are_retried():
    """When the submission queue stays full (a test hook: the 1st, N+1th... request for
    an SQE gets none, after what is queued was submitted), nothing is lost: the handoff
    poll and the accepts armed at start-up (the first requests) are armed again at the
    next turn, as are receives, sends, cancels; closes go without the ring. So every
    connection, through the worker's own accept (one worker) or the acceptor's handoff
    (two), is answered, none is closed for it, and none stays behind."""
    if not USABLE:
        return
    for n, workers in ((2, 1), (3, 1), (2, 2), (5, 2)):
        env = dict(HOOKS, WHARFD_TEST_URING_SQE_FAIL=str(n))
        label = f"1 in {n} SQEs refused, {workers} worker{'s' if workers > 1 else ''}"
        with uring("frame", "http", workers=workers, env=env) as s:
            done = frame_round_trips(s.port["frame"], 40, 5, timeout=20)
            t.check(done == 40 * 5, f"{label}: frame connections answered", done)
            for i in range(5):
                c = s.connect("http", timeout=5)
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = recv_until_close(c)
                c.close()
                t.check(data.startswith(b"HTTP/1.1 200"), f"{label}: http answered", data[:40])
            st = wait_until(lambda: (lambda x: x if x["totals"]["active"] <= 1 else None)(
                s.stats()), 10) or s.stats()
            tot = st["totals"]
            print(f"# {label}: stalls={tot['uring_sq_stalls']} rearms={tot['uring_recv_rearms']}")
            t.check(tot["uring_sq_stalls"] > 0, f"{label}: stalls counted", tot)
            t.check(tot["alloc_failures"] == 0 and tot["resets"] == 0,
                    f"{label}: no connection closed for it", tot)
            t.check(tot["active"] <= 1, f"{label}: every closed connection let go", tot)


@t.test
def half_close_and_lingering_close_on_io_uring():
    if not USABLE:
        return
    with uring("line", "http", "frame") as s:
        c = s.connect("line")
        c.sendall(b"one\ntwo\n")
        c.shutdown(socket.SHUT_WR)
        t.check(recv_until_close(c) == b"ONE\nTWO\n", "half-close: answered, then closed")
        c.close()
        c = s.connect("http")
        c.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 5000)  # no Host: 400, input left over
        data = recv_until_close(c)
        t.check(data.startswith(b"HTTP/1.1 400"), "error reply arrives whole (lingering close)",
                data[:40])
        c.close()
        st = s.stats()["totals"]
        t.check(st["protocol_errors"] == 1, "counted", st)


t.main()

"""udp:// listeners against the real wharfd (on WHARF_BACKEND's loop, like every suite:
tests/run-all runs it on epoll, on io_uring (its multishot recvmsg where the kernel has
it) and on io_uring with WHARFD_TEST_URING_UDP_POLL=1 (the poll+recvmmsg path it falls
back to; epoll's batch code)): datagrams keep their
boundaries, zero-length ones are answered, what UDP loses is counted by cause, ICMP
errors are read, SIGTERM answers what was queued, and the counters agree with what the
clients saw. SIGSTOP/SIGCONT on wharfd (by PID) lines a burst up in its socket so that a
batch is deterministic."""

import json
import os
import signal
import socket
import time

from wharfkit.harness import BACKEND, WHARF, Server, Suite, run
from wharfkit.netns import NetNS

t = Suite(__file__)

SIZES = [0, 1, 7, 8, 100, 1399, 1472, 1473, 4096, 9000, 32768, 65507]


def udp_client(family=socket.AF_INET, timeout=2.0):
    c = socket.socket(family, socket.SOCK_DGRAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    c.settimeout(timeout)
    return c


def payload(i, size):
    """size bytes, lower case, starting with the datagram's number: each reply is
    recognisable and its upper-cased form predictable."""
    head = f"{i:06d}-".encode()
    body = (head + b"abcdefghij" * (size // 10 + 1))[:size]
    return body


def collect(c, n, quiet=0.5):
    """Up to n replies, until none came for `quiet` seconds."""
    got = []
    c.settimeout(quiet)
    while len(got) < n:
        try:
            got.append(c.recvfrom(70000)[0])
        except socket.timeout:
            break
    return got


def udp_totals(s):
    return {k: v for k, v in s.stats()["totals"].items() if k.startswith("udp_")}


HOOKS = {"WHARFD_TEST_HOOKS": "1"}


def uring_ring_path():
    """Whether this run's io_uring serves udp:// through the multishot recvmsg: the
    io_uring backend, and the poll path not forced (tests/run-all runs this suite once
    more with WHARFD_TEST_URING_UDP_POLL=1)."""
    return BACKEND == "io_uring" and not os.environ.get("WHARFD_TEST_URING_UDP_POLL")


def skip_unless_ring_path():
    if not uring_ring_path():
        print("# skipped: io_uring's multishot recvmsg path only (WHARF_BACKEND=io_uring, "
              "WHARFD_TEST_URING_UDP_POLL unset)")
        return True
    return False


def wait_all_threads_stopped(pid, limit=5.0):
    """kill() returns before the signal lands: until every thread of pid is in state T
    (stopped), one of them may still read what the test sends next."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        states = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:
                continue
        if states and all(st in ("T", "t") for st in states):
            return
        time.sleep(0.005)
    raise RuntimeError(f"wharfd {pid} did not stop within {limit} s of SIGSTOP")


def stopped(s):
    """wharfd stopped (SIGSTOP) for the with-block, so what is sent lines up."""
    class _Stopped:
        def __enter__(self):
            os.kill(s.pid, signal.SIGSTOP)
            wait_all_threads_stopped(s.pid)

        def __exit__(self, *exc):
            os.kill(s.pid, signal.SIGCONT)
    return _Stopped()


@t.test
def mixed_size_burst_each_reply_whole_and_exact():
    with Server("http", "udp", workers=2) as s:
        c = udp_client()
        sent = [payload(i, n) for i, n in enumerate(SIZES)]
        with stopped(s):
            for p in sent:
                c.sendto(p, ("127.0.0.1", s.port["udp"]))
        got = collect(c, len(sent))
        t.check(sorted(got) == sorted(p.upper() for p in sent),
                "one whole, upper-cased reply per datagram, never split or merged",
                sorted(len(g) for g in got))
        u = udp_totals(s)
        t.check(u["udp_datagrams_in"] == len(sent) and u["udp_datagrams_out"] == len(sent),
                "counted in and out", u)
        t.check(u["udp_bytes_in"] == sum(SIZES) == u["udp_bytes_out"], "bytes counted", u)
        if u["udp_ring_arms"]:  # io_uring's multishot recvmsg: no receive calls
            # The kernel ends a multishot recvmsg on a zero-length datagram (a read of 0
            # is its end of stream): the first one here. Armed again at the next turn.
            t.check(u["udp_ring_arms"] == 3 and u["udp_recv_calls"] == 0 and
                    u["udp_send_calls"] == 2,
                    "one multishot recvmsg per worker, the one ended by the zero-length "
                    "datagram armed again; a sendmmsg per loop turn", u)
        else:
            t.check(u["udp_recv_calls"] == 1 and u["udp_send_calls"] == 1,
                    "the queued burst is one recvmmsg and its replies one sendmmsg", u)


@t.test
def served_by_the_backend_asked_for():
    with Server("http", "udp", workers=1) as s:
        c = udp_client()
        c.sendto(b"x", ("127.0.0.1", s.port["udp"]))
        t.check(collect(c, 1) == [b"X"], "answered")
        want = BACKEND if BACKEND != "auto" else s.stats()["backend"]
        t.check(s.stats()["backend"] == want, f"the {want} loop serves it", s.stats()["backend"])


@t.test
def io_uring_udp_poll_that_finds_no_sqe_is_armed_again():
    """io_uring only (epoll has no submission queue): a test hook refuses every 2nd or
    3rd request for an SQE; a socket's poll (or multishot recvmsg) that got none is
    armed at the next turn, so every datagram of a ping-pong (on the poll path each
    answer re-arms the poll) is answered."""
    if BACKEND != "io_uring":
        print("# skipped: the hook is the io_uring backend's (WHARF_BACKEND=io_uring)")
        return
    for n in (2, 3):
        env = {"WHARFD_TEST_HOOKS": "1", "WHARFD_TEST_URING_SQE_FAIL": str(n)}
        with Server("http", "udp", workers=1, env=env) as s:
            c = udp_client(timeout=2)
            ok = 0
            for i in range(30):
                c.sendto(payload(i, 20), ("127.0.0.1", s.port["udp"]))
                try:
                    ok += c.recv(100) == payload(i, 20).upper()
                except socket.timeout:
                    break
            t.check(ok == 30, f"1 in {n} SQEs refused: every datagram answered", ok)
            t.check(s.stats()["totals"]["uring_sq_stalls"] > 0, "stalls counted",
                    s.stats()["totals"]["uring_sq_stalls"])


@t.test
def unbatched_path_one_call_per_datagram():
    with Server("http", "udp", extra=["--udp-batch", "1"], workers=1) as s:
        c = udp_client()
        with stopped(s):
            for i in range(20):
                c.sendto(payload(i, 50), ("127.0.0.1", s.port["udp"]))
        t.check(len(collect(c, 20)) == 20, "all answered")
        u = udp_totals(s)
        t.check(u["udp_recv_calls"] == 20 and u["udp_send_calls"] == 20,
                "--udp-batch 1: recvmsg and sendmsg per datagram", u)


@t.test
def zero_length_answered_with_zero_length_v4_and_v6():
    with Server("http", "udp", extra=["--listen", "udp://[::1]:0"], workers=1) as s:
        c = udp_client()
        c.sendto(b"", ("127.0.0.1", s.port["udp"]))
        r = collect(c, 1)
        t.check(r == [b""], "a zero-length reply (IPv4)", r)
        ready = [l for l in s.log().splitlines() if " ready: " in l][0]
        port6 = int(ready.split("udp://[::1]:")[1].split()[0].rstrip(";"))
        c6 = udp_client(socket.AF_INET6)
        c6.sendto(b"", ("::1", port6))
        c6.sendto(b"v6", ("::1", port6))
        r6 = collect(c6, 2)
        t.check(sorted(r6) == [b"", b"V6"], "IPv6 listener, zero-length too", r6)


@t.test
def oversize_dropped_and_counted_receive_overflow_seen():
    with Server("http", "udp", extra=["--max-message", "1K"], workers=1) as s:
        c = udp_client()
        addr = ("127.0.0.1", s.port["udp"])
        c.sendto(b"x" * 1025, addr)
        c.sendto(b"y" * 1024, addr)
        got = collect(c, 2)
        t.check(got == [b"Y" * 1024], "over --max-message: no reply; at it: answered",
                [len(g) for g in got])
        u = udp_totals(s)
        t.check(u["udp_drop_oversize"] == 1 and u["udp_datagrams_in"] == 2, "counted", u)


@t.test
def full_receive_queue_counted_from_so_rxq_ovfl():
    with Server("http", "udp", extra=["--rcvbuf", "64K"], workers=1) as s:
        c = udp_client()
        addr = ("127.0.0.1", s.port["udp"])
        with stopped(s):
            for i in range(100):
                c.sendto(payload(i, 8000), addr)
        got = len(collect(c, 100))
        # The count rides on a later datagram (SO_RXQ_OVFL): send one more.
        c.sendto(b"last", addr)
        got += len(collect(c, 1))
        u = udp_totals(s)
        t.check(u["udp_rxq_overflow"] > 0, "the kernel's drops are counted", u)
        t.check(u["udp_rxq_overflow"] + u["udp_datagrams_in"] == 101,
                "every datagram sent was read or counted as dropped", u)
        t.check(got == u["udp_datagrams_out"], "each read one answered", (got, u))


@t.test
def full_send_buffer_drops_replies_and_counts_them():
    # Loopback hands a datagram to its receiver at once, so a send buffer never fills
    # there: in a namespace of our own, a slow tbf queue on lo holds the replies.
    with NetNS("wharf-udp-sndbuf") as ns:
        ns.ip("link", "set", "lo", "up")
        ns.run(["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "2mbit",
                "burst", "4kb", "latency", "5s"])
        s = Server("http", "udp", extra=["--sndbuf", "4K"], workers=1,
                   prefix=ns.ex())
        with s, ns.entered():
            c = udp_client()
            with stopped(s):
                # Sizes alternate so that no two replies in a row are equal: io_uring sends
                # a run of equal-size replies to one peer as one UDP_SEGMENT message, which
                # the kernel charges as one and admits whole into an empty send buffer.
                for i in range(40):
                    c.sendto(payload(i, 1000 + i % 2), ("127.0.0.1", s.port["udp"]))
                time.sleep(0.5)  # the requests pass the 2 Mbit/s queue first
            got = len(collect(c, 40, quiet=1.5))
            u = udp_totals(s)
        t.check(u["udp_drop_sndbuf"] > 0, "replies with no room are dropped and counted", u)
        t.check(u["udp_datagrams_out"] + u["udp_drop_sndbuf"] == u["udp_datagrams_in"] == 40,
                "each datagram answered or its reply counted as dropped", u)
        t.check(got == u["udp_datagrams_out"], "the client got what was sent", (got, u))


@t.test
def icmp_error_from_a_closed_client_port_is_counted():
    with Server("http", "udp", workers=1) as s:
        # The kernel rate-limits ICMP errors (net.ipv4.icmp_msgs_per_sec, a bucket the
        # whole namespace shares): while other loads on the machine spend it, one port
        # unreachable may never be sent. A few tries, each with a fresh closed port.
        for _ in range(5):
            c = udp_client()
            with stopped(s):
                c.sendto(b"gone", ("127.0.0.1", s.port["udp"]))
                c.close()  # the reply meets a closed port: ICMP port unreachable
            deadline = time.monotonic() + 2
            while udp_totals(s)["udp_icmp_errors"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            if udp_totals(s)["udp_icmp_errors"]:
                break
        u = udp_totals(s)
        t.check(u["udp_icmp_errors"] >= 1, "read from the error queue and counted", u)
        c2 = udp_client()
        c2.sendto(b"still", ("127.0.0.1", s.port["udp"]))
        t.check(collect(c2, 1) == [b"STILL"], "and the socket serves on")


@t.test
def sigterm_answers_what_is_queued():
    # --udp-batch 1: a readiness report answers at most 8 datagrams, so the 50 queued
    # are answered only if the loop's end reads the socket empty before it closes.
    # io_uring's multishot recvmsg with a 4-buffer ring: the loop's end sends the replies
    # its last turn queued, then reads the socket empty the same way.
    runs = [("--udp-batch 1", ["--udp-batch", "1"], {})]
    if uring_ring_path():
        runs.append(("a 4-buffer udp ring", [], dict(HOOKS, WHARFD_TEST_URING_UDP_BUFS="4")))
    for what, extra, env in runs:
        s = Server("udp", "raw", extra=extra, workers=1, env=env)
        with s:
            c = udp_client()
            with stopped(s):
                for i in range(50):
                    c.sendto(payload(i, 200), ("127.0.0.1", s.port["udp"]))
                s.signal(signal.SIGTERM)
            got = collect(c, 50, quiet=2)
            code = s.proc.wait(timeout=15)
        t.check(code == 0, f"{what}: exit 0")
        t.check(len(got) == 50, f"{what}: every datagram queued before SIGTERM answered",
                len(got))


@t.test
def io_uring_multishot_recvmsg_where_the_kernel_has_it_poll_when_forced():
    """The probe finds the multishot recvmsg on this kernel (6.0 or later) and udp:// uses
    it; the test hook UDP_POLL (and --udp-batch 1) keep the poll+recvmmsg path."""
    if skip_unless_ring_path():
        return
    for what, extra, env, ring in (("default", [], {}, True),
                                   ("UDP_POLL", [], dict(HOOKS, WHARFD_TEST_URING_UDP_POLL="1"),
                                    False),
                                   ("--udp-batch 1", ["--udp-batch", "1"], {}, False)):
        with Server("http", "udp", extra=extra, workers=1, env=env) as s:
            c = udp_client()
            c.sendto(b"ring", ("127.0.0.1", s.port["udp"]))
            got = collect(c, 1)
            u = udp_totals(s)
        t.check(got == [b"RING"], f"{what}: answered", got)
        if ring:
            t.check(u["udp_ring_arms"] == 1 and u["udp_recv_calls"] == 0,
                    f"{what}: one multishot recvmsg, no receive calls", u)
        else:
            t.check(u["udp_ring_arms"] == 0 and u["udp_recv_calls"] >= 1,
                    f"{what}: the poll path's receive calls", u)


@t.test
def io_uring_datagram_larger_than_its_buffer_is_counted_truncated():
    """A datagram over a ring buffer's room (test hook UDP_ROOM: 512 bytes) arrives cut,
    MSG_TRUNC in its io_uring_recvmsg_out: counted, never answered with the cut part."""
    if skip_unless_ring_path():
        return
    with Server("http", "udp", workers=1, env=dict(HOOKS, WHARFD_TEST_URING_UDP_ROOM="512")) as s:
        c = udp_client()
        addr = ("127.0.0.1", s.port["udp"])
        for p in (payload(0, 1000), payload(1, 512), payload(2, 513)):
            c.sendto(p, addr)
        got = collect(c, 3)
        u = udp_totals(s)
    t.check(got == [payload(1, 512).upper()], "only the one that fits is answered",
            [len(g) for g in got])
    t.check(u["udp_drop_truncated"] == 2 and u["udp_datagrams_in"] == 3 and
            u["udp_bytes_in"] == 3 * 512 and u["udp_drop_oversize"] == 0,
            "two counted truncated; the bytes read counted in (as recvmmsg's)", u)


@t.test
def io_uring_empty_buffer_ring_counted_and_receive_armed_again():
    """A 2-buffer udp ring (test hook UDP_BUFS) against a burst of 40: the multishot
    recvmsg ends with ENOBUFS (no IORING_CQE_F_MORE) while buffers hold datagrams; it is
    counted and armed again, and every datagram is answered (they waited in the socket).
    With replies by sendmmsg per turn, and by SENDMSG SQEs (hook UDP_SENDMSG)."""
    if skip_unless_ring_path():
        return
    for what, more in (("sendmmsg", {}), ("SENDMSG SQEs", {"WHARFD_TEST_URING_UDP_SENDMSG": "1"})):
        env = dict(HOOKS, WHARFD_TEST_URING_UDP_BUFS="2", **more)
        with Server("http", "udp", workers=1, env=env) as s:
            c = udp_client()
            sent = [payload(i, 100) for i in range(40)]
            with stopped(s):
                for p in sent:
                    c.sendto(p, ("127.0.0.1", s.port["udp"]))
            got = collect(c, 40)
            u = udp_totals(s)
        t.check(sorted(got) == sorted(p.upper() for p in sent), f"{what}: all 40 answered",
                len(got))
        t.check(u["udp_ring_nobufs"] >= 1 and u["udp_ring_arms"] >= u["udp_ring_nobufs"] + 1,
                f"{what}: the empty ring counted, the receive armed again after each", u)
        t.check(u["udp_datagrams_out"] == 40 and u["udp_rxq_overflow"] == 0,
                f"{what}: nothing lost", u)


def bench_json(args):
    r = run([WHARF, "bench", "--json"] + args, timeout=60)
    t.check(r.returncode == 0, "wharf bench exits 0", r.stderr[-500:])
    return json.loads(r.stdout)


@t.test
def wharf_bench_counts_agree_with_stats():
    with Server("http", "udp", workers=2) as s:
        b = bench_json(["-c", "4", "-P", "8", "-d", "1s", "--size", "200",
                        f"udp://127.0.0.1:{s.port['udp']}"])
        u = udp_totals(s)
    req, dg = b["requests"], b["datagrams"]
    t.check(req["sent"] > 0 and req["sent"] == u["udp_datagrams_in"] + u["udp_rxq_overflow"],
            "every datagram sent reached the server or its overflow count", (req, u))
    t.check(req["ok"] + dg["lost"] == req["sent"] and req["ok"] <= u["udp_datagrams_out"],
            "each answered or lost", (req, dg, u))
    t.check(u["udp_bytes_in"] == 200 * u["udp_datagrams_in"], "200-byte datagrams", u)


@t.test
def wharf_bench_lost_datagrams_counted_never_retried():
    with Server("http", "udp", extra=["--max-message", "100"], workers=1) as s:
        b = bench_json(["-c", "2", "-P", "4", "-n", "8", "--size", "200", "--timeout", "300ms",
                        f"udp://127.0.0.1:{s.port['udp']}"])
        u = udp_totals(s)
    t.check(b["requests"]["sent"] == 8 and b["datagrams"]["lost"] == 8,
            "all 8 lost (over --max-message)", b["requests"])
    t.check(u["udp_datagrams_in"] == 8 and u["udp_drop_oversize"] == 8,
            "and never sent again", u)


@t.test
def wharf_bench_counts_reordered_duplicated_and_lost_replies():
    # A stand-in server: takes 4 datagrams, answers them in reverse order, each twice,
    # and never answers number 5.
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(5)

    def serve():
        try:
            for _ in range(2):
                batch = [srv.recvfrom(70000) for _ in range(4)]
                for data, addr in reversed(batch):
                    if data.startswith(b"00000005"):
                        continue
                    srv.sendto(data.upper(), addr)
                    srv.sendto(data.upper(), addr)
        except socket.timeout:
            pass
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    b = bench_json(["-c", "1", "-P", "4", "-n", "8", "--timeout", "300ms",
                    f"udp://127.0.0.1:{srv.getsockname()[1]}"])
    th.join(10)
    srv.close()
    d = b["datagrams"]
    t.check(b["requests"]["ok"] == 7 and d["lost"] == 1, "7 answered, number 5 lost", b)
    t.check(d["reordered"] == 5, "3 + 2 replies below a number already answered", d)
    t.check(d["stray"] == 7, "each second copy is a stray", d)


@t.test
def wharf_send_one_datagram_per_line():
    with Server("http", "udp", workers=1) as s:
        r = run([WHARF, "send", f"udp://127.0.0.1:{s.port['udp']}"],
                input="hello\n\nudp world\nquit\nnot sent\n")
    t.check(r.returncode == 0 and r.stdout == "HELLO\nUDP WORLD\n", "replies printed",
            (r.stdout, r.stderr))


@t.test
def inherited_datagram_socket_is_refused_in_one_line():
    # Socket activation hands over one socket; a udp:// port needs one per worker.
    import subprocess
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    fd = u.fileno()
    p = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=udp exec "$0" '
                        '--backend ' + BACKEND, Server("udp").binary],
                       preexec_fn=lambda: os.dup2(fd, 3), pass_fds=(fd,),
                       capture_output=True, text=True, timeout=15)
    u.close()
    t.check(p.returncode == 1 and "is a datagram socket" in p.stderr, "exit 1, one line",
            p.stderr[-300:])


@t.test
def refused_combinations_say_why():
    r = run([Server("udp").binary, "--listen", "udp+proxy://127.0.0.1:0"])
    t.check(r.returncode == 2 and "does not apply to udp" in r.stderr, "udp+proxy", r.stderr)
    r = run([Server("udp").binary, "--listen", "udp://127.0.0.1:0", "--udp-batch", "65"])
    t.check(r.returncode == 2 and "1-64" in r.stderr, "--udp-batch range", r.stderr)


if __name__ == "__main__":
    t.main()

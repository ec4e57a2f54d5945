"""Concurrency and operations against the real wharfd: many connections, backpressure,
timeouts, graceful shutdown, restarts, connection limits, running out of files, and
the memory an idle connection costs."""

import os
import random
import re
import resource
import selectors
import signal
import socket
import subprocess
import threading
import time

from wharfkit.harness import (SANITIZED, Server, Suite, check_sheds_then_recovers, frame, read_frame,
                     recv_exact, recv_until_close, run, wait_until)

t = Suite(__file__)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class FrameClient:
    """One non-blocking connection doing frame round-trips, verifying every byte."""

    def __init__(self, sock, rounds, rng):
        self.sock, self.rounds, self.rng = sock, rounds, rng
        self.done = 0
        self.inbuf = b""
        self.outbuf = b""
        self.expect = None
        self.verified_bytes = 0

    def next_request(self):
        payload = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randrange(0, 200)))
        self.expect = frame(payload.upper())
        self.outbuf = frame(payload)

    def on_readable(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("server closed a connection mid-test")
        self.inbuf += chunk
        if len(self.inbuf) < len(self.expect):
            return
        if self.inbuf != self.expect:
            raise AssertionError(f"reply mismatch: {self.inbuf[:40]!r} != {self.expect[:40]!r}")
        self.verified_bytes += len(self.inbuf)
        self.inbuf = b""
        self.done += 1
        if self.done < self.rounds:
            self.next_request()


def run_frame_clients(port, n_conns, rounds, timeout=120):
    sel = selectors.DefaultSelector()
    rng = random.Random(42)
    clients = []
    for _ in range(n_conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        c = FrameClient(s, rounds, rng)
        c.next_request()
        clients.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    deadline = time.monotonic() + timeout
    remaining = n_conns
    while remaining and time.monotonic() < deadline:
        for key, ev in sel.select(1.0):
            c = key.data
            if ev & selectors.EVENT_WRITE and c.outbuf:
                n = c.sock.send(c.outbuf)
                c.outbuf = c.outbuf[n:]
            if ev & selectors.EVENT_READ:
                c.on_readable()
                if c.done == rounds:
                    sel.unregister(c.sock)
                    remaining -= 1
                    continue
            sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0),
                       c)
    for c in clients:
        c.sock.close()
    return clients


@t.test
def thousand_connections_hundred_frame_round_trips_each():
    raise_nofile()
    conns, rounds = 1000, 100
    with Server("frame", "http") as s:
        before = s.stats()["totals"]
        calls0 = s.stats_calls
        t0 = time.monotonic()
        clients = run_frame_clients(s.port["frame"], conns, rounds)
        took = time.monotonic() - t0
        done = sum(c.done for c in clients)
        verified = sum(c.verified_bytes for c in clients)
        after = wait_until(lambda: (lambda st: st if st["totals"]["active"] <= 1 else None)(
            s.stats()), 10)["totals"]
        print(f"# {conns} connections x {rounds} round-trips: {done} replies, {verified} bytes "
              f"verified in {took:.1f}s; server counted {after['messages'] - before['messages']}"
              f" messages, {after['accepted'] - before['accepted']} connections")
        t.check(done == conns * rounds, "every round-trip answered", done)
        # Each /stats request is a connection and a message of its own: the first is
        # counted once answered, the last counts its own connection only.
        own = s.stats_calls - calls0
        t.check(after["messages"] - before["messages"] == conns * rounds + own,
                "server count matches")
        t.check(after["accepted"] - before["accepted"] == conns + own, "1000 accepted")
        t.check(after["protocol_errors"] == 0 and after["resets"] == 0, "no errors", after)


@t.test
def client_that_never_reads_stays_within_the_output_bound():
    with Server("line", "http", workers=1, extra=["--max-output", "256K"]) as s:
        rss0 = s.rss_kib()
        hog = s.connect("line")
        hog.setblocking(False)
        line = b"x" * 1023 + b"\n"
        sent, stalled_since = 0, None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sent < (64 << 20):
            try:
                sent += hog.send(line * 64)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.0:
                    break  # the server stopped reading: backpressure holds
                time.sleep(0.01)
        growth = s.rss_kib() - rss0
        st = s.stats()["totals"]
        # Meanwhile another client is served at once.
        other = s.connect("line")
        other.sendall(b"still here\n")
        t.check(recv_exact(other, 11) == b"STILL HERE\n", "others still served")
        other.close()
        hog.close()
        print(f"# sent {sent >> 10} KiB without reading; server RSS grew {growth} KiB; "
              f"output_paused={st['output_paused']}")
        t.check(sent < (64 << 20), "the server stopped reading", sent)
        t.check(st["output_paused"] >= 1, "backpressure engaged", st["output_paused"])
        bound = 16384 if SANITIZED else 4096  # ASan keeps freed memory in quarantine
        t.check(growth < bound, f"RSS bounded (< {bound} KiB growth)", growth)


@t.test
def idle_connection_is_closed_after_the_idle_timeout():
    with Server("frame", "http", extra=["--idle-timeout", "1s"]) as s:
        c = s.connect("frame")
        c.sendall(frame(b"hi"))
        t.check(read_frame(c) == b"HI", "served")
        t0 = time.monotonic()
        c.settimeout(10)
        t.check(recv_until_close(c) == b"", "then closed by the server")
        took = time.monotonic() - t0
        t.check(0.8 < took < 3.0, "after about 1 s", took)
        t.check(s.stats()["totals"]["idle_timeouts"] == 1, "counted")


def load_thread(port, stop, counts, idx, errors):
    """Closed-loop frame round-trips until the server closes the connection."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as e:
        errors.append(f"connect: {e}")
        return
    n = 0
    payload = b"req-%d" % idx
    try:
        while True:
            try:
                s.sendall(frame(payload))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                hdr = s.recv(4, socket.MSG_WAITALL)
            except ConnectionResetError:
                break
            if len(hdr) < 4:
                break  # closed: the request we just sent was never read
            body = recv_exact(s, int.from_bytes(hdr, "big"))
            if body != payload.upper():
                errors.append("mismatch")
                break
            n += 1
    except Exception as e:  # noqa: BLE001 - any failure is a test failure
        errors.append(repr(e))
    finally:
        counts[idx] = n
        s.close()


@t.test
def graceful_shutdown_under_load_loses_no_response():
    n = 40
    with Server("frame", check_exit=False) as s:
        counts, errors, stop = [0] * n, [], threading.Event()
        threads = [threading.Thread(target=load_thread, args=(s.port["frame"], stop, counts, i,
                                                              errors)) for i in range(n)]
        for th in threads:
            th.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        code = s.stop(timeout=30)
        took = time.monotonic() - t0
        for th in threads:
            th.join(15)
        log = s.log()
        m = re.search(r"exit: .*messages=(\d+)", log)
        t.check(code == 0, "exit 0", code)
        t.check(took < 10, "within --shutdown-timeout", took)
        t.check(m is not None, "exit summary logged", log[-500:])
        served = int(m.group(1))
        print(f"# {n} clients: {sum(counts)} replies received, server answered {served}, "
              f"stopped in {took:.2f}s")
        t.check(not errors, "no client errors", errors[:5])
        t.check(sum(counts) == served, "every request the server read was answered",
                (sum(counts), served))
        t.check(sum(counts) > 0, "load was running")


@t.test
def shutdown_waits_for_a_half_received_message_then_cuts_at_the_timeout():
    with Server("frame", check_exit=False, extra=["--shutdown-timeout", "2s"]) as s:
        c = s.connect("frame")
        c.sendall(frame(b"hello")[:5])
        time.sleep(0.2)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        time.sleep(0.3)
        c.sendall(frame(b"hello")[5:])
        t.check(read_frame(c) == b"HELLO", "the message completed during draining is answered")
        t.check(recv_until_close(c) == b"", "then closed")
        c.close()
        c2_code = s.wait(10)
        t.check(c2_code == 0 and time.monotonic() - t0 < 2.5, "exit 0 once drained")
    with Server("frame", check_exit=False, extra=["--shutdown-timeout", "1s"]) as s:
        c = s.connect("frame")
        c.sendall(frame(b"hello")[:5])  # and never the rest: a client that vanished
        time.sleep(0.2)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        code = s.wait(10)
        took = time.monotonic() - t0
        t.check(code == 0 and 0.9 < took < 2.5, "cut after --shutdown-timeout, exit 0",
                (code, took))
        c.close()
    with Server("frame", check_exit=False, extra=["--shutdown-timeout", "30s"]) as s:
        c = s.connect("frame")
        c.sendall(frame(b"hello")[:5])
        time.sleep(0.2)
        s.signal(signal.SIGTERM)
        time.sleep(0.3)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        code = s.wait(10)
        t.check(code == 0 and time.monotonic() - t0 < 1.0, "a second SIGTERM cuts at once",
                (code, time.monotonic() - t0))
        t.check("closing every connection now" in s.log(), "and says so")
        c.close()


@t.test
def connection_accepted_before_shutdown_gets_a_grace_for_its_first_request():
    # In a rolling restart a client may connect just before SIGTERM and send its request
    # just after: it must be answered, not closed unread.
    with Server("frame", "http", check_exit=False, extra=["--shutdown-timeout", "10s"]) as s:
        c = s.connect("frame")
        idle_used = s.connect("frame")
        idle_used.sendall(frame(b"x"))
        t.check(read_frame(idle_used) == b"X", "a used connection is answered")
        unused = s.connect("frame")
        time.sleep(0.2)
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        t.check(recv_until_close(idle_used) == b"" and time.monotonic() - t0 < 0.5,
                "an idle used connection is closed at once", time.monotonic() - t0)
        time.sleep(0.3)
        c.sendall(frame(b"late"))
        t.check(read_frame(c) == b"LATE", "a request sent 0.3 s into the drain is answered")
        t.check(recv_until_close(c) == b"", "then the connection is closed")
        t.check(recv_until_close(unused) == b"", "a never-used connection is closed")
        took = time.monotonic() - t0
        t.check(0.8 < took < 2.0, "after about a second, not --shutdown-timeout", took)
        code = s.wait(10)
        t.check(code == 0 and time.monotonic() - t0 < 2.5, "exit 0 once drained", code)
        for x in (c, idle_used, unused):
            x.close()


@t.test
def restart_on_the_same_port_binds_at_once():
    port = None
    with Server("http") as s:
        port = s.port["http"]
        for _ in range(20):
            c = s.connect("http")
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            recv_until_close(c)
            c.close()
    tw = run(["ss", "-Htan", "state", "time-wait", f"sport = :{port}"]).stdout
    t.check(tw.strip() != "", "the server's side holds TIME_WAIT on its port")
    t0 = time.monotonic()
    with Server("http", ports={"http": port}) as s2:
        t.check(time.monotonic() - t0 < 5, "bound at once despite TIME_WAIT")
        c = s2.connect("http")
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        t.check(b"Hello, World!" in recv_until_close(c), "and serves")
        c.close()


@t.test
def max_conns_accepts_and_closes_the_excess():
    with Server("frame", "http", workers=1, extra=["--max-conns", "10"]) as s:
        # the harness's readiness probe and /stats use connections too: let them go
        wait_until(lambda: s.stats()["totals"]["active"] <= 1)
        time.sleep(0.3)
        keep = [s.connect("frame") for _ in range(10)]
        for c in keep:
            c.sendall(frame(b"k"))
            t.check(read_frame(c) == b"K", "within the limit: served")
        extra = [s.connect("frame") for _ in range(5)]
        for c in extra:
            c.settimeout(5)
            try:
                data = c.recv(10)
            except ConnectionResetError:
                data = b""
            t.check(data == b"", "over the limit: closed at once")
        for c in keep[:3]:
            c.close()
        time.sleep(0.2)
        again = s.connect("frame")
        again.sendall(frame(b"x"))
        t.check(read_frame(again) == b"X", "served again once below the limit")
        st = s.stats()
        t.check(st["acceptor"]["rejected_max_conns"] >= 5, "counted", st["acceptor"])
        for c in keep + extra + [again]:
            c.close()


def fd_table_size(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("FDSize:"):
                return int(line.split()[1])
    raise AssertionError("no FDSize in /proc/PID/status")


@t.test
def descriptor_table_is_sized_for_max_conns_before_the_workers_start():
    # Grown later, each doubling of the table waits for an RCU grace period inside the
    # accept4 that needed it (8.6 ms measured), stalling every connection of the worker.
    raise_nofile()
    with Server("frame", workers=2, extra=["--max-conns", "5000"]) as s:
        size = fd_table_size(s.pid)
        t.check(size >= 5000, "sized for --max-conns 5000 at start", size)
    with Server("frame", workers=2, extra=["--max-conns", "100"]) as s:
        size = fd_table_size(s.pid)
        t.check(100 <= size <= 512, "sized for --max-conns 100, not for the file limit", size)


@t.test
def running_out_of_files_sheds_new_connections_without_spinning():
    raise_nofile()
    # Two workers, so that the acceptor thread's accept4 meets the lowered limit (a single
    # worker accepts on its own; with io_uring that is a multishot accept, which keeps the
    # limit it was armed with: test_backends.py covers that path with one-shot accepts).
    with Server("frame", workers=2) as s:
        # Lower the running server's file limit under its --max-conns: accept hits EMFILE.
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (48, 48))
        check_sheds_then_recovers(t, s, "under a 48-file limit")


@t.test
def ten_thousand_idle_http_connections_cost_little_memory():
    if SANITIZED:
        return  # sanitizer allocators make the figure meaningless
    raise_nofile()
    n = 10000
    with Server("http", workers=1) as s:
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        warm = [s.connect("http") for _ in range(200)]
        for c in warm:
            c.sendall(req)
            c.recv(4096)
        time.sleep(0.2)
        rss0 = s.rss_kib()
        conns = []
        for _ in range(n):
            c = s.connect("http")
            c.sendall(req)
            conns.append(c)
        for c in conns:
            data = c.recv(4096)
            if not data.endswith(b"Hello, World!"):
                raise AssertionError(f"bad reply {data!r}")
        time.sleep(0.3)
        rss1 = s.rss_kib()
        active = s.stats()["totals"]["active"]
        per_conn = (rss1 - rss0) * 1024 / n
        print(f"# {n} idle keep-alive connections: RSS {rss0} KiB -> {rss1} KiB, "
              f"{per_conn:.0f} bytes per connection (active={active})")
        for c in conns + warm:
            c.close()
        t.check(active >= n, "all held", active)
        t.check(per_conn <= 256, "<= 256 bytes of user-space RSS per idle connection",
                per_conn)


t.main()

#!/usr/bin/env python3
"""bench/proxy-keepalive: what a +proxy listener costs a kept-alive connection.

One wharfd (--workers 1, pinned to CPU 0) with two listeners, http:// and http+proxy://.
Clients (two processes pinned to CPU 1, C connections each, one request in flight per
connection) send keep-alive GET / to each in turn, A B A B over R rounds; on the proxy
listener each connection sends a PROXY v1 header first. wrk cannot be used: it checks
that what its script sends is an HTTP request. The figure is wharfd's own CPU time per
request (utime+stime from /proc, before and after each run, over the requests the
clients counted): the header is paid once per connection, so the two should be within
noise. Prints one line per run and the medians.

    bench/proxy-keepalive [--rounds 4] [--seconds 4] [--conns 25] [--backend epoll]
"""
import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time

from wharfkit import binary, proc
from wharfkit.net import free_port, wait_until, accepts

REQ = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
BODY = b"Hello, World!"


def client(port, conns, seconds, proxy):
    """Run in a child: keep-alive requests until the time is up; print the count."""
    sel = selectors.DefaultSelector()
    for i in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        head = b"PROXY TCP4 192.0.2.%d 127.0.0.1 1000 80\r\n" % (i % 250 + 1) if proxy else b""
        s.send(head + REQ)
        sel.register(s, selectors.EVENT_READ, [b""])
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(1):
            s, pending = key.fileobj, key.data
            d = s.recv(65536)
            if not d:
                sys.exit("closed by the server")
            pending[0] += d
            while BODY in pending[0]:  # every reply ends with the same 13-byte body
                pending[0] = pending[0].split(BODY, 1)[1]
                done += 1
                s.send(REQ)
    print(done)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def one_run(pid, port, kind, a):
    c0 = cpu_ticks(pid)
    kids = [subprocess.Popen(["taskset", "-c", "1", sys.executable, __file__, "--client",
                              str(port), str(a.conns), str(a.seconds), kind],
                             stdout=subprocess.PIPE, text=True) for _ in range(2)]
    reqs = sum(int(k.communicate(timeout=a.seconds + 30)[0] or 0) for k in kids)
    ticks = cpu_ticks(pid) - c0
    us = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / max(reqs, 1)
    ms = ticks * 1000 // os.sysconf("SC_CLK_TCK")
    print(f"{kind:5s} requests={reqs:7d} server_cpu_ms={ms:5d} us_per_request={us:.2f}",
          flush=True)
    return us


def main():
    if sys.argv[1:2] == ["--client"]:
        p, c, s, kind = sys.argv[2:6]
        return client(int(p), int(c), float(s), kind == "proxy")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--conns", type=int, default=25, help="connections per client process")
    ap.add_argument("--backend", default="epoll")
    a = ap.parse_args()
    ports = {"plain": free_port(), "proxy": free_port()}
    w = subprocess.Popen(["taskset", "-c", "0", binary("wharfd"), "--workers", "1",
                          "--backend", a.backend, "--log-level", "warn",
                          "--listen", f"http://127.0.0.1:{ports['plain']}",
                          "--listen", f"http+proxy://127.0.0.1:{ports['proxy']}"])
    try:
        if not wait_until(lambda: all(accepts("127.0.0.1", p) for p in ports.values()), 10):
            sys.exit("wharfd did not start")
        res = {"plain": [], "proxy": []}
        for _ in range(a.rounds):
            for kind in ("plain", "proxy"):
                res[kind].append(one_run(w.pid, ports[kind], kind, a))
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"median us/request ({a.backend}): plain {med['plain']:.2f}, proxy "
              f"{med['proxy']:.2f}, proxy/plain {med['proxy'] / med['plain']:.3f}")
    finally:
        proc.stop(w, timeout=5)


if __name__ == "__main__":
    main()

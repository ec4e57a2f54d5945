#!/usr/bin/env python3
"""The floor servers (build/floor, bench/floor/floor.c) answer what the harnesses ask:
HTTP (pipelined requests each get the response; Connection: close is announced and
honoured), frames (echoed upper-cased, several per read) and datagrams (each answered
whole, upper-cased). Prints what is wrong, if
anything, and exits 1; bounded to a few seconds. Usage: check_floor.py BUILD_DIR"""
import os
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port):
    deadline = time.monotonic() + 5
    while True:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            return c
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def read_all(c):
    out = b""
    while True:
        b = c.recv(65536)
        if not b:
            return out
        out += b


def check_http(floor):
    port = free_port()
    p = subprocess.Popen([floor, "http", str(port)], stderr=subprocess.DEVNULL)
    try:
        c = connect(port)
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        c.sendall(req * 2 + b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        text = read_all(c)
        c.close()
        if text.count(b"HTTP/1.1 200 OK\r\n") != 3 or text.count(b"Hello, World!") != 3:
            return f"http: three pipelined requests, got {text[:400]!r}"
        if text.count(b"Connection: close\r\n") != 1 or not text.endswith(b"Hello, World!"):
            return f"http: the last answer should announce the close: {text[-200:]!r}"
    finally:
        p.kill()
        p.wait()
    return ""


def check_frame(floor):
    port = free_port()
    p = subprocess.Popen([floor, "frame", str(port)], stderr=subprocess.DEVNULL)
    try:
        c = connect(port)
        msgs = [b"hello", b"", b"Wharf-1 zz" * 100]
        wire = b"".join(len(m).to_bytes(4, "big") + m for m in msgs)
        c.sendall(wire[:7])
        time.sleep(0.1)  # a frame split across reads
        c.sendall(wire[7:])
        want = b"".join(len(m).to_bytes(4, "big") + m.upper() for m in msgs)
        got = b""
        while len(got) < len(want):
            b = c.recv(65536)
            if not b:
                break
            got += b
        c.close()
        if got != want:
            return f"frame: want {want[:60]!r}..., got {got[:60]!r}..."
    finally:
        p.kill()
        p.wait()
    return ""


def check_udp(floor):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    u.close()
    p = subprocess.Popen([floor, "udp", str(port)], stderr=subprocess.DEVNULL)
    try:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(0.3)
        msgs = [b"hello", b"", b"Wharf-1 zz" * 100]
        got = None
        for _ in range(15):  # until the floor is up: a datagram before it is lost
            c.sendto(msgs[0], ("127.0.0.1", port))
            try:
                got = c.recv(65536)
                break
            except socket.timeout:
                pass
        if got != msgs[0].upper():
            return f"udp: no answer to {msgs[0]!r} (got {got!r})"
        for m in msgs:  # a burst: each datagram answered whole, upper-cased
            c.sendto(m, ("127.0.0.1", port))
        c.settimeout(2)
        got = sorted(c.recv(65536) for _ in msgs)
        if got != sorted(m.upper() for m in msgs):
            return f"udp: want {[m[:20] for m in msgs]!r}, got {[g[:20] for g in got]!r}"
    except socket.timeout:
        return "udp: a reply is missing"
    finally:
        p.kill()
        p.wait()
    return ""


def main():
    floor = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "floor")
    if not os.access(floor, os.X_OK):
        print(f"{floor} is missing (make all builds it)")
        return 1
    why = [w for w in (check_http(floor), check_frame(floor), check_udp(floor)) if w]
    if why:
        print("; ".join(why))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

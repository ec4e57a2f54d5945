#!/usr/bin/env python3
"""Open N HTTP connections to wharfd, send each one request with `Connection: close`,
read the reply, and then hold every socket open without ever closing it (nor
shutting it down) until killed. wharfd answers and closes first; our kernel ACKs its
FIN, so the server's socket sits in FIN_WAIT_2 waiting for a FIN that never comes,
and ours in CLOSE_WAIT. For the fin_timeout experiment. Standard library only.

Prints one line `held N` once every reply is in, then sleeps.
"""
import socket
import sys
import time


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    req = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(req)
        socks.append(s)
    for s in socks:
        got = b""
        while b"\r\n\r\n" not in got:  # the reply's header; the body is 13 bytes
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    print(f"held {len(socks)}", flush=True)
    while True:  # never close: the sockets stay open until the process is killed
        time.sleep(3600)


if __name__ == "__main__":
    main()

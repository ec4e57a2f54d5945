#!/usr/bin/env python3
"""A frame-protocol client for the nagle experiment: every request goes out as TWO
write() calls, the 4-byte length header and then the body, as the tutorial's
"header, then body" code does. wharf's own client writes a request in one call, so
it cannot show what Nagle's algorithm does to the second, small write.

Each connection runs in its own thread: send PIPELINE requests (2 writes each),
read the replies, check them (wharfd --mode upper), repeat until DURATION is over.
Latency of a request: from its first write to the last byte of its reply.
Prints one JSON object. Python standard library only.
"""
import argparse
import json
import socket
import struct
import threading
import time


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def worker(args, deadline, out, errors):
    lat = []
    try:
        s = socket.create_connection((args.host, args.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if args.nodelay == "on" else 0)
        body = b"a" * args.size
        hdr = struct.pack(">I", args.size)
        reply = hdr + body.upper()
        want = len(reply) * args.pipeline
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            for _ in range(args.pipeline):
                if args.split == "on":
                    s.sendall(hdr)   # write 1: the header
                    s.sendall(body)  # write 2: the body
                else:
                    s.sendall(hdr + body)
            got = bytearray()
            done = 0
            while len(got) < want:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by the server")
                got += chunk
                now = time.perf_counter()
                while done < args.pipeline and len(got) >= (done + 1) * len(reply):
                    lat.append(now - t0)
                    done += 1
            if bytes(got) != reply * args.pipeline:
                raise ValueError("reply mismatch")
        s.close()
    except Exception as e:  # reported, not raised: the experiment counts them
        errors.append(repr(e))
    out.extend(lat)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--nodelay", choices=("on", "off"), default="on")
    ap.add_argument("--split", choices=("on", "off"), default="on",
                    help="on: header and body in two writes (default); off: one write")
    args = ap.parse_args()
    lats, errors, threads = [], [], []
    start = time.monotonic()
    deadline = start + args.duration
    for _ in range(args.conns):
        t = threading.Thread(target=worker, args=(args, deadline, lats, errors), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(args.duration + 30)
    elapsed = time.monotonic() - start
    lats.sort()
    us = [x * 1e6 for x in lats]
    print(json.dumps({
        "requests": len(us),
        "requests_per_sec": len(us) / elapsed if elapsed > 0 else 0.0,
        "p50_us": percentile(us, 50), "p90_us": percentile(us, 90),
        "p99_us": percentile(us, 99), "max_us": us[-1] if us else 0.0,
        "mean_us": sum(us) / len(us) if us else 0.0,
        "over_30ms": sum(1 for x in us if x >= 30000),
        "errors": errors,
    }))


if __name__ == "__main__":
    main()

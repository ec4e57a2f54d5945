#!/usr/bin/env python3
"""boundaries_client: one burst of mixed-size messages to wharfd over one transport
(raw TCP, frame TCP or UDP), replies read back; prints one JSON line: the reads the
client needed and how the reads lined up with the messages (intact, split, merged),
and whether every reply was the upper-cased request.

Used by boundaries.py, inside its network namespace."""
import argparse
import json
import socket
import struct
import threading


def message(i, size):
    head = f"{i:05d}:".encode()
    return (head + b"abcdefghijklmnopqrstuvwxyz" * (size // 26 + 1))[:size]


def alignment(sizes, reads):
    """Messages split over several reads, reads that carried parts of several
    messages, and messages that came in exactly one read of their own."""
    ends, pos = [], 0
    for s in sizes:
        pos += s
        ends.append(pos)
    starts = [e - s for e, s in zip(ends, sizes)]
    read_edges, pos = [], 0
    for r in reads:
        read_edges.append((pos, pos + r))
        pos += r
    exact_reads = set(read_edges)
    split = sum(1 for s, e in zip(starts, ends) if any(s < b < e for _, b in read_edges))
    merged = sum(1 for a, b in read_edges if any(a < e < b for e in ends))
    intact = sum(1 for s, e in zip(starts, ends) if (s, e) in exact_reads)
    return split, merged, intact


def tcp(args, sizes, framed):
    msgs = [message(i, n) for i, n in enumerate(sizes)]
    wire = [struct.pack(">I", len(m)) + m if framed else m for m in msgs]
    total = sum(len(w) for w in wire)
    c = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reads, got = [], bytearray()

    def reader():
        while len(got) < total:
            d = c.recv(1 << 20)
            if not d:
                break
            reads.append(len(d))
            got.extend(d)
    th = threading.Thread(target=reader)
    th.start()
    for w in wire:
        c.sendall(w)  # one write per message
    th.join(30)
    c.close()
    ok = bytes(got) == b"".join(w.upper() if not framed else w[:4] + w[4:].upper()
                                for w in wire)
    split, merged, intact = alignment([len(w) for w in wire], reads)
    return dict(messages=len(msgs), bytes=total, client_writes=len(wire), client_reads=len(reads),
                split=split, merged=merged, intact=intact, exact=ok, lost=0)


def udp(args, sizes):
    msgs = [message(i, n) for i, n in enumerate(sizes)]
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    c.connect(("127.0.0.1", args.port))
    c.settimeout(2)
    for m in msgs:
        c.send(m)
    replies = []
    try:
        while len(replies) < len(msgs):
            replies.append(c.recv(70000))
    except socket.timeout:
        pass
    c.close()
    want = {m.upper() for m in msgs}
    exact = sum(1 for r in replies if r in want)
    return dict(messages=len(msgs), bytes=sum(sizes), client_writes=len(msgs),
                client_reads=len(replies), split=0, merged=0, intact=exact,
                exact=exact == len(msgs) == len(replies), lost=len(msgs) - len(replies))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", choices=("raw", "frame", "udp"), required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sizes", required=True, help="comma-separated message sizes")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    r = udp(args, sizes) if args.transport == "udp" else tcp(args, sizes, args.transport == "frame")
    print(json.dumps(r))


if __name__ == "__main__":
    main()

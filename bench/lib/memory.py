#!/usr/bin/env python3
"""bench/memory: the server's user-space memory per idle connection, wharfd vs nginx.

Each server starts fresh, pinned to CPU 0, and its resident memory (VmRSS, summed
over its processes) is read once it is idle. Then N connections (10,000 and
19,000) are opened to it, each proves itself live with one request and reply,
and all are held idle; after a second of rest the memory is read again:
(RSS held - RSS idle) / N is the figure. RSS is user-space memory only (socket
buffers live in the kernel). Loads:

- wharfd http:// and nginx: HTTP/1.1 keep-alive, one GET / per connection, held by
  a client in this script (`wharf hold` does not speak HTTP);
- wharfd frame://: `wharf hold` (one 16-byte frame per connection).

nginx allocates its connection table (worker_connections, 20,000 here) when it
starts, so that part is in its idle RSS, not in the per-connection delta; the
table shows the idle RSS too. Bar (bench/README.md): wharfd <= 256 bytes of
user-space RSS per idle connection at 10,000 connections.

Writes runs.csv, table.md, summary.json, meta.txt to --out (default
bench/results/DATE-memory/).
"""

import argparse
import json
import os
import resource
import selectors
import socket
import struct
import subprocess
import sys
import time

import benchlib as bl

BAR_BYTES = 256
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
FIELDS = ["round", "server", "load", "conns", "held", "errors", "rss_idle_kib", "rss_held_kib",
          "bytes_per_conn", "pss_idle_kib", "pss_held_kib", "pss_bytes_per_conn",
          "connect_s", "server_alive"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--rounds", type=int, default=1, help="repetitions (default 1; median)")
    ap.add_argument("--duration", type=float, default=1.0,
                    help="seconds the connections rest before the reading (default 1)")
    ap.add_argument("--conns", default="10000,19000")
    ap.add_argument("--loads", default="wharfd-http,nginx-http,wharfd-frame",
                    help="comma list of: wharfd-http, nginx-http, wharfd-frame")
    ap.add_argument("--quick", action="store_true", help="smoke mode: 1,000 connections")
    ap.add_argument("--wharfd-args", default="", help="extra wharfd arguments (one string)")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-memory/)")
    a = ap.parse_args()
    if a.quick:
        if a.conns == ap.get_default("conns"):
            a.conns = "1000"
        a.duration = 0.3
    a.conns = [int(c) for c in a.conns.split(",") if c]
    a.loads = [x for x in a.loads.split(",") if x]
    a.out = a.out or bl.default_out("quick-memory" if a.quick else "memory")
    a.backend = ""
    return a


class HttpHolder:
    """n keep-alive HTTP connections, each proven with one GET / and reply."""

    def __init__(self, port, n, sources, timeout=30.0):
        self.socks = []
        self.errors = 0
        self.port, self.n, self.sources, self.timeout = port, n, sources, timeout

    def open(self, rate=20000):
        sel = selectors.DefaultSelector()
        req = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n").encode()
        pending = {}
        start = time.monotonic()
        deadline = start + self.timeout + self.n / rate
        opened = 0
        while (opened < self.n or pending) and time.monotonic() < deadline:
            # open at most `rate` per second, in steps
            allowed = min(self.n, int((time.monotonic() - start) * rate) + 256)
            while opened < allowed and len(pending) < 4096:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Pick the port at connect(), which knows the whole 4-tuple: a plain
                # bind(port 0) takes a port for itself alone and, past half the range,
                # scans the range at every call (seconds per thousand connections).
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((self.sources[opened % len(self.sources)], 0))
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", self.port))
                except BlockingIOError:
                    pass
                except OSError:
                    self.errors += 1
                    s.close()
                    opened += 1
                    continue
                pending[s] = [b"", False]
                sel.register(s, selectors.EVENT_WRITE)
                opened += 1
            for key, ev in sel.select(timeout=0.05):
                s = key.fileobj
                st = pending[s]
                try:
                    if ev & selectors.EVENT_WRITE and not st[1]:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, os.strerror(err))
                        s.send(req)
                        st[1] = True
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    data = s.recv(4096)
                    if not data:
                        raise OSError("closed")
                    st[0] += data
                    if b"\r\n\r\n" in st[0] and st[0].endswith(b"Hello, World!"):
                        sel.unregister(s)
                        del pending[s]
                        self.socks.append(s)
                except OSError:
                    self.errors += 1
                    sel.unregister(s)
                    del pending[s]
                    s.close()
        for s in pending:
            self.errors += 1
            s.close()
        sel.close()
        return time.monotonic() - start

    def close(self):
        for s in self.socks:
            s.close()  # SO_LINGER 0: a reset, so no TIME_WAIT piles up for the next run
        self.socks = []


def rss_now(srv):
    return bl.memory_kib(srv.pids())


def wait_fds(pid, want, timeout):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        try:
            if len(os.listdir(f"/proc/{pid}/fd")) >= want:
                return True
        except OSError:
            return False
        time.sleep(0.05)
    return False


def one_run(a, load, n, rnd, source, wharf):
    server, proto = load.split("-")
    if server == "wharfd":
        srv = bl.wharfd(a.wharfd_bin, protos=("http", proto) if proto != "http" else ("http",),
                        extra=a.wharfd_args.split())
    else:
        srv = bl.Nginx()
    srv.start()
    try:
        if server == "wharfd" and not a.backend:
            a.backend = srv.backend()
        time.sleep(0.3)
        idle_rss, idle_pss = rss_now(srv)
        errors = 0
        held = 0
        if proto == "http":
            h = HttpHolder(srv.port["http"], n, source)
            connect_s = h.open()
            held, errors = len(h.socks), h.errors
            time.sleep(a.duration)
            held_rss, held_pss = rss_now(srv)
            h.close()
        else:
            hold_s = a.duration + 0.7  # idle time after all are live; RSS is read inside it
            base = len(os.listdir(f"/proc/{srv.pid}/fd"))
            cmd = [wharf, "hold", "-c", str(n), "-d", f"{int(hold_s * 1000)}ms", "--json",
                   "--allow-errors", "--source", ",".join(source), f"{proto}://127.0.0.1:{srv.port[proto]}"]
            t0 = time.monotonic()
            p = bl.spawn(bl.taskset(bl.LOAD_CPU, cmd), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
            try:
                wait_fds(srv.pid, base + n, n / 5000 + 20)
                connect_s = time.monotonic() - t0
                time.sleep(a.duration)
                held_rss, held_pss = rss_now(srv)
                out, _ = p.communicate(timeout=hold_s + n / 5000 + 60)
            finally:
                if p.poll() is None:
                    bl.stop_process(p, grace=2)
            try:
                r = json.loads(out.decode().strip().splitlines()[-1])
                held = r["live"]
                errors = r["failed"] + r["probe_failed"] + r["lost"]["total"]
            except (ValueError, IndexError, KeyError, TypeError):
                errors = n
        alive = srv.alive()
    finally:
        srv.stop()
    per = (held_rss - idle_rss) * 1024 / held if held else None
    per_pss = (held_pss - idle_pss) * 1024 / held if held else None
    return {"round": rnd, "server": server, "load": load, "conns": n, "held": held,
            "errors": errors, "rss_idle_kib": idle_rss, "rss_held_kib": held_rss,
            "bytes_per_conn": round(per, 1) if per is not None else None,
            "pss_idle_kib": idle_pss, "pss_held_kib": held_pss,
            "pss_bytes_per_conn": round(per_pss, 1) if per_pss is not None else None,
            "connect_s": round(connect_s, 2), "server_alive": int(alive)}


def markdown(rows, a):
    be = f" wharfd's event loop: {a.backend}." if a.backend else ""
    lines = ["Server memory per idle connection: (RSS with N connections held idle - RSS "
             f"idle) / N, summed over the server's processes;{be} medians of "
             f"{a.rounds} round(s). nginx: one worker, worker_connections 20000 (its table is "
             "allocated at start, so it is in the idle RSS).", "",
             "| server | load | connections | held | errors | idle RSS KiB | held RSS KiB | "
             "bytes/connection | bar |",
             "|---|---|---|---|---|---|---|---|---|"]
    keys = []
    for r in rows:
        if (r["load"], r["conns"]) not in keys:
            keys.append((r["load"], r["conns"]))
    for load, n in keys:
        rs = [r for r in rows if (r["load"], r["conns"]) == (load, n)]
        m = {f: bl.median([r[f] for r in rs]) for f in ("held", "rss_idle_kib", "rss_held_kib",
                                                        "bytes_per_conn")}
        bar = ""
        if load.startswith("wharfd") and n == 10000 and m["bytes_per_conn"] is not None:
            bar = f"<= {BAR_BYTES}: " + ("met" if m["bytes_per_conn"] <= BAR_BYTES
                                         else "**missed**")
        lines.append(f"| {rs[0]['server']} | {load.split('-')[1]} | {n:,} | "
                     f"{int(m['held'] or 0):,} | {sum(r['errors'] for r in rs)} | "
                     f"{int(m['rss_idle_kib'] or 0):,} | {int(m['rss_held_kib'] or 0):,} | "
                     f"{bl.fmt_num(m['bytes_per_conn'])} | {bar} |")
    return "\n".join(lines) + "\n"


def main():
    a = parse_args()
    bl.check_tools(["taskset"])
    need = max(a.conns) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        bl.die(f"{max(a.conns)} connections need {need} file descriptors; 'ulimit -n' allows "
               f"{soft}")
    a.wharfd_bin = bl.snapshot(os.path.join(bl.build_dir(), "wharfd"))
    wharf = None
    if any(x.endswith("frame") or x.endswith("line") or x.endswith("raw") for x in a.loads):
        wharf = bl.snapshot(os.path.join(bl.build_dir(), "wharf"))
        r = subprocess.run([wharf, "hold", "--help"], capture_output=True, timeout=10)
        if r.returncode != 0:
            bl.log("'wharf hold' is not available in this build: frame load skipped")
            a.loads = [x for x in a.loads if x.endswith("http")]
    if not bl.Nginx.available():
        a.loads = [x for x in a.loads if not x.startswith("nginx")]
    runs = [(rnd, load, n) for rnd in range(1, a.rounds + 1) for n in a.conns
            for load in a.loads]
    budget = sum(3 + a.duration + n / 5000 + 2 for _, _, n in runs)
    deadline = budget * 3 + 60
    bl.install_cleanup(deadline)
    os.makedirs(a.out, exist_ok=True)
    bl.log(f"bench/memory: {len(runs)} runs ({', '.join(a.loads)} at {a.conns} connections), "
           f"about {budget / 60:.1f} min; stops by itself within {deadline / 60:.1f} min; "
           f"results in {a.out}")
    bl.write_meta(a.out, sys.argv)
    rows, failures = [], []
    try:
        for i, (rnd, load, n) in enumerate(runs, 1):
            # Fresh source addresses per run (no leftover socket state between runs), one
            # per 8,000 connections: the kernel finds a free port at once while less than
            # half of an address's ephemeral range is taken, and scans it linearly beyond.
            k = max(1, -(-n // 8000))
            source = [f"127.{i % 250 + 1}.{j}.{(i // 250) + 2}" for j in range(1, k + 1)]
            try:
                row = one_run(a, load, n, rnd, source, wharf)
            except RuntimeError as e:
                failures.append(f"{load} {n}: {e}")
                bl.log(f"[{i}/{len(runs)}] {load} {n}: FAILED {e}")
                continue
            rows.append(row)
            bl.log(f"[{i}/{len(runs)}] {load:<13} {n:>6} connections: held {row['held']}, "
                   f"errors {row['errors']}, RSS {row['rss_idle_kib']} -> "
                   f"{row['rss_held_kib']} KiB = {bl.fmt_num(row['bytes_per_conn'])} "
                   f"bytes/connection")
            if row["errors"]:
                failures.append(f"{load} {n}: {row['errors']} connections failed")
    except bl.Interrupted as e:
        failures.append(f"interrupted: {e}")
    bl.write_csv(os.path.join(a.out, "runs.csv"), rows, FIELDS)
    md = markdown(rows, a)
    if failures:
        md += "\nFailures:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"rows": rows, "failures": failures}, f, indent=1)
    print(md)
    bl.log(f"bench/memory: wrote {a.out}/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

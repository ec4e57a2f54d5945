#!/usr/bin/env python3
"""bench/profile: syscalls and user-space instructions per request, wharfd vs nginx.

1. Syscalls per request. Each server runs pinned to CPU 0 while wrk (CPU 1) loads
   it for --duration seconds per workload; `perf stat` counts the tracepoint
   raw_syscalls:sys_enter (and one tracepoint per common syscall, for the
   breakdown, plus context switches) in the server's processes and all their
   threads (-p; --perf-scope cpu counts everything on CPU 0 instead, which a
   shared machine pollutes). Divided by the requests wrk counted. perf costs the
   server nothing measurable here, unlike strace -c, which slows the server until
   it batches more and so undercounts by 15% or more.

2. Instructions per request (user space). Each server runs under
   `valgrind --tool=callgrind`; a client in this script sends a fixed number of
   requests on one connection, strictly one batch at a time (so every request
   costs the same event-loop round trip, run after run); the counters are zeroed
   before and dumped after with callgrind_control. Instruction counts do not move
   with the machine's load: use them to judge a code change (a few tenths of a
   percent between runs). The top functions of each dump are kept in
   callgrind-SERVER-WORKLOAD.txt.

Workloads: keepalive (one request per write and per reply), pipeline (16 per
write), close (a new connection per request). Writes profile.md, syscalls.csv,
callgrind.csv, meta.txt and the callgrind summaries to --out (default
bench/results/DATE-profile/).
"""

import argparse
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import benchlib as bl

SYSCALLS = ["read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
            "epoll_wait", "epoll_pwait", "epoll_ctl", "accept", "accept4", "close",
            "shutdown", "setsockopt", "getsockopt", "ioctl", "fcntl", "futex", "sendfile64",
            "brk", "mmap", "munmap", "madvise", "eventfd2", "clock_gettime", "gettimeofday",
            "io_uring_enter"]

WORKLOADS = {
    "keepalive": dict(script="json.lua", args=(), pipeline=1, close=False,
                      title="keep-alive -c100"),
    "pipeline": dict(script="pipeline.lua", args=(16,), pipeline=16, close=False,
                     title="pipelined x16 -c100"),
    "close": dict(script="close.lua", args=(), pipeline=1, close=True,
                  title="connection-close -c100"),
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--rounds", type=int, default=1,
                    help="perf runs per server and workload; the median is kept (default 1)")
    ap.add_argument("--duration", type=float, default=5.0,
                    help="seconds of wrk load per perf run (default 5)")
    ap.add_argument("--requests", type=int, default=20000,
                    help="requests per callgrind workload (default 20000; close: a tenth)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: wharfd only, keepalive and pipeline, 1 s perf runs, "
                         "400 callgrind requests")
    ap.add_argument("--servers", default="wharfd,nginx",
                    help="comma list: wharfd, nginx, h2o, floor (default wharfd,nginx)")
    ap.add_argument("--workloads", default="keepalive,pipeline,close")
    ap.add_argument("--conns", type=int, default=100, help="wrk connections (default 100)")
    ap.add_argument("--no-perf", action="store_true", help="skip the syscall counts")
    ap.add_argument("--no-callgrind", action="store_true", help="skip the instruction counts")
    ap.add_argument("--perf-scope", choices=["pid", "cpu"], default="pid",
                    help="count the server's processes (pid, default) or all of CPU 0 (cpu)")
    ap.add_argument("--perf-record", action="store_true",
                    help="also sample call stacks (perf record -g) during each perf run and "
                         "keep the top of perf report in perf-SERVER-WORKLOAD.txt")
    ap.add_argument("--wharfd-args", default="", help="extra wharfd arguments (one string)")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-profile/)")
    a = ap.parse_args()
    if a.quick:
        a.duration = 1.0
        a.requests = 400
        a.rounds = 1
        if a.servers == ap.get_default("servers"):
            a.servers = "wharfd"
        if a.workloads == ap.get_default("workloads"):
            a.workloads = "keepalive,pipeline"
    a.servers = [s for s in a.servers.split(",") if s]
    a.workloads = [w for w in a.workloads.split(",") if w]
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    a.out = a.out or bl.default_out("quick-profile" if a.quick else "profile")
    return a


def tracepoints():
    base = "/sys/kernel/tracing/events/syscalls"
    if not os.path.isdir(base):
        base = "/sys/kernel/debug/tracing/events/syscalls"
    have = [s for s in SYSCALLS if os.path.isdir(os.path.join(base, f"sys_enter_{s}"))] \
        if os.path.isdir(base) else []
    return have


def make_server(a, name, under=None):
    if name == "wharfd":
        binary = a.wharfd_bin
        extra = a.wharfd_args.split()
        if under and "--backend" not in extra and bl.wharfd_supports(binary, "--backend"):
            # valgrind does not emulate io_uring's shared rings: such a wharfd never
            # answers under it. Instructions are counted for the epoll loop.
            extra += ["--backend", "epoll"]
        return bl.wharfd(binary, extra=extra, wrap=under or ())
    if name == "nginx":
        return bl.Nginx(master=under is None, wrap=under or ())
    if name == "h2o":
        return bl.H2o(wrap=under or ())
    if name == "floor":
        return bl.Floor(bl.snapshot(os.path.join(bl.build_dir(), "floor")), wrap=under or ())
    bl.die(f"unknown server {name}")


# ---- 1. perf stat ------------------------------------------------------------------------

def perf_run(a, srv, wl_name, tps, tag):
    wl = WORKLOADS[wl_name]
    out = os.path.join(a.tmp, f"perf-{srv.name}-{wl_name}.csv")
    events = ["raw_syscalls:sys_enter", "context-switches"] + [f"syscalls:sys_enter_{s}"
                                                               for s in tps]
    target = ["-C", str(bl.SERVER_CPU), "-a"] if a.perf_scope == "cpu" else \
        ["-p", ",".join(str(p) for p in srv.pids())]
    cmd = ["perf", "stat", "-x", ",", "-o", out, "-e", ",".join(events)] + target
    perf = bl.spawn(bl.taskset(bl.LOAD_CPU, cmd), stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)
    time.sleep(0.3)  # perf attaches
    if perf.poll() is not None:
        raise RuntimeError("perf stat failed: " + perf.stderr.read().decode(errors="replace"))
    pids = srv.pids()
    cpu0 = bl.cpu_seconds(pids)
    try:
        r = bl.run_wrk(srv.url("/"), wl["script"], wl["args"], conns=a.conns,
                       duration=a.duration,
                       raw_path=os.path.join(a.out, "raw", f"{tag}.txt"))
    finally:
        time.sleep(0.2)  # the server's last closes
        stop_perf(perf)
    cpu1 = bl.cpu_seconds(pids)
    counts = bl.perf_stat_counts(out)
    n = r["requests"]
    row = {"server": srv.name, "workload": wl_name, "requests": n,
           "rps": round(r["rps"], 1), "errors": r["errors"]["total"],
           "cpu_us": round((cpu1 - cpu0) * 1e6 / n, 3) if n else None,
           "syscalls": counts.get("raw_syscalls:sys_enter", 0),
           "context_switches": counts.get("context-switches", 0)}
    row["syscalls_per_req"] = round(row["syscalls"] / n, 4) if n else None
    row["ctxsw_per_req"] = round(row["context_switches"] / n, 4) if n else None
    for s in tps:
        row[f"{s}_per_req"] = round(counts.get(f"syscalls:sys_enter_{s}", 0) / n, 4) if n else 0
    if a.perf_record:
        perf_record(a, srv, wl_name, target)
    return row


def stop_perf(p):
    if p.poll() is None:
        p.send_signal(2)  # SIGINT: perf writes its counts and exits
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    bl.stop_process(p, grace=2)


def perf_record(a, srv, wl_name, target):
    """A second run of the workload under `perf record -g` (kept apart from the
    counting run: sampling with call stacks slows the server, which changes how
    much it batches). Keeps the top of perf report: by symbol, and by thread."""
    wl = WORKLOADS[wl_name]
    data = os.path.join(a.tmp, f"perf-{srv.name}-{wl_name}.data")
    rec = bl.spawn(bl.taskset(bl.LOAD_CPU, ["perf", "record", "-g", "-o", data] + target),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        bl.run_wrk(srv.url("/"), wl["script"], wl["args"], conns=a.conns, duration=a.duration)
    finally:
        time.sleep(0.2)
        stop_perf(rec)
    report = os.path.join(a.out, f"perf-{srv.name}-{wl_name}.txt")
    with open(report, "w") as f:
        for sort, limit in (("sym", "0.7"), ("pid", "1"), ("dso", "1")):
            f.write(f"== perf report --sort {sort}\n")
            f.flush()
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                            "--percent-limit", limit, "-g", "none", "--sort", sort],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=300)
            f.flush()


# ---- 2. callgrind ------------------------------------------------------------------------

def _recv_replies(sock, want, buf):
    """Read until `want` complete HTTP responses (Content-Length framed) arrived."""
    got = 0
    while got < want:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            m = re.search(rb"content-length:\s*(\d+)", head)
            size = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < size:
                break
            del buf[:size]
            got += 1
            if got == want:
                return
        chunk = sock.recv(262144)
        if not chunk:
            raise RuntimeError(f"connection closed after {got} of {want} replies")
        buf += chunk


def fixed_client(port, workload, n):
    """Send exactly n requests, one batch at a time; returns n."""
    wl = WORKLOADS[workload]
    host = f"127.0.0.1:{port}"
    if wl["close"]:
        req = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.sendall(req)
                while s.recv(65536):
                    pass
        return n
    depth = wl["pipeline"]
    one = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    batch = one * depth
    buf = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = 0
        while sent < n:
            k = min(depth, n - sent)
            s.sendall(batch if k == depth else one * k)
            _recv_replies(s, k, buf)
            sent += k
    return n


def dump_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return None


def annotate(dump, path, n, top=40):
    """The top functions of a dump by self cost and by inclusive cost, per request."""
    parts = [f"callgrind: {n} requests; instructions per request by function.\n"
             "(clone/start_thread at 100% self cost are an artefact of zeroing the counters "
             "while the thread runs; ignore them.)\n"]
    for inclusive in ("no", "yes"):
        r = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=100",
                            dump], capture_output=True, text=True, timeout=120)
        lines, started = [], False
        for line in r.stdout.splitlines():
            m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
            if m and "PROGRAM TOTALS" not in line:
                started = True
                ir = int(m.group(1).replace(",", ""))
                fn = re.sub(r" \[.*\]$", "", m.group(2))
                lines.append(f"{ir / n:10.1f}  {fn}")
            elif started and not line.strip():
                break
        parts.append(f"\n== {'inclusive' if inclusive == 'yes' else 'self'} cost "
                     f"(instructions/request  file:function)\n" + "\n".join(lines[:top]))
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def callgrind_server(a, name, workloads):
    rows = []
    outdir = os.path.join(a.tmp, f"cg-{name}")
    os.makedirs(outdir, exist_ok=True)
    vg = ["valgrind", "--tool=callgrind", "--compress-strings=no", "--compress-pos=no",
          f"--callgrind-out-file={outdir}/callgrind.out.%p"]
    srv = make_server(a, name, under=vg)
    srv.start(timeout=60)
    if isinstance(srv, bl.Wharfd):
        a.backends["callgrind"] = srv.backend()
    pid = srv.pid
    try:
        # warm up (first-touch allocations, lazy binding), then measure each workload
        fixed_client(srv.port["http"], "keepalive", 50)
        for wl in workloads:
            n = a.requests if not WORKLOADS[wl]["close"] else max(50, a.requests // 10)
            if WORKLOADS[wl]["pipeline"] > 1:
                n = max(n, 16) // 16 * 16
            before = set(glob.glob(f"{outdir}/callgrind.out.{pid}*"))
            z = subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True,
                               text=True, timeout=60)
            if z.returncode != 0:
                raise RuntimeError(f"callgrind_control -z: {z.stdout}{z.stderr}")
            t0 = time.monotonic()
            fixed_client(srv.port["http"], wl, n)
            elapsed = time.monotonic() - t0
            time.sleep(0.3)  # let the server finish with the last connection
            d = subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True,
                               text=True, timeout=60)
            if d.returncode != 0:
                raise RuntimeError(f"callgrind_control -d: {d.stdout}{d.stderr}")
            new = []
            for _ in range(100):
                new = sorted(set(glob.glob(f"{outdir}/callgrind.out.{pid}*")) - before)
                if new and os.path.getsize(new[-1]) > 0:
                    break
                time.sleep(0.1)
            if not new:
                raise RuntimeError("callgrind wrote no dump")
            dump = new[-1]
            ir = dump_total(dump)
            rows.append({"server": name, "workload": wl, "requests": n, "ir": ir,
                         "ir_per_req": round(ir / n, 1) if ir else None,
                         "seconds": round(elapsed, 2)})
            ann = os.path.join(a.out, f"callgrind-{name}-{wl}.txt")
            annotate(dump, ann, n)
            keep = os.path.join(a.out, "callgrind")
            os.makedirs(keep, exist_ok=True)
            shutil.copy(dump, os.path.join(keep, f"callgrind.out.{name}-{wl}"))
            bl.log(f"  callgrind {name:<6} {wl:<9} {n} requests: "
                   f"{rows[-1]['ir_per_req']} instructions/request ({elapsed:.1f} s)")
    finally:
        srv.stop()
    return rows


def sanitized(binary):
    try:
        with open(binary, "rb") as f:
            data = f.read()
        return b"__asan_init" in data or b"__tsan_init" in data
    except OSError:
        return False


# ---- report ------------------------------------------------------------------------------

def markdown(perf_rows, cg_rows, a, notes, tps):
    out = []
    if perf_rows:
        out.append(f"Syscalls per request, counted by perf in the server's "
                   f"{'processes' if a.perf_scope == 'pid' else 'core (CPU 0)'} while wrk "
                   f"(-t1 -c{a.conns}, CPU 1) ran {a.duration:g} s per workload.\n")
        top = {}
        for r in perf_rows:
            for s in tps:
                top[s] = max(top.get(s, 0), r.get(f"{s}_per_req") or 0)
        cols = [s for s in tps if top[s] >= 0.005]
        head = ["server", "workload", "requests/s", "syscalls/req", "ctx switches/req",
                "CPU µs/req"] + cols
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] * len(head)) + "|")
        for r in perf_rows:
            cells = [r["server"], r["workload"], bl.fmt_num(r["rps"]),
                     f"{r['syscalls_per_req']:.3f}", f"{r['ctxsw_per_req']:.3f}",
                     f"{r['cpu_us']:.2f}"]
            cells += [f"{r.get(f'{s}_per_req', 0):.3f}" for s in cols]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if cg_rows:
        out.append("User-space instructions per request (callgrind, one connection, one "
                   "batch at a time, counters zeroed after a warm-up):\n")
        out.append("| server | workload | requests | instructions/request |")
        out.append("|---|---|---|---|")
        for r in cg_rows:
            out.append(f"| {r['server']} | {r['workload']} | {r['requests']} | "
                       f"{bl.fmt_num(r['ir_per_req'])} |")
        out.append("")
    for n in notes:
        out.append(f"Note: {n}")
    return "\n".join(out) + "\n"


def main():
    a = parse_args()
    tools = ["wrk", "taskset"]
    if not a.no_perf:
        tools.append("perf")
    if not a.no_callgrind:
        tools += ["valgrind", "callgrind_control", "callgrind_annotate"]
    bl.check_tools(tools)
    if "wharfd" in a.servers:
        a.wharfd_bin = bl.snapshot(os.path.join(bl.build_dir(), "wharfd"))
    if "nginx" in a.servers and not bl.Nginx.available():
        bl.log("nginx is not installed: skipped")
        a.servers.remove("nginx")
    a.tmp = bl.tmpdir("wharf-profile-")
    n_perf = 0 if a.no_perf else len(a.servers) * len(a.workloads) * a.rounds
    budget = n_perf * (a.duration + 3) + (0 if a.no_callgrind else
                                          len(a.servers) * (15 + len(a.workloads) *
                                                            (a.requests / 1000) * 2))
    deadline = budget * 3 + 120
    bl.install_cleanup(deadline)
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    bl.log(f"bench/profile: {' vs '.join(a.servers)}, {', '.join(a.workloads)}; about "
           f"{budget / 60:.1f} min, stops by itself within {deadline / 60:.1f} min; "
           f"results in {a.out}")
    bl.write_meta(a.out, sys.argv)
    tps = tracepoints()
    a.backends = {}
    perf_rows, cg_rows, notes, failures = [], [], [], []
    try:
        if not a.no_perf:
            i = 0
            for name in a.servers:
                srv = make_server(a, name)
                srv.start()
                if isinstance(srv, bl.Wharfd):
                    a.backends["perf"] = srv.backend()
                try:
                    for wl in a.workloads:
                        runs = []
                        for rnd in range(1, a.rounds + 1):
                            i += 1
                            row = perf_run(a, srv, wl, tps, f"r{rnd}-{wl}-{name}")
                            runs.append(row)
                            bl.log(f"[{i}/{n_perf}] perf {name:<6} {wl:<9} "
                                   f"{row['syscalls_per_req']:.3f} syscalls/request, "
                                   f"{row['ctxsw_per_req']:.3f} context switches/request, "
                                   f"{bl.fmt_num(row['rps'])} requests/s, errors {row['errors']}")
                        runs.sort(key=lambda r: r["syscalls_per_req"] or 0)
                        perf_rows.append(runs[len(runs) // 2])
                finally:
                    srv.stop()
        if not a.no_callgrind:
            for name in a.servers:
                if name == "wharfd" and sanitized(a.wharfd_bin):
                    notes.append("callgrind skipped for wharfd: a sanitizer build does not run "
                                 "under valgrind (use the default build)")
                    bl.log("  " + notes[-1])
                    continue
                cg_rows += callgrind_server(a, name, a.workloads)
    except bl.Interrupted as e:
        failures.append(f"interrupted: {e}")
    except RuntimeError as e:
        failures.append(str(e))
        bl.log(f"bench/profile: {e}")
    fields = ["server", "workload", "requests", "rps", "errors", "cpu_us", "syscalls",
              "syscalls_per_req", "context_switches", "ctxsw_per_req"] + \
             [f"{s}_per_req" for s in tps]
    bl.write_csv(os.path.join(a.out, "syscalls.csv"), perf_rows, fields)
    bl.write_csv(os.path.join(a.out, "callgrind.csv"), cg_rows,
                 ["server", "workload", "requests", "ir", "ir_per_req", "seconds"])
    for part, be in a.backends.items():
        if be:
            notes.append(f"wharfd's event loop in the {part} runs: {be}")
    md = markdown(perf_rows, cg_rows, a, notes, tps)
    if failures:
        md += "\nFailures:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    with open(os.path.join(a.out, "profile.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"syscalls": perf_rows, "callgrind": cg_rows, "notes": notes,
                   "failures": failures}, f, indent=1)
    print(md)
    bl.log(f"bench/profile: wrote {a.out}/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

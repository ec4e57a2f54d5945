#!/usr/bin/env python3
"""bench/udp: wharfd's udp:// listener against the floor, per datagram.

wharfd (--workers 1, CPU 0) serves udp:// on each backend, batched (recvmmsg/sendmmsg,
up to 64 a call) and unbatched (--udp-batch 1: recvmsg/sendmsg); the floor
(build/floor udp, bench/floor/floor_udp.c: one blocking socket, recvmmsg and sendmmsg,
no poller, no counters) runs the same load. `wharf bench udp://` (CPU 1) sends 64-byte
datagrams from 100 sockets with 16 in flight each, and checks every reply.

Per run: datagrams/s, latency p50/p99, datagrams lost, and, in steady state (after a
warm-up), the server's CPU µs per datagram (utime+stime from /proc) and its system
calls per datagram (perf stat on the server's threads), over the same window, divided
by the reply rate wharf bench measured.

Bar (issue 27): wharfd's CPU per datagram <= 1.2x the floor's, on the faster backend.
The ratio to the unbatched path says what batching saves: system-call entries, not
the UDP stack's work per datagram (bench/coreshare --workload udp shows where the
time goes).

io_uring serves udp:// through a multishot recvmsg with a buffer ring where the kernel
has it, replies by one sendmmsg per loop turn, runs of equal-size replies to one peer
as one UDP_SEGMENT message. --variants adds io_uring runs with the test hooks that
change that (WHARFD_TEST_HOOKS=1): `poll` (WHARFD_TEST_URING_UDP_POLL: the
poll+recvmmsg path, as on a kernel without it), `sqe` (..._UDP_SENDMSG: each reply a
SENDMSG SQE), `nogso` (..._UDP_NO_GSO: one datagram per reply).

Writes runs.csv, table.md, summary.json and meta.txt to --out
(default bench/results/DATE-udp/).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import benchlib as bl

FLOOR_BAR = 1.2
VARIANTS = {"poll": "WHARFD_TEST_URING_UDP_POLL", "sqe": "WHARFD_TEST_URING_UDP_SENDMSG",
            "nogso": "WHARFD_TEST_URING_UDP_NO_GSO"}
SYSCALLS = ["recvmmsg", "sendmmsg", "recvmsg", "sendmsg", "epoll_wait", "io_uring_enter"]
FIELDS = ["round", "server", "duration_s", "datagrams", "dps", "p50_us", "p99_us", "lost",
          "errors", "cpu_us", "syscalls_per_dgram", "ctxsw_per_dgram", "window_s",
          "client_cpu_us"] + [f"{s}_per_dgram" for s in SYSCALLS]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--rounds", type=int, default=3, help="passes over the servers (default 3)")
    ap.add_argument("--duration", type=float, default=5.0,
                    help="measured seconds per run, after the warm-up (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds (default 1)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: 1 round of 2 s")
    ap.add_argument("--conns", type=int, default=100, help="client sockets (default 100)")
    ap.add_argument("--pipeline", type=int, default=16, help="in flight per socket (default 16)")
    ap.add_argument("--size", type=int, default=64, help="datagram bytes (default 64)")
    ap.add_argument("--backends", default="epoll,io_uring")
    ap.add_argument("--variants", default="poll,sqe,nogso",
                    help="io_uring variants also run: poll,sqe,nogso (default all; '' none)")
    ap.add_argument("--no-perf", action="store_true", help="do not count syscalls")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-udp/)")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.duration, a.warmup = 1, 2.0, 0.5
    a.backends = [b for b in a.backends.split(",") if b]
    a.variants = [v for v in a.variants.split(",") if v]
    bad = [v for v in a.variants if v not in VARIANTS]
    if bad:
        bl.die(f"--variants: unknown {','.join(bad)} (poll, sqe, nogso)")
    a.out = a.out or bl.default_out("quick-udp" if a.quick else "udp")
    return a


def measure(a, pids, tag, tps):
    """The server's CPU seconds and perf counts over a steady window; (cpu, window, counts)."""
    perf = None
    out_csv = os.path.join(a.tmp, tag + ".perf")
    if not a.no_perf:
        ev = ["raw_syscalls:sys_enter", "context-switches"] + \
             [f"syscalls:sys_enter_{s}" for s in tps]
        perf = bl.spawn(bl.taskset(bl.LOAD_CPU, ["perf", "stat", "-x", ",", "-o", out_csv, "-e",
                                                 ",".join(ev), "-p", ",".join(map(str, pids))]),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.15)  # attached
    c0, w0 = bl.cpu_seconds(pids), time.monotonic()
    time.sleep(max(0.3, a.duration - 0.6))
    c1, w1 = bl.cpu_seconds(pids), time.monotonic()
    if perf:
        perf.send_signal(2)
        try:
            perf.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        bl.stop_process(perf, grace=2)
    return c1 - c0, w1 - w0, bl.perf_stat_counts(out_csv)


def one_run(a, name, port, pids, wharf, rnd, tps):
    cmd = [wharf, "bench", "-t", "1", "-c", str(a.conns), "-P", str(a.pipeline), "--size",
           str(a.size), "-d", f"{int(a.duration * 1000)}ms", "--warmup",
           f"{int(a.warmup * 1000)}ms", "--json", "--allow-errors", f"udp://127.0.0.1:{port}"]
    tag = f"r{rnd}-{name}"
    with open(os.path.join(a.out, "raw", tag + ".err"), "wb") as err:
        p = bl.spawn(bl.taskset(bl.LOAD_CPU, cmd), stdout=subprocess.PIPE, stderr=err)
    try:
        time.sleep(a.warmup + 0.3)
        cpu, window, counts = measure(a, pids, tag, tps)
        out, _ = p.communicate(timeout=a.warmup + a.duration + 30)
    except subprocess.TimeoutExpired:
        raise RuntimeError("wharf bench did not stop in time")
    finally:
        if p.poll() is None:
            bl.stop_process(p, grace=2)
    with open(os.path.join(a.out, "raw", tag + ".json"), "wb") as f:
        f.write(out)
    try:
        r = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"wharf bench printed no JSON (exit {p.returncode})")
    dps, lat = r["requests_per_sec"], r["latency"]
    served = dps * window
    row = {"round": rnd, "server": name, "duration_s": r["duration_s"],
           "datagrams": r["requests"]["ok"], "dps": round(dps, 1), "p50_us": lat["p50_us"],
           "p99_us": lat["p99_us"], "lost": r.get("datagrams", {}).get("lost"),
           "errors": r["errors"]["total"], "window_s": round(window, 3),
           "client_cpu_us": r["cpu"]["us_per_request"],
           "cpu_us": round(cpu * 1e6 / served, 3) if served else None}
    if counts and served:
        row["syscalls_per_dgram"] = round(counts.get("raw_syscalls:sys_enter", 0) / served, 4)
        row["ctxsw_per_dgram"] = round(counts.get("context-switches", 0) / served, 4)
        for s in SYSCALLS:
            row[f"{s}_per_dgram"] = round(counts.get(f"syscalls:sys_enter_{s}", 0) / served, 4)
    return row


def ratio(rows, num, den):
    """Median over rounds of num's CPU per datagram over den's, within each round."""
    rs = []
    for rnd in sorted({r["round"] for r in rows}):
        n = [r["cpu_us"] for r in rows if r["round"] == rnd and r["server"] == num]
        d = [r["cpu_us"] for r in rows if r["round"] == rnd and r["server"] == den]
        if n and d and n[0] and d[0]:
            rs.append(n[0] / d[0])
    return bl.median(rs)


def summarize(a, rows, names):
    med = {n: {f: bl.median([r.get(f) for r in rows if r["server"] == n]) for f in FIELDS[3:]}
           for n in names}
    lines = [f"wharfd (`--workers 1`, CPU 0) and the floor under `wharf bench udp:// -t1 -c "
             f"{a.conns} -P {a.pipeline} --size {a.size}` (CPU 1), every reply checked; "
             f"{a.rounds} round(s), {a.duration:g} s after {a.warmup:g} s warm-up (medians). "
             "CPU and syscalls: the server's, per datagram answered.", "",
             "| server | datagrams/s | p50 µs | p99 µs | lost | CPU µs/dgram | syscalls/dgram "
             "| recvmmsg+recvmsg | sendmmsg+sendmsg | waits (epoll_wait+io_uring_enter) "
             "| CPU / floor | CPU / own unbatched |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        m = med[n]
        lost = sum(r.get("lost") or 0 for r in rows if r["server"] == n)

        def f3(v):
            return "—" if v is None else f"{v:.3f}"

        def add(*ks):
            vs = [m.get(f"{k}_per_dgram") for k in ks]
            return f3(None if all(v is None for v in vs) else sum(v or 0 for v in vs))
        fr = ratio(rows, n, "floor") if n != "floor" else None
        ub = ratio(rows, n, n + "-b1") if n.startswith("wharfd") and not n.endswith("-b1") \
            else None
        lines.append(f"| {n} | {bl.fmt_num(m['dps'])} | {bl.fmt_num(m['p50_us'])} | "
                     f"{bl.fmt_num(m['p99_us'])} | {lost} | {bl.fmt_num(m['cpu_us'])} | "
                     f"{f3(m['syscalls_per_dgram'])} | {add('recvmmsg', 'recvmsg')} | "
                     f"{add('sendmmsg', 'sendmsg')} | {add('epoll_wait', 'io_uring_enter')} | "
                     f"{'—' if fr is None else f'{fr:.2f}×'} | {'—' if ub is None else f'{ub:.2f}×'} |")
    best = [ratio(rows, f"wharfd-{b}", "floor") for b in a.backends]
    best = min([x for x in best if x is not None], default=None)
    bar = {"bar": f"server CPU/datagram <= {FLOOR_BAR}x the floor's, faster backend",
           "value": best, "met": None if best is None else best <= FLOOR_BAR}
    lines += ["", f"Bar: {bar['bar']}: " + ("n/a" if best is None else
                                            f"{best:.2f}× — " + ("met" if bar["met"] else "**missed**"))]
    return "\n".join(lines) + "\n", bar


def main():
    a = parse_args()
    bl.check_tools(["taskset"] + ([] if a.no_perf else ["perf"]))
    wharf = bl.snapshot(os.path.join(bl.build_dir(), "wharf"))
    wharfd = bl.snapshot(os.path.join(bl.build_dir(), "wharfd"))
    servers = {}
    for b in a.backends:
        for suffix, extra in (("", []), ("-b1", ["--udp-batch", "1"])):
            servers[f"wharfd-{b}{suffix}"] = bl.wharfd(wharfd, protos=("udp",),
                                                        extra=["--backend", b, *extra])
        for v in (a.variants if b == "io_uring" else []):
            servers[f"wharfd-{b}-{v}"] = bl.wharfd(
                wharfd, protos=("udp",), extra=["--backend", b],
                env={"WHARFD_TEST_HOOKS": "1", VARIANTS[v]: "1"})
    servers["floor"] = bl.Floor(bl.snapshot(os.path.join(bl.build_dir(), "floor")), "udp")
    names = list(servers)
    n = len(names) * a.rounds
    budget = n * (a.warmup + a.duration + 2)
    bl.install_cleanup(budget * 2 + 60)
    a.tmp = bl.tmpdir("wharf-udp-")
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    tps = [s for s in SYSCALLS if os.path.isdir(f"/sys/kernel/tracing/events/syscalls/sys_enter_{s}")]
    bl.log(f"bench/udp: {n} runs ({', '.join(names)}), about {budget / 60:.1f} min; "
           f"results in {a.out}")
    rows, failures = [], []
    try:
        bl.write_meta(a.out, sys.argv, {"servers": servers[names[0]].version})
        for rnd in range(1, a.rounds + 1):
            for i, name in enumerate(names):
                s = servers[name]
                tag = f"[{(rnd - 1) * len(names) + i + 1}/{n}] {name}"
                try:  # one server up at a time: nothing else shares the core or the port
                    s.start()
                    row = one_run(a, name, s.port["udp"], s.pids(), wharf, rnd, tps)
                    if not s.alive():
                        raise RuntimeError(f"{name} died: {s.log()[-300:]}")
                except RuntimeError as e:
                    failures.append(f"{tag}: {e}")
                    bl.log(f"{tag} FAILED: {e}")
                    continue
                finally:
                    s.stop()
                rows.append(row)
                bl.log(f"{tag}: {bl.fmt_num(row['dps'])} datagrams/s, p99 "
                       f"{bl.fmt_num(row['p99_us'])} µs, CPU {bl.fmt_num(row['cpu_us'])} µs/dgram, "
                       f"{row.get('syscalls_per_dgram', '—')} syscalls/dgram, lost {row['lost']}")
                if row["errors"]:
                    failures.append(f"{tag}: {row['errors']} errors")
                time.sleep(0.3)
    except bl.Interrupted as e:
        failures.append(f"interrupted: {e}")
    finally:
        for s in servers.values():
            s.stop()
    bl.write_csv(os.path.join(a.out, "runs.csv"), rows, FIELDS)
    md, bar = summarize(a, rows, names)
    if failures:
        md += "\nFailures:\n" + "\n".join(f"- {f}" for f in failures) + "\n"
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"bar": bar, "failures": failures, "rows": rows}, f, indent=1)
    print(md)
    bl.log(f"bench/udp: wrote {a.out}/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

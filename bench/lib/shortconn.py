#!/usr/bin/env python3
"""bench/shortconn: what one short (Connection: close) connection costs, in counts
that do not move with the machine's load.

Everything runs inside a network namespace of its own (wharfkit's NetNS, deleted at
the end), so its loopback carries nothing but this harness's traffic: the kernel's
TCP counters (/proc/net/snmp and netstat, what nstat reads) and a packet capture are
then the connections' own. For each server (wharfd on each backend with --workers 1
and 2, h2o, nginx, the floor) and a load of `wrk -t1 -cN close.lua`:

1. tcpdump -i lo: per connection, the segments each way, data segments, pure ACKs,
   whether the server's FIN rides on its response, who sends the first FIN (that
   side holds TIME_WAIT), RSTs; and the TCP counters' deltas per connection.
2. `ss state time-wait` after the run: which side holds TIME_WAIT.
3. a second run under `strace -c -f` (every thread): syscalls per connection by
   name. strace slows the server, so its batching differs from an unslowed run;
   compare servers with each other, not with bench/profile's perf counts.
4. voluntary context switches of the server's threads per connection (wake-ups).

Writes shortconn.md, shortconn.json and the captures (raw/, not committed) to --out.
"""

import argparse
import glob
import json
import os
import struct
import subprocess
import sys
import time

import benchlib as bl
from wharfkit.netns import NetNS

COUNTERS = ["TcpOutSegs", "TcpInSegs", "TcpOutRsts", "TcpExtDelayedACKs", "TcpExtTCPPureAcks",
            "TcpExtTCPHPAcks", "TcpExtTW", "TcpExtTCPAbortOnData", "TcpExtTCPAbortOnClose",
            "TcpExtTCPAutoCorking", "TcpExtTCPOrigDataSent", "TcpExtListenOverflows",
            "TcpExtTCPDeferAcceptDrop", "TcpExtTCPTimeWaitOverflow"]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--servers", default="wharfd-epoll-1,wharfd-epoll-2,wharfd-io_uring-1,"
                    "wharfd-io_uring-2,h2o,nginx,floor",
                    help="comma list: wharfd-BACKEND-WORKERS, h2o, nginx, floor")
    ap.add_argument("--conns", type=int, default=50, help="wrk connections (default 50)")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per run (default 2)")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--wharfd-args", default="", help="extra wharfd arguments (one string)")
    ap.add_argument("--out", help="results directory (default bench/results/DATE-shortconn/)")
    a = ap.parse_args()
    a.servers = [s for s in a.servers.split(",") if s]
    a.out = a.out or bl.default_out("shortconn")
    return a


def make_server(a, spec):
    if spec.startswith("wharfd-"):
        _, backend, workers = spec.rsplit("-", 2)
        binary = bl.snapshot(os.path.join(bl.build_dir(), "wharfd"))
        s = bl.wharfd(binary, workers=int(workers),
                      extra=["--backend", backend] + a.wharfd_args.split())
        s.label = spec
        return s
    s = {"h2o": bl.H2o, "nginx": bl.Nginx}.get(spec)
    s = s() if s else bl.Floor(bl.snapshot(os.path.join(bl.build_dir(), "floor")))
    s.label = spec
    return s


# ---- the capture ------------------------------------------------------------------------

def packets(path):
    """(src port, dst port, flags, payload bytes) of each TCP/IPv4 packet in a pcap."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    link = struct.unpack(e + "I", data[20:24])[0]
    skip = {1: 14, 113: 16, 276: 20, 0: 4}.get(link, 14)
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = pkt[skip:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:]
        if len(tcp) < 20:
            continue
        sport, dport = struct.unpack(">HH", tcp[:4])
        thl = (tcp[12] >> 4) * 4
        yield sport, dport, tcp[13], total - ihl - thl


FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


def per_connection(path, port):
    """Counts per connection (those whose SYN was captured), averaged."""
    conns = {}
    for sport, dport, flags, n in packets(path):
        from_server = sport == port
        cport = dport if from_server else sport
        if flags & SYN and not flags & ACK:
            conns[cport] = c = dict.fromkeys(
                ["segs", "c2s", "s2c", "c2s_data", "s2c_data", "c2s_pure_ack", "s2c_pure_ack",
                 "s_fin_with_data", "s_fin_first", "c_fin_first", "rst", "c_fin", "s_fin"], 0)
        c = conns.get(cport)
        if c is None:
            continue
        side = "s2c" if from_server else "c2s"
        c["segs"] += 1
        c[side] += 1
        if n > 0:
            c[side + "_data"] += 1
        elif flags & (SYN | FIN | RST) == 0:
            c[side + "_pure_ack"] += 1
        if flags & RST:
            c["rst"] += 1
        if flags & FIN:
            me, other = ("s_fin", "c_fin") if from_server else ("c_fin", "s_fin")
            if not c[me] and not c[other]:
                c["s_fin_first" if from_server else "c_fin_first"] += 1
            c[me] = 1
            if from_server and n > 0:
                c["s_fin_with_data"] += 1
    done = [c for c in conns.values() if c["s_fin"] and c["c_fin"]]
    if not done:
        return {"connections": 0}
    out = {k: round(sum(c[k] for c in done) / len(done), 3) for k in done[0]
           if k not in ("s_fin", "c_fin")}
    out["connections"] = len(done)
    return out


# ---- one server ----------------------------------------------------------------------

def ctx_switches(pids):
    n = 0
    for pid in pids:
        for st in glob.glob(f"/proc/{pid}/task/*/status"):
            try:
                with open(st) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches"):
                            n += int(line.split()[1])
            except OSError:
                pass
    return n


def time_wait(port):
    r = subprocess.run(["ss", "-Htan", "state", "time-wait"], capture_output=True, text=True,
                       timeout=10)
    srv = cli = 0
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        local, peer = f[-2], f[-1]
        if local.endswith(f":{port}"):
            srv += 1
        elif peer.endswith(f":{port}"):
            cli += 1
    return srv, cli


def strace_run(a, srv, raw):
    tids = [t for p in srv.pids() for t in os.listdir(f"/proc/{p}/task")]
    path = os.path.join(raw, f"strace-{srv.label}.txt")
    cmd = ["strace", "-c", "-f", "-o", path] + [x for t in tids for x in ("-p", t)]
    st = bl.spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    r = bl.run_wrk(srv.url("/"), "close.lua", conns=a.conns, duration=a.duration)
    st.send_signal(2)
    st.wait(timeout=30)
    calls = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[0][0].isdigit() and p[-1] not in ("total",):
                calls[p[-1]] = int(p[3])
    n = r["requests"]
    return {k: round(v / n, 3) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])
            if v / n >= 0.005}, n


def measure(a, ns, srv, raw):
    port = srv.port["http"]
    pcap = os.path.join(raw, f"{srv.label}.pcap")
    td = bl.spawn(["tcpdump", "-i", "lo", "-s", "128", "-U", "-w", pcap, f"tcp port {port}"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    tw0 = time_wait(port)
    n0, x0 = ns.nstat(), ctx_switches(srv.pids())
    cpu0 = bl.cpu_seconds(srv.pids())
    r = bl.run_wrk(srv.url("/"), "close.lua", conns=a.conns, duration=a.duration,
                   raw_path=os.path.join(raw, f"wrk-{srv.label}.txt"))
    cpu1 = bl.cpu_seconds(srv.pids())
    n1, x1 = ns.nstat(), ctx_switches(srv.pids())
    tw1 = time_wait(port)
    time.sleep(0.5)
    td.send_signal(2)
    td.wait(timeout=20)
    n = r["requests"]
    row = {"server": srv.label, "version": srv.version, "requests": n,
           "errors": r["errors"]["total"],
           "tw_server_side": tw1[0] - tw0[0], "tw_client_side": tw1[1] - tw0[1],
           "ctxsw_per_conn": round((x1 - x0) / n, 3) if n else None,
           "cpu_us_per_conn": round((cpu1 - cpu0) * 1e6 / n, 2) if n else None,
           "nstat_per_conn": {k: round((n1.get(k, 0) - n0.get(k, 0)) / n, 3) for k in COUNTERS}
           if n else {},
           "pcap": per_connection(pcap, port)}
    if not a.no_strace:
        row["strace_per_conn"], row["strace_conns"] = strace_run(a, srv, raw)
    return row


def markdown(rows, a):
    L = [f"`wrk -t1 -c{a.conns} -d{a.duration:g}s close.lua` per server, in a network "
         "namespace of its own (bench/shortconn). Per connection; CPU µs is indicative only "
         "(timing), every other figure is a count.", ""]
    names = [r["server"] for r in rows]
    L += ["| per connection | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]

    def line(label, get):
        vals = []
        for r in rows:
            try:
                v = get(r)
            except (KeyError, TypeError):
                v = None
            vals.append("—" if v is None else (f"{v:g}" if isinstance(v, (int, float)) else v))
        L.append(f"| {label} | " + " | ".join(vals) + " |")

    line("connections captured", lambda r: r["pcap"]["connections"])
    for k, label in (("segs", "segments, both ways"), ("c2s", "segments client→server"),
                     ("s2c", "segments server→client"), ("c2s_data", "data segments c→s"),
                     ("s2c_data", "data segments s→c"), ("c2s_pure_ack", "pure ACKs c→s"),
                     ("s2c_pure_ack", "pure ACKs s→c"),
                     ("s_fin_with_data", "server FIN on its data segment"),
                     ("s_fin_first", "server sends the first FIN"),
                     ("c_fin_first", "client sends the first FIN"), ("rst", "RST")):
        line(k and label, lambda r, k=k: r["pcap"][k])
    line("TIME_WAIT held by the server (sockets / conn)",
         lambda r: round(r["tw_server_side"] / r["requests"], 3))
    line("TIME_WAIT held by the client (sockets / conn)",
         lambda r: round(r["tw_client_side"] / r["requests"], 3))
    for k in COUNTERS:
        if any(abs(r["nstat_per_conn"].get(k, 0)) >= 0.001 for r in rows):
            line(f"nstat {k}", lambda r, k=k: r["nstat_per_conn"][k])
    line("server wake-ups (voluntary context switches)", lambda r: r["ctxsw_per_conn"])
    if not a.no_strace:
        calls = []
        for r in rows:
            for c in r.get("strace_per_conn", {}):
                if c not in calls:
                    calls.append(c)
        line("**syscalls (strace -c -f), total**",
             lambda r: round(sum(r["strace_per_conn"].values()), 2))
        for c in calls:
            line(f"  {c}", lambda r, c=c: r["strace_per_conn"].get(c, 0))
    line("server CPU µs (timing: indicative)", lambda r: r["cpu_us_per_conn"])
    line("errors", lambda r: r["errors"])
    return "\n".join(L) + "\n"


def main():
    a = parse_args()
    bl.check_tools(["wrk", "tcpdump", "ss"] + ([] if a.no_strace else ["strace"]))
    if os.geteuid() != 0:
        bl.die("needs root (a network namespace of its own, tcpdump)")
    bl.install_cleanup(len(a.servers) * (2 * a.duration + 20) + 120)
    raw = os.path.join(a.out, "raw")
    os.makedirs(raw, exist_ok=True)
    rows = []
    with NetNS(f"wharf-sc-{os.getpid()}") as ns, ns.entered():
        for spec in a.servers:
            srv = make_server(a, spec)
            try:
                srv.start()
                rows.append(measure(a, ns, srv, raw))
                bl.log(f"{spec}: {json.dumps(rows[-1]['pcap'])}")
            finally:
                srv.stop()
    bl.write_meta(a.out, sys.argv)
    md = markdown(rows, a)
    with open(os.path.join(a.out, "shortconn.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "shortconn.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""capacity: what an idle TCP connection costs, measured, and the C1M plan on paper.

In a fresh namespace, wharfd (`-w 2`) and `wharf hold -c N` (default 19,000, from 4
source addresses 127.0.0.2-5, as one process's file limit allows) hold N idle
connections. Before they are opened, and once all N are live, the experiment reads:

  - /proc/slabinfo: every cache's active objects x object size (kernel objects:
    TCP sockets, socket inodes, files, dentries, epoll items, ...), and the pages
    the caches occupy;
  - /proc/meminfo: Slab, SUnreclaim, MemFree;
  - wharfd's VmRSS (/proc/PID/status).

Both ends of every connection are on this machine, so the kernel figures cover 2N
sockets (N client + N server); per server-side connection is half (the two ends
hold the same kinds of objects: a socket, a file, an epoll registration). The
slab counters are machine-wide: other loads add noise, so the measurement is
checked (the TCP cache must have grown by about 2N objects) and repeated if not.

The report extrapolates connections per GiB and what 1,000,000 connections need:
memory, file descriptors (RLIMIT_NOFILE, fs.nr_open, fs.file-max) and ports /
source addresses. Writes tuning/results/capacity-DATE.{csv,md,png}.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import wxlib
from wxlib import Lab, Wharfd, log, md_table

GIB = 1 << 30


def slabinfo():
    out = {}
    for line in Path("/proc/slabinfo").read_text().splitlines()[2:]:
        f = line.split()
        # name active_objs num_objs objsize objperslab pagesperslab : tunables ... : slabdata active_slabs num_slabs ...
        out[f[0]] = dict(active=int(f[1]), num=int(f[2]), size=int(f[3]),
                         pages=int(f[14]) * int(f[5]))
    return out


def meminfo():
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, v = line.split(":", 1)
        out[k] = int(v.split()[0]) * 1024
    return out


def snapshot(srv):
    return dict(slab=slabinfo(), mem=meminfo(), rss=srv.rss_kib() * 1024)


def snapshot_nosrv():
    return dict(slab=slabinfo(), mem=meminfo(), rss=0)


# Caches that hold one or more objects per open TCP socket: the socket itself, its
# inode and dentry (sockfs), its struct file, the LSM blobs on both, and the epoll
# registration of the process watching it.
SOCKET_CACHES = ("TCP", "sock_inode_cache", "dentry", "filp", "eventpoll_epi", "ep_head",
                 "lsm_inode_cache", "lsm_file_cache")


def deltas(a, b):
    """Per-cache growth: objects, bytes in objects, bytes in slab pages."""
    out = {}
    for name, s in b["slab"].items():
        p = a["slab"].get(name, dict(active=0, num=0, size=s["size"], pages=0))
        out[name] = dict(objs=s["active"] - p["active"], size=s["size"],
                         bytes=(s["active"] - p["active"]) * s["size"],
                         page_bytes=(s["pages"] - p["pages"]) * 4096)
    return out


def aliases(name):
    """SLUB merges caches of the same size and flags; /proc/slabinfo then shows one of
    the names. /sys/kernel/slab/NAME links every alias to the merged cache."""
    base = Path("/sys/kernel/slab")
    try:
        target = os.readlink(base / name) if (base / name).is_symlink() else None
    except OSError:
        return ""
    if not target:
        return ""
    out = []
    for p in base.iterdir():
        if p.name != name and p.is_symlink():
            try:
                if os.readlink(p) == target:
                    out.append(p.name)
            except OSError:
                pass
    return " ".join(sorted(out))


def quiet(d, socks):
    """A window in which nobody else opened or closed sockets: the TCP and socket-inode
    caches changed by our 2N sockets, to 1.5%."""
    return all(abs(d.get(c, {}).get("objs", 0) - socks) <= 0.015 * socks
               for c in ("TCP", "sock_inode_cache"))


def wait_states(lab, ns, ok, what, timeout=30):
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        lab.check_time()
        st = ns.tcp_states((9100, 8080))
        if ok(st):
            return st
        time.sleep(0.25)
    raise RuntimeError(f"no {what} after {timeout} s: {st}")


def main():
    ap = wxlib.base_args(__doc__, "40 s (--quick: 15 s)")
    ap.add_argument("--conns", type=int, default=None,
                    help="connections to hold [default: 19000, --quick: 5000]")
    ap.add_argument("--cycles", type=int, default=8,
                    help="open/close cycles at most (at least 2; it stops earlier after 80 s "
                         "or with 4 quiet windows); each gives two estimates (opening, "
                         "closing) [default: 8, --quick: 1]")
    args = ap.parse_args()
    n = args.conns or (5000 if args.quick else 19000)
    with Lab("capacity", args) as lab:
        ns = lab.netns("cap")
        srv = Wharfd(lab, ns, ["frame://127.0.0.1:9100", "http://127.0.0.1:8080"], ["-w", "2"])
        cap = srv.stats()["capacity"]
        if n > cap - 8:
            raise RuntimeError(f"wharfd can hold {cap} connections with this file limit; "
                               f"use --conns below that")
        knobs = {k: ns.get(k) for k in ("net.ipv4.ip_local_port_range",
                                        "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem")}
        # global knobs (not in the namespace): read, never written
        knobs.update(wxlib.read_host_sysctls(["net.ipv4.tcp_mem", "fs.nr_open", "fs.file-max"]))
        max_cycles = 1 if args.quick else args.cycles
        budget = time.monotonic() + (20 if args.quick else 80)
        hold_s = 3
        windows = []  # (kind, deltas, meminfo Slab delta): one per opening and per closing
        rss_delta = live = tcp_growth = None
        survived = []
        cycle = 0
        while cycle < max_cycles:
            if cycle >= 2 and (time.monotonic() > budget or sum(w[3] for w in windows) >= 4):
                break
            lab.check_time()
            time.sleep(0.5)
            before = snapshot(srv)
            hold = ns.popen([lab.wharf_bin, "hold", "-c", str(n), "-d", f"{hold_s}s",
                             "--source", "127.0.0.2-127.0.0.5", "--json", "frame://127.0.0.1:9100"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            wait_states(lab, ns, lambda st: st.get("srv:ESTAB", 0) >= n and st.get("cli:ESTAB", 0) >= n,
                        f"{n} connections established")
            time.sleep(1.0)
            held = snapshot(srv)
            if cycle == 0:
                live = srv.stats()["totals"]["active"]
                rss_delta = held["rss"] - before["rss"]
            report = hold.communicate(timeout=hold_s + 40)[0]
            hrep = json.loads(report) if report.strip().startswith("{") else {}
            survived.append(hrep.get("survived", 0))
            # closed: the client's ends become TIME_WAIT mini-sockets (a cache of their
            # own), the server's are freed once wharfd has closed them
            wait_states(lab, ns, lambda st: st.get("srv:ESTAB", 0) <= 1 and st.get("cli:ESTAB", 0) <= 1
                        and st.get("LAST-ACK", 0) == 0 and st.get("CLOSE-WAIT", 0) == 0,
                        "connections closed")
            time.sleep(1.0)
            after = snapshot(srv)
            d_open, d_close = deltas(before, held), deltas(after, held)
            windows.append(("open", d_open, held["mem"]["Slab"] - before["mem"]["Slab"],
                            quiet(d_open, 2 * n)))
            windows.append(("close", d_close, held["mem"]["Slab"] - after["mem"]["Slab"],
                            quiet(d_close, 2 * n)))
            if cycle == 0:
                tcp_growth = d_open.get("TCP", {}).get("objs", 0)
            log(f"capacity: cycle {cycle + 1}: TCP +{d_open.get('TCP', {}).get('objs', 0)} "
                f"-{d_close.get('TCP', {}).get('objs', 0)} (expect {2 * n}), quiet windows "
                f"{sum(w[3] for w in windows)}, survived {survived[-1]}")
            cycle += 1
        cycles = cycle
        all_windows = windows
        windows = [w for w in all_windows if w[3]]
        noisy = not windows
        if noisy:
            log("capacity: WARNING: no quiet window (other loads opened or closed sockets "
                "throughout); using all windows")
            windows = all_windows
        socks = 2 * n
        names = set()
        for w in windows:
            names |= set(w[1])
        per_cache = []
        for name in sorted(names):
            vals = [w[1].get(name, {}).get("objs", 0) for w in windows]
            size = next(w[1][name]["size"] for w in windows if name in w[1])
            med = statistics.median(vals)
            # Socket-related: the known per-socket caches, plus any cache whose median
            # change is at least a third of an object per socket.
            if not (name in SOCKET_CACHES or med >= socks / 3):
                continue
            est = max(0, med)
            per_cache.append(dict(cache=name, merged_with=aliases(name), windows=" ".join(str(v) for v in vals), objects=est,
                                  object_size=size, bytes=est * size, per_socket=est * size / socks,
                                  objects_per_socket=est / socks))
        per_cache.sort(key=lambda x: -x["bytes"])
        obj_bytes = sum(x["bytes"] for x in per_cache)
        slab_med = statistics.median(w[2] for w in windows)
        k_per_sock = obj_bytes / socks
        u_per_conn = rss_delta / n
        per_conn = k_per_sock + u_per_conn  # server side: one socket + wharfd's share
        r = dict(connections=n, sockets=socks, cycles=cycles, windows_used=len(windows),
                 windows_total=len(all_windows), noisy=noisy, live_in_wharfd=live,
                 survived=min(survived), tcp_objects_growth=tcp_growth,
                 socket_object_bytes=obj_bytes, meminfo_slab_median=slab_med,
                 meminfo_slab_windows=" ".join(str(w[2]) for w in windows),
                 wharfd_rss_delta=rss_delta, kernel_bytes_per_socket=k_per_sock,
                 slab_bytes_per_socket=slab_med / socks,
                 wharfd_bytes_per_connection=u_per_conn,
                 server_bytes_per_connection=per_conn,
                 connections_per_gib=GIB / per_conn if per_conn > 0 else 0)
        log(f"capacity: {n} connections: socket objects {k_per_sock:.0f} B/socket; meminfo Slab "
            f"{slab_med / socks:.0f} B/socket (median); wharfd RSS +{rss_delta / 2**20:.2f} MiB = "
            f"{u_per_conn:.0f} B/connection")
        for x in per_cache:
            log(f"  {x['cache']}: {x['windows']} x {x['object_size']} B")
        srv.stop()
        lab.drop(ns)
        top_rows = per_cache
        csv_p = lab.write_csv([r], list(r.keys()))
        lab.write_csv(top_rows, ["cache", "merged_with", "windows", "objects", "object_size", "bytes",
                                 "per_socket", "objects_per_socket"], "-slabs.csv")
        png = chart(lab, top_rows, r)
        write_md(lab, r, top_rows, knobs, png)
        log(f"capacity: wrote {csv_p} and .md{' and .png' if png else ''}")


def chart(lab, top_rows, r):
    rows = [dict(label=t["cache"], b=t["per_socket"]) for t in top_rows[:10] if t["per_socket"] >= 1]
    rows.append(dict(label="wharfd RSS (per conn.)", b=r["wharfd_bytes_per_connection"]))
    d = lab.write_dat("cap.dat", rows, ["label", "b"])
    body = f"""set title 'capacity: memory per idle connection, {r["connections"]} held (Linux {wxlib.kernel()}): kernel slab caches per socket, and wharfd RSS per connection'
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set ylabel 'bytes'
set xtics rotate by -30 font ',9'
set yrange [0:*]
unset key
plot '{d}' using 2:xtic(1) lc rgb '#4477aa', '' using 0:2:(sprintf('%.0f', $2)) with labels offset 0,0.7 notitle
"""
    return lab.chart({"height": 500, "body": body})


def write_md(lab, r, top_rows, knobs, png):
    n = r["connections"]
    lo, hi = (int(x) for x in knobs["net.ipv4.ip_local_port_range"].split())
    ports = hi - lo + 1
    per = r["server_bytes_per_connection"]
    c1m = 1_000_000
    tcp_mem = [int(x) for x in knobs["net.ipv4.tcp_mem"].split()]
    rmem_min = int(knobs["net.ipv4.tcp_rmem"].split()[0])
    wmem_min = int(knobs["net.ipv4.tcp_wmem"].split()[0])
    t = wxlib.header("capacity: memory per idle connection, and the C1M plan", lab,
                     f"{n} connections held (wharfd `-w 2`, `wharf hold -c {n} --source "
                     "127.0.0.2-127.0.0.5`), both ends on this machine.")
    t += (f"Kernel memory per socket: the objects of the slab caches a TCP socket uses (the "
          "socket, its sockfs inode and dentry, its file, LSM blobs, its epoll registration). "
          f"The {n:,} connections are opened and closed {r['cycles']} times; each opening and "
          "each closing gives a change of every cache's object count. A window counts as quiet "
          "when the TCP and socket-inode caches changed by our sockets alone (to 1.5%): other "
          "loads did not open or close sockets meanwhile. The median over the "
          f"{r['windows_used']} quiet windows of {r['windows_total']}"
          + (" (NONE was quiet: all are used, and the figures are noisy)" if r["noisy"] else "")
          + f" is kept, divided by the {2 * n:,} sockets (each connection has "
          "two ends here, with the same kinds of kernel objects). Non-socket activity of other "
          "loads (e.g. dentries, /proc inodes) can still land in a quiet window; the median "
          f"damps it. Check: the TCP cache grew by {r['tcp_objects_growth']:,} objects "
          f"for {2 * n:,} sockets in the first opening. wharfd: VmRSS growth at the first "
          f"opening / {n:,}. Every hold verified its connections at the end: at least "
          f"{r['survived']:,} of {n:,} survived.\n\n")
    t += md_table([
        dict(k="socket-related slab objects (table below)",
             v=f"{r['socket_object_bytes'] / 2**20:.1f} MiB",
             p=f"**{r['kernel_bytes_per_socket']:.0f} B per socket**"),
        dict(k="/proc/meminfo Slab (median; whole machine: includes slab slack and other loads)",
             v=f"{r['meminfo_slab_median'] / 2**20:.1f} MiB",
             p=f"{r['slab_bytes_per_socket']:.0f} B per socket"),
        dict(k="wharfd RSS growth", v=f"{r['wharfd_rss_delta'] / 2**20:.2f} MiB",
             p=f"**{r['wharfd_bytes_per_connection']:.0f} B per connection**"),
    ], [("what", "k", ""), ("changed by", "v", ""), ("per unit", "p", "")]) + "\n\n"
    t += "Slab caches per socket (object count changes: opening, closing, ...):\n\n"
    t += md_table(top_rows, [("cache", "cache", ""), ("same cache as (SLUB merge)", "merged_with", ""),
                             ("windows", "windows", ""),
                             ("objects per socket (median)", "objects_per_socket", ".2f"),
                             ("object size B", "object_size", "d"),
                             ("bytes per socket", "per_socket", ".0f")]) + "\n\n"
    gib_1m = c1m * per / GIB
    src_default = -(-c1m // ports)
    src_full = -(-c1m // (65535 - 1024 + 1))
    t += "## The C1M plan, from these numbers\n\n"
    t += (f"- **Memory per idle server-side connection**: {r['kernel_bytes_per_socket']:.0f} B in "
          f"the kernel + {r['wharfd_bytes_per_connection']:.0f} B in wharfd = **{per:.0f} B**, "
          f"so **{r['connections_per_gib']:,.0f} connections per GiB**; 1,000,000 idle "
          f"connections need about **{gib_1m:.1f} GiB** on the server. That is idle: a "
          f"connection with data queued holds socket buffers too, from tcp_rmem/tcp_wmem "
          f"min ({rmem_min} / {wmem_min} B) up to what autotuning grows them to, all under "
          f"net.ipv4.tcp_mem (here {tcp_mem[0]} / {tcp_mem[1]} / {tcp_mem[2]} pages = "
          f"{tcp_mem[2] * 4096 / GIB:.1f} GiB hard limit for all TCP buffers): 1,000,000 "
          f"connections with one 4 KiB page queued each is 3.8 GiB more, beyond that limit "
          f"here. A load generator on the same machine doubles the kernel part.\n")
    t += (f"- **File descriptors**: one per connection, plus a few. RLIMIT_NOFILE (LimitNOFILE=, "
          f"`ulimit -n`) ≥ 1,000,100 for wharfd; it cannot exceed fs.nr_open (here "
          f"{knobs['fs.nr_open']}: just enough, raise it to 2,097,152 for headroom); fs.file-max "
          f"(here {knobs['fs.file-max']}) bounds the whole machine. The `high-concurrency` "
          "profile sets these (see tuning/profiles/).\n")
    t += (f"- **Ports**: the server needs one listening port: accepted connections share it, "
          f"each told apart by the client's address and port. The *clients* need ports: one "
          f"source address has {ports:,} ephemeral ports (ip_local_port_range "
          f"{lo}-{hi}) per destination address and port, so 1,000,000 connections to one "
          f"wharfd port from one load-generator machine need **{src_default} source addresses** "
          f"(`wharf hold --source`), or {src_full} with the range widened to 1024-65535, or "
          f"as many server ports/addresses (`wharfd -l` more than once). Load generators past "
          f"about 20,000 connections per process need `wharf hold --procs`.\n")
    t += (f"- **Accept rate**: holding is cheap, getting there is not: at wharf hold's default "
          f"--connect-rate 10000/s, 1,000,000 connections take 100 s to set up; the accept "
          f"queue (somaxconn, `--backlog`) must absorb the bursts (see the backlog experiment).\n")
    t += (f"- Measured here at {n:,} connections and extrapolated linearly: the per-connection "
          "costs are per-object and do not grow with the count, but hash tables "
          "(tcp_ehash, sized at boot from RAM) get longer chains past their size.\n\n")
    if png:
        t += f"![capacity]({png.name})\n"
    lab.write_md(t)


if __name__ == "__main__":
    wxlib.main_wrapper(main)

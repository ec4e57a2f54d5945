#!/usr/bin/env python3
"""rcvbuf: what a UDP socket's receive buffer does with a burst the server is too
slow to read.

In a fresh namespace per setting, wharfd `-w 1` serves udp:// and is stopped
(SIGSTOP) just before a burst of BURST 64-byte datagrams from one client socket in
the same namespace (loopback), then continued. While it is stopped the kernel queues
what fits in the socket's receive buffer and drops the rest; counted three ways: the
namespace's UdpRcvbufErrors (nstat), wharfd's udp_rxq_overflow (SO_RXQ_OVFL, read
with the next datagram) and what wharfd answered (udp_datagrams_in). `ss -ulm` gives
the buffer's limit as the kernel set it (skmem rb) and what the queue held (r).

The settings: no `--rcvbuf` (the socket gets net.core.rmem_default) and `--rcvbuf N`
(SO_RCVBUF, which the kernel caps at net.core.rmem_max and doubles). Whether the
rmem_* sysctls can be set inside a namespace on this kernel is checked (by writing the
value they already have); on kernels where they are the host's, read-only, they are
only read: the host's values are never written, and are compared before and after.
Writes tuning/results/rcvbuf-DATE.{csv,md,png}.
"""
import os
import re
import signal
import time

import wxlib
from wxlib import Lab, Wharfd, log, md_table

PORT = 9110
SENDER = r"""
import socket, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
msg = b"x" * 64
sent = 0
for i in range(n):
    try:
        s.sendto(msg, ("127.0.0.1", port))
        sent += 1
    except OSError:
        pass
print(sent)
"""
K = 1024
M = 1024 * 1024
# wharfd --rcvbuf per run (None: no SO_RCVBUF, the socket gets rmem_default).
RCVBUFS = [None, 64 * K, 256 * K, 1 * M, 2 * M, 4 * M, 8 * M]
QUICK = [None, 1 * M, 8 * M]


def skmem(ns, port):
    """(r, rb) of the udp socket on port: bytes queued and the buffer's limit."""
    out = ns.run(["ss", "-Huamn", "sport", f"= :{port}"], check=False).stdout
    m = re.search(r"skmem:\(r(\d+),rb(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def writable_in_ns(ns, key):
    """Whether key can be set inside ns: written with the value it already has (no
    change either way); on kernels where it is the host's, read-only, this fails."""
    r = ns.run(["sysctl", "-w", f"{key}={ns.get(key)}"], check=False)
    return r.returncode == 0 and not r.stderr.strip()  # procps exits 0 on EINVAL


def one_run(lab, rcvbuf, burst, pause_s):
    ns = lab.netns("rb")
    label = f"--rcvbuf {rcvbuf // K}K" if rcvbuf else "no --rcvbuf"
    r = {"setting": label, "burst": burst, "rcvbuf_flag": rcvbuf or 0,
         "rmem_default": int(ns.get("net.core.rmem_default")),
         "rmem_max": int(ns.get("net.core.rmem_max")),
         "rmem_writable": int(writable_in_ns(ns, "net.core.rmem_default") and
                              writable_in_ns(ns, "net.core.rmem_max"))}
    extra = ["-w", "1", "--backend", "epoll", "--listen", f"udp://127.0.0.1:{PORT}"]
    if rcvbuf:
        extra += ["--rcvbuf", str(rcvbuf)]
    srv = Wharfd(lab, ns, ["http://127.0.0.1:8080"], extra)
    before = srv.stats()["totals"]
    n0 = ns.nstat()
    os.kill(srv.pid, signal.SIGSTOP)
    try:
        out = ns.run(["python3", "-c", SENDER, str(burst), str(PORT)], timeout=60).stdout
        time.sleep(pause_s)
        r["sent"] = int(out.strip() or 0)
        r["queued_bytes"], r["rb"] = skmem(ns, PORT)
        n1 = ns.nstat()
    finally:
        os.kill(srv.pid, signal.SIGCONT)
    time.sleep(0.5)
    # SO_RXQ_OVFL's count rides on a datagram queued after the drops: the burst's own
    # were all queued before them, so one more, once the queue is empty.
    ns.run(["python3", "-c", SENDER, "1", str(PORT)], timeout=30)
    time.sleep(0.3)
    srv_after = srv.stats()["totals"]
    r["rcvbuf_errors"] = n1.get("UdpRcvbufErrors", 0) - n0.get("UdpRcvbufErrors", 0)
    r["answered"] = srv_after["udp_datagrams_in"] - before["udp_datagrams_in"] - 1
    r["rxq_overflow"] = srv_after["udp_rxq_overflow"] - before["udp_rxq_overflow"]
    r["held"] = r["sent"] - r["rcvbuf_errors"]
    r["bytes_per_dgram"] = round(r["queued_bytes"] / r["held"]) if r["held"] and r["queued_bytes"] else 0
    srv.stop()
    lab.drop(ns)
    return r


def chart(lab, runs):
    rows = [{"label": r["setting"].replace(" ", "_"),
             "rb": r["rb"] / K if r["rb"] else 0,
             "drops": r["rcvbuf_errors"], "held": r["held"]} for r in runs]
    d = lab.write_dat("rcvbuf.dat", rows, ["label", "rb", "drops", "held"])
    body = f"""set title 'rcvbuf: {runs[0]['burst']} datagrams of 64 B at a stopped wharfd, per receive-buffer setting (Linux {wxlib.kernel()})'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key top right
set yrange [0:*]
set xtics rotate by -20 font ',8' noenhanced
set ylabel 'datagrams'
set y2label 'buffer limit (KiB, skmem rb)'
set y2tics
set y2range [0:*]
plot '{d}' using 4:xtic(1) title 'held (queued)', '' using 3 title 'dropped (UdpRcvbufErrors)', '' using 2 axes x1y2 with linespoints lw 2 pt 7 title 'rb (KiB)'
"""
    return lab.chart({"height": 600, "body": body})


def write_md(lab, runs, host, pause_s, png):
    cols = [("wharfd", "setting", ""), ("rb (kernel's limit)", "rb", "d"), ("sent", "sent", "d"),
            ("held", "held", "d"), ("bytes charged per datagram", "bytes_per_dgram", "d"),
            ("UdpRcvbufErrors", "rcvbuf_errors", "d"), ("udp_rxq_overflow", "rxq_overflow", "d"),
            ("answered", "answered", "d")]
    first = runs[0]
    t = wxlib.header("rcvbuf: a UDP burst against the receive buffer", lab,
                     f"{first['burst']} datagrams of 64 B from one socket over loopback at "
                     f"wharfd `-w 1 --backend epoll`, stopped (SIGSTOP) for the burst and "
                     f"{pause_s:g} s after it; then one more datagram (see udp_rxq_overflow).")
    writable = all(r["rmem_writable"] for r in runs)
    t += (f"net.core.rmem_default {first['rmem_default']}, net.core.rmem_max "
          f"{first['rmem_max']} in the namespaces (the host: {host['net.core.rmem_default']}, "
          f"{host['net.core.rmem_max']}). " +
          ("They could be set inside a namespace on this kernel. " if writable else
           "On this kernel they are **not** per namespace: a namespace sees the host's "
           "values, read-only (`sysctl -w` there fails with EINVAL), so an experiment that "
           "must not touch the host cannot vary them; it varies SO_RCVBUF (`--rcvbuf`), "
           "which the kernel caps at rmem_max and doubles. ") +
          "The host's values were the same before and after.\n\n")
    t += md_table(runs, cols) + "\n\n"
    held = {r["setting"]: r for r in runs}
    nd = held.get("no --rcvbuf")
    t += ("- A datagram costs the buffer far more than its 64 bytes: the kernel charges each "
          "queued skb's truesize (\"bytes charged per datagram\"), so the buffer holds rb / "
          "that many" + (f": {nd['held']} with the default rb of {nd['rb']}" if nd else "") +
          ". Everything past that, while the server is not reading, is dropped.\n"
          "- `--rcvbuf N` gives rb = 2N (the doubling is the kernel's allowance for that "
          f"overhead) up to 2 × rmem_max; past rmem_max ({first['rmem_max']}) asking for "
          "more changes nothing.\n"
          "- Every drop is counted by the namespace (UdpRcvbufErrors) and by wharfd "
          "(udp_rxq_overflow, from SO_RXQ_OVFL): the two agree once a datagram arrives after "
          "the drops (the count rides on it), so wharfd's own counter shows it in production.\n"
          "- What matters for the profile: the time a worker may stall × the datagram rate "
          "must fit in rb / truesize; at the default rb that is a few hundred datagrams.\n\n")
    if png:
        t += f"![rcvbuf]({png.name})\n"
    lab.write_md(t)


def main():
    ap = wxlib.base_args(__doc__, "30 s (--quick: 10 s)")
    ap.add_argument("--burst", type=int, default=None,
                    help="datagrams per burst [default: 40000, --quick: 20000]")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds stopped after the burst")
    args = ap.parse_args()
    burst = args.burst or (20000 if args.quick else 40000)
    host = wxlib.read_host_sysctls(["net.core.rmem_default", "net.core.rmem_max"])
    runs = []
    with Lab("rcvbuf", args) as lab:
        for rcvbuf in (QUICK if args.quick else RCVBUFS):
            lab.check_time()
            r = one_run(lab, rcvbuf, burst, args.pause)
            runs.append(r)
            log(f"rcvbuf: {r['setting']}: rb {r['rb']}, sent {r['sent']}, held {r['held']}, "
                f"UdpRcvbufErrors {r['rcvbuf_errors']}, udp_rxq_overflow {r['rxq_overflow']}, "
                f"answered {r['answered']}")
        fields = ["setting", "burst", "rmem_default", "rmem_max", "rmem_writable", "rcvbuf_flag", "rb", "sent", "held",
                  "queued_bytes", "bytes_per_dgram", "rcvbuf_errors", "rxq_overflow", "answered"]
        csv_p = lab.write_csv(runs, fields)
        png = chart(lab, runs)
        write_md(lab, runs, host, args.pause, png)
        log(f"rcvbuf: wrote {csv_p} and .md{' and .png' if png else ''}")


if __name__ == "__main__":
    wxlib.main_wrapper(main)

#!/usr/bin/env python3
"""fin_timeout: what net.ipv4.tcp_fin_timeout bounds (an orphaned FIN_WAIT_2), what it
does not (TIME_WAIT, always 60 s), and what a low net.ipv4.tcp_max_tw_buckets does.

Four namespaces run side by side, each with wharfd (`-w 1`, HTTP on 127.0.0.1:8080):

  fin_timeout=60, 30, 5   tcp_fin_timeout set in the namespace
  tw_buckets=100          tcp_max_tw_buckets = 100 (fin_timeout left at 60)

In each, at the start:
  1. hold_open.py opens HOLD connections, sends `GET /` with `Connection: close`
     and never closes: wharfd answers and closes first, the client's kernel ACKs
     the FIN, and the server's socket waits in FIN_WAIT_2 for a FIN that never
     comes. wharfd has closed the descriptor, so the socket is orphaned and
     tcp_fin_timeout applies.
  2. `wharf churn -n CYCLES --close server http://...` (the server closes first, the
     client then closes too): CYCLES TIME_WAIT sockets on the server.

Then `ss -tan` (FIN-WAIT-2 and TIME-WAIT on the server's port) and the namespace's
TcpExtTCPTimeWaitOverflow are sampled every 0.5 s for OBSERVE seconds (default
72 s, enough to see TIME_WAIT end at 60 s).
Writes tuning/results/fin_timeout-DATE.{csv,md,png} and -series.csv.
"""
import json
import os
import subprocess
import sys
import time

import wxlib
from wxlib import Lab, Wharfd, log, md_table

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = wxlib.base_args(__doc__, "80 s (--quick: 15 s)")
    ap.add_argument("--hold", type=int, default=200, help="FIN_WAIT_2 connections [default: 200]")
    ap.add_argument("--cycles", type=int, default=500,
                    help="server-closed churn cycles (TIME_WAIT sockets) [default: 500]")
    ap.add_argument("--observe", type=float, default=None,
                    help="seconds to watch [default: 72, --quick: 10]")
    args = ap.parse_args()
    observe = args.observe or (10.0 if args.quick else 72.0)
    if args.quick:
        setups = [dict(id="fin_timeout=5", fin=5, buckets=None),
                  dict(id="fin_timeout=2", fin=2, buckets=None),
                  dict(id="tw_buckets=100", fin=None, buckets=100)]
    else:
        setups = [dict(id=f"fin_timeout={f}", fin=f, buckets=None) for f in (60, 30, 5)]
        setups.append(dict(id="tw_buckets=100", fin=None, buckets=100))
    with Lab("fin_timeout", args) as lab:
        for s in setups:
            ns = lab.netns("fin")
            s["ns"] = ns
            if s["fin"] is not None:
                ns.set("net.ipv4.tcp_fin_timeout", s["fin"])
            if s["buckets"] is not None:
                ns.set("net.ipv4.tcp_max_tw_buckets", s["buckets"])
            s["fin_timeout"] = int(ns.get("net.ipv4.tcp_fin_timeout"))
            s["max_tw_buckets"] = int(ns.get("net.ipv4.tcp_max_tw_buckets"))
            s["srv"] = Wharfd(lab, ns, ["http://127.0.0.1:8080"], ["-w", "1"])
            s["n0"] = ns.nstat()
        def sample_all():
            row = {}
            for s in setups:
                st = s["ns"].tcp_states((8080,))
                n = s["ns"].nstat()
                row[f"{s['id']}:fw2"] = st.get("srv:FIN-WAIT-2", 0)
                row[f"{s['id']}:tw"] = st.get("srv:TIME-WAIT", 0)
                row[f"{s['id']}:close_wait"] = st.get("cli:CLOSE-WAIT", 0)
                row[f"{s['id']}:overflow"] = n["TcpExtTCPTimeWaitOverflow"] - s["n0"]["TcpExtTCPTimeWaitOverflow"]
            return row

        sampler = lab.sampler(0.5, sample_all)
        t0 = sampler.t0
        # 1. the FIN_WAIT_2 holders, all at once
        for s in setups:
            if s["buckets"] is not None:
                continue  # TIME_WAIT only there: the overflow is then all TIME_WAIT's
            s["holder"] = s["ns"].popen(["python3", os.path.join(HERE, "hold_open.py"),
                                         "127.0.0.1", "8080", str(args.hold)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for s in setups:
            if "holder" not in s:
                s["t_fw2"] = 0.0
                continue
            line = s["holder"].stdout.readline()
            if not line.startswith("held"):
                raise RuntimeError(f"hold_open.py: {s['holder'].stderr.read()[-500:]}")
            s["t_fw2"] = time.monotonic() - t0
        # The server's FIN_WAIT_1 -> FIN_WAIT_2 step waits for the client's ACK of its
        # FIN, which the client may delay: let every socket get there first.
        time.sleep(1.0)
        # 2. TIME_WAIT on the server: churn, server closes first
        for s in setups:
            s["churn"] = s["ns"].popen([lab.wharf_bin, "churn", "-c", "10", "-n", str(args.cycles),
                                        "-d", "20s", "--close", "server", "--json", "--allow-errors",
                                        "http://127.0.0.1:8080"],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for s in setups:
            rep = json.loads(s["churn"].communicate(timeout=30)[0])
            s["churn_connected"] = rep["connected"]
            s["t_tw"] = time.monotonic() - t0
        log(f"fin_timeout: {args.hold} FIN_WAIT_2 + {args.cycles} TIME_WAIT per namespace; "
            f"watching for {observe:.0f} s")

        end = t0 + observe
        while time.monotonic() < end:
            lab.check_time()
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        rows = sampler.stop()
        # summary per namespace
        for s in setups:
            k = s["id"]
            fw2 = [(r["t_s"], r[f"{k}:fw2"]) for r in rows]
            tw = [(r["t_s"], r[f"{k}:tw"]) for r in rows]
            s["fw2_max"] = max((v for _, v in fw2), default=0)
            s["tw_max"] = max((v for _, v in tw), default=0)
            s["fw2_end"] = fw2[-1][1] if fw2 else 0
            s["tw_end"] = tw[-1][1] if tw else 0
            s["fw2_gone_s"] = gone_after(fw2, s["t_fw2"])
            s["tw_gone_s"] = gone_after(tw, s["t_tw"])
            s["overflow"] = rows[-1][f"{k}:overflow"] if rows else 0
            s["close_wait_end"] = rows[-1][f"{k}:close_wait"] if rows else 0
            s["hold"], s["cycles"] = (0 if "holder" not in s else args.hold), args.cycles
            log(f"  {k}: FIN_WAIT_2 {s['fw2_max']} -> gone after {s['fw2_gone_s']} s; "
                f"TIME_WAIT {s['tw_max']} -> gone after {s['tw_gone_s']} s; "
                f"TCPTimeWaitOverflow {s['overflow']}")
        fields = ["id", "fin_timeout", "max_tw_buckets", "hold", "cycles", "churn_connected",
                  "fw2_max", "fw2_gone_s", "fw2_end", "tw_max", "tw_gone_s", "tw_end",
                  "overflow", "close_wait_end"]
        csv_p = lab.write_csv(setups, fields)
        sfields = ["t_s"] + [f"{s['id']}:{m}" for s in setups for m in ("fw2", "tw", "overflow")]
        lab.write_csv(rows, sfields, "-series.csv")
        png = chart(lab, setups, rows, args)
        write_md(lab, setups, args, observe, png)
        log(f"fin_timeout: wrote {csv_p} and .md{' and .png' if png else ''}")


def gone_after(series, t_created):
    """Seconds from t_created to the first sample at 0 after the count was > 0
    ('' if it never reached 0, 'never' if it was never > 0)."""
    seen = False
    for t, v in series:
        if v > 0:
            seen = True
        elif seen:
            return round(t - t_created, 1)
    return "" if seen else "never"


def chart(lab, setups, rows, args):
    cols = ["t_s"] + [f"{s['id']}:{m}" for s in setups for m in ("fw2", "tw")]
    dat = lab.write_dat("fin.dat", rows, cols)
    fw2_plots, tw_plots = [], []
    for i, s in enumerate(setups):
        title = s["id"].replace("_", "\\_")
        fw2_plots.append(f"'{dat}' using 1:{2 + 2 * i} with lines lw 2 title '{title}'")
        tw_plots.append(f"'{dat}' using 1:{3 + 2 * i} with lines lw 2 title '{title}'")
    body = f"""set multiplot layout 2,1 title 'fin\\_timeout: server closes first (Linux {wxlib.kernel()})'
set grid
set key top right
set xlabel 'seconds since the connections were made'
set xtics 10
set title 'orphaned FIN\\_WAIT\\_2 on the server ({args.hold} clients that never close)'
set ylabel 'FIN-WAIT-2 sockets'
set yrange [0:*]
plot {", ".join(fw2_plots)}
set title 'TIME\\_WAIT on the server ({args.cycles} server-closed connections)'
set ylabel 'TIME-WAIT sockets'
plot {", ".join(tw_plots)}
unset multiplot
"""
    return lab.chart({"height": 800, "body": body})


def write_md(lab, setups, args, observe, png):
    cols = [("namespace", "id", ""), ("tcp_fin_timeout", "fin_timeout", "d"),
            ("tcp_max_tw_buckets", "max_tw_buckets", "d"),
            ("FIN_WAIT_2 (max)", "fw2_max", "d"), ("FIN_WAIT_2 gone after s", "fw2_gone_s", ""),
            ("TIME_WAIT (max)", "tw_max", "d"), ("TIME_WAIT gone after s", "tw_gone_s", ""),
            ("TCPTimeWaitOverflow", "overflow", "d"), ("client CLOSE_WAIT (end)", "close_wait_end", "d")]
    t = wxlib.header("fin_timeout: FIN_WAIT_2, TIME_WAIT and tcp_max_tw_buckets", lab,
                     f"Watched for {observe:.0f} s, sampled every 0.5 s.")
    t += (f"Four namespaces side by side, wharfd `-w 1` in each. In each (but tw_buckets): `hold_open.py` opens "
          f"{args.hold} HTTP connections, sends `GET /` with `Connection: close` and never closes "
          "(wharfd answers and closes first: its socket, already closed by wharfd and so orphaned, "
          "waits in FIN_WAIT_2; the client's in CLOSE_WAIT); then\n\n"
          f"one second later\n\n    wharf churn -c 10 -n {args.cycles} --close server http://127.0.0.1:8080\n\n"
          f"leaves {args.cycles} TIME_WAIT sockets on the server. Counts from `ss -tan` on the "
          "server's port (FIN-WAIT-2, TIME-WAIT) and TcpExtTCPTimeWaitOverflow (`nstat`) in the "
          "namespace. \"gone after\" is measured from when the sockets were made, to 0.5 s "
          "(the sampling interval). Expect up to a few seconds more than the setting: the "
          "kernel's timer wheel rounds long timers up to its granularity at that distance "
          "(with HZ=250, as this kernel is built: about 2 s for anything from 16 s to 131 s, "
          "0.26 s from 2 s to 16 s).\n\n")
    t += md_table(setups, cols) + "\n\n"
    t += "What the numbers say:\n\n"
    for s in setups:
        if s["max_tw_buckets"] >= s["cycles"] + s["hold"]:
            t += (f"- {s['id']}: {s['fw2_max']} orphaned FIN_WAIT_2 gone after "
                  f"{s['fw2_gone_s']} s; {s['tw_max']} TIME_WAIT gone after {s['tw_gone_s']} s.\n")
        else:
            t += (f"- {s['id']}: {s['cycles']} server-closed connections, but at most "
                  f"{s['tw_max']} TIME_WAIT sockets; the other {s['overflow']} were destroyed at "
                  "once instead of waiting 60 s "
                  "(TcpExtTCPTimeWaitOverflow): TIME_WAIT's protection against old duplicates "
                  "is simply dropped for them.\n")
    t += ("\nAn orphaned FIN_WAIT_2 socket past its ACK is a timewait mini-socket too and counts "
          "against tcp_max_tw_buckets (when the limit is hit, it is destroyed the same way and "
          "counted in the same TcpExtTCPTimeWaitOverflow); the tw_buckets namespace runs no "
          "FIN_WAIT_2 holders so that its numbers show TIME_WAIT alone.\n")
    t += ("\ntcp_fin_timeout bounds only the orphaned FIN_WAIT_2 state; TIME_WAIT is "
          "TCP_TIMEWAIT_LEN (60 s) in every namespace, whatever tcp_fin_timeout says.\n\n")
    if png:
        t += f"![fin_timeout]({png.name})\n"
    lab.write_md(t)


if __name__ == "__main__":
    wxlib.main_wrapper(main)

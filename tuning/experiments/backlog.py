#!/usr/bin/env python3
"""backlog: what the accept queue (listen backlog, capped by net.core.somaxconn) does
with a burst of connects that the server is too slow to accept.

For somaxconn = backlog = 128, 1024, 4096 (wharfd --backlog N, somaxconn N in the
namespace), in a fresh namespace each:

  paused  wharfd's process is stopped (SIGSTOP) just before the burst and continued
          (SIGCONT) PAUSE seconds later. wharfd has no test-only "delay accept"
          switch; SIGSTOP is faithful to "the acceptor is busy": the listening socket
          stays open and the kernel keeps completing handshakes into its accept
          queue on its own, exactly as for a live server that does not call
          accept(), until the queue is full.
  live    the same burst against the running wharfd (`-w 1`): does the acceptor keep
          up? (The second half of "tiny worker count and a flood".)

The burst: `wharf churn -c BURST -n BURST --connect-rate 0` (BURST loops connect at
once, one frame round trip each, then close). Sampled every 0.2 s: the accept queue
(Recv-Q of the LISTEN socket in `ss -ltn`; Send-Q is its limit), SYN-RECV sockets and
the namespace's TcpExtListenOverflows, TcpExtListenDrops, TcpExtTCPSynRetrans. From
churn's connect-latency CSV: how many connects needed a SYN retransmission (>= 1 s).
Writes tuning/results/backlog-DATE.{csv,md,png} and -series.csv.
"""
import json
import os
import signal
import subprocess
import sys
import time

import wxlib
from wxlib import Lab, Wharfd, log, md_table


def read_latency_csv(path):
    """[(latency_us, cumulative_count)] from a wharf --latency-csv file."""
    rows = []
    try:
        with open(path) as f:
            next(f)
            for line in f:
                p = line.strip().split(",")
                rows.append((float(p[0]), int(p[2])))
    except (OSError, StopIteration):
        pass
    return rows


def one_run(lab, backlog, paused, burst, pause_s):
    ns = lab.netns(f"bl{backlog}")
    ns.set("net.core.somaxconn", backlog)
    syn_backlog = int(ns.get("net.ipv4.tcp_max_syn_backlog"))
    srv = Wharfd(lab, ns, ["frame://127.0.0.1:9100", "http://127.0.0.1:8080"],
                 ["-w", "1", "--backlog", str(backlog)])
    _, qmax = ns.listen_queue(9100)
    n0 = ns.nstat()
    keys = ("TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPSynRetrans",
            "TcpExtTCPReqQFullDrop", "TcpExtSyncookiesSent", "TcpExtTCPBacklogDrop")

    def sample():
        q, _ = ns.listen_queue(9100)
        st = ns.tcp_states((9100, 8080))
        n = ns.nstat()
        row = {"accept_queue": q, "syn_recv": st.get("srv:SYN-RECV", 0),
               "syn_sent": st.get("cli:SYN-SENT", 0), "cli_estab": st.get("cli:ESTAB", 0)}
        for k in keys:
            row[k] = n.get(k, 0) - n0.get(k, 0)
        return row

    lat_csv = lab.tmpfile(f"connect-{backlog}-{int(paused)}.csv")
    out = lab.tmpfile(f"churn-{backlog}-{int(paused)}.json")
    sampler = lab.sampler(0.2, sample)
    if paused:
        os.kill(srv.pid, signal.SIGSTOP)
    with open(out, "w") as f:
        churn = ns.popen([lab.wharf_bin, "churn", "-c", str(burst), "-n", str(burst), "-t", "1",
                          "--connect-rate", "0", "--timeout", "30s", "-d", "60s",
                          "--latency-csv", lat_csv, "--json", "--allow-errors",
                          "frame://127.0.0.1:9100"],
                         stdout=f, stderr=subprocess.DEVNULL)
        t_burst = time.monotonic() - sampler.t0
        if paused:
            time.sleep(pause_s)
            during = sample()  # the state at the end of the pause
            os.kill(srv.pid, signal.SIGCONT)
            t_cont = time.monotonic() - sampler.t0
        churn.wait(90)
    time.sleep(0.3)
    series = sampler.stop()
    rep = json.load(open(out))
    st = srv.stats()
    lat = read_latency_csv(lat_csv)
    total = lat[-1][1] if lat else 0
    fast = max((c for us, c in lat if us < 900_000), default=0)
    r = dict(backlog=backlog, somaxconn=backlog, accept_queue_limit=qmax,
             tcp_max_syn_backlog=syn_backlog, mode="paused" if paused else "live", burst=burst,
             pause_s=pause_s if paused else 0,
             queue_peak=max((s["accept_queue"] for s in series), default=0),
             attempts=rep["attempts"], connected=rep["connected"], completed=rep["completed"],
             errors=rep["errors"]["total"], failures=json.dumps(rep.get("failures_by_errno", {})),
             accepted=st["acceptor"]["accepted"] - 1,  # less our GET /stats
             connects_measured=total, connect_retried=total - fast,
             connect_p50_ms=rep["connect_latency"]["p50_us"] / 1000,
             connect_p99_ms=rep["connect_latency"]["p99_us"] / 1000,
             connect_max_ms=rep["connect_latency"]["max_us"] / 1000)
    final = series[-1] if series else {}
    for k in keys:
        r[k] = final.get(k, 0)
    if paused:
        r["queue_at_cont"] = during["accept_queue"]
        r["overflows_at_cont"] = during["TcpExtListenOverflows"]
        r["t_cont"] = t_cont - t_burst
    r["t_burst"] = t_burst
    r["id"] = f"backlog{backlog}-{r['mode']}"
    for s in series:
        s["run"] = r["id"]
        s["t_s"] = round(s["t_s"] - t_burst, 3)  # 0 = the burst starts
    r.update(resets=st["totals"]["resets"], closed=st["totals"]["closed"])
    srv.stop()
    lab.drop(ns)
    return r, series, lat


def chart(lab, runs, series, lats):
    paused = [r for r in runs if r["mode"] == "paused"]
    q_plots, o_plots, c_plots = [], [], []
    for i, r in enumerate(paused):
        lc = f" lc {i + 1}"
        d = lab.write_dat(f"{r['id']}.dat", series[r["id"]],
                          ["t_s", "accept_queue", "TcpExtListenOverflows", "TcpExtTCPSynRetrans"])
        q_plots.append(f"'{d}' using 1:2 with steps lw 2{lc} title 'backlog {r['backlog']}'")
        o_plots.append(f"'{d}' using 1:3 with steps lw 2{lc} title 'backlog {r['backlog']}: ListenOverflows'")
        o_plots.append(f"'{d}' using 1:4 with steps lw 1 dt 2{lc} title 'backlog {r['backlog']}: TCPSynRetrans'")
    for r in runs:
        lc = f" lc {1 + [p['backlog'] for p in runs].index(r['backlog'])}"
        lat = lats[r["id"]]
        if not lat:
            continue
        tot = lat[-1][1]
        rows = [{"ms": us / 1000, "pct": 100.0 * c / tot} for us, c in lat]
        d = lab.write_dat(f"{r['id']}-lat.dat", rows, ["ms", "pct"])
        dash = "" if r["mode"] == "paused" else " dt 3"
        c_plots.append(f"'{d}' using 1:2 with steps lw 2{dash}{lc} title 'backlog {r['backlog']} {r['mode']}'")
    t_cont = paused[0]["t_cont"] if paused else 0
    body = f"""set multiplot layout 3,1 title 'backlog: {runs[0]['burst']} connects at once, wharfd stopped for {paused[0]['pause_s'] if paused else 0:g} s (Linux {wxlib.kernel()})'
set grid
set key top right font ',9'
set xlabel 'seconds since the burst started'
set xrange [-0.5:*]
set arrow 1 from {t_cont:.2f}, graph 0 to {t_cont:.2f}, graph 1 nohead dt 2 lc rgb 'gray'
set label 1 'SIGCONT' at {t_cont:.2f}, graph 0.9 offset 0.5,0
set title 'accept queue (Recv-Q of the LISTEN socket)'
set ylabel 'connections'
plot {", ".join(q_plots)}
set title 'ListenOverflows (SYNs and final ACKs dropped: accept queue full) and the clients retransmitting SYNs'
set ylabel 'count (cumulative)'
plot {", ".join(o_plots)}
unset arrow 1
unset label 1
set title 'connect latency, cumulative (a timing: includes the client issuing 5000 connects; the jumps are SYN retransmissions)'
set logscale x
set xrange [*:*]
set xlabel 'connect latency (ms)'
set ylabel '% of connects'
set yrange [0:100]
set key bottom right
plot {", ".join(c_plots)}
unset multiplot
"""
    return lab.chart({"height": 1000, "body": body})


def main():
    ap = wxlib.base_args(__doc__, "40 s (--quick: 10 s)")
    ap.add_argument("--burst", type=int, default=5000, help="connects at once [default: 5000]")
    ap.add_argument("--pause", type=float, default=2.5,
                    help="seconds wharfd stays stopped [default: 2.5]")
    args = ap.parse_args()
    sizes = (128, 1024) if args.quick else (128, 1024, 4096)
    burst = min(args.burst, 1500) if args.quick else args.burst
    with Lab("backlog", args) as lab:
        runs, series, lats = [], {}, {}
        for paused in (True, False):
            for b in sizes:
                lab.check_time()
                log(f"backlog: somaxconn=backlog={b}, {'paused' if paused else 'live'}, burst {burst}")
                r, s, lat = one_run(lab, b, paused, burst, args.pause)
                runs.append(r)
                series[r["id"]] = s
                lats[r["id"]] = lat
                log(f"  queue peak {r['queue_peak']} (limit {r['accept_queue_limit']}), ListenOverflows "
                    f"{r['TcpExtListenOverflows']}, SYN retransmits {r['TcpExtTCPSynRetrans']}, "
                    f"connects >= 1 s {r['connect_retried']}, accepted {r['accepted']}, "
                    f"completed {r['completed']}, errors {r['errors']}")
        fields = ["id", "mode", "backlog", "somaxconn", "accept_queue_limit", "tcp_max_syn_backlog",
                  "burst", "pause_s", "queue_peak", "queue_at_cont", "overflows_at_cont",
                  "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPSynRetrans",
                  "TcpExtTCPReqQFullDrop", "TcpExtSyncookiesSent", "attempts", "connected",
                  "accepted", "completed", "errors", "failures", "resets", "connect_retried",
                  "connect_p50_ms", "connect_p99_ms", "connect_max_ms"]
        csv_p = lab.write_csv(runs, fields)
        allrows = [x for r in runs for x in series[r["id"]]]
        lab.write_csv(allrows, ["run", "t_s", "accept_queue", "syn_recv", "syn_sent", "cli_estab",
                                "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPSynRetrans"],
                      "-series.csv")
        png = chart(lab, runs, series, lats)
        write_md(lab, runs, args, burst, png)
        log(f"backlog: wrote {csv_p} and .md{' and .png' if png else ''}")


def write_md(lab, runs, args, burst, png):
    cols = [("backlog = somaxconn", "backlog", "d"), ("wharfd", "mode", ""),
            ("queue limit (ss Send-Q)", "accept_queue_limit", "d"),
            ("queue peak", "queue_peak", "d"),
            ("ListenOverflows", "TcpExtListenOverflows", "d"),
            ("ListenDrops", "TcpExtListenDrops", "d"),
            ("SYN retransmits", "TcpExtTCPSynRetrans", "d"),
            ("connects >= 1 s", "connect_retried", "d"),
            ("accepted by wharfd", "accepted", "d"), ("completed", "completed", "d"),
            ("errors", "errors", "d"), ("connect p99 ms", "connect_p99_ms", ".0f")]
    t = wxlib.header("backlog: the accept queue under a burst of connects", lab,
                     f"tcp_max_syn_backlog {runs[0]['tcp_max_syn_backlog']}, tcp_syncookies 1 "
                     "(namespace defaults).")
    t += (f"Each run: a fresh namespace with `net.core.somaxconn` = N, `wharfd -w 1 --backlog N`, and "
          f"a burst of {burst} connects at once:\n\n"
          f"    wharf churn -c {burst} -n {burst} --connect-rate 0 --timeout 30s frame://127.0.0.1:9100\n\n"
          f"**paused**: wharfd is stopped with SIGSTOP just before the burst and continued "
          f"{args.pause:g} s later. wharfd has no test-only switch to delay accept(); stopping the "
          "process is faithful to \"the acceptor does not keep up\": the listening socket stays, "
          "and the kernel alone completes handshakes into the accept queue until it holds "
          "backlog + 1 connections (the queue counts as full only when it is above the limit); then it drops each further SYN "
          "without an answer, and the client retransmits it after 1 s, 3 s, 7 s, ... (initial "
          "RTO 1 s, doubling). TcpExtListenOverflows (= ListenDrops here) counts those SYNs and "
          "also the handshake-completing ACKs dropped for the same reason (the client then "
          "believes it is connected while the server still holds a SYN-RECV request). "
          "**live**: the same burst against the running wharfd.\n\n")
    t += md_table(runs, cols) + "\n\n"
    t += ("ListenOverflows, ListenDrops, SYN retransmits (TcpExtTCPSynRetrans) and the accept "
          "queue are counts. Connect latency is a timing, measured by one client thread that "
          "issues the whole burst itself (several hundred ms for 5,000 connects on loopback, "
          "where connect() runs the handshake inline), so \"connects >= 1 s\" also catches slow "
          "ones that were never retried; the jumps at about 1 s and 3 s in the chart are the "
          "SYN retransmission timer (1 s, doubling).\n\n")
    t += "What the numbers say:\n\n"
    for r in runs:
        if r["mode"] == "paused":
            t += (f"- backlog {r['backlog']}, paused: the queue filled to {r['queue_peak']} and "
                  f"stayed there; {r['TcpExtListenOverflows']} ListenOverflows "
                  f"({r['overflows_at_cont']} while stopped), {r['TcpExtTCPSynRetrans']} SYN "
                  f"retransmissions, {r['connect_retried']} of {r['connects_measured']} connects "
                  f"took 1 s or more; wharfd accepted {r['accepted']} once it ran again, "
                  f"{r['completed']} round trips completed ({r['errors']} client errors).\n")
        else:
            t += (f"- backlog {r['backlog']}, live: queue peak {r['queue_peak']} (sampled every "
                  f"0.2 s), {r['TcpExtListenOverflows']} overflows, {r['TcpExtTCPSynRetrans']} SYN "
                  "retransmissions: "
                  + ("wharfd's one acceptor thread kept up with the client's one thread."
                     if r["TcpExtListenOverflows"] == 0 else
                     "wharfd's one acceptor thread did not quite keep up with the client's one "
                     "thread: the queue overflowed for a moment.") + "\n")
    extra = [r for r in runs if r["accepted"] > r["connected"]]
    for r in extra:
        t += (f"- backlog {r['backlog']}, {r['mode']}: wharfd accepted {r['accepted'] - r['connected']} "
              f"connections more than the client ever completed ({r['TcpExtSyncookiesSent']} SYN "
              f"cookies were sent: with the accept queue full, connections whose last ACK was "
              "dropped stay in SYN-RECV and fill the SYN queue too, and the kernel falls back to "
              f"cookies); wharfd counted {r['resets']} resets.\n")
    t += ("\nNothing is lost at the TCP level: a dropped SYN is retried by the client, so an "
          "overflowing accept queue shows up as connect latency in whole seconds, not as errors "
          "(unless the client's connect timeout is shorter than the retries).\n\n")
    if png:
        t += f"![backlog]({png.name})\n"
    lab.write_md(t)


if __name__ == "__main__":
    wxlib.main_wrapper(main)

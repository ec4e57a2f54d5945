#!/usr/bin/env python3
"""tw_reuse: what net.ipv4.tcp_tw_reuse (and tcp_tw_reuse_delay) do for a client that
opens and closes connections faster than TIME_WAIT (60 s) frees its ports.

The client's ephemeral port range is narrowed to 1,000 ports, and `wharf churn`
(connect, one frame round trip, the client closes first, so TIME_WAIT is on the
client) runs at a fixed offered rate against wharfd, once per setting, each in fresh
namespaces (TIME_WAIT sockets die with their namespace, so runs do not leak into
each other):

  loopback   one namespace, client and server on 127.0.0.1
  veth       a client and a server namespace joined by a veth pair,
             198.18.0.2 -> 198.18.0.1 (benchmarking range, inside the namespaces)

for tcp_tw_reuse = 0, 1, 2 and, where the kernel has net.ipv4.tcp_tw_reuse_delay
(6.14+), tcp_tw_reuse = 1 with a 10 ms delay (the default is 1000 ms). Then the
server-closes-first case (http, `Connection: close`: TIME_WAIT lands on the server)
with tcp_tw_reuse 0 and 1, and two unpaced runs that show the ceiling a reuse delay
puts on the connection rate (ports / delay).

Sampled every 0.5 s: connections/s (TcpActiveOpens in the client's namespace),
TIME_WAIT sockets on each side (`ss -tan`, split by port) and TcpExtTWRecycled.
From churn: attempts, connections, failures by errno (EADDRNOTAVAIL).
Writes tuning/results/tw_reuse-DATE.{csv,md,png} and -series.csv.
"""
import json
import os
import subprocess
import sys
import time

import wxlib
from wxlib import Lab, Wharfd, log, md_table

PORT_RANGE = "40000 40999"
SRV_PORTS = (9100, 8080)


def plan(args, has_delay):
    runs = []
    rate = args.rate
    for path in (("lo",) if args.quick else ("lo", "veth")):
        settings = [(0, None), (1, None)] if args.quick else [(0, None), (1, None), (2, None)]
        if has_delay and not args.quick:
            settings.append((1, 10))
        for reuse, delay in settings:
            runs.append(dict(path=path, close="client", reuse=reuse, delay=delay, rate=rate))
    if not args.quick:
        for reuse in (0, 1):
            runs.append(dict(path="veth", close="server", reuse=reuse, delay=None, rate=rate))
        for delay in ((None, 10) if has_delay else (None,)):
            runs.append(dict(path="lo", close="client", reuse=1, delay=delay, rate=0))
    for r in runs:
        r["id"] = (f"{r['path']}-{r['close']}-reuse{r['reuse']}"
                   + (f"-delay{r['delay']}" if r["delay"] else "")
                   + ("-unpaced" if r["rate"] == 0 else ""))
    return runs


def one_run(lab, r, duration, loops):
    if r["path"] == "lo":
        cns = sns = lab.netns("tw-lo")
        cip = sip = "127.0.0.1"
        nss = (cns,)
    else:
        cns, sns = lab.netns("tw-c"), lab.netns("tw-s")
        cip, sip = lab.veth_pair(cns, sns)
        nss = (cns, sns)
    # The knobs belong to the connecting side: set them in the client's namespace.
    cns.set("net.ipv4.ip_local_port_range", PORT_RANGE)
    cns.set("net.ipv4.tcp_tw_reuse", r["reuse"])
    delay_now = None
    if cns.has("net.ipv4.tcp_tw_reuse_delay"):
        if r["delay"]:
            cns.set("net.ipv4.tcp_tw_reuse_delay", r["delay"])
        delay_now = int(cns.get("net.ipv4.tcp_tw_reuse_delay"))
    r["delay_ms"] = delay_now if delay_now is not None else ""
    srv = Wharfd(lab, sns, [f"frame://{sip}:9100", f"http://{sip}:8080"], ["-w", "1"])
    if r["close"] == "server":
        url, extra = f"http://{sip}:8080", ["--close", "server"]
    else:
        url, extra = f"frame://{sip}:9100", []
    cmd = [lab.wharf_bin, "churn", "-c", str(loops), "-t", "1", "-d", f"{duration}s",
           "--connect-rate", str(r["rate"]), *extra, "--json", "--allow-errors", url]
    c0 = cns.nstat()
    s0 = sns.nstat() if sns is not cns else c0

    def sample():
        c = cns.nstat()
        row = {"opens": c["TcpActiveOpens"] - c0["TcpActiveOpens"],
               "recycled": c["TcpExtTWRecycled"] - c0["TcpExtTWRecycled"]}
        if sns is cns:
            st = cns.tcp_states(SRV_PORTS)
            row["tw_cli"], row["tw_srv"] = st.get("cli:TIME-WAIT", 0), st.get("srv:TIME-WAIT", 0)
        else:
            row["tw_cli"] = cns.tcp_states(()).get("TIME-WAIT", 0)
            row["tw_srv"] = sns.tcp_states(SRV_PORTS).get("srv:TIME-WAIT", 0)
        return row

    out = lab.tmpfile(f"churn-{r['id']}.json")
    with open(out, "w") as f:
        sampler = lab.sampler(0.5, sample)
        churn = cns.popen(cmd, stdout=f, stderr=subprocess.DEVNULL)
        churn.wait(duration + 30)
        time.sleep(0.25)
        series = sampler.stop()
    rep = json.load(open(out))
    c1 = cns.nstat()
    s1 = sns.nstat() if sns is not cns else c1
    last = series[-1] if series else {}
    fails = rep.get("failures_by_errno", {})
    r.update(
        attempts=rep["attempts"], connected=rep["connected"],
        # over the whole run: churn's own duration_s ends at its last connection
        conn_per_s=rep["connected"] / duration,
        eaddrnotavail=fails.get("EADDRNOTAVAIL", 0),
        other_failures=sum(v for k, v in fails.items() if k != "EADDRNOTAVAIL"),
        errors=rep["errors"]["total"],
        tw_client_end=last.get("tw_cli", 0), tw_server_end=last.get("tw_srv", 0),
        tw_client_max=max((s["tw_cli"] for s in series), default=0),
        tw_server_max=max((s["tw_srv"] for s in series), default=0),
        tw_recycled=c1["TcpExtTWRecycled"] - c0["TcpExtTWRecycled"],
        tw_recycled_server=(s1["TcpExtTWRecycled"] - s0["TcpExtTWRecycled"]) if sns is not cns else "",
        connect_p99_ms=rep["connect_latency"]["p99_us"] / 1000.0,
        duration_s=duration,
    )
    prev_t, prev_o = 0.0, 0
    for s in series:
        dt = s["t_s"] - prev_t
        s["conn_s"] = (s["opens"] - prev_o) / dt if dt > 0 else 0.0
        prev_t, prev_o = s["t_s"], s["opens"]
        s["run"] = r["id"]
    srv.stop()
    lab.drop(*nss)
    return series


def chart(lab, runs, series_by_id):
    def dat(rid):
        return lab.write_dat(f"{rid}.dat", series_by_id[rid], ["t_s", "conn_s", "tw_cli", "tw_srv", "recycled"])

    def title(r):
        t = f"tw\\_reuse={r['reuse']}"
        if r["delay"]:
            t += f", delay {r['delay']} ms"
        if r["close"] == "server":
            t = "server closes, " + t
        return t

    paths = [p for p in ("lo", "veth") if any(r["path"] == p and r["rate"] for r in runs)]
    body = [f"set multiplot layout 3,{len(paths)} columnsfirst title "
            f"'tw\\_reuse: {PORT_RANGE.replace(' ', '-')} client ports, churn at "
            f"{runs[0]['rate']} connections/s offered (Linux {wxlib.kernel()})'",
            "set grid", "set key top right font ',8'", "set xlabel 'seconds'"]
    for p in paths:
        rs = [r for r in runs if r["path"] == p and r["rate"]]
        name = "loopback (one namespace)" if p == "lo" else "veth (client ns -> server ns)"
        for ylabel, col, what in (("connections/s", 2, "connections/s"),
                                  ("TIME\\_WAIT sockets", 3, "TIME\\_WAIT"),
                                  ("TWRecycled (cumulative)", 5, "TcpExtTWRecycled")):
            plots = []
            for r in rs:
                c = col
                if col == 3 and r["close"] == "server":
                    c = 4  # TIME_WAIT of the server side
                dash = " dt 2" if r["close"] == "server" else ""
                lbl = title(r) + (" (server side)" if c == 4 else "")
                plots.append(f"'{dat(r['id'])}' using 1:{c} with lines lw 2{dash} title '{lbl}'")
            body.append(f"set title '{name}: {what}'")
            body.append(f"set ylabel '{ylabel}'")
            body.append("plot " + ", ".join(plots))
    body.append("unset multiplot")
    return lab.chart({"height": 900, "body": "\n".join(body) + "\n"})


def main():
    ap = wxlib.base_args(__doc__, "100 s (--quick: 10 s)")
    ap.add_argument("--rate", type=int, default=500,
                    help="offered connections/s (churn --connect-rate) [default: 500]")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds per run [default: 6, --quick: 4]")
    ap.add_argument("--loops", type=int, default=20, help="churn -c [default: 20]")
    args = ap.parse_args()
    duration = args.duration or (4.0 if args.quick else 6.0)
    with Lab("tw_reuse", args) as lab:
        probe = lab.netns("tw-probe")
        has_delay = probe.has("net.ipv4.tcp_tw_reuse_delay")
        defaults = {k: probe.get(k) for k in ("net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_timestamps",
                                               "net.ipv4.ip_local_port_range")}
        lab.drop(probe)
        runs = plan(args, has_delay)
        all_series, by_id = [], {}
        for r in runs:
            lab.check_time()
            log(f"tw_reuse: {r['id']} ({duration:.0f} s)")
            s = one_run(lab, r, duration, args.loops)
            by_id[r["id"]] = s
            all_series += s
            log(f"  {r['connected']} connected of {r['attempts']}, EADDRNOTAVAIL {r['eaddrnotavail']}, "
                f"TIME_WAIT client {r['tw_client_end']} server {r['tw_server_end']}, "
                f"TWRecycled {r['tw_recycled']}")
        fields = ["id", "path", "close", "reuse", "delay_ms", "rate", "duration_s", "attempts",
                  "connected", "conn_per_s", "eaddrnotavail", "other_failures", "errors",
                  "tw_client_end", "tw_server_end", "tw_client_max", "tw_server_max",
                  "tw_recycled", "tw_recycled_server", "connect_p99_ms"]
        csv_p = lab.write_csv(runs, fields)
        lab.write_csv(all_series, ["run", "t_s", "conn_s", "opens", "tw_cli", "tw_srv", "recycled"],
                      "-series.csv")
        png = chart(lab, runs, by_id)
        write_md(lab, runs, defaults, has_delay, duration, args, png)
        log(f"tw_reuse: wrote {csv_p} and .md{' and .png' if png else ''}")


def write_md(lab, runs, defaults, has_delay, duration, args, png):
    def who(r):
        return "client" if r["close"] == "client" else "server (http, Connection: close)"
    paced = [r for r in runs if r["rate"]]
    unpaced = [r for r in runs if not r["rate"]]
    cols = [("path", "path", ""), ("closes first", who, ""), ("tw_reuse", "reuse", ""),
            ("delay ms", "delay_ms", ""), ("attempts", "attempts", "d"),
            ("connected", "connected", "d"), ("connections/s", "conn_per_s", ".0f"),
            ("EADDRNOTAVAIL", "eaddrnotavail", "d"),
            ("TIME_WAIT client (end)", "tw_client_end", "d"),
            ("TIME_WAIT server (end)", "tw_server_end", "d"),
            ("TWRecycled", "tw_recycled", "d")]
    t = wxlib.header("tw_reuse: TIME_WAIT, port exhaustion and tcp_tw_reuse", lab,
                     f"Namespace defaults here: tcp_tw_reuse={defaults['net.ipv4.tcp_tw_reuse']}, "
                     f"tcp_timestamps={defaults['net.ipv4.tcp_timestamps']}, "
                     f"ip_local_port_range={' '.join(defaults['net.ipv4.ip_local_port_range'].split())}; "
                     f"tcp_tw_reuse_delay {'exists' if has_delay else 'does not exist (kernel < 6.14)'}.")
    t += ("Each run: fresh namespace(s), client `ip_local_port_range` = "
          f"{PORT_RANGE.replace(' ', '-')} (1,000 ports), wharfd `-w 1`, and\n\n"
          f"    wharf churn -c {args.loops} -t 1 -d {duration:.0f}s --connect-rate {args.rate} "
          "frame://SERVER:9100            # client closes first\n"
          f"    wharf churn -c {args.loops} -t 1 -d {duration:.0f}s --connect-rate {args.rate} "
          "--close server http://SERVER:8080   # server closes first\n\n"
          "with the knobs set in the client's (connecting) namespace. connections/s = "
          "connected / run time; EADDRNOTAVAIL from churn's failures by errno; TIME_WAIT from "
          "`ss -tan` at the end of the run; TWRecycled = TcpExtTWRecycled in the client's "
          "namespace (TIME_WAIT sockets taken over by a new connect). These are counts, "
          "not timings: they do not depend on how busy the machine was.\n\n")
    t += md_table(paced, cols) + "\n\n"
    if unpaced:
        t += ("Unpaced (`--connect-rate 0`, loopback, tcp_tw_reuse=1): the reuse delay caps the "
              "rate at about ports / delay (connections/s here is a timing: it depends on the CPU "
              "left over by other loads).\n\n" + md_table(unpaced, cols) + "\n\n")
    t += "What the numbers say:\n\n" + "\n".join(findings(runs)) + "\n\n"
    if png:
        t += f"![tw_reuse]({png.name})\n"
    lab.write_md(t)


def findings(runs):
    def get(**kw):
        for r in runs:
            if all(r.get(k) == v for k, v in kw.items()):
                return r
        return None
    out = []
    for path, name in (("lo", "loopback"), ("veth", "veth")):
        r0 = get(path=path, close="client", reuse=0, delay=None, rate=runs[0]["rate"])
        r1 = get(path=path, close="client", reuse=1, delay=None, rate=runs[0]["rate"])
        r2 = get(path=path, close="client", reuse=2, delay=None, rate=runs[0]["rate"])
        if not r0:
            continue
        s = (f"- {name}, tcp_tw_reuse=0: {r0['connected']} connections, then every port is in "
             f"TIME_WAIT ({r0['tw_client_end']} at the end) and connect() fails: "
             f"{r0['eaddrnotavail']} EADDRNOTAVAIL.")
        if r1:
            s += (f" With 1: {r1['connected']} connections, {r1['eaddrnotavail']} EADDRNOTAVAIL, "
                  f"{r1['tw_recycled']} TIME_WAIT sockets recycled.")
        if r2:
            s += (f" With 2 (loopback only): {r2['connected']} connections, {r2['eaddrnotavail']} "
                  f"EADDRNOTAVAIL, {r2['tw_recycled']} recycled"
                  + (" — the same as 1, since this traffic is loopback." if path == "lo"
                     else " — the same as 0: 2 does not apply to traffic over a real interface.")
                  )
        out.append(s)
    for r in runs:
        if r["close"] == "server":
            out.append(f"- server closes first, tcp_tw_reuse={r['reuse']}: TIME_WAIT on the server "
                       f"({r['tw_server_max']} at most), {r['tw_client_max']} on the client, "
                       f"{r['eaddrnotavail']} EADDRNOTAVAIL, {r['connected']} connections: "
                       "the client's ports are free again at once and tcp_tw_reuse has nothing to do. "
                       "The server's TIME_WAIT count stays at the number of client ports in use, "
                       "not the number of connections: a SYN for a 4-tuple in TIME_WAIT with a "
                       "newer timestamp is accepted and replaces it.")
    for r in runs:
        if not r["rate"]:
            out.append(f"- unpaced, tcp_tw_reuse=1, delay {r['delay_ms']} ms: {r['conn_per_s']:.0f} "
                       f"connections/s, {r['eaddrnotavail']} EADDRNOTAVAIL, "
                       f"{r['tw_client_end']} TIME_WAIT at the end.")
    return out


if __name__ == "__main__":
    wxlib.main_wrapper(main)

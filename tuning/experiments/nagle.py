#!/usr/bin/env python3
"""nagle: Nagle's algorithm, delayed ACKs and "sticky packets".

The tutorial blames Nagle's algorithm for sticky packets (several requests arriving
in one read). This measures both things it mixes up. A small client
(nagle_client.py) sends every request as TWO writes, the 4-byte frame header and
then the body, as the tutorial's code does, with TCP_NODELAY on or off on its
socket; wharfd runs with --nodelay on or off on its side. For each of the four
combinations and for 1 and 4 requests in flight per connection:

  - latency percentiles: with Nagle on at the client, the body (a small write while
    the header is still unacknowledged) waits for the server's ACK, which the
    server delays because it has nothing to send yet (delayed ACK, 40 ms minimum):
    one stall per request;
  - messages per read on the server (wharfd's /stats: totals.messages /
    totals.reads): above 1 means requests arrived merged ("sticky"), below 1 means
    a request arrived in pieces.

Plus a control: client Nagle on, but header and body in ONE write.
Writes tuning/results/nagle-DATE.{csv,md,png}.
"""
import json
import os
import sys

import wxlib
from wxlib import Lab, Wharfd, log, md_table

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = wxlib.base_args(__doc__, "50 s (--quick: 10 s)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds per combination [default: 4, --quick: 1]")
    ap.add_argument("--conns", type=int, default=2, help="client connections [default: 2]")
    ap.add_argument("--size", type=int, default=64, help="body bytes [default: 64]")
    args = ap.parse_args()
    secs = args.duration or (1.0 if args.quick else 4.0)
    pipelines = (1,) if args.quick else (1, 4)
    runs = []
    with Lab("nagle", args) as lab:
        for srv_nd in ("on", "off"):
            lab.check_time()
            ns = lab.netns(f"nagle-{srv_nd}")
            srv = Wharfd(lab, ns, ["frame://127.0.0.1:9100", "http://127.0.0.1:8080"],
                         ["-w", "1", "--nodelay", srv_nd])
            combos = [(cli_nd, p, "on") for cli_nd in ("on", "off") for p in pipelines]
            if srv_nd == "on":
                combos.append(("off", 1, "off"))  # control: one write per request
            for cli_nd, p, split in combos:
                lab.check_time()
                before = srv.stats()["totals"]
                r = ns.run(["python3", os.path.join(HERE, "nagle_client.py"), "--port", "9100",
                            "--conns", str(args.conns), "--pipeline", str(p), "--size", str(args.size),
                            "--duration", str(secs), "--nodelay", cli_nd, "--split", split],
                           timeout=secs + 60)
                rep = json.loads(r.stdout)
                after = srv.stats()["totals"]
                # the second GET /stats is itself one read and one message: take it out
                msgs = after["messages"] - before["messages"] - 1
                reads = after["reads"] - before["reads"] - 1
                row = dict(server_nodelay=srv_nd, client_nodelay=cli_nd, pipeline=p,
                           writes_per_request=2 if split == "on" else 1,
                           requests=rep["requests"], requests_per_sec=rep["requests_per_sec"],
                           p50_ms=rep["p50_us"] / 1000, p90_ms=rep["p90_us"] / 1000,
                           p99_ms=rep["p99_us"] / 1000, max_ms=rep["max_us"] / 1000,
                           stalled_pct=100.0 * rep["over_30ms"] / max(1, rep["requests"]),
                           server_messages=msgs, server_reads=reads,
                           messages_per_read=msgs / reads if reads > 0 else 0.0,
                           server_writes=after["writes"] - before["writes"] - 1,
                           errors=len(rep["errors"]))
                row["id"] = (f"srv-{srv_nd}/cli-{cli_nd}/P{p}" + ("/1write" if split == "off" else ""))
                runs.append(row)
                log(f"nagle: {row['id']}: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                    f"{row['requests_per_sec']:.0f} req/s, {row['messages_per_read']:.2f} messages/read")
            srv.stop()
            lab.drop(ns)
        fields = ["id", "server_nodelay", "client_nodelay", "pipeline", "writes_per_request",
                  "requests", "requests_per_sec", "p50_ms", "p90_ms", "p99_ms", "max_ms",
                  "stalled_pct", "server_messages", "server_reads", "messages_per_read",
                  "server_writes", "errors"]
        csv_p = lab.write_csv(runs, fields)
        png = chart(lab, runs)
        write_md(lab, runs, args, secs, png)
        log(f"nagle: wrote {csv_p} and .md{' and .png' if png else ''}")


def chart(lab, runs):
    rows = [{"label": r["id"].replace("srv-", "s:").replace("cli-", "c:"),
             "p50": max(r["p50_ms"], 0.001), "p99": max(r["p99_ms"], 0.001),
             "mpr": r["messages_per_read"]} for r in runs]
    d = lab.write_dat("nagle.dat", rows, ["label", "p50", "p99", "mpr"])
    body = f"""set multiplot layout 2,1 title 'nagle: header and body as two writes; s: = wharfd --nodelay, c: = client TCP\\_NODELAY, P = requests in flight (Linux {wxlib.kernel()})'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key top left
set xtics rotate by -20 font ',8'
set title 'request latency (timing; log scale): the 40 ms bars are Nagle waiting for a delayed ACK'
set ylabel 'ms'
set logscale y
set yrange [0.01:200]
plot '{d}' using 2:xtic(1) title 'p50', '' using 3 title 'p99'
unset logscale y
set yrange [0:*]
set title 'messages per read() on the server (wharfd /stats): > 1 merged ("sticky"), < 1 split'
set ylabel 'messages / read'
plot '{d}' using 4:xtic(1) title 'messages per read'
unset multiplot
"""
    return lab.chart({"height": 800, "body": body})


def write_md(lab, runs, args, secs, png):
    cols = [("wharfd --nodelay", "server_nodelay", ""), ("client TCP_NODELAY", "client_nodelay", ""),
            ("in flight", "pipeline", "d"), ("writes/request", "writes_per_request", "d"),
            ("requests", "requests", "d"), ("req/s", "requests_per_sec", ".0f"),
            ("p50 ms", "p50_ms", ".2f"), ("p99 ms", "p99_ms", ".2f"), ("max ms", "max_ms", ".1f"),
            ("% >= 30 ms", "stalled_pct", ".1f"), ("messages/read", "messages_per_read", ".2f")]
    t = wxlib.header("nagle: Nagle's algorithm, delayed ACK and sticky packets", lab,
                     f"{args.conns} connections, {args.size}-byte bodies, {secs:g} s per row, "
                     "wharfd `-w 1`, over loopback in a namespace.")
    t += ("Client: `tuning/experiments/nagle_client.py` (Python), each request as two writes, "
          "4-byte header then body, replies checked. Server: wharfd `--nodelay on|off`; it "
          "answers everything a read gave it with one write. Latency and req/s are timings "
          "(the machine is shared); a 40 ms stall is far above that noise. messages/read is "
          "a count from wharfd's /stats.\n\n")
    t += md_table(runs, cols) + "\n\n"

    def find(s, c, p, w=2):
        for r in runs:
            if (r["server_nodelay"], r["client_nodelay"], r["pipeline"], r["writes_per_request"]) == (s, c, p, w):
                return r
        return None
    t += "What the numbers say:\n\n"
    a, b = find("on", "on", 1), find("on", "off", 1)
    if a and b:
        t += (f"- Client Nagle on, two writes per request: p50 {b['p50_ms']:.1f} ms against "
              f"{a['p50_ms']:.2f} ms with TCP_NODELAY; {b['stalled_pct']:.0f}% of requests took "
              f"30 ms or more ({b['requests_per_sec']:.0f} against {a['requests_per_sec']:.0f} "
              "requests/s). The header leaves at once; the body waits for its ACK, which wharfd's "
              "kernel delays (delayed ACK, 40 ms minimum) because wharfd has nothing to answer "
              "yet: it has half a request.\n")
    c = find("on", "off", 1, 1)
    if c:
        t += (f"- The same client with Nagle on but the request in ONE write: p50 {c['p50_ms']:.2f} ms. "
              "Nagle only bites when a small write follows an unacknowledged one: build the "
              "request in user space (or writev) and send it at once.\n")
    d = find("off", "on", 1)
    if d:
        t += (f"- wharfd --nodelay off with a TCP_NODELAY client: p50 {d['p50_ms']:.2f} ms — wharfd "
              "writes each reply once, with nothing unacknowledged before it, so Nagle on the "
              "server has nothing to hold back at one request in flight.\n")
    e, f = find("off", "on", 4), find("on", "on", 4)
    if e and f:
        t += (f"- With 4 in flight, wharfd --nodelay off: p99 {e['p99_ms']:.2f} ms, max "
              f"{e['max_ms']:.1f} ms, {e['requests_per_sec']:.0f} req/s, against p99 "
              f"{f['p99_ms']:.2f} ms, {f['requests_per_sec']:.0f} req/s with --nodelay on: a "
              "second reply written while the first is unacknowledged can wait.\n")
    mpr = {r["id"]: r["messages_per_read"] for r in runs}
    lo, hi = min(mpr.values()), max(mpr.values())
    t += (f"- Messages per read range from {lo:.2f} to {hi:.2f}. With TCP_NODELAY (Nagle off) "
          "header and body may arrive separately (< 1: a request in pieces); with Nagle on and "
          "several requests in flight the held-back writes go out together and arrive merged "
          "(> 1). Both are normal TCP: a stream has no message boundaries, whatever the "
          "socket options. The fix for sticky packets is framing (wharfd's codecs), not "
          "TCP_NODELAY.\n\n")
    if png:
        t += f"![nagle]({png.name})\n"
    lab.write_md(t)


if __name__ == "__main__":
    wxlib.main_wrapper(main)

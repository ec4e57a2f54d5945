#!/usr/bin/env python3
"""boundaries: the tutorial's "sticky packets", measured on all three transports.

The same burst of mixed-size messages (1 byte to 65,507 bytes, shuffled with a fixed
seed; one write or one datagram per message) goes to wharfd three ways:

  - raw:   TCP without framing: wharfd answers whatever each read gave it;
  - frame: TCP with a 4-byte length before each message: wharfd's codec cuts the
           stream back into the messages;
  - udp:   one datagram per message: the kernel keeps each one whole.

For each: how many reads the server needed (wharfd's /stats: reads and messages for
TCP, udp_recv_calls and udp_datagrams_in for UDP) and the client needed, and how the
client's reads lined up with the messages: intact (a read that is exactly one
message), split (a message over several reads), merged (a read with parts of several
messages). Writes tuning/results/boundaries-DATE.{csv,md,png}.
"""
import json
import os
import random

import wxlib
from wxlib import Lab, Wharfd, log, md_table

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [1, 13, 100, 512, 1400, 1473, 4000, 9000, 16384, 30000, 65507]
PORTS = {"raw": 9100, "frame": 9101, "udp": 9102}
# (label, transport, which server): the second wharfd has a 4 MiB SO_RCVBUF, room for
# the whole burst in its udp socket's receive queue.
CASES = [("raw", "raw", 0), ("frame", "frame", 0), ("udp", "udp", 0),
         ("udp rcvbuf 4M", "udp", 1)]


def burst(rounds):
    sizes = SIZES * rounds
    random.Random(26).shuffle(sizes)
    return sizes


def server_counts(transport, before, after):
    """The server's reads and messages for one burst (the second GET /stats is itself
    one TCP read and one message: taken out)."""
    d = {k: after[k] - before[k] for k in after if isinstance(after[k], int)}
    if transport == "udp":
        return d["udp_recv_calls"], d["udp_datagrams_in"], d["udp_rxq_overflow"]
    return d["reads"] - 1, d["messages"] - 1, 0


def main():
    ap = wxlib.base_args(__doc__, "10 s (--quick: 5 s)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="each size this many times in the burst [default: 5, --quick: 2]")
    ap.add_argument("--repeat", type=int, default=None,
                    help="bursts per transport [default: 3, --quick: 1]")
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = burst(rounds)
    runs = []
    with Lab("boundaries", args) as lab:
        ns = lab.netns("bound")
        # The udp listener goes in the flags: Wharfd's readiness probe looks for TCP
        # listeners only (ss -ltn).
        listens = [f"{t}://127.0.0.1:{p}" for t, p in PORTS.items() if t != "udp"]
        flags = ["-w", "1", "--backend", "epoll", "--mode", "upper"]
        servers = [Wharfd(lab, ns, listens + ["http://127.0.0.1:8080"],
                          flags + ["--listen", f"udp://127.0.0.1:{PORTS['udp']}"]),
                   Wharfd(lab, ns, ["http://127.0.0.1:8081"],
                          flags + ["--rcvbuf", "4M", "--listen", "udp://127.0.0.1:9103"],
                          name="wharfd-rcvbuf")]
        for label, transport, which in CASES:
            srv = servers[which]
            port = 9103 if which else PORTS[transport]
            for k in range(repeat):
                lab.check_time()
                before = srv.stats()["totals"]
                r = ns.run(["python3", os.path.join(HERE, "boundaries_client.py"),
                            "--transport", transport, "--port", str(port),
                            "--sizes", ",".join(map(str, sizes))], timeout=60)
                rep = json.loads(r.stdout)
                after = srv.stats()["totals"]
                reads, msgs, ovfl = server_counts(transport, before, after)
                row = dict(transport=label, burst=k + 1, server_reads=reads,
                           server_messages=msgs, server_rxq_drops=ovfl, **rep)
                runs.append(row)
                log(f"boundaries: {label} #{k + 1}: {rep['messages']} messages, server "
                    f"{reads} reads / {msgs} messages, client {rep['client_reads']} reads, "
                    f"split {rep['split']}, merged {rep['merged']}, exact {rep['exact']}")
        for srv in servers:
            srv.stop()
        lab.drop(ns)
        fields = ["transport", "burst", "messages", "bytes", "client_writes", "server_reads",
                  "server_messages", "server_rxq_drops", "client_reads", "intact", "split",
                  "merged", "lost", "exact"]
        csv_p = lab.write_csv(runs, fields)
        png = chart(lab, runs)
        write_md(lab, runs, sizes, png)
        log(f"boundaries: wrote {csv_p} and .md{' and .png' if png else ''}")


def chart(lab, runs):
    rows = [{"label": f"{r['transport'].replace(' rcvbuf ', '/')}#{r['burst']}", "sent": r["messages"],
             "sr": r["server_reads"], "sm": r["server_messages"], "cr": r["client_reads"],
             "intact": r["intact"], "split": r["split"], "merged": r["merged"]} for r in runs]
    d = lab.write_dat("boundaries.dat", rows,
                      ["label", "sent", "sr", "sm", "cr", "intact", "split", "merged"])
    body = f"""set multiplot layout 2,1 title 'boundaries: one burst of mixed-size messages (1 B to 64 KiB), three ways (Linux {wxlib.kernel()})'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key top left
set yrange [0:*]
set title 'reads: messages sent, server reads and messages seen (wharfd /stats), client reads'
plot '{d}' using 2:xtic(1) title 'messages sent', '' using 3 title 'server reads', '' using 4 title 'server messages', '' using 5 title 'client reads'
set title 'client reads against the messages: intact (one read = one message), split, merged'
plot '{d}' using 6:xtic(1) title 'intact', '' using 7 title 'split', '' using 8 title 'merged'
unset multiplot
"""
    return lab.chart({"height": 800, "body": body})


def write_md(lab, runs, sizes, png):
    cols = [("transport", "transport", ""), ("burst", "burst", "d"), ("messages", "messages", "d"),
            ("bytes", "bytes", "d"), ("server reads", "server_reads", "d"),
            ("server messages", "server_messages", "d"), ("client reads", "client_reads", "d"),
            ("intact", "intact", "d"), ("split", "split", "d"), ("merged", "merged", "d"),
            ("lost", "lost", "d"), ("server rxq drops", "server_rxq_drops", "d"),
            ("replies exact", "exact", "")]
    t = wxlib.header("boundaries: TCP is a byte stream, UDP keeps datagrams", lab,
                     f"A burst of {len(sizes)} messages ({sum(sizes)} bytes; sizes "
                     f"{', '.join(map(str, SIZES))}, each {len(sizes) // len(SIZES)} times, "
                     "shuffled), one write or datagram per message, over loopback in a "
                     "namespace; wharfd `-w 1 --backend epoll`.")
    t += ("Client: `tuning/experiments/boundaries_client.py`. Server reads and messages are "
          "wharfd's counters (/stats `reads`/`messages`; `udp_recv_calls`/`udp_datagrams_in`): "
          "a recvmmsg call counts once however many datagrams it returned. Client columns "
          "compare the client's reads with the message boundaries.\n\n")
    t += md_table(runs, cols) + "\n\n"
    t += ("- raw: the server's reads follow the socket buffer, not the writes: each read is "
          "answered as one \"message\", so the message count is whatever the reads were; "
          "the client's reads merge and split the replies freely.\n"
          "- frame: the reads are just as arbitrary, but the codec finds every message "
          "again (server messages = messages sent); the client's reads are still split and "
          "merged, and only the frame headers put them back together.\n"
          "- udp: every datagram is read whole and answered whole: one client read per "
          "message, none split or merged; what UDP can do instead is lose a datagram "
          "(the lost column): a burst of 64 KiB datagrams overflows the default socket "
          "receive buffer (net.core.rmem_default), and the kernel drops them before wharfd "
          "sees them. wharfd counts them (udp_rxq_overflow, from SO_RXQ_OVFL, carried by the "
          "next datagram it reads: drops at the very end of a burst show up later). With "
          "`--rcvbuf 4M` the same burst arrives whole.\n\n")
    if png:
        t += f"![boundaries]({png.name})\n"
    lab.write_md(t)


if __name__ == "__main__":
    wxlib.main_wrapper(main)

#!/usr/bin/env python3
"""conntrack: connection tracking as a limit of a high-concurrency server.

A client and a server namespace joined by a veth pair, 198.18.0.2 -> 198.18.0.1; in the
server's, the common stateful nftables ruleset: `ct state established,related accept`,
new connections to wharfd's port accepted, everything else dropped. Every connection
wharfd takes is then an entry in the conntrack table, and a full table drops the SYN of
each new connection ('nf_conntrack: table full, dropping packet'): the client retries
after 1 s, 3 s, 7 s, and the server looks merely slow.

nf_conntrack_count is per namespace; nf_conntrack_max (and the buckets) are one value
for the whole machine on current kernels, read-only inside a namespace. Then the
experiment changes NOTHING on the host: it never writes nf_conntrack_max. It measures
in the server namespace what each connection costs (entries per open connection, per
closed one over time, slab bytes per entry), and shows the failure mode with a table
of M entries stood in for by an nftables rule that drops the SYN of a new connection
once M tracked connections are open (`ct count over M drop`, what a full table does to
a SYN). Runs:

  tracked   wharf hold -c H: entries per open connection, slab bytes per entry; the
            hold ends, the entries stay (TIME_WAIT, 120 s); churn at R/s adds R x D
  full      table of M: hold M connections for a few seconds while `wharf churn`
            connects: SYNs dropped, connect latency in whole seconds
  raised    the same load with room for 2 x M: nothing dropped
  notrack   the limit of M in place, wharfd's port exempted from tracking (raw
            prerouting `tcp dport P notrack`): no entries, nothing dropped

Writes tuning/results/conntrack-DATE.{csv,md,png}.
"""
import json
import shutil
import subprocess
import time
from pathlib import Path

import wxlib
from wxlib import Lab, Wharfd, log, md_table

PORT = 9100
CT_KEYS = ("nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_tcp_timeout_time_wait",
           "nf_conntrack_tcp_timeout_established")


def ct(ns, name):
    """A /proc/sys/net/netfilter value as the namespace sees it (None: no conntrack)."""
    r = ns.run(["cat", f"/proc/sys/net/netfilter/{name}"], check=False)
    return int(r.stdout.split()[0]) if r.returncode == 0 and r.stdout.strip() else None


def host_ct():
    out = {}
    for k in CT_KEYS:
        try:
            out[k] = Path(f"/proc/sys/net/netfilter/{k}").read_text().strip()
        except OSError:
            out[k] = None
    return out


def host_ruleset():
    return wxlib.run(["nft", "list", "ruleset"], check=False).stdout


def slab():
    """(active objects, object size) of the nf_conntrack slab cache."""
    for line in Path("/proc/slabinfo").read_text().splitlines():
        f = line.split()
        if f and f[0] == "nf_conntrack":
            return int(f[1]), int(f[3])
    return None, None


def ruleset(limit=None, notrack=False):
    """The server namespace's ruleset; limit: drop a new connection's SYN once that
    many tracked connections to the port are open (a table of that many entries)."""
    raw = ""
    if notrack:
        raw = (f"table inet wxraw {{\n"
               f"  chain pre {{ type filter hook prerouting priority raw; tcp dport {PORT} notrack; }}\n"
               f"  chain out {{ type filter hook output priority raw; tcp sport {PORT} notrack; }}\n"
               f"}}\n")
    lim = f"    tcp dport {PORT} ct state new ct count over {limit} counter drop\n" if limit else ""
    return (f"table inet wx {{\n"
            f"  chain input {{\n"
            f"    type filter hook input priority filter; policy drop;\n"
            f"    iif lo accept\n"
            f"    ct state established,related accept\n"
            f"    ct state untracked tcp dport {PORT} accept\n"
            f"    ct state invalid drop\n"
            f"{lim}"
            f"    tcp dport {PORT} ct state new counter accept\n"
            f"  }}\n}}\n" + raw)


def nft_counters(ns):
    """(SYNs dropped by the limit rule, new connections accepted) from the rule counters."""
    r = ns.run(["nft", "-j", "list", "table", "inet", "wx"], check=False)
    dropped = accepted = 0
    try:
        for item in json.loads(r.stdout)["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            exprs = rule.get("expr", [])
            cnt = next((e["counter"]["packets"] for e in exprs if "counter" in e), None)
            if cnt is None:
                continue
            if any("drop" in e for e in exprs):
                dropped += cnt
            elif any("accept" in e for e in exprs):
                accepted += cnt
    except (ValueError, KeyError):
        pass
    return dropped, accepted


def setup(lab, limit=None, notrack=False):
    cns, sns = lab.netns("ct-c"), lab.netns("ct-s")
    cip, sip = lab.veth_pair(cns, sns)
    sns.run(["nft", "-f", "-"], input=ruleset(limit, notrack))
    srv = Wharfd(lab, sns, [f"frame://{sip}:{PORT}"], ["-w", "1"])
    return cns, sns, srv, f"frame://{sip}:{PORT}"


def wait_count(sns, want, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (ct(sns, "nf_conntrack_count") or 0) >= want:
            return True
        time.sleep(0.05)
    return False


def run_tracked(lab, hold_n, rate, churn_s):
    cns, sns, srv, url = setup(lab)
    c0 = ct(sns, "nf_conntrack_count")
    s0, objsize = slab()
    hold = cns.popen([lab.wharf_bin, "hold", "-c", str(hold_n), "-d", "2s", "--json",
                      "--allow-errors", url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wait_count(sns, c0 + hold_n, 20)
    time.sleep(0.3)
    c_open = ct(sns, "nf_conntrack_count")
    s_open, _ = slab()
    rep = json.loads(hold.communicate(timeout=60)[0] or "{}")
    time.sleep(0.5)
    c_closed = ct(sns, "nf_conntrack_count")
    churn = wxlib.wharf(lab, cns, ["churn", "-c", "4", "-d", f"{churn_s}s", "--connect-rate",
                                   str(rate), url])
    time.sleep(0.3)
    c_churn = ct(sns, "nf_conntrack_count")
    held = rep.get("connected", hold_n)
    row = dict(id="tracked", limit="", held=held,
               count_open=c_open - c0, per_conn=(c_open - c0) / held if held else 0,
               count_after_close=c_closed - c0,
               slab_per_conn=(s_open - s0) / held if held and s0 is not None else "",
               objsize=objsize or "", churn_connected=churn["connected"],
               churn_added=c_churn - c_closed,
               per_closed=(c_churn - c_closed) / churn["connected"] if churn["connected"] else 0)
    srv.stop()
    lab.drop(cns, sns)
    return row


def run_limited(lab, rid, limit, notrack, hold_n, churn_s):
    cns, sns, srv, url = setup(lab, limit, notrack)
    n0 = cns.nstat()
    hold = cns.popen([lab.wharf_bin, "hold", "-c", str(hold_n), "-d", "2s", "--json",
                      "--allow-errors", "--timeout", "10s", url],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # the held connections are in (tracked, or untracked and accepted) before churn starts
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20 and hold.poll() is None:
        if sns.tcp_states((PORT,)).get("srv:ESTAB", 0) >= hold_n:
            break
        time.sleep(0.05)
    count_full = ct(sns, "nf_conntrack_count")
    churn = wxlib.wharf(lab, cns, ["churn", "-c", "4", "-d", f"{churn_s}s", "--timeout", "10s",
                                   "--latency-csv", lab.tmpfile(f"lat-{rid}.csv"), url])
    hold.communicate(timeout=60)
    dropped, _ = nft_counters(sns)
    n1 = cns.nstat()
    lat = churn["connect_latency"]
    slow = sum(1 for us in latencies(lab.tmpfile(f"lat-{rid}.csv")) if us >= 900_000)
    row = dict(id=rid, limit=limit, notrack="yes" if notrack else "no", held=hold_n,
               count_full=count_full, syn_dropped=dropped,
               syn_retrans=n1["TcpExtTCPSynRetrans"] - n0["TcpExtTCPSynRetrans"],
               churn_attempts=churn["attempts"], churn_connected=churn["connected"],
               churn_errors=churn["errors"]["total"], connects_ge_1s=slow,
               connect_p50_ms=lat["p50_us"] / 1000, connect_max_ms=lat["max_us"] / 1000)
    srv.stop()
    lab.drop(cns, sns)
    return row


def latencies(path):
    """Every connect latency (us) from a wharf --latency-csv file (latency_us,
    percentile, cumulative count, ...)."""
    out, prev = [], 0
    try:
        with open(path) as f:
            next(f)
            for line in f:
                p = line.strip().split(",")
                n = int(p[2])
                out += [float(p[0])] * (n - prev)
                prev = n
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return out


def capacity(tracked, maxv, buckets, tw_s, target=1_000_000, rate=1000):
    """Entries and memory for `target` open connections plus `rate` new ones per second."""
    per_conn = tracked["per_conn"] or 1
    objsize = tracked["objsize"] or 0
    entries = int(target * per_conn + rate * tw_s * (tracked["per_closed"] or 1))
    return dict(target=target, rate=rate, entries=entries,
                bytes=entries * objsize + 8 * max(buckets or 0, entries),
                fits=entries <= (maxv or 0))


def main():
    ap = wxlib.base_args(__doc__, "35 s (--quick: 20 s)")
    ap.add_argument("--hold", type=int, default=None,
                    help="connections held to measure entries and bytes [default: 2000, --quick: 500]")
    ap.add_argument("--table", type=int, default=200,
                    help="the stood-in table size M [default: 200]")
    ap.add_argument("--rate", type=int, default=500,
                    help="churn's connections/s after the hold [default: 500]")
    args = ap.parse_args()
    hold_n = args.hold or (500 if args.quick else 2000)
    churn_s = 4 if args.quick else 6
    for tool in ("nft",):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found (Debian: apt-get install nftables)")
    if not Path("/proc/sys/net/netfilter/nf_conntrack_max").exists():
        raise RuntimeError("no /proc/sys/net/netfilter/nf_conntrack_max: nf_conntrack is not loaded "
                           "(modprobe nf_conntrack)")
    host_before, rules_before = host_ct(), host_ruleset()
    with Lab("conntrack", args) as lab:
        probe = lab.netns("ct-probe")
        scope = ("netns" if probe.run(["test", "-w", "/proc/sys/net/netfilter/nf_conntrack_max"],
                                      check=False).returncode == 0 else "global")
        info = {k: ct(probe, k) for k in CT_KEYS}
        r = probe.run(["sysctl", "-n", "net.ipv4.tcp_syn_linear_timeouts"], check=False)
        info["linear"] = r.stdout.strip() if r.returncode == 0 else None
        lab.drop(probe)
        log(f"conntrack: nf_conntrack_max {info['nf_conntrack_max']} ({scope}), buckets "
            f"{info['nf_conntrack_buckets']}, TIME_WAIT {info['nf_conntrack_tcp_timeout_time_wait']} s")
        log(f"conntrack: tracked (hold {hold_n}, then churn at {args.rate}/s for {churn_s} s)")
        tracked = run_tracked(lab, hold_n, args.rate, churn_s)
        log(f"  {tracked['count_open']} entries for {tracked['held']} open connections, "
            f"{tracked['count_after_close']} after they closed, +{tracked['churn_added']} for "
            f"{tracked['churn_connected']} churned; slab {tracked['slab_per_conn']} objects of "
            f"{tracked['objsize']} B per connection")
        runs = []
        for rid, limit, notrack in (("full", args.table, False), ("raised", 2 * args.table, False),
                                    ("notrack", args.table, True)):
            lab.check_time()
            log(f"conntrack: {rid} (table of {limit}, hold {args.table}, churn {churn_s} s)")
            r = run_limited(lab, rid, limit, notrack, args.table, churn_s)
            runs.append(r)
            log(f"  SYNs dropped {r['syn_dropped']}, SYN retransmits {r['syn_retrans']}, "
                f"connects >= 1 s {r['connects_ge_1s']}, max connect {r['connect_max_ms']:.0f} ms, "
                f"{r['churn_connected']} connected, entries {r['count_full']}")
        cap = capacity(tracked, info["nf_conntrack_max"], info["nf_conntrack_buckets"],
                       info["nf_conntrack_tcp_timeout_time_wait"] or 120)
        host_same = host_ct() == host_before and host_ruleset() == rules_before
        if not host_same:
            log("WARNING: the host's conntrack settings or ruleset differ from before the run")
        fields = ["id", "limit", "notrack", "held", "count_open", "per_conn", "count_after_close",
                  "slab_per_conn", "objsize", "churn_connected", "churn_added", "per_closed",
                  "count_full", "syn_dropped", "syn_retrans", "churn_attempts", "churn_errors",
                  "connects_ge_1s", "connect_p50_ms", "connect_max_ms"]
        csv_p = lab.write_csv([tracked] + runs, fields)
        png = chart(lab, runs)
        write_md(lab, tracked, runs, info, scope, cap, host_same, args, churn_s, png)
        log(f"conntrack: wrote {csv_p} and .md{' and .png' if png else ''}")


def chart(lab, runs):
    dat = lab.write_dat("ct.dat", [dict(i=i, **r) for i, r in enumerate(runs)],
                        ["i", "connect_p50_ms", "connect_max_ms", "syn_dropped", "connects_ge_1s"])
    labels = ", ".join(f"'{r['id']}' {i}" for i, r in enumerate(runs))
    body = (f"set multiplot layout 1,2 title 'conntrack: a table of {runs[0]['limit']} entries, "
            f"full of held connections, while churn connects (Linux {wxlib.kernel()})'\n"
            "set style data histograms\nset style fill solid 0.7\nset grid ytics\n"
            f"set xtics ({labels})\nset boxwidth 0.35\n"
            "set title 'connect latency (ms)'\nset logscale y\nset yrange [0.01:*]\n"
            f"plot '{dat}' using ($1-0.2):($2+0.01) with boxes title 'p50', "
            f"'' using ($1+0.2):($3+0.01) with boxes title 'max'\n"
            "unset logscale y\nset yrange [0:*]\nset title 'SYNs dropped / connects >= 1 s'\n"
            f"plot '{dat}' using ($1-0.2):4 with boxes title 'SYNs dropped', "
            f"'' using ($1+0.2):5 with boxes title 'connects >= 1 s'\n"
            "unset multiplot\n")
    return lab.chart({"height": 500, "body": body})


def syn_schedule(info):
    lin = info.get("linear")
    if lin:
        return (f"then every second for the first {lin} retransmissions "
                f"(net.ipv4.tcp_syn_linear_timeouts = {lin}, Linux 6.5+), then doubling")
    return "then 2 s, 4 s later (doubling)"


def write_md(lab, tracked, runs, info, scope, cap, host_same, args, churn_s, png):
    mx, tw = info["nf_conntrack_max"], info["nf_conntrack_tcp_timeout_time_wait"]
    t = wxlib.header("conntrack: connection tracking as a limit", lab,
                     f"nf_conntrack_max {mx:,}, nf_conntrack_buckets {info['nf_conntrack_buckets']:,}, "
                     f"TIME_WAIT entries kept {tw} s, established {info['nf_conntrack_tcp_timeout_established']} s.")
    if scope == "global":
        t += ("**nf_conntrack_max is global on this kernel** (read-only inside a network namespace; "
              "nf_conntrack_count is per namespace). The experiment changed nothing on the host: it "
              "never wrote nf_conntrack_max, and a table of M entries is stood in for by an nftables "
              "rule in the server namespace that drops the SYN of a new connection once M tracked "
              "connections are open (`ct count over M drop`), which is what a full table does to a "
              f"SYN. The host's conntrack settings and ruleset were {'unchanged afterwards (checked)' if host_same else 'CHANGED (a bug)'}.\n\n")
    else:
        t += ("nf_conntrack_max is writable inside a namespace on this kernel, but on such kernels "
              "the value is still shared with the host: the experiment does not write it, and "
              "stands in for a small table with an nftables rule as described below.\n\n")
    t += ("Server namespace ruleset (client 198.18.0.2 -> server 198.18.0.1 over a veth pair):\n\n"
          "    ct state established,related accept\n"
          f"    tcp dport {PORT} ct state new accept     # policy drop\n\n")
    t += "## Entries per connection and their cost\n\n"
    t += md_table([tracked], [
        ("held", "held", "d"), ("entries while open", "count_open", "d"),
        ("per open connection", "per_conn", ".2f"), ("entries after they closed", "count_after_close", "d"),
        ("churned", "churn_connected", "d"), ("entries added", "churn_added", "d"),
        ("per closed connection", "per_closed", ".2f"),
        ("slab objects per connection", "slab_per_conn", ".2f"), ("bytes per entry (slab)", "objsize", "d")])
    t += (f"\n\nOne entry per connection while it is open, and the entry stays after the close: "
          f"`wharf hold` ended and {tracked['count_after_close']:,} of {tracked['count_open']:,} entries were "
          f"still there (TIME_WAIT, {tw} s, twice TCP's own 60 s). A closed connection is cheap to evict "
          "when the table is full (the kernel may drop entries in closing states early); the open "
          "ones are what fill it. Slab objects per connection is the whole machine's nf_conntrack "
          "cache, so other tracked traffic at the same moment shows up in it.\n\n")
    t += "## The failure mode and the fixes\n\n"
    t += (f"`wharf hold -c {args.table}` fills the table and holds the connections about 2 s, while "
          f"`wharf churn -c 4 -d {churn_s}s` connects (one round trip, close, repeat).\n\n")
    t += md_table(runs, [
        ("run", "id", ""), ("table", "limit", "d"), ("notrack", "notrack", ""),
        ("held", "held", "d"), ("entries", "count_full", "d"), ("SYNs dropped", "syn_dropped", "d"),
        ("SYN retransmits (client)", "syn_retrans", "d"), ("connects >= 1 s", "connects_ge_1s", "d"),
        ("connect p50 ms", "connect_p50_ms", ".2f"), ("connect max ms", "connect_max_ms", ".0f"),
        ("churn connected", "churn_connected", "d"), ("errors", "churn_errors", "d")])
    full = runs[0]
    t += (f"\n\n- full: {full['syn_dropped']} SYNs dropped without an answer, "
          f"{full['connects_ge_1s']} connects took a second or more (max "
          f"{full['connect_max_ms'] / 1000:.1f} s: the client retransmits its SYN after 1 s, "
          f"{syn_schedule(info)}), "
          "no error reported to anybody: a full conntrack table looks like a slow server. A real "
          "full table says 'nf_conntrack: table full, dropping packet' in the kernel log (here "
          "the rule's counter counts the drops).\n"
          "- raised: room for twice the held connections, nothing dropped. The real knob is "
          "net.netfilter.nf_conntrack_max (global), with nf_conntrack_buckets (the hash) sized "
          "along with it.\n"
          "- notrack: wharfd's port exempted from tracking in the raw table "
          f"(`tcp dport {PORT} notrack`, `tcp sport {PORT} notrack` on output, and `ct state "
          "untracked` accepted): the limit is still there but no entry is made, so nothing is "
          "dropped and nothing is spent. For a server whose port is open to all anyway, this is "
          "the fix that scales.\n\n")
    t += "## Capacity\n\n"
    mib = cap["bytes"] / 2**20
    t += (f"For {cap['target']:,} open connections plus {cap['rate']:,} new ones per second: "
          f"{cap['target']:,} x {tracked['per_conn']:.2f} + {cap['rate']:,}/s x {tw} s x "
          f"{tracked['per_closed']:.2f} = **{cap['entries']:,} entries**, "
          f"{'within' if cap['fits'] else 'more than'} this machine's nf_conntrack_max of {mx:,}. "
          f"At {tracked['objsize']} bytes per entry plus 8 bytes per hash bucket (one bucket per "
          f"entry): **{mib:,.0f} MiB** of kernel memory. Set "
          f"`net.netfilter.nf_conntrack_max = {cap['entries']}` (and the buckets, "
          "`/sys/module/nf_conntrack/parameters/hashsize`, or nf_conntrack_buckets where writable), "
          "or exempt wharfd's port with notrack. `wharf-tune check` reports the count, the maximum "
          "and the buckets, and warns when a profile's connection target does not fit.\n\n")
    if png:
        t += f"![conntrack]({png.name})\n"
    lab.write_md(t)


if __name__ == "__main__":
    wxlib.main_wrapper(main)

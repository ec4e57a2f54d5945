"""bench/multi's kit (wharfkit.multi) for real: two load hosts (network namespaces on a
bridge, 198.18.0.0/15) driving one wharfd through `ip netns exec` launchers, started
together with --start-at; the merged request count equals the server's /stats count.
Needs root (ip netns); skipped otherwise. Namespaces are deleted at the end, on an
error and on Ctrl-C (wharfkit.topology)."""

import os
import re
import tempfile

from clientlib import Suite, WHARF, messages_delta
from wharfkit.multi import Launcher, run_multi
from wharfkit.server import Wharfd
from wharfkit.topology import Topology

t = Suite(__file__)
PREFIX = f"wkm{os.getpid()}"


@t.test
def two_hosts_merged_count_equals_server_count():
    if os.geteuid() != 0:
        print("skip - two_hosts_merged_count_equals_server_count: needs root (ip netns)")
        return
    hosts = {"server1": {}, "client1": {}, "client2": {}}
    with Topology(hosts, prefix=PREFIX) as topo, tempfile.TemporaryDirectory() as d:
        srv = topo["server1"]
        # /stats answers loopback only: read from inside the server's namespace.
        with Wharfd("frame", "http", listen=[f"frame://{srv.addr}:9100",
                                             "http://127.0.0.1:8080"],
                    workers=2, prefix=srv.ns.ex(), host="127.0.0.1") as s:
            with srv.ns.entered():
                before = s.stats()["totals"]
            launchers = [Launcher(n, topo[n].ns.ex()) for n in ("client1", "client2")]
            res = run_multi(launchers, ["bench", "-c", "4", "-t", "1", "-d", "2s",
                                        f"frame://{srv.addr}:9100"],
                            d, remote_wharf=os.path.abspath(WHARF),
                            local_wharf=os.path.abspath(WHARF), lead=1.5, say=lambda m: None)
            with srv.ns.entered():
                after = s.stats()["totals"]
            t.check(not res.failed, "both hosts ran and their logs came back", res.failed)
            t.check(res.merge_status == 0, "merge ran", res.merged_text)
            m = re.search(r"(\d+) requests in all", res.merged_text)
            merged = int(m.group(1)) if m else -1
            ok = sum(r["requests"]["ok"] for r in res.reports.values())
            served = messages_delta(before, after)
            t.check(merged == ok, "the merged logs hold every host's requests", (merged, ok))
            t.check(merged == served, "merged request count == the server's /stats count",
                    (merged, served))
            t.check(all(r["requests"]["ok"] > 0 for r in res.reports.values()),
                    "both hosts did load", {k: r["requests"] for k, r in res.reports.items()})
            for f in ("client1.log", "client2.log", "client1.json", "merged.txt",
                      "merged.log", "merged.hgrm", "command.txt"):
                t.check(os.path.exists(os.path.join(d, f)), f"result directory has {f}",
                        sorted(os.listdir(d)))
            t.check("client1" in res.merged_text and "client2" in res.merged_text,
                    "a row per host", res.merged_text)


t.main()

"""Three wharfd behind HAProxy in network namespaces (tests/cluster/cluster.py), each
scenario in short: spread, crash, rolling restart, scale. The full runs, with their
figures in bench/results/, are tests/cluster/run. Needs root (ip netns), HAProxy and wrk;
skipped otherwise. About a minute: each test builds the topology afresh; one checks that
an exception in the with-block leaves no namespace and no process behind. wharfd runs on
WHARF_BACKEND's event loop (the spread test checks each one's /stats says so). The
crash's p99 before and after are reported with the windows they cover and the requests
they rest on, never checked: see tests/cluster/costs.py (noise) for how far p99 moves
here with no event at all."""

import os
import shutil
import subprocess
import sys

from wharfkit.harness import BUILD, Suite

from cluster import BRIDGE_NF, HAPROXY, HERE, Cluster, example_cfg
from scenarios import SHORT, crash, rolling, scale, spread

t = Suite(__file__)


def show(name, figures):
    print(f"# {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)


def scenario(fn):
    def test():
        with Cluster(build=BUILD) as c:
            show(fn.__name__, fn(c, t.check, SHORT))
    test.__name__ = f"{fn.__name__}_through_haproxy"
    return t.test(test)


@t.test
def the_committed_example_config_is_what_the_cluster_runs():
    with open(os.path.join(HERE, "haproxy.cfg")) as f:
        committed = f.read()
    t.check(committed == example_cfg(), "tests/cluster/haproxy.cfg is haproxy_cfg() as "
            "generated (regenerate: tests/cluster/run --print-config > tests/cluster/haproxy.cfg)")
    r = subprocess.run([HAPROXY, "-c", "-f", os.path.join(HERE, "haproxy.cfg")],
                       capture_output=True, text=True, timeout=30)
    t.check(r.returncode == 0, "haproxy -c accepts it", (r.stdout + r.stderr)[-800:])
    for line in ("send-proxy-v2", "option httpchk GET /healthz", "retries 3",
                 "option redispatch 1", "retry-on conn-failure empty-response response-timeout",
                 "mode tcp"):
        t.check(line in committed, f"it has {line!r}")


class Boom(Exception):
    pass


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@t.test
def an_exception_leaves_no_namespace_and_no_process():
    pids, names = [], []
    try:
        with Cluster(build=BUILD) as c:
            names = [ns.name for ns in c.topo.made]
            run = c.popen("client1", ["sleep", "60"], stdin=subprocess.DEVNULL)
            pids = [c.haproxy.pid, run.pid] + [s.pid for s in c.servers.values()]
            raise Boom()
    except Boom:
        pass
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = [n for n in names if n in listed.split()]
    t.check(len(names) == 7 and not left, "the hub and six hosts made, none left", (names, left))
    t.check(len(pids) == 5 and not [p for p in pids if alive(p)],
            "HAProxy, every wharfd and the load stopped", pids)


@t.test
def the_bridge_hands_no_frame_to_iptables():
    with Cluster(build=BUILD) as c:
        got = {k: c.topo.hub.get(k) for k in BRIDGE_NF if c.topo.hub.has(k)}
    # where br_netfilter is loaded its switches exist in the hub, 1 in a new namespace
    print(f"# br_netfilter {'loaded' if got else 'not loaded'}: {got}", flush=True)
    t.check(all(v == "0" for v in got.values()),
            "bridge-nf-call-* are 0 in the hub (nothing filters: no detour per frame)", got)


scenario(spread)
scenario(crash)
scenario(rolling)
scenario(scale)

if __name__ == "__main__":
    missing = [w for w in ("ip", "wrk") if not shutil.which(w)]
    if os.geteuid() != 0 or missing or not os.access(HAPROXY, os.X_OK):
        print(f"# skipped: needs root, HAProxy, wrk and iproute2 (missing: {missing})")
        print("0 passed, 0 failed")
        sys.exit(0)
    t.main()

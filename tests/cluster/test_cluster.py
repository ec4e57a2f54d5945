"""Three wharfd behind HAProxy in network namespaces (tests/cluster/cluster.py), each
scenario in short: spread, crash, rolling restart, scale. The full runs, with their
figures in bench/results/, are tests/cluster/run. Needs root (ip netns), HAProxy and wrk;
skipped otherwise. About a minute: each test builds the topology afresh."""

import os
import shutil
import sys

from wharfkit.harness import BUILD, Suite

from cluster import HAPROXY, Cluster
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

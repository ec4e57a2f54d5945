"""wharfkit's Topology, run for real: two hosts (server1, client1) on a bridge, addresses
from 198.18.0.0/15, wharfd started in server1 through the kit's Wharfd and reached from
client1; and the teardown, after a normal end, an exception in the with-block and a
failure halfway through building, leaves no namespace, bridge or process behind and the
host with no link of ours. Needs root (ip netns); skipped otherwise. A few seconds."""

import ipaddress
import os
import shutil
import subprocess
import sys

from wharfkit.harness import Suite
from wharfkit.net import http_get, wait_until
from wharfkit.netns import run
from wharfkit.server import Wharfd
from wharfkit.topology import NET, Topology

t = Suite(__file__)
PREFIX = f"wkt{os.getpid()}"
PORT = 8080


def our_namespaces():
    out = run(["ip", "netns", "list"], check=False).stdout
    return sorted(ln.split()[0] for ln in out.splitlines()
                  if ln.split() and ln.split()[0].startswith(PREFIX + "-"))


def host_links():
    """The host's network interfaces by name (the topology must add none)."""
    out = run(["ip", "-o", "link", "show"]).stdout
    return {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()}


def ours_on_host(before):
    """Links that appeared on the host since before and carry the topology's names
    (others may come and go on a shared machine)."""
    return sorted(n for n in host_links() - before if n in ("br0", "eth0") or
                  (n[:1] == "p" and n[1:].isdigit()))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def check_gone(before_links, pids=()):
    t.check(our_namespaces() == [], "every namespace deleted", our_namespaces())
    t.check(not ours_on_host(before_links), "no link of ours on the host",
            ours_on_host(before_links))
    left = [p for p in pids if alive(p)]
    t.check(not left, "no process left from inside", left)


class Boom(Exception):
    pass


@t.test
def two_hosts_server_reached_from_client():
    links = host_links()
    hub = f"{PREFIX}-hub"
    pid = None
    with Topology({"server1": {}, "client1": {}}, prefix=PREFIX) as topo:
        srv, cli = topo["server1"], topo["client1"]
        t.check(our_namespaces() == sorted([hub, srv.ns.name, cli.ns.name]),
                "the hub and one namespace per host", our_namespaces())
        addrs = [ipaddress.ip_address(h.addr) for h in (srv, cli)]
        t.check(all(a in NET for a in addrs) and addrs[0] != addrs[1],
                "two addresses from 198.18.0.0/15", addrs)
        got = run(["ip", "-n", srv.ns.name, "-o", "-4", "addr", "show", "eth0"]).stdout
        t.check(f"{srv.addr}/{NET.prefixlen}" in got, "server1's eth0 has its address", got)
        br = run(["ip", "-n", hub, "-o", "link", "show", "master", "br0"]).stdout
        t.check(len(br.splitlines()) == 2, "both hosts' ports on the hub's bridge", br)
        t.check(not ours_on_host(links), "no link of ours on the host", ours_on_host(links))

        with Wharfd("http", listen=[f"http://{srv.addr}:{PORT}"], workers=1,
                    prefix=srv.ns.ex()) as s:
            pid = s.pid
            t.check(PORT in srv.ns.listening(), "wharfd listens inside server1",
                    srv.ns.listening())
            with cli.ns.entered():  # this thread's sockets in client1
                r = wait_until(lambda: http_get(PORT, "/", timeout=2, host=srv.addr), 5)
            t.check(r and r[0] == 200, "GET / from client1 answered 200", r and r[:2])
            t.check(r[1].get("server", "").lower().startswith("wharf"),
                    "answered by wharfd", r[1])
            if shutil.which("curl"):
                c = cli.ns.run(["curl", "-sS", "-m", "5", "-o", "/dev/null", "-w",
                                "%{http_code}", s.url("/")], check=False)
                t.check(c.stdout == "200", "curl from client1: 200", (c.stdout, c.stderr))
        t.check(s.exit_code == 0, "wharfd stopped by SIGTERM exits 0", s.exit_code)
    t.check(run(["ip", "-n", hub, "link", "show", "br0"], check=False).returncode != 0,
            "the hub and its bridge br0 are gone")
    check_gone(links, [pid] if pid else [])


@t.test
def teardown_on_an_exception():
    links = host_links()
    procs = []
    try:
        with Topology({"server1": {}, "client1": {}}, prefix=PREFIX) as topo:
            for h in ("server1", "client1"):
                procs.append(topo[h].ns.popen(["sleep", "60"], stdin=subprocess.DEVNULL))
            t.check(len(our_namespaces()) == 3, "built", our_namespaces())
            raise Boom()
    except Boom:
        pass
    else:
        t.check(False, "the exception went through the with-block")
    for p in procs:
        p.wait(5)
    check_gone(links, [p.pid for p in procs])


@t.test
def teardown_when_building_fails():
    links = host_links()
    bad = {"server1": {}, "client1": {"sysctl": {"net.ipv4.no_such_knob": 1}}}
    try:
        Topology(bad, prefix=PREFIX).create()
    except RuntimeError as e:
        print(f"# building failed as it should: {str(e)[:120]}")
    else:
        t.check(False, "a sysctl that does not exist fails the build")
    check_gone(links)


if __name__ == "__main__":
    if os.geteuid() != 0 or not shutil.which("ip"):
        print("# skipped: needs root and iproute2 (ip netns)")
        print("0 passed, 0 failed")
        sys.exit(0)
    t.main()

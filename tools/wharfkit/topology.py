"""Topology: network namespaces joined by one bridge, from a short description.

    with Topology({"server1": {}, "client1": {}, "client2": {"addr": "198.18.1.2"}}) as t:
        t["server1"].addr                  # '198.18.0.1' (in order, unless given)
        t["server1"].ns.popen([wharfd, "-l", f"raw://{t['server1'].addr}:9000"])
        t["client1"].ns.run(["ping", "-c1", t["server1"].addr])

Every host is a NetNS with eth0 in 198.18.0.0/15 (the benchmarking range, RFC 2544);
the bridge lives in a namespace of its own (the hub), so the host's network is never
touched. A host's description may give "addr" and "sysctl" ({key: value}, set inside).
Everything is deleted when the with-block ends, at exit and on Ctrl-C/SIGTERM.
"""
import ipaddress
import os

from .netns import NetNS

NET = ipaddress.ip_network("198.18.0.0/15")


class Host:
    def __init__(self, name, ns, addr):
        self.name, self.ns, self.addr = name, ns, addr

    def __repr__(self):
        return f"Host({self.name}, {self.ns.name}, {self.addr})"


class Topology:
    def __init__(self, hosts, prefix=None, popen=None):
        self.desc = dict(hosts)
        self.prefix = prefix or f"wk{os.getpid()}"
        self.popen = popen
        self.hosts = {}
        self.hub = None
        self.made = []  # every NetNS made, set up or not: delete() deletes them all

    def _ns(self, short):
        kw = {"popen": self.popen} if self.popen else {}
        ns = NetNS(f"{self.prefix}-{short}", **kw)
        self.made.append(ns)
        return ns

    def create(self):
        try:
            self.hub = self._ns("hub").create()
            self.hub.ip("link", "add", "br0", "type", "bridge")
            self.hub.ip("link", "set", "br0", "up")
            given = {ipaddress.ip_address(d["addr"]) for d in self.desc.values() if d.get("addr")}
            free = (a for a in NET.hosts() if a not in given)
            for i, (name, d) in enumerate(self.desc.items()):
                addr = d.get("addr") or str(next(free))
                ns = self._ns(name).create()
                # eth0 inside the host, its peer on the hub's bridge
                ns.veth_to(self.hub, "eth0", f"p{i}", f"{addr}/{NET.prefixlen}")
                self.hub.ip("link", "set", f"p{i}", "master", "br0")
                for k, v in (d.get("sysctl") or {}).items():
                    ns.set(k, v)
                self.hosts[name] = Host(name, ns, addr)
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self):
        """Every namespace made (hosts first, the hub and its bridge last), also those
        whose setup failed halfway."""
        for ns in reversed(self.made):
            ns.delete()
        self.made = []
        self.hosts = {}
        self.hub = None

    def __getitem__(self, name):
        return self.hosts[name]

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.delete()
        return False

"""Security options: --max-conns-per-ip and --stats-allow.

--stats-allow needs a client that is not on loopback: the test makes a throwaway
network namespace whose lo also carries 10.99.0.1, runs wharfd and its clients in
it (this process's thread enters it with setns), and deletes it at the end. The host's
network is never touched.
"""

import contextlib
import json
import ctypes
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

from wharfkit.harness import Server, Suite, frame, free_port, read_frame, wait_until

t = Suite(__file__)

CLONE_NEWNET = 0x40000000
NS_ADDR = "10.99.0.1"
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def netns_with_address(addr):
    """This thread (and the processes it starts) in a new namespace with lo and addr."""
    name = f"wharf-sec-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    orig = target = -1
    try:
        # The address goes on the namespace's own lo: no module (dummy, veth) needed, and
        # a client connecting to it has it as its source, which is not a loopback address.
        for args in (["link", "set", "lo", "up"], ["addr", "add", f"{addr}/32", "dev", "lo"]):
            subprocess.run(["ip", "-n", name] + args, check=True)
        orig = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the test namespace")
        try:
            yield name
        finally:
            if _libc.setns(orig, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        for fd in (orig, target):
            if fd >= 0:
                os.close(fd)
        subprocess.run(["ip", "netns", "del", name], check=False)


def http_status(host, port, path):
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@t.test
def stats_pages_are_for_loopback_clients_unless_allowed():
    with netns_with_address(NS_ADDR):
        lo_port = free_port()
        with Server("http", host=NS_ADDR, extra=["--listen", f"http://127.0.0.1:{lo_port}"]) as s:
            port = s.port["http"]
            for path in ("/stats", "/metrics", "/status"):
                code, body = http_status(NS_ADDR, port, path)
                t.check(code == 403, f"{path} from {NS_ADDR} is refused by default", (code, body))
            code, body = http_status(NS_ADDR, port, "/")
            t.check(code == 200, "other pages are served to everyone", code)
            code, body = http_status("127.0.0.1", lo_port, "/stats")
            t.check(code == 200, "/stats from 127.0.0.1 is served", code)
            st = json.loads(body)
            t.check(st["totals"]["stats_forbidden"] == 3 and st["config"]["stats_allow"] ==
                    "loopback", "refusals counted", st["totals"]["stats_forbidden"])
        with Server("http", host=NS_ADDR, extra=["--stats-allow", "all"]) as s:
            code, body = http_status(NS_ADDR, s.port["http"], "/metrics")
            t.check(code == 200 and b"wharf_" in body, "--stats-allow all serves everyone", code)
        # ranges: the client's address is in one of them, or it is refused (loopback too,
        # when no range names it)
        lo_port = free_port()
        allow = "10.99.0.0/24,192.0.2.0/24"
        with Server("http", host=NS_ADDR, extra=["--stats-allow", allow, "--listen",
                                                  f"http://127.0.0.1:{lo_port}"]) as s:
            code, body = http_status(NS_ADDR, s.port["http"], "/metrics")
            t.check(code == 200 and b"wharf_" in body, f"{NS_ADDR} is in {allow}", code)
            code, _ = http_status("127.0.0.1", lo_port, "/stats")
            t.check(code == 403, "loopback is not in those ranges", code)
            code, body = http_status(NS_ADDR, s.port["http"], "/stats")
            st = json.loads(body)
            t.check(st["config"]["stats_allow"] == allow and
                    st["totals"]["stats_forbidden"] == 1, "/stats names the ranges",
                    st["config"]["stats_allow"])
        with Server("http", host=NS_ADDR, extra=["--stats-allow", "10.98.0.0/16,127.0.0.0/8"]) as s:
            code, _ = http_status(NS_ADDR, s.port["http"], "/stats")
            t.check(code == 403, f"{NS_ADDR} outside 10.98.0.0/16,127.0.0.0/8: 403", code)


def served(sock, payload=b"ping"):
    try:
        sock.sendall(frame(payload))
        return read_frame(sock) == payload.upper()
    except (OSError, ValueError, AttributeError):
        return False


def refused(sock):
    """Accepted and closed at once: EOF (or a reset) without a reply."""
    try:
        sock.sendall(frame(b"x"))
        return sock.recv(16) == b""
    except OSError:
        return True


def connect_from(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def per_ip_limit(dispatch):
    with Server("frame", "http", extra=["--max-conns-per-ip", "3", "--dispatch", dispatch,
                                        "--workers", "2"]) as s:
        port = s.port["frame"]
        # /stats over HTTP from 127.0.0.1 counts too: check with a source of its own.
        mine = [connect_from(port, "127.0.0.3") for _ in range(3)]
        t.check(all(served(c) for c in mine), f"{dispatch}: three from one address are served")
        extra = connect_from(port, "127.0.0.3")
        t.check(refused(extra), f"{dispatch}: the fourth from that address is closed at once")
        other = connect_from(port, "127.0.0.4")
        t.check(served(other), f"{dispatch}: another address is not affected")
        mine[0].close()
        again = None
        for _ in range(50):  # the close reaches the worker asynchronously
            time.sleep(0.02)
            again = connect_from(port, "127.0.0.3")
            if served(again):
                break
            again.close()
            again = None
        t.check(again is not None, f"{dispatch}: after one closes, that address may connect again")
        st = s.stats()
        rej = st["acceptor"]["rejected_per_ip"]
        t.check(rej >= 1 and st["config"]["max_conns_per_ip"] == 3,
                f"{dispatch}: refusals counted", rej)
        for c in mine[1:] + [extra, other] + ([again] if again else []):
            c.close()


@t.test
def max_conns_per_ip_limits_each_address():
    per_ip_limit("least")


@t.test
def max_conns_per_ip_with_reuseport_workers():
    per_ip_limit("reuseport")


@t.test
def max_conns_per_ip_counts_return_to_zero():
    # Many short connections from one address: every close must give its slot back,
    # or the address would be locked out after `limit` connections in total.
    with Server("frame", "http", extra=["--max-conns-per-ip", "2"]) as s:
        ok = 0
        for _ in range(200):
            c = connect_from(s.port["frame"], "127.0.0.5")
            ok += served(c)
            c.close()
            wait_until(lambda: s.stats()["totals"]["active"] <= 1, 5)
        t.check(ok == 200, "200 sequential connections under a limit of 2 all served", ok)


@t.test
def bad_values_are_one_line_errors():
    for args in (["--max-conns-per-ip", "-1"], ["--stats-allow", "nobody"],
                 ["--stats-allow", "10.0.0.1/8"]):
        r = subprocess.run([Server("raw").binary] + args, capture_output=True, text=True,
                           timeout=10)
        t.check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1,
                f"{args} exits 2 with one line", (r.returncode, r.stderr))


t.main()

"""The +proxy listener: PROXY protocol v1/v2 headers through a real HAProxy, and what a
proxy listener refuses.

HAProxy (Debian's haproxy) runs in the foreground with a config generated in a temp
dir, on loopback ports; its PID is recorded and it is stopped at the end. Clients bind
127.0.0.2 and 127.0.0.3 as their source, so HAProxy's headers name two addresses while
every connection wharfd accepts comes from HAProxy at 127.0.0.1: --max-conns-per-ip must
limit the two separately. Refused connections (outside --proxy-from, a garbage header, a
truncated one, none at all, too slow) are checked to be closed without a byte of reply,
counted by cause, and never to reach a handler (no message counted).
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

from wharfkit import proc
from wharfkit.harness import Server, Suite, free_port, wait_until

t = Suite(__file__)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
LIMIT = 2
CLIENTS = ("127.0.0.2", "127.0.0.3")


class HAProxy:
    """haproxy -db (foreground) with four frontends in front of one wharfd port: TCP
    and HTTP mode, each with send-proxy (v1) and send-proxy-v2."""

    KINDS = (("tcp", "send-proxy"), ("tcp", "send-proxy-v2"), ("http", "send-proxy"),
             ("http", "send-proxy-v2"))

    def __init__(self, backend_port):
        self.dir = tempfile.mkdtemp(prefix="wharf-haproxy-")
        self.port = {k: free_port() for k in self.KINDS}
        lines = ["global", "    nbthread 1", "    maxconn 500",
                 "defaults", "    timeout connect 3s", "    timeout client 20s",
                 "    timeout server 20s", "    retries 0"]
        for i, (mode, send) in enumerate(self.KINDS):
            lines += [f"frontend f{i}", f"    mode {mode}",
                      f"    bind 127.0.0.1:{self.port[(mode, send)]}", f"    default_backend b{i}",
                      f"backend b{i}", f"    mode {mode}",
                      f"    server w 127.0.0.1:{backend_port} {send}"]
            # HTTP mode may keep connections to wharfd idle for reuse by later clients of
            # the same address: the count of live connections would then lag the clients.
            if mode == "http":
                lines.append("    http-reuse never")
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.dir, "haproxy.log"), "w+")
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ports = set(self.port.values())
        ok = wait_until(lambda: self.proc.poll() is None and ports <= _listening(), 10)
        if not ok:
            self.__exit__(None, None, None)
            raise RuntimeError("haproxy did not start: " + self.output())
        return self

    def output(self):
        self.log.seek(0)
        return self.log.read()[-2000:]

    def __exit__(self, *exc):
        proc.stop(self.proc, timeout=5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def _listening():
    """The TCP ports in LISTEN state here. Read from /proc rather than probed with a
    connect: in TCP mode HAProxy would pass a probe on to wharfd, header and all."""
    ports = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def connect_from(source, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def get(sock):
    """One keep-alive GET /: its status, or None when the connection closed instead."""
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    except OSError:
        return None
    return response(sock)


def response(sock):
    """The status of the next response, or None when the connection closed instead."""
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        n = int([l.split(b":")[1] for l in head.split(b"\r\n")
                 if l.lower().startswith(b"content-length:")][0])
        while len(body) < n:
            body += sock.recv(4096)
        return int(head.split()[1])
    except (OSError, IndexError, ValueError):
        return None


def top_peers(s):
    """{address: live connections}; /stats is read over a plain listener from 127.0.0.1,
    so that connection is one of them."""
    return {p["addr"]: p["conns"] for p in s.stats()["top_peers"]["top"]}


def two_addresses_limited_separately(mode, send):
    listen = [f"http+proxy://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with Server(listen=listen, extra=["--max-conns-per-ip", str(LIMIT), "--workers", "2"]) as s, \
            HAProxy(s.port["http+proxy"]) as hap:
        port = hap.port[(mode, send)]
        # Requests whose bodies are half sent: HAProxy (in either mode) must hold a
        # connection to wharfd open for each until it is complete.
        held = {c: [connect_from(c, port) for _ in range(LIMIT)] for c in CLIENTS}
        for k in sum(held.values(), []):
            k.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
        want = {c: LIMIT for c in CLIENTS}
        want["127.0.0.1"] = 1
        t.check(wait_until(lambda: top_peers(s) == want, 5),
                f"{mode}/{send}: the table holds each client's address, not HAProxy's",
                top_peers(s))
        for c in CLIENTS:
            extra = connect_from(c, port)
            code = get(extra)
            t.check(code != 200, f"{mode}/{send}: one more from {c} is refused", code)
            extra.close()
        st = s.stats()["totals"]
        t.check(st["proxy_rejected_per_ip"] == len(CLIENTS) and st["proxy_bad_header"] == 0,
                f"{mode}/{send}: the refusals counted per address", st)
        for c in CLIENTS:
            for k in held[c]:
                k.sendall(b"world")
            codes = [response(k) for k in held[c]]
            t.check(codes == [200] * LIMIT, f"{mode}/{send}: the {LIMIT} from {c} are served",
                    codes)
        # Kept alive, a connection paid for its header once: more requests are served.
        t.check([get(k) for k in held[CLIENTS[0]]] == [200] * LIMIT,
                f"{mode}/{send}: kept-alive connections go on after the refusals")
        for ks in held.values():
            for k in ks:
                k.close()
        t.check(wait_until(lambda: top_peers(s) == {"127.0.0.1": 1}, 5),
                f"{mode}/{send}: the addresses are released when their connections close",
                top_peers(s))


@t.test
def haproxy_tcp_mode_send_proxy():
    two_addresses_limited_separately("tcp", "send-proxy")


@t.test
def haproxy_tcp_mode_send_proxy_v2():
    two_addresses_limited_separately("tcp", "send-proxy-v2")


@t.test
def haproxy_http_mode_send_proxy():
    two_addresses_limited_separately("http", "send-proxy")


@t.test
def haproxy_http_mode_send_proxy_v2():
    two_addresses_limited_separately("http", "send-proxy-v2")


def closed_without_reply(sock, timeout=5):
    """The server closed (EOF or reset) without sending a byte."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except OSError:
        return False


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(cmd, src="192.0.2.1"):
    body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack(">HH", 5555, 80)
    if cmd == "local":
        return V2_SIG + b"\x20\x00\x00\x00"
    return V2_SIG + b"\x21\x11" + struct.pack(">H", len(body)) + body


def request(sock, path="/"):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())


@t.test
def refused_connections_are_closed_counted_and_never_served():
    trusted = "127.0.0.9"
    listen = [f"http+proxy://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with Server(listen=listen, extra=["--proxy-from", f"{trusted}/32", "--header-timeout", "1s",
                                      "--workers", "1"]) as s:
        port = s.port["http+proxy"]
        t0 = time.monotonic()
        spoofed = connect_from("127.0.0.1", port)  # not in --proxy-from
        try:
            spoofed.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1 80\r\n")
            request(spoofed)
        except (ConnectionResetError, BrokenPipeError):
            pass  # already closed, with our bytes unread: a reset
        t.check(closed_without_reply(spoofed), "a header from outside --proxy-from: closed")
        cases = {
            "garbage": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "none": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "binary garbage": V2_SIG + b"\x21\x11\x00\x04abcd" + b"GET / HTTP/1.1\r\n\r\n",
        }
        for what, data in cases.items():
            k = connect_from(trusted, port)
            k.sendall(data)
            t.check(closed_without_reply(k), f"{what}: closed without a reply")
            k.close()
        truncated = connect_from(trusted, port)
        truncated.sendall(b"PROXY TCP4 1.2.3.4 5.6")
        truncated.shutdown(socket.SHUT_WR)
        t.check(closed_without_reply(truncated), "a truncated header: closed at its EOF")
        slow = connect_from(trusted, port)
        slow.sendall(V2_SIG + b"\x21")  # and then nothing: --header-timeout ends it
        t.check(closed_without_reply(slow, timeout=4), "a header stalled past --header-timeout")
        elapsed = time.monotonic() - t0
        for k in (spoofed, truncated, slow):
            k.close()
        st = s.stats()["totals"]
        want = {"proxy_untrusted": 1, "proxy_bad_header": 3, "proxy_truncated": 1,
                "proxy_timeouts": 1, "proxy_headers": 0, "messages": 0, "http_2xx": 0,
                "http_4xx": 0, "protocol_errors": 0, "truncated": 0, "header_timeouts": 0}
        got = {k: st[k] for k in want}
        t.check(got == want, "each cause counted once, nothing reached a handler", got)
        logged = s.log().count("closed a +proxy connection")
        t.check(1 <= logged <= int(elapsed) + 2,
                f"refusals logged at most once a second ({elapsed:.1f} s)", logged)


@t.test
def carried_address_decides_stats_allow_and_local_keeps_the_socket():
    listen = [f"http+proxy://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with Server(listen=listen, extra=["--max-conns-per-ip", "5"]) as s:
        port = s.port["http+proxy"]

        def stats_status(header, source="127.0.0.1"):
            k = connect_from(source, port)
            k.sendall(header)
            request(k, "/stats")
            data = k.recv(64)
            return k, int(data.split()[1]) if data else None

        outside, code = stats_status(v2_header("proxy", "192.0.2.1"))
        t.check(code == 403, "/stats for a carried non-loopback client: 403", code)
        inside, code = stats_status(b"PROXY TCP4 127.0.0.7 127.0.0.1 1 80\r\n")
        t.check(code == 200, "/stats for a carried loopback client: 200", code)
        local, code = stats_status(v2_header("local"), source="127.0.0.4")
        t.check(code == 200, "LOCAL keeps the socket's (loopback) address: 200", code)
        peers = top_peers(s)
        t.check(peers.get("192.0.2.1") == 1 and peers.get("127.0.0.7") == 1 and
                peers.get("127.0.0.4") == 1, "each counted under the right address", peers)
        st = s.stats()["totals"]
        t.check(st["stats_forbidden"] == 1 and st["proxy_headers"] == 3, "counted", st)
        for k in (outside, inside, local):
            k.close()
    # --stats-allow ranges: the carried address is what is matched, not the balancer's
    with Server(listen=listen, extra=["--stats-allow", "192.0.2.0/24"]) as s:
        port = s.port["http+proxy"]
        for header, want in ((b"PROXY TCP4 192.0.2.9 127.0.0.1 1 80\r\n", 200),
                             (b"PROXY TCP4 198.51.100.1 127.0.0.1 1 80\r\n", 403),
                             (v2_header("local"), 403)):
            k = connect_from("127.0.0.1", port)
            k.sendall(header)
            request(k, "/stats")
            data = k.recv(64)
            k.close()
            code = int(data.split()[1]) if data else None
            t.check(code == want, f"--stats-allow 192.0.2.0/24, header {header[:30]!r}",
                    code)


def send_in_pieces(port, data, cuts):
    """Send data cut at the given offsets (a pause between pieces: separate reads), and
    return everything received until the server closes."""
    k = connect_from("127.0.0.1", port)
    out = b""
    try:
        prev = 0
        for cut in list(cuts) + [len(data)]:
            k.sendall(data[prev:cut])
            prev = cut
            time.sleep(0.02)
        while True:
            chunk = k.recv(65536)
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed with our bytes unread: what was received is the answer
    finally:
        k.close()
    return out


@t.test
def header_split_across_reads_and_requests_after_it():
    listen = [f"http+proxy://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with Server(listen=listen) as s:
        reqs = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 2 + \
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        for hdr in (v2_header("proxy"), b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n"):
            n = len(hdr)
            for cuts in ((), (5, 14, 16, n - 1, n + 3), (n,), (n + 1,)):
                out = send_in_pieces(s.port["http+proxy"], hdr + reqs, cuts)
                t.check(out.count(b"HTTP/1.1 200 OK") == 3,
                        f"cut at {cuts}: every byte after the header reached the protocol",
                        out[:300])


@t.test
def proxy_from_changes_on_reload():
    """--proxy-from is a live setting: SIGHUP re-reads it from the configuration file."""
    d = tempfile.mkdtemp(prefix="wharf-proxy-")
    try:
        conf = os.path.join(d, "wharfd.conf")
        with open(conf, "w") as f:
            f.write("proxy-from = 127.0.0.9/32\n")
        listen = [f"http+proxy://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
        with Server(listen=listen, extra=["--config", conf]) as s:
            hdr = b"PROXY TCP4 192.0.2.1 127.0.0.1 1 80\r\n"
            reqs = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            out = send_in_pieces(s.port["http+proxy"], hdr + reqs, ())
            t.check(out == b"", "127.0.0.1 is not in the file's --proxy-from: refused", out)
            with open(conf, "w") as f:
                f.write("proxy-from = 127.0.0.0/8,::1\n")
            s.signal(signal.SIGHUP)
            t.check(wait_until(lambda: "reloaded" in s.log(), 5), "reloaded", s.log()[-500:])
            ok = wait_until(lambda: b"200 OK" in send_in_pieces(s.port["http+proxy"],
                                                                hdr + reqs, ()), 5)
            t.check(ok, "after SIGHUP, 127.0.0.1 may send a header")
            # (the worker takes the new settings a moment after the log line: a try in
            # between is refused too)
            n = s.stats()["totals"]["proxy_untrusted"]
            t.check(n >= 1, "the refusal counted", n)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@t.test
def bad_proxy_from_is_a_one_line_error():
    for v in ("10.0.0.1/8", "localhost", ""):
        r = subprocess.run([Server("raw").binary, "--proxy-from", v], capture_output=True,
                           text=True, timeout=10)
        t.check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
                and "proxy-from" in r.stderr, f"--proxy-from {v!r}: exit 2, one line",
                (r.returncode, r.stderr))


t.main()

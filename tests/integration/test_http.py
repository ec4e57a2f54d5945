"""HTTP/1.1 against the real wharfd: curl on every route, keep-alive, pipelining,
100-continue, chunked bodies, and the strict parser's error statuses."""

import json
import socket
import time
import urllib.request

from wharfkit.harness import BACKEND, SANITIZED, Server, Suite, recv_until_close, run, wait_until

t = Suite(__file__)


def curl(*args):
    r = run(["curl", "-sS", "--max-time", "10"] + list(args))
    return r


def split_response(data):
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    return status, headers, rest[:n], rest[n:]


def read_responses(sock, count, timeout=10):
    """Read exactly count responses (Content-Length framed) from sock."""
    sock.settimeout(timeout)
    data = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" in data:
            head = data.split(b"\r\n\r\n", 1)[0]
            n = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            total = len(head) + 4 + n
            if len(data) < total:
                break
            out.append(split_response(data[:total])[:3])
            data = data[total:]
            if len(out) == count:
                return out
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return out


@t.test
def curl_hello_route():
    with Server("http") as s:
        r = curl("-i", s.url("/"))
        t.check(r.returncode == 0, "curl ok", r.stderr)
        t.check(r.stdout.startswith("HTTP/1.1 200 OK"), "200", r.stdout[:40])
        t.check(r.stdout.endswith("\n\nHello, World!"), "13-byte body", r.stdout[-30:])
        t.check("Content-Type: text/plain" in r.stdout and "Content-Length: 13" in r.stdout
                and "Date: " in r.stdout, "headers", r.stdout)


@t.test
def curl_echo_upper_and_echo_modes():
    with Server("http") as s:
        r = curl("--data-binary", "hello, wharf", s.url("/echo"))
        t.check(r.stdout == "HELLO, WHARF", "upper by default", r.stdout)
    with Server("http", mode="echo") as s:
        r = curl("--data-binary", "hello, wharf", s.url("/echo"))
        t.check(r.stdout == "hello, wharf", "--mode echo", r.stdout)


@t.test
def curl_large_body_uses_100_continue():
    # curl sends "Expect: 100-continue" for large bodies and waits a second for it.
    body = "a" * (1 << 20)
    with Server("http", extra=["--max-message", "2M"]) as s:
        t0 = time.monotonic()
        r = run(["curl", "-sS", "-v", "--max-time", "10", "-H", "Expect: 100-continue",
                 "--data-binary", "@-", s.url("/echo")], input=body)
        took = time.monotonic() - t0
        t.check(r.stdout == body.upper(), "body echoed", len(r.stdout))
        t.check("HTTP/1.1 100 Continue" in r.stderr, "100 Continue sent", r.stderr[-800:])
        t.check(took < 0.9, "no expect timeout wait", took)


@t.test
def curl_chunked_request_body():
    with Server("http") as s:
        r = run(["curl", "-sS", "--max-time", "10", "-H", "Transfer-Encoding: chunked",
                 "--data-binary", "@-", s.url("/echo")], input="chunky " * 1000)
        t.check(r.stdout == ("chunky " * 1000).upper(), "chunked body decoded", r.stdout[:50])


@t.test
def curl_stats_and_metrics():
    with Server("http", "frame") as s:
        curl(s.url("/"))
        r = curl(s.url("/stats"))
        st = json.loads(r.stdout)
        expected = ("epoll", "io_uring") if BACKEND == "auto" else (BACKEND,)
        t.check(st["server"] == "wharfd" and st["backend"] in expected, "identity", st)
        t.check(st["totals"]["messages"] >= 1 and st["totals"]["accepted"] >= 2, "counts",
                st["totals"])
        t.check(len(st["workers"]) == st["config"]["workers"], "per-worker stats")
        m = curl("-i", s.url("/metrics"))
        t.check("text/plain; version=0.0.4" in m.stdout, "prometheus content type")
        t.check("# TYPE wharf_messages_total counter" in m.stdout, "typed metrics")
        t.check('wharf_connections_active{worker="0"}' in m.stdout, "active gauge")


@t.test
def head_404_405():
    with Server("http") as s:
        r = curl("-I", s.url("/"))
        t.check(r.stdout.startswith("HTTP/1.1 200") and "Content-Length: 13" in r.stdout,
                "HEAD /", r.stdout)
        r = curl("-i", s.url("/nope"))
        t.check(r.stdout.startswith("HTTP/1.1 404"), "404", r.stdout[:30])
        r = curl("-i", "-X", "DELETE", s.url("/"))
        t.check(r.stdout.startswith("HTTP/1.1 405") and "Allow: GET, HEAD" in r.stdout, "405",
                r.stdout)
        r = curl("-i", s.url("/echo"))
        t.check(r.stdout.startswith("HTTP/1.1 405") and "Allow: POST" in r.stdout, "GET /echo",
                r.stdout)
        r = curl("-i", s.url("/?q=1"))
        t.check(r.stdout.startswith("HTTP/1.1 200"), "query string ignored", r.stdout[:30])


@t.test
def keep_alive_and_http10():
    with Server("http") as s:
        c = s.connect("http")
        for _ in range(3):
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            (status, headers, body), = read_responses(c, 1)
            t.check(status == 200 and body == b"Hello, World!", "keep-alive reply")
            t.check("connection" not in headers, "no Connection header needed on 1.1")
        c.close()
        c = s.connect("http")
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = recv_until_close(c)
        t.check(b"Connection: close" in data and data.endswith(b"Hello, World!"), "1.0 closes",
                data)
        c.close()
        c = s.connect("http")
        c.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        (status, headers, _), = read_responses(c, 1)
        t.check(headers.get("connection") == "keep-alive", "1.0 keep-alive honoured", headers)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_until_close(c)
        t.check(b"Connection: close" in data, "close honoured", data)
        c.close()


@t.test
def pipelined_100_requests_in_one_write_answered_in_one_write():
    with Server("http", workers=1) as s:
        before = s.stats()["workers"][0]
        c = s.connect("http")
        reqs = b"".join(b"GET /?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(99))
        reqs += b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlast"
        c.sendall(reqs)
        resps = read_responses(c, 100)
        t.check(len(resps) == 100, "100 responses", len(resps))
        t.check(all(r[0] == 200 for r in resps), "all 200")
        t.check(resps[-1][2] == b"LAST", "in order: the POST is last", resps[-1])
        after = s.stats()["workers"][0]
        c.close()
        # the /stats request itself costs one read and one write on its own connection
        reads = after["reads"] - before["reads"] - 1
        writes = after["writes"] - before["writes"] - 1
        t.check(reads <= 2 and writes <= 2, "batched: one read, one write", (reads, writes))
        t.check(after["messages"] - before["messages"] == 101, "101 messages counted")


def expect_status(s, request, status, why):
    c = s.connect("http")
    c.sendall(request)
    data = recv_until_close(c)
    c.close()
    t.check(data.startswith(b"HTTP/1.1 %d " % status), f"{why}: {status}", data[:60])
    t.check(b"Connection: close" in data, f"{why}: closes")


@t.test
def strict_parser_statuses():
    with Server("http", extra=["--max-message", "1K"]) as s:
        cases = [
            (b"GET /\r\n\r\n", 400, "no version"),
            (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "two spaces"),
            (b"GET / HTTP/1.1\r\n\r\n", 400, "1.1 without Host"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Hosts"),
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "space before colon"),
            (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "obs-fold"),
            (b"GET / HTTP/1.1\r\nHost: x\x00y\r\n\r\n", 400, "NUL in value"),
            (b"GE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "control in method"),
            (b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", 400, "DEL in target"),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/2.0"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "negative CL"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
             400, "overflowing CL"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
             400, "duplicated CL"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
             400, "conflicting CL"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400, "CL list"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "CL with TE (smuggling)"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
             "gzip TE"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
             "chunked not last"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n", 501, "gzip TE, chunked TE in two fields"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "chunked twice in two fields"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5;\r\nhello\r\n0\r\n\r\n", 400, "chunk extension without a name"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5 \r\nhello\r\n0\r\n\r\n", 400, "whitespace after the chunk size"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5;a=\"b\r\nhello\r\n0\r\n\r\n", 400, "unbalanced quote in a chunk extension"),
            (b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF after the request line"),
            (b"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment in target"),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad Host"),
            (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413,
             "body over --max-message"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, "9 KiB header"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417, "unknown expectation"),
        ]
        for req, status, why in cases:
            expect_status(s, req, status, why)
        st = s.stats()["totals"]
        t.check(st["protocol_errors"] == len(cases), "each counted", st["protocol_errors"])


def answer_within(s, request, seconds):
    """Send request and read until the server closes, at most seconds + 2:
    (bytes read, seconds taken, whether it closed)."""
    c = s.connect("http")
    c.settimeout(seconds + 2)
    t0 = time.monotonic()
    c.sendall(request)
    data, closed = b"", True
    try:
        while chunk := c.recv(65536):
            data += chunk
    except socket.timeout:
        closed = False  # what came so far is the answer
    except ConnectionResetError:
        pass
    took = time.monotonic() - t0
    c.close()
    return data, took, closed


SMUGGLE_BARE_LF = (b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: x\nContent-Length: 24\r\n\r\n"
                   b"GET /padd HTTP/1.1\r\nXY: GET /admin HTTP/1.1\r\nHost: a\r\n\r\n")


@t.test
def bare_lf_smuggling_gets_one_400():
    # A bare LF between CRLF field lines: taken as a line end, "Content-Length: 24" would
    # make a body of "GET /padd ... XY: " and a hidden "GET /admin" after it (200 + 404).
    with Server("http") as s:
        data, _, closed = answer_within(s, SMUGGLE_BARE_LF, 2)
        t.check(data.count(b"HTTP/1.1 ") == 1, "exactly one response", data)
        t.check(data.startswith(b"HTTP/1.1 400 "), "a 400", data[:60])
        t.check(closed and b"Connection: close" in data, "closes", data)


@t.test
def invalid_start_is_refused_before_the_header_timeout():
    # RFC 9112 2.2: whitespace starting the line after the request line. The header
    # section never ends; the 400 must come as soon as the space arrives, not at the
    # header timeout (set long here so that the two cannot be confused).
    with Server("http", extra=["--header-timeout", "10s"]) as s:
        for req in (b"GET / HTTP/1.1\r\n Host: a", b"GET / HTTP/01.1\r\nHost: a",
                    b"GE(T / HTTP/1.1", b"GET / HTTP/1.1\r\nHost: a\r\nX: y\n"):
            data, took, closed = answer_within(s, req, 1)
            t.check(data.startswith(b"HTTP/1.1 400 ") and closed, f"{req!r}: 400 and close",
                    data[:60])
            t.check(took < 1.0, f"{req!r}: within a second", took)
        t.check(s.stats()["totals"]["header_timeouts"] == 0, "no header timeout fired")


@t.test
def hundred_kib_of_headers_closes_without_buffering():
    with Server("http") as s:
        rss0 = s.rss_kib()
        c = s.connect("http")
        try:
            c.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * (100 << 10) + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = recv_until_close(c)
        c.close()
        t.check(data.startswith(b"HTTP/1.1 431"), "431", data[:40])
        bound = 8192 if SANITIZED else 1024  # sanitizers' shadow memory grows on first use
        t.check(s.rss_kib() - rss0 < bound, "not buffered", s.rss_kib() - rss0)


@t.test
def pipelined_then_error_answers_the_good_ones_first():
    with Server("http") as s:
        c = s.connect("http")
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nBAD\r\n\r\n")
        data = recv_until_close(c)
        c.close()
        t.check(data.count(b"HTTP/1.1 200 OK") == 2 and b"HTTP/1.1 400" in data,
                "two 200 then 400", data)


@t.test
def header_timeout_closes_a_trickling_request():
    with Server("http", extra=["--header-timeout", "1s", "--idle-timeout", "60s"]) as s:
        c = s.connect("http")
        t0 = time.monotonic()
        closed_at = None
        for ch in b"GET / HTTP/1.1\r\nHost: x\r\n":
            try:
                c.send(bytes([ch]))
            except OSError:
                closed_at = time.monotonic()
                break
            c.settimeout(0.2)
            try:
                if c.recv(100) == b"":
                    closed_at = time.monotonic()
                    break
            except socket.timeout:
                pass
        t.check(closed_at is not None, "closed before the request completed")
        t.check(0.8 < closed_at - t0 < 3.5, "after about --header-timeout", closed_at - t0)
        c.close()
        t.check(s.stats()["totals"]["header_timeouts"] == 1, "counted")


@t.test
def lingering_close_that_runs_out_is_counted():
    """After a 400 wharfd shuts its side and discards input until the client's EOF, for
    2 s at most (LINGER_MS): a client that neither closes nor reads is cut then, and
    counted; one that closes at once is not."""
    with Server("http", workers=1) as s:
        expect_status(s, b"BAD\r\n\r\n", 400, "prompt client")
        t.check(s.stats()["totals"]["linger_timeouts"] == 0, "an EOF in time is not counted")
        c = s.connect("http")
        c.sendall(b"BAD\r\n\r\n")
        t0 = time.monotonic()
        counted = wait_until(lambda: s.stats()["totals"]["linger_timeouts"] == 1, 8, 0.1)
        waited = time.monotonic() - t0
        t.check(counted, "the expired linger is counted")
        t.check(waited > 1.5, "not before the linger's 2 s", waited)
        data = recv_until_close(c)
        c.close()
        t.check(data.startswith(b"HTTP/1.1 400 "), "the 400 reached the client", data[:40])
        with urllib.request.urlopen(s.url("/metrics"), timeout=10) as r:
            metrics = r.read().decode()
        t.check('wharf_timeouts_total{worker="0",kind="linger"} 1' in metrics, "in /metrics",
                [ln for ln in metrics.splitlines() if "linger" in ln])


t.main()

"""wharf bench against a real wharfd: its numbers against the server's own /stats."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from clientlib import (Suite, Server, WHARF, wharf, wharf_json, no_sanitizer_report,
                       totals, messages_delta, delta, addr)

t = Suite(__file__)


@t.test
def requests_sent_equal_requests_the_server_counted():
    with Server("frame", "http", workers=2) as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "8", "-t", "2", "-n", "20000", addr(s, "frame")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        t.check(r["requests"]["sent"] == 20000, "20000 sent", r["requests"])
        t.check(r["requests"]["ok"] == 20000, "20000 ok", r["requests"])
        t.check(r["errors"]["total"] == 0, "no errors", r["errors"])
        t.check(messages_delta(before, after) == 20000, "the server counted 20000 messages",
                messages_delta(before, after))
        t.check(r["latency"]["count"] == 20000, "every reply in the histogram", r["latency"])
        lat = r["latency"]
        t.check(0 < lat["min_us"] <= lat["p50_us"] <= lat["p90_us"] <= lat["p99_us"]
                <= lat["p99_9_us"] <= lat["max_us"], "percentiles in order", lat)
        t.check(r["bytes"]["out"] == 20000 * 68, "68 bytes per request written", r["bytes"])
        t.check(r["bytes"]["in"] == 20000 * 68, "68 bytes per reply read", r["bytes"])
        t.check(r["cpu"]["us_per_request"] > 0, "client CPU per request reported", r["cpu"])


@t.test
def timed_run_line_protocol_matches_server():
    with Server("line", "http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "4", "-t", "1", "-d", "1s", "-P", "4",
                                 addr(s, "line")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        sent = r["requests"]["sent"]
        t.check(sent > 1000, "a second of load", sent)
        t.check(r["requests"]["ok"] == sent, "every request answered (drained)", r["requests"])
        t.check(messages_delta(before, after) == sent, "server messages == requests sent",
                (messages_delta(before, after), sent))
        t.check(0.9 < r["duration_s"] < 1.5, "measured for about a second", r["duration_s"])
        t.check(abs(r["requests_per_sec"] * r["duration_s"] - r["requests"]["ok"]) < 2,
                "requests/s consistent with the count", r)


@t.test
def raw_replies_are_byte_counted():
    with Server("raw", "http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "3", "-t", "1", "-n", "3000", "--size", "100",
                                 addr(s, "raw")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        t.check(r["requests"]["ok"] == 3000, "3000 raw round trips", r["requests"])
        got = delta(before, after, "bytes_in")
        # The server's bytes_in also holds one /stats request of a few dozen bytes.
        t.check(300000 <= got < 300000 + 400, "the server read 300000 bytes of payload", got)


@t.test
def large_replies_split_across_reads():
    # 200 KiB replies never fit one 64 KiB read: each is completed across reads.
    with Server("frame", "line", "raw", "http") as s:
        for proto in ("frame", "line", "raw"):
            before = totals(s)
            rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-P", "2", "-n", "200",
                                     "--size", "200K", addr(s, proto)])
            after = totals(s)
            t.check(rc == 0 and r["requests"]["ok"] == 200, f"{proto}: 200 ok", (rc, r, err))
            if proto != "raw":  # raw messages are reads, not requests
                t.check(messages_delta(before, after) == 200, f"{proto}: server counted 200",
                        messages_delta(before, after))


@t.test
def pipeline_batches_writes():
    with Server("frame", "http", workers=1) as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "10", "-t", "1", "-P", "16", "-n", "64000",
                                 addr(s, "frame")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        msgs = messages_delta(before, after)
        reads = delta(before, after, "reads")
        t.check(msgs == 64000, "64000 messages", msgs)
        # 16 requests go out in one write, so the server reads them 16 at a time (or more).
        t.check(reads * 8 <= msgs, "the server read many requests per read", (reads, msgs))


@t.test
def echo_server_with_expect_upper_is_all_mismatches():
    with Server("frame", "http", mode="echo") as s:
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "1000", "--expect", "upper",
                                 addr(s, "frame")])
        t.check(rc == 1, "exit status 1", (rc, err))
        t.check(r["errors"]["mismatch"] == 1000, "every reply a mismatch", r["errors"])
        t.check(r["requests"]["ok"] == 0, "no success", r["requests"])
        rc, r, _ = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "1000", "--expect", "upper",
                               "--allow-errors", addr(s, "frame")])
        t.check(rc == 0 and r["errors"]["mismatch"] == 1000, "--allow-errors: status 0",
                (rc, r["errors"]))
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "-n", "1000", "--expect", "echo",
                                 addr(s, "frame")])
        t.check(rc == 0 and r["requests"]["ok"] == 1000, "--expect echo: all ok", (rc, r, err))


@t.test
def constant_rate_is_kept():
    with Server("frame", "http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "4", "-t", "2", "-P", "4", "-R", "2000", "-d",
                                 "2s", addr(s, "frame")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        sent, backlog = r["requests"]["sent"], r["requests"]["backlog"]
        # Slots due while a connection's window was full are reported, not sent late.
        t.check(sent + backlog == 4000, "2 s at 2000/s is 4000 requests", r["requests"])
        t.check(backlog <= 40, "hardly ever behind schedule", r["requests"])
        t.check(1900 <= r["requests_per_sec"] <= 2100, "about 2000 requests/s",
                r["requests_per_sec"])
        t.check(messages_delta(before, after) == sent, "server messages == sent",
                (messages_delta(before, after), sent))


class StallingServer:
    """Accepts, answers the first `answer` frames, then reads and never answers."""

    def __init__(self, answer=0, reply=lambda payload: payload.upper()):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.reply = reply
        self.conns = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        left = self.answer
        data = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    return
                data += chunk
                while left and len(data) >= 4:
                    n = int.from_bytes(data[:4], "big")
                    if len(data) < 4 + n:
                        break
                    out = self.reply(data[4:4 + n])
                    c.sendall(len(out).to_bytes(4, "big") + out if out is not None
                              else b"\xff\xff\xff\xffgarbage")
                    data = data[4 + n:]
                    left -= 1
        except OSError:
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@t.test
def a_silent_server_is_a_timeout():
    srv = StallingServer(answer=5)
    try:
        rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-n", "10", "--timeout", "300ms",
                                 f"frame://127.0.0.1:{srv.port}"], timeout=20)
    finally:
        srv.close()
    t.check(rc == 1, "exit status 1", (rc, err))
    # 5 answered, the 6th times out and takes the connection down; the new connection
    # gets its own 5 answers, enough for the remaining 4.
    t.check(r["requests"]["ok"] == 9, "9 answered requests ok", r["requests"])
    t.check(r["errors"]["timeout"] == 1, "the 6th timed out", r["errors"])
    t.check(r["errors"]["total"] == 1, "and nothing else failed", r["errors"])


@t.test
def wrong_or_garbled_replies_are_never_successes():
    # A reply one byte short, a reply with one byte changed, then a frame header no
    # reply could have: mismatches all, the last one also costs the connection.
    for reply, what in ((lambda b: b.upper()[:-1], "short"),
                        (lambda b: b"X" + b.upper()[1:], "changed"),
                        (lambda b: None, "garbled")):
        srv = StallingServer(answer=1000, reply=reply)
        try:
            rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-n", "20", "--timeout",
                                     "1s", f"frame://127.0.0.1:{srv.port}"], timeout=20)
        finally:
            srv.close()
        t.check(rc == 1, f"{what}: exit status 1", (rc, err))
        t.check(r["requests"]["ok"] == 0, f"{what}: no success", r["requests"])
        t.check(r["errors"]["mismatch"] == 20, f"{what}: 20 mismatches", r["errors"])


class BatchServer:
    """Answers every frame that came in one read with one send: a pipeline's replies reach
    the client together. Reply number k (from 0) is changed when bad(k); with split, each
    send goes out in two halves 20 ms apart, so a reply is cut between two reads."""

    def __init__(self, bad=lambda k: False, split=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.bad, self.split, self.k = bad, split, 0
        self.conns = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        data = b""
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    return
                data += chunk
                out = b""
                while len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:4], "big"):
                    n = int.from_bytes(data[:4], "big")
                    reply = data[4:4 + n].upper()
                    if self.bad(self.k):
                        reply = b"X" + reply[1:]
                    self.k += 1
                    out += data[:4] + reply
                    data = data[4 + n:]
                if self.split and len(out) > 1:
                    half = len(out) // 2 + 3  # not on a reply boundary
                    c.sendall(out[:half])
                    time.sleep(0.02)
                    c.sendall(out[half:])
                elif out:
                    c.sendall(out)
        except OSError:
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@t.test
def pipelined_replies_taken_together_are_each_judged():
    # A pipeline's replies come in one read and the expected ones are taken in one
    # call: a wrong one among them is still its own mismatch, the others successes, and
    # replies cut between reads are put together.
    for bad, split, want_bad, what in ((lambda k: k % 5 == 2, False, 80, "every 5th wrong"),
                                       (lambda k: False, True, 0, "cut between reads"),
                                       (lambda k: k % 7 == 0, True, 58, "both")):
        srv = BatchServer(bad=bad, split=split)
        try:
            rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-P", "8", "-n", "400",
                                     "--timeout", "2s", "--size", "32",
                                     f"frame://127.0.0.1:{srv.port}"], timeout=30)
        finally:
            srv.close()
        t.check(r is not None and r["requests"]["sent"] == 400, f"{what}: 400 sent",
                (rc, err))
        t.check(r["errors"]["mismatch"] == want_bad, f"{what}: {want_bad} mismatches",
                r["errors"])
        t.check(r["requests"]["ok"] == 400 - want_bad, f"{what}: the others ok",
                r["requests"])
        t.check(r["errors"]["total"] == want_bad, f"{what}: no other error", r["errors"])
        t.check(r["latency"]["count"] == 400 - want_bad, f"{what}: each success timed",
                r["latency"])
        t.check(r["bytes"]["in"] == 400 * 36, f"{what}: every reply read", r["bytes"])


@t.test
def rate_mode_counts_a_stall_from_intended_times():
    # The server answers 100 requests, then stalls. At 200/s for 1 s, wharf keeps
    # the schedule: the requests stuck behind the stall are timeouts, and the latency
    # of the answered ones stays small, but the backlog (due, never sent: the window
    # of 1 is full) is reported -- no coordinated omission hiding the stall.
    srv = StallingServer(answer=100)
    try:
        rc, r, err = wharf_json(["bench", "-c", "1", "-t", "1", "-R", "200", "-d", "1s",
                                 "--timeout", "2s", f"frame://127.0.0.1:{srv.port}"], timeout=20)
    finally:
        srv.close()
    t.check(rc == 1, "exit status 1", (rc, err))
    t.check(r["requests"]["ok"] == 100, "100 answered", r["requests"])
    t.check(r["requests"]["backlog"] >= 90, "the stalled half second shows as backlog",
            r["requests"])
    t.check(r["errors"]["timeout"] >= 1, "the stuck request timed out", r["errors"])


@t.test
def warmup_is_not_counted():
    with Server("frame", "http") as s:
        before = totals(s)
        rc, r, err = wharf_json(["bench", "-c", "2", "-t", "1", "--warmup", "500ms", "-d",
                                 "500ms", addr(s, "frame")])
        after = totals(s)
        t.check(rc == 0, "exit status 0", (rc, err))
        q = r["requests"]
        t.check(q["warmup"] > 0 and q["ok"] > 0, "both warmup and counted requests", q)
        t.check(q["warmup"] + q["ok"] == q["sent"], "every request either", q)
        t.check(r["latency"]["count"] == q["ok"], "only counted ones in the histogram",
                r["latency"])
        t.check(messages_delta(before, after) == q["sent"], "server saw all of them",
                (messages_delta(before, after), q))


@t.test
def latency_csv_and_text_report():
    with Server("frame", "http") as s, tempfile.TemporaryDirectory() as d:
        csv = os.path.join(d, "lat.csv")
        p = wharf(["bench", "-c", "2", "-t", "1", "-n", "2000", "--latency-csv", csv,
                 addr(s, "frame")])
        t.check(p.returncode == 0, "exit status 0", p.stderr)
        for word in ("Latency", "50%", "99%", "requests in", "Requests/sec:", "Transfer/sec:",
                     "Errors: 0", "Client CPU:"):
            t.check(word in p.stdout, f"report has {word!r}", p.stdout)
        rows = open(csv).read().splitlines()
        t.check(rows[0] == "latency_us,percentile,count,inverse", "CSV header", rows[0])
        last = rows[-1].split(",")
        t.check(float(last[1]) == 100.0 and int(last[2]) == 2000, "CSV ends at 100%", last)
        vals = [float(x.split(",")[0]) for x in rows[1:]]
        t.check(vals == sorted(vals), "CSV in increasing latency", vals[:10])


@t.test
def refused_connections_fail_fast():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connects are refused
        p = wharf(["bench", "-c", "2", "-d", "5s", f"frame://127.0.0.1:{port}"], timeout=20)
    t.check(p.returncode == 1, "exit status 1", (p.returncode, p.stderr))
    t.check("ECONNREFUSED" in p.stderr, "says ECONNREFUSED", p.stderr)


@t.test
def ctrl_c_still_prints_the_report():
    with Server("frame", "http") as s:
        p = subprocess.Popen([WHARF, "bench", "-c", "2", "-t", "1", "-d", "30s", "--json",
                              addr(s, "frame")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(1.0)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
        no_sanitizer_report(err)
        took = time.monotonic() - t0
        t.check(took < 3, "stopped promptly", took)
        r = json.loads(out)
        t.check(r["interrupted"] is True, "marked interrupted", r)
        t.check(p.returncode == 0, "no errors: status 0", (p.returncode, err))
        t.check(r["requests"]["ok"] > 0 and r["requests"]["ok"] == r["requests"]["sent"],
                "what was sent was answered", r["requests"])


@t.test
def source_addresses_and_usage_errors():
    with Server("frame", "http") as s:
        rc, r, err = wharf_json(["bench", "-c", "4", "-t", "1", "-n", "400", "--source",
                                 "127.0.0.2-3", addr(s, "frame")])
        t.check(rc == 0 and r["requests"]["ok"] == 400, "spread over 127.0.0.2 and .3",
                (rc, r, err))
        p = wharf(["bench", "-c", "4", "-n", "10", "--source", "192.0.2.1", "--timeout",
                 "1s", addr(s, "frame")])
        t.check(p.returncode == 1 and "EADDRNOTAVAIL" in p.stderr,
                "a source address not on this host: EADDRNOTAVAIL", p.stderr)
    for args in (["-c", "x"], ["--expect", "shout"], ["-P", "0"], ["--nodelay", "maybe"]):
        p = wharf(["bench"] + args + ["frame://127.0.0.1:1"])
        t.check(p.returncode == 2, f"bad usage {args}: status 2", (p.returncode, p.stderr))
    p = wharf(["bench", "https://127.0.0.1:1/"])
    t.check(p.returncode == 2 and "https://" in p.stderr and p.stderr.count("\n") == 1,
            "https:// refused in one line", p.stderr)
    p = wharf(["bench", "-s", "x.lua", "http://127.0.0.1:1/"])
    t.check(p.returncode == 2 and p.stderr.count("\n") == 1 and
            ("Lua support is not built in" in p.stderr or "x.lua" in p.stderr),
            "-s: a missing script (or no Lua) is one line, status 2", p.stderr)
    p = wharf(["bench", "-n", "1", "http://127.0.0.1:1/"])
    t.check(p.returncode == 1 and "ECONNREFUSED" in p.stderr and "port" not in p.stderr,
            "http://HOST:PORT/ parses (no 'bad port')", p.stderr)


@t.test
def wrk_latency_flag_works_and_abbreviations_are_refused():
    """wrk's --latency is a no-op here (the distribution is always printed); an abbreviated
    long option, which getopt_long would take for the option it starts, is refused:
    "--latency-c lat.csv" must not write lat.csv, "--lat" must not become --latency-csv."""
    with Server("frame", "http") as s, tempfile.TemporaryDirectory() as d:
        p = wharf(["bench", "-c", "2", "-t", "1", "-n", "200", "--latency", addr(s, "frame")])
        t.check(p.returncode == 0 and "99%" in p.stdout, "--latency: a normal report",
                (p.returncode, p.stdout, p.stderr))
        csv = os.path.join(d, "lat.csv")
        for args in (["--latency-c", csv], [f"--latency-c={csv}"], ["--pipe", "2"],
                     ["--warm=1s"]):
            p = wharf(["bench", "-n", "20"] + args + [addr(s, "frame")])
            typed = args[0].split("=")[0]
            want = f"wharf bench: unknown option '{typed}' (abbreviations are not accepted)"
            t.check(p.returncode == 2, f"{args}: status 2", (p.returncode, p.stderr))
            t.check(p.stderr.strip() == want, f"{args}: one clear line", p.stderr)
        t.check(not os.path.exists(csv), "no CSV written through an abbreviation")
    for sub, flag in (("churn", "--dur"), ("hold", "--proc"), ("send", "--pro")):
        p = wharf([sub, flag, "1", "frame://127.0.0.1:1"])
        t.check(p.returncode == 2 and "abbreviations are not accepted" in p.stderr,
                f"wharf {sub} {flag}: refused", (p.returncode, p.stderr))
    p = wharf(["bench", "--help"])
    t.check("--latency " in p.stdout, "--help documents --latency", p.stdout)


t.main()

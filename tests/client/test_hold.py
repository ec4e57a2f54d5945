"""wharf hold against a real wharfd: many idle connections, counted by both sides."""

import json
import os
import subprocess
import sys
import time

from clientlib import (Suite, Server, WHARF, wharf, wharf_json, no_sanitizer_report,
                       totals, messages_delta, accepted_delta, addr, SANITIZED)

t = Suite(__file__)

N = 1000 if SANITIZED else 2000


def ss_count(port, src):
    out = subprocess.run(["ss", "-Htn", "state", "established",
                          f"( dport = :{port} and src {src} )"],
                         capture_output=True, text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


@t.test
def holds_connections_over_procs_and_sources():
    with Server("frame", "http") as s:
        before = totals(s)
        p = subprocess.Popen([WHARF, "hold", "-c", str(N), "--procs", "2", "-d", "2s",
                              "--source", "127.0.0.1,127.0.0.2", "--json", addr(s, "frame")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # While they are held: the server has them all, from both source addresses.
        deadline = time.monotonic() + 10
        polls = 1
        while time.monotonic() < deadline and s.stats()["totals"]["active"] < N + 1:
            polls += 1
            time.sleep(0.1)
        active = s.stats()["totals"]["active"]
        polls += 1
        port = s.port["frame"]
        from2 = ss_count(port, "127.0.0.2")
        out, err = p.communicate(timeout=60)
        no_sanitizer_report(err)
        after = totals(s)
        r = json.loads(out)
        t.check(p.returncode == 0, "exit status 0", (p.returncode, err, r))
        t.check(active >= N + 1, f"the server held {N} at once", active)
        t.check(from2 == N // 2, "half of them from 127.0.0.2", from2)
        t.check(r["connected"] == N and r["live"] == N and r["survived"] == N, "all survived", r)
        t.check(r["time_to_live_s"] > 0, "time to reach N reported", r)
        # Each /stats poll in between was a connection too.
        t.check(accepted_delta(before, after) - polls == N, "the server accepted N",
                (accepted_delta(before, after), polls))
        t.check(messages_delta(before, after) == 2 * N, "two round trips each",
                messages_delta(before, after))


@t.test
def connections_the_server_drops_are_lost():
    with Server("frame", extra=["--idle-timeout", "500ms"]) as s:
        rc, r, err = wharf_json(["hold", "-c", "200", "-d", "1500ms", addr(s, "frame")])
        t.check(rc == 1, "exit status 1", (rc, err))
        t.check(r["live"] == 200, "all live at first", r)
        t.check(r["dropped_while_held"] == 200 and r["survived"] == 0,
                "all closed by the idle timeout while held", r)
        t.check(r["lost"]["closed"] == 200, "lost as closed", r["lost"])


@t.test
def echo_server_with_expect_upper_fails_the_probe():
    with Server("frame", mode="echo") as s:
        rc, r, err = wharf_json(["hold", "-c", "50", "-d", "100ms", "--expect", "upper",
                                 addr(s, "frame")])
        t.check(rc == 1, "exit status 1", (rc, err))
        t.check(r["connected"] == 50 and r["live"] == 0 and r["probe_failed"] == 50,
                "connected but never live", r)
        t.check(r["probe_failures"]["mismatch"] == 50, "as mismatches", r["probe_failures"])


@t.test
def more_than_the_file_limit_needs_procs():
    p = wharf(["hold", "-c", "30000", "frame://127.0.0.1:1"])
    t.check(p.returncode == 2 and "--procs" in p.stderr, "asks for --procs", p.stderr)


t.main()
